"""Block L Firmware management: the secure firmware update (L01) as a pure state machine.

UpdateFirmware (signed images only: without signingCertificate and signature Rejected,
TC_L_18) is answered once the job CheckSigningCertificate has checked the certificate against
the installed ManufacturerRootCertificates: InvalidCertificate and the security event
InvalidFirmwareSigningCertificate (L01.FR.02, TC_L_05), or Accepted, or AcceptedCanceled when it
cancels an update still downloading or waiting (L01.FR.24, TC_L_10); an update already
installing is not cancelled: Rejected FwUpdateInProgress (L01.FR.27, TC_L_11).

The steps, each reported with a FirmwareStatusNotification carrying the requestId (L01.FR.01),
in Part 2 L01's order:
DownloadScheduled (retrieveDateTime ahead, TC_L_03) -> Downloading (job DownloadFirmware; a
failed attempt is tried again after retryInterval, `retries` times, then DownloadFailed,
TC_L_07) -> Downloaded (job VerifyFirmware) -> SignatureVerified or InvalidSignature with the
security event InvalidFirmwareSignature (L01.FR.03, TC_L_06) -> InstallScheduled while
installDateTime is ahead (TC_L_02) or while an EVSE has a transaction: the station never
installs during a transaction (PICS C-43 No, L01.FR.06, TC_L_14/15); meanwhile EVSEs without a
transaction are Unavailable unless ChargingStation.AllowNewSessionsPendingFirmwareUpdate is
true (L01.FR.07, PICS C-20) -> Installing (every EVSE Unavailable; job InstallFirmware) ->
InstallRebooting (InstallationFailed if the install fails) -> the reboot (boot reason
FirmwareUpdate, through the reset block) once that status is delivered -> after the
BootNotification is accepted, job ActivateFirmware -> Installed and the security event
FirmwareUpdated (TC_L_01), or InstallVerificationFailed when the new firmware was rolled back
(TC_L_08). The station never pauses a download (no DownloadPaused).

Durability: the update's record (`FIRMWARE_KEY`) is stored in the same change as the status
notification that reports its step, which goes through the durable queue, so no status is
lost or reported without its state. After a restart: a download or a verification is started
again, a scheduled step waits for its time, and an update that was Installing or
InstallRebooting is never installed again: ActivateFirmware tells whether its firmware runs
(Installed) or not (InstallationFailed / InstallVerificationFailed).

TriggerMessage FirmwareStatusNotification (a trigger hook, F06): the current status with its
requestId while an update runs (L01.FR.26, TC_F_19), else Idle (L01.FR.25, TC_F_18).
"""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from domain import messages as m
from domain.block import Block
from domain.context import Context
from domain.effects import Remember
from domain.firmware.jobs import (
    FIRMWARE_JOBS,
    ActivateFirmware,
    CheckSigningCertificate,
    DiscardFirmware,
    DownloadFirmware,
    InstallFirmware,
    VerifyFirmware,
)
from domain.firmware.update import FIRMWARE_KEY, NOT_CANCELABLE, FirmwareUpdate
from domain.hardware_events import JobFinished
from domain.outbox import Registration
from domain.stored_state import StoredState
from domain.transfer_location import unsupported_scheme

REBOOT_NOTICE_WAIT = 10.0       # s: the reboot waits at most this for InstallRebooting's answer
HOLD = "firmware update"        # the availability hold's name

_S = m.FirmwareStatus
_U = m.UpdateFirmwareStatus
# the step each job's outcome belongs to: an outcome found in another step is stale (cancelled)
_STEP = {DownloadFirmware: (_S.Downloading,), VerifyFirmware: (_S.Downloaded,),
         InstallFirmware: (_S.Installing,), ActivateFirmware: (_S.Installing, _S.InstallRebooting)}


class FirmwareBlock(Block):
    name = "firmware"
    needs = {"availability": "availability", "reset": "reset"}
    jobs = FIRMWARE_JOBS
    keys = (FIRMWARE_KEY,)

    def __init__(self, ctx: Context, stored: StoredState, args) -> None:
        super().__init__(ctx, stored, args)
        self.update, problem = FirmwareUpdate.load(stored.value(FIRMWARE_KEY))
        if problem:
            ctx.log("warning", problem)
        self._activate_after_boot = False       # Installing/InstallRebooting found at start
        self._reboot_due: float | None = None   # InstallRebooting: reboot by then at the latest
        # UpdateFirmware only where the runtime carries out the firmware jobs (else NotSupported)
        self.calls = {"UpdateFirmware": self._update_firmware} if args.firmware_updates else {}
        self.triggers = {m.MessageTrigger.FirmwareStatusNotification: self._trigger}

    # --- recovery ---------------------------------------------------------------------------
    def start(self, now: float, *, soft_reboot: bool = False) -> None:
        """What the previous run left: the interrupted job again, except an install (never
        twice): whether that one's firmware runs is asked once the CSMS accepted the boot."""
        u = self.update
        if u is None or not u.active:
            return
        if u.status in NOT_CANCELABLE:
            self._activate_after_boot = True
        elif u.status == _S.Downloading and u.retry_at is None:
            self.ctx.emit(DownloadFirmware(u.request_id, u.location, u.attempt))
        elif u.status == _S.Downloaded:
            self.ctx.emit(VerifyFirmware(u.request_id, u.signing_certificate, u.signature))

    # --- L01 UpdateFirmware ------------------------------------------------------------------
    def _update_firmware(self, req: m.UpdateFirmwareRequest, now: float, size: int):
        """Checked here, then answered once the signing certificate is checked (a job)."""
        refusal = self._refusal(req)
        if refusal is not None:
            return refusal
        return CheckSigningCertificate(req.firmware.signing_certificate, self.ctx.utc(now), req)

    def _refusal(self, req: m.UpdateFirmwareRequest) -> m.UpdateFirmwareResponse | None:
        f = req.firmware
        if not f.signing_certificate or not f.signature:
            return _rejected("MissingParam", "firmware.signingCertificate and firmware.signature are required: "
                                             "this station installs signed firmware only (L01)")
        for name, value in (("retries", req.retries), ("retryInterval", req.retry_interval)):
            if value is not None and value < 0:
                return _rejected("ValueOutOfRange", f"{name}: must be >= 0, got {value}")
        if (why := unsupported_scheme(self.ctx.dm, f.location, "firmware.location")) is not None:
            return _rejected("InvalidURL", why)
        u = self.update
        if u is not None and u.active:
            if u.status in NOT_CANCELABLE:
                return _rejected("FwUpdateInProgress", f"request {u.request_id} is {u.status}: it cannot be canceled")
            if u.request_id == req.request_id:
                return _rejected("DuplicateRequestId", f"requestId {req.request_id} is the update in progress")
        return None

    def _certificate_checked(self, job: CheckSigningCertificate, event: JobFinished, now: float) -> None:
        if not event.ok:                                # L01.FR.02
            self.ctx.security_event("InvalidFirmwareSigningCertificate", now, event.detail or None)
            self._answer(job, m.UpdateFirmwareResponse(status=_U.InvalidCertificate, status_info=m.StatusInfo(
                reason_code="InvalidCertificate", additional_info=event.detail[:512] or None)))
            return
        refusal = self._refusal(job.request)            # what happened while it was checked
        if refusal is not None:
            self._answer(job, refusal)
            return
        status = _U.Accepted
        if self.update is not None and self.update.active:      # L01.FR.24
            self._discard(self.update, now)
            status = _U.AcceptedCanceled
        self._begin(job.request, now)                   # stored before the answer goes out
        self._answer(job, m.UpdateFirmwareResponse(status=status))

    def _answer(self, job: CheckSigningCertificate, response: m.UpdateFirmwareResponse) -> None:
        if job.reply_to is not None:
            self.ctx.outbox.answer(job.reply_to, response)

    # --- the steps -----------------------------------------------------------------------------
    def _begin(self, req: m.UpdateFirmwareRequest, now: float) -> None:
        u = FirmwareUpdate.accepted(req, _S.DownloadScheduled)
        if self._mono(u.retrieve_at) > now:
            self._report(u)                               # TC_L_03
        else:
            self.update = u
            self._download(now)

    def _download(self, now: float) -> None:
        """One download attempt; the first one is reported as Downloading, a retry is only stored."""
        u = self.update
        nxt = u.to(_S.Downloading, attempt=u.attempt + 1, retry_at=None)
        if u.status == _S.Downloading:
            self.update = nxt
            self.ctx.emit(Remember(FIRMWARE_KEY, nxt.dump()))
        else:
            self._report(nxt)
        self.ctx.emit(DownloadFirmware(nxt.request_id, nxt.location, nxt.attempt))

    def _downloaded(self, event: JobFinished, now: float) -> None:
        u = self.update
        if event.ok:
            self._report(u.to(_S.Downloaded))
            self.ctx.emit(VerifyFirmware(u.request_id, u.signing_certificate, u.signature))
        elif u.attempt <= u.retries:
            retry_at = self.ctx.utc(now) + timedelta(seconds=u.retry_interval)
            self.update = replace(u, retry_at=retry_at)
            self.ctx.emit(Remember(FIRMWARE_KEY, self.update.dump()))
            self.ctx.log("warning", f"firmware download {u.attempt} of {u.retries + 1} failed ({event.detail}); "
                                    f"next attempt in {u.retry_interval} s")
        else:
            self._end(_S.DownloadFailed, now, event.detail)

    def _verified(self, event: JobFinished, now: float) -> None:
        if not event.ok:                                # L01.FR.03
            self._end(_S.InvalidSignature, now, event.detail)
            self.ctx.security_event("InvalidFirmwareSignature", now, event.detail or None)
            return
        self._report(self.update.to(_S.SignatureVerified))
        self._install_when_due(now)

    def _install_when_due(self, now: float) -> None:
        """InstallScheduled until installDateTime and while any EVSE has a transaction
        (L01.FR.06); idle EVSEs Unavailable meanwhile unless AllowNewSessionsPendingFirmwareUpdate
        (L01.FR.07); then Installing, with every EVSE Unavailable."""
        u = self.update
        if u.install_at is not None:
            if self._mono(u.install_at) > now:
                if u.status != _S.InstallScheduled:
                    self._report(u.to(_S.InstallScheduled))
                return
            u = self.update = replace(u, install_at=None)        # its time has come
        if not all(e.fsm.idle for e in self.ctx.evses.values()):
            if u.status != _S.InstallScheduled:
                self._report(u.to(_S.InstallScheduled))
            allow = self.ctx.dm.get_bool("ChargingStation", "AllowNewSessionsPendingFirmwareUpdate")
            self.availability.hold(HOLD, not allow, now)
            return
        self.availability.hold(HOLD, True, now)
        self._report(u.to(_S.Installing))
        self.ctx.emit(InstallFirmware(u.request_id))

    def _installed(self, event: JobFinished, now: float) -> None:
        if not event.ok:
            self._end(_S.InstallationFailed, now, event.detail)
            return
        self._report(self.update.to(_S.InstallRebooting))
        self._reboot_due = now + REBOOT_NOTICE_WAIT

    def _activated(self, event: JobFinished, now: float) -> None:
        u = self.update
        if event.ok:
            self._end(_S.Installed, now, event.detail)
            self.ctx.security_event("FirmwareUpdated", now, f"firmware {self.ctx.info.firmware_version}")
        else:
            self._end(_S.InstallationFailed if u.status == _S.Installing else _S.InstallVerificationFailed,
                      now, event.detail)

    def _end(self, status: m.FirmwareStatus, now: float, detail: str) -> None:
        u = self.update
        self._report(u.to(status, retry_at=None))
        self._discard(u, now)
        self.ctx.log("info" if status == _S.Installed else "warning",
                     f"firmware update {u.request_id}: {status}{f' ({detail})' if detail else ''}")

    def _discard(self, u: FirmwareUpdate, now: float) -> None:
        self.availability.hold(HOLD, False, now)
        self.ctx.emit(DiscardFirmware(u.request_id))

    def _report(self, u: FirmwareUpdate) -> None:
        """L01.FR.01: the new step, stored in the same change as its durable notification."""
        self.update = u
        self.ctx.outbox.post_durable([m.FirmwareStatusNotificationRequest(status=u.status, request_id=u.request_id)],
                                     kv={FIRMWARE_KEY: u.dump()})

    # --- job outcomes ---------------------------------------------------------------------------
    def job_finished(self, event: JobFinished, now: float) -> None:
        job = event.job
        if type(job) is CheckSigningCertificate:
            self._certificate_checked(job, event, now)
            return
        u = self.update
        if u is None or job.request_id != u.request_id or u.status not in _STEP[type(job)] or (
                type(job) is DownloadFirmware and (job.attempt != u.attempt or u.retry_at is not None)):
            self.ctx.log("debug", f"outcome of {type(job).__name__} for request {job.request_id} ignored (stale)")
            return
        if type(job) is DownloadFirmware:
            self._downloaded(event, now)
        elif type(job) is VerifyFirmware:
            self._verified(event, now)
        elif type(job) is InstallFirmware:
            self._installed(event, now)
        else:
            self._activated(event, now)

    # --- timers and settling ----------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        u = self.update
        due = None
        if u is not None:
            if u.status == _S.DownloadScheduled:
                due = self._mono(u.retrieve_at)
            elif u.status == _S.Downloading and u.retry_at is not None:
                due = self._mono(u.retry_at)
            elif u.status in (_S.SignatureVerified, _S.InstallScheduled) and u.install_at is not None:
                due = self._mono(u.install_at)
        if self._reboot_due is not None and (due is None or self._reboot_due < due):
            due = self._reboot_due
        return due

    def tick(self, now: float) -> None:
        u = self.update
        if u is not None:
            if u.status == _S.DownloadScheduled and self._mono(u.retrieve_at) <= now:
                self._download(now)
            elif u.status == _S.Downloading and u.retry_at is not None and self._mono(u.retry_at) <= now:
                self._download(now)
        # an install whose time has come and the reboot's deadline: `settle`, after every input

    def settle(self, now: float) -> None:
        """After every input: the activation once the boot is accepted, an install waiting for
        its time or for idle EVSEs, the reboot once InstallRebooting is delivered."""
        u = self.update
        if u is None:
            return
        if self._activate_after_boot and self.ctx.registration is Registration.Accepted:
            self._activate_after_boot = False
            self.ctx.emit(ActivateFirmware(u.request_id))
        elif u.status in (_S.SignatureVerified, _S.InstallScheduled):
            self._install_when_due(now)
        if self._reboot_due is not None and not (
                self.ctx.link_is_up and now < self._reboot_due and self._notice_queued()):
            self._reboot_due = None
            self.reset.reboot_for(m.BootReason.FirmwareUpdate, now)

    def _notice_queued(self) -> bool:
        return any(isinstance(r, m.FirmwareStatusNotificationRequest) and r.status == _S.InstallRebooting
                   for r in self.ctx.outbox.durable_requests())

    # --- F06 TriggerMessage hook ------------------------------------------------------------------
    def _trigger(self, req: m.TriggerMessageRequest, now: float) -> None:
        u = self.update
        if u is None or not u.active:                   # L01.FR.25
            self.ctx.outbox.reply(m.FirmwareStatusNotificationRequest(status=_S.Idle))
        else:                                           # L01.FR.26
            self.ctx.outbox.reply(m.FirmwareStatusNotificationRequest(status=u.status, request_id=u.request_id))

    def _mono(self, utc) -> float:
        return self.ctx.clock.monotonic(utc)


def _rejected(reason: str, info: str) -> m.UpdateFirmwareResponse:
    return m.UpdateFirmwareResponse(status=_U.Rejected, status_info=m.StatusInfo(reason_code=reason,
                                                                                additional_info=info[:512]))
