"""What the RPC endpoint makes of a frame: the events the station acts on."""
from __future__ import annotations

from dataclasses import dataclass

import msgspec

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

