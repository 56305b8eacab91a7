"""OCA certification test cases of functional block B (device model), Charging Station side.

One test per test case of OCPP 2.0.1 Edition 3 Part 6 ("Test case Id TC_B_nn_CS"): the
steps are followed as written and every tool validation is asserted; the station is the
real one, the OCTT is played by the DevCsms (see conftest.py, which also validates every
frame the station sent against the official JSON schemas when a test ends).

Where a test case needs a "<Configured ...>" value or leaves a mandatory field open, the
value chosen is stated in the test's docstring. Where the station differs from a step, the
test fails with a message naming the step instead of being bent to the station.
"""
from __future__ import annotations

import csv
from datetime import timedelta, timezone
from pathlib import Path

import pytest
import trio

from devtools.dev_csms import CallError
from tests.conformance.conftest import CALL, CALLERROR, CALLRESULT, schema_problems
from tests.memory_link import RigDateTime as datetime  # the rig's wall clock (MockClock)

TIMEOUT = 10          # s, per test (each takes well under a second)
# The Required rows of the OCA appendix dm_components_vars.csv, kept in the repository.
DM_VARS_CSV = Path(__file__).parent.parent / "data" / "dm_required_variables.csv"
LIST_TYPES = ("OptionList", "SequenceList", "MemberList")
REPORT_EVSES = [1, 2]  # EVSE 1 with one connector, EVSE 2 with two: per-EVSE/per-connector reporting

# The controllers (and the Charging-Infrastructure components) whose required variables
# (dm_components_vars.csv, Required? = yes) the base reports must contain.
CONTROLLERS = ("OCPPCommCtrlr", "TxCtrlr", "DeviceDataCtrlr", "ClockCtrlr", "SecurityCtrlr", "SampledDataCtrlr",
               "AlignedDataCtrlr", "AuthCtrlr", "AuthCacheCtrlr", "LocalAuthListCtrlr")
INFRASTRUCTURE = ("ChargingStation", "EVSE", "Connector")

# The required variables of those controllers that the OCPP 2.0.1 Part 2 specification
# ("Referenced Components and Variables") defines as ReadWrite, i.e. the "required writable
# variables" TC_B_12 expects in a ConfigurationInventory. (The CSV has no mutability column
# and the Part 2 main text is not in the reference folder; this list is from the spec.)
# AuthCtrlr.AuthorizeRemoteStart is left out: it may be ReadOnly (TC_B_11 runs its steps
# "only if this component/variable combination is readwrite"; PICS C-58).
REQUIRED_WRITABLE = {
    "OCPPCommCtrlr": ("MessageAttemptInterval[TransactionEvent]", "MessageAttempts[TransactionEvent]",
                      "NetworkConfigurationPriority", "NetworkProfileConnectionAttempts", "OfflineThreshold",
                      "ResetRetries", "UnlockOnEVSideDisconnect"),
    "TxCtrlr": ("EVConnectionTimeOut", "StopTxOnEVSideDisconnect", "StopTxOnInvalidId", "TxStartPoint",
                "TxStopPoint"),
    "ClockCtrlr": ("TimeSource",),
    "SecurityCtrlr": ("OrganizationName",),
    "SampledDataCtrlr": ("TxEndedInterval", "TxEndedMeasurands", "TxStartedMeasurands", "TxUpdatedInterval",
                         "TxUpdatedMeasurands"),
    "AlignedDataCtrlr": ("Interval", "Measurands", "TxEndedInterval", "TxEndedMeasurands"),
    "AuthCtrlr": ("LocalAuthorizeOffline", "LocalPreAuthorize"),
}


# --------------------------------------------------------------------------- helpers

def gv(component: str, variable: str, attribute_type: str | None = None, *, variable_instance: str | None = None):
    item = {"component": {"name": component}, "variable": {"name": variable}}
    if variable_instance is not None:
        item["variable"]["instance"] = variable_instance
    if attribute_type is not None:
        item["attributeType"] = attribute_type
    return item


def sv(component: str, variable: str, value: str, attribute_type: str | None = None, *,
       variable_instance: str | None = None):
    return {**gv(component, variable, attribute_type, variable_instance=variable_instance), "attributeValue": value}


def only_result(response: dict, key: str) -> dict:
    results = response.get(key)
    assert isinstance(results, list) and len(results) == 1, f"expected one {key} entry, got {results!r}"
    return results[0]


def result_for(response: dict, key: str, component: str, variable: str) -> dict:
    """The entry for component.variable ("in arbitrary order")."""
    found = [r for r in response.get(key, ())
             if r["component"]["name"] == component and r["variable"]["name"] == variable]
    assert len(found) == 1, f"expected one {key} for {component}.{variable}, got {response!r}"
    return found[0]


def no_error(result: dict, field: str = "attributeStatusInfo") -> bool:
    """"<field> is absent or <field>.reasonCode = NoError"."""
    return field not in result or result[field].get("reasonCode") == "NoError"


def utc_now_text() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def fail_on_missing_variable(result: dict, step: str) -> None:
    """A variable the test case uses that the station does not know: say so plainly."""
    status = result.get("attributeStatus")
    if status in ("UnknownComponent", "UnknownVariable"):
        v = result["variable"]
        name = f"{result['component']['name']}.{v['name']}" + (f"[{v['instance']}]" if v.get("instance") else "")
        pytest.fail(f"{step}: the station's device model lacks {name} ({status}), which the test case uses "
                    f"(a required variable per dm_components_vars.csv)", pytrace=False)


# keys of reported variables: (component, evse id, connector id, variable, variable instance)
Key = tuple[str, int | None, int | None, str, str | None]


def entry_key(entry: dict) -> Key:
    c, v = entry["component"], entry["variable"]
    evse = c.get("evse") or {}
    return (c["name"], evse.get("id"), evse.get("connectorId"), v["name"], v.get("instance"))


def show(key: Key) -> str:
    comp, evse, conn, var, inst = key
    where = "" if evse is None else f"@{evse}" + ("" if conn is None else f".{conn}")
    return f"{comp}{where}.{var}" + (f"[{inst}]" if inst else "")


def required_variables(evse_connectors: list[int], components=CONTROLLERS + INFRASTRUCTURE) -> list[Key]:
    """dm_components_vars.csv rows with Required? = yes for `components`, with the
    EVSE/Connector rows expanded to every EVSE / connector of the station."""
    rows = []
    with DM_VARS_CSV.open(newline="", encoding="utf-8") as f:
        for comp, var, inst in csv.reader((line for line in f if not line.startswith("#")), delimiter=";"):
            if comp in components:
                rows.append((comp, var, inst or None))
    keys: list[Key] = []
    for comp, var, inst in rows:
        if comp == "EVSE":
            keys += [(comp, e, None, var, inst) for e in range(1, len(evse_connectors) + 1)]
        elif comp == "Connector":
            keys += [(comp, e, c, var, inst) for e, n in enumerate(evse_connectors, start=1)
                     for c in range(1, n + 1)]
        else:
            keys.append((comp, None, None, var, inst))
    assert keys, f"no required variables read from {DM_VARS_CSV}"
    return keys


def split_instance(name: str) -> tuple[str, str | None]:
    """"MessageAttempts[TransactionEvent]" -> ("MessageAttempts", "TransactionEvent")."""
    base, _, rest = name.partition("[")
    return base, (rest.rstrip("]") or None)


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def list_items(text: str) -> list[str]:
    return [i.strip() for i in text.split(",")] if text.strip() else []


async def get_base_report(cs, report_base: str, request_id: int,
                          steps: tuple[str, str] = ("Step 2", "Step 3")) -> list[dict]:
    """Steps 1-4 of TC_B_12/13/14/53 with the tool validations of steps 2 and 3 (`steps`:
    their names in another test case, e.g. steps 8 and 9 of TC_B_02); returns the
    NotifyReportRequest payloads in the order received."""
    response_step, report_step = steps
    after = cs.mark()
    # Step 1: GetBaseReportRequest
    try:
        res = await cs.call("GetBaseReport", {"requestId": request_id, "reportBase": report_base})
    except CallError as exc:
        hint = " (GetBaseReport is not wired into the station)" if exc.code == "NotImplemented" else ""
        pytest.fail(f"{response_step}: the station answered GetBaseReportRequest({report_base}) with a CALLERROR "
                    f"{exc.code}: {exc.description}{hint}", pytrace=False)
    # Step 2: GetBaseReportResponse
    assert res.get("status") == "Accepted", f"{response_step}: GetBaseReportResponse.status: {res!r}"
    assert no_error(res, "statusInfo"), f"{response_step}: GetBaseReportResponse.statusInfo: {res!r}"
    # Steps 3/4, repeated while tbc = true (the DevCsms answers each with NotifyReportResponse)
    parts: list[dict] = []
    index = after
    while True:
        index, part = await cs.next_call("NotifyReport", after=index, timeout=5)
        index += 1
        parts.append(part)
        if not part.get("tbc", False):
            break
        assert len(parts) < 10_000, f"{report_step}: endless NotifyReportRequest sequence"
    now = datetime.now(timezone.utc)
    for seq, part in enumerate(parts):
        step = f"{report_step}: NotifyReportRequest #{seq}"
        assert part.get("requestId") == request_id, f"{step}: requestId {part.get('requestId')!r} != {request_id}"
        generated = parse_utc(part["generatedAt"])
        assert generated.tzinfo is not None and abs(generated - now) < timedelta(seconds=60), (
            f"{step}: generatedAt {part['generatedAt']!r} is not the time at the charging station")
        assert part.get("seqNo") == seq, f"{step}: seqNo {part.get('seqNo')!r}, expected {seq}"
        if seq < len(parts) - 1:
            assert part.get("tbc") is True, f"{step}: tbc must be true before the last part"
        for entry in part.get("reportData") or ():
            vc = entry.get("variableCharacteristics") or {}
            if vc.get("dataType") in LIST_TYPES:
                assert vc.get("valuesList"), (
                    f"{step}: {show(entry_key(entry))} is a {vc['dataType']} without a valuesList")
    return parts


def report_entries(parts: list[dict]) -> list[dict]:
    return [e for p in parts for e in (p.get("reportData") or ())]


def assert_no_later_parts(cs, parts: list[dict], request_id: int) -> None:
    """Nothing more for this requestId after the part with tbc = false."""
    seen = [p for _, p in cs.calls("NotifyReport") if p.get("requestId") == request_id]
    assert len(seen) == len(parts), f"NotifyReportRequest after the last part (tbc = false): {seen[len(parts):]!r}"


def assert_characteristics_present(entries: list[dict]) -> None:
    missing = [show(entry_key(e)) for e in entries if not e.get("variableCharacteristics")]
    assert not missing, f"Post scenario: variableCharacteristics missing for {missing}"


def assert_reported(entries: list[dict], required: list[Key], what: str) -> None:
    reported = {entry_key(e) for e in entries}
    missing = [show(k) for k in required if k not in reported]
    assert not missing, (f"Post scenario: {len(missing)} required variable(s) not reported in the {what}: "
                         f"{', '.join(missing)}")


# --------------------------------------------------------------------------- GetVariables (B06)

async def test_TC_B_06_CS_get_variables_single_value(boot_station):
    """TC_B_06_CS Get Variables - single value.

    Before: OCPPCommCtrlr.OfflineThreshold is 300 (set in the station's configuration file)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={"OCPPCommCtrlr.OfflineThreshold": 300}) as cs:
            # Step 1
            res = await cs.call("GetVariables", {"getVariableData": [
                gv("OCPPCommCtrlr", "OfflineThreshold", "Actual")]})
            # Step 2
            r = only_result(res, "getVariableResult")
            assert r["attributeStatus"] == "Accepted", r
            assert r.get("attributeType") == "Actual", r
            assert r.get("attributeValue") == "300", r
            assert r["component"]["name"] == "OCPPCommCtrlr", r
            assert r["variable"]["name"] == "OfflineThreshold", r
            assert no_error(r), r


async def test_TC_B_07_CS_get_variables_multiple_values(boot_station):
    """TC_B_07_CS Get Variables - multiple values.

    Before: OCPPCommCtrlr.OfflineThreshold is 300 and AuthCtrlr.LocalAuthorizeOffline is true
    (set in the station's configuration file)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={"OCPPCommCtrlr.OfflineThreshold": 300,
                                              "AuthCtrlr.LocalAuthorizeOffline": True}) as cs:
            # Step 1
            res = await cs.call("GetVariables", {"getVariableData": [
                gv("OCPPCommCtrlr", "OfflineThreshold", "Actual"),
                gv("AuthCtrlr", "LocalAuthorizeOffline", "Actual")]})
            # Step 2 (in arbitrary order)
            assert len(res["getVariableResult"]) == 2, res
            for comp, var, value in (("OCPPCommCtrlr", "OfflineThreshold", "300"),
                                     ("AuthCtrlr", "LocalAuthorizeOffline", "true")):
                r = result_for(res, "getVariableResult", comp, var)
                fail_on_missing_variable(r, "Step 2")
                assert r["attributeStatus"] == "Accepted", r
                assert r.get("attributeType") == "Actual", r
                assert r.get("attributeValue") == value, r
                assert no_error(r), r


async def test_TC_B_32_CS_get_variables_unknown_component(boot_station):
    """TC_B_32_CS Get Variables - Unknown component."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            # Step 1 (attributeType omitted)
            res = await cs.call("GetVariables", {"getVariableData": [gv("UnknownComponent", "OfflineThreshold")]})
            # Step 2
            r = only_result(res, "getVariableResult")
            assert r["attributeStatus"] == "UnknownComponent", r
            assert r["component"]["name"] == "UnknownComponent", r
            assert r["variable"]["name"] == "OfflineThreshold", r


async def test_TC_B_33_CS_get_variables_unknown_variable(boot_station):
    """TC_B_33_CS Get Variables - Unknown variable."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            # Step 1 (attributeType omitted)
            res = await cs.call("GetVariables", {"getVariableData": [gv("OCPPCommCtrlr", "UnknownVariable")]})
            # Step 2
            r = only_result(res, "getVariableResult")
            assert r["attributeStatus"] == "UnknownVariable", r
            assert r["component"]["name"] == "OCPPCommCtrlr", r
            assert r["variable"]["name"] == "UnknownVariable", r


async def test_TC_B_34_CS_get_variables_not_supported_attribute_type(boot_station):
    """TC_B_34_CS Get Variables - Not supported attribute type."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            # Step 1
            res = await cs.call("GetVariables", {"getVariableData": [
                gv("OCPPCommCtrlr", "OfflineThreshold", "Target")]})
            # Step 2
            r = only_result(res, "getVariableResult")
            assert r["attributeStatus"] == "NotSupportedAttributeType", r
            assert r["component"]["name"] == "OCPPCommCtrlr", r
            assert r["variable"]["name"] == "OfflineThreshold", r
            assert r.get("attributeType") == "Target", r


# --------------------------------------------------------------------------- SetVariables (B05)

async def test_TC_B_09_CS_set_variables_single_value(boot_station):
    """TC_B_09_CS Set Variables - single value (OfflineThreshold starts at the station's default, 60)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            # Step 1
            res = await cs.call("SetVariables", {"setVariableData": [
                sv("OCPPCommCtrlr", "OfflineThreshold", "300", "Actual")]})
            # Step 2
            r = only_result(res, "setVariableResult")
            assert r["attributeStatus"] == "Accepted", r
            assert r.get("attributeType") == "Actual", r
            assert r["component"]["name"] == "OCPPCommCtrlr", r
            assert r["variable"]["name"] == "OfflineThreshold", r
            assert no_error(r), r


async def test_TC_B_10_CS_set_variables_multiple_values(boot_station):
    """TC_B_10_CS Set Variables - multiple values.

    The test case gives setVariableData[0].attributeType twice (a typo); attributeType = Actual
    is sent for both entries, as the tool validations expect it back for both."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            # Step 1
            res = await cs.call("SetVariables", {"setVariableData": [
                sv("OCPPCommCtrlr", "OfflineThreshold", "300", "Actual"),
                sv("AuthCtrlr", "LocalAuthorizeOffline", "true", "Actual")]})
            # Step 2 (in arbitrary order)
            assert len(res["setVariableResult"]) == 2, res
            for comp, var in (("OCPPCommCtrlr", "OfflineThreshold"), ("AuthCtrlr", "LocalAuthorizeOffline")):
                r = result_for(res, "setVariableResult", comp, var)
                fail_on_missing_variable(r, "Step 2")
                assert r["attributeStatus"] == "Accepted", r
                assert r.get("attributeType") == "Actual", r
                assert no_error(r), r


async def test_TC_B_35_CS_set_variables_unknown_component(boot_station):
    """TC_B_35_CS Set Variables - Unknown component.

    The test case leaves attributeValue (required by the schema) open: "300" is sent."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            # Step 1 (attributeType omitted)
            res = await cs.call("SetVariables", {"setVariableData": [
                sv("UnknownComponent", "OfflineThreshold", "300")]})
            # Step 2
            r = only_result(res, "setVariableResult")
            assert r["attributeStatus"] == "UnknownComponent", r
            assert r["component"]["name"] == "UnknownComponent", r
            assert r["variable"]["name"] == "OfflineThreshold", r


async def test_TC_B_36_CS_set_variables_unknown_variable(boot_station):
    """TC_B_36_CS Set Variables - Unknown variable.

    The test case leaves attributeValue (required by the schema) open: "300" is sent."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            # Step 1 (attributeType omitted)
            res = await cs.call("SetVariables", {"setVariableData": [sv("OCPPCommCtrlr", "UnknownVariable", "300")]})
            # Step 2
            r = only_result(res, "setVariableResult")
            assert r["attributeStatus"] == "UnknownVariable", r
            assert r["component"]["name"] == "OCPPCommCtrlr", r
            assert r["variable"]["name"] == "UnknownVariable", r


async def test_TC_B_37_CS_set_variables_not_supported_attribute_type(boot_station):
    """TC_B_37_CS Set Variables - Not supported attribute type.

    The test case leaves attributeValue (required by the schema) open: "300" (a valid
    OfflineThreshold) is sent."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            # Step 1
            res = await cs.call("SetVariables", {"setVariableData": [
                sv("OCPPCommCtrlr", "OfflineThreshold", "300", "Target")]})
            # Step 2
            r = only_result(res, "setVariableResult")
            assert r["attributeStatus"] == "NotSupportedAttributeType", r
            assert r["component"]["name"] == "OCPPCommCtrlr", r
            assert r["variable"]["name"] == "OfflineThreshold", r
            assert r.get("attributeType") == "Target", r


async def test_TC_B_39_CS_set_variables_read_only(boot_station):
    """TC_B_39_CS Set Variables - Read-only.

    The test case leaves attributeValue (required by the schema) open: "45" is sent, a value
    within MessageTimeout's limits and different from its current value, so only the
    mutability can be the reason for a rejection."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            # Step 1 (attributeType omitted)
            res = await cs.call("SetVariables", {"setVariableData": [
                sv("OCPPCommCtrlr", "MessageTimeout", "45", variable_instance="Default")]})
            # Step 2
            r = only_result(res, "setVariableResult")
            fail_on_missing_variable(r, "Step 2")
            assert r["attributeStatus"] == "Rejected", r
            assert r["component"]["name"] == "OCPPCommCtrlr", r
            assert r["variable"]["name"] == "MessageTimeout", r
            assert r["variable"].get("instance") == "Default", r


async def test_TC_B_11_CS_set_variables_invalidly_formatted_values(boot_station):
    """TC_B_11_CS Set Variables - invalidly formatted values.

    Steps 1-8 are repeated for value = <configured offlineThreshold>, <configured
    offlineThreshold + 0.1>, true, currentTime, "abc" with:
    - <configured offlineThreshold> = 300, set in the station's configuration file, so the
      values are "300" and "300.1"; currentTime = the UTC time of the step (RFC 3339, ms, Z);
    - attributeType = Actual sent (the tool validations expect attributeType = Actual back);
    - steps 3-4 (SmartChargingCtrlr.LimitChangeSignificance) and 7-8 (ClockCtrlr.
      NextTimeOffsetTransitionDateTime) only if the station reports the variable in a
      GetVariablesRequest (it "supports this component/variable combination");
    - steps 5-6 (AuthCtrlr.AuthorizeRemoteStart) only if it is ReadWrite, found out by
      writing its current value back; a station without this required variable fails.
    The tool validations label step 4 AuthorizeRemoteStart and step 6 LimitChangeSignificance,
    crossing the main steps; the main steps' numbering is followed here.
    Expected: a value of the variable's type is Accepted (for LimitChangeSignificance, a
    decimal, "300" and "300.1" may also be Rejected), every other value Rejected with
    attributeStatusInfo absent or reasonCode InvalidValue.
    """
    configured = "300"
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={"OCPPCommCtrlr.OfflineThreshold": int(configured)}) as cs:
            problems: list[str] = []
            # Which of the optional steps run
            res = await cs.call("GetVariables", {"getVariableData": [
                gv("SmartChargingCtrlr", "LimitChangeSignificance"),
                gv("AuthCtrlr", "AuthorizeRemoteStart"),
                gv("ClockCtrlr", "NextTimeOffsetTransitionDateTime")]})
            known = {r["variable"]["name"]: r for r in res["getVariableResult"]}
            unknown = ("UnknownComponent", "UnknownVariable")
            run_3_4 = known["LimitChangeSignificance"]["attributeStatus"] not in unknown
            run_7_8 = known["NextTimeOffsetTransitionDateTime"]["attributeStatus"] not in unknown
            remote_start = known["AuthorizeRemoteStart"]
            run_5_6 = False
            if remote_start["attributeStatus"] in unknown:
                problems.append(f"Steps 5-6: the station lacks AuthCtrlr.AuthorizeRemoteStart "
                                f"({remote_start['attributeStatus']}), a required variable; cannot tell "
                                f"whether it is readwrite")
            elif remote_start["attributeStatus"] == "Accepted":
                probe = await cs.call("SetVariables", {"setVariableData": [
                    sv("AuthCtrlr", "AuthorizeRemoteStart", remote_start.get("attributeValue", ""))]})
                run_5_6 = probe["setVariableResult"][0]["attributeStatus"] == "Accepted"

            # (steps, component, variable, values to be accepted, values that may go either way)
            steps = [("1-2", "OCPPCommCtrlr", "OfflineThreshold", {configured}, set())]
            if run_3_4:
                steps.append(("3-4", "SmartChargingCtrlr", "LimitChangeSignificance", set(),
                              {configured, configured + ".1"}))
            if run_5_6:
                steps.append(("5-6", "AuthCtrlr", "AuthorizeRemoteStart", {"true"}, set()))
            if run_7_8:
                steps.append(("7-8", "ClockCtrlr", "NextTimeOffsetTransitionDateTime", {"<currentTime>"}, set()))
            for value in (configured, configured + ".1", "true", "<currentTime>", "abc"):
                sent = utc_now_text() if value == "<currentTime>" else value
                for step, comp, var, accept, either in steps:
                    res = await cs.call("SetVariables", {"setVariableData": [sv(comp, var, sent, "Actual")]})
                    r = only_result(res, "setVariableResult")
                    where = f"Steps {step} with {comp}.{var} = {sent!r}"
                    status = r.get("attributeStatus")
                    if status in unknown:
                        problems.append(f"{where}: {status}")
                        continue
                    if value in either:
                        ok_status = status in ("Accepted", "Rejected")
                    else:
                        ok_status = status == ("Accepted" if value in accept else "Rejected")
                    if not ok_status:
                        problems.append(f"{where}: attributeStatus {status!r}, expected "
                                        f"{'Accepted' if value in accept else 'Rejected'}: {r}")
                    if r.get("attributeType") != "Actual":
                        problems.append(f"{where}: attributeType {r.get('attributeType')!r}, expected 'Actual'")
                    if r["component"]["name"] != comp or r["variable"]["name"] != var:
                        problems.append(f"{where}: result names {r['component']} / {r['variable']}")
                    info = r.get("attributeStatusInfo")
                    allowed = ("InvalidValue", "NoError") if status == "Accepted" else ("InvalidValue",)
                    if info is not None and info.get("reasonCode") not in allowed:
                        problems.append(f"{where}: attributeStatusInfo.reasonCode {info.get('reasonCode')!r}, "
                                        f"expected absent or InvalidValue")
            assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- GetBaseReport (B07)

async def test_TC_B_12_CS_get_base_report_configuration_inventory(boot_station):
    """TC_B_12_CS Get Base Report - ConfigurationInventory (requestId 1201; 2 EVSEs, 3 connectors).

    Post scenario: every reported variable has variableCharacteristics and only ReadWrite or
    WriteOnly attributes (mutability omitted = ReadWrite); the required writable variables
    (REQUIRED_WRITABLE, for the controllers the station has to implement) are reported."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=REPORT_EVSES) as cs:
            parts = await get_base_report(cs, "ConfigurationInventory", 1201)
            entries = report_entries(parts)
            assert entries, "Post scenario: the ConfigurationInventory reports no variable"
            assert_characteristics_present(entries)
            not_writable = [f"{show(entry_key(e))} ({a.get('type', 'Actual')}: {a.get('mutability')})"
                            for e in entries for a in e["variableAttribute"]
                            if a.get("mutability", "ReadWrite") not in ("ReadWrite", "WriteOnly")]
            assert not not_writable, f"Post scenario: mutability must be ReadWrite or WriteOnly: {not_writable}"
            required = [(comp, None, None, *split_instance(var))
                        for comp, variables in REQUIRED_WRITABLE.items() for var in variables]
            assert_reported(entries, required, "ConfigurationInventory")
            assert_no_later_parts(cs, parts, 1201)


async def test_TC_B_13_CS_get_base_report_full_inventory(boot_station):
    """TC_B_13_CS Get Base Report - FullInventory (requestId 1301; 2 EVSEs, 3 connectors).

    Post scenario: every reported variable has variableCharacteristics; the required
    variables of the Charging Infrastructure (ChargingStation, every EVSE, every Connector)
    and of the controllers in CONTROLLERS (dm_components_vars.csv, Required? = yes) are reported."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=REPORT_EVSES) as cs:
            parts = await get_base_report(cs, "FullInventory", 1301)
            entries = report_entries(parts)
            assert_characteristics_present(entries)
            assert_reported(entries, required_variables(REPORT_EVSES), "FullInventory")
            assert_no_later_parts(cs, parts, 1301)


async def test_TC_B_14_CS_get_base_report_summary_inventory(boot_station):
    """TC_B_14_CS Get Base Report - SummaryInventory (requestId 1401; 2 EVSEs, 3 connectors;
    supported, PICS C-56). No component is in an abnormal state (Before: N/a).

    Post scenario: every reported variable has variableCharacteristics, list types a
    valuesList; AvailabilityState of the ChargingStation and of every EVSE is reported
    (the Connectors' is optional: "if known and different from EVSE")."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=REPORT_EVSES) as cs:
            parts = await get_base_report(cs, "SummaryInventory", 1401)
            entries = report_entries(parts)
            assert_characteristics_present(entries)
            no_values_list = [show(entry_key(e)) for e in entries
                              if e["variableCharacteristics"].get("dataType") in LIST_TYPES
                              and not e["variableCharacteristics"].get("valuesList")]
            assert not no_values_list, f"Post scenario: list types without valuesList: {no_values_list}"
            required = [("ChargingStation", None, None, "AvailabilityState", None)] + [
                ("EVSE", e, None, "AvailabilityState", None) for e in range(1, len(REPORT_EVSES) + 1)]
            assert_reported(entries, required, "SummaryInventory")
            assert_no_later_parts(cs, parts, 1401)


async def test_TC_B_53_CS_get_base_report_mandatory_dm_variables(boot_station):
    """TC_B_53_CS Get Base Report - Test mandatory DM variables via FullInventory
    (requestId 5301; 2 EVSEs, 3 connectors).

    Post scenario: the required variables (dm_components_vars.csv, Required? = yes) of
    CONTROLLERS and of ChargingStation / every EVSE / every Connector are reported; every
    OptionList/SequenceList/MemberList has a non-empty valuesList and values allowed by it;
    WriteOnly attributes have no value."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=REPORT_EVSES) as cs:
            parts = await get_base_report(cs, "FullInventory", 5301)
            entries = report_entries(parts)
            problems: list[str] = []
            reported = {entry_key(e) for e in entries}
            missing = [show(k) for k in required_variables(REPORT_EVSES) if k not in reported]
            if missing:
                problems.append(f"{len(missing)} required variable(s) not implemented: {', '.join(missing)}")
            for e in entries:
                name = show(entry_key(e))
                vc = e.get("variableCharacteristics") or {}
                data_type = vc.get("dataType")
                allowed = set(list_items(vc.get("valuesList") or ""))
                if data_type in LIST_TYPES and not allowed:
                    problems.append(f"{name}: {data_type} with an omitted or empty valuesList")
                for a in e["variableAttribute"]:
                    what = f"{name} ({a.get('type', 'Actual')})"
                    if a.get("mutability") == "WriteOnly":
                        if "value" in a:
                            problems.append(f"{what}: WriteOnly but a value is reported")
                        continue
                    value = a.get("value")
                    if data_type in LIST_TYPES and allowed and value is not None:
                        items = [value] if data_type == "OptionList" else list_items(value)
                        bad = [i for i in items if i not in allowed]
                        if bad:
                            problems.append(f"{what}: value {value!r} not allowed by valuesList {vc['valuesList']!r}")
            assert not problems, "Post scenario:\n" + "\n".join(problems)
            assert_no_later_parts(cs, parts, 5301)


# --------------------------------------------------------------------------- the rig itself

async def test_rig_restart_keeps_the_sqlite_file(boot_station):
    """The conftest rig: restart() stops the station and starts it again on the same SQLite
    file (a SetVariables value survives it; the second boot is a PowerUp)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res = await cs.call("SetVariables", {"setVariableData": [sv("OCPPCommCtrlr", "OfflineThreshold", "345")]})
            assert res["setVariableResult"][0]["attributeStatus"] == "Accepted", res
            after = cs.mark()
            await cs.restart()
            assert cs.starts == 2
            _, boot = await cs.next_call("BootNotification", after=after)
            assert boot["reason"] == "PowerUp"
            res = await cs.call("GetVariables", {"getVariableData": [gv("OCPPCommCtrlr", "OfflineThreshold")]})
            assert res["getVariableResult"][0]["attributeValue"] == "345", res
            state = await cs.control(cmd="state")
            assert state["csms_connected"] is True


def test_teardown_schema_check_catches_invalid_frames():
    """The schema check every conformance test gets at teardown is not vacuous."""
    sid = "CS-X"
    sent = [(sid, [CALL, "c1", "GetVariables", {"getVariableData": [gv("A", "B")]}])]
    received = [
        (sid, [CALL, "s1", "Heartbeat", {}]),                                             # fine
        (sid, [CALL, "s2", "StatusNotification", {"timestamp": "2024-01-01T00:00:00Z",
                                                  "evseId": 1, "connectorId": 1}]),      # connectorStatus missing
        (sid, [CALL, "s3", "NotifyReport", {"requestId": 1, "generatedAt": "yesterday", "seqNo": 0}]),  # date-time
        (sid, [CALLRESULT, "c1", {"getVariableResult": [{"attributeStatus": "Fine", "component": {"name": "A"},
                                                         "variable": {"name": "B"}}]}]),  # bad enum
        (sid, [CALLRESULT, "c9", {}]),                                                    # answers nothing
        (sid, [CALLERROR, "c1", "Oops", "", {}]),                                         # unknown error code
        ("other", [CALL, "s4", "Heartbeat", {"bogus": 1}]),                               # another station's
    ]
    checked, problems = schema_problems(sid, received, sent, [f"{sid}: frame is not JSON"])
    assert checked == 6
    assert len(problems) == 6, "\n".join(problems)
    assert any("StatusNotification request fails" in p for p in problems)
    assert any("NotifyReport request fails" in p and "date-time" in p for p in problems)
    assert any("GetVariables response fails" in p for p in problems)
