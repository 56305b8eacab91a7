"""What the log upload block (N01) asks the outside world to do. The log files and the file
transfer are the adapters' (the station's rotating diagnostics log, the security log; port
file_transfer); the block only decides what happens next."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from domain.security.events import SecurityLogEntry


@dataclass(frozen=True, slots=True)
class UploadLog:
    """Job: one attempt (`attempt`, from 1) to upload the log `log_type` (DiagnosticsLog or
    SecurityLog), the entries from `oldest` to `latest` (None: unbounded), as `filename` to
    `remote_location` (FTP(S): STOR; HTTP(S): POST, N01). Its JobFinished: ok -> Uploaded; not
    ok -> `outcome` (UploadFailure, BadMessage, PermissionDenied, NotSupportedOperation; "" is
    UploadFailure), tried again after retryInterval while attempts remain. `remote_location`
    may hold credentials: never logged. `lines`: the file's content when the domain owns the log
    (SecurityLog: the security log's entries in the window, rendered by `security_log_lines`);
    None for the DiagnosticsLog, which is the runtime's own log records."""

    request_id: int
    log_type: str
    remote_location: str = field(repr=False)
    filename: str
    oldest: datetime | None = None
    latest: datetime | None = None
    attempt: int = 1
    lines: tuple[str, ...] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CancelLogUpload:
    """Effect: stop the upload of `request_id` if it still runs (a second GetLog cancels it,
    N01.FR.12, TC_N_36); its outcome, if one still comes, is ignored."""

    request_id: int


def security_log_lines(entries: Sequence[SecurityLogEntry], firmware: str | None, oldest: datetime | None,
                       latest: datetime | None) -> tuple[str, ...]:
    """The SecurityLog file of GetLog (N01.FR.01; its format is not prescribed): a header, then
    one line per entry, oldest first: `<UTC timestamp> <type> <techInfo>`. A techInfo is the text
    the CSMS also gets in SecurityEventNotification (never a secret); its line breaks become
    spaces so that an entry stays one line."""
    span = f"{_utc(oldest) if oldest else 'oldest kept'} .. {_utc(latest) if latest else 'now'}"
    header = f"# evse-stack security log, firmware {firmware or '?'}: {len(entries)} entries, {span}"
    return (header, *(f"{_utc(e.timestamp)} {e.type}"
                      f"{' ' + ' '.join(e.tech_info.split()) if e.tech_info else ''}" for e in entries))


def _utc(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
