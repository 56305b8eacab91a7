"""Ports: the operating system around the station (reboot, service manager)."""
from __future__ import annotations

from typing import Protocol


class System(Protocol):
    async def reboot(self, reason: str) -> bool:
        """Restart the charging station after the runtime stopped everything cleanly.

        True: the restart happens in this process (the runtime starts a new boot cycle,
        as the simulator's soft reboot does). False: the operating system was asked to
        reboot the board; the process ends and the next boot comes from the OS.
        Raises OSError (one line) when the request was refused."""


class ServiceManager(Protocol):
    """The service manager that supervises the process (systemd's notify protocol)."""

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings the manager expects (half its timeout), or None."""

    def ready(self) -> None:
        """The station is composed and its storage open."""

    def status(self, text: str) -> None:
        """One line of status (e.g. the CSMS link state)."""

    def watchdog(self) -> None:
        """The main loop is alive."""

    def stopping(self) -> None:
        """The station is stopping on purpose."""
