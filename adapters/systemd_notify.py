"""Adapter: systemd's notify protocol (ports.system.ServiceManager), without libsystemd.

With ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for the
abstract namespace) and waits for ``READY=1`` before it considers the unit started;
with ``WatchdogSec=`` it also passes ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``) and
restarts the service when ``WATCHDOG=1`` stops arriving. Each message is one datagram
of ``KEY=value`` lines on an AF_UNIX SOCK_DGRAM socket (sd_notify(3)).

Started by hand (no ``NOTIFY_SOCKET``), the notifier does nothing. A notification is
best-effort: a failed send is logged (once, until sending works again) and never raises,
because the station must not stop over its supervisor's socket.
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("evse.system")


def _address(notify_socket: str) -> str | bytes:
    """sd_notify's address: ``@name`` is the abstract socket ``\\0name``."""
    if notify_socket.startswith("@"):
        return b"\0" + notify_socket[1:].encode()
    return notify_socket


def _watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Half of WATCHDOG_USEC in seconds, when the watchdog is meant for this process."""
    usec = environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    watchdog_pid = environ.get("WATCHDOG_PID")
    try:
        if watchdog_pid and int(watchdog_pid) != pid:
            return None      # meant for another process (e.g. inherited by a child)
        value = int(usec)
    except ValueError:
        log.warning("ignoring the service manager's watchdog: WATCHDOG_USEC=%r, "
                    "WATCHDOG_PID=%r", usec, watchdog_pid)
        return None
    return value / 2_000_000 if value > 0 else None


class SystemdNotifier:
    """Sends sd_notify messages to `notify_socket` (None: a no-op notifier)."""

    def __init__(self, notify_socket: str | None = None, *,
                 watchdog_interval: float | None = None) -> None:
        self.notify_socket = notify_socket or None
        self._address = _address(notify_socket) if notify_socket else None
        self._watchdog_interval = watchdog_interval if self._address is not None else None
        self._sock: socket.socket | None = None
        self._failing = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ, *,
                         pid: int | None = None) -> SystemdNotifier:
        """The notifier systemd's environment asks for; a no-op one outside systemd."""
        notify_socket = environ.get("NOTIFY_SOCKET") or None
        interval = _watchdog_interval(environ, os.getpid() if pid is None else pid)
        return cls(notify_socket, watchdog_interval=interval)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        return self._watchdog_interval

    def ready(self) -> None:
        self._send(b"READY=1")

    def status(self, text: str) -> None:
        line = " ".join(text.splitlines())
        self._send(b"STATUS=" + line.encode("utf-8", "replace"))

    def watchdog(self) -> None:
        self._send(b"WATCHDOG=1")

    def stopping(self) -> None:
        self._send(b"STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send(self, message: bytes) -> None:
        if self._address is None:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)      # never stall the event loop
            self._sock.sendto(message, self._address)
        except OSError as exc:
            if not self._failing:
                self._failing = True
                log.warning("service manager: cannot notify %s (%s); carrying on",
                            self.notify_socket, exc.strerror or exc)
            else:
                log.debug("service manager: notify failed again (%s)", exc.strerror or exc)
            return
        if self._failing:
            self._failing = False
            log.info("service manager: notifying %s works again", self.notify_socket)
