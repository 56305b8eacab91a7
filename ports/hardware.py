"""Ports: the charger's hardware as the station sees it.

Real devices are not polite: their state changes at any time (a vehicle plugs in,
a GFCI trips, the controller reboots), commands time out, readings fail, and a
USB device may disappear and come back. The contracts below say what an adapter
owes the station in each case:

* Devices *push* what happens as domain events (`domain.hardware_events`) into a
  channel: plug, energy request, card, EVSE faults (FaultRaised/FaultCleared),
  parts in trouble (DeviceProblem). An adapter whose device is missing or silent
  keeps running: it reports the fault or problem, retries with back-off, and
  reports recovery when the device talks sense again. `run` only returns when
  cancelled; it never raises because of what a device did.
* Commands (`set_power_path`, `set_offered_current`, `unlock_connector`) return
  once the device confirmed them or raise HardwareError within a bounded time
  (a few seconds at most). The runtime issues them from its own task, so a slow
  device never holds up the OCPP link.
* A meter reading that failed or is implausible is never returned as a value:
  `read` raises MeterError and the station keeps the last good one.

The domain never sees a device, only these events and the effects it asks for.
"""
from __future__ import annotations

from typing import Protocol

import trio

from domain.hardware_events import (  # noqa: F401  (re-exported for adapters)
    CablePlugged,
    CableUnplugged,
    DeviceProblem,
    EnergyPaused,
    EnergyRequested,
    ExternalLimitChanged,
    FaultCleared,
    FaultRaised,
    HardwareEvent,
    MeterReading,
    OccupancyChanged,
    TokenPresented,
)


class HardwareError(Exception):
    """A command the device did not carry out (timeout, refusal, device gone); one line."""


class MeterError(HardwareError):
    """A reading that failed (timeout, CRC, exception response) or is implausible
    (NaN, a register going backwards); one line naming what was wrong."""


# --- ports ---------------------------------------------------------------------------------
class EvseController(Protocol):
    async def run(
        self,
        events: trio.MemorySendChannel[HardwareEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Watch the controller until cancelled, pushing every change to `events`.

        `task_status.started()` is called at once, also when the device is missing
        (then a FaultRaised follows); the present state is pushed when known."""

    async def set_power_path(self, evse: int, closed: bool) -> None:
        """Let the EV draw energy (closed) or stop it (open). Until the power path is
        closed the controller must not energise the EV, whatever the EV asks."""

    async def set_offered_current(self, evse: int, amps: float) -> None:
        """Maximum current offered to the EV (pilot duty cycle)."""

    async def unlock_connector(self, evse: int, connector: int) -> bool:
        """True when the connector is unlocked."""


class Meter(Protocol):
    #: The device-model component of this meter: "FiscalMetering" (a certified meter)
    #: or "ControlMetering" (the controller's ammeter). Its Problem follows the readings.
    component: str

    async def read(self, evse: int) -> MeterReading:
        """One reading of the EVSE's meter; raises MeterError instead of a bad value."""


class TokenReader(Protocol):
    async def run(
        self,
        events: trio.MemorySendChannel[HardwareEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Poll the reader until cancelled: one TokenPresented per card presentation (a
        card held still is one presentation), DeviceProblem("TokenReader", ...) while the
        reader does not answer and when it recovers."""


class SerialDevice(Protocol):
    """Where one device's bytes go: a tty named by path or by USB identity.

    Adapters that speak a serial protocol receive one of these from bootstrap/ and own
    the reconnect loop: open, talk, and on an error or `wait_gone` returning, close,
    back off and open again."""

    label: str          # for logs and problem reports: "/dev/ttyS1", "usb:0403:6001"

    async def open(self) -> trio.abc.Stream:
        """A raw (8N1, no echo) byte stream to the device; raises OSError when it is not there."""

    async def wait_gone(self) -> None:
        """Return when the device was removed (USB unplugged); never returns for a fixed port."""
