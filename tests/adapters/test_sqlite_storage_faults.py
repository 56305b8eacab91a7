"""SqliteStorage on real file systems that fail: a small tmpfs that fills up, a file system
read-only at start-up (root: these tests mount; they belong to `make test`, not the fast tier)."""
from __future__ import annotations

import shutil

import pytest

from adapters.sqlite_storage import SqliteStorage, StorageError
from ports.storage import StorageUnwritable
from tests.fs_faults import fill, remount, tmpfs


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
