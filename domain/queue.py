"""The durable message queue (OCPP 2.0.1 E11-E13, PICS C-21): what must reach the CSMS
even across network loss and power loss.

A message is stored (one StoreRecords change) before it is first sent and deleted only
after its CALLRESULT. Messages go out strictly in order. A message that times out or is
answered by a CALLERROR is tried again after MessageAttemptInterval x the attempts so far,
up to MessageAttempts attempts, then dropped (E13: the CSMS cannot process it; holding
everything behind it would stop all later transaction messages for good).

Pure: records come in from storage at start-up, changes go out as StoreRecords effects.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from domain.effects import StoreRecords
from domain.ocppj.codec import encode_message

TABLE = "queue"
_KEY_DIGITS = 12          # keys sort as text in sequence order


class _Stored(msgspec.Struct, gc=False):
    a: str                # action
    p: msgspec.Raw        # payload, exactly as it will be sent
    n: int = 0            # attempts so far


@dataclass(slots=True)
class Queued:
    seq: int
    request: msgspec.Struct
    attempts: int = 0
    not_before: float = 0.0      # monotonic time of the next attempt (0: at once)
    payload: bytes | None = None     # restored: its JSON as stored, checked by the typed decode

    @property
    def key(self) -> str:
        return f"{self.seq:0{_KEY_DIGITS}d}"


_encode = msgspec.json.Encoder().encode
_decode_stored = msgspec.json.Decoder(_Stored).decode


class DurableQueue:
    def __init__(self, records: Mapping[str, str], registry: Mapping[str, type[msgspec.Struct]]) -> None:
        """`records` as stored; `registry` maps an action to its request type (the message
        set of the protocol version, passed in)."""
        self._items: deque[Queued] = deque()
        self.dropped: list[tuple[Queued | None, str]] = []     # for the log: (message, why)
        self._pending_deletes: list[str] = []
        for key in sorted(records):
            try:
                stored = _decode_stored(records[key])
                request = msgspec.json.decode(stored.p, type=registry[stored.a])
                self._items.append(Queued(int(key), request, stored.n, payload=bytes(stored.p)))
            except (msgspec.DecodeError, KeyError, ValueError) as exc:
                # Never sent as it is (it would be refused); deleted with the next change.
                self._pending_deletes.append(key)
                self.dropped.append((None, f"unreadable queue record {key}: {exc}"))
        seqs = [int(k) for k in records if k.isdigit()]
        self._next_seq = max(seqs) + 1 if seqs else 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(self._items)

    def push(self, request: msgspec.Struct) -> tuple[Queued, StoreRecords]:
        """Queue a message; the returned change must be stored before it is sent."""
        item = Queued(self._next_seq, request)
        self._next_seq += 1
        self._items.append(item)
        return item, StoreRecords(TABLE, {item.key: self._text(item)}, tuple(self._take_deletes()))

    def head(self, now: float) -> Queued | None:
        """The next message to send, when its time has come."""
        if self._items and self._items[0].not_before <= now:
            return self._items[0]
        return None

    def next_attempt(self) -> float | None:
        return self._items[0].not_before if self._items else None

    def sent(self, item: Queued) -> None:
        """`item` goes out now: one attempt more. (Kept in memory only, so that sending
        costs no write; a failed attempt is stored, see `failed`.)"""
        item.attempts += 1

    def unsent(self, item: Queued) -> None:
        """`item` went out but the link dropped before any answer: that send does not count as
        an attempt (E13's MessageAttempts counts the times the CSMS failed to process it), so
        link cuts alone never use up its attempts."""
        if item.attempts > 0:
            item.attempts -= 1

    def delivered(self, item: Queued) -> StoreRecords:
        """Its CALLRESULT came (or it is dropped, E13): gone for good. The delete is deferred
        (group commit): if a crash loses it, the message is sent once more after the restart,
        which at-least-once delivery allows (the CSMS knows it by transactionId and seqNo);
        it can never lose a message (docs/durability.md)."""
        if self._items and self._items[0] is item:
            self._items.popleft()
        return StoreRecords(TABLE, deletes=(item.key,), deferred=True)

    def failed(self, item: Queued, now: float, *, max_attempts: int, interval: float,
               why: str) -> StoreRecords | None:
        """Timeout or CALLERROR: try again later, or drop after the last attempt."""
        if item.attempts >= max(1, max_attempts):
            self.dropped.append((item, why))
            return self.delivered(item)
        item.not_before = now + interval * item.attempts
        return StoreRecords(TABLE, {item.key: self._text(item)})

    def link_restored(self) -> None:
        """The link came back: the head goes at once (its attempts are kept)."""
        if self._items:
            self._items[0].not_before = 0.0

    def take_dropped(self) -> list[tuple[Queued | None, str]]:
        out, self.dropped = self.dropped, []
        return out

    def _take_deletes(self) -> list[str]:
        out, self._pending_deletes = self._pending_deletes, []
        return out

    @staticmethod
    def _text(item: Queued) -> str:
        """The stored record: the request's JSON exactly as it goes on the wire (date-times with
        at most 3 fractional digits), since a restored message is sent as stored: a repeat after
        a restart is then the same bytes as the first sending."""
        payload = item.payload if item.payload is not None else encode_message(item.request)
        return _encode(_Stored(item.request.action, msgspec.Raw(payload), item.attempts)).decode()
