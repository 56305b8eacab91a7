"""Port: durable storage (one SQLite file per station in production)."""
from __future__ import annotations

from typing import Protocol


class Storage(Protocol):
    def get(self, key: str) -> str | None:
        """A value of the station's own state (e.g. the reason for the next boot)."""

    def put(self, key: str, value: str | None) -> None:
        """Store (or, with None, delete) a value; durable when this returns."""

    def load_variables(self) -> dict[str, str]:
        """Device-model values the station has stored, keyed "Component[.instance][@evse[.connector]]/Variable[.instance]/Attribute"."""

    def save_variable(self, key: str, value: str) -> None:
        """Store one device-model value; durable when this returns."""

    def close(self) -> None:
        """Flush and close."""
