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

Modules: this one holds the inputs and views; machine.py the rules (conditions, start and stop,
the messages), sampling.py the meter-value samplers, snapshot.py what is stored and restored,
state.py the vocabulary (condition bits, PowerPath, the running transaction's record).
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Callable

from domain import messages as m
from domain.effects import UnlockConnector
from domain.hardware_events import MeterReading
from domain.transactions.metering import meter_value
from domain.transactions.machine import Machine
from domain.transactions.sampling import Samplers, _sampling
from domain.transactions.settings import TxSettings
from domain.transactions.snapshot import Snapshots
from domain.transactions.state import CTX, INF, TE, TR, R, PowerPath, TxOutput, _Tx, fault_reason  # noqa: F401


class EvseTransactions(Machine, Samplers, Snapshots):
    """Transactions of one EVSE. See the module docstring for the rules."""

    def __init__(self, evse_id: int, settings: TxSettings | None = None, *,
                 new_transaction_id: Callable[[], str] | None = None) -> None:
        self.evse_id = evse_id
        self._new_id = new_transaction_id or (lambda: str(uuid.uuid4()))
        self.online = True                      # False: messages are marked offline (E12)
        # False: the CSMS has not accepted the station (B02/B03): no start unless TxBeforeAcceptedEnabled
        self.accepted = True
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
        self._held_back = 0                     # start points reached while no start was allowed
        self._reading: MeterReading | None = None
        self._sample_due = INF
        self._out: list[TxOutput] = []
        self._apply_settings(settings or TxSettings())

    # --- views ---------------------------------------------------------------------------------
    @property
    def transaction_id(self) -> str | None:
        return self._tx.id if self._tx is not None else None

    @property
    def transaction_view(self) -> dict | None:
        """The running transaction for the local status (bootstrap/status.py): id, when it
        started, energy since its start, the authorizing idToken; None when none runs."""
        tx = self._tx
        if tx is None:
            return None
        r = self._reading
        energy = (r.energy_wh - tx.begin_energy_wh) if r is not None and tx.begin_energy_wh is not None else None
        return {"id": tx.id, "started": tx.started, "energy_wh": energy,
                "id_token": self._token.id_token if self._token is not None else None}

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

    def reconfigure(self, settings: TxSettings, now: float, utc: datetime) -> list[TxOutput]:
        """New settings (SetVariables changed the device model), in effect at once: the next
        input already uses the new TxStartPoint/TxStopPoint; when a sampling setting changed,
        the samplers of a running transaction restart from now (clock-aligned ones at the next
        boundary of the new interval); a running EVConnectionTimeOut counts the new value
        from the moment it started (E03.FR.05); TxBeforeAcceptedEnabled set true starts a
        transaction held back until now (`set_accepted`)."""
        old = self.settings
        self._apply_settings(settings)
        if self._tx is not None and _sampling(old) != _sampling(settings):
            self._arm_samplers(now, utc)
        if self._ev_timeout_at is not None and old.ev_connection_timeout != settings.ev_connection_timeout:
            timeout = settings.ev_connection_timeout
            self._ev_timeout_at = self._ev_wait_since + timeout if timeout > 0 else None
        return self._finish(now) if self._start_held_back(now, utc) else []

    def set_accepted(self, accepted: bool, now: float, utc: datetime) -> list[TxOutput]:
        """Whether the CSMS has accepted the station (BootNotificationResponse; B02/B03).

        Before, with TxCtrlr.TxBeforeAcceptedEnabled false ("Transactions before being accepted
        by a CSMS", B 1.1: deny charging services), a TxStartPoint reached starts nothing. Once
        allowed, a start point reached meanwhile that still holds starts the transaction now:
        E01.FR.01-06 are conditions ("TxStartPoint contains EVConnected AND the Charging Station
        has a connection with the EV AND no transaction has started yet on this EVSE"), true
        from the moment starting is allowed, with the triggerReason of that start point
        (CablePluggedIn TC_E_09, EVDetected TC_E_12). One that no longer holds starts nothing."""
        self.accepted = accepted
        return self._finish(now) if self._start_held_back(now, utc) else []

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

    def charging_rate_changed(self, now: float, utc: datetime) -> list[TxOutput]:
        """The limit in force changed by more than LimitChangeSignificance through an external
        actor (K11/K12 with a transaction; errata 6.2.19: not for the CSMS's own profiles): an
        Updated with triggerReason ChargingRateChanged."""
        if self._tx is None:
            return []
        self._emit(TE.Updated, utc, TR.ChargingRateChanged, state=self._charging_state())
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

