"""Storage failures at start-up made real (bootstrap/storage_errors.py): each gives `evse run` one
line on stderr, its own exit code and the advice that fits, and leaves the database's files as
they were. Root makes chmod moot, so a permission problem is a station run as `nobody`; a
read-only file system and a full disk are tmpfs mounts (tests/fs_faults.py); a lock held is a
second real process."""
from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from adapters.sqlite_storage import SqliteStorage
from bootstrap.storage_errors import EXIT_CODES
from tests.fs_faults import fill, remount, tmpfs

NOBODY = 65534


def write_config(folder: Path, db: str = "station.db", sock: str = "sim.sock") -> Path:
    path = folder / "station.toml"
    path.write_text(f"""
[station]
id = "CS-STORE-1"
[csms]
url = "ws://127.0.0.1:9/ocpp"
[storage]
path = "{db}"
[hardware]
control_socket = "{sock}"
[status]
socket = "{sock}.status"
""")
    return path


def evse_run(config: Path, *, user: int | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "bootstrap.cli", "run", "--config", str(config)]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd="/")


def files_of(db: Path) -> dict[str, str]:
    """Digest of the database and its -wal / -shm files (those that exist)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()}


def one_line(r: subprocess.CompletedProcess, kind: str, *words: str) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert r.returncode == EXIT_CODES[kind], (r.returncode, r.stderr)
    for word in words:
        assert word in lines[0], lines[0]
    assert "Recovering a damaged database" not in lines[0] or kind == "damaged", lines[0]
    return lines[0]


def make_station_db(path: Path) -> None:
    s = SqliteStorage(path)
    s.save_variable("OCPPCommCtrlr/HeartbeatInterval", "300")
    s.write_records("queue", {"000000000001": "an undelivered TransactionEvent"})
    s.close()


def test_exit_codes_are_distinct():
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES) and 2 not in EXIT_CODES.values()


def test_missing_folder_stops_start_up_and_makes_nothing(tmp_path):
    config = write_config(tmp_path, db="typo/station.db")
    r = evse_run(config)
    one_line(r, "missing-directory", str(tmp_path / "typo"), "does not exist", "[storage] path")
    assert not (tmp_path / "typo").exists()


def test_damaged_file(tmp_path):
    (tmp_path / "station.db").write_bytes(b"\x00garbage" * 512)
    before = files_of(tmp_path / "station.db")
    r = evse_run(write_config(tmp_path))
    one_line(r, "damaged", str(tmp_path / "station.db"), "Recovering a damaged database")
    assert files_of(tmp_path / "station.db") == before


def test_foreign_file_is_left_exactly_as_it_was(tmp_path):
    db = sqlite3.connect(tmp_path / "station.db")
    db.execute("CREATE TABLE customers (id INTEGER)")
    db.commit()
    db.close()
    before = files_of(tmp_path / "station.db")
    r = evse_run(write_config(tmp_path))
    one_line(r, "foreign", "not an evse-stack database", "check [storage] path", "leave the file")
    assert files_of(tmp_path / "station.db") == before            # not even switched to WAL mode


@pytest.fixture
def shared_folder():
    """A folder `nobody` can reach (pytest's tmp_path is root's, mode 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="evse-perm-", dir="/tmp"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_permission_denied_on_the_folder(shared_folder):
    make_station_db(shared_folder / "station.db")          # root's, as after an install by hand
    config = write_config(shared_folder)
    os.chmod(config, 0o644)
    before = files_of(shared_folder / "station.db")
    r = evse_run(config, user=NOBODY)
    line = one_line(r, "permission", "permission denied", "user nobody", str(shared_folder), "chown")
    assert "do not move the database away" in line
    assert files_of(shared_folder / "station.db") == before


def test_permission_denied_on_the_file(shared_folder):
    state = shared_folder / "state"
    state.mkdir()
    make_station_db(state / "station.db")                   # root's file in nobody's folder
    os.chown(state, NOBODY, NOBODY)
    config = write_config(shared_folder, db="state/station.db", sock="state/sim.sock")
    os.chmod(config, 0o644)
    before = files_of(state / "station.db")
    r = evse_run(config, user=NOBODY)
    one_line(r, "permission", f"cannot write {state / 'station.db'}", "owner root, mode 0644")
    assert files_of(state / "station.db") == before


def _wal_without_shm(folder: Path) -> None:
    """station.db whose last changes are in its -wal only (a power loss), no -shm."""
    make_station_db(folder / "live.db")
    s = SqliteStorage(folder / "live.db")
    s.write_records("queue", {"000000000009": "in the WAL only"})
    for suffix in ("", "-wal"):
        shutil.copy(folder / f"live.db{suffix}", folder / f"station.db{suffix}")
    s.close()
    for suffix in ("", "-wal", "-shm"):
        (folder / f"live.db{suffix}").unlink(missing_ok=True)


def test_read_only_file_system(tmp_path):
    with tmpfs(tmp_path / "mnt", "2m") as mnt:
        _wal_without_shm(mnt)
        before = files_of(mnt / "station.db")
        config = write_config(tmp_path, db=str(mnt / "station.db"))
        remount(mnt, "ro")
        r = evse_run(config)
        one_line(r, "read-only", "read-only file system", "mount the file system read-write",
                 "not damaged")
        assert files_of(mnt / "station.db") == before


def test_read_only_file_system_without_a_database(tmp_path):
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        config = write_config(tmp_path, db=str(mnt / "station.db"))
        remount(mnt, "ro")
        one_line(evse_run(config), "read-only", "read-only file system")


def test_full_disk(tmp_path):
    with tmpfs(tmp_path / "mnt", "2m") as mnt:
        _wal_without_shm(mnt)
        before = files_of(mnt / "station.db")
        fill(mnt)
        r = evse_run(write_config(tmp_path, db=str(mnt / "station.db")))
        one_line(r, "disk-full", "no space left", "free space", "not damaged")
        after = files_of(mnt / "station.db")
        after.pop("station.db-shm", None)       # SQLite's index of the WAL, made by its read attempt
        assert after == before


def _start(config: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "bootstrap.cli", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not (config.parent / "sim.sock").exists():           # composed and serving
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    return proc


def test_second_station_on_the_same_database_is_refused_at_once(tmp_path):
    config = write_config(tmp_path)
    first = _start(config)
    try:
        started = time.monotonic()
        r = evse_run(config)
        one_line(r, "locked", str(tmp_path / "station.db"), f"pid {first.pid}", "two stations")
        assert time.monotonic() - started < 10
        assert first.poll() is None                            # the first one runs on
    finally:
        first.terminate()
        assert first.wait(timeout=15) == 0


def test_second_simulator_on_the_same_control_socket_is_refused(tmp_path):
    first = _start(write_config(tmp_path))
    other = tmp_path / "other"
    other.mkdir()
    config = write_config(other, sock=str(tmp_path / "sim.sock"))
    try:
        r = evse_run(config)
        one_line(r, "socket-in-use", str(tmp_path / "sim.sock"), "another station")
        assert "Traceback" not in r.stderr
        assert first.poll() is None
    finally:
        first.terminate()
        assert first.wait(timeout=15) == 0
