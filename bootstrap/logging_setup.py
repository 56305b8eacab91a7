"""The process's log: one line per record on stderr, text or JSON, secrets redacted.

- Text: ``2026-12-08T01:25:24.123+00:00 INFO    evse.station: message`` (ISO 8601 with the date
  and the UTC offset). Under systemd (``JOURNAL_STREAM`` names our stderr) the journal stamps
  each line itself, so the timestamp is left out.
- JSON (``[log] format = "json"``): one object per line with ``time``, ``level``, ``logger``,
  ``station``, ``message`` and, for frame lines, ``direction``, ``action``, ``message_id``,
  ``size``; ``exception`` when there is a traceback.
- Every line passes through bootstrap.redact.redact (the one redaction point).

The OCPP frame log is the logger ``evse.ocpp`` with its own switch, ``[log] frames``:
``full`` (the frame as sent or received), ``summary`` (direction, message type, action,
message id, size: no payload) or ``off``. :data:`frame_log` is what the runtime calls; it
builds nothing when frames are off or INFO is not enabled (the runtime checks ``enabled``).
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import datetime
from typing import TextIO

from bootstrap.redact import redact

FORMATS = ("text", "json")
FRAME_MODES = ("full", "summary", "off")

wire = logging.getLogger("evse.ocpp")      # one line per OCPP frame, both directions

_HEAD = re.compile(r'\s*\[\s*([2-4])\s*,\s*"((?:[^"\\]|\\.)*)"\s*(?:,\s*"([A-Za-z0-9]+)")?')
_TYPES = {"2": "CALL", "3": "CALLRESULT", "4": "CALLERROR"}
_PENDING_MAX = 256            # CALLs remembered to name the action of their answer


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created).astimezone().isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """``<ISO time> LEVEL logger: message`` (no time under journald), redacted."""

    def __init__(self, *, timestamps: bool = True) -> None:
        super().__init__("%(levelname)-7s %(name)s: %(message)s")
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if self.timestamps:
            line = f"{_iso(record.created)} {line}"
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, redacted."""

    def __init__(self, station_id: str | None = None) -> None:
        super().__init__()
        self.station_id = station_id

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": _iso(record.created), "level": record.levelname, "logger": record.name,
               "station": self.station_id, "message": redact(record.getMessage())}
        frame = getattr(record, "ocpp", None)
        if frame is not None:
            out["direction"], out["type"], out["action"], out["message_id"], out["size"] = frame
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


def under_journald(stream: TextIO, environ=os.environ) -> bool:
    """Whether `stream` is the journal's stream (JOURNAL_STREAM = "<dev>:<inode>" of it)."""
    value = environ.get("JOURNAL_STREAM")
    if not value:
        return False
    try:
        st = os.fstat(stream.fileno())
        dev, ino = (int(x) for x in value.split(":"))
    except (OSError, ValueError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


class FrameLog:
    """The OCPP frame log (logger ``evse.ocpp``): full frames, a summary line, or nothing."""

    def __init__(self) -> None:
        self.mode = "full"
        self._actions: dict[str, str] = {}    # message id of a CALL -> its action

    @property
    def enabled(self) -> bool:
        return self.mode != "off" and wire.isEnabledFor(logging.INFO)

    def received(self, frame: str) -> None:
        self._log("CSMS -> CS", "in", frame)

    def sent(self, frame: str) -> None:
        self._log("CS -> CSMS", "out", frame)

    def _log(self, arrow: str, direction: str, frame: str) -> None:
        kind, message_id, action = self._head(frame)
        meta = (direction, kind, action, message_id, len(frame))
        if self.mode == "full":      # redacted in the record itself: whatever handler gets it
            wire.info("%s  %s", arrow, redact(frame), extra={"ocpp": meta})
        else:
            wire.info("%s  %s %s id=%s %d B", arrow, kind, action or "?", message_id, len(frame),
                      extra={"ocpp": meta})

    def _head(self, frame: str) -> tuple[str, str | None, str | None]:
        """Message type, id and action (for an answer: the action of its CALL) from the frame's
        first bytes; nothing else is parsed."""
        m = _HEAD.match(frame)
        if m is None:
            return "invalid", None, None
        kind, message_id, action = _TYPES[m[1]], m[2], m[3]
        if kind == "CALL":
            if action is not None:
                if len(self._actions) >= _PENDING_MAX:
                    self._actions.pop(next(iter(self._actions)))
                self._actions[message_id] = action
        else:
            action = self._actions.pop(message_id, None)
        return kind, message_id, action


frame_log = FrameLog()


def setup_logging(level: str = "INFO", *, format: str = "text", frames: str = "full",
                  station_id: str | None = None, stream: TextIO | None = None) -> None:
    """Log to `stream` (stderr) at `level` in `format`, the frame log as `frames` says."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    if format == "json":
        handler.setFormatter(JsonFormatter(station_id))
    else:
        handler.setFormatter(TextFormatter(timestamps=not under_journald(stream)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    frame_log.mode = frames
