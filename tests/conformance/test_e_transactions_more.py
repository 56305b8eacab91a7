"""OCA certification test cases of functional block E (transactions), Charging Station side:
the cases not in test_efj_transactions.py (offline behaviour E11/E12/E08, retries E13,
transaction status with a queue E14, EV-side disconnect, deauthorization).

Written against OCPP 2.0.1 Edition 3 Part 6; the conditions of Part 5 checked against the
reference PICS (/work/shared/reference/certified-product-pics.txt). Not written, because their
condition does not hold for the reference PICS:
- TC_E_25_CS: C-06.2 and C-12.2 and (AQ-9 OR Mode 1/2-only): AQ-9 is No, no Mode 1/2-only subtype.
- TC_E_26_CS, TC_E_27_CS: need C-06.1 (No) and AQ-9 (No).
- TC_E_46_CS: ISO 15118 profile (End of charging process 15118), not Core/Advanced Security;
  ISO 15118 Support "Not Tested" in the PICS.
- TC_J_08_CS: C-40 and NOT AQ-8; AQ-8 is Yes.

The rig is the one of test_efj_transactions.py (Session: the reusable states) and of
test_cd_authorization.py ("The OCTT closes the WebSocket connection AND does not accept a
reconnect": the DevCsms answers the station's reconnects with 401 until it accepts again).

Chosen configured values (the test cases leave them to the OCTT's configuration):
- <Configured RetryBackOffWaitMinimum_duration> 2 s (> the 1 s transaction MeterValues
  interval, as TC_E_29/33/40 require); RetryBackOffRepeatTimes 0 (no doubling).
- <Configured transaction_updated_metervalues_interval> 1 s, measurands: the default
  Energy.Active.Import.Register,Power.Active.Import.
- <Configured message_attempts_transaction_event> 3, <..._interval> 1 s,
  OCPPCommCtrlr.MessageTimeout.Default 1 s.
- <Configured GroupIdToken> GROUP-4711 (Central).
A "queued" TransactionEventRequest is one whose timestamp is before the moment the OCTT
accepted the reconnection (it was produced while offline).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timezone
from typing import Any

import trio

from devtools.dev_csms import CallError
from tests.conformance.conftest import id_token_cached
from tests.conformance.test_efj_transactions import (
    CALL_WAIT,
    CONNECTOR,
    EVSE,
    TD,
    VALID,
    VALID2,
    Session,
    check_te,
    connector_reported,
    fail,
    info_of,
    present,
    te_summary,
    ts,
    tx_points,
)
from tests.memory_link import RigDateTime as datetime  # the rig's wall clock (MockClock)

LIMIT = 20                  # s, per test
RETRY_MIN = 2               # s, <Configured RetryBackOffWaitMinimum_duration>
TX_UPDATED = 1              # s, <Configured transaction_updated_metervalues_interval>
ATTEMPTS = 3                # <Configured message_attempts_transaction_event>
ATTEMPT_INTERVAL = 1        # s, <Configured message_attempts_transaction_event_interval>
MESSAGE_TIMEOUT = 1         # s, OCPPCommCtrlr.MessageTimeout.Default
TOLERANCE = 0.5             # s, on a retry interval
E31_TD = 1                  # s, <Configured Transaction Duration> of TC_E_31 (an integer: it is added to RetryBackOffWaitMinimum)
GROUP = {"idToken": "GROUP-4711", "type": "Central"}

OFFLINE = {
    "OCPPCommCtrlr.OfflineThreshold": RETRY_MIN + 60,
    "OCPPCommCtrlr.RetryBackOffWaitMinimum": RETRY_MIN,
    "OCPPCommCtrlr.RetryBackOffRandomRange": 0,
    "OCPPCommCtrlr.RetryBackOffRepeatTimes": 0,
}
METER = {"SampledDataCtrlr.TxUpdatedInterval": TX_UPDATED}


# --------------------------------------------------------------------------- helpers

async def station_view(cs) -> dict:
    return await cs.control(cmd="state")


async def octt_goes_offline(cs, step: str) -> None:
    """The OCTT closes the WebSocket connection AND does not accept a reconnect (401)."""
    cs.csms.basic_auth = {cs.station_id: "not-the-station-password"}
    await cs.csms.disconnect(cs.station_id)
    with trio.move_on_after(CALL_WAIT):
        while (await station_view(cs))["csms_connected"]:
            await trio.sleep(0.01)
        return
    fail(f"{step}: the station still says it is connected {CALL_WAIT} s after the OCTT closed the connection")


async def octt_accepts_reconnect(cs, step: str) -> datetime:
    """The OCTT accepts the reconnection; returns the moment it did (UTC)."""
    accepted = datetime.now(timezone.utc)
    cs.csms.basic_auth = None
    timeout = RETRY_MIN + CALL_WAIT
    try:
        await cs.csms.wait_connected(cs.station_id, timeout=timeout)
    except trio.TooSlowError:
        fail(f"{step}: the station did not reconnect within {timeout} s of the OCTT accepting it again")
    return accepted


def gate_transaction_events(cs, answer, gate: trio.Event) -> None:
    """The OCTT answers TransactionEventRequests only after `gate` (its steps are in order)."""
    async def handler(_sid: str, payload: dict) -> dict:
        await gate.wait()
        return answer(payload)
    cs.csms.handlers["TransactionEvent"] = handler


def plain_answer(payload: dict) -> dict:
    return {"idTokenInfo": {"status": "Accepted"}} if "idToken" in payload else {}


async def collect_tes(cs, after: int, quiet: float = 1.0, limit: float = 6.0) -> list[dict]:
    """The TransactionEventRequests from `after` on, once the station was quiet for `quiet` s."""
    deadline = trio.current_time() + limit
    seen = -1
    last_change = trio.current_time()
    while trio.current_time() < deadline:
        n = len(cs.calls("TransactionEvent", after))
        if n != seen:
            seen, last_change = n, trio.current_time()
        elif n and trio.current_time() - last_change >= quiet:
            break
        await trio.sleep(0.05)
    return [p for _, p in cs.calls("TransactionEvent", after)]


def queued(tes: list[dict], accepted: datetime) -> list[dict]:
    return [p for p in tes if ts(p["timestamp"]) < accepted]


def check_offline_messages(step: str, msgs: list[dict], *, updated_with_meter: bool = False) -> None:
    assert msgs, f"{step}: the station sent no TransactionEventRequest from its queue after reconnecting"
    for p in msgs:
        assert p.get("offline") is True, f"{step}: offline must be true: {te_summary(p)} offline={p.get('offline')!r}"
        if updated_with_meter:
            assert p.get("eventType") == "Updated", f"{step}: eventType must be Updated: {te_summary(p)}"
            assert p.get("meterValue"), f"{step}: meterValues must be present: {te_summary(p)}"


async def get_transaction_status(cs, step: str, transaction_id: str | None) -> dict:
    payload = {} if transaction_id is None else {"transactionId": transaction_id}
    try:
        return await cs.call("GetTransactionStatus", payload)
    except CallError as exc:
        fail(f"{step}: the station answered GetTransactionStatusRequest with a CALLERROR {exc.code}: {exc.description}")


async def send_local_list(cs, entries: list[dict], step: str) -> None:
    try:
        res = await cs.call("SendLocalList", {"versionNumber": 5, "updateType": "Full",
                                              "localAuthorizationList": entries})
    except CallError as exc:
        fail(f"{step}: the station answered SendLocalListRequest with a CALLERROR {exc.code}: {exc.description}")
    assert res.get("status") == "Accepted", f"{step}: SendLocalListResponse {res}"


async def queue_offline_gts(boot_station, with_id: bool) -> None:
    """TC_E_29 (with_id) / TC_E_33: GetTransactionStatus while the queue holds messages of the
    ongoing transaction."""
    dm = tx_points(**OFFLINE, **METER)
    with trio.fail_after(LIMIT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await octt_goes_offline(cs, "Step 1")
            await trio.sleep(RETRY_MIN)                                 # step 2
            gate = trio.Event()
            gate_transaction_events(cs, plain_answer, gate)
            after = cs.mark()
            accepted = await octt_accepts_reconnect(cs, "Step 2")
            res = await get_transaction_status(cs, "Step 4", s.tx_id if with_id else None)
            gate.set()
            if with_id:
                assert res.get("ongoingIndicator") is True, f"Step 4: ongoingIndicator must be true: {res}"
            else:
                assert "ongoingIndicator" not in res, f"Step 4: ongoingIndicator must be omitted: {res}"
            assert res.get("messagesInQueue") is True, f"Step 4: messagesInQueue must be true: {res}"
            tes = await collect_tes(cs, after)
            check_offline_messages("Step 5", queued(tes, accepted), updated_with_meter=True)


# =========================================================================== E06: stop options

async def test_TC_E_16_CS_stop_transaction_options_deauthorized_invalid_id_token(boot_station):
    """TC_E_16_CS Stop transaction options - Deauthorized - Invalid idToken.

    Before: TxStopPoint EVConnected,Authorized (contains Authorized), AuthCtrlr.Enabled true,
    OfflineTxForUnknownIdEnabled true, StopTxOnInvalidId true (DisableRemoteAuthorization: not
    implemented); IdTokenCached and IdTokenLocalAuthList for valid_idtoken; StartOfflineTransaction.
    Main: the OCTT answers the TransactionEventRequest with the idToken with Invalid."""
    dm = tx_points(**OFFLINE, **{"AuthCtrlr.Enabled": True, "AuthCtrlr.OfflineTxForUnknownIdEnabled": True,
                                 "TxCtrlr.StopTxOnInvalidId": True, "AuthCacheCtrlr.Enabled": True,
                                 "LocalAuthListCtrlr.Enabled": True})
    with trio.fail_after(LIMIT):
        async with boot_station(device_model=dm) as cs:
            await id_token_cached(cs, VALID, {"status": "Accepted"}, "Before (IdTokenCached)")
            await send_local_list(cs, [{"idToken": VALID, "idTokenInfo": {"status": "Accepted"}}],
                                  "Before (IdTokenLocalAuthList)")
            # StartOfflineTransaction
            await octt_goes_offline(cs, "Before (StartOfflineTransaction) step 1")
            await cs.control(cmd="occupancy", evse=EVSE, occupied=True)
            await present(cs, VALID)
            await trio.sleep(0.2)
            await cs.control(cmd="plug", evse=EVSE, connector=CONNECTOR)
            await trio.sleep(0.5)

            def answer(payload: dict) -> dict:
                return {"idTokenInfo": {"status": "Invalid"}} if "idToken" in payload else {}
            gate = trio.Event()
            gate.set()
            gate_transaction_events(cs, answer, gate)
            after = cs.mark()
            accepted = await octt_accepts_reconnect(cs, "Before (StartOfflineTransaction) step 2")
            tes = await collect_tes(cs, after)
            q = queued(tes, accepted)
            check_offline_messages("Step 1", q)
            assert any("idToken" in p for p in q), (
                f"Step 1: no queued TransactionEventRequest carries the idToken: {[te_summary(p) for p in q]}")
            live = [p for p in tes if p not in q]
            ended = [p for p in live if p.get("eventType") == "Ended"]
            assert ended, (f"Step 3: after the Invalid idTokenInfo the station sent no TransactionEventRequest "
                           f"eventType Ended; it sent {[te_summary(p) for p in tes]}")
            check_te("Step 3", ended[0], event_type="Ended", trigger="Deauthorized", stopped="DeAuthorized")


async def test_TC_E_54_CS_stop_transaction_options_ev_disconnected_ev_side_not_iec61851(boot_station):
    """TC_E_54_CS Stop transaction options - EVDisconnected - EV side (not able to charge IEC 61851-1 EV).

    Before: TxStopPoint EVConnected, StopTxOnEVSideDisconnect false; EnergyTransferSuspended.
    Main: the cable is unplugged at the EV (fixed cable)."""
    dm = tx_points(stop="EVConnected", **{"TxCtrlr.StopTxOnEVSideDisconnect": False})
    with trio.fail_after(LIMIT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs, stop="EVConnected")
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await s.energy_transfer_suspended("Before (EnergyTransferSuspended)")
            assert not s.ended, "Before (EnergyTransferSuspended): the transaction ended before the EV was disconnected"
            await cs.control(cmd="unplug", evse=EVSE, connector=CONNECTOR)
            p = await s.next_te("Step 1")
            check_te("Step 1", p, trigger="EVCommunicationLost", state="Idle",
                     stopped=("StoppedByEV", "EVDisconnected"), event_type="Ended")


# =========================================================================== E14: status with a queue

async def test_TC_E_29_CS_check_transaction_status_ongoing_with_message_in_queue(boot_station):
    """TC_E_29_CS Check Transaction status - Transaction with id ongoing - with message in queue."""
    await queue_offline_gts(boot_station, with_id=True)


async def test_TC_E_33_CS_check_transaction_status_without_transaction_id_with_message_in_queue(boot_station):
    """TC_E_33_CS Check Transaction status - Without transactionId - with message in queue."""
    await queue_offline_gts(boot_station, with_id=False)


async def test_TC_E_31_CS_check_transaction_status_ended_with_message_in_queue(boot_station):
    """TC_E_31_CS Check Transaction status - Transaction with id ended - with message in queue.

    Before: OfflineThreshold 63 / RetryBackOffWaitMinimum 3 (2 s + the transaction duration 1 s), TxUpdatedInterval 1 s; defaults
    TxStartPoint PowerPathClosed / TxStopPoint EVConnected,Authorized; EnergyTransferStarted.
    Scenario local: offline, present the same idToken, disconnect the EV, wait TD, reconnect."""
    dm = tx_points(**{**OFFLINE, **METER, "OCPPCommCtrlr.OfflineThreshold": RETRY_MIN + E31_TD + 60,
                      "OCPPCommCtrlr.RetryBackOffWaitMinimum": RETRY_MIN + E31_TD})
    with trio.fail_after(LIMIT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            tx_id = s.tx_id
            await octt_goes_offline(cs, "Main (the OCTT closes the connection)")
            await present(cs, VALID)
            await trio.sleep(0.3)
            await cs.control(cmd="unplug", evse=EVSE, connector=CONNECTOR)
            await trio.sleep(E31_TD)                                    # <Configured Transaction Duration>
            gate = trio.Event()
            gate_transaction_events(cs, plain_answer, gate)
            after = cs.mark()
            accepted = await octt_accepts_reconnect(cs, "Main (the OCTT accepts the reconnection)")
            res = await get_transaction_status(cs, "Step 2", tx_id)
            gate.set()
            assert res.get("ongoingIndicator") is False, f"Step 2: ongoingIndicator must be false: {res}"
            assert res.get("messagesInQueue") is True, f"Step 2: messagesInQueue must be true: {res}"
            tes = await collect_tes(cs, after)
            q = [p for p in queued(tes, accepted) if info_of(p).get("transactionId") == tx_id
                 and p.get("triggerReason") != "MeterValuePeriodic"]
            what = [te_summary(p) for p in q]
            assert q, f"Step 3: no queued TransactionEventRequest of the transaction: {[te_summary(p) for p in tes]}"
            # StopAuthorized (local) step 1
            check_te("Step 3 (StopAuthorized step 1)", q[0], trigger="StopAuthorized", token_or_omitted=VALID)
            rest = q[1:]
            if q[0].get("eventType") != "Ended":
                # EVConnectedPostSession step 1, then EVDisconnected step 3
                assert rest, f"Step 3 (EVConnectedPostSession / EVDisconnected): missing: {what}"
                if rest[0].get("triggerReason") == "ChargingStateChanged":
                    check_te("Step 3 (EVConnectedPostSession step 1)", rest[0], state="EVConnected")
                    rest = rest[1:]
                assert rest, f"Step 3 (EVDisconnected step 3): missing: {what}"
                check_te("Step 3 (EVDisconnected step 3)", rest[0], trigger="EVCommunicationLost", state="Idle")
            assert any(p.get("eventType") == "Ended" for p in q), f"Step 3: no Ended among {what}"


# =========================================================================== E11-E13: offline, retries

async def test_TC_E_40_CS_offline_behaviour_connection_loss_during_transaction(boot_station):
    """TC_E_40_CS Offline Behaviour - Connection loss during transaction.

    Before: TxUpdatedInterval 1 s, SampledDataCtrlr.Enabled true, offline settings;
    EnergyTransferStarted."""
    dm = tx_points(**OFFLINE, **METER, **{"SampledDataCtrlr.Enabled": True})
    with trio.fail_after(LIMIT):
        async with boot_station(device_model=dm) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            await octt_goes_offline(cs, "Step 1")
            await trio.sleep(RETRY_MIN)                                 # step 2
            after = cs.mark()
            accepted = await octt_accepts_reconnect(cs, "Step 2")
            tes = await collect_tes(cs, after)
            check_offline_messages("Step 3", queued(tes, accepted), updated_with_meter=True)


def tx_key(p: dict) -> tuple:
    return (info_of(p).get("transactionId"), p.get("seqNo"), p.get("eventType"), p.get("timestamp"))


async def retry_rig(cs, respond_to: set[int], *,
                    call_error: bool = False) -> tuple[dict[tuple, list[float]], list[tuple]]:
    """Before: Authorized (local), EVConnectedPreSession (answered as usual). Main: the OCTT
    stops answering TransactionEventRequests (except the attempts of the first one numbered in
    `respond_to`, 1-based, and, when `respond_to` is not empty, every later message), or, with
    `call_error`, answers them at once with a CALLERROR InternalError (TC_E_50/E_51); the
    TransactionEventRequest of step 5 is caused by the EV starting to draw energy (the test
    case leaves the cause open). Returns the arrival times per message and the first message."""
    s = Session(cs)
    await s.authorized_local("Before (Authorized)")
    await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
    times: dict[tuple, list[float]] = {}
    first: list[tuple] = []
    count = {"n": 0}

    async def handler(_sid: str, payload: dict) -> Any:
        key = tx_key(payload)
        times.setdefault(key, []).append(trio.current_time())
        if not first:
            first.append(key)
        if key == first[0]:
            count["n"] += 1
            if count["n"] in respond_to:
                return plain_answer(payload)
        elif respond_to:
            return plain_answer(payload)
        if call_error:
            return ("InternalError", "the OCTT fails this TransactionEventRequest")
        await trio.sleep_forever()

    cs.csms.handlers["TransactionEvent"] = handler
    await cs.control(cmd="ev_charge", evse=EVSE, power_w=7400)
    return times, first


RETRY_SETTINGS = tx_points(**{"OCPPCommCtrlr.MessageAttempts[TransactionEvent]": ATTEMPTS,
                               "OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]": ATTEMPT_INTERVAL,
                               "OCPPCommCtrlr.MessageTimeout[Default]": MESSAGE_TIMEOUT})


def check_attempts(times: dict[tuple, list[float]], first: list[tuple], count: int, why: str,
                   wait_before: Callable[[int], float], how: str) -> None:
    """Step 5: the first message sent `count` times (`why`), attempt k + 1 wait_before(k) s
    (`how`, with k) after attempt k, within TOLERANCE."""
    assert first, "Step 5: the station sent no TransactionEventRequest"
    got = times[first[0]]
    gaps = [round(b - a, 2) for a, b in zip(got, got[1:])]
    assert len(got) == count, (
        f"Step 5: the TransactionEventRequest {first[0]} must be sent {count} times ({why}), "
        f"it was sent {len(got)} times, intervals {gaps} s")
    for k, gap in enumerate(gaps, start=1):
        want = wait_before(k)
        assert abs(gap - want) <= TOLERANCE, (
            f"Step 5: interval before attempt {k + 1} must be {want} s ({how.format(k=k)}), was {gap} s (all: {gaps})")


def check_given_up(times: dict[tuple, list[float]]) -> None:
    """Step 5: no TransactionEventRequest sent more than MessageAttemptsTransactionEvent times."""
    over = {k: len(v) for k, v in times.items() if len(v) > ATTEMPTS}
    assert not over, f"Step 5: TransactionEventRequests sent more than {ATTEMPTS} times: {over}"


async def test_TC_E_41_CS_retry_transaction_message_max_retry_count_reached(boot_station):
    """TC_E_41_CS Retry sending transaction message when failed - Max retry count reached.

    Before: MessageAttemptsTransactionEvent 3, MessageAttemptIntervalTransactionEvent 1 s
    (MessageTimeout.Default 1 s); Authorized, EVConnectedPreSession. Step 5's message: the one
    the EV drawing energy causes (see retry_rig)."""
    with trio.fail_after(LIMIT):
        async with boot_station(device_model=RETRY_SETTINGS) as cs:
            times, first = await retry_rig(cs, set())
            # the attempts, then one more iteration (interval x attempts + MessageTimeout)
            total = sum(ATTEMPT_INTERVAL * k + MESSAGE_TIMEOUT for k in range(1, ATTEMPTS + 1))
            await trio.sleep(total + TOLERANCE + 1)
            check_attempts(times, first, ATTEMPTS, "MessageAttempts",
                           lambda k: ATTEMPT_INTERVAL * k + MESSAGE_TIMEOUT, "interval x {k} + MessageTimeout")
            check_given_up(times)


async def test_TC_E_42_CS_retry_transaction_message_success_before_max_retry_count(boot_station):
    """TC_E_42_CS Retry sending transaction message when failed - Success before reaching the max retry count.

    Before: MessageAttemptsTransactionEvent 3 (> 2), interval 1 s (MessageTimeout.Default 1 s);
    Authorized, EVConnectedPreSession. The OCTT ignores the first request and answers the second."""
    with trio.fail_after(LIMIT):
        async with boot_station(device_model=RETRY_SETTINGS) as cs:
            times, first = await retry_rig(cs, {2})
            wait = (ATTEMPT_INTERVAL + MESSAGE_TIMEOUT) + (ATTEMPT_INTERVAL * 2 + MESSAGE_TIMEOUT)
            await trio.sleep(wait + TOLERANCE + 1)
            check_attempts(times, first, 2, "answered the 2nd time",
                           lambda k: ATTEMPT_INTERVAL * k + MESSAGE_TIMEOUT, "interval x {k} + MessageTimeout")


async def test_TC_E_50_CS_retry_transaction_message_max_retry_count_reached_call_error(boot_station):
    """TC_E_50_CS Retry sending transaction message when failed - Max retry count reached - CallError.

    Before and step 5's message as TC_E_41; the OCTT answers every attempt with a CALLERROR
    InternalError at once, so attempt k + 1 follows interval x k after attempt k (no
    MessageTimeout to wait for); then one more iteration without a resend."""
    with trio.fail_after(LIMIT):
        async with boot_station(device_model=RETRY_SETTINGS) as cs:
            times, first = await retry_rig(cs, set(), call_error=True)
            # the attempts, then one more iteration (interval x attempts)
            total = sum(ATTEMPT_INTERVAL * k for k in range(1, ATTEMPTS + 1))
            await trio.sleep(total + TOLERANCE + 1)
            check_attempts(times, first, ATTEMPTS, "MessageAttempts",
                           lambda k: ATTEMPT_INTERVAL * k, "interval x {k}, after the CALLERROR")
            check_given_up(times)


async def test_TC_E_51_CS_retry_transaction_message_success_before_max_retry_count_call_error(boot_station):
    """TC_E_51_CS Retry sending transaction message when failed - Success before reaching the max retry count -
    CallError.

    Before and step 5's message as TC_E_42; the OCTT answers the first attempt with a CALLERROR
    InternalError and the second with a TransactionEventResponse (later messages as usual, as in
    TC_E_42). The table's "+ OCPPCommCtrlr.MessageTimeout.Default" (copied from TC_E_42, where
    the OCTT does not answer) is read as not applying: a CALLERROR ends the attempt at once, so
    attempt 2 follows interval x 1 after attempt 1."""
    with trio.fail_after(LIMIT):
        async with boot_station(device_model=RETRY_SETTINGS) as cs:
            times, first = await retry_rig(cs, {2}, call_error=True)
            await trio.sleep(ATTEMPT_INTERVAL + ATTEMPT_INTERVAL * 2 + TOLERANCE + 1)
            check_attempts(times, first, 2, "answered the 2nd time",
                           lambda k: ATTEMPT_INTERVAL * k, "interval x {k}, after the CALLERROR")


# =========================================================================== E12 / E08: offline transactions

async def test_TC_E_43_CS_offline_behaviour_transaction_during_offline_period(boot_station):
    """TC_E_43_CS Offline Behaviour - Transaction during offline period.

    Step 1 TransactionEventsInQueueEnded: OfflineTxForUnknownIdEnabled true; IdTokenCached and
    IdTokenLocalAuthList for valid_idtoken; offline: into the bay, connect, present, present again,
    disconnect, out of the bay; reconnect."""
    dm = tx_points(**OFFLINE, **{"AuthCtrlr.OfflineTxForUnknownIdEnabled": True, "AuthCacheCtrlr.Enabled": True,
                                 "LocalAuthListCtrlr.Enabled": True})
    with trio.fail_after(LIMIT):
        async with boot_station(device_model=dm) as cs:
            await id_token_cached(cs, VALID, {"status": "Accepted"}, "Step 1 (IdTokenCached)")
            await send_local_list(cs, [{"idToken": VALID, "idTokenInfo": {"status": "Accepted"}}],
                                  "Step 1 (IdTokenLocalAuthList)")
            await octt_goes_offline(cs, "Step 1 (TransactionEventsInQueueEnded) step 1")
            for action in ({"cmd": "occupancy", "evse": EVSE, "occupied": True},
                           {"cmd": "plug", "evse": EVSE, "connector": CONNECTOR}):
                await cs.control(**action)
                await trio.sleep(0.2)
            await present(cs, VALID)
            await trio.sleep(TD + 0.2)
            await present(cs, VALID)
            await trio.sleep(0.3)
            await cs.control(cmd="unplug", evse=EVSE, connector=CONNECTOR)
            await trio.sleep(0.2)
            await cs.control(cmd="occupancy", evse=EVSE, occupied=False)
            await trio.sleep(0.2)
            after = cs.mark()
            accepted = await octt_accepts_reconnect(cs, "Step 1 (TransactionEventsInQueueEnded) step 2")
            tes = await collect_tes(cs, after)
            q = queued(tes, accepted)
            check_offline_messages("Step 2", q)
            kinds = [p.get("eventType") for p in q]
            assert "Started" in kinds, f"Step 2: one message must have eventType Started: {[te_summary(p) for p in q]}"
            assert "Ended" in kinds, f"Step 2: one message must have eventType Ended: {[te_summary(p) for p in q]}"


async def offline_stop(boot_station, *, group: bool) -> None:
    dm = tx_points(**OFFLINE)
    if group:
        dm.update({"AuthCacheCtrlr.Enabled": True, "LocalAuthListCtrlr.Enabled": True})
    with trio.fail_after(LIMIT):
        async with boot_station(device_model=dm) as cs:
            info = {"status": "Accepted"}
            stopper = VALID
            if group:
                info = {"status": "Accepted", "groupIdToken": GROUP}
                stopper = VALID2
                await id_token_cached(cs, VALID2, info, "Before (IdTokenCached for valid_idtoken2 with GroupIdToken)")
                await send_local_list(cs, [{"idToken": VALID2, "idTokenInfo": info}],
                                      "Before (IdTokenLocalAuthList for valid_idtoken2 with GroupIdToken)")
            s = Session(cs)
            await s.authorized_local("Before (Authorized)", info=info)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            cs.csms.handlers["TransactionEvent"] = lambda _sid, p: (
                {"idTokenInfo": info} if "idToken" in p else {})
            await octt_goes_offline(cs, "Step 1")
            await present(cs, stopper)
            await trio.sleep(0.3)
            await cs.control(cmd="unplug", evse=EVSE, connector=CONNECTOR)
            await trio.sleep(0.3)
            after = cs.mark()
            accepted = await octt_accepts_reconnect(cs, "Step 2")
            tes = await collect_tes(cs, after)
            q = queued(tes, accepted)
            check_offline_messages("Step 3", q)
            assert any(p.get("eventType") == "Ended" for p in q), (
                f"Step 3: one message must have eventType Ended: {[te_summary(p) for p in q]}")


async def test_TC_E_44_CS_offline_behaviour_stop_transaction_during_offline_period(boot_station):
    """TC_E_44_CS Offline Behaviour - Stop transaction during offline period.

    Before: offline settings; EnergyTransferStarted. Offline: present the same idToken, disconnect."""
    await offline_stop(boot_station, group=False)


async def test_TC_E_45_CS_offline_behaviour_stop_transaction_during_offline_period_same_group_id(boot_station):
    """TC_E_45_CS Offline Behaviour - Stop transaction during offline period - Same GroupId.

    Before: offline settings; IdTokenCached and IdTokenLocalAuthList for valid_idtoken2 with
    GROUP-4711; Authorized (valid_idtoken, GROUP-4711), EnergyTransferStarted. Offline: present
    valid_idtoken2, disconnect."""
    await offline_stop(boot_station, group=True)
