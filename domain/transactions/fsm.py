"""The transaction state machine of one EVSE (OCPP 2.0.1 block E, with the meter values of J), pure.

The station owns one `EvseTransactions` per EVSE and feeds it what happens: the EV plugs in or out,
the parking bay sensor, the EV drawing energy or not, authorizations and their end, the CSMS's
answers, resets, faults, meter readings and the passing of time. Every input takes `now`
(monotonic seconds) and `utc` (the station's UTC time at `now`, timezone-aware) and returns what to
do, in order: `m.TransactionEventRequest`s to queue for the CSMS, `PowerPath` commands (the FSM
decides when energy may flow, the hardware obeys) and `UnlockConnector` commands.

Model
-----
Five conditions, the members of TxStartPoint/TxStopPoint (TxCtrlr, E01/E06):
  ParkingBayOccupancy  the bay sensor says occupied
  EVConnected          a connector of this EVSE is plugged into the EV
  Authorized           an idToken (or a remote start) authorizes charging
  PowerPathClosed      the power path is closed (energy is offered)
  EnergyTransfer       energy flows: path closed and the EV draws
The power path is closed exactly when Authorized AND EVConnected AND no fault AND not blocked by an
invalid id (StopTxOnInvalidId false). With an IEC 61851 controller "closed" means "allowed to
charge": the relay closes when the EV asks (state C).

- Start (E01.FR.01-06): with no transaction running, the first configured TxStartPoint condition
  that BECOMES true starts one (eventType Started, seqNo 0, a new transactionId from the injected
  id function). Conditions are edge-triggered: a condition that is still true after a transaction
  ended does not start the next one.
- Stop (E06.FR.01-07): a running transaction ends (eventType Ended) when a configured TxStopPoint
  condition that was true during the transaction is no longer true. Once the authorization of a
  transaction has ended by a stop (StopAuthorized, RemoteStop, Deauthorized, EVConnectTimeout,
  EV-side disconnect with StopTxOnEVSideDisconnect) the session cannot regain Authorized,
  PowerPathClosed or EnergyTransfer, so those stop points end it even if they were never true
  (a remote stop of a transaction that never charged ends it at once).
- The end of a transaction ends its authorization (errata 2.12, "Relationship between
  authorization and transaction"), which opens the power path.
- Authorization changes (authorized, stop/remote stop, deauthorization, EVConnectTimeout) are
  reported in two steps, as in E07 (errata 2.19/2.20): first the event itself (triggerReason
  StopAuthorized, ...; the power path follows at once, so TxStopPoint Authorized or
  PowerPathClosed give Ended here), then, when the energy flow has followed, a
  ChargingStateChanged event (TxStopPoint EnergyTransfer gives Ended here; EVConnected and
  ParkingBayOccupancy give an Updated with chargingState EVConnected). When the first step
  produced no message (no transaction yet), the second carries the event's own triggerReason
  (E01 S5 errata 2.18: Started with triggerReason Authorized / CablePluggedIn).
- stoppedReason is the FIRST stop cause of the transaction (E07 errata figure 56: StopAuthorized
  first, Ended at unplug with stoppedReason Local; TC_E_19/TC_E_14), else the cause of the end
  itself (EVDisconnected, StoppedByEV, ...). Reset, faults and power loss override it.

Reporting rules
---------------
- seqNo: 0 in Started, +1 per message of the transaction, across restarts (snapshot/restore).
- chargingState: in Started and Ended always, in Updated when it changed since the last report.
  Idle: no EV; Charging: path closed and the EV draws; SuspendedEV: path closed and the EV said
  it does not draw (energy_transfer(False)); EVConnected: path closed but the EV has not drawn
  yet, or path open and not authorized; SuspendedEVSE: authorized but the EVSE does not offer
  energy (invalid id without StopTxOnInvalidId, MaxEnergyOnInvalidId reached, hardware opened
  the path).
- evse {id, connectorId} in Started and in the first message after every plug-in; idToken in the
  first message after an authorization (errata 2.12) and in the message of a StopAuthorized.
- The first message after a remote start has triggerReason RemoteStart and remoteStartId
  (Part 6 general tool rules, TC_E_13).
- Meter values (J02/J01): TxStartedMeasurands in Started (Transaction.Begin); every
  TxUpdatedInterval from the start an Updated MeterValuePeriodic (Sample.Periodic); at every
  AlignedDataCtrlr.Interval boundary from midnight UTC an Updated MeterValueClock (Sample.Clock)
  unless AlignedDataCtrlr.SendDuringIdle; Ended carries the TxEndedMeasurands series taken every
  SampledDataCtrlr.TxEndedInterval (Sample.Periodic) and the AlignedDataCtrlr.TxEndedMeasurands
  series at every AlignedDataCtrlr.TxEndedInterval boundary (Sample.Clock), in time order, then
  the TxEndedMeasurands at the end (Transaction.End). Samples use the latest reading given to
  `meter()`: call `meter(reading, now, utc)` when `next_deadline()` passes (or `tick()` to use
  the last reading). The timestamp of a periodic sample is its nominal instant, of a
  clock-aligned one the aligned boundary.
"""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

import msgspec

from domain import messages as m
from domain.hardware_events import MeterReading
from domain.transactions.metering import meter_value, next_aligned, utc_from_epoch
from domain.transactions.settings import TxSettings

# Condition bits (the TxStartPoint / TxStopPoint members).
PARK, EV, AUTH, PATH, ENERGY = 1, 2, 4, 8, 16
POINT_BITS = {"ParkingBayOccupancy": PARK, "EVConnected": EV, "Authorized": AUTH,
              "PowerPathClosed": PATH, "EnergyTransfer": ENERGY}
_LOST_ON_STOP = AUTH | PATH | ENERGY      # what a session whose authorization was stopped cannot regain
INF = math.inf
MAX_ENDED_VALUES = 4096                   # MeterValues kept for the Ended event (TxEndedInterval series)
SNAPSHOT_VERSION = 1

TE = m.TransactionEvent
TR = m.TriggerReason
CS = m.ChargingState
R = m.Reason
CTX = m.ReadingContext


@dataclass(frozen=True, slots=True)
class PowerPath:
    """Close (offer energy) or open the power path of the EVSE."""

    evse: int
    closed: bool


@dataclass(frozen=True, slots=True)
class UnlockConnector:
    """Unlock the cable at the station side (E07/F03 after a stop, E09.FR.02, F05). For a
    CSMS's UnlockConnectorRequest, `reply_to` is its message id: the answer waits for the
    hardware's UnlockResult."""

    evse: int
    connector: int
    reply_to: str | None = None


TxOutput = m.TransactionEventRequest | PowerPath | UnlockConnector


def fault_reason(fault: str) -> m.Reason:
    """stoppedReason for a fault the hardware reported (free text from the adapter)."""
    f = fault.lower().replace("_", "").replace(" ", "")
    if "ground" in f or "gfi" in f or "gfci" in f or "residual" in f or "rcd" in f:
        return R.GroundFault
    if "overcurrent" in f:
        return R.OvercurrentFault
    if "emergency" in f:
        return R.EmergencyStop
    if "powerquality" in f or "voltage" in f:
        return R.PowerQuality
    return R.Other


@dataclass(slots=True)
class _Tx:
    id: str
    seq: int = 0                                # the seqNo of the next message
    seen: int = 0                               # conditions true at some point of the transaction
    reported_state: m.ChargingState | None = None
    stop_reason: m.Reason | None = None         # the first stop cause
    stopping: bool = False                      # the authorization was ended by a stop
    token_reported: bool = False
    evse_reported: bool = False                 # evse.connectorId sent since the last plug-in
    charging_since: float | None = None
    charged_s: float = 0.0
    begin_energy_wh: float | None = None
    ended_values: list[m.MeterValue] = field(default_factory=list)
    updated_due: float = INF                    # monotonic deadlines of the samplers
    clock_due: float = INF
    clock_epoch: float = 0.0                    # the aligned instant clock_due stands for
    ended_due: float = INF
    ended_clock_due: float = INF
    ended_clock_epoch: float = 0.0


class EvseTransactions:
    """Transactions of one EVSE. See the module docstring for the rules."""

    def __init__(self, evse_id: int, settings: TxSettings | None = None, *,
                 new_transaction_id: Callable[[], str] | None = None) -> None:
        self.evse_id = evse_id
        self._new_id = new_transaction_id or (lambda: str(uuid.uuid4()))
        self.online = True                      # False: messages are marked offline (E12)
        # the physical side
        self._connector: int | None = None      # the plugged connector in use
        self._occupied = False
        self._demand: bool | None = None        # the EV draws (True), said it does not (False), unknown
        self._path_cmd = False                  # what the FSM commanded
        self._path = False                      # what the power path is (commanded, or as reported)
        self._fault: str | None = None
        # the authorization
        self._token: m.IdToken | None = None
        self._remote_start_id: int | None = None
        self._remote_pending = False
        self._ev_timeout_at: float | None = None
        self._ev_wait_since = 0.0               # when the EVConnectionTimeOut running now started
        self._blocked = False                   # invalid id, StopTxOnInvalidId false
        self._invalid_budget_wh: float | None = None
        self._invalid_base_wh: float | None = None
        # the transaction
        self._tx: _Tx | None = None
        self._last_conds = 0
        self._reading: MeterReading | None = None
        self._sample_due = INF
        self._out: list[TxOutput] = []
        self._apply_settings(settings or TxSettings())

    # --- views ---------------------------------------------------------------------------------
    @property
    def transaction_id(self) -> str | None:
        return self._tx.id if self._tx is not None else None

    @property
    def idle(self) -> bool:
        """No transaction runs (a Reset OnIdle may proceed)."""
        return self._tx is None

    @property
    def id_token(self) -> m.IdToken | None:
        """The idToken that currently authorizes charging."""
        return self._token

    @property
    def charging_state(self) -> m.ChargingState:
        return self._charging_state()

    @property
    def power_path(self) -> bool:
        """The power path as last commanded."""
        return self._path_cmd

    def next_deadline(self) -> float | None:
        """When `tick()` (or `meter()`) has something to do: EVConnectionTimeOut, samplers."""
        d = self._sample_due if self._tx is not None else INF
        if self._ev_timeout_at is not None and self._ev_timeout_at < d:
            d = self._ev_timeout_at
        return None if d == INF else d

    def reconfigure(self, settings: TxSettings, now: float, utc: datetime) -> None:
        """New settings (SetVariables changed the device model), in effect at once: the next
        input already uses the new TxStartPoint/TxStopPoint; when a sampling setting changed,
        the samplers of a running transaction restart from now (clock-aligned ones at the next
        boundary of the new interval); a running EVConnectionTimeOut counts the new value
        from the moment it started (E03.FR.05)."""
        old = self.settings
        self._apply_settings(settings)
        if self._tx is not None and _sampling(old) != _sampling(settings):
            self._arm_samplers(now, utc)
        if self._ev_timeout_at is not None and old.ev_connection_timeout != settings.ev_connection_timeout:
            timeout = settings.ev_connection_timeout
            self._ev_timeout_at = self._ev_wait_since + timeout if timeout > 0 else None

    # --- inputs: the physical side ---------------------------------------------------------------
    def ev_connected(self, connector: int, now: float, utc: datetime) -> list[TxOutput]:
        """Cable plugged in (triggerReason CablePluggedIn; TC_E_09, E02)."""
        if self._connector is not None:
            return []
        self._connector = connector
        self._demand = None
        if self._tx is not None:
            self._tx.evse_reported = False
        return self._physical(now, utc, TR.CablePluggedIn, report=True, reason=R.Other)

    def ev_disconnected(self, connector: int, now: float, utc: datetime) -> list[TxOutput]:
        """Cable unplugged at the EV (triggerReason EVCommunicationLost; TC_E_14/17/20/24-27)."""
        if self._connector is None or connector != self._connector:
            return []
        self._connector = None
        self._demand = None
        tx = self._tx
        had_session = tx is not None or self._token is not None
        if tx is None:
            # errata 2.12: plug-out ends an authorization when no transaction was started.
            self._drop_authorization()
        elif self.settings.stop_tx_on_ev_side_disconnect:
            # E09 / PICS C-06.2: "administratively stop" = end the authorization.
            tx.stopping = True
            if tx.stop_reason is None:
                tx.stop_reason = R.EVDisconnected
            self._drop_authorization()
        # else E10 (TC_E_26/27): the authorization stays; EVConnectionTimeOut runs again.
        if had_session and self.settings.unlock_on_ev_side_disconnect:
            self._out.append(UnlockConnector(self.evse_id, connector))    # E09.FR.02
        return self._physical(now, utc, TR.EVCommunicationLost, report=True, reason=R.EVDisconnected)

    def parking_bay_occupied(self, occupied: bool, now: float, utc: datetime) -> list[TxOutput]:
        """Bay sensor (triggerReason EVDetected / EVDeparted; TC_E_12, TC_E_19)."""
        if occupied == self._occupied:
            return []
        self._occupied = occupied
        return self._physical(now, utc, TR.EVDetected if occupied else TR.EVDeparted,
                              report=True, reason=R.Local)

    def energy_transfer(self, started: bool, now: float, utc: datetime) -> list[TxOutput]:
        """The EV draws energy (True: IEC 61851 state C) or stops drawing / is not ready (False)."""
        started = bool(started)
        if self._connector is None or self._demand is started:
            return []
        self._demand = started
        return self._physical(now, utc, TR.ChargingStateChanged, report=False, reason=R.StoppedByEV)

    def power_path_closed(self, closed: bool, now: float, utc: datetime) -> list[TxOutput]:
        """What the hardware reports of the power path, when it differs from the command
        (a contactor that dropped out, or closed on its own)."""
        closed = bool(closed)
        if closed == self._path:
            return []
        self._path = closed
        return self._physical(now, utc, TR.ChargingStateChanged, report=False, reason=R.Other)

    def meter(self, reading: MeterReading, now: float, utc: datetime) -> list[TxOutput]:
        """A meter reading; takes the samples that are due. The per-sample path: nothing but a
        comparison unless a sample is due or MaxEnergyOnInvalidId is being watched."""
        self._reading = reading
        if self._invalid_budget_wh is None and now < self._sample_due:
            return []
        if self._invalid_budget_wh is not None:
            if self._invalid_base_wh is None:
                self._invalid_base_wh = reading.energy_wh
            elif reading.energy_wh - self._invalid_base_wh >= self._invalid_budget_wh:
                self._block(now, utc, TR.EnergyLimitReached, R.EnergyLimitReached)
        if self._tx is not None and now >= self._sample_due:
            self._sample(now, utc)
        return self._finish(now)

    def tick(self, now: float, utc: datetime) -> list[TxOutput]:
        """A deadline of `next_deadline()` passed."""
        if self._ev_timeout_at is not None and now >= self._ev_timeout_at:
            self._ev_timeout_at = None
            self._connect_timeout(now, utc)
        if self._tx is not None and now >= self._sample_due:
            self._sample(now, utc)
        return self._finish(now)

    # --- inputs: authorization -------------------------------------------------------------------
    def authorized(self, id_token: m.IdToken, now: float, utc: datetime, *,
                   remote_start_id: int | None = None,
                   trigger: m.TriggerReason | None = None) -> list[TxOutput]:
        """An idToken is authorized to charge here (local: C01/C02/C04/C06; remote start: F01/F02
        with `remote_start_id`). Ignored while already authorized or while faulted."""
        if self._token is not None or self._fault is not None:
            return []
        pre = self._charging_state()
        self._token = id_token
        tx = self._tx
        if tx is not None:                     # (re-)authorization within a transaction
            tx.stopping = False
            tx.stop_reason = None
            tx.token_reported = False
        if remote_start_id is not None:
            self._remote_start_id = remote_start_id
            self._remote_pending = True
        self._refresh_timer(now)               # E03: EVConnectionTimeOut starts when no EV yet
        trig = trigger or (TR.RemoteStart if remote_start_id is not None else TR.Authorized)
        self._run_intent(now, utc, trig, pre, R.Other)
        return self._finish(now)

    def stop_authorized(self, id_token: m.IdToken, now: float, utc: datetime, *,
                        reason: m.Reason = R.Local) -> list[TxOutput]:
        """A presented idToken the station allowed to stop (E07; C16 Master Pass: reason
        MasterPass). triggerReason StopAuthorized, stoppedReason `reason`."""
        return self._stop(now, utc, TR.StopAuthorized, reason, stop_token=id_token)

    def remote_stop(self, now: float, utc: datetime) -> list[TxOutput]:
        """RequestStopTransaction (F03): triggerReason RemoteStop, stoppedReason Remote."""
        if self._tx is None:
            return []
        return self._stop(now, utc, TR.RemoteStop, R.Remote)

    def deauthorized(self, now: float, utc: datetime, *, reason: m.Reason = R.DeAuthorized,
                     trigger: m.TriggerReason = TR.Deauthorized) -> list[TxOutput]:
        """The authorization was withdrawn (triggerReason Deauthorized, stoppedReason DeAuthorized)."""
        self._deauthorize(now, utc, reason, trigger)
        return self._finish(now)

    def csms_response(self, id_token_info: m.IdTokenInfo | None, now: float, utc: datetime) -> list[TxOutput]:
        """The idTokenInfo of a TransactionEventResponse to a message of this transaction
        carrying an idToken. Not Accepted: StopTxOnInvalidId true -> deauthorize (TC_E_16,
        TC_C_16/18); false -> the transaction goes on, but energy stops (SuspendedEVSE, TC_C_17)
        at once or after MaxEnergyOnInvalidId Wh since the start (EnergyLimitReached, TC_C_15)."""
        tx = self._tx
        if (id_token_info is None or tx is None or self._token is None or self._blocked
                or id_token_info.status == m.AuthorizationStatus.Accepted):
            return self._finish(now)
        if self.settings.stop_tx_on_invalid_id:
            self._deauthorize(now, utc, R.DeAuthorized, TR.Deauthorized)
            return self._finish(now)
        budget = self.settings.max_energy_on_invalid_id
        r = self._reading
        base = tx.begin_energy_wh
        if budget <= 0 or (base is not None and r is not None and r.energy_wh - base >= budget):
            self._block(now, utc, TR.ChargingStateChanged if budget <= 0 else TR.EnergyLimitReached,
                        R.DeAuthorized if budget <= 0 else R.EnergyLimitReached)
        else:
            self._invalid_budget_wh = float(budget)
            self._invalid_base_wh = base            # None: the next reading is the base
        return self._finish(now)

    # --- inputs: the station -----------------------------------------------------------------
    def trigger_message(self, now: float, utc: datetime) -> list[TxOutput]:
        """TriggerMessage(TransactionEvent) (F06): an Updated with triggerReason Trigger, the
        chargingState and the TxUpdatedMeasurands (context Trigger)."""
        tx = self._tx
        if tx is None:
            return []
        s = self.settings
        mv = meter_value(self._reading, s.tx_updated_measurands, CTX.Trigger, utc) if s.sampled_enabled else None
        # F06.FR.07/11 (TC_F_14): a triggered event always names its EVSE
        self._emit(TE.Updated, utc, TR.Trigger, state=self._charging_state(), force_state=True,
                   meter=[mv] if mv else None,
                   evse=m.EVSE(id=self.evse_id, connector_id=self._connector or 1))
        return self._finish(now)

    def reset(self, now: float, utc: datetime, *, immediate: bool = True) -> list[TxOutput]:
        """ResetRequest. Immediate (B12.FR.04/08, errata 2.11): Ended with triggerReason
        ResetCommand, stoppedReason ImmediateReset, no idToken. OnIdle: nothing to do here; the
        station reboots once `idle`."""
        if immediate:
            if self._tx is not None:
                self._force_end(now, utc, TR.ResetCommand, R.ImmediateReset)
            elif self._token is not None:
                self._drop_authorization()
                self._run_physical(now, utc, TR.ResetCommand, report=False, reason=R.ImmediateReset)
        return self._finish(now)

    def cancel_authorization(self, now: float, utc: datetime) -> list[TxOutput]:
        """The EVSE can no longer take a session (Unavailable, reset): an authorization that no
        transaction uses yet ends, with nothing to report (errata 2.12). A running transaction
        is left alone: what ends it is decided elsewhere (scheduled availability, reset)."""
        if self._tx is None and self._token is not None:
            self._drop_authorization()
            self._run_physical(now, utc, TR.Deauthorized, report=False, reason=R.Other)
        return self._finish(now)

    def abnormal(self, fault: str, now: float, utc: datetime, *,
                 reason: m.Reason | None = None) -> list[TxOutput]:
        """A fault of the EVSE: the power path opens, the authorization ends and a running
        transaction ends (triggerReason AbnormalCondition, stoppedReason from the fault)."""
        self._fault = fault
        if self._tx is not None:
            self._force_end(now, utc, TR.AbnormalCondition, reason or fault_reason(fault))
        else:
            self._drop_authorization()
            self._run_physical(now, utc, TR.AbnormalCondition, report=False, reason=R.Other)
        return self._finish(now)

    def abnormal_cleared(self, now: float, utc: datetime) -> list[TxOutput]:
        if self._fault is None:
            return []
        self._fault = None
        return self._physical(now, utc, TR.ChargingStateChanged, report=False, reason=R.Other)

    def power_loss_recovery(self, now: float, utc: datetime, *,
                            reason: m.Reason = R.PowerLoss) -> list[TxOutput]:
        """At start-up, after `restore()`: a transaction that was running when the station went
        down ends (triggerReason AbnormalCondition, stoppedReason PowerLoss, or Reboot for a
        restart of the software), without chargingState (the EV's state is not known). The
        physical state is forgotten: the hardware reports it again."""
        if self._tx is not None:
            self._demand = None
            self._force_end(now, utc, TR.AbnormalCondition, reason, state_known=False)
        else:
            self._drop_authorization()
            self._sync_path()
        self._connector = None
        self._occupied = False
        self._demand = None
        self._path = self._path_cmd = False
        self._last_conds = self._conditions()
        return self._finish(now)

    # --- persistence ---------------------------------------------------------------------------
    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """The state to persist (JSON-compatible). Persist it after every input that returned
        a message, before sending that message, so seqNo continues after a restart. The
        TxEndedInterval series collected for the Ended event is not part of it."""
        tx = self._tx
        data: dict[str, Any] = {
            "version": SNAPSHOT_VERSION,
            "evse": self.evse_id,
            "connector": self._connector,
            "occupied": self._occupied,
            "demand": self._demand,
            "path": self._path,
            "path_cmd": self._path_cmd,
            "fault": self._fault,
            "id_token": None if self._token is None else msgspec.to_builtins(self._token),
            "remote_start_id": self._remote_start_id,
            "remote_pending": self._remote_pending,
            "blocked": self._blocked,
            "invalid_budget_wh": self._invalid_budget_wh,
            "invalid_base_wh": self._invalid_base_wh,
            "tx": None,
        }
        if tx is not None:
            charged = tx.charged_s
            if now is not None and tx.charging_since is not None:
                charged += now - tx.charging_since
            data["tx"] = {
                "id": tx.id,
                "seq": tx.seq,
                "seen": tx.seen,
                "reported_state": None if tx.reported_state is None else tx.reported_state.value,
                "stop_reason": None if tx.stop_reason is None else tx.stop_reason.value,
                "stopping": tx.stopping,
                "token_reported": tx.token_reported,
                "evse_reported": tx.evse_reported,
                "charged_s": charged,
                "begin_energy_wh": tx.begin_energy_wh,
            }
        return data

    def restore(self, data: dict[str, Any], now: float, utc: datetime) -> None:
        """Take the state of `snapshot()` back (timers and samplers restart from `now`)."""
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unknown transaction snapshot version {data.get('version')!r}")
        self._connector = data["connector"]
        self._occupied = bool(data["occupied"])
        self._demand = data["demand"]
        self._path = bool(data["path"])
        self._path_cmd = bool(data["path_cmd"])
        self._fault = data["fault"]
        token = data["id_token"]
        self._token = None if token is None else msgspec.convert(token, m.IdToken)
        self._remote_start_id = data["remote_start_id"]
        self._remote_pending = bool(data["remote_pending"])
        self._blocked = bool(data["blocked"])
        self._invalid_budget_wh = data["invalid_budget_wh"]
        self._invalid_base_wh = data["invalid_base_wh"]
        t = data["tx"]
        self._tx = None
        if t is not None:
            tx = self._tx = _Tx(
                id=t["id"], seq=int(t["seq"]), seen=int(t["seen"]),
                reported_state=None if t["reported_state"] is None else CS(t["reported_state"]),
                stop_reason=None if t["stop_reason"] is None else R(t["stop_reason"]),
                stopping=bool(t["stopping"]), token_reported=bool(t["token_reported"]),
                evse_reported=bool(t["evse_reported"]), charged_s=float(t["charged_s"]),
                begin_energy_wh=t["begin_energy_wh"],
            )
            if self._charging():
                tx.charging_since = now
            self._arm_samplers(now, utc)
        else:
            self._sample_due = INF
        self._last_conds = self._conditions()
        self._ev_timeout_at = None
        self._refresh_timer(now)

    # --- the machine -------------------------------------------------------------------------
    def _apply_settings(self, settings: TxSettings) -> None:
        self.settings = settings
        self._start_mask = sum(POINT_BITS[p] for p in settings.tx_start_points if p in POINT_BITS)
        self._stop_mask = sum(POINT_BITS[p] for p in settings.tx_stop_points if p in POINT_BITS)

    def _finish(self, now: float) -> list[TxOutput]:
        tx = self._tx
        if tx is not None:
            charging = self._charging()
            if charging and tx.charging_since is None:
                tx.charging_since = now
            elif not charging and tx.charging_since is not None:
                tx.charged_s += now - tx.charging_since
                tx.charging_since = None
        self._refresh_timer(now)
        out, self._out = self._out, []
        return out

    def _charging(self) -> bool:
        return self._path and self._demand is True and self._connector is not None

    def _conditions(self) -> int:
        c = 0
        if self._occupied:
            c |= PARK
        if self._connector is not None:
            c |= EV
            if self._path:
                c |= PATH
                if self._demand is True:
                    c |= ENERGY
        elif self._path:
            c |= PATH
        if self._token is not None:
            c |= AUTH
        return c

    def _charging_state(self) -> m.ChargingState:
        if self._connector is None:
            return CS.Idle
        if self._path:
            if self._demand is True:
                return CS.Charging
            return CS.SuspendedEV if self._demand is False else CS.EVConnected
        # Path open: authorized means the EVSE holds the energy back (blocked, fault, hardware).
        return CS.SuspendedEVSE if self._token is not None else CS.EVConnected

    def _sync_path(self) -> None:
        want = (self._token is not None and self._connector is not None
                and self._fault is None and not self._blocked)
        if want != self._path_cmd:
            self._path_cmd = want
            self._path = want
            self._out.append(PowerPath(self.evse_id, want))

    def _refresh_timer(self, now: float) -> None:
        """EVConnectionTimeOut (C01.FR.26, E03.FR.05, E10.FR.02): runs while authorized without EV."""
        timeout = self.settings.ev_connection_timeout
        if self._token is not None and self._connector is None and timeout > 0:
            if self._ev_timeout_at is None:
                self._ev_wait_since = now
                self._ev_timeout_at = now + timeout
        else:
            self._ev_timeout_at = None

    def _drop_authorization(self) -> None:
        self._token = None
        self._remote_pending = False
        self._remote_start_id = None
        self._blocked = False
        self._invalid_budget_wh = None
        self._invalid_base_wh = None
        self._ev_timeout_at = None

    def _physical(self, now: float, utc: datetime, trigger: m.TriggerReason, *,
                  report: bool, reason: m.Reason) -> list[TxOutput]:
        self._run_physical(now, utc, trigger, report=report, reason=reason)
        return self._finish(now)

    def _run_physical(self, now: float, utc: datetime, trigger: m.TriggerReason, *,
                      report: bool, reason: m.Reason) -> None:
        """A change of the physical side: the power path follows at once, one evaluation."""
        self._sync_path()
        self._evaluate(now, utc, self._conditions(), trigger, report=report and self._tx is not None,
                       state=self._charging_state(), reason=reason)

    def _run_intent(self, now: float, utc: datetime, trigger: m.TriggerReason,
                    pre_state: m.ChargingState, reason: m.Reason,
                    stop_token: m.IdToken | None = None) -> None:
        """A change of the authorization, in two steps (E07, errata 2.19/2.20): the event, with
        the power path already following it but the energy flow and the chargingState as they
        were; then the energy flow catching up (ChargingStateChanged)."""
        lagged_energy = self._last_conds & ENERGY
        self._sync_path()
        conds = self._conditions()
        emitted = self._evaluate(now, utc, (conds & ~ENERGY) | lagged_energy, trigger,
                                 report=self._tx is not None, state=pre_state, reason=reason,
                                 stop_token=stop_token)
        self._evaluate(now, utc, self._conditions(), TR.ChargingStateChanged if emitted else trigger,
                       report=False, state=self._charging_state(), reason=reason,
                       stop_token=None if emitted else stop_token)

    def _stop(self, now: float, utc: datetime, trigger: m.TriggerReason, reason: m.Reason,
              stop_token: m.IdToken | None = None) -> list[TxOutput]:
        connector = self._connector
        if self._tx is None and self._token is None:
            return []
        if self._tx is not None and self._tx.stopping and self._token is None:
            return []                           # already stopped; waiting for a TxStopPoint
        self._deauthorize(now, utc, reason, trigger, stop_token)
        if connector is not None:
            self._out.append(UnlockConnector(self.evse_id, connector))    # E07 / F03
        return self._finish(now)

    def _deauthorize(self, now: float, utc: datetime, reason: m.Reason, trigger: m.TriggerReason,
                     stop_token: m.IdToken | None = None) -> None:
        tx = self._tx
        if tx is None:
            if self._token is not None:
                self._drop_authorization()
                self._run_physical(now, utc, trigger, report=False, reason=reason)
            return
        if tx.stopping and self._token is None:
            return
        pre = self._charging_state()
        tx.stopping = True
        if tx.stop_reason is None:
            tx.stop_reason = reason
        self._drop_authorization()
        self._run_intent(now, utc, trigger, pre, reason, stop_token)

    def _connect_timeout(self, now: float, utc: datetime) -> None:
        """EVConnectionTimeOut expired (TC_E_05, TC_E_27, TC_E_39): the authorization ends;
        Ended with stoppedReason Timeout when TxStopPoint has Authorized, else Updated."""
        if self._token is None or self._connector is not None:
            return
        self._deauthorize(now, utc, R.Timeout, TR.EVConnectTimeout)

    def _block(self, now: float, utc: datetime, trigger: m.TriggerReason, reason: m.Reason) -> None:
        self._blocked = True
        self._invalid_budget_wh = None
        self._invalid_base_wh = None
        self._run_physical(now, utc, trigger, report=trigger is TR.EnergyLimitReached, reason=reason)

    def _evaluate(self, now: float, utc: datetime, conds: int, trigger: m.TriggerReason, *,
                  report: bool, state: m.ChargingState, reason: m.Reason,
                  stop_token: m.IdToken | None = None) -> bool:
        """Start, end or report, at most one message. True when a message was made."""
        rising = conds & ~self._last_conds
        self._last_conds = conds
        tx = self._tx
        if tx is None:
            if rising & self._start_mask:       # E01.FR.01-06: the first start point
                self._start(now, utc, trigger, state, conds)
                return True
            return False
        violated = tx.seen & ~conds & self._stop_mask       # E06.FR.01-07
        if tx.stopping:
            violated |= _LOST_ON_STOP & ~conds & self._stop_mask
        tx.seen |= conds
        if violated:
            self._end(now, utc, trigger, reason, stop_token)
            return True
        if report or state is not tx.reported_state:
            self._emit(TE.Updated, utc, trigger, state=state, stop_token=stop_token)
            return True
        return False

    def _start(self, now: float, utc: datetime, trigger: m.TriggerReason, state: m.ChargingState,
               conds: int) -> None:
        tx = self._tx = _Tx(self._new_id(), seen=conds)
        r = self._reading
        tx.begin_energy_wh = r.energy_wh if r is not None else None
        s = self.settings
        meter = None
        if s.sampled_enabled:                   # J02 / TC_J_07: TxStartedMeasurands, Transaction.Begin
            mv = meter_value(r, s.tx_started_measurands, CTX.Transaction_Begin, utc)
            meter = [mv] if mv is not None else None
        self._arm_samplers(now, utc)
        tx.evse_reported = self._connector is not None
        self._emit(TE.Started, utc, trigger, state=state, force_state=True, meter=meter,
                   evse=m.EVSE(id=self.evse_id, connector_id=self._connector))

    def _force_end(self, now: float, utc: datetime, trigger: m.TriggerReason, reason: m.Reason, *,
                   state_known: bool = True) -> None:
        self._tx.stop_reason = reason           # reset / fault / power loss override an earlier cause
        self._end(now, utc, trigger, reason, None, state_known=state_known)

    def _end(self, now: float, utc: datetime, trigger: m.TriggerReason, reason: m.Reason,
             stop_token: m.IdToken | None, *, state_known: bool = True) -> None:
        tx = self._tx
        stopped = tx.stop_reason or reason
        self._drop_authorization()              # errata 2.12: the end of the transaction ends it
        self._sync_path()
        if tx.charging_since is not None:
            tx.charged_s += now - tx.charging_since
            tx.charging_since = None
        s = self.settings
        values = tx.ended_values
        if s.sampled_enabled:
            mv = meter_value(self._reading, s.tx_ended_measurands, CTX.Transaction_End, utc)
            if mv is not None:
                values.append(mv)
        if len(values) > 1:
            values.sort(key=_timestamp)         # the sampled and the aligned series, merged
        self._emit(TE.Ended, utc, trigger, state=self._charging_state() if state_known else None,
                   force_state=True, meter=values or None, stopped=stopped,
                   time_spent=int(round(tx.charged_s)), stop_token=stop_token)
        self._tx = None
        self._sample_due = INF
        self._last_conds = self._conditions()

    def _emit(self, event_type: m.TransactionEvent, utc: datetime, trigger: m.TriggerReason, *,
              state: m.ChargingState | None, force_state: bool = False,
              meter: list[m.MeterValue] | None = None, evse: m.EVSE | None = None,
              stop_token: m.IdToken | None = None, stopped: m.Reason | None = None,
              time_spent: int | None = None) -> None:
        tx = self._tx
        charging_state = None
        if state is not None and (force_state or state is not tx.reported_state):
            charging_state = state
            tx.reported_state = state
        remote_start_id = None
        if self._remote_pending and event_type is not TE.Ended:
            trigger = TR.RemoteStart            # the first message after a remote start (TC_E_13)
            remote_start_id = self._remote_start_id
            self._remote_pending = False
        token = stop_token
        if self._token is not None and not tx.token_reported:
            token = token or self._token        # the first message after the authorization
            tx.token_reported = True
        if evse is None and self._connector is not None and not tx.evse_reported:
            evse = m.EVSE(id=self.evse_id, connector_id=self._connector)
            tx.evse_reported = True
        self._out.append(m.TransactionEventRequest(
            event_type=event_type,
            timestamp=utc,
            trigger_reason=trigger,
            seq_no=tx.seq,
            offline=None if self.online else True,
            transaction_info=m.Transaction(
                transaction_id=tx.id, charging_state=charging_state, time_spent_charging=time_spent,
                stopped_reason=stopped, remote_start_id=remote_start_id),
            evse=evse,
            id_token=token,
            meter_value=meter,
        ))
        tx.seq += 1

    # --- meter values ----------------------------------------------------------------------------
    def _arm_samplers(self, now: float, utc: datetime) -> None:
        tx = self._tx
        s = self.settings
        sampled = s.sampled_enabled
        tx.updated_due = now + s.tx_updated_interval \
            if sampled and s.tx_updated_interval and s.tx_updated_measurands else INF
        tx.ended_due = now + s.tx_ended_interval \
            if sampled and s.tx_ended_interval and s.tx_ended_measurands else INF
        epoch = utc.timestamp()
        if s.aligned_enabled and s.aligned_interval and s.aligned_measurands and not s.aligned_send_during_idle:
            tx.clock_epoch = next_aligned(epoch, s.aligned_interval)
            tx.clock_due = now + (tx.clock_epoch - epoch)
        else:
            tx.clock_due = INF
        if s.aligned_enabled and s.aligned_tx_ended_interval and s.aligned_tx_ended_measurands:
            tx.ended_clock_epoch = next_aligned(epoch, s.aligned_tx_ended_interval)
            tx.ended_clock_due = now + (tx.ended_clock_epoch - epoch)
        else:
            tx.ended_clock_due = INF
        self._sample_due = min(tx.updated_due, tx.clock_due, tx.ended_due, tx.ended_clock_due)

    def _sample(self, now: float, utc: datetime) -> None:
        tx = self._tx
        s = self.settings
        r = self._reading
        if now >= tx.updated_due:               # J02: TxUpdatedMeasurands every TxUpdatedInterval
            ts = _nominal(utc, now, tx.updated_due, s.tx_updated_interval)
            tx.updated_due = _advance(tx.updated_due, s.tx_updated_interval, now)
            mv = meter_value(r, s.tx_updated_measurands, CTX.Sample_Periodic, ts)
            if mv is not None:
                self._emit(TE.Updated, ts, TR.MeterValuePeriodic, state=self._charging_state(), meter=[mv])
        if now >= tx.clock_due:                 # J01: AlignedDataCtrlr.Measurands at every boundary
            ts = utc_from_epoch(tx.clock_epoch)
            epoch = utc.timestamp()
            tx.clock_epoch = next_aligned(max(epoch, tx.clock_epoch), s.aligned_interval)
            tx.clock_due = now + (tx.clock_epoch - epoch)
            mv = meter_value(r, s.aligned_measurands, CTX.Sample_Clock, ts)
            if mv is not None:
                self._emit(TE.Updated, ts, TR.MeterValueClock, state=self._charging_state(), meter=[mv])
        if now >= tx.ended_due:                 # SampledDataCtrlr.TxEndedInterval series
            ts = _nominal(utc, now, tx.ended_due, s.tx_ended_interval)
            tx.ended_due = _advance(tx.ended_due, s.tx_ended_interval, now)
            if len(tx.ended_values) < MAX_ENDED_VALUES:
                mv = meter_value(r, s.tx_ended_measurands, CTX.Sample_Periodic, ts)
                if mv is not None:
                    tx.ended_values.append(mv)
        if now >= tx.ended_clock_due:           # AlignedDataCtrlr.TxEndedInterval series
            ts = utc_from_epoch(tx.ended_clock_epoch)
            epoch = utc.timestamp()
            tx.ended_clock_epoch = next_aligned(max(epoch, tx.ended_clock_epoch), s.aligned_tx_ended_interval)
            tx.ended_clock_due = now + (tx.ended_clock_epoch - epoch)
            if len(tx.ended_values) < MAX_ENDED_VALUES:
                mv = meter_value(r, s.aligned_tx_ended_measurands, CTX.Sample_Clock, ts)
                if mv is not None:
                    tx.ended_values.append(mv)
        self._sample_due = min(tx.updated_due, tx.clock_due, tx.ended_due, tx.ended_clock_due)


def _sampling(s: TxSettings) -> tuple:
    """The settings the meter-value samplers of a transaction are armed from."""
    return (s.sampled_enabled, s.tx_updated_interval, bool(s.tx_updated_measurands), s.tx_ended_interval,
            bool(s.tx_ended_measurands), s.aligned_enabled, s.aligned_interval, bool(s.aligned_measurands),
            s.aligned_send_during_idle, s.aligned_tx_ended_interval, bool(s.aligned_tx_ended_measurands))


def _timestamp(mv: m.MeterValue) -> datetime:
    return mv.timestamp


def _nominal(utc: datetime, now: float, due: float, interval: int) -> datetime:
    """The UTC time of the sampling instant `due` (when the tick came late by less than one
    interval), so consecutive samples are exactly one interval apart."""
    lag = now - due
    return utc - timedelta(seconds=lag) if 0 < lag < interval else utc


def _advance(due: float, interval: int, now: float) -> float:
    due += interval
    if due <= now:                              # missed samples are skipped, not bunched
        due += interval * (math.floor((now - due) / interval) + 1)
    return due
