"""`evse firmware status` and `evse logs`: where the firmware update (L01) and the log upload
(N01) stand, read from the station's SQLite file, running or stopped.

The file is opened read-only (`mode=ro`, which reads the write-ahead log of a running station;
`immutable=1` for a stopped one on a read-only file system), so inspecting never changes nor
locks what the station writes. Locations are shown without user, password or query. Output:
one `name: value` line each, or one JSON object with `--json`. Exit 0; 1 when the file cannot be
read; 2 for a bad configuration.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

import msgspec

from adapters.transfer.partfile import public_url
from bootstrap.config import ConfigError, load_config
from domain.diagnostics.upload import LOG_UPLOAD_KEY, LogUpload
from domain.firmware.update import FIRMWARE_KEY, FirmwareUpdate
from domain.queue import TABLE as QUEUE_TABLE


class _Stored(msgspec.Struct):
    a: str
    p: msgspec.Raw


class Unreadable(Exception):
    """The database cannot be read; str(): one line naming the file."""


def _open(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise Unreadable(f"{path}: no such database (has the station run with this configuration?)")
    uri = path.resolve().as_uri()
    try:
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True)
        db.execute("SELECT count(*) FROM kv").fetchone()
        return db
    except sqlite3.Error:
        pass
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise Unreadable(f"{path}: cannot be opened read-only while its write-ahead log holds changes")
    try:
        db = sqlite3.connect(f"{uri}?immutable=1", uri=True)
        db.execute("SELECT count(*) FROM kv").fetchone()
        return db
    except sqlite3.Error as exc:
        raise Unreadable(f"{path}: not a station database: {exc}") from None


def _value(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _queued(db: sqlite3.Connection, action: str) -> list[dict]:
    """The undelivered notifications `action` of the durable queue, oldest first."""
    try:
        rows = db.execute("SELECT key, value FROM records WHERE tbl = ? ORDER BY key", (QUEUE_TABLE,)).fetchall()
    except sqlite3.Error:
        return []
    out = []
    for _, value in rows:
        try:
            stored = msgspec.json.decode(value, type=_Stored)
        except msgspec.DecodeError:
            continue
        if stored.a == action:
            out.append(msgspec.json.decode(stored.p))
    return out


def _when(value) -> str | None:
    return None if value is None else value.isoformat()


def firmware_status(db: sqlite3.Connection) -> dict:
    """The current (or last) firmware update and its notifications not yet delivered."""
    update, problem = FirmwareUpdate.load(_value(db, FIRMWARE_KEY))
    out: dict = {"firmware_update": None}
    if problem:
        out["problem"] = problem
    if update is not None:
        out["firmware_update"] = {
            "request_id": update.request_id, "status": str(update.status), "active": update.active,
            "location": public_url(update.location), "retrieve_at": _when(update.retrieve_at),
            "install_at": _when(update.install_at), "download_attempts": update.attempt,
            "retries": update.retries, "retry_interval": update.retry_interval,
            "next_attempt_at": _when(update.retry_at)}
    out["undelivered_notifications"] = [
        f"{p.get('status')} (request {p.get('requestId')})" for p in _queued(db, "FirmwareStatusNotification")]
    return out


def log_status(db: sqlite3.Connection) -> dict:
    """The current (or last) log upload and its notifications not yet delivered."""
    upload, problem = LogUpload.load(_value(db, LOG_UPLOAD_KEY))
    out: dict = {"log_upload": None}
    if problem:
        out["problem"] = problem
    if upload is not None:
        out["log_upload"] = {
            "request_id": upload.request_id, "log_type": upload.log_type, "status": str(upload.status),
            "active": upload.active, "filename": upload.filename,
            "remote_location": public_url(upload.remote_location), "oldest": _when(upload.oldest),
            "latest": _when(upload.latest), "attempts": upload.attempt, "retries": upload.retries,
            "retry_interval": upload.retry_interval, "next_attempt_at": _when(upload.retry_at)}
    out["undelivered_notifications"] = [
        f"{p.get('status')} (request {p.get('requestId')})" for p in _queued(db, "LogStatusNotification")]
    return out


def _show(report: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for name, value in report.items():
        if isinstance(value, dict):
            for k, v in value.items():
                print(f"{k}: {'-' if v is None else v}")
        elif isinstance(value, list):
            print(f"{name}: {', '.join(value) if value else 'none'}")
        else:
            print(f"{name}: {'none' if value is None else value}")


def _run(args: argparse.Namespace, what) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"evse: {exc}", file=sys.stderr)
        return 2
    try:
        db = _open(Path(config.storage.path))
    except Unreadable as exc:
        print(f"evse: {exc}", file=sys.stderr)
        return 1
    try:
        _show(what(db), args.json)
    finally:
        db.close()
    return 0


def add_parsers(sub) -> None:
    """`evse firmware status` and `evse logs`."""
    fw = sub.add_parser("firmware", help="firmware update (L01) of a running or stopped station")
    fw_sub = fw.add_subparsers(dest="firmware_command", required=True)
    st = fw_sub.add_parser("status", help="where the current or last UpdateFirmware stands")
    logs = sub.add_parser("logs", help="where the current or last GetLog upload (N01) stands")
    for p, what in ((st, firmware_status), (logs, log_status)):
        p.add_argument("--config", required=True, help="station TOML file")
        p.add_argument("--json", action="store_true", help="one JSON object")
        p.set_defaults(func=lambda args, what=what: _run(args, what))
