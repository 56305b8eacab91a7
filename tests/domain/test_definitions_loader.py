"""domain.device_model.definitions_loader: checking and expanding definition files handed
over as (name, content) pairs, with no file access (the file format itself is tested in
tests/bootstrap/test_definitions.py through the reading side)."""
from __future__ import annotations

import json

import pytest

from domain.device_model.definitions_loader import (
    DefinitionError,
    definitions_for,
    installation_values,
    parse_definition_files,
)


def content(component: str, *variables: dict, scope: str = "station") -> bytes:
    return json.dumps({"component": component, "scope": scope, "variables": list(variables)}).encode()


VALUES = installation_values("CS-1", 1, None, 30)


def test_in_memory_files_are_checked_and_expanded_in_the_order_given():
    specs = parse_definition_files([
        ("a.json", content("ACtrlr", {"name": "Id", "dataType": "string", "default": "${station_id}"})),
        ("b.json", content("Connector", {"name": "Label", "dataType": "string",
                                         "default": "${evse_id}/${connector_id}"}, scope="connector")),
    ], "mem")
    defs = definitions_for(specs, (), [2, 1], VALUES)
    assert [(d.ref.key, d.default) for d in defs] == [
        ("ACtrlr/Id", "CS-1"),
        ("Connector@1.1/Label", "1/1"), ("Connector@1.2/Label", "1/2"), ("Connector@2.1/Label", "2/1"),
    ]


def test_hardware_parts_are_chosen_by_component_and_unknown_ones_named():
    base = parse_definition_files([("a.json", content("ACtrlr", {"name": "V", "dataType": "integer"}))], "mem")
    hardware = parse_definition_files([("rcd.json", content("RCD", {"name": "Tripped", "dataType": "boolean"})),
                                       ("x.json", content("Xtra", {"name": "V", "dataType": "integer"}))], "hw")
    assert [d.ref.component for d in definitions_for(base, hardware, [1], VALUES, parts=("RCD",))] == ["ACtrlr", "RCD"]
    with pytest.raises(DefinitionError, match=r"^hardware: no definition for hardware component\(s\) Flux, Zap$"):
        definitions_for(base, hardware, [1], VALUES, parts=("Zap", "RCD", "Flux"))


@pytest.mark.parametrize(("files", "message"), [
    ([("a.json", b'{"component": "\xff"}')], r"^a\.json: not UTF-8 text \(invalid start byte at byte 15\)$"),
    ([("a.json", content("ACtrlr", {"name": "V", "dataType": "integer"})),
      ("b.json", content("actrlr", {"name": "W", "dataType": "integer"}))],
     r"^b\.json: component actrlr is also defined in a\.json$"),
    ([], r"^mem: no definition files \(\*\.json\)$"),
])
def test_bad_sets_of_files_name_the_file(files, message):
    with pytest.raises(DefinitionError, match=message):
        parse_definition_files(files, "mem")


def test_the_installation_values_are_text_and_a_missing_password_stays_missing():
    assert installation_values("CS-9", 2, None, 45) == {
        "station_id": "CS-9", "security_profile": "2", "basic_auth_password": None, "message_timeout": "45"}
