"""OCA certification test cases of functional block B: Reset (B11/B12) and the status report
after an offline period (B04, OCPPCommCtrlr.OfflineThreshold), Charging Station side.

One test per test case of OCPP 2.0.1 Edition 3 Part 6 (TC_B_20, B_21, B_22, B_23, B_41, B_25,
B_26, B_27, B_51, B_52); the steps are followed as written and every tool validation is
asserted. The station is the real one (the sim deployment: its reboot is a soft reboot in
the same process, the simulated EV stays as it is), the OCTT is played by the DevCsms (see
conftest.py, which also validates every frame the station sent against the official JSON
schemas when a test ends). Not written: TC_B_28/B_29 (PICS C-13 "Reset per EVSE" is yes
for this station, so the cases for stations without it do not apply).

The reusable states (EnergyTransferStarted, StopAuthorized, EVConnectedPostSession,
EVDisconnected, ParkingBayUnoccupied) are the ones of test_efj_transactions.Session, with
TxStartPoint PowerPathClosed / TxStopPoint EVConnected,Authorized (the station's defaults),
StopAuthorized played locally (Main A).

Readings where the text is looser or ambiguous:
- "The Charging Station notifies the CSMS about the current state of all connectors" after a
  BootNotification and the SecurityEventNotificationRequest of TC_B_21 (step 11): the table
  lists the statuses first, the station sends its durable SecurityEventNotification first;
  the messages after a BootNotification may come in any order, so any order is accepted.
- TC_B_21/B_41 step 9/13 "If the transaction was stopped at step 3, then Occupied, else
  Available": per connector, Occupied while the EV is still plugged in there (its
  transaction was stopped by StopAuthorized and the EV not disconnected), else Available.
- "A message to report the state of a connector" (post scenario validations) is a
  StatusNotificationRequest or a NotifyEventRequest(Connector.AvailabilityState).
- The stations of TC_B_20..B_23, B_41, B_51 and B_52 have two EVSEs of one connector
  (EVSE 1 / connector 1 is <Configured evseId/connectorId>), so "<Other connector(s)>" and
  "All other EVSE/Connector(s)" are checked too.

Chosen configured values: <Configured offlineThreshold> OFFLINE_THRESHOLD_LONG s for TC_B_51
(RetryBackOffWaitMinimum = threshold + 2 s: the first reconnect attempt comes after the
threshold) and OFFLINE_THRESHOLD_SHORT s for TC_B_52 (RetryBackOffWaitMinimum = threshold - 2 s).

Beyond Part 6: test_reset_immediate_during_session_loses_no_transaction_event (and its
variant where the CSMS leaves the Ended event unanswered until the station rebooted): every
TransactionEventRequest of the transaction is delivered exactly once, seqNo contiguous from 0.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import trio

from devtools.dev_csms import CallError
from domain.provisioning.reset import RESET_DELIVERY_WAIT
from tests.conformance.conftest import expect_call
from tests.conformance.test_cd_authorization import answered, connector_reported, fail
from tests.conformance.test_e_transactions_more import octt_accepts_reconnect, octt_goes_offline
from tests.conformance.test_efj_transactions import (
    CALL_WAIT,
    CONNECTOR,
    EVSE,
    QUIET,
    VALID2,
    Session,
    check_te,
    info_of,
    te_summary,
    tx_points,
)

TIMEOUT = 20                # s, per test
BOOT_WAIT = 8               # s, for the BootNotificationRequest after a reset
SECURITY_EVENT_WAIT = 3     # s, for the SecurityEventNotificationRequest after the boot
TWO_EVSES = (1, 1)          # two EVSEs of one connector each
OTHER_EVSE = 2
TX_UPDATED = 1              # s, SampledDataCtrlr.TxUpdatedInterval of the end-to-end test
OFFLINE_THRESHOLD_LONG = 1      # s, <Configured offlineThreshold> of TC_B_51
OFFLINE_THRESHOLD_SHORT = 3     # s, <Configured offlineThreshold> of TC_B_52

Problems = list[str]


# --------------------------------------------------------------------------- helpers

async def reset(cs, step: str, kind: str, evse: int | None = None) -> dict:
    """The OCTT's ResetRequest (evseId omitted for the whole station: errata 2024-09, [4390])."""
    payload: dict[str, Any] = {"type": kind}
    if evse is not None:
        payload["evseId"] = evse
    try:
        return await cs.call("Reset", payload)
    except CallError as exc:
        fail(f"{step}: the station answered ResetRequest {payload} with a CALLERROR {exc.code}: {exc.description}")


def check_status(step: str, res: dict, status: str, what: str) -> None:
    assert res.get("status") == status, f"{step}: {what}.status {res.get('status')!r}, expected {status}: {res}"


async def change_availability(cs, step: str, operational: str, evse: int | None = None,
                              connector: int | None = None) -> dict:
    payload: dict[str, Any] = {"operationalStatus": operational}
    if evse is not None:
        payload["evse"] = {"id": evse} if connector is None else {"id": evse, "connectorId": connector}
    try:
        return await cs.call("ChangeAvailability", payload)
    except CallError as exc:
        fail(f"{step}: the station answered ChangeAvailabilityRequest {payload} with a CALLERROR "
             f"{exc.code}: {exc.description}")


async def expect_boot(cs, after: int, step: str, reason: str | None = None, timeout: float = BOOT_WAIT) -> int:
    """The BootNotificationRequest of the reboot (its reason checked when given); its index."""
    index, boot = await expect_call(cs, "BootNotification", after=after, step=step, timeout=timeout)
    if reason is not None:
        assert boot.get("reason") == reason, (
            f"{step}: BootNotificationRequest.reason {boot.get('reason')!r}, expected {reason}: {boot}")
    return index


async def connectors_reported(cs, after: int, expected: dict[tuple[int, int], str], step: str) -> None:
    """For every connector: StatusNotificationRequest + NotifyEventRequest(Connector
    AvailabilityState, Delta) with the expected status (the first ones after `after`)."""
    for (evse, connector), status in expected.items():
        await connector_reported(cs, after, status, f"{step} (EVSE {evse} connector {connector})", evse, connector)


def reports_connector(frame_payload: dict, action: str, evse: int, connector: int) -> bool:
    if action == "StatusNotification":
        return (frame_payload.get("evseId"), frame_payload.get("connectorId")) == (evse, connector)
    for d in frame_payload.get("eventData") or ():
        comp = d.get("component") or {}
        if (comp.get("name") == "Connector" and comp.get("evse") == {"id": evse, "connectorId": connector}
                and (d.get("variable") or {}).get("name") == "AvailabilityState"):
            return True
    return False


def all_connectors_reported(cs, after: int, step: str, connectors=None) -> None:
    """Post scenario validation: a message reporting the state of each connector (a
    StatusNotificationRequest or a NotifyEventRequest(Connector.AvailabilityState)) from `after` on."""
    missing = [(e, c) for e, c in (connectors or cs.connectors)
               if not any(reports_connector(p, a, e, c) for a in ("StatusNotification", "NotifyEvent")
                          for _, p in cs.calls(a, after))]
    assert not missing, (f"{step} (post scenario validation): no message reported the state of "
                         f"{', '.join(f'EVSE {e} connector {c}' for e, c in missing)}")


async def security_event(cs, after: int, step: str) -> None:
    _, sec = await expect_call(cs, "SecurityEventNotification", after=after, step=step, timeout=SECURITY_EVENT_WAIT)
    assert sec.get("type") in ("StartupOfTheDevice", "ResetOrReboot"), (
        f"{step}: SecurityEventNotificationRequest.type {sec.get('type')!r}, expected StartupOfTheDevice or "
        f"ResetOrReboot: {sec}")


def no_boot_since(cs, after: int, step: str) -> None:
    boots = cs.calls("BootNotification", after)
    assert not boots, (f"{step}: the station rebooted (BootNotificationRequest {boots[0][1]}) while a transaction "
                       f"was still ongoing; a scheduled reset waits for every transaction to end")


async def settle(cs, quiet: float = 0.15, limit: float = 3.0) -> None:
    """Until the station sent nothing for `quiet` s (at most `limit` s): the messages of what
    happened before (the boot's EVSE-level NotifyEvents, ...) are in, so a mark taken next
    belongs to the next step. Not a validation."""
    with trio.move_on_after(limit):
        seen = -1
        while seen != len(cs.csms.received):
            seen = len(cs.csms.received)
            await trio.sleep(quiet)


async def soft(problems: Problems, check) -> None:
    """Run one awaited validation; a failure is collected, so the following steps still run."""
    try:
        await check
    except (AssertionError, pytest.fail.Exception) as exc:
        problems.append(str(exc).strip())


def fail_on(problems: Problems) -> None:
    if problems:
        fail("\n".join(problems))


# =========================================================================== B11/B12: station reset

async def test_TC_B_20_CS_reset_charging_station_without_ongoing_transaction_on_idle(boot_station):
    """TC_B_20_CS Reset Charging Station - Without ongoing transaction - OnIdle (B11)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=TWO_EVSES) as cs:
            after = cs.mark()
            res = await reset(cs, "Step 1", "OnIdle")
            check_status("Step 2", res, "Accepted", "ResetResponse")
            boot = await expect_boot(cs, after, "Step 3 (the station reboots)")
            await connectors_reported(cs, boot, {c: "Available" for c in cs.connectors}, "Step 5")
            all_connectors_reported(cs, boot, "Step 5")


# real clock: "no reboot before the transaction ended" is checked after the Ended event's answer,
# after which the station reboots at once; over memory streams the reboot can come first
@pytest.mark.real_clock
async def test_TC_B_21_CS_reset_charging_station_with_ongoing_transaction_on_idle(boot_station):
    """TC_B_21_CS Reset Charging Station - With Ongoing Transaction - OnIdle (B12).

    Before: EnergyTransferStarted. Main: Reset OnIdle (Scheduled), StopAuthorized (the
    transaction ends: TxStopPoint contains Authorized); steps 4-6 are not executed
    (TxStartPoint PowerPathClosed); the station reboots (ScheduledReset) with the EV still
    plugged in: Occupied."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=TWO_EVSES, device_model=tx_points()) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            after = cs.mark()
            res = await reset(cs, "Step 1", "OnIdle")
            check_status("Step 2", res, "Scheduled", "ResetResponse")
            await s.stop_authorized_local("Step 3 (StopAuthorized)")
            assert s.ended, "Step 3: the transaction did not end at StopAuthorized (TxStopPoint contains Authorized)"
            no_boot_since(cs, after, "Steps 2-3")
            boot = await expect_boot(cs, after, "Step 7", reason="ScheduledReset")
            await connectors_reported(cs, boot, {(EVSE, CONNECTOR): "Occupied", (OTHER_EVSE, 1): "Available"},
                                      "Step 9")
            await security_event(cs, boot, "Step 11")
            all_connectors_reported(cs, boot, "Step 9")


async def test_TC_B_22_CS_reset_charging_station_with_ongoing_transaction_immediate(boot_station):
    """TC_B_22_CS Reset Charging Station - With Ongoing Transaction - Immediate (B12)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=TWO_EVSES, device_model=tx_points()) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            after = cs.mark()
            res = await reset(cs, "Step 1", "Immediate")
            check_status("Step 2", res, "Accepted", "ResetResponse")
            p = await s.next_te("Step 3")
            check_te("Step 3", p, event_type="Ended", trigger="ResetCommand", state="EVConnected",
                     stopped="ImmediateReset")
            assert "idToken" not in p, f"Step 3: idToken must be omitted: {te_summary(p)} idToken={p['idToken']}"
            boot = await expect_boot(cs, after, "Step 5", reason="RemoteReset")
            await connectors_reported(cs, boot, {(EVSE, CONNECTOR): "Occupied", (OTHER_EVSE, 1): "Available"},
                                      "Step 7")
            all_connectors_reported(cs, boot, "Step 7")


async def test_TC_B_23_CS_reset_charging_station_unavailable_persists_reset(boot_station):
    """TC_B_23_CS Reset Charging Station - Unavailable persists reset (B11).

    Memory State "Unavailable for <Configured connectorId>": ChangeAvailabilityRequest
    Inoperative for EVSE 1 / connector 1 before the main steps."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=TWO_EVSES) as cs:
            before = cs.mark()
            res = await change_availability(cs, "Before (Memory State Unavailable)", "Inoperative", EVSE, CONNECTOR)
            check_status("Before (Memory State Unavailable)", res, "Accepted", "ChangeAvailabilityResponse")
            await connector_reported(cs, before, "Unavailable", "Before (Memory State Unavailable)")
            after = cs.mark()
            res = await reset(cs, "Step 1", "OnIdle")
            check_status("Step 2", res, "Accepted", "ResetResponse")
            boot = await expect_boot(cs, after, "Step 3", reason="RemoteReset")
            await connectors_reported(cs, boot, {(EVSE, CONNECTOR): "Unavailable", (OTHER_EVSE, 1): "Available"},
                                      "Step 5")
            all_connectors_reported(cs, boot, "Step 5")


async def test_TC_B_41_CS_reset_charging_station_with_multiple_ongoing_transactions_on_idle(boot_station):
    """TC_B_41_CS Reset Charging Station - With multiple ongoing transactions - OnIdle (B12).

    Before: EnergyTransferStarted on EVSE 1 (valid_idtoken) and on EVSE 2 (valid_idtoken2).
    TxStopPoint contains Authorized, so EVSE 2's transaction ends at its StopAuthorized and the
    station proceeds to step 11 after step 8; EVSE 1's EV was disconnected (step 5): at step
    13 EVSE 1 is Available, EVSE 2 (EV still plugged in) Occupied."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=TWO_EVSES, device_model=tx_points()) as cs:
            s1 = Session(cs, evse=EVSE)
            await s1.energy_transfer_started("Before (EnergyTransferStarted, EVSE 1)")
            s2 = Session(cs, evse=OTHER_EVSE, token=VALID2)
            await s2.energy_transfer_started("Before (EnergyTransferStarted, EVSE 2)")
            after = cs.mark()
            res = await reset(cs, "Step 1", "OnIdle")
            check_status("Step 2", res, "Scheduled", "ResetResponse")
            await s1.stop_authorized_local("Step 3 (StopAuthorized, EVSE 1)")
            await s1.ev_connected_post_session("Step 4 (EVConnectedPostSession, EVSE 1)")
            await s1.ev_disconnected("Step 5 (EVDisconnected, EVSE 1)")
            await s1.parking_bay_unoccupied("Step 6 (ParkingBayUnoccupied, EVSE 1)")
            await trio.sleep(QUIET)
            no_boot_since(cs, after, "Steps 2-6 (EVSE 2's transaction is still ongoing)")
            await s2.stop_authorized_local("Step 7 (StopAuthorized, EVSE 2)")
            await s2.ev_connected_post_session("Step 8 (EVConnectedPostSession, EVSE 2)")
            assert s2.ended, "Step 8: EVSE 2's transaction did not end (TxStopPoint contains Authorized)"
            boot = await expect_boot(cs, after, "Step 11", reason="ScheduledReset")
            await connectors_reported(cs, boot, {(EVSE, CONNECTOR): "Available", (OTHER_EVSE, 1): "Occupied"},
                                      "Step 13")
            all_connectors_reported(cs, boot, "Step 13")


# =========================================================================== B11/B12: EVSE reset

async def test_TC_B_25_CS_reset_evse_without_ongoing_transaction(boot_station):
    """TC_B_25_CS Reset EVSE - Without ongoing transaction (B11)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res = await reset(cs, "Step 1", "OnIdle", evse=EVSE)
            check_status("Step 2", res, "Accepted", "ResetResponse")


async def test_TC_B_26_CS_reset_evse_with_ongoing_transaction_on_idle(boot_station):
    """TC_B_26_CS Reset EVSE - With Ongoing Transaction - OnIdle (B12)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            res = await reset(cs, "Step 1", "OnIdle", evse=EVSE)
            check_status("Step 2", res, "Scheduled", "ResetResponse")
            await s.stop_chain("Steps 3-6: ")


async def test_TC_B_27_CS_reset_evse_with_ongoing_transaction_immediate(boot_station):
    """TC_B_27_CS Reset EVSE - With Ongoing Transaction - Immediate (B12)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            res = await reset(cs, "Step 1", "Immediate", evse=EVSE)
            check_status("Step 2", res, "Accepted", "ResetResponse")
            p = await s.next_te("Step 3")
            check_te("Step 3", p, event_type="Ended", trigger="ResetCommand", state="EVConnected",
                     stopped="ImmediateReset")


# =========================================================================== B04: offline threshold

def offline_settings(threshold: int, wait_minimum: int) -> dict[str, Any]:
    return {"OCPPCommCtrlr.OfflineThreshold": threshold,
            "OCPPCommCtrlr.RetryBackOffWaitMinimum": wait_minimum,
            "OCPPCommCtrlr.RetryBackOffRandomRange": 0}


async def test_TC_B_51_CS_status_change_during_offline_period_above_offline_threshold(boot_station):
    """TC_B_51_CS Status change during offline period - > Offline Threshold (B04.FR.01).

    Two EVSEs (with one, this test case equals TC_B_52). The OCTT accepts the reconnection
    once the threshold has been exceeded; the station's first attempt comes
    RetryBackOffWaitMinimum (threshold + 2 s) after the connection loss."""
    threshold = OFFLINE_THRESHOLD_LONG
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=TWO_EVSES,
                                device_model=offline_settings(threshold, threshold + 2)) as cs:
            await octt_goes_offline(cs, "Step 1")
            offline_at = trio.current_time()
            await cs.control(cmd="plug", evse=EVSE, connector=CONNECTOR)          # step 2
            await trio.sleep_until(offline_at + threshold + 0.5)
            after = cs.mark()
            await octt_accepts_reconnect(cs, "Step 3")
            await connectors_reported(cs, after, {(EVSE, CONNECTOR): "Occupied", (OTHER_EVSE, 1): "Available"},
                                      "Step 4")


async def test_TC_B_52_CS_status_change_during_offline_period_below_offline_threshold(boot_station):
    """TC_B_52_CS Status change during offline period - < Offline Threshold (B04.FR.02).

    The station reconnects RetryBackOffWaitMinimum (threshold - 2 s) after the connection loss,
    before the threshold. The table validates the configured connector's report only."""
    threshold = OFFLINE_THRESHOLD_SHORT
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=TWO_EVSES,
                                device_model=offline_settings(threshold, threshold - 2)) as cs:
            await octt_goes_offline(cs, "Step 1")
            await cs.control(cmd="plug", evse=EVSE, connector=CONNECTOR)          # step 2
            after = cs.mark()
            await octt_accepts_reconnect(cs, "Step 3")
            await connector_reported(cs, after, "Occupied", "Step 4", EVSE, CONNECTOR)


# =========================================================================== end to end

def tx_frames(cs, tx_id: str) -> list[tuple[int, dict, bool]]:
    """(index in received, payload, answered by a CALLRESULT) of the station's
    TransactionEventRequests of transaction `tx_id`."""
    answered = {f[1] for sid, f in cs.csms.sent if sid == cs.station_id and f[0] == 3}
    return [(i, f[3], f[1] in answered) for i, (sid, f) in enumerate(cs.csms.received)
            if sid == cs.station_id and len(f) == 4 and f[0] == 2 and f[2] == "TransactionEvent"
            and isinstance(f[3], dict) and info_of(f[3]).get("transactionId") == tx_id]


def check_delivered_once(frames: list[tuple[int, dict, bool]], *, held_seq: int | None = None) -> list[int]:
    """Every TransactionEventRequest answered exactly once per seqNo, seqNo contiguous from 0;
    only the one of `held_seq` (left unanswered by the CSMS) may have been sent more than once.
    Returns the sorted seqNos."""
    answered = Counter(p.get("seqNo") for _, p, ok in frames if ok)
    sent = Counter(p.get("seqNo") for _, p, _ in frames)
    seqs = sorted(sent)
    lines = "\n".join(f"  [{i}] {te_summary(p)}{'' if ok else ' (unanswered)'}" for i, p, ok in frames)
    assert seqs == list(range(len(seqs))), f"seqNo not contiguous from 0: {seqs}\n{lines}"
    twice = {s: n for s, n in answered.items() if n != 1}
    never = [s for s in seqs if answered[s] == 0]
    assert not twice and not never, (
        f"every TransactionEventRequest must reach the CSMS exactly once: answered more than once "
        f"{twice or '-'}, never answered {never or '-'}\n{lines}")
    resent = {s: n for s, n in sent.items() if n > 1 and s != held_seq}
    assert not resent, f"TransactionEventRequests sent again although answered: {resent}\n{lines}"
    return seqs


async def reset_during_session(boot_station, *, hold_ended: bool) -> None:
    dm = tx_points(**{"SampledDataCtrlr.TxUpdatedInterval": TX_UPDATED})
    async with boot_station(device_model=dm) as cs:
        s = Session(cs)
        await s.energy_transfer_started("EnergyTransferStarted")
        tx_id = s.tx_id
        await expect_call(cs, "TransactionEvent", after=s.cursor, step="a TransactionEventRequest with meter values",
                          where=lambda p: info_of(p).get("transactionId") == tx_id and bool(p.get("meterValue")),
                          timeout=TX_UPDATED + CALL_WAIT)
        answer = cs.csms.handlers["TransactionEvent"]
        after = cs.mark()

        async def csms(sid: str, payload: dict) -> dict:
            # the Ended event is left unanswered until the station has rebooted
            if hold_ended and payload.get("eventType") == "Ended" and not cs.calls("BootNotification", after):
                await trio.sleep_forever()
            return answer(sid, payload)
        cs.csms.handlers["TransactionEvent"] = csms

        res = await reset(cs, "Reset", "Immediate")
        check_status("Reset", res, "Accepted", "ResetResponse")
        # unanswered, the station waits RESET_DELIVERY_WAIT s for its Ended event before it reboots
        boot = await expect_boot(cs, after, "reboot", reason="RemoteReset",
                                 timeout=BOOT_WAIT + (RESET_DELIVERY_WAIT if hold_ended else 0))
        await cs.wait_booted(boot)
        await expect_call(cs, "TransactionEvent", after=after, step="the Ended TransactionEventRequest",
                          where=lambda p: info_of(p).get("transactionId") == tx_id and p.get("eventType") == "Ended")
        if hold_ended:
            ended_after_boot = await expect_call(
                cs, "TransactionEvent", after=boot, step="the Ended TransactionEventRequest after the reboot",
                timeout=CALL_WAIT,
                where=lambda p: info_of(p).get("transactionId") == tx_id and p.get("eventType") == "Ended")
            with trio.move_on_after(CALL_WAIT):
                await answered(cs, ended_after_boot[0])
            assert any(i == ended_after_boot[0] and ok for i, _, ok in tx_frames(cs, tx_id)), (
                "the Ended TransactionEventRequest sent again after the reboot was not answered")
        await trio.sleep(QUIET)         # anything the station would still send of the transaction
        frames = tx_frames(cs, tx_id)
        ended = [p for _, p, _ in frames if p.get("eventType") == "Ended"]
        held = ended[0].get("seqNo") if hold_ended and ended else None
        seqs = check_delivered_once(frames, held_seq=held)
        last = max((p for _, p, ok in frames if ok), key=lambda p: p.get("seqNo"))
        check_te("the last TransactionEventRequest", last, event_type="Ended", trigger="ResetCommand",
                 stopped="ImmediateReset")
        assert len({p.get("seqNo") for p in ended}) == 1, f"more than one Ended event: {[te_summary(p) for p in ended]}"
        assert any(p.get("meterValue") for _, p, _ in frames if p.get("eventType") == "Updated"), (
            "no Updated TransactionEventRequest carried meter values")
        assert any(i < boot for i, p, _ in frames if p.get("eventType") == "Ended"), (
            "B12.FR.04: the Ended TransactionEventRequest must be sent before the reboot")
        if hold_ended:
            delivered_at = [i for i, p, ok in frames if ok and p.get("eventType") == "Ended"]
            assert delivered_at and delivered_at[0] > boot, (
                "the Ended event must be delivered after the reboot (the CSMS did not answer it before)")
        assert seqs[-1] == last.get("seqNo")


async def test_reset_immediate_during_session_loses_no_transaction_event(boot_station):
    """A running session with meter values, Reset Immediate, the station soft-reboots: every
    TransactionEventRequest of the transaction reached the CSMS exactly once by (transactionId,
    seqNo), seqNo contiguous from 0, the last one Ended (ImmediateReset, ResetCommand)."""
    with trio.fail_after(TIMEOUT):
        await reset_during_session(boot_station, hold_ended=False)


async def test_reset_immediate_during_session_ended_delivered_after_reboot(boot_station):
    """As above, but the CSMS does not answer the Ended event before the reboot: the station
    reboots (after waiting RESET_DELIVERY_WAIT s for it) and delivers it after the boot, once."""
    with trio.fail_after(TIMEOUT + RESET_DELIVERY_WAIT):
        await reset_during_session(boot_station, hold_ended=True)
