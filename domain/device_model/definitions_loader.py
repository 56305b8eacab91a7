"""Device-model definitions: the texts of the JSON data files -> VariableDefs for one installation.

Pure (no file access): the caller reads the files (bootstrap.definitions reads the package
`domain.device_model.definitions` through importlib.resources; tests read their own) and
hands over (file name, text) pairs. The format is described in the README.md next to the
files. Each file is checked strictly, then expanded for the installation:

- order: files by name, then the components and variables in file order;
- scope "station": the component once; "evse": once per EVSE of `evse_connectors`
  (EVSE ids 1, 2, ... in list order); "connector": once per connector of each EVSE
  (`[2, 1]`: EVSE 1 connectors 1 and 2, EVSE 2 connector 1);
- placeholders in `default` and `attributeDefaults`: `${station_id}`, `${security_profile}`,
  `${basic_auth_password}`, `${message_timeout}`, `${evse_id}` (scopes evse and connector),
  `${connector_id}` (scope connector). A value that is missing (None) leaves the variable
  without that default. A value the variable refuses is an error, unless the placeholder
  is written `${name?}`: then the variable is left without that default (the config
  accepts Basic-auth passwords shorter than OCPP's 16 characters with a warning; such a
  password is not a valid BasicAuthPassword but the link still uses it).

Every problem raises DefinitionError naming the file and, where it is about one, the
variable (`Component.Variable[instance]`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Collection, Iterable, Sequence

from domain.device_model.definition_fields import (
    FILE_KEYS,
    HARDWARE_FOLDER,
    PLACEHOLDER_RE,
    SCOPES,
    UNITS,
    VARIABLE_KEYS,
    DefinitionError,
    check_placeholders,
    check_unknown_keys,
    has_placeholder,
    json_kind,
    no_constant,
    no_duplicate_keys,
    read_attribute_defaults,
    read_attributes,
    read_flag,
    read_name,
    read_number,
    read_optional_name,
    read_text,
    read_values_list,
)
from domain.device_model.model import DATA_TYPES, MUTABILITIES, VariableDef, VariableRef


@dataclass(frozen=True, slots=True)
class VariableSpec:
    """One checked variable entry of a file, placeholders not yet expanded."""

    name: str
    instance: str | None
    data_type: str
    default: str | None
    mutability: str
    unit: str | None
    min_limit: float | None
    max_limit: float | None
    values_list: tuple[str, ...]
    supports_monitoring: bool
    attributes: tuple[str, ...]
    attribute_defaults: tuple[tuple[str, str], ...]
    persistent: bool
    constant: bool
    reboot_required: bool
    description: str
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """One checked definition file."""

    file: str
    component: str
    instance: str | None
    scope: str
    description: str
    variables: tuple[VariableSpec, ...]


# --------------------------------------------------------------------------- loading

def installation_values(station_id: str, security_profile: int, basic_auth_password: str | None = None,
                        message_timeout: int = 30) -> dict[str, str | None]:
    """The values of the placeholders that are the same everywhere in the station."""
    return {
        "station_id": str(station_id),
        "security_profile": str(int(security_profile)),
        "basic_auth_password": basic_auth_password,
        "message_timeout": str(int(message_timeout)),
    }


def definitions_for(specs: Iterable[ComponentSpec], hardware: Iterable[ComponentSpec],
                    evse_connectors: Sequence[int], values: dict[str, str | None],
                    parts: Collection[str] = ()) -> list[VariableDef]:
    """Every variable of the station laid out as `evse_connectors` (connectors per EVSE):
    the checked files `specs`, then those of `hardware` (the files of the `hardware/`
    subfolder, one per component) that `parts` names (Controller, RCD, TokenReader, ...)."""
    chosen = list(specs)
    if parts:
        by_component = {spec.component: spec for spec in hardware}
        unknown = sorted(set(parts) - by_component.keys())
        if unknown:
            raise DefinitionError(HARDWARE_FOLDER, f"no definition for hardware component(s) {', '.join(unknown)}")
        chosen += [by_component[name] for name in sorted(parts)]
    return expand(chosen, evse_connectors, values)


def parse_definition_files(files: Iterable[tuple[str, bytes]], folder: str) -> list[ComponentSpec]:
    """The `*.json` files of `folder` as (file name, content) pairs in name order, checked;
    a component defined in two files and a folder without files are errors."""
    specs: list[ComponentSpec] = []
    seen: dict[tuple[str, str | None], str] = {}
    for name, content in files:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DefinitionError(name, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        spec = parse_definition_file(name, text)
        key = (spec.component.casefold(), spec.instance.casefold() if spec.instance else None)
        if key in seen:
            raise DefinitionError(name, f"component {_component_label(spec)} is also defined in {seen[key]}")
        seen[key] = name
        specs.append(spec)
    if not specs:
        raise DefinitionError(folder, "no definition files (*.json)")
    return specs


def expand(specs: Iterable[ComponentSpec], evse_connectors: Sequence[int],
           values: dict[str, str | None]) -> list[VariableDef]:
    """The VariableDefs of checked files for one layout and one set of placeholder values."""
    layout = check_layout(evse_connectors)
    out: list[VariableDef] = []
    for spec in specs:
        if spec.scope == "station":
            places: list[tuple[int | None, int | None]] = [(None, None)]
        elif spec.scope == "evse":
            places = [(e, None) for e in range(1, len(layout) + 1)]
        else:
            places = [(e, c) for e, n in enumerate(layout, start=1) for c in range(1, n + 1)]
        for evse, connector in places:
            scoped = dict(values)
            if evse is not None:
                scoped["evse_id"] = str(evse)
            if connector is not None:
                scoped["connector_id"] = str(connector)
            for v in spec.variables:
                out.append(_build(spec, v, evse, connector, scoped))
    return out


# --------------------------------------------------------------------------- checking a file

def parse_definition_file(file: str, text: str) -> ComponentSpec:
    """Check one file's text; DefinitionError names the file and the variable."""
    try:
        data = json.loads(text, object_pairs_hook=no_duplicate_keys, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise DefinitionError(file, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:
        raise DefinitionError(file, str(exc)) from None
    if not isinstance(data, dict):
        raise DefinitionError(file, f"expected a JSON object, got {json_kind(data)}")
    check_unknown_keys(file, None, data, FILE_KEYS)
    for key in ("component", "variables"):
        if key not in data:
            raise DefinitionError(file, f'missing key "{key}"')
    component = read_name(file, None, data, "component")
    instance = read_optional_name(file, None, data, "instance")
    scope = data.get("scope", "station")
    if scope not in SCOPES:
        raise DefinitionError(file, f'"scope": expected one of {", ".join(SCOPES)}, got {scope!r}')
    description = read_text(file, None, data, "description")
    entries = data["variables"]
    if not isinstance(entries, list) or not entries:
        raise DefinitionError(file, '"variables": expected a non-empty list of variables')
    label_c = component + (f"[{instance}]" if instance else "")
    variables: list[VariableSpec] = []
    seen: set[tuple[str, str | None]] = set()
    for i, entry in enumerate(entries):
        v = _parse_variable(file, label_c, i, entry, scope)
        key = (v.name.casefold(), v.instance.casefold() if v.instance else None)
        if key in seen:
            raise DefinitionError(file, "defined twice (names compare case-insensitively)",
                                  _variable_label(label_c, v.name, v.instance))
        seen.add(key)
        variables.append(v)
    return ComponentSpec(file, component, instance, scope, description, tuple(variables))


def _parse_variable(file: str, label_c: str, index: int, entry: Any, scope: str) -> VariableSpec:
    where = f"{label_c}.variables[{index}]"
    if not isinstance(entry, dict):
        raise DefinitionError(file, f"expected a JSON object, got {json_kind(entry)}", where)
    if "name" in entry and isinstance(entry["name"], str):
        where = _variable_label(label_c, entry["name"], entry.get("instance") if isinstance(entry.get("instance"), str) else None)
    check_unknown_keys(file, where, entry, VARIABLE_KEYS)
    for key in ("name", "dataType"):
        if key not in entry:
            raise DefinitionError(file, f'missing key "{key}"', where)
    name = read_name(file, where, entry, "name")
    instance = read_optional_name(file, where, entry, "instance")
    data_type = entry["dataType"]
    if data_type not in DATA_TYPES:
        raise DefinitionError(file, f'"dataType": expected one of {", ".join(sorted(DATA_TYPES))}, '
                                    f"got {data_type!r}", where)
    mutability = entry.get("mutability", "ReadWrite")
    if mutability not in MUTABILITIES:
        raise DefinitionError(file, f'"mutability": expected one of {", ".join(sorted(MUTABILITIES))}, '
                                    f"got {mutability!r}", where)
    unit = entry.get("unit")
    if unit is not None and unit not in UNITS:
        raise DefinitionError(file, f'"unit": {unit!r} is not an OCPP unit of measure '
                                    f"({', '.join(sorted(UNITS, key=str.casefold))})", where)
    min_limit = read_number(file, where, entry, "minLimit")
    max_limit = read_number(file, where, entry, "maxLimit")
    if min_limit is not None and max_limit is not None and min_limit > max_limit:
        raise DefinitionError(file, f'"minLimit" {min_limit:g} is above "maxLimit" {max_limit:g}', where)
    values_list = read_values_list(file, where, entry, data_type)
    attributes = read_attributes(file, where, entry)
    attribute_defaults = read_attribute_defaults(file, where, entry, attributes, scope)
    default = entry.get("default")
    if default is not None and not isinstance(default, str):
        raise DefinitionError(file, f'"default": expected a string or null, got {json_kind(default)} '
                                    f'(write values as OCPP sends them: "300", "true")', where)
    if default is not None:
        check_placeholders(file, where, "default", default, scope)
    constant = read_flag(file, where, entry, "constant", False)
    if constant and mutability != "ReadOnly":
        raise DefinitionError(file, '"constant": true needs "mutability": "ReadOnly" '
                                    "(a stored value of a constant variable is ignored)", where)
    spec = VariableSpec(
        name=name, instance=instance, data_type=data_type, default=default, mutability=mutability,
        unit=unit, min_limit=min_limit, max_limit=max_limit, values_list=values_list,
        supports_monitoring=read_flag(file, where, entry, "supportsMonitoring", False),
        attributes=attributes, attribute_defaults=attribute_defaults,
        persistent=read_flag(file, where, entry, "persistent", True), constant=constant,
        reboot_required=read_flag(file, where, entry, "rebootRequired", False),
        description=read_text(file, where, entry, "description"),
        pattern=_pattern(file, where, entry, data_type),
    )
    # Everything VariableDef checks, except defaults that hold placeholders (those are
    # checked once expanded).
    try:
        _variable_def(spec, VariableRef("C", "V"),
                      None if has_placeholder(default) else default,
                      tuple((a, d) for a, d in attribute_defaults if not has_placeholder(d)))
    except ValueError as exc:
        raise DefinitionError(file, str(exc).removeprefix("C.V: "), where) from None
    return spec


def _pattern(file: str, where: str, entry: dict, data_type: str) -> str | None:
    """"pattern": a regular expression a string value must match as a whole."""
    pattern = entry.get("pattern")
    if pattern is None:
        return None
    if data_type not in ("string", "identifierString") or not isinstance(pattern, str):
        raise DefinitionError(file, '"pattern": a regular expression (string), for string variables only', where)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise DefinitionError(file, f'"pattern": not a regular expression ({exc})', where) from None
    return pattern


def check_layout(evse_connectors: Sequence[int]) -> list[int]:
    """The connector counts per EVSE, checked (ValueError)."""
    layout = list(evse_connectors)
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in layout):
        raise ValueError(f"evse_connectors: expected connector counts >= 1 per EVSE, got {layout!r}")
    return layout


def _substitute(text: str, values: dict[str, str | None]) -> tuple[str | None, bool]:
    """(text with placeholders replaced or None when a value is missing, lenient?)."""
    missing = False
    lenient = False

    def one(m: re.Match) -> str:
        nonlocal missing, lenient
        lenient = lenient or m.group(2) == "?"
        value = values.get(m.group(1))
        if value is None:
            missing = True
            return ""
        return value

    out = PLACEHOLDER_RE.sub(one, text)
    return (None if missing else out), lenient


def _build(spec: ComponentSpec, v: VariableSpec, evse: int | None, connector: int | None,
           values: dict[str, str | None]) -> VariableDef:
    ref = VariableRef(spec.component, v.name, spec.instance, v.instance, evse, connector)
    where = _variable_label(_component_label(spec), v.name, v.instance)
    if evse is not None:
        where += f" (EVSE {evse}" + (f", connector {connector})" if connector is not None else ")")
    bare = _variable_def(v, ref, None, ())       # checked when the file was read

    def resolve(key: str, template: str) -> str | None:
        if not has_placeholder(template):
            return template
        value, lenient = _substitute(template, values)
        if value is not None and (err := bare.check(value)) is not None:
            if lenient:
                return None
            # never echo the value: it may be a password
            raise DefinitionError(spec.file, f'"{key}" {template!r}: the installation\'s value is {err}', where)
        return value

    default = resolve("default", v.default) if v.default is not None else None
    others = []
    for attr, template in v.attribute_defaults:
        value = resolve(f"attributeDefaults.{attr}", template)
        if value is not None:
            others.append((attr, value))
    try:
        return _variable_def(v, ref, default, tuple(others))
    except ValueError as exc:
        raise DefinitionError(spec.file, str(exc), where) from None


def _variable_def(v: VariableSpec, ref: VariableRef, default: str | None,
                  attribute_defaults: tuple[tuple[str, str], ...]) -> VariableDef:
    return VariableDef(
        ref=ref, data_type=v.data_type, default=default, mutability=v.mutability, unit=v.unit,
        min_limit=v.min_limit, max_limit=v.max_limit, values_list=v.values_list,
        supports_monitoring=v.supports_monitoring, attributes=v.attributes,
        attribute_defaults=attribute_defaults, persistent=v.persistent, constant=v.constant,
        reboot_required=v.reboot_required, description=v.description, pattern=v.pattern,
    )


def _component_label(spec: ComponentSpec) -> str:
    return spec.component + (f"[{spec.instance}]" if spec.instance else "")


def _variable_label(component: str, name: str, instance: str | None) -> str:
    return f"{component}.{name}" + (f"[{instance}]" if instance else "")


__all__ = ["DefinitionError", "ComponentSpec", "VariableSpec", "HARDWARE_FOLDER", "check_layout",
           "definitions_for", "expand", "installation_values", "parse_definition_file",
           "parse_definition_files"]
