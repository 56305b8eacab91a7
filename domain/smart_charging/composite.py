"""The composite schedule (OCPP 2.0.1 K08 GetCompositeSchedule) and the limit in force now.

Pure: `composite_schedule` takes the installed profiles, the window [start, start + duration)
and everything else it needs as arguments (no clock) and returns an `m.CompositeSchedule`;
`limit_at` reads the limit of one instant and when it next changes from that result, so the
block can set a deadline at every period boundary.

Rules (K08.FR.02, K08.FR.04, K08.FR.06; Part 6 TC_K_39..TC_K_41):
- Which profiles: for EVSE n > 0, the profiles on n and on 0 (a TxDefaultProfile on 0 applies to
  each EVSE, K01.FR.14; ChargingStationMaxProfile and ChargingStationExternalConstraints on 0
  bound every EVSE); TxProfiles only of the EVSE's running transaction. For EVSE 0 (the grid
  connection): its ChargingStationMaxProfile and ChargingStationExternalConstraints only.
- When a profile has a limit at an instant: validFrom <= t < validTo (K01.FR.36/37); Absolute
  from startSchedule (K01.FR.30); Relative from the transaction's start (from `start` without a
  transaction: as if one started now); Recurring Daily/Weekly from startSchedule repeated every
  86 400 / 604 800 s (UTC seconds, so no daylight-saving shifts), the latest repetition that has
  begun applies and none before the first; `duration` ends a repetition early (none: its last
  period lasts until the next repetition, or for ever); the period in force is the last whose
  startPeriod has passed.
- Within a purpose the highest stackLevel with a limit at the instant wins (a higher one without
  a period there lets the next one through: TC_K_40); at one stackLevel the EVSE's own profile
  wins over the station's, and equal ones give the lowest limit.
- A TxProfile overrules the TxDefaultProfiles while a TxProfile of the transaction is valid
  (validFrom/validTo), even where its schedule has no period (TC_K_41: after the TxProfile's
  duration no TxDefaultProfile comes back).
- The result is the lowest of: that Tx/TxDefault limit, ChargingStationMaxProfile,
  ChargingStationExternalConstraints, the external limits and the EVSE's physical maximum, so
  there is always a limit.

Units and phases: each limit counts with its number of phases (its period's numberPhases, or
`phases`, the EVSE's, when absent). The result's numberPhases is the lowest of all limits in
force; a limit in A is per phase, one in W is the total, and they are compared as current per
phase on the result's phases: A <-> W with `voltage` per phase (230 V unless told):
W = A x voltage x phases. Limits are rounded down to 0.1 (the limit field's one decimal).
Time is whole UTC seconds (fractions of a second in `start` or the profiles are dropped).
DC is not modelled (the EVSEs of this stack are AC): `phases` is 1..3.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import msgspec

from domain import messages as m
from domain.smart_charging.profiles import Installed

VOLTAGE = 230.0                       # V per phase, for A <-> W
RECURRENCE_S = {m.RecurrencyKind.Daily: 86_400, m.RecurrencyKind.Weekly: 604_800}
FOREVER = math.inf

Purpose = m.ChargingProfilePurpose
Kind = m.ChargingProfileKind
A = m.ChargingRateUnit.A


@dataclass(frozen=True, slots=True)
class Limit:
    """A constant limit: `value` in `unit`, on `number_phases` (None: the EVSE's phases)."""

    value: float
    unit: m.ChargingRateUnit
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class ExternalLimit:
    """A limit from outside OCPP (energy manager, grid signal) on one EVSE or the station."""

    value: float
    unit: m.ChargingRateUnit
    source: m.ChargingLimitSource = m.ChargingLimitSource.EMS
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class Transaction:
    """The transaction running on the EVSE: its id (for TxProfiles) and start (for Relative)."""

    transaction_id: str
    started: datetime


@dataclass(frozen=True, slots=True)
class LimitNow:
    """The limit in force at an instant, its phases, and when the next period begins (or the
    schedule ends: compute a new one then)."""

    limit: float
    number_phases: int | None
    until: datetime


# A segment of a profile: [t0, t1) in UTC seconds with its limit, unit and phases.
_Segment = tuple[int, float, float, m.ChargingRateUnit, int]


def _s(instant: datetime) -> int:
    return math.floor(instant.timestamp())


def _origins(p: m.ChargingProfile, s: m.ChargingSchedule, lo: int, hi: int,
             relative_start: int) -> tuple[list[int], float]:
    """The starts of the profile's schedule repetitions that may reach [lo, hi), and the length
    of one repetition (FOREVER unless Recurring)."""
    if p.charging_profile_kind == Kind.Relative:
        return [relative_start], FOREVER
    first = _s(s.start_schedule)
    if p.charging_profile_kind != Kind.Recurring:
        return [first], FOREVER
    every = RECURRENCE_S[p.recurrency_kind]
    k_hi = (hi - 1 - first) // every
    k_lo = max(0, (lo - first) // every)
    return [first + k * every for k in range(k_lo, k_hi + 1)], every


def _segments(p: m.ChargingProfile, lo: int, hi: int, relative_start: int,
              phases: int) -> list[_Segment]:
    """The profile's periods as absolute segments within [lo, hi) and its validity period."""
    s = p.charging_schedule[0]
    if p.valid_from is not None:
        lo = max(lo, _s(p.valid_from))
    if p.valid_to is not None:
        hi = min(hi, _s(p.valid_to))
    if lo >= hi:
        return []
    periods = s.charging_schedule_period
    origins, every = _origins(p, s, lo, hi, relative_start)
    out: list[_Segment] = []
    for origin in origins:
        end = min(origin + every, FOREVER if s.duration is None else origin + s.duration)
        for i, period in enumerate(periods):
            t0 = max(lo, origin + period.start_period)
            t1 = min(hi, end, origin + periods[i + 1].start_period if i + 1 < len(periods) else FOREVER)
            if t0 < t1:
                out.append((t0, t1, period.limit, s.charging_rate_unit, period.number_phases or phases))
    out.sort(key=lambda seg: seg[0])
    return out


@dataclass(slots=True)
class _Layer:
    """The segments of one profile, its rank in its purpose and its validity period."""

    rank: tuple[int, int]                 # (stackLevel, 1 if the EVSE's own profile)
    starts: list[int]
    segments: list[_Segment]
    valid: tuple[float, float]

    def at(self, t: int) -> _Segment | None:
        i = bisect_right(self.starts, t) - 1
        if i >= 0 and t < self.segments[i][1]:
            return self.segments[i]
        return None


def _applies(item: Installed, evse_id: int, transaction: Transaction | None) -> bool:
    purpose = item.profile.charging_profile_purpose
    if evse_id == 0:
        return item.evse_id == 0 and purpose in (Purpose.ChargingStationMaxProfile,
                                                 Purpose.ChargingStationExternalConstraints)
    if item.evse_id not in (0, evse_id):
        return False
    if purpose == Purpose.TxProfile:
        return transaction is not None and item.profile.transaction_id == transaction.transaction_id
    return True


def _layers(installed: Iterable[Installed], evse_id: int, transaction: Transaction | None,
            lo: int, hi: int, relative_start: int, phases: int) -> dict[Purpose, list[_Layer]]:
    by_purpose: dict[Purpose, list[_Layer]] = {}
    for item in installed:
        if not _applies(item, evse_id, transaction):
            continue
        p = item.profile
        segs = _segments(p, lo, hi, relative_start, phases)
        valid = (-FOREVER if p.valid_from is None else _s(p.valid_from),
                 FOREVER if p.valid_to is None else _s(p.valid_to))
        by_purpose.setdefault(p.charging_profile_purpose, []).append(
            _Layer((p.stack_level, int(item.evse_id != 0)), [g[0] for g in segs], segs, valid))
    for layers in by_purpose.values():
        layers.sort(key=lambda layer: layer.rank, reverse=True)
    return by_purpose


def _winners(layers: Sequence[_Layer], t: int) -> list[_Segment]:
    """The segments at `t` of the highest-ranked profiles that have one (ties: all of them)."""
    found: list[_Segment] = []
    rank = None
    for layer in layers:
        if rank is not None and layer.rank != rank:
            break
        seg = layer.at(t)
        if seg is not None:
            found.append(seg)
            rank = layer.rank
    return found


def _in_force(by_purpose: dict[Purpose, list[_Layer]], t: int) -> list[_Segment]:
    """Every limit in force at `t` from the profiles (the TxProfile / TxDefaultProfile rule)."""
    tx_layers = by_purpose.get(Purpose.TxProfile, ())
    if any(layer.valid[0] <= t < layer.valid[1] for layer in tx_layers):
        found = _winners(tx_layers, t)
    else:
        found = _winners(by_purpose.get(Purpose.TxDefaultProfile, ()), t)
    for purpose in (Purpose.ChargingStationMaxProfile, Purpose.ChargingStationExternalConstraints):
        found += _winners(by_purpose.get(purpose, ()), t)
    return found


def _changes(by_purpose: dict[Purpose, list[_Layer]]) -> Iterable[float]:
    """Every instant the limits may change: segment bounds, and the validity bounds of the
    TxProfiles (where they start or stop overruling the TxDefaultProfiles)."""
    for layers in by_purpose.values():
        for layer in layers:
            for seg in layer.segments:
                yield seg[0]
                yield seg[1]
    for layer in by_purpose.get(Purpose.TxProfile, ()):
        yield from layer.valid


def _floor1(x: float) -> float:
    """Rounded down to one decimal (representation noise of x * 10 ignored)."""
    return math.floor(round(x * 10, 6)) / 10


def combine(limits: Iterable[tuple[float, m.ChargingRateUnit, int]], unit: m.ChargingRateUnit,
            voltage: float = VOLTAGE) -> tuple[float, int]:
    """The lowest of `limits` ((value, unit, phases) each) in `unit`, on the lowest phases."""
    limits = list(limits)
    n = min(ph for _, _, ph in limits)
    if unit == A:
        value = min(v if u == A else v / (voltage * n) for v, u, _ in limits)
    else:
        value = min(v * voltage * n if u == A else v for v, u, _ in limits)
    return _floor1(value), n


def composite_schedule(evse_id: int, installed: Iterable[Installed], *, start: datetime, duration: int,
                       unit: m.ChargingRateUnit, physical_max: Limit, transaction: Transaction | None = None,
                       external: Sequence[ExternalLimit] = (), phases: int = 3,
                       voltage: float = VOLTAGE, fallback: Limit | None = None) -> m.CompositeSchedule:
    """The composite schedule of EVSE `evse_id` (0: the station) over [start, start + duration)
    in `unit` (K08): the rules in the module docstring. `fallback`: a limit that applies where
    no profile has one (the station's offline default)."""
    if duration < 0:
        raise ValueError("duration: negative")
    if not 1 <= phases <= 3:
        raise ValueError(f"phases: {phases} not in 1..3")
    lo = _s(start)
    hi = lo + max(duration, 1)
    relative_start = lo if transaction is None else _s(transaction.started)
    by_purpose = _layers(installed, evse_id, transaction, lo, hi, relative_start, phases)
    constant = [(physical_max.value, physical_max.unit, physical_max.number_phases or phases)]
    constant += [(x.value, x.unit, x.number_phases or phases) for x in external]
    bounds = sorted({lo, *(t for t in _changes(by_purpose) if lo < t < hi)})
    periods: list[m.ChargingSchedulePeriod] = []
    default = [] if fallback is None else [(fallback.value, fallback.unit, fallback.number_phases or phases)]
    for t in bounds:
        found = _in_force(by_purpose, t)
        limits = [(seg[2], seg[3], seg[4]) for seg in found] + constant + (default if not found else [])
        value, n = combine(limits, unit, voltage)
        if periods and (periods[-1].limit, periods[-1].number_phases) == (value, n):
            continue
        periods.append(m.ChargingSchedulePeriod(start_period=t - lo, limit=value, number_phases=n))
    return m.CompositeSchedule(charging_schedule_period=periods, evse_id=evse_id, duration=duration,
                               schedule_start=datetime.fromtimestamp(lo, timezone.utc), charging_rate_unit=unit)


def station_schedule(station: m.CompositeSchedule, evses: Sequence[m.CompositeSchedule]) -> m.CompositeSchedule:
    """The composite schedule of the grid connection (evseId 0, K08; TC_K_22: "for evse 0 the
    limit is multiplied by the nr. of EVSE"): at every instant the lowest of `station` (its
    ChargingStationMaxProfile, external constraints and limits, physical maximum) and the sum of
    the EVSEs' composite schedules (what the TxDefaultProfiles on 0 and on each EVSE let them
    draw together). All in one unit over one window; the EVSEs' limits are added as they are (A
    per phase of EVSEs on the same supply, or W) and the result has the station's phases."""
    bounds = sorted({p.start_period for s in (station, *evses) for p in s.charging_schedule_period})
    periods: list[m.ChargingSchedulePeriod] = []
    for t in bounds:
        own = _period_at(station, t)
        value = _floor1(min(own.limit, sum(_period_at(e, t).limit for e in evses))) if evses else own.limit
        if periods and (periods[-1].limit, periods[-1].number_phases) == (value, own.number_phases):
            continue
        periods.append(m.ChargingSchedulePeriod(start_period=t, limit=value, number_phases=own.number_phases))
    return msgspec.structs.replace(station, charging_schedule_period=periods)


def _period_at(schedule: m.CompositeSchedule, offset: int) -> m.ChargingSchedulePeriod:
    """The period of `schedule` in force `offset` seconds after its start."""
    periods = schedule.charging_schedule_period
    return periods[max(0, bisect_right([p.start_period for p in periods], offset) - 1)]


def limit_at(schedule: m.CompositeSchedule, instant: datetime) -> LimitNow:
    """The limit of `schedule` at `instant` (within it) and when it next changes."""
    offset = _s(instant) - _s(schedule.schedule_start)
    if not 0 <= offset < max(schedule.duration, 1):
        raise ValueError(f"instant: {instant.isoformat()} not within the schedule")
    periods = schedule.charging_schedule_period
    i = bisect_right([p.start_period for p in periods], offset) - 1
    nxt = periods[i + 1].start_period if i + 1 < len(periods) else schedule.duration
    return LimitNow(periods[i].limit, periods[i].number_phases,
                    schedule.schedule_start + timedelta(seconds=nxt))
