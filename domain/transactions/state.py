"""The transaction state machine's vocabulary: its condition bits, its outputs, the running
transaction's record (see fsm.py)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from domain import messages as m
from domain.effects import UnlockConnector


# Condition bits (the TxStartPoint / TxStopPoint members).
PARK, EV, AUTH, PATH, ENERGY = 1, 2, 4, 8, 16
POINT_BITS = {"ParkingBayOccupancy": PARK, "EVConnected": EV, "Authorized": AUTH,
              "PowerPathClosed": PATH, "EnergyTransfer": ENERGY}
_LOST_ON_STOP = AUTH | PATH | ENERGY      # what a session whose authorization was stopped cannot regain
INF = math.inf
MAX_ENDED_VALUES = 4096                   # MeterValues kept for the Ended event (TxEndedInterval series)
SNAPSHOT_VERSION = 1

TE = m.TransactionEvent
TR = m.TriggerReason
CS = m.ChargingState
R = m.Reason
CTX = m.ReadingContext


@dataclass(frozen=True, slots=True)
class PowerPath:
    """Close (offer energy) or open the power path of the EVSE."""

    evse: int
    closed: bool


TxOutput = m.TransactionEventRequest | PowerPath | UnlockConnector


def fault_reason(fault: str) -> m.Reason:
    """stoppedReason for a fault the hardware reported (free text from the adapter)."""
    f = fault.lower().replace("_", "").replace(" ", "")
    if "ground" in f or "gfi" in f or "gfci" in f or "residual" in f or "rcd" in f:
        return R.GroundFault
    if "overcurrent" in f:
        return R.OvercurrentFault
    if "emergency" in f:
        return R.EmergencyStop
    if "powerquality" in f or "voltage" in f:
        return R.PowerQuality
    return R.Other


@dataclass(slots=True)
class _Tx:
    id: str
    seq: int = 0                                # the seqNo of the next message
    seen: int = 0                               # conditions true at some point of the transaction
    reported_state: m.ChargingState | None = None
    stop_reason: m.Reason | None = None         # the first stop cause
    stopping: bool = False                      # the authorization was ended by a stop
    token_reported: bool = False
    evse_reported: bool = False                 # evse.connectorId sent since the last plug-in
    charging_since: float | None = None
    charged_s: float = 0.0
    begin_energy_wh: float | None = None
    started: str | None = None                  # RFC 3339 UTC instant it started (for the local status)
    ended_values: list[m.MeterValue] = field(default_factory=list)
    updated_due: float = INF                    # monotonic deadlines of the samplers
    clock_due: float = INF
    clock_epoch: float = 0.0                    # the aligned instant clock_due stands for
    ended_due: float = INF
    ended_clock_due: float = INF
    ended_clock_epoch: float = 0.0


