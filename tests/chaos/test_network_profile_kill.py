"""Chaos: SIGKILL of the REAL `evse run` process while it switches network profiles (B09/B10).

Two DevCsms on loopback, A (the TOML's slot 0) and B. Each round the CSMS the station is connected
to moves it to the other one: SetNetworkProfile slot 1 = B (when on A), SetVariables
NetworkConfigurationPriority ("1,0" to go to B, "0,1" back to A), Reset OnIdle; meanwhile the
process is killed (SIGKILL) at a random moment of that sequence: before, between or after the
writes, during the reboot. Oracle: the restarted station always connects again, to A or to B
(old or new settings, never none), and registers; after every round the stored profile of slot 1
is B's whole (never a half-written one) once it was accepted. ROUNDS rounds, each bounded in time.
The seed is EVSE_PROFILE_CHAOS_SEED (default DEFAULT_SEED), printed on a failure.
"""
from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

import trio

from devtools.dev_csms import DevCsms, StationDisconnected, CallError
from tests.chaos.harness import SID, config_text, start_station, wait_booted

ROUNDS = 6
DEFAULT_SEED = 20261208
ROUND_TIMEOUT = 25          # s: kill, restart, boot
KILL_WINDOW = 0.6           # s: the kill falls within this after the switch starts


def stored_slot_1(db: Path) -> str | None:
    """The NetworkConnectionProfile of slot 1 as stored (records table of adapters/sqlite_storage.py)."""
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT value FROM records WHERE tbl = 'network_profiles' AND key = '1'").fetchone()
    return row[0] if row else None


async def switch(csms: DevCsms, to_b: bool, url_b: str) -> None:
    """The CSMS's side of a switch; a kill may cut it anywhere."""
    try:
        if to_b:
            await csms.call(SID, "SetNetworkProfile", {"configurationSlot": 1, "connectionData": {
                "ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": url_b, "messageTimeout": 30,
                "securityProfile": 1, "ocppInterface": "Wired0"}}, timeout=5)
        await csms.call(SID, "SetVariables", {"setVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NetworkConfigurationPriority"},
             "attributeValue": "1,0" if to_b else "0,1"}]}, timeout=5)
        await csms.call(SID, "Reset", {"type": "OnIdle"}, timeout=5)
    except (StationDisconnected, CallError, trio.TooSlowError):
        pass


async def test_sigkill_during_a_network_profile_switch_leaves_a_station_that_connects(tmp_path):
    seed = int(os.environ.get("EVSE_PROFILE_CHAOS_SEED", DEFAULT_SEED))
    rng = random.Random(seed)
    a, b = DevCsms(), DevCsms()
    log = open(tmp_path / "station.log", "wb")
    proc = None
    history: list[str] = []
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(a.serve)
            await nursery.start(b.serve)
            config = tmp_path / "station.toml"
            config.write_text(config_text(a.url, {"OCPPCommCtrlr.NetworkProfileConnectionAttempts": 1}))
            proc = await start_station(config, log)
            with trio.fail_after(ROUND_TIMEOUT):
                await wait_booted(a, 0, ROUND_TIMEOUT)
            on = a
            for n in range(ROUNDS):
                marks = (len(a.received), len(b.received))
                delay = rng.uniform(0, KILL_WINDOW)
                history.append(f"round {n}: on {'A' if on is a else 'B'}, kill after {delay * 1000:.0f} ms")
                with trio.fail_after(ROUND_TIMEOUT):
                    async with trio.open_nursery() as round_nursery:
                        round_nursery.start_soon(switch, on, on is a, b.url)
                        await trio.sleep(delay)
                        proc.kill()
                        await proc.wait()
                    proc = await start_station(config, log)
                    # old or new settings, never none: it registers at A or at B
                    got = trio.Event()
                    found: list[DevCsms] = []

                    async def booted_at(csms: DevCsms, mark: int) -> None:
                        await csms.wait_for("BootNotification", station_id=SID, after=mark, timeout=ROUND_TIMEOUT)
                        found.append(csms)
                        got.set()

                    async with trio.open_nursery() as waiting:
                        waiting.start_soon(booted_at, a, marks[0])
                        waiting.start_soon(booted_at, b, marks[1])
                        await got.wait()
                        waiting.cancel_scope.cancel()
                    on = found[0]
                    await wait_booted(on, marks[0 if on is a else 1], ROUND_TIMEOUT)
                history[-1] += f" -> registered at {'A' if on is a else 'B'}"
                stored = stored_slot_1(tmp_path / "station.db")
                assert stored is None or b.url in stored, (stored, history)
            # the plan did move the station: some rounds ended at B, some back at A
            ends = {h.rsplit(" ", 1)[-1] for h in history}
            assert ends == {"A", "B"}, history
            nursery.cancel_scope.cancel()
    except BaseException as exc:
        exc.add_note(f"seed {seed}; " + "; ".join(history) + f"; log {tmp_path / 'station.log'}")
        raise
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
        log.close()
