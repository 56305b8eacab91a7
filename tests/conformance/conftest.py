"""The rig of the OCA certification test cases (Part 6, "System under test: Charging Station").

The REAL station (bootstrap.config.parse_config + bootstrap.compose.compose +
bootstrap.runtime.StationRuntime: websocket link, SQLite file, simulated hardware with
its control socket) runs against devtools.dev_csms.DevCsms, which plays the OCTT.

Two transports, one rig. By default a conformance test runs under
``trio.testing.MockClock(autojump_threshold=0)``: the station's WebSocket link and the
DevCsms talk over in-memory streams, the simulated hardware takes its commands in process and
the station, the DevCsms and the test share one wall clock (tests/memory_link.py), so retry
intervals, heartbeats, offline periods and EVConnectionTimeOut take no real time while
every wait still lasts its full length in trio time. A test marked ``@pytest.mark.real_clock``
runs with the real clock, loopback websockets and the control socket, as in
tests/integration/test_station_e2e.py: a test about the link itself (TC_B_57: back-off measured
at the CSMS), or one whose body relies on real latency (TC_B_21, see its comment).

Use the ``boot_station`` fixture inside the test's own ``trio.fail_after``::

    async def test_TC_X_nn_CS_something(boot_station):
        with trio.fail_after(10):
            async with boot_station(device_model={"OCPPCommCtrlr.OfflineThreshold": 300}) as cs:
                res = await cs.call("GetVariables", {...})

``device_model`` is the "Before (Preparations) / Configuration State" of a test case: it is
written into the station's configuration file ([device_model] table), so the value is in
place before the station boots and does not depend on the SetVariables under test. A value
the station's device model refuses (e.g. an unknown variable) fails the test with the
station's reason.

The context manager waits until the station is registered (BootNotification Accepted) and
has reported every connector (StatusNotification + NotifyEvent), so a test starts from an
idle station. With ``boot_statuses=["Pending"]`` (or ``["Rejected"]``, ...) the DevCsms
answers the first BootNotificationRequest(s) so (then Accepted, or what the test sets in
``cs.csms.boot_status``) and the block starts as soon as the first one is answered: the
test plays the registration (TC_B_02, B_03, B_30). When the block ends, the station is stopped and EVERY frame the station sent
during the test is validated against the official OCPP 2.0.1 JSON schemas with the PyPI
``ocpp`` package (``ocpp.messages.Call`` / ``CallResult`` + ``validate_payload(msg,
"2.0.1")``; CALLRESULTs against the response schema of the action the CSMS called), plus
the date-time format the package does not check (RFC 3339, at most 3 fractional digits), the
OCPP-J framing of CALLERRORs and the DevCsms's own complaints about malformed frames. A problem fails the test (or is
attached as a note when the test already failed).
"""
from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import trio
from ocpp.messages import Call, CallResult, get_validator, validate_payload

from bootstrap.compose import compose
from bootstrap.config import Config, ConfigError, parse_config
from devtools.dev_csms import DevCsms
from bootstrap.runtime import Deployment, StationRuntime
from devtools.toml_text import toml_value
from tests.memory_link import in_memory, mock_clock_running, rig_utc_now, serve_csms, sim_command

HERE = Path(__file__).parent

STATION_ID = "CS-OCTT-1"
PASSWORD = "0123456789abcdef"
OCPP_VERSION = "2.0.1"
STOP_TIMEOUT = 5.0

CALL, CALLRESULT, CALLERROR = 2, 3, 4
RPC_ERROR_CODES = frozenset({
    "FormatViolation", "GenericError", "InternalError", "MessageTypeNotSupported", "NotImplemented",
    "NotSupported", "OccurrenceConstraintViolation", "PropertyConstraintViolation", "ProtocolError",
    "RpcFrameworkError", "SecurityError", "TypeConstraintViolation",
})
# What the DevCsms logs about a station frame it could not take as OCPP-J.
_CSMS_COMPLAINTS = (
    "binary frame", "frame is not JSON", "is not an OCPP-J array", "malformed CALL", "CALL payload is not",
    "malformed CALLRESULT", "malformed CALLERROR", "unknown messageTypeId", "for unknown message id",
    "is not an object",
)


# --------------------------------------------------------------------------- the clock

def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every conformance test runs under the MockClock (tests/conftest.py: marker mock_clock),
    except those marked real_clock."""
    for item in items:
        if item.path.is_relative_to(HERE) and item.get_closest_marker("real_clock") is None:
            item.add_marker(pytest.mark.mock_clock)


# --------------------------------------------------------------------------- configuration

def make_config(tmp_path: Path, url: str, *, evse_connectors: Iterable[int] = (1,),
                device_model: dict[str, Any] | None = None, tables: str = "", csms_toml: str = "") -> Config:
    """The station's configuration file; `tables`: more TOML tables (e.g. ``[smart_charging]``),
    `csms_toml`: more lines of its [csms] table (security profile, files)."""
    values = {
        # reconnect at once after a restart
        "OCPPCommCtrlr.RetryBackOffWaitMinimum": 0,
        "OCPPCommCtrlr.RetryBackOffRandomRange": 1,
        **(device_model or {}),
    }
    lines = "\n".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in values.items())
    return parse_config(
        f"""
        [station]
        id = "{STATION_ID}"
        vendor_name = "ACME"
        model = "OCTT-1"
        evse_connectors = [{", ".join(str(n) for n in evse_connectors)}]
        [csms]
        url = "{url}"
        basic_auth_password = "{PASSWORD}"
        {csms_toml}
        [storage]
        path = "station.db"
        [hardware]
        control_socket = "sim.sock"
{tables}
        [device_model]
{lines}
        """,
        base_dir=tmp_path,
    )


# --------------------------------------------------------------------------- the handle

class ConformanceStation:
    """The station under test and the CSMS double it is connected to."""

    def __init__(self, nursery: trio.Nursery, tmp_path: Path, csms: DevCsms, config: Config) -> None:
        self.nursery = nursery
        self.tmp_path = tmp_path
        self.csms = csms
        self.config = config
        self.station_id = config.station.id
        self.connectors = [(e, c) for e, n in enumerate(config.station.evse_connectors, start=1)
                           for c in range(1, n + 1)]
        self.control_socket = str(tmp_path / "sim.sock")
        self.db_path = config.storage.path
        self.runtime: StationRuntime | None = None
        self.deployment: Deployment | None = None     # of the last start (the sim outlives a stop)
        self.starts = 0
        self._scope: trio.CancelScope | None = None
        self._stopped: trio.Event | None = None

    # -- talking to the station ----------------------------------------------------------
    async def call(self, action: str, payload: dict, timeout: float = 5) -> dict:
        """Send a CALL as the OCTT; the CALLRESULT payload (CallError on a CALLERROR)."""
        return await self.csms.call(self.station_id, action, payload, timeout=timeout)

    async def control(self, **command: Any) -> dict:
        """One command on the simulated hardware's control socket (`plug`, `fault`, `state`...);
        in process under the MockClock."""
        assert self.deployment is not None, "the station was never started"
        reply = await sim_command(self.deployment, self.control_socket, command)
        assert reply.get("ok"), f"control socket refused {command}: {reply}"
        return reply

    def mark(self) -> int:
        """Index into csms.received: pass it as `after` to look only at what follows."""
        return len(self.csms.received)

    def calls(self, action: str | None = None, after: int = 0) -> list[tuple[int, dict]]:
        """(index in csms.received, payload) of the station's CALLs (of `action`) from `after` on."""
        return [(i, f[3]) for i, (sid, f) in enumerate(self.csms.received[after:], start=after)
                if sid == self.station_id and len(f) == 4 and f[0] == CALL
                and (action is None or f[2] == action) and isinstance(f[3], dict)]

    async def next_call(self, action: str, *, after: int, where: Callable[[dict], bool] | None = None,
                        timeout: float = 5) -> tuple[int, dict]:
        """Wait for the station's next CALL `action` (matching `where`) at index >= after."""
        await self.csms.wait_for(action, station_id=self.station_id, where=where, after=after, timeout=timeout)
        for i, payload in self.calls(action, after):
            if where is None or where(payload):
                return i, payload
        raise AssertionError("unreachable: wait_for found a frame that calls() does not")

    # -- life cycle ----------------------------------------------------------------------
    async def wait_answered(self, index: int) -> None:
        """Until the DevCsms has sent its answer to the station's CALL at csms.received[index]."""
        message_id = self.csms.received[index][1][1]
        while not any(sid == self.station_id and f[0] in (CALLRESULT, CALLERROR) and f[1] == message_id
                      for sid, f in self.csms.sent):
            await trio.sleep(0.005)

    async def start(self, timeout: float = 10, *, registered: bool = True) -> None:
        """Start the station (on the existing SQLite file, if any) and wait until it is
        registered and has reported every connector (`registered` False: only until its
        first BootNotificationRequest has been answered)."""
        assert self._scope is None, "the station is running"
        after = self.mark()
        runtime: StationRuntime | None = None

        def view() -> dict:
            return runtime.snapshot() if runtime is not None else {"csms_connected": False, "evses": {}}

        self.deployment = in_memory(compose(self.config, view), self.csms, self.nursery)
        runtime = StationRuntime(self.config, self.deployment, wall_clock=rig_utc_now)
        try:
            await self.nursery.start(self._run, runtime)
        except ConfigError as exc:
            pytest.fail(f"Before (preparations): the station refused its configuration: {exc}", pytrace=False)
        self.runtime = runtime
        self.starts += 1
        if registered:
            await self.wait_booted(after, timeout)
            return
        with trio.fail_after(timeout):
            index, _ = await self.next_call("BootNotification", after=after, timeout=timeout)
            await self.wait_answered(index)

    async def _run(self, runtime: StationRuntime, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        stopped = trio.Event()
        with trio.CancelScope() as scope:
            self._scope, self._stopped = scope, stopped
            try:
                await runtime.run(task_status=task_status)
            finally:
                stopped.set()
                if self._scope is scope:
                    self._scope = None

    async def wait_booted(self, after: int, timeout: float = 10) -> None:
        with trio.fail_after(timeout):
            await self.next_call("BootNotification", after=after, timeout=timeout)
            for evse, conn in self.connectors:
                await self.next_call("StatusNotification", after=after, timeout=timeout,
                                     where=lambda p, e=evse, c=conn: (p.get("evseId"), p.get("connectorId")) == (e, c))
                await self.next_call("NotifyEvent", after=after, timeout=timeout, where=lambda p, e=evse, c=conn: any(
                    (d.get("component") or {}).get("evse") == {"id": e, "connectorId": c}
                    for d in p.get("eventData", ())))

    async def stop(self) -> None:
        """Stop the station (as on power-off: the runtime closes its link and its storage)."""
        scope, stopped = self._scope, self._stopped
        if scope is None or stopped is None:
            return
        scope.cancel()
        with trio.fail_after(STOP_TIMEOUT):
            await stopped.wait()
            while self.station_id in self.csms.connected:
                await trio.sleep(0.005)
        self._scope = None
        self.runtime = None

    async def restart(self, timeout: float = 10) -> None:
        """Stop, then start again on the same SQLite file (persistence checks)."""
        await self.stop()
        await self.start(timeout)


# --------------------------------------------------------------------------- schema checks

# RFC 3339, with Part 2 2.1's limit on dateTime: "The number of decimal places SHALL NOT exceed
# the maximum of 3"
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,3})?([Zz]|[+-]\d{2}:\d{2})\Z")
_formats = jsonschema.FormatChecker(formats=())


@_formats.checks("date-time")
def _is_rfc3339(value: object) -> bool:
    if not isinstance(value, str) or _RFC3339.match(value) is None:
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _format_problem(message: Call | CallResult) -> str | None:
    schema = get_validator(message.message_type_id, message.action, OCPP_VERSION).schema
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft4Validator(schema, format_checker=_formats).iter_errors(message.payload))
    return None if error is None else f"{error.message} at {list(error.absolute_path)}"


def _describe(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    cause = details.get("cause") if isinstance(details, dict) else None
    return f"{type(exc).__name__}: {cause or exc}"


def _short(frame: Any) -> str:
    text = json.dumps(frame, separators=(",", ":"))
    return text if len(text) <= 400 else text[:380] + f"… (+{len(text) - 380} chars)"


def schema_problems(station_id: str, received: list[tuple[str, list]], sent: list[tuple[str, list]],
                    log_lines: Iterable[str] = ()) -> tuple[int, list[str]]:
    """(number of frames checked, problems) for the frames `station_id` sent.

    CALLs are validated against the request schema of their action, CALLRESULTs against
    the response schema of the action the CSMS called with that message id (from `sent`),
    CALLERRORs for their OCPP-J shape. Runs the ocpp package's async validate_payload in
    an asyncio loop of its own (call it from a worker thread when inside trio)."""
    our_calls = {f[1]: f[2] for sid, f in sent
                 if sid == station_id and len(f) == 4 and f[0] == CALL and isinstance(f[1], str)}
    problems: list[str] = [f"the CSMS could not take a station frame: {line}" for line in log_lines
                           if line.startswith(f"{station_id}: ") and any(c in line for c in _CSMS_COMPLAINTS)]
    messages: list[tuple[list, Call | CallResult]] = []
    checked = 0
    for sid, f in received:
        if sid != station_id:
            continue
        checked += 1
        kind = f[0] if f else None
        uid = f[1] if len(f) > 1 else None
        if not isinstance(uid, str) or not 0 < len(uid) <= 36:
            problems.append(f"message id {uid!r} is not a string of 1..36 characters: {_short(f)}")
            continue
        if kind == CALL:
            if len(f) != 4 or not isinstance(f[2], str) or not isinstance(f[3], dict):
                problems.append(f"malformed CALL: {_short(f)}")
                continue
            messages.append((f, Call(uid, f[2], f[3])))
        elif kind == CALLRESULT:
            if len(f) != 3 or not isinstance(f[2], dict):
                problems.append(f"malformed CALLRESULT: {_short(f)}")
                continue
            action = our_calls.get(uid)
            if action is None:
                problems.append(f"CALLRESULT to no CALL of the CSMS: {_short(f)}")
                continue
            messages.append((f, CallResult(uid, f[2], action)))
        elif kind == CALLERROR:
            if (len(f) != 5 or f[2] not in RPC_ERROR_CODES or not isinstance(f[3], str) or len(f[3]) > 255
                    or not isinstance(f[4], dict)):
                problems.append(f"malformed CALLERROR: {_short(f)}")
        else:
            problems.append(f"unknown messageTypeId: {_short(f)}")

    async def validate_all() -> None:
        for frame, message in messages:
            what = "request" if isinstance(message, Call) else "response"
            try:
                await validate_payload(message, OCPP_VERSION)
            except Exception as exc:   # noqa: BLE001 - every failure is a finding
                problems.append(f"{message.action} {what} fails the schema: {_describe(exc)} -- {_short(frame)}")
                continue
            if (why := _format_problem(message)) is not None:
                problems.append(f"{message.action} {what} fails the schema: {why} -- {_short(frame)}")

    asyncio.run(validate_all())
    return checked, problems


# --------------------------------------------------------------------------- the fixture

_PASS_THROUGH = (trio.Cancelled, KeyboardInterrupt, SystemExit, GeneratorExit)


@asynccontextmanager
async def open_conformance_station(
    tmp_path: Path, *, device_model: dict[str, Any] | None = None, evse_connectors: Iterable[int] = (1,),
    heartbeat_interval: int = 3600, boot_timeout: float = 10, boot_statuses: Iterable[str] = (),
    tables: str = "",
    csms_toml: str = "", ssl_context: Any = None, csms_url: str | None = None,
    basic_auth: dict[str, str] | None = None, on_csms: Callable[[DevCsms], Any] | None = None,
) -> AsyncIterator[ConformanceStation]:
    """Boot the real station against a DevCsms (in memory under the MockClock, else on
    loopback); see the module docstring. `ssl_context`: the DevCsms serves TLS with it (real_clock
    tests), `csms_toml`: more lines of the station's [csms] table, `csms_url`: the URL the station
    connects to (a front end of the test's own that hands its streams to csms.serve_stream),
    `basic_auth`: the DevCsms checks the Basic credentials of every handshake, `on_csms(csms)`: told
    the DevCsms before the station starts (a front end serving streams to it)."""
    log_lines: list[str] = []
    csms = DevCsms(heartbeat_interval=heartbeat_interval, boot_statuses=boot_statuses, log=log_lines.append,
                   clock=rig_utc_now, ssl_context=ssl_context, basic_auth=basic_auth)
    if on_csms is not None:
        on_csms(csms)
    registered = not csms.boot_statuses or csms.boot_statuses[0] == "Accepted"
    failure: BaseException | None = None
    async with trio.open_nursery() as nursery:
        await serve_csms(csms, nursery)
        station = ConformanceStation(
            nursery, tmp_path, csms,
            make_config(tmp_path, csms_url or csms.url, evse_connectors=evse_connectors,
                        device_model=device_model, tables=tables, csms_toml=csms_toml))
        try:
            await station.start(boot_timeout, registered=registered)
        except _PASS_THROUGH:
            raise
        except BaseException as exc:   # noqa: BLE001 - re-raised below, outside the nursery
            failure = exc
        if failure is None:
            try:
                yield station
            except _PASS_THROUGH:
                raise
            except BaseException as exc:   # noqa: BLE001 - re-raised below, outside the nursery
                failure = exc
            await station.stop()
        nursery.cancel_scope.cancel()

    check = (station.station_id, list(csms.received), list(csms.sent), list(log_lines))
    if mock_clock_running():
        # in a thread the mock clock would jump to the test's fail_after deadline meanwhile
        checked, problems = schema_problems(*check)
    else:
        checked, problems = await trio.to_thread.run_sync(schema_problems, *check)
    if checked == 0 and failure is None:
        problems.append("no station frame was checked (not even its BootNotification)")
    report = f"{len(problems)} schema problem(s) in the {checked} frame(s) the station sent:\n" + "\n".join(
        f"  - {p}" for p in problems)
    if failure is not None:
        if problems:
            failure.add_note(report)
        raise failure
    if problems:
        pytest.fail(report, pytrace=False)


@pytest.fixture
def boot_station(tmp_path: Path):
    """Factory of the conformance rig: ``async with boot_station(device_model=..., evse_connectors=[1, 2])``."""

    def factory(**kwargs: Any):
        return open_conformance_station(tmp_path, **kwargs)

    return factory



# --------------------------------------------------------------------------- steps shared by the test modules
# One definition each. The reusable states themselves (Session, present, ...) live in
# test_efj_transactions / test_cd_authorization, which import this module: the memory state
# below imports them when it runs.

CALL_WAIT = 3           # s, for a message the station must send


def show(token: dict | None) -> str:
    """An idToken as the failure messages name it."""
    return "-" if token is None else f"{token.get('idToken')} ({token.get('type')})"


def sent_calls(cs: ConformanceStation, after: int) -> list[str]:
    return [f"{f[2]}" for sid, f in cs.csms.received[after:] if sid == cs.station_id and f[0] == CALL]


async def describe(cs: ConformanceStation) -> str:
    try:
        st = await cs.control(cmd="state")
    except Exception as exc:   # noqa: BLE001 - only for a failure message
        return f"sim state unavailable: {exc}"
    return "station view: " + "; ".join(
        f"EVSE {e['evse']}: transaction {e.get('transaction_id')!r}, authorized {e.get('authorized')!r}, "
        f"power path {'closed' if e.get('power_path_closed') else 'open'}, EV state {e.get('ev_state')}"
        for e in st["evses"])


async def expect_call(cs: ConformanceStation, action: str, *, after: int, step: str,
                      where: Callable[[dict], bool] | None = None, timeout: float = CALL_WAIT) -> tuple[int, dict]:
    """The station's next CALL `action` (matching `where`) from index `after` on, or fail naming the step."""
    try:
        return await cs.next_call(action, after=after, where=where, timeout=timeout)
    except trio.TooSlowError:
        pytest.fail(f"{step}: the station sent no {action}Request within {timeout} s (CALLs it sent since: "
                    f"{sent_calls(cs, after)}; {await describe(cs)})", pytrace=False)


async def cache_storage(cs: ConformanceStation) -> int:
    """AuthCacheCtrlr.Storage; also a barrier: answered after what the CSMS sent before."""
    res = await cs.call("GetVariables", {"getVariableData": [
        {"component": {"name": "AuthCacheCtrlr"}, "variable": {"name": "Storage"}}]})
    r = res["getVariableResult"][0]
    assert r["attributeStatus"] == "Accepted", f"AuthCacheCtrlr.Storage: {r}"
    return int(r["attributeValue"])


async def id_token_cached(cs: ConformanceStation, token: dict, answer: str | dict = "Accepted",
                          step: str | None = None, *, info: dict | None = None, start: str | None = None,
                          expect_cached: bool = True) -> None:
    """Memory State IdTokenCached (Part 6, table 443) for `token`.

    The CSMS answers the AuthorizeRequest with `answer`: a status, or the whole idTokenInfo
    (e.g. with a groupIdToken; also accepted as `info`, then `answer` is its status). An
    Accepted token is authorized, the EV connects, the same token ends the session and the
    EV leaves (the TransactionEventResponses carry the same idTokenInfo, so C10.FR.05 keeps
    the entry as answered); another status is only asked for. `step` names the step in
    failure messages; `start`: the station's configured TxStartPoint (default
    PowerPathClosed); `expect_cached`: the cache is enabled, so AuthCacheCtrlr.Storage must
    show the entry.
    """
    from tests.conformance.test_cd_authorization import answered, csms_answers_authorize, present  # noqa: PLC0415
    from tests.conformance.test_efj_transactions import DEFAULT_START, Session, check_authorize  # noqa: PLC0415

    if info is None:
        info = answer if isinstance(answer, dict) else {"status": answer}
    status = answer if isinstance(answer, str) else info["status"]
    what = step or f"Before (Memory State IdTokenCached for {token['idToken']})"
    if status == "Accepted":
        s = Session(cs, token=token, start=start or DEFAULT_START)
        await s.authorized_local(f"{what}, Authorized", info=info)
        await s.ev_connected_pre_session(f"{what}, EVConnectedPreSession")
        if set(info) == {"status"}:
            await s.stop_authorized_local(f"{what}, StopAuthorized")
        else:
            await _stop_authorized_answering(s, f"{what}, StopAuthorized", info)
        await s.ev_connected_post_session(f"{what}, EVConnectedPostSession")
        await s.ev_disconnected(f"{what}, EVDisconnected")
    else:
        csms_answers_authorize(cs, info)
        after = cs.mark()
        await present(cs, token)
        index, req = await expect_call(cs, "Authorize", after=after, step=f"{what}, Authorized step 1")
        check_authorize(f"{what}, Authorized step 1", req, token)
        await answered(cs, index)
    storage = await cache_storage(cs)
    if expect_cached:
        assert storage > 0, f"{what}: AuthCacheCtrlr.Storage is 0: nothing was cached"


async def _stop_authorized_answering(s, step: str, info: dict) -> None:
    """Session.stop_authorized_local, the OCTT answering the TransactionEventRequests with
    `info` (the same idTokenInfo as its AuthorizeResponse for the token, e.g. with its
    groupIdToken, so the cache entry keeps it: C10.FR.05 updates it from this response)."""
    from tests.conformance.test_cd_authorization import present  # noqa: PLC0415
    from tests.conformance.test_efj_transactions import TD, check_te, csms_answers_transaction_event  # noqa: PLC0415

    await trio.sleep(TD)
    csms_answers_transaction_event(s.cs, info)
    await present(s.cs, s.token, s.evse)
    p = await s.next_te(f"{step} step 1")
    check_te(f"{step} step 1", p, trigger="StopAuthorized", token_or_omitted=s.token)
    s.authorized = False
    if not s.ended and "EnergyTransfer" in s.stop:
        p3 = await s.next_te(f"{step} step 3")
        check_te(f"{step} step 3", p3, trigger="ChargingStateChanged", state="EVConnected", event_type="Ended",
                 stopped=("Local", None))
