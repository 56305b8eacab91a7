"""Block F Remote control: RequestStartTransaction / RequestStopTransaction (F01-F04),
UnlockConnector (F05) and TriggerMessage (F06).

- A remote start's chargingProfile (K05) must be a TxProfile without transactionId and pass
  K01's checks (else Rejected with the reason); it is installed by the smart charging block
  once the transaction exists (ignored while SmartChargingCtrlr.Enabled is false).
- A remote start is authorized by the CSMS itself (AuthCtrlr.AuthorizeRemoteStart false) or
  like a card, after an AuthorizeRequest of the station's own (true); Rejected before the
  station is Accepted, on an EVSE that is busy, Faulted or Unavailable, or without an EVSE
  when more than one is free.
- UnlockConnector: Unlocked or UnlockFailed once the hardware has carried it out (the
  runtime's JobFinished); OngoingAuthorizedTransaction while an authorized transaction holds
  the connector; UnknownConnector.
- TriggerMessage: the message after the response (BootNotification with reason Triggered,
  only while not Accepted; Heartbeat; StatusNotification with its NotifyEvent; MeterValues;
  TransactionEvent); SignChargingStationCertificate (the security block's A02, F06.FR.04); a
  message of another block through its hook (`Block.triggers`: FirmwareStatusNotification,
  domain/firmware/; LogStatusNotification, domain/diagnostics/); others (SignV2GCertificate,
  SignCombinedCertificate: no ISO 15118) NotImplemented.
"""
from __future__ import annotations

from domain import messages as m
from domain.block import Block
from domain.context import Context
from domain.hardware_events import JobFinished
from domain.outbox import Registration
from domain.security.certificates import CertificateKind
from domain.transactions import UnlockConnector
from domain.transactions.metering import meter_value

_T = m.TriggerMessageStatus
_REJECTED = m.RequestStartTransactionResponse(status=m.RequestStartStopStatus.Rejected)


class RemoteControl(Block):
    name = "remote_control"
    jobs = (UnlockConnector,)
    needs = {"sessions": "transactions", "authorization": "authorization", "provisioning": "provisioning",
             "availability": "availability", "smart_charging": "smart_charging", "security": "security"}

    def __init__(self, ctx: Context, stored, args) -> None:
        super().__init__(ctx, stored, args)
        self.calls = {
            "RequestStartTransaction": self._request_start,
            "RequestStopTransaction": self._request_stop,
            "UnlockConnector": self._unlock_connector,
            "TriggerMessage": self._trigger,
        }

    # --- F01/F02 RequestStartTransaction -----------------------------------------------------
    def _request_start(self, req: m.RequestStartTransactionRequest, now: float, size: int):
        ctx = self.ctx
        if ctx.registration is not Registration.Accepted:
            return _REJECTED
        evse_id = req.evse_id
        if evse_id is None:
            free = [e.id for e in ctx.evses.values() if e.fsm.id_token is None and e.fsm.transaction_id is None]
            evse_id = free[0] if len(free) == 1 or (free and len(ctx.evses) == 1) else None
        evse = ctx.evses.get(evse_id or 0)
        if evse is None or evse.fsm.id_token is not None or not evse.usable:
            return _REJECTED
        if req.charging_profile is not None and self.smart_charging.enabled:      # K05 (else ignored)
            problem = self.smart_charging.check_for_start(evse.id, req.charging_profile)
            if problem is not None:
                return m.RequestStartTransactionResponse(status=m.RequestStartStopStatus.Rejected,
                                                         status_info=problem)
            evse.charging_profile = req.charging_profile     # installed once the transaction exists
        if self.authorization.settings.authorize_remote_start:
            if not self.authorization.remote_start(req, evse.id, now):
                evse.charging_profile = None
                return _REJECTED
        else:
            evse.group_token = req.group_id_token
            self.sessions.drive(evse.id, evse.fsm.authorized(req.id_token, now, ctx.utc(now),
                                                             remote_start_id=req.remote_start_id), now)
        return m.RequestStartTransactionResponse(status=m.RequestStartStopStatus.Accepted,
                                                 transaction_id=evse.fsm.transaction_id)

    # --- F03 RequestStopTransaction ------------------------------------------------------------
    def _request_stop(self, req: m.RequestStopTransactionRequest, now: float, size: int):
        evse = self.sessions.transaction_of(req.transaction_id)
        if evse is None:
            return m.RequestStopTransactionResponse(status=m.RequestStartStopStatus.Rejected)
        self.sessions.drive(evse.id, evse.fsm.remote_stop(now, self.ctx.utc(now)), now)
        return m.RequestStopTransactionResponse(status=m.RequestStartStopStatus.Accepted)

    # --- F05 UnlockConnector -----------------------------------------------------------------
    def _unlock_connector(self, req: m.UnlockConnectorRequest, now: float, size: int):
        """Unlock a connector that no authorized transaction holds; answered once the hardware
        has done it (the router gives the job the CALL's message id)."""
        evse = self.ctx.evses.get(req.evse_id)
        if evse is None or req.connector_id not in evse.connectors:
            return m.UnlockConnectorResponse(status=m.UnlockStatus.UnknownConnector)
        if evse.fsm.transaction_id is not None and evse.fsm.id_token is not None:
            return m.UnlockConnectorResponse(status=m.UnlockStatus.OngoingAuthorizedTransaction)
        return UnlockConnector(req.evse_id, req.connector_id)

    def job_finished(self, event: JobFinished, now: float) -> None:
        job = event.job
        if job.reply_to is not None:
            self.ctx.outbox.answer(job.reply_to, m.UnlockConnectorResponse(
                status=m.UnlockStatus.Unlocked if event.ok else m.UnlockStatus.UnlockFailed))

    # --- F06 TriggerMessage ------------------------------------------------------------------
    def _trigger(self, req: m.TriggerMessageRequest, now: float, size: int):
        ctx = self.ctx
        what = req.requested_message
        M = m.MessageTrigger
        evse_id = req.evse.id if req.evse is not None else None
        if evse_id is not None and evse_id != 0 and evse_id not in ctx.evses:
            return _trigger_rejected("UnknownEvse")
        hook = ctx.triggers.get(what)
        if hook is not None:
            return hook(req, now) or m.TriggerMessageResponse(status=_T.Accepted)
        utc = ctx.utc(now)
        reply = ctx.outbox.reply
        if what == M.BootNotification:
            if ctx.registration is Registration.Accepted:       # F06.FR.17
                return _trigger_rejected("NotRequired", "the station is registered already")
            reply(self.provisioning.boot_request(m.BootReason.Triggered))
        elif what == M.Heartbeat:
            reply(m.HeartbeatRequest())
        elif what == M.StatusNotification:
            if req.evse is None or not evse_id or req.evse.connector_id is None:
                return _trigger_rejected("MissingParam", "evse.id and evse.connectorId are required")
            evse = ctx.evses[evse_id]
            if req.evse.connector_id not in evse.connectors:
                return _trigger_rejected("UnknownConnector")
            c = req.evse.connector_id
            status = evse.connector_status(c)
            reply(m.StatusNotificationRequest(          # with its NotifyEvent (TC_F_23/24)
                timestamp=utc, connector_status=m.ConnectorStatus(status), evse_id=evse_id, connector_id=c))
            reply(self.availability.report.availability_event(
                utc, status, m.Component(name="Connector", evse=m.EVSE(id=evse_id, connector_id=c))))
        elif what == M.MeterValues:
            s = self.sessions.settings
            requests = []
            for e in ([evse_id] if evse_id else list(ctx.evses)):
                mv = meter_value(ctx.evses[e].reading, s.aligned_measurands, m.ReadingContext.Trigger, utc)
                if mv is not None:
                    requests.append(m.MeterValuesRequest(evse_id=e, meter_value=[mv]))
            if not requests:
                return _trigger_rejected("NoMeterValues", "no meter reading or no AlignedDataCtrlr.Measurands")
            for r in requests:
                reply(r)
        elif what == M.TransactionEvent:
            running = [e for e in ctx.evses.values()
                       if e.fsm.transaction_id is not None and (not evse_id or e.id == evse_id)]
            if not running:
                return _trigger_rejected("NoTransaction")
            for e in running:
                self.sessions.drive(e.id, e.fsm.trigger_message(now, utc), now)
        elif what == M.SignChargingStationCertificate:
            self.security.sign(CertificateKind.CHARGING_STATION, now)
        else:
            return m.TriggerMessageResponse(status=_T.NotImplemented)
        return m.TriggerMessageResponse(status=_T.Accepted)


def _trigger_rejected(reason: str, info: str | None = None) -> m.TriggerMessageResponse:
    return m.TriggerMessageResponse(status=_T.Rejected, status_info=m.StatusInfo(reason_code=reason, additional_info=info))
