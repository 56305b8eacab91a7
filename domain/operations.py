"""CSMS-initiated operations on the whole station: ChangeAvailability (G03/G04), Reset
(B11/B12), TriggerMessage (F06) and DataTransfer (P01).

They live beside `Station` (which owns the link, the outbox and the EVSEs) and reach
it through a few of its methods; the station calls `settle()` after every input so
that scheduled changes happen as soon as the transactions they wait for have ended.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from domain import messages as m
from domain.availability import AVAILABILITY_KEY, STATION, Availability, Target, exists
from domain.data_transfer import DataTransferRegistry
from domain.device_model import VariableRef
from domain.effects import Log, Reboot, Remember
from domain.transactions.metering import meter_value

if TYPE_CHECKING:
    from domain.station import Station

NEXT_BOOT_REASON = "next_boot_reason"   # storage key: the reason the next BootNotification gives
RESET_DELIVERY_WAIT = 10.0              # s: an Immediate reset waits at most this for its Ended events

_A = m.ChangeAvailabilityStatus
_T = m.TriggerMessageStatus
_R = m.ResetStatus


@dataclass
class PendingReboot:
    reason: str                 # BootReason of the next boot
    deadline: float             # reboot then at the latest (undelivered events stay queued)
    attempts: int = 0


class Operations:
    def __init__(self, station: "Station", availability: Availability,
                 data_transfer: DataTransferRegistry) -> None:
        self.st = station
        self.availability = availability
        self.data_transfer = data_transfer
        self.reset_scheduled = False              # station OnIdle reset waiting for idle EVSEs
        self.evse_resets_scheduled: set[int] = set()
        self.reboot: PendingReboot | None = None

    # --- G03/G04 ChangeAvailability ----------------------------------------------------------
    def change_availability(self, req: m.ChangeAvailabilityRequest, now: float, size: int):
        st = self.st
        target: Target = STATION if req.evse is None or req.evse.id == 0 else \
            (req.evse.id, req.evse.connector_id or 0)
        if not exists(target, {e.id: len(e.connectors) for e in st.evses.values()}):
            return m.ChangeAvailabilityResponse(status=_A.Rejected, status_info=m.StatusInfo(
                reason_code="UnknownEvse" if target[0] not in st.evses else "UnknownConnector"))
        operative = req.operational_status == m.OperationalStatus.Operative
        evses = set(st.evses) if target == STATION else {target[0]}
        busy = {e for e in evses if st.charging.fsm[e].transaction_id is not None}
        if busy and not operative:
            # G03.FR.05 / G04.FR.04: applied once the transactions concerned have ended; for the
            # whole station, EVSEs without a transaction go Unavailable at once (TC_G_14).
            self.availability.schedule(target, operative)
            self._store()
            self.apply(now)
            return m.ChangeAvailabilityResponse(status=_A.Scheduled)
        if not operative and not self.availability.operative(target) and target not in self.availability.scheduled:
            st.report.forget(target)        # Inoperative again: the current state is reported (TC_G_13/18)
        self.availability.set(target, operative)
        self._store()
        self.apply(now)
        return m.ChangeAvailabilityResponse(status=_A.Accepted)

    def apply(self, now: float) -> None:
        """Connectors follow the availability (and a storage failure, like the station going
        Inoperative: storage_health); changed statuses are reported."""
        a = self.availability
        station_going_off = a.scheduled.get(STATION) is False or self.st.storage_health.failing is not None
        for e in self.st.evses.values():
            off_now = station_going_off and self.st.charging.fsm[e.id].transaction_id is None
            for c in e.connectors.values():
                c.operative = a.connector_operative(e.id, c.connector) and not off_now
            if e.status() == "Unavailable":
                self.st.withdraw_authorization(e.id, "EVSE Unavailable", now)
        self.st._report_changed_statuses(now)

    def _store(self) -> None:
        self.st._effects.append(Remember(AVAILABILITY_KEY, self.availability.dump()))

    # --- B11/B12 Reset -----------------------------------------------------------------------
    def reset(self, req: m.ResetRequest, now: float, size: int):
        st = self.st
        immediate = req.type == m.Reset.Immediate
        utc = st.clock.utc(now)
        if req.evse_id is not None and req.evse_id != 0:
            e = req.evse_id
            if e not in st.evses:
                return m.ResetResponse(status=_R.Rejected, status_info=m.StatusInfo(reason_code="UnknownEvse"))
            if st.dm.value(VariableRef("EVSE", "AllowReset", evse=e)) == "false":
                return m.ResetResponse(status=_R.Rejected, status_info=m.StatusInfo(
                    reason_code="UnsupportedRequest", additional_info=f"EVSE {e}: AllowReset is false"))
            fsm = st.charging.fsm[e]
            if not immediate and not fsm.idle:
                self.evse_resets_scheduled.add(e)         # B11.FR.09: when its transaction has ended
                return m.ResetResponse(status=_R.Scheduled)
            st.withdraw_authorization(e, "EVSE reset", now)
            st._tx_outputs(e, fsm.reset(now, utc, immediate=True), now)
            st._effects.append(Log("info", f"EVSE {e} reset ({req.type})"))
            return m.ResetResponse(status=_R.Accepted)
        if self.reboot is not None:
            return m.ResetResponse(status=_R.Accepted)      # already on its way
        if not immediate and not all(f.idle for f in st.charging.fsm.values()):
            self.reset_scheduled = True                       # B11.FR.03: when every EVSE is idle
            return m.ResetResponse(status=_R.Scheduled)
        for evse_id, fsm in st.charging.fsm.items():          # B12.FR.04/05: Ended, ImmediateReset
            st.withdraw_authorization(evse_id, "station reset", now)
            st._tx_outputs(evse_id, fsm.reset(now, utc, immediate=True), now)
        self._reboot(m.BootReason.RemoteReset, now)
        return m.ResetResponse(status=_R.Accepted)

    def _reboot(self, reason: m.BootReason, now: float) -> None:
        self.reset_scheduled = False
        self.st._effects.append(Remember(NEXT_BOOT_REASON, reason.value))
        self.reboot = PendingReboot(reason.value, now + RESET_DELIVERY_WAIT)

    def reboot_due(self, now: float) -> Reboot | None:
        """Reboot once the answer went out and the transaction events of the reset were
        delivered (or could not be: they stay durably queued for after the boot)."""
        r = self.reboot
        if r is None or r.attempts:
            return None
        st = self.st
        if st.link_is_up and now < r.deadline and st.charging.queued_for(None):
            return None
        r.attempts = 1
        return Reboot(r.reason)

    def reboot_failed(self, now: float, why: str) -> None:
        """The system refused the reboot: tried again ResetRetries times (B12), then given up."""
        r = self.reboot
        if r is None:
            return
        retries = self.st.dm.get_int("OCPPCommCtrlr", "ResetRetries")
        if r.attempts > retries:
            self.st._effects += [Log("error", f"reset failed {r.attempts} times ({why}); giving up"),
                                 Remember(NEXT_BOOT_REASON, None)]
            self.reboot = None
            return
        self.st._effects.append(Log("warning", f"reset failed ({why}); retry {r.attempts} of {retries}"))
        r.attempts += 1
        self.st._effects.append(Reboot(r.reason))

    # --- after every input ----------------------------------------------------------------
    def settle(self, now: float) -> None:
        storage_failing = self.st.storage_health.failing is not None
        if not (self.availability.scheduled or self.evse_resets_scheduled or self.reset_scheduled
                or storage_failing):
            return              # the common case, on every frame: nothing waits for an idle EVSE
        st = self.st
        busy = {e for e, f in st.charging.fsm.items() if f.transaction_id is not None}
        due = self.availability.due(busy)
        if due:
            for target, operative in due:
                self.availability.set(target, operative)
            self._store()
            self.apply(now)
        elif self.availability.scheduled.get(STATION) is False or storage_failing:
            self.apply(now)             # an EVSE whose transaction ended goes Unavailable now
        for e in [e for e in self.evse_resets_scheduled if st.charging.fsm[e].idle]:
            self.evse_resets_scheduled.discard(e)
            st._effects.append(Log("info", f"EVSE {e} reset (scheduled, now idle)"))
        if self.reset_scheduled and all(f.idle for f in st.charging.fsm.values()):
            self._reboot(m.BootReason.ScheduledReset, now)

    def next_deadline(self) -> float | None:
        r = self.reboot
        return r.deadline if r is not None and not r.attempts else None

    # --- F06 TriggerMessage ---------------------------------------------------------------
    def trigger(self, req: m.TriggerMessageRequest, now: float, size: int):
        st = self.st
        what = req.requested_message
        M = m.MessageTrigger
        evse_id = req.evse.id if req.evse is not None else None
        if evse_id is not None and evse_id != 0 and evse_id not in st.evses:
            return self._trigger_rejected("UnknownEvse")
        utc = st.clock.utc(now)
        if what == M.BootNotification:
            if st.registration.value == "Accepted":       # F06.FR.17
                return self._trigger_rejected("NotRequired", "the station is registered already")
            st._replies.append(st._boot_request(m.BootReason.Triggered))
        elif what == M.Heartbeat:
            st._replies.append(m.HeartbeatRequest())
        elif what == M.StatusNotification:
            if req.evse is None or not evse_id or req.evse.connector_id is None:
                return self._trigger_rejected("MissingParam", "evse.id and evse.connectorId are required")
            c = st.evses[evse_id].connectors.get(req.evse.connector_id)
            if c is None:
                return self._trigger_rejected("UnknownConnector")
            status = st.connector_status(evse_id, c.connector)
            st._replies.append(m.StatusNotificationRequest(          # with its NotifyEvent (TC_F_23/24)
                timestamp=utc, connector_status=m.ConnectorStatus(status), evse_id=evse_id, connector_id=c.connector))
            st._replies.append(st.report.availability_event(
                utc, status, m.Component(name="Connector", evse=m.EVSE(id=evse_id, connector_id=c.connector))))
        elif what == M.MeterValues:
            s = st.charging.settings
            requests = []
            for e in ([evse_id] if evse_id else list(st.evses)):
                mv = meter_value(st.charging.readings.get(e), s.aligned_measurands, m.ReadingContext.Trigger, utc)
                if mv is not None:
                    requests.append(m.MeterValuesRequest(evse_id=e, meter_value=[mv]))
            if not requests:
                return self._trigger_rejected("NoMeterValues", "no meter reading or no AlignedDataCtrlr.Measurands")
            st._replies.extend(requests)
        elif what == M.TransactionEvent:
            fsms = [(e, f) for e, f in st.charging.fsm.items()
                    if f.transaction_id is not None and (not evse_id or e == evse_id)]
            if not fsms:
                return self._trigger_rejected("NoTransaction")
            for e, fsm in fsms:
                st._tx_outputs(e, fsm.trigger_message(now, utc), now)
        elif what == M.LogStatusNotification:
            st._replies.append(m.LogStatusNotificationRequest(status=m.UploadLogStatus.Idle))
        elif what == M.FirmwareStatusNotification:
            st._replies.append(m.FirmwareStatusNotificationRequest(status=m.FirmwareStatus.Idle))
        else:
            return m.TriggerMessageResponse(status=_T.NotImplemented)
        return m.TriggerMessageResponse(status=_T.Accepted)

    @staticmethod
    def _trigger_rejected(reason: str, info: str | None = None) -> m.TriggerMessageResponse:
        return m.TriggerMessageResponse(status=_T.Rejected,
                                        status_info=m.StatusInfo(reason_code=reason, additional_info=info))

    # --- P01/P02 DataTransfer -------------------------------------------------------------
    def data_transfer_call(self, req: m.DataTransferRequest, now: float, size: int):
        return self.data_transfer.handle(req)
