"""OCA certification test cases of functional block C (authorization) whose steps need a
transaction, Charging Station side (the others are in test_cd_authorization.py).

The rig, the reusable states (`Session`) and the helpers are those of
test_efj_transactions.py; see its docstring for the readings of the reusable states. Chosen
configured values, besides those listed there:
- blocked idToken 0B10C4ED, expired 0E4B1DED, masterPass idToken 0FA57E55 (all ISO14443);
  <Configured GroupId> GROUP-1 and MasterPassGroupId MASTERPASS (groupIdTokens of type Central).
- TC_C_02/C_06/C_07 run with TxStartPoint EVConnected, so a transaction is running when the
  rejected idToken is presented and "SHALL NOT send a TransactionEventRequest" is a real check
  (test_cd_authorization.py runs them with PowerPathClosed, where no transaction exists).
- Memory State IdTokenCached for an Accepted idToken: Authorized (local), EVConnectedPreSession,
  StopAuthorized (local), EVConnectedPostSession, EVDisconnected with the default start/stop
  points, all with their tool validations; for a non-Accepted one: the AuthorizeRequest answered
  with that status. Both end with AuthCacheCtrlr.Storage > 0 (the token was stored).
- Where a step's tool validation names <Configured valid_idtoken> but the manual action presents
  another idToken (TC_C_12 step 1, TC_C_39 steps 6/8, TC_C_42 step 6), the idToken presented is
  what is checked.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timezone

import trio

from tests.conformance.conftest import expect_call, id_token_cached
from tests.conformance.test_cd_authorization import (
    OFFLINE_SETTINGS,
    VERSION,
    octt_accepts_reconnect,
    octt_goes_offline,
    send_local_list,
)
from tests.conformance.test_efj_transactions import (
    CALL_WAIT,
    EV_POWER_W,
    EVSE,
    INVALID,
    QUIET,
    TIMEOUT,
    VALID,
    VALID2,
    Session,
    answered,
    check_authorize,
    check_te,
    csms_answers_authorize,
    csms_answers_transaction_event,
    id_token,
    present,
    te_summary,
    ts,
    tx_points,
)
from tests.memory_link import RigDateTime as datetime  # the rig's wall clock (MockClock)

BLOCKED = id_token("0B10C4ED")
EXPIRED = id_token("0E4B1DED")
MASTER_PASS = id_token("0FA57E55")
GROUP = {"idToken": "GROUP-1", "type": "Central"}
MASTER_PASS_GROUP = {"idToken": "MASTERPASS", "type": "Central"}
CACHE_PRE_AUTHORIZE = {"AuthCacheCtrlr.Enabled": True, "AuthCtrlr.LocalPreAuthorize": True}


async def rejected_while_transaction(cs, token: dict, status: str) -> None:
    """TC_C_02/06/07: EVConnectedPreSession (a transaction starts), the idToken is rejected."""
    s = Session(cs, start="EVConnected")
    await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
    csms_answers_authorize(cs, {"status": status})
    after = cs.mark()
    await present(cs, token)
    index, req = await expect_call(cs, "Authorize", after=after, step="Step 1")
    check_authorize("Step 1", req, token)
    await answered(cs, index)
    s.cursor = index + 1
    await s.no_te("Step 2 (the Charging Station SHALL NOT send a TransactionEventRequest after the AuthorizeRequest)")


async def test_TC_C_02_CS_local_start_transaction_authorization_invalid_unknown(boot_station):
    """TC_C_02_CS Local start transaction - Authorization Invalid/Unknown.

    Before: AuthCtrlr.Enabled true; TxStartPoint EVConnected; EVConnectedPreSession. Step 2: Invalid."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points("EVConnected", **{"AuthCtrlr.Enabled": True})) as cs:
            await rejected_while_transaction(cs, INVALID, "Invalid")


async def test_TC_C_06_CS_local_start_transaction_authorization_blocked(boot_station):
    """TC_C_06_CS Local start transaction - Authorization Blocked (as TC_C_02, status Blocked)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points("EVConnected", **{"AuthCtrlr.Enabled": True})) as cs:
            await rejected_while_transaction(cs, BLOCKED, "Blocked")


async def test_TC_C_07_CS_local_start_transaction_authorization_expired(boot_station):
    """TC_C_07_CS Local start transaction - Authorization Expired (as TC_C_02, status Expired)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points("EVConnected", **{"AuthCtrlr.Enabled": True})) as cs:
            await rejected_while_transaction(cs, EXPIRED, "Expired")


async def test_TC_C_04_CS_local_stop_transaction_different_id_token(boot_station):
    """TC_C_04_CS Local Stop Transaction - Different idToken.

    Before: AuthCtrlr.Enabled true; valid_idtoken2 is neither cached nor listed and has no
    groupId; EnergyTransferStarted (defaults). Step 2: Accepted (no groupIdToken)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(**{"AuthCtrlr.Enabled": True})) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            csms_answers_authorize(cs, {"status": "Accepted"})
            after = cs.mark()
            await present(cs, VALID2)
            index, req = await expect_call(cs, "Authorize", after=after, step="Step 1")
            check_authorize("Step 1", req, VALID2)
            await answered(cs, index)
            s.cursor = index + 1
            await s.no_te("Step 2 (no TransactionEventRequest with an idToken after a different idToken)",
                          where=lambda p: "idToken" in p)
            await s.no_te("Post scenario (no TransactionEventRequest(Ended))", quiet=0,
                          where=lambda p: p.get("eventType") == "Ended")


async def test_TC_C_08_CS_authorization_through_cache_accepted(boot_station):
    """TC_C_08_CS Authorization through authorization cache - Accepted.

    Before: AuthCacheCtrlr.Enabled true, AuthCtrlr.LocalPreAuthorize true; IdTokenCached for
    valid_idtoken; EVConnectedPreSession. Main: Authorized (no AuthorizeRequest: the idToken is
    cached), EnergyTransferStarted; post scenario: energy flows."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(**CACHE_PRE_AUTHORIZE)) as cs:
            await id_token_cached(cs, VALID)
            s = Session(cs)
            await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
            after = cs.mark()
            await s.authorized_local("Step 1 (Authorized, cached idToken)", expect_authorize=False)
            await s.energy_transfer_started("Step 2 (EnergyTransferStarted)")
            got = cs.calls("Authorize", after)
            assert not got, f"Step 1: the idToken is cached (LocalPreAuthorize true), yet AuthorizeRequest {got}"
            await trio.sleep(0.2)
            view = next(e for e in (await cs.control(cmd="state"))["evses"] if e["evse"] == EVSE)
            assert view["power_w"] > 0, f"Post scenario: energy transfer is not started: {view}"


async def test_TC_C_09_CS_authorization_through_cache_invalid_not_accepted(boot_station):
    """TC_C_09_CS Authorization through authorization cache - Invalid & Not Accepted.

    Before: cache enabled, LocalPreAuthorize true, DisablePostAuthorize false; IdTokenCached for
    the invalid idToken; TxStartPoint EVConnected; EVConnectedPreSession."""
    dm = tx_points("EVConnected", **CACHE_PRE_AUTHORIZE, **{"AuthCacheCtrlr.DisablePostAuthorize": False})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            await id_token_cached(cs, INVALID, "Invalid")
            s = Session(cs, start="EVConnected")
            await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
            csms_answers_authorize(cs, {"status": "Invalid"})
            after = cs.mark()
            await present(cs, INVALID)
            index, req = await expect_call(cs, "Authorize", after=after, step="Step 1")
            check_authorize("Step 1", req, INVALID)


async def test_TC_C_12_CS_authorization_through_cache_invalid_and_accepted(boot_station):
    """TC_C_12_CS Authorization through authorization cache - Invalid & Accepted.

    Before: as TC_C_09 (TxStartPoint PowerPathClosed, the default). Step 2 answers Accepted; step 3
    (optional) and EnergyTransferStarted follow; post scenario: energy flows."""
    dm = tx_points(**CACHE_PRE_AUTHORIZE, **{"AuthCacheCtrlr.DisablePostAuthorize": False})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            await id_token_cached(cs, INVALID, "Invalid")
            s = Session(cs, token=INVALID)
            await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
            await s.authorized_local("Steps 1-3")
            await s.energy_transfer_started("Step 5 (EnergyTransferStarted)")
            await trio.sleep(0.2)
            view = next(e for e in (await cs.control(cmd="state"))["evses"] if e["evse"] == EVSE)
            assert view["power_w"] > 0, f"Post scenario: energy transfer is not started: {view}"


async def test_TC_C_13_CS_authorization_through_cache_accepted_but_cable_not_connected_yet(boot_station):
    """TC_C_13_CS Authorization through authorization cache - Accepted but cable not connected yet.

    Before: AuthCacheCtrlr.Enabled true, AuthCtrlr.LocalPreAuthorize true; IdTokenCached for
    valid_idtoken; ParkingBayOccupied not executed (optional: no bay sensor). TxStartPoint
    Authorized (left open by the test case; with it step 1 is executed). Main: the cached idToken
    is presented with no cable plugged in: no AuthorizeRequest ("as no AuthorizeRequest is being sent"),
    step 1 TransactionEventRequest Started / Authorized; EVConnectedPreSession;
    EnergyTransferStarted; post scenario: energy flows."""
    start = "Authorized"
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points(start, **CACHE_PRE_AUTHORIZE)) as cs:
            await id_token_cached(cs, VALID, start=start)
            s = Session(cs, start=start)
            after = cs.mark()
            p = await s.authorized_local("Step 1 (Reusable State Authorized, cached idToken, no cable)",
                                         expect_authorize=False)
            assert p is not None, "Step 1: no TransactionEventRequest (TxStartPoint contains Authorized)"
            check_te("Step 1", p, event_type="Started", trigger="Authorized", token=VALID)
            no_authorize(cs, after, "Step 1")
            await s.ev_connected_pre_session("Step 3 (EVConnectedPreSession)")
            await s.energy_transfer_started("Step 4 (EnergyTransferStarted)")
            no_authorize(cs, after, "Steps 1-4")
            await energy_flows(cs, "Post scenario")


async def group_session_started(cs) -> Session:
    """TC_C_39/C_42 steps 1-5 (EVConnectedPreSession before)."""
    s = Session(cs)
    await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
    p = await s.authorized_local("Steps 1-3", info={"status": "Accepted", "groupIdToken": GROUP})
    if p is not None:
        check_te("Step 3", p, trigger="Authorized", token=VALID, event_type="Started")
    await s.energy_transfer_started("Step 5 (EnergyTransferStarted)")
    return s


async def test_TC_C_39_CS_authorization_by_group_id_success(boot_station):
    """TC_C_39_CS Authorization by GroupId - Success.

    Before: EVConnectedPreSession (defaults). valid_idtoken and valid_idtoken2 both get
    groupIdToken GROUP-1 from the OCTT."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            s = await group_session_started(cs)
            info = {"status": "Accepted", "groupIdToken": GROUP}
            csms_answers_authorize(cs, info)
            csms_answers_transaction_event(cs, info)
            after = cs.mark()
            await trio.sleep(0.3)
            await present(cs, VALID2)
            index, req = await expect_call(cs, "Authorize", after=after, step="Step 6")
            check_authorize("Step 6", req, VALID2)
            p = await s.next_te("Step 8")
            check_te("Step 8", p, trigger="StopAuthorized", token=VALID2)
            s.authorized = False
            await s.ev_connected_post_session("Step 10 (EVConnectedPostSession)")
            await s.ev_disconnected("Step 11 (EVDisconnected)")
            await s.parking_bay_unoccupied("Step 12 (ParkingBayUnoccupied)")


async def test_TC_C_42_CS_authorization_by_group_id_not_stopped_by_group_id(boot_station):
    """TC_C_42_CS Authorization by GroupId - Not stopped by GroupId.

    Before: EVConnectedPreSession (defaults). Step 7 answers Invalid with groupIdToken GROUP-1."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            s = await group_session_started(cs)
            csms_answers_authorize(cs, {"status": "Invalid", "groupIdToken": GROUP})
            after = cs.mark()
            await trio.sleep(0.3)
            await present(cs, INVALID)
            index, req = await expect_call(cs, "Authorize", after=after, step="Step 6")
            check_authorize("Step 6", req, INVALID)
            await answered(cs, index)
            await s.no_te("Step 7 (the OCTT waits: no TransactionEventRequest)")
            view = next(e for e in (await cs.control(cmd="state"))["evses"] if e["evse"] == EVSE)
            assert view["power_path_closed"] and view["power_w"] > 0, (
                f"Post scenario: the energy transfer is stopped: {view}")


async def test_TC_C_49_CS_stop_transaction_with_master_pass_without_ui(boot_station):
    """TC_C_49_CS Stop Transaction with a Master Pass - Without UI.

    Before: AuthCtrlr.MasterPassGroupId MASTERPASS; two EVSEs ([1, 1]); EnergyTransferStarted on
    EVSE 1 (valid_idtoken) and EVSE 2 (valid_idtoken2), defaults. The master pass is presented
    at EVSE 1's reader."""
    dm = tx_points(**{"AuthCtrlr.MasterPassGroupId": MASTER_PASS_GROUP["idToken"]})
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=dm, evse_connectors=[1, 1]) as cs:
            s1 = Session(cs, evse=1, token=VALID)
            s2 = Session(cs, evse=2, token=VALID2)
            await s1.energy_transfer_started("Before (EnergyTransferStarted, EVSE 1)")
            await s2.energy_transfer_started("Before (EnergyTransferStarted, EVSE 2)")
            info = {"status": "Accepted", "groupIdToken": MASTER_PASS_GROUP}
            csms_answers_authorize(cs, info)
            csms_answers_transaction_event(cs, info)
            after = cs.mark()
            await trio.sleep(0.3)
            await present(cs, MASTER_PASS, evse=1)
            _, req = await expect_call(cs, "Authorize", after=after, step="Step 1")
            check_authorize("Step 1", req, MASTER_PASS)
            for s in (s1, s2):
                p = await s.next_te(f"Step 3 (EVSE {s.evse})")
                check_te(f"Step 3 (EVSE {s.evse})", p, stopped="MasterPass", token_or_omitted=MASTER_PASS)
                s.authorized = False
            for s in (s1, s2):
                await s.ev_connected_post_session(f"Step 5 (EVConnectedPostSession, EVSE {s.evse})")
                await s.ev_disconnected(f"Step 6 (EVDisconnected, EVSE {s.evse})")
                await s.parking_bay_unoccupied(f"Step 7 (ParkingBayUnoccupied, EVSE {s.evse})")


# =========================================================================== added: C_16..C_44

TEST_TIMEOUT = 20       # s, the bound of the tests below
OCTT_OFFLINE_WAIT = 5   # s, "The OCTT will wait for 5 seconds" (TC_C_16/C_17 step 1)
GROUP_ACCEPTED = {"status": "Accepted", "groupIdToken": GROUP}
GROUP_INVALID = {"status": "Invalid", "groupIdToken": GROUP}


def no_authorize(cs, after: int, step: str) -> None:
    got = cs.calls("Authorize", after)
    assert not got, (f"{step}: the idToken is known locally (LocalPreAuthorize true), the scenario has no "
                     f"AuthorizeRequest, yet the station sent AuthorizeRequest {[p for _, p in got]}")


async def energy_flows(cs, step: str) -> None:
    await trio.sleep(0.2)
    view = next(e for e in (await cs.control(cmd="state"))["evses"] if e["evse"] == EVSE)
    assert view["power_w"] > 0, f"{step}: energy is not transferred: {view}"


async def energy_stops(cs, step: str) -> None:
    with trio.move_on_after(CALL_WAIT):
        while (view := next(e for e in (await cs.control(cmd="state"))["evses"] if e["evse"] == EVSE))["power_w"] > 0:
            await trio.sleep(0.02)
        return
    fail_msg = f"{step}: the energy flow did not stop within {CALL_WAIT} s of the Invalid status: {view}"
    raise AssertionError(fail_msg)


async def wait_te(cs, after: int, step: str, where: Callable[[dict], bool], what: str,
                  timeout: float = CALL_WAIT) -> tuple[int, dict]:
    """The first TransactionEventRequest from `after` on matching `where` (answered), or fail naming the step."""
    try:
        index, p = await cs.next_call("TransactionEvent", after=after, where=where, timeout=timeout)
    except trio.TooSlowError:
        sent = [te_summary(p) for _, p in cs.calls("TransactionEvent", after)]
        raise AssertionError(f"{step}: no TransactionEventRequest with {what} within {timeout} s; "
                             f"the station sent: {sent or 'no TransactionEventRequest'}") from None
    await answered(cs, index)
    return index, p


def offline_of(p: dict) -> str:
    return f"offline {p.get('offline')!r} (omitted: None)"


LIST_PRE_AUTHORIZE = {"LocalAuthListCtrlr.Enabled": True, "AuthCtrlr.LocalPreAuthorize": True}


async def local_list(cs, entries: list[tuple[dict, dict]]) -> None:
    """Memory State: the idTokens configured in the Local Authorization List (a Full SendLocalList)."""
    step = "Before (Memory State: idTokens in the Local Authorization List)"
    res = await send_local_list(cs, "Full", VERSION, [{"idToken": t, "idTokenInfo": i} for t, i in entries], step=step)
    assert res.get("status") == "Accepted", f"{step}: SendLocalListResponse {res}"


async def start_offline_transaction(cs, token: dict) -> datetime:
    """Reusable State StartOfflineTransaction; returns the time the OCTT accepts the reconnect."""
    await octt_goes_offline(cs)                                   # step 1
    await cs.control(cmd="occupancy", evse=EVSE, occupied=True)   # Drive EV into parking bay
    await present(cs, token)                                      # Present idToken
    await cs.control(cmd="plug", evse=EVSE, connector=1)          # Connect the EV and EVSE
    await trio.sleep(0.3)
    reconnect_at = datetime.now(timezone.utc)
    await octt_accepts_reconnect(cs, "StartOfflineTransaction step 2")   # step 2
    return reconnect_at


async def cached_token_offline_invalid(cs) -> tuple[int, datetime]:
    """TC_C_16/C_17 Before (IdTokenCached, EVConnectedPreSession), step 1 (offline, the cached
    valid idToken presented, the EV draws energy, the OCTT waits 5 s) and step 2 (reconnect);
    the OCTT answers TransactionEventRequests with an idToken with Invalid (step 4)."""
    await id_token_cached(cs, VALID)
    s = Session(cs)
    await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
    after = cs.mark()
    await octt_goes_offline(cs)
    await present(cs, VALID)
    await trio.sleep(0.3)
    await cs.control(cmd="ev_charge", evse=EVSE, power_w=EV_POWER_W)
    await trio.sleep(OCTT_OFFLINE_WAIT)
    csms_answers_transaction_event(cs, {"status": "Invalid"})
    reconnect_at = datetime.now(timezone.utc)
    await octt_accepts_reconnect(cs, "Step 2")
    return after, reconnect_at


async def test_TC_C_16_CS_authorization_through_cache_stop_tx_on_invalid_id_true(boot_station):
    """TC_C_16_CS Authorization through authorization cache - StopTxOnInvalidId = true.

    Before: AuthCacheCtrlr.Enabled, AuthCtrlr.LocalPreAuthorize, AuthCtrlr.LocalAuthorizeOffline,
    TxCtrlr.StopTxOnInvalidId true, MaxEnergyOnInvalidId 0, defaults for the start/stop points;
    IdTokenCached for valid_idtoken; EVConnectedPreSession. Step 1: offline, the cached idToken is
    presented and the EV draws energy (the tool's ChargingStateChanged/offline validation needs
    an energy transfer), the OCTT waits 5 s. Step 3/4: the OCTT answers Invalid to the
    TransactionEventRequest with the idToken; step 5: triggerReason Deauthorized; post scenario:
    the energy flow stops."""
    dm = tx_points(**CACHE_PRE_AUTHORIZE, **OFFLINE_SETTINGS, **{
        "AuthCtrlr.LocalAuthorizeOffline": True, "TxCtrlr.StopTxOnInvalidId": True,
        "TxCtrlr.MaxEnergyOnInvalidId": 0})
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            after, _ = await cached_token_offline_invalid(cs)
            index, _ = await wait_te(cs, after, "Step 5", lambda p: p.get("triggerReason") == "Deauthorized",
                                     "triggerReason Deauthorized")
            before = [p for _, p in cs.calls("TransactionEvent", after) if _ < index]
            for p in before:
                if p.get("triggerReason") == "Authorized":
                    check_te("Step 3 (the optional message with triggerReason Authorized)", p, token=VALID)
                    assert p.get("offline") is True, (
                        f"Step 3: the message with triggerReason Authorized must have offline True: "
                        f"{offline_of(p)}, {te_summary(p)}")
            changed = [p for p in before if p.get("triggerReason") == "ChargingStateChanged"]
            assert any(p.get("offline") is True for p in changed), (
                f"Step 3: no TransactionEventRequest with triggerReason ChargingStateChanged and offline True; "
                f"ChargingStateChanged ones: {[te_summary(p) + ', ' + offline_of(p) for p in changed]}; "
                f"all before the Deauthorized one: {[te_summary(p) for p in before]}")
            await energy_stops(cs, "Post scenario (energy flow stops on receiving status Invalid)")


async def test_TC_C_17_CS_authorization_through_cache_stop_tx_on_invalid_id_false(boot_station):
    """TC_C_17_CS Authorization through authorization cache - StopTxOnInvalidId = false.

    Before: AuthCacheCtrlr.Enabled, AuthCtrlr.LocalPreAuthorize, AuthCtrlr.OfflineTxForUnknownIdEnabled
    true, TxCtrlr.StopTxOnInvalidId false, MaxEnergyOnInvalidId 0; IdTokenCached for valid_idtoken;
    EVConnectedPreSession. Steps 1-2 as TC_C_16. Tool validations (listed under "Step 2", they
    are about the TransactionEventRequests of steps 3/5): a message with triggerReason Authorized,
    the valid idToken, offline True; a message with transactionInfo.chargingState SuspendedEVSE;
    no message with triggerReason SuspendedEVSE (step 5's text says "triggerReason SuspendedEVSE",
    which the tool validation forbids: the chargingState is what is waited for). Post scenario:
    the energy flow stops."""
    dm = tx_points(**CACHE_PRE_AUTHORIZE, **OFFLINE_SETTINGS, **{
        "AuthCtrlr.OfflineTxForUnknownIdEnabled": True, "TxCtrlr.StopTxOnInvalidId": False,
        "TxCtrlr.MaxEnergyOnInvalidId": 0})
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            after, _ = await cached_token_offline_invalid(cs)
            index, _ = await wait_te(
                cs, after, "Step 5", lambda p: (p.get("transactionInfo") or {}).get("chargingState") == "SuspendedEVSE",
                "transactionInfo.chargingState SuspendedEVSE")
            await trio.sleep(QUIET)
            sent = [p for _, p in cs.calls("TransactionEvent", after)]
            authorized = [p for p in sent if p.get("triggerReason") == "Authorized"]
            assert authorized, (f"Step 2/3: no TransactionEventRequest with triggerReason Authorized; the station "
                                f"sent {[te_summary(p) for p in sent]}")
            for p in authorized:
                check_te("Step 2/3 (triggerReason Authorized)", p, token=VALID)
                assert p.get("offline") is True, (
                    f"Step 2/3: the message with triggerReason Authorized must have offline True: {offline_of(p)}, "
                    f"{te_summary(p)}")
            bad = [p for p in sent if p.get("triggerReason") == "SuspendedEVSE"]
            assert not bad, f"Step 2: a message with triggerReason SuspendedEVSE: {[te_summary(p) for p in bad]}"
            await energy_stops(cs, "Post scenario (energy flow stops on receiving status Invalid)")


async def test_TC_C_21_CS_offline_authorization_through_local_list_accepted(boot_station):
    """TC_C_21_CS Offline authorization through local authorization list - Accepted.

    Before: LocalAuthListCtrlr.Enabled, AuthCtrlr.LocalPreAuthorize, LocalAuthorizeOffline true,
    OfflineTxForUnknownIdEnabled false (and the offline rig's retry settings); IdTokenLocalAuthList
    for valid_idtoken; StartOfflineTransaction (valid_idtoken). Main: the same idToken presented,
    unplug, drive out (after the reconnect of StartOfflineTransaction step 2). Step 1: the
    TransactionEventRequests before the one with triggerReason StopAuthorized have offline true;
    one has triggerReason StopAuthorized. The OCTT answers Accepted to those with an idToken.
    Step 3 ParkingBayUnoccupied: the bay was left by the manual action; its TransactionEventRequest
    only with ParkingBayOccupancy in TxStopPoint: not executed."""
    dm = tx_points(**LIST_PRE_AUTHORIZE, **OFFLINE_SETTINGS, **{
        "AuthCtrlr.LocalAuthorizeOffline": True, "AuthCtrlr.OfflineTxForUnknownIdEnabled": False})
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            await local_list(cs, [(VALID, {"status": "Accepted"})])
            csms_answers_transaction_event(cs, {"status": "Accepted"})
            csms_answers_authorize(cs, {"status": "Accepted"})
            after = cs.mark()
            await start_offline_transaction(cs, VALID)
            await trio.sleep(0.3)
            await present(cs, VALID)
            await trio.sleep(0.3)
            await cs.control(cmd="unplug", evse=EVSE, connector=1)
            await cs.control(cmd="occupancy", evse=EVSE, occupied=False)
            index, _ = await wait_te(cs, after, "Step 1", lambda p: p.get("triggerReason") == "StopAuthorized",
                                     "triggerReason StopAuthorized")
            before = [p for i, p in cs.calls("TransactionEvent", after) if i < index]
            assert before, "Step 1: no TransactionEventRequest (of the offline transaction) before the StopAuthorized one"
            bad = [p for p in before if p.get("offline") is not True]
            assert not bad, ("Step 1: the TransactionEventRequests before the StopAuthorized one must have offline "
                             f"true: {[te_summary(p) + ', ' + offline_of(p) for p in bad]}")


async def test_TC_C_26_CS_offline_authorization_unknown_id(boot_station):
    """TC_C_26_CS Offline Authorization - Unknown Id.

    Before: LocalAuthListCtrlr.Enabled (empty list: valid_idtoken is unknown),
    AuthCtrlr.LocalPreAuthorize, OfflineTxForUnknownIdEnabled true, LocalAuthorizeOffline true,
    MaxEnergyOnInvalidId 0, StopTxOnInvalidId false; StartOfflineTransaction (valid_idtoken).
    Step 1 (the OCTT answers Invalid to the one with the idToken): reading of "All Message(s):
    offline must be true": the queued messages (timestamp before the reconnect) have offline
    true; one of the messages of step 1 (up to the next manual action) has chargingState
    SuspendedEVSE. Then valid_idtoken presented again, unplug; step 3 triggerReason StopAuthorized."""
    dm = tx_points(**LIST_PRE_AUTHORIZE, **OFFLINE_SETTINGS, **{
        "AuthCtrlr.OfflineTxForUnknownIdEnabled": True, "AuthCtrlr.LocalAuthorizeOffline": True,
        "TxCtrlr.MaxEnergyOnInvalidId": 0, "TxCtrlr.StopTxOnInvalidId": False})
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            csms_answers_transaction_event(cs, {"status": "Invalid"})
            after = cs.mark()
            reconnect_at = await start_offline_transaction(cs, VALID)
            index, _ = await wait_te(
                cs, after, "Step 1",
                lambda p: (p.get("transactionInfo") or {}).get("chargingState") == "SuspendedEVSE",
                "transactionInfo.chargingState SuspendedEVSE")
            await trio.sleep(QUIET)
            step1 = [p for _, p in cs.calls("TransactionEvent", after)]
            queued = [p for p in step1 if ts(p["timestamp"]) < reconnect_at]
            assert queued, f"Step 1: no TransactionEventRequest of the offline transaction: {[te_summary(p) for p in step1]}"
            bad = [p for p in queued if p.get("offline") is not True]
            assert not bad, ("Step 1: the queued TransactionEventRequests must have offline true: "
                             f"{[te_summary(p) + ', ' + offline_of(p) for p in bad]}")
            mark3 = cs.mark()
            csms_answers_transaction_event(cs, {"status": "Accepted"})
            csms_answers_authorize(cs, {"status": "Accepted"})
            await present(cs, VALID)
            await trio.sleep(0.3)
            await cs.control(cmd="unplug", evse=EVSE, connector=1)
            await wait_te(cs, mark3, "Step 3", lambda p: p.get("triggerReason") == "StopAuthorized",
                          "triggerReason StopAuthorized")


async def test_TC_C_27_CS_online_authorization_through_local_list_accepted(boot_station):
    """TC_C_27_CS Online authorization through local authorization list - Accepted.

    Before: LocalAuthListCtrlr.Enabled, AuthCtrlr.LocalPreAuthorize true; valid_idtoken Accepted
    in the list. Step 1 (TxStartPoint PowerPathClosed, no EV yet): not executed; no
    AuthorizeRequest (the scenario has none). Steps 3-4; post scenario: energy is transferred."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=tx_points(**LIST_PRE_AUTHORIZE)) as cs:
            await local_list(cs, [(VALID, {"status": "Accepted"})])
            s = Session(cs)
            after = cs.mark()
            await s.authorized_local("Step 1 (valid idToken in the list presented)", expect_authorize=False)
            await trio.sleep(0.2)
            no_authorize(cs, after, "Step 1")
            await s.ev_connected_pre_session("Step 3 (EVConnectedPreSession)")
            await s.energy_transfer_started("Step 4 (EnergyTransferStarted)")
            no_authorize(cs, after, "Steps 1-4")
            await energy_flows(cs, "Post scenario")


async def test_TC_C_31_CS_online_authorization_through_local_list_invalid_and_accepted(boot_station):
    """TC_C_31_CS Online authorization through local authorization list - Invalid & Accepted.

    Before: LocalAuthListCtrlr.Enabled, AuthCtrlr.LocalPreAuthorize true,
    LocalAuthListCtrlr.DisablePostAuthorize false; invalid_idtoken Invalid in the list.
    Step 1 Authorized with the invalid idToken (AuthorizeRequest answered Accepted); steps 2-3;
    post scenario: energy is transferred."""
    dm = tx_points(**LIST_PRE_AUTHORIZE, **{"LocalAuthListCtrlr.DisablePostAuthorize": False})
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            await local_list(cs, [(INVALID, {"status": "Invalid"})])
            s = Session(cs, token=INVALID)
            await s.authorized_local("Step 1 (Authorized)")
            await s.ev_connected_pre_session("Step 2 (EVConnectedPreSession)")
            await s.energy_transfer_started("Step 3 (EnergyTransferStarted)")
            await energy_flows(cs, "Post scenario")


CACHE_AND_LIST = {**CACHE_PRE_AUTHORIZE, "LocalAuthListCtrlr.Enabled": True}


async def test_TC_C_33_CS_authorization_cache_update_on_authorize_response(boot_station):
    """TC_C_33_CS Store Authorization Data in the Authorization Cache - Update on AuthorizeResponse.

    Before: AuthCacheCtrlr.Enabled, AuthCtrlr.LocalPreAuthorize, LocalAuthListCtrlr.Enabled true;
    EVConnectedPreSession. Step 6 EVConnectedPostSession includes StopAuthorized (its
    prerequisite). Step 12: the idToken is now cached, so no AuthorizeRequest; the OCTT answers
    Invalid."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=tx_points(**CACHE_AND_LIST)) as cs:
            s = Session(cs)
            await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
            p = await s.authorized_local("Steps 1-3")
            assert p is not None, "Step 3: no TransactionEventRequest"
            check_te("Step 3", p, trigger="Authorized", token=VALID, event_type="Started")
            await s.energy_transfer_started("Step 5 (EnergyTransferStarted)")
            await s.stop_authorized_local("Step 6 (EVConnectedPostSession: StopAuthorized)")
            await s.ev_connected_post_session("Step 6 (EVConnectedPostSession)")
            await s.ev_disconnected("Step 7 (EVDisconnected)")
            await s.parking_bay_unoccupied("Step 8 (ParkingBayUnoccupied)")
            await s.parking_bay_occupied("Step 9 (ParkingBayOccupied)")
            await s.ev_connected_pre_session("Step 10 (EVConnectedPreSession)")
            after = cs.mark()
            p = await s.authorized_local("Step 12", info={"status": "Invalid"}, expect_authorize=False)
            assert p is not None, "Step 12: no TransactionEventRequest"
            check_te("Step 12", p, trigger="Authorized", token=VALID, event_type="Started")
            no_authorize(cs, after, "Step 12 (the idToken was cached on the AuthorizeResponse of step 2)")


async def test_TC_C_34_CS_authorization_cache_update_on_transaction_response(boot_station):
    """TC_C_34_CS Store Authorization Data in the Authorization Cache - Update on TransactionResponse.

    Before: AuthCacheCtrlr.Enabled, AuthCtrlr.LocalPreAuthorize, LocalAuthListCtrlr.Enabled true;
    IdTokenCached for valid_idtoken; EVConnectedPreSession. Step 1: cached, so no AuthorizeRequest;
    the OCTT answers Invalid (the TransactionEventRequests the station sends on that, e.g. a
    Deauthorized one, are answered and not checked: the scenario has no step for them). Step 7:
    the cache now says Invalid, so the AuthorizeRequest is sent; the OCTT answers Invalid."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=tx_points(**CACHE_AND_LIST)) as cs:
            await id_token_cached(cs, VALID)
            s = Session(cs)
            await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
            after = cs.mark()
            p = await s.authorized_local("Step 1", info={"status": "Invalid"}, expect_authorize=False)
            assert p is not None, "Step 1: no TransactionEventRequest"
            check_te("Step 1", p, trigger="Authorized", token=VALID, event_type="Started")
            no_authorize(cs, after, "Step 1 (valid_idtoken is cached, LocalPreAuthorize true)")
            await trio.sleep(QUIET)
            while cs.calls("TransactionEvent", s.cursor):
                await s.next_te("After step 2 (the station's reaction to the Invalid status)")
            s.authorized = False        # the OCTT answered Invalid
            await s.ev_disconnected("Step 3 (EVDisconnected)")
            await s.parking_bay_unoccupied("Step 4 (ParkingBayUnoccupied)")
            await s.parking_bay_occupied("Step 5 (ParkingBayOccupied)")
            await s.ev_connected_pre_session("Step 6 (EVConnectedPreSession)")
            csms_answers_authorize(cs, {"status": "Invalid"})
            after = cs.mark()
            await present(cs, VALID)
            index, req = await expect_call(cs, "Authorize", after=after,
                                           step="Step 7 (the cache was updated to Invalid by the TransactionEventResponse)")
            check_authorize("Step 7", req, VALID)
            await answered(cs, index)


async def group_started(cs, step1: str = "Step 1", *, stop: str = "EVConnected,Authorized") -> Session:
    """TC_C_40/41/43/44: EVConnectedPreSession, valid_idtoken presented (known locally, no
    AuthorizeRequest), step 1 (Started, answered Accepted + GroupId), step 3 EnergyTransferStarted."""
    s = Session(cs, stop=stop)
    await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
    after = cs.mark()
    p = await s.authorized_local(step1, info=GROUP_ACCEPTED, expect_authorize=False)
    assert p is not None, f"{step1}: no TransactionEventRequest"
    check_te(step1, p, trigger="Authorized", token=VALID, event_type="Started")
    no_authorize(cs, after, step1)
    await s.energy_transfer_started("Step 3 (EnergyTransferStarted)")
    return s


async def group_stopped_by_second_token(cs, s: Session, *, event_type: str | None) -> None:
    """TC_C_40/41 step 4-7: valid_idtoken2 (same GroupId, known locally) stops the transaction."""
    after = cs.mark()
    p = await s.stop_authorized_local("Step 4 (StopAuthorized with valid_idtoken2)", token=VALID2)
    check_te("Step 4", p, trigger="StopAuthorized", token=VALID2, event_type=event_type)
    no_authorize(cs, after, "Step 4 (valid_idtoken2 is known locally with the same GroupId)")
    await s.ev_connected_post_session("Step 5 (EVConnectedPostSession)")
    await s.ev_disconnected("Step 6 (EVDisconnected)")
    await s.parking_bay_unoccupied("Step 7 (ParkingBayUnoccupied)")


async def test_TC_C_40_CS_authorization_by_group_id_success_with_local_list(boot_station):
    """TC_C_40_CS Authorization by GroupId - Success with Local Authorization List.

    Before: LocalAuthListCtrlr.Enabled, AuthCtrlr.LocalPreAuthorize true; valid_idtoken and
    valid_idtoken2 Accepted in the list with groupIdToken GROUP-1; TxStopPoint EVConnected (step
    4's validation "eventType Updated" needs a TxStopPoint without Authorized);
    EVConnectedPreSession. Step 4: valid_idtoken2 (the presented one) is checked."""
    dm = tx_points(stop="EVConnected", **LIST_PRE_AUTHORIZE)
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            await local_list(cs, [(VALID, GROUP_ACCEPTED), (VALID2, GROUP_ACCEPTED)])
            s = await group_started(cs, stop="EVConnected")
            await group_stopped_by_second_token(cs, s, event_type="Updated")


async def test_TC_C_41_CS_authorization_by_group_id_success_with_cache(boot_station):
    """TC_C_41_CS Authorization by GroupId - Success with Authorization Cache.

    Before: AuthCacheCtrlr.Enabled, AuthCtrlr.LocalPreAuthorize true; IdTokenCached for
    valid_idtoken and valid_idtoken2, both answered Accepted with groupIdToken GROUP-1;
    EVConnectedPreSession (defaults). Step 4: valid_idtoken2 (the presented one) is checked."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=tx_points(**CACHE_PRE_AUTHORIZE)) as cs:
            await id_token_cached(cs, VALID, info=GROUP_ACCEPTED)
            await id_token_cached(cs, VALID2, info=GROUP_ACCEPTED)
            s = await group_started(cs)
            await group_stopped_by_second_token(cs, s, event_type=None)


async def group_invalid_not_stopped(cs, s: Session) -> None:
    """TC_C_43/44 steps 4-5 and the OCTT's wait: invalid_idtoken presented, AuthorizeRequest
    answered Invalid + GroupId, no TransactionEventRequest."""
    csms_answers_authorize(cs, GROUP_INVALID)
    after = cs.mark()
    await trio.sleep(0.3)
    await present(cs, INVALID)
    index, req = await expect_call(cs, "Authorize", after=after, step="Step 4")
    check_authorize("Step 4", req, INVALID)
    await answered(cs, index)
    await s.no_te("After step 5 (the OCTT waits: no TransactionEventRequest)")


async def test_TC_C_43_CS_authorization_by_group_id_invalid_with_local_list(boot_station):
    """TC_C_43_CS Authorization by GroupId - Invalid status with Local Authorization List.

    Before: LocalAuthListCtrlr.Enabled, AuthCtrlr.LocalPreAuthorize true; valid_idtoken Accepted
    and invalid_idtoken Invalid in the list, both with groupIdToken GROUP-1; EVConnectedPreSession
    (defaults). Step 4: the presented invalid_idtoken is checked. The tool validation of "Step 6"
    (StopAuthorized) has no step in the scenario, which ends with the OCTT checking that NO
    TransactionEventRequest comes: that is what is checked."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=tx_points(**LIST_PRE_AUTHORIZE)) as cs:
            await local_list(cs, [(VALID, GROUP_ACCEPTED), (INVALID, GROUP_INVALID)])
            s = await group_started(cs)
            await group_invalid_not_stopped(cs, s)


async def test_TC_C_44_CS_authorization_by_group_id_invalid_with_cache(boot_station):
    """TC_C_44_CS Authorization by GroupId - Invalid status with Authorization Cache.

    Before: AuthCacheCtrlr.Enabled, AuthCtrlr.LocalPreAuthorize true, AuthCacheCtrlr.
    DisablePostAuthorize false; IdTokenCached for valid_idtoken (Accepted + GROUP-1) and for
    invalid_idtoken (Invalid + GROUP-1); EVConnectedPreSession (defaults)."""
    dm = tx_points(**CACHE_PRE_AUTHORIZE, **{"AuthCacheCtrlr.DisablePostAuthorize": False})
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=dm) as cs:
            await id_token_cached(cs, VALID, info=GROUP_ACCEPTED)
            await id_token_cached(cs, INVALID, "Invalid", info=GROUP_INVALID)
            s = await group_started(cs)
            await group_invalid_not_stopped(cs, s)
