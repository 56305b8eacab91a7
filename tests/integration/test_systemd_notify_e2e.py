"""`evse run` under a service manager: the real process (sim deployment) with NOTIFY_SOCKET
naming a datagram socket the test binds, as systemd does for Type=notify with WatchdogSec=,
connected to the dev CSMS: READY=1 once composed, STATUS= with the CSMS link state,
WATCHDOG=1 again and again, STOPPING=1 after SIGTERM."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import trio

from devtools.dev_csms import DevCsms
from tests.bootstrap.test_cli import SID, write_config as cli_config

REPO = Path(__file__).resolve().parents[2]
WATCHDOG_USEC = 1_000_000          # the station pings every 0.5 s


def write_config(tmp_path: Path, url: str) -> Path:
    """The CLI tests' station file, reconnecting at once after a disconnect."""
    return cli_config(tmp_path, url, '"OCPPCommCtrlr.RetryBackOffWaitMinimum" = 0\n'
                                     '"OCPPCommCtrlr.RetryBackOffRandomRange" = 1\n')


class Notifications:
    """The datagrams the station sends to its service manager, in order."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self.messages: list[str] = []

    async def until(self, predicate, timeout: float = 10) -> str:
        """Receive until a message satisfies `predicate`; return it."""
        with trio.fail_after(timeout):
            while True:
                text = (await self.sock.recv(4096)).decode()
                self.messages.append(text)
                if predicate(text):
                    return text


async def test_evse_run_tells_the_service_manager_ready_status_watchdog_stopping(tmp_path):
    with trio.fail_after(30):
        csms = DevCsms(heartbeat_interval=60)
        notify_path = str(tmp_path / "notify.sock")
        with trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            await sock.bind(notify_path)
            notes = Notifications(sock)
            async with trio.open_nursery() as nursery:
                await nursery.start(csms.serve)
                env = {k: v for k, v in os.environ.items() if k != "WATCHDOG_PID"}
                env.update(NOTIFY_SOCKET=notify_path, WATCHDOG_USEC=str(WATCHDOG_USEC))
                log = open(tmp_path / "station.log", "wb")
                proc = await trio.lowlevel.open_process(
                    [sys.executable, "-m", "bootstrap.cli", "run", "--config", str(write_config(tmp_path, csms.url))],
                    cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
                try:
                    ready = await notes.until(lambda m: m == "READY=1")
                    await csms.wait_connected(SID)
                    connected = await notes.until(lambda m: m.startswith("STATUS=CSMS connected"))
                    # the one-line summary of the local status (bootstrap/status.py)
                    assert re.fullmatch(r"STATUS=CSMS connected; EVSE 1 \w+; \d+ queued", connected), connected
                    await csms.wait_for("StatusNotification", station_id=SID)
                    # the watchdog is fed again and again (half of WATCHDOG_USEC apart)
                    start = len(notes.messages)
                    for _ in range(3):
                        await notes.until(lambda m: m == "WATCHDOG=1")
                    assert notes.messages[start:].count("WATCHDOG=1") >= 3
                    # the link state follows the CSMS
                    await csms.disconnect(SID)
                    down = await notes.until(lambda m: m.startswith("STATUS=CSMS link down"))
                    await notes.until(lambda m: m.startswith("STATUS=CSMS connected"))
                    # SIGTERM: a clean stop, announced
                    proc.send_signal(signal.SIGTERM)
                    await notes.until(lambda m: m == "STOPPING=1")
                    assert await proc.wait() == 0
                except BaseException:
                    print("station log:\n" + (tmp_path / "station.log").read_text()[-4000:], file=sys.stderr)
                    print(f"notifications: {notes.messages}", file=sys.stderr)
                    raise
                finally:
                    if proc.returncode is None:
                        proc.kill()
                        await proc.wait()
                    log.close()
                nursery.cancel_scope.cancel()
        assert ready == "READY=1" and notes.messages.count("READY=1") == 1
        assert notes.messages.index("READY=1") < notes.messages.index(connected)
        assert re.fullmatch(r"STATUS=CSMS link down \(.+\); EVSE 1 \w+; \d+ queued", down), down
        assert notes.messages[-1] == "STOPPING=1"
        assert set(notes.messages) <= {"READY=1", "WATCHDOG=1", "STOPPING=1"} | {
            m for m in notes.messages if m.startswith("STATUS=")}
