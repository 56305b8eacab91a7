"""OCA certification test cases of functional blocks E (transactions), F01-F10 (remote
control) and J (meter values), Charging Station side.

One test per test case of OCPP 2.0.1 Edition 3 Part 6 ("Test case Id TC_E_nn_CS", ...): the
steps are followed as written and every tool validation is asserted; the station is the real
one, the OCTT is played by the DevCsms (see conftest.py, which also validates every frame the
station sent against the official JSON schemas when a test ends). The EV driver is played
through the simulated hardware's control socket: "present idToken" is the `token` command at
the EVSE's reader, "connect the EV" `plug`, "the EV draws energy" `ev_charge`, "the EV
suspends" `ev_pause`, "drive into / out of the parking bay" `occupancy`.

The reusable states of Part 6 (ParkingBayOccupied, EVConnectedPreSession, Authorized A
(local) / B (remote), EnergyTransferStarted, EnergyTransferSuspended, StopAuthorized A / B,
EVConnectedPostSession, EVDisconnected, ParkingBayUnoccupied) are the methods of `Session`:
each checks its tool validations, and expects its TransactionEventRequest steps only where the
reusable state says they "need to be executed" for the configured TxStartPoint / TxStopPoint.
Readings of the notes where the text is ambiguous:
- EVConnectedPreSession step 3 / EnergyTransferStarted part 1 step 3 are expected when
  TxStartPoint contains EVConnected, when the transaction already started, or when TxStartPoint
  is PowerPathClosed and the state is Authorized (the eventType rule of EVConnectedPreSession
  step 3: "started if TxStartPoint is EVConnected or PowerPathClosed and State is Authorized").
- Authorized (local) step 3 is also expected when TxStartPoint is PowerPathClosed and the EV is
  connected (as in Main B step 7: "Started if TxStartPoint is Authorized or PowerPathClosed and
  State is EVConnectedPreSession").
- StopAuthorized A step 3 (ChargingStateChanged, Ended) is expected only when the transaction did
  not end at step 1 and TxStopPoint contains EnergyTransfer (the energy stops after the stop).
- The optional ParkingBayOccupied state is executed only when TxStartPoint/TxStopPoint contains
  ParkingBayOccupancy or a main step asks for it; ParkingBayUnoccupied likewise.
- General tool rules checked on every TransactionEventRequest: the first one of a transaction
  has eventType Started; the first after a RequestStartTransactionRequest has triggerReason
  RemoteStart and transactionInfo.remoteStartId (this overrules the step's triggerReason).

Chosen configured values (the test cases leave them to the OCTT's configuration):
- valid_idtoken 04A2B3C4 / ISO14443 (valid_idtoken2 04D5E6F7), invalid 0BAD0001; evseId 1,
  connectorId 1; the EV draws 7400 W; remoteStartId 4711.
- TxStartPoint / TxStopPoint, where a test case leaves them free: the station's defaults
  (PowerPathClosed / EVConnected,Authorized), set explicitly.
- <Configured Transaction Duration> TD s; <Configured ev_connection_timeout> 1 s (the
  minimum of TxCtrlr.EVConnectionTimeOut); clock-aligned interval 2 s; sampled intervals 1 s;
  <Configured message timeout> (the wait for a message that must NOT come) QUIET s.
Where the station differs from a step, the test fails with a message naming the step.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import trio

from devtools.dev_csms import CallError
from tests.conformance.conftest import expect_call, show

# Steps shared with the authorization test cases (one definition, in test_cd_authorization).
from tests.conformance.test_cd_authorization import (  # noqa: E402
    answered,
    connector_reported,
    csms_answers_authorize,
    fail,
    id_token,
    present,
)

TIMEOUT = 15            # s, per test
CALL_WAIT = 3           # s, for a message the station must send
QUIET = 0.6             # s, the wait for a message that must NOT come
TD = 0.3                # s, <Configured Transaction Duration>
EV_CONNECTION_TIMEOUT = 1   # s, <Configured ev_connection_timeout>
EVSE, CONNECTOR = 1, 1
EV_POWER_W = 7400
REMOTE_START_ID = 4711


VALID = id_token("04A2B3C4")
VALID2 = id_token("04D5E6F7")
INVALID = id_token("0BAD0001")

DEFAULT_START = "PowerPathClosed"
DEFAULT_STOP = "EVConnected,Authorized"


def tx_points(start: str = DEFAULT_START, stop: str = DEFAULT_STOP, **more: Any) -> dict[str, Any]:
    return {"TxCtrlr.TxStartPoint": start, "TxCtrlr.TxStopPoint": stop, **more}


# --------------------------------------------------------------------------- helpers

def csms_answers_transaction_event(cs, id_token_info: dict | None) -> None:
    """The OCTT's TransactionEventResponse: `id_token_info` when the request has an idToken."""
    def answer(_sid: str, payload: dict) -> dict:
        if "idToken" in payload and id_token_info is not None:
            return {"idTokenInfo": id_token_info}
        return {}
    cs.csms.handlers["TransactionEvent"] = answer


def check_authorize(step: str, req: dict, token: dict) -> None:
    got = req.get("idToken") or {}
    assert (got.get("idToken"), got.get("type")) == (token["idToken"], token["type"]), (
        f"{step}: AuthorizeRequest.idToken {show(got)}, expected {show(token)}")


def info_of(p: dict) -> dict:
    return p.get("transactionInfo") or {}


def te_summary(p: dict) -> str:
    i = info_of(p)
    parts = [f"eventType {p.get('eventType')}", f"triggerReason {p.get('triggerReason')}", f"seqNo {p.get('seqNo')}"]
    for k in ("chargingState", "stoppedReason", "remoteStartId"):
        if k in i:
            parts.append(f"{k} {i[k]}")
    if "idToken" in p:
        parts.append(f"idToken {show(p['idToken'])}")
    if "evse" in p:
        parts.append(f"evse {p['evse']}")
    if "meterValue" in p:
        parts.append(f"{len(p['meterValue'])} meterValue(s)")
    return "TransactionEventRequest(" + ", ".join(parts) + ")"


def check_te(step: str, p: dict, *, event_type: str | tuple[str, ...] | None = None,
             trigger: str | tuple[str, ...] | None = None, state: str | tuple[str, ...] | None = None,
             stopped: str | tuple[str | None, ...] | None = None, token: dict | None = None,
             token_or_omitted: dict | None = None, evse: bool = False) -> None:
    """The tool validations of one TransactionEventRequest step."""
    def one_of(v: Any) -> tuple:
        return v if isinstance(v, tuple) else (v,)

    what = te_summary(p)
    i = info_of(p)
    if event_type is not None:
        assert p.get("eventType") in one_of(event_type), (
            f"{step}: eventType must be {' or '.join(one_of(event_type))}: {what}")
    if trigger is not None:
        assert p.get("triggerReason") in one_of(trigger), (
            f"{step}: triggerReason must be {' or '.join(one_of(trigger))}: {what}")
    if state is not None:
        assert i.get("chargingState") in one_of(state), (
            f"{step}: transactionInfo.chargingState must be {' or '.join(one_of(state))}: {what}")
    if stopped is not None:
        assert i.get("stoppedReason") in one_of(stopped), (
            f"{step}: transactionInfo.stoppedReason must be {' or '.join(str(s) for s in one_of(stopped))}"
            f" (None: omitted): {what}")
    if token is not None:
        got = p.get("idToken") or {}
        assert (got.get("idToken"), got.get("type")) == (token["idToken"], token["type"]), (
            f"{step}: idToken must be {show(token)}: {what}")
    if token_or_omitted is not None and "idToken" in p:
        got = p["idToken"]
        assert (got.get("idToken"), got.get("type")) == (token_or_omitted["idToken"], token_or_omitted["type"]), (
            f"{step}: idToken must be omitted or {show(token_or_omitted)}: {what}")
    if evse:
        e = p.get("evse") or {}
        assert "id" in e and "connectorId" in e, f"{step}: evse and evse.connectorId must be provided: {what}"


def sampled(p: dict) -> list[dict]:
    return [sv for mv in p.get("meterValue") or () for sv in mv.get("sampledValue") or ()]


def measurands(mv: dict) -> list[str]:
    return [sv.get("measurand", "Energy.Active.Import.Register") for sv in mv.get("sampledValue") or ()]


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --------------------------------------------------------------------------- the session

class Session:
    """One EVSE's charging session as the reusable states of Part 6 drive it."""

    def __init__(self, cs, *, start: str = DEFAULT_START, stop: str = DEFAULT_STOP, evse: int = EVSE,
                 connector: int = CONNECTOR, token: dict = VALID) -> None:
        self.cs = cs
        self.start = frozenset(s.strip() for s in start.split(",") if s.strip())
        self.stop = frozenset(s.strip() for s in stop.split(",") if s.strip())
        self.evse, self.connector, self.token = evse, connector, token
        self.cursor = cs.mark()
        self.tx_id: str | None = None
        self.ended = False
        self.authorized = False
        self.ev = False
        self.occupied = False
        self.remote_pending = False
        self.stopped_remotely = False
        self.events: list[dict] = []

    @property
    def started(self) -> bool:
        return self.tx_id is not None and not self.ended

    def _mine(self, p: dict) -> bool:
        tid = info_of(p).get("transactionId")
        if self.started:
            return tid == self.tx_id
        if len({e for e, _ in self.cs.connectors}) == 1:
            return True             # any TransactionEventRequest: an unexpected one fails the step
        return (p.get("evse") or {}).get("id") == self.evse

    async def next_te(self, step: str, timeout: float = CALL_WAIT) -> dict:
        """The next TransactionEventRequest of this session; the general tool rules."""
        index, p = await expect_call(self.cs, "TransactionEvent", after=self.cursor, step=step, where=self._mine,
                                     timeout=timeout)
        self.cursor = index + 1
        self.events.append(p)
        await answered(self.cs, index)
        if self.tx_id is None or self.ended:
            assert p.get("eventType") == "Started", (
                f"{step}: the first TransactionEventRequest of a transaction MUST contain eventType Started: "
                f"{te_summary(p)}")
            self.tx_id, self.ended = info_of(p).get("transactionId"), False
        if self.remote_pending:
            self.remote_pending = False
            assert p.get("triggerReason") == "RemoteStart" and "remoteStartId" in info_of(p), (
                f"{step}: the first TransactionEventRequest after the RequestStartTransactionRequest must have "
                f"triggerReason RemoteStart and transactionInfo.remoteStartId: {te_summary(p)}")
        if p.get("eventType") == "Ended":
            self.ended = True
        return p

    def trigger(self, wanted: str | tuple[str, ...]) -> str | tuple[str, ...]:
        """The step's triggerReason, or RemoteStart when the general rule overrules it."""
        return "RemoteStart" if self.remote_pending else wanted

    async def no_te(self, step: str, quiet: float = QUIET, where: Callable[[dict], bool] | None = None) -> None:
        await trio.sleep(quiet)
        sent = [p for _, p in self.cs.calls("TransactionEvent", self.cursor) if where is None or where(p)]
        assert not sent, f"{step}: the station sent {', '.join(te_summary(p) for p in sent)}"

    # -- reusable states ---------------------------------------------------------------------
    async def parking_bay_occupied(self, step: str = "ParkingBayOccupied") -> None:
        await self.cs.control(cmd="occupancy", evse=self.evse, occupied=True)
        self.occupied = True
        if "ParkingBayOccupancy" in self.start or self.started:
            p = await self.next_te(f"{step} step 1")
            check_te(f"{step} step 1", p, trigger=self.trigger("EVDetected"))

    async def plug(self, step: str, *, part1: bool = False) -> dict | None:
        """EVConnectedPreSession (or EnergyTransferStarted part 1 when `part1`)."""
        after = self.cs.mark()
        await self.cs.control(cmd="plug", evse=self.evse, connector=self.connector)
        await connector_reported(self.cs, after, "Occupied", f"{step} step 1", self.evse, self.connector)
        was_started = self.started
        expect = was_started or "EVConnected" in self.start or (self.authorized and "PowerPathClosed" in self.start)
        self.ev = True
        if not expect:
            return None
        p = await self.next_te(f"{step} step 3")
        s3 = f"{step} step 3"
        if part1:
            check_te(s3, p, trigger=("RemoteStart",) if p.get("triggerReason") == "RemoteStart" else "CablePluggedIn",
                     state="EVConnected")
        else:
            check_te(s3, p, event_type="Updated" if was_started else "Started",
                     trigger=("CablePluggedIn", "ChargingStateChanged", "RemoteStart"),
                     state=("EVConnected", "SuspendedEVSE", "Charging") if self.authorized else "EVConnected")
        e = p.get("evse") or {}
        assert (e.get("id"), e.get("connectorId")) == (self.evse, self.connector), (
            f"{s3}: evse.id {e.get('id')!r} / evse.connectorId {e.get('connectorId')!r}, expected "
            f"{self.evse} / {self.connector}: {te_summary(p)}")
        return p

    async def ev_connected_pre_session(self, step: str = "EVConnectedPreSession") -> dict | None:
        if "ParkingBayOccupancy" in self.start and not self.occupied:
            await self.parking_bay_occupied(f"{step} (ParkingBayOccupied)")
        return await self.plug(step)

    async def authorized_local(self, step: str = "Authorized (local)", *, token: dict | None = None,
                               info: dict | None = None, expect_authorize: bool = True) -> dict | None:
        token = token or self.token
        info = info or {"status": "Accepted"}
        csms_answers_authorize(self.cs, info)
        csms_answers_transaction_event(self.cs, info)
        after = self.cs.mark()
        await present(self.cs, token, self.evse)
        if expect_authorize:
            index, req = await expect_call(self.cs, "Authorize", after=after, step=f"{step} step 1")
            check_authorize(f"{step} step 1", req, token)
            await answered(self.cs, index)
        self.authorized = True
        if not (self.started or "Authorized" in self.start or ("PowerPathClosed" in self.start and self.ev)):
            return None
        p = await self.next_te(f"{step} step 3")
        check_te(f"{step} step 3", p, trigger="Authorized", token=token)
        return p

    async def authorized_remote(self, step: str = "Authorized (remote)", *, authorize: bool) -> dict | None:
        """Main B; `authorize`: AuthCtrlr.AuthorizeRemoteStart is true (step 3 expected)."""
        csms_answers_authorize(self.cs, {"status": "Accepted"})
        csms_answers_transaction_event(self.cs, {"status": "Accepted"})
        after = self.cs.mark()
        was_started = self.started
        try:
            res = await self.cs.call("RequestStartTransaction", {
                "idToken": self.token, "evseId": self.evse, "remoteStartId": REMOTE_START_ID})
        except CallError as exc:
            fail(f"{step} step 2: the station answered RequestStartTransactionRequest with a CALLERROR "
                 f"{exc.code}: {exc.description}")
        assert res.get("status") == "Accepted", f"{step} step 2: RequestStartTransactionResponse {res}"
        if was_started:
            assert res.get("transactionId") == self.tx_id, (
                f"{step} step 2: RequestStartTransactionResponse.transactionId {res.get('transactionId')!r}, "
                f"expected the ongoing transaction {self.tx_id!r}")
        if authorize:
            index, req = await expect_call(self.cs, "Authorize", after=after, step=f"{step} step 3")
            check_authorize(f"{step} step 3", req, self.token)
            await answered(self.cs, index)
        else:
            await trio.sleep(0.1)
            got = self.cs.calls("Authorize", after)
            assert not got, f"{step} step 3: AuthorizeRemoteStart is false, yet the station sent AuthorizeRequest {got}"
        self.authorized = True
        self.remote_pending = True
        if not (self.started or "Authorized" in self.start or ("PowerPathClosed" in self.start and self.ev)):
            return None
        p = await self.next_te(f"{step} step 7")
        check_te(f"{step} step 7", p, event_type="Updated" if was_started else "Started", token=self.token)
        return p

    async def energy_transfer_started(self, step: str = "EnergyTransferStarted") -> dict | None:
        if not self.authorized:
            await self.authorized_local(f"{step} (Authorized)")
        if not self.ev:
            await self.plug(f"{step} part 1", part1=True)
        await self.cs.control(cmd="ev_charge", evse=self.evse, power_w=EV_POWER_W)
        if not (self.started or "EnergyTransfer" in self.start):
            return None
        p = await self.next_te(f"{step} step 9")
        check_te(f"{step} step 9", p, trigger=self.trigger("ChargingStateChanged"), state="Charging")
        return p

    async def energy_transfer_suspended(self, step: str = "EnergyTransferSuspended") -> dict:
        await trio.sleep(TD)
        await self.cs.control(cmd="ev_pause", evse=self.evse)
        p = await self.next_te(f"{step} step 1")
        state = info_of(p).get("chargingState")
        check_te(f"{step} step 1", p, event_type=("Ended", "Updated"), state=("EVConnected", "SuspendedEV"))
        if state == "SuspendedEV":
            check_te(f"{step} step 1", p, trigger="ChargingStateChanged")
        if p.get("eventType") == "Ended":
            check_te(f"{step} step 1", p, stopped="StoppedByEV")
        return p

    async def stop_authorized_local(self, step: str = "StopAuthorized (local)", *,
                                    token: dict | None = None) -> dict:
        await trio.sleep(TD)
        csms_answers_transaction_event(self.cs, {"status": "Accepted"})
        await present(self.cs, token or self.token, self.evse)
        p = await self.next_te(f"{step} step 1")
        check_te(f"{step} step 1", p, trigger="StopAuthorized", token_or_omitted=token or self.token)
        self.authorized = False
        if not self.ended and "EnergyTransfer" in self.stop:
            p3 = await self.next_te(f"{step} step 3")
            check_te(f"{step} step 3", p3, trigger="ChargingStateChanged", state="EVConnected", event_type="Ended",
                     stopped=("Local", None))
        return p

    async def stop_authorized_remote(self, step: str = "StopAuthorized (remote)") -> dict:
        await trio.sleep(TD)
        try:
            res = await self.cs.call("RequestStopTransaction", {"transactionId": self.tx_id})
        except CallError as exc:
            fail(f"{step} step 2: the station answered RequestStopTransactionRequest with a CALLERROR "
                 f"{exc.code}: {exc.description}")
        assert res.get("status") == "Accepted", f"{step} step 2: RequestStopTransactionResponse {res}"
        p = await self.next_te(f"{step} step 3")
        check_te(f"{step} step 3", p, trigger="RemoteStop")
        self.authorized = False
        self.stopped_remotely = True
        return p

    async def ev_connected_post_session(self, step: str = "EVConnectedPostSession") -> dict | None:
        if self.ended:
            return None
        p = await self.next_te(f"{step} step 1")
        check_te(f"{step} step 1", p, trigger="ChargingStateChanged", state="EVConnected")
        return p

    async def ev_disconnected(self, step: str = "EVDisconnected") -> dict | None:
        after = self.cs.mark()
        await self.cs.control(cmd="unplug", evse=self.evse, connector=self.connector)
        await connector_reported(self.cs, after, "Available", f"{step} step 1", self.evse, self.connector)
        self.ev = False
        if not self.started:
            return None
        p = await self.next_te(f"{step} step 3")
        check_te(f"{step} step 3", p, trigger="EVCommunicationLost", state="Idle")
        return p

    async def parking_bay_unoccupied(self, step: str = "ParkingBayUnoccupied") -> dict | None:
        if not self.occupied:
            return None
        await self.cs.control(cmd="occupancy", evse=self.evse, occupied=False)
        self.occupied = False
        if not (self.started and "ParkingBayOccupancy" in self.stop):
            return None
        p = await self.next_te(f"{step} step 1")
        check_te(f"{step} step 1", p, trigger="EVDeparted", event_type="Ended",
                 stopped="Remote" if self.stopped_remotely else "Local")
        return p

    async def stop_chain(self, step: str = "", *, remote: bool = False) -> None:
        """StopAuthorized, EVConnectedPostSession, EVDisconnected, ParkingBayUnoccupied."""
        if remote:
            await self.stop_authorized_remote(f"{step}StopAuthorized (remote)")
        else:
            await self.stop_authorized_local(f"{step}StopAuthorized (local)")
        await self.ev_connected_post_session(f"{step}EVConnectedPostSession")
        await self.ev_disconnected(f"{step}EVDisconnected")
        await self.parking_bay_unoccupied(f"{step}ParkingBayUnoccupied")


# =========================================================================== E: start points

async def test_TC_E_01_CS_start_transaction_options_power_path_closed(boot_station):
    """TC_E_01_CS Start transaction options - PowerPathClosed.

    Before: TxStartPoint PowerPathClosed, TxStopPoint EVConnected,Authorized; State Authorized (local).
    Main: EVConnectedPreSession (step 3: Started, CablePluggedIn, evse 1/1)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points("PowerPathClosed")) as cs:
            s = Session(cs, start="PowerPathClosed")
            await s.authorized_local("Before (Authorized)")
            p = await s.ev_connected_pre_session("Step 1 (EVConnectedPreSession)")
            assert p is not None and p["eventType"] == "Started", "Step 1: no transaction started"


async def test_TC_E_02_CS_start_transaction_options_energy_transfer(boot_station):
    """TC_E_02_CS Start transaction options - EnergyTransfer.

    Before: TxStartPoint EnergyTransfer; State Authorized (local). Main: connect the EV (which
    then draws energy)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points("EnergyTransfer")) as cs:
            s = Session(cs, start="EnergyTransfer")
            await s.authorized_local("Before (Authorized)")
            after = cs.mark()
            await cs.control(cmd="plug", evse=EVSE, connector=CONNECTOR)
            await connector_reported(cs, after, "Occupied", "Step 1")
            s.ev = True
            await cs.control(cmd="ev_charge", evse=EVSE, power_w=EV_POWER_W)
            p = await s.next_te("Step 3")
            check_te("Step 3", p, event_type="Started", trigger=("ChargingStateChanged", "Authorized"), token=VALID,
                     state="Charging")
            e = p.get("evse") or {}
            assert e.get("id") == EVSE and "connectorId" in e, f"Step 3: evse/evse.connectorId missing: {te_summary(p)}"


async def test_TC_E_09_CS_start_transaction_options_ev_connected(boot_station):
    """TC_E_09_CS Start transaction options - EVConnected.

    Before: TxStartPoint EVConnected (ParkingBayOccupied: optional, not executed)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points("EVConnected")) as cs:
            s = Session(cs, start="EVConnected")
            after = cs.mark()
            await cs.control(cmd="plug", evse=EVSE, connector=CONNECTOR)
            await connector_reported(cs, after, "Occupied", "Step 1")
            p = await s.next_te("Step 3")
            check_te("Step 3", p, event_type="Started", trigger=("CablePluggedIn", "ChargingStateChanged"),
                     state="EVConnected")
            e = p.get("evse") or {}
            assert e.get("id") == EVSE and "connectorId" in e, f"Step 3: evse/evse.connectorId missing: {te_summary(p)}"


async def test_TC_E_10_CS_start_transaction_options_authorized_local(boot_station):
    """TC_E_10_CS Start transaction options - Authorized - Local.

    Before: TxStartPoint Authorized, AuthCtrlr.Enabled true."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points("Authorized", **{"AuthCtrlr.Enabled": True})) as cs:
            s = Session(cs, start="Authorized")
            p = await s.authorized_local("Steps 1-3")
            assert p is not None
            check_te("Step 3", p, event_type="Started", trigger="Authorized", token=VALID)


async def test_TC_E_13_CS_start_transaction_options_authorized_remote(boot_station):
    """TC_E_13_CS Start transaction options - Authorized - Remote.

    Before: TxStartPoint Authorized, AuthCtrlr.Enabled true, AuthorizeRemoteStart true (so step 3
    is executed)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points("Authorized", **{
                "AuthCtrlr.Enabled": True, "AuthCtrlr.AuthorizeRemoteStart": True})) as cs:
            s = Session(cs, start="Authorized")
            p = await s.authorized_remote("Steps 1-5", authorize=True)
            assert p is not None
            check_te("Step 5", p, event_type="Started", trigger="RemoteStart", token=VALID)
            assert "remoteStartId" in info_of(p), f"Step 5: transactionInfo.remoteStartId missing: {te_summary(p)}"


async def test_TC_E_12_CS_start_transaction_options_parking_bay_occupied(boot_station):
    """TC_E_12_CS Start transaction options - ParkingBayOccupied.

    Before: TxStartPoint ParkingBayOccupancy."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points("ParkingBayOccupancy")) as cs:
            s = Session(cs, start="ParkingBayOccupancy")
            await cs.control(cmd="occupancy", evse=EVSE, occupied=True)
            p = await s.next_te("Step 1")
            check_te("Step 1", p, event_type="Started", trigger="EVDetected")


# =========================================================================== E: local start

async def test_TC_E_03_CS_local_start_transaction_cable_plugin_first_success(boot_station):
    """TC_E_03_CS Local start transaction - Cable plugin first - Success.

    Before: AuthCtrlr.Enabled true; TxStartPoint PowerPathClosed (default); EVConnectedPreSession.
    Main: Authorized (local), EnergyTransferStarted."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(**{"AuthCtrlr.Enabled": True})) as cs:
            s = Session(cs)
            await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
            await s.authorized_local("Step 1 (Authorized)")
            await s.energy_transfer_started("Step 2 (EnergyTransferStarted)")
            assert s.started, "Step 2: no transaction is running after EnergyTransferStarted"


async def test_TC_E_04_CS_local_start_transaction_authorization_first_success(boot_station):
    """TC_E_04_CS Local start transaction - Authorization first - Success.

    Before: AuthCtrlr.Enabled true; TxStartPoint PowerPathClosed (default); ParkingBayOccupied
    (optional) not executed. Main: Authorized (local), EnergyTransferStarted."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(**{"AuthCtrlr.Enabled": True})) as cs:
            s = Session(cs)
            await s.authorized_local("Step 1 (Authorized)")
            await s.energy_transfer_started("Step 2 (EnergyTransferStarted)")
            assert s.started, "Step 2: no transaction is running after EnergyTransferStarted"


async def test_TC_E_05_CS_local_start_transaction_authorization_first_cable_plugin_timeout(boot_station):
    """TC_E_05_CS Local start transaction - Authorization first - Cable plugin timeout.

    Before: TxCtrlr.EVConnectionTimeOut 1 s, AuthCtrlr.Enabled true, AuthCacheCtrlr.Enabled false,
    AuthCtrlr.LocalPreAuthorize false; TxStartPoint Authorized, TxStopPoint EVConnected,Authorized
    (so steps 1-2 are executed: Ended, stoppedReason Timeout). Main: the timeout, then Authorized
    (local) and EnergyTransferStarted again."""
    dm = tx_points("Authorized", **{"TxCtrlr.EVConnectionTimeOut": EV_CONNECTION_TIMEOUT, "AuthCtrlr.Enabled": True,
                                    "AuthCacheCtrlr.Enabled": False, "AuthCtrlr.LocalPreAuthorize": False})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs, start="Authorized")
            await s.authorized_local("Before (Authorized)")
            p = await s.next_te("Step 1", timeout=EV_CONNECTION_TIMEOUT + CALL_WAIT)
            check_te("Step 1", p, trigger="EVConnectTimeout", event_type="Ended", stopped="Timeout")
            await s.authorized_local("Step 3 (Authorized)")
            await s.energy_transfer_started("Step 4 (EnergyTransferStarted)")


async def test_TC_E_39_CS_stop_transaction_options_deauthorized_timeout(boot_station):
    """TC_E_39_CS Stop transaction options - Deauthorized - timeout.

    Before: TxStopPoint EVConnected,Authorized, TxStartPoint Authorized (so step 1 is executed),
    EVConnectionTimeOut 1 s, AuthCtrlr.Enabled true; State Authorized (local). Step 3 (after the
    EV is connected) is only a message the station MAY send for the plug-in: if sent, it must be
    CablePluggedIn and not Charging; in any case no charging may start (power path stays open)."""
    dm = tx_points("Authorized", **{"TxCtrlr.EVConnectionTimeOut": EV_CONNECTION_TIMEOUT, "AuthCtrlr.Enabled": True})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs, start="Authorized")
            await s.authorized_local("Before (Authorized)")
            p = await s.next_te("Step 1", timeout=EV_CONNECTION_TIMEOUT + CALL_WAIT)
            check_te("Step 1", p, trigger="EVConnectTimeout", event_type="Ended", stopped="Timeout")
            after = cs.mark()
            await cs.control(cmd="plug", evse=EVSE, connector=CONNECTOR)
            await connector_reported(cs, after, "Occupied", "Manual Action: Connect the EV")
            await cs.control(cmd="ev_charge", evse=EVSE, power_w=EV_POWER_W)
            await trio.sleep(QUIET)
            for _, q in cs.calls("TransactionEvent", after):
                check_te("Step 3", q, trigger="CablePluggedIn")
                assert info_of(q).get("chargingState") != "Charging", f"Step 3: chargingState Charging: {te_summary(q)}"
            view = next(e for e in (await cs.control(cmd="state"))["evses"] if e["evse"] == EVSE)
            assert not view["power_path_closed"] and view["power_w"] == 0, (
                f"Step 3: the station should not start charging after the EVConnectionTimeOut: {view}")


# =========================================================================== E: stop points

async def test_TC_E_06_CS_local_stop_transaction_accepted(boot_station):
    """TC_E_06_CS Local Stop Transaction - Accepted.

    Before: AuthCtrlr.Enabled true; TxStartPoint/TxStopPoint the defaults; EnergyTransferStarted.
    Main: StopAuthorized (local), EVConnectedPostSession, EVDisconnected, ParkingBayUnoccupied."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(**{"AuthCtrlr.Enabled": True})) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await s.stop_chain("Steps 1-4: ")
            assert s.ended, "Steps 1-4: the transaction did not end"


async def test_TC_E_07_CS_stop_transaction_options_power_path_closed_local_stop(boot_station):
    """TC_E_07_CS Stop transaction options - PowerPathClosed - Local stop.

    Before: TxStopPoint PowerPathClosed; EnergyTransferStarted. Main: StopAuthorized (local)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(stop="PowerPathClosed")) as cs:
            s = Session(cs, stop="PowerPathClosed")
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await s.stop_authorized_local("Step 1 (StopAuthorized)")
            if not s.ended:
                p = await s.next_te("Step 1 (StopAuthorized): the end of the transaction (TxStopPoint PowerPathClosed)")
                check_te("Step 1", p, event_type="Ended", stopped=("Local", None))
            assert s.events[-1]["eventType"] == "Ended"


async def test_TC_E_08_CS_stop_transaction_options_energy_transfer_stopped_stop_authorized(boot_station):
    """TC_E_08_CS Stop transaction options - EnergyTransfer stopped - StopAuthorized.

    Before: TxStopPoint EnergyTransfer; EnergyTransferStarted. Main: StopAuthorized (local),
    whose step 3 (ChargingStateChanged, EVConnected, Ended, Local) is then executed."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(stop="EnergyTransfer")) as cs:
            s = Session(cs, stop="EnergyTransfer")
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await s.stop_authorized_local("Step 1 (StopAuthorized)")
            assert s.ended, "Step 1 (StopAuthorized): the transaction did not end"


async def test_TC_E_14_CS_stop_transaction_options_ev_disconnected_charging_station_side(boot_station):
    """TC_E_14_CS Stop transaction options - EVDisconnected - Charging Station side.

    Before: TxStopPoint EVConnected; EVConnectedPostSession (EnergyTransferStarted, StopAuthorized
    local). Main: disconnect the EV."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(stop="EVConnected")) as cs:
            s = Session(cs, stop="EVConnected")
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await s.stop_authorized_local("Before (StopAuthorized)")
            await s.ev_connected_post_session("Before (EVConnectedPostSession)")
            assert not s.ended, "Before: the transaction ended before the EV was disconnected"
            after = cs.mark()
            await cs.control(cmd="unplug", evse=EVSE, connector=CONNECTOR)
            await connector_reported(cs, after, "Available", "Step 1")
            p = await s.next_te("Step 3")
            check_te("Step 3", p, trigger="EVCommunicationLost", state="Idle", event_type="Ended",
                     stopped=("Local", "EVDisconnected", None))


async def test_TC_E_15_CS_stop_transaction_options_stop_authorized_local(boot_station):
    """TC_E_15_CS Stop transaction options - StopAuthorized - Local.

    Before: TxStopPoint Authorized; EnergyTransferStarted. Main: present the idToken again."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(stop="Authorized")) as cs:
            s = Session(cs, stop="Authorized")
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await trio.sleep(TD)
            await present(cs, VALID)
            p = await s.next_te("Step 1")
            check_te("Step 1", p, trigger="StopAuthorized", stopped="Local", event_type="Ended")


async def test_TC_E_17_CS_stop_transaction_options_deauthorized_ev_side_disconnect(boot_station):
    """TC_E_17_CS Stop transaction options - Deauthorized - EV side disconnect.

    Before: TxStopPoint Authorized,PowerPathClosed, StopTxOnEVSideDisconnect true,
    UnlockOnEVSideDisconnect false, AuthCtrlr.Enabled true; EnergyTransferSuspended. Fixed cable
    (HFS-1 no): the manual actions on the Charging Station side are not executed; step 3 is the
    connector status after the cable is unplugged at the EV."""
    dm = tx_points(stop="Authorized,PowerPathClosed", **{"TxCtrlr.StopTxOnEVSideDisconnect": True,
                                                         "OCPPCommCtrlr.UnlockOnEVSideDisconnect": False,
                                                         "AuthCtrlr.Enabled": True})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs, stop="Authorized,PowerPathClosed")
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await s.energy_transfer_suspended("Before (EnergyTransferSuspended)")
            after = cs.mark()
            await cs.control(cmd="unplug", evse=EVSE, connector=CONNECTOR)
            p = await s.next_te("Step 1")
            check_te("Step 1", p, trigger="EVCommunicationLost", state="Idle", stopped="EVDisconnected",
                     event_type="Ended")
            await connector_reported(cs, after, "Available", "Step 3")


async def test_TC_E_19_CS_stop_transaction_options_parking_bay_unoccupied(boot_station):
    """TC_E_19_CS Stop transaction options - ParkingBayUnoccupied.

    Before: TxStopPoint ParkingBayOccupancy (TxStartPoint ParkingBayOccupancy, so the EV is in the
    bay); EVDisconnected (ParkingBayOccupied, EnergyTransferStarted, StopAuthorized local,
    EVConnectedPostSession, EVDisconnected). Main: drive out of the parking bay."""
    dm = tx_points("ParkingBayOccupancy", "ParkingBayOccupancy")
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs, start="ParkingBayOccupancy", stop="ParkingBayOccupancy")
            await s.parking_bay_occupied("Before (ParkingBayOccupied)")
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await s.stop_authorized_local("Before (StopAuthorized)")
            await s.ev_connected_post_session("Before (EVConnectedPostSession)")
            await s.ev_disconnected("Before (EVDisconnected)")
            assert not s.ended, "Before: the transaction ended before the EV left the parking bay"
            await cs.control(cmd="occupancy", evse=EVSE, occupied=False)
            p = await s.next_te("Step 1")
            check_te("Step 1", p, trigger="EVDeparted", stopped="Local", event_type="Ended")


async def test_TC_E_20_CS_stop_transaction_options_ev_disconnected_ev_side(boot_station):
    """TC_E_20_CS Stop transaction options - EVDisconnected - EV side (able to charge IEC 61851-1 EV).

    Before: TxStopPoint EVConnected, StopTxOnEVSideDisconnect false; EnergyTransferSuspended.
    Main: the cable is unplugged at the EV."""
    dm = tx_points(stop="EVConnected", **{"TxCtrlr.StopTxOnEVSideDisconnect": False})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs, stop="EVConnected")
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await s.energy_transfer_suspended("Before (EnergyTransferSuspended)")
            await cs.control(cmd="unplug", evse=EVSE, connector=CONNECTOR)
            p = await s.next_te("Step 1")
            check_te("Step 1", p, trigger="EVCommunicationLost", state="Idle", stopped="EVDisconnected",
                     event_type="Ended")


async def test_TC_E_21_CS_stop_transaction_options_stop_authorized_remote(boot_station):
    """TC_E_21_CS Stop transaction options - StopAuthorized - Remote.

    Before: TxStopPoint Authorized; EnergyTransferStarted."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(stop="Authorized")) as cs:
            s = Session(cs, stop="Authorized")
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            res = await cs.call("RequestStopTransaction", {"transactionId": s.tx_id})
            assert res.get("status") == "Accepted", f"Step 2: RequestStopTransactionResponse {res}"
            p = await s.next_te("Step 3")
            check_te("Step 3", p, trigger="RemoteStop", stopped="Remote", event_type="Ended")


async def test_TC_E_22_CS_stop_transaction_options_energy_transfer_stopped_suspended_ev(boot_station):
    """TC_E_22_CS Stop transaction options - EnergyTransfer stopped - SuspendedEV.

    Before: TxStopPoint EnergyTransfer; EnergyTransferStarted. Main: the EV suspends."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(stop="EnergyTransfer")) as cs:
            s = Session(cs, stop="EnergyTransfer")
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await cs.control(cmd="ev_pause", evse=EVSE)
            p = await s.next_te("Step 1")
            check_te("Step 1", p, trigger="ChargingStateChanged", state=("EVConnected", "SuspendedEV"))
            if info_of(p).get("chargingState") == "EVConnected":
                check_te("Step 1", p, event_type="Ended")
            else:
                check_te("Step 1", p, stopped="StoppedByEV", event_type="Updated")


async def test_TC_E_35_CS_stop_transaction_options_power_path_closed_remote_stop(boot_station):
    """TC_E_35_CS Stop transaction options - PowerPathClosed - Remote stop.

    Before: TxStopPoint PowerPathClosed; EnergyTransferStarted."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(stop="PowerPathClosed")) as cs:
            s = Session(cs, stop="PowerPathClosed")
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            res = await cs.call("RequestStopTransaction", {"transactionId": s.tx_id})
            assert res.get("status") == "Accepted", f"Step 2: RequestStopTransactionResponse {res}"
            p = await s.next_te("Step 3")
            check_te("Step 3", p, trigger="RemoteStop", stopped="Remote", event_type="Ended")


async def test_TC_E_37_CS_stop_transaction_options_power_path_closed_ev_side_disconnect(boot_station):
    """TC_E_37_CS Stop transaction options - PowerPathClosed - EV side disconnect.

    Before: TxStopPoint PowerPathClosed, StopTxOnEVSideDisconnect false; EnergyTransferSuspended."""
    dm = tx_points(stop="PowerPathClosed", **{"TxCtrlr.StopTxOnEVSideDisconnect": False})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs, stop="PowerPathClosed")
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await s.energy_transfer_suspended("Before (EnergyTransferSuspended)")
            await cs.control(cmd="unplug", evse=EVSE, connector=CONNECTOR)
            p = await s.next_te("Step 1")
            check_te("Step 1", p, trigger="EVCommunicationLost", state="Idle",
                     stopped=("EVDisconnected", "StoppedByEV"), event_type="Ended")


# =========================================================================== E14: transaction status

async def get_transaction_status(cs, step: str, transaction_id: str | None) -> dict:
    payload = {} if transaction_id is None else {"transactionId": transaction_id}
    try:
        return await cs.call("GetTransactionStatus", payload)
    except CallError as exc:
        fail(f"{step}: the station answered GetTransactionStatusRequest with a CALLERROR {exc.code}: {exc.description}")


async def test_TC_E_28_CS_check_transaction_status_transaction_id_unknown(boot_station):
    """TC_E_28_CS Check Transaction status - TransactionId unknown (a random UUID)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res = await get_transaction_status(cs, "Step 2", "8a1f0c52-5b0e-4d3e-9a57-2f6c0d1e9b44")
            assert res.get("ongoingIndicator") is False, f"Step 2: ongoingIndicator must be false: {res}"
            assert res.get("messagesInQueue") is False, f"Step 2: messagesInQueue must be false: {res}"


async def test_TC_E_30_CS_check_transaction_status_ongoing_without_message_in_queue(boot_station):
    """TC_E_30_CS Check Transaction status - Transaction with id ongoing - without message in queue.

    Before: EnergyTransferStarted (defaults)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            res = await get_transaction_status(cs, "Step 2", s.tx_id)
            assert res.get("ongoingIndicator") is True, f"Step 2: ongoingIndicator must be true: {res}"
            assert res.get("messagesInQueue") is False, f"Step 2: messagesInQueue must be false: {res}"


async def test_TC_E_32_CS_check_transaction_status_ended_without_message_in_queue(boot_station):
    """TC_E_32_CS Check Transaction status - Transaction with id ended - without message in queue.

    Before: EnergyTransferStarted, ParkingBayUnoccupied (the whole stop chain, local)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await s.stop_chain("Before: ")
            res = await get_transaction_status(cs, "Step 2", s.tx_id)
            assert res.get("ongoingIndicator") is False, f"Step 2: ongoingIndicator must be false: {res}"
            assert res.get("messagesInQueue") is False, f"Step 2: messagesInQueue must be false: {res}"


async def test_TC_E_34_CS_check_transaction_status_without_transaction_id_without_message_in_queue(boot_station):
    """TC_E_34_CS Check Transaction status - Without transactionId - without message in queue."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res = await get_transaction_status(cs, "Step 2", None)
            assert "ongoingIndicator" not in res, f"Step 2: ongoingIndicator must be omitted: {res}"
            assert res.get("messagesInQueue") is False, f"Step 2: messagesInQueue must be false: {res}"


# =========================================================================== F: remote start / stop

async def test_TC_F_01_CS_remote_start_transaction_cable_plugin_first(boot_station):
    """TC_F_01_CS Remote start transaction - Cable plugin first.

    Before: AuthCtrlr.Enabled true, AuthorizeRemoteStart false (the station's default);
    EVConnectedPreSession. Main: Authorized (remote), EnergyTransferStarted."""
    dm = tx_points(**{"AuthCtrlr.Enabled": True, "AuthCtrlr.AuthorizeRemoteStart": False})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs)
            await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
            await s.authorized_remote("Step 1 (Authorized remote)", authorize=False)
            await s.energy_transfer_started("Step 2 (EnergyTransferStarted)")
            assert s.started, "Step 2: no transaction is running"


async def test_TC_F_02_CS_remote_start_first_authorize_remote_start_true(boot_station):
    """TC_F_02_CS Remote start transaction - Remote start first - AuthorizeRemoteStart is true.

    Before: AuthCtrlr.Enabled true, AuthorizeRemoteStart true. Main: Authorized (remote),
    EnergyTransferStarted."""
    dm = tx_points(**{"AuthCtrlr.Enabled": True, "AuthCtrlr.AuthorizeRemoteStart": True})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs)
            await s.authorized_remote("Step 1 (Authorized remote)", authorize=True)
            await s.energy_transfer_started("Step 2 (EnergyTransferStarted)")
            assert s.started, "Step 2: no transaction is running"


async def test_TC_F_03_CS_remote_start_first_authorize_remote_start_false(boot_station):
    """TC_F_03_CS Remote start transaction - Remote start first - AuthorizeRemoteStart is false.

    Before: AuthCtrlr.Enabled true, AuthorizeRemoteStart false. Main: Authorized (remote),
    EnergyTransferStarted."""
    dm = tx_points(**{"AuthCtrlr.Enabled": True, "AuthCtrlr.AuthorizeRemoteStart": False})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs)
            await s.authorized_remote("Step 1 (Authorized remote)", authorize=False)
            await s.energy_transfer_started("Step 2 (EnergyTransferStarted)")
            assert s.started, "Step 2: no transaction is running"


async def test_TC_F_04_CS_remote_start_first_cable_plugin_timeout(boot_station):
    """TC_F_04_CS Remote start transaction - Remote start first - Cable plugin timeout.

    Before: EVConnectionTimeOut 1 s, AuthCtrlr.Enabled true, TxStartPoint Authorized (TxStopPoint
    EVConnected,Authorized), AuthorizeRemoteStart false; Authorized (remote). Main: the timeout
    (Ended, EVConnectTimeout), then Authorized (remote) again."""
    dm = tx_points("Authorized", **{"TxCtrlr.EVConnectionTimeOut": EV_CONNECTION_TIMEOUT, "AuthCtrlr.Enabled": True,
                                    "AuthCtrlr.AuthorizeRemoteStart": False})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs, start="Authorized")
            await s.authorized_remote("Before (Authorized remote)", authorize=False)
            p = await s.next_te("Step 1", timeout=EV_CONNECTION_TIMEOUT + CALL_WAIT)
            check_te("Step 1", p, trigger="EVConnectTimeout", event_type="Ended")
            s.authorized = False
            await s.authorized_remote("Step 3 (Authorized remote)", authorize=False)


async def test_TC_F_08_CS_remote_stop_transaction_success(boot_station):
    """TC_F_08_CS Remote stop transaction - Success.

    Before: EnergyTransferStarted (defaults). Main: StopAuthorized (remote)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await s.stop_authorized_remote("Step 1 (StopAuthorized remote)")


async def test_TC_F_09_CS_remote_stop_transaction_rejected(boot_station):
    """TC_F_09_CS Remote stop transaction - Rejected.

    Before: EnergyTransferStarted (defaults). Step 1 uses a transactionId the station never gave."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            other = "not-" + (s.tx_id or "")[:30]
            res = await cs.call("RequestStopTransaction", {"transactionId": other})
            assert res.get("status") == "Rejected", f"Step 2: RequestStopTransactionResponse.status must be Rejected: {res}"
            await s.no_te("Step 2 (the transaction goes on)", where=lambda p: p.get("eventType") == "Ended")


# =========================================================================== J: meter values

ALIGNED = 2         # s, <Configured clock-aligned Meter Values interval>
SAMPLED = 1         # s, <Configured sampled Meter Values Updated / TxEnded interval>


def check_intervals(step: str, stamps: list[str], interval: int) -> None:
    distinct = sorted({ts(t) for t in stamps})
    gaps = [(b - a).total_seconds() for a, b in zip(distinct, distinct[1:])]
    assert all(abs(g - interval) < 0.01 for g in gaps), (
        f"{step}: the intervals between the timestamps {[str(t) for t in distinct]} must equal {interval} s: {gaps}")


async def test_TC_J_01_CS_clock_aligned_meter_values_no_transaction_ongoing(boot_station):
    """TC_J_01_CS Clock-aligned Meter Values - No transaction ongoing.

    Before: AlignedDataCtrlr.Interval 2 s (Measurands Energy.Active.Import.Register, the
    default). The OCTT ends the test case after three MeterValuesRequests."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={"AlignedDataCtrlr.Interval": ALIGNED}) as cs:
            after = cs.mark()
            stamps = []
            for n in range(3):
                index, p = await expect_call(cs, "MeterValues", after=after, step=f"Step 1 (message {n + 1} of 3)",
                                             timeout=ALIGNED + CALL_WAIT)
                after = index + 1
                for mv in p.get("meterValue") or ():
                    svs = mv.get("sampledValue") or [{}]
                    assert svs[0].get("context") == "Sample.Clock", (
                        f"Step 1: sampledValue[0].context must be Sample.Clock: {p}")
                    assert "Energy.Active.Import.Register" in measurands(mv), (
                        f"Step 1: sampledValue must contain Energy.Active.Import.Register: {p}")
                    stamps.append(mv.get("timestamp"))
            check_intervals("Step 1", stamps, ALIGNED)


async def test_TC_J_02_CS_clock_aligned_meter_values_transaction_ongoing(boot_station):
    """TC_J_02_CS Clock-aligned Meter Values - Transaction ongoing.

    Before: AlignedDataCtrlr.Interval 2 s, SendDuringIdle false; EnergyTransferStarted. The
    station follows steps 3-4 (TransactionEventRequests MeterValueClock); two of them are taken
    (the <Configured transaction duration> covers two intervals)."""
    dm = tx_points(**{"AlignedDataCtrlr.Interval": ALIGNED, "AlignedDataCtrlr.SendDuringIdle": False,
                      "SampledDataCtrlr.TxUpdatedInterval": 0})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            stamps = []
            for n in range(2):
                p = await s.next_te(f"Step 3 (message {n + 1})", timeout=ALIGNED + CALL_WAIT)
                check_te("Step 3", p, trigger="MeterValueClock")
                mv = (p.get("meterValue") or [{}])[0]
                svs = mv.get("sampledValue") or [{}]
                assert svs[0].get("context") == "Sample.Clock", f"Step 3: metervalue[0].sampledValue[0].context: {p}"
                assert "Energy.Active.Import.Register" in measurands(mv), f"Step 3: measurand missing: {p}"
                stamps.append(mv.get("timestamp"))
            check_intervals("Step 3", stamps, ALIGNED)


async def test_TC_J_03_CS_clock_aligned_meter_values_event_type_ended(boot_station):
    """TC_J_03_CS Clock-aligned Meter Values - EventType Ended.

    Before: AlignedDataCtrlr.TxEndedInterval 1 s (TxEndedMeasurands: the default
    Energy.Active.Import.Register), SampledDataCtrlr.TxEndedMeasurands "" (empty), SendDuringIdle
    false; EnergyTransferStarted. Main (after a transaction duration of 3 s): ParkingBayUnoccupied,
    i.e. the stop chain (local stop)."""
    dm = tx_points(**{"AlignedDataCtrlr.TxEndedInterval": SAMPLED, "SampledDataCtrlr.TxEndedMeasurands": "",
                      "AlignedDataCtrlr.SendDuringIdle": False})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await trio.sleep(3)
            await s.stop_chain("Step 1: ")
            ended = next(p for p in s.events if p.get("eventType") == "Ended")
            mvs = ended.get("meterValue")
            assert mvs, f"Post scenario: the Ended TransactionEventRequest has no meterValue: {te_summary(ended)}"
            for mv in mvs:
                svs = mv.get("sampledValue") or [{}]
                assert svs[0].get("context") == "Sample.Clock", (
                    f"Post scenario: sampledValue[0].context must be Sample.Clock: {mvs}")
                assert "Energy.Active.Import.Register" in measurands(mv), f"Post scenario: measurand missing: {mvs}"
            check_intervals("Post scenario", [mv["timestamp"] for mv in mvs], SAMPLED)


async def test_TC_J_07_CS_sampled_meter_values_event_type_started_evse_known(boot_station):
    """TC_J_07_CS Sampled Meter Values - EventType Started - EVSE known.

    Before: TxStartPoint EVConnected (SampledDataCtrlr.TxStartedMeasurands: the default
    Energy.Active.Import.Register). Main: EVConnectedPreSession, EnergyTransferStarted."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points("EVConnected")) as cs:
            s = Session(cs, start="EVConnected")
            await s.ev_connected_pre_session("Step 1 (EVConnectedPreSession)")
            await s.energy_transfer_started("Step 2 (EnergyTransferStarted)")
            started = s.events[0]
            mvs = started.get("meterValue")
            assert mvs, f"Post scenario: the Started TransactionEventRequest has no meterValue: {te_summary(started)}"
            svs = mvs[0].get("sampledValue") or [{}]
            assert svs[0].get("context") == "Transaction.Begin", (
                f"Post scenario: sampledValue[0].context must be Transaction.Begin: {mvs}")
            assert "Energy.Active.Import.Register" in measurands(mvs[0]), f"Post scenario: measurand missing: {mvs}"


async def test_TC_J_09_CS_sampled_meter_values_event_type_updated(boot_station):
    """TC_J_09_CS Sampled Meter Values - EventType Updated.

    Before: SampledDataCtrlr.TxUpdatedInterval 1 s (TxUpdatedMeasurands: the default
    Energy.Active.Import.Register,Power.Active.Import); clock-aligned data off (Interval 0);
    EnergyTransferStarted. Three periodic messages are taken."""
    dm = tx_points(**{"SampledDataCtrlr.TxUpdatedInterval": SAMPLED, "AlignedDataCtrlr.Interval": 0})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            stamps = []
            while len(stamps) < 3:
                p = await s.next_te(f"Step 1 (message {len(stamps) + 1})", timeout=SAMPLED + CALL_WAIT)
                if p.get("triggerReason") != "MeterValuePeriodic" and not stamps:
                    continue    # a Started/Updated of the state before the first sample
                check_te("Step 1", p, trigger="MeterValuePeriodic")
                mv = (p.get("meterValue") or [{}])[0]
                svs = mv.get("sampledValue") or [{}]
                assert svs[0].get("context") == "Sample.Periodic", f"Step 1: sampledValue[0].context: {p}"
                got = measurands(mv)
                for want in ("Energy.Active.Import.Register", "Power.Active.Import"):
                    assert want in got, f"Step 1: sampledValue must contain {want}: {p}"
                stamps.append(mv.get("timestamp"))
            check_intervals("Step 1", stamps, SAMPLED)


async def test_TC_J_10_CS_sampled_meter_values_event_type_ended(boot_station):
    """TC_J_10_CS Sampled Meter Values - EventType Ended.

    Before: SampledDataCtrlr.TxEndedInterval 1 s (TxEndedMeasurands: the default),
    AlignedDataCtrlr.TxEndedMeasurands "" (empty); EnergyTransferStarted. Main (after a
    transaction duration of 3 s): the stop chain (local)."""
    dm = tx_points(**{"SampledDataCtrlr.TxEndedInterval": SAMPLED, "AlignedDataCtrlr.TxEndedMeasurands": ""})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await trio.sleep(3)
            await s.stop_chain("Step 1: ")
            ended = next(p for p in s.events if p.get("eventType") == "Ended")
            mvs = ended.get("meterValue")
            assert mvs, f"Post scenario: the Ended TransactionEventRequest has no meterValue: {te_summary(ended)}"
            contexts = [(mv.get("sampledValue") or [{}])[0].get("context") for mv in mvs]
            assert "Transaction.End" in contexts and all(c in ("Sample.Periodic", "Transaction.End") for c in contexts), (
                f"Post scenario: sampledValue[0].context must be Sample.Periodic AND one must have Transaction.End: "
                f"{contexts}")
            assert contexts.count("Sample.Periodic") >= 2, (
                f"Post scenario: one MeterValue per TxEndedInterval ({SAMPLED} s) expected over ~3 s: {contexts}")
            for mv in mvs:
                assert "Energy.Active.Import.Register" in measurands(mv), f"Post scenario: measurand missing: {mvs}"
            periodic = [mv["timestamp"] for mv in mvs
                        if (mv.get("sampledValue") or [{}])[0].get("context") == "Sample.Periodic"]
            check_intervals("Post scenario", periodic, SAMPLED)
