"""OCA certification test cases TC_F_05/06/07/10 (F05 Remote unlock Connector) and TC_C_15/18
(authorization cache, MaxEnergyOnInvalidId > 0), Charging Station side.

The rig is conftest.py's; the reusable states (`Session`) and the helpers are those of
test_efj_transactions.py, the cache preparation (`id_token_cached`) and the offline helpers those
of test_c_authorization_tx.py / test_cd_authorization.py. Where the station differs from a step,
the test fails with a message naming the step.

Readings and chosen configured values:
- Our station has a detachable cable (HFS-1: a socket with a connector lock). <Configured evseId>
  1, <Configured connectorId> 1. The Charging State "No cable connected at <Configured
  Connector>" of TC_F_07 is the idle station (checked on the sim: the connector is not plugged);
  TC_F_06 ("Charging State: N/a") likewise starts from the idle station.
- TC_F_05 "Transaction is ongoing ... State is EnergyTransferStarted": the reusable state with
  the default TxStartPoint/TxStopPoint.
- TC_C_15 "MaxEnergyOnInvalidId is 10.000": read as 10 (Wh) -- the same table writes decimals
  with a point ("OfflineThreshold is ... + 60.0") and the variable is an integer. (Read as
  10000 Wh, the post scenario validation could not be reached within the test's 20 s bound: the
  sim's EV draws at most 1 MW, i.e. 36 s for 10 kWh.)
- <Configured Transaction Duration> (the OCTT's wait while offline, TC_C_15/18 step 1):
  OFFLINE_TD s. In step 1 the cached idToken is presented and the EV draws EV_POWER_W (the
  tool's "ChargingStateChanged, offline True" validation needs an energy transfer while
  offline), as in TC_C_16/C_17.
- TC_C_15 post scenario "Energy transfer is started but only MaxEnergyOnInvalidId amount of
  energy is delivered": the energy the sim's meter counted from the transaction's start to the
  moment the energy flow stopped is at least MaxEnergyOnInvalidId (the energy was not stopped
  early) and at most MaxEnergyOnInvalidId + what the EV draws in one meter period of the
  station (1 s: the station can only see the limit at a meter reading).
- TC_C_15 "No message with triggerReason Deauthorized or triggerReason ChargingStateChanged
  and chargingState SuspendedEVSE" is checked on every TransactionEventRequest from step 1
  until the energy flow stopped (plus QUIET s).
"""
from __future__ import annotations

import trio

from devtools.dev_csms import CallError
from tests.conformance.conftest import id_token_cached
from tests.conformance.test_c_authorization_tx import (
    CACHE_PRE_AUTHORIZE,
    offline_of,
    wait_te,
)
from tests.conformance.test_cd_authorization import (
    OFFLINE_SETTINGS,
    octt_accepts_reconnect,
    octt_goes_offline,
)
from tests.conformance.test_efj_transactions import (
    CONNECTOR,
    EV_POWER_W,
    EVSE,
    QUIET,
    VALID,
    Session,
    check_te,
    csms_answers_transaction_event,
    fail,
    present,
    te_summary,
    tx_points,
)

TEST_TIMEOUT = 20           # s, per test
OFFLINE_TD = 1.0            # s, <Configured Transaction Duration> (TC_C_15/C_18 step 1)
METER_PERIOD = 1.0          # s, the station's meter reading period (bootstrap.runtime)
C15_MAX_ENERGY_WH = 10      # TC_C_15 "MaxEnergyOnInvalidId is 10.000"
C18_MAX_ENERGY_WH = 500     # TC_C_18 "MaxEnergyOnInvalidId is 500"
ENERGY_STOP_WAIT = 10.0     # s, the wait for the energy flow to stop


# --------------------------------------------------------------------------- F05 helpers

async def unlock(cs, step: str, evse: int = EVSE, connector: int = CONNECTOR) -> dict:
    """Step 1: the OCTT sends UnlockConnectorRequest; step 2: the station's answer."""
    try:
        return await cs.call("UnlockConnector", {"evseId": evse, "connectorId": connector})
    except CallError as exc:
        fail(f"{step}: the station answered UnlockConnectorRequest(evseId {evse}, connectorId {connector}) "
             f"with a CALLERROR {exc.code}: {exc.description}")


def check_unlock(step: str, res: dict, status: str, context: str = "") -> None:
    assert res.get("status") == status, (
        f"{step}: UnlockConnectorResponse.status {res.get('status')!r}, the test case expects {status}"
        f"{context}: {res}")


async def evse_view(cs, evse: int = EVSE) -> dict:
    return next(e for e in (await cs.control(cmd="state"))["evses"] if e["evse"] == evse)


# --------------------------------------------------------------------------- F05 tests

async def test_TC_F_05_CS_remote_unlock_connector_with_ongoing_transaction(boot_station):
    """TC_F_05_CS Remote unlock Connector - With ongoing transaction.

    Before: transaction ongoing on EVSE 1 connector 1, State EnergyTransferStarted (defaults).
    Step 2: status OngoingAuthorizedTransaction."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            s = Session(cs)
            await s.energy_transfer_started("Before (EnergyTransferStarted)")
            assert s.started, f"Before (Charging State): no transaction is ongoing: {s.events}"
            res = await unlock(cs, "Step 2")
            check_unlock("Step 2", res, "OngoingAuthorizedTransaction",
                         f" (transaction {s.tx_id} is ongoing on EVSE {EVSE})")
            view = await evse_view(cs)
            assert view["power_w"] > 0, (
                f"Step 2: the UnlockConnectorRequest must be ignored, yet the energy transfer stopped: {view}")


async def test_TC_F_06_CS_remote_unlock_connector_without_transaction_accepted(boot_station):
    """TC_F_06_CS Remote unlock Connector - Without ongoing transaction - Accepted.

    Before: N/a (the idle station). Step 2: status Unlocked."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            res = await unlock(cs, "Step 2")
            check_unlock("Step 2", res, "Unlocked", " (no transaction on the EVSE)")


async def test_TC_F_07_CS_remote_unlock_connector_without_transaction_no_cable(boot_station):
    """TC_F_07_CS Remote unlock Connector - Without ongoing transaction - No cable connected.

    Before: no cable connected at EVSE 1 connector 1. Step 2: status Unlocked."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            view = await evse_view(cs)
            plugged = [c for c in view["connectors"] if c["connector"] == CONNECTOR and c["plugged"]]
            assert not plugged, f"Before (Charging State): a cable is connected at connector {CONNECTOR}: {view}"
            res = await unlock(cs, "Step 2")
            check_unlock("Step 2", res, "Unlocked", " (no transaction, no cable connected)")


async def test_TC_F_10_CS_remote_unlock_connector_unknown_connector(boot_station):
    """TC_F_10_CS Remote unlock Connector - Without ongoing transaction - UnknownConnector.

    Step 1: evseId 1, connectorId 999. Step 2: status UnknownConnector."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            res = await unlock(cs, "Step 2", EVSE, 999)
            check_unlock("Step 2", res, "UnknownConnector", f" (EVSE {EVSE} has no connector 999)")


# --------------------------------------------------------------------------- C12 helpers

def invalid_id_settings(stop_tx: bool, max_energy_wh: int) -> dict:
    """Before (Configuration State) of TC_C_15/C_18."""
    return tx_points(**CACHE_PRE_AUTHORIZE, **OFFLINE_SETTINGS, **{
        "AuthCtrlr.LocalAuthorizeOffline": True, "AuthCtrlr.OfflineTxForUnknownIdEnabled": True,
        "TxCtrlr.StopTxOnInvalidId": stop_tx, "TxCtrlr.MaxEnergyOnInvalidId": max_energy_wh})


async def cached_offline_then_invalid(cs) -> tuple[int, float]:
    """Before (IdTokenCached, EVConnectedPreSession), step 1 (the OCTT closes the connection and
    refuses reconnects; the cached valid idToken is presented, the EV draws energy, the OCTT waits
    OFFLINE_TD s) and step 2 (it accepts the reconnect); the OCTT answers the
    TransactionEventRequests with an idToken with idTokenInfo.status Invalid (step 4).
    Returns (index in csms.received where step 1 began, the EVSE's meter in Wh before step 1)."""
    await id_token_cached(cs, VALID)
    s = Session(cs)
    await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
    base_wh = (await evse_view(cs))["energy_wh"]
    after = cs.mark()
    await octt_goes_offline(cs)                                      # step 1
    await present(cs, VALID)                                         # Manual Action
    await trio.sleep(0.3)
    await cs.control(cmd="ev_charge", evse=EVSE, power_w=EV_POWER_W)
    await trio.sleep(OFFLINE_TD)                                     # <Configured Transaction Duration>
    csms_answers_transaction_event(cs, {"status": "Invalid"})        # step 4
    await octt_accepts_reconnect(cs, "Step 2")                       # step 2
    return after, base_wh


def check_step3(cs, after: int, upto: int | None = None) -> list[dict]:
    """Step 3 tool validations common to TC_C_15/C_18: the optional message with triggerReason
    Authorized (valid idToken, offline True); a message with triggerReason ChargingStateChanged
    and offline True. Returns the TransactionEventRequests looked at."""
    sent = [p for i, p in cs.calls("TransactionEvent", after) if upto is None or i < upto]
    for p in sent:
        if p.get("triggerReason") == "Authorized":
            check_te("Step 3 (the optional message with triggerReason Authorized)", p, token=VALID)
            assert p.get("offline") is True, (
                f"Step 3: the message with triggerReason Authorized must have offline True: "
                f"{offline_of(p)}, {te_summary(p)}")
    changed = [p for p in sent if p.get("triggerReason") == "ChargingStateChanged"]
    assert any(p.get("offline") is True for p in changed), (
        f"Step 3: no TransactionEventRequest with triggerReason ChargingStateChanged and offline True; "
        f"ChargingStateChanged ones: {[te_summary(p) + ', ' + offline_of(p) for p in changed]}; "
        f"all: {[te_summary(p) for p in sent]}")
    return sent


async def wait_energy_stopped(cs, step: str, timeout: float) -> dict:
    """Until the EV draws no power on EVSE 1; the sim's view then."""
    with trio.move_on_after(timeout):
        while (view := await evse_view(cs))["power_w"] > 0:
            await trio.sleep(0.02)
        return view
    fail(f"{step}: the energy flow did not stop within {timeout} s: {await evse_view(cs)}")


# --------------------------------------------------------------------------- C12 tests

async def test_TC_C_15_CS_authorization_cache_stop_tx_false_max_energy_above_zero(boot_station):
    """TC_C_15_CS Authorization through authorization cache - StopTxOnInvalidId = false,
    MaxEnergyOnInvalidId > 0.

    Before: AuthCacheCtrlr.Enabled, AuthCtrlr.LocalPreAuthorize, AuthCtrlr.LocalAuthorizeOffline,
    AuthCtrlr.OfflineTxForUnknownIdEnabled true; TxCtrlr.StopTxOnInvalidId false,
    MaxEnergyOnInvalidId 10; the offline rig's retry settings; IdTokenCached for valid_idtoken;
    EVConnectedPreSession. Steps 1-4; step 3 validations; post scenario: energy transfer started,
    only MaxEnergyOnInvalidId delivered."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=invalid_id_settings(False, C15_MAX_ENERGY_WH)) as cs:
            after, base_wh = await cached_offline_then_invalid(cs)
            # Step 3/4: the queued messages; the one with the idToken is answered Invalid.
            await wait_te(cs, after, "Step 3", lambda p: p.get("triggerReason") == "ChargingStateChanged"
                          and p.get("offline") is True, "triggerReason ChargingStateChanged and offline True")
            await wait_te(cs, after, "Step 3/4", lambda p: "idToken" in p,
                          "an idToken (the one the OCTT answers with idTokenInfo.status Invalid)")
            view = await evse_view(cs)
            assert view["energy_wh"] - base_wh > 0, (
                f"Post scenario: the energy transfer is not started (no energy delivered): {view}")
            view = await wait_energy_stopped(
                cs, f"Post scenario (only MaxEnergyOnInvalidId = {C15_MAX_ENERGY_WH} Wh is delivered)",
                ENERGY_STOP_WAIT)
            await trio.sleep(QUIET)
            sent = check_step3(cs, after)
            bad = [p for p in sent if p.get("triggerReason") == "Deauthorized"
                   or (p.get("triggerReason") == "ChargingStateChanged"
                       and (p.get("transactionInfo") or {}).get("chargingState") == "SuspendedEVSE")]
            assert not bad, (
                f"Step 3: no message with triggerReason Deauthorized, or with triggerReason ChargingStateChanged "
                f"and chargingState SuspendedEVSE, is allowed; the station sent {[te_summary(p) for p in bad]} "
                f"(all: {[te_summary(p) for p in sent]})")
            delivered = view["energy_wh"] - base_wh
            tolerance = EV_POWER_W * METER_PERIOD / 3600
            assert C15_MAX_ENERGY_WH - 0.01 <= delivered <= C15_MAX_ENERGY_WH + tolerance, (
                f"Post scenario: the transaction delivered {delivered:.2f} Wh before the energy flow stopped; "
                f"expected MaxEnergyOnInvalidId = {C15_MAX_ENERGY_WH} Wh (up to {tolerance:.2f} Wh more: one "
                f"meter period): {view}; messages: {[te_summary(p) for p in sent]}")


async def test_TC_C_18_CS_authorization_cache_stop_tx_true_max_energy_above_zero(boot_station):
    """TC_C_18_CS Authorization through authorization cache - StopTxOnInvalidId = true,
    MaxEnergyOnInvalidId > 0.

    Before: as TC_C_15 but StopTxOnInvalidId true, MaxEnergyOnInvalidId 500. Step 3 validations;
    step 5: triggerReason Deauthorized, offline False; post scenario: the energy flow stops on
    receiving status Invalid."""
    with trio.fail_after(TEST_TIMEOUT):
        async with boot_station(device_model=invalid_id_settings(True, C18_MAX_ENERGY_WH)) as cs:
            after, _ = await cached_offline_then_invalid(cs)
            index, p5 = await wait_te(cs, after, "Step 5", lambda p: p.get("triggerReason") == "Deauthorized",
                                      "triggerReason Deauthorized")
            check_step3(cs, after, upto=index)
            assert p5.get("offline", False) is False, (      # omitted: the schema's default false
                f"Step 5: the message with triggerReason Deauthorized must have offline False: {offline_of(p5)}, "
                f"{te_summary(p5)}")
            await wait_energy_stopped(cs, "Post scenario (energy flow stops on receiving status Invalid)",
                                      ENERGY_STOP_WAIT / 3)
