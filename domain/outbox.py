"""The outbox: everything the station sends to the CSMS, in one place.

- The answers to the CSMS's CALLs (CALLRESULT / CALLERROR frames), sent at once.
- The station's own CALLs, one at a time (OCPP-J: one outstanding CALL):
  1. `send_first`: the BootNotification, the only CALL before the CSMS accepted the station
     (B02/B03);
  2. replies the CSMS asked for (NotifyReport after GetReport, a triggered message: F06),
     also sent while Pending (B02.FR.02);
  3. the queue, in order: volatile messages, and durable ones (stored before they are first
     sent, deleted after their CALLRESULT: TransactionEvents, security events, and every
     reporting message with QueueAllMessages, PICS C-21), retried after a CALLERROR or a
     timeout by E13 (MessageAttempts / MessageAttemptInterval), then dropped;
  4. a Heartbeat after HeartbeatInterval without any exchange (B04, G02).
- Every CALL carries who handles its answer (`Answer`); durable ones restored after a
  restart find theirs by action in `routes`. No caller looks at a response's type.

The message registry (action -> request type) is passed in, so another protocol version can
reuse the outbox; so is the RPC endpoint (framing, timeouts).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import msgspec

from domain.device_model import DeviceModel, VariableRef
from domain.effects import Effect, Log, Send, StoreRecords
from domain.ocppj import CallErrorReceived, CallResultReceived, CallTimedOut, OcppJEndpoint
from domain.queue import TABLE as QUEUE_TABLE, DurableQueue, Queued

__all__ = ["QUEUE_TABLE", "Answer", "Failure", "Outbox", "Registration"]

_QUEUE_ALL = VariableRef("OCPPCommCtrlr", "QueueAllMessages")


class Registration(StrEnum):
    """Where the BootNotification handshake stands in this boot cycle."""

    Unregistered = "Unregistered"   # no BootNotificationResponse yet
    Pending = "Pending"
    Rejected = "Rejected"
    Accepted = "Accepted"


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a CALL of ours got no CALLRESULT: a CALLERROR, no answer within MessageTimeout,
    or the link dropped while it was outstanding."""

    kind: str                   # "error" | "timeout" | "lost"
    text: str


class Answer(Protocol):
    """Who handles the answer to one of the station's CALLs."""

    def result(self, request: msgspec.Struct, response: msgspec.Struct, now: float) -> None: ...

    def failed(self, request: msgspec.Struct, failure: Failure, now: float) -> None: ...


class _Ignore:
    def result(self, request, response, now) -> None:
        pass

    def failed(self, request, failure, now) -> None:
        pass


IGNORE: Answer = _Ignore()


@dataclass(slots=True, eq=False)
class _Item:
    request: msgspec.Struct
    answer: Answer
    queued: Queued | None = None        # durable: its stored record
    keep_on_loss: bool = True           # sent again after a link loss (False: failed "lost")
    origin: str = "queue"               # "queue" | "reply" | "first" | "heartbeat"


class Outbox:
    TABLE = QUEUE_TABLE             # the durable queue's record table

    def __init__(self, *, dm: DeviceModel, effects: list[Effect],
                 registry: Mapping[str, type[msgspec.Struct]]) -> None:
        self.dm = dm
        self._effects = effects                 # the station's effects of the current input
        self._registry = registry
        self.rpc: OcppJEndpoint = None          # type: ignore[assignment]  # attach()
        self._routes: Mapping[str, Answer] = {}
        self.link_up = False
        self.registration = Registration.Unregistered
        self.last_sent_at = 0.0                 # when our last CALL went out (for round trips)
        self._durable = DurableQueue({}, registry)
        self._queue: deque[_Item] = deque()
        self._replies: deque[_Item] = deque()
        self._first: _Item | None = None
        self._in_flight: _Item | None = None
        self._heartbeat: _Item | None = None    # set by `heartbeat()`
        self._heartbeat_due: float | None = None

    @property
    def queued(self) -> int:
        """Stored messages not yet delivered (TransactionEvents and the like)."""
        return len(self._durable)

    def attach(self, rpc: OcppJEndpoint, routes: Mapping[str, Answer], records: Mapping[str, str]) -> None:
        """The RPC endpoint, the answer routes of the blocks (for durable messages restored),
        and what a previous run left undelivered."""
        self.rpc = rpc
        self._routes = routes
        self._durable = DurableQueue(records, self._registry)
        self._queue = deque(_Item(q.request, self._route(q.request), q) for q in self._durable)
        for _, why in self._durable.take_dropped():
            self._effects.append(Log("error", f"queued message dropped: {why}"))

    # --- what the blocks post ------------------------------------------------------------
    def answer(self, message_id: str, response: msgspec.Struct) -> None:
        """CALLRESULT to a CSMS CALL."""
        self._effects.append(Send(self.rpc.result_frame(message_id, response)))

    def refuse(self, message_id: str, code: str, description: str) -> None:
        """CALLERROR to a CSMS CALL."""
        self._effects.append(Send(self.rpc.error_frame(message_id, code, description)))

    def send_frame(self, frame: str) -> None:
        """A frame the RPC layer built (the CALLERROR to a bad frame)."""
        self._effects.append(Send(frame))

    def send_first(self, request: msgspec.Struct, answer: Answer) -> None:
        """The BootNotification: goes before anything else, also while not registered."""
        self._first = _Item(request, answer, keep_on_loss=False, origin="first")

    def reply(self, request: msgspec.Struct, answer: Answer | None = None, *, resend: bool = False) -> None:
        """A message the CSMS asked for (its answer goes where that action's answers go);
        `resend`: sent again after a link loss (a NotifyReport page), otherwise given up."""
        self._replies.append(_Item(request, answer or self._route(request), keep_on_loss=resend, origin="reply"))

    def post(self, request: msgspec.Struct, answer: Answer | None = None, *, question: bool = False,
             volatile: bool = False) -> None:
        """Queue one of our CALLs. A `question` (an AuthorizeRequest: its answer is wanted now)
        is never stored and is given up when the link drops (failed "lost"); a `volatile`
        message is never stored (it could not be: storage is failing); every other message is
        stored like the transaction events when QueueAllMessages is true (PICS C-21)."""
        answer = answer or self._route(request)
        if not (question or volatile) and self._queue_all():
            self.post_durable([request], answer)
        else:
            self._queue.append(_Item(request, answer, keep_on_loss=not question))

    def post_durable(self, requests: list[msgspec.Struct], answer: Answer | None = None, *,
                     kv: dict[str, str | None] | None = None) -> None:
        """Queue messages that must reach the CSMS across network and power loss: one
        StoreRecords change (with `kv`, e.g. the state machine's snapshot) before any is sent."""
        upserts: dict[str, str] = {}
        deletes: tuple[str, ...] = ()
        for request in requests:
            queued, change = self._durable.push(request)
            upserts.update(change.upserts)
            deletes += change.deletes
            self._queue.append(_Item(request, answer or self._route(request), queued))
        self._effects.append(StoreRecords(QUEUE_TABLE, upserts, deletes, kv=kv or {}))

    def heartbeat(self, request: msgspec.Struct, answer: Answer) -> None:
        """The Heartbeat to send after HeartbeatInterval of silence, and who takes its answer."""
        self._heartbeat = _Item(request, answer, keep_on_loss=False, origin="heartbeat")

    # --- registration and link ---------------------------------------------------------
    def accepted(self, now: float) -> None:
        self.registration = Registration.Accepted
        self._heartbeat_due = now + self._heartbeat_interval()

    def heartbeat_interval_changed(self) -> None:
        if self.registration is Registration.Accepted:
            self._heartbeat_due = self.last_sent_at + self._heartbeat_interval()

    def connected(self) -> None:
        self.link_up = True
        if self._queue and self._queue[0].queued is not None:
            self._queue[0].queued.not_before = 0.0           # the head goes at once, attempts kept

    def disconnected(self, now: float) -> None:
        """The link dropped. The CALL in flight: a queued message stays the head and is sent
        again after reconnecting (that send was no attempt, E13); a NotifyReport page goes
        back to the front of the replies; anything else is given up (failed "lost"): the
        BootNotification is sent again on the next connection, an Authorize decided offline."""
        self.link_up = False
        lost = self.rpc.connection_lost()
        item, self._in_flight = self._in_flight, None
        if lost is None or item is None:
            return
        if item.keep_on_loss:
            if item.origin == "reply":
                self._replies.appendleft(item)
            elif item.queued is not None:
                self._durable.unsent(item.queued)
            return
        if self._queue and self._queue[0] is item:
            self._queue.popleft()
        item.answer.failed(item.request, Failure("lost", "the link dropped"), now)

    # --- the answers -----------------------------------------------------------------------
    def result(self, ev: CallResultReceived, now: float) -> None:
        item, self._in_flight = self._in_flight, None
        if item is None:
            return
        self._finish(item, delivered=True)
        item.answer.result(ev.request, ev.response, now)

    def failed(self, ev: CallErrorReceived | CallTimedOut, now: float) -> None:
        timed_out = isinstance(ev, CallTimedOut)
        what = "no answer (MessageTimeout)" if timed_out else f"{ev.code}: {ev.description}"
        self._effects.append(Log("warning", f"{ev.action} failed: {what}"))
        item, self._in_flight = self._in_flight, None
        if item is None:
            return
        if item.queued is not None:
            self._retry(item, ev.action, now, what, retried=timed_out or item.request.action == "TransactionEvent")
        else:
            self._finish(item, delivered=False)
        item.answer.failed(item.request, Failure("timeout" if timed_out else "error", what), now)

    # --- sending ---------------------------------------------------------------------------
    def pump(self, now: float) -> None:
        """Send the next CALL if the link, the registration and the one-call rule allow it."""
        if not self.link_up or self.rpc.busy:
            return
        if self.registration is not Registration.Accepted:
            if self._first is not None:
                item, self._first = self._first, None
                self._send(item, now)
            elif self._replies and self.registration is Registration.Pending:
                self._send(self._replies.popleft(), now)
        elif self._replies:
            self._send(self._replies.popleft(), now)
        elif self._queue:
            head = self._queue[0]
            if head.queued is None:
                self._send(head, now)
            elif head.queued.not_before <= now:
                self._durable.sent(head.queued)
                self._send(head, now)
        elif self._heartbeat is not None and self._heartbeat_due is not None and now >= self._heartbeat_due:
            self._send(self._heartbeat, now)

    def next_deadline(self) -> float | None:
        """A timeout, a retry or a heartbeat that is due (None: nothing to wait for). While a
        CALL waits for its answer only its timeout counts: pump() sends nothing before it
        (one CALL at a time, Part 4 §4.1.1), so what is due behind it is no deadline."""
        d = self.rpc.next_deadline()
        if self.link_up and self.registration is Registration.Accepted and not self.rpc.busy:
            w = None
            if self._queue and self._queue[0].queued is not None:
                w = self._queue[0].queued.not_before
            elif not self._queue and not self._replies:
                w = self._heartbeat_due
            if w is not None and (d is None or w < d):
                d = w
        return d

    @property
    def has_work(self) -> bool:
        """Something waits to be sent (the per-sample path checks this before pumping)."""
        return bool(self._queue or self._replies or self._first)

    def durable_requests(self):
        """The durable messages not yet delivered, oldest first."""
        return (item.request for item in self._queue if item.queued is not None)

    # --- helpers ---------------------------------------------------------------------------
    def _send(self, item: _Item, now: float) -> None:
        try:
            # a restored durable message goes out as stored (its typed decode checked it)
            frame = self.rpc.send_call(item.request, now, item.queued.payload if item.queued else None)
        except ValueError as exc:  # OutboundInvalid: a bug or a bad configured value; never send it
            self._effects.append(Log("error", f"not sending {type(item.request).__name__}: {exc}"))
            self._finish(item, delivered=True)
            return
        self._in_flight = item
        self.last_sent_at = now
        if self.registration is Registration.Accepted:
            # HeartbeatInterval is an interval of inactivity (no OCPP exchange).
            self._heartbeat_due = now + self._heartbeat_interval()
        self._effects.append(Send(frame, queued=item.queued is not None))

    def _finish(self, item: _Item, *, delivered: bool) -> None:
        """The queue's head `item` is done with: answered, or given up."""
        if self._queue and self._queue[0] is item:
            self._queue.popleft()
            if item.queued is not None and delivered:
                self._effects.append(self._durable.delivered(item.queued))

    def _retry(self, item: _Item, action: str, now: float, what: str, *, retried: bool) -> None:
        """E13: MessageAttempts / MessageAttemptInterval, then dropped. TransactionEvents are
        retried; any other durable message refused by a CALLERROR would be refused again:
        dropped at once (a timeout is retried)."""
        q = self._durable
        change = q.failed(item.queued, now, why=what,
                          max_attempts=self.dm.get_int("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent")
                          if retried else 1,
                          interval=self.dm.get_int("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent"))
        if change is not None:
            self._effects.append(change)
        for _, why in q.take_dropped():
            self._finish(item, delivered=False)
            self._effects.append(Log("error", f"{action} dropped after {item.queued.attempts} attempts: {why}"))

    def _route(self, request: msgspec.Struct) -> Answer:
        return self._routes.get(request.action, IGNORE)

    def _queue_all(self) -> bool:
        return self.dm.definition(_QUEUE_ALL) is not None and self.dm.value(_QUEUE_ALL) == "true"

    def _heartbeat_interval(self) -> int:
        return max(1, self.dm.get_int("OCPPCommCtrlr", "HeartbeatInterval"))


