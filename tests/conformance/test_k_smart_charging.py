"""OCA certification test cases of functional block K (smart charging), Charging Station side.

One test per test case of OCPP 2.0.1 Edition 3 Part 6 ("Test case Id TC_K_nn_CS"): the steps
are followed as written and every tool validation is asserted; the station is the real one, the
OCTT is played by the DevCsms (see conftest.py, which also validates every frame the station sent
against the official JSON schemas when a test ends). The reusable states of a session are those
of test_efj_transactions.Session (TxStartPoint PowerPathClosed, TxStopPoint EVConnected,Authorized).

Chosen configured values (the test cases leave them to the OCTT's configuration):
- evseId 1 (one EVSE of one connector), chargingProfileId PROFILE_ID, chargingRateUnit A
  (limits 6 / 10 A), numberPhases 3, duration DURATION s, <Configured max time deviation>
  DEVIATION s, a generated requestId per GetChargingProfilesRequest.
- An Absolute profile's schedule starts now (startSchedule: the station's clock at the request).
- "The same profile is reported as sent": the reported chargingProfile equals the one of the
  SetChargingProfileRequest field by field (the station adds nothing and drops nothing).
Readings where the text is looser or ambiguous:
- TC_K_06 (Memory State "a chargingprofile with <Configured chargingProfilePurpose> AND
  <Configured stackLevel>", Charging State EnergyTransferStarted): the profile is a TxProfile of
  stackLevel 1 for the running transaction, set once the energy transfer started.
- TC_K_09 step 5 "limit NOT 6": with no profile left the limit is the EVSE's own maximum.
- TC_K_29..K_36 (GetChargingProfiles): Memory State ChargingStationMaxProfile Id1 (stackLevel
  STACK_LEVEL) on the station and TxDefaultProfile Id2 (stackLevel STACK_LEVEL2) on EVSE 1.
  evseId 0 reports the station-wide profiles only (K09.FR.05), evseId 1 those installed on EVSE 1
  (K09.FR.04), no evseId all of them (K09.FR.06). TC_K_33's <Configured stackLevel> is Id2's
  (the one on the requested EVSE); TC_K_35's <Configured chargingProfilePurpose> TxDefaultProfile,
  run in EnergyTransferStarted (errata 6.2.18). TC_K_34: CSMS profiles have chargingLimitSource
  CSO; <Configured chargingLimitSource2> is EMS.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import trio

from devtools.dev_csms import CallError
from tests.conformance.conftest import CALL_WAIT, expect_call
from tests.conformance.test_cd_authorization import answered, csms_answers_authorize, fail
from tests.conformance.test_efj_transactions import (
    EVSE,
    REMOTE_START_ID,
    Session,
    check_authorize,
    check_te,
    csms_answers_transaction_event,
    tx_points,
)
from tests.conformance.test_e_transactions_more import octt_accepts_reconnect, octt_goes_offline
from tests.memory_link import rig_utc_now

TIMEOUT = 20                # s, per test
PROFILE_ID = 100            # <Configured chargingProfileId>
DURATION = 300              # s, <Configured duration>
DEVIATION = 5               # s, <Configured max time deviation>
UNIT = "A"                  # <Configured chargingRateUnit>
PHASES = 3                  # <Configured numberPhases>
_request_ids = itertools.count(7001)


# --------------------------------------------------------------------------- helpers

def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def charging_profile(purpose: str, *, profile_id: int = PROFILE_ID, stack_level: int = 0, kind: str = "Absolute",
                     limit: float = 6.0, duration: int | None = DURATION, **more: Any) -> dict:
    """A chargingProfile of one schedule with one period (startPeriod 0, `limit` A on PHASES phases)."""
    schedule: dict[str, Any] = {"id": 1, "chargingRateUnit": UNIT, "chargingSchedulePeriod": [
        {"startPeriod": 0, "limit": limit, "numberPhases": PHASES}]}
    if duration is not None:
        schedule["duration"] = duration
    if kind == "Absolute":
        schedule["startSchedule"] = iso(rig_utc_now())
    schedule.update(more.pop("schedule", {}))
    return {"id": profile_id, "stackLevel": stack_level, "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind, "chargingSchedule": [schedule], **more}


async def call(cs, step: str, action: str, payload: dict) -> dict:
    """The OCTT's request; a CALLERROR fails `step`."""
    try:
        return await cs.call(action, payload)
    except CallError as exc:
        fail(f"{step}: the station answered {action}Request with a CALLERROR {exc.code}: {exc.description}")


def check_status(step: str, res: dict, status: str, what: str) -> None:
    assert res.get("status") == status, f"{step}: {what}.status {res.get('status')!r}, expected {status}: {res}"


async def set_profile(cs, step: str, evse: int, profile: dict, status: str = "Accepted") -> dict:
    """Steps 1-2 of a SetChargingProfile: the request and the expected status."""
    res = await call(cs, step, "SetChargingProfile", {"evseId": evse, "chargingProfile": profile})
    check_status(step, res, status, "SetChargingProfileResponse")
    return res


async def get_profiles(cs, step: str, criteria: dict, *, evse: int | None = None,
                       status: str = "Accepted") -> list[tuple[int, dict]]:
    """GetChargingProfilesRequest with `criteria` (its response's status checked); when Accepted,
    the ReportChargingProfilesRequests with its requestId until tbc is false, answered by the
    OCTT: their (evseId, chargingProfile) in order."""
    request_id = next(_request_ids)
    cs.csms.handlers["ReportChargingProfiles"] = lambda _sid, _p: {}
    after = cs.mark()
    payload: dict[str, Any] = {"requestId": request_id, "chargingProfile": criteria}
    if evse is not None:
        payload["evseId"] = evse
    res = await call(cs, f"{step} (GetChargingProfilesRequest)", "GetChargingProfiles", payload)
    check_status(f"{step} (GetChargingProfilesResponse)", res, status, "GetChargingProfilesResponse")
    if status != "Accepted":
        return []
    reported: list[tuple[int, dict]] = []
    while True:
        index, report = await expect_call(cs, "ReportChargingProfiles", after=after,
                                          step=f"{step} (ReportChargingProfilesRequest)")
        after = index + 1
        assert report.get("requestId") == request_id, (
            f"{step}: ReportChargingProfilesRequest.requestId {report.get('requestId')!r}, expected the "
            f"GetChargingProfilesRequest's {request_id}")
        assert report.get("chargingLimitSource") == "CSO", (
            f"{step}: ReportChargingProfilesRequest.chargingLimitSource {report.get('chargingLimitSource')!r}, "
            "expected CSO (the profiles came from the CSMS)")
        await answered(cs, index)
        reported += [(report.get("evseId"), p) for p in report.get("chargingProfile") or ()]
        if not report.get("tbc"):
            return reported


def check_reported(step: str, reported: list[tuple[int, dict]], evse: int, profile: dict) -> None:
    """Exactly `profile` is reported, for EVSE `evse`, as it was sent."""
    assert [evse for _ in reported] == [e for e, _ in reported] and len(reported) == 1, (
        f"{step}: ReportChargingProfilesRequest(s) must report one profile on evseId {evse}: {reported}")
    got = reported[0][1]
    assert got == profile, (
        f"{step}: the reported chargingProfile differs from the one sent:\n sent {profile}\n got  {got}")


async def clear_profile(cs, step: str, payload: dict, status: str) -> None:
    res = await call(cs, step, "ClearChargingProfile", payload)
    check_status(step, res, status, "ClearChargingProfileResponse")


async def composite(cs, step: str, evse: int, duration: int, unit: str | None = UNIT) -> dict:
    """GetCompositeScheduleRequest; checks status Accepted, evseId, duration and the unit; the schedule."""
    payload: dict[str, Any] = {"evseId": evse, "duration": duration}
    if unit is not None:
        payload["chargingRateUnit"] = unit
    res = await call(cs, step, "GetCompositeSchedule", payload)
    check_status(step, res, "Accepted", "GetCompositeScheduleResponse")
    schedule = res.get("schedule") or {}
    assert schedule.get("evseId") == evse, f"{step}: schedule.evseId {schedule.get('evseId')!r}, expected {evse}: {res}"
    assert schedule.get("duration") == duration, (
        f"{step}: schedule.duration {schedule.get('duration')!r}, expected {duration}: {res}")
    if unit is not None:
        assert schedule.get("chargingRateUnit") == unit, (
            f"{step}: schedule.chargingRateUnit {schedule.get('chargingRateUnit')!r}, expected {unit}: {res}")
    return schedule


def first_limit(step: str, schedule: dict) -> float:
    periods = schedule.get("chargingSchedulePeriod") or []
    assert periods and periods[0].get("startPeriod") == 0, (
        f"{step}: the composite schedule must start with a period at startPeriod 0: {schedule}")
    return periods[0]["limit"]


async def remote_start_with_profile(s: Session, step: str, profile: dict) -> dict:
    """Steps 1-6 of TC_K_37 / K_38 from EVConnectedPreSession: the RequestStartTransactionRequest
    with `profile`, Accepted; the AuthorizeRequest (AuthCtrlr.AuthorizeRemoteStart true); the
    Started TransactionEventRequest (TxStartPoint PowerPathClosed, the EV connected) with
    triggerReason RemoteStart and the remoteStartId."""
    cs = s.cs
    csms_answers_authorize(cs, {"status": "Accepted"})
    csms_answers_transaction_event(cs, {"status": "Accepted"})
    after = cs.mark()
    res = await call(cs, f"{step} step 1", "RequestStartTransaction", {
        "idToken": s.token, "evseId": s.evse, "remoteStartId": REMOTE_START_ID, "chargingProfile": profile})
    check_status(f"{step} step 2", res, "Accepted", "RequestStartTransactionResponse")
    index, req = await expect_call(cs, "Authorize", after=after, step=f"{step} step 3")
    check_authorize(f"{step} step 3", req, s.token)
    await answered(cs, index)
    s.authorized = True
    s.remote_pending = True
    p = await s.next_te(f"{step} step 5")
    check_te(f"{step} step 5", p, event_type="Started", trigger="RemoteStart", token=s.token)
    assert (p.get("transactionInfo") or {}).get("remoteStartId") == REMOTE_START_ID, (
        f"{step} step 5: transactionInfo.remoteStartId must be {REMOTE_START_ID}: {p}")
    return p


# =========================================================================== K01: SetChargingProfile

async def test_TC_K_01_CS_set_charging_profile_txdefaultprofile_specific_evse(boot_station):
    """TC_K_01_CS Set Charging Profile - TxDefaultProfile - Specific EVSE."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            profile = charging_profile("TxDefaultProfile")
            await set_profile(cs, "Steps 1-2", EVSE, profile)
            reported = await get_profiles(cs, "Steps 3-6", {"chargingProfileId": [PROFILE_ID]})
            check_reported("Step 5 / post scenario", reported, EVSE, profile)


async def test_TC_K_02_CS_set_charging_profile_txprofile_without_ongoing_transaction(boot_station):
    """TC_K_02_CS Set Charging Profile - TxProfile without ongoing transaction on the specified EVSE."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            profile = charging_profile("TxProfile", transactionId="UNKNOWN-TRANSACTION-ID")
            await set_profile(cs, "Steps 1-2", EVSE, profile, status="Rejected")
            await get_profiles(cs, "After step 2 (nothing installed)", {"chargingProfileId": [PROFILE_ID]},
                               status="NoProfiles")


async def test_TC_K_03_CS_set_charging_profile_chargingstationmaxprofile(boot_station):
    """TC_K_03_CS Set Charging Profile - ChargingStationMaxProfile."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            profile = charging_profile("ChargingStationMaxProfile", kind="Absolute")
            await set_profile(cs, "Steps 1-2", 0, profile)
            reported = await get_profiles(cs, "Steps 3-6", {"chargingProfileId": [PROFILE_ID]})
            check_reported("Step 5 / post scenario", reported, 0, profile)


async def test_TC_K_04_CS_replace_charging_profile_with_chargingprofileid(boot_station):
    """TC_K_04_CS Replace charging profile - With chargingProfileId."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await set_profile(cs, "Before (Memory State: a TxDefaultProfile of 6 A)", EVSE,
                              charging_profile("TxDefaultProfile", limit=6.0))
            replacement = charging_profile("TxDefaultProfile", limit=10.0)
            await set_profile(cs, "Steps 1-2", EVSE, replacement)
            reported = await get_profiles(cs, "Steps 3-6", {"chargingProfileId": [PROFILE_ID]})
            check_reported("Step 5 (the profile set in step 1)", reported, EVSE, replacement)


async def test_TC_K_10_CS_set_charging_profile_txdefaultprofile_all_evse(boot_station):
    """TC_K_10_CS Set Charging Profile - TxDefaultProfile - All EVSE."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            profile = charging_profile("TxDefaultProfile")
            await set_profile(cs, "Steps 1-2", 0, profile)
            reported = await get_profiles(cs, "Steps 3-6", {"chargingProfileId": [PROFILE_ID]})
            check_reported("Step 5 / post scenario", reported, 0, profile)


async def test_TC_K_13_CS_set_charging_profile_persistent_over_reboot(boot_station):
    """TC_K_13_CS Set Charging Profile - Persistent over reboot."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            profile = charging_profile("TxDefaultProfile")
            await set_profile(cs, "Steps 1-2", EVSE, profile)
            await cs.restart()          # step 3: Reusable State Booted (a power cycle)
            reported = await get_profiles(cs, "Steps 4-7", {"chargingProfileId": [PROFILE_ID]})
            check_reported("Step 6 / post scenario", reported, EVSE, profile)


# =========================================================================== K10: ClearChargingProfile

async def test_TC_K_05_CS_clear_charging_profile_with_chargingprofileid(boot_station):
    """TC_K_05_CS Clear Charging Profile - With chargingProfileId."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await set_profile(cs, "Before (Memory State: a profile)", EVSE, charging_profile("TxDefaultProfile"))
            await clear_profile(cs, "Steps 1-2", {"chargingProfileId": PROFILE_ID}, "Accepted")
            await get_profiles(cs, "Steps 3-4", {"chargingProfileId": [PROFILE_ID]}, status="NoProfiles")


async def test_TC_K_06_CS_clear_charging_profile_with_stacklevel_purpose_one_profile(boot_station):
    """TC_K_06_CS Clear Charging Profile - With stackLevel/purpose combination for one profile."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (Charging State EnergyTransferStarted)")
            await set_profile(cs, "Before (Memory State: a TxProfile of stackLevel 1)", EVSE,
                              charging_profile("TxProfile", stack_level=1, transactionId=s.tx_id))
            await clear_profile(cs, "Steps 1-2", {"chargingProfileCriteria": {
                "chargingProfilePurpose": "TxProfile", "stackLevel": 1}}, "Accepted")
            await get_profiles(cs, "Steps 3-4", {"chargingProfilePurpose": "TxProfile", "stackLevel": 1},
                               status="NoProfiles")


async def test_TC_K_07_CS_clear_charging_profile_with_unknown_stacklevel_purpose(boot_station):
    """TC_K_07_CS Clear Charging Profile - With unknown stackLevel/purpose combination."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await set_profile(cs, "Before (Memory State: a TxDefaultProfile of stackLevel 1)", EVSE,
                              charging_profile("TxDefaultProfile", stack_level=1))
            await clear_profile(cs, "Steps 1-2", {"chargingProfileCriteria": {
                "chargingProfilePurpose": "ChargingStationMaxProfile", "stackLevel": 0}}, "Unknown")
            reported = await get_profiles(cs, "After step 2 (the profile is still there)",
                                          {"chargingProfileId": [PROFILE_ID]})
            assert len(reported) == 1, f"After step 2: the TxDefaultProfile must not be cleared: {reported}"


async def test_TC_K_08_CS_clear_charging_profile_without_previous_charging_profile(boot_station):
    """TC_K_08_CS Clear Charging Profile - Without previous charging profile."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await clear_profile(cs, "Steps 1-2", {"chargingProfileId": PROFILE_ID}, "Unknown")


async def test_TC_K_09_CS_clear_charging_profile_txdefaultprofile_with_ongoing_transaction(boot_station):
    """TC_K_09_CS Clear Charging Profile - Clearing a TxDefaultProfile - With ongoing transaction."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(**{"SmartChargingCtrlr.LimitChangeSignificance": 1.0})) as cs:
            now = rig_utc_now()
            await set_profile(cs, "Before (Memory State: ChargingProfile 1)", EVSE, charging_profile(
                "TxDefaultProfile", stack_level=0, kind="Absolute", duration=400 + DEVIATION,
                validFrom=iso(now - timedelta(seconds=DEVIATION)),
                validTo=iso(now + timedelta(seconds=DEVIATION + 401)),
                schedule={"startSchedule": iso(now)}))
            await Session(cs).energy_transfer_started("Before (Charging State EnergyTransferStarted)")
            schedule = await composite(cs, "Steps 1-2", EVSE, 300)
            limit = first_limit("Step 2", schedule)
            assert limit == 6, (
                f"Step 2: the composite schedule's limit at startPeriod 0 is {limit}, expected 6: {schedule}")
            await clear_profile(cs, "Steps 3-4", {"chargingProfileCriteria": {
                "chargingProfilePurpose": "TxDefaultProfile"}}, "Accepted")
            schedule = await composite(cs, "Steps 5-6", EVSE, 300)
            limit = first_limit("Step 5", schedule)
            assert limit != 6, f"Step 5: the cleared TxDefaultProfile still limits the composite schedule: {schedule}"


# =========================================================================== K05 / F01: remote start with a profile

async def test_TC_K_37_CS_remote_start_transaction_with_charging_profile_success(boot_station):
    """TC_K_37_CS Remote start transaction with charging profile - Success."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(**{"AuthCtrlr.AuthorizeRemoteStart": True})) as cs:
            s = Session(cs)
            await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
            profile = charging_profile("TxProfile", kind="Relative", duration=None)
            await remote_start_with_profile(s, "Steps 1-6", profile)
            await s.energy_transfer_started("Step 7 (EnergyTransferStarted)")
            reported = await get_profiles(cs, "Steps 8-11", {"chargingProfileId": [PROFILE_ID]})
            check_reported("Step 10", reported, EVSE, {**profile, "transactionId": s.tx_id})


async def test_TC_K_38_CS_remote_start_transaction_with_charging_profile_ignore(boot_station):
    """TC_K_38_CS Remote start transaction with charging profile - Ignore chargingProfile.

    Applies to this station with SmartChargingCtrlr.Enabled false ("does not support Smart
    Charging", F01.FR.12): the remote start is Accepted and the profile ignored."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(**{
                "AuthCtrlr.AuthorizeRemoteStart": True, "SmartChargingCtrlr.Enabled": False})) as cs:
            s = Session(cs)
            await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
            await remote_start_with_profile(s, "Steps 1-6", charging_profile("TxProfile", kind="Relative",
                                                                             duration=None))
            await s.energy_transfer_started("Step 7 (EnergyTransferStarted)")
            await get_profiles(cs, "After step 7 (the profile was ignored)", {"chargingProfileId": [PROFILE_ID]},
                               status="NoProfiles")


async def test_TC_K_16_CS_set_charging_profile_unknown_transactionid(boot_station):
    """TC_K_16_CS Set Charging Profile - Unknown transactionId."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            await Session(cs).energy_transfer_started("Before (Charging State EnergyTransferStarted)")
            profile = charging_profile("TxProfile", transactionId="UNKNOWN-TRANSACTION-ID")
            await set_profile(cs, "Steps 1-2", EVSE, profile, status="Rejected")


async def test_TC_K_19_CS_set_charging_profile_chargingprofilekind_recurring(boot_station):
    """TC_K_19_CS Set Charging Profile - ChargingProfileKind is Recurring (Daily, then Weekly)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            for n, recurrency in enumerate(("Daily", "Weekly")):
                profile = charging_profile("TxDefaultProfile", profile_id=PROFILE_ID + n, stack_level=n,
                                           kind="Recurring", recurrencyKind=recurrency,
                                           schedule={"startSchedule": iso(rig_utc_now())})
                await set_profile(cs, f"Steps 1-2 (recurrencyKind {recurrency})", EVSE, profile)
                reported = await get_profiles(cs, f"After step 2 (recurrencyKind {recurrency})",
                                              {"chargingProfileId": [PROFILE_ID + n]})
                check_reported(f"After step 2 (recurrencyKind {recurrency})", reported, EVSE, profile)


# =========================================================================== K09: GetChargingProfiles

ID1, ID2 = 201, 202         # <Generated Id1> / <Generated Id2>
STACK_LEVEL, STACK_LEVEL2 = 2, 3


async def two_profiles(cs, step: str = "Before (Memory State)") -> tuple[dict, dict]:
    """ChargingStationMaxProfile Id1 on the station, TxDefaultProfile Id2 on EVSE 1."""
    max_profile = charging_profile("ChargingStationMaxProfile", profile_id=ID1, stack_level=STACK_LEVEL, limit=16.0)
    default = charging_profile("TxDefaultProfile", profile_id=ID2, stack_level=STACK_LEVEL2, limit=10.0)
    await set_profile(cs, f"{step}: ChargingStationMaxProfile Id1", 0, max_profile)
    await set_profile(cs, f"{step}: TxDefaultProfile Id2 on EVSE {EVSE}", EVSE, default)
    return max_profile, default


def check_all_reported(step: str, reported: list[tuple[int, dict]], expected: list[tuple[int, dict]]) -> None:
    """Exactly the `expected` (evseId, chargingProfile)s are reported, each as it was sent."""
    key = lambda item: item[1].get("id")  # noqa: E731
    assert sorted(reported, key=key) == sorted(expected, key=key), (
        f"{step}: reported {[(e, p.get('id')) for e, p in reported]} (evseId, id), expected "
        f"{[(e, p.get('id')) for e, p in expected]}; or a profile differs from the one sent:\n"
        f" got      {reported}\n expected {expected}")


async def test_TC_K_29_CS_get_charging_profile_evseid_0(boot_station):
    """TC_K_29_CS Get Charging Profile - EvseId 0."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            max_profile, _ = await two_profiles(cs)
            reported = await get_profiles(cs, "Steps 1-4", {}, evse=0)
            check_all_reported("Step 3", reported, [(0, max_profile)])


async def test_TC_K_30_CS_get_charging_profile_evseid_greater_than_0(boot_station):
    """TC_K_30_CS Get Charging Profile - EvseId > 0."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            _, default = await two_profiles(cs)
            reported = await get_profiles(cs, "Steps 1-4", {}, evse=EVSE)
            check_all_reported("Step 3", reported, [(EVSE, default)])


async def test_TC_K_31_CS_get_charging_profile_no_evseid(boot_station):
    """TC_K_31_CS Get Charging Profile - No EvseId."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            max_profile, default = await two_profiles(cs)
            reported = await get_profiles(cs, "Steps 1-4", {})
            check_all_reported("Step 3", reported, [(0, max_profile), (EVSE, default)])


async def test_TC_K_32_CS_get_charging_profile_chargingprofileid(boot_station):
    """TC_K_32_CS Get Charging Profile - chargingProfileId."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            max_profile, _ = await two_profiles(cs)
            reported = await get_profiles(cs, "Steps 1-4", {"chargingProfileId": [ID1]})
            check_all_reported("Step 3", reported, [(0, max_profile)])


async def test_TC_K_33_CS_get_charging_profile_evseid_and_stacklevel(boot_station):
    """TC_K_33_CS Get Charging Profile - EvseId > 0 + stackLevel."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            _, default = await two_profiles(cs)
            reported = await get_profiles(cs, "Steps 1-4", {"stackLevel": STACK_LEVEL2}, evse=EVSE)
            check_all_reported("Step 3", reported, [(EVSE, default)])


async def test_TC_K_34_CS_get_charging_profile_evseid_and_charginglimitsource(boot_station):
    """TC_K_34_CS Get Charging Profile - EvseId > 0 + chargingLimitSource."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            profile = charging_profile("TxDefaultProfile", profile_id=ID1, stack_level=STACK_LEVEL + 1)
            await set_profile(cs, "Before (Memory State: TxDefaultProfile Id1)", EVSE, profile)
            reported = await get_profiles(cs, "Steps 1-4", {"chargingLimitSource": ["CSO"]}, evse=EVSE)
            check_all_reported("Step 3", reported, [(EVSE, profile)])
            await get_profiles(cs, "Steps 5-6", {"chargingLimitSource": ["EMS"]}, evse=EVSE, status="NoProfiles")


async def test_TC_K_35_CS_get_charging_profile_evseid_and_chargingprofilepurpose(boot_station):
    """TC_K_35_CS Get Charging Profile - EvseId > 0 + chargingProfilePurpose (Charging State
    EnergyTransferStarted: errata 6.2.18)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            _, default = await two_profiles(cs)
            await Session(cs).energy_transfer_started("Before (Charging State EnergyTransferStarted)")
            reported = await get_profiles(cs, "Steps 1-4", {"chargingProfilePurpose": "TxDefaultProfile"}, evse=EVSE)
            check_all_reported("Step 3", reported, [(EVSE, default)])


async def test_TC_K_36_CS_get_charging_profile_evseid_purpose_and_stacklevel(boot_station):
    """TC_K_36_CS Get Charging Profile - EvseId > 0 + chargingProfilePurpose + stackLevel."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            _, default = await two_profiles(cs)
            reported = await get_profiles(cs, "Steps 1-4", {
                "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": STACK_LEVEL2}, evse=EVSE)
            check_all_reported("Step 3", reported, [(EVSE, default)])


# =========================================================================== K01: SetChargingProfile refusals

async def test_TC_K_11_CS_set_charging_profile_txprofile_on_all_evse(boot_station):
    """TC_K_11_CS Set Charging Profile - Unable to set TxProfile on all EVSE at once."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            await set_profile(cs, "Steps 1-2", 0, charging_profile("TxProfile"), status="Rejected")
            await get_profiles(cs, "After step 2 (nothing installed)", {"chargingProfileId": [PROFILE_ID]},
                               status="NoProfiles")


async def test_TC_K_12_CS_set_charging_profile_chargingrateunit_rejected(boot_station):
    """TC_K_12_CS Set Charging Profile - ChargerRateUnit Rejected (SmartChargingCtrlr.RateUnit A only,
    <Configured chargingRateUnit> W)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={"SmartChargingCtrlr.RateUnit": "A"}) as cs:
            profile = charging_profile("TxDefaultProfile", limit=6000.0, schedule={"chargingRateUnit": "W"})
            await set_profile(cs, "Steps 1-2", EVSE, profile, status="Rejected")
            await get_profiles(cs, "After step 2 (nothing installed)", {"chargingProfileId": [PROFILE_ID]},
                               status="NoProfiles")


async def test_TC_K_14_CS_set_charging_profile_unexisting_evseid(boot_station):
    """TC_K_14_CS Set Charging Profile - Unexisting EVSEid (evseId EVSECount + 1)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await set_profile(cs, "Steps 1-2", len(cs.config.station.evse_connectors) + 1,
                              charging_profile("TxDefaultProfile"), status="Rejected")
            await get_profiles(cs, "After step 2 (nothing installed)", {"chargingProfileId": [PROFILE_ID]},
                               status="NoProfiles")


# =========================================================================== K01: validity and start

def period_starts(step: str, schedule: dict) -> list[tuple[int, float]]:
    """(startPeriod, limit) of the composite schedule's periods."""
    return [(p["startPeriod"], p["limit"]) for p in schedule.get("chargingSchedulePeriod") or ()]


def check_periods(step: str, schedule: dict, expected: list[tuple[int | None, float | None]]) -> None:
    """The composite schedule has exactly the `expected` periods: (startPeriod, limit), where a
    startPeriod n > 0 stands for "n - x" with 0 <= x <= DEVIATION + 1 (x: the time between the
    profile's request and the schedule's start, the rig's clock being exact) and None for "not
    validated"."""
    got = period_starts(step, schedule)
    assert len(got) == len(expected), f"{step}: periods {got}, expected {expected} (startPeriod, limit)"
    for (start, limit), (want_start, want_limit) in zip(got, expected):
        if want_start is not None:
            ok = start == 0 if want_start == 0 else want_start - DEVIATION - 1 <= start <= want_start
            assert ok, f"{step}: startPeriod {start}, expected {want_start} - x: periods {got}"
        if want_limit is not None:
            assert limit == want_limit, f"{step}: period at {start} limit {limit}, expected {want_limit}: {got}"


async def test_TC_K_21_CS_set_charging_profile_validfrom(boot_station):
    """TC_K_21_CS Set Charging Profile - ValidFrom (Relative TxDefaultProfile valid from now + 300 s)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            profile = charging_profile("TxDefaultProfile", kind="Relative", duration=None,
                                       validFrom=iso(rig_utc_now() + timedelta(seconds=300)))
            await set_profile(cs, "Steps 1-2", EVSE, profile)
            schedule = await composite(cs, "Steps 3-4", EVSE, 400)
            check_periods("Step 4", schedule, [(0, None), (300, 6.0)])


async def test_TC_K_22_CS_set_charging_profile_validto(boot_station):
    """TC_K_22_CS Set Charging Profile - ValidTo (TxDefaultProfile on evseId 0 valid until now + 300 s;
    two EVSEs, so evseId 0's limit is 2 x 6)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=[1, 1]) as cs:
            now = rig_utc_now()
            profile = charging_profile("TxDefaultProfile", duration=None,
                                       validFrom=iso(now - timedelta(seconds=DEVIATION)),
                                       validTo=iso(now + timedelta(seconds=300)), schedule={"startSchedule": iso(now)})
            await set_profile(cs, "Steps 1-2", 0, profile)
            for evse in (0, 1, 2):
                schedule = await composite(cs, f"Steps 3-4 (evseId {evse})", evse, 400)
                check_periods(f"Step 4 (evseId {evse})", schedule, [(0, 6.0 * (2 if evse == 0 else 1)), (300, None)])


async def test_TC_K_23_CS_set_charging_profile_startschedule(boot_station):
    """TC_K_23_CS Set Charging Profile - StartSchedule (Absolute, startSchedule now - deviation + 60 s)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            now = rig_utc_now()
            profile = charging_profile(
                "TxDefaultProfile", duration=None,
                validFrom=iso(now + timedelta(seconds=50 - DEVIATION)),
                validTo=iso(now + timedelta(seconds=400 + DEVIATION)),
                schedule={"startSchedule": iso(now + timedelta(seconds=60 - DEVIATION))})
            await set_profile(cs, "Steps 1-2", EVSE, profile)
            schedule = await composite(cs, "Steps 3-4", EVSE, 300)
            check_periods("Step 4", schedule, [(0, None), (60, 6.0)])


async def test_TC_K_28_CS_set_charging_profile_txdefaultprofile_with_transaction_ongoing(boot_station):
    """TC_K_28_CS Set Charging Profile - TxDefaultProfile with transaction ongoing."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(**{"SmartChargingCtrlr.LimitChangeSignificance": 1.0})) as cs:
            await Session(cs).energy_transfer_started("Before (EnergyTransferStarted)")
            now = rig_utc_now()
            profile = charging_profile(
                "TxDefaultProfile", duration=300,
                validFrom=iso(now - timedelta(seconds=DEVIATION)),
                validTo=iso(now + timedelta(seconds=DEVIATION + 300)),
                schedule={"startSchedule": iso(now - timedelta(seconds=DEVIATION))})
            await set_profile(cs, "Steps 1-2", EVSE, profile)
            schedule = await composite(cs, "Steps 3-4", EVSE, 300)
            assert first_limit("Step 4", schedule) == 6, f"Step 4: startPeriod 0 must have limit 6: {schedule}"


async def test_TC_K_60_CS_set_charging_profile_txprofile_with_ongoing_transaction(boot_station):
    """TC_K_60_CS Set Charging Profile - TxProfile with ongoing transaction on the specified EVSE."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            profile = charging_profile("TxProfile", kind="Relative", duration=None, transactionId=s.tx_id)
            await set_profile(cs, "Steps 1-2", EVSE, profile)
            reported = await get_profiles(cs, "Steps 3-6", {"chargingProfileId": [PROFILE_ID]})
            check_reported("Step 5", reported, EVSE, profile)


# =========================================================================== K10: clear on several EVSEs

async def test_TC_K_24_CS_clear_charging_profile_stacklevel_purpose_multiple_profiles(boot_station):
    """TC_K_24_CS Clear Charging Profile - With stackLevel/purpose combination for multiple profiles
    (two EVSEs; <Configured chargingProfilePurpose> TxDefaultProfile, <Configured stackLevel> 1)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=[1, 1]) as cs:
            for evse in (1, 2):
                await set_profile(cs, f"Before (Memory State: a profile on evseId {evse})", evse,
                                  charging_profile("TxDefaultProfile", profile_id=PROFILE_ID + evse, stack_level=1))
            await clear_profile(cs, "Steps 1-2", {"chargingProfileCriteria": {
                "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 1}}, "Accepted")
            await get_profiles(cs, "Steps 3-4", {"chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 1},
                               status="NoProfiles")


# =========================================================================== K08: GetCompositeSchedule

async def test_TC_K_39_CS_get_composite_schedule_no_chargingprofile_installed(boot_station):
    """TC_K_39_CS Get Composite Schedule - No ChargingProfile installed on Charging Station."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            schedule = await composite(cs, "Steps 1-2", 0, 300)
            first_limit("Step 2", schedule)


async def test_TC_K_40_CS_get_composite_schedule_stacking_chargingprofiles(boot_station):
    """TC_K_40_CS Get Composite Schedule - Stacking ChargingProfiles."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            now = rig_utc_now()
            valid = {"validFrom": iso(now - timedelta(seconds=DEVIATION)),
                     "validTo": iso(now + timedelta(seconds=DEVIATION + 401))}
            start = {"startSchedule": iso(now - timedelta(seconds=DEVIATION))}
            for n, (duration, periods) in enumerate(((400 + DEVIATION, [(0, 6.0), (100, 8.0), (200, 10.0)]),
                                                     (150 + DEVIATION, [(0, 7.0), (100, 9.0)]))):
                await set_profile(cs, f"Before (Memory State: ChargingProfile {n + 1})", EVSE, charging_profile(
                    "TxDefaultProfile", profile_id=PROFILE_ID + n, stack_level=n, duration=duration, **valid,
                    schedule={**start, "chargingSchedulePeriod": [
                        {"startPeriod": s, "limit": lim, "numberPhases": PHASES} for s, lim in periods]}))
            schedule = await composite(cs, "Steps 1-2", EVSE, 350)
            check_periods("Step 2", schedule, [(0, 7.0), (100, 9.0), (150, 8.0), (200, 10.0)])


async def test_TC_K_41_CS_get_composite_schedule_combining_chargingprofilepurposes(boot_station):
    """TC_K_41_CS Get Composite Schedule - Combining chargingProfilePurposes (the TxProfile needs the
    transaction it is for: run in EnergyTransferStarted)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            now = rig_utc_now()
            start = {"startSchedule": iso(now - timedelta(seconds=DEVIATION))}
            valid = {"validFrom": iso(now - timedelta(seconds=DEVIATION)),
                     "validTo": iso(now + timedelta(seconds=DEVIATION + 401))}

            def periods(starts, limits) -> list[dict]:
                return [{"startPeriod": a, "limit": b, "numberPhases": PHASES} for a, b in zip(starts, limits)]

            await set_profile(cs, "Before (Memory State: ChargingProfile 1)", 0, charging_profile(
                "ChargingStationMaxProfile", profile_id=PROFILE_ID, duration=86400,
                schedule={**start, "chargingSchedulePeriod": periods([0], [10.0])}))
            await set_profile(cs, "Before (Memory State: ChargingProfile 2)", EVSE, charging_profile(
                "TxDefaultProfile", profile_id=PROFILE_ID + 1, duration=300, **valid, schedule={
                    **start, "chargingSchedulePeriod": periods([0, 60, 120, 180, 260], [6.0, 10.0, 8.0, 15.0, 8.0])}))
            await set_profile(cs, "Before (Memory State: ChargingProfile 3)", EVSE, charging_profile(
                "TxProfile", profile_id=PROFILE_ID + 2, duration=260, transactionId=s.tx_id, **valid, schedule={
                    **start, "chargingSchedulePeriod": periods([0, 50, 140, 200, 240], [8.0, 11.0, 16.0, 6.0, 12.0])}))
            schedule = await composite(cs, "Steps 1-2", EVSE, 400)
            check_periods("Step 2", schedule, [(0, 8.0), (50, 10.0), (200, 6.0), (240, 10.0)])


async def test_TC_K_42_CS_get_composite_schedule_chargingrateunit_not_supported(boot_station):
    """TC_K_42_CS Get Composite Schedule - chargingRateUnit not supported (SmartChargingCtrlr.RateUnit
    A only, <Configured unsupported chargingRateUnit> W)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={"SmartChargingCtrlr.RateUnit": "A"}) as cs:
            res = await call(cs, "Steps 1-2", "GetCompositeSchedule",
                             {"evseId": 0, "duration": 300, "chargingRateUnit": "W"})
            check_status("Step 2", res, "Rejected", "GetCompositeScheduleResponse")
            assert "schedule" not in res, f"Step 2: schedule must be omitted: {res}"


async def test_TC_K_47_CS_get_composite_schedule_unknown_evseid(boot_station):
    """TC_K_47_CS Get Composite Schedule - Unknown EVSEId."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res = await call(cs, "Steps 1-2", "GetCompositeSchedule", {
                "evseId": len(cs.config.station.evse_connectors) + 1, "duration": 300, "chargingRateUnit": UNIT})
            check_status("Step 2", res, "Rejected", "GetCompositeScheduleResponse")
            assert "schedule" not in res, f"Step 2: schedule must be omitted: {res}"


# =========================================================================== K12: external limits

async def test_TC_K_52_CS_set_external_charging_limit_external_constraints_in_report(boot_station):
    """TC_K_52_CS Set External Charging Limit (not on a transaction) - ChargingStationExternalConstraints
    in report. Memory State: an external limit (the sim's `limit` command, 16 A from EMS on EVSE 1,
    SmartChargingCtrlr.ExternalControlSignalsEnabled true); the station's NotifyChargingLimit is
    answered by the OCTT."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={"SmartChargingCtrlr.ExternalControlSignalsEnabled": True}) as cs:
            after = cs.mark()
            await cs.control(cmd="limit", evse=EVSE, amps=16, source="EMS")
            index, _ = await expect_call(cs, "NotifyChargingLimit", after=after, step="Before (Memory State)")
            await answered(cs, index)
            request_id = next(_request_ids)
            cs.csms.handlers["ReportChargingProfiles"] = lambda _sid, _p: {}
            after = cs.mark()
            res = await call(cs, "Step 1", "GetChargingProfiles", {"requestId": request_id, "chargingProfile": {
                "chargingProfilePurpose": "ChargingStationExternalConstraints"}})
            check_status("Step 2", res, "Accepted", "GetChargingProfilesResponse")
            reported = []
            while True:
                index, report = await expect_call(cs, "ReportChargingProfiles", after=after, step="Step 3")
                after = index + 1
                assert report.get("requestId") == request_id, f"Step 3: requestId {report.get('requestId')!r}"
                await answered(cs, index)
                reported += report.get("chargingProfile") or []
                if not report.get("tbc"):
                    break
            purposes = [p.get("chargingProfilePurpose") for p in reported]
            assert purposes and set(purposes) == {"ChargingStationExternalConstraints"}, (
                f"Step 3 / post scenario: at least one ChargingStationExternalConstraints, nothing else: {reported}")


# =========================================================================== beyond the test cases

async def test_remote_start_profile_is_not_kept_over_a_reboot_because_the_remote_start_is_not(boot_station):
    """K05 across a reboot (why the waiting chargingProfile of a remote start is not stored): a
    RequestStartTransaction with a TxProfile before the EV is plugged in, then a power cycle. The
    authorization of the remote start is dropped at start-up (no transaction is running), so no
    transaction will ever be the one the profile was for: the next session (by card) charges
    without it."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            csms_answers_transaction_event(cs, {"status": "Accepted"})
            res = await call(cs, "Remote start", "RequestStartTransaction", {
                "idToken": {"idToken": "REMOTE-1", "type": "Central"}, "evseId": EVSE,
                "remoteStartId": REMOTE_START_ID, "chargingProfile": charging_profile(
                    "TxProfile", kind="Relative", duration=None)})
            check_status("Remote start", res, "Accepted", "RequestStartTransactionResponse")
            authorized = cs.runtime.snapshot()["evses"][EVSE].get("authorized")
            assert authorized is not None, f"Remote start: EVSE {EVSE} must be authorized: {authorized}"
            await cs.restart()
            authorized = cs.runtime.snapshot()["evses"][EVSE].get("authorized")
            assert authorized is None, f"After the reboot: the remote start must be gone: {authorized}"
            await Session(cs).energy_transfer_started("After the reboot (EnergyTransferStarted by card)")
            await get_profiles(cs, "After the reboot", {"chargingProfileId": [PROFILE_ID]}, status="NoProfiles")
            limit = first_limit("After the reboot", await composite(cs, "After the reboot", EVSE, 60))
            assert limit > 6, f"After the reboot: the remote start's 6 A profile limits the card session: {limit}"


async def offered_current(cs, evse: int = EVSE) -> float | None:
    """What the simulated controller was last told the EV may draw (A per phase)."""
    [e] = [e for e in (await cs.control(cmd="state"))["evses"] if e["evse"] == evse]
    return e["offered_current_a"]


async def until_offered(cs, step: str, check) -> float | None:
    """Wait (up to CALL_WAIT) until the controller's offered current passes `check`."""
    with trio.move_on_after(CALL_WAIT):
        while not check(amps := await offered_current(cs)):
            await trio.sleep(0.05)
        return amps
    fail(f"{step}: the controller's offered current is {await offered_current(cs)!r}")


async def test_offline_default_limit_reaches_the_controller_and_profiles_keep_limiting_offline(boot_station):
    """Issue 18 "Offline" end to end ([smart_charging] default_limit_a = 8): a charging session
    without a profile is not limited while online; the link lost, the controller is told 8 A;
    the CSMS back, the EVSE's maximum again. Then a TxProfile of 10 A: with the link lost again
    it keeps limiting (10 A, not the default)."""
    with trio.fail_after(TIMEOUT * 2):
        async with boot_station(device_model=tx_points(), tables="[smart_charging]\ndefault_limit_a = 8") as cs:
            s = Session(cs)
            await s.energy_transfer_started("Online (EnergyTransferStarted)")
            assert await offered_current(cs) is None, "Online without a profile: nothing may limit the EV"
            await octt_goes_offline(cs, "Offline")
            await until_offered(cs, "Offline (no profile: the default)", lambda a: a == 8)
            await octt_accepts_reconnect(cs, "Back online")
            await until_offered(cs, "Back online (the EVSE's maximum)", lambda a: a is not None and a > 8)
            await set_profile(cs, "Online: a TxProfile of 10 A", EVSE, charging_profile(
                "TxProfile", kind="Relative", duration=None, limit=10.0, transactionId=s.tx_id))
            await until_offered(cs, "Online (the TxProfile)", lambda a: a == 10)
            await octt_goes_offline(cs, "Offline again")
            await trio.sleep(CALL_WAIT)
            assert await offered_current(cs) == 10, "Offline: the TxProfile must keep limiting, not the default"
