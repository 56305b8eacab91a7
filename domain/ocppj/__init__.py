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
  offset, and every date-time goes out in UTC with at most 3 fractional digits
  (Part 2 2.1 dateTime; `encode_message`).

Schema violations are mapped to RPC error codes by `classify_violation()`,
the one place that decides it (see its docstring for the reasoning).
"""
from domain.ocppj.codec import encode_message
from domain.ocppj.endpoint import OcppJEndpoint
from domain.ocppj.errors import (
    MAX_DESCRIPTION,
    MAX_MESSAGE_ID,
    CallPending,
    OutboundInvalid,
    RpcErrorCode,
    Violation,
    classify_violation,
)
from domain.ocppj.events import CallErrorReceived, CallResultReceived, CallTimedOut, Dropped, IncomingCall, Reply

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
    "encode_message",
]
