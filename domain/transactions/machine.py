"""The rules of the transaction state machine: conditions, start and stop points, the two-step
reporting of authorization changes, the messages (a part of EvseTransactions, see fsm.py)."""
from __future__ import annotations

from datetime import datetime

from domain import messages as m
from domain.effects import UnlockConnector
from domain.transactions.metering import meter_value
from domain.transactions.settings import TxSettings
from domain.transactions.sampling import _timestamp
from domain.transactions.state import (
    _LOST_ON_STOP,
    AUTH,
    CS,
    CTX,
    ENERGY,
    EV,
    INF,
    PARK,
    PATH,
    POINT_BITS,
    R,
    TE,
    TR,
    PowerPath,
    TxOutput,
    _Tx,
)


# A start held back before the CSMS accepted the station, by the first start point reached
# (in the order they are usually reached): the triggerReason of the start when it is allowed.
_HELD_BACK_TRIGGERS = ((PARK, TR.EVDetected), (EV, TR.CablePluggedIn), (AUTH, TR.Authorized),
                       (PATH, TR.ChargingStateChanged), (ENERGY, TR.ChargingStateChanged))


class Machine:
    """The rule part of EvseTransactions."""

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
            self._held_back &= conds
            start = rising & self._start_mask
            if start and not self._may_start():
                self._held_back |= start        # B02/B03: not before the CSMS accepted the station
                return False
            if start:                           # E01.FR.01-06: the first start point
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

    def _may_start(self) -> bool:
        """B02/B03: a transaction may start once the CSMS accepted the station, or before with
        TxCtrlr.TxBeforeAcceptedEnabled."""
        return self.accepted or self.settings.tx_before_accepted

    def _start_held_back(self, now: float, utc: datetime) -> bool:
        """Starting became allowed (see `set_accepted`): a start point held back that still
        holds starts the transaction, with its triggerReason. True when it started one."""
        conds = self._conditions()
        held = self._held_back & conds & self._start_mask
        if self._tx is not None or not held or not self._may_start():
            return False
        trigger = next(t for bit, t in _HELD_BACK_TRIGGERS if held & bit)
        self._last_conds = conds
        self._start(now, utc, trigger, self._charging_state(), conds)
        return True

    def _start(self, now: float, utc: datetime, trigger: m.TriggerReason, state: m.ChargingState,
               conds: int) -> None:
        self._held_back = 0
        tx = self._tx = _Tx(self._new_id(), seen=conds)
        r = self._reading
        tx.begin_energy_wh = r.energy_wh if r is not None else None
        tx.started = utc.isoformat()
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

