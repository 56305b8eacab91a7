"""A functional block of OCPP 2.0.1 (B Provisioning, C Authorization, E Transactions, ...).

A block declares what the Station routes to it:
- `calls`: the CSMS CALLs it handles, action -> handler(request, now, size) returning the
  response, (RPC error code, description) for a CALLERROR, or a hardware job whose
  `JobFinished` answers the CALL later (UnlockConnector);
- `answers`: the answers to its own CALLs, by action, for durable CALLs restored from
  storage (a CALL posted at run time carries its own `Answer`);
- `events`: the hardware event types it takes (`hardware(event, now)`);
- `jobs`: the hardware job types whose `JobFinished` it takes (`job_finished`);
- `triggers`: the messages of its own that TriggerMessage may ask for (F06), requestedMessage
  -> hook(request, now) that posts the message and returns None (Accepted) or the
  TriggerMessageResponse that refuses it; remote_control.py looks them up first;
- `tables` / `keys`: the durable record tables and station-state keys it owns (loaded
  into `StoredState` at start-up, see domain/stored_state.py);
- `next_deadline()` / `tick(now)`: its timers;
- `start`, `link_up`, `link_down`, `settle` (after every input) and `flush` (storage changes
  it collected, before an answer goes out) when it needs them;
- `name` and `needs`: the blocks it builds on, by name -> the attribute they are set to (their
  public methods only); the Station sets them once every block is built.

Every block is built as `Block(ctx, stored, args)`. Adding a block: write its module and name
its class in `BLOCKS` (domain/station.py); nothing else changes.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from domain.context import Context, StartArgs
from domain.outbox import Answer
from domain.stored_state import StoredState


class Block:
    name: ClassVar[str] = ""
    needs: ClassVar[Mapping[str, str]] = {}       # attribute -> name of the block it is set to
    calls: Mapping[str, Any] = {}
    answers: Mapping[str, Answer] = {}
    triggers: Mapping[str, Any] = {}
    events: ClassVar[tuple[type, ...]] = ()
    jobs: ClassVar[tuple[type, ...]] = ()
    tables: ClassVar[tuple[str, ...]] = ()
    keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: Context, stored: StoredState, args: StartArgs) -> None:
        self.ctx = ctx

    @classmethod
    def stored_keys(cls, evse_ids: Iterable[int]) -> tuple[str, ...]:
        """The station-state keys it owns, for an installation with these EVSEs."""
        return cls.keys

    def start(self, now: float, *, soft_reboot: bool = False) -> None:
        """After construction, before the link: what the previous run left (recovery);
        `soft_reboot`: the previous run ended on purpose (not a power loss)."""

    def link_up(self, now: float) -> None:
        pass

    def link_down(self, now: float) -> None:
        pass

    def hardware(self, event: Any, now: float) -> None:
        pass

    def job_finished(self, event: Any, now: float) -> None:
        pass

    def next_deadline(self) -> float | None:
        return None

    def tick(self, now: float) -> None:
        pass

    def settle(self, now: float) -> None:
        """After every input (a change scheduled for when an EVSE is idle, ...)."""

    def flush(self) -> None:
        """Put the storage changes collected so far into the context's effects."""


class Routing:
    """What the Station routes where, derived from what its blocks declare; the blocks' `needs`
    are met here."""

    def __init__(self, blocks: Iterable[Block]) -> None:
        self.blocks = tuple(blocks)
        self.by_name = {b.name: b for b in self.blocks}
        for b in self.blocks:
            for attribute, name in b.needs.items():
                setattr(b, attribute, self.by_name[name])
        self.calls = _merge("CALL", (b.calls for b in self.blocks))
        self.answers = _merge("answers to", (b.answers for b in self.blocks))
        self.triggers = _merge("TriggerMessage of", (b.triggers for b in self.blocks))
        self.by_event: dict[type, list[Block]] = {}
        self.by_job: dict[type, Block] = {}
        for b in self.blocks:
            for t in b.events:
                self.by_event.setdefault(t, []).append(b)
            for t in b.jobs:
                self.by_job[t] = b
        self.job_types = tuple(self.by_job)
        self.timed = [b for b in self.blocks if type(b).next_deadline is not Block.next_deadline]
        self.settling = [b for b in self.blocks if type(b).settle is not Block.settle]
        self.flushing = [b for b in self.blocks if type(b).flush is not Block.flush]


def _merge(what: str, tables: Iterable[Mapping]) -> dict:
    merged: dict = {}
    for table in tables:
        for key, value in table.items():
            if key in merged:
                raise ValueError(f"two blocks handle the {what} {key}")
            merged[key] = value
    return merged
