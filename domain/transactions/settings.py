"""The settings of the transaction state machine: a frozen snapshot of the device model.

TxCtrlr (start/stop points, timeouts, invalid-id handling, TxBeforeAcceptedEnabled),
OCPPCommCtrlr.UnlockOnEVSideDisconnect, SampledDataCtrlr and AlignedDataCtrlr (measurands and
intervals). `TxSettings.from_device_model` reads them tolerantly: a variable that is not
defined, or has no value, keeps the default below (the defaults are those of the station's
device-model definitions).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain import messages as m

# TxStartPoint / TxStopPoint members this stack supports (PICS C-09.x / C-10.x; DataSigned is not).
TX_POINTS = ("ParkingBayOccupancy", "EVConnected", "Authorized", "PowerPathClosed", "EnergyTransfer")

MAX_INTERVAL = 86_400        # s: one day, the longest sampling interval accepted

_E = m.Measurand.Energy_Active_Import_Register


def parse_points(text: str | None, default: frozenset[str]) -> frozenset[str]:
    """A TxStartPoint/TxStopPoint MemberList -> the supported members (unknown ones, e.g.
    DataSigned, are ignored). None (no value) gives `default`; "" gives the empty set."""
    if text is None:
        return default
    return frozenset(p for p in (s.strip() for s in text.split(",")) if p in TX_POINTS)


def parse_measurands(text: str | None, default: tuple[m.Measurand, ...]) -> tuple[m.Measurand, ...]:
    """A measurand MemberList -> the known measurands in list order, without duplicates."""
    if text is None:
        return default
    out: list[m.Measurand] = []
    for s in text.split(","):
        try:
            v = m.Measurand(s.strip())
        except ValueError:
            continue
        if v not in out:
            out.append(v)
    return tuple(out)


def clamp_interval(value: int | None, default: int) -> int:
    """Seconds; 0 (or less) switches the sampling off, otherwise 1 s .. 1 day."""
    if value is None:
        return default
    if value <= 0:
        return 0
    return min(value, MAX_INTERVAL)


@dataclass(frozen=True, slots=True)
class TxSettings:
    tx_start_points: frozenset[str] = frozenset({"PowerPathClosed"})
    tx_stop_points: frozenset[str] = frozenset({"EVConnected", "Authorized"})
    ev_connection_timeout: int = 120                 # s; 0: no timeout
    stop_tx_on_ev_side_disconnect: bool = True
    stop_tx_on_invalid_id: bool = True
    max_energy_on_invalid_id: int = 0                # Wh
    unlock_on_ev_side_disconnect: bool = True
    tx_before_accepted: bool = False                 # transactions before the CSMS accepted the station
    # SampledDataCtrlr
    sampled_enabled: bool = True
    tx_started_measurands: tuple[m.Measurand, ...] = (_E,)
    tx_updated_measurands: tuple[m.Measurand, ...] = (_E, m.Measurand.Power_Active_Import)
    tx_updated_interval: int = 60                    # s; 0: off
    tx_ended_measurands: tuple[m.Measurand, ...] = (_E,)
    tx_ended_interval: int = 0                       # s; 0: only the Transaction.End value
    # AlignedDataCtrlr
    aligned_enabled: bool = True
    aligned_interval: int = 900                      # s from midnight; 0: off
    aligned_measurands: tuple[m.Measurand, ...] = (_E,)
    aligned_send_during_idle: bool = False           # true: no clock-aligned values during a transaction
    aligned_tx_ended_interval: int = 0
    aligned_tx_ended_measurands: tuple[m.Measurand, ...] = (_E,)

    # (component, variable) of every variable read by from_device_model: a change of any of
    # them makes the station read the settings again (Charging subscribes to exactly these).
    VARIABLES = (
        ("TxCtrlr", "TxStartPoint"), ("TxCtrlr", "TxStopPoint"), ("TxCtrlr", "EVConnectionTimeOut"),
        ("TxCtrlr", "StopTxOnEVSideDisconnect"), ("TxCtrlr", "StopTxOnInvalidId"),
        ("TxCtrlr", "MaxEnergyOnInvalidId"), ("OCPPCommCtrlr", "UnlockOnEVSideDisconnect"),
        ("TxCtrlr", "TxBeforeAcceptedEnabled"),
        ("SampledDataCtrlr", "Enabled"), ("SampledDataCtrlr", "TxStartedMeasurands"),
        ("SampledDataCtrlr", "TxUpdatedMeasurands"), ("SampledDataCtrlr", "TxUpdatedInterval"),
        ("SampledDataCtrlr", "TxEndedMeasurands"), ("SampledDataCtrlr", "TxEndedInterval"),
        ("AlignedDataCtrlr", "Enabled"), ("AlignedDataCtrlr", "Interval"), ("AlignedDataCtrlr", "Measurands"),
        ("AlignedDataCtrlr", "SendDuringIdle"), ("AlignedDataCtrlr", "TxEndedInterval"),
        ("AlignedDataCtrlr", "TxEndedMeasurands"),
    )

    @classmethod
    def from_device_model(cls, dm: Any) -> "TxSettings":
        """Read the settings from a DeviceModel (anything with `get(component, variable)`).
        Missing variables keep the defaults; values out of range are clamped."""
        d = cls()

        def get(component: str, variable: str) -> str | None:
            try:
                v = dm.get(component, variable)
            except (KeyError, LookupError):
                return None
            return v if isinstance(v, str) else None

        def boolean(component: str, variable: str, default: bool) -> bool:
            v = get(component, variable)
            return default if v is None else v.strip().lower() == "true"

        def integer(component: str, variable: str) -> int | None:
            v = get(component, variable)
            if v is None or not v.strip():
                return None
            try:
                return int(v)
            except ValueError:
                return None

        timeout = integer("TxCtrlr", "EVConnectionTimeOut")
        max_energy = integer("TxCtrlr", "MaxEnergyOnInvalidId")
        return cls(
            tx_start_points=parse_points(get("TxCtrlr", "TxStartPoint"), d.tx_start_points),
            tx_stop_points=parse_points(get("TxCtrlr", "TxStopPoint"), d.tx_stop_points),
            ev_connection_timeout=d.ev_connection_timeout if timeout is None else clamp_interval(timeout, 0),
            stop_tx_on_ev_side_disconnect=boolean("TxCtrlr", "StopTxOnEVSideDisconnect",
                                                  d.stop_tx_on_ev_side_disconnect),
            stop_tx_on_invalid_id=boolean("TxCtrlr", "StopTxOnInvalidId", d.stop_tx_on_invalid_id),
            max_energy_on_invalid_id=d.max_energy_on_invalid_id if max_energy is None else max(0, max_energy),
            unlock_on_ev_side_disconnect=boolean("OCPPCommCtrlr", "UnlockOnEVSideDisconnect",
                                                 d.unlock_on_ev_side_disconnect),
            tx_before_accepted=boolean("TxCtrlr", "TxBeforeAcceptedEnabled", d.tx_before_accepted),
            sampled_enabled=boolean("SampledDataCtrlr", "Enabled", d.sampled_enabled),
            tx_started_measurands=parse_measurands(get("SampledDataCtrlr", "TxStartedMeasurands"),
                                                   d.tx_started_measurands),
            tx_updated_measurands=parse_measurands(get("SampledDataCtrlr", "TxUpdatedMeasurands"),
                                                   d.tx_updated_measurands),
            tx_updated_interval=clamp_interval(integer("SampledDataCtrlr", "TxUpdatedInterval"),
                                               d.tx_updated_interval),
            tx_ended_measurands=parse_measurands(get("SampledDataCtrlr", "TxEndedMeasurands"),
                                                 d.tx_ended_measurands),
            tx_ended_interval=clamp_interval(integer("SampledDataCtrlr", "TxEndedInterval"),
                                             d.tx_ended_interval),
            aligned_enabled=boolean("AlignedDataCtrlr", "Enabled", d.aligned_enabled),
            aligned_interval=clamp_interval(integer("AlignedDataCtrlr", "Interval"), d.aligned_interval),
            aligned_measurands=parse_measurands(get("AlignedDataCtrlr", "Measurands"), d.aligned_measurands),
            aligned_send_during_idle=boolean("AlignedDataCtrlr", "SendDuringIdle", d.aligned_send_during_idle),
            aligned_tx_ended_interval=clamp_interval(integer("AlignedDataCtrlr", "TxEndedInterval"),
                                                     d.aligned_tx_ended_interval),
            aligned_tx_ended_measurands=parse_measurands(get("AlignedDataCtrlr", "TxEndedMeasurands"),
                                                         d.aligned_tx_ended_measurands),
        )
