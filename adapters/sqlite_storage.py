"""Storage port on SQLite (stdlib sqlite3): one file per station, WAL journal.

Writes are small and commit at once, so a value is durable when a call returns.
A file that is not a readable SQLite database of ours is refused with a
StorageError naming the file: the station does not run on defaults silently.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

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


class StorageError(Exception):
    """The database cannot be used; str() is one line naming the file."""


class SqliteStorage:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(
                f"{self.path}: cannot open the station database ({exc}); "
                f"see README 'Recovering a damaged database'"
            ) from None

    def _migrate(self) -> None:
        check = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {check}")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this software understands ({SCHEMA_VERSION})")
        if version == 0:
            tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise sqlite3.DatabaseError("not an evse-stack database (unknown tables, no schema version)")
        while version < SCHEMA_VERSION:
            with self._db:
                self._db.execute("BEGIN")
                for sql in MIGRATIONS[version]:
                    self._db.execute(sql)
                version += 1
                self._db.execute(f"PRAGMA user_version={version}")

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: str | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM kv WHERE key = ?", (key,))
        else:
            self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))

    def load_variables(self) -> dict[tuple[str, str], str]:
        return {(k, a): v for k, a, v in self._db.execute("SELECT key, attribute, value FROM variables")}

    def save_variable(self, key: str, value: str, attribute: str = "Actual") -> None:
        self._db.execute("INSERT OR REPLACE INTO variables (key, attribute, value) VALUES (?, ?, ?)",
                         (key, attribute, value))

    def load_records(self, table: str) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM records WHERE tbl = ?", (table,)))

    def write_records(self, table: str, upserts: Mapping[str, str] = {}, deletes: Iterable[str] = (),
                      *, clear: bool = False, kv: Mapping[str, str | None] = {}) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if clear:
                self._db.execute("DELETE FROM records WHERE tbl = ?", (table,))
            self._db.executemany("DELETE FROM records WHERE tbl = ? AND key = ?", ((table, k) for k in deletes))
            self._db.executemany("INSERT OR REPLACE INTO records (tbl, key, value) VALUES (?, ?, ?)",
                                 ((table, k, v) for k, v in upserts.items()))
            for k, v in kv.items():
                if v is None:
                    self._db.execute("DELETE FROM kv WHERE key = ?", (k,))
                else:
                    self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (k, v))

    def close(self) -> None:
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._db.close()
