"""Provisioning of the Station state machine (OCPP 2.0.1 B01-B04, G01-G02 statuses):
pure, no I/O, time injected as `now`."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from domain.clock import StationClock
from domain.device_model import DeviceModel
from domain.effects import Log, Persist, Reboot, Reconfigure, Remember, Send
from domain.hardware_events import CablePlugged, CableUnplugged, FaultCleared, FaultRaised
from domain.provisioning.boot import NEXT_BOOT_REASON
from domain.station import Registration, Station, StationInfo
from tests.domain.defs import load_definitions

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


class Harness:
    """Drives a Station and plays the CSMS by hand."""

    def __init__(self, evse_connectors=(1,), boot_reason="PowerUp", stored=None):
        self.ids = 0
        dm = DeviceModel(load_definitions(list(evse_connectors), station_id="CS-1", security_profile=1),
                         stored or {})
        self.station = Station(
            info=StationInfo("ACME", "Model-X", "SN-1", "1.0"),
            evse_connectors=list(evse_connectors), device_model=dm,
            clock=StationClock(0.0, T0), boot_reason=boot_reason, new_message_id=self._new_id,
        )
        self.effects: list = []

    def _new_id(self) -> str:
        self.ids += 1
        return f"msg-{self.ids}"

    def run(self, effects):
        self.effects += effects
        return [json.loads(e.frame) for e in effects if isinstance(e, Send)]

    def up(self, now=0.0):
        return self.run(self.station.link_up(now))

    def answer(self, frame, payload, now):
        return self.run(self.station.frame_received(json.dumps([3, frame[1], payload]), now))

    def call(self, action, payload, now, msg_id="csms-1"):
        return self.run(self.station.frame_received(json.dumps([2, msg_id, action, payload]), now))

    def tick(self, now):
        return self.run(self.station.tick(now))

    def boot_accepted(self, interval=60, now=0.0, current_time=T0, sent_at=None):
        [boot] = self.up(now if sent_at is None else sent_at)
        assert boot[2] == "BootNotification"
        return self.answer(boot, {"currentTime": current_time.isoformat().replace("+00:00", "Z"),
                                  "interval": interval, "status": "Accepted"}, now)


def boot_response(status, interval=60):
    return {"currentTime": "2026-01-01T12:00:00.000Z", "interval": interval, "status": status}


def test_boot_notification_first_with_reason_and_station_data():
    h = Harness(boot_reason="RemoteReset")
    frames = h.up(0.0)
    assert len(frames) == 1
    msg_type, msg_id, action, payload = frames[0]
    assert (msg_type, msg_id, action) == (2, "msg-1", "BootNotification")
    assert payload == {"chargingStation": {"model": "Model-X", "vendorName": "ACME", "serialNumber": "SN-1",
                                           "firmwareVersion": "1.0"}, "reason": "RemoteReset"}
    assert h.station.next_deadline() == pytest.approx(30.0)   # MessageTimeout of the outstanding call


def test_accepted_adopts_interval_and_clock_then_reports_every_connector():
    h = Harness(evse_connectors=(1, 2))
    csms_time = T0 + timedelta(hours=3)
    frames = h.boot_accepted(interval=42, now=1.0, current_time=csms_time, sent_at=0.0)
    assert h.station.registration is Registration.Accepted
    assert h.station.dm.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 42
    assert Persist("OCPPCommCtrlr/HeartbeatInterval", "42") in h.effects
    # clock: CSMS time plus half the round trip (1 s) -> +0.5 s
    assert h.station.clock.utc(1.0) == csms_time + timedelta(seconds=0.5)
    # the clock jumped 3 hours (> TimeAdjustmentReportingThreshold 20 s): security event first (A04)
    [event] = frames
    assert event[2] == "SecurityEventNotification" and event[3]["type"] == "SettingSystemTime"
    # one outstanding call at a time: then the first StatusNotification only
    frames = h.answer(event, {}, 1.0)
    assert [f[2] for f in frames] == ["StatusNotification"]
    all_calls = [frames[0]]
    nxt = h.answer(frames[0], {}, 1.0)
    while nxt:
        all_calls += nxt
        nxt = h.answer(nxt[-1], {}, 1.0)
    statuses = [(c[3]["evseId"], c[3]["connectorId"], c[3]["connectorStatus"]) for c in all_calls
                if c[2] == "StatusNotification"]
    assert statuses == [(1, 1, "Available"), (2, 1, "Available"), (2, 2, "Available")]
    events = [c[3]["eventData"][0] for c in all_calls if c[2] == "NotifyEvent"]
    assert [(e["component"]["name"], e["component"].get("evse"), e["variable"]["name"], e["actualValue"], e["trigger"])
            for e in events] == [
        ("Connector", {"id": 1, "connectorId": 1}, "AvailabilityState", "Available", "Delta"),
        ("EVSE", {"id": 1}, "AvailabilityState", "Available", "Delta"),
        ("Connector", {"id": 2, "connectorId": 1}, "AvailabilityState", "Available", "Delta"),
        ("Connector", {"id": 2, "connectorId": 2}, "AvailabilityState", "Available", "Delta"),
        ("EVSE", {"id": 2}, "AvailabilityState", "Available", "Delta"),
        ("ChargingStation", None, "AvailabilityState", "Available", "Delta"),
    ]
    assert len({e["eventId"] for e in events}) == 6


def test_heartbeat_after_interval_of_inactivity_sets_clock():
    h = Harness()
    frames = h.boot_accepted(interval=10, now=0.0)
    while frames:
        frames = h.answer(frames[-1], {}, 0.0)
    # last CALL went out at 0.0: the heartbeat is due at 10.0
    assert h.station.next_deadline() == pytest.approx(10.0)
    assert h.tick(9.9) == []
    [hb] = h.tick(10.0)
    assert hb[2:] == ["Heartbeat", {}]
    csms_time = T0 + timedelta(days=1)
    [event] = h.answer(hb, {"currentTime": csms_time.isoformat()}, 10.2)
    assert h.station.clock.utc(10.2) == csms_time + timedelta(seconds=0.1)
    # a day's jump is reported (SettingSystemTime); the heartbeat follows 10 s after that call
    assert event[2:] == ["SecurityEventNotification", {
        "type": "SettingSystemTime", "timestamp": "2026-01-02T12:00:00.100Z",
        "techInfo": "clock set from the CSMS, +86389.900 s"}]
    assert h.answer(event, {}, 10.2) == []
    assert h.station.next_deadline() == pytest.approx(20.2)


def test_date_time_without_offset_from_the_csms_is_read_as_utc_and_logged_once_per_connection():
    """Interop (README "Leniencies"): a CSMS answering BootNotification with
    currentTime "2026-01-01T15:00:00.123456" gets the station Accepted, its clock
    set to that time in UTC, and one warning per connection naming the field."""
    h = Harness()
    [boot] = h.up(0.0)
    frames = h.answer(boot, {"currentTime": "2026-01-01T15:00:00.123456", "interval": 10, "status": "Accepted"}, 0.0)
    assert h.station.registration is Registration.Accepted
    assert h.station.clock.utc(0.0) == datetime(2026, 1, 1, 15, 0, 0, 123000, tzinfo=timezone.utc)  # ms clock
    while frames:
        sent = re.findall(r'"(\d{4}-\d\d-\d\dT[^"]*)"', json.dumps(frames))
        assert sent and all(t.endswith("Z") for t in sent), sent  # what we send keeps its offset
        frames = h.answer(frames[-1], {}, 0.0)

    def warnings():
        return [e for e in h.effects if isinstance(e, Log) and "without UTC offset" in e.text]

    assert warnings() == [Log("warning", "CSMS sent date-time without UTC offset in "
                                         "BootNotificationResponse.currentTime; read as UTC")]
    [hb] = h.tick(10.0)
    assert h.answer(hb, {"currentTime": "2026-01-01T15:00:10"}, 10.0) == []
    assert len(warnings()) == 1                                   # once per connection
    assert h.station.clock.utc(10.0) == datetime(2026, 1, 1, 15, 0, 10, tzinfo=timezone.utc)
    h.run(h.station.link_down(11.0))
    h.up(12.0)
    [hb] = h.tick(22.0)
    h.answer(hb, {"currentTime": "2026-01-01T15:00:22"}, 22.0)
    assert len(warnings()) == 2                                   # the next connection: once again
    assert warnings()[1].text.startswith("CSMS sent date-time without UTC offset in HeartbeatResponse.currentTime")


def test_small_clock_adjustments_are_not_security_events():
    h = Harness()
    frames = h.boot_accepted(interval=10, now=0.0)
    while frames:
        frames = h.answer(frames[-1], {}, 0.0)
    [hb] = h.tick(10.0)
    drifted = T0 + timedelta(seconds=10 + 19.5)      # 19.5 s off: under the 20 s threshold
    assert h.answer(hb, {"currentTime": drifted.isoformat()}, 10.0) == []
    assert h.station.clock.utc(10.0) == drifted


def test_pending_answers_csms_calls_sends_nothing_else_and_retries_boot():
    h = Harness()
    [boot] = h.up(0.0)
    assert h.answer(boot, boot_response("Pending", interval=20), 0.5) == []
    assert h.station.registration is Registration.Pending
    # the CSMS may configure the station while Pending (B02)
    [reply] = h.call("GetVariables", {"getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"}}]}, 1.0)
    assert reply[0] == 3 and reply[2]["getVariableResult"][0]["attributeStatus"] == "Accepted"
    h.run(h.station.hardware_event(CablePlugged(1, 1), 2.0))
    assert not [e for e in h.effects if isinstance(e, Send) and '"StatusNotification"' in e.frame]
    assert h.station.next_deadline() == pytest.approx(20.5)
    assert h.tick(20.4) == []
    [boot2] = h.tick(20.5)
    assert boot2[2] == "BootNotification"
    [status] = h.answer(boot2, {"currentTime": "2026-01-01T12:00:21.000Z", "interval": 60,
                                "status": "Accepted"}, 21.0)
    assert status[3]["connectorStatus"] == "Occupied"


def test_rejected_sends_nothing_and_refuses_csms_calls_with_security_error():
    h = Harness()
    [boot] = h.up(0.0)
    assert h.answer(boot, boot_response("Rejected", interval=30), 0.0) == []
    [err] = h.call("GetBaseReport", {"requestId": 1, "reportBase": "FullInventory"}, 1.0, msg_id="x-1")
    assert err[:3] == [4, "x-1", "SecurityError"]
    [err] = h.call("GetVariables", {"getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}, 1.0, msg_id="x-2")
    assert err[:3] == [4, "x-2", "SecurityError"]
    h.run(h.station.hardware_event(CablePlugged(1, 1), 2.0))
    assert h.tick(29.9) == []
    [boot2] = h.tick(30.0)
    assert boot2[2] == "BootNotification"


def test_csms_call_before_any_boot_response_is_a_security_error():
    h = Harness()
    h.up(0.0)
    [err] = h.call("GetVariables", {"getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}, 0.1)
    assert err[2] == "SecurityError"


def test_boot_timeout_and_callerror_retry():
    h = Harness()
    [boot] = h.up(0.0)
    assert h.tick(29.0) == []
    assert h.tick(30.0) == []                 # timed out: retry 10 s later
    assert any(isinstance(e, Log) and "no answer" in e.text for e in h.effects)
    [boot2] = h.tick(40.0)
    assert boot2[2] == "BootNotification" and boot2[1] != boot[1]
    assert h.run(h.station.frame_received(json.dumps([4, boot2[1], "InternalError", "oops", {}]), 41.0)) == []
    [boot3] = h.tick(51.0)
    assert boot3[2] == "BootNotification"


def test_link_lost_during_boot_resends_boot_on_reconnect():
    h = Harness()
    h.up(0.0)
    h.run(h.station.link_down(1.0))
    assert h.station.next_deadline() is None
    [boot] = h.up(5.0)
    assert boot[2] == "BootNotification"


def test_reconnect_after_accept_no_new_boot_reports_changes_made_offline():
    h = Harness(evse_connectors=(1, 1))
    frames = h.boot_accepted(now=0.0)
    while frames:
        frames = h.answer(frames[-1], {}, 0.0)
    h.run(h.station.link_down(1.0))
    h.run(h.station.hardware_event(CablePlugged(2, 1), 2.0))     # while offline
    frames = h.up(3.0)
    assert [f[2] for f in frames] == ["StatusNotification"]
    assert (frames[0][3]["evseId"], frames[0][3]["connectorStatus"]) == (2, "Occupied")


def test_status_changes_plug_fault_clear_unplug():
    h = Harness()
    frames = h.boot_accepted(now=0.0)
    while frames:
        frames = h.answer(frames[-1], {}, 0.0)

    def statuses(effects_frames, now):
        got = []
        frames = effects_frames
        while frames:
            f = frames[-1]
            if f[2] == "StatusNotification":
                got.append(f[3]["connectorStatus"])
            frames = h.answer(f, {}, now)
        return got

    assert statuses(h.run(h.station.hardware_event(CablePlugged(1, 1), 1.0)), 1.0) == ["Occupied"]
    assert statuses(h.run(h.station.hardware_event(FaultRaised(1, "GroundFault"), 2.0)), 2.0) == ["Faulted"]
    assert statuses(h.run(h.station.hardware_event(FaultCleared(1), 3.0)), 3.0) == ["Occupied"]
    assert statuses(h.run(h.station.hardware_event(CableUnplugged(1, 1), 4.0)), 4.0) == ["Available"]
    # no change, no message
    assert h.run(h.station.hardware_event(CableUnplugged(1, 1), 5.0)) == []
    # unknown EVSE: ignored, nothing sent
    assert h.run(h.station.hardware_event(CablePlugged(7, 1), 6.0)) == []


def test_timestamps_in_the_frames_the_station_sends_are_utc_milliseconds():
    """Part 2 2.1 dateTime: at most 3 fractional digits; the station's clock keeps
    milliseconds, the frames carry them as such (`Z`, never 6 digits)."""
    h = Harness()
    frames = h.boot_accepted(now=0.0, current_time=T0 + timedelta(microseconds=654321))
    while frames:
        frames = h.answer(frames[-1], {}, 0.0)
    h.run(h.station.hardware_event(CablePlugged(1, 1), 1.0))
    sent = [e.frame for e in h.effects if isinstance(e, Send)]
    occupied = [f for f in sent if '"StatusNotification"' in f and '"Occupied"' in f]
    assert len(occupied) == 1 and '"timestamp":"2026-01-01T12:00:01.654Z"' in occupied[0]
    stamps = re.findall(r'"(\d{4}-\d\d-\d\dT[^"]*)"', "".join(sent))
    assert stamps and all(re.fullmatch(r"[-0-9]{10}T\d\d:\d\d:\d\d(\.\d{1,3})?Z", t) for t in stamps), stamps


def test_set_variables_live_effects_and_persistence():
    h = Harness()
    frames = h.boot_accepted(interval=100, now=0.0)
    while frames:
        frames = h.answer(frames[-1], {}, 0.0)
    assert h.station.next_deadline() == pytest.approx(100.0)
    h.effects.clear()
    [reply] = h.call("SetVariables", {"setVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}, "attributeValue": "5"},
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "WebSocketPingInterval"},
         "attributeValue": "7"},
        {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"}, "attributeValue": "2"},
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
         "attributeValue": "soon"},
    ]}, 1.0)
    results = [r["attributeStatus"] for r in reply[2]["setVariableResult"]]
    assert results == ["Accepted", "Accepted", "Rejected", "Rejected"]
    assert h.station.next_deadline() == pytest.approx(5.0)       # rescheduled at once
    assert Persist("OCPPCommCtrlr/HeartbeatInterval", "5") in h.effects
    assert Persist("OCPPCommCtrlr/WebSocketPingInterval", "7") in h.effects
    assert any(isinstance(e, Reconfigure) for e in h.effects)
    assert h.station.dm.get("SecurityCtrlr", "SecurityProfile") == "1"


def test_get_variables_statuses():
    h = Harness()
    h.boot_accepted(now=0.0)
    [reply] = h.call("GetVariables", {"getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
        {"component": {"name": "NoSuchCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NoSuchVariable"}},
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}, "attributeType": "MaxSet"},
        {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}},
        {"component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
         "variable": {"name": "AvailabilityState"}},
        {"component": {"name": "Connector", "evse": {"id": 9, "connectorId": 1}},
         "variable": {"name": "AvailabilityState"}},
        {"component": {"name": "ClockCtrlr"}, "variable": {"name": "DateTime"}},
    ]}, 2.0, msg_id="gv")
    assert reply[:2] == [3, "gv"]
    got = [(r["attributeStatus"], r.get("attributeValue")) for r in reply[2]["getVariableResult"]]
    assert got == [("Accepted", "60"), ("UnknownComponent", None), ("UnknownVariable", None),
                   ("NotSupportedAttributeType", None), ("Rejected", None), ("Accepted", "Available"),
                   ("UnknownComponent", None), ("Accepted", "2026-01-01T12:00:02.000Z")]


def test_reset_reboots_after_answering_with_remote_reset_reason():
    h = Harness()
    h.boot_accepted(now=0.0)
    effects = h.station.frame_received(json.dumps([2, "r-1", "Reset", {"type": "Immediate"}]), 1.0)
    sends = [e for e in effects if isinstance(e, Send)]
    assert json.loads(sends[0].frame) == [3, "r-1", {"status": "Accepted"}]
    assert Remember(NEXT_BOOT_REASON, "RemoteReset") in effects
    assert effects.index(Reboot("RemoteReset")) > effects.index(sends[0])


def test_stored_values_survive_and_unsupported_action_is_not_supported():
    h = Harness(stored={("OCPPCommCtrlr/HeartbeatInterval", "Actual"): "77"})
    assert h.station.dm.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 77
    h.boot_accepted(interval=0, now=0.0)     # interval 0: keep ours
    assert h.station.dm.get_int("OCPPCommCtrlr", "HeartbeatInterval") == 77
    [err] = h.call("ReserveNow", {"id": 1, "expiryDateTime": "2026-01-01T13:00:00Z",
                                  "idToken": {"idToken": "A", "type": "ISO14443"}}, 1.0, msg_id="rn")
    assert err[:3] == [4, "rn", "NotSupported"]


def test_get_and_set_variables_request_limits_give_the_prescribed_callerror():
    h = Harness()
    h.boot_accepted(now=0.0)
    items = h.station.dm.get_int("DeviceDataCtrlr", "ItemsPerMessage", "GetVariables")
    one = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    [ok] = h.call("GetVariables", {"getVariableData": [one] * items}, 1.0, msg_id="at-limit")
    assert ok[0] == 3 and len(ok[2]["getVariableResult"]) == items
    [err] = h.call("GetVariables", {"getVariableData": [one] * (items + 1)}, 1.0, msg_id="over")
    assert err[:3] == [4, "over", "OccurrenceConstraintViolation"]          # B06.FR.16
    size = h.station.dm.get_int("DeviceDataCtrlr", "BytesPerMessage", "SetVariables")
    big = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "OrganizationName"},
           "attributeValue": "x" * 1000}
    n = size // 1000 + 1
    assert n <= h.station.dm.get_int("DeviceDataCtrlr", "ItemsPerMessage", "SetVariables")
    [err] = h.call("SetVariables", {"setVariableData": [big] * n}, 1.0, msg_id="bytes")
    assert err[:3] == [4, "bytes", "FormatViolation"]                          # B05 / B06.FR.17
    assert h.station.dm.get("SecurityCtrlr", "OrganizationName") != "x" * 1000  # nothing applied


def test_set_variables_reason_codes_and_other_attributes():
    h = Harness()
    h.boot_accepted(now=0.0)
    [reply] = h.call("SetVariables", {"setVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}, "attributeValue": "0"},
        {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "Identity"}, "attributeValue": "X"},
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
         "attributeType": "Target", "attributeValue": "5"},
    ]}, 1.0)
    got = [(r["attributeStatus"], r.get("attributeStatusInfo", {}).get("reasonCode"))
           for r in reply[2]["setVariableResult"]]
    assert got == [("Rejected", "ValueTooLow"), ("Rejected", "ReadOnly"), ("NotSupportedAttributeType", None)]


def test_base_report_follows_the_response_paged_and_is_sent_while_pending():
    h = Harness(evse_connectors=(1, 2))
    [boot] = h.up(0.0)
    h.answer(boot, boot_response("Pending", interval=300), 0.0)
    frames = h.call("GetBaseReport", {"requestId": 7, "reportBase": "FullInventory"}, 1.0, msg_id="gbr")
    assert frames[0] == [3, "gbr", {"status": "Accepted"}]
    reports, seen = [], set()
    nxt = frames[1:]
    while nxt:
        f = nxt[-1]
        assert f[2] == "NotifyReport"
        reports.append(f[3])
        nxt = h.answer(f, {}, 1.0)
    assert [r["seqNo"] for r in reports] == list(range(len(reports)))
    assert all(r["tbc"] for r in reports[:-1]) and not reports[-1].get("tbc")
    assert {r["requestId"] for r in reports} == {7}
    items = h.station.dm.get_int("DeviceDataCtrlr", "ItemsPerMessage", "GetReport")
    assert all(len(r["reportData"]) <= items for r in reports)
    for r in reports:
        for d in r["reportData"]:
            c = d["component"]
            seen.add((c["name"], json.dumps(c.get("evse")), d["variable"]["name"], d["variable"].get("instance")))
    assert len(seen) == len(list(h.station.dm.definitions()))
    [err] = h.call("GetBaseReport", {"requestId": 8, "reportBase": "NoSuchReport"}, 2.0, msg_id="x")
    assert err[:3] == [4, "x", "PropertyConstraintViolation"]
    [resp] = h.call("GetReport", {"requestId": 9, "componentVariable": [
        {"component": {"name": "NoSuchCtrlr"}}]}, 2.0, msg_id="gr")
    assert resp == [3, "gr", {"status": "EmptyResultSet"}]


def test_queue_all_messages_keeps_status_notifications_durably():
    from domain.effects import StoreRecords
    h = Harness(stored={("OCPPCommCtrlr/QueueAllMessages", "Actual"): "true"})
    frames = h.boot_accepted(now=0.0)
    assert [f[2] for f in frames] == ["StatusNotification"]
    stored = [e for e in h.effects if isinstance(e, StoreRecords) and e.table == "queue"]
    assert stored and any("StatusNotification" in v for e in stored for v in e.upserts.values())
    h.run(h.station.link_down(1.0))                      # not answered: still queued, sent again
    again = h.up(2.0)
    assert again[0][2] == "StatusNotification" and again[0][1] != frames[0][1]


def test_unlock_connector_statuses():
    from domain.transactions import UnlockConnector
    h = Harness()
    h.boot_accepted(now=0.0)
    from domain.hardware_events import JobFinished
    # the answer waits for the hardware: Unlocked, or UnlockFailed when it could not
    assert h.call("UnlockConnector", {"evseId": 1, "connectorId": 1}, 1.0, msg_id="u1") == []
    assert UnlockConnector(1, 1, reply_to="u1") in h.effects
    [r] = h.run(h.station.hardware_event(JobFinished(UnlockConnector(1, 1, reply_to="u1"), True), 1.1))
    assert r == [3, "u1", {"status": "Unlocked"}]
    assert h.call("UnlockConnector", {"evseId": 1, "connectorId": 1}, 2.0, msg_id="u4") == []
    [r] = h.run(h.station.hardware_event(JobFinished(UnlockConnector(1, 1, reply_to="u4"), False), 2.1))
    assert r == [3, "u4", {"status": "UnlockFailed"}]
    [r] = h.call("UnlockConnector", {"evseId": 1, "connectorId": 2}, 1.0, msg_id="u2")
    assert r == [3, "u2", {"status": "UnknownConnector"}]
    [r] = h.call("UnlockConnector", {"evseId": 3, "connectorId": 1}, 1.0, msg_id="u3")
    assert r == [3, "u3", {"status": "UnknownConnector"}]
