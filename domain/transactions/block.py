"""Block E Transactions (with J Meter values): what the EVSEs' transaction state machines do
with the hardware's events, and what becomes of their outputs.

- Each EVSE aggregate holds its `EvseTransactions`; this block feeds it the plug, the bay
  sensor, the EV's request for energy, meter readings and the passing of time, and turns its
  outputs into durable TransactionEvents (stored with the machine's snapshot in ONE change
  before anything is sent, so a restart at any instant continues with the same seqNo),
  energy offers (EnergyOffer) and unlock commands.
- Start-up: every EVSE is restored from its snapshot; a transaction that was running ends
  with stoppedReason PowerLoss (Reboot after a soft reboot), seqNo continuing.
- The answers to TransactionEvents: the idTokenInfo feeds the cache (C10) and the state
  machine (StopTxOnInvalidId, MaxEnergyOnInvalidId).
- GetTransactionStatus (E14); clock-aligned MeterValues outside transactions (J01).
- Settings (TxCtrlr, SampledDataCtrlr, AlignedDataCtrlr) changed at run time reach the state
  machines at the end of the input that changed them.
- Before the CSMS accepted the station (B02/B03), with TxCtrlr.TxBeforeAcceptedEnabled false, no
  transaction starts, whatever the TxStartPoint; one whose start point still holds at
  acceptance (the EV still plugged in) starts then (`set_accepted`).

Other blocks drive a state machine through `ctx.evses[e].fsm` and hand its outputs to
`drive()`.
"""
from __future__ import annotations

import json
from datetime import datetime

from domain import messages as m
from domain.block import Block
from domain.context import Context
from domain.device_model import VariableRef
from domain.hardware_events import (
    CablePlugged,
    CableUnplugged,
    EnergyPaused,
    EnergyRequested,
    MeterSampled,
    OccupancyChanged,
)
from domain.outbox import Failure, Registration
from domain.stored_state import StoredState
from domain.effects import UnlockConnector
from domain.transactions.fsm import PowerPath
from domain.transactions.metering import meter_value, next_aligned, utc_from_epoch
from domain.transactions.settings import TxSettings

SNAPSHOT_KEY = "tx:{evse}"        # station-state key of an EVSE's transaction snapshot


class Transactions(Block):
    name = "transactions"
    # the cache follows the CSMS's answers (C10); the limit is known before the power path closes (K)
    needs = {"authorization": "authorization", "smart_charging": "smart_charging"}
    events = (CablePlugged, CableUnplugged, OccupancyChanged, EnergyRequested, EnergyPaused)

    def __init__(self, ctx: Context, stored: StoredState, args) -> None:
        super().__init__(ctx, stored, args)
        self.settings = TxSettings.from_device_model(ctx.dm)
        self._snapshots = {e: v for e in ctx.evses if (v := stored.value(SNAPSHOT_KEY.format(evse=e))) is not None}
        self.settings_pending = False
        self._idle_due: dict[int, tuple[float, float]] = {}     # EVSE -> (monotonic due, aligned epoch)
        self.calls = {"GetTransactionStatus": self._on_transaction_status}
        self.answers = {"TransactionEvent": self}
        for component, variable in TxSettings.VARIABLES:
            ctx.dm.subscribe(VariableRef(component, variable), self._settings_changed)
        for evse in ctx.evses.values():          # B02/B03: no start before the CSMS accepted the station
            evse.fsm.accepted = ctx.registration is Registration.Accepted

    @classmethod
    def stored_keys(cls, evse_ids) -> tuple[str, ...]:
        return tuple(SNAPSHOT_KEY.format(evse=e) for e in evse_ids)

    # --- start-up ----------------------------------------------------------------------------
    def start(self, now: float, *, soft_reboot: bool = False) -> None:
        """Restore every EVSE; end what a previous run left running. What recovery reports
        happened offline (before reconnecting)."""
        self.set_online(False)
        utc = self.ctx.utc(now)
        for evse_id, evse in self.ctx.evses.items():
            raw = self._snapshots.get(evse_id)
            if not raw:
                continue
            try:
                evse.fsm.restore(json.loads(raw), now, utc)
            except (ValueError, KeyError, TypeError) as exc:
                # unreadable: the EVSE starts afresh (its queued events still go out)
                self.ctx.log("error", f"EVSE {evse_id}: transaction snapshot unreadable ({exc}); starting without it")
                continue
            reason = m.Reason.Reboot if soft_reboot else m.Reason.PowerLoss
            self.drive(evse_id, evse.fsm.power_loss_recovery(now, utc, reason=reason), now)
        self._schedule_idle(now, utc)

    def set_online(self, online: bool) -> None:
        """Events made from now on are (not) marked offline (E12)."""
        for evse in self.ctx.evses.values():
            evse.fsm.online = online

    def set_accepted(self, accepted: bool, now: float) -> None:
        """B01-B03: the CSMS (no longer) accepts the station. Before, with
        TxCtrlr.TxBeforeAcceptedEnabled false, no transaction starts; a TxStartPoint reached
        meanwhile that still holds (an EV plugged in) starts one at acceptance
        (`EvseTransactions.set_accepted`)."""
        utc = self.ctx.utc(now)
        for evse_id, evse in self.ctx.evses.items():
            self.drive(evse_id, evse.fsm.set_accepted(accepted, now, utc), now)

    def link_up(self, now: float) -> None:
        if self.ctx.online:
            self.set_online(True)

    def link_down(self, now: float) -> None:
        self.set_online(False)

    # --- settings ----------------------------------------------------------------------------
    def _settings_changed(self, _ref: VariableRef, _value: str) -> None:
        self.settings_pending = True

    def apply_settings(self, now: float) -> None:
        """Put changed settings in effect at the end of the input that changed them, so the
        next input and `next_deadline()` already see them: the state machines get them
        (`EvseTransactions.reconfigure`); the idle clock-aligned MeterValues (J01) are
        rescheduled from now when AlignedDataCtrlr.Enabled or Interval changed."""
        if not self.settings_pending:
            return
        self.settings_pending = False
        utc = self.ctx.utc(now)
        old, self.settings = self.settings, TxSettings.from_device_model(self.ctx.dm)
        for evse_id, evse in self.ctx.evses.items():
            self.drive(evse_id, evse.fsm.reconfigure(self.settings, now, utc), now)
        if (old.aligned_enabled, old.aligned_interval) != (self.settings.aligned_enabled,
                                                           self.settings.aligned_interval):
            self._idle_due.clear()
            self._schedule_idle(now, utc)

    # --- outputs ------------------------------------------------------------------------------
    def drive(self, evse_id: int, outputs: list, now: float) -> None:
        """A state machine's outputs: its TransactionEvents stored (with its snapshot, in one
        change) and queued; the power path as an energy offer; unlock commands."""
        if not outputs:
            return
        evse = self.ctx.evses[evse_id]
        messages = [o for o in outputs if isinstance(o, m.TransactionEventRequest)]
        if messages:
            snapshot = json.dumps(evse.fsm.snapshot(now), separators=(",", ":"))
            self.ctx.outbox.post_durable(messages, self, kv={SNAPSHOT_KEY.format(evse=evse_id): snapshot})
            self._tell_smart_charging(evse_id, messages, now)
        path_changed = False
        for o in outputs:
            if isinstance(o, PowerPath):
                if o.closed:                          # the offer carries the limit in force (K)
                    self.smart_charging.refresh(evse_id, now)
                self.ctx.emit(evse.offer_for(o.closed))
                path_changed = True
            elif isinstance(o, UnlockConnector):
                self.ctx.emit(o)
        if path_changed:
            self._energy_follows(evse_id, now)

    def charging_rate_changed(self, evse_id: int, now: float) -> None:
        """K -> E: an external limit changed the EVSE's charging rate significantly (K11):
        its transaction reports it (TransactionEvent, triggerReason ChargingRateChanged)."""
        evse = self.ctx.evses[evse_id]
        self.drive(evse_id, evse.fsm.charging_rate_changed(now, self.ctx.utc(now)), now)

    def _tell_smart_charging(self, evse_id: int, messages: list[m.TransactionEventRequest], now: float) -> None:
        """A transaction started or ended: smart charging is told (its Tx/Relative profiles,
        a remote start's profile), before a closing power path asks for the limit."""
        for msg in messages:
            if msg.event_type == m.TransactionEvent.Started:
                self.smart_charging.transaction_started(evse_id, msg.transaction_info.transaction_id, now)
            elif msg.event_type == m.TransactionEvent.Ended:
                self.smart_charging.transaction_ended(evse_id, msg.transaction_info.transaction_id, now)

    def _energy_follows(self, evse_id: int, now: float) -> None:
        """EnergyTransfer: the EV draws once it asks for energy and the power path is closed."""
        evse = self.ctx.evses[evse_id]
        flowing = evse.energy_requested and evse.offer is not None and evse.offer.closed
        if flowing != evse.energy_flowing:
            evse.energy_flowing = flowing
            self.drive(evse_id, evse.fsm.energy_transfer(flowing, now, self.ctx.utc(now)), now)

    # --- the hardware -------------------------------------------------------------------------
    def hardware(self, event, now: float) -> None:
        evse = self.ctx.evses.get(event.evse)
        if evse is None:
            return
        e, fsm, utc = evse.id, evse.fsm, self.ctx.utc(now)
        match event:
            case CablePlugged(connector=c) if c in evse.connectors:
                evse.connectors[c].plugged = True
                if evse.connectors[c].operative:                 # G03: none on an Inoperative one
                    self.ev_connected(e, c, now)
            case CableUnplugged(connector=c) if c in evse.connectors:
                evse.connectors[c].plugged = False
                evse.ev_left()                                   # the EV is gone, and what it asked for
                self.drive(e, fsm.ev_disconnected(c, now, utc), now)
            case OccupancyChanged(occupied=o):
                evse.occupied = o
                self.drive(e, fsm.parking_bay_occupied(o, now, utc), now)
            case EnergyRequested() | EnergyPaused():
                evse.energy_requested = isinstance(event, EnergyRequested)
                self._energy_follows(e, now)

    def ev_connected(self, evse_id: int, connector: int, now: float) -> None:
        """The state machine learns that an EV is plugged into a usable connector: at the plug,
        or when the connector it was plugged into while Unavailable becomes usable again
        (G03/G04; the availability block), as if it had been plugged in at that moment:
        triggerReason CablePluggedIn, the TxStartPoint EVConnected starts a transaction."""
        evse = self.ctx.evses[evse_id]
        self.drive(evse_id, evse.fsm.ev_connected(connector, now, self.ctx.utc(now)), now)

    def meter(self, event: MeterSampled, now: float) -> None:
        """The per-sample path: nothing else to do unless a sample is due."""
        evse = self.ctx.evses.get(event.evse)
        if evse is not None:
            evse.reading = event.reading
            self.drive(evse.id, evse.fsm.meter(event.reading, now, self.ctx.clock.utc(now)), now)

    # --- timers -------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        ds = [d for d in (e.fsm.next_deadline() for e in self.ctx.evses.values()) if d is not None]
        ds += [due for due, _ in self._idle_due.values()]
        return min(ds) if ds else None

    def tick(self, now: float) -> None:
        utc = self.ctx.utc(now)
        for evse_id, evse in self.ctx.evses.items():
            d = evse.fsm.next_deadline()
            if d is not None and d <= now:
                self.drive(evse_id, evse.fsm.tick(now, utc), now)
        for request in self._idle_meter_values(now, utc):
            self.ctx.outbox.post(request)

    # --- the CSMS -----------------------------------------------------------------------------
    def result(self, request: m.TransactionEventRequest, response: m.TransactionEventResponse, now: float) -> None:
        info = response.id_token_info
        if info is None:
            return
        evse = self.transaction_of(request.transaction_info.transaction_id)
        token = request.id_token or (evse.fsm.id_token if evse else None)
        if token is not None:
            self.authorization.learn(token, info, now)      # C10: the cache follows
        if evse is not None:
            self.drive(evse.id, evse.fsm.csms_response(info, now, self.ctx.utc(now)), now)

    def failed(self, request, failure: Failure, now: float) -> None:
        pass                                         # E13: the outbox retries or drops it

    def _on_transaction_status(self, req: m.GetTransactionStatusRequest, now: float, size: int):
        """E14: whether it still runs, and whether messages of it are still queued."""
        ongoing = None
        if req.transaction_id is not None:
            ongoing = self.transaction_of(req.transaction_id) is not None
        return m.GetTransactionStatusResponse(ongoing_indicator=ongoing,
                                              messages_in_queue=self.queued_for(req.transaction_id))

    # --- views ---------------------------------------------------------------------------------
    def transaction_of(self, transaction_id: str):
        for evse in self.ctx.evses.values():
            if evse.fsm.transaction_id == transaction_id:
                return evse
        return None

    def queued_for(self, transaction_id: str | None) -> bool:
        """TransactionEvents (of that transaction; None: of any) not yet delivered."""
        for r in self.ctx.outbox.durable_requests():
            if isinstance(r, m.TransactionEventRequest) and (
                    transaction_id is None or r.transaction_info.transaction_id == transaction_id):
                return True
        return False

    # --- meter values outside transactions (J01) ---------------------------------------------
    def _idle_meter_values(self, now: float, utc: datetime) -> list[m.MeterValuesRequest]:
        """Clock-aligned MeterValues (AlignedDataCtrlr.Interval / Measurands, Sample.Clock) of
        every EVSE without a transaction (during one they travel in its TransactionEvents)."""
        s = self.settings
        if not s.aligned_enabled or s.aligned_interval <= 0:
            self._idle_due.clear()
            return []
        out = []
        for evse_id, evse in self.ctx.evses.items():
            due = self._idle_due.get(evse_id)
            if due is not None and due[0] <= now:
                if evse.fsm.transaction_id is None and evse.reading is not None:
                    mv = meter_value(evse.reading, s.aligned_measurands, m.ReadingContext.Sample_Clock,
                                     utc_from_epoch(due[1]))
                    if mv is not None:
                        out.append(m.MeterValuesRequest(evse_id=evse_id, meter_value=[mv]))
                del self._idle_due[evse_id]
        self._schedule_idle(now, utc)
        return out

    def _schedule_idle(self, now: float, utc: datetime) -> None:
        """The next AlignedDataCtrlr.Interval boundary (from midnight UTC) of every EVSE that
        has none scheduled; none at all while clock-aligned data is off."""
        s = self.settings
        if not s.aligned_enabled or s.aligned_interval <= 0:
            return
        epoch_now = utc.timestamp()
        for evse_id in self.ctx.evses:
            if evse_id not in self._idle_due:
                epoch = next_aligned(epoch_now, s.aligned_interval)
                self._idle_due[evse_id] = (now + (epoch - epoch_now), epoch)
