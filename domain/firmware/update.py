"""The durable record of one firmware update (L01): what UpdateFirmware asked for and where the
update stands. Stored as one station-state value (`FIRMWARE_KEY`), written in the same
StoreRecords change as the FirmwareStatusNotification that reports the step, so that neither
is ever stored without the other.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from domain import messages as m

FIRMWARE_KEY = "firmware_update"    # station-state key of the current (or last) update

DEFAULT_RETRIES = 2                 # UpdateFirmware without `retries`: attempts after the first
DEFAULT_RETRY_INTERVAL = 30         # s, without `retryInterval`

_S = m.FirmwareStatus
# The statuses after which nothing more happens for the request (TriggerMessage: Idle, L01.FR.25).
FINAL = frozenset({_S.DownloadFailed, _S.InvalidSignature, _S.Installed, _S.InstallationFailed,
                   _S.InstallVerificationFailed})
# The steps during which a new UpdateFirmware can no longer cancel the update (L01.FR.27, TC_L_11).
NOT_CANCELABLE = frozenset({_S.Installing, _S.InstallRebooting})


@dataclass(frozen=True, slots=True)
class FirmwareUpdate:
    request_id: int
    location: str
    retrieve_at: datetime
    install_at: datetime | None
    retries: int
    retry_interval: int
    signing_certificate: str
    signature: str
    status: m.FirmwareStatus
    attempt: int = 0                    # download attempts started
    retry_at: datetime | None = None    # the next download attempt, after a failed one

    @classmethod
    def accepted(cls, req: m.UpdateFirmwareRequest, status: m.FirmwareStatus) -> "FirmwareUpdate":
        f = req.firmware
        return cls(request_id=req.request_id, location=f.location, retrieve_at=f.retrieve_date_time,
                   install_at=f.install_date_time, signing_certificate=f.signing_certificate or "",
                   signature=f.signature or "", status=status,
                   retries=DEFAULT_RETRIES if req.retries is None else req.retries,
                   retry_interval=DEFAULT_RETRY_INTERVAL if req.retry_interval is None else req.retry_interval)

    @property
    def active(self) -> bool:
        return self.status not in FINAL

    def to(self, status: m.FirmwareStatus, **changes) -> "FirmwareUpdate":
        return replace(self, status=status, **changes)

    def dump(self) -> str:
        d = asdict(self)
        for k in ("retrieve_at", "install_at", "retry_at"):
            d[k] = None if d[k] is None else d[k].isoformat()
        d["status"] = str(self.status)
        return json.dumps(d, separators=(",", ":"))

    @classmethod
    def load(cls, raw: str | None) -> tuple["FirmwareUpdate | None", str | None]:
        """The stored update, or (None, why) when what is stored cannot be used."""
        if not raw:
            return None, None
        try:
            d = json.loads(raw)
            for k in ("retrieve_at", "install_at", "retry_at"):
                d[k] = None if d[k] is None else datetime.fromisoformat(d[k])
            d["status"] = m.FirmwareStatus(d["status"])
            return cls(**d), None
        except (ValueError, TypeError, KeyError) as exc:
            return None, f"stored firmware update unusable, ignored: {exc}"
