"""Interoperability: the real station against an independent CSMS built on the PyPI
`ocpp` package (mobilityhouse), which validates payloads against the official
OCPP 2.0.1 JSON schemas.

The CSMS runs in its own thread with its own asyncio loop (the `ocpp` package is
asyncio-only) on a `websockets` server; the station runs in trio as in
test_station_e2e.py. Besides the package's own validation (CALLs it receives,
CALLRESULTs it sends, CALLRESULTs to its CALLs), every raw frame the station
sends is checked again by a wrapper around the connection's recv(): OCPP-J
framing via `ocpp.messages.unpack`, the payload via `validate_payload` (CALLs
against the request schema, CALLRESULTs against the response schema of the
action we called). Any failure is recorded and the test asserts there are none.
"""
from __future__ import annotations

import asyncio
import base64
import functools
import inspect
import logging
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import trio
import websockets
from websockets.asyncio.server import ServerConnection, serve

import jsonschema
from ocpp.messages import Call, CallError, CallResult, get_validator, unpack, validate_payload
from ocpp.routing import on
from ocpp.v201 import ChargePoint as OcppChargePoint
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from bootstrap.compose import compose
from bootstrap.runtime import StationRuntime
from devtools.sim_cli import send_control_command

from tests.integration.test_station_e2e import make_config

SID = "CS-E2E-1"             # make_config's station id
PASSWORD = "0123456789abcdef"  # make_config's basic_auth_password
OCPP_VERSION = "2.0.1"
SUBPROTOCOL = "ocpp2.0.1"
THREAD_JOIN_TIMEOUT = 10.0


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _validate(message: Call | CallResult) -> None:
    """ocpp.messages.validate_payload is async in ocpp 2.x and sync in older releases."""
    result = validate_payload(message, OCPP_VERSION)
    if inspect.isawaitable(result):
        await result


# The package's Draft4Validator checks no "format"; jsonschema only checks date-time with an
# optional extra installed. So date-time (RFC 3339, offset required) is checked here too.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
_formats = jsonschema.FormatChecker(formats=())


@_formats.checks("date-time")
def _is_rfc3339(value: object) -> bool:
    if not isinstance(value, str) or _RFC3339.match(value) is None:
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return False
    return True


def _check_formats(message: Call | CallResult) -> None:
    schema = get_validator(message.message_type_id, message.action, OCPP_VERSION).schema
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft4Validator(schema, format_checker=_formats).iter_errors(message.payload))
    if error is not None:
        raise ValueError(f"{error.message} at {list(error.absolute_path)}")


class _ValidatingConnection:
    """The connection object handed to the package's ChargePoint: validates every raw
    inbound frame before the package sees it and remembers our CALLs' actions, so a
    CALLRESULT can be validated against the right response schema."""

    def __init__(self, ws: ServerConnection, csms: "OcppCsms", station_id: str) -> None:
        self._ws = ws
        self._csms = csms
        self._sid = station_id
        self._our_calls: dict[str, str] = {}   # message id -> action

    async def recv(self) -> str:
        frame = await self._ws.recv()
        await self._check(frame)
        return frame

    async def send(self, frame: str) -> None:
        try:
            msg = unpack(frame)
        except Exception:   # our own frames are built by the package; nothing to track
            msg = None
        if isinstance(msg, Call):
            self._our_calls[msg.unique_id] = msg.action
        await self._ws.send(frame)

    async def _check(self, frame: str | bytes) -> None:
        fail = functools.partial(self._csms.record_failure, self._sid, frame)
        self._csms.raw_frames += 1
        if not isinstance(frame, str):
            fail("binary WebSocket frame (OCPP-J frames are text)")
            return
        try:
            msg = unpack(frame)
        except Exception as exc:
            fail(f"unpack: {type(exc).__name__}: {exc}")
            return
        uid = msg.unique_id
        if not isinstance(uid, str) or not 0 < len(uid) <= 36:
            fail(f"message id {uid!r} is not a string of 1..36 characters")
        if isinstance(msg, CallError):
            fail(f"unexpected CALLERROR from the station: {msg}")
            return
        if isinstance(msg, CallResult):
            action = self._our_calls.pop(uid, None)
            if action is None:
                fail("CALLRESULT for a message id we never sent")
                return
            msg = CallResult(uid, msg.payload, action)   # a copy: the package validates its own
        if not isinstance(msg.payload, dict):
            fail(f"payload is not a JSON object: {msg.payload!r}")
            return
        try:
            await _validate(msg)
            _check_formats(msg)
        except Exception as exc:
            fail(f"schema: {type(exc).__name__}: {exc}")


class _Csms(OcppChargePoint):
    """Central-system side of one station connection (handlers validated by the package:
    @on(...) without skip_schema_validation)."""

    def __init__(self, station_id: str, connection: _ValidatingConnection, csms: "OcppCsms") -> None:
        super().__init__(station_id, connection, response_timeout=5)
        self._csms = csms

    def _note(self, action: str, payload: dict) -> None:
        self._csms.note_call(self.id, action, payload)

    @on(Action.boot_notification)
    def on_boot_notification(self, **payload: Any) -> call_result.BootNotification:
        self._note("BootNotification", payload)
        return call_result.BootNotification(
            current_time=self._csms.current_time(), interval=self._csms.heartbeat_interval, status="Accepted")

    @on(Action.heartbeat)
    def on_heartbeat(self, **payload: Any) -> call_result.Heartbeat:
        self._note("Heartbeat", payload)
        return call_result.Heartbeat(current_time=self._csms.current_time())

    @on(Action.status_notification)
    def on_status_notification(self, **payload: Any) -> call_result.StatusNotification:
        self._note("StatusNotification", payload)
        return call_result.StatusNotification()

    @on(Action.notify_event)
    def on_notify_event(self, **payload: Any) -> call_result.NotifyEvent:
        self._note("NotifyEvent", payload)
        return call_result.NotifyEvent()

    @on(Action.security_event_notification)
    def on_security_event(self, **payload: Any) -> call_result.SecurityEventNotification:
        self._note("SecurityEventNotification", payload)
        return call_result.SecurityEventNotification()


class OcppCsms:
    """A `websockets` server with the `ocpp` package's central-system ChargePoint, in a
    thread of its own. Thread-safe API for the trio test: start(), stop(), call(),
    calls (list of (station_id, action, snake_case payload)), failures."""

    def __init__(self, heartbeat_interval: int = 1, current_time=_utc_now) -> None:
        self.heartbeat_interval = heartbeat_interval
        self.current_time = current_time   # currentTime of Boot/Heartbeat responses
        self.port = 0
        self.calls: list[tuple[str, str, dict]] = []
        self.failures: list[str] = []
        self.raw_frames = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._cps: dict[str, _Csms] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="ocpp-csms", daemon=True)
        self._crash: BaseException | None = None

    # -- thread side ------------------------------------------------------------------
    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:   # surfaced by start()/stop()
            self._crash = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL],
                         ping_interval=None, close_timeout=2) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    async def _handler(self, ws: ServerConnection) -> None:
        station_id = unquote(ws.request.path.rstrip("/").rsplit("/", 1)[-1])
        if ws.subprotocol != SUBPROTOCOL:
            self.record_failure(station_id, None, f"subprotocol {ws.subprotocol!r} negotiated, not {SUBPROTOCOL}")
            await ws.close(1002, "ocpp2.0.1 required")
            return
        expected = "Basic " + base64.b64encode(f"{station_id}:{PASSWORD}".encode()).decode()
        if ws.request.headers.get("Authorization") != expected:
            self.record_failure(station_id, None, "missing or wrong Basic auth header")
        cp = _Csms(station_id, _ValidatingConnection(ws, self, station_id), self)
        with self._lock:
            self._cps[station_id] = cp
            self.connections += 1
        try:
            await cp.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            with self._lock:
                if self._cps.get(station_id) is cp:
                    del self._cps[station_id]

    # -- shared -----------------------------------------------------------------------
    def record_failure(self, station_id: str, frame: Any, what: str) -> None:
        with self._lock:
            self.failures.append(f"{station_id}: {what} -- frame {frame!r}"[:2000])

    def note_call(self, station_id: str, action: str, payload: dict) -> None:
        with self._lock:
            self.calls.append((station_id, action, payload))

    # -- test side (any thread) -------------------------------------------------------
    def start(self, timeout: float = 5.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout) or self._crash is not None:
            raise RuntimeError(f"ocpp CSMS did not start: {self._crash!r}")

    def stop(self, timeout: float = THREAD_JOIN_TIMEOUT) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:   # loop already closed
                pass
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("ocpp CSMS thread did not stop in time")
        if self._crash is not None:
            raise RuntimeError(f"ocpp CSMS thread crashed: {self._crash!r}") from self._crash

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    def connected(self, station_id: str) -> bool:
        with self._lock:
            return station_id in self._cps

    def call(self, station_id: str, payload: Any, timeout: float = 5.0) -> Any:
        """Blocking: send a CALL from the package's CSMS; the package validates the request
        and the response (skip_schema_validation False) and raises on a CALLERROR."""
        with self._lock:
            cp = self._cps[station_id]
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(cp.call(payload, suppress=False), self._loop)
        try:
            return fut.result(timeout)
        except BaseException:
            fut.cancel()
            raise


# --------------------------------------------------------------------------- trio helpers


async def csms_call(csms: OcppCsms, payload: Any, timeout: float = 5.0) -> Any:
    return await trio.to_thread.run_sync(functools.partial(csms.call, SID, payload, timeout),
                                         abandon_on_cancel=True)


async def wait_for(csms: OcppCsms, action: str, *, after: int = 0, where=lambda p: True,
                   timeout: float = 5.0) -> tuple[int, dict]:
    """(index, payload) of the first call `action` at index >= after matching `where`."""
    with trio.fail_after(timeout):
        while True:
            for i, (sid, act, payload) in enumerate(list(csms.calls)[after:], start=after):
                if sid == SID and act == action and where(payload):
                    return i, payload
            await trio.sleep(0.01)


async def wait_connected(csms: OcppCsms, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not csms.connected(SID):
            await trio.sleep(0.01)


async def start_station(nursery: trio.Nursery, tmp_path: Path, url: str) -> StationRuntime:
    config = make_config(tmp_path, url, evses="[1, 2]")
    rt: StationRuntime | None = None
    deployment = compose(config, lambda: rt.snapshot())
    rt = StationRuntime(config, deployment)
    await nursery.start(rt.run)
    return rt


def _statuses_and_events_seen(csms: OcppCsms, after: int, connectors, status: str) -> bool:
    seen_status, seen_event = set(), set()
    for sid, action, p in list(csms.calls)[after:]:
        if sid != SID:
            continue
        if action == "StatusNotification" and p["connector_status"] == status:
            seen_status.add((p["evse_id"], p["connector_id"]))
        elif action == "NotifyEvent":
            for ev in p["event_data"]:
                evse = ev["component"].get("evse") or {}
                if ev["variable"]["name"] == "AvailabilityState" and ev["actual_value"] == status:
                    seen_event.add((evse.get("id"), evse.get("connector_id")))
    return set(connectors) <= seen_status and set(connectors) <= seen_event


async def wait_statuses(csms: OcppCsms, after: int, connectors, status: str, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not _statuses_and_events_seen(csms, after, connectors, status):
            await trio.sleep(0.01)


# --------------------------------------------------------------------------- the test


async def test_station_against_ocpp_package_csms(tmp_path):
    t0 = time.monotonic()
    csms = OcppCsms(heartbeat_interval=1)
    csms.start()
    connectors = [(1, 1), (2, 1), (2, 2)]
    try:
        with trio.fail_after(15):
            async with trio.open_nursery() as nursery:
                rt = await start_station(nursery, tmp_path, csms.url)

                # B01: BootNotification (the package validated it and our Accepted answer)
                _, boot = await wait_for(csms, "BootNotification")
                assert boot["reason"] == "PowerUp"
                assert boot["charging_station"]["vendor_name"] == "ACME"
                # StatusNotification + NotifyEvent(AvailabilityState) for every connector
                await wait_statuses(csms, 0, connectors, "Available")
                # Heartbeat at the 1 s interval of the BootNotificationResponse
                n = len(csms.calls)
                await wait_for(csms, "Heartbeat", after=n, timeout=3)

                # GetVariables / SetVariables sent by the package's CSMS
                res = await csms_call(csms, call.GetVariables(get_variable_data=[
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
                    {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "Identity"}},
                ]))
                assert isinstance(res, call_result.GetVariables)
                got = {r["variable"]["name"]: r for r in res.get_variable_result}
                assert got["HeartbeatInterval"]["attribute_status"] == "Accepted"
                assert got["HeartbeatInterval"]["attribute_value"] == "1"
                assert got["Identity"]["attribute_value"] == SID

                res = await csms_call(csms, call.SetVariables(set_variable_data=[
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"},
                     "attribute_value": "345"},
                ]))
                assert isinstance(res, call_result.SetVariables)
                assert res.set_variable_result[0]["attribute_status"] == "Accepted"

                # B11 Reset -> the station reboots and boots again with reason RemoteReset
                n = len(csms.calls)
                res = await csms_call(csms, call.Reset(type="Immediate"))
                assert res.status == "Accepted"
                _, boot = await wait_for(csms, "BootNotification", after=n, timeout=8)
                assert boot["reason"] == "RemoteReset"
                await wait_statuses(csms, n, connectors, "Available")
                assert rt.boot_count == 2
                await wait_connected(csms)

                res = await csms_call(csms, call.GetVariables(get_variable_data=[
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"}}]))
                assert res.get_variable_result[0]["attribute_value"] == "345"

                # plug via the simulator's control socket -> StatusNotification Occupied
                n = len(csms.calls)
                reply = await send_control_command(str(tmp_path / "sim.sock"),
                                                   {"cmd": "plug", "evse": 1, "connector": 1})
                assert reply["ok"], reply
                await wait_statuses(csms, n, [(1, 1)], "Occupied")

                nursery.cancel_scope.cancel()
    finally:
        csms.stop()

    assert csms.failures == [], "\n".join(csms.failures)
    actions = {a for _, a, _ in csms.calls}
    assert {"BootNotification", "StatusNotification", "NotifyEvent", "Heartbeat"} <= actions
    # every station frame went through the raw validator (its CALLs plus the CALLRESULTs
    # of our 2 GetVariables, 1 SetVariables and 1 Reset)
    assert csms.raw_frames >= len(csms.calls) + 4
    assert csms.connections == 2
    assert time.monotonic() - t0 < 20


async def test_csms_sending_date_times_without_offset_gets_an_accepted_station(tmp_path, caplog):
    """Interop: CSMSs that answer with currentTime like "2026-12-07T21:00:00.123456"
    (no UTC offset). The station reads it as UTC (README "Leniencies"), becomes
    Accepted, logs one warning for the connection, and sends RFC 3339 with offset."""
    ahead = timedelta(hours=2)   # the CSMS's clock is 2 h ahead: shows the time is taken, as UTC

    def naive_now() -> str:
        return (datetime.now(timezone.utc) + ahead).replace(tzinfo=None).isoformat(timespec="microseconds")

    caplog.set_level(logging.WARNING, logger="evse.station")
    csms = OcppCsms(heartbeat_interval=1, current_time=naive_now)
    csms.start()
    try:
        with trio.fail_after(15):
            async with trio.open_nursery() as nursery:
                await start_station(nursery, tmp_path, csms.url)
                await wait_for(csms, "BootNotification")
                # only an Accepted station reports its connectors and sends heartbeats
                await wait_statuses(csms, 0, [(1, 1), (2, 1), (2, 2)], "Available")
                n = len(csms.calls)
                await wait_for(csms, "Heartbeat", after=n, timeout=3)
                await wait_for(csms, "Heartbeat", after=n + 1, timeout=3)   # a second naive answer
                nursery.cancel_scope.cancel()
    finally:
        csms.stop()

    assert csms.failures == [], "\n".join(csms.failures)   # every frame sent: schema + RFC 3339 with offset
    boots = [p for _, a, p in csms.calls if a == "BootNotification"]
    assert len(boots) == 1   # accepted at once: no FormatViolation, no boot loop
    stamps = [datetime.fromisoformat(p["timestamp"]) for _, a, p in csms.calls if a == "StatusNotification"]
    assert stamps and all(abs(t - (datetime.now(timezone.utc) + ahead)) < timedelta(seconds=20) for t in stamps)
    warnings = [r.getMessage() for r in caplog.records if "without UTC offset" in r.getMessage()]
    assert warnings == ["CSMS sent date-time without UTC offset in BootNotificationResponse.currentTime; "
                        "read as UTC"]
