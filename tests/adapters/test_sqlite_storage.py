"""SQLite storage adapter on real files."""
from __future__ import annotations

import sqlite3

import pytest

from adapters.sqlite_storage import SCHEMA_VERSION, SqliteStorage, StorageError


def test_values_survive_reopen(tmp_path):
    path = tmp_path / "station.db"
    s = SqliteStorage(path)
    s.put("next_boot_reason", "RemoteReset")
    s.save_variable("OCPPCommCtrlr/HeartbeatInterval", "42")
    s.save_variable("OCPPCommCtrlr/HeartbeatInterval", "43")
    s.close()
    s = SqliteStorage(path)
    assert s.get("next_boot_reason") == "RemoteReset"
    s.save_variable("EVSE@1/Power", "11000", "MaxSet")
    assert s.load_variables() == {("OCPPCommCtrlr/HeartbeatInterval", "Actual"): "43",
                                  ("EVSE@1/Power", "MaxSet"): "11000"}
    s.put("next_boot_reason", None)
    assert s.get("next_boot_reason") is None
    s.close()


def test_durable_without_close(tmp_path):
    """A value is on disk when put() returns: another connection sees it at once."""
    path = tmp_path / "station.db"
    s = SqliteStorage(path)
    s.save_variable("A/B", "1")
    other = sqlite3.connect(path)
    assert other.execute("SELECT value FROM variables WHERE key='A/B' AND attribute='Actual'").fetchone() == ("1",)
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    other.close()
    s.close()


def test_garbage_file_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "station.db"
    path.write_bytes(b"\x00garbage" * 512)
    with pytest.raises(StorageError) as e:
        SqliteStorage(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert path.read_bytes() == b"\x00garbage" * 512


def test_foreign_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (id INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(StorageError, match="not an evse-stack database"):
        SqliteStorage(path)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "station.db"
    SqliteStorage(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StorageError, match="newer than this software"):
        SqliteStorage(path)


def test_truncated_database_is_refused(tmp_path):
    path = tmp_path / "station.db"
    s = SqliteStorage(path)
    for i in range(2000):
        s.save_variable(f"C/V{i}", "x" * 100)
    s.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(StorageError, match=str(path.name)):
        SqliteStorage(path)


def test_version_1_database_migrates_keeping_values(tmp_path):
    """A database written by the first release (schema 1: one value per variable)."""
    path = tmp_path / "station.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE variables (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO kv VALUES ('next_boot_reason', 'RemoteReset');
        INSERT INTO variables VALUES ('OCPPCommCtrlr/HeartbeatInterval', '42');
        INSERT INTO variables VALUES ('TxCtrlr/TxStartPoint', 'EVConnected');
        PRAGMA user_version = 1;
    """)
    db.close()
    s = SqliteStorage(path)
    assert s.load_variables() == {("OCPPCommCtrlr/HeartbeatInterval", "Actual"): "42",
                                  ("TxCtrlr/TxStartPoint", "Actual"): "EVConnected"}
    assert s.get("next_boot_reason") == "RemoteReset"
    s.save_variable("OCPPCommCtrlr/HeartbeatInterval", "30", "MaxSet")
    s.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    db.close()


def test_records_change_atomically_and_survive_reopen(tmp_path):
    path = tmp_path / "station.db"
    s = SqliteStorage(path)
    s.write_records("local_list", {"ISO14443:aa": "{}", "ISO14443:bb": "{}"}, kv={"local_list_version": "3"})
    s.write_records("local_list", {"ISO14443:cc": "{}"}, deletes=["ISO14443:aa"])
    s.write_records("auth_cache", {"ISO14443:aa": "{}"})
    s.close()
    s = SqliteStorage(path)
    assert set(s.load_records("local_list")) == {"ISO14443:bb", "ISO14443:cc"}
    assert s.get("local_list_version") == "3"
    s.write_records("local_list", {"x": "1"}, clear=True, kv={"local_list_version": "4"})
    assert s.load_records("local_list") == {"x": "1"} and s.get("local_list_version") == "4"
    assert set(s.load_records("auth_cache")) == {"ISO14443:aa"}
    with pytest.raises(sqlite3.Error):       # a failing change leaves nothing half done
        s.write_records("local_list", {"y": None}, clear=True, kv={"local_list_version": "5"})
    assert s.load_records("local_list") == {"x": "1"} and s.get("local_list_version") == "4"
    s.close()


# --- storage that cannot be written: real file systems (root: tests/fs_faults.py) ----------------


class _Spy:
    """The adapter's connection, recording each statement it is given (even one that runs
    for no row: an executemany over nothing is prepared all the same)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db, self.given = db, []

    def __enter__(self):
        return self.db.__enter__()

    def __exit__(self, *exc):
        return self.db.__exit__(*exc)

    def execute(self, sql, *args):
        self.given.append(sql)
        return self.db.execute(sql, *args)

    def executemany(self, sql, rows):
        self.given.append(sql)
        return self.db.executemany(sql, rows)


def test_the_group_commits_delete_runs_only_its_delete(tmp_path):
    """The replay's per-event write (issue 16): the delete of a delivered queue record is one
    DELETE in its transaction, no statement for the upserts, kv or variables it does not have;
    a change with all of them still stores all of them."""
    s = SqliteStorage(tmp_path / "station.db")
    s.write_records("queue", {"000000000000": "e0", "000000000001": "e1"})
    db, spy = s._db, _Spy(s._db)
    s._db = spy
    s.write_changes({"queue": (False, {"000000000000": None})}, {}, {}, durable=False)
    s._db = db
    assert [sql.split()[0] for sql in spy.given if not sql.startswith("PRAGMA")] == ["BEGIN", "DELETE"]
    s.write_changes({"queue": (False, {"000000000001": None, "000000000002": "e2"})},
                    {"k": "v"}, {("OCPPCommCtrlr/HeartbeatInterval", "Actual"): "42"})
    assert s.load_records("queue") == {"000000000002": "e2"}
    assert s.get("k") == "v"
    assert s.load_variables() == {("OCPPCommCtrlr/HeartbeatInterval", "Actual"): "42"}
    s.close()


def test_a_change_that_need_not_be_durable_is_committed_with_synchronous_normal(tmp_path):
    """docs/durability.md: write_changes(durable=False) commits (another connection reads it,
    so a crash of the process keeps it) without the fsync of FULL; the next write is FULL again."""
    s = SqliteStorage(tmp_path / "station.db")
    s.write_records("queue", {"000000000000": "e0", "000000000001": "e1"})
    s.write_changes({"queue": (False, {"000000000000": None})}, {}, {}, durable=False)
    assert s._db.execute("PRAGMA synchronous").fetchone()[0] == 1          # NORMAL
    other = sqlite3.connect(tmp_path / "station.db")
    assert dict(other.execute("SELECT key, value FROM records WHERE tbl = 'queue'")) == {"000000000001": "e1"}
    s.put("k", "v")
    assert s._db.execute("PRAGMA synchronous").fetchone()[0] == 2          # FULL
    other.close()
    s.close()
