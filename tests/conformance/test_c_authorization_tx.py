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

import trio

from tests.conformance.test_efj_transactions import (
    EVSE,
    INVALID,
    TIMEOUT,
    VALID,
    VALID2,
    Session,
    answered,
    check_authorize,
    check_te,
    csms_answers_authorize,
    csms_answers_transaction_event,
    expect_call,
    id_token,
    present,
    tx_points,
)

BLOCKED = id_token("0B10C4ED")
EXPIRED = id_token("0E4B1DED")
MASTER_PASS = id_token("0FA57E55")
GROUP = {"idToken": "GROUP-1", "type": "Central"}
MASTER_PASS_GROUP = {"idToken": "MASTERPASS", "type": "Central"}
CACHE_PRE_AUTHORIZE = {"AuthCacheCtrlr.Enabled": True, "AuthCtrlr.LocalPreAuthorize": True}


async def cache_storage(cs) -> int:
    res = await cs.call("GetVariables", {"getVariableData": [
        {"component": {"name": "AuthCacheCtrlr"}, "variable": {"name": "Storage"}}]})
    r = res["getVariableResult"][0]
    assert r["attributeStatus"] == "Accepted", f"AuthCacheCtrlr.Storage: {r}"
    return int(r["attributeValue"])


async def id_token_cached(cs, token: dict, status: str = "Accepted") -> None:
    what = f"Before (Memory State IdTokenCached for {token['idToken']})"
    if status == "Accepted":
        s = Session(cs, token=token)
        await s.authorized_local(f"{what}, Authorized")
        await s.ev_connected_pre_session(f"{what}, EVConnectedPreSession")
        await s.stop_authorized_local(f"{what}, StopAuthorized")
        await s.ev_connected_post_session(f"{what}, EVConnectedPostSession")
        await s.ev_disconnected(f"{what}, EVDisconnected")
    else:
        csms_answers_authorize(cs, {"status": status})
        after = cs.mark()
        await present(cs, token)
        index, req = await expect_call(cs, "Authorize", after=after, step=f"{what}, Authorized step 1")
        check_authorize(f"{what}, Authorized step 1", req, token)
        await answered(cs, index)
    assert await cache_storage(cs) > 0, f"{what}: AuthCacheCtrlr.Storage is 0: nothing was cached"


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
