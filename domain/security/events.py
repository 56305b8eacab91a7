"""A04 security events: which ones are critical, and the station's bounded security log.

CRITICAL is the `Critical` column of Part 2's appendix security_events.csv (a test compares
them): a critical event is sent to the CSMS as a SecurityEventNotification through the durable
queue (A04.FR.02: never lost offline), and so is DiscardedRenewedClientCertificate (errata
2025-01, A02.FR.29); every event, critical or not, is kept in the security log (A04.FR.03), for
GetLog SecurityLog (N01).

The log is one record table, `security_log`: key = a zero-padded sequence number (so the keys
sort by age), value = JSON {"type", "timestamp", "techInfo"}. It holds at most SECURITY_LOG_MAX
entries; the oldest goes when a new one would exceed it.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from domain.effects import StoreRecords

CRITICAL = frozenset({
    "FirmwareUpdated", "SettingSystemTime", "StartupOfTheDevice", "ResetOrReboot", "SecurityLogWasCleared",
    "MemoryExhaustion", "TamperDetectionActivated", "InvalidFirmwareSignature",
    "InvalidFirmwareSigningCertificate", "InvalidCsmsCertificate", "InvalidChargingStationCertificate",
    "InvalidTLSVersion", "InvalidTLSCipherSuite", "MaintenanceLoginAccepted", "MaintenanceLoginFailed",
})

INVALID_CHARGING_STATION_CERTIFICATE = "InvalidChargingStationCertificate"
INVALID_CSMS_CERTIFICATE = "InvalidCsmsCertificate"
# errata 2025-01 A02.FR.29 / A03.FR.25: a renewed client certificate the station discarded (it
# could not connect with it); not in the appendix, sent so that the CSMS renews again
DISCARDED_RENEWED_CLIENT_CERTIFICATE = "DiscardedRenewedClientCertificate"
# what goes to the CSMS: the critical events and the one the errata adds
SENT = CRITICAL | {DISCARDED_RENEWED_CLIENT_CERTIFICATE}
RECONFIGURATION_OF_SECURITY_PARAMETERS = "ReconfigurationOfSecurityParameters"

SECURITY_LOG_TABLE = "security_log"
SECURITY_LOG_MAX = 1000
_KEY_DIGITS = 12


@dataclass(frozen=True, slots=True)
class SecurityLogEntry:
    type: str
    timestamp: datetime
    tech_info: str | None = None


class SecurityLog:
    """The bounded security log (see the module docstring); `take_change` gives what to store."""

    def __init__(self, records: Mapping[str, str], capacity: int = SECURITY_LOG_MAX) -> None:
        self.capacity = capacity
        self._entries: dict[int, SecurityLogEntry] = {}
        for key in sorted(records):
            raw = json.loads(records[key])
            self._entries[int(key)] = SecurityLogEntry(raw["type"], datetime.fromisoformat(raw["timestamp"]),
                                                       raw.get("techInfo"))
        self._next = max(self._entries, default=0) + 1
        self._upserts: dict[str, str] = {}
        self._deletes: list[str] = []

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, kind: str, timestamp: datetime, tech_info: str | None) -> None:
        seq, self._next = self._next, self._next + 1
        self._entries[seq] = SecurityLogEntry(kind, timestamp, tech_info)
        self._upserts[_key(seq)] = json.dumps({"type": kind, "timestamp": timestamp.isoformat(),
                                               "techInfo": tech_info})
        while len(self._entries) > self.capacity:       # the oldest goes
            oldest = min(self._entries)
            del self._entries[oldest]
            if self._upserts.pop(_key(oldest), None) is None:
                self._deletes.append(_key(oldest))

    def between(self, start: datetime | None = None, stop: datetime | None = None) -> list[SecurityLogEntry]:
        """The entries with start <= timestamp <= stop (either bound may be None), oldest
        first: what GetLog SecurityLog (oldestTimestamp, latestTimestamp) uploads."""
        return [e for _, e in sorted(self._entries.items())
                if (start is None or e.timestamp >= start) and (stop is None or e.timestamp <= stop)]

    def take_change(self) -> StoreRecords | None:
        if not self._upserts and not self._deletes:
            return None
        change = StoreRecords(SECURITY_LOG_TABLE, self._upserts, tuple(self._deletes))
        self._upserts, self._deletes = {}, []
        return change


def _key(seq: int) -> str:
    return str(seq).zfill(_KEY_DIGITS)
