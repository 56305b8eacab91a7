"""Whole charging sessions on the real station (runtime, websocket, SQLite, sim hardware)
against the dev CSMS: local start with a card, remote start/stop, meter values.

They test the domain and the protocol, not the link: under the MockClock, the station and
the dev CSMS on in-memory streams (tests/memory_link.py), so meter intervals and the offline
period take no real time."""
from __future__ import annotations

import pytest
import trio

from tests.integration.test_station_e2e import SID, open_rig

pytestmark = pytest.mark.mock_clock

FAST = '"SampledDataCtrlr.TxUpdatedInterval" = 1'


def tx_events(rig, after=0):
    return [f[3] for _, f in rig.csms.received[after:] if f[0] == 2 and f[2] == "TransactionEvent"]


def delivered_once(events):
    """Events as the CSMS keeps them: a message whose CALLRESULT was lost with the link is
    sent again (at-least-once, E12); the CSMS knows it by (transactionId, seqNo), and the
    repeat is the same event."""
    seen: dict = {}
    for e in events:
        key = (e["transactionInfo"]["transactionId"], e["seqNo"])
        if key in seen:
            assert seen[key] == e, "a repeated seqNo must be the same event"
        else:
            seen[key] = e
    return list(seen.values())


def check_one_transaction(events):
    events = delivered_once(events)
    assert [e["eventType"] for e in events][0] == "Started" and events[-1]["eventType"] == "Ended"
    assert [e["eventType"] for e in events].count("Started") == 1
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert len({e["transactionInfo"]["transactionId"] for e in events}) == 1


async def test_local_session_plug_card_charge_unplug(tmp_path):
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            rig = await open_rig(nursery, tmp_path, extra=FAST)
            await rig.csms.wait_for("StatusNotification")
            n = len(rig.csms.received)
            await rig.control(cmd="plug", evse=1)
            await rig.control(cmd="token", id_token="04A2B3C4")
            await rig.csms.wait_for("Authorize", after=n)
            started = await rig.csms.wait_for("TransactionEvent", after=n, where=lambda p: p["eventType"] == "Started")
            assert started["evse"] == {"id": 1, "connectorId": 1}
            await rig.control(cmd="ev_charge", evse=1, power_w=11000)
            await rig.csms.wait_for("TransactionEvent", after=n, where=lambda p: p["triggerReason"] == "ChargingStateChanged"
                                    and p["transactionInfo"].get("chargingState") == "Charging")
            state = await rig.control(cmd="state")
            assert state["evses"][0]["power_path_closed"] is True
            assert state["evses"][0]["transaction_id"] == started["transactionInfo"]["transactionId"]
            await rig.csms.wait_for("TransactionEvent", after=n, where=lambda p: p["triggerReason"] == "MeterValuePeriodic")
            await trio.sleep(1.5)
            await rig.control(cmd="unplug", evse=1)
            ended = await rig.csms.wait_for("TransactionEvent", after=n, where=lambda p: p["eventType"] == "Ended")
            events = tx_events(rig, n)
            check_one_transaction(events)
            assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
            energy = [float(sv["value"]) for e in events for mv in e.get("meterValue", []) for sv in mv["sampledValue"]
                      if sv.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register"]
            assert energy == sorted(energy) and energy[-1] > energy[0]
            state = await rig.control(cmd="state")
            assert state["evses"][0]["power_path_closed"] is False
            nursery.cancel_scope.cancel()


async def test_remote_start_and_stop(tmp_path):
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            rig = await open_rig(nursery, tmp_path)
            await rig.csms.wait_for("StatusNotification")
            n = len(rig.csms.received)
            await rig.control(cmd="plug", evse=1)
            res = await rig.csms.call(SID, "RequestStartTransaction", {
                "evseId": 1, "remoteStartId": 42, "idToken": {"idToken": "REMOTE1", "type": "Central"}})
            assert res["status"] == "Accepted"
            started = await rig.csms.wait_for("TransactionEvent", after=n, where=lambda p: p["eventType"] == "Started")
            assert started["triggerReason"] == "RemoteStart" and started["transactionInfo"]["remoteStartId"] == 42
            tx_id = started["transactionInfo"]["transactionId"]
            status = await rig.csms.call(SID, "GetTransactionStatus", {"transactionId": tx_id})
            assert status["ongoingIndicator"] is True
            res = await rig.csms.call(SID, "RequestStopTransaction", {"transactionId": tx_id})
            assert res == {"status": "Accepted"}
            res = await rig.csms.call(SID, "RequestStopTransaction", {"transactionId": "no-such-tx"})
            assert res == {"status": "Rejected"}
            await rig.control(cmd="unplug", evse=1)
            ended = await rig.csms.wait_for("TransactionEvent", after=n, where=lambda p: p["eventType"] == "Ended")
            assert ended["transactionInfo"]["stoppedReason"] == "Remote"
            check_one_transaction(tx_events(rig, n))
            status = await rig.csms.call(SID, "GetTransactionStatus", {"transactionId": tx_id})
            assert status == {"ongoingIndicator": False, "messagesInQueue": False}
            nursery.cancel_scope.cancel()


async def test_events_made_offline_are_delivered_in_order_after_reconnect(tmp_path):
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            rig = await open_rig(nursery, tmp_path, extra=FAST)
            await rig.csms.wait_for("StatusNotification")
            n = len(rig.csms.received)
            await rig.control(cmd="plug", evse=1)
            await rig.control(cmd="token", id_token="04A2B3C4")
            await rig.csms.wait_for("TransactionEvent", after=n, where=lambda p: p["eventType"] == "Started")
            await rig.control(cmd="ev_charge", evse=1, power_w=7000)
            rig.csms.basic_auth = {SID: "locked-out-for-now"}
            await rig.csms.disconnect(SID, abrupt=True)
            await trio.sleep(2.5)                          # periodic meter values while offline
            await rig.control(cmd="unplug", evse=1)
            await trio.sleep(0.3)
            rig.csms.basic_auth = None
            ended = await rig.csms.wait_for("TransactionEvent", after=n, where=lambda p: p["eventType"] == "Ended")
            assert ended.get("offline") is True
            events = tx_events(rig, n)
            check_one_transaction(events)
            assert any(e.get("offline") for e in events)
            nursery.cancel_scope.cancel()


async def test_the_meters_are_read_while_energy_may_flow_and_not_polled_when_idle(tmp_path):
    """Issue 16 (idle): no periodic meter reading while every power path is open; every
    meter_period while one is closed; one reading after it opens again (the final register)."""
    with trio.fail_after(600):   # MockClock time
        async with trio.open_nursery() as nursery:
            rig = await open_rig(nursery, tmp_path)
            await rig.csms.wait_for("StatusNotification")
            sim = rig.runtime.deployment.meter
            reads: list[float] = []
            read = sim.read

            async def counted(evse: int):
                reads.append(trio.current_time())
                return await read(evse)

            sim.read = counted
            await trio.sleep(120)
            assert reads == []                                   # two idle minutes: no wake-up
            n = len(rig.csms.received)
            await rig.control(cmd="plug", evse=1)
            await rig.control(cmd="token", id_token="04A2B3C4")
            await rig.control(cmd="ev_charge", evse=1, power_w=11000)
            await rig.csms.wait_for("TransactionEvent", after=n, where=lambda p: p.get(
                "transactionInfo", {}).get("chargingState") == "Charging")
            t0 = trio.current_time()
            await trio.sleep(10)
            charging = [t for t in reads if t >= t0]
            assert 9 <= len(charging) <= 11                      # every second (meter_period)
            await rig.control(cmd="unplug", evse=1)
            await rig.csms.wait_for("TransactionEvent", after=n, where=lambda p: p["eventType"] == "Ended")
            await trio.sleep(2)
            t1 = trio.current_time()
            await trio.sleep(120)
            assert [t for t in reads if t >= t1] == []           # idle again
            state = await rig.control(cmd="state")
            assert state["evses"][0]["power_path_closed"] is False
            nursery.cancel_scope.cancel()
