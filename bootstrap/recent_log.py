"""The diagnostics log GetLog (N01) uploads when the station has no log file of its own: the
most recent records of the station's loggers ("evse.*"), kept in memory, bounded in count and
in the length of a line.

The OCPP wire log ("evse.ocpp", one line per frame) is left out: frames carry passwords
(SetVariables of BasicAuthPassword) and the upload leaves the station.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from datetime import datetime, timezone

MAX_RECORDS = 5000
MAX_LINE = 1000
_FORMAT = logging.Formatter("%(asctime)s.%(msecs)03dZ %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
_FORMAT.converter = time.gmtime


class RecentLog(logging.Handler):
    """A logging handler keeping the last `max_records` records as (UTC time, line)."""

    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        super().__init__(logging.DEBUG)
        self._records: collections.deque[tuple[datetime, str]] = collections.deque(maxlen=max_records)
        self._guard = threading.Lock()
        self.addFilter(lambda record: not record.name.startswith("evse.ocpp"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = _FORMAT.format(record)
        except Exception:   # noqa: BLE001 - a bad record never breaks the station
            return
        when = datetime.fromtimestamp(record.created, timezone.utc)
        with self._guard:
            self._records.append((when, line[:MAX_LINE]))

    def lines(self, oldest: datetime | None = None, latest: datetime | None = None) -> list[str]:
        """The kept lines from `oldest` to `latest` (GetLog oldestTimestamp/latestTimestamp)."""
        with self._guard:
            records = list(self._records)
        return [line for when, line in records
                if (oldest is None or when >= oldest) and (latest is None or when <= latest)]


_installed: RecentLog | None = None


def recent_log() -> RecentLog:
    """The process's one RecentLog, attached to the "evse" logger on first use."""
    global _installed
    if _installed is None:
        _installed = RecentLog()
        logging.getLogger("evse").addHandler(_installed)
    return _installed
