"""OCPP-J RPC framework (OCPP 2.0.1 Part 4, section 4) as a sans-I/O state machine.

In the style of h11: the transport hands every inbound text frame to
`OcppJEndpoint.receive(frame, now)` and gets back one event saying what it was
and what to do; outbound frames are built by `send_call()`, `result_frame()`
and `error_frame()` and sent by the caller. Nothing here reads a clock, a
socket or a file: time comes in as `now` (any monotonic reading in seconds).

Events returned by `receive()` / `check_timeout()`:

* `IncomingCall`       a valid CALL for a supported action; answer it with
                       `result_frame()` (or `error_frame()`).
* `CallResultReceived` the CALLRESULT for our outstanding CALL.
* `CallErrorReceived`  the CALLERROR for our outstanding CALL, or a CALLRESULT
                       for it whose payload violates the response schema.
* `CallTimedOut`       our outstanding CALL was not answered in time.
* `Reply`              bad inbound input: send `frame` (a CALLERROR) back.
* `Dropped`            nothing to send (e.g. a response to an unknown id).

Rules (Part 4 section 4 + errata 2025-01):

* 4.1.1: at most one outstanding CALL per connection (`send_call` raises
  `CallPending` while `busy`); a CALL has been responded to when a CALLRESULT
  or CALLERROR with its message id arrives, or it times out.
* 4.1.3 / 4.4: a message type other than 2/3/4 is answered with
  MessageTypeNotSupported.  The errata's SEND message (type 6) belongs to
  OCPP 2.1 and is answered the same way here.
* 4.1.4: message ids are strings of at most 36 characters; an id that cannot
  be read is answered with "-1" (4.2.3).
* 4.2.3: a CALLERROR has 5 elements; description string[255], details object.
* A frame that is (structurally) a CALLRESULT or CALLERROR is never answered
  with a CALLERROR, even when malformed, so two endpoints can never ping-pong
  errors; a malformed response to our outstanding call still ends that call.
* 4.1.5 allows `null` as well as `{}` for "no payload"; an inbound `null`
  payload is therefore read as `{}` (and then validated like `{}`). A `null`
  for a field is a TypeConstraintViolation (4.1.5: an empty field is left out).
* Leniency (README "Leniencies"): a date-time without UTC offset in any
  date-time field of a CALL or CALLRESULT from the CSMS is read as UTC. The
  event carries a `warning` for the log, on the first such frame of a
  connection only (`connection_lost()` starts the next connection afresh).
  What we send is never lenient: `send_call` refuses a date-time without
  offset.

Schema violations are mapped to RPC error codes by `classify_violation()`,
the one place that decides it (see its docstring for the reasoning).
"""
from __future__ import annotations

import datetime
import enum
import re
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from domain import messages

__all__ = [
    "CallErrorReceived",
    "CallPending",
    "CallResultReceived",
    "CallTimedOut",
    "Dropped",
    "IncomingCall",
    "MAX_DESCRIPTION",
    "MAX_MESSAGE_ID",
    "OcppJEndpoint",
    "OutboundInvalid",
    "Reply",
    "RpcErrorCode",
    "Violation",
    "classify_violation",
]

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


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class IncomingCall:
    message_id: str
    action: str
    request: msgspec.Struct
    warning: str | None = None  # a leniency used, for the log (once per connection)


@dataclass(frozen=True, slots=True)
class CallResultReceived:
    message_id: str
    action: str
    request: msgspec.Struct
    response: msgspec.Struct
    warning: str | None = None  # a leniency used, for the log (once per connection)


@dataclass(frozen=True, slots=True)
class CallErrorReceived:
    message_id: str
    action: str
    request: msgspec.Struct
    code: str
    description: str
    details: dict


@dataclass(frozen=True, slots=True)
class CallTimedOut:
    message_id: str
    action: str
    request: msgspec.Struct


@dataclass(frozen=True, slots=True)
class Reply:
    """Send `frame` (a CALLERROR built by the endpoint); `reason` is for the log."""

    frame: str
    reason: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """Nothing to send; `reason` is for the log."""

    reason: str


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


# --------------------------------------------------------------------------- codecs (shared, built once)

_frame_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_str_decoder = msgspec.json.Decoder(str)
_int_decoder = msgspec.json.Decoder(int)
_object_decoder = msgspec.json.Decoder(dict[str, Any])
_encode = msgspec.json.Encoder().encode

_KNOWN_ACTIONS = frozenset(messages.ACTIONS)
_request_decoders: dict[str, msgspec.json.Decoder] = {}
_response_decoders: dict[str, msgspec.json.Decoder] = {}
# outbound request class -> (action, b',"Action",', decoder)
_outbound: dict[type, tuple[str, bytes, msgspec.json.Decoder]] = {}

_EMPTY_OBJECT = b"{}"
_NULL_PAYLOAD = "Expected `object`, got `null`"
_NO_OFFSET = "Expected `datetime` with a timezone component"  # a valid RFC 3339 date-time but for the offset
_NO_FIELDS: tuple[str, ...] = ()
_any_decoder = msgspec.json.Decoder()
_OffsetLess = Annotated[datetime.datetime, msgspec.Meta(tz=False)]
# message class -> where its date-time fields are (see _date_time_plan)
_date_time_plans: dict[type, Any] = {}


def _request_decoder(action: str) -> msgspec.json.Decoder:
    dec = _request_decoders.get(action)
    if dec is None:
        dec = _request_decoders[action] = msgspec.json.Decoder(messages.REQUESTS[action])
    return dec


def _response_decoder(action: str) -> msgspec.json.Decoder:
    dec = _response_decoders.get(action)
    if dec is None:
        dec = _response_decoders[action] = msgspec.json.Decoder(messages.RESPONSES[action])
    return dec


def _outbound_entry(cls: type) -> tuple[str, bytes, msgspec.json.Decoder]:
    entry = _outbound.get(cls)
    if entry is None:
        action = getattr(cls, "action", None)
        if not isinstance(action, str) or messages.REQUESTS.get(action) is not cls:
            raise OutboundInvalid(getattr(cls, "__name__", "?"), "", "not an OCPP 2.0.1 request type")
        entry = _outbound[cls] = (action, b"," + _encode(action) + b",", _request_decoder(action))
    return entry


def _decode_payload(decoder: msgspec.json.Decoder, raw: msgspec.Raw) -> tuple[Any, tuple[str, ...] | list[str]]:
    """Decode a CSMS payload: (message, wire paths of the date-times read as UTC).

    Raises msgspec.ValidationError. A null payload is read as {} (4.1.5). One pass
    over the JSON; only a payload with a date-time without offset is read again
    (`_read_offsetless_as_utc`), so the leniency costs nothing on the usual path.
    """
    try:
        return decoder.decode(raw), _NO_FIELDS
    except msgspec.ValidationError as exc:
        text = str(exc)
        if text == _NULL_PAYLOAD:
            return decoder.decode(_EMPTY_OBJECT), _NO_FIELDS
        if text.startswith(_NO_OFFSET):
            return _read_offsetless_as_utc(decoder, raw, exc)
        raise


def _read_offsetless_as_utc(
    decoder: msgspec.json.Decoder, raw: msgspec.Raw, error: msgspec.ValidationError
) -> tuple[Any, list[str]]:
    """The leniency of README "Leniencies": every date-time field of the payload
    that has no UTC offset is read as UTC, then the payload is decoded as strictly
    as ever (any other violation is raised as usual). Only date-time fields of the
    message type are touched, never a string that merely looks like a date-time."""
    tree = _any_decoder.decode(raw)
    found: list[str] = []
    tree = _as_utc(tree, _date_time_plan(decoder.type), "", found)
    if not found:  # cannot happen: msgspec reported one; keep its error then
        raise error
    return decoder.decode(_encode(tree)), found


def _date_time_plan(cls: type) -> Any:
    """Where `cls` has date-time fields: True (this value), {wire name: plan} (an
    object's fields that have some), [plan] (each item of an array); None: nowhere."""
    plan = _date_time_plans.get(cls, False)
    if plan is False:
        plan = _date_time_plans[cls] = _plan_of(msgspec.inspect.type_info(cls))
    return plan


def _plan_of(t: msgspec.inspect.Type) -> Any:
    if isinstance(t, msgspec.inspect.DateTimeType):
        return True
    if isinstance(t, msgspec.inspect.StructType):
        fields = {f.encode_name: p for f in t.fields if (p := _plan_of(f.type)) is not None}
        return fields or None
    if isinstance(t, msgspec.inspect.ListType):
        item = _plan_of(t.item_type)
        return None if item is None else [item]
    return None


def _as_utc(value: Any, plan: Any, path: str, found: list[str]) -> Any:
    """`value` (decoded JSON) with the offset-less date-times at `plan` made UTC
    datetimes; their wire paths are appended to `found`."""
    if plan is True:
        if type(value) is str:
            try:
                naive = msgspec.convert(value, _OffsetLess)
            except msgspec.ValidationError:
                return value  # not RFC 3339, or with an offset: left to the strict decoder
            found.append(path)
            return naive.replace(tzinfo=datetime.timezone.utc)
        return value
    if plan is None:
        return value
    if type(plan) is dict:
        if type(value) is dict:
            for name, sub in plan.items():
                if name in value:
                    value[name] = _as_utc(value[name], sub, f"{path}.{name}" if path else name, found)
        return value
    if type(value) is list:
        for n, item in enumerate(value):
            value[n] = _as_utc(item, plan[0], f"{path}[{n}]", found)
    return value


def _read(decoder: msgspec.json.Decoder, parts: list[msgspec.Raw], index: int) -> Any:
    """parts[index] decoded, or None if it is absent or of the wrong type."""
    if index >= len(parts):
        return None
    try:
        return decoder.decode(parts[index])
    except (msgspec.DecodeError, ValueError, RecursionError):
        return None


def _describe_raw(raw: msgspec.Raw) -> str:
    return _one_line(bytes(raw)[:40].decode("utf-8", "replace"))


def _new_uuid() -> str:
    return str(uuid.uuid4())


# A frame that is not parseable JSON but starts like a CALLRESULT/CALLERROR.
_RESPONSE_SNIFF = re.compile(r'\s*\[\s*([34])\s*,\s*(?:"([^"\\]{1,36})")?')


@dataclass(slots=True)
class _Pending:
    message_id: str
    action: str
    request: msgspec.Struct
    sent_at: float
    response_decoder: msgspec.json.Decoder


# --------------------------------------------------------------------------- endpoint


class OcppJEndpoint:
    """One OCPP-J connection's RPC state (sans-I/O).

    supported_actions: the CSMS-initiated actions this station handles; other
        OCPP 2.0.1 actions are answered NotSupported, unknown ones NotImplemented.
    new_message_id: makes ids for our CALLs (default: uuid4 strings).
    message_timeout: seconds to wait for a CALLRESULT/CALLERROR; may be changed
        at any time (OCPPCommCtrlr.MessageTimeout), it applies to the
        outstanding call too.
    refusal: when set to (code, description), every well-formed CALL is answered
        with that CALLERROR before its action or payload is looked at (B03.FR.08:
        SecurityError while the BootNotification is not accepted).
    """

    __slots__ = ("_call_decoders", "_new_message_id", "_offset_warned", "_pending", "message_timeout", "refusal")

    def __init__(
        self,
        *,
        supported_actions: Collection[str],
        new_message_id: Callable[[], str] = _new_uuid,
        message_timeout: float = 30.0,
    ) -> None:
        unknown = sorted(set(supported_actions) - _KNOWN_ACTIONS)
        if unknown:
            raise ValueError(f"not OCPP 2.0.1 actions: {', '.join(unknown)}")
        self._call_decoders = {a: _request_decoder(a) for a in supported_actions}
        self._new_message_id = new_message_id
        self.message_timeout = message_timeout
        self._pending: _Pending | None = None
        self.refusal: tuple[str, str] | None = None
        self._offset_warned = False  # a date-time without offset was logged on this connection

    # ---------------------------------------------------------------- outbound

    @property
    def busy(self) -> bool:
        """A CALL of ours is outstanding."""
        return self._pending is not None

    def send_call(self, request: msgspec.Struct, now: float) -> str:
        """The CALL frame for `request`; the call is outstanding from `now`.

        Raises CallPending while another call is outstanding and
        OutboundInvalid (a ValueError) if `request` violates its schema.
        """
        if self._pending is not None:
            raise CallPending(
                f"{self._pending.action} call {self._pending.message_id} is still outstanding"
            )
        action, action_json, decoder = _outbound_entry(type(request))
        try:
            payload = _encode(request)
        except (TypeError, ValueError) as exc:  # incl. UnicodeEncodeError
            raise OutboundInvalid(action, "", _one_line(f"cannot be encoded: {exc}")) from None
        try:
            decoder.decode(payload)
        except msgspec.ValidationError as exc:
            v = classify_violation(exc)
            raise OutboundInvalid(action, v.field, v.message, v.code) from None
        message_id = self._new_message_id()
        if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID:
            raise ValueError(f"new_message_id() returned an invalid message id: {message_id!r}")
        frame = (b"[2," + _encode(message_id) + action_json + payload + b"]").decode()
        self._pending = _Pending(message_id, action, request, now, _response_decoder(action))
        return frame

    def next_deadline(self) -> float | None:
        """When the outstanding call times out (None: no call outstanding)."""
        p = self._pending
        return None if p is None else p.sent_at + self.message_timeout

    def check_timeout(self, now: float) -> CallTimedOut | None:
        p = self._pending
        if p is None or now < p.sent_at + self.message_timeout:
            return None
        self._pending = None
        return CallTimedOut(p.message_id, p.action, p.request)

    def connection_lost(self) -> tuple[str, msgspec.Struct] | None:
        """Forget the outstanding call; returns (message_id, request) for a resend.

        The next frames belong to a new connection: its first date-time without
        offset is warned about again."""
        p = self._pending
        self._pending = None
        self._offset_warned = False
        return None if p is None else (p.message_id, p.request)

    def result_frame(self, message_id: str, response: msgspec.Struct) -> str:
        """CALLRESULT text (not validated: this is the hot path)."""
        return _encode((3, message_id, response)).decode()

    def error_frame(
        self,
        message_id: str,
        code: RpcErrorCode | str,
        description: str = "",
        details: dict | None = None,
    ) -> str:
        """CALLERROR text; the description is cut to 255 characters."""
        return _encode(
            (4, message_id, code, description[:MAX_DESCRIPTION], {} if details is None else details)
        ).decode()

    # ---------------------------------------------------------------- inbound

    def receive(
        self, frame: str | bytes, now: float
    ) -> IncomingCall | CallResultReceived | CallErrorReceived | Reply | Dropped:
        """Classify one inbound frame (str or UTF-8 bytes). Never raises.

        `now` is not needed by any rule today (timeouts are checked by
        check_timeout); it is part of the signature so the caller need not
        change if one ever is.
        """
        try:
            return self._receive(frame)
        except Exception as exc:  # defensive: a bug here must not kill the connection
            return Dropped(_one_line(f"internal error while reading a frame: {type(exc).__name__}: {exc}")[:500])

    def _reply(self, message_id: str, code: RpcErrorCode, description: str, details: dict | None = None) -> Reply:
        description = _one_line(description)
        return Reply(self.error_frame(message_id, code, description, details), f"{code}: {description}")

    def _receive(self, frame: str | bytes) -> IncomingCall | CallResultReceived | CallErrorReceived | Reply | Dropped:
        try:
            if not isinstance(frame, str):
                bytes(frame).decode()  # the frame must be UTF-8 (4.1.2); msgspec skips strings unchecked
            parts = _frame_decoder.decode(frame)
        except msgspec.ValidationError:
            return self._reply("-1", RpcErrorCode.RpcFrameworkError, "frame is not a JSON array")
        except (msgspec.DecodeError, ValueError, RecursionError) as exc:  # ValueError: bad UTF-8 / surrogates
            if isinstance(exc, RecursionError):
                why = "frame is nested too deeply"
            elif isinstance(exc, msgspec.DecodeError):
                why = f"frame is not valid JSON ({exc})"
            else:
                why = "frame is not valid UTF-8"
            return self._unparseable(frame, why)

        n = len(parts)
        if n == 0:
            return self._reply("-1", RpcErrorCode.RpcFrameworkError, "frame is an empty array")
        try:
            mtype = _int_decoder.decode(parts[0])
        except (msgspec.DecodeError, ValueError):
            mtype = None
        message_id = None
        if n > 1:
            try:
                message_id = _str_decoder.decode(parts[1])
            except (msgspec.DecodeError, ValueError):
                pass
            else:
                if not 0 < len(message_id) <= MAX_MESSAGE_ID:
                    message_id = None

        if mtype == 2:
            return self._call(parts, message_id)
        if mtype == 3 or mtype == 4:
            return self._response(mtype, parts, message_id)
        return self._reply(
            message_id or "-1",
            RpcErrorCode.MessageTypeNotSupported,
            f"message type {_describe_raw(parts[0])} is not supported",
        )

    def _call(self, parts: list[msgspec.Raw], message_id: str | None) -> IncomingCall | Reply:
        if message_id is None:
            why = "missing" if len(parts) < 2 else "not a string of 1 to 36 characters"
            return self._reply("-1", RpcErrorCode.RpcFrameworkError, f"CALL message id is {why}")
        if len(parts) != 4:
            return self._reply(
                message_id, RpcErrorCode.RpcFrameworkError, f"CALL has {len(parts)} elements, expected 4"
            )
        try:
            action = _str_decoder.decode(parts[2])
        except (msgspec.DecodeError, ValueError):
            return self._reply(message_id, RpcErrorCode.RpcFrameworkError, "CALL action is not a string")
        if self.refusal is not None:
            return self._reply(message_id, self.refusal[0], f"{action[:60]}: {self.refusal[1]}")
        decoder = self._call_decoders.get(action)
        if decoder is None:
            shown = action[:60]
            if action in _KNOWN_ACTIONS:
                return self._reply(message_id, RpcErrorCode.NotSupported, f"{shown}Request not supported")
            return self._reply(message_id, RpcErrorCode.NotImplemented, f"action {shown!r} not implemented")
        try:
            request, offsetless = _decode_payload(decoder, parts[3])
        except msgspec.ValidationError as exc:
            v = classify_violation(exc)
            return self._reply(message_id, v.code, v.description, v.details)
        except (msgspec.DecodeError, ValueError, RecursionError) as exc:
            return self._reply(
                message_id, RpcErrorCode.FormatViolation, f"{action}Request payload unreadable: {type(exc).__name__}"
            )
        if offsetless:
            return IncomingCall(message_id, action, request, self._offset_warning(f"{action}Request", offsetless))
        return IncomingCall(message_id, action, request)

    def _response(
        self, mtype: int, parts: list[msgspec.Raw], message_id: str | None
    ) -> CallResultReceived | CallErrorReceived | Dropped:
        kind = "CALLRESULT" if mtype == 3 else "CALLERROR"
        p = self._pending
        if message_id is None:
            return Dropped(f"{kind} without a readable message id")
        if p is None:
            return Dropped(f"{kind} {message_id!r} but no call is outstanding")
        if message_id != p.message_id:
            return Dropped(f"{kind} {message_id!r} does not answer the outstanding call {p.message_id!r}")
        self._pending = None  # the call is over, whatever the frame holds
        if mtype == 3:
            if len(parts) != 3:
                return CallErrorReceived(
                    message_id, p.action, p.request, RpcErrorCode.RpcFrameworkError,
                    f"malformed CALLRESULT: {len(parts)} elements, expected 3", {},
                )
            try:
                response, offsetless = _decode_payload(p.response_decoder, parts[2])
            except msgspec.ValidationError as exc:
                v = classify_violation(exc)
                return CallErrorReceived(
                    message_id, p.action, p.request, v.code,
                    f"invalid {p.action}Response: {v.description}"[:MAX_DESCRIPTION], v.details,
                )
            except (msgspec.DecodeError, ValueError, RecursionError) as exc:
                return CallErrorReceived(
                    message_id, p.action, p.request, RpcErrorCode.FormatViolation,
                    f"invalid {p.action}Response: unreadable payload ({type(exc).__name__})", {},
                )
            if offsetless:
                warning = self._offset_warning(f"{p.action}Response", offsetless)
                return CallResultReceived(message_id, p.action, p.request, response, warning)
            return CallResultReceived(message_id, p.action, p.request, response)
        # CALLERROR: [4, id, code, description, details]; take what can be read.
        code = _read(_str_decoder, parts, 2)
        description = _read(_str_decoder, parts, 3)
        details = _read(_object_decoder, parts, 4)
        if not code:
            code = RpcErrorCode.GenericError
            if description is None:
                description = "malformed CALLERROR"
        return CallErrorReceived(
            message_id, p.action, p.request, code, description or "", {} if details is None else details
        )

    def _offset_warning(self, message: str, fields: list[str]) -> str | None:
        """The log line for date-times read as UTC: on the connection's first only."""
        if self._offset_warned:
            return None
        self._offset_warned = True
        more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
        return f"CSMS sent date-time without UTC offset in {message}.{fields[0]}{more}; read as UTC"

    def _unparseable(self, frame: str | bytes, why: str) -> Reply | Dropped | CallErrorReceived:
        """A frame that is not JSON: answer "-1", unless it looks like a CALLRESULT/CALLERROR."""
        head = frame[:128]
        if not isinstance(head, str):
            head = bytes(head).decode("utf-8", "replace")
        m = _RESPONSE_SNIFF.match(head)
        if m is None:
            return self._reply("-1", RpcErrorCode.RpcFrameworkError, why)
        kind = "CALLRESULT" if m.group(1) == "3" else "CALLERROR"
        p = self._pending
        if p is not None and m.group(2) == p.message_id:
            self._pending = None
            return CallErrorReceived(
                p.message_id, p.action, p.request,
                RpcErrorCode.FormatViolation if kind == "CALLRESULT" else RpcErrorCode.GenericError,
                f"unreadable {kind}: {why}"[:MAX_DESCRIPTION], {},
            )
        return Dropped(f"unreadable {kind} ({why})")
