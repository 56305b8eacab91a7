"""SQLite storage adapter on real files."""
from __future__ import annotations

import shutil
import sqlite3

import pytest

from adapters.sqlite_storage import SCHEMA_VERSION, SqliteStorage, StorageError
from ports.storage import StorageUnwritable
from tests.fs_faults import fill, remount, tmpfs


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

def _station_db(folder, values=3) -> None:
    s = SqliteStorage(folder / "station.db")
    s.write_records("queue", {f"{i:012d}": f"event {i}" for i in range(values)}, kv={"tx:1": "snapshot"})
    s.save_variable("OCPPCommCtrlr/HeartbeatInterval", "42")
    s.close()


def test_a_full_disk_stores_nothing_of_a_write_and_heals_when_space_returns(tmp_path):
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        s = SqliteStorage(mnt / "station.db")
        s.write_records("queue", {"000000000001": "a"}, kv={"tx:1": "1"})
        filler = fill(mnt)
        big = {f"{i:012d}": "x" * 2000 for i in range(2, 40)}
        for write in (lambda: s.write_records("queue", big, deletes=["000000000001"], kv={"tx:1": "2"}),
                      lambda: s.put("clean_stop", "1"), lambda: s.save_variable("A/B", "1"), s.probe,
                      lambda: s.write_changes({"queue": (True, {})}, {"tx:1": None}, {("A/B", "Actual"): "1"})):
            with pytest.raises(StorageUnwritable, match="^database or disk is full$"):
                write()
        assert s.load_records("queue") == {"000000000001": "a"} and s.get("tx:1") == "1"
        assert s.get("clean_stop") is None and s.load_variables() == {}
        filler.unlink()
        s.write_changes({"queue": (False, {"000000000001": None, "000000000002": "b"})}, {"tx:1": "3"},
                        {("A/B", "Actual"): "1"})
        s.close()
        s = SqliteStorage(mnt / "station.db")
        assert s.load_records("queue") == {"000000000002": "b"} and s.get("tx:1") == "3"
        assert s.load_variables() == {("A/B", "Actual"): "1"}
        s.close()


def test_a_read_only_file_system_at_start_is_read_and_written_once_remounted_read_write(tmp_path):
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        _station_db(mnt)                 # closed cleanly: no write-ahead log, no -shm file
        remount(mnt, "ro")
        s = SqliteStorage(mnt / "station.db")
        assert len(s.load_records("queue")) == 3 and s.get("tx:1") == "snapshot"
        with pytest.raises(StorageUnwritable, match="^read-only file system"):
            s.put("clean_stop", "1")
        remount(mnt, "rw")
        s.put("clean_stop", "1")         # reopened for writing
        s.close()
        s = SqliteStorage(mnt / "station.db")
        assert s.get("clean_stop") == "1" and len(s.load_records("queue")) == 3
        s.close()


def test_a_read_only_file_system_at_start_reads_the_write_ahead_log(tmp_path):
    """A station killed (power loss) leaves changes in its -wal file; a read-only file
    system must not hide them."""
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        _station_db(mnt)
        s = SqliteStorage(mnt / "station.db")
        s.write_records("queue", {"000000000009": "in the WAL only"})
        for suffix in ("", "-wal", "-shm"):     # the files as a power loss leaves them
            shutil.copy(mnt / f"station.db{suffix}", mnt / f"killed.db{suffix}")
        s.close()
        assert (mnt / "killed.db-wal").stat().st_size > 0
        remount(mnt, "ro")
        k = SqliteStorage(mnt / "killed.db")
        assert k.load_records("queue")["000000000009"] == "in the WAL only"
        with pytest.raises(StorageUnwritable, match="^read-only file system"):
            k.probe()
        k.close()


def test_a_write_ahead_log_that_cannot_be_read_is_refused_in_one_line(tmp_path):
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        _station_db(mnt)
        s = SqliteStorage(mnt / "station.db")
        s.write_records("queue", {"000000000009": "in the WAL only"})
        for suffix in ("", "-wal"):            # no -shm: on a read-only file system not readable safely
            shutil.copy(mnt / f"station.db{suffix}", mnt / f"killed.db{suffix}")
        s.close()
        remount(mnt, "ro")
        with pytest.raises(StorageError) as e:
            SqliteStorage(mnt / "killed.db")
        text = str(e.value)
        assert "\n" not in text and str(mnt / "killed.db") in text and "killed.db-wal" in text
        with pytest.raises(StorageError, match="station.db.*cannot open"):
            SqliteStorage(mnt / "missing" / "station.db")


def test_a_full_disk_at_start_is_read(tmp_path):
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        _station_db(mnt)
        filler = fill(mnt)
        s = SqliteStorage(mnt / "station.db")     # its -shm file cannot be made: opened read-only
        assert len(s.load_records("queue")) == 3
        with pytest.raises(StorageUnwritable):
            s.probe()
        filler.unlink()
        s.probe()
        s.put("clean_stop", "1")
        s.close()
