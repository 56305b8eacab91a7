"""RPC error codes and the mapping of schema violations to them (OCPP-J Part 4, 4.2.3)."""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from domain import messages

MAX_MESSAGE_ID = 36  # Part 4 table 4: messageId string[36]
MAX_DESCRIPTION = 255  # Part 4 table 7: ErrorDescription string[255]


class RpcErrorCode(enum.StrEnum):
    """Part 4 table 8, the only error codes a CALLERROR may carry."""

    FormatViolation = "FormatViolation"
    GenericError = "GenericError"
    InternalError = "InternalError"
    MessageTypeNotSupported = "MessageTypeNotSupported"
    NotImplemented = "NotImplemented"
    NotSupported = "NotSupported"
    OccurrenceConstraintViolation = "OccurrenceConstraintViolation"
    PropertyConstraintViolation = "PropertyConstraintViolation"
    ProtocolError = "ProtocolError"
    RpcFrameworkError = "RpcFrameworkError"
    SecurityError = "SecurityError"
    TypeConstraintViolation = "TypeConstraintViolation"


class CallPending(RuntimeError):
    """send_call() while a CALL is outstanding (Part 4 4.1.1)."""


class OutboundInvalid(ValueError):
    """An outbound request violates its schema (or is not an OCPP request)."""

    def __init__(self, action: str, field: str, message: str, code: str = RpcErrorCode.FormatViolation):
        self.action = action
        self.field = field
        self.code = code
        self.message = message
        label = f"{action}Request" if action in _KNOWN_ACTIONS else action
        where = f"{field}: " if field else ""
        super().__init__(f"{label}: {where}{message}")


# --------------------------------------------------------------------------- violations


@dataclass(frozen=True, slots=True)
class Violation:
    code: RpcErrorCode
    field: str  # dotted wire path, e.g. "chargingStation.model" or "meterValue[0].timestamp"; "" = payload
    message: str  # one line, human readable, without the field

    @property
    def description(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    @property
    def details(self) -> dict:
        return {"field": self.field} if self.field else {}


_F = RpcErrorCode.FormatViolation
_O = RpcErrorCode.OccurrenceConstraintViolation
_P = RpcErrorCode.PropertyConstraintViolation
_T = RpcErrorCode.TypeConstraintViolation

# (msgspec 0.22 ValidationError text without its " - at `$...`" suffix, code, description)
# Order matters: the first match wins; the generic "Expected `X`, got `Y`" is last.
_VIOLATION_TABLE: tuple[tuple[re.Pattern[str], RpcErrorCode, str], ...] = (
    # required property absent
    (re.compile(r"Object missing required field `(?P<name>.*)`", re.S), _O, "required field missing"),
    # additionalProperties: false
    (re.compile(r"Object contains unknown field `(?P<name>.*)`", re.S), _F, "unknown field"),
    # minimum / maximum (msgspec: ge/le; gt/lt/multiple_of are handled alike)
    (re.compile(r"Expected `(?:int|float)` (?P<rule>(?:[<>]=?|that's a multiple of) \S+)"), _P, "value out of range (must be {rule})"),
    # enum
    (re.compile(r"Invalid enum value (?P<value>.*)", re.S), _P, "invalid enum value {value}"),
    # maxLength / minLength
    (re.compile(r"Expected `str` of length <= (?P<n>\d+)"), _F, "string longer than {n} characters"),
    (re.compile(r"Expected `str` of length >= (?P<n>\d+)"), _F, "string shorter than {n} characters"),
    # maxItems / minItems
    (re.compile(r"Expected `array` of length <= (?P<n>\d+)"), _F, "array with more than {n} items"),
    (re.compile(r"Expected `array` of length >= (?P<n>\d+)"), _F, "array with fewer than {n} items"),
    # format: date-time (RFC 3339, which requires the UTC offset)
    (re.compile(r"Invalid RFC3339 encoded datetime"), _F, "malformed date-time (RFC 3339 expected)"),
    (re.compile(r"Expected `datetime` with a timezone component"), _F, "date-time without a UTC offset"),
    # type (string / integer / number / boolean / object / array), null included
    (re.compile(r"Expected `(?P<expected>[^`]*)`, got `(?P<got>[^`]*)`"), _T, "wrong type: expected {expected}, got {got}"),
)

# msgspec type names -> JSON-schema type names, for descriptions
_JSON_TYPE = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "datetime": "string (date-time)"}


def _json_type(msgspec_types: str) -> str:
    """"int" -> "integer", "null" -> "null" (a "| null" alternative, which no message
    type has since optional fields reject null, would be left out)."""
    names = [n for n in msgspec_types.split(" | ") if n != "null"] or ["null"]
    return " or ".join(_JSON_TYPE.get(n, n) for n in names)


# msgspec's " - at `$.a.b[0]`" suffix; OCPP wire names are alphanumeric, so an
# unknown field's (arbitrary) name cannot pass for a path.
_PATH_SUFFIX = re.compile(r" - at `\$(?P<path>(?:\.\w+|\[(?:\d+|\.\.\.)\])*)`\Z", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_MAX_NAME = 100  # longest unknown-field name / enum value echoed back
_MAX_PATH = 200


def _one_line(text: str) -> str:
    return _CONTROL.sub(" ", text)


def classify_violation(error: str | Exception) -> Violation:
    """Map a msgspec ValidationError (a schema violation of a payload) to an RPC error code.

    Part 4 table 8 defines the codes loosely; this is the reading used here:

    ==========================================  ================================  ======================================
    msgspec 0.22 message                        JSON-schema rule                  code
    ==========================================  ================================  ======================================
    Object missing required field `x`           required                          OccurrenceConstraintViolation
    Expected `int` <= 10 / `float` >= 0.0       minimum / maximum                 PropertyConstraintViolation
    Invalid enum value 'Foo'                    enum                              PropertyConstraintViolation
    Expected `str`, got `int` (or `null`)       type                              TypeConstraintViolation
    Expected `str` of length <= 20              maxLength (minLength)             FormatViolation
    Expected `array` of length >= 1             minItems (maxItems)               FormatViolation
    Invalid RFC3339 encoded datetime            format: date-time                 FormatViolation
    Expected `datetime` with a timezone comp..  format: date-time (no offset)     FormatViolation
    Object contains unknown field `x`           additionalProperties: false       FormatViolation
    Expected `object`, got `array` (no path)    payload not a JSON object         FormatViolation
    anything else                               -                                 FormatViolation
    ==========================================  ================================  ======================================

    Reasoning:
    * OccurrenceConstraintViolation is "at least one of the fields violates
      occurrence constraints": a required field that does not occur.
    * TypeConstraintViolation is "violates data type constraints (e.g.
      "somestring": 12)": the JSON type is wrong. `null` is not a type any OCPP
      field has (4.1.5: an empty optional field is left out, never null), so a
      null value is a type violation too, for required and optional fields
      alike (domain.messages types optional fields without null). Only
      DataTransfer's `data`, which the schema leaves untyped, takes null.
    * PropertyConstraintViolation is "contains an invalid value": the type is
      right but the value is not allowed - out of [minimum, maximum] or not one
      of the enum's values.
    * FormatViolation is "Payload for Action is syntactically incorrect": the
      shape/syntax of the data is wrong - a string or array of the wrong
      length, a date-time that does not parse, a property the schema does not
      have, a payload that is not an object; and, as the catch-all, any other
      schema rule msgspec reports.
    """
    text = str(error)
    path = ""
    m = _PATH_SUFFIX.search(text)
    if m is not None:
        path = m.group("path")
        text = text[: m.start()]
    if path.startswith("."):
        path = path[1:]
    for pattern, code, template in _VIOLATION_TABLE:
        hit = pattern.match(text)
        if hit is None:
            continue
        groups = hit.groupdict()
        name = groups.get("name")
        if name is not None:  # the field itself is the subject: put it in the path
            name = name[:_MAX_NAME]
            path = f"{path}.{name}" if path else name
        if not path and code is _T:  # the payload itself has the wrong type
            return Violation(_F, "", _one_line(f"payload is not a JSON object (got {_json_type(groups['got'])})"))
        if "value" in groups:
            groups["value"] = groups["value"][:_MAX_NAME]
        if "expected" in groups:
            groups["expected"] = _json_type(groups["expected"])
            groups["got"] = _json_type(groups["got"])
        return Violation(code, _one_line(path)[:_MAX_PATH], _one_line(template.format(**groups)))
    return Violation(_F, _one_line(path)[:_MAX_PATH], _one_line(text.replace("`", ""))[:_MAX_PATH])


_KNOWN_ACTIONS = frozenset(messages.ACTIONS)
