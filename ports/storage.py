"""Port: durable storage (one SQLite file per station in production)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

# table -> (clear the table first, key -> value; None deletes the record)
RecordChanges = Mapping[str, tuple[bool, Mapping[str, str | None]]]


class StorageUnwritable(Exception):
    """Storage cannot be written now (disk full, read-only file system, I/O error). Nothing of
    the write was stored, and what was stored before can still be read. str(): one line, why."""


class Storage(Protocol):
    """Every write raises StorageUnwritable when it cannot be stored now; the next write tries
    again (a connection that was opened read-only is reopened for writing first)."""

    def get(self, key: str) -> str | None:
        """A value of the station's own state (e.g. the reason for the next boot)."""

    def put(self, key: str, value: str | None) -> None:
        """Store (or, with None, delete) a value; durable when this returns."""

    def load_variables(self) -> dict[tuple[str, str], str]:
        """Device-model values the station has stored, keyed (VariableRef.key, attribute type)."""

    def save_variable(self, key: str, value: str, attribute: str = "Actual") -> None:
        """Store one device-model value; durable when this returns."""

    def load_records(self, table: str) -> dict[str, str]:
        """All records of one of the domain's keyed collections ("auth_cache", "local_list", ...)."""

    def write_records(self, table: str, upserts: Mapping[str, str] = {}, deletes: Iterable[str] = (),
                      *, clear: bool = False, kv: Mapping[str, str | None] = {}) -> None:
        """One atomic change: optionally clear the table, delete and upsert records, and set
        (None: delete) station-state values; durable when this returns."""

    def write_changes(self, records: RecordChanges, kv: Mapping[str, str | None],
                      variables: Mapping[tuple[str, str], str], *, durable: bool = True) -> None:
        """Changes of several tables, station-state values and device-model values as ONE
        atomic change (what was kept in memory while storage could not be written; deferred
        writes). `durable=False`: committed (it survives a crash of the process) but not yet
        flushed to the disk: a power loss may undo it, together with every later change that
        is not durable either; the next durable write makes it durable too."""

    def probe(self) -> None:
        """A write that leaves nothing behind: raises StorageUnwritable if writes fail now."""

    def close(self) -> None:
        """Flush (as far as storage can be written) and close."""
