"""The installed charging profiles (domain/smart_charging/profiles.py): every K01 check with its
status and reasonCode, replacement, K10 clearing, K09 reports and pages, TxProfiles ending with
their transaction, and the durable records (K01.FR.27)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from domain import messages as m
from domain.smart_charging.profiles import TABLE, ProfileStore, StoreLimits, report_pages

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
LIMITS = StoreLimits(evse_count=2, stack_level_max=3, periods_max=4, entries_max=5)
P = m.ChargingProfilePurpose
K = m.ChargingProfileKind
A, W = m.ChargingRateUnit.A, m.ChargingRateUnit.W


def period(start: int = 0, limit: float = 16.0, **kw) -> m.ChargingSchedulePeriod:
    return m.ChargingSchedulePeriod(start_period=start, limit=limit, **kw)


def profile(pid: int = 1, *, purpose=P.TxDefaultProfile, level: int = 0, kind=K.Absolute,
            periods=None, unit=A, start: datetime | None = T0, tx: str | None = None, **kw) -> m.ChargingProfile:
    sched = m.ChargingSchedule(id=pid, start_schedule=None if kind == K.Relative else start,
                               charging_rate_unit=unit, charging_schedule_period=periods or [period()],
                               duration=kw.pop("duration", None))
    if kind == K.Recurring:
        kw.setdefault("recurrency_kind", m.RecurrencyKind.Daily)
    return m.ChargingProfile(id=pid, stack_level=level, charging_profile_purpose=purpose,
                             charging_profile_kind=kind, charging_schedule=[sched], transaction_id=tx, **kw)


def install(store: ProfileStore, evse: int, p: m.ChargingProfile, running: str | None = None,
            limits: StoreLimits = LIMITS, **kw):
    status, info = store.install(evse, p, transaction_id_of_evse=running, limits=limits, **kw)
    return status, None if info is None else info.reason_code


ACCEPTED = (m.ChargingProfileStatus.Accepted, None)


def rejected(code: str):
    return (m.ChargingProfileStatus.Rejected, code)


def sched(p: m.ChargingProfile, **kw) -> m.ChargingProfile:
    return msgspec.structs.replace(p, charging_schedule=[msgspec.structs.replace(p.charging_schedule[0], **kw)])


# (name, evseId, profile, running transaction, limits, expected (status, reasonCode))
CASES = [
    ("TxDefaultProfile on one EVSE (K01.FR.15, TC_K_01)", 1, profile(), None, LIMITS, ACCEPTED),
    ("TxDefaultProfile on all EVSEs (K01.FR.14, TC_K_10)", 0, profile(), None, LIMITS, ACCEPTED),
    ("ChargingStationMaxProfile on 0 (TC_K_03)", 0, profile(purpose=P.ChargingStationMaxProfile), None, LIMITS,
     ACCEPTED),
    ("TxProfile of the running transaction (TC_K_60)", 1,
     profile(purpose=P.TxProfile, kind=K.Relative, tx="tx-1"), "tx-1", LIMITS, ACCEPTED),
    ("Recurring Daily (K01.FR.40, TC_K_19)", 1, profile(kind=K.Recurring), None, LIMITS, ACCEPTED),
    ("Relative TxDefaultProfile, validFrom (TC_K_21)", 1, profile(kind=K.Relative, valid_from=T0), None, LIMITS,
     ACCEPTED),
    ("unknown EVSE (K01.FR.28, TC_K_14)", 3, profile(), None, LIMITS, rejected("UnknownEvse")),
    ("negative EVSE", -1, profile(), None, LIMITS, rejected("UnknownEvse")),
    ("ChargingStationExternalConstraints from the CSMS", 0,
     profile(purpose=P.ChargingStationExternalConstraints), None, LIMITS, rejected("InvalidValue")),
    ("ChargingStationMaxProfile on an EVSE (K01.FR.38)", 1, profile(purpose=P.ChargingStationMaxProfile),
     None, LIMITS, rejected("InvalidValue")),
    ("TxProfile on EVSE 0 (K01.FR.16, TC_K_11)", 0, profile(purpose=P.TxProfile, kind=K.Relative, tx="tx-1"),
     "tx-1", LIMITS, rejected("InvalidValue")),
    ("TxProfile without transactionId (K01.FR.03)", 1, profile(purpose=P.TxProfile, kind=K.Relative), "tx-1",
     LIMITS, rejected("MissingParam")),
    ("TxProfile, no transaction (K01.FR.09, TC_K_02)", 1,
     profile(purpose=P.TxProfile, kind=K.Relative, tx="UNKNOWN-TRANSACTION-ID"), None, LIMITS,
     rejected("TxNotFound")),
    ("TxProfile, another transaction (K01.FR.33, TC_K_16)", 1,
     profile(purpose=P.TxProfile, kind=K.Relative, tx="UNKNOWN-TRANSACTION-ID"), "tx-1", LIMITS,
     rejected("TxNotFound")),
    ("transactionId on a TxDefaultProfile", 1, profile(tx="tx-1"), "tx-1", LIMITS, rejected("InvalidValue")),
    ("stackLevel above ProfileStackLevel", 1, profile(level=4), None, LIMITS, rejected("InvalidStackLevel")),
    ("negative stackLevel", 1, profile(level=-1), None, LIMITS, rejected("InvalidStackLevel")),
    ("validTo before validFrom", 1, profile(valid_from=T0, valid_to=T0), None, LIMITS, rejected("InvalidProfile")),
    ("Recurring without recurrencyKind", 1, profile(kind=K.Recurring, recurrency_kind=None), None, LIMITS,
     rejected("InvalidProfile")),
    ("Relative ChargingStationMaxProfile", 0, profile(purpose=P.ChargingStationMaxProfile, kind=K.Relative),
     None, LIMITS, rejected("InvalidProfile")),
    ("two schedules", 1, msgspec.structs.replace(profile(), charging_schedule=profile().charging_schedule * 2),
     None, LIMITS, rejected("InvalidSchedule")),
    ("rate unit not supported (K01.FR.26, TC_K_12)", 1, profile(unit=W), None,
     StoreLimits(evse_count=2, stack_level_max=3, periods_max=4, entries_max=5, rate_units=frozenset({A})),
     rejected("UnsupportedRateUnit")),
    ("Absolute without startSchedule (K01.FR.40)", 1, profile(start=None), None, LIMITS,
     rejected("InvalidSchedule")),
    ("Relative with startSchedule (K01.FR.41)", 1, sched(profile(kind=K.Relative), start_schedule=T0), None,
     LIMITS, rejected("InvalidSchedule")),
    ("negative duration", 1, profile(duration=-1), None, LIMITS, rejected("InvalidSchedule")),
    ("negative minChargingRate", 1, sched(profile(), min_charging_rate=-1.0), None, LIMITS,
     rejected("InvalidSchedule")),
    ("more periods than PeriodsPerSchedule", 1, profile(periods=[period(i * 60) for i in range(5)]), None, LIMITS,
     rejected("TooManyElements")),
    ("first startPeriod not 0 (K01.FR.31)", 1, profile(periods=[period(10)]), None, LIMITS,
     rejected("InvalidSchedule")),
    ("startPeriods not ascending (K01.FR.35)", 1, profile(periods=[period(0), period(60), period(60)]), None,
     LIMITS, rejected("InvalidSchedule")),
    ("negative limit", 1, profile(periods=[period(0, -1.0)]), None, LIMITS, rejected("InvalidSchedule")),
    ("numberPhases 4 (K01.FR.45)", 1, profile(periods=[period(number_phases=4)]), None, LIMITS,
     rejected("InvalidSchedule")),
    ("numberPhases 3 on a 1-phase supply (K01.FR.45)", 1, profile(periods=[period(number_phases=3)]), None,
     StoreLimits(evse_count=2, stack_level_max=3, periods_max=4, entries_max=5, supply_phases=1),
     rejected("InvalidSchedule")),
    ("numberPhases on DC (K01.FR.44)", 1, profile(periods=[period(number_phases=1)]), None,
     StoreLimits(evse_count=2, stack_level_max=3, periods_max=4, entries_max=5, supply_phases=0),
     rejected("InvalidSchedule")),
    ("phaseToUse with numberPhases 3 (K01.FR.19)", 1, profile(periods=[period(number_phases=3, phase_to_use=1)]),
     None, LIMITS, rejected("InvalidSchedule")),
    ("phaseToUse without phase switching (K01.FR.20)", 1,
     profile(periods=[period(number_phases=1, phase_to_use=1)]), None, LIMITS, rejected("InvalidSchedule")),
    ("phaseToUse with phase switching", 1, profile(periods=[period(number_phases=1, phase_to_use=2)]), None,
     StoreLimits(evse_count=2, stack_level_max=3, periods_max=4, entries_max=5, phase_switching=True), ACCEPTED),
    ("phaseToUse 4", 1, profile(periods=[period(number_phases=1, phase_to_use=4)]), None,
     StoreLimits(evse_count=2, stack_level_max=3, periods_max=4, entries_max=5, phase_switching=True),
     rejected("InvalidSchedule")),
]


@pytest.mark.parametrize("evse, p, running, limits, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_install_checks(evse, p, running, limits, expected):
    store = ProfileStore()
    assert install(store, evse, p, running, limits) == expected
    assert len(store) == (1 if expected == ACCEPTED else 0)
    assert (store.take_change() is None) == (expected != ACCEPTED)


def test_rejection_names_the_field():
    _, info = ProfileStore().install(1, profile(periods=[period(0), period(60, -2.0)]),
                                     transaction_id_of_evse=None, limits=LIMITS)
    assert info.additional_info == "chargingSchedule[0].chargingSchedulePeriod[1].limit: negative"


def test_same_id_replaced_anywhere_k01_fr_05():
    store = ProfileStore()
    assert install(store, 1, profile(7, periods=[period(0, 6.0)])) == ACCEPTED
    assert install(store, 2, profile(7, periods=[period(0, 10.0)])) == ACCEPTED
    assert len(store) == 1
    item = store.get(7)
    assert item.evse_id == 2 and item.profile.charging_schedule[0].charging_schedule_period[0].limit == 10.0


def test_same_stack_level_and_purpose_other_id_rejected_when_validity_overlaps():
    store = ProfileStore()
    assert install(store, 1, profile(1, valid_from=T0, valid_to=T0 + timedelta(hours=1))) == ACCEPTED
    assert install(store, 1, profile(2, valid_from=T0 + timedelta(minutes=59))) == rejected("DuplicateProfile")
    # validity periods that do not overlap, another EVSE, another stackLevel, another purpose: fine
    assert install(store, 1, profile(3, valid_from=T0 + timedelta(hours=1))) == ACCEPTED
    assert install(store, 2, profile(4)) == ACCEPTED
    assert install(store, 1, profile(5, level=1)) == ACCEPTED
    assert install(store, 0, profile(6, purpose=P.ChargingStationMaxProfile)) == ACCEPTED
    assert sorted(p.profile.id for p in store.installed()) == [1, 3, 4, 5, 6]


def test_tx_profiles_of_the_same_transaction_and_stack_level_are_duplicates():
    store = ProfileStore()
    tx = dict(purpose=P.TxProfile, kind=K.Relative, tx="tx-1")
    assert install(store, 1, profile(1, **tx), "tx-1") == ACCEPTED
    assert install(store, 1, profile(2, **tx), "tx-1") == rejected("DuplicateProfile")
    assert install(store, 1, profile(2, level=1, **tx), "tx-1") == ACCEPTED


def test_tx_default_on_station_and_evse_with_one_stack_level_k01_fr_52_53():
    store = ProfileStore()
    assert install(store, 1, profile(1)) == ACCEPTED
    assert install(store, 0, profile(2)) == rejected("DuplicateProfile")
    assert install(store, 0, profile(2, level=1)) == ACCEPTED
    assert install(store, 2, profile(3, level=1)) == rejected("DuplicateProfile")


def test_entries_limit_counts_a_replacement_as_room():
    limits = StoreLimits(evse_count=2, stack_level_max=3, periods_max=4, entries_max=2)
    store = ProfileStore()
    assert install(store, 1, profile(1), limits=limits) == ACCEPTED
    assert install(store, 1, profile(2, level=1), limits=limits) == ACCEPTED
    assert install(store, 1, profile(3, level=2), limits=limits) == rejected("OutOfStorage")
    assert install(store, 1, profile(2, level=2), limits=limits) == ACCEPTED


def test_external_constraints_keep_their_id_and_survive_the_csms_clear():
    store = ProfileStore()
    ext = profile(9, purpose=P.ChargingStationExternalConstraints)
    assert install(store, 0, ext, source=m.ChargingLimitSource.EMS) == ACCEPTED
    assert install(store, 1, profile(9)) == rejected("DuplicateProfile")
    assert store.clear(m.ClearChargingProfileRequest(charging_profile_id=9)) == m.ClearChargingProfileStatus.Unknown
    assert store.clear(m.ClearChargingProfileRequest()) == m.ClearChargingProfileStatus.Unknown
    assert store.get(9) is not None


def filled() -> ProfileStore:
    store = ProfileStore()
    assert install(store, 0, profile(1, purpose=P.ChargingStationMaxProfile)) == ACCEPTED
    assert install(store, 1, profile(2, level=1)) == ACCEPTED
    assert install(store, 2, profile(3, level=1)) == ACCEPTED
    assert install(store, 1, profile(4, level=2, purpose=P.TxProfile, kind=K.Relative, tx="tx-1"), "tx-1") \
        == ACCEPTED
    return store


def ids(store: ProfileStore) -> list[int]:
    return sorted(i.profile.id for i in store.installed())


Clear = m.ClearChargingProfileRequest
Crit = m.ClearChargingProfile
CLEARS = [
    ("by id (K10.FR.03, TC_K_05)", Clear(charging_profile_id=2), "Accepted", [1, 3, 4]),
    ("by id, criteria not used", Clear(charging_profile_id=2, charging_profile_criteria=Crit(evse_id=2)),
     "Accepted", [1, 3, 4]),
    ("unknown id (K10.FR.01, TC_K_08)", Clear(charging_profile_id=99), "Unknown", [1, 2, 3, 4]),
    ("purpose + stackLevel, one EVSE each (K10.FR.04, TC_K_24)",
     Clear(charging_profile_criteria=Crit(charging_profile_purpose=P.TxDefaultProfile, stack_level=1)),
     "Accepted", [1, 4]),
    ("purpose + stackLevel + EVSE (TC_K_06)",
     Clear(charging_profile_criteria=Crit(evse_id=2, charging_profile_purpose=P.TxDefaultProfile, stack_level=1)),
     "Accepted", [1, 2, 4]),
    ("unknown purpose/stackLevel (K10.FR.01, TC_K_07)",
     Clear(charging_profile_criteria=Crit(charging_profile_purpose=P.ChargingStationMaxProfile, stack_level=1)),
     "Unknown", [1, 2, 3, 4]),
    ("no criteria: all", Clear(), "Accepted", []),
]


@pytest.mark.parametrize("request_, status, left", [c[1:] for c in CLEARS], ids=[c[0] for c in CLEARS])
def test_clear(request_, status, left):
    store = filled()
    store.take_change()
    assert store.clear(request_) == m.ClearChargingProfileStatus(status)
    assert ids(store) == left
    change = store.take_change()
    assert (change is None) == (status == "Unknown")


Get = m.GetChargingProfilesRequest
Crt = m.ChargingProfileCriterion
REPORTS = [
    ("EVSE 0: the station's only (K09.FR.05, TC_K_29)", Get(request_id=1, evse_id=0, charging_profile=Crt()),
     [(0, [1])]),
    ("EVSE 1 (K09.FR.04, TC_K_30)", Get(request_id=1, evse_id=1, charging_profile=Crt()), [(1, [2, 4])]),
    ("no EVSE: all (K09.FR.06, TC_K_31)", Get(request_id=1, charging_profile=Crt()),
     [(0, [1]), (1, [2, 4]), (2, [3])]),
    ("by id (K09.FR.01, TC_K_32)", Get(request_id=1, charging_profile=Crt(charging_profile_id=[1, 3])),
     [(0, [1]), (2, [3])]),
    ("EVSE + stackLevel (TC_K_33)", Get(request_id=1, evse_id=1, charging_profile=Crt(stack_level=2)),
     [(1, [4])]),
    ("EVSE + source CSO (TC_K_34)",
     Get(request_id=1, evse_id=1, charging_profile=Crt(charging_limit_source=[m.ChargingLimitSource.CSO])),
     [(1, [2, 4])]),
    ("EVSE + source EMS: none (TC_K_34)",
     Get(request_id=1, evse_id=1, charging_profile=Crt(charging_limit_source=[m.ChargingLimitSource.EMS])), []),
    ("EVSE + purpose (TC_K_35)",
     Get(request_id=1, evse_id=1, charging_profile=Crt(charging_profile_purpose=P.TxDefaultProfile)), [(1, [2])]),
    ("EVSE + purpose + stackLevel (TC_K_36)",
     Get(request_id=1, evse_id=2, charging_profile=Crt(charging_profile_purpose=P.TxDefaultProfile,
                                                        stack_level=1)), [(2, [3])]),
]


@pytest.mark.parametrize("request_, expected", [c[1:] for c in REPORTS], ids=[c[0] for c in REPORTS])
def test_report(request_, expected):
    groups = filled().report(request_)
    assert [(g.evse_id, [p.id for p in g.profiles]) for g in groups] == expected
    assert all(g.source == m.ChargingLimitSource.CSO for g in groups)


def test_report_groups_by_source_and_pages_with_tbc():
    store = filled()
    assert install(store, 1, profile(5, purpose=P.ChargingStationExternalConstraints),
                   source=m.ChargingLimitSource.EMS) == ACCEPTED
    groups = store.report(Get(request_id=7, charging_profile=Crt()))
    assert [(g.evse_id, g.source, [p.id for p in g.profiles]) for g in groups] == [
        (0, "CSO", [1]), (1, "CSO", [2, 4]), (1, "EMS", [5]), (2, "CSO", [3])]
    pages = report_pages(7, groups, per_message=1)
    assert [(r.evse_id, r.charging_limit_source, [p.id for p in r.charging_profile], r.tbc) for r in pages] == [
        (0, "CSO", [1], True), (1, "CSO", [2], True), (1, "CSO", [4], True), (1, "EMS", [5], True),
        (2, "CSO", [3], False)]
    assert all(r.request_id == 7 for r in pages)
    assert [len(r.charging_profile) for r in report_pages(7, groups, per_message=10)] == [1, 2, 1, 1]
    assert report_pages(7, [], per_message=3) == []
    # the pages are schema-valid messages
    for r in pages:
        msgspec.json.decode(msgspec.json.encode(r), type=m.ReportChargingProfilesRequest)


def test_transaction_ended_removes_its_tx_profiles_only():
    store = filled()
    store.take_change()
    assert store.transaction_ended(1, "tx-2") == []
    assert store.transaction_ended(1, "tx-1") == [4]
    assert ids(store) == [1, 2, 3]
    assert store.take_change().deletes == ("4",)


def test_records_restore_the_same_store_k01_fr_27():
    store = filled()
    assert install(store, 1, profile(0, level=3, valid_from=T0, valid_to=T0 + timedelta(days=1))) == ACCEPTED
    records = store.records()
    assert sorted(records) == ["0", "1", "2", "3", "4"]
    again = ProfileStore.restore(records)
    assert [(i.evse_id, i.source, i.profile) for i in again.installed()] == \
        [(i.evse_id, i.source, i.profile) for i in sorted(store.installed(), key=lambda i: i.profile.id)]
    assert again.records() == records
    assert again.take_change() is None
    # the report of a restored store is the one before the reboot (TC_K_13)
    get = Get(request_id=1, charging_profile=Crt())
    assert again.report(get) == store.report(get)


def test_restore_leaves_out_unreadable_records():
    records = filled().records()
    records["2"] = "{not json"
    records["3"] = records["1"]                     # key and id disagree
    assert ids(ProfileStore.restore(records)) == [1, 4]


def test_take_change_is_the_net_change_of_the_table():
    db: dict[str, str] = {}
    store = ProfileStore()

    def flush():
        c = store.take_change()
        assert c.table == TABLE
        for k in c.deletes:
            db.pop(k)
        db.update(c.upserts)

    install(store, 1, profile(1))
    install(store, 1, profile(2, level=1))
    flush()
    install(store, 1, profile(1, level=2))
    store.clear(Clear(charging_profile_id=2))
    flush()
    assert db == store.records()
    assert sorted(db) == ["1"]
