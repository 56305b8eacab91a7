"""What the firmware update block (L01) asks the outside world to do: jobs whose outcome comes
back as `JobFinished(job, ok, detail)` (domain/hardware_events.py), and one effect without an
outcome. The crypto, the file transfer and the installer are the adapters' (ports
file_transfer, firmware_installer, certificate_store); the block only decides what happens next.

Each job names the UpdateFirmware `request_id` it belongs to, so that the outcome of a job of
an update that was cancelled meanwhile (AcceptedCanceled) is recognised and ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain import messages as m


@dataclass(frozen=True, slots=True)
class CheckSigningCertificate:
    """Job answering an UpdateFirmware CALL (`reply_to`, set by the router): does the PEM
    `signing_certificate` chain to an installed ManufacturerRootCertificate and is it valid
    `at` (the station's UTC time)? ok: the update is accepted; not ok: InvalidCertificate
    and the security event InvalidFirmwareSigningCertificate (L01.FR.02, TC_L_05)."""

    signing_certificate: str
    at: datetime
    request: m.UpdateFirmwareRequest = field(repr=False, compare=False)
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class DownloadFirmware:
    """Job: one attempt (`attempt`, from 1) to fetch `location` into the station's firmware
    store for `request_id`, streamed to disk. ok: Downloaded; not ok: retried after
    retryInterval while attempts remain, then DownloadFailed. `location` may hold credentials:
    never logged."""

    request_id: int
    location: str = field(repr=False)
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class VerifyFirmware:
    """Job: the downloaded image of `request_id` against `signature` (Base64, RSA PKCS#1 v1.5 or
    ECDSA, SHA-256) with the key of `signing_certificate`, which must still chain to an
    installed ManufacturerRootCertificate. ok: SignatureVerified; not ok: InvalidSignature and
    the security event InvalidFirmwareSignature (L01.FR.03, TC_L_06)."""

    request_id: int
    signing_certificate: str = field(repr=False)
    signature: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class InstallFirmware:
    """Job: install the verified image of `request_id` into the inactive slot and make it the
    one the next boot starts. ok: InstallRebooting and a reboot; not ok: InstallationFailed.
    Emitted at most once per request: a restart while it runs never installs again."""

    request_id: int


@dataclass(frozen=True, slots=True)
class ActivateFirmware:
    """Job after the boot that follows an install (or a restart while installing), once the
    CSMS accepted the BootNotification: if the firmware of `request_id` is the one running,
    mark it good (ok: Installed); if not (never switched to, or rolled back after a failed
    post-boot check) not ok: InstallationFailed (the install did not finish) or
    InstallVerificationFailed (it booted and was rolled back)."""

    request_id: int


@dataclass(frozen=True, slots=True)
class DiscardFirmware:
    """Effect: stop whatever still runs for `request_id` (a download, a verification) and
    delete its files; after a cancel (AcceptedCanceled) and once an update has ended."""

    request_id: int


FIRMWARE_JOBS = (CheckSigningCertificate, DownloadFirmware, VerifyFirmware, InstallFirmware, ActivateFirmware)
