"""One OCPP-J connection's RPC state (sans-I/O): framing, the one-outstanding-CALL rule,
MessageTimeout, the answers to bad frames."""
from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

import msgspec

from domain.ocppj.codec import (
    _decode_payload,
    _describe_raw,
    _encode,
    _frame_decoder,
    _int_decoder,
    _new_uuid,
    _object_decoder,
    _outbound_entry,
    _read,
    _request_decoder,
    _response_decoder,
    _str_decoder,
    encode_message,
)
from domain.ocppj.errors import (
    _KNOWN_ACTIONS,
    MAX_DESCRIPTION,
    MAX_MESSAGE_ID,
    CallPending,
    OutboundInvalid,
    RpcErrorCode,
    _one_line,
    classify_violation,
)
from domain.ocppj.events import CallErrorReceived, CallResultReceived, CallTimedOut, Dropped, IncomingCall, Reply

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

    def send_call(self, request: msgspec.Struct, now: float, payload: bytes | None = None) -> str:
        """The CALL frame for `request`; the call is outstanding from `now`.

        `payload`: the request's JSON as it was read back by a typed decode of its action
        (a durable message restored from storage): sent as it is, not encoded and checked
        again. Raises CallPending while another call is outstanding and
        OutboundInvalid (a ValueError) if `request` violates its schema.
        """
        if self._pending is not None:
            raise CallPending(
                f"{self._pending.action} call {self._pending.message_id} is still outstanding"
            )
        action, action_json, decoder = _outbound_entry(type(request))
        if payload is None:
            payload = self._checked_payload(action, request, decoder)
        message_id = self._new_message_id()
        if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID:
            raise ValueError(f"new_message_id() returned an invalid message id: {message_id!r}")
        frame = (b"[2," + _encode(message_id) + action_json + payload + b"]").decode()
        self._pending = _Pending(message_id, action, request, now, _response_decoder(action))
        return frame

    @staticmethod
    def _checked_payload(action: str, request: msgspec.Struct, decoder: msgspec.json.Decoder) -> bytes:
        """The request's JSON, checked against its schema by a typed decode (OutboundInvalid)."""
        try:
            payload = encode_message(request)
        except (TypeError, ValueError) as exc:  # incl. UnicodeEncodeError
            raise OutboundInvalid(action, "", _one_line(f"cannot be encoded: {exc}")) from None
        try:
            decoder.decode(payload)
        except msgspec.ValidationError as exc:
            v = classify_violation(exc)
            raise OutboundInvalid(action, v.field, v.message, v.code) from None
        return payload

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
        """CALLRESULT text (not validated: this is the hot path); date-times in milliseconds."""
        return encode_message(response, (3, message_id, response)).decode()

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
