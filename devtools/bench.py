"""`make bench`: evse-stack side by side with the PyPI `ocpp` package, on loopback.

    python -m devtools.bench              # full run (about 40 s)
    python -m devtools.bench --quick      # fewer iterations (smoke test)
    python -m devtools.bench --only rtt   # only measurements whose key contains "rtt"

Prints one aligned table (p50 / p99 per side; ratio = ocpp p50 / evse-stack p50, so
> 1 means evse-stack is faster, or smaller for RSS) and a line about the machine.

Adding a row: write a function ``fn(counts: Counts) -> list[Row]`` and decorate it
with ``@measurement("key", "label")`` (``in_process=False`` if it starts processes,
so the smoke test skips it). `time_ops(op, n, warmup)` times a zero-argument
callable per call; `run_rtt(kinds, counts)` runs CSMS round trips against station
processes (kinds: "evse", "ocpp", the echo stations).

Measurements:

* rtt      CSMS -> station GetVariables CALL answered, as a CSMS sees it: from
           sending the CALL frame to having read the CALLRESULT. The station is
           a separate process: ours is the real `evse run` (StationRuntime,
           trio-websocket link, sim hardware, SQLite, log level WARNING); the ocpp
           side is an `ocpp.v201.ChargePoint` with an @on(GetVariables) handler
           on a `websockets` asyncio client (package defaults: schema validation
           on). Both talk to the same minimal CSMS in this process: `websockets`'
           sans-I/O ServerProtocol on a blocking socket (no event loop, no
           threads), so the harness adds as little as it can to either side. The
           two stations take turns (2 processes each) so that changing machine
           load does not favour one. Also: the station process's CPU time per
           round trip (from /proc/<pid>/task/*/schedstat; includes the kernel's
           loopback TCP work) and its RSS (VmRSS) after the run.
* rtt-transport  The same round trip against stations that only echo a canned
           CALLRESULT (no OCPP work): trio-websocket (our station's transport)
           vs websockets asyncio (the ocpp package's transport), and a blocking
           sans-I/O client = the floor of harness + loopback + kernel. Says how
           much of the rtt row is transport and how much is the station.
* build    Build + validate + encode an outbound TransactionEventRequest with 10
           sampled values: ours = construct the msgspec Structs and
           `OcppJEndpoint.send_call()` (encode, validate by typed decode, frame);
           ocpp = construct the package's dataclasses and do what its
           `ChargePoint.call()` does before sending: serialize_as_dict,
           snake_to_camel_case, remove_nones, `Call`, schema validation (the
           package's synchronous `_validate_payload`, i.e. without the
           thread-pool hop of its async `validate_payload`), `to_json()`.
* inbound  An inbound GetVariables CALL frame to the CALLRESULT text, in-process:
           ours = `OcppJEndpoint.receive()` + building the response Struct +
           `result_frame()`; ocpp = the synchronous work of its `_handle_call`:
           unpack, validate the request, camel_to_snake_case, the handler's
           call_result, serialize_as_dict, remove_nones, snake_to_camel_case,
           validate the response, to_json.
* station  `Station.frame_received()` for the GetVariables CALL (the whole domain:
           RPC + device model + response frame), ours only.
* remote-tx  The real station with the EV plugged (sim control socket), TxStartPoint
           PowerPathClosed, TxStopPoint Authorized, AuthorizeRemoteStart false: the CSMS
           sends RequestStartTransaction (evseId 1, idToken type Central) and times until
           the TransactionEvent(Started) frame arrives, then RequestStopTransaction until
           TransactionEvent(Ended); every CALL of the station is answered at once. 300
           cycles (30 with --quick) after 10 untimed ones. Includes the station's durable
           write (SQLite, synchronous=FULL) before each event goes out. Ours only: the
           ocpp package has no transaction model to do the same work.
* queue-replay  A station database holding 10,000 queued TransactionEvents (1,000 with
           --quick; Updated, 10 sampled values, one transaction, seqNo 1..n) written with
           the project's own DurableQueue.push + SqliteStorage.write_records; the station
           starts on it against the bench CSMS, which answers every CALL at once. Timed
           from sending the BootNotification's acceptance to answering the n-th
           TransactionEvent (one at a time: each is deleted from SQLite after its
           CALLRESULT before the next goes out). Checks seqNo order and an empty queue after.
* sqlite-event  In-process: `SqliteStorage.write_records` of the change a TransactionEvent
           makes (its queue record + the EVSE's transaction snapshot in kv, as
           Station/Charging produce it for a remote start) and, timed separately, of its
           delete; a real file in a temp dir, WAL, synchronous=FULL (the adapter's settings).
           Also the delete as the group commit does it before the next queued message goes
           out: `write_changes(..., durable=False)`, synchronous=NORMAL (docs/durability.md).
* startup  Spawn -> BootNotification: from starting the station process to its BootNotification
           frame read by the bench CSMS, for ours (`evse run`, sim), the ocpp package station
           and the minimal trio-websocket station (echo-trio); the kinds take turns, 10
           processes each (3 with --quick). Also the import time of what each imports
           (`python -X importtime`, the top-level modules' cumulative times summed, a fresh
           interpreter each; the project's .pyc files are compiled first, as an installed
           wheel has them).
* idle     CPU time (schedstat) of a booted station over 20 s (3 s with --quick) with nothing
           plugged and the CSMS silent (it answers pongs and Heartbeats only): ours vs the ocpp
           package station.
* composite  `Station.frame_received()` for GetCompositeSchedule of EVSE 1 over 24 h (A) with
           1, 10 and 100 installed profiles (TxDefaultProfiles on EVSE 1 and
           ChargingStationMaxProfiles in turn, stack levels 0..8, each valid for its own 4 h of
           the day with a period every hour: all bear on the window), whole domain, ours only.
           At most 1,000 timed per row.
* setprofile  SetChargingProfile round trips against the real station process (`evse run`),
           like the rtt row: a TxDefaultProfile on EVSE 1 replacing itself (same id), from
           sending the CALL to reading the CALLRESULT; includes the K01 checks, the EVSE's
           limit computed again and the SQLite write before the answer. Ours only.
* hardware The real adapters of openevse-rev2 on an emulated board (devtools.emulators.rig:
           ptys, the emulators served by a trio loop in a thread of the bench process) and
           a station process (`evse run`) against the bench CSMS. Per session a new card on
           the PN532 -> AuthorizeRequest on the wire (the reader polls every 0.1 s, so this
           is mostly the poll phase); then, authorized, the EV plugs in asking for energy
           (pilot B then C) -> the controller emulator has received `S4 0` and `FE` (the
           power path closed); unplug. Also Sdm630Meter.read in-process against the SDM630
           emulator (9600 baud configured, but a pty does not pace bytes: the time is the
           three request/answer exchanges and their 3.5-character RTU gaps), and the
           station process's RSS after the sessions. Ours only.
* firmware UpdateFirmware -> FirmwareStatusNotification(Installed) on the wire, the real station
           (`evse run`, sim installer) against the bench CSMS: the image (a 1 MB sim image, signed
           with ECDSA P-256 SHA-256 by a development manufacturer whose root is installed in the
           station's certificate store) served over HTTP on loopback; includes the download, the
           signature check, the install, the in-process reboot with its reconnect and new
           BootNotification, and every status stored before it is sent. 5 updates (2 with
           --quick), one after the other, each to a new version. Ours only.
* certificates  InstallCertificate round trips against the real station process (profile 1,
           its certificate store on files beside its SQLite file): each a new self-signed CSMS
           root (parsed, checked, written and fsynced, the CA bundle rewritten, the listing read
           back before the answer), deleted again untimed; then GetInstalledCertificateIds
           (all types) with 10 roots installed (answered from the station's catalogue). Ours only.
* tls-connect  The real station process rebooted by Reset (Immediate, a soft reboot) n times;
           per reboot, from the bench CSMS accepting the station's TCP connection to reading its
           BootNotification: security profile 3 (TLS 1.3 on the blocking server socket, the
           station's client certificate required and checked, EC P-256 certificates made here)
           next to profile 1 (ws://, Basic auth). Ours only.
* transfer File downloads over loopback with the product's FileTransfer (bootstrap.compose's
           file_transfers: httpx for HTTP, ftplib in a thread for FTP) in a process of its own
           (`--download URL DEST`), from the project's loopback servers (devtools.file_servers)
           in this process: throughput of a 200 MB image (20 MB with --quick) in MB/s (10^6
           bytes/s, from the first request to the renamed, fsynced file, SHA-256 checked) and the
           downloading process's peak RSS (ru_maxrss) for 20 MB and 200 MB (2 / 20 MB with
           --quick): streaming to disk, it must not grow with the size. Ours only.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import math
import os
import platform
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devtools.toml_text import toml_value

REPO = Path(__file__).resolve().parent.parent
SUBPROTOCOL = "ocpp2.0.1"
STATION_ID = "CS-BENCH-1"
PASSWORD = "0123456789abcdef"
START_TIMEOUT = 20.0      # s: a station process to connect and finish booting
IO_TIMEOUT = 10.0         # s: any single socket wait
TS = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
TS_TEXT = "2026-01-01T12:00:00Z"

now_ns = time.perf_counter_ns


# --------------------------------------------------------------------------- statistics / rows


@dataclasses.dataclass(frozen=True)
class Counts:
    rtt_warmup: int = 200
    rtt_n: int = 2000
    micro_warmup: int = 500
    micro_n: int = 5000


FULL = Counts()
QUICK = Counts(rtt_warmup=20, rtt_n=200, micro_warmup=20, micro_n=200)


@dataclasses.dataclass(frozen=True)
class Stats:
    """Per-operation times in nanoseconds."""

    n: int
    p50: float
    p99: float
    mean: float

    @classmethod
    def of(cls, samples_ns: list[int]) -> "Stats":
        if not samples_ns:
            raise ValueError("no samples")
        s = sorted(samples_ns)
        n = len(s)

        def pct(q: float) -> float:     # nearest rank
            return float(s[min(n - 1, max(0, math.ceil(q * n) - 1))])

        return cls(n, pct(0.50), pct(0.99), sum(s) / n)


@dataclasses.dataclass(frozen=True)
class Row:
    """One table row. ours/theirs: Stats (times) or a plain number in `unit`."""

    label: str
    ours: Stats | float | None
    theirs: Stats | float | None = None
    unit: str = "time"          # "time" or e.g. "MiB"

    def ratio(self) -> float | None:
        a, b = _main_value(self.ours), _main_value(self.theirs)
        if a is None or b is None or a <= 0:
            return None
        return b / a


def _main_value(v: Stats | float | None) -> float | None:
    if v is None:
        return None
    return v.p50 if isinstance(v, Stats) else float(v)


@dataclasses.dataclass(frozen=True)
class Measurement:
    key: str
    label: str
    fn: Callable[[Counts], list[Row]]
    in_process: bool
    order: float


REGISTRY: list[Measurement] = []


def measurement(key: str, label: str, *, in_process: bool = True, order: float | None = None):
    """Register a measurement: fn(counts) -> list[Row]. Rows print by `order` (default: after
    the others, in registration order)."""

    def deco(fn: Callable[[Counts], list[Row]]) -> Callable[[Counts], list[Row]]:
        REGISTRY.append(Measurement(key, label, fn, in_process, 100 + len(REGISTRY) if order is None else order))
        return fn

    return deco


def time_ops(op: Callable[[], object], n: int, warmup: int) -> Stats:
    """Time `op()` one call at a time (perf_counter_ns around each), GC off while timing."""
    for _ in range(warmup):
        op()
    samples = [0] * n
    gc_was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for i in range(n):
            t0 = now_ns()
            op()
            samples[i] = now_ns() - t0
    finally:
        if gc_was:
            gc.enable()
    return Stats.of(samples)


# --------------------------------------------------------------------------- formatting


def _fmt_time(ns: float) -> str:
    us = ns / 1000.0
    if us < 10:
        return f"{us:.2f} µs"
    if us < 1000:
        return f"{us:.1f} µs"
    return f"{us / 1000:.2f} ms"


def _cells(v: Stats | float | None, unit: str) -> tuple[str, str]:
    if v is None:
        return "-", "-"
    if isinstance(v, Stats):
        return _fmt_time(v.p50), _fmt_time(v.p99)
    return f"{v:.1f} {unit}", "-"


def format_table(rows: list[Row]) -> str:
    header = ("measurement", "evse-stack p50", "p99", "ocpp pkg p50", "p99", "ratio")
    lines = [header]
    for r in rows:
        ratio = r.ratio()
        lines.append((r.label, *_cells(r.ours, r.unit), *_cells(r.theirs, r.unit),
                      "-" if ratio is None else f"{ratio:.1f}x"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def fmt(line: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))

    out = [fmt(lines[0]), "  ".join("-" * w for w in widths)]
    out += [fmt(line) for line in lines[1:]]
    return "\n".join(out)


def machine_line() -> str:
    import msgspec
    import ocpp
    import trio
    import trio_websocket
    import websockets

    try:
        from importlib.metadata import version
        ocpp_version = version("ocpp")
    except Exception:
        ocpp_version = getattr(ocpp, "__version__", "?")
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"machine: Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}; "
            f"trio {trio.__version__}, trio-websocket {trio_websocket.__version__}, "
            f"msgspec {msgspec.__version__}, websockets {websockets.__version__}, ocpp {ocpp_version}")


# --------------------------------------------------------------------------- message builders


# 10 sampled values of one meter reading: (measurand, phase, location, unit, value)
SAMPLES: tuple[tuple[str, str | None, str, str, float], ...] = (
    ("Energy.Active.Import.Register", None, "Outlet", "Wh", 12345.6),
    ("Power.Active.Import", None, "Outlet", "W", 10950.0),
    ("Current.Import", "L1", "Outlet", "A", 15.9),
    ("Current.Import", "L2", "Outlet", "A", 16.0),
    ("Current.Import", "L3", "Outlet", "A", 15.8),
    ("Voltage", "L1-N", "Outlet", "V", 229.7),
    ("Voltage", "L2-N", "Outlet", "V", 230.4),
    ("Voltage", "L3-N", "Outlet", "V", 231.0),
    ("Frequency", None, "Outlet", "Hz", 50.01),
    ("SoC", None, "EV", "Percent", 57.0),
)
TX_ID = "3f2a9c1e-0b7d-4e55-9a61-7c2d8e4b1f00"


def build_ours_transaction_event():
    """The TransactionEventRequest (10 sampled values) as domain.messages Structs."""
    from domain import messages as m

    sv = [
        m.SampledValue(
            value=value, context=m.ReadingContext.Sample_Periodic, measurand=m.Measurand(measurand),
            phase=None if phase is None else m.Phase(phase), location=m.Location(location),
            unit_of_measure=m.UnitOfMeasure(unit=unit, multiplier=0),
        )
        for measurand, phase, location, unit, value in SAMPLES
    ]
    return m.TransactionEventRequest(
        event_type=m.TransactionEvent.Updated, timestamp=TS, trigger_reason=m.TriggerReason.MeterValuePeriodic,
        seq_no=7, transaction_info=m.Transaction(transaction_id=TX_ID, charging_state=m.ChargingState.Charging),
        evse=m.EVSE(id=1, connector_id=1),
        meter_value=[m.MeterValue(timestamp=TS, sampled_value=sv)],
    )


def build_ocpp_transaction_event():
    """The same request as the `ocpp` package's v201 dataclasses."""
    from ocpp.v201 import call, datatypes

    sv = [
        datatypes.SampledValueType(
            value=value, context="Sample.Periodic", measurand=measurand, phase=phase, location=location,
            unit_of_measure=datatypes.UnitOfMeasureType(unit=unit, multiplier=0),
        )
        for measurand, phase, location, unit, value in SAMPLES
    ]
    return call.TransactionEvent(
        event_type="Updated", timestamp=TS_TEXT, trigger_reason="MeterValuePeriodic", seq_no=7,
        transaction_info=datatypes.TransactionType(transaction_id=TX_ID, charging_state="Charging"),
        evse=datatypes.EVSEType(id=1, connector_id=1),
        meter_value=[datatypes.MeterValueType(timestamp=TS_TEXT, sampled_value=sv)],
    )


def ours_transaction_event_op() -> Callable[[], str]:
    """One op = build the Structs + OcppJEndpoint.send_call() (encode, validate, frame)."""
    from domain.ocppj import OcppJEndpoint

    ep = OcppJEndpoint(supported_actions=())
    send_call, forget = ep.send_call, ep.connection_lost

    def op() -> str:
        frame = send_call(build_ours_transaction_event(), 0.0)
        forget()    # one call outstanding at a time: make room for the next op
        return frame

    return op


def ocpp_transaction_event_op() -> Callable[[], str]:
    """One op = build the dataclasses + what ChargePoint.call() does up to the send."""
    from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
    from ocpp.messages import Call, _validate_payload

    def op() -> str:
        payload = build_ocpp_transaction_event()
        msg = Call(unique_id=str(uuid.uuid4()), action=type(payload).__name__,
                   payload=remove_nones(snake_to_camel_case(serialize_as_dict(payload))))
        _validate_payload(msg, "2.0.1")
        return msg.to_json()

    return op


GET_VARIABLES_PAYLOAD = ('{"getVariableData":[{"component":{"name":"OCPPCommCtrlr"},'
                         '"variable":{"name":"HeartbeatInterval"}}]}')


def get_variables_frame(message_id: str) -> str:
    return f'[2,"{message_id}","GetVariables",{GET_VARIABLES_PAYLOAD}]'


def ours_inbound_op() -> Callable[[], str]:
    """One op = OcppJEndpoint.receive() + the response Struct + result_frame()."""
    from domain import messages as m
    from domain.ocppj import IncomingCall, OcppJEndpoint

    ep = OcppJEndpoint(supported_actions=("GetVariables",))
    frame = get_variables_frame(str(uuid.uuid4()))
    receive, result_frame = ep.receive, ep.result_frame
    accepted = m.GetVariableStatus.Accepted

    def op() -> str:
        ev = receive(frame, 0.0)
        if type(ev) is not IncomingCall:
            raise AssertionError(f"unexpected {ev!r}")
        d = ev.request.get_variable_data[0]
        response = m.GetVariablesResponse(get_variable_result=[m.GetVariableResult(
            attribute_status=accepted, attribute_value="60", component=d.component, variable=d.variable)])
        return result_frame(ev.message_id, response)

    return op


def ocpp_inbound_op() -> Callable[[], str]:
    """One op = the synchronous part of ocpp's ChargePoint._handle_call for GetVariables."""
    from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
    from ocpp.messages import _validate_payload, unpack
    from ocpp.v201 import call_result

    frame = get_variables_frame(str(uuid.uuid4()))

    def handler(get_variable_data, **_):
        d = get_variable_data[0]
        return call_result.GetVariables(get_variable_result=[{
            "attribute_status": "Accepted", "attribute_value": "60",
            "component": d["component"], "variable": d["variable"]}])

    def op() -> str:
        msg = unpack(frame)
        _validate_payload(msg, "2.0.1")
        response = handler(**camel_to_snake_case(msg.payload))
        result = msg.create_call_result(snake_to_camel_case(remove_nones(serialize_as_dict(response))))
        _validate_payload(result, "2.0.1")
        return result.to_json()

    return op


def booted_station():
    """A domain Station (no I/O) that is linked up, Accepted and has nothing left to send."""
    from domain.clock import StationClock
    from domain.device_model import DeviceModel
    from bootstrap.definitions import load_definitions
    from domain.effects import Send
    from domain.station import Station, StationInfo

    dm = DeviceModel(load_definitions([1], station_id=STATION_ID, security_profile=1), {})
    station = Station(info=StationInfo("ACME", "Bench"), evse_connectors=[1], device_model=dm,
                      clock=StationClock(0.0, TS))
    effects = station.link_up(0.0)
    for _ in range(100):
        calls = [json.loads(e.frame) for e in effects if isinstance(e, Send)]
        calls = [f for f in calls if f[0] == 2]
        if not calls:
            break
        f = calls[0]
        payload = ({"currentTime": TS_TEXT, "interval": 3600, "status": "Accepted"}
                   if f[2] == "BootNotification" else
                   {"currentTime": TS_TEXT} if f[2] == "Heartbeat" else {})
        effects = station.frame_received(json.dumps([3, f[1], payload]), 0.0)
    return station


def ours_station_op() -> Callable[[], object]:
    station = booted_station()
    frame = get_variables_frame(str(uuid.uuid4()))
    frame_received = station.frame_received

    def op():
        effects = frame_received(frame, 1.0)
        if len(effects) != 1 or not effects[0].frame.startswith("[3,"):
            raise AssertionError(f"unexpected effects {effects!r}")
        return effects

    return op


def check_same_transaction_event() -> None:
    """Both builders produce the same TransactionEvent payload (a sanity check)."""
    ours = json.loads(ours_transaction_event_op()())
    theirs = json.loads(ocpp_transaction_event_op()())
    if ours[0] != 2 or ours[2:] != theirs[2:]:
        raise AssertionError(f"payloads differ:\n{ours}\n{theirs}")


# --------------------------------------------------------------------------- in-process rows


@measurement("build", "build+validate+encode TransactionEvent (10 sampled values)", order=20)
def measure_build(counts: Counts) -> list[Row]:
    check_same_transaction_event()
    ours = time_ops(ours_transaction_event_op(), counts.micro_n, counts.micro_warmup)
    theirs = time_ops(ocpp_transaction_event_op(), counts.micro_n, counts.micro_warmup)
    return [Row("build+validate+encode TransactionEvent (10 sampled values)", ours, theirs)]


@measurement("inbound", "inbound GetVariables CALL -> CALLRESULT text (in-process)", order=30)
def measure_inbound(counts: Counts) -> list[Row]:
    ours = time_ops(ours_inbound_op(), counts.micro_n, counts.micro_warmup)
    theirs = time_ops(ocpp_inbound_op(), counts.micro_n, counts.micro_warmup)
    return [Row("inbound GetVariables: receive()+result_frame() vs ocpp _handle_call work", ours, theirs)]


@measurement("station", "Station.frame_received(GetVariables) (whole domain, in-process)", order=40)
def measure_station(counts: Counts) -> list[Row]:
    ours = time_ops(ours_station_op(), counts.micro_n, counts.micro_warmup)
    return [Row("Station.frame_received(GetVariables), whole domain", ours, None)]


# --------------------------------------------------------------------------- smart charging (issue 18)


COMPOSITE_PROFILES = (1, 10, 100)       # installed charging profiles of the GetCompositeSchedule rows
COMPOSITE_N_MAX = 1000                  # timed GetCompositeSchedules per row at most (100 profiles: ms each)


def bench_profiles(n: int) -> list[tuple[int, dict]]:
    """`n` (<= 100, Entries[ChargingProfiles]) installable profiles as (evseId, chargingProfile)
    that all bear on EVSE 1's next 24 h: TxDefaultProfiles on EVSE 1 and ChargingStationMaxProfiles
    on 0 in turn, stackLevels 0..8, each valid for its own 4 h of the day (so none duplicates
    another: K01.FR.06), Absolute from the start of its window with a period every hour."""
    out = []
    for i in range(n):
        purpose, evse = (("TxDefaultProfile", 1), ("ChargingStationMaxProfile", 0))[i % 2]
        j = i // 2
        window = (j // 9) * 4 * 3600
        start = datetime.fromtimestamp(TS.timestamp() + window, timezone.utc)
        end = datetime.fromtimestamp(TS.timestamp() + window + 4 * 3600, timezone.utc)
        text = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
        periods = [{"startPeriod": h * 3600, "limit": float(6 + (i + h) % 27)} for h in range(4)]
        out.append((evse, {"id": i + 1, "stackLevel": j % 9, "chargingProfilePurpose": purpose,
                           "chargingProfileKind": "Absolute", "validFrom": text(start), "validTo": text(end),
                           "chargingSchedule": [{"id": 1, "startSchedule": text(start), "chargingRateUnit": "A",
                                                 "chargingSchedulePeriod": periods}]}))
    return out


def composite_station_op(n_profiles: int) -> Callable[[], object]:
    """One op = Station.frame_received(GetCompositeSchedule of EVSE 1 over 24 h, in A) with
    `n_profiles` installed (through SetChargingProfile, each checked Accepted)."""
    from domain.effects import Send

    station = booted_station()
    for i, (evse, profile) in enumerate(bench_profiles(n_profiles)):
        frame = json.dumps([2, f"p{i}", "SetChargingProfile", {"evseId": evse, "chargingProfile": profile}])
        answers = [f for e in station.frame_received(frame, 0.5) if isinstance(e, Send)
                   and (f := json.loads(e.frame))[0] == 3 and f[1] == f"p{i}"]
        if not answers or answers[0][2].get("status") != "Accepted":
            raise AssertionError(f"SetChargingProfile {profile['id']}: {answers}")
    frame = json.dumps([2, "gcs", "GetCompositeSchedule", {"evseId": 1, "duration": 86_400, "chargingRateUnit": "A"}])
    frame_received = station.frame_received

    def op():
        effects = frame_received(frame, 1.0)
        if len(effects) != 1 or not effects[0].frame.startswith('[3,"gcs",{"status":"Accepted"'):
            raise AssertionError(f"unexpected effects {effects!r}")
        return effects

    return op


@measurement("composite", "GetCompositeSchedule over 24 h, 1/10/100 profiles (whole domain, in-process)", order=45)
def measure_composite(counts: Counts) -> list[Row]:
    n = min(counts.micro_n, COMPOSITE_N_MAX)
    return [Row(f"Station.frame_received(GetCompositeSchedule 24 h), {k} profile{'s' if k > 1 else ''}",
                time_ops(composite_station_op(k), n, min(counts.micro_warmup, n // 10)), None)
            for k in COMPOSITE_PROFILES]


# --------------------------------------------------------------------------- the bench CSMS


class Closed(ConnectionError):
    """The station closed the WebSocket (or the TCP connection)."""


class BenchCsms:
    """A minimal CSMS for one station connection: `websockets`' sans-I/O ServerProtocol on a
    blocking socket. Answers the station's CALLs (BootNotification Accepted, Heartbeat,
    anything else {}) and times CALLs of its own."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls                       # a server context: wss:// (security profiles 2, 3)
        self.accepted_ns = 0                 # when the last TCP connection was accepted
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self.port = self._listener.getsockname()[1]
        self._sock: socket.socket | None = None
        self._proto = None
        self._messages: deque[str] = deque()
        self._fragments: list[bytes] = []
        self.station_calls: list[str] = []   # actions of the CALLs the station sent
        self.path = ""

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls is not None else 'ws'}://127.0.0.1:{self.port}/ocpp"

    def drop(self) -> None:
        """Forget the current connection (the station closed it), keep listening."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock, self._messages, self._fragments = None, deque(), []

    def close(self) -> None:
        for s in (self._sock, self._listener):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        self._sock = None

    def accept(self, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
        """Wait for the station's connection and complete the opening handshake."""
        from websockets.http11 import Request
        from websockets.server import ServerProtocol
        from websockets.typing import Subprotocol

        deadline = time.monotonic() + timeout
        self._listener.settimeout(0.2)
        while True:
            try:
                sock, _ = self._listener.accept()
                self.accepted_ns = now_ns()
                break
            except TimeoutError:
                if not alive():
                    raise RuntimeError("the station process exited before connecting") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no station connected within {timeout:g} s") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(IO_TIMEOUT)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True)     # the TLS handshake
        self._sock = sock
        self._proto = proto = ServerProtocol(subprotocols=[Subprotocol(SUBPROTOCOL)], max_size=1 << 20)
        while True:
            self._feed()
            requests = [e for e in proto.events_received() if isinstance(e, Request)]
            if requests:
                break
        request = requests[0]
        self.path = request.path
        response = proto.accept(request)
        proto.send_response(response)
        self._flush()
        if response.status_code != 101 or response.headers.get("Sec-WebSocket-Protocol") != SUBPROTOCOL:
            raise RuntimeError(f"WebSocket handshake failed: {response.status_code} {response.headers}")

    # -- frames ------------------------------------------------------------------------
    def _flush(self) -> None:
        data = self._proto.data_to_send()
        if data:
            self._sock.sendall(b"".join(data))

    def _feed(self) -> None:
        data = self._sock.recv(262144)
        if not data:
            self._proto.receive_eof()
            raise Closed("connection closed by the station")
        self._proto.receive_data(data)

    def send(self, text: str) -> None:
        self._proto.send_text(text.encode())
        self._sock.sendall(b"".join(self._proto.data_to_send()))

    def recv(self) -> str:
        """The next text message (pings are answered by the protocol)."""
        from websockets.frames import Opcode

        messages = self._messages
        while not messages:
            self._feed()
            for frame in self._proto.events_received():
                op = frame.opcode
                if op is Opcode.TEXT or op is Opcode.CONT or op is Opcode.BINARY:
                    self._fragments.append(frame.data)
                    if frame.fin:
                        data = b"".join(self._fragments)
                        self._fragments.clear()
                        messages.append(data.decode())
                elif op is Opcode.CLOSE:
                    self._flush()
                    raise Closed("the station closed the WebSocket")
            self._flush()   # pongs, close replies
        return messages.popleft()

    # -- OCPP ------------------------------------------------------------------------
    def answer_station_call(self, frame: list) -> None:
        action = frame[2]
        self.station_calls.append(action)
        if action == "BootNotification":
            payload = {"currentTime": _utc_now(), "interval": 3600, "status": "Accepted"}
        elif action == "Heartbeat":
            payload = {"currentTime": _utc_now()}
        else:
            payload = {}
        self.send(json.dumps([3, frame[1], payload], separators=(",", ":")))

    def serve_until_quiet(self, quiet: float, timeout: float) -> None:
        """Answer the station's CALLs until a BootNotification was answered and nothing has
        arrived for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while True:
            now = time.monotonic()
            if "BootNotification" in self.station_calls and now - last >= quiet:
                return
            if now > deadline:
                raise TimeoutError(f"station not booted and quiet within {timeout:g} s "
                                   f"(calls seen: {self.station_calls})")
            self._sock.settimeout(max(0.01, min(quiet, deadline - now)))
            try:
                text = self.recv()
            except TimeoutError:
                continue
            finally:
                self._sock.settimeout(IO_TIMEOUT)
            last = time.monotonic()
            frame = json.loads(text)
            if frame[0] == 2:
                self.answer_station_call(frame)

    def time_calls(self, n: int, warmup: int,
                   cpu: Callable[[], int | None] = lambda: None) -> tuple[list[int], int | None]:
        """Send GetVariables CALLs one at a time (after `warmup` untimed ones); returns the round
        trip ns per call and the difference of cpu() over the timed calls (None if unknown)."""
        samples = [0] * n
        cpu0: int | None = None
        reply = ""
        send, recv = self.send, self.recv
        gc_was = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            for i in range(-warmup, n):
                if i == 0:
                    cpu0 = cpu()
                mid = f"b{i + warmup}"
                frame = get_variables_frame(mid)
                head = f'[3,"{mid}"'
                t0 = now_ns()
                send(frame)
                while True:
                    reply = recv()
                    if reply.startswith(head):
                        break
                    self._other(reply, mid)
                t1 = now_ns()
                if i >= 0:
                    samples[i] = t1 - t0
            cpu1 = cpu()
        finally:
            if gc_was:
                gc.enable()
        result = json.loads(reply)
        res = result[2]["getVariableResult"][0]
        if res["attributeStatus"] != "Accepted" or not res.get("attributeValue"):
            raise AssertionError(f"unexpected GetVariables result: {reply}")
        return samples, (None if cpu0 is None or cpu1 is None else cpu1 - cpu0)

    def _other(self, text: str, waiting_for: str) -> None:
        frame = json.loads(text)
        if frame[0] == 2:
            self.answer_station_call(frame)     # e.g. a Heartbeat in the middle of the run
        else:
            raise AssertionError(f"unexpected frame while waiting for {waiting_for}: {text[:300]}")

    def finish(self, timeout: float) -> None:
        """Answer until the station closes (used while it shuts down)."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(OSError, Closed, TimeoutError):
            while time.monotonic() < deadline:
                self._sock.settimeout(max(0.01, deadline - time.monotonic()))
                frame = json.loads(self.recv())
                if frame[0] == 2:
                    self.answer_station_call(frame)


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- station processes


def rss_mib(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return None


def _evse_command() -> list[str]:
    script = Path(sys.executable).parent / "evse"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "bootstrap.cli"]


def write_station_config(folder: Path, url: str, device_model: dict[str, object] | None = None,
                         hardware_toml: str | None = None, csms_toml: str = "") -> Path:
    """The station's config file in `folder`; `device_model`: more [device_model] values
    ("Component.Variable" -> value), e.g. {"TxCtrlr.TxStopPoint": "Authorized"};
    `hardware_toml`: a [hardware] table instead of the simulator (an emulated board);
    `csms_toml`: more [csms] lines (security_profile, the TLS files)."""
    path = folder / "station.toml"
    hardware = hardware_toml or '[hardware]\ncontrol_socket = "sim.sock"\n'

    extra = "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in (device_model or {}).items())
    path.write_text(f"""\
[station]
id = "{STATION_ID}"
vendor_name = "ACME"
model = "Bench-1"
evse_connectors = [1]

[csms]
url = "{url}"
basic_auth_password = "{PASSWORD}"
{csms_toml}
[storage]
path = "station.db"

[log]
level = "WARNING"

[device_model]
"OCPPCommCtrlr.RetryBackOffWaitMinimum" = 0
"OCPPCommCtrlr.RetryBackOffRandomRange" = 1
{extra}
{hardware}""")
    return path


@contextlib.contextmanager
def station_process(kind: str, folder: Path, csms: BenchCsms, device_model: dict[str, object] | None = None,
                    hardware_toml: str | None = None, csms_toml: str = "") -> Iterator[subprocess.Popen]:
    """Start a station process ("evse" or "ocpp") connected to `csms`; stop it on exit.
    `device_model`, `hardware_toml`: for the evse station's config (write_station_config)."""
    url = f"{csms.url}/{STATION_ID}"
    if kind == "evse":
        config = write_station_config(folder, csms.url, device_model, hardware_toml, csms_toml)
        cmd = _evse_command() + ["run", "--config", str(config), "--log-level", "WARNING"]
    elif kind == "ocpp":
        cmd = [sys.executable, "-m", "devtools.bench", "--ocpp-station", url]
    elif kind in ECHO_STATIONS:
        cmd = [sys.executable, "-m", "devtools.bench", "--echo-station", kind, url]
    else:
        raise ValueError(f"unknown station kind {kind!r}")
    log_path = folder / f"{kind}-station.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        yield proc
    except BaseException:
        with contextlib.suppress(OSError):
            sys.stderr.write(f"--- {kind} station log ({log_path}):\n{log_path.read_text()[-3000:]}\n")
        raise
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            if kind == "evse":
                csms.finish(timeout=3.0)    # let it close the WebSocket cleanly
        csms.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def cpu_ns(pid: int) -> int | None:
    """CPU time of all threads of `pid` so far, in ns (/proc/<pid>/task/*/schedstat)."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                total += int((task / "schedstat").read_text().split()[0])
    except OSError:
        return None
    return total


@dataclasses.dataclass(frozen=True)
class RttResult:
    stats: Stats
    rss_mib: float | None           # station process RSS after the (last) run
    cpu_us_per_call: float | None   # station process CPU time per timed round trip


def run_rtt_once(kind: str, n: int, warmup: int) -> tuple[list[int], float | None, int | None]:
    """One station process of `kind`: (round trip samples ns, RSS MiB, CPU ns over the samples)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
        csms = BenchCsms()
        with station_process(kind, Path(tmp), csms) as proc:
            csms.accept(START_TIMEOUT, alive=lambda: proc.poll() is None)
            if not csms.path.endswith("/" + STATION_ID):
                raise AssertionError(f"station connected to {csms.path!r}")
            csms.serve_until_quiet(quiet=0.3, timeout=START_TIMEOUT)
            samples, cpu = csms.time_calls(n, warmup, cpu=lambda: cpu_ns(proc.pid))
            rss = rss_mib(proc.pid)
    return samples, rss, cpu


def run_rtt(kinds: tuple[str, ...], counts: Counts, rounds: int = 2) -> dict[str, RttResult]:
    """Round trips of CSMS -> station GetVariables for each station kind. The kinds take turns
    (`rounds` processes each, counts.rtt_n round trips in all), so that a change in the
    machine's load during the bench does not favour one side."""
    samples: dict[str, list[int]] = {k: [] for k in kinds}
    cpu: dict[str, int | None] = dict.fromkeys(kinds, 0)
    rss: dict[str, float | None] = dict.fromkeys(kinds)
    per_round = max(1, counts.rtt_n // rounds)
    for _ in range(rounds):
        for kind in kinds:
            got, rss[kind], used = run_rtt_once(kind, per_round, counts.rtt_warmup)
            samples[kind] += got
            cpu[kind] = None if used is None or cpu[kind] is None else cpu[kind] + used
    return {k: RttResult(Stats.of(samples[k]), rss[k],
                         None if cpu[k] is None else cpu[k] / len(samples[k]) / 1000.0) for k in kinds}


@measurement("rtt", "CSMS->station GetVariables CALL answered (loopback, station process)",
             in_process=False, order=10)
def measure_rtt(counts: Counts) -> list[Row]:
    r = run_rtt(("evse", "ocpp"), counts)
    ours, theirs = r["evse"], r["ocpp"]
    return [
        Row("CSMS->station GetVariables round trip (station process)", ours.stats, theirs.stats),
        Row("  station process CPU per round trip (schedstat)", ours.cpu_us_per_call, theirs.cpu_us_per_call,
            unit="µs"),
        Row("  station process RSS after the round trips", ours.rss_mib, theirs.rss_mib, unit="MiB"),
    ]


@measurement("rtt-transport", "the same round trip against echo stations (transport only)",
             in_process=False, order=50)
def measure_rtt_transport(counts: Counts) -> list[Row]:
    """Where the round trip goes: stations that only echo a canned CALLRESULT (no OCPP
    work). ours = trio-websocket (the station's transport), ocpp = websockets asyncio (the
    ocpp package's transport); floor = websockets sans-I/O on a blocking socket."""
    r = run_rtt(("echo-trio", "echo-asyncio", "echo-blocking"), counts)
    trio_ws, asyncio_ws, floor = r["echo-trio"], r["echo-asyncio"], r["echo-blocking"]
    return [
        Row("echo station (transport only): trio-websocket | websockets asyncio", trio_ws.stats, asyncio_ws.stats),
        Row("  echo station CPU per round trip (schedstat)", trio_ws.cpu_us_per_call, asyncio_ws.cpu_us_per_call,
            unit="µs"),
        Row("echo station: blocking websockets sans-I/O (harness+loopback floor)", floor.stats, None),
        Row("  echo station CPU per round trip (schedstat)", floor.cpu_us_per_call, None, unit="µs"),
    ]


# --------------------------------------------------------------------------- start-up and idle (issue 16)

STARTUP_KINDS = ("evse", "ocpp", "echo-trio")
IMPORTS = {"evse": "import bootstrap.cli, bootstrap.compose",
           "ocpp": "import ocpp.v201, ocpp.routing, websockets.asyncio.client"}


def run_spawn_to_boot_once(kind: str) -> int:
    """ns from starting a station process of `kind` to its BootNotification frame read by the CSMS."""
    with tempfile.TemporaryDirectory(prefix=f"bench-spawn-{kind}-") as tmp:
        csms = BenchCsms()
        t0 = now_ns()
        with station_process(kind, Path(tmp), csms) as proc:
            csms.accept(START_TIMEOUT, alive=lambda: proc.poll() is None)
            while True:
                text = csms.recv()
                if '"BootNotification"' in text:
                    t1 = now_ns()
                    break
            csms.answer_station_call(json.loads(text))
            csms.serve_until_quiet(quiet=0.2, timeout=START_TIMEOUT)
    return t1 - t0


def import_time_ns(kind: str) -> int:
    """Total import time of what a station of `kind` imports (python -X importtime: the sum of
    the top-level modules' cumulative times), in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", IMPORTS[kind]], cwd=REPO,
                         capture_output=True, text=True, timeout=START_TIMEOUT, check=True)
    total_us = 0
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if cumulative.strip().isdigit() and not name.startswith("  "):     # top level
            total_us += int(cumulative)
    return total_us * 1000


@measurement("startup", "spawn -> BootNotification on the wire; import time", in_process=False, order=15)
def measure_startup(counts: Counts) -> list[Row]:
    """Process start to the BootNotification frame at the CSMS (the kinds take turns), and the
    import time of what each station imports (-X importtime, fresh interpreter each time)."""
    import compileall

    for package in ("adapters", "bootstrap", "domain", "ports", "devtools"):   # as an installed wheel has them
        compileall.compile_dir(REPO / package, quiet=1)
    n = 10 if counts.rtt_n >= 1000 else 3
    spawn: dict[str, list[int]] = {k: [] for k in STARTUP_KINDS}
    imports: dict[str, list[int]] = {k: [] for k in IMPORTS}
    for _ in range(n):
        for kind in STARTUP_KINDS:
            spawn[kind].append(run_spawn_to_boot_once(kind))
        for kind in IMPORTS:
            imports[kind].append(import_time_ns(kind))
    return [
        Row(f"spawn -> BootNotification on the wire ({n} processes each)", Stats.of(spawn["evse"]),
            Stats.of(spawn["ocpp"])),
        Row("  the same: minimal trio-websocket station (echo-trio)", Stats.of(spawn["echo-trio"]), None),
        Row("  import time (-X importtime): bootstrap.cli+compose | ocpp.v201+websockets",
            Stats.of(imports["evse"]), Stats.of(imports["ocpp"])),
    ]


def thread_cpu_ns(pid: int) -> dict[int, int]:
    """CPU ns so far of each live thread of `pid` (/proc/<pid>/task/*/schedstat)."""
    out: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                out[int(task.name)] = int((task / "schedstat").read_text().split()[0])
    return out


def run_idle_cpu_once(kind: str, window: float) -> int:
    """CPU ns a booted station of `kind` uses over `window` s of nothing to do (the CSMS only
    answers what the station sends: pongs, a Heartbeat). Per thread, read every second, so
    that a thread ending in the window (trio's idle worker threads do) counts what it used."""
    with tempfile.TemporaryDirectory(prefix=f"bench-idle-{kind}-") as tmp:
        csms = BenchCsms()
        with station_process(kind, Path(tmp), csms) as proc:
            csms.accept(START_TIMEOUT, alive=lambda: proc.poll() is None)
            csms.serve_until_quiet(quiet=0.5, timeout=START_TIMEOUT)
            first = thread_cpu_ns(proc.pid)
            last = dict(first)
            end = time.monotonic() + window
            while (left := end - time.monotonic()) > 0:
                csms._sock.settimeout(min(left, 1.0))
                try:
                    frame = json.loads(csms.recv())
                    if frame[0] == 2:
                        csms.answer_station_call(frame)
                except TimeoutError:
                    pass
                finally:
                    csms._sock.settimeout(IO_TIMEOUT)
                last.update(thread_cpu_ns(proc.pid))
    if not first:
        raise AssertionError(f"no CPU time for the {kind} station")
    return sum(ns - first.get(tid, 0) for tid, ns in last.items())


@measurement("idle", "idle CPU of a booted station (nothing plugged, CSMS silent)", in_process=False, order=16)
def measure_idle(counts: Counts) -> list[Row]:
    window = 20.0 if counts.rtt_n >= 1000 else 3.0
    ours, theirs = run_idle_cpu_once("evse", window), run_idle_cpu_once("ocpp", window)
    return [Row(f"idle CPU over {window:g} s (schedstat)", ours / 1e3, theirs / 1e3, unit="µs")]


# --------------------------------------------------------------------------- device model (issue 3)


def _timed_exchange(csms: BenchCsms, frame: str, mid: str, until: Callable[[list], bool]) -> int:
    """Send `frame`; answer the station's CALLs; return ns until `until(frame)` is true for a
    frame received (the CALLRESULT for `mid`, or the last NotifyReport)."""
    t0 = now_ns()
    csms.send(frame)
    while True:
        got = json.loads(csms.recv())
        if got[0] == 2:
            csms.answer_station_call(got)
        elif got[0] == 4:
            raise AssertionError(f"CALLERROR: {got}")
        if until(got):
            return now_ns() - t0


def run_device_model_once(n_set: int, n_report: int) -> tuple[list[int], list[int], int]:
    """One station process: SetVariables round trips and FullInventory reports (request to
    the last NotifyReport answered); returns both sample lists and the report's page count."""
    set_samples: list[int] = []
    report_samples: list[int] = []
    pages = 0
    with tempfile.TemporaryDirectory(prefix="bench-dm-") as tmp:
        csms = BenchCsms()
        with station_process("evse", Path(tmp), csms) as proc:
            csms.accept(START_TIMEOUT, alive=lambda: proc.poll() is None)
            csms.serve_until_quiet(quiet=0.3, timeout=START_TIMEOUT)
            for i in range(n_set):
                mid = f"s{i}"
                frame = json.dumps([2, mid, "SetVariables", {"setVariableData": [{
                    "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"},
                    "attributeValue": str(60 + i % 100)}]}], separators=(",", ":"))
                set_samples.append(_timed_exchange(csms, frame, mid, lambda f, mid=mid: f[0] == 3 and f[1] == mid))
            for i in range(n_report):
                mid = f"r{i}"
                seen = {"pages": 0, "result": False}

                def done(f: list, mid: str = mid, seen: dict = seen) -> bool:
                    if f[0] == 3 and f[1] == mid:
                        seen["result"] = f[2].get("status") == "Accepted"
                    elif f[0] == 2 and f[2] == "NotifyReport" and f[3]["requestId"] == i:
                        seen["pages"] += 1
                        return seen["result"] and not f[3].get("tbc")
                    return False

                frame = json.dumps([2, mid, "GetBaseReport", {"requestId": i, "reportBase": "FullInventory"}])
                report_samples.append(_timed_exchange(csms, frame, mid, done))
                pages = seen["pages"]
    return set_samples, report_samples, pages


@measurement("devmodel", "SetVariables round trips; GetBaseReport FullInventory end to end",
             in_process=False, order=15)
def measure_device_model(counts: Counts) -> list[Row]:
    n_set = 1000 if counts.rtt_n >= 1000 else 100
    n_report = 50 if counts.rtt_n >= 1000 else 5
    set_samples, report_samples, pages = run_device_model_once(n_set, n_report)
    return [
        Row(f"SetVariables (1 variable) round trip, {n_set} in a row", Stats.of(set_samples), None),
        Row(f"GetBaseReport FullInventory -> last NotifyReport ({pages} pages)", Stats.of(report_samples), None),
    ]


# --------------------------------------------------------------------------- SetChargingProfile (issue 18)


def run_set_charging_profile(n: int, warmup: int) -> list[int]:
    """One station process: SetChargingProfile round trips (a TxDefaultProfile on EVSE 1, the
    same id each time, so each replaces the one before: the K01 checks, the composite of the
    EVSE computed again, the profile written to SQLite before the answer)."""
    samples: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-scp-") as tmp:
        csms = BenchCsms()
        with station_process("evse", Path(tmp), csms) as proc:
            csms.accept(START_TIMEOUT, alive=lambda: proc.poll() is None)
            csms.serve_until_quiet(quiet=0.3, timeout=START_TIMEOUT)
            for i in range(-warmup, n):
                mid = f"scp{i + warmup}"
                frame = json.dumps([2, mid, "SetChargingProfile", {"evseId": 1, "chargingProfile": {
                    "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                    "chargingProfileKind": "Absolute", "chargingSchedule": [{
                        "id": 1, "startSchedule": _utc_now(), "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": float(6 + i % 26)},
                                                   {"startPeriod": 3600, "limit": 6.0}]}]}}],
                    separators=(",", ":"))

                def done(f: list, mid: str = mid) -> bool:
                    if f[0] == 3 and f[1] == mid:
                        if f[2].get("status") != "Accepted":
                            raise AssertionError(f"SetChargingProfile: {f[2]}")
                        return True
                    return False

                ns = _timed_exchange(csms, frame, mid, done)
                if i >= 0:
                    samples.append(ns)
    return samples


@measurement("setprofile", "SetChargingProfile round trip (loopback, station process)", in_process=False, order=16)
def measure_set_charging_profile(counts: Counts) -> list[Row]:
    n, warmup = (1000, 50) if counts.rtt_n >= 1000 else (100, 10)
    return [Row(f"SetChargingProfile round trip (station process, SQLite write), {n} in a row",
                Stats.of(run_set_charging_profile(n, warmup)), None)]


# --------------------------------------------------------------------------- authorization (issue 4)


def _control(sock_path: Path, command: dict) -> dict:
    import socket as socket_mod
    with socket_mod.socket(socket_mod.AF_UNIX, socket_mod.SOCK_STREAM) as s:
        s.settimeout(IO_TIMEOUT)
        s.connect(str(sock_path))
        s.sendall(json.dumps(command).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def run_card_to_authorize(n: int) -> list[int]:
    """A card at the sim reader (control socket) -> AuthorizeRequest received by the CSMS."""
    samples: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        csms = BenchCsms()
        with station_process("evse", Path(tmp), csms) as proc:
            csms.accept(START_TIMEOUT, alive=lambda: proc.poll() is None)
            csms.serve_until_quiet(quiet=0.3, timeout=START_TIMEOUT)
            sock = Path(tmp) / "sim.sock"
            for i in range(n):
                card = f"{i:08X}"
                t0 = now_ns()
                reply = _control(sock, {"cmd": "token", "id_token": card, "evse": 1})
                if not reply.get("ok"):
                    raise AssertionError(f"control socket: {reply}")
                while True:
                    frame = json.loads(csms.recv())
                    if frame[0] == 2 and frame[2] == "Authorize":
                        samples.append(now_ns() - t0)
                        # answer Blocked: nothing is authorized, the next card starts from the same state
                        csms.send(json.dumps([3, frame[1], {"idTokenInfo": {"status": "Blocked"}}]))
                        break
                    if frame[0] == 2:
                        csms.answer_station_call(frame)
    return samples


def cache_lookup_op(n: int) -> Callable[[], object]:
    """AuthCache.lookup in a cache of n entries (hits and misses)."""
    from datetime import timedelta

    from domain import messages as msg
    from domain.authorization.cache import AuthCache

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    cache = AuthCache(lifetime_s=86400)
    tokens = [msg.IdToken(id_token=f"{i:08X}", type=msg.IdTokenEnum.ISO14443) for i in range(n)]
    info = msg.IdTokenInfo(status=msg.AuthorizationStatus.Accepted)
    for i, t in enumerate(tokens):
        cache.update(t, info, now + timedelta(seconds=i % 600), lifetime_s=86400, policy="LRU",
                     max_bytes=1 << 30)
    probes = tokens[::97] + [msg.IdToken(id_token=f"miss{i}", type=msg.IdTokenEnum.ISO14443) for i in range(50)]
    state = {"i": 0}
    later = now + timedelta(hours=1)

    def op() -> object:
        state["i"] = (state["i"] + 1) % len(probes)
        return cache.lookup(probes[state["i"]], later)
    return op


@measurement("auth", "card -> AuthorizeRequest; cache lookup at 10,000 entries", in_process=False, order=17)
def measure_authorization(counts: Counts) -> list[Row]:
    n = 300 if counts.rtt_n >= 1000 else 30
    return [
        Row(f"card at the reader (sim socket) -> AuthorizeRequest on the wire ({n})",
            Stats.of(run_card_to_authorize(n)), None),
        Row("AuthCache.lookup, 10,000 entries (in-process)",
            time_ops(cache_lookup_op(10_000), counts.micro_n, counts.micro_warmup), None),
    ]


# --------------------------------------------------------------------------- transactions (issue 5)

# Remote start starts at once (authorized + plugged closes the power path: PowerPathClosed) and
# remote stop ends at once (it withdraws the authorization: TxStopPoint Authorized); the station
# starts without an AuthorizeRequest of its own (AuthorizeRemoteStart false).
REMOTE_TX_DEVICE_MODEL: dict[str, object] = {
    "TxCtrlr.TxStartPoint": "PowerPathClosed",
    "TxCtrlr.TxStopPoint": "Authorized",
    "AuthCtrlr.AuthorizeRemoteStart": False,
}


def _until_tx_event(csms: BenchCsms, t0: int, mid: str, event_type: str) -> tuple[int, dict]:
    """Answer everything the station sends until both the CALLRESULT for `mid` (status
    Accepted) and its TransactionEvent `event_type` have come; returns (ns from t0 to the
    event's frame, the event's payload)."""
    elapsed: int | None = None
    event: dict = {}
    result_seen = False
    while elapsed is None or not result_seen:
        text = csms.recv()
        t = now_ns()
        f = json.loads(text)
        if f[0] == 2:
            if elapsed is None and f[2] == "TransactionEvent" and f[3]["eventType"] == event_type:
                elapsed, event = t - t0, f[3]
            csms.answer_station_call(f)
        elif f[0] == 3 and f[1] == mid:
            if f[2].get("status") != "Accepted":
                raise AssertionError(f"{mid}: {text[:300]}")
            result_seen = True
        else:
            raise AssertionError(f"unexpected frame while waiting for {event_type}: {text[:300]}")
    return elapsed, event


def run_remote_transactions(n: int, warmup: int) -> tuple[list[int], list[int]]:
    """One station process, EV plugged: `warmup` + n times RequestStartTransaction ->
    TransactionEvent(Started) and RequestStopTransaction -> TransactionEvent(Ended), as the
    CSMS sees them (from sending the CALL to reading the event's frame)."""
    start_samples: list[int] = []
    stop_samples: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-tx-") as tmp:
        csms = BenchCsms()
        with station_process("evse", Path(tmp), csms, REMOTE_TX_DEVICE_MODEL) as proc:
            csms.accept(START_TIMEOUT, alive=lambda: proc.poll() is None)
            csms.serve_until_quiet(quiet=0.3, timeout=START_TIMEOUT)
            reply = _control(Path(tmp) / "sim.sock", {"cmd": "plug", "evse": 1})
            if not reply.get("ok"):
                raise AssertionError(f"control socket: {reply}")
            csms.serve_until_quiet(quiet=0.3, timeout=START_TIMEOUT)     # StatusNotification Occupied
            for i in range(-warmup, n):
                k = i + warmup
                mid = f"start{k}"
                frame = json.dumps([2, mid, "RequestStartTransaction", {
                    "evseId": 1, "remoteStartId": k + 1, "idToken": {"idToken": f"REMOTE{k}", "type": "Central"}}],
                    separators=(",", ":"))
                t0 = now_ns()
                csms.send(frame)
                started_ns, started = _until_tx_event(csms, t0, mid, "Started")
                if started["triggerReason"] != "RemoteStart" or started["transactionInfo"].get("remoteStartId") != k + 1:
                    raise AssertionError(f"unexpected Started event: {started}")
                tx_id = started["transactionInfo"]["transactionId"]
                mid = f"stop{k}"
                frame = json.dumps([2, mid, "RequestStopTransaction", {"transactionId": tx_id}], separators=(",", ":"))
                t0 = now_ns()
                csms.send(frame)
                ended_ns, ended = _until_tx_event(csms, t0, mid, "Ended")
                if ended["transactionInfo"]["transactionId"] != tx_id or \
                        ended["transactionInfo"].get("stoppedReason") != "Remote":
                    raise AssertionError(f"unexpected Ended event: {ended}")
                if i >= 0:
                    start_samples.append(started_ns)
                    stop_samples.append(ended_ns)
    return start_samples, stop_samples


@measurement("remote-tx", "RequestStart/StopTransaction -> TransactionEvent Started/Ended on the wire",
             in_process=False, order=18)
def measure_remote_transactions(counts: Counts) -> list[Row]:
    n, warmup = (300, 10) if counts.rtt_n >= 1000 else (30, 3)
    started, ended = run_remote_transactions(n, warmup)
    return [
        Row(f"RequestStartTransaction -> TransactionEvent(Started) on the wire ({n})", Stats.of(started), None),
        Row(f"RequestStopTransaction -> TransactionEvent(Ended) on the wire ({n})", Stats.of(ended), None),
    ]


# --------------------------------------------------------------------------- TriggerMessage (issue 6)


def run_trigger_message(n: int, warmup: int) -> dict[str, list[int]]:
    """One station process: TriggerMessage(Heartbeat / StatusNotification) -> the triggered
    CALL on the wire, from sending the CALL to reading the triggered frame."""
    samples: dict[str, list[int]] = {"Heartbeat": [], "StatusNotification": []}
    payloads = {"Heartbeat": {"requestedMessage": "Heartbeat"},
                "StatusNotification": {"requestedMessage": "StatusNotification",
                                       "evse": {"id": 1, "connectorId": 1}}}
    with tempfile.TemporaryDirectory(prefix="bench-trigger-") as tmp:
        csms = BenchCsms()
        with station_process("evse", Path(tmp), csms) as proc:
            csms.accept(START_TIMEOUT, alive=lambda: proc.poll() is None)
            csms.serve_until_quiet(quiet=0.3, timeout=START_TIMEOUT)
            for i in range(-warmup, n):
                for what, payload in payloads.items():
                    mid = f"t{what[0]}{i + warmup}"
                    frame = json.dumps([2, mid, "TriggerMessage", payload], separators=(",", ":"))
                    seen = {"accepted": False}

                    def done(f: list, mid: str = mid, what: str = what, seen: dict = seen) -> bool:
                        if f[0] == 3 and f[1] == mid:
                            if f[2].get("status") != "Accepted":
                                raise AssertionError(f"TriggerMessage {what}: {f[2]}")
                            seen["accepted"] = True
                        return f[0] == 2 and f[2] == what and seen["accepted"]

                    ns = _timed_exchange(csms, frame, mid, done)
                    if i >= 0:
                        samples[what].append(ns)
    return samples


@measurement("trigger", "TriggerMessage -> the triggered message on the wire", in_process=False, order=19)
def measure_trigger_message(counts: Counts) -> list[Row]:
    n, warmup = (500, 20) if counts.rtt_n >= 1000 else (50, 5)
    samples = run_trigger_message(n, warmup)
    return [Row(f"TriggerMessage({what}) -> {what} CALL on the wire ({n})", Stats.of(v), None)
            for what, v in samples.items()]


REPLAY_TX_ID = "5b0d7e2a-91c4-4f3e-8a26-0e6f4c1d9b77"
REPLAY_TIMEOUT = 120.0       # s: the whole replay


def write_queued_events(db_path: Path, n: int) -> None:
    """A station database holding n queued TransactionEvents (Updated, MeterValuePeriodic,
    10 sampled values, offline) of one transaction, seqNo 1..n, written with the project's
    own code (DurableQueue.push -> SqliteStorage.write_records, one transaction)."""
    from datetime import timedelta

    import msgspec

    from adapters.sqlite_storage import SqliteStorage
    from domain import messages as m
    from domain.queue import TABLE, DurableQueue

    base = build_ours_transaction_event()
    queue = DurableQueue({}, m.REQUESTS)
    upserts: dict[str, str] = {}
    for i in range(n):
        ts = TS + timedelta(seconds=i)
        event = msgspec.structs.replace(
            base, seq_no=i + 1, timestamp=ts, offline=True,
            transaction_info=m.Transaction(transaction_id=REPLAY_TX_ID, charging_state=m.ChargingState.Charging),
            meter_value=[msgspec.structs.replace(mv, timestamp=ts) for mv in base.meter_value])
        _, change = queue.push(event)
        upserts.update(change.upserts)
    storage = SqliteStorage(db_path)
    try:
        storage.write_records(TABLE, upserts)
    finally:
        storage.close()


def queued_records(db_path: Path) -> int:
    from adapters.sqlite_storage import SqliteStorage
    from domain.queue import TABLE

    storage = SqliteStorage(db_path)
    try:
        return len(storage.load_records(TABLE))
    finally:
        storage.close()


def run_queue_replay(n: int) -> int:
    """Start the station on a database with n queued TransactionEvents; the CSMS answers every
    CALL at once. Returns ns from the BootNotification's acceptance to the n-th TransactionEvent
    answered; checks that they come in seqNo order and that the queue is empty afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        folder = Path(tmp)
        write_queued_events(folder / "station.db", n)
        csms = BenchCsms()
        with station_process("evse", folder, csms) as proc:
            csms.accept(START_TIMEOUT, alive=lambda: proc.poll() is None)
            t0: int | None = None
            t1 = 0
            expected = 1
            deadline = time.monotonic() + REPLAY_TIMEOUT
            recv, send = csms.recv, csms.send
            while expected <= n:
                text = recv()
                f = json.loads(text)
                if f[0] != 2:
                    raise AssertionError(f"unexpected frame during the replay: {text[:300]}")
                if f[2] == "TransactionEvent":
                    p = f[3]
                    if t0 is None:
                        raise AssertionError("a TransactionEvent before the BootNotification was accepted")
                    if p["seqNo"] != expected or p["transactionInfo"]["transactionId"] != REPLAY_TX_ID:
                        raise AssertionError(f"event {expected} expected, got seqNo {p['seqNo']} "
                                             f"of {p['transactionInfo']['transactionId']}")
                    send(f'[3,"{f[1]}",{{}}]')
                    expected += 1
                    if expected > n:
                        t1 = now_ns()
                    elif expected % 1000 == 0 and time.monotonic() > deadline:
                        raise TimeoutError(f"replay not done within {REPLAY_TIMEOUT:g} s ({expected - 1} of {n})")
                else:
                    if f[2] == "BootNotification":
                        t0 = now_ns()       # the acceptance goes out now
                    csms.answer_station_call(f)
            # What follows the queue (StatusNotification, ...) comes only after the n-th delete.
            csms.serve_until_quiet(quiet=0.3, timeout=START_TIMEOUT)
        left = queued_records(folder / "station.db")
        if left:
            raise AssertionError(f"{left} TransactionEvents still queued after the replay")
    assert t0 is not None
    return t1 - t0


@measurement("queue-replay", "replay of queued TransactionEvents after reconnect (events/s)",
             in_process=False, order=19)
def measure_queue_replay(counts: Counts) -> list[Row]:
    n = 10_000 if counts.rtt_n >= 1000 else 1_000
    total_ns = run_queue_replay(n)
    return [
        Row(f"replay of {n:,} queued TransactionEvents after reconnect", n / (total_ns / 1e9), None,
            unit="events/s"),
        Row("  replay: BootNotification accepted -> last TransactionEvent answered", total_ns / 1e9, None, unit="s"),
    ]


def transaction_event_change():
    """The StoreRecords the station makes for a TransactionEvent: the remote start's Started
    event (EV plugged) as a queue record plus the EVSE's transaction snapshot in kv."""
    from domain.transactions.block import SNAPSHOT_KEY
    from domain.effects import StoreRecords
    from domain.hardware_events import CablePlugged
    from domain.queue import TABLE

    station = booted_station()
    station.hardware_event(CablePlugged(evse=1), 1.0)
    frame = json.dumps([2, "rs-1", "RequestStartTransaction", {
        "evseId": 1, "remoteStartId": 1, "idToken": {"idToken": "REMOTE1", "type": "Central"}}])
    changes = [e for e in station.frame_received(frame, 2.0)
               if isinstance(e, StoreRecords) and e.table == TABLE and SNAPSHOT_KEY.format(evse=1) in e.kv]
    if len(changes) != 1 or len(changes[0].upserts) != 1 or \
            '"a":"TransactionEvent"' not in next(iter(changes[0].upserts.values())):
        raise AssertionError(f"expected one queued TransactionEvent with its snapshot: {changes!r}")
    return changes[0]


def run_sqlite_event_cost(folder: Path, n: int, warmup: int, *, durable_delete: bool = True) -> tuple[Stats, Stats]:
    """SqliteStorage.write_records of one queued TransactionEvent (its record + the snapshot
    kv) and of its delete after the CALLRESULT, on a file in `folder` (WAL, synchronous=FULL,
    as the adapter opens it). Each timed separately; returns (write, delete)."""
    from adapters.sqlite_storage import SqliteStorage

    change = transaction_event_change()
    (value,) = change.upserts.values()
    table, kv = change.table, change.kv
    storage = SqliteStorage(folder / "station.db")
    writes = [0] * n
    deletes = [0] * n
    write_records = storage.write_records
    gc_was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for i in range(-warmup, n):
            key = f"{i + warmup:012d}"
            t0 = now_ns()
            write_records(table, {key: value}, kv=kv)
            t1 = now_ns()
            if durable_delete:
                write_records(table, deletes=(key,))
            else:      # the group commit's delete before the next queued message (docs/durability.md)
                storage.write_changes({table: (False, {key: None})}, {}, {}, durable=False)
            t2 = now_ns()
            if i >= 0:
                writes[i], deletes[i] = t1 - t0, t2 - t1
        left = storage.load_records(table)
    finally:
        if gc_was:
            gc.enable()
        storage.close()
    if left:
        raise AssertionError(f"{len(left)} records left after the deletes")
    return Stats.of(writes), Stats.of(deletes)


@measurement("sqlite-event", "SQLite cost per queued TransactionEvent (write, delete)", order=45)
def measure_sqlite_event(counts: Counts) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as tmp:
        write, delete = run_sqlite_event_cost(Path(tmp), counts.micro_n, counts.micro_warmup)
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as tmp:
        _, deferred = run_sqlite_event_cost(Path(tmp), counts.micro_n, counts.micro_warmup, durable_delete=False)
    return [
        Row("SqliteStorage.write_records: queued TransactionEvent + snapshot (FULL)", write, None),
        Row("SqliteStorage.write_records: its delete after the CALLRESULT (FULL)", delete, None),
        Row("  the same delete, group commit before the next queued CALL (NORMAL)", deferred, None),
    ]


# --------------------------------------------------------------------------- certificates, TLS (issue 14)


def _certificate(cn: str, key, issuer: tuple[x509.Name, object] | None = None, *, ca: bool,
                 ip: str | None = None) -> x509.Certificate:
    """An EC certificate for `cn` valid from yesterday for 30 days: self-signed unless `issuer`
    (its name and key); `ip`: a subjectAltName (the CSMS's address, for the host check)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.now(timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip is not None:
        import ipaddress
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def bench_pki(folder: Path) -> ssl.SSLContext:
    """Security profile 3 on loopback: csms-root.pem (the CSMS's CA), station.pem + station.key
    (the station's certificate, CN = the station id, from a station CA) in `folder`; returns the
    CSMS's server context (certificate for 127.0.0.1, client certificate required)."""
    csms_key, station_ca_key, server_key, station_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    csms_ca = _certificate("Bench CSMS Root", csms_key, ca=True)
    station_ca = _certificate("Bench Station CA", station_ca_key, ca=True)
    server = _certificate("127.0.0.1", server_key, (csms_ca.subject, csms_key), ca=False, ip="127.0.0.1")
    station = _certificate(STATION_ID, station_key, (station_ca.subject, station_ca_key), ca=False)
    (folder / "csms-root.pem").write_bytes(_pem(csms_ca))
    (folder / "station.pem").write_bytes(_pem(station) + _pem(station_ca))
    (folder / "station.key").write_bytes(station_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (folder / "server.pem").write_bytes(_pem(server))
    (folder / "server.key").write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(folder / "server.pem", folder / "server.key")
    ctx.load_verify_locations(cadata=_pem(station_ca).decode())
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


PROFILE_3_TOML = 'security_profile = 3\ncsms_root_ca = "csms-root.pem"\nclient_cert = "station.pem"\nclient_key = "station.key"\n'


def _call(csms: BenchCsms, mid: str, action: str, payload: dict) -> tuple[int, dict]:
    """One CSMS CALL timed to its CALLRESULT (the station's own CALLs answered meanwhile)."""
    result: dict = {}

    def done(f: list) -> bool:
        if f[0] == 3 and f[1] == mid:
            result.update(f[2])
            return True
        return False

    ns = _timed_exchange(csms, json.dumps([2, mid, action, payload], separators=(",", ":")), mid, done)
    return ns, result


def _root_hash_data(cert: x509.Certificate) -> dict:
    from cryptography.x509 import ocsp
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, cert, hashes.SHA256()).build()
    return {"hashAlgorithm": "SHA256", "issuerNameHash": req.issuer_name_hash.hex(),
            "issuerKeyHash": req.issuer_key_hash.hex(), "serialNumber": format(req.serial_number, "x")}


def run_certificate_calls(n_install: int, n_list: int, warmup: int) -> tuple[list[int], list[int]]:
    """One station process (profile 1, its certificate store on files beside its SQLite file):
    InstallCertificate round trips of new CSMS roots (each deleted again, untimed, so the count
    stays low), then GetInstalledCertificateIds round trips with 10 roots installed."""
    roots = [_certificate(f"Bench Root {i}", key, ca=True)
             for i, key in enumerate(ec.generate_private_key(ec.SECP256R1()) for _ in range(warmup + n_install + 10))]
    installs: list[int] = []
    lists: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-certs-") as tmp:
        csms = BenchCsms()
        with station_process("evse", Path(tmp), csms) as proc:
            csms.accept(START_TIMEOUT, alive=lambda: proc.poll() is None)
            csms.serve_until_quiet(quiet=0.3, timeout=START_TIMEOUT)
            for i, root in enumerate(roots[:warmup + n_install]):
                ns, res = _call(csms, f"ic{i}", "InstallCertificate",
                                {"certificateType": "CSMSRootCertificate", "certificate": _pem(root).decode()})
                if res.get("status") != "Accepted":
                    raise AssertionError(f"InstallCertificate: {res}")
                if i >= warmup:
                    installs.append(ns)
                _, res = _call(csms, f"dc{i}", "DeleteCertificate", {"certificateHashData": _root_hash_data(root)})
                if res.get("status") != "Accepted":
                    raise AssertionError(f"DeleteCertificate: {res}")
            for i, root in enumerate(roots[-10:]):
                _, res = _call(csms, f"ic-list{i}", "InstallCertificate",
                               {"certificateType": "CSMSRootCertificate", "certificate": _pem(root).decode()})
                if res.get("status") != "Accepted":
                    raise AssertionError(f"InstallCertificate: {res}")
            for i in range(-warmup, n_list):
                ns, res = _call(csms, f"gi{i + warmup}", "GetInstalledCertificateIds", {})
                if len(res.get("certificateHashDataChain", ())) != 10:
                    raise AssertionError(f"GetInstalledCertificateIds: {res}")
                if i >= 0:
                    lists.append(ns)
    return installs, lists


@measurement("certificates", "InstallCertificate; GetInstalledCertificateIds with 10 certificates",
             in_process=False, order=21)
def measure_certificates(counts: Counts) -> list[Row]:
    n_install, n_list, warmup = (100, 500, 5) if counts.rtt_n >= 1000 else (10, 50, 2)
    installs, lists = run_certificate_calls(n_install, n_list, warmup)
    return [Row(f"InstallCertificate round trip (new CSMS root, store on files), {n_install} in a row",
                Stats.of(installs), None),
            Row(f"GetInstalledCertificateIds round trip, 10 certificates installed, {n_list} in a row",
                Stats.of(lists), None)]


def run_reconnects(profile: int, n: int, warmup: int) -> list[int]:
    """One station process of security `profile` (1: ws:// and Basic auth; 3: TLS with the
    station's client certificate): n Resets (Immediate: a soft reboot); each sample is from the
    CSMS accepting the new TCP connection to the BootNotification frame read (the TLS handshake,
    the WebSocket upgrade, the station's first frame)."""
    samples: list[int] = []
    with tempfile.TemporaryDirectory(prefix=f"bench-tls{profile}-") as tmp:
        folder = Path(tmp)
        csms = BenchCsms(bench_pki(folder) if profile == 3 else None)
        with station_process("evse", folder, csms, csms_toml=PROFILE_3_TOML if profile == 3 else "") as proc:
            alive = lambda: proc.poll() is None      # noqa: E731
            csms.accept(START_TIMEOUT, alive=alive)
            csms.serve_until_quiet(quiet=0.3, timeout=START_TIMEOUT)
            for i in range(-warmup, n):
                mid = f"rs{i + warmup}"
                csms.send(json.dumps([2, mid, "Reset", {"type": "Immediate"}], separators=(",", ":")))
                with contextlib.suppress(Closed, OSError):        # until the station closes
                    while True:
                        f = json.loads(csms.recv())
                        if f[0] == 2:
                            csms.answer_station_call(f)
                        elif f[1] == mid and f[0] == 3 and f[2].get("status") != "Accepted":
                            raise AssertionError(f"Reset: {f}")
                csms.drop()
                csms.station_calls.clear()
                csms.accept(START_TIMEOUT, alive=alive)
                while True:
                    f = json.loads(csms.recv())
                    if f[0] == 2 and f[2] == "BootNotification":
                        t1 = now_ns()
                        csms.answer_station_call(f)
                        break
                    if f[0] == 2:
                        csms.answer_station_call(f)
                if i >= 0:
                    samples.append(t1 - csms.accepted_ns)
                csms.serve_until_quiet(quiet=0.2, timeout=START_TIMEOUT)
    return samples


@measurement("tls-connect", "connect -> TLS handshake -> BootNotification: profile 3 next to profile 1",
             in_process=False, order=22)
def measure_tls_connect(counts: Counts) -> list[Row]:
    n, warmup = (30, 2) if counts.rtt_n >= 1000 else (5, 1)
    return [Row(f"profile 3 (TLS, client cert): TCP accept -> BootNotification read, {n} reboots",
                Stats.of(run_reconnects(3, n, warmup)), None),
            Row(f"profile 1 (ws://, Basic auth): TCP accept -> BootNotification read, {n} reboots",
                Stats.of(run_reconnects(1, n, warmup)), None)]


# --------------------------------------------------------------------------- echo stations

ECHO_STATIONS = ("echo-trio", "echo-asyncio", "echo-blocking")
CANNED_RESULT = ('{"getVariableResult":[{"attributeStatus":"Accepted","attributeValue":"3600",'
                 '"component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}}]}')
BOOT_FRAME = ('[2,"boot-1","BootNotification",{"chargingStation":{"model":"Bench-1","vendorName":"ACME"},'
              '"reason":"PowerUp"}]')


def _auth_header() -> tuple[str, str]:
    import base64

    return "Authorization", "Basic " + base64.b64encode(f"{STATION_ID}:{PASSWORD}".encode()).decode()


def _echo(frame: str) -> str:
    """The canned CALLRESULT for a CALL '[2,"<id>",...' (no JSON parsing: transport cost only)."""
    end = frame.index('"', 4)
    return f'[3,"{frame[4:end]}",{CANNED_RESULT}]'


def run_echo_station(kind: str, url: str) -> None:
    if kind == "echo-trio":
        import trio
        import trio_websocket

        async def main() -> None:
            name, value = _auth_header()
            async with trio_websocket.open_websocket_url(
                    url, subprotocols=[SUBPROTOCOL], extra_headers=[(name.encode(), value.encode())]) as ws:
                await ws.send_message(BOOT_FRAME)
                await ws.get_message()
                get, send = ws.get_message, ws.send_message
                with contextlib.suppress(trio_websocket.ConnectionClosed):
                    while True:
                        await send(_echo(await get()))

        trio.run(main)
    elif kind == "echo-asyncio":
        import asyncio

        import websockets

        async def amain() -> None:
            async with websockets.connect(url, subprotocols=[SUBPROTOCOL], ping_interval=None,
                                          additional_headers=[_auth_header()]) as ws:
                await ws.send(BOOT_FRAME)
                await ws.recv()
                with contextlib.suppress(websockets.ConnectionClosed):
                    while True:
                        await ws.send(_echo(await ws.recv()))

        asyncio.run(amain())
    elif kind == "echo-blocking":
        from urllib.parse import urlsplit

        from websockets.client import ClientProtocol
        from websockets.frames import Opcode
        from websockets.typing import Subprotocol
        from websockets.uri import parse_uri

        parts = urlsplit(url)
        sock = socket.create_connection((parts.hostname, parts.port), timeout=IO_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        proto = ClientProtocol(parse_uri(url), subprotocols=[Subprotocol(SUBPROTOCOL)])
        request = proto.connect()
        request.headers[_auth_header()[0]] = _auth_header()[1]
        proto.send_request(request)

        def flush() -> None:
            data = proto.data_to_send()
            if data:
                sock.sendall(b"".join(data))

        flush()
        from websockets.protocol import State

        while proto.state is State.CONNECTING:     # the handshake response
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the WebSocket handshake")
            proto.receive_data(data)
        if proto.state is not State.OPEN or proto.handshake_exc is not None:
            raise ConnectionError(f"WebSocket handshake failed: {proto.handshake_exc!r}")
        pending: deque[str] = deque()
        for ev in proto.events_received():    # the Response, and any frame right behind it
            if getattr(ev, "opcode", None) is Opcode.TEXT:
                pending.append(ev.data.decode())

        def recv() -> str | None:
            while not pending:
                data = sock.recv(262144)
                if not data:
                    return None
                proto.receive_data(data)
                for ev in proto.events_received():
                    op = getattr(ev, "opcode", None)
                    if op is Opcode.TEXT:
                        pending.append(ev.data.decode())
                    elif op is Opcode.CLOSE:
                        flush()
                        return None
                flush()
            return pending.popleft()

        def send(text: str) -> None:
            proto.send_text(text.encode())
            sock.sendall(b"".join(proto.data_to_send()))

        send(BOOT_FRAME)
        recv()
        sock.settimeout(None)
        while (msg := recv()) is not None:
            send(_echo(msg))
        sock.close()
    else:
        raise ValueError(kind)


# --------------------------------------------------------------------------- the ocpp-package station


def run_ocpp_station(url: str) -> None:
    """A charge point on the `ocpp` package (package defaults, schema validation on)."""
    import asyncio

    import websockets
    from ocpp.routing import on
    from ocpp.v201 import ChargePoint, call, call_result
    from ocpp.v201.enums import Action

    class BenchChargePoint(ChargePoint):
        @on(Action.get_variables)
        def on_get_variables(self, get_variable_data, **kwargs):
            d = get_variable_data[0]
            return call_result.GetVariables(get_variable_result=[{
                "attribute_status": "Accepted", "attribute_value": "3600",
                "component": d["component"], "variable": d["variable"]}])

    async def main() -> None:
        async with websockets.connect(url, subprotocols=[SUBPROTOCOL], ping_interval=None,
                                      additional_headers={"Authorization": "Basic " + __import__("base64")
                                                          .b64encode(f"{STATION_ID}:{PASSWORD}".encode())
                                                          .decode()}) as ws:
            cp = BenchChargePoint(STATION_ID, ws)
            serve = asyncio.ensure_future(cp.start())
            await cp.call(call.BootNotification(
                charging_station={"model": "Bench-1", "vendor_name": "ACME"}, reason="PowerUp"))
            try:
                await serve
            except websockets.ConnectionClosed:
                pass

    asyncio.run(main())


# --------------------------------------------------------------------------- hardware (issue 8)

HARDWARE_REVISION = "openevse-rev2"


def _reader_poll_interval() -> float:
    """Pn532Reader's default poll interval, as compose() builds the reader."""
    import inspect

    from adapters.pn532.reader import Pn532Reader
    return inspect.signature(Pn532Reader).parameters["poll_interval"].default


READER_POLL_INTERVAL = _reader_poll_interval()


class RigThread:
    """The emulated board (devtools.emulators.rig) served by a trio loop in a thread of the bench
    process, so that a station process can open its ptys while this thread drives the emulators
    (`call` runs a function in that loop, `run` an async one) and the main thread plays the CSMS."""

    def __init__(self, revision: str) -> None:
        import threading

        self.revision = revision
        self.rig = None
        self._token = None
        self._scope = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="bench-rig", daemon=True)

    def __enter__(self) -> "RigThread":
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or self.rig is None:
            raise RuntimeError(f"the emulated board did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        import trio

        with contextlib.suppress(trio.RunFinishedError):
            trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
        self._thread.join(IO_TIMEOUT)

    def _main(self) -> None:
        import trio

        from devtools.emulators.rig import open_hardware_rig

        async def serve() -> None:
            with trio.CancelScope() as scope:
                async with open_hardware_rig(self.revision) as rig:
                    self.rig, self._token, self._scope = rig, trio.lowlevel.current_trio_token(), scope
                    self._ready.set()
                    await trio.sleep_forever()
        try:
            trio.run(serve)
        except BaseException as exc:        # reported by __enter__
            self._error = exc
            self._ready.set()

    def call(self, fn: Callable[..., object], *args: object) -> object:
        import trio
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def run(self, async_fn: Callable[..., object], *args: object) -> object:
        import trio
        return trio.from_thread.run(async_fn, *args, trio_token=self._token)


async def _ev_plugs_asking_for_energy(controller) -> int:
    """On the rig's loop: the EV plugs in and asks for energy at once (pilot B, then C); ns
    until the controller emulator has received both `S4 0` and `FE` (the power path closed)."""
    t0 = now_ns()
    after = len(controller.commands)
    controller.plug()
    controller.request_energy()
    index = await controller.wait_for_command("S4 0", after=after)
    await controller.wait_for_command("FE", after=index)
    return now_ns() - t0


async def _unplugged(controller) -> None:
    """On the rig's loop: the EV unplugs; returns once the controller is locked again (`S4 1`)."""
    after = len(controller.commands)
    controller.unplug()
    await controller.wait_for_command("S4 1", after=after)


def _until_authorize(csms: BenchCsms, id_token: str, status: str) -> int:
    """Answer the station until its AuthorizeRequest for `id_token` comes (answered `status`);
    returns now_ns() at its arrival."""
    while True:
        frame = json.loads(csms.recv())
        if frame[0] == 2 and frame[2] == "Authorize":
            t = now_ns()
            if frame[3]["idToken"] != {"idToken": id_token, "type": "ISO14443"}:
                raise AssertionError(f"Authorize for another token: {frame[3]}")
            csms.send(json.dumps([3, frame[1], {"idTokenInfo": {"status": status}}]))
            return t
        if frame[0] == 2:
            csms.answer_station_call(frame)


def run_hardware_sessions(n: int, warmup: int) -> tuple[list[int], list[int], float | None]:
    """A station process on openevse-rev2 with the emulated board in a thread of this process.
    Per session: a new card on the PN532 -> AuthorizeRequest on the wire (answered Accepted);
    then the EV plugs in asking for energy -> the controller emulator has `S4 0` and `FE`;
    unplug. Returns (card samples, power path samples, station RSS MiB after the sessions)."""
    import random

    cards: list[int] = []
    paths: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-hw-") as tmp, RigThread(HARDWARE_REVISION) as rig:
        board = rig.rig
        csms = BenchCsms()
        with station_process("evse", Path(tmp), csms, hardware_toml=board.hardware_toml()) as proc:
            csms.accept(START_TIMEOUT, alive=lambda: proc.poll() is None)
            csms.serve_until_quiet(quiet=0.3, timeout=START_TIMEOUT)
            deadline = time.monotonic() + START_TIMEOUT
            while not rig.call(lambda: board.reader.core.polls):    # the reader is polling
                if time.monotonic() > deadline:
                    raise TimeoutError("the station's PN532 reader never polled")
                csms.serve_until_quiet(quiet=0.05, timeout=START_TIMEOUT)
            phase = random.Random(8)
            for i in range(-warmup, n):
                uid = (0x08000000 + i + warmup).to_bytes(4, "big")      # a new card every session
                # the card comes at any moment of the reader's poll cycle, not in step with it
                time.sleep(phase.uniform(0.0, READER_POLL_INTERVAL))
                t0 = now_ns()
                rig.call(board.reader.present_card, uid)
                card_ns = _until_authorize(csms, uid.hex().upper(), "Accepted") - t0
                csms.serve_until_quiet(quiet=0.05, timeout=IO_TIMEOUT)  # the authorization is in
                path_ns = rig.run(_ev_plugs_asking_for_energy, board.controller)
                csms.serve_until_quiet(quiet=0.05, timeout=IO_TIMEOUT)  # Started, Charging
                rig.run(_unplugged, board.controller)
                rig.call(board.reader.remove_card)
                csms.serve_until_quiet(quiet=0.05, timeout=IO_TIMEOUT)  # Ended, Available
                if i >= 0:
                    cards.append(card_ns)
                    paths.append(path_ns)
            rss = rss_mib(proc.pid)
    return cards, paths, rss


def run_sdm630_reads(n: int, warmup: int) -> list[int]:
    """Sdm630Meter.read (its three Modbus RTU requests) against the SDM630 emulator of the rig,
    in this process, one read at a time."""
    import trio

    from adapters.sdm630.meter import Sdm630Meter
    from adapters.serial_tty import TtyDevice
    from devtools.emulators.rig import METER_BAUDRATE, METER_UNIT_ID, open_hardware_rig

    samples: list[int] = []

    async def main() -> None:
        async with open_hardware_rig(HARDWARE_REVISION) as board:
            board.meter.set_load(11000)
            meter = Sdm630Meter(TtyDevice(board.meter_port, METER_BAUDRATE), unit_id=METER_UNIT_ID,
                                baudrate=METER_BAUDRATE)
            for i in range(-warmup, n):
                t0 = now_ns()
                reading = await meter.read(1)
                if i >= 0:
                    samples.append(now_ns() - t0)
            await meter.aclose()
            if reading.power_w != 11000.0 or meter.stats.reads_ok != n + warmup:
                raise AssertionError(f"SDM630 reads: {reading}, {meter.stats}")
    trio.run(main)
    return samples


@measurement("hardware", "real adapters on an emulated openevse-rev2 board (ptys)", in_process=False, order=60)
def measure_hardware(counts: Counts) -> list[Row]:
    n, warmup = (50, 2) if counts.rtt_n >= 1000 else (10, 1)
    reads_n, reads_warmup = (100, 5) if counts.rtt_n >= 1000 else (30, 3)
    cards, paths, rss = run_hardware_sessions(n, warmup)
    return [
        Row(f"card on the PN532 -> AuthorizeRequest on the wire (polled every "
            f"{READER_POLL_INTERVAL:g} s) ({n})", Stats.of(cards), None),
        Row(f"authorized, EV asks for energy -> controller got S4 0 + FE ({n})", Stats.of(paths), None),
        Row(f"Sdm630Meter.read at 9600 baud (a pty does not pace bytes) ({reads_n})",
            Stats.of(run_sdm630_reads(reads_n, reads_warmup)), None),
        Row(f"station process RSS ({HARDWARE_REVISION}, after the sessions)", rss, None, unit="MiB"),
    ]



# --------------------------------------------------------------------------- firmware update (issue 15)

FIRMWARE_TIMEOUT = 60.0      # s: one UpdateFirmware to its Installed


def _reconnect(csms: BenchCsms, proc: subprocess.Popen) -> None:
    """The station rebooted (in process): take its new connection."""
    if csms._sock is not None:
        with contextlib.suppress(OSError):
            csms._sock.close()
    csms._messages.clear()
    csms._fragments.clear()
    csms.accept(START_TIMEOUT, alive=lambda: proc.poll() is None)


def _until_installed(csms: BenchCsms, proc: subprocess.Popen, request_id: int) -> list[str]:
    """Answer the station (across its reboot) until FirmwareStatusNotification Installed of
    `request_id`; the statuses seen."""
    seen: list[str] = []
    deadline = time.monotonic() + FIRMWARE_TIMEOUT
    while time.monotonic() < deadline:
        try:
            text = csms.recv()
        except Closed:
            _reconnect(csms, proc)
            continue
        f = json.loads(text)
        if f[0] != 2:
            continue
        csms.answer_station_call(f)
        if f[2] == "FirmwareStatusNotification" and f[3].get("requestId") == request_id:
            seen.append(f[3]["status"])
            if f[3]["status"] == "Installed":
                return seen
            if f[3]["status"] in ("InstallationFailed", "InstallVerificationFailed", "DownloadFailed",
                                  "InvalidSignature"):
                raise AssertionError(f"firmware update {request_id}: {seen}")
    raise TimeoutError(f"firmware update {request_id}: no Installed within {FIRMWARE_TIMEOUT:g} s ({seen})")


def run_firmware_updates(n: int) -> list[int]:
    """One station process: n UpdateFirmware -> Installed, as the CSMS sees them."""
    from devtools.file_servers import HttpFileServer
    from devtools.firmware_signing import DevManufacturer, sim_image, update_firmware

    samples: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-firmware-") as tmp:
        folder = Path(tmp)
        served = folder / "served"
        served.mkdir()
        maker = DevManufacturer.create()
        maker.install_root(folder)
        csms = BenchCsms()
        with HttpFileServer(served) as http, station_process("evse", folder, csms) as proc:
            csms.accept(START_TIMEOUT, alive=lambda: proc.poll() is None)
            csms.serve_until_quiet(quiet=0.3, timeout=START_TIMEOUT)
            for i in range(1, n + 1):
                name = f"bench-{i}.img"
                data = sim_image(served / name, f"9.{i}.0-bench", size=1 << 20)
                frame = json.dumps([2, f"fw{i}", "UpdateFirmware",
                                    update_firmware(i, http.url(name), maker, maker.sign(data))])
                t0 = now_ns()
                csms.send(frame)
                seen = _until_installed(csms, proc, i)
                samples.append(now_ns() - t0)
                if seen[:2] != ["Downloading", "Downloaded"]:
                    raise AssertionError(f"firmware update {i}: {seen}")
                csms.serve_until_quiet(quiet=0.3, timeout=START_TIMEOUT)     # FirmwareUpdated event
    return samples


@measurement("firmware", "UpdateFirmware -> Installed on the sim", in_process=False, order=69)
def measure_firmware_update(counts: Counts) -> list[Row]:
    n = 5 if counts.rtt_n >= 1000 else 2
    return [Row(f"UpdateFirmware -> FirmwareStatusNotification(Installed), 1 MB sim image ({n})",
                Stats.of(run_firmware_updates(n)), None)]


# --------------------------------------------------------------------------- file transfers

TRANSFER_TIMEOUT = 120.0     # s: one download process, start to exit


def run_download(url: str, destination: str) -> None:
    """`--download`: fetch `url` with the product's FileTransfer; print seconds, size, SHA-256
    and this process's peak RSS as one JSON line."""
    import resource

    import trio

    from bootstrap.compose import file_transfers

    transfers = file_transfers()            # (TLS contexts loaded before the clock starts)

    async def main():
        t0 = time.perf_counter()
        result = await transfers.download(url, Path(destination), max_bytes=1 << 40, timeout=30)
        return time.perf_counter() - t0, result

    seconds, result = trio.run(main)
    print(json.dumps({"seconds": seconds, "size": result.size, "sha256": result.sha256,
                      "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def download_in_process(url: str, destination: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "devtools.bench", "--download", url, str(destination)],
                          capture_output=True, text=True, timeout=TRANSFER_TIMEOUT, cwd=REPO)
    if done.returncode != 0:
        raise AssertionError(f"download of {url} failed: {done.stderr.strip().splitlines()[-1:]}")
    destination.unlink()
    return json.loads(done.stdout)


def transfer_rows(small: int, big: int) -> list[Row]:
    """Throughput of `big` and peak RSS at `small` and `big` bytes, over HTTP and FTP."""
    from devtools.file_servers import FtpFileServer, HttpFileServer, write_file

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="evse-bench-transfer-") as tmp:
        folder = Path(tmp)
        served = folder / "served"
        served.mkdir()
        digests = {size: write_file(served / f"{size}.bin", size) for size in (small, big)}
        with HttpFileServer(served) as http, FtpFileServer(served) as ftp:
            for name, server in (("HTTP", http), ("FTP", ftp)):
                peak = {}
                for size in (small, big):
                    got = download_in_process(server.url(f"{size}.bin"), folder / "image.bin")
                    if got["sha256"] != digests[size] or got["size"] != size:
                        raise AssertionError(f"{name} download of {size} bytes: {got}")
                    peak[size] = got["peak_rss_kib"] / 1024
                    if size == big:
                        rows.append(Row(f"download {big / 1e6:g} MB over loopback {name} (throughput)",
                                        big / 1e6 / got["seconds"], None, unit="MB/s"))
                for size in (small, big):
                    rows.append(Row(f"peak RSS of the process downloading {size / 1e6:g} MB ({name})",
                                    peak[size], None, unit="MiB"))
    return rows


@measurement("transfer", "file downloads over loopback: throughput, peak RSS", in_process=False, order=70)
def measure_transfer(counts: Counts) -> list[Row]:
    mb = 1_000_000
    return transfer_rows(20 * mb, 200 * mb) if counts.rtt_n >= 1000 else transfer_rows(2 * mb, 20 * mb)


# --------------------------------------------------------------------------- main


def run(keys: list[str] | None, counts: Counts, *, in_process_only: bool = False) -> list[Row]:
    rows: list[Row] = []
    for m in sorted(REGISTRY, key=lambda m: m.order):
        if in_process_only and not m.in_process:
            continue
        if keys and not any(k in m.key for k in keys):
            continue
        rows += m.fn(counts)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke test)")
    parser.add_argument("--only", action="append", metavar="KEY",
                        help=f"only measurements whose key contains KEY ({', '.join(m.key for m in REGISTRY)})")
    parser.add_argument("--ocpp-station", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--echo-station", nargs=2, metavar=("KIND", "URL"), help=argparse.SUPPRESS)
    parser.add_argument("--download", nargs=2, metavar=("URL", "DEST"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.download:
        run_download(*args.download)
        return 0
    if args.ocpp_station:
        run_ocpp_station(args.ocpp_station)
        return 0
    if args.echo_station:
        run_echo_station(*args.echo_station)
        return 0
    counts = QUICK if args.quick else FULL
    t0 = time.monotonic()
    rows = run(args.only, counts)
    print(format_table(rows))
    print(f"ratio = ocpp pkg p50 / evse-stack p50 (RSS: ocpp / ours). counts: round trips "
          f"{counts.rtt_n} (+{counts.rtt_warmup} warm-up), in-process ops {counts.micro_n} "
          f"(+{counts.micro_warmup}); bench took {time.monotonic() - t0:.1f} s")
    print(machine_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
