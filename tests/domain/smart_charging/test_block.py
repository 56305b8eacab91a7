"""The smart charging block through the Station (domain/smart_charging/block.py): SetChargingProfile
(K01), ClearChargingProfile (K10), GetChargingProfiles with its ReportChargingProfiles pages
(K09), GetCompositeSchedule (K08), the durable profiles after a reboot (K01.FR.27, TC_K_13),
TxProfiles ending with their transaction, RequestStartTransaction's chargingProfile (K05,
TC_K_37), and the limit reaching the EVSE's energy offer at a transaction's start, on every
change and at every period boundary.

Pure: the CSMS is played by hand (tests/domain/test_operations.Rig), time injected as `now`
(the station's clock is T0 at monotonic 0). Every answer the station sends is decoded with the
action's msgspec type (the schema's constraints); its CALLs are checked by the outbox.
"""
from __future__ import annotations

import json
from datetime import timedelta

import msgspec
import pytest

from domain import messages as m
from domain.clock import StationClock
from domain.device_model import DeviceModel, VariableRef
from domain.effects import EnergyOffer, Send, StoreRecords
from domain.hardware_events import CablePlugged, EnergyRequested, ExternalLimitChanged, TokenPresented
from domain.smart_charging.block import PROFILES_PER_REPORT
from domain.smart_charging.profiles import TABLE
from domain.station import Station, StationInfo, StoredState
from tests.domain.defs import load_definitions
from tests.domain.test_operations import CARD, Rig, booted, iso
from tests.domain.test_station import T0


def profile(pid: int = 1, *, purpose: str = "TxDefaultProfile", level: int = 0, kind: str = "Absolute",
            periods=((0, 10.0),), unit: str = "A", start: float | None = 0.0, tx: str | None = None) -> dict:
    """A chargingProfile as the CSMS sends it; `start`: startSchedule as monotonic seconds."""
    schedule = {"id": pid, "chargingRateUnit": unit,
                "chargingSchedulePeriod": [{"startPeriod": s, "limit": lim} for s, lim in periods]}
    if kind != "Relative" and start is not None:
        schedule["startSchedule"] = iso(T0 + timedelta(seconds=start))
    p = {"id": pid, "stackLevel": level, "chargingProfilePurpose": purpose, "chargingProfileKind": kind,
         "chargingSchedule": [schedule]}
    if tx is not None:
        p["transactionId"] = tx
    return p


def answer(h: Rig, frames: list, msg_id: str, response_type: type) -> msgspec.Struct:
    """The station's CALLRESULT to `msg_id`, decoded (and so checked) as `response_type`."""
    return msgspec.json.decode(json.dumps(h.reply_to(frames, msg_id)), type=response_type)


def set_profile(h: Rig, now: float, evse: int, p: dict, msg_id: str = "scp") -> m.SetChargingProfileResponse:
    frames = h.call("SetChargingProfile", {"evseId": evse, "chargingProfile": p}, now, msg_id=msg_id)
    return answer(h, frames, msg_id, m.SetChargingProfileResponse)


def offers(h: Rig, evse: int = 1) -> list[EnergyOffer]:
    return [e for e in h.effects if isinstance(e, EnergyOffer) and e.evse == evse]


def charging(h: Rig, now: float, evse: int = 1) -> str:
    """EV plugged, card accepted, energy asked for: the transaction runs, the power path closed."""
    tx = h.start_tx(evse, now)
    h.settle(h.hw(EnergyRequested(evse, 7000.0), now), now)
    return tx


def report(h: Rig, now: float, request: dict, msg_id: str = "gcp") -> tuple[m.GetChargingProfilesResponse, list]:
    """GetChargingProfiles: the answer and the ReportChargingProfilesRequests that follow it
    (each answered by the CSMS), decoded."""
    frames = h.call("GetChargingProfiles", {"requestId": 42, **request}, now, msg_id=msg_id)
    response = answer(h, frames, msg_id, m.GetChargingProfilesResponse)
    pages = [c for c in h.settle(frames, now) if c[2] == "ReportChargingProfiles"]
    return response, [msgspec.json.decode(json.dumps(c[3]), type=m.ReportChargingProfilesRequest) for c in pages]


def composite(h: Rig, now: float, evse: int, duration: int, unit: str | None = None,
              msg_id: str = "gcs") -> m.GetCompositeScheduleResponse:
    req = {"evseId": evse, "duration": duration, **({"chargingRateUnit": unit} if unit else {})}
    return answer(h, h.call("GetCompositeSchedule", req, now, msg_id=msg_id), msg_id, m.GetCompositeScheduleResponse)


def entries(h: Rig) -> int:
    return h.station.dm.get_int("SmartChargingCtrlr", "Entries", "ChargingProfiles")


# =========================================================================== K01 SetChargingProfile

def test_accepted_profile_is_stored_before_the_answer_goes_out():
    """K01.FR.27 (TC_K_13): the profile's record is written before the CSMS hears Accepted."""
    h = booted()
    effects = h.station.frame_received(json.dumps(
        [2, "scp", "SetChargingProfile", {"evseId": 1, "chargingProfile": profile()}]), 1.0)
    h.run(effects)
    [store] = [i for i, e in enumerate(effects) if isinstance(e, StoreRecords) and e.table == TABLE]
    [sent] = [i for i, e in enumerate(effects) if isinstance(e, Send) and '"scp"' in e.frame]
    assert store < sent and list(effects[store].upserts) == ["1"]
    assert answer(h, h.run([effects[sent]]), "scp", m.SetChargingProfileResponse).status == "Accepted"
    assert entries(h) == 1


def test_rejected_profiles_answer_their_reason_and_change_nothing():
    h = booted()
    cases = [
        (1, profile(purpose="TxProfile", tx="tx-9"), "TxNotFound"),         # K01.FR.09 (TC_K_02)
        (3, profile(), "UnknownEvse"),                                      # K01.FR.28 (TC_K_14)
        (1, profile(level=9), "InvalidStackLevel"),                         # ProfileStackLevel 8
        (1, profile(periods=[(0, 6.0)] * 2), "InvalidSchedule"),            # K01.FR.35
        (1, profile(periods=[(i * 60, 6.0) for i in range(25)]), "TooManyElements"),   # PeriodsPerSchedule 24
        (1, profile(purpose="ChargingStationMaxProfile"), "InvalidValue"),  # K01.FR.38: EVSE 0 only
    ]
    for evse, p, reason in cases:
        h.effects.clear()
        r = set_profile(h, 1.0, evse, p)
        assert (r.status, r.status_info.reason_code) == ("Rejected", reason), (evse, p)
        assert r.status_info.additional_info
        assert not [e for e in h.effects if isinstance(e, (StoreRecords, EnergyOffer))]
    assert entries(h) == 0


def test_txprofile_of_the_running_transaction_limits_at_once():
    """TC_K_60: a TxProfile during the transaction: a new offer with the limit right away."""
    h = booted()
    tx = charging(h, 1.0)
    assert offers(h)[-1] == EnergyOffer(1, True, None)
    r = set_profile(h, 2.0, 1, profile(7, purpose="TxProfile", kind="Relative", periods=[(0, 8.0)], tx=tx))
    assert r.status == "Accepted"
    assert offers(h)[-1] == EnergyOffer(1, True, 8.0)
    assert h.station.evses[1].limit_a == 8.0


# =========================================================================== the limit applied

def test_10a_then_6a_reaches_the_offer_at_the_start_and_at_the_period_boundary():
    """A TxDefaultProfile of 10 A, 6 A from 60 s: the offer that closes the power path carries
    10 A; the station asks to be woken at the boundary and offers 6 A there."""
    h = booted()
    assert set_profile(h, 1.0, 1, profile(periods=[(0, 10.0), (60, 6.0)])).status == "Accepted"
    assert not offers(h)                                      # the path is open: nothing to offer yet
    charging(h, 5.0)
    assert offers(h) == [EnergyOffer(1, True, 10.0)]
    block = h.station.smart_charging
    assert block.next_deadline() == 60.0
    h.tick(59.0)
    assert offers(h)[-1] == EnergyOffer(1, True, 10.0) and len(offers(h)) == 1
    h.tick(60.0)
    assert offers(h)[-1] == EnergyOffer(1, True, 6.0)
    assert block.next_deadline() == 60.0 + 86_400             # the schedule's end: computed again then


def test_a_limit_in_w_is_spread_over_the_supply_phases():
    """6900 W on a 3-phase EVSE is 10 A per phase (230 V); 6900 W counted on one phase is the
    same power, so 10 A per phase too (the controller cannot hold the EV to one phase)."""
    h = booted()
    p = profile(unit="W", periods=[(0, 6900.0)])
    assert set_profile(h, 1.0, 1, p).status == "Accepted"
    charging(h, 2.0)
    assert offers(h) == [EnergyOffer(1, True, 10.0)]
    p["chargingSchedule"][0]["chargingSchedulePeriod"][0]["numberPhases"] = 1
    assert set_profile(h, 3.0, 1, p).status == "Accepted"
    assert offers(h) == [EnergyOffer(1, True, 10.0)]           # unchanged: no new offer


def test_a_limit_at_the_evses_maximum_is_no_limit():
    """EVSE.Power maxLimit 22000 W (31.8 A per phase): 40 A does not limit anything."""
    h = booted()
    assert set_profile(h, 1.0, 1, profile(periods=[(0, 40.0)])).status == "Accepted"
    charging(h, 2.0)
    assert offers(h) == [EnergyOffer(1, True, None)]


def test_clear_takes_the_limit_away():
    """K10: cleared by id: a new offer at the EVSE's maximum (EVSE.Power 22000 W: 31.8 A per
    phase, so the controller goes back up), the record deleted, Entries 0."""
    h = booted()
    set_profile(h, 1.0, 1, profile(3, periods=[(0, 10.0)]))
    charging(h, 2.0)
    h.effects.clear()
    frames = h.call("ClearChargingProfile", {"chargingProfileId": 3}, 3.0, msg_id="ccp")
    assert answer(h, frames, "ccp", m.ClearChargingProfileResponse).status == "Accepted"
    [offer] = offers(h)
    assert offer.closed and offer.limit_a == pytest.approx(22000 / 3 / 230, abs=0.1)
    assert StoreRecords(TABLE, deletes=("3",)) in h.effects
    assert entries(h) == 0 and h.station.smart_charging.next_deadline() is None
    frames = h.call("ClearChargingProfile", {"chargingProfileId": 3}, 4.0, msg_id="ccp2")
    assert answer(h, frames, "ccp2", m.ClearChargingProfileResponse).status == "Unknown"   # K10.FR.01


def test_txprofile_goes_with_its_transaction():
    """TxProfiles end with their transaction: removed, stored, no longer reported, no limit for
    the next transaction."""
    h = booted()
    tx = charging(h, 1.0)
    set_profile(h, 2.0, 1, profile(5, purpose="TxProfile", kind="Relative", periods=[(0, 8.0)], tx=tx))
    assert entries(h) == 1
    h.effects.clear()
    h.settle(h.stop_tx_frames(1, 3.0), 3.0)
    assert h.tx_id(1) is None
    assert StoreRecords(TABLE, deletes=("5",)) in h.effects
    assert entries(h) == 0
    assert report(h, 4.0, {"chargingProfile": {}})[0].status == "NoProfiles"
    assert h.station.evses[1].limit_a is None


# =========================================================================== K09 GetChargingProfiles

def test_get_charging_profiles_answers_then_sends_the_pages():
    """K09: grouped by EVSE (one evseId per ReportChargingProfilesRequest), at most
    PROFILES_PER_REPORT profiles each, tbc on all but the last; evseId filters (K09.FR.04/05)."""
    h = booted((1, 1))
    set_profile(h, 1.0, 0, profile(100, periods=[(0, 16.0)]))
    for i in range(PROFILES_PER_REPORT + 1):      # a stackLevel apart from EVSE 0's (K01.FR.52), day by day
        p = profile(i + 1, level=1 + i % 8, periods=[(0, 12.0)])
        p["validFrom"] = iso(T0 + timedelta(days=i))
        p["validTo"] = iso(T0 + timedelta(days=i + 1))
        assert set_profile(h, 1.0, 2, p, msg_id=f"s{i}").status == "Accepted"
    response, pages = report(h, 2.0, {"chargingProfile": {}})
    assert response.status == "Accepted"
    assert [(p.evse_id, len(p.charging_profile), bool(p.tbc)) for p in pages] == [
        (0, 1, True), (2, PROFILES_PER_REPORT, True), (2, 1, False)]
    assert {p.request_id for p in pages} == {42} and {p.charging_limit_source for p in pages} == {"CSO"}
    _, only_station = report(h, 3.0, {"evseId": 0, "chargingProfile": {}}, msg_id="g0")
    assert [p.charging_profile[0].id for p in only_station] == [100]
    response, pages = report(h, 3.0, {"evseId": 1, "chargingProfile": {}}, msg_id="g1")
    assert response.status == "NoProfiles" and pages == []


# =========================================================================== K08 GetCompositeSchedule

def test_get_composite_schedule_in_a_and_w():
    h = booted()
    set_profile(h, 0.0, 1, profile(periods=[(0, 10.0), (60, 6.0)]))
    r = composite(h, 0.0, 1, 120)
    assert r.status == "Accepted"
    s = r.schedule
    assert (s.evse_id, s.duration, s.charging_rate_unit, s.schedule_start) == (1, 120, "A", T0)
    assert [(p.start_period, p.limit) for p in s.charging_schedule_period] == [(0, 10.0), (60, 6.0)]
    w = composite(h, 30.0, 1, 120, "W", msg_id="gcs-w").schedule
    assert [(p.start_period, p.limit) for p in w.charging_schedule_period] == [(0, 6900.0), (30, 4140.0)]
    # the grid connection: what its one EVSE may draw (TC_K_22), below the station's maximum
    whole = composite(h, 0.0, 0, 120, msg_id="gcs-0").schedule
    assert [(p.start_period, p.limit) for p in whole.charging_schedule_period] == [(0, 10.0), (60, 6.0)]
    clear = h.call("ClearChargingProfile", {"chargingProfileId": 1}, 0.0, msg_id="ccp")
    assert answer(h, clear, "ccp", m.ClearChargingProfileResponse).status == "Accepted"
    whole = composite(h, 0.0, 0, 60, msg_id="gcs-0b").schedule            # no profile: the EVSE's maximum
    assert [(p.start_period, p.limit) for p in whole.charging_schedule_period] == [(0, 31.8)]


def test_get_composite_schedule_of_an_unknown_evse_is_rejected():
    h = booted()
    r = composite(h, 0.0, 2, 60)
    assert (r.status, r.status_info.reason_code, r.schedule) == ("Rejected", "UnknownEvse", None)


def test_get_composite_schedule_longer_than_a_week_is_rejected():
    """The duration is bounded (COMPOSITE_MAX_S, a week): longer is Rejected with ValueTooHigh
    naming the field; a week of a Daily profile is answered (one period per day and change)."""
    h = booted()
    set_profile(h, 0.0, 1, profile(kind="Recurring", periods=[(0, 10.0), (3600, 6.0)]) | {"recurrencyKind": "Daily"})
    r = composite(h, 0.0, 1, 604_801)
    assert (r.status, r.status_info.reason_code, r.schedule) == ("Rejected", "ValueTooHigh", None)
    assert r.status_info.additional_info.startswith("duration:")
    week = composite(h, 0.0, 1, 604_800, msg_id="gcs-week").schedule
    assert len(week.charging_schedule_period) == 14


# =========================================================================== reboot

def test_profiles_survive_a_reboot():
    """K01.FR.27 (TC_K_13): a new Station from the stored records has the profiles and applies them."""
    h = booted()
    set_profile(h, 1.0, 1, profile(4, periods=[(0, 9.0)]))
    set_profile(h, 1.0, 0, profile(5, purpose="ChargingStationMaxProfile", periods=[(0, 20.0)]), msg_id="s5")
    records: dict[str, str] = {}
    for e in h.effects:
        if isinstance(e, StoreRecords) and e.table == TABLE:
            records.update(e.upserts)
            for k in e.deletes:
                records.pop(k, None)
    again = Rig()                                             # the same installation, started again
    again.station = Station(
        info=StationInfo("ACME", "Model-X", "SN-1", "1.0"), evse_connectors=[1],
        device_model=DeviceModel(load_definitions([1], station_id="CS-1", security_profile=1), {}),
        clock=StationClock(0.0, T0), new_message_id=again._new_id, new_transaction_id=again._new_tx,
        stored=StoredState(records={TABLE: records}))
    again.run(again.station.start(0.0))
    again.settle(again.boot_accepted(now=0.0), 0.0)
    assert entries(again) == 2
    _, pages = report(again, 1.0, {"chargingProfile": {}})
    assert sorted(p.id for page in pages for p in page.charging_profile) == [4, 5]
    charging(again, 2.0)
    assert offers(again) == [EnergyOffer(1, True, 9.0)]


# =========================================================================== K05 RequestStartTransaction

def remote_start(h: Rig, now: float, charging_profile: dict, msg_id: str = "rst") -> m.RequestStartTransactionResponse:
    frames = h.call("RequestStartTransaction", {"idToken": {"idToken": "REMOTE-1", "type": "Central"},
                                                "remoteStartId": 7, "evseId": 1,
                                                "chargingProfile": charging_profile}, now, msg_id=msg_id)
    response = answer(h, frames, msg_id, m.RequestStartTransactionResponse)
    h.settle(frames, now)
    return response


def test_remote_start_profile_limits_the_transaction_it_starts():
    """TC_K_37 (K05, F01.FR.10): from EVConnectedPreSession, a Relative TxProfile of 6 A without
    transactionId: the first offer carries 6 A, and GetChargingProfiles reports it with the
    transaction's id."""
    h = booted()
    h.settle(h.hw(CablePlugged(1, 1), 1.0), 1.0)
    h.settle(h.hw(EnergyRequested(1, 7000.0), 1.0), 1.0)
    p = profile(11, purpose="TxProfile", kind="Relative", periods=[(0, 6.0)])
    assert remote_start(h, 2.0, p).status == "Accepted"
    tx = h.tx_id(1)
    assert tx is not None
    assert offers(h) == [EnergyOffer(1, True, 6.0)]
    _, [page] = report(h, 3.0, {"chargingProfile": {"chargingProfileId": [11]}})
    [reported] = page.charging_profile
    assert (reported.id, reported.transaction_id, page.evse_id) == (11, tx, 1)


def test_remote_start_profile_waits_for_the_ev():
    """Not plugged yet: the profile waits on the EVSE and is installed when the transaction starts."""
    h = booted()
    p = profile(12, purpose="TxProfile", kind="Relative", periods=[(0, 7.0)])
    assert remote_start(h, 1.0, p).status == "Accepted"
    assert entries(h) == 0 and h.tx_id(1) is None
    h.settle(h.hw(CablePlugged(1, 1), 2.0), 2.0)
    h.settle(h.hw(EnergyRequested(1, 7000.0), 2.0), 2.0)
    assert h.tx_id(1) is not None and entries(h) == 1
    assert offers(h) == [EnergyOffer(1, True, 7.0)]


def test_remote_start_profile_dropped_when_the_ev_never_comes():
    """EVConnectionTimeOut (120 s) ends the remote start: its profile does not limit the next session."""
    h = booted()
    assert remote_start(h, 1.0, profile(13, purpose="TxProfile", kind="Relative", periods=[(0, 7.0)])).status \
        == "Accepted"
    h.settle(h.tick(200.0), 200.0)
    assert h.station.snapshot()["evses"][1]["authorized"] is None
    charging(h, 201.0)
    assert entries(h) == 0 and offers(h) == [EnergyOffer(1, True, None)]


def test_remote_start_profile_must_be_a_txprofile_without_transaction():
    """F01.FR.09 / F01.FR.11: Rejected with the reason; nothing starts."""
    h = booted()
    h.settle(h.hw(CablePlugged(1, 1), 1.0), 1.0)
    for p, info in ((profile(14), "chargingProfilePurpose"),
                    (profile(15, purpose="TxProfile", kind="Relative", tx="tx-0"), "transactionId"),
                    (profile(16, purpose="TxProfile", kind="Relative", level=9), "stackLevel")):
        r = remote_start(h, 2.0, p, msg_id=f"r{p['id']}")
        assert r.status == "Rejected" and info in r.status_info.additional_info, r
    assert h.tx_id(1) is None and h.station.snapshot()["evses"][1]["authorized"] is None
    assert entries(h) == 0 and not offers(h)


def test_card_session_gets_no_profile_of_an_earlier_remote_start():
    """A remote start refused by the authorization keeps no profile behind."""
    h = booted()
    h.station.dm.write(VariableRef("AuthCtrlr", "AuthorizeRemoteStart"), "true")
    frames = h.call("RequestStartTransaction", {"idToken": {"idToken": "REMOTE-1", "type": "Central"},
                                                "remoteStartId": 7, "evseId": 1,
                                                "chargingProfile": profile(17, purpose="TxProfile", kind="Relative",
                                                                           periods=[(0, 7.0)])}, 1.0, msg_id="r")
    assert h.reply_to(frames, "r")["status"] == "Accepted"
    [auth] = [f for f in frames if f[0] == 2 and f[2] == "Authorize"]
    h.settle(h.answer(auth, {"idTokenInfo": {"status": "Invalid"}}, 1.0), 1.0)
    assert h.station.evses[1].charging_profile is None
    h.settle(h.hw(CablePlugged(1, 1), 2.0), 2.0)
    h.settle(h.hw(TokenPresented(CARD[1], evse=1), 2.0), 2.0)
    h.settle(h.hw(EnergyRequested(1, 7000.0), 2.0), 2.0)
    assert h.tx_id(1) is not None and entries(h) == 0
    assert offers(h) == [EnergyOffer(1, True, None)]


def test_leniencies_recurrency_kind_of_an_absolute_profile_and_a_second_decimal():
    """README "Leniencies": recurrencyKind on an Absolute profile is ignored; a limit of 10.05 A
    is taken as sent and applied rounded down (10.0 A)."""
    h = booted()
    p = profile(periods=[(0, 10.05), (3600, 6.0)])
    p["recurrencyKind"] = "Daily"
    assert set_profile(h, 1.0, 1, p).status == "Accepted"
    _, [page] = report(h, 2.0, {"chargingProfile": {}})
    assert page.charging_profile[0].charging_schedule[0].charging_schedule_period[0].limit == 10.05
    charging(h, 3.0)
    assert offers(h) == [EnergyOffer(1, True, 10.0)]
    [period] = composite(h, 86_400 + 60.0, 1, 60).schedule.charging_schedule_period
    assert period.limit == 6.0                      # not repeated daily: the last period lasts for ever


# =========================================================================== K11-K13 external limits

def set_variable(h: Rig, now: float, variable: str, value: str) -> None:
    frames = h.call("SetVariables", {"setVariableData": [{
        "component": {"name": "SmartChargingCtrlr"}, "variable": {"name": variable}, "attributeValue": value}]},
        now, msg_id=f"sv-{variable}")
    assert h.reply_to(frames, f"sv-{variable}")["setVariableResult"][0]["attributeStatus"] == "Accepted"
    h.settle(frames, now)


def external(h: Rig, now: float, evse: int = 1, **limit) -> list[list]:
    """An external limit (ExternalLimitChanged) fed in; the CALLs the station sends for it."""
    return h.settle(h.hw(ExternalLimitChanged(evse, **limit), now), now)


def listening() -> Rig:
    h = booted()
    set_variable(h, 0.5, "ExternalControlSignalsEnabled", "true")
    return h


def test_external_limit_set_limits_the_offer_at_once_and_is_notified():
    """K11: an external limit during a transaction (no profile installed): a new offer with it
    at once, NotifyChargingLimitRequest with its source and EVSE, no schedule (by default)."""
    h = listening()
    charging(h, 1.0)
    assert offers(h)[-1] == EnergyOffer(1, True, None)
    calls = external(h, 2.0, amps=16.0, source="EMS")
    assert offers(h)[-1] == EnergyOffer(1, True, 16.0)
    [notify] = [c for c in calls if c[2] == "NotifyChargingLimit"]
    assert notify[3] == {"chargingLimit": {"chargingLimitSource": "EMS"}, "evseId": 1}
    r = composite(h, 3.0, 1, 60)
    assert [(p.start_period, p.limit) for p in r.schedule.charging_schedule_period] == [(0, 16.0)]


def test_external_limit_before_the_transaction_bounds_the_first_offer():
    """K12: set without a transaction: the offer that closes the power path carries it; in W
    it is the total (6900 W on 3 phases: 10 A per phase)."""
    h = listening()
    calls = external(h, 1.0, watts=6900.0, source="SO")
    assert [c[3] for c in calls if c[2] == "NotifyChargingLimit"] == [
        {"chargingLimit": {"chargingLimitSource": "SO"}, "evseId": 1}]
    assert not offers(h)
    charging(h, 2.0)
    assert offers(h) == [EnergyOffer(1, True, 10.0)]


def test_external_limit_and_a_profile_the_lower_wins():
    h = listening()
    set_profile(h, 1.0, 1, profile(periods=[(0, 10.0)]))
    external(h, 1.5, amps=16.0)
    charging(h, 2.0)
    assert offers(h) == [EnergyOffer(1, True, 10.0)]
    external(h, 3.0, amps=8.0)
    assert offers(h)[-1] == EnergyOffer(1, True, 8.0)


def rate_changes(calls: list) -> list[str]:
    """The transactionIds of the TransactionEventRequests with triggerReason ChargingRateChanged."""
    return [c[3]["transactionInfo"]["transactionId"] for c in calls
            if c[2] == "TransactionEvent" and c[3]["triggerReason"] == "ChargingRateChanged"]


def test_external_limit_change_is_notified_only_beyond_limit_change_significance():
    """LimitChangeSignificance 10 %: 16 A -> 15 A (6.25 %) applied, not notified, no
    ChargingRateChanged; -> 12 A (20 % of 15 A) notified and, the transaction running, an
    Updated TransactionEvent with triggerReason ChargingRateChanged (K11)."""
    h = listening()
    tx = charging(h, 1.0)
    assert rate_changes(external(h, 2.0, amps=16.0)) == [tx]        # from the EVSE's 31.8 A
    calls = external(h, 3.0, amps=15.0)
    assert offers(h)[-1] == EnergyOffer(1, True, 15.0)
    assert not [c for c in calls if c[2] in ("NotifyChargingLimit", "TransactionEvent")]
    calls = external(h, 4.0, amps=12.0)
    assert offers(h)[-1] == EnergyOffer(1, True, 12.0)
    assert [c[2] for c in calls] == ["NotifyChargingLimit", "TransactionEvent"]
    assert rate_changes(calls) == [tx]
    assert rate_changes(external(h, 5.0, source="EMS")) == [tx]      # removed: back to 31.8 A


def test_charging_rate_changed_only_for_external_limits_during_a_transaction():
    """Errata 6.2.19: the CSMS's own profiles changing the rate are no ChargingRateChanged; an
    external limit without a transaction has no TransactionEvent to send."""
    h = listening()
    assert not [c for c in external(h, 1.0, amps=16.0) if c[2] == "TransactionEvent"]
    charging(h, 2.0)
    frames = h.call("SetChargingProfile", {"evseId": 1, "chargingProfile": profile(periods=[(0, 6.0)])}, 3.0,
                    msg_id="scp")
    assert offers(h)[-1] == EnergyOffer(1, True, 6.0)
    assert not rate_changes(h.settle(frames, 3.0))


def test_external_limit_removed_lifts_the_limit_and_is_cleared():
    """K13.FR.01: removed: it limits no more (the offer goes back to the EVSE's maximum);
    ClearedChargingLimitRequest with its source and EVSE; another source's limit stays."""
    h = listening()
    charging(h, 1.0)
    external(h, 2.0, amps=16.0, source="EMS")
    external(h, 2.5, amps=20.0, source="CSO")
    calls = external(h, 3.0, source="EMS")
    assert [c[3] for c in calls if c[2] == "ClearedChargingLimit"] == [{"chargingLimitSource": "EMS", "evseId": 1}]
    assert offers(h)[-1] == EnergyOffer(1, True, 20.0)
    external(h, 4.0, source="CSO")
    assert offers(h)[-1].limit_a == pytest.approx(22000 / 3 / 230, abs=0.1)
    assert not external(h, 5.0, source="CSO")                 # nothing to clear: nothing sent


def test_external_limit_on_evse_0_bounds_every_evse_and_has_no_evse_id():
    h = booted((1, 1))
    set_variable(h, 0.5, "ExternalControlSignalsEnabled", "true")
    charging(h, 1.0, 1)
    charging(h, 1.5, 2)
    calls = external(h, 2.0, evse=0, amps=12.0)
    assert (offers(h, 1)[-1].limit_a, offers(h, 2)[-1].limit_a) == (12.0, 12.0)
    assert [c[3] for c in calls if c[2] == "NotifyChargingLimit"] == [{"chargingLimit": {"chargingLimitSource": "EMS"}}]
    calls = external(h, 3.0, evse=0)
    assert [c[3] for c in calls if c[2] == "ClearedChargingLimit"] == [{"chargingLimitSource": "EMS"}]


def test_external_limit_with_schedules_carries_the_limit():
    """NotifyChargingLimitWithSchedules true: the limit as a one-period chargingSchedule."""
    h = listening()
    set_variable(h, 0.6, "NotifyChargingLimitWithSchedules", "true")
    [notify] = [c for c in external(h, 1.0, watts=7400.0) if c[2] == "NotifyChargingLimit"]
    request = msgspec.json.decode(json.dumps(notify[3]), type=m.NotifyChargingLimitRequest)
    [schedule] = request.charging_schedule
    assert schedule.charging_rate_unit == "W" and [(p.start_period, p.limit) for p in
                                                   schedule.charging_schedule_period] == [(0, 7400.0)]


def test_external_signals_disabled_are_ignored_and_disabling_drops_the_limits():
    """ExternalControlSignalsEnabled false (the default): a signal changes nothing and tells the
    CSMS nothing; set false while a limit is in force: dropped, ClearedChargingLimit."""
    h = booted()
    charging(h, 1.0)
    assert not external(h, 2.0, amps=10.0)
    assert offers(h)[-1] == EnergyOffer(1, True, None)
    assert any("ExternalControlSignalsEnabled is false" in e.text for e in h.effects if hasattr(e, "text"))
    set_variable(h, 3.0, "ExternalControlSignalsEnabled", "true")
    external(h, 4.0, amps=10.0)
    assert offers(h)[-1] == EnergyOffer(1, True, 10.0)
    h.calls.clear()
    set_variable(h, 5.0, "ExternalControlSignalsEnabled", "false")
    assert [c[3] for c in h.calls if c[2] == "ClearedChargingLimit"] == [{"chargingLimitSource": "EMS", "evseId": 1}]
    assert offers(h)[-1].limit_a == pytest.approx(22000 / 3 / 230, abs=0.1)


def test_external_limit_for_an_unknown_evse_or_source_changes_nothing():
    h = listening()
    charging(h, 1.0)
    before = len(offers(h))
    assert not external(h, 2.0, evse=5, amps=10.0)
    assert not external(h, 2.0, amps=10.0, source="Grid")
    assert len(offers(h)) == before
    with pytest.raises(ValueError, match="amps, watts"):
        ExternalLimitChanged(1, amps=10.0, watts=2300.0)
    with pytest.raises(ValueError, match="amps"):
        ExternalLimitChanged(1, amps=-1.0)


# =========================================================================== offline

def until(h: Rig, end: float) -> None:
    """Every deadline of the station up to `end` passed (the link is down: nothing to answer)."""
    while (d := h.station.next_deadline()) is not None and d <= end:
        h.tick(d)


def test_profiles_keep_being_applied_with_the_link_down():
    """Offline (issue 18): the installed profiles keep limiting with the link down; a period
    boundary passed offline reaches the offer."""
    h = booted()
    set_profile(h, 0.5, 1, profile(periods=[(0, 10.0), (120, 6.0)]))
    charging(h, 1.0)
    assert offers(h)[-1] == EnergyOffer(1, True, 10.0)
    h.run(h.station.link_down(2.0))
    until(h, 119.0)
    assert offers(h)[-1] == EnergyOffer(1, True, 10.0)
    until(h, 120.0)
    assert offers(h)[-1] == EnergyOffer(1, True, 6.0)


def test_offline_default_limit_applies_where_no_profile_does():
    """[smart_charging] default_limit_a 8 A: online without a profile nothing limits; offline a
    valid profile still rules (10 A), once it has ended the default does (8 A), back online the
    EVSE's maximum again."""
    h = booted(default_limit_a=8.0)
    p = profile(periods=[(0, 10.0)])
    p["chargingSchedule"][0]["duration"] = 100
    set_profile(h, 0.5, 1, p)
    charging(h, 1.0)
    assert offers(h)[-1] == EnergyOffer(1, True, 10.0)
    h.run(h.station.link_down(2.0))
    assert offers(h)[-1] == EnergyOffer(1, True, 10.0)
    until(h, 100.0)
    assert offers(h)[-1] == EnergyOffer(1, True, 8.0)
    h.settle(h.up(101.0), 101.0)
    assert offers(h)[-1].limit_a == pytest.approx(22000 / 3 / 230, abs=0.1)


def test_offline_default_limit_bounds_a_session_started_offline():
    """A session started with the link down (AuthCtrlr.OfflineTxForUnknownIdEnabled), no
    profile: its first offer carries the default."""
    h = booted(default_limit_a=6.0, stored={("AuthCtrlr/OfflineTxForUnknownIdEnabled", "Actual"): "true"})
    h.run(h.station.link_down(0.5))
    h.hw(CablePlugged(1, 1), 1.0)
    h.hw(TokenPresented(CARD[1], evse=1), 1.0)
    h.hw(EnergyRequested(1, 7000.0), 1.0)
    assert h.tx_id(1) is not None
    assert offers(h) == [EnergyOffer(1, True, 6.0)]


def test_external_limits_are_reported_as_external_constraints_profiles():
    """K12.FR.05 (TC_K_52): GetChargingProfiles reports each external limit in force as a
    ChargingStationExternalConstraints profile, with its source and EVSE; the CSMS may not take
    its id (DuplicateProfile); removed, it is reported no more."""
    h = listening()
    external(h, 1.0, amps=16.0, source="EMS")
    external(h, 1.0, evse=0, watts=11000.0, source="SO")
    set_profile(h, 1.5, 1, profile(7, periods=[(0, 10.0)]))
    response, pages = report(h, 2.0, {"chargingProfile": {"chargingProfilePurpose":
                                                          "ChargingStationExternalConstraints"}})
    assert response.status == "Accepted"
    got = {(pg.evse_id, pg.charging_limit_source): [
        (p.charging_profile_purpose, p.charging_schedule[0].charging_rate_unit,
         p.charging_schedule[0].charging_schedule_period[0].limit) for p in pg.charging_profile] for pg in pages}
    assert got == {(0, "SO"): [("ChargingStationExternalConstraints", "W", 11000.0)],
                   (1, "EMS"): [("ChargingStationExternalConstraints", "A", 16.0)]}
    ems = next(pg for pg in pages if pg.evse_id == 1).charging_profile[0]
    assert ems.charging_schedule[0].start_schedule == T0 + timedelta(seconds=1)
    _, only_cso = report(h, 2.5, {"chargingProfile": {"chargingLimitSource": ["CSO"]}}, msg_id="gcp-cso")
    assert [p.id for pg in only_cso for p in pg.charging_profile] == [7]
    taken = set_profile(h, 3.0, 1, profile(ems.id, periods=[(0, 10.0)]), msg_id="dup")
    assert (taken.status, taken.status_info.reason_code) == ("Rejected", "DuplicateProfile")
    external(h, 4.0, source="EMS")
    external(h, 4.0, evse=0, source="SO")
    response, _ = report(h, 5.0, {"chargingProfile": {"chargingProfilePurpose": "ChargingStationExternalConstraints"}},
                         msg_id="gcp-none")
    assert response.status == "NoProfiles"
