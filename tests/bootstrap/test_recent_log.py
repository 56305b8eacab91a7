"""bootstrap/recent_log.py, the diagnostics log GetLog (N01) uploads: bounded, filtered by
oldestTimestamp / latestTimestamp, without the OCPP frame log (frames can carry passwords)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from bootstrap.recent_log import MAX_LINE, RecentLog


def record(name: str, message: str, at: datetime) -> logging.LogRecord:
    r = logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None)
    r.created = at.timestamp()
    r.msecs = 0
    return r


def test_bounded_filtered_by_time_and_without_the_frame_log():
    log = RecentLog(max_records=3)
    t0 = datetime(2026, 12, 8, 1, 0, tzinfo=timezone.utc)
    for i in range(5):
        log.handle(record("evse.station", f"event {i}", t0 + timedelta(minutes=i)))
    log.handle(record("evse.ocpp", 'CSMS -> CS  [2,"1","SetVariables",{"attributeValue":"secret"}]', t0))
    log.handle(record("evse.firmware", "x" * (2 * MAX_LINE), t0 + timedelta(minutes=9)))
    lines = log.lines()
    assert [line.rsplit(" ", 1)[-1] for line in lines[:2]] == ["3", "4"] and len(lines) == 3
    assert lines[0].startswith("2026-12-08T01:03:00.000Z INFO    evse.station: event 3")
    assert len(lines[2]) == MAX_LINE
    assert not any("secret" in line for line in lines)
    assert [line[-1] for line in log.lines(oldest=t0 + timedelta(minutes=4), latest=t0 + timedelta(minutes=5))] == ["4"]
