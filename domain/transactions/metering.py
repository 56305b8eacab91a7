"""Meter readings -> OCPP MeterValues, and the clock-aligned sampling instants (pure).

J02 (sampled) / J01 (clock-aligned): one SampledValue per configured measurand, per phase where
the reading has phases (Current.Import L1/L2/L3, Voltage L1-N/L2-N/L3-N); a one-element
per-phase tuple is a single-phase meter and is reported without a phase (the overall value).
Energy.Active.Import.Register is the total of all phases only (SampledDataCtrlr.
RegisterValuesWithoutPhases = true). Units: Wh, W, A, V; location Outlet. Measurands the
reading does not carry (Current.Offered, Frequency, SoC, ...) are left out.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

from domain import messages as m
from domain.hardware_events import MeterReading

DAY = 86_400

_Mz = m.Measurand
_OUTLET = m.Location.Outlet
# Shared, never mutated: building a sample allocates only the SampledValues themselves.
_WH = m.UnitOfMeasure(unit="Wh")
_W = m.UnitOfMeasure(unit="W")
_A = m.UnitOfMeasure(unit="A")
_V = m.UnitOfMeasure(unit="V")
_CURRENT_PHASES = (m.Phase.L1, m.Phase.L2, m.Phase.L3)
_VOLTAGE_PHASES = (m.Phase.L1_N, m.Phase.L2_N, m.Phase.L3_N)


def sampled_values(reading: MeterReading, measurands: tuple[m.Measurand, ...],
                   context: m.ReadingContext) -> list[m.SampledValue]:
    out: list[m.SampledValue] = []
    for mz in measurands:
        if mz is _Mz.Energy_Active_Import_Register:
            out.append(m.SampledValue(value=round(float(reading.energy_wh), 3), context=context, measurand=mz,
                                      location=_OUTLET, unit_of_measure=_WH))
        elif mz is _Mz.Power_Active_Import:
            out.append(m.SampledValue(value=round(float(reading.power_w), 3), context=context, measurand=mz,
                                      location=_OUTLET, unit_of_measure=_W))
        elif mz is _Mz.Current_Import:
            _per_phase(out, reading.current_a, _CURRENT_PHASES, context, mz, _A)
        elif mz is _Mz.Voltage:
            _per_phase(out, reading.voltage_v, _VOLTAGE_PHASES, context, mz, _V)
    return out


def _per_phase(out: list[m.SampledValue], values: tuple[float, ...], phases: tuple[m.Phase, ...],
               context: m.ReadingContext, mz: m.Measurand, unit: m.UnitOfMeasure) -> None:
    if len(values) == 1:
        out.append(m.SampledValue(value=round(float(values[0]), 3), context=context, measurand=mz,
                                  location=_OUTLET, unit_of_measure=unit))
        return
    for value, phase in zip(values, phases):
        out.append(m.SampledValue(value=round(float(value), 3), context=context, measurand=mz, phase=phase,
                                  location=_OUTLET, unit_of_measure=unit))


def meter_value(reading: MeterReading | None, measurands: tuple[m.Measurand, ...],
                context: m.ReadingContext, timestamp: datetime) -> m.MeterValue | None:
    """One MeterValue, or None when there is no reading or nothing to report
    (a MeterValue needs at least one SampledValue)."""
    if reading is None or not measurands:
        return None
    values = sampled_values(reading, measurands, context)
    return m.MeterValue(sampled_value=values, timestamp=timestamp) if values else None


def next_aligned(epoch: float, interval: int) -> float:
    """The first clock-aligned instant strictly after `epoch` (POSIX seconds, UTC): the
    intervals count from midnight UTC and restart at the next midnight (an interval that
    does not divide a day gives a shorter last interval)."""
    day = math.floor(epoch / DAY) * DAY
    k = math.floor((epoch - day) / interval) + 1
    return min(day + k * interval, day + DAY)


def utc_from_epoch(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)
