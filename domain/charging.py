"""Charging sessions of all EVSEs: the transaction state machines, their durable queue and
what the hardware must do (OCPP 2.0.1 blocks E, F01-F04, J).

The station feeds hardware events, authorizations and the CSMS's answers in; this module
turns the state machines' outputs into queued TransactionEvents (stored, with the machine's
snapshot, in ONE change before anything is sent, so a restart at any instant continues with
the same seqNo and loses no event) and hardware commands.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime

from domain import messages as m
from domain.device_model import DeviceModel, VariableRef
from domain.effects import Effect, Log, StoreRecords
from domain.queue import TABLE as QUEUE_TABLE, DurableQueue, Queued
from domain.hardware_events import MeterReading
from domain.transactions import EvseTransactions, PowerPath, TxSettings, UnlockConnector
from domain.transactions.metering import meter_value, next_aligned, utc_from_epoch

SNAPSHOT_KEY = "tx:{evse}"        # station-state key of an EVSE's transaction snapshot


class Charging:
    def __init__(self, dm: DeviceModel, evse_ids: list[int], *, queue_records: Mapping[str, str],
                 snapshots: Mapping[int, str], new_transaction_id: Callable[[], str] | None = None) -> None:
        self.dm = dm
        self.settings = TxSettings.from_device_model(dm)
        self.fsm = {e: EvseTransactions(e, self.settings, new_transaction_id=new_transaction_id) for e in evse_ids}
        self.queue = DurableQueue(queue_records)
        self._snapshots = dict(snapshots)
        self.settings_pending = False      # a setting changed; `refresh_settings` applies it
        self.energy_requested = dict.fromkeys(evse_ids, False)
        self.readings: dict[int, MeterReading] = {}
        self._idle_due: dict[int, tuple[float, float]] = {}     # EVSE -> (monotonic due, aligned epoch)
        self.power_path = dict.fromkeys(evse_ids, False)
        for component, variable in TxSettings.VARIABLES:
            dm.subscribe(VariableRef(component, variable), self._settings_changed)

    # --- start-up ----------------------------------------------------------------------------
    def recover(self, now: float, utc: datetime, *, soft_reboot: bool) -> tuple[list[Effect], list[Queued]]:
        """Restore every EVSE from its snapshot; a transaction that was running ends with
        stoppedReason PowerLoss (Reboot after a soft reboot), seqNo continuing."""
        effects: list[Effect] = []
        queued: list[Queued] = []
        for evse_id, fsm in self.fsm.items():
            raw = self._snapshots.get(evse_id)
            if not raw:
                continue
            try:
                fsm.restore(json.loads(raw), now, utc)
            except (ValueError, KeyError, TypeError) as exc:
                # unreadable: the EVSE starts afresh (its queued events still go out)
                effects.append(Log("error", f"EVSE {evse_id}: transaction snapshot unreadable ({exc}); "
                                            f"starting without it"))
                continue
            reason = m.Reason.Reboot if soft_reboot else m.Reason.PowerLoss
            out = fsm.power_loss_recovery(now, utc, reason=reason)
            e, q = self.outputs(evse_id, out, now)
            effects += e
            queued += q
        return effects, queued

    # --- settings ----------------------------------------------------------------------------
    def _settings_changed(self, _ref: VariableRef, _value: str) -> None:
        self.settings_pending = True

    def refresh_settings(self, now: float, utc: datetime) -> None:
        """Put changed settings in effect: the station calls this at the end of the input that
        changed them (SetVariables, config, ...), so the next input and `next_deadline()`
        already see them. The state machines get them (TxStartPoint/TxStopPoint, timeouts,
        samplers: `EvseTransactions.reconfigure`); the idle clock-aligned MeterValues (J01)
        are rescheduled from now when AlignedDataCtrlr.Enabled or Interval changed."""
        if not self.settings_pending:
            return
        self.settings_pending = False
        old, self.settings = self.settings, TxSettings.from_device_model(self.dm)
        for fsm in self.fsm.values():
            fsm.reconfigure(self.settings, now, utc)
        if (old.aligned_enabled, old.aligned_interval) != (self.settings.aligned_enabled,
                                                           self.settings.aligned_interval):
            self._idle_due.clear()
            self._schedule_idle(now, utc)

    def set_online(self, online: bool) -> None:
        for fsm in self.fsm.values():
            fsm.online = online

    # --- outputs ------------------------------------------------------------------------------
    def outputs(self, evse_id: int, outputs: list, now: float) -> tuple[list[Effect], list[Queued]]:
        """Effects (store, hardware commands) and the queued messages for one input's outputs."""
        effects: list[Effect] = []
        queued: list[Queued] = []
        fsm = self.fsm[evse_id]
        messages = [o for o in outputs if isinstance(o, m.TransactionEventRequest)]
        if messages:
            upserts: dict[str, str] = {}
            deletes: tuple[str, ...] = ()
            for msg in messages:
                item, change = self.queue.push(msg)
                upserts.update(change.upserts)
                deletes += change.deletes
                queued.append(item)
            snapshot = json.dumps(fsm.snapshot(now), separators=(",", ":"))
            effects.append(StoreRecords(QUEUE_TABLE, upserts, deletes,
                                        kv={SNAPSHOT_KEY.format(evse=evse_id): snapshot}))
        for o in outputs:
            if isinstance(o, PowerPath):
                self.power_path[o.evse] = o.closed
                effects.append(o)
            elif isinstance(o, UnlockConnector):
                effects.append(o)
        return effects, queued

    # --- views ---------------------------------------------------------------------------------
    def transaction_of(self, transaction_id: str) -> EvseTransactions | None:
        for fsm in self.fsm.values():
            if fsm.transaction_id == transaction_id:
                return fsm
        return None

    def queued_for(self, transaction_id: str | None) -> bool:
        for item in self.queue:
            r = item.request
            if isinstance(r, m.TransactionEventRequest) and (
                    transaction_id is None or r.transaction_info.transaction_id == transaction_id):
                return True
        return False

    def next_deadline(self) -> float | None:
        ds = [d for d in (f.next_deadline() for f in self.fsm.values()) if d is not None]
        ds += [due for due, _ in self._idle_due.values()]
        return min(ds) if ds else None

    # --- meter values outside transactions (J01) ---------------------------------------------
    def idle_meter_values(self, now: float, utc: datetime) -> list[m.MeterValuesRequest]:
        """Clock-aligned MeterValues (AlignedDataCtrlr.Interval / Measurands, Sample.Clock) of
        every EVSE without a transaction (during one they travel in its TransactionEvents)."""
        s = self.settings
        if not s.aligned_enabled or s.aligned_interval <= 0:
            self._idle_due.clear()
            return []
        out = []
        for evse_id, fsm in self.fsm.items():
            due = self._idle_due.get(evse_id)
            if due is not None and due[0] <= now:
                reading = self.readings.get(evse_id)
                if fsm.transaction_id is None and reading is not None:
                    mv = meter_value(reading, s.aligned_measurands, m.ReadingContext.Sample_Clock,
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
        for evse_id in self.fsm:
            if evse_id not in self._idle_due:
                epoch = next_aligned(epoch_now, s.aligned_interval)
                self._idle_due[evse_id] = (now + (epoch - epoch_now), epoch)
