"""StorageGuard on a real SQLite file on a real tmpfs that fills up (root: tests/fs_faults.py):
writes that cannot be stored are kept in memory in order, read back, stored as one change
when space returns, and keep memory bounded however many writes come."""
from __future__ import annotations

import logging
import math

from adapters.sqlite_storage import SqliteStorage
from bootstrap.storage_guard import MAX_DEFERRED, RETRY_INTERVAL, StorageGuard
from tests.fs_faults import fill, tmpfs


def _guard(path, now=100.0) -> StorageGuard:
    guard = StorageGuard(now=lambda: now)
    guard.attach(SqliteStorage(path))
    return guard


def test_writes_are_kept_in_order_read_back_and_stored_as_one_change(tmp_path):
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        g = _guard(mnt / "station.db")
        g.write_records("queue", {"000000000000": "e0", "000000000001": "e1"}, kv={"tx:1": "s1"})
        g.write_records("auth_cache", {"a": "1", "b": "2"})
        assert g.failing is None and not g.discovered
        filler = fill(mnt)

        g.write_records("queue", {"000000000002": "e2"}, kv={"tx:1": "s2"})       # finds the disk full
        assert g.failing == "database or disk is full" and g.discovered
        assert g.retry_at == 100.0 + RETRY_INTERVAL
        g.write_records("queue", deletes=("000000000000",))                        # in the file: tombstone
        g.write_records("queue", {"000000000003": "e3"}, kv={"tx:1": "s3"})
        g.write_records("queue", deletes=("000000000002", "000000000003"))         # never stored: nothing
        g.write_records("auth_cache", {"c": "3"}, clear=True)
        g.put("clean_stop", None)
        g.put("next_boot_reason", "RemoteReset")
        g.save_variable("OCPPCommCtrlr/HeartbeatInterval", "30")
        g.save_variable("OCPPCommCtrlr/HeartbeatInterval", "31")

        latest = {"queue": {"000000000001": "e1"}, "auth_cache": {"c": "3"}}
        for table, records in latest.items():
            assert g.load_records(table) == records
        assert g.get("tx:1") == "s3" and g.get("next_boot_reason") == "RemoteReset"
        assert g.load_variables()[("OCPPCommCtrlr/HeartbeatInterval", "Actual")] == "31"
        assert g.storage.load_records("queue") == {"000000000000": "e0", "000000000001": "e1"}   # file unchanged
        # one tombstone (000000000000), the cleared table and its record, 2 station values, 1 variable
        assert g.kept() == 1 + 2 + 3 + 1

        assert g.retry() is False and g.failing == "database or disk is full"
        filler.unlink()
        assert g.retry() is True and g.failing is None and g.kept() == 0
        g.detach(stopping=True)
        s = SqliteStorage(mnt / "station.db")
        for table, records in latest.items():
            assert s.load_records(table) == records
        assert s.get("tx:1") == "s3" and s.get("next_boot_reason") == "RemoteReset"
        assert s.load_variables()[("OCPPCommCtrlr/HeartbeatInterval", "Actual")] == "31"
        s.close()


def test_memory_stays_bounded_however_long_storage_fails(tmp_path):
    """A day of TransactionEvents queued, snapshotted and delivered while the disk is full:
    what is kept does not grow with the number of writes."""
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        g = _guard(mnt / "station.db")
        g.write_records("queue", {"000000000000": "stored before"})
        filler = fill(mnt)
        for seq in range(1, 20_001):
            key = f"{seq:012d}"
            g.write_records("queue", {key: f"event {seq}"}, kv={"tx:1": f"seq {seq}"})
            g.write_records("queue", deletes=(key,) + (("000000000000",) if seq == 1 else ()))
        assert g.failing is not None
        assert g.kept() == 2              # the tombstone of the record stored before, tx:1
        filler.unlink()
        assert g.retry()
        assert g.load_records("queue") == {} and g.get("tx:1") == "seq 20000"
        g.detach(stopping=True)


def test_a_full_disk_at_start_is_found_by_a_probe(tmp_path):
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        SqliteStorage(mnt / "station.db").close()
        filler = fill(mnt)
        g = _guard(mnt / "station.db")
        assert g.failing is not None and not g.discovered and g.kept() == 0
        filler.unlink()
        assert g.retry() and g.failing is None
        g.detach(stopping=True)


def test_a_stop_while_storage_fails_says_in_one_line_what_is_lost(tmp_path, caplog):
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        g = _guard(mnt / "station.db")
        fill(mnt)
        g.put("clean_stop", "1")
        g.save_variable("A/B", "1")
        with caplog.at_level(logging.ERROR, logger="evse.station"):
            g.detach(stopping=True)
        [record] = caplog.records
        assert record.getMessage() == ("storage: stopping with 2 change(s) that could not be stored "
                                       "(database or disk is full); they are lost")
        assert g.storage is None


# --- group commit (docs/durability.md) ------------------------------------------------------------
def _on_disk(path) -> dict[str, str]:
    """The queue records a fresh connection reads from the file (what a crash would leave)."""
    s = SqliteStorage(path)
    try:
        return s.load_records("queue")
    finally:
        s._db.close()          # no checkpoint: just read


def test_a_deferred_delete_waits_in_memory_and_goes_in_with_the_next_durable_write(tmp_path):
    path = tmp_path / "station.db"
    clock = [100.0]
    g = StorageGuard(now=lambda: clock[0], commit_delay=0.5)
    g.attach(SqliteStorage(path))
    g.write_records("queue", {"000000000000": "e0", "000000000001": "e1"})
    g.write_records("queue", deletes=("000000000000",), deferred=True)        # e0 delivered
    assert g.load_records("queue") == {"000000000001": "e1"}                  # reads see it at once
    assert _on_disk(path) == {"000000000000": "e0", "000000000001": "e1"}     # the file does not yet
    assert g.flush_at == 100.5
    clock[0] = 100.2
    g.write_records("queue", deletes=("000000000001",), deferred=True)
    assert g.flush_at == 100.5                                                 # bound from the first one

    g.write_records("queue", {"000000000002": "e2"}, kv={"tx:1": "s2"})       # a durable write
    assert _on_disk(path) == {"000000000002": "e2"}                            # took the deletes along
    assert g.flush_at == math.inf
    g.detach(stopping=True)


def test_deferred_writes_are_committed_by_flush_and_at_the_end_of_a_boot_cycle(tmp_path):
    path = tmp_path / "station.db"
    g = _guard(path)
    g.write_records("queue", {"000000000000": "e0", "000000000001": "e1"})
    g.write_records("queue", deletes=("000000000000",), deferred=True)
    g.flush()
    assert _on_disk(path) == {"000000000001": "e1"} and g.flush_at == math.inf
    g.write_records("queue", deletes=("000000000001",), deferred=True)
    g.put("clean_stop", "1")                                                   # durable kv write: one change
    assert _on_disk(path) == {}
    g.write_records("queue", {"000000000002": "e2"})
    g.write_records("queue", deletes=("000000000002",), deferred=True)
    g.detach(stopping=False)                                                   # soft reboot
    assert _on_disk(path) == {}


def test_a_clear_or_an_upsert_after_a_deferred_delete_wins(tmp_path):
    path = tmp_path / "station.db"
    g = _guard(path)
    g.write_records("t", {"a": "1", "b": "2"})
    g.write_records("t", deletes=("a",), deferred=True)
    g.write_records("t", {"a": "3"})                  # later than the delete
    assert g.load_records("t") == {"a": "3", "b": "2"} and _on_disk_table(path, "t") == {"a": "3", "b": "2"}
    g.write_records("t", deletes=("b",), deferred=True)
    g.write_records("t", {"c": "4"}, clear=True)
    assert _on_disk_table(path, "t") == {"c": "4"}
    g.detach(stopping=True)


def _on_disk_table(path, table) -> dict[str, str]:
    s = SqliteStorage(path)
    try:
        return s.load_records(table)
    finally:
        s._db.close()


def test_too_many_deferred_writes_are_committed_at_once(tmp_path):
    path = tmp_path / "station.db"
    g = _guard(path)
    keys = [f"{i:012d}" for i in range(MAX_DEFERRED)]
    g.write_records("queue", dict.fromkeys(keys, "e"))
    for key in keys[:-1]:
        g.write_records("queue", deletes=(key,), deferred=True)
    assert len(_on_disk(path)) == MAX_DEFERRED
    g.write_records("queue", deletes=(keys[-1],), deferred=True)
    assert _on_disk(path) == {} and g.flush_at == math.inf
    g.detach(stopping=True)


def test_deferred_deletes_that_find_the_disk_full_are_kept_like_any_write(tmp_path):
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        g = _guard(mnt / "station.db")
        g.write_records("queue", {"000000000000": "e0", "000000000001": "e1"})
        g.write_records("queue", deletes=("000000000000",), deferred=True)
        filler = fill(mnt)
        g.write_records("queue", {"000000000002": "e2"})          # finds the disk full: both kept
        assert g.failing is not None and g.discovered
        g.write_records("queue", deletes=("000000000001",), deferred=True)   # while failing: kept
        assert g.load_records("queue") == {"000000000002": "e2"}
        assert g.storage.load_records("queue") == {"000000000000": "e0", "000000000001": "e1"}
        filler.unlink()
        assert g.retry()
        assert g.storage.load_records("queue") == {"000000000002": "e2"}
        g.detach(stopping=True)


def test_commit_delay_zero_commits_each_deferred_write_at_once(tmp_path):
    path = tmp_path / "station.db"
    g = StorageGuard(now=lambda: 100.0, commit_delay=0)
    g.attach(SqliteStorage(path))
    g.write_records("queue", {"000000000000": "e0"})
    g.write_records("queue", deletes=("000000000000",), deferred=True)
    assert _on_disk(path) == {}
    g.detach(stopping=True)
