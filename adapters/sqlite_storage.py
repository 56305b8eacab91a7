"""Storage port on SQLite (stdlib sqlite3): one file per station, WAL journal.

Writes are small and commit at once, so a value is durable when a call returns (WAL,
synchronous=FULL); only `write_changes(..., durable=False)` commits with synchronous=NORMAL
(the group commit of deferred deletes, docs/durability.md).
A file that is not a readable SQLite database of ours is refused with a
StorageError naming the file: the station does not run on defaults silently.

Storage that cannot be written (disk full, read-only file system, I/O error) is not
an error of the database: a write then raises StorageUnwritable (one line, why) and
nothing of it is stored; the next write tries again. At start-up such a file system
does not stop the station as long as the file can be read: it is opened read-only
(`mode=ro`, which needs the WAL's -shm file, else `immutable=1` when there is no
write-ahead log to read) and reopened for writing by the first write that succeeds.
"""
from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from ports.storage import RecordChanges, StorageUnwritable

SCHEMA_VERSION = 3

# Forward migrations: MIGRATIONS[n] brings a database at version n to n + 1. Never edit
# a released step; add the next one.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    0: (
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE variables (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    # 2: device-model values per attribute (Actual, Target, MinSet, MaxSet).
    1: (
        "CREATE TABLE variables_v2 (key TEXT NOT NULL, attribute TEXT NOT NULL, value TEXT NOT NULL,"
        " PRIMARY KEY (key, attribute)) WITHOUT ROWID",
        "INSERT INTO variables_v2 (key, attribute, value) SELECT key, 'Actual', value FROM variables",
        "DROP TABLE variables",
        "ALTER TABLE variables_v2 RENAME TO variables",
    ),
    # 3: keyed records of the domain's collections (authorization cache, local list, ...).
    2: (
        "CREATE TABLE records (tbl TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
        " PRIMARY KEY (tbl, key)) WITHOUT ROWID",
    ),
}

# What a full or read-only file system (or a failing disk) looks like; anything else is a bug
# or a damaged database and is raised as it is.
_UNWRITABLE_CODES = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR,
                               sqlite3.SQLITE_CANTOPEN})
_UNWRITABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO})
_PROBE_KEY = "write_probe"


class StorageError(Exception):
    """The database cannot be used; str() is one line naming the file. `kind`: "damaged" (not
    readable as a database, integrity check failed), "foreign" (a database that is not ours or
    from a newer version) or "unreadable" (the file system would have to be written to read it,
    or there is no file to read)."""

    def __init__(self, message: str, kind: str = "damaged") -> None:
        super().__init__(message)
        self.kind = kind


class ForeignDatabase(sqlite3.DatabaseError):
    """A readable SQLite database that is not one of ours (or is from a newer version)."""


def unwritable(exc: BaseException) -> bool:
    """Whether `exc` says the storage cannot be written now (rather than that it is broken)."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _UNWRITABLE_CODES
    return isinstance(exc, OSError) and exc.errno in _UNWRITABLE_ERRNOS


def describe(exc: BaseException, folder: Path) -> str:
    """One line: SQLite's message (with the extended code where the message is vague) and, for
    an I/O error, what the file system says (read-only, full): a file made and removed in `folder`."""
    if not isinstance(exc, sqlite3.Error):
        return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    name = getattr(exc, "sqlite_errorname", "")
    if not name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY")):
        return str(exc)
    probe = folder / f".write-probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    except OSError as fs:
        return f"{fs.strerror.lower()}: {exc} {name}" if fs.strerror else f"{exc} {name}"
    else:
        with contextlib.suppress(OSError):
            probe.unlink()
    return f"{exc} {name}"


class SqliteStorage:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._read_only = False               # opened read-only (mode=ro / immutable): reconnect to write
        self._full = True                     # the connection commits with synchronous=FULL
        self._reopen = False                  # a write failed other than by a full disk: reconnect first
        try:
            self._db = self._checked(self._connect)     # the folder must exist: never made here
        except (sqlite3.Error, OSError) as exc:
            if not unwritable(exc):
                raise self._refused(exc, "foreign" if isinstance(exc, ForeignDatabase) else "damaged") from None
            self._open_read_only(describe(exc, self.path.parent))
            self._read_only = True

    def _refused(self, why: BaseException | str, kind: str = "unreadable") -> StorageError:
        return StorageError(f"{self.path}: cannot open the station database ({why})", kind)

    def _checked(self, connect: Callable[[], sqlite3.Connection]) -> sqlite3.Connection:
        """A connection to a database of ours, migrated to SCHEMA_VERSION (closed on failure)."""
        db = connect()
        try:
            _migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._full = True
        try:
            _check_ours(db)                   # before WAL mode, which would change a foreign file
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        except BaseException:
            db.close()
            raise
        return db

    def _open_read_only(self, why: str) -> None:
        """The file system cannot be written: read what the file holds. `mode=ro` reads the
        write-ahead log too but needs its -shm file; without one, `immutable=1` can read the
        file only when there is no write-ahead log with changes in it."""
        uri = self.path.resolve().as_uri()
        try:
            self._db = self._checked(lambda: sqlite3.connect(
                f"{uri}?mode=ro", uri=True, isolation_level=None, check_same_thread=False))
        except sqlite3.Error as exc:
            wal = Path(f"{self.path}-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise self._refused(f"{why}; its write-ahead log {wal.name} holds changes that can be read "
                                    f"only where the file system can be written: {exc}") from None
            try:
                self._db = self._checked(lambda: sqlite3.connect(
                    f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=False))
            except sqlite3.Error as exc2:
                raise self._refused(f"{why}; read-only: {exc2}",
                                    "foreign" if isinstance(exc2, ForeignDatabase) else "unreadable") from None

    # --- reads ------------------------------------------------------------------------------
    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def load_variables(self) -> dict[tuple[str, str], str]:
        return {(k, a): v for k, a, v in self._db.execute("SELECT key, attribute, value FROM variables")}

    def load_records(self, table: str) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM records WHERE tbl = ?", (table,)))

    # --- writes -------------------------------------------------------------------------------
    def put(self, key: str, value: str | None) -> None:
        self._write(lambda db: _set_kv(db, {key: value}))

    def save_variable(self, key: str, value: str, attribute: str = "Actual") -> None:
        self._write(lambda db: _save_variables(db, {(key, attribute): value}))

    def write_records(self, table: str, upserts: Mapping[str, str] = {}, deletes: Iterable[str] = (),
                      *, clear: bool = False, kv: Mapping[str, str | None] = {}) -> None:
        def change(db: sqlite3.Connection) -> None:
            if clear:
                db.execute("DELETE FROM records WHERE tbl = ?", (table,))
            db.executemany("DELETE FROM records WHERE tbl = ? AND key = ?", ((table, k) for k in deletes))
            db.executemany("INSERT OR REPLACE INTO records (tbl, key, value) VALUES (?, ?, ?)",
                           ((table, k, v) for k, v in upserts.items()))
            _set_kv(db, kv)
        self._write(change)

    def write_changes(self, records: RecordChanges, kv: Mapping[str, str | None],
                      variables: Mapping[tuple[str, str], str], *, durable: bool = True) -> None:
        def change(db: sqlite3.Connection) -> None:
            for table, (clear, rows) in records.items():
                if clear:
                    db.execute("DELETE FROM records WHERE tbl = ?", (table,))
                # no statement for what is not there (the group commit's change is one delete)
                if deletes := [(table, k) for k, v in rows.items() if v is None]:
                    db.executemany("DELETE FROM records WHERE tbl = ? AND key = ?", deletes)
                if upserts := [(table, k, v) for k, v in rows.items() if v is not None]:
                    db.executemany("INSERT OR REPLACE INTO records (tbl, key, value) VALUES (?, ?, ?)", upserts)
            _set_kv(db, kv)
            if variables:
                _save_variables(db, variables)
        self._write(change, durable=durable)

    def probe(self) -> None:
        def change(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, '')", (_PROBE_KEY,))
            db.execute("DELETE FROM kv WHERE key = ?", (_PROBE_KEY,))
        self._write(change)

    def _write(self, change: Callable[[sqlite3.Connection], None], *, durable: bool = True) -> None:
        """One transaction; StorageUnwritable (nothing stored) when the storage cannot be written.
        `durable`: committed with synchronous=FULL (the WAL is fsynced: it survives a power
        loss); otherwise with NORMAL (written to the WAL, no fsync: it survives a crash of the
        process, and the next FULL commit's fsync makes it durable too; docs/durability.md)."""
        try:
            if self._read_only or self._reopen:
                self._reconnect()
            if durable is not self._full:
                self._db.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
                self._full = durable
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                change(self._db)
        except (sqlite3.Error, OSError) as exc:
            if not unwritable(exc):
                raise
            # A full disk heals by itself; anything else (read-only, I/O error) gets a new connection.
            self._reopen = not (isinstance(exc, sqlite3.Error) and exc.sqlite_errorcode == sqlite3.SQLITE_FULL)
            raise StorageUnwritable(describe(exc, self.path.parent)) from None

    def _reconnect(self) -> None:
        db = self._connect()              # first: closing the old one then checkpoints nothing
        self._db.close()
        self._db, self._read_only, self._reopen = db, False, False

    def close(self) -> None:
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            if not unwritable(exc):
                raise
        finally:
            self._db.close()


def _set_kv(db: sqlite3.Connection, kv: Mapping[str, str | None]) -> None:
    for k, v in kv.items():
        if v is None:
            db.execute("DELETE FROM kv WHERE key = ?", (k,))
        else:
            db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (k, v))


def _save_variables(db: sqlite3.Connection, variables: Mapping[tuple[str, str], str]) -> None:
    db.executemany("INSERT OR REPLACE INTO variables (key, attribute, value) VALUES (?, ?, ?)",
                   ((k, a, v) for (k, a), v in variables.items()))


def _check_ours(db: sqlite3.Connection) -> int:
    """The schema version of a database of ours (0: empty); ForeignDatabase otherwise. Reads only."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ForeignDatabase(
            f"schema version {version} is newer than this software understands ({SCHEMA_VERSION})")
    if version == 0:
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables:
            raise ForeignDatabase("not an evse-stack database (unknown tables, no schema version)")
    return version


def _migrate(db: sqlite3.Connection) -> None:
    check = db.execute("PRAGMA quick_check").fetchone()[0]
    if check != "ok":
        raise sqlite3.DatabaseError(f"integrity check failed: {check}")
    version = _check_ours(db)
    while version < SCHEMA_VERSION:
        with db:
            db.execute("BEGIN")
            for sql in MIGRATIONS[version]:
                db.execute(sql)
            version += 1
            db.execute(f"PRAGMA user_version={version}")
