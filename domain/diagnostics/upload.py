"""The durable record of one log upload (N01): what GetLog asked for and where the upload
stands. Stored as one station-state value (`LOG_UPLOAD_KEY`) in the same StoreRecords change as
the LogStatusNotification that reports the step."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from domain import messages as m

LOG_UPLOAD_KEY = "log_upload"       # station-state key of the current (or last) upload

DEFAULT_RETRIES = 2                 # GetLog without `retries`: attempts after the first
DEFAULT_RETRY_INTERVAL = 30         # s, without `retryInterval`

_S = m.UploadLogStatus
# the statuses a failed attempt may report (the job's outcome); anything else is UploadFailure
FAILURES = frozenset({_S.UploadFailure, _S.BadMessage, _S.PermissionDenied, _S.NotSupportedOperation})
_DATES = ("oldest", "latest", "retry_at")


@dataclass(frozen=True, slots=True)
class LogUpload:
    request_id: int
    log_type: str
    remote_location: str
    filename: str
    oldest: datetime | None
    latest: datetime | None
    retries: int
    retry_interval: int
    status: m.UploadLogStatus
    attempt: int = 0                    # upload attempts started
    retry_at: datetime | None = None    # the next attempt, after a failed one (None: none due)

    @classmethod
    def accepted(cls, req: m.GetLogRequest, filename: str) -> "LogUpload":
        return cls(request_id=req.request_id, log_type=str(req.log_type), remote_location=req.log.remote_location,
                   filename=filename, oldest=req.log.oldest_timestamp, latest=req.log.latest_timestamp,
                   retries=DEFAULT_RETRIES if req.retries is None else req.retries,
                   retry_interval=DEFAULT_RETRY_INTERVAL if req.retry_interval is None else req.retry_interval,
                   status=_S.Uploading)

    @property
    def active(self) -> bool:
        """Uploading, or waiting to try again after a failed attempt."""
        return self.status == _S.Uploading or self.retry_at is not None

    def to(self, status: m.UploadLogStatus, **changes) -> "LogUpload":
        return replace(self, status=status, **changes)

    def dump(self) -> str:
        d = asdict(self)
        for k in _DATES:
            d[k] = None if d[k] is None else d[k].isoformat()
        d["status"] = str(self.status)
        return json.dumps(d, separators=(",", ":"))

    @classmethod
    def load(cls, raw: str | None) -> tuple["LogUpload | None", str | None]:
        """The stored upload, or (None, why) when what is stored cannot be used."""
        if not raw:
            return None, None
        try:
            d = json.loads(raw)
            for k in _DATES:
                d[k] = None if d[k] is None else datetime.fromisoformat(d[k])
            d["status"] = m.UploadLogStatus(d["status"])
            return cls(**d), None
        except (ValueError, TypeError, KeyError) as exc:
            return None, f"stored log upload unusable, ignored: {exc}"
