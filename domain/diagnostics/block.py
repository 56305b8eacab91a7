"""Block N Diagnostics: GetLog (N01), the upload of the diagnostics log or the security log as a
pure state machine.

GetLog is answered at once: Accepted with the `filename` the log will be uploaded as, or
AcceptedCanceled when it cancels an upload still running or waiting to be tried again (the
cancelled one is reported AcceptedCanceled, N01.FR.12, TC_N_36), or Rejected naming the field
(retries / retryInterval below 0, a remoteLocation whose scheme is not among
OCPPCommCtrlr.FileTransferProtocols, oldestTimestamp after latestTimestamp, the requestId of
the upload in progress). Then LogStatusNotification with the requestId: Uploading (job
UploadLog) -> Uploaded, or the failure the upload met (UploadFailure, BadMessage,
PermissionDenied, NotSupportedOperation) after each failed attempt, tried again after
retryInterval `retries` times (TC_N_25, TC_N_26, TC_N_35). A SecurityLog upload's content is
the domain's: the job carries the security log's entries in the window (SecurityBlock.security_log).

Durability: the upload's record (`LOG_UPLOAD_KEY`) is stored in the same change as the durable
status notification of its step; after a restart an interrupted attempt is made again and a
retry waits for its time.

TriggerMessage LogStatusNotification (a trigger hook, F06): the current status with its
requestId while an upload runs or waits for its next attempt (TC_F_16), else Idle (TC_F_15).
"""
from __future__ import annotations

from datetime import timedelta

from domain import messages as m
from domain.block import Block
from domain.context import Context
from domain.diagnostics.jobs import CancelLogUpload, UploadLog, security_log_lines
from domain.diagnostics.upload import FAILURES, LOG_UPLOAD_KEY, LogUpload
from domain.effects import Remember
from domain.hardware_events import JobFinished
from domain.stored_state import StoredState
from domain.transfer_location import unsupported_scheme

_S = m.UploadLogStatus
_L = m.LogStatus
_FILE_PREFIX = {m.Log.DiagnosticsLog: "diagnostics", m.Log.SecurityLog: "security"}


class DiagnosticsBlock(Block):
    name = "diagnostics"
    jobs = (UploadLog,)
    keys = (LOG_UPLOAD_KEY,)
    needs = {"security": "security"}       # the security log a SecurityLog upload carries

    def __init__(self, ctx: Context, stored: StoredState, args) -> None:
        super().__init__(ctx, stored, args)
        self.upload, problem = LogUpload.load(stored.value(LOG_UPLOAD_KEY))
        if problem:
            ctx.log("warning", problem)
        # GetLog only where the runtime carries out log uploads (else NotSupported)
        self.calls = {"GetLog": self._get_log} if args.log_uploads else {}
        self.triggers = {m.MessageTrigger.LogStatusNotification: self._trigger}

    def start(self, now: float, *, soft_reboot: bool = False) -> None:
        """An attempt the previous run left unfinished is made again."""
        u = self.upload
        if u is not None and u.status == _S.Uploading:
            self.ctx.emit(self._job(u))

    # --- N01 GetLog ----------------------------------------------------------------------------
    def _get_log(self, req: m.GetLogRequest, now: float, size: int):
        refusal = self._refusal(req)
        if refusal is not None:
            return refusal
        utc = self.ctx.utc(now)
        filename = f"{_FILE_PREFIX[req.log_type]}-{utc:%Y%m%dT%H%M%SZ}-{req.request_id}.log"
        new = LogUpload.accepted(req, filename).to(_S.Uploading, attempt=1)
        old = self.upload
        notices = [m.LogStatusNotificationRequest(status=_S.Uploading, request_id=new.request_id)]
        status = _L.Accepted
        if old is not None and old.active:                      # N01.FR.12
            self.ctx.emit(CancelLogUpload(old.request_id))
            notices.insert(0, m.LogStatusNotificationRequest(status=_S.AcceptedCanceled, request_id=old.request_id))
            status = _L.AcceptedCanceled
        self._report(new, notices)
        self.ctx.emit(self._job(new))
        return m.GetLogResponse(status=status, filename=filename)

    def _refusal(self, req: m.GetLogRequest) -> m.GetLogResponse | None:
        for name, value in (("retries", req.retries), ("retryInterval", req.retry_interval)):
            if value is not None and value < 0:
                return _rejected("ValueOutOfRange", f"{name}: must be >= 0, got {value}")
        if (why := unsupported_scheme(self.ctx.dm, req.log.remote_location, "log.remoteLocation")) is not None:
            return _rejected("InvalidURL", why)
        oldest, latest = req.log.oldest_timestamp, req.log.latest_timestamp
        if oldest is not None and latest is not None and oldest > latest:
            return _rejected("InvalidValue", "log.oldestTimestamp: after log.latestTimestamp")
        u = self.upload
        if u is not None and u.active and u.request_id == req.request_id:
            return _rejected("DuplicateRequestId", f"requestId {req.request_id} is the upload in progress")
        return None

    # --- the attempts --------------------------------------------------------------------------
    def job_finished(self, event: JobFinished, now: float) -> None:
        job, u = event.job, self.upload
        if u is None or job.request_id != u.request_id or u.status != _S.Uploading or job.attempt != u.attempt:
            self.ctx.log("debug", f"outcome of the log upload {job.request_id} ignored (canceled)")
            return
        if event.ok:
            self._report(u.to(_S.Uploaded))
            return
        failure = _S(event.outcome) if event.outcome in FAILURES else _S.UploadFailure
        retry_at = self.ctx.utc(now) + timedelta(seconds=u.retry_interval) if u.attempt <= u.retries else None
        self._report(u.to(failure, retry_at=retry_at))
        self.ctx.log("warning", f"log upload {u.request_id} attempt {u.attempt} of {u.retries + 1}: {failure}"
                                f"{f' ({event.detail})' if event.detail else ''}"
                                f"{f'; next attempt in {u.retry_interval} s' if retry_at else ''}")

    def next_deadline(self) -> float | None:
        u = self.upload
        return None if u is None or u.retry_at is None else self.ctx.clock.monotonic(u.retry_at)

    def tick(self, now: float) -> None:
        """The next attempt (not reported again: Uploading is told once, TC_N_26)."""
        u = self.upload
        if u is None or u.retry_at is None or self.ctx.clock.monotonic(u.retry_at) > now:
            return
        self.upload = u = u.to(_S.Uploading, attempt=u.attempt + 1, retry_at=None)
        self.ctx.emit(Remember(LOG_UPLOAD_KEY, u.dump()))
        self.ctx.emit(self._job(u))

    def _report(self, u: LogUpload, notices: list | None = None) -> None:
        """The new step, stored in the same change as its durable notification(s)."""
        self.upload = u
        notices = notices or [m.LogStatusNotificationRequest(status=u.status, request_id=u.request_id)]
        self.ctx.outbox.post_durable(notices, kv={LOG_UPLOAD_KEY: u.dump()})

    def _job(self, u: LogUpload) -> UploadLog:
        """One attempt; a SecurityLog attempt carries the security log's entries from oldestTimestamp
        to latestTimestamp as they stand now (N01.FR.01, TC_N_35), read through the security block."""
        lines = None
        if u.log_type == m.Log.SecurityLog:
            lines = security_log_lines(self.security.security_log(u.oldest, u.latest),
                                       self.ctx.info.firmware_version, u.oldest, u.latest)
        return UploadLog(u.request_id, u.log_type, u.remote_location, u.filename, u.oldest, u.latest, u.attempt,
                         lines)

    # --- F06 TriggerMessage hook ------------------------------------------------------------------
    def _trigger(self, req: m.TriggerMessageRequest, now: float) -> None:
        u = self.upload
        if u is None or not u.active:
            self.ctx.outbox.reply(m.LogStatusNotificationRequest(status=_S.Idle))
        else:
            self.ctx.outbox.reply(m.LogStatusNotificationRequest(status=u.status, request_id=u.request_id))


def _rejected(reason: str, info: str) -> m.GetLogResponse:
    return m.GetLogResponse(status=_L.Rejected,
                            status_info=m.StatusInfo(reason_code=reason, additional_info=info[:512]))
