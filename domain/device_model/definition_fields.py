"""The vocabulary of the device-model definition files and the readers of their fields: each
checks one key of a file's JSON object and raises DefinitionError naming the file, the variable
and the problem (used by definitions_loader.py)."""
from __future__ import annotations

import math
import re
from typing import Any

from domain.device_model.model import ATTRIBUTE_TYPES

HARDWARE_FOLDER = "hardware"        # per-deployment hardware components (definitions_for parts=)
SCOPES = ("station", "evse", "connector")
LIST_TYPES = frozenset({"OptionList", "MemberList", "SequenceList"})
MAX_VALUES_LIST = 1000          # VariableCharacteristics.valuesList string[1000]

# OCPP 2.0.1 Part 2 appendix: units of measure (VariableCharacteristics.unit)
UNITS = frozenset({
    "A", "ASU", "B", "Celsius", "dB", "dBm", "Deg", "Fahrenheit", "Hz", "K", "lx", "m", "ms2", "N",
    "Ohm", "kPa", "Percent", "RH", "RPM", "s", "V", "VA", "kVA", "VAh", "kVAh", "var", "kvar",
    "varh", "kvarh", "W", "kW", "Wh", "kWh",
})

# placeholder -> the scopes where it has a value
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "station_id": SCOPES,
    "security_profile": SCOPES,
    "basic_auth_password": SCOPES,
    "message_timeout": SCOPES,
    "evse_id": ("evse", "connector"),
    "connector_id": ("connector",),
}
PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z0-9_]*)(\??)\}")
NAME_RE = re.compile(r"[A-Za-z0-9*\-_=:+|@]{1,50}")   # OCPP names/instances: string[50]; no "." (config keys)

FILE_KEYS = {"component", "instance", "scope", "description", "variables"}
VARIABLE_KEYS = {
    "name", "instance", "dataType", "unit", "default", "mutability", "minLimit", "maxLimit",
    "valuesList", "supportsMonitoring", "attributes", "attributeDefaults", "persistent",
    "constant", "rebootRequired", "description", "pattern",
}


class DefinitionError(ValueError):
    """A definition file is not valid: `file`, `variable` (or None) and `problem`."""

    def __init__(self, file: str, problem: str, variable: str | None = None) -> None:
        self.file, self.variable, self.problem = file, variable, problem
        super().__init__(f"{file}: {variable}: {problem}" if variable else f"{file}: {problem}")


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f'key "{k}" appears twice in one object')
        out[k] = v
    return out


def no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_kind(x: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(x), type(x).__name__)


def check_unknown_keys(file: str, where: str | None, obj: dict, allowed: set[str]) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise DefinitionError(file, f"unknown key{'s' if len(unknown) > 1 else ''} "
                                    f"{', '.join(repr(k) for k in unknown)} (allowed: {', '.join(sorted(allowed))})",
                              where)


def read_name(file: str, where: str | None, obj: dict, key: str) -> str:
    value = obj[key]
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise DefinitionError(file, f'"{key}": expected 1..50 characters from A-Z a-z 0-9 * - _ = : + | @, '
                                    f"got {value!r}", where)
    return value


def read_optional_name(file: str, where: str | None, obj: dict, key: str) -> str | None:
    return None if obj.get(key) is None else read_name(file, where, obj, key)


def read_text(file: str, where: str | None, obj: dict, key: str) -> str:
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise DefinitionError(file, f'"{key}": expected a string, got {json_kind(value)}', where)
    if "${" in value:
        raise DefinitionError(file, f'"{key}": placeholders are only allowed in "default" and "attributeDefaults"',
                              where)
    return value


def read_flag(file: str, where: str, obj: dict, key: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise DefinitionError(file, f'"{key}": expected true or false, got {json_kind(value)}', where)
    return value


def read_number(file: str, where: str, obj: dict, key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DefinitionError(file, f'"{key}": expected a number or null, got {json_kind(value)}', where)
    return value


def read_values_list(file: str, where: str, obj: dict, data_type: str) -> tuple[str, ...]:
    if "valuesList" not in obj:
        return ()
    items = obj["valuesList"]
    if data_type not in LIST_TYPES:
        raise DefinitionError(file, f'"valuesList" is only for {", ".join(sorted(LIST_TYPES))}, '
                                    f"not {data_type}", where)
    if not isinstance(items, list) or not items:
        raise DefinitionError(file, '"valuesList": expected a non-empty list of strings', where)
    for item in items:
        if not isinstance(item, str) or not item or "," in item or item != item.strip():
            raise DefinitionError(file, f'"valuesList": {item!r} is not a value '
                                        "(a non-empty string without commas or surrounding blanks)", where)
    if len(set(items)) != len(items):
        raise DefinitionError(file, '"valuesList": a value appears twice', where)
    if len(",".join(items)) > MAX_VALUES_LIST:
        raise DefinitionError(file, f'"valuesList": longer than {MAX_VALUES_LIST} characters joined '
                                    "(VariableCharacteristics.valuesList)", where)
    return tuple(items)


def read_attributes(file: str, where: str, obj: dict) -> tuple[str, ...]:
    if "attributes" not in obj:
        return ("Actual",)
    items = obj["attributes"]
    if (not isinstance(items, list) or "Actual" not in items or len(set(items)) != len(items)
            or any(a not in ATTRIBUTE_TYPES for a in items)):
        raise DefinitionError(file, f'"attributes": expected a list of distinct values among '
                                    f'{", ".join(ATTRIBUTE_TYPES)} including "Actual", got {items!r}', where)
    return tuple(items)


def read_attribute_defaults(file: str, where: str, obj: dict, attributes: tuple[str, ...],
                        scope: str) -> tuple[tuple[str, str], ...]:
    value = obj.get("attributeDefaults", {})
    if not isinstance(value, dict):
        raise DefinitionError(file, f'"attributeDefaults": expected an object, got {json_kind(value)}', where)
    out = []
    for attr, v in value.items():
        if attr == "Actual" or attr not in attributes:
            raise DefinitionError(file, f'"attributeDefaults": {attr!r} is not one of the variable\'s other '
                                        f'"attributes" (the Actual value is "default")', where)
        if not isinstance(v, str):
            raise DefinitionError(file, f'"attributeDefaults.{attr}": expected a string, got {json_kind(v)}', where)
        check_placeholders(file, where, f"attributeDefaults.{attr}", v, scope)
        out.append((attr, v))
    return tuple(out)


def check_placeholders(file: str, where: str, key: str, text: str, scope: str) -> None:
    rest = PLACEHOLDER_RE.sub("", text)
    if "${" in rest:
        raise DefinitionError(file, f'"{key}": malformed placeholder in {text!r} (expected ${{name}} or ${{name?}})',
                              where)
    for m in PLACEHOLDER_RE.finditer(text):
        name = m.group(1)
        if name not in PLACEHOLDERS:
            raise DefinitionError(file, f'"{key}": unknown placeholder ${{{name}}} '
                                        f"(known: {', '.join(PLACEHOLDERS)})", where)
        if scope not in PLACEHOLDERS[name]:
            raise DefinitionError(file, f'"{key}": placeholder ${{{name}}} has no value in scope "{scope}" '
                                        f"(only in {', '.join(PLACEHOLDERS[name])})", where)


def has_placeholder(text: str | None) -> bool:
    return text is not None and PLACEHOLDER_RE.search(text) is not None


# --------------------------------------------------------------------------- expanding
