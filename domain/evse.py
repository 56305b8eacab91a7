"""The EVSE aggregate: everything the station knows and decides about one EVSE, in one place.

Its connectors (plugged, operative, last status reported), its faults, the parking bay,
what the EV asks for (energy requested, energy flowing), the energy offer (power path
closed or open and the offered limit), the last meter reading, the transaction state
machine (OCPP 2.0.1 block E), the authorization it holds or waits for (the group of the
token, a remote start waiting for its AuthorizeResponse, an AuthorizeRequest whose answer
is still due), the charging limit (K) and a remote start's charging profile waiting for
its transaction (K05), and room for a reservation (H).

Blocks change an EVSE through the shared context (`Context.evses`); none keeps EVSE state
of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from domain import messages as m
from domain.effects import EnergyOffer
from domain.hardware_events import MeterReading
from domain.transactions import EvseTransactions


@dataclass(slots=True)
class Connector:
    evse: int
    connector: int
    plugged: bool = False
    operative: bool = True
    reported: str | None = None      # last status sent (or queued) to the CSMS

    def status(self, evse_fault: str | None) -> str:
        """OCPP ConnectorStatusEnumType from what the hardware and the availability say."""
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
    fsm: EvseTransactions
    # fault -> the device-model (component, variable) reporting it; Faulted while any lasts
    faults: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    occupied: bool = False                     # parking bay
    energy_requested: bool = False             # the EV asks for energy (IEC 61851 state C)
    energy_flowing: bool = False               # what the state machine was last told (EnergyTransfer)
    offer: EnergyOffer | None = None           # the last offer commanded
    reading: MeterReading | None = None        # the last good meter reading
    group_token: m.IdToken | None = None       # groupIdToken of the authorization held (C09)
    remote_start_id: int | None = None         # a remote start waiting for its AuthorizeResponse (F02)
    # the AuthorizeRequest whose answer decides this EVSE's next session (C01); cleared when
    # the EVSE leaves the state it was asked in (PICS C-06.2), so a late answer authorizes nobody
    pending_authorization: m.AuthorizeRequest | None = None
    reservation: object | None = None          # H: the reservation that holds the EVSE (not yet)
    limit_a: float | None = None               # K: the charging limit that applies now (A per phase)
    charging_profile: m.ChargingProfile | None = None   # K05: a remote start's TxProfile, until its transaction
    reported: str | None = None                # last EVSE AvailabilityState sent to the CSMS

    @classmethod
    def create(cls, evse_id: int, connectors: int, fsm: EvseTransactions) -> "Evse":
        return cls(evse_id, {c: Connector(evse_id, c) for c in range(1, connectors + 1)}, fsm)

    @property
    def fault(self) -> str | None:
        return next(iter(self.faults), None)

    def connector_status(self, connector: int) -> str:
        return self.connectors[connector].status(self.fault)

    def status(self) -> str:
        """EVSE-level AvailabilityState: the 'most significant' of its connectors."""
        states = [c.status(self.fault) for c in self.connectors.values()]
        for s in ("Faulted", "Occupied", "Reserved", "Available"):
            if s in states:
                return s
        return "Unavailable"

    @property
    def usable(self) -> bool:
        """A new session may start here (not Unavailable, not Faulted)."""
        return self.status() not in ("Unavailable", "Faulted")

    @property
    def plugged(self) -> bool:
        return any(c.plugged for c in self.connectors.values())

    def abandon_authorization(self) -> bool:
        """Forget an authorization still asked for (and a remote start waiting for it); True
        if there was one."""
        had = self.pending_authorization is not None or self.remote_start_id is not None
        self.pending_authorization = None
        self.remote_start_id = None
        return had

    def ev_left(self) -> None:
        """The EV was unplugged: what belonged to it goes with it."""
        self.energy_requested = False

    def offer_for(self, closed: bool) -> EnergyOffer:
        """The offer for an open or closed power path, with the limit that applies now."""
        self.offer = EnergyOffer(self.id, closed, self.limit_a if closed else None)
        return self.offer
