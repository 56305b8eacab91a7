"""Port: durable storage (one SQLite file per station in production)."""
from __future__ import annotations

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

    def close(self) -> None:
        """Flush and close."""
