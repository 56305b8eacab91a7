"""Device-model reports (OCPP 2.0.1 B07 GetBaseReport, B08 GetReport): pure functions.

The station picks the variables (`select_base`, `select_custom`), turns each into a
ReportData (`report_data`), cuts the list into NotifyReportRequests (`paginate`) and
checks inbound requests against DeviceDataCtrlr.ItemsPerMessage / BytesPerMessage
(`check_request_limits`). Nothing here reads a clock or keeps state: values are read
from the DeviceModel at the instant `now` the caller passes.

Decisions (where the specification leaves room; see also each function):

- WriteOnly attributes are reported without `value` (B07.FR.03 / B08.FR.03 as changed by
  the 2025-01 errata; TC_B_53). An attribute without a value reports "" (a value may
  only be omitted for WriteOnly).
- `value` is cut to 2500 characters (VariableAttribute.value is string[2500]) and to
  DeviceDataCtrlr.ReportingValueSize and DeviceDataCtrlr.ValueSize where those exist
  and are > 0.
- `valuesList` (string[1000], also limited by DeviceDataCtrlr.ConfigurationValueSize and
  ValueSize): when the comma-separated list is longer, whole items are dropped from
  the end until it fits, never an item cut in half (a half item would be a value the
  station does not accept). It is never left out: TC_B_12..14/53 require a valuesList
  for every OptionList, SequenceList and MemberList. Only if even the first item is
  longer than the limit is that item cut.
- dataType passwordString and identifierString (our refinements of string, not in the
  2.0.1 DataEnumType) are reported as "string".
- Custom reports, componentVariable: an absent variable selects every variable of the
  component (as in GetMonitoringReport, TC_N_02: "all monitors from Configured EVSE");
  an absent variable instance selects every instance (TC_B_54); an absent component
  evse selects the component on every EVSE and connector (TC_B_56: "all EVSEs when
  evseId is not given"); an evse without connectorId selects the component on every
  connector of that EVSE; an absent component instance selects every instance (the
  same rule as for the others). Names and instances compare case-insensitively (the
  schema: "Case Insensitive"). Neither componentVariable nor componentCriteria:
  every variable.
- Custom reports, componentCriteria alone: the report holds the criterion variables
  themselves (the unkeyed `Active`/`Available`/`Enabled`/`Problem` of each component
  whose value is "true"). TC_B_16 validates that every reportData of
  componentCriteria={Enabled} is variable "Enabled" with value "true" and reads every
  reported variable back with GetVariables expecting "true".
- Custom reports, both given: the componentVariable selection, kept only for the
  components meeting a criterion (TC_B_18). Several criteria: a component meets the
  request when it meets any of them (like GetMonitoringReport's monitoringCriteria).
  A component without the criterion's (unkeyed) variable, from Appendix 4
  (Standardized Variables): Available -> true ("The Component exists and is locally
  configured/wired for use"; it is in the device model); Enabled -> as Available
  ("For Available components that cannot be selectively (remotely) enabled /
  disabled, this value is always true"); Active -> false (no non-resting state to
  report); Problem -> false.
- Pagination: every message is within ItemsPerMessage and within BytesPerMessage
  counting the whole CALL frame, except an entry too large to fit even alone, which
  is sent alone in its own message (a ReportData cannot be split, and leaving it out
  would silently lose a variable).
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

import msgspec

from domain import messages as m
from domain.device_model.model import DeviceModel, VariableDef, VariableRef
from domain.ocppj import encode_message

MAX_VALUE = 2500            # VariableAttribute.value string[2500]
MAX_VALUES_LIST = 1000      # VariableCharacteristics.valuesList string[1000]
MESSAGE_ID_LENGTH = 36      # a UUID, as OcppJEndpoint makes them

ABNORMAL_VARIABLES = ("Problem", "Tripped", "Overload", "Fallback")
_SUMMARY_COMPONENTS = ("chargingstation", "evse", "connector")
_REPORTED_DATA_TYPES = {"passwordString": "string", "identifierString": "string"}

_encode = msgspec.json.Encoder().encode


# ----------------------------------------------------------------------------- ReportData

def _size_variable(dm: DeviceModel, name: str, now: float) -> int | None:
    """A positive DeviceDataCtrlr size limit, or None when not defined / not set / <= 0."""
    ref = VariableRef("DeviceDataCtrlr", name)
    if dm.definition(ref) is None:
        return None
    try:
        n = int(dm.value(ref, now) or 0)
    except ValueError:
        return None
    return n if n > 0 else None


def _limit(base: int, *others: int | None) -> int:
    return min([base, *(o for o in others if o is not None)])


def value_limit(dm: DeviceModel, now: float) -> int:
    """Longest VariableAttribute.value reported (characters)."""
    return _limit(MAX_VALUE, _size_variable(dm, "ReportingValueSize", now), _size_variable(dm, "ValueSize", now))


def values_list_limit(dm: DeviceModel, now: float) -> int:
    """Longest VariableCharacteristics.valuesList reported (characters)."""
    return _limit(MAX_VALUES_LIST, _size_variable(dm, "ConfigurationValueSize", now),
                  _size_variable(dm, "ValueSize", now))


def join_values_list(items: Sequence[str], limit: int = MAX_VALUES_LIST) -> str:
    """Comma-separated `items`, dropping whole items from the end to stay within `limit`."""
    out: list[str] = []
    length = -1
    for item in items:
        if length + 1 + len(item) > limit:
            break
        out.append(item)
        length += 1 + len(item)
    if not out and items:
        return items[0][:limit]
    return ",".join(out)


def _component(ref: VariableRef) -> m.Component:
    evse = None
    if ref.evse is not None:
        evse = m.EVSE(id=ref.evse, connector_id=ref.connector)
    return m.Component(name=ref.component, instance=ref.component_instance, evse=evse)


def report_data(dm: DeviceModel, d: VariableDef, now: float, *,
                _limits: tuple[int, int] | None = None) -> m.ReportData:
    """The ReportData of variable `d`: all its attributes and its characteristics."""
    vmax, lmax = _limits or (value_limit(dm, now), values_list_limit(dm, now))
    ref = d.ref
    attributes = []
    for attr in d.attributes:
        mutability = d.mutability_of(attr)
        value = None
        if mutability != "WriteOnly":
            value = (dm.value(ref, now, attr) or "")[:vmax]
        attributes.append(m.VariableAttribute(
            type=m.Attribute(attr), value=value, mutability=m.Mutability(mutability),
            persistent=d.persistent, constant=d.constant,
        ))
    characteristics = m.VariableCharacteristics(
        unit=d.unit,
        data_type=m.Data(_REPORTED_DATA_TYPES.get(d.data_type, d.data_type)),
        min_limit=float(d.min_limit) if d.min_limit is not None else None,
        max_limit=float(d.max_limit) if d.max_limit is not None else None,
        values_list=join_values_list(d.values_list, lmax) if d.values_list else None,
        supports_monitoring=d.supports_monitoring,
    )
    return m.ReportData(
        component=_component(ref),
        variable=m.Variable(name=ref.variable, instance=ref.variable_instance),
        variable_attribute=attributes,
        variable_characteristics=characteristics,
    )


def report_entries(dm: DeviceModel, defs: Iterable[VariableDef], now: float) -> list[m.ReportData]:
    """`report_data` for each definition (the size limits are read once)."""
    limits = (value_limit(dm, now), values_list_limit(dm, now))
    return [report_data(dm, d, now, _limits=limits) for d in defs]


# ----------------------------------------------------------------------------- selection

def select_base(dm: DeviceModel, report_base: str, now: float) -> list[VariableDef] | None:
    """The variables of a base report (B07), in definition order; None: unknown base
    (the caller answers NotSupported).

    ConfigurationInventory: variables with a ReadWrite or WriteOnly attribute (all of
    their attributes are reported). FullInventory: all. SummaryInventory: the
    AvailabilityState of the ChargingStation and of every EVSE, that of every
    Connector whose state is known, and for every component in an abnormal state
    (one of Problem, Tripped, Overload, Fallback is "true", any instance) those four
    variables (all instances it has).
    """
    defs = list(dm.definitions())
    if report_base == m.ReportBase.FullInventory:
        return defs
    if report_base == m.ReportBase.ConfigurationInventory:
        return [d for d in defs if any(d.mutability_of(a) in ("ReadWrite", "WriteOnly") for a in d.attributes)]
    if report_base != m.ReportBase.SummaryInventory:
        return None
    abnormal = set()
    for key, cdefs in dm.components():
        if any(d.ref.variable in ABNORMAL_VARIABLES and dm.value(d.ref, now) == "true" for d in cdefs):
            abnormal.add(key)
    out = []
    for d in defs:
        r = d.ref
        if r.variable == "AvailabilityState" and r.component.lower() in _SUMMARY_COMPONENTS:
            if r.component.lower() != "connector" or dm.value(r, now) is not None:
                out.append(d)
        elif r.variable in ABNORMAL_VARIABLES and _component_key(r) in abnormal:
            out.append(d)
    return out


def _component_key(r: VariableRef) -> tuple[str, str | None, int | None, int | None]:
    return (r.component, r.component_instance, r.evse, r.connector)


def _same(a: str | None, b: str | None) -> bool:
    return a == b or (a is not None and b is not None and a.lower() == b.lower())


def _matches(cv: m.ComponentVariable, r: VariableRef) -> bool:
    c = cv.component
    if not _same(c.name, r.component):
        return False
    if c.instance is not None and not _same(c.instance, r.component_instance):
        return False
    if c.evse is not None:
        if r.evse != c.evse.id:
            return False
        if c.evse.connector_id is not None and r.connector != c.evse.connector_id:
            return False
    v = cv.variable
    if v is None:
        return True
    if not _same(v.name, r.variable):
        return False
    return v.instance is None or _same(v.instance, r.variable_instance)


def _flag(cdefs: list[VariableDef], name: str) -> VariableDef | None:
    """The component's unkeyed variable `name` (its definition), None if it has none."""
    for d in cdefs:
        if d.ref.variable == name and d.ref.variable_instance is None:
            return d
    return None


def _is_true(dm: DeviceModel, d: VariableDef, now: float) -> bool:
    return dm.value(d.ref, now) == "true"


def meets_criterion(dm: DeviceModel, cdefs: list[VariableDef], criterion: str, now: float) -> bool:
    """Whether a component (its variables `cdefs`) meets a componentCriterion; a missing
    variable counts as described in the module docstring."""
    d = _flag(cdefs, criterion)
    if d is not None:
        return _is_true(dm, d, now)
    if criterion == m.ComponentCriterion.Available:
        return True
    if criterion == m.ComponentCriterion.Enabled:
        return meets_criterion(dm, cdefs, m.ComponentCriterion.Available, now)
    return False        # Active, Problem


def select_custom(dm: DeviceModel, component_variables: list[m.ComponentVariable] | None,
                  component_criteria: list[str] | None, now: float) -> list[VariableDef]:
    """The variables of a custom report (B08), in definition order, each once.

    Empty: the caller answers EmptyResultSet. Neither selection given: every variable.
    Criteria the station does not know should have been refused (NotSupported) by the
    caller; here they select nothing.
    """
    criteria = list(component_criteria or ())
    cvs = list(component_variables or ())
    if cvs:
        chosen = [d for d in dm.definitions() if any(_matches(cv, d.ref) for cv in cvs)]
        if not criteria:
            return chosen
        by_component = {key: cdefs for key, cdefs in dm.components()}
        verdict: dict[tuple, bool] = {}
        out = []
        for d in chosen:
            key = _component_key(d.ref)
            if key not in verdict:
                verdict[key] = any(meets_criterion(dm, by_component[key], c, now) for c in criteria)
            if verdict[key]:
                out.append(d)
        return out
    if not criteria:
        return list(dm.definitions())
    wanted = set()
    for _, cdefs in dm.components():
        for c in criteria:
            d = _flag(cdefs, str(c))
            if d is not None and _is_true(dm, d, now):
                wanted.add(d.ref)
    return [d for d in dm.definitions() if d.ref in wanted]


# ----------------------------------------------------------------------------- paging

def _frame_fixed(message_id_length: int) -> int:
    """Bytes of `[2,"<id>","NotifyReport",` + `]` around the payload."""
    return len(b'[2,"') + message_id_length + len(b'","NotifyReport",') + len(b"]")


def _list_overhead() -> int:
    """Bytes that a reportData member with one entry adds beyond the entry itself."""
    at = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    entry = m.ReportData(component=m.Component(name="C"), variable=m.Variable(name="V"),
                         variable_attribute=[m.VariableAttribute()])
    with_one = _encode(m.NotifyReportRequest(request_id=0, generated_at=at, report_data=[entry], seq_no=0))
    without = _encode(m.NotifyReportRequest(request_id=0, generated_at=at, seq_no=0))
    return len(with_one) - len(without) - len(_encode(entry))


_LIST_OVERHEAD = _list_overhead()     # '"reportData":[' + ']' + one ','


def paginate_sized(request_id: int, entries: Sequence[m.ReportData], generated_at: datetime, *,
                   items_per_message: int, bytes_per_message: int,
                   message_id_length: int = MESSAGE_ID_LENGTH) -> list[tuple[m.NotifyReportRequest, int]]:
    """`paginate`, with the byte size of each message's CALL frame."""
    if not entries:
        raise ValueError("no report entries: answer EmptyResultSet instead of paginating")
    n = len(entries)
    max_items = items_per_message if items_per_message > 0 else n
    max_bytes = bytes_per_message if bytes_per_message > 0 else float("inf")
    sizes = [len(_encode(e)) for e in entries]
    fixed = _frame_fixed(message_id_length) + _LIST_OVERHEAD - 1    # -1: n entries, n-1 commas

    def empty(seq: int, tbc: bool) -> int:
        return len(encode_message(m.NotifyReportRequest(request_id=request_id, generated_at=generated_at,
                                                        tbc=tbc, seq_no=seq))) + fixed

    out: list[tuple[m.NotifyReportRequest, int]] = []
    i = seq = 0
    while i < n:
        more = empty(seq, True)
        total = more + sizes[i] + 1
        j = i + 1
        while j < n and j - i < max_items and total + sizes[j] + 1 <= max_bytes:
            total += sizes[j] + 1
            j += 1
        if j == n:          # the last message: "tbc":false is longer than "tbc":true
            last = total - more + empty(seq, False)
            if last > max_bytes and j - i > 1:
                j -= 1      # the final entry goes alone into one more message
                total -= sizes[j] + 1
            else:
                total = last
        out.append((m.NotifyReportRequest(request_id=request_id, generated_at=generated_at,
                                          report_data=list(entries[i:j]), tbc=j < n, seq_no=seq), total))
        i = j
        seq += 1
    return out


def paginate(request_id: int, entries: Sequence[m.ReportData], generated_at: datetime, *,
             items_per_message: int, bytes_per_message: int,
             message_id_length: int = MESSAGE_ID_LENGTH) -> list[m.NotifyReportRequest]:
    """Cut a report into NotifyReportRequests (B07.FR.03/04, B08.FR.03/04).

    seqNo counts from 0; tbc is true on all but the last message, false on the last.
    Greedy, in order: each message takes as many entries as fit within
    `items_per_message` and with its complete CALL frame
    (`[2,"<id>","NotifyReport",<payload>]`, msgspec JSON, an id of `message_id_length`
    characters) within `bytes_per_message` bytes. An entry that does not fit even alone
    is sent alone. A limit <= 0 means no limit. Each entry is encoded once to know its
    size. `entries` must not be empty (ValueError): the caller answers EmptyResultSet.
    """
    return [msg for msg, _ in paginate_sized(
        request_id, entries, generated_at, items_per_message=items_per_message,
        bytes_per_message=bytes_per_message, message_id_length=message_id_length)]


# ----------------------------------------------------------------------------- request limits

def check_request_limits(n_items: int, frame_bytes: int, *, items_limit: int,
                         bytes_limit: int) -> tuple[str, str] | None:
    """(RPC error code, description) for an inbound GetVariables / SetVariables /
    GetReport request beyond DeviceDataCtrlr.ItemsPerMessage (OccurrenceConstraintViolation,
    B06.FR.16, B05 and B08 alike) or BytesPerMessage (FormatViolation, B06.FR.17), or None.
    The item count is checked first. A limit <= 0 means no limit.
    """
    if items_limit > 0 and n_items > items_limit:
        return ("OccurrenceConstraintViolation",
                f"{n_items} items exceed DeviceDataCtrlr.ItemsPerMessage = {items_limit}")
    if bytes_limit > 0 and frame_bytes > bytes_limit:
        return ("FormatViolation",
                f"message of {frame_bytes} bytes exceeds DeviceDataCtrlr.BytesPerMessage = {bytes_limit}")
    return None
