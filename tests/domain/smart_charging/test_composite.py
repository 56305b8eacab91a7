"""The composite schedule (domain/smart_charging/composite.py, K08): hand-computed cases (the
Part 6 test cases TC_K_39..TC_K_41 among them), `limit_at`, and a property test against a
brute-force reference that evaluates every profile second by second."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from domain import messages as m
from domain.smart_charging.composite import (ExternalLimit, Limit, LimitNow, Transaction, combine,
                                             composite_schedule, limit_at)
from domain.smart_charging.profiles import Installed

P = m.ChargingProfilePurpose
K = m.ChargingProfileKind
A, W = m.ChargingRateUnit.A, m.ChargingRateUnit.W
S = datetime(2026, 3, 5, 23, 0, tzinfo=timezone.utc)      # a Thursday, one hour before midnight
MAX32 = Limit(32.0, A)


def prof(periods, *, pid=1, purpose=P.TxDefaultProfile, level=0, kind=K.Absolute, start=S, unit=A,
         duration=None, tx=None, recurrency=None, valid_from=None, valid_to=None) -> m.ChargingProfile:
    ps = [m.ChargingSchedulePeriod(start_period=sp, limit=lim, number_phases=n)
          for sp, lim, *rest in periods for n in [rest[0] if rest else None]]
    sched = m.ChargingSchedule(id=pid, start_schedule=None if kind == K.Relative else start, duration=duration,
                               charging_rate_unit=unit, charging_schedule_period=ps)
    return m.ChargingProfile(id=pid, stack_level=level, charging_profile_purpose=purpose,
                             charging_profile_kind=kind, recurrency_kind=recurrency, valid_from=valid_from,
                             valid_to=valid_to, charging_schedule=[sched], transaction_id=tx)


def periods(cs: m.CompositeSchedule) -> list[tuple]:
    return [(p.start_period, p.limit, p.number_phases) for p in cs.charging_schedule_period]


def run(items, duration, *, evse=1, unit=A, start=S, **kw) -> list[tuple]:
    kw.setdefault("physical_max", MAX32)
    cs = composite_schedule(evse, items, start=start, duration=duration, unit=unit, **kw)
    assert (cs.evse_id, cs.duration, cs.schedule_start, cs.charging_rate_unit) == (evse, duration, start, unit)
    return periods(cs)


ON1 = 1
TX = Transaction("tx-1", S - timedelta(seconds=100))
CASES = [
    ("no profile: the physical maximum (TC_K_39)", [], 300, {}, [(0, 32.0, 3)]),
    ("stacking TxDefaultProfiles (TC_K_40)",
     [Installed(ON1, prof([(0, 6), (100, 8), (200, 10)], duration=400)),
      Installed(ON1, prof([(0, 7), (100, 9)], pid=2, level=1, duration=150))], 350, {},
     [(0, 7.0, 3), (100, 9.0, 3), (150, 8.0, 3), (200, 10.0, 3)]),
    ("combining purposes; the TxProfile overrules the TxDefaultProfile after its duration (TC_K_41)",
     [Installed(0, prof([(0, 10)], pid=1, purpose=P.ChargingStationMaxProfile, duration=86400)),
      Installed(ON1, prof([(0, 6), (60, 10), (120, 8), (180, 15), (260, 8)], pid=2, duration=300)),
      Installed(ON1, prof([(0, 8), (50, 11), (140, 16), (200, 6), (240, 12)], pid=3, purpose=P.TxProfile,
                          duration=260, tx="tx-1"))], 400, {"transaction": TX},
     [(0, 8.0, 3), (50, 10.0, 3), (200, 6.0, 3), (240, 10.0, 3)]),
    ("a TxProfile overrules the TxDefaultProfile from its validFrom, before its schedule begins",
     [Installed(ON1, prof([(0, 10)], pid=1)),
      Installed(ON1, prof([(0, 6)], pid=2, purpose=P.TxProfile, tx="tx-1", start=S + timedelta(seconds=100),
                          valid_from=S + timedelta(seconds=50), valid_to=S + timedelta(seconds=150)))], 200,
     {"transaction": TX}, [(0, 10.0, 3), (50, 32.0, 3), (100, 6.0, 3), (150, 10.0, 3)]),
    ("TxDefaultProfile on the station applies to the EVSE; the EVSE's own wins at one stackLevel",
     [Installed(0, prof([(0, 10)], pid=1)), Installed(ON1, prof([(0, 12)], pid=2, duration=60))], 120, {},
     [(0, 12.0, 3), (60, 10.0, 3)]),
    ("TxProfile of another transaction, profiles of another EVSE: not used",
     [Installed(ON1, prof([(0, 6)], purpose=P.TxProfile, kind=K.Relative, tx="tx-0")),
      Installed(2, prof([(0, 6)], pid=2))], 60, {"transaction": TX}, [(0, 32.0, 3)]),
    ("Relative TxProfile from the transaction's start",
     [Installed(ON1, prof([(0, 6), (300, 12)], purpose=P.TxProfile, kind=K.Relative, tx="tx-1"))], 400,
     {"transaction": TX}, [(0, 6.0, 3), (200, 12.0, 3)]),
    ("Relative TxDefaultProfile without a transaction: from the window's start",
     [Installed(ON1, prof([(0, 6), (300, 12)], kind=K.Relative))], 400, {}, [(0, 6.0, 3), (300, 12.0, 3)]),
    ("Absolute not begun yet (TC_K_23) and ended by its duration",
     [Installed(ON1, prof([(0, 6)], start=S + timedelta(seconds=60), duration=120))], 300, {},
     [(0, 32.0, 3), (60, 6.0, 3), (180, 32.0, 3)]),
    ("validFrom and validTo cut the periods (TC_K_21, TC_K_22)",
     [Installed(ON1, prof([(0, 10), (150, 12)], valid_from=S + timedelta(seconds=100),
                          valid_to=S + timedelta(seconds=200)))], 300, {},
     [(0, 32.0, 3), (100, 10.0, 3), (150, 12.0, 3), (200, 32.0, 3)]),
    ("Recurring Daily across midnight",
     [Installed(ON1, prof([(0, 10), (7200, 20)], kind=K.Recurring, recurrency=m.RecurrencyKind.Daily,
                          start=datetime(2026, 3, 1, 22, 0, tzinfo=timezone.utc), duration=4 * 3600))],
     4 * 3600, {}, [(0, 10.0, 3), (3600, 20.0, 3), (3 * 3600, 32.0, 3)]),
    ("Recurring Daily without duration: yesterday's last period until today's start",
     [Installed(ON1, prof([(0, 32), (3600, 6)], kind=K.Recurring, recurrency=m.RecurrencyKind.Daily,
                          start=datetime(2026, 3, 1, 23, 30, tzinfo=timezone.utc)))],
     3600, {}, [(0, 6.0, 3), (1800, 32.0, 3)]),
    ("Recurring Weekly across the week's boundary (Sunday 23:00 + 1 h, then 16 A)",
     [Installed(ON1, prof([(0, 8), (3600, 16)], kind=K.Recurring, recurrency=m.RecurrencyKind.Weekly,
                          start=datetime(2026, 3, 1, 23, 0, tzinfo=timezone.utc), duration=7200))],
     3 * 3600, {"start": datetime(2026, 3, 22, 22, 30, tzinfo=timezone.utc)},
     [(0, 32.0, 3), (1800, 8.0, 3), (5400, 16.0, 3), (9000, 32.0, 3)]),
    ("Recurring Daily: a period beyond a day is never reached, the next repetition begins",
     [Installed(ON1, prof([(0, 10), (90000, 20)], kind=K.Recurring, recurrency=m.RecurrencyKind.Daily,
                          start=datetime(2026, 3, 4, 23, 30, tzinfo=timezone.utc)))],
     7200, {}, [(0, 10.0, 3)]),
    ("Recurring before its first repetition: no limit",
     [Installed(ON1, prof([(0, 8)], kind=K.Recurring, recurrency=m.RecurrencyKind.Daily,
                          start=S + timedelta(seconds=30)))], 60, {}, [(0, 32.0, 3), (30, 8.0, 3)]),
    ("external limits and the physical maximum bound the profiles",
     [Installed(ON1, prof([(0, 20)]))], 60,
     {"external": [ExternalLimit(12.0, A)], "physical_max": Limit(16.0, A)}, [(0, 12.0, 3)]),
    ("ChargingStationExternalConstraints bound like a maximum",
     [Installed(0, prof([(0, 9)], purpose=P.ChargingStationExternalConstraints, duration=30)),
      Installed(ON1, prof([(0, 20)], pid=2))], 60, {}, [(0, 9.0, 3), (30, 20.0, 3)]),
    ("mixed units, in A: 11 040 W on 3 phases is 16 A",
     [Installed(0, prof([(0, 11040)], purpose=P.ChargingStationMaxProfile, unit=W)),
      Installed(ON1, prof([(0, 20)], pid=2))], 60, {}, [(0, 16.0, 3)]),
    ("mixed units, in W", [Installed(0, prof([(0, 11040)], purpose=P.ChargingStationMaxProfile, unit=W)),
                           Installed(ON1, prof([(0, 10)], pid=2))], 60, {"unit": W}, [(0, 6900.0, 3)]),
    ("one phase: 10 A on 1 phase is 2 300 W, the lowest phases count",
     [Installed(0, prof([(0, 4600)], purpose=P.ChargingStationMaxProfile, unit=W)),
      Installed(ON1, prof([(0, 10, 1)], pid=2))], 60, {"unit": W}, [(0, 2300.0, 1)]),
    ("W to A rounds down to 0.1", [Installed(ON1, prof([(0, 4000)], unit=W))], 60, {}, [(0, 5.7, 3)]),
    ("an EVSE on one phase", [Installed(ON1, prof([(0, 3680)], unit=W))], 60, {"phases": 1}, [(0, 16.0, 1)]),
    ("the station (EVSE 0): its maximum and external constraints only",
     [Installed(0, prof([(0, 40)], purpose=P.ChargingStationMaxProfile, duration=60)),
      Installed(0, prof([(0, 6)], pid=2)), Installed(ON1, prof([(0, 6)], pid=3))], 120,
     {"evse": 0, "physical_max": Limit(63.0, A)}, [(0, 40.0, 3), (60, 63.0, 3)]),
]


@pytest.mark.parametrize("items, duration, kw, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_composite(items, duration, kw, expected):
    assert run(items, duration, **kw) == expected


def test_composite_is_a_schema_valid_message():
    import msgspec
    cs = composite_schedule(1, [], start=S + timedelta(microseconds=500), duration=0, unit=W,
                            physical_max=MAX32)
    assert cs.schedule_start == S and periods(cs) == [(0, 22080.0, 3)]
    msgspec.json.decode(msgspec.json.encode(m.GetCompositeScheduleResponse(
        status=m.GenericStatus.Accepted, schedule=cs)), type=m.GetCompositeScheduleResponse)


def test_bad_arguments():
    with pytest.raises(ValueError, match="duration"):
        composite_schedule(1, [], start=S, duration=-1, unit=A, physical_max=MAX32)
    with pytest.raises(ValueError, match="phases"):
        composite_schedule(1, [], start=S, duration=1, unit=A, physical_max=MAX32, phases=0)


def test_limit_at_gives_the_limit_and_the_next_boundary():
    cs = composite_schedule(1, [Installed(1, prof([(0, 6), (100, 8), (200, 10)]))], start=S, duration=300,
                            unit=A, physical_max=MAX32)
    assert limit_at(cs, S) == LimitNow(6.0, 3, S + timedelta(seconds=100))
    assert limit_at(cs, S + timedelta(seconds=150.5)) == LimitNow(8.0, 3, S + timedelta(seconds=200))
    assert limit_at(cs, S + timedelta(seconds=299)) == LimitNow(10.0, 3, S + timedelta(seconds=300))
    with pytest.raises(ValueError, match="instant"):
        limit_at(cs, S + timedelta(seconds=300))


def test_combine():
    assert combine([(16.0, A, 3), (7360.0, W, 1)], A) == (16.0, 1)
    assert combine([(16.0, A, 3), (7360.0, W, 3)], W) == (7360.0, 3)


# ------------------------------------------------------------------ brute-force reference
DAY, WEEK = 86_400, 604_800


def ref_value(item: Installed, t: int, tx_start: int, phases: int):
    """The profile's (limit, unit, phases) at second t, straight from the definitions, or None."""
    p = item.profile
    s = p.charging_schedule[0]
    if p.valid_from is not None and t < p.valid_from.timestamp():
        return None
    if p.valid_to is not None and t >= p.valid_to.timestamp():
        return None
    if p.charging_profile_kind == K.Relative:
        origin = tx_start
    else:
        origin = int(s.start_schedule.timestamp())
    if t < origin:
        return None
    if p.charging_profile_kind == K.Recurring:
        every = DAY if p.recurrency_kind == m.RecurrencyKind.Daily else WEEK
        origin += (t - origin) // every * every
    offset = t - origin
    if s.duration is not None and offset >= s.duration:
        return None
    current = None
    for period in s.charging_schedule_period:
        if period.start_period <= offset:
            current = period
    return current.limit, s.charging_rate_unit, current.number_phases or phases


def ref_composite(evse, items, start, duration, unit, physical_max, transaction, external, phases):
    lo = int(start.timestamp())
    tx_start = lo if transaction is None else int(transaction.started.timestamp())
    used = []
    for it in items:
        purpose = it.profile.charging_profile_purpose
        if evse == 0:
            ok = it.evse_id == 0 and purpose in (P.ChargingStationMaxProfile, P.ChargingStationExternalConstraints)
        else:
            ok = it.evse_id in (0, evse) and (purpose != P.TxProfile or (
                transaction is not None and it.profile.transaction_id == transaction.transaction_id))
        if ok:
            used.append(it)
    out = []
    for t in range(lo, lo + max(duration, 1)):
        limits = [(physical_max.value, physical_max.unit, physical_max.number_phases or phases)]
        limits += [(x.value, x.unit, x.number_phases or phases) for x in external]
        txs = [it for it in used if it.profile.charging_profile_purpose == P.TxProfile]
        tx_valid = any((it.profile.valid_from is None or it.profile.valid_from.timestamp() <= t)
                       and (it.profile.valid_to is None or t < it.profile.valid_to.timestamp()) for it in txs)
        for purpose in (P.TxProfile if tx_valid else P.TxDefaultProfile, P.ChargingStationMaxProfile,
                        P.ChargingStationExternalConstraints):
            best = None
            for it in used:
                if it.profile.charging_profile_purpose != purpose:
                    continue
                v = ref_value(it, t, tx_start, phases)
                if v is None:
                    continue
                rank = (it.profile.stack_level, it.evse_id != 0)
                if best is None or rank > best[0]:
                    best = (rank, [v])
                elif rank == best[0]:
                    best[1].append(v)
            if best is not None:
                limits += best[1]
        n = min(ph for _, _, ph in limits)
        amps = min(v if u == A else v / (230.0 * n) for v, u, _ in limits)
        watts = min(v * 230.0 * n if u == A else v for v, u, _ in limits)
        value = math.floor(round((amps if unit == A else watts) * 10, 6)) / 10
        if not out or out[-1][1:] != (value, n):
            out.append((t - lo, value, n))
    return out


T0 = datetime(2026, 3, 23, 0, 0, tzinfo=timezone.utc)   # Monday 00:00: midnight and the ISO week boundary


@st.composite
def scenario(draw):
    duration = draw(st.integers(1, 1800))
    start = T0 + timedelta(seconds=draw(st.integers(-duration, 0)))   # the window holds (or ends at) midnight
    lo = int(start.timestamp())
    phases = draw(st.sampled_from([1, 3]))
    tx = draw(st.none() | st.builds(lambda back: Transaction("tx-1", start - timedelta(seconds=back)),
                                     st.integers(0, 900)))

    def moment(a, b):
        return datetime.fromtimestamp(lo + draw(st.integers(a, b)), timezone.utc)

    items = []
    for pid in range(draw(st.integers(0, 5))):
        purpose = draw(st.sampled_from(list(P)))
        kind = draw(st.sampled_from([K.Absolute, K.Recurring] if purpose in (
            P.ChargingStationMaxProfile, P.ChargingStationExternalConstraints) else list(K)))
        unit = draw(st.sampled_from([A, W]))
        starts = sorted(draw(st.sets(st.integers(1, 2 * duration), max_size=3)))
        ps = [(sp, float(draw(st.integers(0, 320))) / 10 if unit == A else float(draw(st.integers(0, 220)) * 100),
               draw(st.sampled_from([None, 1, phases]))) for sp in [0, *starts]]
        recurrency, start_schedule = None, None
        if kind == K.Absolute:
            start_schedule = moment(-2 * duration, duration)
        elif kind == K.Recurring:
            recurrency = draw(st.sampled_from(list(m.RecurrencyKind)))
            back = draw(st.integers(0, 3)) * (DAY if recurrency == m.RecurrencyKind.Daily else WEEK)
            start_schedule = moment(-duration, duration) - timedelta(seconds=back)
        valid_from = draw(st.none() | st.builds(lambda s: moment(-duration, s), st.integers(-duration, duration)))
        valid_to = draw(st.none() | st.builds(lambda s: moment(0, s), st.integers(1, 2 * duration)))
        p = prof(ps, pid=pid, purpose=purpose, level=draw(st.integers(0, 2)), kind=kind, start=start_schedule,
                 unit=unit, duration=draw(st.none() | st.integers(0, 2 * duration)), recurrency=recurrency,
                 valid_from=valid_from, valid_to=valid_to,
                 tx=draw(st.sampled_from(["tx-1", "tx-2"])) if purpose == P.TxProfile else None)
        evse = 1 if purpose == P.TxProfile else draw(st.sampled_from([0, 1, 2]))
        items.append(Installed(evse, p))
    external = draw(st.lists(st.builds(ExternalLimit, st.integers(0, 320).map(lambda v: v / 10),
                                       st.just(A)), max_size=2))
    physical = draw(st.sampled_from([Limit(32.0, A), Limit(11000.0, W), Limit(16.0, A, 1)]))
    return dict(evse=draw(st.sampled_from([0, 1])), items=items, start=start, duration=duration,
                unit=draw(st.sampled_from([A, W])), physical_max=physical, transaction=tx, external=external,
                phases=phases)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_composite_matches_the_second_by_second_reference(sc):
    cs = composite_schedule(sc["evse"], sc["items"], start=sc["start"], duration=sc["duration"], unit=sc["unit"],
                            physical_max=sc["physical_max"], transaction=sc["transaction"],
                            external=sc["external"], phases=sc["phases"])
    assert periods(cs) == ref_composite(**sc)
    for sp, limit, n in periods(cs):           # and limit_at agrees with it at every boundary
        now = limit_at(cs, sc["start"] + timedelta(seconds=sp))
        assert (now.limit, now.number_phases) == (limit, n)
