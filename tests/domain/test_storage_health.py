"""The Station while storage cannot be written (domain/storage_health.py): EVSEs Unavailable
(a busy one once its transaction has ended), MemoryExhaustion sent as a volatile message and
kept in the security log,
CSMS CALLs whose effect is stored refused with OutOfStorage, transactions going on, and
everything back when storage works again. Pure: the CSMS is played by hand (test_operations.Rig)."""
from __future__ import annotations

import pytest

from domain.availability import AVAILABILITY_KEY
from domain.device_model import VariableRef
from domain.effects import Log, Persist, Remember, StoreRecords
from domain.hardware_events import CablePlugged, CableUnplugged, TokenPresented
from domain.security.events import SECURITY_LOG_TABLE
from tests.domain.test_operations import CARD, Rig, booted, statuses

WHY = "database or disk is full"


def security_events(calls) -> list[dict]:
    return [c[3] for c in calls if c[2] == "SecurityEventNotification"]


def logs(h: Rig, level: str) -> list[str]:
    return [e.text for e in h.effects if isinstance(e, Log) and e.level == level and e.text.startswith("storage:")]


def test_evses_go_unavailable_the_busy_one_when_its_transaction_ends_and_come_back():
    h = booted((1, 1))
    tx = h.start_tx(1, 1.0)
    h.effects.clear()
    calls = h.settle(h.run(h.station.storage_failed(2.0, WHY)), 2.0)
    [event] = security_events(calls)
    assert event["type"] == "MemoryExhaustion" and WHY in event["techInfo"]
    assert statuses(calls) == [(2, 1, "Unavailable")]
    assert h.status(1) == "Occupied" and h.tx_id(1) == tx          # the running session goes on
    # not the operator's availability setting, and the event is not queued durably (volatile);
    # it is in the security log (A04.FR.03), whose record the runtime stores once it can
    assert not [e for e in h.effects if isinstance(e, (Remember, Persist))]
    stored = [e.table for e in h.effects if isinstance(e, StoreRecords) and "MemoryExhaustion" in str(e.upserts)]
    assert stored == [SECURITY_LOG_TABLE]
    assert [e.type for e in h.station.security.security_log()][-1] == "MemoryExhaustion"
    assert logs(h, "error") == [f"storage: cannot write ({WHY}); no new sessions (EVSEs Unavailable), changes "
                                f"kept in memory until they can be stored"]
    # told again (another write failed): nothing new
    assert h.settle(h.run(h.station.storage_failed(3.0, WHY)), 3.0) == []
    assert len(logs(h, "error")) == 1
    # the session ends: its Ended goes out, then the EVSE is Unavailable too
    calls = h.settle(h.stop_tx_frames(1, 4.0), 4.0)
    assert [c[3]["eventType"] for c in calls if c[2] == "TransactionEvent"] == ["Ended"]
    assert statuses(calls) == [(1, 1, "Unavailable")]
    # storage works again: every connector back to its real status (EVSE 1 still plugged in)
    calls = h.settle(h.run(h.station.storage_restored(5.0)), 5.0)
    assert statuses(calls) == [(1, 1, "Occupied"), (2, 1, "Available")]
    assert len(logs(h, "info")) == 1 and security_events(calls) == []
    assert h.settle(h.run(h.station.storage_restored(6.0)), 6.0) == []


def test_no_new_session_starts_while_storage_fails():
    h = booted((1,))
    h.settle(h.run(h.station.storage_failed(1.0, WHY)), 1.0)
    assert h.hw(TokenPresented(CARD[1], evse=1), 2.0) == []            # no AuthorizeRequest
    assert h.hw(CablePlugged(1, 1), 3.0) == [] and h.tx_id(1) is None
    frames = h.call("RequestStartTransaction", {"evseId": 1, "remoteStartId": 7,
                                                "idToken": {"idToken": CARD[1], "type": "ISO14443"}}, 4.0, "rs")
    assert h.reply_to(frames, "rs") == {"status": "Rejected", "statusInfo": {
        "reasonCode": "OutOfStorage", "additionalInfo": f"storage cannot be written: {WHY}"}}
    assert h.tx_id(1) is None and [c for c in h.calls if c[2] in ("Authorize", "TransactionEvent")] == []
    # back: a session starts again
    h.settle(h.run(h.station.storage_restored(5.0)), 5.0)
    h.settle(h.hw(CableUnplugged(1, 1), 6.0), 6.0)
    assert h.start_tx(1, 7.0) == h.tx_id(1)


HEARTBEAT = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
INFO = {"reasonCode": "OutOfStorage", "additionalInfo": f"storage cannot be written: {WHY}"}


@pytest.mark.parametrize("action, payload, answer", [
    ("SetVariables", {"setVariableData": [{**HEARTBEAT, "attributeValue": "30"}]},
     {"setVariableResult": [{**HEARTBEAT, "attributeStatus": "Rejected", "attributeStatusInfo": INFO}]}),
    ("ChangeAvailability", {"operationalStatus": "Inoperative"}, {"status": "Rejected", "statusInfo": INFO}),
    ("ClearCache", {}, {"status": "Rejected", "statusInfo": INFO}),
    ("SendLocalList", {"versionNumber": 5, "updateType": "Full"}, {"status": "Failed", "statusInfo": INFO}),
    ("Reset", {"type": "Immediate"}, {"status": "Rejected", "statusInfo": INFO}),
])
def test_csms_calls_whose_effect_is_stored_are_refused_and_change_nothing(action, payload, answer):
    h = booted((1,))
    h.settle(h.run(h.station.storage_failed(1.0, WHY)), 1.0)
    h.effects.clear()
    frames = h.call(action, payload, 2.0, "c1")
    assert h.reply_to(frames, "c1") == answer
    assert h.settle(frames, 2.0) == []
    assert not [e for e in h.effects if isinstance(e, (Persist, Remember, StoreRecords))] and h.reboots() == []
    assert h.station.dm.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 60
    assert h.status(1) == "Unavailable" and h.station.authorization.service.local_list.version == 0
    # storage back: the same CALL is carried out
    h.settle(h.run(h.station.storage_restored(3.0)), 3.0)
    frames = h.call(action, payload, 4.0, "c2")
    assert h.reply_to(frames, "c2") != answer


def test_reads_are_answered_while_storage_fails():
    h = booted((1,))
    h.settle(h.run(h.station.storage_failed(1.0, WHY)), 1.0)
    frames = h.call("GetVariables", {"getVariableData": [
        {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "AvailabilityState"}}]}, 2.0, "g")
    assert h.reply_to(frames, "g")["getVariableResult"][0]["attributeValue"] == "Unavailable"


def test_a_failure_found_before_the_boot_is_reported_once_accepted():
    h = Rig((1, 1))
    h.run(h.station.start(0.0))
    h.run(h.station.storage_failed(0.0, f"{WHY}; found at start-up"))
    calls = h.settle(h.boot_accepted(now=1.0), 1.0)
    assert [e["type"] for e in security_events(calls)] == ["StartupOfTheDevice", "MemoryExhaustion"]
    assert statuses(calls) == [(1, 1, "Unavailable"), (2, 1, "Unavailable")]
    assert h.station.dm.value(VariableRef("ChargingStation", "AvailabilityState")) == "Unavailable"
    assert AVAILABILITY_KEY not in [e.key for e in h.effects if isinstance(e, Remember)]
