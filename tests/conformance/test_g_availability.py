"""OCA certification test cases of functional block G (availability), Charging Station side:
TC_G_01..G_19 and G_21 of OCPP 2.0.1 Edition 3 Part 6.

The steps are followed as written and every tool validation is asserted; the station is the
real one, the OCTT is played by the DevCsms (see conftest.py, which also validates every frame
the station sent against the official JSON schemas when a test ends). The reusable states of a
session are those of test_efj_transactions.Session (TxStartPoint PowerPathClosed, TxStopPoint
EVConnected,Authorized, StopAuthorized played locally); the rig's helpers are those of
test_b_reset_offline.py.

Layouts: the test cases about the station, an EVSE or a connector among others run on a
station with EVSE 1 of two connectors and EVSE 2 of one (LAYOUT), so "all connectors
belonging to the specified EVSE" and "evseId not <Configured evseId>" are checked; the ones
that change nothing, and G_11/G_17 (one EVSE in a session), on a one-connector station;
G_14 on two EVSEs of one connector (one with a transaction, one without). <Configured evseId>
/ <Configured connectorId> are EVSE 1 / connector 1.

Readings where the text is looser or ambiguous:
- Reusable State Unavailable (Table 425): ChangeAvailabilityRequest Inoperative for the
  specified EVSE / connector; none specified ("State is Unavailable") is the whole station, as
  in TC_G_05 / G_06 / G_13 / G_21, except where the test case's own validations exclude it:
  TC_G_16 (a connector Inoperative to inoperative) prepares the connector, and TC_G_18 (an EVSE;
  step 3 wants Available for the other EVSEs, impossible after a station-wide Unavailable)
  prepares the configured EVSE.
- Its step 3 NotifyEventRequest may be of the ChargingStation, EVSE or Connector component: one
  with the expected values is required, and every NotifyEventRequest(AvailabilityState) of the
  step must carry the step's value where the step has one value for all.
- "A message to report the state of a connector" (post scenario validations) is a
  StatusNotificationRequest or a NotifyEventRequest(Connector.AvailabilityState), from the start
  of the test case's preparations; TC_G_12 / G_15 change nothing, so for them it is any report
  since the station connected (its boot reports).
- TC_G_11 / G_14 / G_17: after the transaction ended (at StopAuthorized, TxStopPoint contains
  Authorized) the connector is Unavailable; disconnecting the EV at EVDisconnected then changes
  nothing (Inoperative stays), so the Available report of that reusable state's step 1 is
  overruled by the test case: the connector must stay Unavailable. The Unavailable report of the
  connector with the transaction must come after its Ended TransactionEventRequest (Scheduled).
- TC_G_13 / G_18 step 3 ("notifies ... the current state of all connectors" after an Inoperative
  to Inoperative change) are expected as written even though nothing changes; a failure of G_18
  step 3 is collected so that its steps 5 (Booted: a power cycle) still run.
- TC_G_19 / G_21 "Booting": ResetRequest Immediate (the station soft-reboots).
"""
from __future__ import annotations

import trio

from tests.conformance.conftest import expect_call
from tests.conformance.test_b_reset_offline import (
    Problems,
    all_connectors_reported,
    change_availability,
    check_status,
    connectors_reported,
    expect_boot,
    fail_on,
    reset,
    security_event,
    settle,
    soft,
)
from tests.conformance.test_cd_authorization import connector_reported, fail
from tests.conformance.test_efj_transactions import (
    CONNECTOR,
    EVSE,
    QUIET,
    Session,
    info_of,
    tx_points,
)

TIMEOUT = 20                # s, per test
LAYOUT = (2, 1)             # EVSE 1: connectors 1 and 2; EVSE 2: connector 1
ANY_COMPONENT = ("ChargingStation", "EVSE", "Connector")


# --------------------------------------------------------------------------- helpers

def connectors_of(cs, evse: int | None = None, connector: int | None = None) -> list[tuple[int, int]]:
    return [(e, c) for e, c in cs.connectors if (evse is None or e == evse) and (connector is None or c == connector)]


async def status_notifications(cs, after: int, status: str, step: str, connectors: list[tuple[int, int]]) -> None:
    """The first StatusNotificationRequest of each connector from `after` on has `status`."""
    for e, c in connectors:
        _, sn = await expect_call(cs, "StatusNotification", after=after, step=f"{step} (EVSE {e} connector {c})",
                                  where=lambda p, e=e, c=c: (p.get("evseId"), p.get("connectorId")) == (e, c))
        assert sn.get("connectorStatus") == status, (
            f"{step}: StatusNotificationRequest.connectorStatus {sn.get('connectorStatus')!r} for EVSE {e} connector "
            f"{c}, expected {status}: {sn}")


def _availability(p: dict, components: tuple[str, ...], evse: int | None, connector: int | None) -> bool:
    d = (p.get("eventData") or [{}])[0]
    comp = d.get("component") or {}
    if (d.get("variable") or {}).get("name") != "AvailabilityState" or comp.get("name") not in components:
        return False
    at = comp.get("evse") or {}
    return (evse is None or at.get("id") == evse) and (connector is None or at.get("connectorId") == connector)


async def availability_event(cs, after: int, status: str, step: str, components: tuple[str, ...] = ANY_COMPONENT,
                             evse: int | None = None, connector: int | None = None) -> None:
    """A NotifyEventRequest whose eventData[0] is the AvailabilityState of one of `components`
    (of that EVSE / connector): trigger Delta, actualValue `status`."""
    _, ne = await expect_call(cs, "NotifyEvent", after=after, step=f"{step} (NotifyEventRequest "
                              f"{'/'.join(components)}.AvailabilityState{f' of EVSE {evse}' if evse else ''}"
                              f"{f' connector {connector}' if connector else ''})",
                              where=lambda p: _availability(p, components, evse, connector))
    d = ne["eventData"][0]
    assert d.get("trigger") == "Delta", f"{step}: NotifyEventRequest eventData[0].trigger {d.get('trigger')!r}: {ne}"
    assert d.get("actualValue") == status, (
        f"{step}: NotifyEventRequest eventData[0].actualValue {d.get('actualValue')!r}, expected {status}: {ne}")


def every_availability_event(cs, after: int, status: str, step: str) -> None:
    """Every NotifyEventRequest(AvailabilityState) from `after` on: trigger Delta, actualValue `status`."""
    bad = [p for _, p in cs.calls("NotifyEvent", after) if _availability(p, ANY_COMPONENT, None, None)
           and (p["eventData"][0].get("trigger") != "Delta" or p["eventData"][0].get("actualValue") != status)]
    assert not bad, f"{step}: NotifyEventRequest(s) not Delta / {status}: {bad}"


async def unavailable(cs, step: str, evse: int | None = None, connector: int | None = None) -> int:
    """Reusable State Unavailable (for the station, an EVSE or a connector); returns the mark
    before it. Waits until the station's reports of what came before and of the state are in."""
    await settle(cs)
    after = cs.mark()
    res = await change_availability(cs, f"{step} step 1", "Inoperative", evse, connector)
    check_status(f"{step} step 2", res, "Accepted", "ChangeAvailabilityResponse")
    await status_notifications(cs, after, "Unavailable", f"{step} step 3", connectors_of(cs, evse, connector))
    await availability_event(cs, after, "Unavailable", f"{step} step 3",
                             ("EVSE", "Connector") if evse else ANY_COMPONENT, evse, connector)
    await settle(cs)
    return after


def first_report(cs, after: int, evse: int, connector: int) -> int | None:
    return next((i for i, p in cs.calls("StatusNotification", after)
                 if (p.get("evseId"), p.get("connectorId")) == (evse, connector)), None)


# =========================================================================== G01: status notification

async def test_TC_G_01_CS_connector_status_notification_available_to_occupied(boot_station):
    """TC_G_01_CS Connector status Notification - Available to Occupied: EVConnectedPreSession."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            await Session(cs).ev_connected_pre_session("Step 1 (EVConnectedPreSession)")


async def test_TC_G_02_CS_connector_status_notification_occupied_to_available(boot_station):
    """TC_G_02_CS Connector status Notification - Occupied to Available."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            s = Session(cs)
            await s.ev_connected_pre_session("Before (EVConnectedPreSession)")
            await s.ev_disconnected("Steps 1-3 (disconnect the EV)")


# =========================================================================== G03: EVSE / connector

async def test_TC_G_03_CS_change_availability_evse_operative_to_inoperative(boot_station):
    """TC_G_03_CS Change Availability EVSE - Operative to inoperative."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=LAYOUT) as cs:
            after = await unavailable(cs, "Step 1 (Unavailable for EVSE 1)", evse=EVSE)
            all_connectors_reported(cs, after, "Step 1", connectors_of(cs, EVSE))


async def test_TC_G_04_CS_change_availability_evse_inoperative_to_operative(boot_station):
    """TC_G_04_CS Change Availability EVSE - Inoperative to operative."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=LAYOUT) as cs:
            before = await unavailable(cs, "Before (Memory State Unavailable for EVSE 1)", evse=EVSE)
            after = cs.mark()
            res = await change_availability(cs, "Step 1", "Operative", EVSE)
            check_status("Step 2", res, "Accepted", "ChangeAvailabilityResponse")
            await status_notifications(cs, after, "Available", "Step 3", connectors_of(cs, EVSE))
            await availability_event(cs, after, "Available", "Step 3", ("EVSE", "Connector"), EVSE)
            every_availability_event(cs, after, "Available", "Step 3")
            all_connectors_reported(cs, before, "Step 3", connectors_of(cs, EVSE))


async def test_ev_plugged_while_unavailable_is_plugged_in_when_operative_again(boot_station):
    """No Part 6 test case plugs an EV into an Unavailable connector; this is TC_G_04 with the EV
    of TC_E_09 (TxStartPoint EVConnected) connected while the EVSE is Unavailable: nothing starts
    meanwhile, and at step 3 the connector is Occupied (not Available) and the transaction
    starts as if the EV were connected then (TC_E_09's validations)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points("EVConnected")) as cs:
            await unavailable(cs, "Before (Unavailable for EVSE 1)", evse=EVSE)
            await cs.control(cmd="plug", evse=EVSE, connector=CONNECTOR)
            await trio.sleep(QUIET)
            assert cs.calls("TransactionEvent") == [], (
                "an EV plugged into an Unavailable connector started a transaction")
            after = cs.mark()
            res = await change_availability(cs, "Step 1", "Operative", EVSE)
            check_status("Step 2", res, "Accepted", "ChangeAvailabilityResponse")
            await status_notifications(cs, after, "Occupied", "Step 3", connectors_of(cs, EVSE))
            await availability_event(cs, after, "Occupied", "Step 3", ("Connector",), EVSE, CONNECTOR)
            _, p = await expect_call(cs, "TransactionEvent", after=after, step="Step 3 (the EV plugged in)")
            assert (p.get("eventType"), p.get("triggerReason"), info_of(p).get("chargingState")) == (
                "Started", "CablePluggedIn", "EVConnected"), f"Step 3: TransactionEventRequest {p}"
            assert (p.get("evse") or {}).get("connectorId") == CONNECTOR, f"Step 3: evse.connectorId: {p}"


async def test_TC_G_07_CS_change_availability_connector_operative_to_inoperative(boot_station):
    """TC_G_07_CS Change Availability Connector - Operative to inoperative."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=LAYOUT) as cs:
            after = await unavailable(cs, "Step 1 (Unavailable for connector 1 of EVSE 1)", EVSE, CONNECTOR)
            all_connectors_reported(cs, after, "Step 1", [(EVSE, CONNECTOR)])


async def test_TC_G_08_CS_change_availability_connector_inoperative_to_operative(boot_station):
    """TC_G_08_CS Change Availability Connector - Inoperative to operative."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=LAYOUT) as cs:
            before = await unavailable(cs, "Before (Memory State Unavailable for connector 1)", EVSE, CONNECTOR)
            after = cs.mark()
            res = await change_availability(cs, "Step 1", "Operative", EVSE, CONNECTOR)
            check_status("Step 2", res, "Accepted", "ChangeAvailabilityResponse")
            await status_notifications(cs, after, "Available", "Step 3", [(EVSE, CONNECTOR)])
            await availability_event(cs, after, "Available", "Step 3", ("Connector",), EVSE, CONNECTOR)
            every_availability_event(cs, after, "Available", "Step 3")
            all_connectors_reported(cs, before, "Step 3", [(EVSE, CONNECTOR)])


async def test_TC_G_09_CS_change_availability_evse_operative_to_operative(boot_station):
    """TC_G_09_CS Change Availability EVSE - Operative to operative."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res = await change_availability(cs, "Step 1", "Operative", EVSE)
            check_status("Step 2", res, "Accepted", "ChangeAvailabilityResponse")


async def test_TC_G_10_CS_change_availability_evse_inoperative_to_inoperative(boot_station):
    """TC_G_10_CS Change Availability EVSE - Inoperative to inoperative."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            before = await unavailable(cs, "Before (State Unavailable for EVSE 1)", evse=EVSE)
            res = await change_availability(cs, "Step 1", "Inoperative", EVSE)
            check_status("Step 2", res, "Accepted", "ChangeAvailabilityResponse")
            all_connectors_reported(cs, before, "Step 2")


async def test_TC_G_15_CS_change_availability_connector_operative_to_operative(boot_station):
    """TC_G_15_CS Change Availability Connector - Operative to operative."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res = await change_availability(cs, "Step 1", "Operative", EVSE, CONNECTOR)
            check_status("Step 2", res, "Accepted", "ChangeAvailabilityResponse")
            all_connectors_reported(cs, 0, "Step 2")        # nothing changed: the boot reports


async def test_TC_G_16_CS_change_availability_connector_inoperative_to_inoperative(boot_station):
    """TC_G_16_CS Change Availability Connector - Inoperative to inoperative."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            before = await unavailable(cs, "Before (State Unavailable for connector 1)", EVSE, CONNECTOR)
            res = await change_availability(cs, "Step 1", "Inoperative", EVSE, CONNECTOR)
            check_status("Step 2", res, "Accepted", "ChangeAvailabilityResponse")
            all_connectors_reported(cs, before, "Step 2")


# =========================================================================== G04: the station

async def test_TC_G_05_CS_change_availability_charging_station_operative_to_inoperative(boot_station):
    """TC_G_05_CS Change Availability Charging Station - Operative to inoperative."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=LAYOUT) as cs:
            after = await unavailable(cs, "Step 1 (Unavailable)")
            every_availability_event(cs, after, "Unavailable", "Step 1 (Unavailable) step 3")
            all_connectors_reported(cs, after, "Step 1")


async def test_TC_G_06_CS_change_availability_charging_station_inoperative_to_operative(boot_station):
    """TC_G_06_CS Change Availability Charging Station - Inoperative to operative."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=LAYOUT) as cs:
            await unavailable(cs, "Before (State Unavailable)")
            after = cs.mark()
            res = await change_availability(cs, "Step 1", "Operative")
            check_status("Step 2", res, "Accepted", "ChangeAvailabilityResponse")
            await status_notifications(cs, after, "Available", "Step 3", cs.connectors)
            await availability_event(cs, after, "Available", "Step 3")
            every_availability_event(cs, after, "Available", "Step 3")
            all_connectors_reported(cs, after, "Step 3")


async def test_TC_G_12_CS_change_availability_charging_station_operative_to_operative(boot_station):
    """TC_G_12_CS Change Availability Charging Station - Operative to operative."""
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res = await change_availability(cs, "Step 1", "Operative")
            check_status("Step 2", res, "Accepted", "ChangeAvailabilityResponse")
            all_connectors_reported(cs, 0, "Step 2")        # nothing changed: the boot reports


async def test_TC_G_13_CS_change_availability_charging_station_inoperative_to_inoperative(boot_station):
    """TC_G_13_CS Change Availability Charging Station - Inoperative to inoperative.

    Step 3 as written: after the (unchanged) Inoperative, every connector's status
    (Unavailable) and a NotifyEventRequest of the ChargingStation component (Unavailable)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=LAYOUT) as cs:
            await unavailable(cs, "Before (State Unavailable)")
            after = cs.mark()
            res = await change_availability(cs, "Step 1", "Inoperative")
            check_status("Step 2", res, "Accepted", "ChangeAvailabilityResponse")
            problems: Problems = []
            await soft(problems, status_notifications(cs, after, "Unavailable", "Step 3", cs.connectors))
            await soft(problems, availability_event(cs, after, "Unavailable", "Step 3", ("ChargingStation",)))
            every_availability_event(cs, after, "Unavailable", "Step 3")
            if not problems:
                all_connectors_reported(cs, after, "Step 3")
            fail_on(problems)


# =========================================================================== with a transaction

async def inoperative_during_transaction(cs, steps: dict[str, str], target: tuple[int | None, int | None],
                                         idle_connectors: list[tuple[int, int]] = ()) -> None:
    """TC_G_11 / G_14 / G_17: Inoperative while EVSE 1 has a transaction (Scheduled), applied
    once StopAuthorized ended it. `steps`: the step names of the test case."""
    problems: Problems = []
    s = Session(cs)
    await s.energy_transfer_started("Before (EnergyTransferStarted)")
    start = cs.mark()
    res = await change_availability(cs, "Step 1", "Inoperative", *target)
    check_status("Step 2", res, "Scheduled", "ChangeAvailabilityResponse")
    if idle_connectors:
        await soft(problems, connectors_reported(cs, start, {c: "Unavailable" for c in idle_connectors},
                                                 steps["idle"]))
    await s.stop_authorized_local(steps["stop"])      # waits <Configured Transaction Duration> first
    assert s.ended, f"{steps['stop']}: the transaction did not end (TxStopPoint contains Authorized)"
    ended = next(i for i, p in cs.calls("TransactionEvent", start)
                 if info_of(p).get("transactionId") == s.tx_id and p.get("eventType") == "Ended")
    early = first_report(cs, start, EVSE, CONNECTOR)
    assert early is None or early > ended, (
        f"Step 2: Scheduled, yet the station reported EVSE {EVSE} connector {CONNECTOR} "
        f"{cs.csms.received[early][1][3].get('connectorStatus')} before its transaction ended")
    await connector_reported(cs, ended, "Unavailable", steps["report"], EVSE, CONNECTOR)
    await s.ev_connected_post_session(steps["post"])
    # EVDisconnected: the connector stays Unavailable (no Available report: see the module docstring)
    unplugged = cs.mark()
    await cs.control(cmd="unplug", evse=EVSE, connector=CONNECTOR)
    s.ev = False
    await trio.sleep(QUIET)
    other = [p for _, p in cs.calls("StatusNotification", unplugged)
             if (p.get("evseId"), p.get("connectorId")) == (EVSE, CONNECTOR)
             and p.get("connectorStatus") != "Unavailable"]
    assert not other, f"{steps['unplug']}: the Inoperative connector was reported {other} after the EV left"
    state = await cs.control(cmd="state")
    shown = next(c["status"] for e in state["evses"] if e["evse"] == EVSE for c in e["connectors"]
                 if c["connector"] == CONNECTOR)
    assert shown == "Unavailable", f"{steps['unplug']}: the connector is {shown!r} after the EV left, not Unavailable"
    await s.parking_bay_unoccupied(steps["bay"])
    all_connectors_reported(cs, start, "Post scenario")
    fail_on(problems)


async def test_TC_G_11_CS_change_availability_evse_with_ongoing_transaction(boot_station):
    """TC_G_11_CS Change Availability EVSE - With ongoing transaction."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            await inoperative_during_transaction(cs, {
                "stop": "Step 3 (StopAuthorized)", "report": "Step 4", "post": "Step 6 (EVConnectedPostSession)",
                "unplug": "Step 9 (EVDisconnected)", "bay": "Step 12 (ParkingBayUnoccupied)"}, (EVSE, None))


async def test_TC_G_14_CS_change_availability_charging_station_with_ongoing_transaction(boot_station):
    """TC_G_14_CS Change Availability Charging Station - With ongoing transaction.

    Two EVSEs: step 3 reports EVSE 2 (no transaction) Unavailable at once; the validations of
    "Step 7" are those of step 6's report (EVSE 1, after its transaction ended)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=(1, 1), device_model=tx_points()) as cs:
            await inoperative_during_transaction(cs, {
                "idle": "Step 3 (the EVSE without a transaction)", "stop": "Step 5 (StopAuthorized)",
                "report": "Step 6", "post": "Step 8 (EVConnectedPostSession)", "unplug": "Step 11 (EVDisconnected)",
                "bay": "Step 14 (ParkingBayUnoccupied)"}, (None, None), idle_connectors=[(2, 1)])


async def test_TC_G_17_CS_change_availability_connector_with_ongoing_transaction(boot_station):
    """TC_G_17_CS Change Availability Connector - With ongoing transaction."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model=tx_points()) as cs:
            await inoperative_during_transaction(cs, {
                "stop": "Step 3 (StopAuthorized)", "report": "Step 4", "post": "Step 6 (EVConnectedPostSession)",
                "unplug": "Step 9 (EVDisconnected)", "bay": "Step 12 (ParkingBayUnoccupied)"}, (EVSE, CONNECTOR))


# =========================================================================== persistence

async def test_TC_G_18_CS_change_availability_evse_state_persists_across_reboot(boot_station):
    """TC_G_18_CS Change Availability EVSE - state persists across reboot.

    Before: Unavailable for EVSE 1 (see the module docstring). Step 5 (Booted) is a power
    cycle; after it EVSE 1's connectors are Unavailable (the step's note), the others Available."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=LAYOUT) as cs:
            await unavailable(cs, "Before (State Unavailable for EVSE 1)", evse=EVSE)
            problems: Problems = []
            after = cs.mark()
            res = await change_availability(cs, "Step 1", "Inoperative", EVSE)
            check_status("Step 2", res, "Accepted", "ChangeAvailabilityResponse")
            await soft(problems, connectors_reported(cs, after, {c: "Unavailable" for c in connectors_of(cs, EVSE)},
                                                     "Step 3"))
            wrong = [p for _, p in cs.calls("StatusNotification", after)
                     if p.get("evseId") != EVSE and p.get("connectorStatus") != "Available"]
            if wrong:
                problems.append(f"Step 3: connectorStatus must be Available for the other EVSEs: {wrong}")
            booted = cs.mark()
            await cs.restart()                                                    # step 5: power cycle
            expected = {c: "Unavailable" if c[0] == EVSE else "Available" for c in cs.connectors}
            await connectors_reported(cs, booted, expected, "Step 5 (Booted, step 5)")
            await security_event(cs, booted, "Step 5 (Booted, step 7)")
            all_connectors_reported(cs, booted, "Step 5")
            fail_on(problems)


async def test_TC_G_19_CS_change_availability_connector_state_persists_across_reboot(boot_station):
    """TC_G_19_CS Change Availability Connector - state persists across reboot.

    Before: Unavailable for connector 1 of EVSE 1 (the connector of the validations)."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=LAYOUT) as cs:
            await unavailable(cs, "Before (State Unavailable for connector 1 of EVSE 1)", EVSE, CONNECTOR)
            after = cs.mark()
            res = await reset(cs, "Step 1 (Booting)", "Immediate")
            check_status("Step 1 (Booting, step 2)", res, "Accepted", "ResetResponse")
            boot = await expect_boot(cs, after, "Step 2")
            expected = {c: "Unavailable" if c == (EVSE, CONNECTOR) else "Available" for c in cs.connectors}
            await connectors_reported(cs, boot, expected, "Step 4")
            await security_event(cs, boot, "Step 6")
            all_connectors_reported(cs, boot, "Step 4")


async def test_TC_G_21_CS_change_availability_charging_station_state_persists_across_reboot(boot_station):
    """TC_G_21_CS Change Availability Charging Station - state persists across reboot."""
    with trio.fail_after(TIMEOUT):
        async with boot_station(evse_connectors=LAYOUT) as cs:
            await unavailable(cs, "Before (State Unavailable)")
            after = cs.mark()
            res = await reset(cs, "Step 1 (Booting)", "Immediate")
            check_status("Step 1 (Booting, step 2)", res, "Accepted", "ResetResponse")
            boot = await expect_boot(cs, after, "Step 2")
            await status_notifications(cs, boot, "Unavailable", "Step 4", cs.connectors)
            await availability_event(cs, boot, "Unavailable", "Step 4")
            await security_event(cs, boot, "Step 6")
            every_availability_event(cs, boot, "Unavailable", "Step 4")
            all_connectors_reported(cs, boot, "Step 4")
            if any(not p.get("evseId") or not p.get("connectorId") for _, p in cs.calls("StatusNotification", boot)):
                fail(f"Step 4: StatusNotificationRequest with evseId / connectorId 0: "
                     f"{[p for _, p in cs.calls('StatusNotification', boot)]}")
