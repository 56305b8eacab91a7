"""Connector status (OCPP ConnectorStatusEnumType) from what the hardware says."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Connector:
    evse: int
    connector: int
    plugged: bool = False
    operative: bool = True
    reported: str | None = None      # last status sent (or queued) to the CSMS

    def status(self, evse_fault: str | None) -> str:
        if evse_fault is not None:
            return "Faulted"
        if not self.operative:
            return "Unavailable"
        if self.plugged:
            return "Occupied"
        return "Available"


@dataclass(slots=True)
class Evse:
    id: int
    connectors: dict[int, Connector]
    # fault -> the device-model (component, variable) reporting it; Faulted while any lasts
    faults: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    occupied: bool = False           # parking bay
    reported: str | None = None      # last EVSE AvailabilityState sent to the CSMS

    @property
    def fault(self) -> str | None:
        return next(iter(self.faults), None)

    @classmethod
    def with_connectors(cls, evse_id: int, count: int) -> "Evse":
        return cls(evse_id, {c: Connector(evse_id, c) for c in range(1, count + 1)})

    def status(self) -> str:
        """EVSE-level AvailabilityState: the 'most significant' of its connectors."""
        states = [c.status(self.fault) for c in self.connectors.values()]
        for s in ("Faulted", "Occupied", "Reserved", "Available"):
            if s in states:
                return s
        return "Unavailable"
