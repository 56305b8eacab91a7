"""What the log upload block (N01) asks the outside world to do. The log files and the file
transfer are the adapters' (the station's rotating diagnostics log, the security log; port
file_transfer); the block only decides what happens next."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class UploadLog:
    """Job: one attempt (`attempt`, from 1) to upload the log `log_type` (DiagnosticsLog or
    SecurityLog), the entries from `oldest` to `latest` (None: unbounded), as `filename` to
    `remote_location` (FTP(S): STOR; HTTP(S): POST, N01). Its JobFinished: ok -> Uploaded; not
    ok -> `outcome` (UploadFailure, BadMessage, PermissionDenied, NotSupportedOperation; "" is
    UploadFailure), tried again after retryInterval while attempts remain. `remote_location`
    may hold credentials: never logged."""

    request_id: int
    log_type: str
    remote_location: str = field(repr=False)
    filename: str
    oldest: datetime | None = None
    latest: datetime | None = None
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class CancelLogUpload:
    """Effect: stop the upload of `request_id` if it still runs (a second GetLog cancels it,
    N01.FR.12, TC_N_36); its outcome, if one still comes, is ignored."""

    request_id: int
