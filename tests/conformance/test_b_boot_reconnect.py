"""OCA certification test cases of functional block B: the boot (B01 Accepted, B02 Pending,
B03 Rejected) and the reconnection after a connection loss (Part 4 §5.3), Charging Station side.

One test per test case of OCPP 2.0.1 Edition 3 Part 6 (TC_B_01, B_02, B_03, B_30, B_57); the
steps are followed as written and every tool validation is asserted. The station is the real
one, the OCTT is played by the DevCsms (see conftest.py, which also validates every frame the
station sent against the official JSON schemas when a test ends). "Manual Action: Reboot the
Charging Station" is the station's start by the rig: ``boot_station(boot_statuses=[...])``
has the DevCsms answer the first BootNotificationRequest Pending / Rejected and hands the
test over once it is answered. The errata 2025-01 amend none of these test cases.

Readings where the text is looser or ambiguous:
- TC_B_01 "Execute Reusable State Booted" is its power-cycle variant (cs.restart on the same
  SQLite file), with the tool validations of Booted (test_cd_authorization.booted).
- TC_B_02: besides the table, the station sends no request of its own while Pending: between
  step 2 and step 15 its only CALLs are the NotifyReportRequests the OCTT asked for (B02: the
  CSMS retrieves and sets the configuration meanwhile). Step 15 must come after the
  TriggerMessageResponse (step 14) and before the interval of step 2 has passed.
- TC_B_03 "not allowed to send any OCPP message in the meantime": no frame at all between the
  Rejected answer and the next BootNotificationRequest. x is measured from the moment the
  DevCsms sent the Rejected BootNotificationResponse to the arrival of the next request.
- TC_B_30: the station keeps its connection while Rejected (B03 allows it to close it), so the
  OCTT's step 3 is executed; the refused GetBaseReportRequest starts no report.
- TC_B_57: "The connection attempt is not accepted by the OCTT" is a handshake the DevCsms
  refuses (HTTP 503, ``refuse_connections``). Reconnection times are measured at the DevCsms:
  steps 2 and 5 from the moment the OCTT closes the connection to the station's next
  handshake, step 7 from the refused handshake of step 6 to the next one. Steps 2 and 5 "wait
  for the duration of the configured RetryBackOffWaitMinimum" are read as: at least that (the
  tool validation), and less than twice it (the back-off starts over after a successful
  connection, so it is not a doubled one). Step 7 is compared with 2 x the step-5 time less
  MEASURE_SLACK: both times include the loopback close / handshake latency, which is no part
  of the station's back-off.

Chosen configured values: <Configured heartbeatInterval> PENDING_INTERVAL s for TC_B_02 (longer
than the test case, so a BootNotificationRequest before step 15 would be the station's own
retry) and REJECTED_INTERVAL s for TC_B_03; <Configured RetryBackOffWaitMinimum> RETRY_MIN s.
Two EVSEs of one connector each where "all connectors" are reported.
"""
from __future__ import annotations

import pytest
import trio

from devtools.dev_csms import ACCEPTED_STATUS, REFUSED_STATUS, CallError
from tests.conformance.conftest import CALL, expect_call
from tests.conformance.test_b_device_model import get_base_report, gv, only_result, sv
from tests.conformance.test_b_reset_offline import (
    TWO_EVSES,
    all_connectors_reported,
    check_status,
    connectors_reported,
    fail_on,
)
from tests.conformance.test_cd_authorization import booted
from tests.conformance.test_efj_transactions import (
    CALL_WAIT,
    CONNECTOR,
    EVSE,
    QUIET,
    REMOTE_START_ID,
    VALID,
    check_te,
    fail,
    tx_points,
)
from tests.conformance.test_f_trigger_p_data_transfer import after_response, trigger

TIMEOUT = 20                # s, per test
PENDING_INTERVAL = 30       # s, <Configured heartbeatInterval> of TC_B_02
REJECTED_INTERVAL = 2       # s, <Configured heartbeatInterval> of TC_B_03
REPORT_REQUEST_ID = 201     # <Generated requestId> of TC_B_02 step 7
RETRY_MIN = 1               # s, <Configured RetryBackOffWaitMinimum> of TC_B_57
MEASURE_SLACK = 0.1         # s, see the module docstring (TC_B_57 step 7)


# --------------------------------------------------------------------------- helpers

def first_boot(cs, step: str, after: int = 0) -> int:
    """Index of the station's first BootNotificationRequest from `after` on (the rig waited for it)."""
    boots = cs.calls("BootNotification", after)
    assert boots, f"{step}: the station sent no BootNotificationRequest"
    return boots[0][0]


def csms_answer(cs, index: int) -> tuple[dict, float]:
    """The DevCsms's CALLRESULT payload to the station's CALL at received[index], and when it was sent."""
    message_id = cs.csms.received[index][1][1]
    for (sid, f), at in zip(cs.csms.sent, cs.csms.sent_at):
        if sid == cs.station_id and f[0] == 3 and f[1] == message_id:
            return f[2], at
    raise AssertionError(f"the DevCsms did not answer the CALL {cs.csms.received[index][1]}")


async def octt_answered_boot(cs, index: int, step: str, status: str, interval: int) -> float:
    """The OCTT's BootNotificationResponse (a check of the rig); when it was sent."""
    await cs.wait_answered(index)
    answer, at = csms_answer(cs, index)
    assert (answer.get("status"), answer.get("interval")) == (status, interval), (
        f"{step} (the OCTT): BootNotificationResponse {answer}, expected status {status} interval {interval}")
    return at


def station_calls_between(cs, start: int, end: int) -> list[str]:
    """Actions of the station's CALLs at received[start:end]."""
    return [f[2] for sid, f in cs.csms.received[start:end] if sid == cs.station_id and f[0] == CALL]


async def next_handshake(cs, after: int, step: str, timeout: float) -> tuple[int, float, int]:
    """The station's next WebSocket handshake from csms.handshakes[after] on: (index, time, HTTP status)."""
    try:
        index, (at, _, status) = await cs.csms.wait_handshake(cs.station_id, after=after, timeout=timeout)
    except trio.TooSlowError:
        fail(f"{step}: the station made no connection attempt within {timeout} s")
    return index, at, status


async def octt_closes(cs) -> tuple[int, float]:
    """The OCTT closes the websocket connection: (index of the next handshake, when it closed)."""
    index, closed_at = len(cs.csms.handshakes), trio.current_time()
    await cs.csms.disconnect(cs.station_id)
    return index, closed_at


def waited_wait_minimum(step: str, reconnection_time: float) -> None:
    assert RETRY_MIN <= reconnection_time < 2 * RETRY_MIN, (
        f"{step}: the station must wait RetryBackOffWaitMinimum ({RETRY_MIN} s, RetryBackOffRandomRange 0) before "
        f"reconnecting; it reconnected after {reconnection_time:.3f} s")


# =========================================================================== B01-B03: boot

async def test_TC_B_01_CS_cold_boot_charging_station_accepted(boot_station):
    """TC_B_01_CS Cold Boot Charging Station - Accepted (B01)."""
    problems: list[str] = []
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=TWO_EVSES) as cs:
            after = cs.mark()
            await booted(cs, problems, "Step 1")
            boot = first_boot(cs, "Step 1 (Reusable State Booted, step 3)", after)
            await octt_answered_boot(cs, boot, "Step 1 (Reusable State Booted, step 4)", "Accepted",
                               cs.csms.heartbeat_interval)
            all_connectors_reported(cs, boot, "Step 1")
    fail_on(problems)


async def test_TC_B_02_CS_cold_boot_charging_station_pending(boot_station):
    """TC_B_02_CS Cold Boot Charging Station - Pending (B02, F06).

    Step 11: RequestStartTransactionRequest for valid_idtoken on EVSE 1 (remoteStartId 4711)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=TWO_EVSES, boot_statuses=["Pending"],
                                heartbeat_interval=PENDING_INTERVAL) as cs:
            boot1 = first_boot(cs, "Step 1")
            pending_at = await octt_answered_boot(cs, boot1, "Step 2", "Pending", PENDING_INTERVAL)
            # Steps 3-4
            try:
                res = await cs.call("SetVariables", {"setVariableData": [
                    sv("OCPPCommCtrlr", "OfflineThreshold", "300")]})
            except CallError as exc:
                fail(f"Step 4: the station answered SetVariablesRequest with a CALLERROR {exc.code}: {exc.description}")
            r = only_result(res, "setVariableResult")
            assert r.get("attributeStatus") == "Accepted", f"Step 4: setVariableResult[0].attributeStatus: {r}"
            # Steps 5-6
            try:
                res = await cs.call("GetVariables", {"getVariableData": [gv("OCPPCommCtrlr", "OfflineThreshold")]})
            except CallError as exc:
                fail(f"Step 6: the station answered GetVariablesRequest with a CALLERROR {exc.code}: {exc.description}")
            r = only_result(res, "getVariableResult")
            assert r.get("attributeStatus") == "Accepted", f"Step 6: getVariableResult[0].attributeStatus: {r}"
            # Steps 7-10 (step 11 follows the last NotifyReportRequest: tbc false)
            await get_base_report(cs, "FullInventory", REPORT_REQUEST_ID, steps=("Step 8", "Step 9"))
            # Steps 11-12
            try:
                res = await cs.call("RequestStartTransaction", {
                    "idToken": VALID, "evseId": EVSE, "remoteStartId": REMOTE_START_ID})
            except CallError as exc:
                fail(f"Step 12: the station answered RequestStartTransactionRequest with a CALLERROR "
                     f"{exc.code}: {exc.description}")
            check_status("Step 12", res, "Rejected", "RequestStartTransactionResponse")
            # Steps 13-14
            res, mark, response_index = await trigger(cs, "Step 14", "BootNotification")
            assert res.get("status") in ("Accepted", "NotImplemented"), (
                f"Step 14: TriggerMessageResponse.status must be Accepted or NotImplemented: {res}")
            # Step 15 (the DevCsms answers it Accepted: step 16)
            boot2, p = await expect_call(cs, "BootNotification", after=boot1 + 1, step="Step 15")
            after_response("Step 15", boot2, response_index, "BootNotificationRequest")
            if res["status"] == "Accepted":
                assert p.get("reason") == "Triggered", (
                    f"Step 15: BootNotificationRequest.reason must be Triggered (the trigger was Accepted): {p}")
            waited = cs.csms.received_at[boot2] - pending_at
            assert waited < PENDING_INTERVAL, (
                f"Step 15: the station must resend the BootNotificationRequest after the TriggerMessageResponse, "
                f"before the interval ({PENDING_INTERVAL} s) has passed; it came {waited:.1f} s after step 2")
            others = [a for a in station_calls_between(cs, boot1 + 1, boot2) if a != "NotifyReport"]
            assert not others, (f"Steps 2-14: while Pending the station sent requests the OCTT did not ask "
                                f"for: {others}")
            await octt_answered_boot(cs, boot2, "Step 16", "Accepted", PENDING_INTERVAL)
            # Steps 17-18
            await connectors_reported(cs, boot2, {c: "Available" for c in cs.connectors}, "Step 17")
            all_connectors_reported(cs, boot2, "Step 17")


async def test_ev_plugged_while_pending_starts_its_transaction_at_acceptance(boot_station):
    """No Part 6 test case has TxCtrlr.TxBeforeAcceptedEnabled; this is TC_B_02's Pending with
    TC_E_09's EV (TxStartPoint EVConnected) and TxBeforeAcceptedEnabled false (its default):
    the EV plugged in while Pending starts no transaction (B 1.1 "Transactions before being
    accepted by a CSMS"); accepted with the EV still plugged in, the station starts it then,
    with TC_E_09's validations (E01.FR.02 holds from the acceptance on)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(boot_statuses=["Pending"], heartbeat_interval=PENDING_INTERVAL,
                                device_model=tx_points("EVConnected", "EVConnected")) as cs:
            boot1 = first_boot(cs, "Pending")
            await octt_answered_boot(cs, boot1, "Pending", "Pending", PENDING_INTERVAL)
            await cs.control(cmd="plug", evse=EVSE, connector=CONNECTOR)
            await trio.sleep(QUIET)
            view = next(e for e in (await cs.control(cmd="state"))["evses"] if e["evse"] == EVSE)
            assert view["transaction_id"] is None, (
                f"Pending: the plug started a transaction although TxBeforeAcceptedEnabled is false: {view}")
            res, _, _ = await trigger(cs, "TriggerMessage", "BootNotification")
            assert res.get("status") == "Accepted", f"TriggerMessage(BootNotification) while Pending: {res}"
            boot2, _ = await expect_call(cs, "BootNotification", after=boot1 + 1, step="Accepted")
            await octt_answered_boot(cs, boot2, "Accepted", "Accepted", PENDING_INTERVAL)
            _, p = await expect_call(cs, "TransactionEvent", after=boot2, step="at acceptance")
            check_te("at acceptance", p, event_type="Started", trigger="CablePluggedIn", state="EVConnected")
            assert (p.get("evse") or {}).get("connectorId") == CONNECTOR, f"at acceptance: evse: {p}"
            [(first, _)] = cs.calls("TransactionEvent")[:1]
            assert first > boot2, "a TransactionEvent before the acceptance"


async def test_TC_B_03_CS_cold_boot_charging_station_rejected(boot_station):
    """TC_B_03_CS Cold Boot Charging Station - Rejected (B03)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=TWO_EVSES, boot_statuses=["Rejected"],
                                heartbeat_interval=REJECTED_INTERVAL) as cs:
            boot1 = first_boot(cs, "Step 1")
            rejected_at = await octt_answered_boot(cs, boot1, "Step 2", "Rejected", REJECTED_INTERVAL)
            boot2, _ = await expect_call(cs, "BootNotification", after=boot1 + 1, step="Step 3",
                                         timeout=REJECTED_INTERVAL + CALL_WAIT)
            waited = cs.csms.received_at[boot2] - rejected_at
            assert waited >= REJECTED_INTERVAL, (
                f"Step 3: the station resent the BootNotificationRequest {waited:.3f} s after the Rejected "
                f"BootNotificationResponse, before its interval ({REJECTED_INTERVAL} s)")
            between = [f for sid, f in cs.csms.received[boot1 + 1:boot2] if sid == cs.station_id]
            assert not between, f"Step 3: while Rejected the station sent OCPP messages: {between}"
            await octt_answered_boot(cs, boot2, "Step 4", "Accepted", REJECTED_INTERVAL)
            await connectors_reported(cs, boot2, {c: "Available" for c in cs.connectors}, "Step 5")
            all_connectors_reported(cs, boot2, "Step 5")


async def test_TC_B_30_CS_cold_boot_charging_station_pending_rejected_security_error(boot_station):
    """TC_B_30_CS Cold Boot Charging Station - Pending/Rejected - SecurityError (B03.FR.08)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(boot_statuses=["Rejected"]) as cs:
            boot1 = first_boot(cs, "Step 1")
            await octt_answered_boot(cs, boot1, "Step 2", "Rejected", cs.csms.heartbeat_interval)
            assert cs.station_id in cs.csms.connected, (
                "Step 3: the station closed the connection after the Rejected BootNotificationResponse; this "
                "station keeps it (see the module docstring)")
            after = cs.mark()
            try:
                res = await cs.call("GetBaseReport", {"requestId": REPORT_REQUEST_ID, "reportBase": "FullInventory"})
            except CallError as exc:
                assert exc.code == "SecurityError", (
                    f"Step 4: the station answered with a CALLERROR {exc.code} ({exc.description}), expected "
                    f"SecurityError")
            else:
                fail(f"Step 4: the station answered GetBaseReportRequest with a GetBaseReportResponse {res} while "
                     f"Rejected; expected a CALLERROR SecurityError")
            await trio.sleep(QUIET)
            sent = station_calls_between(cs, after, cs.mark())
            assert not sent, f"Step 4: after refusing the GetBaseReportRequest the station sent {sent}"


# =========================================================================== Part 4 §5.3: reconnecting

@pytest.mark.real_clock     # reconnection back-off measured at the CSMS over loopback (conftest.py)
async def test_TC_B_57_CS_network_reconnection_after_connection_loss(boot_station):
    """TC_B_57_CS Network Reconnection - After connection loss (Part 4 §5.3).

    Before: RetryBackOffRepeatTimes 2, RetryBackOffRandomRange 0, RetryBackOffWaitMinimum RETRY_MIN s."""
    dm = {"OCPPCommCtrlr.RetryBackOffRepeatTimes": 2, "OCPPCommCtrlr.RetryBackOffRandomRange": 0,
          "OCPPCommCtrlr.RetryBackOffWaitMinimum": RETRY_MIN}
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            # Steps 1-3
            after, closed_at = await octt_closes(cs)
            _, at2, status = await next_handshake(cs, after, "Step 2", RETRY_MIN + CALL_WAIT)
            assert status == ACCEPTED_STATUS, f"Step 3 (the OCTT): the connection attempt was answered {status}"
            waited_wait_minimum("Step 2", at2 - closed_at)
            await cs.csms.wait_connected(cs.station_id, timeout=CALL_WAIT)
            # Steps 4-6
            cs.csms.refuse_connections = 1
            after, closed_at = await octt_closes(cs)
            index5, at5, status = await next_handshake(cs, after, "Step 5", RETRY_MIN + CALL_WAIT)
            assert status == REFUSED_STATUS, f"Step 6 (the OCTT): the connection attempt was answered {status}"
            step5 = at5 - closed_at
            waited_wait_minimum("Step 5", step5)
            # Steps 7-8
            _, at7, status = await next_handshake(cs, index5 + 1, "Step 7", 2 * RETRY_MIN + CALL_WAIT)
            assert status == ACCEPTED_STATUS, f"Step 8 (the OCTT): the connection attempt was answered {status}"
            step7 = at7 - at5
            assert step7 >= 2 * step5 - MEASURE_SLACK, (
                f"Step 7: the reconnection time ({step7:.3f} s after the failed attempt) must be at least 2 times "
                f"the reconnection time of step 5 ({step5:.3f} s): the back-off is doubled after a failed attempt")
            await cs.csms.wait_connected(cs.station_id, timeout=CALL_WAIT)
