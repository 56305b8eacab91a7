"""OCPP-J RPC layer (domain/ocppj.py): Part 4 section 4 rules, pure, no I/O."""
from __future__ import annotations

import copy
import datetime
import json
import uuid

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp import messages as ocpp_messages  # independent implementation, tests only

from domain import messages as m
from domain.ocppj import (
    CallErrorReceived,
    CallPending,
    CallResultReceived,
    CallTimedOut,
    Dropped,
    IncomingCall,
    OcppJEndpoint,
    OutboundInvalid,
    Reply,
    RpcErrorCode,
    classify_violation,
)

E = RpcErrorCode
SUPPORTED = (
    "GetVariables", "SetVariables", "SetChargingProfile", "ClearCache", "Reset",
    "RequestStartTransaction", "TriggerMessage", "DataTransfer", "NotifyEVChargingNeeds",
)
OUT_ID = "out-0001"
UTC = datetime.timezone.utc
T0 = 1000.0


def endpoint(**kw) -> OcppJEndpoint:
    kw.setdefault("supported_actions", SUPPORTED)
    return OcppJEndpoint(**kw)


def fixed_ids(*ids: str):
    it = iter(ids)
    return lambda: next(it)


def frame(*elements) -> str:
    return json.dumps(list(elements))


def reply_of(result) -> list:
    """The CALLERROR in a Reply, checked for Part 4 table 7's shape."""
    assert isinstance(result, Reply), result
    parsed = json.loads(result.frame)
    assert isinstance(parsed, list) and len(parsed) == 5
    assert parsed[0] == 4
    assert isinstance(parsed[1], str) and 0 < len(parsed[1]) <= 36
    assert parsed[2] in set(RpcErrorCode)
    assert isinstance(parsed[3], str) and len(parsed[3]) <= 255
    assert "\n" not in parsed[3] and "\r" not in parsed[3]
    assert isinstance(parsed[4], dict)
    return parsed


def assert_reply(result, message_id: str, code: RpcErrorCode, *, field: str | None = None, mentions=()) -> list:
    parsed = reply_of(result)
    assert parsed[1] == message_id
    assert parsed[2] == code, parsed
    if field is not None:
        assert parsed[4] == {"field": field}
        assert field in parsed[3]
    for word in mentions:
        assert word in parsed[3], parsed
    # the independent `ocpp` package reads it as a CALLERROR too
    ocpp_error = ocpp_messages.unpack(result.frame)
    assert isinstance(ocpp_error, ocpp_messages.CallError)
    assert ocpp_error.unique_id == message_id and ocpp_error.error_code == code
    return parsed


GET_VARIABLES = {
    "getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
    ]
}
SET_CHARGING_PROFILE = {
    "evseId": 1,
    "chargingProfile": {
        "id": 7,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "validFrom": "2024-05-01T00:00:00Z",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
                "salesTariff": {
                    "id": 1,
                    "salesTariffEntry": [{"relativeTimeInterval": {"start": 0}, "ePriceLevel": 1}],
                },
            }
        ],
    },
}
NOTIFY_EV_CHARGING_NEEDS = {
    "evseId": 1,
    "chargingNeeds": {
        "requestedEnergyTransfer": "DC",
        "dcChargingParameters": {"evMaxCurrent": 200, "evMaxVoltage": 800, "stateOfCharge": 40},
    },
}
VALID_PAYLOADS = {
    "GetVariables": GET_VARIABLES,
    "SetChargingProfile": SET_CHARGING_PROFILE,
    "NotifyEVChargingNeeds": NOTIFY_EV_CHARGING_NEEDS,
    "Reset": {"type": "Immediate"},
    "ClearCache": {},
    "TriggerMessage": {"requestedMessage": "Heartbeat", "evse": {"id": 1}},
    "DataTransfer": {"vendorId": "acme", "data": {"anything": [1, None, "x"]}},
    "SetVariables": {
        "setVariableData": [
            {"attributeValue": "60", "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        ]
    },
}


def mutated(payload: dict, path: list, value=None, *, delete: bool = False) -> dict:
    out = copy.deepcopy(payload)
    node = out
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def boot_request(**station) -> m.BootNotificationRequest:
    station.setdefault("model", "SingleSocketCharger")
    station.setdefault("vendor_name", "VendorX")
    return m.BootNotificationRequest(charging_station=m.ChargingStation(**station), reason=m.BootReason.PowerUp)


def transaction_event(n_values: int = 10) -> m.TransactionEventRequest:
    ts = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    values = [
        m.SampledValue(value=1234.5 + i, measurand=m.Measurand.Energy_Active_Import_Register,
                       context=m.ReadingContext.Sample_Periodic, unit_of_measure=m.UnitOfMeasure(unit="Wh"))
        for i in range(n_values)
    ]
    return m.TransactionEventRequest(
        event_type=m.TransactionEvent.Updated,
        timestamp=ts,
        trigger_reason=m.TriggerReason.MeterValuePeriodic,
        seq_no=3,
        transaction_info=m.Transaction(transaction_id="tx-1", charging_state=m.ChargingState.Charging),
        evse=m.EVSE(id=1, connector_id=1),
        meter_value=[m.MeterValue(timestamp=ts, sampled_value=values)],
    )


HEARTBEAT_RESULT = {"currentTime": "2024-05-01T12:00:00Z"}


def busy_endpoint(**kw) -> OcppJEndpoint:
    """An endpoint with our Heartbeat CALL (id OUT_ID) outstanding since T0."""
    ep = endpoint(new_message_id=fixed_ids(OUT_ID, "out-0002", "out-0003"), **kw)
    ep.send_call(m.HeartbeatRequest(), T0)
    return ep


# =========================================================================== frame level


@pytest.mark.parametrize("text", ["", "nope", "[2,", "[2,\"a\",\"Reset\",{]", "{\"a\": tru}", "[1] x", '[2,"\\ud800","Reset",{}]'])
def test_not_json_is_rpc_framework_error_with_id_minus_1(text):
    assert_reply(endpoint().receive(text, T0), "-1", E.RpcFrameworkError, mentions=["JSON"])


def test_invalid_utf8_bytes_is_rpc_framework_error():
    r = endpoint().receive(b'[2,"abc","Reset",{"type":"\xff"}]', T0)
    assert_reply(r, "-1", E.RpcFrameworkError, mentions=["UTF-8"])


def test_lone_surrogate_in_str_frame_is_rpc_framework_error():
    assert_reply(endpoint().receive('[2,"\ud800","Reset",{}]', T0), "-1", E.RpcFrameworkError)


@pytest.mark.parametrize("value", [{"a": 1}, "text", 2, None, True, 1.5])
def test_json_but_not_an_array_is_rpc_framework_error(value):
    assert_reply(endpoint().receive(json.dumps(value), T0), "-1", E.RpcFrameworkError, mentions=["array"])


def test_deeply_nested_frame_is_answered_not_raised():
    assert_reply(endpoint().receive("[" * 100_000 + "]" * 100_000, T0), "-1", E.RpcFrameworkError)


def test_huge_frame_is_handled():
    big = frame(2, "big", "DataTransfer", {"vendorId": "v", "data": "x" * 2_000_000})
    r = endpoint().receive(big, T0)
    assert isinstance(r, IncomingCall) and len(r.request.data) == 2_000_000


@pytest.mark.parametrize(
    "elements, why",
    [
        ([], "empty"),
        ([2], "missing"),
        ([2, 17, "Reset", {"type": "Immediate"}], "not a string"),
        ([2, None, "Reset", {"type": "Immediate"}], "not a string"),
        ([2, "", "Reset", {"type": "Immediate"}], "empty"),
        ([2, "x" * 37, "Reset", {"type": "Immediate"}], "too long"),
    ],
)
def test_unreadable_message_id_is_rpc_framework_error_minus_1(elements, why):
    assert_reply(endpoint().receive(frame(*elements), T0), "-1", E.RpcFrameworkError)


def test_message_id_of_36_characters_and_unicode_is_accepted():
    ep = endpoint()
    for mid in ("x" * 36, "é" * 36, "日本語-🚗-ünïcödé", 'quo"te\\back\tslash'):
        r = ep.receive(frame(2, mid, "Reset", {"type": "Immediate"}), T0)
        assert isinstance(r, IncomingCall) and r.message_id == mid
        out = ep.result_frame(r.message_id, m.ResetResponse(status=m.ResetStatus.Accepted))
        assert json.loads(out) == [3, mid, {"status": "Accepted"}]


@pytest.mark.parametrize("mtype", [5, 6, 0, 1, -2, 20, "2", 2.0, None, True, [2], {"t": 2}])
def test_unknown_message_type_is_message_type_not_supported_with_id(mtype):
    r = endpoint().receive(frame(mtype, "id-77", "Reset", {"type": "Immediate"}), T0)
    assert_reply(r, "id-77", E.MessageTypeNotSupported, mentions=["message type"])


def test_unknown_message_type_without_readable_id_uses_minus_1():
    assert_reply(endpoint().receive("[7]", T0), "-1", E.MessageTypeNotSupported)
    assert_reply(endpoint().receive('[7, 12, {}]', T0), "-1", E.MessageTypeNotSupported)


@pytest.mark.parametrize(
    "elements",
    [
        [2, "id-1"],
        [2, "id-1", "Reset"],
        [2, "id-1", "Reset", {"type": "Immediate"}, {}],
    ],
)
def test_call_with_wrong_element_count_is_rpc_framework_error(elements):
    assert_reply(endpoint().receive(frame(*elements), T0), "id-1", E.RpcFrameworkError, mentions=["elements"])


@pytest.mark.parametrize("action", [17, None, {"a": 1}, ["Reset"], True])
def test_call_with_non_string_action_is_rpc_framework_error(action):
    r = endpoint().receive(frame(2, "id-2", action, {"type": "Immediate"}), T0)
    assert_reply(r, "id-2", E.RpcFrameworkError, mentions=["action"])


@pytest.mark.parametrize("action", ["Foo", "reset", "ResetRequest", "", "Authorize " * 50])
def test_unknown_action_is_not_implemented(action):
    assert_reply(endpoint().receive(frame(2, "id-3", action, {}), T0), "id-3", E.NotImplemented)


def test_known_but_unsupported_action_is_not_supported_before_payload_is_read():
    ep = endpoint()
    assert "Heartbeat" in m.ACTIONS and "Heartbeat" not in SUPPORTED
    for payload in ({}, [], "garbage", {"unknownField": 1}):
        assert_reply(ep.receive(frame(2, "id-4", "Heartbeat", payload), T0), "id-4", E.NotSupported,
                     mentions=["Heartbeat"])
    # an unknown action is NotImplemented whatever its payload
    assert_reply(ep.receive(frame(2, "id-5", "Nope", []), T0), "id-5", E.NotImplemented)


def test_supported_actions_must_be_ocpp_actions():
    with pytest.raises(ValueError, match="Foo"):
        OcppJEndpoint(supported_actions=["Reset", "Foo"])


# =========================================================================== CALL payloads


def test_valid_calls_are_incoming_calls():
    ep = endpoint()
    for action, payload in VALID_PAYLOADS.items():
        r = ep.receive(frame(2, f"id-{action}", action, payload), T0)
        assert isinstance(r, IncomingCall), (action, r)
        assert r.message_id == f"id-{action}" and r.action == action
        assert isinstance(r.request, m.REQUESTS[action])
        # the payload round-trips and satisfies the official schema per the `ocpp` package
        assert msgspec.to_builtins(r.request) == payload or action == "SetChargingProfile"
        ocpp_messages._validate_payload(ocpp_messages.Call(r.message_id, action, payload), "2.0.1")


def test_bytes_and_bytearray_frames_are_accepted():
    ep = endpoint()
    text = frame(2, "b-1", "GetVariables", GET_VARIABLES)
    for f in (text.encode(), bytearray(text.encode()), memoryview(text.encode())):
        assert isinstance(ep.receive(f, T0), IncomingCall)


def test_whitespace_around_elements_is_fine():
    r = endpoint().receive(' [ 2 ,\n "w-1" , "Reset" , { "type" : "OnIdle" } ] \n', T0)
    assert isinstance(r, IncomingCall) and r.request.type == m.Reset.OnIdle


@pytest.mark.parametrize("payload", [[], "x", 3, True, [{"type": "Immediate"}]])
def test_payload_not_an_object_is_format_violation(payload):
    r = endpoint().receive(frame(2, "p-1", "Reset", payload), T0)
    assert_reply(r, "p-1", E.FormatViolation, mentions=["payload", "object"])


def test_null_payload_reads_as_empty_object():
    """Part 4 4.1.5 allows null as well as {} for "no payload"."""
    ep = endpoint()
    r = ep.receive(frame(2, "n-1", "ClearCache", None), T0)
    assert isinstance(r, IncomingCall) and r.request == m.ClearCacheRequest()
    # and is then validated like {}: Reset needs `type`
    assert_reply(ep.receive(frame(2, "n-2", "Reset", None), T0), "n-2", E.OccurrenceConstraintViolation, field="type")


def test_missing_required_field_is_occurrence_constraint_violation():
    ep = endpoint()
    assert_reply(ep.receive(frame(2, "o-1", "GetVariables", {}), T0), "o-1",
                 E.OccurrenceConstraintViolation, field="getVariableData", mentions=["required"])
    nested = mutated(GET_VARIABLES, ["getVariableData", 0, "component", "name"], delete=True)
    assert_reply(ep.receive(frame(2, "o-2", "GetVariables", nested), T0), "o-2",
                 E.OccurrenceConstraintViolation, field="getVariableData[0].component.name")


@pytest.mark.parametrize(
    "path, value, field",
    [
        (["getVariableData", 0, "component", "name"], 5, "getVariableData[0].component.name"),
        (["getVariableData", 0, "component", "name"], None, "getVariableData[0].component.name"),  # null
        (["getVariableData", 0, "component", "name"], ["x"], "getVariableData[0].component.name"),
        (["getVariableData", 0, "component", "evse"], {"id": "1"}, "getVariableData[0].component.evse.id"),
        (["getVariableData", 0, "component", "evse"], {"id": 1.5}, "getVariableData[0].component.evse.id"),
        (["getVariableData", 0, "component", "evse"], {"id": True}, "getVariableData[0].component.evse.id"),
        (["getVariableData", 0, "component"], "OCPPCommCtrlr", "getVariableData[0].component"),
        (["getVariableData", 0], 42, "getVariableData[0]"),
        (["getVariableData"], {"a": 1}, "getVariableData"),
        (["getVariableData"], None, "getVariableData"),  # null for a required field
    ],
)
def test_wrong_json_type_is_type_constraint_violation(path, value, field):
    r = endpoint().receive(frame(2, "t-1", "GetVariables", mutated(GET_VARIABLES, path, value)), T0)
    assert_reply(r, "t-1", E.TypeConstraintViolation, field=field, mentions=["expected"])


# Part 4 4.1.5: an optional field without a value is left out; null is not allowed.
NULL_OPTIONALS = [
    ("GetTransactionStatus", {"transactionId": None}, "transactionId", "string"),
    ("TriggerMessage", {"requestedMessage": "StatusNotification", "evse": None}, "evse", "object"),
    ("TriggerMessage", {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": None}},
     "evse.connectorId", "integer"),
    ("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 1, "connectorId": None}},
     "evse.connectorId", "integer"),
    ("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": None}, "evse", "object"),
    ("GetVariables", mutated(GET_VARIABLES, ["getVariableData", 0, "attributeType"], None),
     "getVariableData[0].attributeType", "string"),
    ("GetVariables", mutated(GET_VARIABLES, ["getVariableData", 0, "component", "instance"], None),
     "getVariableData[0].component.instance", "string"),
    ("DataTransfer", {"vendorId": "acme", "messageId": None}, "messageId", "string"),
    ("Reset", {"type": "Immediate", "evseId": None}, "evseId", "integer"),
    ("Reset", {"type": "Immediate", "customData": None}, "customData", "object"),
    ("RequestStartTransaction", {"idToken": {"idToken": "t", "type": "Central"}, "remoteStartId": 1,
                                 "groupIdToken": None}, "groupIdToken", "object"),
    ("SetChargingProfile", mutated(SET_CHARGING_PROFILE, ["chargingProfile", "validFrom"], None),
     "chargingProfile.validFrom", "string (date-time)"),
    ("SetChargingProfile", mutated(SET_CHARGING_PROFILE, ["chargingProfile", "chargingSchedule", 0,
                                                          "salesTariff"], None),
     "chargingProfile.chargingSchedule[0].salesTariff", "object"),
    ("SetVariables", mutated(VALID_PAYLOADS["SetVariables"], ["setVariableData", 0, "attributeType"], None),
     "setVariableData[0].attributeType", "string"),
]


@pytest.mark.parametrize("action, payload, field, expected", NULL_OPTIONALS,
                         ids=[f"{a}.{f}" for a, _, f, _ in NULL_OPTIONALS])
def test_null_for_an_optional_field_is_type_constraint_violation(action, payload, field, expected):
    """Not read as absent: TypeConstraintViolation naming the field (its wire path),
    and nothing happens (no IncomingCall)."""
    ep = endpoint(supported_actions=[*SUPPORTED, "GetTransactionStatus", "ChangeAvailability"])
    r = ep.receive(frame(2, "null-1", action, payload), T0)
    parsed = assert_reply(r, "null-1", E.TypeConstraintViolation, field=field)
    assert parsed[3] == f"{field}: wrong type: expected {expected}, got null"
    # the same payload without the null field is accepted: the null alone is at fault
    steps = [int(k) if k.isdigit() else k for k in field.replace("[", ".").replace("]", "").split(".")]
    fixed = mutated(payload, steps, delete=True)
    assert isinstance(ep.receive(frame(2, "null-2", action, fixed), T0), IncomingCall)


def test_null_is_a_value_of_data_transfer_data():
    """DataTransferRequest.data has no type in the schema ("anything"): null is legal."""
    r = endpoint().receive(frame(2, "dt-1", "DataTransfer", {"vendorId": "acme", "data": None}), T0)
    assert isinstance(r, IncomingCall) and r.request.data is None
    ocpp_messages._validate_payload(
        ocpp_messages.Call("dt-1", "DataTransfer", {"vendorId": "acme", "data": None}), "2.0.1")


def test_null_for_an_optional_field_of_a_call_result_ends_the_call_as_an_error():
    """Handled like any other schema violation of a CALLRESULT: the call ends with a
    CallErrorReceived naming the field; nothing is answered."""
    ep = endpoint(new_message_id=fixed_ids(OUT_ID))
    ep.send_call(boot_request(), T0)
    result = {"currentTime": "2024-05-01T12:00:00Z", "interval": 300, "status": "Accepted", "statusInfo": None}
    r = ep.receive(frame(3, OUT_ID, result), T0 + 1)
    assert isinstance(r, CallErrorReceived) and not ep.busy
    assert (r.code, r.details) == (E.TypeConstraintViolation, {"field": "statusInfo"})
    assert r.description == "invalid BootNotificationResponse: statusInfo: wrong type: expected object, got null"


def test_wrong_type_in_untyped_positions():
    # Reset.evseId is an optional integer
    r = endpoint().receive(frame(2, "t-2", "Reset", {"type": "Immediate", "evseId": "1"}), T0)
    assert_reply(r, "t-2", E.TypeConstraintViolation, field="evseId", mentions=["integer", "string"])


def test_below_minimum_is_property_constraint_violation():
    bad = mutated(SET_CHARGING_PROFILE,
                  ["chargingProfile", "chargingSchedule", 0, "salesTariff", "salesTariffEntry", 0, "ePriceLevel"], -1)
    r = endpoint().receive(frame(2, "r-1", "SetChargingProfile", bad), T0)
    assert_reply(r, "r-1", E.PropertyConstraintViolation,
                 field="chargingProfile.chargingSchedule[0].salesTariff.salesTariffEntry[0].ePriceLevel",
                 mentions=[">= 0"])


def test_above_maximum_is_property_constraint_violation():
    bad = mutated(NOTIFY_EV_CHARGING_NEEDS, ["chargingNeeds", "dcChargingParameters", "stateOfCharge"], 101)
    r = endpoint().receive(frame(2, "r-2", "NotifyEVChargingNeeds", bad), T0)
    assert_reply(r, "r-2", E.PropertyConstraintViolation,
                 field="chargingNeeds.dcChargingParameters.stateOfCharge", mentions=["<= 100"])
    huge = mutated(NOTIFY_EV_CHARGING_NEEDS, ["chargingNeeds", "dcChargingParameters", "stateOfCharge"], 10**30)
    r = endpoint().receive(frame(2, "r-3", "NotifyEVChargingNeeds", huge), T0)
    assert_reply(r, "r-3", E.PropertyConstraintViolation, field="chargingNeeds.dcChargingParameters.stateOfCharge")


def test_invalid_enum_value_is_property_constraint_violation():
    ep = endpoint()
    assert_reply(ep.receive(frame(2, "e-1", "Reset", {"type": "Sometime"}), T0), "e-1",
                 E.PropertyConstraintViolation, field="type", mentions=["enum", "Sometime"])
    bad = mutated(GET_VARIABLES, ["getVariableData", 0, "attributeType"], "actual")  # case matters
    assert_reply(ep.receive(frame(2, "e-2", "GetVariables", bad), T0), "e-2",
                 E.PropertyConstraintViolation, field="getVariableData[0].attributeType")


def test_string_too_long_is_format_violation():
    bad = mutated(GET_VARIABLES, ["getVariableData", 0, "component", "name"], "x" * 51)
    r = endpoint().receive(frame(2, "s-1", "GetVariables", bad), T0)
    assert_reply(r, "s-1", E.FormatViolation, field="getVariableData[0].component.name",
                 mentions=["longer than 50 characters"])
    ok = mutated(GET_VARIABLES, ["getVariableData", 0, "component", "name"], "é" * 50)  # characters, not bytes
    assert isinstance(endpoint().receive(frame(2, "s-2", "GetVariables", ok), T0), IncomingCall)


def test_too_few_array_items_is_format_violation():
    r = endpoint().receive(frame(2, "a-1", "GetVariables", {"getVariableData": []}), T0)
    assert_reply(r, "a-1", E.FormatViolation, field="getVariableData", mentions=["fewer than 1 items"])


def test_too_many_array_items_is_format_violation():
    schedule = SET_CHARGING_PROFILE["chargingProfile"]["chargingSchedule"][0]
    bad = mutated(SET_CHARGING_PROFILE, ["chargingProfile", "chargingSchedule"], [schedule] * 4)
    r = endpoint().receive(frame(2, "a-2", "SetChargingProfile", bad), T0)
    assert_reply(r, "a-2", E.FormatViolation, field="chargingProfile.chargingSchedule", mentions=["more than 3 items"])


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01T00:00:00Z", "2024-05-01 12:00", "", "2024-05-01T12:00",
                                   "2024-05-01T12:00:00+25:00", "2024-05-01"])
def test_malformed_date_time_is_format_violation(value):
    bad = mutated(SET_CHARGING_PROFILE, ["chargingProfile", "validFrom"], value)
    r = endpoint().receive(frame(2, "d-1", "SetChargingProfile", bad), T0)
    assert_reply(r, "d-1", E.FormatViolation, field="chargingProfile.validFrom", mentions=["date-time"])


# --------------------------------------------------------------------------- leniency: no UTC offset


def test_date_time_without_offset_in_a_call_result_is_read_as_utc_with_a_warning():
    """Interop (README "Leniencies"): CSMSs that answer BootNotification with a
    date-time without offset are read as UTC instead of a FormatViolation."""
    ep = endpoint(new_message_id=fixed_ids(OUT_ID))
    ep.send_call(boot_request(), T0)
    result = {"currentTime": "2026-12-07T21:00:00.123456", "interval": 300, "status": "Accepted"}
    r = ep.receive(frame(3, OUT_ID, result), T0 + 1)
    assert isinstance(r, CallResultReceived) and not ep.busy
    assert r.response.current_time == datetime.datetime(2026, 12, 7, 21, 0, 0, 123456, tzinfo=UTC)
    assert r.response.status == m.RegistrationStatus.Accepted and r.response.interval == 300
    assert r.warning == ("CSMS sent date-time without UTC offset in BootNotificationResponse.currentTime; "
                         "read as UTC")


def test_date_time_without_offset_in_a_call_is_read_as_utc_with_a_warning():
    payload = mutated(SET_CHARGING_PROFILE, ["chargingProfile", "validFrom"], "2024-05-01T12:00:00")
    payload = mutated(payload, ["chargingProfile", "validTo"], "2024-05-02t08:30:00.5")
    r = endpoint().receive(frame(2, "d-2", "SetChargingProfile", payload), T0)
    assert isinstance(r, IncomingCall)
    profile = r.request.charging_profile
    assert profile.valid_from == datetime.datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert profile.valid_to == datetime.datetime(2024, 5, 2, 8, 30, 0, 500000, tzinfo=UTC)
    assert r.warning == ("CSMS sent date-time without UTC offset in SetChargingProfileRequest.chargingProfile.validFrom"
                         " (and 1 more); read as UTC")


def test_only_date_time_fields_are_read_as_utc_at_any_depth():
    """Every date-time field of the message, in arrays too; offsets given are kept;
    a string field that looks like a date-time is left alone."""
    entries = [
        {"idToken": {"idToken": "2024-05-01T12:00:00", "type": "Central"},
         "idTokenInfo": {"status": "Accepted", "cacheExpiryDateTime": "2030-01-01T00:00:00"}},
        {"idToken": {"idToken": "B", "type": "Central"},
         "idTokenInfo": {"status": "Accepted", "cacheExpiryDateTime": "2030-01-01T00:00:00+02:00"}},
        {"idToken": {"idToken": "C", "type": "Central"},
         "idTokenInfo": {"status": "Blocked", "cacheExpiryDateTime": "2031-06-01T10:00:00.25"}},
    ]
    payload = {"versionNumber": 3, "updateType": "Full", "localAuthorizationList": entries}
    r = endpoint(supported_actions=["SendLocalList"]).receive(frame(2, "d-3", "SendLocalList", payload), T0)
    assert isinstance(r, IncomingCall)
    got = [(d.id_token.id_token, d.id_token_info.cache_expiry_date_time) for d in r.request.local_authorization_list]
    assert got == [
        ("2024-05-01T12:00:00", datetime.datetime(2030, 1, 1, tzinfo=UTC)),
        ("B", datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))),
        ("C", datetime.datetime(2031, 6, 1, 10, 0, 0, 250000, tzinfo=UTC)),
    ]
    assert "SendLocalListRequest.localAuthorizationList[0].idTokenInfo.cacheExpiryDateTime (and 1 more)" in r.warning


@pytest.mark.parametrize(
    "path, value, code, field",
    [
        (["chargingProfile", "validTo"], "2024-13-01T00:00:00", E.FormatViolation, "chargingProfile.validTo"),
        (["chargingProfile", "validTo"], None, E.TypeConstraintViolation, "chargingProfile.validTo"),
        (["chargingProfile", "chargingProfileKind"], "Weekly", E.PropertyConstraintViolation,
         "chargingProfile.chargingProfileKind"),
        (["chargingProfile", "transactionId"], "x" * 37, E.FormatViolation, "chargingProfile.transactionId"),
        (["chargingProfile", "bogus"], 1, E.FormatViolation, "chargingProfile.bogus"),
        (["chargingProfile", "chargingSchedule", 0, "startSchedule"], "2024-05-01T12:00:00Z x",
         E.FormatViolation, "chargingProfile.chargingSchedule[0].startSchedule"),
    ],
)
def test_other_violations_beside_a_date_time_without_offset_are_still_answered(path, value, code, field):
    """Reading a missing offset as UTC changes nothing else: the strict decoding follows."""
    bad = mutated(SET_CHARGING_PROFILE, ["chargingProfile", "validFrom"], "2024-05-01T12:00:00")
    bad = mutated(bad, path, value)
    r = endpoint().receive(frame(2, "d-4", "SetChargingProfile", bad), T0)
    assert_reply(r, "d-4", code, field=field)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-05-01t12:00:00z", datetime.datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01 12:00:00Z", datetime.datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00.123456789Z", datetime.datetime(2024, 5, 1, 12, 0, 0, 123457, tzinfo=UTC)),
        ("2024-05-01T14:00:00+0200", datetime.datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00-00:00", datetime.datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ],
)
def test_date_time_spellings_listed_in_the_readme_leniencies(text, expected):
    """README "Leniencies": accepted as the instant they name, without a warning."""
    ep = busy_endpoint()
    r = ep.receive(frame(3, OUT_ID, {"currentTime": text}), T0)
    assert isinstance(r, CallResultReceived) and r.warning is None
    assert r.response.current_time == expected


def test_date_time_without_offset_is_warned_about_once_per_connection():
    ep = endpoint(new_message_id=fixed_ids("o-1", "o-2", "o-3", "o-4"))
    naive = {"currentTime": "2024-05-01T12:00:00"}
    ep.send_call(m.HeartbeatRequest(), T0)
    assert ep.receive(frame(3, "o-1", naive), T0).warning is not None
    ep.send_call(m.HeartbeatRequest(), T0)
    r = ep.receive(frame(3, "o-2", naive), T0)
    assert isinstance(r, CallResultReceived) and r.warning is None  # read as UTC all the same
    assert r.response.current_time == datetime.datetime(2024, 5, 1, 12, tzinfo=UTC)
    payload = mutated(SET_CHARGING_PROFILE, ["chargingProfile", "validFrom"], "2024-05-01T12:00:00")
    assert ep.receive(frame(2, "in-1", "SetChargingProfile", payload), T0).warning is None
    ep.connection_lost()  # a new connection: warned about again
    ep.send_call(m.HeartbeatRequest(), T0)
    assert "HeartbeatResponse.currentTime" in ep.receive(frame(3, "o-3", naive), T0).warning
    ep.send_call(m.HeartbeatRequest(), T0)
    assert ep.receive(frame(3, "o-4", HEARTBEAT_RESULT), T0).warning is None


def test_unknown_field_is_format_violation():
    ep = endpoint()
    assert_reply(ep.receive(frame(2, "u-1", "Reset", {"type": "Immediate", "bogus": 1}), T0), "u-1",
                 E.FormatViolation, field="bogus", mentions=["unknown field"])
    bad = mutated(GET_VARIABLES, ["getVariableData", 0, "variable", "colour"], "red")
    assert_reply(ep.receive(frame(2, "u-2", "GetVariables", bad), T0), "u-2",
                 E.FormatViolation, field="getVariableData[0].variable.colour")


def test_unknown_field_name_is_sanitised_and_bounded():
    name = "evil\n` - at `$.x\u2028" + "z" * 500
    r = endpoint().receive(frame(2, "u-3", "Reset", {"type": "Immediate", name: 1}), T0)
    parsed = reply_of(r)
    assert parsed[2] == E.FormatViolation and len(parsed[4]["field"]) <= 120


def test_custom_data_may_carry_vendor_fields():
    payload = {"type": "Immediate", "customData": {"vendorId": "acme", "extra": {"deep": [1, 2]}}}
    assert isinstance(endpoint().receive(frame(2, "c-1", "Reset", payload), T0), IncomingCall)
    payload = {"type": "Immediate", "customData": {"extra": 1}}
    assert_reply(endpoint().receive(frame(2, "c-2", "Reset", payload), T0), "c-2",
                 E.OccurrenceConstraintViolation, field="customData.vendorId")


def test_reply_reason_is_loggable():
    r = endpoint().receive(frame(2, "l-1", "Reset", {"type": "Sometime"}), T0)
    assert isinstance(r, Reply) and "PropertyConstraintViolation" in r.reason and "type" in r.reason


# =========================================================================== classification table


def _violation(payload: bytes, cls=m.ResetRequest) -> msgspec.ValidationError:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(payload, type=cls)
    return info.value


@pytest.mark.parametrize(
    "payload, cls, message, code, field",
    [
        (b"{}", m.ResetRequest, "Object missing required field `type`", E.OccurrenceConstraintViolation, "type"),
        (b'{"type":"Immediate","evseId":"x"}', m.ResetRequest,
         "Expected `int`, got `str` - at `$.evseId`", E.TypeConstraintViolation, "evseId"),
        (b'{"type":null}', m.ResetRequest, "Expected `str`, got `null` - at `$.type`", E.TypeConstraintViolation, "type"),
        (b'{"type":"Immediate","evseId":null}', m.ResetRequest,
         "Expected `int`, got `null` - at `$.evseId`", E.TypeConstraintViolation, "evseId"),
        (b'{"type":"X"}', m.ResetRequest, "Invalid enum value 'X' - at `$.type`", E.PropertyConstraintViolation, "type"),
        (b'{"type":"Immediate","x":1}', m.ResetRequest, "Object contains unknown field `x`", E.FormatViolation, "x"),
        (b"[]", m.ResetRequest, "Expected `object`, got `array`", E.FormatViolation, ""),
        (b'{"requestedMessage":"Heartbeat","evse":{"id":1,"connectorId":1,"q":2}}', m.TriggerMessageRequest,
         "Object contains unknown field `q` - at `$.evse`", E.FormatViolation, "evse.q"),
        (b'{"getVariableData":[]}', m.GetVariablesRequest,
         "Expected `array` of length >= 1 - at `$.getVariableData`", E.FormatViolation, "getVariableData"),
        (b'{"vendorId":"' + b"v" * 256 + b'"}', m.DataTransferRequest,
         "Expected `str` of length <= 255 - at `$.vendorId`", E.FormatViolation, "vendorId"),
        (b'{"currentTime":"2024-05-01T12:00:00"}', m.HeartbeatResponse,
         "Expected `datetime` with a timezone component - at `$.currentTime`", E.FormatViolation, "currentTime"),
        (b'{"currentTime":"soon"}', m.HeartbeatResponse,
         "Invalid RFC3339 encoded datetime - at `$.currentTime`", E.FormatViolation, "currentTime"),
    ],
)
def test_msgspec_message_shapes_and_their_codes(payload, cls, message, code, field):
    """Pins msgspec 0.22's ValidationError texts that classify_violation() relies on."""
    error = _violation(payload, cls)
    assert str(error) == message
    v = classify_violation(error)
    assert (v.code, v.field) == (code, field)


@pytest.mark.parametrize(
    "message, code, field",
    [
        ("Expected `int` >= 0 - at `$.a[0].b`", E.PropertyConstraintViolation, "a[0].b"),
        ("Expected `int` <= 100 - at `$.x`", E.PropertyConstraintViolation, "x"),
        ("Expected `float` >= 0.0 - at `$.x`", E.PropertyConstraintViolation, "x"),
        ("Expected `int` > 0 - at `$.x`", E.PropertyConstraintViolation, "x"),
        ("Expected `int` that's a multiple of 5 - at `$.x`", E.PropertyConstraintViolation, "x"),
        ("Expected `str` of length >= 2 - at `$.x`", E.FormatViolation, "x"),
        ("Expected `array` of length <= 3 - at `$.x`", E.FormatViolation, "x"),
        ("Object missing required field `b` - at `$.a[2]`", E.OccurrenceConstraintViolation, "a[2].b"),
        ("Expected `bool | null`, got `int` - at `$.x`", E.TypeConstraintViolation, "x"),
        ("Expected `object`, got `null`", E.FormatViolation, ""),
        ("Expected `str` matching regex '^a$' - at `$.x`", E.FormatViolation, "x"),
        ("Something new in msgspec 0.99", E.FormatViolation, ""),
    ],
)
def test_classification_table(message, code, field):
    v = classify_violation(msgspec.ValidationError(message))
    assert (v.code, v.field) == (code, field)
    assert "\n" not in v.description and (not field or field in v.description)


# =========================================================================== our calls


def test_send_call_builds_a_call_frame_the_ocpp_package_accepts():
    ep = endpoint(new_message_id=fixed_ids("m-1", "m-2"))
    text = ep.send_call(boot_request(), T0)
    parsed = json.loads(text)
    assert parsed[:3] == [2, "m-1", "BootNotification"]
    assert parsed[3] == {"chargingStation": {"model": "SingleSocketCharger", "vendorName": "VendorX"}, "reason": "PowerUp"}
    call = ocpp_messages.unpack(text)
    assert isinstance(call, ocpp_messages.Call) and call.action == "BootNotification"
    ocpp_messages._validate_payload(call, "2.0.1")
    assert ep.busy
    ep.receive(frame(3, "m-1", {"currentTime": "2024-05-01T12:00:00Z", "interval": 300, "status": "Accepted"}), T0)
    text = ep.send_call(transaction_event(10), T0)
    call = ocpp_messages.unpack(text)
    assert call.action == "TransactionEvent" and len(call.payload["meterValue"][0]["sampledValue"]) == 10
    ocpp_messages._validate_payload(call, "2.0.1")


def test_send_call_escapes_odd_message_ids():
    for mid in ('a"b', "back\\slash", "tab\there", "é-ü"):
        ep = endpoint(new_message_id=fixed_ids(mid))
        assert json.loads(ep.send_call(m.HeartbeatRequest(), T0))[1] == mid
        assert isinstance(ep.receive(frame(3, mid, HEARTBEAT_RESULT), T0), CallResultReceived)


def test_bad_message_id_generator_is_refused():
    ep = endpoint(new_message_id=fixed_ids("x" * 37))
    with pytest.raises(ValueError):
        ep.send_call(m.HeartbeatRequest(), T0)
    assert not ep.busy


def test_outbound_schema_violation_raises_outbound_invalid_naming_the_field():
    ep = endpoint()
    with pytest.raises(OutboundInvalid) as info:
        ep.send_call(boot_request(model="M" * 21), T0)
    assert isinstance(info.value, ValueError)
    assert info.value.field == "chargingStation.model"
    assert info.value.code == E.FormatViolation
    assert "chargingStation.model" in str(info.value) and "longer than 20" in str(info.value)
    assert not ep.busy  # nothing was sent
    with pytest.raises(OutboundInvalid) as info:
        ep.send_call(m.NotifyEVChargingNeedsRequest(
            evse_id=1, charging_needs=m.ChargingNeeds(
                requested_energy_transfer=m.EnergyTransferMode.DC,
                dc_charging_parameters=m.DCChargingParameters(ev_max_current=1, ev_max_voltage=1, state_of_charge=101),
            )), T0)
    assert info.value.field == "chargingNeeds.dcChargingParameters.stateOfCharge"
    assert info.value.code == E.PropertyConstraintViolation
    with pytest.raises(OutboundInvalid, match="getVariableData"):
        ep.send_call(m.GetVariablesRequest(get_variable_data=[]), T0)


def test_outbound_naive_datetime_and_unencodable_values_are_refused():
    ep = endpoint()
    with pytest.raises(OutboundInvalid, match="currentTime|timestamp"):
        ev = transaction_event(1)
        ep.send_call(msgspec.structs.replace(ev, timestamp=datetime.datetime(2024, 5, 1)), T0)
    with pytest.raises(OutboundInvalid):
        ep.send_call(m.DataTransferRequest(vendor_id="v", data=object()), T0)
    with pytest.raises(OutboundInvalid):
        ep.send_call(m.HeartbeatResponse(current_time=datetime.datetime.now(UTC)), T0)  # a response is not a CALL
    assert not ep.busy


def test_outbound_date_times_have_at_most_three_fractional_digits_in_utc():
    """Part 2 2.1 primitive datatypes, dateTime: "The number of decimal places SHALL NOT exceed
    the maximum of 3" (Part 4's example: 2013-02-01T20:53:32.486Z). Every date-time the station
    sends, in CALLs and CALLRESULTs, at any depth: UTC with Z, milliseconds (sub-millisecond
    digits cut), none for a whole second; the message itself is left as it was, and a string
    that only looks like a date-time is sent as it is."""
    ep = endpoint(new_message_id=fixed_ids("m-1", "m-2"))
    ev = transaction_event(2)
    stamp = datetime.datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    plus_two = datetime.datetime(2026, 1, 1, 14, 0, 0, 999999, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    ev.timestamp = stamp
    values = ev.meter_value[0].sampled_value
    ev.meter_value = [m.MeterValue(timestamp=t, sampled_value=values)
                      for t in (plus_two, stamp.replace(microsecond=0), stamp.replace(microsecond=7000))]
    text = ep.send_call(ev, T0)
    payload = json.loads(text)[3]
    assert payload["timestamp"] == "2026-01-01T12:00:00.123Z"
    assert [mv["timestamp"] for mv in payload["meterValue"]] == [
        "2026-01-01T12:00:00.999Z", "2026-01-01T12:00:00Z", "2026-01-01T12:00:00.007Z"]
    assert ev.timestamp is stamp and ev.meter_value[0].timestamp is plus_two        # the message is unchanged
    ocpp_messages._validate_payload(ocpp_messages.unpack(text), "2.0.1")
    ep.connection_lost()
    lookalike = "2026-01-01T12:00:00.123456Z"
    data = json.loads(ep.send_call(m.DataTransferRequest(vendor_id="v", data={"at": lookalike}), T0))[3]["data"]
    assert data == {"at": lookalike}
    response = m.GetCompositeScheduleResponse(status=m.GenericStatus.Accepted, schedule=m.CompositeSchedule(
        evse_id=1, duration=60, schedule_start=plus_two, charging_rate_unit=m.ChargingRateUnit.A,
        charging_schedule_period=[m.ChargingSchedulePeriod(start_period=0, limit=16.0)]))
    assert json.loads(ep.result_frame("c-1", response))[2]["schedule"]["scheduleStart"] == "2026-01-01T12:00:00.999Z"


def test_outbound_frames_carry_no_null():
    """Part 4 4.1.5 for what the station sends: an optional field without a value is
    left out of CALLs and CALLRESULTs; a null where a value is required is refused."""
    ep = endpoint(new_message_id=fixed_ids("m-1"))
    request = m.StatusNotificationRequest(
        timestamp=datetime.datetime(2024, 5, 1, tzinfo=UTC), connector_status=m.ConnectorStatus.Available,
        evse_id=1, connector_id=1, custom_data=None)
    assert "null" not in ep.send_call(request, T0)
    response = m.GetVariablesResponse(get_variable_result=[m.GetVariableResult(
        attribute_status=m.GetVariableStatus.Accepted, attribute_type=None, attribute_value="60",
        component=m.Component(name="OCPPCommCtrlr", evse=None), variable=m.Variable(name="HeartbeatInterval"))])
    assert "null" not in ep.result_frame("in-1", response)
    with pytest.raises(OutboundInvalid) as info:
        endpoint().send_call(msgspec.structs.replace(request, connector_status=None), T0)
    assert (info.value.field, info.value.code) == ("connectorStatus", E.TypeConstraintViolation)


def test_only_one_outstanding_call():
    ep = busy_endpoint()
    with pytest.raises(CallPending):
        ep.send_call(m.HeartbeatRequest(), T0 + 1)
    # an inbound CALL crossing ours is fine (Part 4 4.1.1 NOTE)
    assert isinstance(ep.receive(frame(2, "in-1", "Reset", {"type": "Immediate"}), T0 + 1), IncomingCall)
    assert ep.busy


def test_call_result_frees_the_endpoint():
    ep = busy_endpoint()
    r = ep.receive(frame(3, OUT_ID, HEARTBEAT_RESULT), T0 + 1)
    assert isinstance(r, CallResultReceived)
    assert (r.message_id, r.action) == (OUT_ID, "Heartbeat")
    assert r.request == m.HeartbeatRequest()
    assert r.response.current_time == datetime.datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert not ep.busy and ep.next_deadline() is None
    ep.send_call(m.HeartbeatRequest(), T0 + 2)


def test_call_error_frees_the_endpoint():
    ep = busy_endpoint()
    r = ep.receive(frame(4, OUT_ID, "SecurityError", "not accepted yet", {"why": "boot"}), T0 + 1)
    assert r == CallErrorReceived(OUT_ID, "Heartbeat", m.HeartbeatRequest(), "SecurityError", "not accepted yet", {"why": "boot"})
    assert not ep.busy
    ep.send_call(m.HeartbeatRequest(), T0 + 2)


def test_invalid_call_result_payload_ends_the_call_as_an_error():
    ep = busy_endpoint()
    r = ep.receive(frame(3, OUT_ID, {"currentTime": 5}), T0 + 1)
    assert isinstance(r, CallErrorReceived)
    assert r.code == E.TypeConstraintViolation and r.details == {"field": "currentTime"}
    assert "HeartbeatResponse" in r.description and "currentTime" in r.description
    assert not ep.busy
    ep = busy_endpoint()
    r = ep.receive(frame(3, OUT_ID, {}), T0 + 1)
    assert isinstance(r, CallErrorReceived) and r.code == E.OccurrenceConstraintViolation and not ep.busy
    ep = busy_endpoint()
    r = ep.receive(frame(3, OUT_ID, []), T0 + 1)
    assert isinstance(r, CallErrorReceived) and r.code == E.FormatViolation and not ep.busy


@pytest.mark.parametrize(
    "elements",
    [
        [3, OUT_ID],
        [3, OUT_ID, HEARTBEAT_RESULT, {}],
    ],
)
def test_malformed_call_result_for_our_call_ends_it(elements):
    ep = busy_endpoint()
    r = ep.receive(frame(*elements), T0 + 1)
    assert isinstance(r, CallErrorReceived) and r.message_id == OUT_ID and not ep.busy


@pytest.mark.parametrize(
    "elements, code, description, details",
    [
        ([4, OUT_ID], E.GenericError, "malformed CALLERROR", {}),
        ([4, OUT_ID, 17, "desc", {}], E.GenericError, "desc", {}),
        ([4, OUT_ID, "InternalError"], "InternalError", "", {}),
        ([4, OUT_ID, "InternalError", 5, []], "InternalError", "", {}),
        ([4, OUT_ID, "NotSupported", "d", {"a": 1}, "extra"], "NotSupported", "d", {"a": 1}),
        ([4, OUT_ID, "", "d", {}], E.GenericError, "d", {}),
    ],
)
def test_malformed_call_error_for_our_call_still_ends_it(elements, code, description, details):
    ep = busy_endpoint()
    r = ep.receive(frame(*elements), T0 + 1)
    assert isinstance(r, CallErrorReceived)
    assert (r.code, r.description, r.details) == (code, description, details)
    assert not ep.busy


def test_unparseable_response_to_our_call_ends_it_without_a_reply():
    ep = busy_endpoint()
    r = ep.receive('[3,"%s",{"currentTime":' % OUT_ID, T0 + 1)
    assert isinstance(r, CallErrorReceived) and r.code == E.FormatViolation and not ep.busy


@pytest.mark.parametrize(
    "elements",
    [
        [3, "someone-else", HEARTBEAT_RESULT],
        [4, "someone-else", "GenericError", "", {}],
        [3, OUT_ID.upper(), HEARTBEAT_RESULT],
    ],
)
def test_response_for_an_unknown_id_is_dropped_and_call_stays_outstanding(elements):
    ep = busy_endpoint()
    r = ep.receive(frame(*elements), T0 + 1)
    assert isinstance(r, Dropped) and "someone-else" in r.reason or OUT_ID.upper() in r.reason
    assert ep.busy
    assert isinstance(ep.receive(frame(3, OUT_ID, HEARTBEAT_RESULT), T0 + 2), CallResultReceived)


def test_response_without_outstanding_call_is_dropped():
    ep = endpoint()
    assert isinstance(ep.receive(frame(3, "x", {}), T0), Dropped)
    assert isinstance(ep.receive(frame(4, "x", "GenericError", "", {}), T0), Dropped)


@pytest.mark.parametrize(
    "text",
    [
        "[3]", "[4]", '[3, 5, {}]', '[4, null, "GenericError", "", {}]', '[3, "%s", {}]' % ("x" * 37),
        '[3, ""]', '[4, "", 1, 2, 3]', '[3,"zz",{', '[4,"zz","GenericError"', "[ 4 , ", '[3,"' + "y" * 50,
    ],
)
def test_malformed_responses_are_never_answered(text):
    """No CALLERROR for a CALLRESULT/CALLERROR, however broken (no error ping-pong)."""
    for ep in (endpoint(), busy_endpoint()):
        r = ep.receive(text, T0)
        assert isinstance(r, Dropped), r


def test_timeout_with_injected_clock():
    ep = busy_endpoint(message_timeout=30.0)
    assert ep.next_deadline() == T0 + 30.0
    assert ep.check_timeout(T0 + 29.999) is None and ep.busy
    ep.message_timeout = 10.0  # OCPPCommCtrlr.MessageTimeout changed: applies to the outstanding call
    assert ep.next_deadline() == T0 + 10.0
    r = ep.check_timeout(T0 + 10.0)
    assert r == CallTimedOut(OUT_ID, "Heartbeat", m.HeartbeatRequest())
    assert not ep.busy and ep.next_deadline() is None and ep.check_timeout(T0 + 100) is None
    # the late answer is dropped, the next call goes out
    assert isinstance(ep.receive(frame(3, OUT_ID, HEARTBEAT_RESULT), T0 + 11), Dropped)
    ep.send_call(m.HeartbeatRequest(), T0 + 12)
    assert ep.next_deadline() == T0 + 22.0


def test_idle_endpoint_has_no_deadline():
    ep = endpoint()
    assert not ep.busy and ep.next_deadline() is None and ep.check_timeout(1e12) is None
    assert ep.connection_lost() is None


def test_connection_lost_returns_the_request_for_a_resend():
    ep = busy_endpoint()
    assert ep.connection_lost() == (OUT_ID, m.HeartbeatRequest())
    assert not ep.busy and ep.connection_lost() is None
    assert isinstance(ep.receive(frame(3, OUT_ID, HEARTBEAT_RESULT), T0), Dropped)
    assert json.loads(ep.send_call(m.HeartbeatRequest(), T0))[1] == "out-0002"


def test_default_message_ids_are_unique_uuids():
    ep = endpoint()
    seen = set()
    for _ in range(3000):
        mid = json.loads(ep.send_call(m.HeartbeatRequest(), T0))[1]
        assert isinstance(mid, str) and len(mid) == 36 and str(uuid.UUID(mid)) == mid
        seen.add(mid)
        ep.connection_lost()
    assert len(seen) == 3000


# =========================================================================== frames we answer with


def test_result_frame_is_a_callresult_the_ocpp_package_accepts():
    ep = endpoint()
    call = ep.receive(frame(2, "g-1", "GetVariables", GET_VARIABLES), T0)
    response = m.GetVariablesResponse(get_variable_result=[m.GetVariableResult(
        attribute_status=m.GetVariableStatus.Accepted, attribute_value="300",
        component=m.Component(name="OCPPCommCtrlr"), variable=m.Variable(name="HeartbeatInterval"))])
    text = ep.result_frame(call.message_id, response)
    assert isinstance(text, str)
    result = ocpp_messages.unpack(text)
    assert isinstance(result, ocpp_messages.CallResult) and result.unique_id == "g-1"
    result.action = "GetVariables"
    ocpp_messages._validate_payload(result, "2.0.1")


def test_error_frame_shape():
    ep = endpoint()
    text = ep.error_frame("e-1", E.NotSupported, "x" * 1000)
    parsed = json.loads(text)
    assert parsed == [4, "e-1", "NotSupported", "x" * 255, {}]
    assert json.loads(ep.error_frame('q"\\', "GenericError", details={"a": [1]})) == [4, 'q"\\', "GenericError", "", {"a": [1]}]
    err = ocpp_messages.unpack(text)
    assert isinstance(err, ocpp_messages.CallError) and err.error_code == "NotSupported"


# =========================================================================== properties

RESULT_TYPES = (IncomingCall, CallResultReceived, CallErrorReceived, Reply, Dropped)
BOUNDED = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_leaf = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
WIRE_NAMES = sorted({
    "getVariableData", "component", "variable", "name", "evse", "id", "type", "evseId", "attributeType",
    "customData", "vendorId", "chargingProfile", "requestedMessage", "data", "setVariableData",
    "attributeValue", "currentTime", "instance", "connectorId", "chargingSchedule", "validFrom",
})


@st.composite
def mutated_payload(draw):
    """A valid payload with one random change somewhere inside (exercises the classification)."""
    action = draw(st.sampled_from(sorted(VALID_PAYLOADS)))
    payload = copy.deepcopy(VALID_PAYLOADS[action])
    node = payload
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys or draw(st.integers(0, 3)) == 0:
            break
        key = draw(st.sampled_from(keys))
        if not isinstance(node[key], (dict, list)) or draw(st.booleans()):
            choice = draw(st.integers(0, 2))
            if choice == 0 and isinstance(node, dict):
                del node[key]
            elif choice == 1 and isinstance(node, dict):
                node[draw(st.sampled_from(WIRE_NAMES) | st.text(max_size=8))] = draw(json_value)
            else:
                node[key] = draw(json_value | st.text(min_size=40, max_size=60))
            break
        node = node[key]
    return action, payload


message_types = st.sampled_from([2, 3, 4]) | st.integers(-3, 10) | st.floats(allow_nan=False) | st.text(max_size=3) | st.none() | st.booleans()
message_ids = (
    st.just(OUT_ID) | st.text(max_size=40) | st.text(min_size=36, max_size=50) | st.integers() | st.none()
    | st.text(alphabet="\"\\\u2028\x00é🚗", max_size=36)
)
actions = st.sampled_from(list(m.ACTIONS) + list(SUPPORTED)) | st.text(max_size=30) | st.integers() | st.none()
payloads = mutated_payload().map(lambda ap: ap[1]) | st.dictionaries(st.sampled_from(WIRE_NAMES) | st.text(max_size=10), json_value, max_size=4) | json_value


@st.composite
def ocpp_like_frames(draw):
    mtype = draw(message_types)
    mid = draw(message_ids)
    if mtype == 2 and draw(st.booleans()):
        action, payload = draw(mutated_payload())
        elements = [mtype, mid, action, payload]
    else:
        elements = [mtype, mid, draw(actions | payloads), draw(payloads), draw(json_value), draw(json_value)]
    length = draw(st.integers(0, 6) | st.just(4) | st.just(3) | st.just(5))
    return elements[:length]


def check_invariants(ep: OcppJEndpoint, result, inbound=None) -> None:
    assert isinstance(result, RESULT_TYPES), result
    if isinstance(result, Reply):
        parsed = reply_of(result)
        if isinstance(inbound, list) and inbound and type(inbound[0]) is int and inbound[0] in (3, 4):
            pytest.fail(f"answered a CALLRESULT/CALLERROR: {inbound!r} -> {result.frame}")
        if (isinstance(inbound, list) and len(inbound) > 1 and type(inbound[0]) is int and inbound[0] == 2
                and isinstance(inbound[1], str) and 0 < len(inbound[1]) <= 36):
            assert parsed[1] == inbound[1]
    if isinstance(result, Dropped):
        assert not result.reason.startswith("internal error"), result.reason
    if isinstance(result, IncomingCall):
        assert result.action in SUPPORTED and isinstance(result.request, m.REQUESTS[result.action])


def check_not_stuck(ep: OcppJEndpoint, result) -> None:
    """After any input, a valid CALLRESULT for the outstanding call still completes it."""
    if isinstance(result, (CallResultReceived, CallErrorReceived)):
        assert result.message_id == OUT_ID and not ep.busy
        return
    assert ep.busy
    done = ep.receive(frame(3, OUT_ID, HEARTBEAT_RESULT), T0 + 1)
    assert isinstance(done, CallResultReceived) and not ep.busy


@BOUNDED
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text):
    ep = busy_endpoint()
    result = ep.receive(text, T0)
    check_invariants(ep, result)
    check_not_stuck(ep, result)


@BOUNDED
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data):
    ep = busy_endpoint()
    result = ep.receive(data, T0)
    check_invariants(ep, result)
    check_not_stuck(ep, result)


@BOUNDED
@given(json_value)
def test_arbitrary_json_never_raises(value):
    ep = busy_endpoint()
    result = ep.receive(json.dumps(value, ensure_ascii=False), T0)
    check_invariants(ep, result, value)
    check_not_stuck(ep, result)


@BOUNDED
@given(ocpp_like_frames(), st.booleans())
def test_ocpp_like_arrays_never_raise_and_keep_the_rules(elements, ascii_only):
    ep = busy_endpoint()
    text = json.dumps(elements, ensure_ascii=ascii_only)
    result = ep.receive(text.encode() if ascii_only else text, T0)
    check_invariants(ep, result, elements)
    if isinstance(result, Reply) and elements and type(elements[0]) is int and elements[0] == 2 and len(elements) == 4:
        code = json.loads(result.frame)[2]
        assert code in {E.RpcFrameworkError, E.NotImplemented, E.NotSupported, E.FormatViolation,
                        E.OccurrenceConstraintViolation, E.TypeConstraintViolation, E.PropertyConstraintViolation}
    check_not_stuck(ep, result)


@BOUNDED
@given(mutated_payload())
def test_mutated_payloads_agree_with_the_official_schema_when_accepted(action_payload):
    """What we accept, the `ocpp` package's JSON-schema validation accepts too
    (null included: it is accepted only where the schema allows it; date-time
    formats are not checked by jsonschema)."""
    action, payload = action_payload
    result = endpoint().receive(frame(2, "h-1", action, payload), T0)
    check_invariants(None, result)
    if isinstance(result, IncomingCall):
        ocpp_messages._validate_payload(ocpp_messages.Call("h-1", action, payload), "2.0.1")
