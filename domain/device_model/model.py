"""Device model store: definitions, current values and validation of writes.

Pure: the stored values come in at construction and every accepted change is
returned to the caller (who persists it through the storage port).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Mapping

# OCPP DataEnumType values
DATA_TYPES = frozenset(
    {"string", "decimal", "integer", "dateTime", "boolean", "OptionList",
     "SequenceList", "MemberList", "passwordString", "identifierString"}
)
MUTABILITIES = frozenset({"ReadOnly", "WriteOnly", "ReadWrite"})


@dataclass(frozen=True, slots=True)
class VariableRef:
    """Which variable: component (name, instance, evse, connector) and variable (name, instance)."""

    component: str
    variable: str
    component_instance: str | None = None
    variable_instance: str | None = None
    evse: int | None = None
    connector: int | None = None

    @property
    def key(self) -> str:
        """Storage key, e.g. "OCPPCommCtrlr/MessageTimeout[Default]" or "Connector@1.1/AvailabilityState"."""
        c = self.component
        if self.component_instance is not None:
            c += f"[{self.component_instance}]"
        if self.evse is not None:
            c += f"@{self.evse}"
            if self.connector is not None:
                c += f".{self.connector}"
        v = self.variable
        if self.variable_instance is not None:
            v += f"[{self.variable_instance}]"
        return f"{c}/{v}"

    def __str__(self) -> str:
        return self.key.replace("/", ".")


_REF = re.compile(r"^([A-Za-z0-9*\-_=:+|@.]+?)(?:\[([^\]]+)\])?\.([A-Za-z0-9*\-_=:+|@]+)(?:\[([^\]]+)\])?$")


def parse_ref(text: str) -> VariableRef:
    """"Component.Variable", "Component[inst].Variable[inst]" -> VariableRef (no EVSE)."""
    m = _REF.match(text)
    if not m:
        raise ValueError(f"{text!r}: expected \"Component.Variable\" or \"Component[instance].Variable[instance]\"")
    return VariableRef(m.group(1), m.group(3), m.group(2), m.group(4))


@dataclass(frozen=True, slots=True)
class VariableDef:
    """A variable's definition: characteristics, mutability and default value."""

    ref: VariableRef
    data_type: str
    default: str | None = None
    mutability: str = "ReadWrite"
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None        # for strings: the maximum length
    values_list: tuple[str, ...] = ()
    persistent: bool = True
    constant: bool = False
    reboot_required: bool = False         # an accepted write takes effect after a reboot

    def __post_init__(self) -> None:
        if self.data_type not in DATA_TYPES:
            raise ValueError(f"{self.ref}: unknown dataType {self.data_type!r}")
        if self.mutability not in MUTABILITIES:
            raise ValueError(f"{self.ref}: unknown mutability {self.mutability!r}")
        if self.default is not None and (err := self.check(self.default)):
            raise ValueError(f"{self.ref}: default {self.default!r}: {err}")

    def check(self, value: str) -> str | None:
        """Why `value` is not valid for this variable, or None when it is."""
        t = self.data_type
        if t == "integer":
            if not re.fullmatch(r"[+-]?\d+", value.strip()):
                return "not an integer"
            return self._range(int(value))
        if t == "decimal":
            try:
                x = float(value)
            except ValueError:
                return "not a decimal"
            if not math.isfinite(x):
                return "not a finite decimal"
            return self._range(x)
        if t == "boolean":
            return None if value in ("true", "false") else 'not a boolean ("true" or "false")'
        if t == "dateTime":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return "not an RFC 3339 date-time"
            return None
        if t == "OptionList":
            return None if value in self.values_list else f"not one of {','.join(self.values_list)}"
        if t in ("MemberList", "SequenceList"):
            items = value.split(",") if value else []
            bad = [i for i in items if i not in self.values_list]
            if bad:
                return f"{bad[0]!r} is not one of {','.join(self.values_list)}"
            if len(set(items)) != len(items):
                return "an item appears twice"
            if t == "SequenceList" and not items:
                return "empty list"
            return None
        # string, passwordString, identifierString
        if self.max_limit is not None and len(value) > self.max_limit:
            return f"longer than {int(self.max_limit)} characters"
        if self.min_limit is not None and len(value) < self.min_limit:
            return f"shorter than {int(self.min_limit)} characters"
        if t == "identifierString" and not re.fullmatch(r"[A-Za-z0-9*\-_=:+|@.]*", value):
            return "not an identifierString"
        return None

    def _range(self, x: float) -> str | None:
        if self.min_limit is not None and x < self.min_limit:
            return f"below the minimum {self.min_limit:g}"
        if self.max_limit is not None and x > self.max_limit:
            return f"above the maximum {self.max_limit:g}"
        return None


Listener = Callable[[VariableRef, str], None]


@dataclass(slots=True)
class _Entry:
    definition: VariableDef
    value: str | None
    dynamic: Callable[[float], str] | None = None


class DeviceModel:
    """All variables of one station with their Actual values.

    `stored` holds the values read back from storage (by key); definition defaults
    fill the rest. Values the CSMS or the installer set are never replaced by a
    default. Parts of the station subscribe to changes instead of polling.
    """

    def __init__(self, definitions: Iterable[VariableDef], stored: Mapping[str, str] = ()) -> None:
        self._entries: dict[VariableRef, _Entry] = {}
        self._components: set[tuple[str, str | None, int | None, int | None]] = set()
        self._listeners: dict[VariableRef, list[Listener]] = {}
        stored = dict(stored)
        for d in definitions:
            if d.ref in self._entries:
                raise ValueError(f"{d.ref}: defined twice")
            value = d.default
            kept = stored.get(d.ref.key)
            if kept is not None and not d.constant and d.check(kept) is None:
                value = kept
            self._entries[d.ref] = _Entry(d, value)
            r = d.ref
            self._components.add((r.component, r.component_instance, r.evse, r.connector))

    # --- reading -----------------------------------------------------------------------
    def definition(self, ref: VariableRef) -> VariableDef | None:
        e = self._entries.get(ref)
        return e.definition if e else None

    def has_component(self, name: str, instance: str | None, evse: int | None, connector: int | None) -> bool:
        return (name, instance, evse, connector) in self._components

    def value(self, ref: VariableRef, now: float = 0.0) -> str | None:
        """The Actual value; computed variables are read at monotonic instant `now`."""
        e = self._entries[ref]
        return e.dynamic(now) if e.dynamic is not None else e.value

    def get(self, component: str, variable: str, instance: str | None = None) -> str | None:
        return self.value(VariableRef(component, variable, variable_instance=instance))

    def get_int(self, component: str, variable: str, instance: str | None = None) -> int:
        v = self.get(component, variable, instance)
        return int(v) if v else 0

    def get_bool(self, component: str, variable: str, instance: str | None = None) -> bool:
        return self.get(component, variable, instance) == "true"

    def definitions(self) -> Iterable[VariableDef]:
        return (e.definition for e in self._entries.values())

    # --- writing -----------------------------------------------------------------------
    def provide(self, ref: VariableRef, fn: Callable[[float], str]) -> None:
        """Make a ReadOnly variable computed on read (e.g. ClockCtrlr.DateTime)."""
        self._entries[ref].dynamic = fn

    def subscribe(self, ref: VariableRef, listener: Listener) -> None:
        self._listeners.setdefault(ref, []).append(listener)

    def write(self, ref: VariableRef, value: str) -> str | None:
        """Set an Actual value without the CSMS's mutability rules (the station's own
        writes, installer config). Returns an error or None; listeners are told."""
        e = self._entries.get(ref)
        if e is None:
            return "unknown variable"
        if err := e.definition.check(value):
            return err
        if e.value != value:
            e.value = value
            for fn in self._listeners.get(ref, ()):
                fn(ref, value)
        return None
