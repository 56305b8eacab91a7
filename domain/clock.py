"""The station's idea of the date and time.

The domain never reads a clock. The runtime passes `now`, a monotonic reading
in seconds, with every event; this class maps it to UTC through an anchor
(a monotonic reading and the UTC time it stood for). The CSMS sets the time
(BootNotificationResponse, HeartbeatResponse: ClockCtrlr.TimeSource =
Heartbeat, PICS C-23) by moving the anchor.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


class StationClock:
    __slots__ = ("_mono", "_utc")

    def __init__(self, mono: float, utc: datetime) -> None:
        if utc.tzinfo is None:
            raise ValueError("utc: a timezone-aware datetime is required")
        self._mono = mono
        self._utc = utc.astimezone(timezone.utc)

    def utc(self, now: float) -> datetime:
        """The station's UTC time at monotonic instant `now`, to the millisecond."""
        t = self._utc + timedelta(seconds=now - self._mono)
        return t.replace(microsecond=(t.microsecond // 1000) * 1000)

    def set(self, now: float, utc: datetime) -> float:
        """Declare that it is `utc` at monotonic `now`; returns the jump in seconds."""
        if utc.tzinfo is None:
            utc = utc.replace(tzinfo=timezone.utc)
        jump = (utc - self.utc(now)).total_seconds()
        self._mono = now
        self._utc = utc.astimezone(timezone.utc)
        return jump

    def monotonic(self, utc: datetime) -> float:
        """The monotonic instant at which it will be (or was) `utc`; naive means UTC."""
        if utc.tzinfo is None:
            utc = utc.replace(tzinfo=timezone.utc)
        return self._mono + (utc - self._utc).total_seconds()
