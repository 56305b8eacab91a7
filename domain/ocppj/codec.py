"""Decoders and encoders, built once per action; the date-time leniency (README "Leniencies");
the date-times the station sends, in milliseconds (`encode_message`, public: the one encoding of
what the station sends, also for measuring its size)."""
from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Any

import msgspec

from domain import messages
from domain.ocppj.errors import OutboundInvalid, _one_line

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
# message class -> its date-time attributes, to send in milliseconds (see _ms_plan)
_ms_plans: dict[type, Any] = {}
_UTC = datetime.timezone.utc
_DATETIME = datetime.datetime


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


# --------------------------------------------------------------------------- date-times sent


def encode_message(message: Any, whole: Any = None) -> bytes:
    """`whole` (default: `message`, a message Struct that is part of it) encoded with every
    date-time of `message` written in UTC with at most 3 fractional digits: Part 2 2.1,
    primitive datatypes, dateTime ("The number of decimal places SHALL NOT exceed the maximum
    of 3"), as in Part 4's examples (`2013-02-01T20:53:32.486Z`). msgspec writes 6 digits
    whenever there are microseconds, so the date-time attributes (and only those: never a
    string that looks like one) are swapped for their JSON text while encoding and put back
    after; the message is unchanged. A message type without date-times costs one lookup."""
    plan = _ms_plans.get(type(message), False)
    if plan is False:
        plan = _ms_plans[type(message)] = _ms_plan_of(msgspec.inspect.type_info(type(message)))
    swapped = None if plan is None else _swap_date_times(message, plan, None)
    if swapped is None:
        return _encode(message if whole is None else whole)
    try:
        return _encode(message if whole is None else whole)
    finally:
        for obj, name, value in swapped:
            setattr(obj, name, value)


def _ms_plan_of(t: msgspec.inspect.Type) -> Any:
    """Where a type has date-time attributes: True (this value), ((attribute, plan), ...) (a
    Struct's), [plan] (each item of a list of Structs); None: nowhere."""
    if isinstance(t, msgspec.inspect.DateTimeType):
        return True
    if isinstance(t, msgspec.inspect.StructType):
        fields = tuple((f.name, p) for f in t.fields if (p := _ms_plan_of(f.type)) is not None)
        return fields or None
    if isinstance(t, msgspec.inspect.ListType):
        item = _ms_plan_of(t.item_type)
        return None if item is None or item is True else [item]    # the schemas have no date-time arrays
    return None


def _swap_date_times(obj: Any, plan: tuple, swapped: list | None) -> list[tuple[Any, str, Any]] | None:
    """The date-times at `plan` in `obj` swapped for their text; returns what was swapped
    (None: nothing), for putting it back."""
    for name, sub in plan:
        value = getattr(obj, name)
        if value is None:
            continue
        if sub is True:
            if value.__class__ is _DATETIME and value.tzinfo is _UTC and not value.microsecond:
                continue                        # the usual whole UTC second: msgspec writes it so
            text = _ms_text(value)
            if text is not None:
                if swapped is None:
                    swapped = []
                swapped.append((obj, name, value))
                setattr(obj, name, text)
        elif type(sub) is list:
            if type(value) is list:
                for item in value:
                    swapped = _swap_date_times(item, sub[0], swapped)
        else:
            swapped = _swap_date_times(value, sub, swapped)
    return swapped


def _ms_text(dt: Any) -> msgspec.Raw | None:
    """The JSON text of an aware datetime in UTC (`Z`), milliseconds cut, no fraction within
    the first millisecond of a second; None where msgspec writes it so already (UTC, whole
    second) or where the encoder's own check must refuse it (not a datetime, no offset).
    msgspec writes the UTC text (`"YYYY-MM-DDTHH:MM:SS.ffffffZ"`, fixed width), cut here: five
    times faster than formatting it in Python."""
    if not isinstance(dt, datetime.datetime):
        return None
    if dt.tzinfo is not _UTC:
        if dt.utcoffset() is None:
            return None
        dt = dt.astimezone(_UTC)
        if not dt.microsecond:
            return msgspec.Raw(_encode(dt))
    elif not dt.microsecond:
        return None
    text = _encode(dt)
    return msgspec.Raw(text[:24] + b'Z"' if dt.microsecond >= 1000 else text[:20] + b'Z"')
