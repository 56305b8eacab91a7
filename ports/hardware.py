"""Ports: the charger's hardware as the station sees it.

Hardware adapters push what happens (plug, energy request, card, fault, ...) as
events into a channel, and obey commands (close/open the power path, offered
current, unlock). The domain never sees a device, only these events.
"""
from __future__ import annotations

from typing import Protocol

import trio


from domain.hardware_events import (  # noqa: F401  (re-exported for adapters)
    CablePlugged,
    CableUnplugged,
    EnergyPaused,
    EnergyRequested,
    FaultCleared,
    FaultRaised,
    HardwareEvent,
    MeterReading,
    OccupancyChanged,
    TokenPresented,
)


# --- ports ---------------------------------------------------------------------------------
class EvseController(Protocol):
    async def run(
        self,
        events: trio.MemorySendChannel[HardwareEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Watch the hardware until cancelled, pushing every change to `events`."""

    async def set_power_path(self, evse: int, closed: bool) -> None:
        """Close (energise) or open the contactor of one EVSE."""

    async def set_offered_current(self, evse: int, amps: float) -> None:
        """Maximum current offered to the EV (pilot duty cycle)."""

    async def unlock_connector(self, evse: int, connector: int) -> bool:
        """True when the connector is unlocked."""


class Meter(Protocol):
    async def read(self, evse: int) -> MeterReading:
        """One reading of the EVSE's meter."""
