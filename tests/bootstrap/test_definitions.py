"""The device-model definition files (domain/device_model/definitions/*.json) and their loader."""
from __future__ import annotations

import dataclasses
import json
from importlib import resources
from pathlib import Path

import pytest

from bootstrap.definitions import PACKAGE, DefinitionError, clear_cache, load_definitions, read_definition_files
from domain.device_model import DeviceModel, VariableDef, VariableRef, definitions_loader

# The Required rows of the OCA appendix dm_components_vars.csv, kept in the repository.
REFERENCE_CSV = Path(__file__).parent.parent / "data" / "dm_required_variables.csv"
LIST_TYPES = {"OptionList", "MemberList", "SequenceList"}

# Required=yes rows of the OCA appendix (dm_components_vars.csv) for the components of the
# Core and Advanced Security profiles: (component, variable, instance, dataType).
REQUIRED = [
    ("AlignedDataCtrlr", "Interval", None, "integer"),
    ("AlignedDataCtrlr", "Measurands", None, "MemberList"),
    ("AlignedDataCtrlr", "TxEndedInterval", None, "integer"),
    ("AlignedDataCtrlr", "TxEndedMeasurands", None, "MemberList"),
    ("AuthCtrlr", "AuthorizeRemoteStart", None, "boolean"),
    ("AuthCtrlr", "LocalAuthorizeOffline", None, "boolean"),
    ("AuthCtrlr", "LocalPreAuthorize", None, "boolean"),
    ("ChargingStation", "AvailabilityState", None, "OptionList"),
    ("ChargingStation", "Available", None, "boolean"),
    ("ChargingStation", "SupplyPhases", None, "integer"),
    ("ClockCtrlr", "DateTime", None, "dateTime"),
    ("ClockCtrlr", "TimeSource", None, "SequenceList"),
    ("Connector", "Available", None, "boolean"),
    ("Connector", "ConnectorType", None, "string"),
    ("Connector", "SupplyPhases", None, "integer"),
    ("DeviceDataCtrlr", "BytesPerMessage", "GetReport", "integer"),
    ("DeviceDataCtrlr", "BytesPerMessage", "GetVariables", "integer"),
    ("DeviceDataCtrlr", "BytesPerMessage", "SetVariables", "integer"),
    ("DeviceDataCtrlr", "ItemsPerMessage", "GetReport", "integer"),
    ("DeviceDataCtrlr", "ItemsPerMessage", "GetVariables", "integer"),
    ("DeviceDataCtrlr", "ItemsPerMessage", "SetVariables", "integer"),
    ("EVSE", "AvailabilityState", None, "OptionList"),
    ("EVSE", "Available", None, "boolean"),
    ("EVSE", "Power", None, "decimal"),
    ("EVSE", "SupplyPhases", None, "integer"),
    ("LocalAuthListCtrlr", "BytesPerMessage", None, "integer"),
    ("LocalAuthListCtrlr", "Entries", None, "integer"),
    ("LocalAuthListCtrlr", "ItemsPerMessage", None, "integer"),
    ("OCPPCommCtrlr", "FileTransferProtocols", None, "MemberList"),
    ("OCPPCommCtrlr", "MessageTimeout", "Default", "integer"),
    ("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent", "integer"),
    ("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent", "integer"),
    ("OCPPCommCtrlr", "NetworkConfigurationPriority", None, "string"),
    ("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", None, "integer"),
    ("OCPPCommCtrlr", "OfflineThreshold", None, "integer"),
    ("OCPPCommCtrlr", "ResetRetries", None, "integer"),
    ("OCPPCommCtrlr", "UnlockOnEVSideDisconnect", None, "boolean"),
    ("SampledDataCtrlr", "TxEndedInterval", None, "integer"),
    ("SampledDataCtrlr", "TxEndedMeasurands", None, "MemberList"),
    ("SampledDataCtrlr", "TxStartedMeasurands", None, "MemberList"),
    ("SampledDataCtrlr", "TxUpdatedInterval", None, "integer"),
    ("SampledDataCtrlr", "TxUpdatedMeasurands", None, "MemberList"),
    ("SecurityCtrlr", "CertificateEntries", None, "integer"),
    ("SecurityCtrlr", "OrganizationName", None, "string"),
    ("SecurityCtrlr", "SecurityProfile", None, "integer"),
    ("TxCtrlr", "EVConnectionTimeOut", None, "integer"),
    ("TxCtrlr", "StopTxOnEVSideDisconnect", None, "boolean"),
    ("TxCtrlr", "StopTxOnInvalidId", None, "boolean"),
    ("TxCtrlr", "TxStartPoint", None, "MemberList"),
    ("TxCtrlr", "TxStopPoint", None, "MemberList"),
]
COVERED = {c for c, *_ in REQUIRED} | {"AuthCacheCtrlr"}
# Required by the 2025-01 errata (2.40, 2.45), not marked in the CSV.
ERRATA_REQUIRED = [("OCPPCommCtrlr", "ActiveNetworkProfile", None, "integer"),
                   ("Connector", "AvailabilityState", None, "OptionList")]
# Our data type where the CSV's is a plain one: refinements (a SequenceList of slots is a
# string; the errata says ActiveNetworkProfile is an integer).
REFINED_TYPES = {("OCPPCommCtrlr", "NetworkConfigurationPriority"): "SequenceList"}

# Optional variables that the features of the reference product's PICS (marked Yes) or
# the issue ask for.
FEATURES = [
    ("AuthCtrlr", "MasterPassGroupId", None),                    # C-08
    ("AuthCtrlr", "Enabled", None),
    ("OCPPCommCtrlr", "QueueAllMessages", None),                 # C-21
    ("OCPPCommCtrlr", "HeartbeatInterval", None),
    ("OCPPCommCtrlr", "WebSocketPingInterval", None),            # ORS-16
    ("OCPPCommCtrlr", "RetryBackOffWaitMinimum", None),
    ("OCPPCommCtrlr", "RetryBackOffRandomRange", None),
    ("OCPPCommCtrlr", "RetryBackOffRepeatTimes", None),
    ("AuthCacheCtrlr", "Available", None),                       # C-49
    ("AuthCacheCtrlr", "Enabled", None),
    ("AuthCacheCtrlr", "LifeTime", None),                        # C-53
    ("AuthCacheCtrlr", "Policy", None),                          # C-54
    ("AuthCacheCtrlr", "Storage", None),
    ("AuthCacheCtrlr", "DisablePostAuthorize", None),
    ("ChargingStation", "AllowNewSessionsPendingFirmwareUpdate", None),   # C-20
    ("TxCtrlr", "TxBeforeAcceptedEnabled", None),
    ("TxCtrlr", "MaxEnergyOnInvalidId", None),
    ("ClockCtrlr", "TimeOffset", None),
    ("ClockCtrlr", "TimeOffset", "NextTransition"),
    ("ClockCtrlr", "TimeZone", None),
    ("ClockCtrlr", "NextTimeOffsetTransitionDateTime", None),    # TC_B_11
    ("ClockCtrlr", "TimeAdjustmentReportingThreshold", None),
    ("DeviceDataCtrlr", "ValueSize", None),
    ("DeviceDataCtrlr", "ReportingValueSize", None),
    ("DeviceDataCtrlr", "ConfigurationValueSize", None),
    ("AlignedDataCtrlr", "SendDuringIdle", None),
    ("AlignedDataCtrlr", "Available", None),
    ("AlignedDataCtrlr", "Enabled", None),
    ("SampledDataCtrlr", "Available", None),
    ("SampledDataCtrlr", "Enabled", None),
    ("SecurityCtrlr", "Identity", None),
    ("SecurityCtrlr", "BasicAuthPassword", None),
    ("SecurityCtrlr", "MaxCertificateChainSize", None),          # ORS-18
    ("LocalAuthListCtrlr", "Available", None),
    ("LocalAuthListCtrlr", "Enabled", None),
    ("LocalAuthListCtrlr", "Storage", None),
    ("LocalAuthListCtrlr", "DisablePostAuthorize", None),
]
EVSE_FEATURES = [("EVSE", "AllowReset", None)]                   # C-13

MEASURAND_LISTS = [("SampledDataCtrlr", "TxStartedMeasurands"), ("SampledDataCtrlr", "TxUpdatedMeasurands"),
                   ("SampledDataCtrlr", "TxEndedMeasurands"), ("AlignedDataCtrlr", "Measurands"),
                   ("AlignedDataCtrlr", "TxEndedMeasurands")]


def load(evse_connectors=(1,), **kw) -> list[VariableDef]:
    args = {"station_id": "CS-1", "security_profile": 1, **kw}
    return load_definitions(list(evse_connectors), **args)


def by_ref(defs) -> dict[VariableRef, VariableDef]:
    return {d.ref: d for d in defs}


def station_keys(defs) -> set[tuple[str, str, str | None]]:
    return {(d.ref.component, d.ref.variable, d.ref.variable_instance) for d in defs}


# ----------------------------------------------------------------------------- coverage

def test_the_required_list_is_the_reference_csv():
    rows = [line.split(";") for line in REFERENCE_CSV.read_text(encoding="utf-8").splitlines()
            if not line.startswith("#")]
    csv = sorted((r[0], r[1], r[2] or None) for r in rows if r[0] in COVERED)
    assert csv == sorted(r[:3] for r in REQUIRED)


@pytest.mark.parametrize("component, variable, instance, data_type", REQUIRED + ERRATA_REQUIRED)
def test_every_required_variable_is_defined(component, variable, instance, data_type):
    defs = load([1, 2])
    found = [d for d in defs if (d.ref.component, d.ref.variable, d.ref.variable_instance)
             == (component, variable, instance)]
    assert found, f"{component}.{variable}[{instance}] missing"
    expected = REFINED_TYPES.get((component, variable), data_type)
    assert {d.data_type for d in found} <= {expected, *(("passwordString", "identifierString")
                                                        if expected == "string" else ())}
    where = {(d.ref.evse, d.ref.connector) for d in found}
    if component == "EVSE":
        assert where == {(1, None), (2, None)}
    elif component == "Connector":
        assert where == {(1, 1), (2, 1), (2, 2)}
    else:
        assert where == {(None, None)}


def test_the_variables_the_pics_features_need_are_defined():
    keys = station_keys(load())
    missing = [f for f in FEATURES + EVSE_FEATURES if f not in keys]
    assert missing == []


def test_what_the_station_reads_exists_with_its_mutability():
    d = by_ref(load())
    ro = {VariableRef("OCPPCommCtrlr", "MessageTimeout", variable_instance="Default"),
          VariableRef("SecurityCtrlr", "SecurityProfile"), VariableRef("SecurityCtrlr", "Identity"),
          VariableRef("ClockCtrlr", "DateTime"), VariableRef("ChargingStation", "AvailabilityState"),
          VariableRef("EVSE", "AvailabilityState", evse=1),
          VariableRef("Connector", "AvailabilityState", evse=1, connector=1)}
    rw = {VariableRef("OCPPCommCtrlr", n) for n in (
        "HeartbeatInterval", "WebSocketPingInterval", "RetryBackOffWaitMinimum", "RetryBackOffRandomRange",
        "RetryBackOffRepeatTimes", "OfflineThreshold")} | {VariableRef("ClockCtrlr", "NextTimeOffsetTransitionDateTime")}
    assert {r: d[r].mutability for r in ro} == {r: "ReadOnly" for r in ro}
    assert {r: d[r].mutability for r in rw} == {r: "ReadWrite" for r in rw}
    pw = d[VariableRef("SecurityCtrlr", "BasicAuthPassword")]
    assert (pw.data_type, pw.mutability, pw.min_limit) == ("passwordString", "WriteOnly", 16)
    assert pw.max_limit >= 40
    assert d[VariableRef("ClockCtrlr", "NextTimeOffsetTransitionDateTime")].data_type == "dateTime"


def test_the_device_model_accepts_them_for_several_layouts():
    for layout in ([1], [1, 2], [2, 1, 1], [4] * 8):
        dm = DeviceModel(load(layout))
        assert dm.get_int("DeviceDataCtrlr", "ItemsPerMessage", "GetVariables") >= 20


# ----------------------------------------------------------------------------- values

def test_list_variables_have_a_values_list_holding_their_default():
    for d in load([1, 2]):
        if d.data_type not in LIST_TYPES:
            assert d.values_list == (), d.ref
            continue
        assert d.values_list and all(d.values_list), d.ref
        if d.default is None:
            # only values the station computes at run time (TC_B_53 reads them then)
            assert d.mutability == "ReadOnly" and not d.persistent, d.ref
            continue
        items = d.default.split(",") if d.data_type != "OptionList" else [d.default]
        assert items and set(items) <= set(d.values_list), d.ref


def test_every_default_passes_its_own_check():
    for d in load([2, 1], basic_auth_password="0123456789abcdefXYZ"):
        for attr, value in (("Actual", d.default), *d.attribute_defaults):
            if value is not None:
                assert d.check(value) is None, (d.ref, attr, value)


def test_measurand_lists_offer_the_meter_s_measurands():
    d = by_ref(load())
    lists = {d[VariableRef(c, v)].values_list for c, v in MEASURAND_LISTS}
    assert len(lists) == 1
    [values] = lists
    assert {"Energy.Active.Import.Register", "Current.Import", "Power.Active.Import", "Voltage", "SoC"} <= set(values)
    assert all(d[VariableRef(c, v)].data_type == "MemberList" for c, v in MEASURAND_LISTS)


def test_tx_points_exclude_data_signed():
    d = by_ref(load())
    for v in ("TxStartPoint", "TxStopPoint"):
        assert set(d[VariableRef("TxCtrlr", v)].values_list) == {
            "ParkingBayOccupancy", "EVConnected", "Authorized", "PowerPathClosed", "EnergyTransfer"}


def test_limits_and_intervals_beat_the_reference_product():
    d = by_ref(load())
    for i in ("GetReport", "GetVariables", "SetVariables"):
        assert int(d[VariableRef("DeviceDataCtrlr", "ItemsPerMessage", variable_instance=i)].default) >= 20
        assert int(d[VariableRef("DeviceDataCtrlr", "BytesPerMessage", variable_instance=i)].default) >= 2000
    for ref in (VariableRef("SampledDataCtrlr", "TxUpdatedInterval"), VariableRef("AlignedDataCtrlr", "Interval")):
        v = d[ref]
        assert (v.min_limit, v.max_limit, v.unit) == (0, 86400, "s")
        assert v.check("1") is None and v.check("86400") is None and v.check("86401") is not None
    mai = d[VariableRef("OCPPCommCtrlr", "MessageAttemptInterval", variable_instance="TransactionEvent")]
    assert mai.min_limit <= 3 and mai.max_limit >= 30                        # ORS-7, ORS-8
    hb = d[VariableRef("OCPPCommCtrlr", "HeartbeatInterval")]
    assert hb.min_limit <= 1 and hb.max_limit >= 10                          # ORS-11, ORS-12
    assert d[VariableRef("OCPPCommCtrlr", "WebSocketPingInterval")].default == "30"   # ORS-16
    assert d[VariableRef("SecurityCtrlr", "CertificateEntries")].max_limit >= 10     # ORS-17
    assert int(d[VariableRef("SecurityCtrlr", "MaxCertificateChainSize")].default) >= 10000  # ORS-18
    assert set(d[VariableRef("AuthCacheCtrlr", "Policy")].values_list) >= {"LRU", "LFU"}


# ----------------------------------------------------------------------------- scopes, placeholders, order

@pytest.mark.parametrize("layout", [[1], [1, 2], [2, 1, 1]])
def test_scopes_expand_to_the_layout(layout):
    defs = load(layout)
    evses = sorted({d.ref.evse for d in defs if d.ref.component == "EVSE"})
    connectors = sorted({(d.ref.evse, d.ref.connector) for d in defs if d.ref.component == "Connector"})
    assert evses == list(range(1, len(layout) + 1))
    assert connectors == [(e, c) for e, n in enumerate(layout, start=1) for c in range(1, n + 1)]
    assert all(d.ref.evse is None and d.ref.connector is None for d in defs
               if d.ref.component not in ("EVSE", "Connector"))
    assert all(d.ref.connector is None for d in defs if d.ref.component == "EVSE")
    per_evse = len([d for d in defs if d.ref.component == "EVSE" and d.ref.evse == 1])
    per_connector = len([d for d in defs if d.ref.component == "Connector" and (d.ref.evse, d.ref.connector) == (1, 1)])
    assert len([d for d in defs if d.ref.component == "EVSE"]) == per_evse * len(layout)
    assert len([d for d in defs if d.ref.component == "Connector"]) == per_connector * sum(layout)


def test_bad_layouts_are_refused():
    for layout in ([0], [1, -1], [True], ["1"]):
        with pytest.raises(ValueError, match="evse_connectors"):
            load(layout)


def test_installation_values_fill_the_placeholders():
    d = by_ref(load(station_id="CP-77", security_profile=3, message_timeout=45,
                    basic_auth_password="0123456789abcdefXYZ"))
    assert d[VariableRef("SecurityCtrlr", "Identity")].default == "CP-77"
    assert d[VariableRef("SecurityCtrlr", "SecurityProfile")].default == "3"
    assert d[VariableRef("OCPPCommCtrlr", "MessageTimeout", variable_instance="Default")].default == "45"
    assert d[VariableRef("SecurityCtrlr", "BasicAuthPassword")].default == "0123456789abcdefXYZ"


def test_a_missing_or_too_short_password_leaves_no_default():
    for pw in (None, "short"):
        d = by_ref(load(basic_auth_password=pw))
        assert d[VariableRef("SecurityCtrlr", "BasicAuthPassword")].default is None


def test_an_installation_value_the_variable_refuses_names_file_and_variable():
    with pytest.raises(DefinitionError) as e:
        load(message_timeout=999999)
    assert e.value.file == "ocpp_comm_ctrlr.json"
    assert e.value.variable == "OCPPCommCtrlr.MessageTimeout[Default]"
    assert "above the maximum" in str(e.value)


def test_order_is_file_name_then_file_order_and_stable():
    defs = load([1, 2])
    assert defs == load([1, 2])
    files = read_definition_files()
    names = [s.file for s in files]
    assert names == sorted(names)
    expected = []
    for s in files:
        n = {"station": 1, "evse": 2, "connector": 3}[s.scope]
        expected += [(s.component, v.name, v.instance) for _ in range(n) for v in s.variables]
    assert [(d.ref.component, d.ref.variable, d.ref.variable_instance) for d in defs] == expected


def test_the_package_data_is_there_and_readable():
    folder = resources.files(PACKAGE)
    jsons = sorted(f.name for f in folder.iterdir() if f.name.endswith(".json"))
    assert {"ocpp_comm_ctrlr.json", "security_ctrlr.json", "clock_ctrlr.json", "tx_ctrlr.json",
            "device_data_ctrlr.json", "sampled_data_ctrlr.json", "aligned_data_ctrlr.json", "auth_ctrlr.json",
            "auth_cache_ctrlr.json", "local_auth_list_ctrlr.json", "charging_station.json", "evse.json",
            "connector.json"} <= set(jsons)
    for name in jsons:
        text = folder.joinpath(name).read_text(encoding="utf-8")
        data = json.loads(text)
        assert text.startswith('{\n  "component": ') and text.endswith("}\n"), name   # 2-space indent
        assert all(set(v) >= {"name", "dataType", "description"} and v["description"] for v in data["variables"]), name


# ----------------------------------------------------------------------------- loader errors

def write(tmp_path: Path, name: str, data) -> Path:
    (tmp_path / name).write_text(data if isinstance(data, str) else json.dumps(data, indent=2), encoding="utf-8")
    return tmp_path


def component(variables, **kw):
    return {"component": kw.pop("component", "TestCtrlr"), **kw, "variables": variables}


def var(name="V", data_type="integer", default="1", **kw):
    return {"name": name, "dataType": data_type, "default": default, **kw}


def load_from(folder: Path, layout=(1,), **kw):
    args = {"station_id": "CS-1", "security_profile": 1, **kw}
    return load_definitions(list(layout), source=folder, **args)


def test_a_small_file_with_every_key(tmp_path):
    write(tmp_path, "x.json", component([
        {"name": "Limit", "instance": "Main", "dataType": "decimal", "unit": "W", "default": "10",
         "mutability": "ReadWrite", "minLimit": 0, "maxLimit": 100.5, "supportsMonitoring": True,
         "attributes": ["Actual", "MaxSet"], "attributeDefaults": {"MaxSet": "${evse_id}0"},
         "persistent": False, "constant": False, "rebootRequired": True, "description": "d"},
        {"name": "Label", "dataType": "string", "default": "E${evse_id}C${connector_id}", "mutability": "ReadOnly"},
        {"name": "Mode", "dataType": "OptionList", "valuesList": ["A", "B"], "default": "B"},
    ], component="Thing", instance="x", scope="connector"))
    write(tmp_path, "README.md", "not read")
    defs = load_from(tmp_path, [1, 2])
    assert [d.ref.key for d in defs] == [
        f"Thing[x]@{e}.{c}/{v}" for e, c in ((1, 1), (2, 1), (2, 2)) for v in ("Limit[Main]", "Label", "Mode")]
    limit = defs[3]
    assert limit == VariableDef(
        VariableRef("Thing", "Limit", "x", "Main", 2, 1), "decimal", "10", "ReadWrite", "W", 0, 100.5, (),
        True, ("Actual", "MaxSet"), (("MaxSet", "20"),), False, False, True, "d")
    assert [d.default for d in defs if d.ref.variable == "Label"] == ["E1C1", "E2C1", "E2C2"]


def test_omitted_keys_take_their_defaults(tmp_path):
    write(tmp_path, "a.json", {"component": "C", "variables": [{"name": "V", "dataType": "boolean"}]})
    [d] = load_from(tmp_path)
    assert d == VariableDef(VariableRef("C", "V"), "boolean")
    assert (d.mutability, d.persistent, d.constant, d.attributes) == ("ReadWrite", True, False, ("Actual",))


BAD = [
    # (file content, where, words in the problem)
    ("{", None, "not valid JSON"),
    ([], None, "expected a JSON object"),
    (component([var()], colour="red"), None, "unknown key 'colour'"),
    ({"variables": [var()]}, None, 'missing key "component"'),
    (component([]), None, "non-empty list"),
    (component([var()], scope="world"), None, '"scope"'),
    (component([var()], component="Bad.Name"), None, '"component"'),
    (component([var(colour=1)]), "TestCtrlr.V", "unknown key 'colour'"),
    (component([{"dataType": "integer"}]), "TestCtrlr.variables[0]", 'missing key "name"'),
    (component([var(data_type="int")]), "TestCtrlr.V", '"dataType"'),
    (component([var(default=1)]), "TestCtrlr.V", '"default": expected a string or null'),
    (component([var(mutability="Sometimes")]), "TestCtrlr.V", '"mutability"'),
    (component([var(unit="seconds")]), "TestCtrlr.V", "unit of measure"),
    (component([var(minLimit="0")]), "TestCtrlr.V", '"minLimit": expected a number'),
    (component([var(minLimit=True)]), "TestCtrlr.V", '"minLimit": expected a number'),
    (component([var(minLimit=5, maxLimit=1, default="3")]), "TestCtrlr.V", "above"),
    (component([var(default="7", maxLimit=5)]), "TestCtrlr.V", "above the maximum"),
    (component([var(persistent="yes")]), "TestCtrlr.V", '"persistent": expected true or false'),
    (component([var(description=5)]), "TestCtrlr.V", '"description": expected a string'),
    (component([var(instance="A"), var(instance="a")]), "TestCtrlr.V[a]", "defined twice"),
    (component([var(data_type="MemberList", default="A")]), "TestCtrlr.V", "valuesList"),
    (component([var(data_type="OptionList", default="C", valuesList=["A", "B"])]), "TestCtrlr.V", "not one of"),
    (component([var(data_type="MemberList", default="A", valuesList=["A", "A"])]), "TestCtrlr.V", "appears twice"),
    (component([var(data_type="MemberList", default="A", valuesList=["A", "B,C"])]), "TestCtrlr.V", "without commas"),
    (component([var(valuesList=["1"])]), "TestCtrlr.V", '"valuesList" is only for'),
    (component([var(attributes=["MaxSet"])]), "TestCtrlr.V", '"attributes"'),
    (component([var(attributeDefaults={"MaxSet": "1"})]), "TestCtrlr.V", '"attributeDefaults"'),
    (component([var(attributes=["Actual", "MaxSet"], attributeDefaults={"MaxSet": 1})]), "TestCtrlr.V",
     '"attributeDefaults.MaxSet": expected a string'),
    (component([var(constant=True)]), "TestCtrlr.V", '"constant": true needs'),
    (component([var(default="${nope}")]), "TestCtrlr.V", "unknown placeholder ${nope}"),
    (component([var(default="${station_id")]), "TestCtrlr.V", "malformed placeholder"),
    (component([var(default="${evse_id}")]), "TestCtrlr.V", 'no value in scope "station"'),
    (component([var(default="${connector_id}")], scope="evse"), "TestCtrlr.V", 'no value in scope "evse"'),
    (component([var(description="${station_id}")]), "TestCtrlr.V", "placeholders are only allowed"),
    ('{"component": "C", "component": "D", "variables": []}', None, "appears twice"),
    ('{"component": "C", "variables": [{"name": "V", "dataType": "decimal", "minLimit": NaN}]}', None,
     "not a JSON number"),
]


@pytest.mark.parametrize("content, where, words", BAD)
def test_loader_errors_name_the_file_and_the_variable(tmp_path, content, where, words):
    write(tmp_path, "a_good.json", component([var()], component="Good"))
    write(tmp_path, "broken.json", content)
    with pytest.raises(DefinitionError) as e:
        load_from(tmp_path)
    assert e.value.file == "broken.json"
    assert e.value.variable == where
    assert words in e.value.problem
    assert str(e.value).startswith("broken.json: ")


def test_a_component_in_two_files_is_an_error(tmp_path):
    write(tmp_path, "a.json", component([var("A")]))
    write(tmp_path, "b.json", component([var("B")], component="testctrlr"))
    with pytest.raises(DefinitionError, match="b.json: component testctrlr is also defined in a.json"):
        load_from(tmp_path)


def test_no_files_is_an_error(tmp_path):
    with pytest.raises(DefinitionError, match="no definition files"):
        load_from(tmp_path)


def test_a_refused_installation_value_is_never_echoed(tmp_path):
    write(tmp_path, "s.json", component([var("P", "passwordString", "${basic_auth_password}",
                                             minLimit=16, mutability="WriteOnly")]))
    with pytest.raises(DefinitionError) as e:
        load_from(tmp_path, basic_auth_password="secret-short")
    assert e.value.variable == "TestCtrlr.P" and "secret" not in str(e.value)
    assert "shorter than 16" in str(e.value)
    [d] = load_from(tmp_path)                       # no password: no default
    assert d.default is None


def test_placeholder_errors_in_scoped_components_name_the_evse(tmp_path):
    write(tmp_path, "e.json", component([var("N", default="${evse_id}", maxLimit=1)], scope="evse"))
    with pytest.raises(DefinitionError) as e:
        load_from(tmp_path, [1, 1])
    assert e.value.variable == "TestCtrlr.N (EVSE 2)"


def test_a_pattern_constrains_string_values(tmp_path):
    write(tmp_path, "x.json", component([var("Offset", "string", "+00:00", pattern="[+-][0-9]{2}:[0-9]{2}")]))
    [d] = load_from(tmp_path)
    assert d.check("-05:30") is None
    assert d.check("+5:30") == "not in the expected format"


@pytest.mark.parametrize("entry, words", [
    (var("N", "integer", "1", pattern="[0-9]+"), "for string variables only"),
    (var("S", "string", "a", pattern="(unclosed"), "not a regular expression"),
    (var("S", "string", "b", pattern="a+"), "default 'b': not in the expected format"),
])
def test_a_bad_pattern_is_a_definition_error(tmp_path, entry, words):
    write(tmp_path, "x.json", component([entry]))
    with pytest.raises(DefinitionError, match=words.replace("(", r"\(")):
        load_from(tmp_path)


# ----------------------------------------------------------------------------- once per process

def test_the_package_files_are_read_and_checked_once_per_process(monkeypatch):
    """Issue 13: definitions loaded once per process, not per boot (a simulator's reboot
    composes the station again, with the same or another layout)."""
    folder = resources.files(PACKAGE)
    n_files = sum(1 for d in (folder, folder.joinpath("hardware")) for f in d.iterdir() if f.name.endswith(".json"))
    parsed: list[str] = []
    real = definitions_loader.parse_definition_file
    monkeypatch.setattr(definitions_loader, "parse_definition_file",
                        lambda file, text: parsed.append(file) or real(file, text))
    clear_cache()
    try:
        first = load([1, 2], parts=("RCD", "Controller"))
        assert len(parsed) == n_files
        assert load([1, 2], parts=("Controller", "RCD")) == first      # the next boot
        load([2], parts=("RCD",))
        load([1, 1], station_id="CS-2", basic_auth_password="0123456789abcdef")
        read_definition_files()
        assert len(parsed) == n_files
    finally:
        clear_cache()


def test_callers_cannot_change_what_is_cached():
    defs, specs = load([1, 2]), read_definition_files()
    expected_defs, expected_specs = list(defs), list(specs)
    defs.clear()
    specs.pop()
    assert load([1, 2]) == expected_defs and load([1, 2]) is not load([1, 2])
    assert read_definition_files() == expected_specs
    with pytest.raises(dataclasses.FrozenInstanceError):
        expected_defs[0].default = "changed"             # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        expected_specs[0].variables = ()                 # type: ignore[misc]
    assert isinstance(expected_specs[0].variables, tuple)


def test_a_source_folder_is_read_at_every_call(tmp_path):
    write(tmp_path, "x.json", component([var(default="1")]))
    assert load_from(tmp_path)[0].default == "1"
    write(tmp_path, "x.json", component([var(default="2")]))
    assert load_from(tmp_path)[0].default == "2"
