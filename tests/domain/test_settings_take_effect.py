"""Settings changed at run time take effect at once (issue 12, defect 4; README "The device
model": accepted writes take effect at once).

One test per writable (ReadWrite or WriteOnly) variable the station defines: the CSMS sets it
with SetVariables and the very next input (a plug, a card, a CALL, a tick of the deadline it
asked for) already behaves by the new value -- never an unrelated timer tick first. The guard
test at the end enumerates every writable variable of the loaded definitions (every hardware
part, several EVSEs) and fails when one has no test here, so no new variable can hide.

Variables that only the websocket link uses (WebSocketPingInterval, RetryBackOff*,
BasicAuthPassword) are observed as the `Reconfigure` effect of the SetVariables step; the
runtime carrying it out at once is tested in tests/integration/test_station_e2e.py
(test_link_settings_set_by_the_csms_reach_the_link_at_once). Variables nothing in this station
uses yet are listed in NOT_USED with the reason; their test observes the read-back and the
stored value.

Pure: the station is driven by hand (tests/domain/test_operations.Rig), time injected as `now`.
"""
from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from importlib import resources

import pytest

from domain.authorization.cache import AuthCache
from domain.authorization.service import CACHE_TABLE
from domain.clock import StationClock
from domain import messages as m
from domain.device_model import DeviceModel, VariableRef, parse_ref
from domain.effects import Log, Persist, Reconfigure, StoreRecords
from domain.effects import CertificateOutcome, MakeCsr
from domain.hardware_events import (
    CablePlugged,
    CableUnplugged,
    JobFinished,
    MeterReading,
    MeterSampled,
    OccupancyChanged,
    TokenPresented,
)
from domain.station import Station, StationInfo, StoredState
from domain.effects import EnergyOffer
from domain.transactions import TxSettings, UnlockConnector
from tests.domain.defs import HARDWARE_FOLDER, PACKAGE, load_definitions, read_definition_files
from tests.domain.test_operations import CARD, READING, Rig, heartbeat_with_clock_off_by, iso, statuses, trigger
from tests.domain.test_station import T0

PASSWORD = "0123456789abcdef"

# variable name ("Component.Variable[instance]", per-EVSE ones once) -> the tests that cover it
COVERED: dict[str, list[str]] = {}
# variable name -> why nothing in this station uses it yet (its test observes the read-back only)
NOT_USED: dict[str, str] = {}


def covers(*names: str, unused: str | None = None):
    """Register the decorated test as the run-time test of the variables `names`."""
    def mark(fn):
        for name in names:
            COVERED.setdefault(name, []).append(fn.__name__)
            if unused is not None:
                NOT_USED[name] = unused
        return fn
    return mark


# =========================================================================== the rig

class SettingsRig(Rig):
    """Rig with what some settings need at construction: stored authorization records and
    the definitions (a smaller cache to see its replacement policy)."""

    def __init__(self, evse_connectors=(1,), *, stored=None, auth_records=None, definitions=None):
        self.ids = 0
        self.tx_ids = 0
        defs = definitions if definitions is not None else load_definitions(
            list(evse_connectors), station_id="CS-1", security_profile=1, basic_auth_password=PASSWORD)
        self.station = Station(
            info=StationInfo("ACME", "Model-X", "SN-1", "1.0"), evse_connectors=list(evse_connectors),
            device_model=DeviceModel(defs, stored or {}), clock=StationClock(0.0, T0),
            new_message_id=self._new_id, new_transaction_id=self._new_tx,
            stored=StoredState(records={CACHE_TABLE: auth_records}) if auth_records is not None else None)
        self.effects: list = []
        self.calls: list[list] = []
        self.run(self.station.start(0.0))        # as the runtime does: the first idle schedule


def stored(table: dict[str, str]) -> dict[tuple[str, str], str]:
    """{"AlignedDataCtrlr.Interval": "3"} -> the stored values a DeviceModel takes."""
    return {(parse_ref(name).key, "Actual"): value for name, value in table.items()}


def boot(evse_connectors=(1,), **kw) -> SettingsRig:
    """Started, registered (heartbeat every 60 s), every message answered at 0.0."""
    h = SettingsRig(evse_connectors, **kw)
    h.settle(h.boot_accepted(now=0.0), 0.0)
    h.calls.clear()
    h.effects.clear()
    return h


def _component_variable(name: str) -> tuple[dict, dict]:
    ref = parse_ref(name)
    component = {"name": ref.component, **({"instance": ref.component_instance} if ref.component_instance else {})}
    variable = {"name": ref.variable, **({"instance": ref.variable_instance} if ref.variable_instance else {})}
    return component, variable


def set_var(h: Rig, now: float, name: str, value: str, msg_id: str = "sv") -> list:
    """SetVariables of one variable, Accepted; returns the effects of that one step."""
    component, variable = _component_variable(name)
    effects = h.station.frame_received(json.dumps([2, msg_id, "SetVariables", {"setVariableData": [
        {"component": component, "variable": variable, "attributeValue": value}]}]), now)
    frames = h.run(effects)
    [result] = h.reply_to(frames, msg_id)["setVariableResult"]
    assert result["attributeStatus"] == "Accepted", result
    return effects


def read_back(h: Rig, now: float, name: str, msg_id: str = "gv") -> str | None:
    component, variable = _component_variable(name)
    frames = h.call("GetVariables", {"getVariableData": [{"component": component, "variable": variable}]},
                    now, msg_id=msg_id)
    [result] = h.reply_to(frames, msg_id)["getVariableResult"]
    assert result["attributeStatus"] == "Accepted", result
    return result.get("attributeValue")


def calls_of(frames, action: str) -> list[dict]:
    return [f[3] for f in frames if f[0] == 2 and f[2] == action]


def tx_events(frames) -> list[dict]:
    return calls_of(frames, "TransactionEvent")


def measurands(meter_value: dict) -> list[str]:
    return [v.get("measurand", "Energy.Active.Import.Register") for v in meter_value["sampledValue"]]


def contexts(meter_values: list[dict]) -> list[tuple[str, str]]:
    """(timestamp, context) of every MeterValue (its first SampledValue's context)."""
    return [(mv["timestamp"], mv["sampledValue"][0]["context"]) for mv in meter_values]


def at(seconds: float) -> str:
    """The station's timestamp of monotonic `seconds` (the clock is T0 at 0.0)."""
    return iso(T0 + timedelta(seconds=seconds))


def authorized(h: Rig, evse: int = 1) -> str | None:
    return h.station.snapshot()["evses"][evse]["authorized"]


def present(h: Rig, token: str, now: float) -> list:
    return h.hw(TokenPresented(token, "ISO14443", 1), now)


def card_cached(h: Rig, token: str, now: float, status: str = "Accepted") -> None:
    """`token` presented online, the CSMS answers `status` (cached); an Accepted one ends its
    authorization again (same card), so the EVSE is free."""
    [auth] = [f for f in present(h, token, now) if f[0] == 2 and f[2] == "Authorize"]
    h.settle(h.answer(auth, {"idTokenInfo": {"status": status}}, now), now)
    if status == "Accepted":
        assert authorized(h) == token
        present(h, token, now)
    assert authorized(h) is None


def started_tx_with_started_unanswered(h: Rig, now: float) -> list:
    """EV plugged, CARD[1] authorized by the CSMS: the Started TransactionEvent (with the
    idToken) is sent and left unanswered (the CSMS answers it in the test)."""
    h.settle(h.hw(CablePlugged(1, 1), now), now)
    [auth] = [f for f in h.hw(TokenPresented(CARD[1], evse=1), now) if f[0] == 2]
    [started] = [f for f in h.answer(auth, {"idTokenInfo": {"status": "Accepted"}}, now) if f[0] == 2]
    assert started[2] == "TransactionEvent" and started[3]["eventType"] == "Started"
    return started


# =========================================================================== AlignedDataCtrlr (J01)

@covers("AlignedDataCtrlr.Interval")
def test_aligned_interval_reschedules_idle_meter_values_at_once():
    """Issue 12: with SendDuringIdle true, Interval=3 gives MeterValues at the next 3 s boundary,
    not after the boundary of the old 900 s interval."""
    h = boot(stored=stored({"AlignedDataCtrlr.SendDuringIdle": "true"}))
    h.hw(MeterSampled(1, READING), 0.5)
    assert h.station.next_deadline() > 12.0
    set_var(h, 10.0, "AlignedDataCtrlr.Interval", "3")
    assert h.station.next_deadline() == pytest.approx(12.0)
    assert h.tick(11.9) == []
    [mv] = calls_of(h.tick(12.0), "MeterValues")
    assert mv["evseId"] == 1 and contexts(mv["meterValue"]) == [(at(12.0), "Sample.Clock")]
    assert read_back(h, 12.5, "AlignedDataCtrlr.Interval") == "3"


@covers("AlignedDataCtrlr.Interval")
def test_aligned_interval_reschedules_a_running_transactions_clock_sampler_at_once():
    h = boot()
    h.hw(MeterSampled(1, READING), 0.5)
    h.start_tx(1, 1.0)
    set_var(h, 10.0, "AlignedDataCtrlr.Interval", "3")
    assert h.station.next_deadline() == pytest.approx(12.0)
    [te] = tx_events(h.tick(12.0))
    assert (te["eventType"], te["triggerReason"]) == ("Updated", "MeterValueClock")
    assert contexts(te["meterValue"]) == [(at(12.0), "Sample.Clock")]


@covers("AlignedDataCtrlr.Enabled")
def test_aligned_enabled_schedules_idle_meter_values_at_once():
    h = boot(stored=stored({"AlignedDataCtrlr.Enabled": "false", "AlignedDataCtrlr.Interval": "3"}))
    h.hw(MeterSampled(1, READING), 0.5)
    assert h.station.next_deadline() == pytest.approx(60.0)          # the heartbeat only
    set_var(h, 1.0, "AlignedDataCtrlr.Enabled", "true")
    assert h.station.next_deadline() == pytest.approx(3.0)
    frames = h.tick(3.0)
    [mv] = calls_of(frames, "MeterValues")
    assert contexts(mv["meterValue"]) == [(at(3.0), "Sample.Clock")]
    h.settle(frames, 3.0)
    set_var(h, 4.0, "AlignedDataCtrlr.Enabled", "false", msg_id="sv2")
    assert h.station.next_deadline() == pytest.approx(63.0)          # off again at once: the heartbeat only


@covers("AlignedDataCtrlr.Measurands")
def test_aligned_measurands_apply_to_the_next_meter_values():
    h = boot(stored=stored({"AlignedDataCtrlr.Interval": "3"}))
    h.hw(MeterSampled(1, READING), 0.5)
    set_var(h, 1.0, "AlignedDataCtrlr.Measurands", "Power.Active.Import")
    res, frames = trigger(h, 1.5, "MeterValues", 1)                  # F06: AlignedDataCtrlr.Measurands
    assert res == {"status": "Accepted"}
    [mv] = calls_of(h.settle(frames, 1.5), "MeterValues")
    assert measurands(mv["meterValue"][0]) == ["Power.Active.Import"]
    [mv] = calls_of(h.tick(3.0), "MeterValues")
    assert measurands(mv["meterValue"][0]) == ["Power.Active.Import"]


@covers("AlignedDataCtrlr.SendDuringIdle")
def test_send_during_idle_false_arms_the_transactions_clock_sampler_at_once():
    h = boot(stored=stored({"AlignedDataCtrlr.Interval": "3", "AlignedDataCtrlr.SendDuringIdle": "true"}))
    h.hw(MeterSampled(1, READING), 0.5)
    h.start_tx(1, 1.0)
    set_var(h, 2.0, "AlignedDataCtrlr.SendDuringIdle", "false")
    frames = h.tick(3.0)
    [te] = tx_events(frames)                                         # the very next boundary
    assert (te["triggerReason"], contexts(te["meterValue"])) == ("MeterValueClock", [(at(3.0), "Sample.Clock")])
    h.settle(frames, 3.0)
    set_var(h, 4.0, "AlignedDataCtrlr.SendDuringIdle", "true", msg_id="sv2")
    assert tx_events(h.tick(6.0)) == []                              # none during the transaction now


@covers("AlignedDataCtrlr.TxEndedInterval")
def test_aligned_tx_ended_interval_starts_the_series_at_the_next_boundary():
    h = boot()
    h.hw(MeterSampled(1, READING), 0.5)
    h.start_tx(1, 1.0)
    set_var(h, 2.0, "AlignedDataCtrlr.TxEndedInterval", "3")
    assert h.station.next_deadline() == pytest.approx(3.0)
    assert h.tick(3.0) == [] and h.tick(6.0) == []                   # collected for the Ended event
    [ended] = [e for e in tx_events(h.settle(h.stop_tx_frames(1, 7.0), 7.0)) if e["eventType"] == "Ended"]
    assert contexts(ended["meterValue"]) == [(at(3.0), "Sample.Clock"), (at(6.0), "Sample.Clock"),
                                             (at(7.0), "Transaction.End")]


@covers("AlignedDataCtrlr.TxEndedMeasurands")
def test_aligned_tx_ended_measurands_apply_to_the_next_sample():
    h = boot(stored=stored({"AlignedDataCtrlr.TxEndedInterval": "3"}))
    h.hw(MeterSampled(1, READING), 0.5)
    h.start_tx(1, 1.0)
    set_var(h, 2.0, "AlignedDataCtrlr.TxEndedMeasurands", "Power.Active.Import")
    h.tick(3.0)
    [ended] = [e for e in tx_events(h.settle(h.stop_tx_frames(1, 4.0), 4.0)) if e["eventType"] == "Ended"]
    clock = [mv for mv in ended["meterValue"] if mv["sampledValue"][0]["context"] == "Sample.Clock"]
    assert [(mv["timestamp"], measurands(mv)) for mv in clock] == [(at(3.0), ["Power.Active.Import"])]


# =========================================================================== SampledDataCtrlr (J02)

@covers("SampledDataCtrlr.Enabled")
def test_sampled_data_enabled_applies_to_the_next_transaction():
    h = boot(stored=stored({"SampledDataCtrlr.Enabled": "false"}))
    h.hw(MeterSampled(1, READING), 0.5)
    set_var(h, 1.0, "SampledDataCtrlr.Enabled", "true")
    h.start_tx(1, 2.0)
    [started] = [c[3] for c in h.calls if c[2] == "TransactionEvent"]
    assert contexts(started["meterValue"]) == [(at(2.0), "Transaction.Begin")]


@covers("SampledDataCtrlr.TxEndedInterval")
def test_sampled_tx_ended_interval_starts_the_series_from_now():
    h = boot()
    h.hw(MeterSampled(1, READING), 0.5)
    h.start_tx(1, 1.0)
    set_var(h, 1.5, "SampledDataCtrlr.TxEndedInterval", "2")
    assert h.station.next_deadline() == pytest.approx(3.5)
    h.tick(3.5)
    h.tick(5.5)
    [ended] = [e for e in tx_events(h.settle(h.stop_tx_frames(1, 6.0), 6.0)) if e["eventType"] == "Ended"]
    assert contexts(ended["meterValue"]) == [(at(3.5), "Sample.Periodic"), (at(5.5), "Sample.Periodic"),
                                             (at(6.0), "Transaction.End")]


@covers("SampledDataCtrlr.TxEndedMeasurands")
def test_sampled_tx_ended_measurands_apply_to_the_running_transactions_end():
    h = boot()
    h.hw(MeterSampled(1, READING), 0.5)
    h.start_tx(1, 1.0)
    set_var(h, 2.0, "SampledDataCtrlr.TxEndedMeasurands", "Power.Active.Import")
    [ended] = [e for e in tx_events(h.settle(h.stop_tx_frames(1, 3.0), 3.0)) if e["eventType"] == "Ended"]
    [end] = ended["meterValue"]
    assert measurands(end) == ["Power.Active.Import"] and end["sampledValue"][0]["context"] == "Transaction.End"


@covers("SampledDataCtrlr.TxStartedMeasurands")
def test_sampled_tx_started_measurands_apply_to_the_next_start():
    h = boot()
    h.hw(MeterSampled(1, READING), 0.5)
    set_var(h, 1.0, "SampledDataCtrlr.TxStartedMeasurands", "Energy.Active.Import.Register,Power.Active.Import")
    h.start_tx(1, 2.0)
    [started] = [c[3] for c in h.calls if c[2] == "TransactionEvent"]
    assert measurands(started["meterValue"][0]) == ["Energy.Active.Import.Register", "Power.Active.Import"]


@covers("SampledDataCtrlr.TxUpdatedInterval")
def test_sampled_tx_updated_interval_reschedules_the_running_transaction():
    h = boot()
    h.hw(MeterSampled(1, READING), 0.5)
    h.start_tx(1, 1.0)
    assert h.station.next_deadline() == pytest.approx(61.0)          # 60 s from the start (and the heartbeat)
    set_var(h, 2.0, "SampledDataCtrlr.TxUpdatedInterval", "5")
    assert h.station.next_deadline() == pytest.approx(7.0)
    [te] = tx_events(h.tick(7.0))
    assert (te["triggerReason"], contexts(te["meterValue"])) == ("MeterValuePeriodic", [(at(7.0), "Sample.Periodic")])


@covers("SampledDataCtrlr.TxUpdatedMeasurands")
def test_sampled_tx_updated_measurands_apply_to_the_next_updated_event():
    h = boot()
    h.hw(MeterSampled(1, MeterReading(energy_wh=10.0, power_w=2300.0, current_a=(10.0,))), 0.5)
    h.start_tx(1, 1.0)
    set_var(h, 2.0, "SampledDataCtrlr.TxUpdatedMeasurands", "Current.Import")
    res, frames = trigger(h, 2.5, "TransactionEvent", 1)             # F06: TxUpdatedMeasurands
    assert res == {"status": "Accepted"}
    [te] = tx_events(h.settle(frames, 2.5))
    assert measurands(te["meterValue"][0]) == ["Current.Import"]


# =========================================================================== TxCtrlr (E)

@covers("TxCtrlr.TxStartPoint")
def test_tx_start_point_reaches_the_state_machine_before_the_next_plug():
    """Issue 12: TxStartPoint=EVConnected by SetVariables, a plug 1 s later starts the
    transaction -- no tick in between."""
    h = boot()
    set_var(h, 1.0, "TxCtrlr.TxStartPoint", "EVConnected")
    calls = h.settle(h.hw(CablePlugged(1, 1), 2.0), 2.0)
    [started] = tx_events(calls)
    assert (started["eventType"], started["triggerReason"]) == ("Started", "CablePluggedIn")
    assert h.tx_id(1) == started["transactionInfo"]["transactionId"]
    assert read_back(h, 2.5, "TxCtrlr.TxStartPoint") == "EVConnected"


@covers("TxCtrlr.TxStopPoint")
def test_tx_stop_point_applies_to_the_running_transaction():
    h = boot()
    tx = h.start_tx(1, 1.0)
    set_var(h, 2.0, "TxCtrlr.TxStopPoint", "EVConnected")
    [te] = tx_events(h.settle(h.stop_tx_frames(1, 3.0), 3.0))      # the card again: no longer a stop point
    assert (te["eventType"], te["triggerReason"]) == ("Updated", "StopAuthorized") and h.tx_id(1) == tx
    [ended] = tx_events(h.settle(h.hw(CableUnplugged(1, 1), 4.0), 4.0))
    assert ended["eventType"] == "Ended" and h.tx_id(1) is None


@covers("TxCtrlr.EVConnectionTimeOut")
def test_ev_connection_timeout_applies_to_the_next_authorization():
    h = boot()
    set_var(h, 1.0, "TxCtrlr.EVConnectionTimeOut", "5")
    h.settle(present(h, CARD[1], 2.0), 2.0)
    assert authorized(h) == CARD[1]
    assert h.station.next_deadline() == pytest.approx(7.0)
    h.tick(7.0)
    assert authorized(h) is None


@covers("TxCtrlr.EVConnectionTimeOut")
def test_ev_connection_timeout_applies_to_the_running_timer():
    h = boot()
    h.settle(present(h, CARD[1], 1.0), 1.0)                          # 120 s to plug in
    set_var(h, 2.0, "TxCtrlr.EVConnectionTimeOut", "10")
    assert h.station.next_deadline() == pytest.approx(11.0)           # counted from the authorization
    h.tick(11.0)
    assert authorized(h) is None


@covers("TxCtrlr.StopTxOnInvalidId")
def test_stop_tx_on_invalid_id_applies_to_the_next_csms_answer():
    h = boot()
    h.hw(MeterSampled(1, READING), 0.5)
    started = started_tx_with_started_unanswered(h, 1.0)
    set_var(h, 1.5, "TxCtrlr.StopTxOnInvalidId", "false")
    frames = h.answer(started, {"idTokenInfo": {"status": "Invalid"}}, 2.0)
    [te] = tx_events(frames)
    assert (te["eventType"], te["transactionInfo"]["chargingState"]) == ("Updated", "SuspendedEVSE")
    assert EnergyOffer(1, False) in h.effects and h.tx_id(1) is not None   # goes on, without energy (TC_C_17)


@covers("TxCtrlr.MaxEnergyOnInvalidId")
def test_max_energy_on_invalid_id_applies_to_the_next_csms_answer():
    h = boot(stored=stored({"TxCtrlr.StopTxOnInvalidId": "false"}))
    h.hw(MeterSampled(1, READING), 0.5)
    started = started_tx_with_started_unanswered(h, 1.0)
    set_var(h, 1.5, "TxCtrlr.MaxEnergyOnInvalidId", "100")
    h.effects.clear()
    assert h.answer(started, {"idTokenInfo": {"status": "Invalid"}}, 2.0) == []
    assert EnergyOffer(1, False) not in h.effects                      # 100 Wh more are allowed
    more = dataclasses.replace(READING, energy_wh=READING.energy_wh + 100.0)
    [te] = tx_events(h.hw(MeterSampled(1, more), 3.0))
    assert te["triggerReason"] == "EnergyLimitReached" and EnergyOffer(1, False) in h.effects


@covers("TxCtrlr.StopTxOnEVSideDisconnect")
def test_stop_tx_on_ev_side_disconnect_applies_to_the_next_unplug():
    h = boot(stored=stored({"TxCtrlr.TxStopPoint": "Authorized"}))
    tx = h.start_tx(1, 1.0)
    set_var(h, 2.0, "TxCtrlr.StopTxOnEVSideDisconnect", "false")
    [te] = tx_events(h.settle(h.hw(CableUnplugged(1, 1), 3.0), 3.0))
    assert (te["eventType"], te["triggerReason"]) == ("Updated", "EVCommunicationLost")
    assert h.tx_id(1) == tx and authorized(h) == CARD[1]             # E10: the authorization stays


@covers("TxCtrlr.TxBeforeAcceptedEnabled")
def test_tx_before_accepted_enabled_applies_to_the_next_card_while_pending():
    h = SettingsRig(stored=stored({"AuthCtrlr.OfflineTxForUnknownIdEnabled": "true"}))
    [boot_call] = h.up(0.0)
    h.answer(boot_call, {"currentTime": iso(T0), "interval": 300, "status": "Pending"}, 0.0)
    present(h, "AABB", 0.5)
    assert authorized(h) is None
    set_var(h, 1.0, "TxCtrlr.TxBeforeAcceptedEnabled", "true")      # B02: the CSMS configures while Pending
    present(h, "AABB", 2.0)
    assert authorized(h) == "AABB"



def _accept_after(h: SettingsRig, boot_call: list, status: str | None, now: float) -> list[list]:
    """The BootNotification answered `status` (None: not answered) and, at `now`, Accepted
    (the one sent again after Pending/Rejected, or the first one answered late); the CALLs
    the station sends then, every one answered."""
    if status is not None:
        h.answer(boot_call, {"currentTime": iso(T0), "interval": 10, "status": status}, 0.0)
        [boot_call] = h.tick(10.0)
    assert boot_call[2] == "BootNotification"
    frames = h.answer(boot_call, {"currentTime": at(now), "interval": 60, "status": "Accepted"}, now)
    return h.settle(frames, now)


@pytest.mark.parametrize("boot_status", [None, "Pending", "Rejected"])
@pytest.mark.parametrize(("start_point", "arrive", "trigger"), [
    ("EVConnected", CablePlugged(1, 1), "CablePluggedIn"),
    ("ParkingBayOccupancy", OccupancyChanged(1, True), "EVDetected"),
])
def test_no_transaction_by_the_ev_before_accepted_then_it_starts_at_acceptance(boot_status, start_point, arrive,
                                                                                trigger):
    h = SettingsRig(stored=stored({"TxCtrlr.TxStartPoint": start_point, "TxCtrlr.TxStopPoint": start_point}))
    [boot_call] = h.up(0.0)
    h.hw(arrive, 1.0)                                    # B02/B03: TxBeforeAcceptedEnabled is false
    assert h.tx_id(1) is None
    assert not [e for e in h.effects if isinstance(e, StoreRecords) and "TransactionEvent" in str(e.upserts)]
    calls = _accept_after(h, boot_call, boot_status, 12.0)
    [started] = tx_events(calls)                         # the start point still holds: starts now
    assert (started["eventType"], started["triggerReason"]) == ("Started", trigger)
    assert started["timestamp"] == iso(h.station.clock.utc(12.0))          # at the acceptance
    assert "offline" not in started and h.tx_id(1) == started["transactionInfo"]["transactionId"]


def test_an_ev_gone_before_acceptance_starts_nothing():
    h = SettingsRig(stored=stored({"TxCtrlr.TxStartPoint": "EVConnected"}))
    [boot_call] = h.up(0.0)
    h.hw(CablePlugged(1, 1), 1.0)
    h.hw(CableUnplugged(1, 1), 2.0)
    assert tx_events(_accept_after(h, boot_call, "Pending", 12.0)) == []
    assert h.tx_id(1) is None


def test_tx_before_accepted_enabled_set_while_pending_starts_the_held_back_transaction():
    h = SettingsRig(stored=stored({"TxCtrlr.TxStartPoint": "EVConnected"}))
    [boot_call] = h.up(0.0)
    h.answer(boot_call, {"currentTime": iso(T0), "interval": 300, "status": "Pending"}, 0.0)
    h.hw(CablePlugged(1, 1), 1.0)
    assert h.tx_id(1) is None
    set_var(h, 2.0, "TxCtrlr.TxBeforeAcceptedEnabled", "true")      # B02: the CSMS configures while Pending
    assert h.tx_id(1) is not None                                    # queued; sent once accepted
    assert tx_events(h.calls) == []


# =========================================================================== OCPPCommCtrlr

@covers("OCPPCommCtrlr.HeartbeatInterval")
def test_heartbeat_interval_reschedules_the_next_heartbeat():
    h = boot()
    assert h.station.next_deadline() == pytest.approx(60.0)
    set_var(h, 1.0, "OCPPCommCtrlr.HeartbeatInterval", "5")
    assert h.station.next_deadline() == pytest.approx(5.0)          # 5 s after the last CALL (at 0.0)
    assert calls_of(h.tick(5.0), "Heartbeat") == [{}]


@covers("OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]")
def test_message_attempt_interval_applies_to_the_next_failed_transaction_event():
    h = boot()
    started = started_tx_with_started_unanswered(h, 1.0)
    set_var(h, 1.5, "OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]", "7")
    h.run(h.station.frame_received(json.dumps([4, started[1], "InternalError", "try later", {}]), 2.0))
    assert h.station.next_deadline() == pytest.approx(9.0)          # 7 s x 1 attempt (E13)
    [again] = [f for f in h.tick(9.0) if f[0] == 2]
    assert again[2:] == started[2:] and again[1] != started[1]


@covers("OCPPCommCtrlr.MessageAttempts[TransactionEvent]")
def test_message_attempts_apply_to_the_next_failed_transaction_event():
    h = boot()
    started = started_tx_with_started_unanswered(h, 1.0)
    set_var(h, 1.5, "OCPPCommCtrlr.MessageAttempts[TransactionEvent]", "1")
    h.effects.clear()
    h.run(h.station.frame_received(json.dumps([4, started[1], "InternalError", "cannot", {}]), 2.0))
    assert any(isinstance(e, Log) and "dropped after 1 attempts" in e.text for e in h.effects)
    assert not h.station.transactions.queued_for(None)                 # nothing left to retry


@covers("OCPPCommCtrlr.OfflineThreshold")
def test_offline_threshold_applies_to_the_next_reconnection():
    h = boot((1, 1))
    set_var(h, 1.0, "OCPPCommCtrlr.OfflineThreshold", "5")
    h.run(h.station.link_down(2.0))
    calls = h.settle(h.up(10.0), 10.0)                              # 8 s > 5 s (60 s before)
    assert statuses(calls) == [(1, 1, "Available"), (2, 1, "Available")]


@covers("OCPPCommCtrlr.QueueAllMessages")
def test_queue_all_messages_applies_to_the_next_message():
    h = boot()
    set_var(h, 1.0, "OCPPCommCtrlr.QueueAllMessages", "true")
    h.effects.clear()
    [status] = calls_of(h.hw(CablePlugged(1, 1), 2.0), "StatusNotification")
    kept = [v for e in h.effects if isinstance(e, StoreRecords) and e.table == "queue" for v in e.upserts.values()]
    assert any("StatusNotification" in v for v in kept)             # stored before it is sent


@covers("OCPPCommCtrlr.ResetRetries")
def test_reset_retries_apply_to_the_next_refused_reboot():
    h = boot()
    set_var(h, 1.0, "OCPPCommCtrlr.ResetRetries", "1")
    h.call("Reset", {"type": "Immediate"}, 2.0, msg_id="r1")
    h.run(h.station.reboot_failed(3.0, "permission denied"))
    h.run(h.station.reboot_failed(4.0, "permission denied"))
    assert len(h.reboots()) == 2                                    # once, then given up (2 before)


@covers("OCPPCommCtrlr.UnlockOnEVSideDisconnect")
def test_unlock_on_ev_side_disconnect_applies_to_the_next_unplug():
    h = boot()
    h.start_tx(1, 1.0)
    set_var(h, 2.0, "OCPPCommCtrlr.UnlockOnEVSideDisconnect", "false")
    h.effects.clear()
    h.settle(h.hw(CableUnplugged(1, 1), 3.0), 3.0)
    assert h.tx_id(1) is None
    assert not any(isinstance(e, UnlockConnector) for e in h.effects)


LINK_VARIABLES = {
    "OCPPCommCtrlr.WebSocketPingInterval": "7",
    "OCPPCommCtrlr.RetryBackOffWaitMinimum": "9",
    "OCPPCommCtrlr.RetryBackOffRandomRange": "4",
    "OCPPCommCtrlr.RetryBackOffRepeatTimes": "2",
    "SecurityCtrlr.BasicAuthPassword": "a-new-password-0123",
}


@covers(*LINK_VARIABLES)
@pytest.mark.parametrize("name", LINK_VARIABLES)
def test_link_variables_reconfigure_the_link_in_the_same_step(name):
    """The link adapter takes them: a Reconfigure effect of the SetVariables step itself (the
    runtime applies it at once: tests/integration/test_station_e2e.py)."""
    h = boot()
    effects = set_var(h, 1.0, name, LINK_VARIABLES[name])
    # A01: a new password reconnects at once (after the answer), the others at the next connection
    assert Reconfigure(reconnect=name == "SecurityCtrlr.BasicAuthPassword") in effects
    ref = parse_ref(name)
    assert Persist(ref.key, LINK_VARIABLES[name]) in effects
    assert h.station.dm.value(ref) == LINK_VARIABLES[name]
    if name != "SecurityCtrlr.BasicAuthPassword":                   # WriteOnly: never read back
        assert read_back(h, 2.0, name) == LINK_VARIABLES[name]


# =========================================================================== ClockCtrlr

@covers("ClockCtrlr.NextTimeOffsetTransitionDateTime")
def test_next_time_offset_transition_is_scheduled_at_once():
    h = boot(stored=stored({"ClockCtrlr.TimeOffset[NextTransition]": "+02:00"}))
    set_var(h, 1.0, "ClockCtrlr.NextTimeOffsetTransitionDateTime", at(50.0))
    assert h.station.next_deadline() == pytest.approx(50.0)
    h.tick(50.0)
    assert h.station.dm.get("ClockCtrlr", "TimeOffset") == "+02:00"


@covers("ClockCtrlr.TimeOffset[NextTransition]")
def test_next_time_offset_value_is_taken_at_the_transition():
    h = boot(stored=stored({"ClockCtrlr.NextTimeOffsetTransitionDateTime": at(50.0)}))
    set_var(h, 1.0, "ClockCtrlr.TimeOffset[NextTransition]", "+03:00")
    h.tick(50.0)
    assert read_back(h, 51.0, "ClockCtrlr.TimeOffset") == "+03:00"


@covers("ClockCtrlr.TimeAdjustmentReportingThreshold")
def test_time_adjustment_reporting_threshold_applies_to_the_next_clock_setting():
    h = boot()
    set_var(h, 1.0, "ClockCtrlr.TimeAdjustmentReportingThreshold", "5")
    calls = heartbeat_with_clock_off_by(h, 2.0, 10.0, "hb")         # 10 s: under the default 20 s
    assert [c[3]["type"] for c in calls if c[2] == "SecurityEventNotification"] == ["SettingSystemTime"]


@covers("ClockCtrlr.TimeOffset", unused="the station keeps and sends UTC only (no display, no local-time "
                                       "schedule); only the NextTransition logic writes it")
def test_time_offset_is_stored_and_read_back():
    _stored_and_read_back("ClockCtrlr.TimeOffset", "+01:00")


@covers("ClockCtrlr.TimeZone", unused="the station keeps and sends UTC only (no display, no local-time schedule)")
def test_time_zone_is_stored_and_read_back():
    _stored_and_read_back("ClockCtrlr.TimeZone", "Europe/Oslo")


@covers("ClockCtrlr.TimeSource", unused="its only value is Heartbeat (the CSMS's time in the Boot/Heartbeat "
                                        "responses), which the station always uses")
def test_time_source_is_stored_and_read_back():
    _stored_and_read_back("ClockCtrlr.TimeSource", "Heartbeat")


# =========================================================================== storage only

def _network_profile(url: str = "ws://csms2.example:9000/ocpp", security_profile: int = 1) -> dict:
    return {"ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": url, "messageTimeout": 20,
            "securityProfile": security_profile, "ocppInterface": "Wired0"}


@covers("OCPPCommCtrlr.NetworkConfigurationPriority")
def test_network_configuration_priority_orders_the_slots_from_the_next_boot():
    h = boot()
    frames = h.call("SetNetworkProfile", {"configurationSlot": 1, "connectionData": _network_profile()}, 1.0)
    assert h.reply_to(frames) == {"status": "Accepted"}
    effects = h.station.frame_received(json.dumps([2, "sv", "SetVariables", {"setVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NetworkConfigurationPriority"},
         "attributeValue": "1,0"}]}]), 2.0)
    [result] = h.reply_to(h.run(effects), "sv")["setVariableResult"]
    assert result["attributeStatus"] == "RebootRequired"
    assert Persist(parse_ref("OCPPCommCtrlr.NetworkConfigurationPriority").key, "1,0") in effects
    assert h.station.network.connection() is None            # this boot keeps slot 0
    stored = {k: v for e in h.effects if isinstance(e, Persist) for k, v in [(e.key, e.value)]}
    records = {k: v for e in h.effects if isinstance(e, StoreRecords) and e.table == "network_profiles"
               for k, v in e.upserts.items()}
    nxt = SettingsRig(stored={(k, "Actual"): v for k, v in stored.items()})
    nxt.station = Station(info=StationInfo("ACME", "Model-X", "SN-1", "1.0"), evse_connectors=[1],
                          device_model=nxt.station.dm, clock=StationClock(0.0, T0),
                          stored=StoredState(records={"network_profiles": records}))
    c = nxt.station.network.connection()
    assert c is not None and (c.slot, c.url, c.message_timeout) == (1, "ws://csms2.example:9000/ocpp", 20)
    nxt.run(nxt.station.start(0.0))
    nxt.run(nxt.station.link_up(0.5))
    assert nxt.station.dm.get("OCPPCommCtrlr", "ActiveNetworkProfile") == "1"
    assert nxt.station.dm.get("OCPPCommCtrlr", "MessageTimeout", "Default") == "20"


def test_network_configuration_priority_refuses_a_slot_without_a_profile():
    h = boot()
    effects = h.station.frame_received(json.dumps([2, "sv", "SetVariables", {"setVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NetworkConfigurationPriority"},
         "attributeValue": "2,0"}]}]), 1.0)
    [result] = h.reply_to(h.run(effects), "sv")["setVariableResult"]
    assert result["attributeStatus"] == "Rejected"
    assert "slot 2" in result["attributeStatusInfo"]["additionalInfo"]
    assert not any(isinstance(e, Persist) for e in effects)
    assert read_back(h, 1.5, "OCPPCommCtrlr.NetworkConfigurationPriority") == "0"


@covers("OCPPCommCtrlr.NetworkProfileConnectionAttempts")
def test_network_profile_connection_attempts_before_the_next_slot():
    h = boot()
    h.call("SetNetworkProfile", {"configurationSlot": 1, "connectionData": _network_profile()}, 1.0)
    set_var(h, 1.5, "OCPPCommCtrlr.NetworkProfileConnectionAttempts", "2")
    h.station.dm.write(parse_ref("OCPPCommCtrlr.NetworkConfigurationPriority"), "0,1")
    h.run(h.station.link_down(2.0))                         # a connection lost: not a failed attempt
    assert h.station.network.slot == 0
    effects = h.station.link_down(3.0, attempt=1, reason="refused")
    assert h.station.network.slot == 0 and not any(isinstance(e, Reconfigure) for e in effects)
    effects = h.station.link_down(4.0, attempt=2, reason="refused")
    assert h.station.network.slot == 1 and any(isinstance(e, Reconfigure) for e in effects)
    assert h.station.network.connection().url == "ws://csms2.example:9000/ocpp"
    h.station.link_down(5.0, attempt=3, reason="refused")
    h.station.link_down(6.0, attempt=4, reason="refused")
    assert h.station.network.slot == 0                      # round again: never gives up (B10.FR.09)


def _sign_csr(h: Rig, now: float) -> tuple[MakeCsr, list]:
    """TriggerMessage SignChargingStationCertificate; the store makes the CSR: (its job, the
    SignCertificateRequest frames)."""
    before = len(h.effects)
    assert h.reply_to(h.call("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}, now,
                             msg_id="tm"), "tm") == {"status": "Accepted"}
    [job] = [e for e in h.effects[before:] if isinstance(e, MakeCsr)]
    frames = h.run(h.station.hardware_event(JobFinished(job, True, "", result=CertificateOutcome("CSR", ())), now))
    return job, [f for f in frames if f[0] == 2 and f[2] == "SignCertificate"]


@covers("SecurityCtrlr.OrganizationName")
def test_organization_name_goes_into_the_next_csr():
    h = boot()
    set_var(h, 1.0, "SecurityCtrlr.OrganizationName", "ACME Charging")
    job, _ = _sign_csr(h, 2.0)
    assert job.organization == "ACME Charging"


@covers("SecurityCtrlr.CertSigningWaitMinimum")
def test_cert_signing_wait_minimum_applies_to_the_next_accepted_sign_certificate():
    h = boot()
    _, [call] = _sign_csr(h, 1.0)
    set_var(h, 2.0, "SecurityCtrlr.CertSigningWaitMinimum", "7")
    h.answer(call, {"status": "Accepted"}, 3.0)
    assert h.station.security.next_deadline() == 10.0


@covers("SecurityCtrlr.CertSigningRepeatTimes")
def test_cert_signing_repeat_times_applies_to_the_next_accepted_sign_certificate():
    h = boot()
    _, [call] = _sign_csr(h, 1.0)
    set_var(h, 2.0, "SecurityCtrlr.CertSigningRepeatTimes", "0")
    h.answer(call, {"status": "Accepted"}, 3.0)
    assert h.station.security.next_deadline() is None


@covers("ChargingStation.AllowNewSessionsPendingFirmwareUpdate",
        unused="no firmware update (L01) in this station, so never a pending one")
def test_allow_new_sessions_pending_firmware_update_is_stored_and_read_back():
    _stored_and_read_back("ChargingStation.AllowNewSessionsPendingFirmwareUpdate", "true")


def _stored_and_read_back(name: str, value: str) -> None:
    h = boot()
    effects = set_var(h, 1.0, name, value)
    assert Persist(parse_ref(name).key, value) in effects
    assert read_back(h, 1.5, name) == value
    assert not any(isinstance(e, Reconfigure) for e in effects)


# =========================================================================== AuthCtrlr (C)

@covers("AuthCtrlr.AuthorizeRemoteStart")
def test_authorize_remote_start_applies_to_the_next_remote_start():
    h = boot()
    set_var(h, 1.0, "AuthCtrlr.AuthorizeRemoteStart", "true")
    frames = h.call("RequestStartTransaction", {"idToken": {"idToken": "REMOTE-1", "type": "Central"},
                                                "remoteStartId": 7, "evseId": 1}, 2.0, msg_id="rs")
    assert h.reply_to(frames, "rs")["status"] == "Accepted"
    assert calls_of(frames, "Authorize") == [{"idToken": {"idToken": "REMOTE-1", "type": "Central"}}]


@covers("AuthCtrlr.Enabled")
def test_auth_enabled_false_applies_to_the_next_card():
    h = boot()
    set_var(h, 1.0, "AuthCtrlr.Enabled", "false")
    assert calls_of(present(h, "AABB", 2.0), "Authorize") == []
    assert authorized(h) == "AABB"


@covers("AuthCtrlr.LocalAuthorizeOffline")
def test_local_authorize_offline_applies_to_the_next_offline_card():
    h = boot()
    card_cached(h, "AABB", 1.0)
    set_var(h, 2.0, "AuthCtrlr.LocalAuthorizeOffline", "false")
    h.run(h.station.link_down(3.0))
    present(h, "AABB", 4.0)
    assert authorized(h) is None                                    # cached Accepted, but not offline


@covers("AuthCtrlr.LocalPreAuthorize")
def test_local_pre_authorize_applies_to_the_next_card():
    h = boot()
    card_cached(h, "AABB", 1.0)
    set_var(h, 2.0, "AuthCtrlr.LocalPreAuthorize", "true")
    assert calls_of(present(h, "AABB", 3.0), "Authorize") == []     # the cache decides at once
    assert authorized(h) == "AABB"


@covers("AuthCtrlr.MasterPassGroupId")
def test_master_pass_group_applies_to_the_next_card():
    h = boot()
    h.start_tx(1, 1.0)
    set_var(h, 2.0, "AuthCtrlr.MasterPassGroupId", "MASTER")
    [auth] = [f for f in present(h, "BOSS", 3.0) if f[0] == 2]
    frames = h.answer(auth, {"idTokenInfo": {"status": "Accepted",
                                             "groupIdToken": {"idToken": "MASTER", "type": "Central"}}}, 3.0)
    [ended] = tx_events(frames)
    assert (ended["eventType"], ended["transactionInfo"]["stoppedReason"]) == ("Ended", "MasterPass")


@covers("AuthCtrlr.OfflineTxForUnknownIdEnabled")
def test_offline_tx_for_unknown_id_applies_to_the_next_offline_card():
    h = boot()
    set_var(h, 1.0, "AuthCtrlr.OfflineTxForUnknownIdEnabled", "true")
    h.run(h.station.link_down(2.0))
    present(h, "NEVER-SEEN", 3.0)
    assert authorized(h) == "NEVER-SEEN"


# =========================================================================== AuthCacheCtrlr (C10-C12)

@covers("AuthCacheCtrlr.Enabled")
def test_auth_cache_enabled_false_applies_to_the_next_offline_card():
    h = boot()
    card_cached(h, "AABB", 1.0)
    set_var(h, 2.0, "AuthCacheCtrlr.Enabled", "false")
    h.run(h.station.link_down(3.0))
    present(h, "AABB", 4.0)
    assert authorized(h) is None                                    # the cache is not asked


@covers("AuthCacheCtrlr.DisablePostAuthorize")
def test_auth_cache_disable_post_authorize_applies_to_the_next_card():
    h = boot()
    card_cached(h, "AABB", 1.0, status="Blocked")
    set_var(h, 2.0, "AuthCacheCtrlr.DisablePostAuthorize", "true")
    assert calls_of(present(h, "AABB", 3.0), "Authorize") == []     # TC_C_58: not asked again
    assert authorized(h) is None


@covers("AuthCacheCtrlr.LifeTime")
def test_auth_cache_lifetime_applies_to_entries_cached_before():
    h = boot()
    card_cached(h, "AABB", 1.0)
    set_var(h, 2.0, "AuthCacheCtrlr.LifeTime", "10")
    h.run(h.station.link_down(3.0))
    present(h, "AABB", 20.0)                                        # 19 s after its last use
    assert authorized(h) is None


@covers("AuthCacheCtrlr.Policy")
def test_auth_cache_policy_applies_to_the_next_replacement():
    cache = AuthCache({})
    old, new = m.IdToken(id_token="OFTEN", type="ISO14443"), m.IdToken(id_token="RECNT", type="ISO14443")
    accepted = m.IdTokenInfo(status=m.AuthorizationStatus.Accepted)
    cache.update(old, accepted, T0 - timedelta(seconds=100), lifetime_s=604800, policy="LRU", max_bytes=10**6)
    for s in (99, 98, 97, 96):
        cache.touch(old, T0 - timedelta(seconds=s))                 # used often, long ago
    cache.update(new, accepted, T0 - timedelta(seconds=50), lifetime_s=604800, policy="LRU", max_bytes=10**6)
    records = cache.records()
    room = sum(len(k) + len(v) for k, v in records.items()) + 40    # two entries fit, not three
    defs = [dataclasses.replace(d, max_limit=room) if d.ref == VariableRef("AuthCacheCtrlr", "Storage") else d
            for d in load_definitions([1], station_id="CS-1", security_profile=1)]
    h = boot(auth_records=records, definitions=defs)
    set_var(h, 0.5, "AuthCacheCtrlr.Policy", "LFU")
    h.effects.clear()
    card_cached(h, "THIRD", 1.0)
    deleted = [k for e in h.effects if isinstance(e, StoreRecords) and e.table == CACHE_TABLE for k in e.deletes]
    assert deleted == ["ISO14443:recnt"]                            # LFU: the least used (LRU: OFTEN)


# =========================================================================== LocalAuthListCtrlr (D)

def send_local_list(h: Rig, now: float, status: str, msg_id: str = "sl") -> dict:
    frames = h.call("SendLocalList", {"versionNumber": 3, "updateType": "Full", "localAuthorizationList": [
        {"idToken": {"idToken": "LIST-1", "type": "ISO14443"}, "idTokenInfo": {"status": status}}]},
        now, msg_id=msg_id)
    return h.reply_to(frames, msg_id)


@covers("LocalAuthListCtrlr.Enabled")
def test_local_list_enabled_applies_to_the_next_list_and_card():
    h = boot()
    assert send_local_list(h, 1.0, "Accepted")["status"] == "Failed"  # NotEnabled
    set_var(h, 2.0, "LocalAuthListCtrlr.Enabled", "true")
    assert send_local_list(h, 3.0, "Accepted", msg_id="sl2") == {"status": "Accepted"}
    h.run(h.station.link_down(4.0))
    present(h, "LIST-1", 5.0)
    assert authorized(h) == "LIST-1"


@covers("LocalAuthListCtrlr.DisablePostAuthorize")
def test_local_list_disable_post_authorize_applies_to_the_next_card():
    h = boot(stored=stored({"LocalAuthListCtrlr.Enabled": "true"}))
    assert send_local_list(h, 1.0, "Blocked") == {"status": "Accepted"}
    set_var(h, 2.0, "LocalAuthListCtrlr.DisablePostAuthorize", "true")
    assert calls_of(present(h, "LIST-1", 3.0), "Authorize") == []   # TC_C_57: not asked
    assert authorized(h) is None


# =========================================================================== SmartChargingCtrlr (K)

def _set_charging_profile(h: Rig, now: float, limit: float, msg_id: str = "scp") -> dict:
    """A TxDefaultProfile of `limit` A on EVSE 1 from T0; the answer."""
    p = {"id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
         "chargingSchedule": [{"id": 1, "startSchedule": iso(T0), "chargingRateUnit": "A",
                               "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}]}
    frames = h.call("SetChargingProfile", {"evseId": 1, "chargingProfile": p}, now, msg_id=msg_id)
    return h.reply_to(frames, msg_id)


@covers("SmartChargingCtrlr.Enabled")
def test_smart_charging_enabled_false_lifts_the_limit_and_refuses_the_next_profile():
    """false: the limit on the running transaction goes at once (a new offer at the EVSE's maximum) and
    the next SetChargingProfile is Rejected (NotEnabled); true again: the profile limits again."""
    h = boot()
    assert _set_charging_profile(h, 1.0, 10.0)["status"] == "Accepted"
    h.settle(h.hw(CablePlugged(1, 1), 2.0), 2.0)
    h.settle(present(h, CARD[1], 2.0), 2.0)
    assert [e for e in h.effects if isinstance(e, EnergyOffer)] == [EnergyOffer(1, True, 10.0)]
    effects = set_var(h, 3.0, "SmartChargingCtrlr.Enabled", "false")
    [lifted] = [e for e in effects if isinstance(e, EnergyOffer)]        # back to the EVSE's maximum
    assert lifted.closed and lifted.limit_a == pytest.approx(22000 / 3 / 230, abs=0.1)
    answer = _set_charging_profile(h, 4.0, 8.0, msg_id="scp2")
    assert (answer["status"], answer["statusInfo"]["reasonCode"]) == ("Rejected", "NotEnabled")
    effects = set_var(h, 5.0, "SmartChargingCtrlr.Enabled", "true")
    assert [e for e in effects if isinstance(e, EnergyOffer)] == [EnergyOffer(1, True, 10.0)]


@covers("SmartChargingCtrlr.LimitChangeSignificance",
        unused="limit changes are not reported yet (NotifyChargingLimit, TransactionEvent ChargingRateChanged)")
def test_limit_change_significance_is_stored_and_read_back():
    _stored_and_read_back("SmartChargingCtrlr.LimitChangeSignificance", "5.5")


@covers("SmartChargingCtrlr.ExternalControlSignalsEnabled",
        unused="no external limits yet (K12-K14): nothing outside OCPP feeds a limit in")
def test_external_control_signals_enabled_is_stored_and_read_back():
    _stored_and_read_back("SmartChargingCtrlr.ExternalControlSignalsEnabled", "true")


@covers("SmartChargingCtrlr.NotifyChargingLimitWithSchedules",
        unused="no NotifyChargingLimit yet (external limits, K12-K14)")
def test_notify_charging_limit_with_schedules_is_stored_and_read_back():
    _stored_and_read_back("SmartChargingCtrlr.NotifyChargingLimitWithSchedules", "true")


# =========================================================================== guards

def writable_variables() -> set[str]:
    """Every variable the CSMS can write (Actual ReadWrite/WriteOnly, or another attribute),
    of every component the station may have: all hardware parts, EVSEs with 1 and 2
    connectors; per-EVSE and per-connector variables once."""
    parts = [spec.component for spec in read_definition_files(resources.files(PACKAGE).joinpath(HARDWARE_FOLDER))]
    names = set()
    for d in load_definitions([1, 2], station_id="CS-1", security_profile=1, basic_auth_password=PASSWORD,
                              parts=parts):
        if d.mutability != "ReadOnly" or len(d.attributes) > 1:
            r = d.ref
            names.add(str(VariableRef(r.component, r.variable, r.component_instance, r.variable_instance)))
    return names


def test_every_writable_variable_has_a_run_time_test_here():
    writable = writable_variables()
    assert writable, "no writable variable found: the enumeration is broken"
    missing = sorted(writable - COVERED.keys())
    assert not missing, f"writable variables without a test that changes them at run time: {missing}"
    stale = sorted(COVERED.keys() - writable)
    assert not stale, f"tests for variables the station no longer defines as writable: {stale}"
    for name, tests in COVERED.items():
        for test in tests:
            assert test.startswith("test_") and callable(globals().get(test)), f"{name}: {test} is not a test"


def test_tx_settings_variables_are_the_ones_it_reads():
    """Charging subscribes to TxSettings.VARIABLES: a variable TxSettings reads but nobody
    subscribed to would take effect only by chance (OCPPCommCtrlr.UnlockOnEVSideDisconnect did)."""
    read: list[tuple[str, str]] = []

    class Recorder:
        def get(self, component: str, variable: str) -> None:
            read.append((component, variable))

    TxSettings.from_device_model(Recorder())
    assert sorted(set(read)) == sorted(TxSettings.VARIABLES)
