"""The runtime's executors of the firmware update (L01) and log upload (N01) jobs
(domain/firmware/jobs.py, domain/diagnostics/jobs.py), each outcome sent back to the station as
`JobFinished(job, ok, detail, outcome)`.

Every job runs in a task of its own in the boot cycle's nursery, so a long download or upload
never holds up the OCPP link, and a CheckSigningCertificate of a second UpdateFirmware is answered
while the first one downloads. What blocks (hashing an image, writing a log file) runs in a
worker thread. A cancelled job (DiscardFirmware, CancelLogUpload, the end of the boot cycle)
sends nothing; the domain ignores the outcome of a job of an update it left anyway.

- CheckSigningCertificate (L01.FR.02), VerifyFirmware (L01.FR.03): the FirmwareSignature port,
  against the installed ManufacturerRootCertificates.
- DownloadFirmware: the FileTransfer into `<firmware_dir>/update-<requestId>.img` (a `.part`
  resumed by the next attempt or after a restart), at most `[firmware] max_image_bytes`.
- InstallFirmware: FirmwareInstaller.install (the domain emits it once per update, never again
  after a restart). ActivateFirmware: what `after_boot` reported at the start of this boot
  cycle: BootedNew (confirmed, ok: Installed), RolledBack (InstallVerificationFailed), an
  interrupted or missing install (InstallationFailed); AwaitingReboot: the reboot that did not
  happen is asked for again.
- `boot_accepted`: FirmwareInstaller.confirm after EVERY Accepted BootNotification (RAUC's
  boot-count counts every boot), serialized with the other installer calls.
- DiscardFirmware: the update's running jobs cancelled, then its files deleted.
- UploadLog: the job's `lines` when the domain produced them (SecurityLog: the security log's
  entries in the window), else the DiagnosticsLog: the station's recent log records
  (bootstrap/recent_log.py) from oldestTimestamp to latestTimestamp; written to
  `log-uploads/<filename>` next to the firmware images' folder, sent, then deleted.
  CancelLogUpload (N01.FR.12): the upload cancelled.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from bootstrap.config import Config
from bootstrap.recent_log import recent_log
from domain.diagnostics.jobs import CancelLogUpload, UploadLog
from domain.firmware.jobs import (ActivateFirmware, CheckSigningCertificate, DiscardFirmware, DownloadFirmware,
                                  InstallFirmware, VerifyFirmware)
from domain.hardware_events import JobFinished
from ports.file_transfer import (META_SUFFIX, PART_SUFFIX, BadReply, BadUrl, NotSupported, PermissionDenied,
                                 TransferError)
from ports.firmware_installer import BootOutcome, BootReport, InstallerError

log = logging.getLogger("evse.firmware")

# UploadLogStatus of a failed upload, by transfer error (ports/file_transfer.py table)
_UPLOAD_OUTCOME = ((BadUrl, "BadMessage"), (BadReply, "BadMessage"), (NotSupported, "NotSupportedOperation"),
                   (PermissionDenied, "PermissionDenied"))
Outcome = tuple[bool, str, str]         # ok, detail, outcome


class FileJobs:
    """The executors (`executors`: effect type -> `async (effect, run)`) for one runtime; the
    jobs of a boot cycle run in the nursery given to `attach`."""

    def __init__(self, config: Config, deployment) -> None:
        d = deployment
        self._transfer, self._installer, self._signature = d.file_transfer, d.firmware_installer, d.firmware_signature
        self._system = d.system
        self._dir: Path | None = d.firmware_dir
        self._station_id = config.station.id
        self._max_bytes = config.firmware.max_image_bytes
        self._timeout = config.firmware.transfer_timeout
        self.firmware_updates = None not in (self._transfer, self._installer, self._signature, self._dir)
        self.log_uploads = self._transfer is not None and self._dir is not None
        self._report = BootReport(config.station.firmware_version)
        self._installing = trio.Lock()          # one installer call at a time
        self._jobs: dict[tuple[str, int], set[trio.CancelScope]] = {}
        self._nursery: trio.Nursery | None = None
        self._events: trio.MemorySendChannel | None = None
        self.executors: dict[type, Callable[[object, object], Awaitable[None]]] = {}
        if self.firmware_updates:
            for job, run in ((CheckSigningCertificate, self._check_certificate), (DownloadFirmware, self._download),
                             (VerifyFirmware, self._verify), (InstallFirmware, self._install),
                             (ActivateFirmware, self._activate)):
                self.executors[job] = self._starter("firmware", run)
            self.executors[DiscardFirmware] = self._discard
        else:       # a stored update of an earlier composition: its jobs fail, nothing runs
            for job in (CheckSigningCertificate, DownloadFirmware, VerifyFirmware, InstallFirmware, ActivateFirmware):
                self.executors[job] = self._starter("firmware", self._not_here)
            self.executors[DiscardFirmware] = self._ignore
        if self.log_uploads:
            self.executors[UploadLog] = self._starter("log", self._upload)
            self.executors[CancelLogUpload] = self._cancel_upload
            recent_log()
        else:
            self.executors[UploadLog] = self._starter("log", self._not_here)
            self.executors[CancelLogUpload] = self._ignore

    # --- per boot cycle ----------------------------------------------------------------------
    async def after_boot(self, configured_version: str) -> str:
        """Once per boot cycle, before the station is built: the installer's BootReport; the
        running version is the BootNotification's firmwareVersion."""
        if self._installer is None:
            return configured_version
        try:
            self._report = await self._installer.after_boot()
        except InstallerError as exc:
            log.error("firmware installer: %s", exc)
            self._report = BootReport(configured_version)
        if self._report.outcome is not BootOutcome.NONE:
            log.info("firmware: running %s, last install: %s", self._report.running_version,
                     self._report.outcome.value)
        return self._report.running_version

    def attach(self, nursery: trio.Nursery, events: trio.MemorySendChannel) -> None:
        self._nursery, self._events, self._jobs = nursery, events, {}

    def boot_accepted(self) -> None:
        """The BootNotification of this boot cycle was Accepted: confirm it to the installer."""
        if self._installer is not None and self._nursery is not None:
            self._nursery.start_soon(self._confirm)

    async def _confirm(self) -> None:
        async with self._installing:
            try:
                await self._installer.confirm()
            except InstallerError as exc:
                log.error("firmware installer: confirm failed: %s", exc)

    # --- running a job ---------------------------------------------------------------------------
    def _starter(self, kind: str, run: Callable[[object], Awaitable[Outcome]]):
        async def start(job, _run) -> None:
            self._nursery.start_soon(self._job, kind, job, run)
        return start

    async def _job(self, kind: str, job, run: Callable[[object], Awaitable[Outcome]]) -> None:
        key = (kind, job.request.request_id if type(job) is CheckSigningCertificate else job.request_id)
        with trio.CancelScope() as scope:
            self._jobs.setdefault(key, set()).add(scope)
            try:
                ok, detail, outcome = await run(job)
            except (OSError, InstallerError, TransferError) as exc:
                ok, detail, outcome = False, f"{type(exc).__name__}: {exc}", ""
            except Exception as exc:    # noqa: BLE001 - a job's bug fails the job, never the station
                log.exception("%s of request %d failed", type(job).__name__, key[1])
                ok, detail, outcome = False, f"internal error: {type(exc).__name__}", ""
            finally:
                self._jobs.get(key, set()).discard(scope)
        if scope.cancelled_caught:
            return
        await self._events.send(JobFinished(job, ok, detail[:500], outcome))

    def _cancel(self, key: tuple[str, int]) -> None:
        for scope in self._jobs.get(key, ()):
            scope.cancel()

    async def _idle(self, key: tuple[str, int]) -> None:
        while self._jobs.get(key):
            await trio.sleep(0.01)

    async def _not_here(self, job) -> Outcome:
        return False, "not carried out by this deployment (no file transfer or installer)", "NotSupportedOperation"

    async def _ignore(self, effect, _run) -> None:
        pass

    # --- L01 ----------------------------------------------------------------------------------------
    def image(self, request_id: int) -> Path:
        return self._dir / f"update-{request_id}.img"

    async def _check_certificate(self, job: CheckSigningCertificate) -> Outcome:
        why = await trio.to_thread.run_sync(self._signature.check_certificate, job.signing_certificate, job.at)
        return why is None, why or "", ""

    async def _download(self, job: DownloadFirmware) -> Outcome:
        destination = self.image(job.request_id)
        await trio.to_thread.run_sync(lambda: destination.parent.mkdir(parents=True, exist_ok=True))
        got = await self._transfer.download(job.location, destination, max_bytes=self._max_bytes,
                                            timeout=self._timeout)
        resumed = f", resumed at {got.resumed_from}" if got.resumed_from else ""
        log.info("firmware %d: downloaded %d bytes%s, SHA-256 %s", job.request_id, got.size, resumed, got.sha256)
        return True, f"{got.size} bytes, SHA-256 {got.sha256}", ""

    async def _verify(self, job: VerifyFirmware) -> Outcome:
        why = await trio.to_thread.run_sync(self._signature.verify, self.image(job.request_id),
                                            job.signing_certificate, job.signature)
        return why is None, why or "", ""

    async def _install(self, job: InstallFirmware) -> Outcome:
        async with self._installing:    # a stop or a kill meanwhile: the installer's after_boot tells
            version = await self._installer.install(self.image(job.request_id))
        log.info("firmware %d: version %s installed, the station reboots", job.request_id, version)
        return True, f"version {version}", ""

    async def _activate(self, job: ActivateFirmware) -> Outcome:
        r = self._report
        if r.outcome is BootOutcome.BOOTED_NEW:
            async with self._installing:
                await self._installer.confirm()
            return True, f"firmware {r.running_version} runs", ""
        if r.outcome is BootOutcome.AWAITING_REBOOT:
            log.warning("firmware %d: installed, the reboot did not happen: rebooting", job.request_id)
            if not await self._system.reboot("FirmwareUpdate"):
                await trio.sleep_forever()           # the operating system reboots the board
            return False, "the reboot after the install could not be carried out in process", ""
        if r.outcome is BootOutcome.ROLLED_BACK:
            return False, f"firmware {r.installing_version or '?'} rolled back to {r.running_version}", ""
        if r.outcome is BootOutcome.INSTALL_INTERRUPTED:
            return False, "the install was interrupted", ""
        return False, f"the install did not reach the installer; firmware {r.running_version} runs", ""

    async def _discard(self, effect: DiscardFirmware, _run) -> None:
        key = ("firmware", effect.request_id)
        self._cancel(key)
        image = self.image(effect.request_id)

        async def remove() -> None:
            await self._idle(key)
            for path in (image, image.with_name(image.name + PART_SUFFIX), image.with_name(image.name + META_SUFFIX)):
                with contextlib.suppress(FileNotFoundError):
                    await trio.to_thread.run_sync(path.unlink)
        self._nursery.start_soon(remove)

    # --- N01 ----------------------------------------------------------------------------------------
    async def _upload(self, job: UploadLog) -> Outcome:
        folder = self._dir.parent / "log-uploads"
        path = folder / job.filename
        lines = job.lines if job.lines is not None else self._diagnostics_log(job)

        def write() -> None:
            folder.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.writelines(line + "\n" for line in lines)
        await trio.to_thread.run_sync(write)
        try:
            sent = await self._transfer.upload(path, job.remote_location, timeout=self._timeout)
        except TransferError as exc:
            outcome = next((name for cls, name in _UPLOAD_OUTCOME if isinstance(exc, cls)), "UploadFailure")
            return False, str(exc), outcome
        finally:
            path.unlink(missing_ok=True)        # a small file; also when cancelled
        log.info("log upload %d: %s, %d bytes (%d lines)", job.request_id, job.filename, sent.size, len(lines))
        return True, f"{sent.size} bytes", ""

    def _diagnostics_log(self, job: UploadLog) -> list[str]:
        """The DiagnosticsLog file: a header, then the recent log records in the window."""
        lines = recent_log().lines(job.oldest, job.latest)
        span = f"{job.oldest.isoformat() if job.oldest else 'oldest kept'} .. " \
               f"{job.latest.isoformat() if job.latest else 'now'}"
        return [f"# evse-stack diagnostics log of station {self._station_id}, firmware "
                f"{self._report.running_version}: {len(lines)} recent records, {span}", *lines]

    async def _cancel_upload(self, effect: CancelLogUpload, _run) -> None:
        self._cancel(("log", effect.request_id))
