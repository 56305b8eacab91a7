"""OCA certification test cases TC_F_11..F_27 (F06 Trigger message) and TC_P_01/P_03 (P01
DataTransfer, CustomData), Charging Station side.

One test per test case of OCPP 2.0.1 Edition 3 Part 6: the steps are followed as written and
every tool validation is asserted; the station is the real one, the OCTT is played by the
DevCsms (see conftest.py, which also validates every frame the station sent against the
official JSON schemas when a test ends). The reusable states (EnergyTransferStarted,
EVConnectedPreSession) are those of test_efj_transactions.py (`Session`). Where the station
differs from a step, the test fails with a message naming the step.

TC_F_16 (LogStatusNotification - Uploading) and TC_F_19 (FirmwareStatusNotification -
Downloading) need a log upload / a firmware download in progress over real file servers: they
are in test_n_logs.py and test_l_firmware.py.

Readings and chosen configured values:
- <Configured evseId> 1, <Configured connectorId> 1. "All EVSE" test cases (TC_F_12, F_14) run
  on a station with two EVSEs of one connector each ([1, 1]); the others on one EVSE.
- Step 2 comes before step 3: the TriggerMessageResponse must reach the OCTT before the message
  it asks for (checked on the order of the frames the DevCsms received).
- TC_F_11..F_14: AlignedDataCtrlr.Interval 0 and SampledDataCtrlr.TxUpdatedInterval 0 (the
  test cases leave them free), so no clock-aligned / periodic meter value can come between
  step 2 and the triggered message and be taken for it.
- TC_F_12 / F_14 "This step needs to be executed for every EVSE": one MeterValuesRequest /
  TransactionEventRequest per EVSE, in any order (the table gives none). For TC_F_14,
  "evse.id must be <Configured evseId>" is read per message: present, and the EVSE whose
  transaction it reports.
- TC_F_23 / F_24 step 3 names two messages (StatusNotificationRequest and NotifyEventRequest);
  both are required, in either order (the table gives none).
- TC_F_26: step 2 only; a Rejected trigger is also checked not to be followed by a
  BootNotificationRequest (within QUIET s).
- TC_P_01: <Configured messageId> "TestMessage". The station's deployment has no vendor
  extension, so beyond the table's "UnknownVendorId OR UnknownMessageId OR Rejected" the
  answer must be UnknownVendorId.
- TC_P_03 ("CustomData - Receive custom data"): the table lists the fields of the two requests;
  the purpose is that the station takes in customData, so the OCTT's requests carry a customData
  object (vendorId plus a vendor member) at the request, setVariableData / getVariableData,
  component and variable levels. The validations are the table's.
"""
from __future__ import annotations

import trio

from devtools.dev_csms import CallError
from tests.conformance.conftest import expect_call
from tests.conformance.test_efj_transactions import (
    CONNECTOR,
    EVSE,
    QUIET,
    VALID,
    VALID2,
    Session,
    fail,
    te_summary,
    tx_points,
)

TEST_TIMEOUT = 20           # s, per test
NO_PERIODIC = {"AlignedDataCtrlr.Interval": 0, "SampledDataCtrlr.TxUpdatedInterval": 0}
OCTT_VENDOR_ID = "org.openchargealliance.octt"
MESSAGE_ID = "TestMessage"  # <Configured messageId>
CUSTOM = {"vendorId": OCTT_VENDOR_ID, "octtNote": "custom data the station may ignore", "n": 1}


# --------------------------------------------------------------------------- helpers

async def trigger(cs, step: str, requested: str, evse: int | None = None,
                  connector: int | None = None) -> tuple[dict, int, int]:
    """Step 1 (the OCTT's TriggerMessageRequest) and step 2 (the station's answer).
    Returns the answer, the index in csms.received where step 1 began (look for step 3 from
    there on) and the index of the station's CALLRESULT (step 3 must come after it)."""
    payload: dict = {"requestedMessage": requested}
    if evse is not None:
        payload["evse"] = {"id": evse} if connector is None else {"id": evse, "connectorId": connector}
    sent_before = len(cs.csms.sent)
    mark = cs.mark()
    try:
        res = await cs.call("TriggerMessage", payload)
    except CallError as exc:
        fail(f"{step}: the station answered TriggerMessageRequest {payload} with a CALLERROR "
             f"{exc.code}: {exc.description}")
    return res, mark, result_index(cs, "TriggerMessage", sent_before)


def result_index(cs, action: str, sent_before: int) -> int:
    """Index in csms.received of the station's answer to the CSMS's last `action` CALL."""
    [message_id] = [f[1] for sid, f in cs.csms.sent[sent_before:]
                    if sid == cs.station_id and f[0] == 2 and f[2] == action][-1:]
    return next(i for i, (sid, f) in enumerate(cs.csms.received)
                if sid == cs.station_id and f[0] in (3, 4) and f[1] == message_id)


def check_status(step: str, res: dict, status: str, what: str = "TriggerMessageResponse") -> None:
    assert res.get("status") == status, f"{step}: {what}.status must be {status}: {res}"


def context_of_first(p: dict) -> str | None:
    """meterValue[0].sampledValue[0].context (None when there is none)."""
    mv = p.get("meterValue") or [{}]
    sv = mv[0].get("sampledValue") or [{}]
    return sv[0].get("context")


def check_triggered_te(step: str, p: dict, evse: int, *, evse_required: bool) -> None:
    """Step 3 of TC_F_13 / F_14."""
    what = te_summary(p)
    e = p.get("evse")
    if evse_required:
        assert e is not None and e.get("id") == evse, (
            f"{step}: evse.id must be {evse} (the EVSE of this transaction): evse {e!r}, {what}")
    else:
        assert e is None or e.get("id") == evse, f"{step}: evse.id must be omitted or {evse}: evse {e!r}, {what}"
    assert p.get("triggerReason") == "Trigger", f"{step}: triggerReason must be Trigger: {what}"
    state = (p.get("transactionInfo") or {}).get("chargingState")
    assert state == "Charging", f"{step}: transactionInfo.chargingState must be Charging: {what}"
    assert p.get("meterValue"), f"{step}: meterValue must be present: {what}"
    assert context_of_first(p) == "Trigger", (
        f"{step}: meterValue[0].sampledValue[0].context must be Trigger, got {context_of_first(p)!r}: "
        f"{p.get('meterValue')}")


def after_response(step: str, index: int, response_index: int, what: str) -> None:
    assert index > response_index, (
        f"{step}: the station sent the {what} before its TriggerMessageResponse (step 2 comes first)")


async def triggered_status(cs, step: str, mark: int, response_index: int, status: str) -> None:
    """Step 3 of TC_F_23 / F_24: StatusNotificationRequest and NotifyEventRequest(Connector
    AvailabilityState) for <Configured evseId>/<Configured connectorId>, in either order."""
    def for_connector(p: dict) -> bool:
        return (p.get("evseId"), p.get("connectorId")) == (EVSE, CONNECTOR)

    i, sn = await expect_call(cs, "StatusNotification", after=mark, step=step, where=for_connector)
    after_response(step, i, response_index, "StatusNotificationRequest")
    assert sn.get("connectorStatus") == status, (
        f"{step}: StatusNotificationRequest.connectorStatus must be {status}: {sn}")

    def connector_event(p: dict) -> bool:          # an event of the connector's component
        d = (p.get("eventData") or [{}])[0]
        return (d.get("component") or {}).get("evse") == {"id": EVSE, "connectorId": CONNECTOR}

    i, ne = await expect_call(cs, "NotifyEvent", after=mark, step=step, where=connector_event)
    after_response(step, i, response_index, "NotifyEventRequest")
    d = ne["eventData"][0]
    assert d.get("trigger") == "Delta", f"{step}: NotifyEventRequest eventData[0].trigger must be Delta: {d}"
    assert d.get("actualValue") == status, (
        f"{step}: NotifyEventRequest eventData[0].actualValue must be {status!r}: {d}")
    assert d["component"]["name"] == "Connector", f"{step}: eventData[0].component.name must be Connector: {d}"
    assert d["variable"]["name"] == "AvailabilityState", f"{step}: eventData[0].variable.name: {d}"


# --------------------------------------------------------------------------- F06 tests

async def test_TC_F_11_CS_trigger_message_meter_values_specific_evse(boot_station):
    """TC_F_11_CS Trigger message - MeterValues - Specific EVSE.

    Step 2: status Accepted. Step 3: MeterValuesRequest with evseId <Configured evseId>,
    meterValue[0].sampledValue[0].context Trigger."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=NO_PERIODIC) as cs:
            await trio.sleep(0.3)          # the runtime has read the meter once at least
            res, m, r = await trigger(cs, "Step 2", "MeterValues", EVSE)
            check_status("Step 2", res, "Accepted")
            i, p = await expect_call(cs, "MeterValues", after=m, step="Step 3")
            after_response("Step 3", i, r, "MeterValuesRequest")
            assert p.get("evseId") == EVSE, f"Step 3: evseId must be {EVSE}: {p}"
            assert context_of_first(p) == "Trigger", (
                f"Step 3: meterValue[0].sampledValue[0].context must be Trigger: {p}")


async def test_TC_F_12_CS_trigger_message_meter_values_all_evse(boot_station):
    """TC_F_12_CS Trigger message - MeterValues - All EVSE.

    Two EVSEs. Step 1: evse omitted. Step 2: Accepted. Step 3 (for every EVSE): a
    MeterValuesRequest with meterValue[0].sampledValue[0].context Trigger."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=NO_PERIODIC, evse_connectors=[1, 1]) as cs:
            await trio.sleep(0.3)
            res, m, r = await trigger(cs, "Step 2", "MeterValues")
            check_status("Step 2", res, "Accepted")
            for evse in (1, 2):
                step = f"Step 3 (EVSE {evse})"
                i, p = await expect_call(cs, "MeterValues", after=m, step=step,
                                         where=lambda p, e=evse: p.get("evseId") == e)
                after_response(step, i, r, "MeterValuesRequest")
                assert context_of_first(p) == "Trigger", (
                    f"{step}: meterValue[0].sampledValue[0].context must be Trigger: {p}")
            others = [p for _, p in cs.calls("MeterValues", m) if p.get("evseId") not in (1, 2)]
            assert not others, f"Step 3: MeterValuesRequests for no EVSE of the station: {others}"


async def test_TC_F_13_CS_trigger_message_transaction_event_specific_evse(boot_station):
    """TC_F_13_CS Trigger message - TransactionEvent - Specific EVSE.

    Before: EnergyTransferStarted. Step 2: Accepted. Step 3: TransactionEventRequest with evse.id
    omitted or <Configured evseId>, triggerReason Trigger, chargingState Charging, meterValue
    present, meterValue[0].sampledValue[0].context Trigger."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=tx_points(**NO_PERIODIC)) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            assert s.started, f"Before: no transaction is ongoing: {s.events}"
            res, m, r = await trigger(cs, "Step 2", "TransactionEvent", EVSE)
            check_status("Step 2", res, "Accepted")
            s.cursor = max(s.cursor, m)
            p = await s.next_te("Step 3")
            after_response("Step 3", s.cursor - 1, r, "TransactionEventRequest")
            check_triggered_te("Step 3", p, EVSE, evse_required=False)


async def test_TC_F_14_CS_trigger_message_transaction_event_all_evse(boot_station):
    """TC_F_14_CS Trigger message - TransactionEvent - All EVSE.

    Two EVSEs, both EnergyTransferStarted. Step 1: evse omitted. Step 2: Accepted. Step 3 for
    every EVSE: evse.id <Configured evseId>, triggerReason Trigger, chargingState Charging,
    meterValue present with context Trigger."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=tx_points(**NO_PERIODIC), evse_connectors=[1, 1]) as cs:
            sessions = [Session(cs, evse=1, token=VALID), Session(cs, evse=2, token=VALID2)]
            for s in sessions:
                await s.energy_transfer_started(f"Before (EnergyTransferStarted, EVSE {s.evse})")
                assert s.started, f"Before: no transaction is ongoing on EVSE {s.evse}: {s.events}"
            res, m, r = await trigger(cs, "Step 2", "TransactionEvent")
            check_status("Step 2", res, "Accepted")
            for s in sessions:
                s.cursor = max(s.cursor, m)
                step = f"Step 3 (EVSE {s.evse})"
                p = await s.next_te(step)
                after_response(step, s.cursor - 1, r, "TransactionEventRequest")
                check_triggered_te(step, p, s.evse, evse_required=True)


async def test_TC_F_15_CS_trigger_message_log_status_notification_idle(boot_station):
    """TC_F_15_CS Trigger message - LogStatusNotification - Idle.

    No log upload. Step 2: Accepted. Step 3: LogStatusNotificationRequest status Idle."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station() as cs:
            res, m, r = await trigger(cs, "Step 2", "LogStatusNotification")
            check_status("Step 2", res, "Accepted")
            i, p = await expect_call(cs, "LogStatusNotification", after=m, step="Step 3")
            after_response("Step 3", i, r, "LogStatusNotificationRequest")
            assert p.get("status") == "Idle", f"Step 3: LogStatusNotificationRequest.status must be Idle: {p}"


async def test_TC_F_17_CS_trigger_message_firmware_status_notification_evse_not_relevant(boot_station):
    """TC_F_17_CS Trigger message - FirmwareStatusNotification - Specific EVSE not relevant.

    Step 1: evse.id <Configured evseId>. Step 2: Accepted. Step 3: status Idle."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station() as cs:
            res, m, r = await trigger(cs, "Step 2", "FirmwareStatusNotification", EVSE)
            check_status("Step 2", res, "Accepted")
            i, p = await expect_call(cs, "FirmwareStatusNotification", after=m, step="Step 3")
            after_response("Step 3", i, r, "FirmwareStatusNotificationRequest")
            assert p.get("status") == "Idle", f"Step 3: FirmwareStatusNotificationRequest.status must be Idle: {p}"


async def test_TC_F_18_CS_trigger_message_firmware_status_notification_idle(boot_station):
    """TC_F_18_CS Trigger message - FirmwareStatusNotification - Idle.

    No firmware download. Step 2: Accepted. Step 3: status Idle."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station() as cs:
            res, m, r = await trigger(cs, "Step 2", "FirmwareStatusNotification")
            check_status("Step 2", res, "Accepted")
            i, p = await expect_call(cs, "FirmwareStatusNotification", after=m, step="Step 3")
            after_response("Step 3", i, r, "FirmwareStatusNotificationRequest")
            assert p.get("status") == "Idle", f"Step 3: FirmwareStatusNotificationRequest.status must be Idle: {p}"


async def test_TC_F_20_CS_trigger_message_heartbeat(boot_station):
    """TC_F_20_CS Trigger message - Heartbeat.

    Step 2: Accepted. Step 3: the station sends a HeartbeatRequest (HeartbeatInterval 3600 s:
    not one that was due anyway)."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station() as cs:
            res, m, r = await trigger(cs, "Step 2", "Heartbeat")
            check_status("Step 2", res, "Accepted")
            i, p = await expect_call(cs, "Heartbeat", after=m, step="Step 3")
            after_response("Step 3", i, r, "HeartbeatRequest")
            assert p == {}, f"Step 3: HeartbeatRequest {p}"


async def test_TC_F_23_CS_trigger_message_status_notification_available(boot_station):
    """TC_F_23_CS Trigger message - StatusNotification - Specific EVSE - Available.

    Step 1: evse.id <Configured evseId>, evse.connectorId <Configured connectorId>. Step 2:
    Accepted. Step 3: StatusNotificationRequest connectorStatus Available and NotifyEventRequest
    (trigger Delta, actualValue Available, component Connector, variable AvailabilityState)."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station() as cs:
            res, m, r = await trigger(cs, "Step 2", "StatusNotification", EVSE, CONNECTOR)
            check_status("Step 2", res, "Accepted")
            await triggered_status(cs, "Step 3", m, r, "Available")


async def test_TC_F_24_CS_trigger_message_status_notification_occupied(boot_station):
    """TC_F_24_CS Trigger message - StatusNotification - Specific EVSE - Occupied.

    Before: EVConnectedPreSession. Steps as TC_F_23, with Occupied."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            s = Session(cs)
            await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
            res, m, r = await trigger(cs, "Step 2", "StatusNotification", EVSE, CONNECTOR)
            check_status("Step 2", res, "Accepted")
            await triggered_status(cs, "Step 3", m, r, "Occupied")


async def test_TC_F_26_CS_trigger_message_boot_notification_rejected(boot_station):
    """TC_F_26_CS Trigger message - BootNotification - Rejected.

    The station was accepted at its boot. Step 2: status Rejected."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station() as cs:
            res, m, r = await trigger(cs, "Step 2", "BootNotification")
            check_status("Step 2", res, "Rejected")
            await trio.sleep(QUIET)
            again = cs.calls("BootNotification", m)
            assert not again, f"Step 2: the trigger was Rejected, yet the station sent BootNotificationRequest {again}"


async def test_TC_F_27_CS_trigger_message_not_implemented(boot_station):
    """TC_F_27_CS Trigger message - NotImplemented.

    Step 1: requestedMessage SignCombinedCertificate. Step 2: status NotImplemented."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station() as cs:
            res, _, _ = await trigger(cs, "Step 2", "SignCombinedCertificate")
            check_status("Step 2", res, "NotImplemented")


# --------------------------------------------------------------------------- P tests

async def test_TC_P_01_CS_data_transfer_unknown_vendor_id(boot_station):
    """TC_P_01_CS Data Transfer to the Charging Station - Rejected / Unknown VendorId / Unknown
    MessageId.

    Step 1: vendorId org.openchargealliance.octt, messageId <Configured messageId>. Step 2:
    status UnknownVendorId OR UnknownMessageId OR Rejected (no extension: UnknownVendorId)."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station() as cs:
            try:
                res = await cs.call("DataTransfer", {"vendorId": OCTT_VENDOR_ID, "messageId": MESSAGE_ID})
            except CallError as exc:
                fail(f"Step 2: the station answered DataTransferRequest with a CALLERROR {exc.code}: "
                     f"{exc.description}")
            assert res.get("status") in ("UnknownVendorId", "UnknownMessageId", "Rejected"), (
                f"Step 2: DataTransferResponse.status must be UnknownVendorId OR UnknownMessageId OR Rejected: {res}")
            assert res.get("status") == "UnknownVendorId", (
                f"Step 2: the station has no extension for vendorId {OCTT_VENDOR_ID}: expected UnknownVendorId: {res}")


async def test_TC_P_03_CS_custom_data_receive_custom_data(boot_station):
    """TC_P_03_CS CustomData - Receive custom data.

    Step 1: SetVariablesRequest OCPPCommCtrlr.OfflineThreshold = "200", attributeType Actual
    (with customData). Step 2: setVariableResult[0].attributeStatus Accepted. Step 3:
    GetVariablesRequest of it, attributeType Actual (with customData). Step 4:
    getVariableResult[0].attributeStatus Accepted, attributeType Actual or omitted, attributeValue
    200."""
    component = {"name": "OCPPCommCtrlr", "customData": CUSTOM}
    variable = {"name": "OfflineThreshold", "customData": CUSTOM}
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station() as cs:
            try:
                res = await cs.call("SetVariables", {"customData": CUSTOM, "setVariableData": [{
                    "component": component, "variable": variable, "attributeValue": "200",
                    "attributeType": "Actual", "customData": CUSTOM}]})
            except CallError as exc:
                fail(f"Step 2: the station answered SetVariablesRequest (with customData) with a CALLERROR "
                     f"{exc.code}: {exc.description}")
            r = (res.get("setVariableResult") or [{}])[0]
            assert r.get("attributeStatus") == "Accepted", (
                f"Step 2: setVariableResult[0].attributeStatus must be Accepted: {res}")
            try:
                res = await cs.call("GetVariables", {"customData": CUSTOM, "getVariableData": [{
                    "component": component, "variable": variable, "attributeType": "Actual",
                    "customData": CUSTOM}]})
            except CallError as exc:
                fail(f"Step 4: the station answered GetVariablesRequest (with customData) with a CALLERROR "
                     f"{exc.code}: {exc.description}")
            r = (res.get("getVariableResult") or [{}])[0]
            assert r.get("attributeStatus") == "Accepted", (
                f"Step 4: getVariableResult[0].attributeStatus must be Accepted: {res}")
            assert r.get("attributeType", "Actual") == "Actual", (
                f"Step 4: getVariableResult[0].attributeType must be Actual or omitted: {res}")
            assert r.get("attributeValue") == "200", f"Step 4: getVariableResult[0].attributeValue must be 200: {res}"
