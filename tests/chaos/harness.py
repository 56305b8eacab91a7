"""What the chaos tests share: the station's configuration, its process, the charging sessions
played through the sim control socket, and the oracles on the TransactionEvents the CSMS got.

The station runs as a real process (`python -m bootstrap.cli run --config ...`, sim hardware,
SQLite file, two EVSEs) against a DevCsms in the test process. A session is plug, card (the CSMS
accepts every card), the Started at the CSMS, EV charges, a while, unplug, maybe its Ended.

Oracles (`check_deliveries`), on the TransactionEvents the CSMS received (at-least-once: a repeat
by (transactionId, seqNo) must be the same event): per transaction the seqNos are 0..n, in order
of arrival (a repeat never comes after a later seqNo), one Started (0), one Ended (the last),
one EVSE, every Started has its Ended, no two transactions open at once on an EVSE. Every frame
the station sent is checked against the OCPP 2.0.1 schemas (`schema_check`, the conformance
rig's `schema_problems`).
"""
from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pytest
import trio

from devtools.dev_csms import DevCsms
from tests.conformance.conftest import schema_problems

SID = "CS-CHAOS-1"
EVSES = (1, 2)
TOKENS = {1: "CHAOSCARD01", 2: "CHAOSCARD02"}
POWERS_W = (3700, 7400, 11000, 22000)
COMMANDS = ("plug", "token", "ev_charge", "unplug")
SHOWN_PROBLEMS = 25


# [device_model] of every chaos station: TxUpdatedInterval 1 s, no reconnect back-off to speak of
DEVICE_MODEL: dict[str, int | str] = {
    "SampledDataCtrlr.TxUpdatedInterval": 1,
    "OCPPCommCtrlr.RetryBackOffWaitMinimum": 0,
    "OCPPCommCtrlr.RetryBackOffRandomRange": 1,
}


def config_text(url: str, device_model: dict[str, int | str] | None = None, storage: str = "station.db") -> str:
    """The station's configuration; `device_model` values ("Component.Variable" = value) are
    added to (or replace) DEVICE_MODEL; `storage` is the SQLite file's path."""
    values = {**DEVICE_MODEL, **(device_model or {})}
    return f"""
[station]
id = "{SID}"
evse_connectors = [1, 1]
[csms]
url = "{url}"
basic_auth_password = "0123456789abcdef"
[storage]
path = "{storage}"
[hardware]
adapter = "sim"
control_socket = "sim.sock"
[device_model]
""" + "".join(f'"{key}" = {json.dumps(value)}\n' for key, value in values.items())


def tx_id(payload: dict) -> str:
    return payload["transactionInfo"]["transactionId"]


def transaction_events(received: list[tuple[str, list]], after: int = 0) -> list[dict]:
    """Payloads of the TransactionEvents the station sent, from index `after` of `received`."""
    return [f[3] for sid, f in received[after:] if sid == SID and f[0] == 2 and f[2] == "TransactionEvent"]


async def start_station(config: Path, log: BinaryIO) -> trio.Process:
    """The real station process; its stderr (the log) goes to `log`."""
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "bootstrap.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=log)


async def wait_booted(csms: DevCsms, after: int, timeout: float) -> None:
    """Registered and every connector reported (received at index >= `after`); TooSlowError if not."""
    await csms.wait_for("BootNotification", station_id=SID, after=after, timeout=timeout)
    for evse in EVSES:
        await csms.wait_for("StatusNotification", station_id=SID, after=after,
                            where=lambda p, e=evse: p["evseId"] == e, timeout=timeout)


async def wait_drained(csms: DevCsms, timeout: float) -> list[str]:
    """Wait (bounded) until the CSMS has the Ended of every transaction it has a Started of;
    the transactions still without one."""
    with trio.move_on_after(timeout):
        while True:
            events = transaction_events(csms.received)
            started = {tx_id(e) for e in events if e["eventType"] == "Started"}
            ended = {tx_id(e) for e in events if e["eventType"] == "Ended"}
            if started <= ended:
                return []
            await trio.sleep(0.05)
    return sorted(started - ended)


async def wait_queue_empty(csms: DevCsms, timeout: float) -> bool:
    """GetTransactionStatus until messagesInQueue is false (the last CALLRESULTs processed too)."""
    with trio.move_on_after(timeout):
        while (await csms.call(SID, "GetTransactionStatus", {}))["messagesInQueue"]:
            await trio.sleep(0.05)
        return True
    return False


def read_database(db_path: Path) -> tuple[dict[str, str], dict[int, dict]]:
    """(queue records, transaction snapshots by EVSE) of the station's SQLite file, read-only."""
    queue: dict[str, str] = {}
    snapshots: dict[int, dict] = {}
    if not db_path.exists():
        return queue, snapshots
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "records" in tables:
            queue = dict(db.execute("SELECT key, value FROM records WHERE tbl = 'queue'"))
        if "kv" in tables:
            for key, value in db.execute("SELECT key, value FROM kv WHERE key LIKE 'tx:%'"):
                snapshots[int(key[3:])] = json.loads(value)
    finally:
        db.close()
    return queue, snapshots


# --- one charging session ---------------------------------------------------------------------------
@dataclass(eq=False)
class Session:
    life: int
    evse: int
    mark: int                           # index into csms.received when it began
    tx: str | None = None               # transactionId of its Started, once the CSMS got it
    unplug_sent: bool = False
    ended: dict | None = None           # its Ended, when the driver waited for it


Command = Callable[..., Awaitable[dict]]                               # command(cmd, **fields)
WaitEvent = Callable[[int, str, Callable[[dict], bool]], Awaitable[dict]]  # wait_event(after, what, where)


async def play_session(s: Session, rng: random.Random, command: Command, wait_event: WaitEvent, *,
                       charge: Callable[[], float], wait_ended: Callable[[], bool],
                       earlier: Container[str] = ()) -> None:
    """Plug, card, the Started at the CSMS, EV charges for charge() s, unplug, and the Ended at
    the CSMS if wait_ended(). `s` records what the CSMS confirmed as it goes. A Started of a
    transaction in `earlier` is not this session's (a repeat that arrives late)."""
    evse = s.evse
    await command("plug", evse=evse)
    if rng.random() < 0.3:
        await trio.sleep(rng.uniform(0.0, 0.2))
    await command("token", id_token=TOKENS[evse], evse=evse)
    started = await wait_event(
        s.mark, f"the Started on EVSE {evse} after plug + card",
        lambda p: p["eventType"] == "Started" and (p.get("evse") or {}).get("id") == evse
        and tx_id(p) not in earlier)
    s.tx = tx_id(started)
    await command("ev_charge", evse=evse, power_w=rng.choice(POWERS_W))
    await trio.sleep(charge())
    s.unplug_sent = True
    await command("unplug", evse=evse)
    if wait_ended():
        s.ended = await wait_event(
            s.mark, f"the Ended of {s.tx} (EVSE {evse}) after the unplug",
            lambda p, tx=s.tx: p["eventType"] == "Ended" and tx_id(p) == tx)


# --- the oracles ---------------------------------------------------------------------------------------
@dataclass
class Deliveries:
    """The TransactionEvents the CSMS received, by (transactionId, seqNo)."""
    first: dict[tuple[str, int], tuple[int, dict]] = field(default_factory=dict)  # -> (index, payload)
    firsts: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))  # first arrivals
    arrivals: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # repeats too
    evse_of: dict[str, int] = field(default_factory=dict)
    repeats: int = 0

    def ended(self, t: str) -> dict | None:
        return next((e for e in self.firsts[t] if e["eventType"] == "Ended"), None)


def check_deliveries(received: list[tuple[str, list]], p: list[str]) -> Deliveries:
    """The oracles of the module docstring on what the CSMS received; problems go to `p`."""
    d = Deliveries()
    for i, (sid, f) in enumerate(received):
        if sid != SID or f[0] != 2 or f[2] != "TransactionEvent":
            continue
        e = f[3]
        t, seq = tx_id(e), e["seqNo"]
        d.arrivals[t].append(seq)
        if (t, seq) in d.first:
            d.repeats += 1
            if e != d.first[(t, seq)][1]:
                p.append(f"{t} seqNo {seq} arrived again with other contents:\n    first {d.first[(t, seq)][1]}"
                         f"\n    again {e}")
        else:
            d.first[(t, seq)] = (i, e)
            d.firsts[t].append(e)
    for t, events in d.firsts.items():
        seqs = [e["seqNo"] for e in events]
        if d.arrivals[t] != sorted(d.arrivals[t]):
            p.append(f"{t}: seqNos arrived out of order (repeats included): {d.arrivals[t]}")
        if seqs != list(range(len(seqs))):
            p.append(f"{t}: seqNos (first arrivals, in arrival order) are {seqs}, not 0..{len(seqs) - 1}")
        types = [e["eventType"] for e in events]
        if types.count("Started") != 1 or events[0]["eventType"] != "Started":
            p.append(f"{t}: eventTypes {types}: not exactly one Started, first")
        if "Ended" not in types:
            p.append(f"{t}: never ended at the CSMS (events {list(zip(seqs, types))})")
        elif types.count("Ended") != 1 or types[-1] != "Ended":
            p.append(f"{t}: eventTypes {types}: not exactly one Ended, last")
        evses = {e["evse"]["id"] for e in events if e.get("evse")}
        if len(evses) != 1:
            p.append(f"{t}: EVSEs {sorted(evses)} (one expected)")
        if evses:
            d.evse_of[t] = min(evses)
    # no two transactions open at once on an EVSE (in order of first arrival)
    open_on: dict[int, str] = {}
    for i, e in sorted(d.first.values(), key=lambda x: x[0]):
        t = tx_id(e)
        evse = d.evse_of.get(t)
        if evse is None:
            continue
        if e["eventType"] == "Started":
            if open_on.get(evse):
                p.append(f"EVSE {evse}: {t} Started (frame {i}) while {open_on[evse]} had not ended")
            open_on[evse] = t
        elif e["eventType"] == "Ended" and open_on.get(evse) == t:
            del open_on[evse]
    return d


async def schema_check(csms: DevCsms, log_lines: list[str]) -> tuple[int, list[str]]:
    """(frames checked, problems) of every frame the station sent, against the OCPP 2.0.1 schemas."""
    checked, schema = await trio.to_thread.run_sync(
        schema_problems, SID, list(csms.received), list(csms.sent), list(log_lines))
    return checked, [f"schema: {s}" for s in schema]


def fail_on(problems: list[str], summary: str, log_path: Path) -> None:
    """Fail the test with the summary and the first problems, if there are any."""
    if problems:
        shown = "\n".join(f"  - {x}" for x in problems[:SHOWN_PROBLEMS])
        more = f"\n  ... and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        pytest.fail(f"{len(problems)} problem(s); {summary}\nstation log: {log_path}\n{shown}{more}",
                    pytrace=False)
