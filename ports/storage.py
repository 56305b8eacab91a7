"""Port: durable storage (one SQLite file per station in production)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol


class Storage(Protocol):
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

    def close(self) -> None:
        """Flush and close."""
