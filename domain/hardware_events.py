"""Events the charger's hardware reports, as the domain sees them.

Hardware adapters translate what their devices say into these; the domain
reacts to them. (Re-exported by ports.hardware for the adapters.)
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CablePlugged:
    """EV connected (IEC 61851 state B)."""

    evse: int
    connector: int = 1


@dataclass(frozen=True, slots=True)
class CableUnplugged:
    evse: int
    connector: int = 1


@dataclass(frozen=True, slots=True)
class EnergyRequested:
    """The EV asks for energy (state C); it draws `power_w` once the power path is closed."""

    evse: int
    power_w: float


@dataclass(frozen=True, slots=True)
class EnergyPaused:
    """The EV stops asking for energy (back to state B)."""

    evse: int


@dataclass(frozen=True, slots=True)
class TokenPresented:
    """A card (or other token) at the reader; `evse` when the reader belongs to one EVSE."""

    id_token: str
    type: str = "ISO14443"
    evse: int | None = None


@dataclass(frozen=True, slots=True)
class OccupancyChanged:
    """Parking bay sensor."""

    evse: int
    occupied: bool


@dataclass(frozen=True, slots=True)
class FaultRaised:
    """A fault of an EVSE (GFCI trip, stuck relay, controller silent, ...): its connectors
    become Faulted while any fault lasts. `component`/`variable` name the device-model
    variable that reports it (e.g. RCD.Tripped, PowerContactor.Problem), set true."""

    evse: int
    fault: str
    component: str | None = None
    variable: str = "Problem"


@dataclass(frozen=True, slots=True)
class FaultCleared:
    """The fault `fault` of the EVSE is gone (None: every fault of it)."""

    evse: int
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceProblem:
    """A part that does not fault an EVSE by itself (meter, card reader, the controller
    rebooting) reports trouble (`problem` true) or recovery: the device-model variable
    `component`.Problem follows and the CSMS is told with a NotifyEvent."""

    component: str               # "TokenReader", "FiscalMetering", "ControlMetering", "Controller"
    problem: bool
    evse: int | None = None      # None: the station-level component
    detail: str = ""             # one line, sent as techInfo


@dataclass(frozen=True, slots=True)
class JobFinished:
    """A hardware job the domain asked for (an effect such as UnlockConnector; a firmware
    download or install, a log upload: domain/firmware/jobs.py, domain/diagnostics/jobs.py; a
    certificate job: domain/effects.py) has been carried out: `ok` whether it succeeded, `detail`
    one line about it, `outcome` the job's own result name where ok is not enough (a failed log
    upload: PermissionDenied, BadMessage, NotSupportedOperation; "" otherwise), `result` what a
    certificate job returns (a CertificateOutcome). The runtime sends one for every job that
    carries a `reply_to` (the CSMS CALL its outcome answers), and for every certificate job."""

    job: object
    ok: bool
    detail: str = ""
    outcome: str = ""
    result: object = None


@dataclass(frozen=True, slots=True)
class MeterSampled:
    """A reading of an EVSE's meter (the runtime reads the meter port regularly)."""

    evse: int
    reading: "MeterReading"


@dataclass(frozen=True, slots=True)
class ExternalLimitChanged:
    """A charging limit from outside OCPP (an energy manager, a grid signal; K11-K13) on EVSE
    `evse` (0: the grid connection, every EVSE) from `source` (a ChargingLimitSourceEnumType
    value): at most `amps` per phase or `watts` in total; neither: that source's limit is gone.
    A new limit of the same EVSE and source replaces the one before."""

    evse: int
    amps: float | None = None
    watts: float | None = None
    source: str = "EMS"

    def __post_init__(self) -> None:
        if self.amps is not None and self.watts is not None:
            raise ValueError("amps, watts: give one of them, not both")
        for name in ("amps", "watts"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < float("inf"):
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")


HardwareEvent = (
    CablePlugged | CableUnplugged | EnergyRequested | EnergyPaused | TokenPresented
    | OccupancyChanged | FaultRaised | FaultCleared | DeviceProblem | JobFinished | MeterSampled
    | ExternalLimitChanged
)


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One sample of an EVSE's meter. Per-phase lists are empty where the meter has no phases."""

    energy_wh: float                   # Energy.Active.Import.Register, monotonic
    power_w: float                     # Power.Active.Import
    current_a: tuple[float, ...] = ()  # Current.Import per phase (L1, L2, L3)
    voltage_v: tuple[float, ...] = ()  # Voltage per phase
