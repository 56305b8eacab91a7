"""What the station had stored when it starts: the record tables and station-state values its
blocks declare (`Block.tables`, `Block.keys`; `Station.stored_layout` lists them). The runtime
reads exactly those from storage and hands them over in one object."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class StoredState:
    records: Mapping[str, Mapping[str, str]] = field(default_factory=dict)   # table -> {key: value}
    values: Mapping[str, str] = field(default_factory=dict)                  # station-state key -> value

    def table(self, name: str) -> Mapping[str, str]:
        return self.records.get(name, {})

    def value(self, key: str) -> str | None:
        return self.values.get(key)
