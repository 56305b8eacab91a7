"""Storage that cannot be written, end to end: the REAL `evse run` process (sim hardware, DevCsms
in the test, helpers of test_sigkill) with its SQLite file on a real file system that fills up
or goes read-only (root; tests/fs_faults.py).

The station never exits or closes the websocket for it: it confirms nothing it could not store
(the CALL whose write found the disk full gets InternalError, later storing CALLs Rejected with
OutOfStorage), refuses new sessions (EVSEs Unavailable), sends MemoryExhaustion, keeps running
sessions and their events flowing in order, logs one line per failure and one on recovery,
and recovers by itself; what it kept in memory is then stored (a kill -9 right after loses
nothing), the MemoryExhaustion events of the security log too. It starts on a read-only file system, and goes on when that turns read-only under it.

Linux refuses `mount -o remount,ro` while the station's files are open for writing, so the tmpfs
goes read-only before the station starts and back to read-write under it; under a running
station the file system goes read-only the way it does in the field: ext4 (errors=remount-ro,
on a loop device) meets an error, and stays read-only until it is unmounted.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from devtools.dev_csms import CallError, DevCsms
from devtools.sim_cli import send_control_command
from bootstrap.storage_guard import RETRY_INTERVAL
from domain.security.events import SECURITY_LOG_TABLE
from tests.chaos.harness import SID, TOKENS, config_text, read_database, tx_id
from tests.chaos.test_sigkill import BOOT_TIMEOUT, STOP_TIMEOUT
from tests.conformance.conftest import schema_problems
from tests.fs_faults import ext4_error, ext4_image, fill, remount, tmpfs

TIME_LIMIT = 120.0
WAIT = 10.0                        # a message the station sends next
RECOVERY = RETRY_INTERVAL + WAIT   # space back -> the station notices at its next retry
OFFLINE_THRESHOLD = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"}}
FAILED_LINE = "storage: cannot write ("
RESTORED_LINE = "storage: can be written again"


class Rig:
    """One DevCsms and the station processes that follow each other on one database."""

    def __init__(self, tmp_path: Path, csms: DevCsms, db: Path) -> None:
        self.csms, self.db = csms, db
        self.sock = str(tmp_path / "sim.sock")
        self.config = tmp_path / "station.toml"
        self.config.write_text(config_text(csms.url, storage=str(db)))
        self.log_path = tmp_path / "station.log"
        self.proc: Any = None
        self.mark = 0

    async def start(self) -> None:
        """A station process; returns once it is registered and has reported its connectors."""
        self.mark = len(self.csms.received)
        with open(self.log_path, "ab") as log:
            self.proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "bootstrap.cli", "run", "--config", str(self.config)],
                stdout=subprocess.DEVNULL, stderr=log)
        await self.csms.wait_for("BootNotification", station_id=SID, after=self.mark, timeout=BOOT_TIMEOUT)
        for evse in TOKENS:
            await self.status(evse, None, after=self.mark, timeout=BOOT_TIMEOUT)

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        self.proc.send_signal(signum)
        with trio.fail_after(STOP_TIMEOUT):
            rc = await self.proc.wait()
        with trio.move_on_after(STOP_TIMEOUT):
            while SID in self.csms.connected:
                await trio.sleep(0.01)
        return rc

    def kill_leftover(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    async def control(self, cmd: str, **fields: Any) -> dict:
        reply = await send_control_command(self.sock, {"cmd": cmd, **fields})
        assert reply.get("ok"), reply
        return reply

    async def status(self, evse: int, status: str | None, *, after: int, timeout: float = WAIT) -> dict:
        return await self.csms.wait_for("StatusNotification", station_id=SID, after=after, timeout=timeout,
                                        where=lambda p: p["evseId"] == evse and status in (None, p["connectorStatus"]))

    async def memory_exhaustion(self, after: int) -> dict:
        return await self.csms.wait_for("SecurityEventNotification", station_id=SID, after=after, timeout=WAIT,
                                        where=lambda p: p["type"] == "MemoryExhaustion")

    def events(self, tx: str, after: int = 0) -> list[dict]:
        return [f[3] for sid, f in self.csms.received[after:]
                if sid == SID and f[0] == 2 and f[2] == "TransactionEvent" and tx_id(f[3]) == tx]

    async def wait_events(self, tx: str, count: int, after: int, timeout: float = WAIT) -> list[dict]:
        with trio.fail_after(timeout):
            while len(events := self.events(tx, after)) < count:
                await trio.sleep(0.05)
        return events

    async def start_session(self, evse: int) -> str:
        mark = len(self.csms.received)
        await self.control("plug", evse=evse)
        await self.control("token", id_token=TOKENS[evse], evse=evse)
        started = await self.csms.wait_for("TransactionEvent", station_id=SID, after=mark, timeout=WAIT,
                                           where=lambda p: p["eventType"] == "Started")
        await self.control("ev_charge", evse=evse, power_w=11000)
        return tx_id(started)

    async def no_session_starts(self, evse: int) -> None:
        """Plug and card at an EVSE: nothing starts (checked for a bounded second)."""
        mark = len(self.csms.received)
        await self.control("plug", evse=evse)
        await self.control("token", id_token=TOKENS[evse], evse=evse)
        await trio.sleep(1.0)
        assert [f for _, f in self.csms.received[mark:] if f[0] == 2 and f[2] in ("Authorize", "TransactionEvent")
                and (f[2] == "Authorize" or (f[3].get("evse") or {}).get("id") == evse)] == []
        state = await self.control("state")
        [e] = [e for e in state["evses"] if e["evse"] == evse]
        assert e["transaction_id"] is None and e["connectors"][0]["status"] == "Unavailable", state
        await self.control("unplug", evse=evse)

    async def set_offline_threshold(self, seconds: int) -> dict:
        res = await self.csms.call(SID, "SetVariables", {"setVariableData": [
            {**OFFLINE_THRESHOLD, "attributeValue": str(seconds)}]})
        return res["setVariableResult"][0]

    def log_lines(self, text: str) -> list[str]:
        return [line for line in self.log_path.read_text().splitlines() if text in line]


def check_in_order(events: list[dict]) -> list[int]:
    """seqNos of first arrivals are 0..n, arrival order never goes back, a repeat is the same event."""
    first: dict[int, dict] = {}
    arrivals = []
    for e in events:
        arrivals.append(e["seqNo"])
        assert first.setdefault(e["seqNo"], e) == e, f"seqNo {e['seqNo']} arrived again with other contents"
    assert arrivals == sorted(arrivals), f"seqNos out of order: {arrivals}"
    assert sorted(first) == list(range(len(first))), f"seqNos {sorted(first)}"
    return arrivals


async def check_frames(csms: DevCsms, log_lines: list[str]) -> None:
    checked, problems = await trio.to_thread.run_sync(
        schema_problems, SID, list(csms.received), list(csms.sent), list(log_lines))
    assert checked and problems == []


def security_log(db_path: Path) -> list[dict]:
    """The security log's entries in the station's SQLite file (read-only), oldest first."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT value FROM records WHERE tbl = ? ORDER BY key", (SECURITY_LOG_TABLE,))
        return [json.loads(value) for (value,) in rows]
    finally:
        db.close()


def refused(result: dict) -> bool:
    info = result.get("attributeStatusInfo") or result.get("statusInfo") or {}
    return info.get("reasonCode") == "OutOfStorage"


async def test_a_full_disk_is_survived_and_nothing_is_lost(tmp_path):
    """tmpfs that fills up: once found by a SetVariables while idle, once during a session."""
    log_lines: list[str] = []
    csms = DevCsms(heartbeat_interval=60, log=log_lines.append)
    with tmpfs(tmp_path / "mnt", "8m") as mnt, trio.fail_after(TIME_LIMIT):
        async with trio.open_nursery() as nursery:
            await nursery.start(csms.serve)
            rig = Rig(tmp_path, csms, mnt / "station.db")
            try:
                await rig.start()
                # --- 1: idle; the SetVariables whose write finds the disk full is not confirmed
                filler = fill(mnt)
                mark = len(csms.received)
                with pytest.raises(CallError) as e:
                    await rig.set_offline_threshold(30)
                assert e.value.code == "InternalError" and "storage unavailable" in e.value.description
                await rig.memory_exhaustion(mark)
                for evse in TOKENS:
                    await rig.status(evse, "Unavailable", after=mark)
                assert refused(await rig.set_offline_threshold(31))          # now the station knows
                res = await csms.call(SID, "RequestStartTransaction", {
                    "evseId": 2, "remoteStartId": 1, "idToken": {"idToken": TOKENS[2], "type": "ISO14443"}})
                assert res["status"] == "Rejected" and refused(res)
                await rig.no_session_starts(1)
                mark = len(csms.received)
                filler.unlink()
                for evse in TOKENS:
                    await rig.status(evse, "Available", after=mark, timeout=RECOVERY)
                assert (await rig.set_offline_threshold(45))["attributeStatus"] == "Accepted"

                # --- 2: during a session (TxUpdatedInterval 1 s): its events keep flowing
                tx = await rig.start_session(1)
                await rig.wait_events(tx, 3, 0)
                filler = fill(mnt)
                mark = len(csms.received)
                await rig.memory_exhaustion(mark)
                await rig.status(2, "Unavailable", after=mark)
                await rig.wait_events(tx, 3, mark)                    # kept in memory, sent, in order
                res = await csms.call(SID, "ChangeAvailability", {"operationalStatus": "Inoperative"})
                assert res["status"] == "Rejected" and refused(res)
                assert rig.proc.returncode is None and csms.disconnects == [] and SID in csms.connected
                mark = len(csms.received)
                filler.unlink()
                await rig.status(2, "Available", after=mark, timeout=RECOVERY)
                await rig.wait_events(tx, 2, len(csms.received))
                rig.proc.kill()                                       # power loss right after
                await rig.proc.wait()
            finally:
                rig.kill_leftover()

            # nothing lost: the file holds the session as far as the CSMS got it, and both
            # MemoryExhaustion events are in the security log (A04.FR.03), stored once it could
            _, snapshots = read_database(rig.db)
            assert [e["type"] for e in security_log(rig.db)].count("MemoryExhaustion") == 2
            got = rig.events(tx)
            assert snapshots[1]["tx"]["id"] == tx
            assert snapshots[1]["tx"]["seq"] == max(e["seqNo"] for e in got) + 1
            mark = len(csms.received)
            await rig.start()
            ended = await csms.wait_for("TransactionEvent", station_id=SID, after=mark, timeout=WAIT,
                                        where=lambda p: p["eventType"] == "Ended")
            assert (tx_id(ended), ended["seqNo"], ended["transactionInfo"]["stoppedReason"]) == \
                (tx, snapshots[1]["tx"]["seq"], "PowerLoss")
            check_in_order(rig.events(tx))
            res = await csms.call(SID, "GetVariables", {"getVariableData": [OFFLINE_THRESHOLD]})
            assert res["getVariableResult"][0]["attributeValue"] == "45"
            assert await rig.stop() == 0
            nursery.cancel_scope.cancel()
    assert len(rig.log_lines(FAILED_LINE)) == 2 and len(rig.log_lines(RESTORED_LINE)) == 2
    assert "database or disk is full" in rig.log_lines(FAILED_LINE)[0]
    assert rig.log_lines("Traceback") == []
    await check_frames(csms, log_lines)


async def test_a_read_only_file_system_at_start_up_and_back_to_read_write(tmp_path):
    log_lines: list[str] = []
    csms = DevCsms(heartbeat_interval=60, log=log_lines.append)
    with tmpfs(tmp_path / "mnt", "8m") as mnt, trio.fail_after(TIME_LIMIT):
        async with trio.open_nursery() as nursery:
            await nursery.start(csms.serve)
            rig = Rig(tmp_path, csms, mnt / "station.db")
            try:
                await rig.start()
                assert await rig.stop() == 0
                remount(mnt, "ro")
                mark = len(csms.received)
                await rig.start()                     # from what the file holds
                await rig.memory_exhaustion(mark)
                for evse in TOKENS:
                    await rig.status(evse, "Unavailable", after=mark)
                assert refused(await rig.set_offline_threshold(31))
                await rig.no_session_starts(1)
                mark = len(csms.received)
                remount(mnt, "rw")
                for evse in TOKENS:
                    await rig.status(evse, "Available", after=mark, timeout=RECOVERY)
                tx = await rig.start_session(1)
                await rig.wait_events(tx, 2, 0)
                rig.proc.kill()
                await rig.proc.wait()
            finally:
                rig.kill_leftover()
                remount(mnt, "rw")
            # what the station kept while read-only was stored: the clean-stop mark of the first
            # run was deleted, so this kill is a power loss to the next start
            _, snapshots = read_database(rig.db)
            mark = len(csms.received)
            await rig.start()
            ended = await csms.wait_for("TransactionEvent", station_id=SID, after=mark, timeout=WAIT,
                                        where=lambda p: p["eventType"] == "Ended")
            assert (tx_id(ended), ended["seqNo"], ended["transactionInfo"]["stoppedReason"]) == \
                (tx, snapshots[1]["tx"]["seq"], "PowerLoss")
            check_in_order(rig.events(tx))
            assert await rig.stop() == 0
            nursery.cancel_scope.cancel()
    [line] = rig.log_lines(FAILED_LINE)
    assert "read-only file system" in line and "found at start-up" in line
    assert len(rig.log_lines(RESTORED_LINE)) == 1 and rig.log_lines("Traceback") == []
    await check_frames(csms, log_lines)


async def test_a_file_system_that_goes_read_only_under_the_station(tmp_path):
    """ext4 errors=remount-ro: the station goes on until it is stopped, says what it could not
    store, and starts again on the read-only file system."""
    log_lines: list[str] = []
    csms = DevCsms(heartbeat_interval=60, log=log_lines.append)
    with ext4_image(tmp_path / "fs.img", tmp_path / "ext4") as mnt, trio.fail_after(TIME_LIMIT):
        async with trio.open_nursery() as nursery:
            await nursery.start(csms.serve)
            rig = Rig(tmp_path, csms, mnt / "station.db")
            try:
                await rig.start()
                tx = await rig.start_session(1)
                await rig.wait_events(tx, 3, 0)
                mark = len(csms.received)
                ext4_error(mnt)
                await rig.memory_exhaustion(mark)
                await rig.status(2, "Unavailable", after=mark)
                await rig.wait_events(tx, 3, mark)
                check_in_order(rig.events(tx))
                assert refused(await rig.set_offline_threshold(31))
                assert rig.proc.returncode is None and csms.disconnects == []
                assert await rig.stop() == 0
                [lost] = rig.log_lines("storage: stopping with")
                assert "could not be stored" in lost and "they are lost" in lost
                mark = len(csms.received)
                await rig.start()                     # still read-only: from what the file holds
                await rig.memory_exhaustion(mark)
                assert await rig.stop() == 0
            finally:
                rig.kill_leftover()
            nursery.cancel_scope.cancel()
    lines = rig.log_lines(FAILED_LINE)
    assert len(lines) == 2 and all("read-only file system" in line for line in lines)
    assert rig.log_lines("Traceback") == []
