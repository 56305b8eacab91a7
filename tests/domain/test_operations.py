"""CSMS-initiated operations of the Station (ChangeAvailability G03/G04, Reset B11/B12,
TriggerMessage F06, DataTransfer P01/P02) and the station events around them
(SettingSystemTime, OfflineThreshold, faults and device problems naming their component):
pure, no I/O, time injected as `now`. The CSMS is played by hand (see test_station.Harness)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from domain import messages as m
from domain.availability import AVAILABILITY_KEY
from domain.clock import StationClock
from domain.data_transfer import DataTransferRegistry, SimpleExtension
from domain.device_model import DeviceModel, VariableRef
from domain.effects import EnergyOffer, Log, Persist, Reboot, Remember, Send
from domain.hardware_events import (
    CablePlugged,
    CableUnplugged,
    DeviceProblem,
    FaultCleared,
    FaultRaised,
    MeterReading,
    MeterSampled,
    TokenPresented,
)
from domain.provisioning.boot import NEXT_BOOT_REASON, SETTING_SYSTEM_TIME
from domain.provisioning.reset import RESET_DELIVERY_WAIT
from domain.station import Station, StationInfo, StoredState
from tests.domain.defs import load_definitions
from tests.domain.test_station import T0, Harness

CARD = {1: "CARD-0001", 2: "CARD-0002"}
READING = MeterReading(energy_wh=1234.5, power_w=7000.0, current_a=(10.1, 10.1, 10.1), voltage_v=(230.0,) * 3)


def iso(dt) -> str:
    """A UTC datetime as the station writes it: milliseconds, none for a whole second, Z."""
    return dt.isoformat(timespec="milliseconds" if dt.microsecond else "seconds").replace("+00:00", "Z")


class Rig(Harness):
    """test_station.Harness with the operations' constructor arguments (stored availability,
    DataTransfer extensions, hardware parts), deterministic transaction ids and a record of
    every CALL the station sent."""

    def __init__(self, evse_connectors=(1,), *, stored=None, availability=None, extensions=(), parts=(),
                 default_limit_a=None):
        self.ids = 0
        self.tx_ids = 0
        dm = DeviceModel(load_definitions(list(evse_connectors), station_id="CS-1", security_profile=1,
                                          parts=parts), stored or {})
        self.station = Station(
            info=StationInfo("ACME", "Model-X", "SN-1", "1.0"), evse_connectors=list(evse_connectors),
            device_model=dm, clock=StationClock(0.0, T0), new_message_id=self._new_id,
            new_transaction_id=self._new_tx,
            stored=StoredState(values={AVAILABILITY_KEY: availability} if availability is not None else {}),
            data_transfer=DataTransferRegistry(extensions), default_limit_a=default_limit_a)
        self.effects: list = []
        self.calls: list[list] = []

    def _new_tx(self) -> str:
        self.tx_ids += 1
        return f"tx-{self.tx_ids}"

    def run(self, effects):
        frames = super().run(effects)
        self.calls += [f for f in frames if f[0] == 2]
        return frames

    # -- the CSMS --------------------------------------------------------------------------
    def reply(self, call: list, now: float) -> dict:
        action = call[2]
        if action == "Authorize":
            return {"idTokenInfo": {"status": "Accepted"}}
        if action == "Heartbeat":
            return {"currentTime": iso(self.station.clock.utc(now))}
        if action == "DataTransfer":
            return {"status": "Accepted"}
        return {}

    def settle(self, frames, now) -> list[list]:
        """The CSMS answers every CALL (one at a time) until the station sends no more.
        Returns the CALLs it answered."""
        answered = []
        while True:
            calls = [f for f in frames if f[0] == 2]
            if not calls:
                return answered
            assert len(calls) == 1, f"more than one CALL outstanding: {calls}"
            answered.append(calls[0])
            frames = self.answer(calls[0], self.reply(calls[0], now), now)

    def hw(self, event, now):
        return self.run(self.station.hardware_event(event, now))

    def reply_to(self, frames, msg_id="csms-1") -> dict:
        [r] = [f for f in frames if f[0] == 3 and f[1] == msg_id]
        return r[2]

    # -- sessions --------------------------------------------------------------------------
    def start_tx(self, evse: int, now: float) -> str:
        """EV plugged at connector 1 and a card accepted: the transaction starts (PowerPathClosed)."""
        self.settle(self.hw(CablePlugged(evse, 1), now), now)
        calls = self.settle(self.hw(TokenPresented(CARD[evse], evse=evse), now), now)
        started = [c for c in calls if c[2] == "TransactionEvent" and c[3]["eventType"] == "Started"]
        assert started, f"no transaction started on EVSE {evse}: {calls}"
        return started[0][3]["transactionInfo"]["transactionId"]

    def stop_tx_frames(self, evse: int, now: float):
        """The same card again ends the authorization, and so the transaction (TxStopPoint)."""
        return self.hw(TokenPresented(CARD[evse], evse=evse), now)

    def tx_id(self, evse: int) -> str | None:
        return self.station.snapshot()["evses"][evse]["transaction_id"]

    def status(self, evse: int, connector: int = 1) -> str:
        return self.station.connector_status(evse, connector)

    def remembered(self, key: str) -> list[str | None]:
        return [e.value for e in self.effects if isinstance(e, Remember) and e.key == key]

    def reboots(self) -> list[Reboot]:
        return [e for e in self.effects if isinstance(e, Reboot)]


def booted(evse_connectors=(1,), **kw) -> Rig:
    h = Rig(evse_connectors, **kw)
    h.settle(h.boot_accepted(now=0.0), 0.0)
    h.calls.clear()
    return h


def statuses(calls) -> list[tuple[int, int, str]]:
    return [(c[3]["evseId"], c[3]["connectorId"], c[3]["connectorStatus"]) for c in calls
            if c[2] == "StatusNotification"]


def events(calls, variable: str | None = None) -> list[dict]:
    return [d for c in calls if c[2] == "NotifyEvent" for d in c[3]["eventData"]
            if variable is None or d["variable"]["name"] == variable]


def availability_events(calls) -> list[tuple[str, dict, str]]:
    return [(d["component"]["name"], d["component"].get("evse"), d["actualValue"])
            for d in events(calls, "AvailabilityState")]


def change_availability(h: Rig, now: float, status: str, evse=None, connector=None, msg_id="ca"):
    payload: dict = {"operationalStatus": status}
    if evse is not None:
        payload["evse"] = {"id": evse} if connector is None else {"id": evse, "connectorId": connector}
    frames = h.call("ChangeAvailability", payload, now, msg_id=msg_id)
    return h.reply_to(frames, msg_id), h.settle(frames, now)


def stored_availability(h: Rig) -> dict:
    values = h.remembered(AVAILABILITY_KEY)
    assert values, "no Remember(availability, ...) effect"
    return json.loads(values[-1])


# =========================================================================== ChangeAvailability

def test_station_inoperative_and_back_reports_every_connector_and_remembers_it():
    h = booted((1, 2))
    res, calls = change_availability(h, 1.0, "Inoperative")
    assert res == {"status": "Accepted"}
    assert statuses(calls) == [(1, 1, "Unavailable"), (2, 1, "Unavailable"), (2, 2, "Unavailable")]
    assert sorted(availability_events(calls), key=str) == sorted([
        ("Connector", {"id": 1, "connectorId": 1}, "Unavailable"), ("EVSE", {"id": 1}, "Unavailable"),
        ("Connector", {"id": 2, "connectorId": 1}, "Unavailable"),
        ("Connector", {"id": 2, "connectorId": 2}, "Unavailable"), ("EVSE", {"id": 2}, "Unavailable"),
        ("ChargingStation", None, "Unavailable")], key=str)
    assert stored_availability(h) == {"inoperative": [[0, 0]], "scheduled": []}
    # durable before the answer goes out
    i_remember = max(i for i, e in enumerate(h.effects) if isinstance(e, Remember) and e.key == AVAILABILITY_KEY)
    i_answer = next(i for i, e in enumerate(h.effects) if isinstance(e, Send) and e.frame.startswith('[3,"ca"'))
    assert i_remember < i_answer
    assert h.station.dm.value(VariableRef("ChargingStation", "AvailabilityState")) == "Unavailable"

    res, calls = change_availability(h, 2.0, "Operative", evse=0, msg_id="ca2")    # evse.id 0: the station
    assert res == {"status": "Accepted"}
    assert statuses(calls) == [(1, 1, "Available"), (2, 1, "Available"), (2, 2, "Available")]
    assert stored_availability(h) == {"inoperative": [], "scheduled": []}


def test_evse_and_connector_targets_change_only_their_connectors():
    h = booted((1, 2))
    res, calls = change_availability(h, 1.0, "Inoperative", evse=2)
    assert res == {"status": "Accepted"}
    assert statuses(calls) == [(2, 1, "Unavailable"), (2, 2, "Unavailable")]
    res, calls = change_availability(h, 2.0, "Inoperative", evse=1, connector=1, msg_id="c2")
    assert res == {"status": "Accepted"}
    assert statuses(calls) == [(1, 1, "Unavailable")]
    assert ("Connector", {"id": 1, "connectorId": 1}, "Unavailable") in availability_events(calls)
    assert stored_availability(h) == {"inoperative": [[1, 1], [2, 0]], "scheduled": []}
    # the EVSE back Operative: its connectors are Available again; connector 1.1 stays as set
    res, calls = change_availability(h, 3.0, "Operative", evse=2, msg_id="c3")
    assert res == {"status": "Accepted"}
    assert statuses(calls) == [(2, 1, "Available"), (2, 2, "Available")]
    assert h.status(1, 1) == "Unavailable"
    # a connector Operative while its EVSE is Inoperative stays Unavailable
    change_availability(h, 4.0, "Inoperative", evse=2, msg_id="c4")
    res, calls = change_availability(h, 5.0, "Operative", evse=2, connector=1, msg_id="c5")
    assert res == {"status": "Accepted"} and statuses(calls) == [] and h.status(2, 1) == "Unavailable"


@pytest.mark.parametrize("evse, connector", [(3, None), (1, 2), (3, 1)])
def test_unknown_evse_or_connector_is_rejected_and_changes_nothing(evse, connector):
    h = booted((1,))
    res, calls = change_availability(h, 1.0, "Inoperative", evse=evse, connector=connector)
    assert res["status"] == "Rejected"
    assert calls == [] and h.remembered(AVAILABILITY_KEY) == []
    assert h.status(1) == "Available"


def test_change_during_a_transaction_is_scheduled_and_applied_when_it_ends():
    h = booted((1, 1))
    tx = h.start_tx(1, 1.0)
    res, calls = change_availability(h, 2.0, "Inoperative", evse=1)
    assert res == {"status": "Scheduled"}
    assert statuses(calls) == [] and h.status(1) == "Occupied" and h.tx_id(1) == tx
    assert stored_availability(h) == {"inoperative": [], "scheduled": [[[1, 0], False]]}
    # an idle EVSE changes at once
    res, calls = change_availability(h, 3.0, "Inoperative", evse=2, msg_id="ca2")
    assert res == {"status": "Accepted"} and statuses(calls) == [(2, 1, "Unavailable")]
    # the transaction ends: the scheduled change applies and is reported after its Ended
    calls = h.settle(h.stop_tx_frames(1, 4.0), 4.0)
    actions = [c[2] for c in calls]
    ended = next(i for i, c in enumerate(calls) if c[2] == "TransactionEvent" and c[3]["eventType"] == "Ended")
    assert statuses(calls) == [(1, 1, "Unavailable")]
    assert actions.index("StatusNotification") > ended
    assert stored_availability(h) == {"inoperative": [[1, 0], [2, 0]], "scheduled": []}


def test_station_change_during_a_transaction_is_scheduled():
    h = booted((1,))
    h.start_tx(1, 1.0)
    res, _ = change_availability(h, 2.0, "Inoperative")
    assert res == {"status": "Scheduled"} and h.status(1) == "Occupied"
    calls = h.settle(h.stop_tx_frames(1, 3.0), 3.0)
    assert statuses(calls) == [(1, 1, "Unavailable")]
    assert stored_availability(h) == {"inoperative": [[0, 0]], "scheduled": []}


def test_availability_is_restored_from_what_the_station_remembered():
    h = booted((1, 1))
    change_availability(h, 1.0, "Inoperative", evse=2)
    remembered = h.remembered(AVAILABILITY_KEY)[-1]
    h2 = Rig((1, 1), availability=remembered)
    calls = h2.settle(h2.boot_accepted(now=0.0), 0.0)
    assert statuses(calls) == [(1, 1, "Available"), (2, 1, "Unavailable")]
    # Operative again: Available, and remembered so
    res, calls = change_availability(h2, 1.0, "Operative", evse=2)
    assert res == {"status": "Accepted"} and statuses(calls) == [(2, 1, "Available")]


def test_a_restored_scheduled_change_applies_when_nothing_runs():
    h = Rig((1, 1), availability=json.dumps({"inoperative": [], "scheduled": [[[1, 0], False]]}))
    calls = h.settle(h.boot_accepted(now=0.0), 0.0)
    assert statuses(calls) == [(1, 1, "Unavailable"), (2, 1, "Available")]
    assert stored_availability(h) == {"inoperative": [[1, 0]], "scheduled": []}


@pytest.mark.parametrize("raw, warning", [
    ("{not json", "unreadable"),
    (json.dumps({"inoperative": [[7, 0], [1, 3]], "scheduled": []}), "does not have"),
])
def test_unusable_stored_availability_starts_operative_with_a_warning(raw, warning):
    h = Rig((1,), availability=raw)
    calls = h.settle(h.boot_accepted(now=0.0), 0.0)
    assert statuses(calls) == [(1, 1, "Available")]
    assert any(isinstance(e, Log) and e.level == "warning" and warning in e.text for e in h.effects)


def test_no_session_starts_on_an_inoperative_evse():
    h = booted((1,))
    change_availability(h, 1.0, "Inoperative", evse=1)
    assert h.hw(TokenPresented(CARD[1], evse=1), 2.0) == []         # no AuthorizeRequest
    assert h.station.snapshot()["evses"][1]["authorized"] is None
    assert h.hw(CablePlugged(1, 1), 3.0) == []                       # still Unavailable, no transaction
    assert h.status(1) == "Unavailable" and h.tx_id(1) is None
    [reply] = h.call("RequestStartTransaction", {"evseId": 1, "remoteStartId": 7,
                                                 "idToken": {"idToken": CARD[1], "type": "ISO14443"}}, 4.0,
                     msg_id="rs")
    assert reply == [3, "rs", {"status": "Rejected"}]
    assert h.tx_id(1) is None and [c for c in h.calls if c[2] in ("Authorize", "TransactionEvent")] == []


def test_a_plug_on_an_inoperative_connector_starts_no_transaction():
    h = booted((2,))                                     # one EVSE with two connectors
    change_availability(h, 1.0, "Inoperative", evse=1, connector=2)
    h.settle(h.hw(TokenPresented(CARD[1], evse=1), 2.0), 2.0)           # the EVSE is still Available
    assert h.station.snapshot()["evses"][1]["authorized"] == CARD[1]
    calls = h.settle(h.hw(CablePlugged(1, 2), 3.0), 3.0)
    assert [c for c in calls if c[2] == "TransactionEvent"] == [] and h.tx_id(1) is None
    assert h.status(1, 2) == "Unavailable"
    calls = h.settle(h.hw(CablePlugged(1, 1), 4.0), 4.0)               # the operative one does
    assert [c[3]["eventType"] for c in calls if c[2] == "TransactionEvent"] == ["Started"]



@pytest.mark.parametrize("target", [dict(evse=None), dict(evse=1), dict(evse=1, connector=1)],
                         ids=["station", "evse", "connector"])
def test_an_ev_plugged_while_unavailable_counts_as_plugged_when_available_again(target):
    """G03/G04: the plug reaches the state machine when the connector becomes usable, as if
    the EV were plugged in at that moment: Occupied, and the TxStartPoint EVConnected starts
    a transaction (triggerReason CablePluggedIn, TC_E_09)."""
    h = booted((1,), stored={("TxCtrlr/TxStartPoint", "Actual"): "EVConnected"})
    change_availability(h, 1.0, "Inoperative", **target)
    assert h.settle(h.hw(CablePlugged(1, 1), 2.0), 2.0) == [] and h.tx_id(1) is None
    _, calls = change_availability(h, 3.0, "Operative", msg_id="ca2", **target)
    assert statuses(calls) == [(1, 1, "Occupied")]
    [started] = [c[3] for c in calls if c[2] == "TransactionEvent"]
    assert (started["eventType"], started["triggerReason"], started["evse"]) == \
        ("Started", "CablePluggedIn", {"id": 1, "connectorId": 1})
    assert started["timestamp"] == iso(h.station.clock.utc(3.0))


def test_a_card_after_the_connector_is_available_again_charges_the_ev_plugged_meanwhile():
    h = booted((1,))                                             # TxStartPoint PowerPathClosed
    change_availability(h, 1.0, "Inoperative", evse=1)
    h.settle(h.hw(CablePlugged(1, 1), 2.0), 2.0)
    change_availability(h, 3.0, "Operative", evse=1, msg_id="ca2")
    calls = h.settle(h.hw(TokenPresented(CARD[1], evse=1), 4.0), 4.0)
    assert [c[3]["eventType"] for c in calls if c[2] == "TransactionEvent"] == ["Started"]
    assert [e.closed for e in h.effects if isinstance(e, EnergyOffer)] == [True]     # the EV gets energy
    h.settle(h.hw(CableUnplugged(1, 1), 5.0), 5.0)               # TxStopPoint EVConnected: ends
    assert h.tx_id(1) is None


# =========================================================================== Reset

def test_reset_on_idle_when_idle_reboots_with_reason_remote_reset():
    h = booted((1,))
    effects = h.station.frame_received(json.dumps([2, "r1", "Reset", {"type": "OnIdle"}]), 1.0)
    h.run(effects)
    sends = [e for e in effects if isinstance(e, Send)]
    assert json.loads(sends[0].frame) == [3, "r1", {"status": "Accepted"}]
    assert Remember(NEXT_BOOT_REASON, "RemoteReset") in effects
    assert effects.index(Reboot("RemoteReset")) > effects.index(sends[0])
    assert effects.index(Remember(NEXT_BOOT_REASON, "RemoteReset")) < effects.index(Reboot("RemoteReset"))
    assert h.tick(5.0) == [] and h.reboots() == [Reboot("RemoteReset")]      # one reboot


def test_reset_on_idle_with_a_transaction_is_scheduled_then_a_scheduled_reset():
    h = booted((1,))
    tx = h.start_tx(1, 1.0)
    frames = h.call("Reset", {"type": "OnIdle"}, 2.0, msg_id="r1")
    assert h.reply_to(frames, "r1") == {"status": "Scheduled"}
    assert h.tx_id(1) == tx and h.reboots() == [] and h.remembered(NEXT_BOOT_REASON) == []
    [ended] = [f for f in h.stop_tx_frames(1, 3.0) if f[0] == 2]
    assert ended[2] == "TransactionEvent" and ended[3]["eventType"] == "Ended"
    assert h.remembered(NEXT_BOOT_REASON) == ["ScheduledReset"]
    assert h.reboots() == []                              # its Ended is not delivered yet
    h.answer(ended, {}, 3.1)
    assert h.reboots() == [Reboot("ScheduledReset")]


def _immediate_reset_with_transaction(h: Rig, now: float) -> list:
    tx = h.start_tx(1, now - 1.0)
    frames = h.call("Reset", {"type": "Immediate"}, now, msg_id="r1")
    assert frames[0] == [3, "r1", {"status": "Accepted"}]
    [ended] = [f for f in frames if f[0] == 2]
    p = ended[3]
    assert (ended[2], p["eventType"], p["triggerReason"], p["transactionInfo"]["stoppedReason"]) == (
        "TransactionEvent", "Ended", "ResetCommand", "ImmediateReset")
    assert p["transactionInfo"]["transactionId"] == tx and "idToken" not in p
    assert h.remembered(NEXT_BOOT_REASON) == ["RemoteReset"]
    assert h.reboots() == []                              # waits for the Ended's CALLRESULT
    return ended


def test_reset_immediate_ends_the_transaction_then_reboots_once_it_is_delivered():
    h = booted((1,))
    ended = _immediate_reset_with_transaction(h, 2.0)
    assert h.tick(3.0) == [] and h.reboots() == []
    h.answer(ended, {}, 3.5)
    assert h.reboots() == [Reboot("RemoteReset")]
    i_end = max(i for i, e in enumerate(h.effects) if isinstance(e, Send) and '"Ended"' in e.frame)
    assert h.effects.index(Reboot("RemoteReset")) > i_end


def test_reset_immediate_does_not_wait_beyond_its_deadline():
    h = booted((1,))
    _immediate_reset_with_transaction(h, 2.0)
    deadline = 2.0 + RESET_DELIVERY_WAIT
    assert h.station.next_deadline() <= deadline
    h.tick(deadline - 0.5)
    assert h.reboots() == []
    h.tick(deadline)
    assert h.reboots() == [Reboot("RemoteReset")]
    assert h.tick(deadline + 60) == [] and len(h.reboots()) == 1


def test_reset_immediate_does_not_wait_for_an_answer_once_the_link_is_down():
    h = booted((1,))
    _immediate_reset_with_transaction(h, 2.0)
    h.run(h.station.link_down(3.0))
    # The Ended cannot be answered any more (it stays queued durably): the station reboots now,
    # either at once or by asking to be ticked now.
    if not h.reboots():
        d = h.station.next_deadline()
        assert d is not None and d <= 3.0, (
            f"link down at 3.0 s: the reboot still waits for the Ended's answer (next deadline {d})")
        h.tick(3.0)
    assert h.reboots() == [Reboot("RemoteReset")]


def test_no_deadline_for_what_waits_behind_a_call_in_flight():
    """One CALL at a time (Part 4 §4.1.1): while a durable CALL waits for its answer, a
    durable message due behind it is not a deadline (the station would be ticked at once,
    again and again, and send nothing: a busy loop). Its answer sends the next one at once."""
    h = booted((1, 1))
    h.start_tx(1, 1.0)
    tx2 = h.start_tx(2, 1.0)
    [ended1] = [f for f in h.stop_tx_frames(1, 2.0) if f[0] == 2]
    assert [f for f in h.stop_tx_frames(2, 2.0) if f[0] == 2] == []          # queued behind it
    d = h.station.next_deadline()
    assert d is not None and d > 2.0, f"next deadline {d} while nothing can be sent before the answer"
    assert h.tick(2.0) == []
    [ended2] = [f for f in h.answer(ended1, {}, 2.5) if f[0] == 2]
    assert ended2[2] == "TransactionEvent" and ended2[3]["eventType"] == "Ended"
    assert ended2[3]["transactionInfo"]["transactionId"] == tx2


def test_reset_of_one_evse():
    h = booted((1, 1))
    tx1, tx2 = h.start_tx(1, 1.0), h.start_tx(2, 1.5)
    frames = h.call("Reset", {"type": "Immediate", "evseId": 1}, 2.0, msg_id="r1")
    assert h.reply_to(frames, "r1") == {"status": "Accepted"}
    calls = h.settle(frames, 2.0)
    ended = [c[3] for c in calls if c[2] == "TransactionEvent"]
    assert [(p["transactionInfo"]["transactionId"], p["eventType"], p["triggerReason"],
             p["transactionInfo"]["stoppedReason"]) for p in ended] == [
        (tx1, "Ended", "ResetCommand", "ImmediateReset")]
    assert h.tx_id(1) is None and h.tx_id(2) == tx2
    assert h.reboots() == [] and h.remembered(NEXT_BOOT_REASON) == []
    # OnIdle on the EVSE with a transaction: Scheduled, done (no reboot) once it ended
    frames = h.call("Reset", {"type": "OnIdle", "evseId": 2}, 3.0, msg_id="r2")
    assert h.reply_to(frames, "r2") == {"status": "Scheduled"} and h.tx_id(2) == tx2
    h.settle(h.stop_tx_frames(2, 4.0), 4.0)
    assert any(isinstance(e, Log) and "EVSE 2 reset" in e.text for e in h.effects)
    assert h.reboots() == [] and h.remembered(NEXT_BOOT_REASON) == []
    [reply] = h.call("Reset", {"type": "Immediate", "evseId": 3}, 5.0, msg_id="r3")
    assert reply[2]["status"] == "Rejected"


def test_reset_of_an_evse_that_does_not_allow_it_is_rejected():
    h = booted((1, 1), stored={("EVSE@1/AllowReset", "Actual"): "false"})
    tx = h.start_tx(1, 1.0)
    frames = h.call("Reset", {"type": "Immediate", "evseId": 1}, 2.0, msg_id="r1")
    assert h.reply_to(frames, "r1")["status"] == "Rejected"
    assert h.tx_id(1) == tx and [f for f in frames if f[0] == 2] == []
    frames = h.call("Reset", {"type": "Immediate", "evseId": 2}, 3.0, msg_id="r2")
    assert h.reply_to(frames, "r2") == {"status": "Accepted"}


@pytest.mark.parametrize("retries", [0, 2, 3])
def test_a_refused_reboot_is_retried_reset_retries_times_then_given_up(retries):
    h = booted((1,), stored={("OCPPCommCtrlr/ResetRetries", "Actual"): str(retries)})
    h.call("Reset", {"type": "Immediate"}, 1.0, msg_id="r1")
    assert h.reboots() == [Reboot("RemoteReset")]
    for n in range(retries):
        h.run(h.station.reboot_failed(2.0 + n, "permission denied"))
        assert len(h.reboots()) == 2 + n, f"retry {n + 1} of {retries}"
    h.run(h.station.reboot_failed(10.0, "permission denied"))
    assert len(h.reboots()) == 1 + retries                # given up
    assert any(isinstance(e, Log) and e.level == "error" for e in h.effects)
    assert h.remembered(NEXT_BOOT_REASON)[-1] is None     # the next boot is not a RemoteReset
    h.run(h.station.reboot_failed(11.0, "again"))
    assert len(h.reboots()) == 1 + retries
    # a new Reset is carried out again
    h.call("Reset", {"type": "Immediate"}, 12.0, msg_id="r2")
    assert len(h.reboots()) == 2 + retries


# =========================================================================== TriggerMessage

def trigger(h: Rig, now: float, what: str, evse=None, connector=None, msg_id="tm"):
    payload: dict = {"requestedMessage": what}
    if evse is not None:
        payload["evse"] = {"id": evse} if connector is None else {"id": evse, "connectorId": connector}
    frames = h.call("TriggerMessage", payload, now, msg_id=msg_id)
    return h.reply_to(frames, msg_id), frames


@pytest.mark.parametrize("what, action, payload", [
    ("Heartbeat", "Heartbeat", {}),
    ("LogStatusNotification", "LogStatusNotification", {"status": "Idle"}),
    ("FirmwareStatusNotification", "FirmwareStatusNotification", {"status": "Idle"}),
])
def test_trigger_sends_the_message_after_the_response(what, action, payload):
    h = booted((1,))
    res, frames = trigger(h, 1.0, what)
    assert res == {"status": "Accepted"}
    assert [f[0] for f in frames] == [3, 2]               # the answer first, then the message
    assert frames[1][2:] == [action, payload]


def test_trigger_boot_notification_rejected_once_accepted_and_sent_while_pending():
    h = booted((1,))
    res, frames = trigger(h, 1.0, "BootNotification")
    assert res["status"] == "Rejected" and [f for f in frames if f[0] == 2] == []
    p = Rig((1,))
    [boot] = p.up(0.0)
    p.answer(boot, {"currentTime": iso(T0), "interval": 300, "status": "Pending"}, 0.0)
    res, frames = trigger(p, 1.0, "BootNotification")
    assert res == {"status": "Accepted"}
    [again] = [f for f in frames if f[0] == 2]
    # F06 / TC_B_02 step 15: the BootNotification the CSMS asked for says so
    assert again[2] == "BootNotification" and again[3]["reason"] == "Triggered"
    p.answer(again, {"currentTime": iso(T0), "interval": 300, "status": "Pending"}, 1.0)
    # the station's own retry keeps the reason of this boot
    [retry] = [f for f in p.tick(301.0) if f[0] == 2]
    assert retry[2] == "BootNotification" and retry[3]["reason"] == "PowerUp"
    p.answer(retry, {"currentTime": iso(T0), "interval": 300, "status": "Accepted"}, 301.0)
    assert p.station.registration == "Accepted"


def test_trigger_status_notification_reports_the_current_status():
    h = booted((1, 2))
    h.settle(h.hw(CablePlugged(2, 2), 1.0), 1.0)
    res, frames = trigger(h, 2.0, "StatusNotification", 2, 2)
    assert res == {"status": "Accepted"}
    calls = h.settle(frames, 2.0)
    assert statuses(calls) == [(2, 2, "Occupied")]        # unchanged, reported because asked
    res, frames = trigger(h, 3.0, "StatusNotification", 2, 1, msg_id="t2")
    assert res == {"status": "Accepted"} and statuses(h.settle(frames, 3.0)) == [(2, 1, "Available")]


@pytest.mark.parametrize("what, evse, connector", [
    ("StatusNotification", None, None),     # which connector?
    ("StatusNotification", 1, None),
    ("StatusNotification", 1, 5),           # unknown connector
    ("StatusNotification", 9, 1),           # unknown EVSE
    ("MeterValues", 9, None),
    ("TransactionEvent", 9, None),
    ("Heartbeat", 9, None),
])
def test_trigger_rejected_cases(what, evse, connector):
    h = booted((1,))
    res, frames = trigger(h, 1.0, what, evse, connector)
    assert res["status"] == "Rejected"
    assert [f for f in frames if f[0] == 2] == []


def test_trigger_meter_values_per_evse_with_context_trigger():
    h = booted((1, 1))
    res, _ = trigger(h, 1.0, "MeterValues", 1)
    assert res["status"] == "Rejected"                   # no meter reading yet
    h.hw(MeterSampled(1, READING), 1.5)
    h.hw(MeterSampled(2, MeterReading(energy_wh=99.0, power_w=0.0)), 1.5)
    res, frames = trigger(h, 2.0, "MeterValues", 1, msg_id="t2")
    assert res == {"status": "Accepted"}
    [mv] = [c[3] for c in h.settle(frames, 2.0)]
    assert mv["evseId"] == 1
    values = mv["meterValue"][0]["sampledValue"]
    assert values and {v.get("context") for v in values} == {"Trigger"}
    assert values[0]["value"] == 1234.5                   # AlignedDataCtrlr.Measurands: the energy register
    res, frames = trigger(h, 3.0, "MeterValues", msg_id="t3")          # evse omitted: every EVSE
    assert res == {"status": "Accepted"}
    got = [(c[3]["evseId"], c[3]["meterValue"][0]["sampledValue"][0]["value"],
            c[3]["meterValue"][0]["sampledValue"][0]["context"]) for c in h.settle(frames, 3.0)]
    assert got == [(1, 1234.5, "Trigger"), (2, 99.0, "Trigger")]


def test_trigger_transaction_event():
    h = booted((1, 1))
    res, _ = trigger(h, 1.0, "TransactionEvent")
    assert res["status"] == "Rejected"                   # no transaction
    tx = h.start_tx(1, 2.0)
    h.hw(MeterSampled(1, READING), 2.5)
    res, _ = trigger(h, 3.0, "TransactionEvent", 2, msg_id="t2")
    assert res["status"] == "Rejected"                   # none on EVSE 2
    res, frames = trigger(h, 4.0, "TransactionEvent", 1, msg_id="t3")
    assert res == {"status": "Accepted"}
    [te] = [c[3] for c in h.settle(frames, 4.0)]
    assert (te["eventType"], te["triggerReason"], te["transactionInfo"]["transactionId"]) == (
        "Updated", "Trigger", tx)
    assert te["transactionInfo"]["chargingState"] == "EVConnected"
    values = te["meterValue"][0]["sampledValue"]
    assert values and {v.get("context") for v in values} == {"Trigger"}


@pytest.mark.parametrize("what", ["SignV2GCertificate",
                                  "SignCombinedCertificate", "PublishFirmwareStatusNotification"])
def test_trigger_of_what_the_station_does_not_send_is_not_implemented(what):
    h = booted((1,))
    res, frames = trigger(h, 1.0, what)
    assert res == {"status": "NotImplemented"} and [f for f in frames if f[0] == 2] == []


# =========================================================================== DataTransfer

def echo(data):
    return m.DataTransferResponse(status=m.DataTransferStatus.Accepted, data={"echo": data})


def refuse(_data):
    return m.DataTransferResponse(status=m.DataTransferStatus.Rejected)


def test_data_transfer_from_the_csms_goes_to_the_vendor_extension():
    ext = SimpleExtension("com.acme", {"echo": echo, "refuse": refuse})
    h = booted((1,), extensions=[ext])
    cases = [
        ({"vendorId": "org.other"}, {"status": "UnknownVendorId"}),
        ({"vendorId": "org.other", "messageId": "echo"}, {"status": "UnknownVendorId"}),
        ({"vendorId": "com.acme", "messageId": "nope"}, {"status": "UnknownMessageId"}),
        ({"vendorId": "com.acme"}, {"status": "UnknownMessageId"}),
        ({"vendorId": "com.acme", "messageId": "echo", "data": {"x": [1, 2]}},
         {"status": "Accepted", "data": {"echo": {"x": [1, 2]}}}),
        ({"vendorId": "com.acme", "messageId": "refuse", "data": "x"}, {"status": "Rejected"}),
    ]
    for n, (payload, expected) in enumerate(cases):
        [reply] = h.call("DataTransfer", payload, 1.0 + n, msg_id=f"dt{n}")
        assert reply == [3, f"dt{n}", expected], payload


def test_registry_without_extensions_and_with_two_for_one_vendor():
    req = m.DataTransferRequest(vendor_id="com.acme", message_id="x")
    assert DataTransferRegistry().handle(req).status == m.DataTransferStatus.UnknownVendorId
    with pytest.raises(ValueError):
        DataTransferRegistry([SimpleExtension("com.acme"), SimpleExtension("com.acme")])


def test_station_data_transfer_answer_and_error_go_back_to_the_extension():
    ext = SimpleExtension("com.acme")
    other = SimpleExtension("org.other")
    h = booted((1,), extensions=[ext, other])
    [call] = h.run(h.station.send_data_transfer("com.acme", "hello", {"a": 1}, 1.0))
    assert call[2:] == ["DataTransfer", {"vendorId": "com.acme", "messageId": "hello", "data": {"a": 1}}]
    h.answer(call, {"status": "Accepted", "data": "ok"}, 1.1)
    [(req, resp, err)] = ext.responses
    assert (req.vendor_id, req.message_id, req.data) == ("com.acme", "hello", {"a": 1})
    assert (resp.status, resp.data, err) == (m.DataTransferStatus.Accepted, "ok", None)
    # a CALLERROR
    [call] = h.run(h.station.send_data_transfer("com.acme", "bye", None, 2.0))
    h.run(h.station.frame_received(json.dumps([4, call[1], "NotImplemented", "no DataTransfer here", {}]), 2.1))
    req, resp, err = ext.responses[1]
    assert req.message_id == "bye" and resp is None and "NotImplemented" in err
    # no answer within MessageTimeout
    [call] = h.run(h.station.send_data_transfer("com.acme", "late", None, 3.0))
    h.tick(3.0 + h.station.rpc.message_timeout)
    req, resp, err = ext.responses[2]
    assert req.message_id == "late" and resp is None and err
    assert other.responses == []                           # each vendor gets only its own
    # an answer for a vendor nobody registered is dropped quietly
    [call] = h.run(h.station.send_data_transfer("net.unknown", None, None, 40.0))
    h.answer(call, {"status": "UnknownVendorId"}, 40.1)
    assert len(ext.responses) == 3


# =========================================================================== SettingSystemTime

def heartbeat_with_clock_off_by(h: Rig, now: float, seconds: float, msg_id: str) -> list[list]:
    _, frames = trigger(h, now, "Heartbeat", msg_id=msg_id)
    [hb] = [f for f in frames if f[0] == 2]
    off = h.station.clock.utc(now) + timedelta(seconds=seconds)
    return [f for f in h.answer(hb, {"currentTime": iso(off)}, now) if f[0] == 2]


@pytest.mark.parametrize("threshold, jump, reported", [
    (5, 6.0, True), (5, -6.0, True), (5, 4.0, False), (5, -4.0, False), (20, 19.0, False), (20, 25.0, True),
])
def test_setting_system_time_follows_the_time_adjustment_reporting_threshold(threshold, jump, reported):
    h = booted((1,), stored={("ClockCtrlr/TimeAdjustmentReportingThreshold", "Actual"): str(threshold)})
    calls = heartbeat_with_clock_off_by(h, 1.0, jump, "hb")
    events_sent = [c[3] for c in calls if c[2] == "SecurityEventNotification"]
    if reported:
        [ev] = events_sent
        assert ev["type"] == SETTING_SYSTEM_TIME and ev["timestamp"] == iso(T0 + timedelta(seconds=1.0 + jump))
    else:
        assert events_sent == []
    assert h.station.clock.utc(1.0) == T0 + timedelta(seconds=1.0 + jump)


# =========================================================================== OfflineThreshold

def test_offline_longer_than_the_threshold_reports_every_connector_again():
    h = booted((1, 1), stored={("OCPPCommCtrlr/OfflineThreshold", "Actual"): "30"})
    h.run(h.station.link_down(1.0))
    calls = h.settle(h.up(32.0), 32.0)                    # 31 s > 30 s
    assert statuses(calls) == [(1, 1, "Available"), (2, 1, "Available")]


def test_offline_shorter_than_the_threshold_reports_only_what_changed():
    h = booted((1, 1), stored={("OCPPCommCtrlr/OfflineThreshold", "Actual"): "30"})
    h.run(h.station.link_down(1.0))
    assert statuses(h.settle(h.up(20.0), 20.0)) == []     # nothing changed
    h.run(h.station.link_down(21.0))
    h.hw(CablePlugged(2, 1), 22.0)                        # while offline
    calls = h.settle(h.up(40.0), 40.0)                    # 19 s < 30 s
    assert statuses(calls) == [(2, 1, "Occupied")]


# =========================================================================== faults and device problems

def component_events(calls, component: str) -> list[tuple]:
    return [(d["component"].get("evse"), d["variable"]["name"], d["actualValue"], d.get("cleared"),
             d["trigger"], d.get("techInfo")) for d in events(calls) if d["component"]["name"] == component]


def test_a_fault_naming_its_component_faults_the_evse_and_notifies_the_variable():
    h = booted((1,), parts=("RCD",))
    tripped = VariableRef("RCD", "Tripped", evse=1)
    assert h.station.dm.value(tripped) == "false"
    calls = h.settle(h.hw(FaultRaised(1, "GroundFailure", component="RCD", variable="Tripped"), 1.0), 1.0)
    assert statuses(calls) == [(1, 1, "Faulted")]
    assert component_events(calls, "RCD") == [({"id": 1}, "Tripped", "true", None, "Delta", "GroundFailure")]
    assert h.station.dm.value(tripped) == "true"
    calls = h.settle(h.hw(FaultCleared(1, "GroundFailure"), 2.0), 2.0)
    assert statuses(calls) == [(1, 1, "Available")]
    [(evse, variable, value, cleared, trig, _)] = component_events(calls, "RCD")
    assert (evse, variable, value, cleared, trig) == ({"id": 1}, "Tripped", "false", True, "Delta")
    assert h.station.dm.value(tripped) == "false"


def test_overlapping_faults_keep_the_evse_faulted_until_both_are_cleared():
    h = booted((1,), parts=("RCD", "PowerContactor"))
    calls = h.settle(h.hw(FaultRaised(1, "GroundFailure", component="RCD", variable="Tripped"), 1.0), 1.0)
    assert statuses(calls) == [(1, 1, "Faulted")]
    calls = h.settle(h.hw(FaultRaised(1, "WeldedContactor", component="PowerContactor"), 2.0), 2.0)
    assert statuses(calls) == []                          # Faulted already
    assert component_events(calls, "PowerContactor") == [
        ({"id": 1}, "Problem", "true", None, "Delta", "WeldedContactor")]
    calls = h.settle(h.hw(FaultCleared(1, "GroundFailure"), 3.0), 3.0)
    assert statuses(calls) == [] and h.status(1) == "Faulted"
    assert [e[2:4] for e in component_events(calls, "RCD")] == [("false", True)]
    calls = h.settle(h.hw(FaultCleared(1, "WeldedContactor"), 4.0), 4.0)
    assert statuses(calls) == [(1, 1, "Available")]
    assert [e[2:4] for e in component_events(calls, "PowerContactor")] == [("false", True)]


def test_a_fault_without_component_and_a_clear_of_every_fault():
    h = booted((1,), parts=("RCD",))
    h.settle(h.hw(FaultRaised(1, "GroundFailure", component="RCD", variable="Tripped"), 1.0), 1.0)
    calls = h.settle(h.hw(FaultRaised(1, "ControllerSilent"), 2.0), 2.0)
    assert events(calls) == []                            # no component: no variable to notify
    calls = h.settle(h.hw(FaultCleared(1), 3.0), 3.0)     # every fault of the EVSE
    assert statuses(calls) == [(1, 1, "Available")]
    assert [e[2:4] for e in component_events(calls, "RCD")] == [("false", True)]


def test_device_problem_notifies_and_sets_the_device_model_variable():
    h = booted((1,), parts=("TokenReader",))
    problem = VariableRef("TokenReader", "Problem")
    calls = h.settle(h.hw(DeviceProblem("TokenReader", True, None, "no answer from the PN532"), 1.0), 1.0)
    assert component_events(calls, "TokenReader") == [
        (None, "Problem", "true", None, "Delta", "no answer from the PN532")]
    assert statuses(calls) == [] and h.station.dm.value(problem) == "true"
    assert h.hw(DeviceProblem("TokenReader", True, None, "still nothing"), 2.0) == []     # no change
    calls = h.settle(h.hw(DeviceProblem("TokenReader", False, None, "answers again"), 3.0), 3.0)
    assert [e[2:4] for e in component_events(calls, "TokenReader")] == [("false", True)]
    assert h.station.dm.value(problem) == "false"


def test_device_problem_of_a_component_the_device_model_does_not_define():
    h = booted((1,))
    calls = h.settle(h.hw(DeviceProblem("FiscalMetering", True, 1, "CRC error"), 1.0), 1.0)
    assert component_events(calls, "FiscalMetering") == [({"id": 1}, "Problem", "true", None, "Delta", "CRC error")]
    assert h.station.dm.definition(VariableRef("FiscalMetering", "Problem", evse=1)) is None
    assert statuses(calls) == [] and h.status(1) == "Available"


# =========================================================================== local time (C-25/C-26)

def test_time_offset_takes_its_next_value_at_the_transition_once():
    h = booted((1,))
    t0 = h.station.clock.utc(1.0)
    at = (t0 + timedelta(seconds=100)).isoformat().replace("+00:00", "Z")
    [res] = h.call("SetVariables", {"setVariableData": [
        {"component": {"name": "ClockCtrlr"}, "variable": {"name": "TimeOffset", "instance": "NextTransition"},
         "attributeValue": "+02:00"},
        {"component": {"name": "ClockCtrlr"}, "variable": {"name": "NextTimeOffsetTransitionDateTime"},
         "attributeValue": at}]}, 1.0, msg_id="sv")
    assert [r["attributeStatus"] for r in res[2]["setVariableResult"]] == ["Accepted", "Accepted"]
    assert h.station.next_deadline() <= 101.0 + 1e-6
    h.tick(100.9)
    assert h.station.dm.get("ClockCtrlr", "TimeOffset") == "+00:00"
    h.tick(101.0)
    assert h.station.dm.get("ClockCtrlr", "TimeOffset") == "+02:00"
    assert Persist("ClockCtrlr/TimeOffset", "+02:00") in h.effects
    # cleared (stored as "", which a reload ignores): it happens once, no deadline is left for it
    assert h.station.dm.get("ClockCtrlr", "NextTimeOffsetTransitionDateTime") in ("", None)
    assert Persist("ClockCtrlr/NextTimeOffsetTransitionDateTime", "") in h.effects
    d = h.station.next_deadline()
    assert d is None or d > 101.0


@pytest.mark.parametrize("variable, instance, value, ok", [
    ("TimeOffset", None, "+01:00", True), ("TimeOffset", None, "-09:30", True), ("TimeOffset", None, "+1:00", False),
    ("TimeOffset", None, "+15:00", False), ("TimeOffset", None, "01:00x", False),
    ("TimeOffset", "NextTransition", "+02:60", False),
    ("TimeZone", None, "Europe/Oslo", True), ("TimeZone", None, "America/Argentina/Buenos_Aires", True),
    ("TimeZone", None, "Europe Oslo", False), ("TimeZone", None, "/etc/passwd", False),
])
def test_time_offset_and_time_zone_formats_are_checked(variable, instance, value, ok):
    h = booted((1,))
    [res] = h.call("SetVariables", {"setVariableData": [
        {"component": {"name": "ClockCtrlr"}, "variable": {"name": variable, **({"instance": instance} if instance else {})},
         "attributeValue": value}]}, 1.0, msg_id="sv")
    assert (res[2]["setVariableResult"][0]["attributeStatus"] == "Accepted") is ok


def test_sends_lost_with_the_link_do_not_use_up_message_attempts():
    """E13: MessageAttempts counts the times the CSMS failed to process a TransactionEvent; a
    send lost with the link is sent again and does not count (found by the link-cut chaos run)."""
    h = booted((1,))
    h.start_tx(1, 1.0)
    frames = h.hw(CableUnplugged(1, 1), 2.0)
    [ended] = [f for f in frames if f[0] == 2 and f[2] == "TransactionEvent"]
    now = 2.0
    for _ in range(3):                                   # three link cuts while it is in flight
        now += 1
        h.run(h.station.link_down(now))
        [ended] = [f for f in h.up(now) if f[0] == 2 and f[2] == "TransactionEvent"]
    now += 1
    h.run(h.station.frame_received(json.dumps([4, ended[1], "InternalError", "CSMS failed once", {}]), now))
    assert not [e for e in h.effects if isinstance(e, Log) and "dropped" in e.text]
    assert h.station.transactions.queued_for(None), "one CALLERROR dropped an event the CSMS never processed"
    # it is retried after MessageAttemptInterval and delivered
    interval = h.station.dm.get_int("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent")
    [again] = [f for f in h.tick(now + interval) if f[0] == 2]
    assert again[3] == ended[3]
    h.answer(again, {}, now + interval)
    assert not h.station.transactions.queued_for(None)
