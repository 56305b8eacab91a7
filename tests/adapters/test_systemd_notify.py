"""adapters.systemd_notify on real AF_UNIX datagram sockets; the example systemd unit."""
from __future__ import annotations

import configparser
import contextlib
import io
import logging
import os
import shlex
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.systemd_notify import SystemdNotifier
from bootstrap import cli

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "examples" / "systemd" / "evse-stack.service"


@pytest.fixture
def receiver() -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket playing systemd (short path: sun_path has 108 bytes)."""
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="sdn-") as folder:
        path = os.path.join(folder, "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            sock.settimeout(5)
            yield path, sock


def received(sock: socket.socket) -> bytes:
    return sock.recv(4096)


def test_messages_are_the_exact_sd_notify_datagrams(receiver: tuple[str, socket.socket]) -> None:
    path, sock = receiver
    n = SystemdNotifier.from_environment({"NOTIFY_SOCKET": path})
    assert n.enabled
    n.ready()
    n.status("CSMS connected, 1 EVSE available")
    n.watchdog()
    n.stopping()
    assert [received(sock) for _ in range(4)] == [
        b"READY=1", b"STATUS=CSMS connected, 1 EVSE available", b"WATCHDOG=1", b"STOPPING=1"]
    n.close()


def test_status_is_one_line_of_utf8(receiver: tuple[str, socket.socket]) -> None:
    path, sock = receiver
    n = SystemdNotifier.from_environment({"NOTIFY_SOCKET": path})
    n.status("CSMS link down:\nconnection refused\r\nretry in 8 s (Wärme)")
    assert received(sock) == "STATUS=CSMS link down: connection refused retry in 8 s (Wärme)".encode()
    n.close()


def test_abstract_namespace_socket() -> None:
    name = f"evse-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        n = SystemdNotifier.from_environment({"NOTIFY_SOCKET": f"@{name}"})
        n.ready()
        n.watchdog()
        assert [received(sock), received(sock)] == [b"READY=1", b"WATCHDOG=1"]
        n.close()


def test_outside_systemd_the_notifier_does_nothing() -> None:
    n = SystemdNotifier.from_environment({"WATCHDOG_USEC": "30000000"})
    assert not n.enabled
    assert n.watchdog_interval is None           # nobody to ping
    n.ready()
    n.status("x")
    n.watchdog()
    n.stopping()
    assert SystemdNotifier.from_environment({"NOTIFY_SOCKET": ""}).enabled is False


@pytest.mark.parametrize("extra, interval", [
    ({"WATCHDOG_USEC": "30000000"}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "OURS"}, 15.0),
    ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "OTHER"}, None),
    ({"WATCHDOG_USEC": "1000"}, 0.0005),
    ({"WATCHDOG_USEC": "0"}, None),
    ({}, None),
])
def test_watchdog_interval_is_half_the_timeout(extra: dict[str, str],
                                               interval: float | None) -> None:
    env = {"NOTIFY_SOCKET": "/run/systemd/notify",
           **{k: {"OURS": str(os.getpid()), "OTHER": str(os.getpid() + 1)}.get(v, v)
              for k, v in extra.items()}}
    assert SystemdNotifier.from_environment(env).watchdog_interval == interval


def test_watchdog_pid_is_compared_with_the_given_pid() -> None:
    env = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "8000000",
           "WATCHDOG_PID": "4242"}
    assert SystemdNotifier.from_environment(env, pid=4242).watchdog_interval == 4.0
    assert SystemdNotifier.from_environment(env, pid=4243).watchdog_interval is None


@pytest.mark.parametrize("extra", [{"WATCHDOG_USEC": "thirty"},
                                   {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "me"}])
def test_a_garbled_watchdog_setting_is_ignored_and_logged(
        extra: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        n = SystemdNotifier.from_environment({"NOTIFY_SOCKET": "/run/systemd/notify", **extra})
    assert n.watchdog_interval is None
    assert "ignoring the service manager's watchdog" in caplog.text


def test_a_failed_send_never_raises_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="sdn-") as folder:
        path = os.path.join(folder, "notify")
        n = SystemdNotifier.from_environment({"NOTIFY_SOCKET": path})
        with caplog.at_level(logging.DEBUG, logger="evse.system"):
            n.ready()                              # nobody listens yet
            n.watchdog()
            n.status("still")
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "cannot notify" in warnings[0].getMessage()
        assert path in warnings[0].getMessage()
        caplog.clear()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            sock.settimeout(5)
            with caplog.at_level(logging.INFO, logger="evse.system"):
                n.watchdog()                       # systemd is back: it arrives
            assert received(sock) == b"WATCHDOG=1"
            assert "works again" in caplog.text
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="evse.system"):
            n.watchdog()                           # gone again: a new warning
        assert caplog.text.count("cannot notify") == 1
        n.close()


def test_a_full_socket_never_blocks_the_caller(receiver: tuple[str, socket.socket],
                                               caplog: pytest.LogCaptureFixture) -> None:
    path, _sock = receiver                     # never read: its queue fills up
    n = SystemdNotifier.from_environment({"NOTIFY_SOCKET": path})

    def flood() -> None:
        for _ in range(20_000):
            n.status("x" * 200)

    with caplog.at_level(logging.WARNING, logger="evse.system"):
        worker = threading.Thread(target=flood, daemon=True)
        worker.start()
        worker.join(timeout=20)                # a hang guard, not a timing assertion
    assert not worker.is_alive(), "sending blocked on a full socket"
    assert caplog.text.count("cannot notify") == 1
    n.close()


# --- the example unit file ------------------------------------------------------------------
def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       delimiters=("=",), comment_prefixes=("#", ";"))
    parser.optionxform = str                       # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_example_unit_is_a_notify_service_with_watchdog_and_restart() -> None:
    u = unit()
    service = u["Service"]
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert int(service["WatchdogSec"]) == 30
    assert service["Restart"] == "on-failure"
    assert service["User"] == "evse"
    assert set(service["SupplementaryGroups"].split()) == {"dialout", "i2c"}
    assert service["StateDirectory"] == "evse-stack"
    assert service["KillSignal"] == "SIGTERM"
    assert "WantedBy" in u["Install"]
    # the hardening must leave the serial ports and I2C buses reachable (DeviceAllow= is
    # repeated, which configparser folds into its last value: read the lines)
    assert service.get("PrivateDevices", "no") == "no"
    assert service["DevicePolicy"] == "closed"
    allowed = {line.split("=", 1)[1].strip() for line in UNIT.read_text().splitlines()
               if line.startswith("DeviceAllow=")}
    assert allowed == {"char-tty* rw", "char-i2c rw"}
    assert "AF_NETLINK" in service["RestrictAddressFamilies"].split()   # udev events


def test_example_unit_execstart_names_flags_the_cli_has(tmp_path: Path) -> None:
    argv = shlex.split(unit()["Service"]["ExecStart"])
    assert argv[0] == "/opt/evse-stack/.venv/bin/evse" and argv[1] == "run"
    config = argv[argv.index("--config") + 1]
    assert config == "/etc/evse-stack/station.toml"
    # The CLI accepts exactly these arguments: with a config file that is not there it gets
    # as far as reading it (argparse would exit with a usage error on an unknown flag).
    args = [str(tmp_path / "missing.toml") if a == config else a for a in argv[1:]]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert cli.main(args) == 2
    assert stderr.getvalue().strip() == f"evse: {tmp_path / 'missing.toml'}: file not found"
