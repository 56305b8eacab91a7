"""Device-model reports (B07 GetBaseReport, B08 GetReport): selection, ReportData and
NotifyReport paging. Pure and fast."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import messages as m
from domain.device_model import DeviceModel, VariableDef, VariableRef
from domain.device_model.reports import (
    MAX_VALUE,
    check_request_limits,
    join_values_list,
    paginate,
    paginate_sized,
    report_data,
    report_entries,
    select_base,
    select_custom,
)
from domain.ocppj import OcppJEndpoint

T = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
STATES = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")
RO = {"mutability": "ReadOnly"}


def v(component, variable, data_type, default=None, *, ci=None, vi=None, evse=None, connector=None, **kw):
    return VariableDef(VariableRef(component, variable, ci, vi, evse, connector), data_type, default, **kw)


def definitions(extra=()):
    return [
        v("ChargingStation", "AvailabilityState", "OptionList", "Available", values_list=STATES, **RO),
        v("ChargingStation", "Available", "boolean", "true", **RO),
        v("ChargingStation", "Problem", "boolean", "false", **RO),
        # EVSE 1: fine; a Power with a MaxSet attribute (ReadOnly Actual, ReadWrite MaxSet)
        v("EVSE", "AvailabilityState", "OptionList", "Available", evse=1, values_list=STATES, **RO),
        v("EVSE", "Available", "boolean", "true", evse=1, **RO),
        v("EVSE", "Enabled", "boolean", "true", evse=1, **RO),
        v("EVSE", "Problem", "boolean", "false", evse=1, **RO),
        v("EVSE", "Power", "decimal", "11000", evse=1, unit="W", min_limit=0, max_limit=22000,
          attributes=("Actual", "MaxSet"), attribute_defaults=(("MaxSet", "22000"),), supports_monitoring=True, **RO),
        v("Connector", "AvailabilityState", "OptionList", "Available", evse=1, connector=1, values_list=STATES, **RO),
        v("Connector", "Available", "boolean", "true", evse=1, connector=1, **RO),
        v("Connector", "AvailabilityState", "OptionList", "Occupied", evse=1, connector=2, values_list=STATES, **RO),
        # EVSE 2: disabled and tripped
        v("EVSE", "AvailabilityState", "OptionList", "Faulted", evse=2, values_list=STATES, **RO),
        v("EVSE", "Available", "boolean", "true", evse=2, **RO),
        v("EVSE", "Enabled", "boolean", "false", evse=2, **RO),
        v("EVSE", "Problem", "boolean", "true", evse=2, **RO),
        v("EVSE", "Tripped", "boolean", "true", evse=2, **RO),
        v("EVSE", "Overload", "boolean", "false", evse=2, **RO),
        v("EVSE", "Power", "decimal", "0", evse=2, unit="W", **RO),
        v("Connector", "AvailabilityState", "OptionList", None, evse=2, connector=1, values_list=STATES, **RO),
        # controllers
        v("OCPPCommCtrlr", "HeartbeatInterval", "integer", "300", unit="s", min_limit=1, max_limit=86400),
        v("OCPPCommCtrlr", "FileTransferProtocols", "MemberList", "HTTP,HTTPS",
          values_list=("HTTP", "HTTPS", "FTP", "FTPS"), **RO),
        v("OCPPCommCtrlr", "MessageTimeout", "integer", "30", vi="Default", unit="s", **RO),
        v("ClockCtrlr", "TimeSource", "SequenceList", "Heartbeat", values_list=("Heartbeat", "NTP")),
        v("SecurityCtrlr", "BasicAuthPassword", "passwordString", "0123456789abcdef",
          mutability="WriteOnly", min_limit=16, max_limit=40),
        v("SecurityCtrlr", "Identity", "identifierString", "CS-1", max_limit=48, constant=True, **RO),
        *(v("DeviceDataCtrlr", "ItemsPerMessage", "integer", "20", vi=i, **RO)
          for i in ("GetReport", "GetVariables", "SetVariables")),
        v("AuthCtrlr", "Enabled", "boolean", "true"),
        v("LocalAuthListCtrlr", "Available", "boolean", "true", **RO),
        v("LocalAuthListCtrlr", "Enabled", "boolean", "false"),
        v("ReservationCtrlr", "Available", "boolean", "false", **RO),
        v("Display", "Active", "boolean", "true", ci="Main", **RO),
        v("Display", "DataText", "string", "hello", ci="Main", max_limit=5000),
        v("Display", "Active", "boolean", "false", ci="Aux", **RO),
        v("Display", "DataText", "string", "", ci="Aux", max_limit=5000),
        v("FiscalMetering", "Fallback", "boolean", "true", **RO),
        v("FiscalMetering", "Problem", "boolean", "false", **RO),
        v("FiscalMetering", "Fallback", "boolean", "false", vi="Secondary", **RO),
        *extra,
    ]


def model(extra=(), stored=()):
    return DeviceModel(definitions(extra), dict(stored))


def keys(defs):
    return [d.ref.key for d in defs]


def cv(name, variable=None, *, instance=None, evse=None, connector=None, vinstance=None):
    return m.ComponentVariable(
        component=m.Component(name=name, instance=instance,
                              evse=m.EVSE(id=evse, connector_id=connector) if evse is not None else None),
        variable=m.Variable(name=variable, instance=vinstance) if variable else None,
    )


def wire(x):
    return json.loads(msgspec.json.encode(x))


# ----------------------------------------------------------------------------- report_data

def test_report_data_component_variable_attributes_and_characteristics():
    dm = model()
    rd = report_data(dm, dm.definition(VariableRef("EVSE", "Power", evse=1)), 0.0)
    assert wire(rd) == {
        "component": {"name": "EVSE", "evse": {"id": 1}},
        "variable": {"name": "Power"},
        "variableAttribute": [
            {"type": "Actual", "value": "11000", "mutability": "ReadOnly", "persistent": True, "constant": False},
            {"type": "MaxSet", "value": "22000", "mutability": "ReadWrite", "persistent": True, "constant": False},
        ],
        "variableCharacteristics": {"unit": "W", "dataType": "decimal", "minLimit": 0.0, "maxLimit": 22000.0,
                                    "supportsMonitoring": True},
    }
    rd = report_data(dm, dm.definition(VariableRef("Connector", "AvailabilityState", evse=1, connector=2)), 0.0)
    assert wire(rd)["component"] == {"name": "Connector", "evse": {"id": 1, "connectorId": 2}}
    assert rd.variable_characteristics.values_list == "Available,Occupied,Reserved,Unavailable,Faulted"
    assert rd.variable_characteristics.data_type == "OptionList"
    rd = report_data(dm, dm.definition(VariableRef("Display", "DataText", "Main")), 0.0)
    assert wire(rd)["component"] == {"name": "Display", "instance": "Main"}
    rd = report_data(dm, dm.definition(VariableRef("OCPPCommCtrlr", "MessageTimeout", variable_instance="Default")), 0)
    assert wire(rd)["variable"] == {"name": "MessageTimeout", "instance": "Default"}


def test_write_only_value_is_omitted_and_password_is_a_string():
    dm = model()
    rd = report_data(dm, dm.definition(VariableRef("SecurityCtrlr", "BasicAuthPassword")), 0.0)
    [attr] = wire(rd)["variableAttribute"]
    assert attr == {"type": "Actual", "mutability": "WriteOnly", "persistent": True, "constant": False}
    assert rd.variable_characteristics.data_type == "string"
    rd = report_data(dm, dm.definition(VariableRef("SecurityCtrlr", "Identity")), 0.0)
    assert rd.variable_characteristics.data_type == "string"
    assert rd.variable_attribute[0].constant is True


def test_unset_value_reads_as_empty_string():
    dm = model()
    rd = report_data(dm, dm.definition(VariableRef("Connector", "AvailabilityState", evse=2, connector=1)), 0.0)
    assert rd.variable_attribute[0].value == ""


def test_computed_value_is_read_at_now():
    dm = model()
    dm.provide(VariableRef("EVSE", "Power", evse=2), lambda now: f"{now:g}")
    rd = report_data(dm, dm.definition(VariableRef("EVSE", "Power", evse=2)), 42.0)
    assert rd.variable_attribute[0].value == "42"


def test_values_are_truncated_to_the_schema_and_to_reporting_value_size():
    long = "x" * 3000
    ref = VariableRef("Display", "DataText", "Main")
    dm = model(stored={(ref.key, "Actual"): long})
    assert report_data(dm, dm.definition(ref), 0.0).variable_attribute[0].value == "x" * MAX_VALUE
    size = v("DeviceDataCtrlr", "ReportingValueSize", "integer", "100", **RO)
    dm = model([size], stored={(ref.key, "Actual"): long})
    assert report_data(dm, dm.definition(ref), 0.0).variable_attribute[0].value == "x" * 100
    unset = v("DeviceDataCtrlr", "ReportingValueSize", "integer", None, **RO)
    dm = model([unset], stored={(ref.key, "Actual"): long})
    assert report_data(dm, dm.definition(ref), 0.0).variable_attribute[0].value == "x" * MAX_VALUE
    both = [v("DeviceDataCtrlr", "ReportingValueSize", "integer", "100", **RO),
            v("DeviceDataCtrlr", "ValueSize", "integer", "50", **RO)]
    dm = model(both, stored={(ref.key, "Actual"): long})
    assert report_data(dm, dm.definition(ref), 0.0).variable_attribute[0].value == "x" * 50
    # the truncated entry still validates
    msgspec.json.decode(msgspec.json.encode(report_data(dm, dm.definition(ref), 0.0)), type=m.ReportData)


def test_long_values_list_drops_whole_items():
    items = tuple(f"Item{i:03d}" for i in range(200))          # 7 chars each: 1599 characters joined
    d = v("X", "L", "MemberList", "Item000", values_list=items)
    dm = model([d])
    got = report_data(dm, d, 0.0).variable_characteristics.values_list
    assert len(got) <= 1000 and got == ",".join(items[:125])    # 125*7 + 124 = 999
    msgspec.json.decode(msgspec.json.encode(report_data(dm, d, 0.0)), type=m.ReportData)
    assert join_values_list(("ab", "cd"), 5) == "ab,cd"
    assert join_values_list(("ab", "cd"), 4) == "ab"
    assert join_values_list(("abcdef",), 4) == "abcd"
    limit = v("DeviceDataCtrlr", "ConfigurationValueSize", "integer", "20", **RO)
    dm = model([d, limit])
    assert report_data(dm, d, 0.0).variable_characteristics.values_list == "Item000,Item001"


def test_report_entries_equals_report_data_per_definition():
    dm = model()
    assert report_entries(dm, dm.definitions(), 3.0) == [report_data(dm, d, 3.0) for d in dm.definitions()]


# ----------------------------------------------------------------------------- base reports

def test_full_inventory_is_everything_in_order():
    dm = model()
    assert keys(select_base(dm, "FullInventory", 0.0)) == keys(dm.definitions())


def test_configuration_inventory_has_writable_variables_only():
    dm = model()
    got = keys(select_base(dm, m.ReportBase.ConfigurationInventory, 0.0))
    assert got == [
        "EVSE@1/Power",                          # its MaxSet is ReadWrite
        "OCPPCommCtrlr/HeartbeatInterval",
        "ClockCtrlr/TimeSource",
        "SecurityCtrlr/BasicAuthPassword",       # WriteOnly
        "AuthCtrlr/Enabled",
        "LocalAuthListCtrlr/Enabled",
        "Display[Main]/DataText",
        "Display[Aux]/DataText",
    ]
    entries = report_entries(dm, select_base(dm, "ConfigurationInventory", 0.0), 0.0)
    assert all(any(a.mutability in ("ReadWrite", "WriteOnly") for a in e.variable_attribute) for e in entries)


def test_summary_inventory():
    dm = model()
    assert keys(select_base(dm, "SummaryInventory", 0.0)) == [
        "ChargingStation/AvailabilityState",
        "EVSE@1/AvailabilityState",
        "Connector@1.1/AvailabilityState",
        "Connector@1.2/AvailabilityState",
        "EVSE@2/AvailabilityState",
        "EVSE@2/Problem", "EVSE@2/Tripped", "EVSE@2/Overload",     # EVSE 2 is abnormal
        # Connector 2.1: AvailabilityState unknown -> left out
        "FiscalMetering/Fallback", "FiscalMetering/Problem", "FiscalMetering/Fallback[Secondary]",
    ]
    # once the problem is gone, only the availability states remain
    dm.write(VariableRef("EVSE", "Problem", evse=2), "false")
    dm.write(VariableRef("EVSE", "Tripped", evse=2), "false")
    dm.write(VariableRef("FiscalMetering", "Fallback"), "false")
    dm.write(VariableRef("Connector", "AvailabilityState", evse=2, connector=1), "Unavailable")
    assert keys(select_base(dm, "SummaryInventory", 0.0)) == [
        "ChargingStation/AvailabilityState", "EVSE@1/AvailabilityState", "Connector@1.1/AvailabilityState",
        "Connector@1.2/AvailabilityState", "EVSE@2/AvailabilityState", "Connector@2.1/AvailabilityState",
    ]
    # a keyed abnormal variable also makes the component abnormal
    dm.write(VariableRef("FiscalMetering", "Fallback", variable_instance="Secondary"), "true")
    assert "FiscalMetering/Problem" in keys(select_base(dm, "SummaryInventory", 0.0))


def test_unknown_base_is_not_supported():
    assert select_base(model(), "EverythingInventory", 0.0) is None


@pytest.mark.parametrize("base", list(m.ReportBase))
def test_every_base_report_pages_into_valid_messages(base):
    dm = model()
    entries = report_entries(dm, select_base(dm, base, 0.0), 0.0)
    msgs = paginate(7, entries, T, items_per_message=4, bytes_per_message=2000)
    check_pages(msgs, entries, 4, 2000, request_id=7)
    for e in (e for msg in msgs for e in msg.report_data):
        if e.variable_characteristics.data_type in ("OptionList", "SequenceList", "MemberList"):
            assert e.variable_characteristics.values_list


# ----------------------------------------------------------------------------- custom reports

def custom(dm, cvs=None, criteria=None):
    return keys(select_custom(dm, cvs, criteria, 0.0))


def test_component_and_variable_with_evse():           # TC_B_17
    assert custom(model(), [cv("EVSE", "AvailabilityState", evse=1)]) == ["EVSE@1/AvailabilityState"]


def test_component_without_variable_gives_all_its_variables():
    assert custom(model(), [cv("EVSE", evse=1)]) == [
        "EVSE@1/AvailabilityState", "EVSE@1/Available", "EVSE@1/Enabled", "EVSE@1/Problem", "EVSE@1/Power"]


def test_variable_without_instance_gives_all_instances():     # TC_B_54
    assert custom(model(), [cv("DeviceDataCtrlr", "ItemsPerMessage")]) == [
        "DeviceDataCtrlr/ItemsPerMessage[GetReport]", "DeviceDataCtrlr/ItemsPerMessage[GetVariables]",
        "DeviceDataCtrlr/ItemsPerMessage[SetVariables]"]


def test_variable_with_instance_gives_that_instance():        # TC_B_55
    assert custom(model(), [cv("DeviceDataCtrlr", "ItemsPerMessage", vinstance="GetReport")]) == [
        "DeviceDataCtrlr/ItemsPerMessage[GetReport]"]
    assert custom(model(), [cv("DeviceDataCtrlr", "ItemsPerMessage", vinstance="Nope")]) == []


def test_component_without_evse_matches_every_evse():         # TC_B_56
    assert custom(model(), [cv("EVSE", "AvailabilityState")]) == [
        "EVSE@1/AvailabilityState", "EVSE@2/AvailabilityState"]
    assert custom(model(), [cv("Connector", "AvailabilityState")]) == [
        "Connector@1.1/AvailabilityState", "Connector@1.2/AvailabilityState", "Connector@2.1/AvailabilityState"]


def test_evse_without_connector_matches_its_connectors():
    assert custom(model(), [cv("Connector", "AvailabilityState", evse=1)]) == [
        "Connector@1.1/AvailabilityState", "Connector@1.2/AvailabilityState"]
    assert custom(model(), [cv("Connector", "AvailabilityState", evse=1, connector=2)]) == [
        "Connector@1.2/AvailabilityState"]
    assert custom(model(), [cv("EVSE", "AvailabilityState", evse=3)]) == []


def test_component_instance_absent_matches_every_instance_and_names_are_case_insensitive():
    assert custom(model(), [cv("Display", "DataText")]) == ["Display[Main]/DataText", "Display[Aux]/DataText"]
    assert custom(model(), [cv("display", "datatext", instance="AUX")]) == ["Display[Aux]/DataText"]


def test_several_component_variables_report_each_variable_once_in_model_order():
    got = custom(model(), [cv("OCPPCommCtrlr", "HeartbeatInterval"), cv("ChargingStation"),
                           cv("ChargingStation", "Available"), cv("Unknown", "X")])
    assert got == ["ChargingStation/AvailabilityState", "ChargingStation/Available", "ChargingStation/Problem",
                   "OCPPCommCtrlr/HeartbeatInterval"]


def test_unknown_component_or_variable_gives_an_empty_result():
    assert custom(model(), [cv("Nope")]) == []
    assert custom(model(), [cv("EVSE", "Nope", evse=1)]) == []


@pytest.mark.parametrize(("criterion", "expected"), [
    ("Enabled", ["EVSE@1/Enabled", "AuthCtrlr/Enabled"]),                          # TC_B_16
    ("Available", ["ChargingStation/Available", "EVSE@1/Available", "Connector@1.1/Available",
                   "EVSE@2/Available", "LocalAuthListCtrlr/Available"]),
    ("Active", ["Display[Main]/Active"]),
    ("Problem", ["EVSE@2/Problem"]),
])
def test_criteria_alone_report_the_criterion_variables_that_are_true(criterion, expected):
    dm = model()
    assert custom(dm, criteria=[criterion]) == expected
    for d in select_custom(dm, None, [m.ComponentCriterion(criterion)], 0.0):
        assert d.ref.variable == criterion and dm.value(d.ref) == "true"


def test_several_criteria_alone():
    assert custom(model(), criteria=["Problem", "Active"]) == ["EVSE@2/Problem", "Display[Main]/Active"]


def test_criteria_and_component_variables_intersect():        # TC_B_18
    dm = model()
    assert custom(dm, [cv("EVSE", "AvailabilityState", evse=1)], ["Available"]) == ["EVSE@1/AvailabilityState"]
    assert custom(dm, [cv("EVSE", "AvailabilityState", evse=1)], ["Problem"]) == []    # -> EmptyResultSet
    assert custom(dm, [cv("EVSE", "AvailabilityState")], ["Problem"]) == ["EVSE@2/AvailabilityState"]
    assert custom(dm, [cv("EVSE", "AvailabilityState")], ["Enabled"]) == ["EVSE@1/AvailabilityState"]
    assert custom(dm, [cv("EVSE", "AvailabilityState")], ["Enabled", "Problem"]) == [
        "EVSE@1/AvailabilityState", "EVSE@2/AvailabilityState"]                       # any criterion
    assert custom(dm, [cv("Display")], ["Active"]) == ["Display[Main]/Active", "Display[Main]/DataText"]


def test_components_without_the_criterion_variable():
    dm = model()
    hb = [cv("OCPPCommCtrlr", "HeartbeatInterval")]                # no Available/Enabled/Active/Problem
    assert custom(dm, hb, ["Available"]) == ["OCPPCommCtrlr/HeartbeatInterval"]
    assert custom(dm, hb, ["Enabled"]) == ["OCPPCommCtrlr/HeartbeatInterval"]
    assert custom(dm, hb, ["Active"]) == []
    assert custom(dm, hb, ["Problem"]) == []
    # Enabled absent follows Available
    assert custom(dm, [cv("ReservationCtrlr")], ["Enabled"]) == []
    assert custom(dm, [cv("ReservationCtrlr")], ["Available"]) == []
    # Enabled present and false wins over Available true
    assert custom(dm, [cv("LocalAuthListCtrlr")], ["Enabled"]) == []
    assert custom(dm, [cv("LocalAuthListCtrlr")], ["Available"]) == [
        "LocalAuthListCtrlr/Available", "LocalAuthListCtrlr/Enabled"]


def test_neither_selection_reports_everything():
    dm = model()
    assert custom(dm) == keys(dm.definitions())


# ----------------------------------------------------------------------------- paging

def real_frame(msg: m.NotifyReportRequest) -> bytes:
    """The CALL frame exactly as the station sends it (which also validates the schema)."""
    endpoint = OcppJEndpoint(supported_actions=(), new_message_id=lambda: str(uuid.uuid4()))
    frame = endpoint.send_call(msg, 0.0).encode()
    assert frame.startswith(b'[2,"') and frame[40:57] == b'","NotifyReport",'
    return frame


def check_pages(msgs, entries, items, limit, request_id=1, generated_at=T):
    assert [x.seq_no for x in msgs] == list(range(len(msgs)))
    assert [x.tbc for x in msgs] == [True] * (len(msgs) - 1) + [False]
    assert [e for x in msgs for e in x.report_data] == list(entries)
    for x in msgs:
        assert x.request_id == request_id and x.generated_at == generated_at
        assert msgspec.json.decode(msgspec.json.encode(x), type=m.NotifyReportRequest) == x
        assert 1 <= len(x.report_data) and (items <= 0 or len(x.report_data) <= items)
        if limit > 0 and len(real_frame(x)) > limit:
            assert len(x.report_data) == 1                          # an oversized entry, alone
    for k, x in enumerate(msgs[:-1]):     # greedy: the next entry would not have fitted
        nxt = msgs[k + 1].report_data[0]
        final = k + 1 == len(msgs) - 1 and len(msgs[k + 1].report_data) == 1
        grown = m.NotifyReportRequest(request_id=x.request_id, generated_at=x.generated_at,
                                      report_data=[*x.report_data, nxt], tbc=not final, seq_no=x.seq_no)
        assert (0 < items <= len(x.report_data)) or len(real_frame(grown)) > limit


def entry(text: str, evse: int = 1) -> m.ReportData:
    return m.ReportData(
        component=m.Component(name="EVSE", evse=m.EVSE(id=evse)),
        variable=m.Variable(name="DataText"),
        variable_attribute=[m.VariableAttribute(type=m.Attribute.Actual, value=text,
                                                mutability=m.Mutability.ReadWrite)],
        variable_characteristics=m.VariableCharacteristics(data_type=m.Data.string, supports_monitoring=False),
    )


def frame_len(entries, seq_no=0, tbc=False):
    return len(real_frame(m.NotifyReportRequest(request_id=1, generated_at=T, report_data=list(entries),
                                                tbc=tbc, seq_no=seq_no)))


def test_computed_sizes_equal_the_real_frames():
    entries = [entry("é" * i + "x", evse=i + 1) for i in range(30)]            # multi-byte characters
    for items, limit in ((0, 0), (3, 0), (0, 700), (5, 900), (1, 1)):
        sized = paginate_sized(1, entries, T, items_per_message=items, bytes_per_message=limit)
        for msg, size in sized:
            assert size == len(real_frame(msg))


def test_item_limit_exactly():
    entries = [entry(str(i)) for i in range(6)]
    msgs = paginate(1, entries, T, items_per_message=3, bytes_per_message=0)
    assert [len(x.report_data) for x in msgs] == [3, 3]
    msgs = paginate(1, entries, T, items_per_message=2, bytes_per_message=0)
    assert [len(x.report_data) for x in msgs] == [2, 2, 2]
    msgs = paginate(1, entries, T, items_per_message=6, bytes_per_message=0)
    assert [len(x.report_data) for x in msgs] == [6] and msgs[0].tbc is False
    msgs = paginate(1, entries, T, items_per_message=5, bytes_per_message=0)
    assert [len(x.report_data) for x in msgs] == [5, 1]
    check_pages(msgs, entries, 5, 0)


def test_byte_limit_exactly():
    entries = [entry("a" * 50) for _ in range(4)]
    exact = frame_len(entries[:2], tbc=False)
    msgs = paginate(1, entries[:2], T, items_per_message=0, bytes_per_message=exact)
    assert [len(x.report_data) for x in msgs] == [2]
    assert len(real_frame(msgs[0])) == exact
    msgs = paginate(1, entries[:2], T, items_per_message=0, bytes_per_message=exact - 1)
    assert [len(x.report_data) for x in msgs] == [1, 1]
    # a non-last message carries "tbc":true, one byte shorter than "tbc":false
    exact_more = frame_len(entries[:2], tbc=True)
    assert exact_more == exact - 1
    msgs = paginate(1, entries, T, items_per_message=0, bytes_per_message=exact_more)
    assert [len(x.report_data) for x in msgs] == [2, 1, 1]      # the last pair would need one more byte
    assert len(real_frame(msgs[0])) == exact_more
    msgs = paginate(1, entries, T, items_per_message=0, bytes_per_message=exact)
    assert [len(x.report_data) for x in msgs] == [2, 2]
    check_pages(msgs, entries, 0, exact)
    msgs = paginate(1, entries, T, items_per_message=0, bytes_per_message=exact + 1)
    assert [len(x.report_data) for x in msgs] == [2, 2]


def test_oversized_entry_goes_alone():
    small, big = entry("s"), entry("b" * 2000)
    limit = frame_len([small, small, small], tbc=False) + 10
    entries = [small, small, big, small, big]
    msgs = paginate(1, entries, T, items_per_message=10, bytes_per_message=limit)
    assert [len(x.report_data) for x in msgs] == [2, 1, 1, 1]
    assert msgs[1].report_data == [big] and len(real_frame(msgs[1])) > limit
    check_pages(msgs, entries, 10, limit)
    msgs = paginate(1, [big], T, items_per_message=1, bytes_per_message=100)
    assert len(msgs) == 1 and msgs[0].tbc is False and msgs[0].seq_no == 0


def test_many_entries_and_two_digit_sequence_numbers():
    entries = [entry(f"value {i}", evse=i + 1) for i in range(150)]
    msgs = paginate(9, entries, T, items_per_message=1, bytes_per_message=frame_len(entries[:1], seq_no=99))
    assert len(msgs) == 150
    assert [x.seq_no for x in msgs] == list(range(150))
    check_pages(msgs, entries, 1, frame_len(entries[:1], seq_no=99), request_id=9)


def test_empty_report_is_never_paginated():
    with pytest.raises(ValueError):
        paginate(1, [], T, items_per_message=10, bytes_per_message=1000)


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(texts, min_size=1, max_size=25),
       items=st.integers(min_value=0, max_value=8),
       limit=st.one_of(st.just(0), st.integers(min_value=150, max_value=2500)),
       request_id=st.integers(min_value=0, max_value=2**31 - 1),
       micros=st.integers(min_value=0, max_value=999_999))
def test_paging_properties(values, items, limit, request_id, micros):
    at = T.replace(microsecond=micros)
    entries = [entry(t, evse=i + 1) for i, t in enumerate(values)]
    sized = paginate_sized(request_id, entries, at, items_per_message=items, bytes_per_message=limit)
    msgs = [x for x, _ in sized]
    for x, size in sized:
        assert size == len(real_frame(x))
    check_pages(msgs, entries, items, limit, request_id=request_id, generated_at=at)


# ----------------------------------------------------------------------------- request limits

def test_request_limits():
    assert check_request_limits(20, 2000, items_limit=20, bytes_limit=2000) is None
    assert check_request_limits(21, 100, items_limit=20, bytes_limit=2000)[0] == "OccurrenceConstraintViolation"
    code, text = check_request_limits(1, 2001, items_limit=20, bytes_limit=2000)
    assert code == "FormatViolation" and "\n" not in text and "2001" in text
    assert check_request_limits(21, 2001, items_limit=20, bytes_limit=2000)[0] == "OccurrenceConstraintViolation"
    assert check_request_limits(10**6, 10**9, items_limit=0, bytes_limit=0) is None
