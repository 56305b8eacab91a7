"""Device model store: definitions, current values and validation of writes.

Pure: the stored values come in at construction and every accepted change is
returned to the caller (who persists it through the storage port).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
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


ATTRIBUTE_TYPES = ("Actual", "Target", "MinSet", "MaxSet")


@dataclass(frozen=True, slots=True)
class VariableDef:
    """A variable's definition: characteristics, attributes, mutability and defaults.

    `mutability` is that of the Actual attribute; Target, MinSet and MaxSet, where a
    variable has them (`attributes`), are ReadWrite. `default` is the Actual value when
    nothing was stored; `attribute_defaults` gives the others (an attribute without a
    value reads as "" (B06.FR.13)).
    """

    ref: VariableRef
    data_type: str
    default: str | None = None
    mutability: str = "ReadWrite"
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None        # for strings and lists: the maximum length
    values_list: tuple[str, ...] = ()
    supports_monitoring: bool = False
    attributes: tuple[str, ...] = ("Actual",)
    attribute_defaults: tuple[tuple[str, str], ...] = ()
    persistent: bool = True
    constant: bool = False
    reboot_required: bool = False         # an accepted write takes effect after a reboot
    description: str = ""
    pattern: str | None = None            # strings: a regular expression the whole value matches

    def __post_init__(self) -> None:
        if self.data_type not in DATA_TYPES:
            raise ValueError(f"{self.ref}: unknown dataType {self.data_type!r}")
        if self.mutability not in MUTABILITIES:
            raise ValueError(f"{self.ref}: unknown mutability {self.mutability!r}")
        if self.data_type in ("OptionList", "MemberList", "SequenceList") and not self.values_list:
            raise ValueError(f"{self.ref}: a {self.data_type} needs a valuesList")
        if "Actual" not in self.attributes or any(a not in ATTRIBUTE_TYPES for a in self.attributes):
            raise ValueError(f"{self.ref}: attributes must include Actual and be among {ATTRIBUTE_TYPES}")
        if self.default is not None and (err := self.check(self.default)):
            raise ValueError(f"{self.ref}: default {self.default!r}: {err}")
        for attr, value in self.attribute_defaults:
            if attr not in self.attributes or attr == "Actual":
                raise ValueError(f"{self.ref}: default for unsupported attribute {attr}")
            if err := self.check(value):
                raise ValueError(f"{self.ref}: {attr} default {value!r}: {err}")

    def mutability_of(self, attribute: str) -> str:
        return self.mutability if attribute == "Actual" else "ReadWrite"

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
            if self.max_limit is not None and len(value) > self.max_limit:
                return f"longer than {int(self.max_limit)} characters"
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
        if self.pattern is not None and value and not re.fullmatch(self.pattern, value):
            return "not in the expected format"
        return None

    def _range(self, x: float) -> str | None:
        if self.min_limit is not None and x < self.min_limit:
            return f"below the minimum {self.min_limit:g}"
        if self.max_limit is not None and x > self.max_limit:
            return f"above the maximum {self.max_limit:g}"
        return None


Listener = Callable[[VariableRef, str], None]
Dynamic = Callable[[float], str]
Veto = Callable[[str], 'str | None']


class DeviceModel:
    """All variables of one station with the values of their attributes.

    `stored` holds the values read back from storage, keyed (VariableRef.key, attribute);
    definition defaults fill the rest. A stored value is never replaced by a default, so
    what the CSMS or the installer set survives an upgrade of the definitions; a stored
    value its (new) definition refuses, or one of a constant variable, is ignored.
    Parts of the station subscribe to changes instead of polling.
    """

    def __init__(self, definitions: Iterable[VariableDef],
                 stored: Mapping[tuple[str, str], str] = ()) -> None:
        self._defs: dict[VariableRef, VariableDef] = {}
        self._values: dict[tuple[VariableRef, str], str | None] = {}
        self._dynamic: dict[VariableRef, Dynamic] = {}
        self._components: dict[tuple[str, str | None, int | None, int | None], list[VariableDef]] = {}
        self._listeners: dict[VariableRef, list[Listener]] = {}
        self._vetoes: dict[VariableRef, Veto] = {}
        stored = dict(stored)
        for d in definitions:
            r = d.ref
            if r in self._defs:
                raise ValueError(f"{r}: defined twice")
            self._defs[r] = d
            self._components.setdefault((r.component, r.component_instance, r.evse, r.connector), []).append(d)
            defaults = {"Actual": d.default, **dict(d.attribute_defaults)}
            for attr in d.attributes:
                value = defaults.get(attr)
                kept = stored.get((r.key, attr))
                if kept is not None and not d.constant and d.check(kept) is None:
                    value = kept
                self._values[(r, attr)] = value

    # --- reading -----------------------------------------------------------------------
    def definition(self, ref: VariableRef) -> VariableDef | None:
        return self._defs.get(ref)

    def has_component(self, name: str, instance: str | None, evse: int | None, connector: int | None) -> bool:
        return (name, instance, evse, connector) in self._components

    def components(self) -> Iterable[tuple[tuple[str, str | None, int | None, int | None], list[VariableDef]]]:
        """(component key, its variables) in definition order."""
        return self._components.items()

    def definitions(self) -> Iterable[VariableDef]:
        return self._defs.values()

    def value(self, ref: VariableRef, now: float = 0.0, attribute: str = "Actual") -> str | None:
        """The attribute's value; computed variables are read at monotonic instant `now`."""
        if attribute == "Actual" and (fn := self._dynamic.get(ref)) is not None:
            return fn(now)
        return self._values[(ref, attribute)]

    def get(self, component: str, variable: str, instance: str | None = None) -> str | None:
        return self.value(VariableRef(component, variable, variable_instance=instance))

    def get_int(self, component: str, variable: str, instance: str | None = None) -> int:
        v = self.get(component, variable, instance)
        return int(v) if v else 0

    def get_bool(self, component: str, variable: str, instance: str | None = None) -> bool:
        return self.get(component, variable, instance) == "true"

    # --- writing -----------------------------------------------------------------------
    def provide(self, ref: VariableRef, fn: Dynamic) -> None:
        """Make a variable's Actual value computed on read (e.g. ClockCtrlr.DateTime)."""
        if ref not in self._defs:
            raise KeyError(f"{ref}: not defined")
        self._dynamic[ref] = fn

    def veto(self, ref: VariableRef, check: Veto) -> None:
        """`check(value)` says why the CSMS may not set the variable to `value` (None: it may),
        for rules beyond the definition's (e.g. NetworkConfigurationPriority naming a slot
        without a profile); SetVariables answers Rejected with that reason."""
        self._vetoes[ref] = check

    def vetoed(self, ref: VariableRef, value: str) -> str | None:
        check = self._vetoes.get(ref)
        return None if check is None else check(value)

    def subscribe(self, ref: VariableRef, listener: Listener) -> None:
        """`listener(ref, value)` after every change of the variable's Actual value."""
        self._listeners.setdefault(ref, []).append(listener)

    def clear(self, ref: VariableRef) -> None:
        """Take the Actual value away (it reads as "" again): the station's own bookkeeping,
        e.g. a time-offset transition that has happened. Stored as "", which a reload ignores
        in favour of the (absent) default."""
        if self._values.get((ref, "Actual")) is not None:
            self._values[(ref, "Actual")] = None
            for fn in self._listeners.get(ref, ()):
                fn(ref, "")

    def write(self, ref: VariableRef, value: str, attribute: str = "Actual") -> str | None:
        """Set a value without the CSMS's mutability rules (the station's own writes,
        installer config). Returns why it was refused, or None; listeners are told."""
        d = self._defs.get(ref)
        if d is None:
            return "unknown variable"
        if attribute not in d.attributes:
            return f"no {attribute} attribute"
        if err := d.check(value):
            return err
        if self._values[(ref, attribute)] != value:
            self._values[(ref, attribute)] = value
            if attribute == "Actual":
                for fn in self._listeners.get(ref, ()):
                    fn(ref, value)
        return None
