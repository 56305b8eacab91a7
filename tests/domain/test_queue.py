"""The durable queue (E11-E13): order, persistence before sending, retries, drops, restart."""
from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings, strategies as st

from domain import messages as m
from domain.effects import StoreRecords
from domain.queue import DurableQueue

T = datetime(2026, 1, 1, tzinfo=timezone.utc)


def tx_event(seq_no: int, tx: str = "tx-1") -> m.TransactionEventRequest:
    return m.TransactionEventRequest(
        event_type=m.TransactionEvent.Updated, timestamp=T, trigger_reason=m.TriggerReason.MeterValuePeriodic,
        seq_no=seq_no, transaction_info=m.Transaction(transaction_id=tx))


def apply(db: dict, change: StoreRecords | None) -> None:
    if change is None:
        return
    if change.clear:
        db.clear()
    for k in change.deletes:
        db.pop(k, None)
    db.update(change.upserts)


def test_stored_before_sent_removed_after_delivery_in_order():
    db: dict = {}
    q = DurableQueue(db, m.REQUESTS)
    for i in range(3):
        apply(db, q.push(tx_event(i))[1])
    assert len(db) == 3 and sorted(db) == list(db)
    item = q.head(0.0)
    assert item.request.seq_no == 0
    q.sent(item)
    apply(db, q.delivered(item))
    assert len(db) == 2 and q.head(0.0).request.seq_no == 1


def test_restart_resumes_with_the_same_messages_and_fresh_sequence():
    db: dict = {}
    q = DurableQueue(db, m.REQUESTS)
    for i in range(3):
        apply(db, q.push(tx_event(i))[1])
    apply(db, q.delivered(q.head(0.0)))
    again = DurableQueue(db, m.REQUESTS)
    assert [x.request for x in again] == [tx_event(1), tx_event(2)]
    apply(db, again.push(tx_event(3))[1])
    assert [x.request.seq_no for x in DurableQueue(db, m.REQUESTS)] == [1, 2, 3]


def test_retry_after_interval_times_attempts_then_drop():
    db: dict = {}
    q = DurableQueue(db, m.REQUESTS)
    apply(db, q.push(tx_event(0))[1])
    apply(db, q.push(tx_event(1))[1])
    item = q.head(0.0)
    q.sent(item)
    apply(db, q.failed(item, 10.0, max_attempts=3, interval=5, why="timeout"))
    assert q.head(14.9) is None and q.head(15.0) is item           # 5 s x 1 attempt
    q.sent(item)
    apply(db, q.failed(item, 20.0, max_attempts=3, interval=5, why="CALLERROR InternalError"))
    assert q.head(29.9) is None and q.head(30.0) is item           # 5 s x 2 attempts
    assert DurableQueue(db, m.REQUESTS).head(0.0).attempts == 2                 # attempts survive a restart
    q.sent(item)
    apply(db, q.failed(item, 31.0, max_attempts=3, interval=5, why="timeout"))
    assert [w for _, w in q.take_dropped()] == ["timeout"]
    assert q.head(31.0).request.seq_no == 1 and len(db) == 1


def test_unreadable_record_is_dropped_and_deleted_never_sent():
    db = {"000000000000": "garbage", "000000000001": '{"a":"Nope","p":{}}'}
    q = DurableQueue(db, m.REQUESTS)
    assert len(q) == 0 and len(q.take_dropped()) == 2
    apply(db, q.push(tx_event(0))[1])
    assert list(db) == ["000000000002"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["push", "deliver", "fail", "restart"]), max_size=60))
def test_order_and_exactly_once_across_any_sequence(ops):
    db: dict = {}
    q = DurableQueue(db, m.REQUESTS)
    pushed, delivered, dropped = 0, [], []
    now = 0.0
    for op in ops:
        now += 1.0
        if op == "push":
            apply(db, q.push(tx_event(pushed))[1])
            pushed += 1
        elif op in ("deliver", "fail") and (item := q.head(now + 1000)) is not None:
            q.sent(item)
            if op == "deliver":
                delivered.append(item.request.seq_no)
                apply(db, q.delivered(item))
            else:
                apply(db, q.failed(item, now, max_attempts=2, interval=1, why="x"))
                dropped += [d.request.seq_no for d, _ in q.take_dropped()]
        elif op == "restart":
            q = DurableQueue(db, m.REQUESTS)
    remaining = [x.request.seq_no for x in q]
    assert delivered == sorted(delivered)                    # in order
    assert sorted(delivered + dropped + remaining) == list(range(pushed))   # nothing lost or doubled
    assert remaining == sorted(remaining) and sorted(db) == [x.key for x in q]
