"""OCA certification test cases of functional blocks C (authorization) and D (Local
Authorization List management), Charging Station side.

One test per test case of OCPP 2.0.1 Edition 3 Part 6 ("Test case Id TC_C_nn_CS",
"TC_D_nn_CS"): the steps are followed as written and every tool validation is asserted;
the station is the real one, the OCTT is played by the DevCsms (see conftest.py, which
also validates every frame the station sent against the official JSON schemas when a
test ends). The EV driver is played through the simulated hardware's control socket:
"present idToken" is the `token` command at EVSE 1's reader, "connect the EV" `plug`,
"drive into the parking bay" `occupancy`.

The station has no transactions yet (TransactionEvent is the next issue), so:
- only the test cases whose steps need no transaction are here. Left out: TC_C_04,
  C_08, C_12..C_18, C_21, C_26, C_27, C_31, C_33, C_34, C_39..C_44, C_47..C_49 (a
  TransactionEvent or an energy transfer is a step or a post-scenario validation);
  TC_C_05 (prerequisite: a cable lock that prevents plugging in before authorization;
  the simulator has none); TC_C_50..C_55 (ISO 15118).
- TxCtrlr.TxStartPoint is PowerPathClosed (the station's default, set explicitly where a
  step depends on it): the TransactionEvent steps that only apply "when TxStartPoint
  contains Authorized / EVConnected / ParkingBayOccupancy" are then not executed, as the
  test cases say.
- TC_C_32, C_37 and C_46 run up to their first step that needs a transaction (named
  in the docstring); the rest of those test cases waits for the transactions issue.
- Reusable states: the TransactionEvent steps are left out (they depend on TxStartPoint
  or on a transaction) and ParkingBayOccupied, which is optional, is not executed (no
  parking bay sensor is assumed) unless a main step asks for it. The Memory State
  IdTokenCached for an Accepted token is Authorized, EVConnectedPreSession, and then -
  as ParkingBayUnoccupied -> EVDisconnected -> EVConnectedPostSession -> StopAuthorized
  chain back - the same idToken presented again (StopAuthorized, Main A: it ends the
  authorization), then EVDisconnected (unplug); EnergyTransferStarted is left out.
- Preparations that put a token in the Authorization Cache end with a GetVariables of
  AuthCacheCtrlr.Storage (the bytes the cache uses): its answer comes after the station
  took in the AuthorizeResponse, and a value > 0 shows the token was stored.

Chosen configured values (the test cases leave them to the OCTT's configuration):
- valid_idtoken 04A2B3C4 / ISO14443, valid_idtoken2 04D5E6F7 / ISO14443, invalid
  0BAD0001, blocked 0B10C4ED, expired 0E4B1DED, masterPass idToken 0FA57E55 (all
  ISO14443); MasterPassGroupId MASTERPASS (the groupIdToken sent is of type Central);
- versionNumber 5 (> 1 for TC_D_06); Transaction Duration 2 s; RetryBackOffWaitMinimum
  duration 1 s; the wait after which the OCTT ends a test case (its <Configured message
  timeout>) and the wait for a message that must NOT come: QUIET s.
Where the station differs from a step, the test fails with a message naming the step.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio

from devtools.dev_csms import CallError
from tests.conformance.conftest import expect_call, id_token_cached, show

TIMEOUT = 10            # s, per test
CALL_WAIT = 3           # s, for a message the station must send
QUIET = 0.5             # s, the OCTT's wait for a message that must NOT come / before ending a test case
SECURITY_EVENT_WAIT = 1.0   # s after the boot, for the SecurityEventNotification of the Booted state
TRANSACTION_DURATION = 2    # s, <Configured Transaction Duration> (also AuthCacheCtrlr.LifeTime of TC_C_46)
RETRY_BACKOFF_WAIT_MINIMUM = 1   # s, <Configured RetryBackOffWaitMinimum_duration>
EVSE, CONNECTOR = 1, 1

VERSION = 5             # <Configured versionNumber>


def id_token(value: str, kind: str = "ISO14443") -> dict:
    return {"idToken": value, "type": kind}


VALID = id_token("04A2B3C4")
VALID2 = id_token("04D5E6F7")
INVALID = id_token("0BAD0001")
BLOCKED = id_token("0B10C4ED")
EXPIRED = id_token("0E4B1DED")
MASTER_PASS = id_token("0FA57E55")
MASTER_PASS_GROUP_ID = "MASTERPASS"

LOCAL_LIST = {"LocalAuthListCtrlr.Enabled": True}
TX_START_POWER_PATH = {"TxCtrlr.TxStartPoint": "PowerPathClosed"}
# "The OCTT closes the WebSocket connection AND does not accept a reconnect" (TC_C_22..25):
# the station comes back RETRY_BACKOFF_WAIT_MINIMUM s after the OCTT accepts it again
# (RetryBackOffRepeatTimes 0: no doubling, a value the test cases leave open).
OFFLINE_SETTINGS = {
    "OCPPCommCtrlr.OfflineThreshold": RETRY_BACKOFF_WAIT_MINIMUM + 60,
    "OCPPCommCtrlr.RetryBackOffWaitMinimum": RETRY_BACKOFF_WAIT_MINIMUM,
    "OCPPCommCtrlr.RetryBackOffRandomRange": 0,
    "OCPPCommCtrlr.RetryBackOffRepeatTimes": 0,
}


# --------------------------------------------------------------------------- helpers

def fail(message: str) -> None:
    pytest.fail(message, pytrace=False)


def expect_no_call(cs, actions: tuple[str, ...], *, after: int, step: str,
                   where: Callable[[dict], bool] | None = None) -> None:
    sent = [(a, p) for a in actions for _, p in cs.calls(a, after) if where is None or where(p)]
    assert not sent, f"{step}: the station sent {', '.join(f'{a}Request {p}' for a, p in sent)}"


async def state(cs) -> dict:
    return await cs.control(cmd="state")


async def evse_view(cs, evse: int = EVSE) -> dict:
    view = next(e for e in (await state(cs))["evses"] if e["evse"] == evse)
    assert "authorized" in view, f"the sim state does not show the station's 'authorized' for EVSE {evse}: {view}"
    return view


async def wait_authorized(cs, token: dict | None, step: str, timeout: float = CALL_WAIT) -> None:
    """Until the station says EVSE 1 is authorized for `token` (None: for nobody)."""
    want = None if token is None else token["idToken"]
    with trio.move_on_after(timeout):
        while (got := (await evse_view(cs)).get("authorized")) != want:
            await trio.sleep(0.01)
        return
    fail(f"{step}: EVSE {EVSE} is authorized for {got!r} after {timeout} s, expected {want!r}")


async def assert_not_authorized(cs, step: str) -> None:
    got = (await evse_view(cs)).get("authorized")
    assert got is None, f"{step}: authorization is not refused: the station authorized {got!r} on EVSE {EVSE}"


async def present(cs, token: dict, evse: int = EVSE) -> None:
    """Manual Action: Present idToken (at the reader of `evse`)."""
    await cs.control(cmd="token", id_token=token["idToken"], type=token["type"], evse=evse)


def csms_answers_authorize(cs, id_token_info: dict) -> None:
    """The OCTT's AuthorizeResponse to the next AuthorizeRequests."""
    cs.csms.handlers["Authorize"] = lambda _sid, _payload: {"idTokenInfo": id_token_info}


async def answered(cs, index: int) -> None:
    """Until the DevCsms has sent its answer to the CALL at received[index]."""
    await cs.wait_answered(index)


async def present_expect_authorize(cs, token: dict, answer: dict, step: str) -> int:
    """Present `token`; the station sends an AuthorizeRequest for it (step `step`: its tool
    validations), the OCTT responds with idTokenInfo `answer`. Returns the mark before."""
    csms_answers_authorize(cs, answer)
    after = cs.mark()
    await present(cs, token)
    index, req = await expect_call(cs, "Authorize", after=after, step=step)
    got = req.get("idToken") or {}
    assert got.get("idToken") == token["idToken"], (
        f"{step}: AuthorizeRequest.idToken.idToken {got.get('idToken')!r}, expected {token['idToken']!r}")
    assert got.get("type") == token["type"], (
        f"{step}: AuthorizeRequest.idToken.type {got.get('type')!r}, expected {token['type']!r}")
    await answered(cs, index)
    return after


async def connector_reported(cs, after: int, status: str, step: str, evse: int = EVSE,
                             connector: int = CONNECTOR) -> None:
    """StatusNotificationRequest + NotifyEventRequest(Connector.AvailabilityState) for the
    connector, with the tool validations of EVConnectedPreSession / EVDisconnected / Booted."""
    _, sn = await expect_call(cs, "StatusNotification", after=after, step=step,
                              where=lambda p: (p.get("evseId"), p.get("connectorId")) == (evse, connector))
    assert sn.get("connectorStatus") == status, (
        f"{step}: StatusNotificationRequest.connectorStatus {sn.get('connectorStatus')!r}, expected {status}: {sn}")

    def for_connector(p: dict) -> bool:
        data = p.get("eventData") or [{}]
        comp = data[0].get("component") or {}
        return comp.get("name") == "Connector" and comp.get("evse") == {"id": evse, "connectorId": connector}

    _, ne = await expect_call(cs, "NotifyEvent", after=after, step=step, where=for_connector)
    d = ne["eventData"][0]
    assert d.get("trigger") == "Delta", f"{step}: NotifyEventRequest eventData[0].trigger {d.get('trigger')!r}: {ne}"
    assert d.get("actualValue") == status, (
        f"{step}: NotifyEventRequest eventData[0].actualValue {d.get('actualValue')!r}, expected {status}: {ne}")
    assert (d.get("variable") or {}).get("name") == "AvailabilityState", f"{step}: NotifyEventRequest {ne}"


async def ev_connected_pre_session(cs, step: str = "Reusable State EVConnectedPreSession") -> None:
    """Manual Action: Connect the EV and EVSE; step 1's tool validations (Occupied)."""
    after = cs.mark()
    await cs.control(cmd="plug", evse=EVSE, connector=CONNECTOR)
    await connector_reported(cs, after, "Occupied", step)


async def ev_disconnected(cs, step: str = "Reusable State EVDisconnected") -> None:
    """Manual Action: Disconnect the EV and EVSE; step 1's tool validations (Available)."""
    after = cs.mark()
    await cs.control(cmd="unplug", evse=EVSE, connector=CONNECTOR)
    await connector_reported(cs, after, "Available", step)


async def booted(cs, problems: list[str], step: str) -> None:
    """Reusable State Booted: power cycle (cs.restart: stop, start on the same SQLite
    file) and its tool validations. A missing SecurityEventNotification (step 7) is
    collected in `problems`, so the rest of the test case still runs."""
    after = cs.mark()
    await cs.restart()
    for evse, connector in cs.connectors:
        assert evse != 0 and connector != 0
        await connector_reported(cs, after, "Available", f"{step} (Reusable State Booted, step 5)", evse, connector)
    try:
        _, sec = await cs.next_call("SecurityEventNotification", after=after, timeout=SECURITY_EVENT_WAIT)
    except trio.TooSlowError:
        problems.append(f"{step} (Reusable State Booted, step 7): the station sent no SecurityEventNotification"
                        f"Request (type StartupOfTheDevice or ResetOrReboot) within {SECURITY_EVENT_WAIT} s of "
                        f"booting (power cycle)")
        return
    if sec.get("type") not in ("StartupOfTheDevice", "ResetOrReboot"):
        problems.append(f"{step} (Reusable State Booted, step 7): SecurityEventNotificationRequest.type "
                        f"{sec.get('type')!r}, expected StartupOfTheDevice or ResetOrReboot")


async def id_token_local_auth_list(cs, token: dict, status: str = "Accepted", version: int = VERSION) -> None:
    """Memory State IdTokenLocalAuthList: a Full SendLocalList with `token` (`status`)."""
    res = await send_local_list(cs, "Full", version, [authorization_data(token, status)],
                                step=f"Before (Memory State IdTokenLocalAuthList for {show(token)}), step 2")
    assert res.get("status") == "Accepted", (
        f"Before (Memory State IdTokenLocalAuthList for {show(token)}), step 2: SendLocalListResponse {res}")


def authorization_data(token: dict, status: str | None) -> dict:
    data: dict[str, Any] = {"idToken": token}
    if status is not None:
        data["idTokenInfo"] = {"status": status}
    return data


async def send_local_list(cs, update_type: str, version: int, entries: list[dict] | None, *, step: str) -> dict:
    """SendLocalListRequest; `entries` None or empty: localAuthorizationList omitted (<Empty>:
    the schema has minItems 1)."""
    payload: dict[str, Any] = {"versionNumber": version, "updateType": update_type}
    if entries:
        payload["localAuthorizationList"] = entries
    try:
        return await cs.call("SendLocalList", payload)
    except CallError as exc:
        fail(f"{step}: the station answered SendLocalListRequest with a CALLERROR {exc.code}: {exc.description}")


async def get_local_list_version(cs, step: str) -> Any:
    try:
        res = await cs.call("GetLocalListVersion", {})
    except CallError as exc:
        fail(f"{step}: the station answered GetLocalListVersionRequest with a CALLERROR {exc.code}: {exc.description}")
    return res.get("versionNumber")


async def clear_cache(cs, step: str) -> dict:
    try:
        return await cs.call("ClearCache", {})
    except CallError as exc:
        fail(f"{step}: the station answered ClearCacheRequest with a CALLERROR {exc.code}: {exc.description}")


async def octt_goes_offline(cs) -> None:
    """The OCTT closes the WebSocket connection AND does not accept a reconnect (its
    reconnect attempts are refused with 401)."""
    cs.csms.basic_auth = {cs.station_id: "not-the-station-password"}
    await cs.csms.disconnect(cs.station_id)
    with trio.move_on_after(CALL_WAIT):
        while (await state(cs))["csms_connected"]:
            await trio.sleep(0.01)
        return
    fail(f"the station still says it is connected {CALL_WAIT} s after the OCTT closed the connection")


async def octt_accepts_reconnect(cs, step: str) -> None:
    cs.csms.basic_auth = None
    timeout = RETRY_BACKOFF_WAIT_MINIMUM + CALL_WAIT
    try:
        await cs.csms.wait_connected(cs.station_id, timeout=timeout)
    except trio.TooSlowError:
        fail(f"{step}: the station did not reconnect within {timeout} s of the OCTT accepting it again")
    with trio.move_on_after(CALL_WAIT):
        while not (await state(cs))["csms_connected"]:
            await trio.sleep(0.01)
        return
    fail(f"{step}: the station does not say it is connected {CALL_WAIT} s after reconnecting")


# =========================================================================== D: Local Authorization List

async def test_TC_D_01_CS_send_local_authorization_list_full(boot_station):
    """TC_D_01_CS Send Local Authorization List - Full.

    Before: LocalAuthListCtrlr.Enabled true. versionNumber 5; the entry gets idTokenInfo
    status Accepted (a valid idToken; an entry without idTokenInfo would be a removal)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=LOCAL_LIST) as cs:
            # Step 1
            res = await send_local_list(cs, "Full", VERSION, [authorization_data(VALID, "Accepted")], step="Step 2")
            # Step 2
            assert res.get("status") == "Accepted", f"Step 2: SendLocalListResponse {res}"
            # Steps 3-4
            version = await get_local_list_version(cs, "Step 4")
            assert version == VERSION, f"Step 4: GetLocalListVersionResponse.versionNumber {version!r}, expected {VERSION}"


async def test_TC_D_02_CS_send_local_authorization_list_differential_update(boot_station):
    """TC_D_02_CS Send Local Authorization List - Differential Update.

    Before: LocalAuthListCtrlr.Enabled true; IdTokenLocalAuthList for valid_idtoken (Full,
    versionNumber 5). Step 1 adds valid_idtoken2 (idTokenInfo status Accepted) as version 6."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=LOCAL_LIST) as cs:
            await id_token_local_auth_list(cs, VALID)
            # Step 1
            res = await send_local_list(cs, "Differential", VERSION + 1, [authorization_data(VALID2, "Accepted")],
                                        step="Step 2")
            # Step 2
            assert res.get("status") == "Accepted", f"Step 2: SendLocalListResponse {res}"
            # Steps 3-4
            version = await get_local_list_version(cs, "Step 4")
            assert version == VERSION + 1, (
                f"Step 4: GetLocalListVersionResponse.versionNumber {version!r}, expected {VERSION + 1}")


async def test_TC_D_03_CS_send_local_authorization_list_differential_remove(boot_station):
    """TC_D_03_CS Send Local Authorization List - Differential Remove.

    Before: LocalAuthListCtrlr.Enabled true; IdTokenLocalAuthList for valid_idtoken (version 5).
    Step 1 (version 6) holds valid_idtoken without idTokenInfo. (The tool validation of the
    GetLocalListVersionResponse is labelled "Step 3"; it is the response of step 4.)"""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=LOCAL_LIST) as cs:
            await id_token_local_auth_list(cs, VALID)
            # Step 1
            res = await send_local_list(cs, "Differential", VERSION + 1, [authorization_data(VALID, None)],
                                        step="Step 2")
            # Step 2
            assert res.get("status") == "Accepted", f"Step 2: SendLocalListResponse {res}"
            # Steps 3-4
            version = await get_local_list_version(cs, "Step 4")
            assert version == VERSION + 1, (
                f"Step 4: GetLocalListVersionResponse.versionNumber {version!r}, expected {VERSION + 1}")


async def test_TC_D_04_CS_send_local_authorization_list_full_with_empty_list(boot_station):
    """TC_D_04_CS Send Local Authorization List - Full with empty list.

    Before: LocalAuthListCtrlr.Enabled true; IdTokenLocalAuthList for valid_idtoken (version 5).
    Step 1: Full, version 5, localAuthorizationList omitted (<Empty>; the schema has minItems 1)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=LOCAL_LIST) as cs:
            await id_token_local_auth_list(cs, VALID)
            # Step 1
            res = await send_local_list(cs, "Full", VERSION, None, step="Step 2")
            # Step 2
            assert res.get("status") == "Accepted", f"Step 2: SendLocalListResponse {res}"
            # Steps 3-4
            version = await get_local_list_version(cs, "Step 4")
            assert version == VERSION, f"Step 4: GetLocalListVersionResponse.versionNumber {version!r}, expected {VERSION}"


async def test_TC_D_05_CS_send_local_authorization_list_differential_with_empty_list(boot_station):
    """TC_D_05_CS Send Local Authorization List - Differential with empty list.

    Before: LocalAuthListCtrlr.Enabled true; IdTokenLocalAuthList for valid_idtoken (version 5).
    Step 1: Differential, version 6, localAuthorizationList omitted (<Empty>)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=LOCAL_LIST) as cs:
            await id_token_local_auth_list(cs, VALID)
            # Step 1
            res = await send_local_list(cs, "Differential", VERSION + 1, None, step="Step 2")
            # Step 2
            assert res.get("status") == "Accepted", f"Step 2: SendLocalListResponse {res}"
            # Steps 3-4
            version = await get_local_list_version(cs, "Step 4")
            assert version == VERSION + 1, (
                f"Step 4: GetLocalListVersionResponse.versionNumber {version!r}, expected {VERSION + 1}")


async def test_TC_D_06_CS_send_local_authorization_list_version_mismatch(boot_station):
    """TC_D_06_CS Send Local Authorization List - VersionMismatch.

    Before: LocalAuthListCtrlr.Enabled true; IdTokenLocalAuthList for valid_idtoken (version 5).
    Step 1: Differential, version 4, with valid_idtoken2 (Accepted)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=LOCAL_LIST) as cs:
            await id_token_local_auth_list(cs, VALID)
            # Step 1
            res = await send_local_list(cs, "Differential", VERSION - 1, [authorization_data(VALID2, "Accepted")],
                                        step="Step 2")
            # Step 2
            assert res.get("status") == "VersionMismatch", f"Step 2: SendLocalListResponse {res}"
            # Steps 3-4
            version = await get_local_list_version(cs, "Step 4")
            assert version == VERSION, f"Step 4: GetLocalListVersionResponse.versionNumber {version!r}, expected {VERSION}"


async def test_TC_D_07_CS_send_local_authorization_list_persistent_over_reboot(boot_station):
    """TC_D_07_CS Send Local Authorization List - Persistent over reboot.

    Before: LocalAuthListCtrlr.Enabled true; IdTokenLocalAuthList for valid_idtoken (version 5);
    Charging State Booted: a power cycle (stop, start on the same SQLite file) with the
    Booted state's tool validations."""
    problems: list[str] = []
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=LOCAL_LIST) as cs:
            await id_token_local_auth_list(cs, VALID)
            await booted(cs, problems, "Before (Charging State Booted)")
            # Steps 1-2
            version = await get_local_list_version(cs, "Step 2")
            assert version == VERSION, (
                f"Step 2: GetLocalListVersionResponse.versionNumber {version!r} after the reboot, expected {VERSION}")
    assert not problems, "\n".join(problems)


async def test_TC_D_08_CS_get_local_list_version_success(boot_station):
    """TC_D_08_CS Get Local List Version - Success.

    Before: LocalAuthListCtrlr.Enabled true; IdTokenLocalAuthList for valid_idtoken (version 5)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=LOCAL_LIST) as cs:
            await id_token_local_auth_list(cs, VALID)
            # Steps 1-2
            version = await get_local_list_version(cs, "Step 2")
            assert version == VERSION, f"Step 2: GetLocalListVersionResponse.versionNumber {version!r}, expected {VERSION}"


async def test_TC_D_10_CS_get_local_list_version_function_disabled(boot_station):
    """TC_D_10_CS Get Local List Version - Function disabled. Before: LocalAuthListCtrlr.Enabled false."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={"LocalAuthListCtrlr.Enabled": False}) as cs:
            # Steps 1-2
            version = await get_local_list_version(cs, "Step 2")
            assert version == 0, f"Step 2: GetLocalListVersionResponse.versionNumber {version!r}, expected 0"


# =========================================================================== C: local start, rejected by the CSMS

async def local_start_rejected(boot_station, token: dict, status: str) -> None:
    """TC_C_02/06/07/56: Before: AuthCtrlr.Enabled true (AuthCtrlr.DisableRemoteAuthorization
    is not implemented); State EVConnectedPreSession. Present idToken; AuthorizeRequest;
    the OCTT answers `status`; no TransactionEventRequest follows within QUIET s (and the
    station's view: EVSE 1 not authorized)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={"AuthCtrlr.Enabled": True, **TX_START_POWER_PATH}) as cs:
            await ev_connected_pre_session(cs)
            # Manual Action: Present idToken. Steps 1-2
            after = await present_expect_authorize(cs, token, {"status": status}, "Step 1")
            await trio.sleep(QUIET)
            expect_no_call(cs, ("TransactionEvent",), after=after,
                           step="Note after step 2 (SHALL NOT send a TransactionEventRequest)")
            await assert_not_authorized(cs, f"After step 2 (AuthorizeResponse {status})")


async def test_TC_C_02_CS_local_start_transaction_authorization_invalid_unknown(boot_station):
    """TC_C_02_CS Local start transaction - Authorization Invalid/Unknown (invalid_idtoken, answered Invalid)."""
    await local_start_rejected(boot_station, INVALID, "Invalid")


async def test_TC_C_06_CS_local_start_transaction_authorization_blocked(boot_station):
    """TC_C_06_CS Local start transaction - Authorization Blocked (blocked_idtoken, answered Blocked)."""
    await local_start_rejected(boot_station, BLOCKED, "Blocked")


async def test_TC_C_07_CS_local_start_transaction_authorization_expired(boot_station):
    """TC_C_07_CS Local start transaction - Authorization Expired (expired_idtoken, answered Expired)."""
    await local_start_rejected(boot_station, EXPIRED, "Expired")


async def test_TC_C_56_CS_local_start_transaction_authorization_unknown(boot_station):
    """TC_C_56_CS Local start transaction - Authorization Unknown (invalid_idtoken, answered Unknown)."""
    await local_start_rejected(boot_station, INVALID, "Unknown")


# =========================================================================== C12: authorization through the cache

CACHE_PRE_AUTHORIZE = {"AuthCacheCtrlr.Enabled": True, "AuthCtrlr.LocalPreAuthorize": True, **TX_START_POWER_PATH}


async def cache_not_accepted_asks_csms(boot_station, token: dict, status: str) -> None:
    """TC_C_09/10/11: Before: AuthCacheCtrlr.Enabled true, AuthCtrlr.LocalPreAuthorize true,
    AuthCacheCtrlr.DisablePostAuthorize false; IdTokenCached for `token` (the CSMS answered
    `status`); State EVConnectedPreSession. Present it: AuthorizeRequest; the OCTT answers `status`."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={**CACHE_PRE_AUTHORIZE,
                                              "AuthCacheCtrlr.DisablePostAuthorize": False}) as cs:
            await id_token_cached(cs, token, status)
            await ev_connected_pre_session(cs)
            # Manual Action: Present the idToken already in the Authorization Cache. Steps 1-2
            await present_expect_authorize(cs, token, {"status": status}, "Step 1")


async def test_TC_C_09_CS_authorization_through_cache_invalid_not_accepted(boot_station):
    """TC_C_09_CS Authorization through authorization cache - Invalid & Not Accepted."""
    await cache_not_accepted_asks_csms(boot_station, INVALID, "Invalid")


async def test_TC_C_10_CS_authorization_through_cache_blocked(boot_station):
    """TC_C_10_CS Authorization through authorization cache - Blocked."""
    await cache_not_accepted_asks_csms(boot_station, BLOCKED, "Blocked")


async def test_TC_C_11_CS_authorization_through_cache_expired(boot_station):
    """TC_C_11_CS Authorization through authorization cache - Expired.

    The test case labels the answer of step 2 "TransactionEventResponse" and its step-1 tool
    validation names valid_idtoken: both are taken as the AuthorizeResponse / the expired
    idToken of the manual action."""
    await cache_not_accepted_asks_csms(boot_station, EXPIRED, "Expired")


async def test_TC_C_57_CS_authorization_through_cache_disable_post_authorize(boot_station):
    """TC_C_57_CS Authorization through authorization cache - AuthCacheDisablePostAuthorize.

    Before: AuthCacheCtrlr.Enabled true, AuthCtrlr.LocalPreAuthorize true,
    AuthCacheCtrlr.DisablePostAuthorize true; IdTokenCached for invalid_idtoken; State
    EVConnectedPreSession. Step 1: no AuthorizeRequest within QUIET s, and authorization is
    refused (the station's view: EVSE 1 not authorized)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={**CACHE_PRE_AUTHORIZE,
                                              "AuthCacheCtrlr.DisablePostAuthorize": True}) as cs:
            await id_token_cached(cs, INVALID, "Invalid")
            await ev_connected_pre_session(cs)
            # Manual Action: Present the Invalid idToken already in the Authorization Cache
            after = cs.mark()
            await present(cs, INVALID)
            await trio.sleep(QUIET)
            # Step 1
            expect_no_call(cs, ("Authorize",), after=after, step="Step 1 (the station does NOT send an AuthorizeRequest)")
            await assert_not_authorized(cs, "Step 1")


# =========================================================================== C14: online, through the local list

LIST_PRE_AUTHORIZE = {**LOCAL_LIST, "AuthCtrlr.LocalPreAuthorize": True, **TX_START_POWER_PATH}


async def list_not_accepted_asks_csms(boot_station, token: dict, status: str, *, ev_connected: bool) -> None:
    """TC_C_28/29/30: Before: LocalAuthListCtrlr.Enabled true, AuthCtrlr.LocalPreAuthorize
    true, LocalAuthListCtrlr.DisablePostAuthorize false; `token` in the Local Authorization
    List with status `status` (Full, version 5); State EVConnectedPreSession if `ev_connected`.
    Present it: AuthorizeRequest; the OCTT answers `status`."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={**LIST_PRE_AUTHORIZE,
                                              "LocalAuthListCtrlr.DisablePostAuthorize": False}) as cs:
            await id_token_local_auth_list(cs, token, status)
            if ev_connected:
                await ev_connected_pre_session(cs)
            # Manual Action: Present the idToken already in the Local Authorization List. Steps 1-2
            await present_expect_authorize(cs, token, {"status": status}, "Step 1")


async def test_TC_C_28_CS_online_authorization_through_local_list_invalid_not_accepted(boot_station):
    """TC_C_28_CS Online authorization through local authorization list - Invalid & Not Accepted."""
    await list_not_accepted_asks_csms(boot_station, INVALID, "Invalid", ev_connected=False)


async def test_TC_C_29_CS_online_authorization_through_local_list_blocked(boot_station):
    """TC_C_29_CS Online authorization through local authorization list - Blocked."""
    await list_not_accepted_asks_csms(boot_station, BLOCKED, "Blocked", ev_connected=True)


async def test_TC_C_30_CS_online_authorization_through_local_list_expired(boot_station):
    """TC_C_30_CS Online authorization through local authorization list - Expired."""
    await list_not_accepted_asks_csms(boot_station, EXPIRED, "Expired", ev_connected=True)


async def test_TC_C_58_CS_online_authorization_through_local_list_disable_post_authorize(boot_station):
    """TC_C_58_CS Online authorization through local authorization list - LocalAuthListDisablePostAuthorize
    (the table gives its Test case Id as TC_C_28_CS, a typo).

    Before: LocalAuthListCtrlr.Enabled true, AuthCtrlr.LocalPreAuthorize true,
    LocalAuthListCtrlr.DisablePostAuthorize true; IdTokenLocalAuthList for invalid_idtoken
    (status Invalid). Step 1: no AuthorizeRequest within QUIET s, and authorization is
    refused (the station's view: EVSE 1 not authorized)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={**LIST_PRE_AUTHORIZE,
                                              "LocalAuthListCtrlr.DisablePostAuthorize": True}) as cs:
            await id_token_local_auth_list(cs, INVALID, "Invalid")
            # Manual Action: Present the invalid idToken already in the Local Authorization List
            after = cs.mark()
            await present(cs, INVALID)
            await trio.sleep(QUIET)
            # Step 1
            expect_no_call(cs, ("Authorize",), after=after, step="Step 1 (the station does NOT send an AuthorizeRequest)")
            await assert_not_authorized(cs, "Step 1")


# =========================================================================== C13: offline, through the local list

OFFLINE_LIST = {
    **LOCAL_LIST, "AuthCtrlr.LocalPreAuthorize": True, "AuthCtrlr.OfflineTxForUnknownIdEnabled": False,
    "AuthCtrlr.LocalAuthorizeOffline": True, **OFFLINE_SETTINGS, **TX_START_POWER_PATH,
}


async def offline_list_not_accepted(boot_station, token: dict, status: str) -> None:
    """TC_C_22/23/24: Before: LocalAuthListCtrlr.Enabled true, AuthCtrlr.LocalPreAuthorize
    true, OfflineTxForUnknownIdEnabled false, LocalAuthorizeOffline true, OfflineThreshold
    61, RetryBackOffWaitMinimum 1, RetryBackOffRandomRange 0; `token` in the Local
    Authorization List with status `status`.
    Steps 5-6 (a TransactionEventRequest, offline, EVDetected) only happen when TxStartPoint
    was ParkingBayOccupancy; it is PowerPathClosed, so no TransactionEventRequest may come.
    The station's view is checked too: presenting the token never authorized EVSE 1, and
    no AuthorizeRequest was sent for it after the reconnect."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=OFFLINE_LIST) as cs:
            await id_token_local_auth_list(cs, token, status)
            # Step 1
            await octt_goes_offline(cs)
            # Step 2: Drive EV into parking bay
            after = cs.mark()
            await cs.control(cmd="occupancy", evse=EVSE, occupied=True)
            # Step 3: Present idToken
            await present(cs, token)
            await trio.sleep(QUIET)
            await assert_not_authorized(cs, f"Step 3 (offline, {status} in the Local Authorization List)")
            # Step 4
            await octt_accepts_reconnect(cs, "Step 4")
            await trio.sleep(QUIET)
            # Steps 5-6: not with TxStartPoint PowerPathClosed
            expect_no_call(cs, ("TransactionEvent",), after=after,
                           step="Step 5 (TxStartPoint is not ParkingBayOccupancy: no transaction)")
            expect_no_call(cs, ("Authorize",), after=after, step="After step 4 (the idToken presented offline)")
            await assert_not_authorized(cs, "After step 4")


async def test_TC_C_22_CS_offline_authorization_through_local_list_invalid(boot_station):
    """TC_C_22_CS Offline authorization through local authorization list - Invalid."""
    await offline_list_not_accepted(boot_station, INVALID, "Invalid")


async def test_TC_C_23_CS_offline_authorization_through_local_list_blocked(boot_station):
    """TC_C_23_CS Offline authorization through local authorization list - Blocked."""
    await offline_list_not_accepted(boot_station, BLOCKED, "Blocked")


async def test_TC_C_24_CS_offline_authorization_through_local_list_expired(boot_station):
    """TC_C_24_CS Offline authorization through local authorization list - Expired."""
    await offline_list_not_accepted(boot_station, EXPIRED, "Expired")


async def test_TC_C_25_CS_offline_authorization_local_list_over_cache(boot_station):
    """TC_C_25_CS Offline authorization through local authorization list - Local Authorization
    List > Authorization Cache.

    Before: LocalAuthListCtrlr.Enabled true, AuthCacheCtrlr.Enabled true (prerequisite
    AuthCacheAvailable), AuthCtrlr.LocalPreAuthorize true, OfflineTxForUnknownIdEnabled true,
    LocalAuthorizeOffline true, TxCtrlr.StopTxOnInvalidId false, OfflineThreshold 61,
    RetryBackOffWaitMinimum 1, RetryBackOffRandomRange 0; IdTokenCached for valid_idtoken
    (Accepted), then IdTokenLocalAuthList for valid_idtoken with status Invalid (Full,
    version 5); State EVConnectedPreSession.
    Step 3 "does NOT start a transaction": no TransactionEventRequest, and the station's
    view: EVSE 1 not authorized."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={
                **OFFLINE_LIST, "AuthCacheCtrlr.Enabled": True, "AuthCtrlr.OfflineTxForUnknownIdEnabled": True,
                "TxCtrlr.StopTxOnInvalidId": False}) as cs:
            await id_token_cached(cs, VALID)
            await id_token_local_auth_list(cs, VALID, "Invalid")
            await ev_connected_pre_session(cs)
            # Step 1
            await octt_goes_offline(cs)
            # Manual Action: Present idToken; the tool waits <Configured Transaction Duration> s
            after = cs.mark()
            await present(cs, VALID)
            await trio.sleep(TRANSACTION_DURATION)
            await assert_not_authorized(cs, "Step 1 (offline: Invalid in the list, Accepted in the cache)")
            # Step 2
            await octt_accepts_reconnect(cs, "Step 2")
            await trio.sleep(QUIET)
            # Step 3
            expect_no_call(cs, ("TransactionEvent",), after=after, step="Step 3 (the station does NOT start a transaction)")
            await assert_not_authorized(cs, "Step 3")


# =========================================================================== C10/C11: the cache itself

async def test_TC_C_32_CS_authorization_cache_persistent_over_reboot(boot_station):
    """TC_C_32_CS Store Authorization Data in the Authorization Cache - Persistent over reboot.

    Before: AuthCacheCtrlr.Enabled true, AuthCtrlr.LocalPreAuthorize true, TxStartPoint
    PowerPathClosed; IdTokenCached for valid_idtoken.
    Step 1 Booted is a power cycle. Steps 2-3 (TransactionEventRequest, triggerReason
    Authorized) only apply when TxStartPoint contains Authorized or ParkingBayOccupancy:
    not executed. That the cached token was used is checked on the station: no
    AuthorizeRequest, and EVSE 1 authorized for the token. Step 4 EVConnectedPreSession.
    NOT executed: step 5 EnergyTransferStarted (needs a transaction)."""
    problems: list[str] = []
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=CACHE_PRE_AUTHORIZE) as cs:
            await id_token_cached(cs, VALID)
            # Step 1
            await booted(cs, problems, "Step 1")
            # Manual Action: Present the valid idToken already in the Authorization Cache
            after = cs.mark()
            await present(cs, VALID)
            await wait_authorized(cs, VALID, "After the valid idToken was presented (cached, LocalPreAuthorize)")
            expect_no_call(cs, ("Authorize",), after=after,
                           step="After the valid idToken was presented (cached before the reboot, LocalPreAuthorize)")
            # Step 4
            await ev_connected_pre_session(cs, "Step 4 (Reusable State EVConnectedPreSession)")
    assert not problems, "\n".join(problems)


async def test_TC_C_36_CS_authorization_cache_local_pre_authorize_false(boot_station):
    """TC_C_36_CS Store Authorization Data in the Authorization Cache - AuthCacheCtrlr.LocalPreAuthorize = false
    (the variable is AuthCtrlr.LocalPreAuthorize).

    Before: AuthCacheCtrlr.Enabled true, AuthCtrlr.LocalPreAuthorize false; IdTokenCached for valid_idtoken."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={"AuthCacheCtrlr.Enabled": True, "AuthCtrlr.LocalPreAuthorize": False,
                                              **TX_START_POWER_PATH}) as cs:
            await id_token_cached(cs, VALID)
            # Manual Action: Present the valid idToken in the Authorization Cache. Steps 1-2
            await present_expect_authorize(cs, VALID, {"status": "Invalid"}, "Step 1")


async def test_TC_C_37_CS_clear_authorization_cache_accepted(boot_station):
    """TC_C_37_CS Clear Authorization Data in Authorization Cache - Accepted.

    Before: AuthCacheCtrlr.Enabled true; AuthCtrlr.LocalPreAuthorize true (left open by the
    test case; with true a token still cached would be accepted without an AuthorizeRequest,
    so step 5 shows the cache was cleared); IdTokenCached for valid_idtoken.
    Step 3 ParkingBayOccupied is optional: not executed.
    NOT executed: steps 7-9 (TransactionEventRequest triggerReason Authorized,
    EnergyTransferStarted: need a transaction)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=CACHE_PRE_AUTHORIZE) as cs:
            await id_token_cached(cs, VALID)
            # Step 1
            res = await clear_cache(cs, "Step 2")
            # Step 2
            assert res.get("status") == "Accepted", f"Step 2: ClearCacheResponse {res}"
            # Step 4
            await ev_connected_pre_session(cs, "Step 4 (Reusable State EVConnectedPreSession)")
            # Manual Action: Present the valid idToken that was in the Authorization Cache. Steps 5-6
            await present_expect_authorize(cs, VALID, {"status": "Accepted"}, "Step 5")


async def test_TC_C_38_CS_clear_authorization_cache_rejected(boot_station):
    """TC_C_38_CS Clear Authorization Data in Authorization Cache - Rejected.

    Before: AuthCacheCtrlr.Enabled false; IdTokenCached for valid_idtoken (presented and
    Accepted by the CSMS; with the cache disabled nothing is stored)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={"AuthCacheCtrlr.Enabled": False, **TX_START_POWER_PATH}) as cs:
            await id_token_cached(cs, VALID, expect_cached=False)
            # Step 1
            res = await clear_cache(cs, "Step 2")
            # Step 2
            assert res.get("status") == "Rejected", f"Step 2: ClearCacheResponse {res}"


async def test_TC_C_46_CS_authorization_cache_lifetime(boot_station):
    """TC_C_46_CS Store Authorization Data in the Authorization Cache - AuthCacheLifeTime.

    Before: AuthCacheCtrlr.LifeTime 2 (<Configured TransactionDuration>), AuthCacheCtrlr.
    Enabled true, AuthCtrlr.LocalPreAuthorize true, TxStartPoint PowerPathClosed;
    IdTokenCached for valid_idtoken; State EVConnectedPreSession.
    Step 1 waits TransactionDuration + 0.25 s (the entry must be older than LifeTime).
    Step 2 Authorized (local): the token is no longer cached, so the AuthorizeRequest must
    be sent (step 1 of Authorized), the OCTT answers Accepted; the Authorized state's
    TransactionEventRequest (step 3) only applies when TxStartPoint contains Authorized or
    the transaction started: not executed; post condition: EVSE 1 authorized."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={**CACHE_PRE_AUTHORIZE,
                                              "AuthCacheCtrlr.LifeTime": TRANSACTION_DURATION}) as cs:
            await id_token_cached(cs, VALID)
            await ev_connected_pre_session(cs)
            # Step 1
            await trio.sleep(TRANSACTION_DURATION + 0.25)
            # Step 2: Reusable State Authorized (local)
            await present_expect_authorize(cs, VALID, {"status": "Accepted"},
                                           "Step 2 (Reusable State Authorized, step 1: the LifeTime is over)")
            await wait_authorized(cs, VALID, "Step 2 (Reusable State Authorized, post condition)")


# =========================================================================== C16: master pass

async def test_TC_C_45_CS_master_pass_not_able_to_start_transaction(boot_station):
    """TC_C_45_CS Authorization by GroupId - Master pass - Not able to start transaction + groupId.

    Before: TxCtrlr.TxStartPoint PowerPathClosed (contains PowerPathClosed, not
    ParkingBayOccupancy nor EVConnected); AuthCtrlr.MasterPassGroupId MASTERPASS.
    The masterPass idToken is presented (step 1's tool validation names valid_idtoken; the
    manual action's masterPass idToken is checked). Step 4: no TransactionEventRequest with
    chargingState Charging and triggerReason ChargingStateChanged within QUIET s; and the
    station's view: EVSE 1 not authorized."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={"AuthCtrlr.MasterPassGroupId": MASTER_PASS_GROUP_ID,
                                              **TX_START_POWER_PATH}) as cs:
            # Manual Action: Present configured masterpass idToken. Steps 1-2
            after = await present_expect_authorize(cs, MASTER_PASS, {
                "status": "Accepted", "groupIdToken": {"idToken": MASTER_PASS_GROUP_ID, "type": "Central"}}, "Step 1")
            # Step 3
            await ev_connected_pre_session(cs, "Step 3 (Reusable State EVConnectedPreSession)")
            # Step 4
            await trio.sleep(QUIET)
            expect_no_call(cs, ("TransactionEvent",), after=after, step="Step 4",
                           where=lambda p: p.get("triggerReason") == "ChargingStateChanged"
                           and (p.get("transactionInfo") or {}).get("chargingState") == "Charging")
            await assert_not_authorized(cs, "Step 4 (a Master Pass idToken cannot start a transaction)")
