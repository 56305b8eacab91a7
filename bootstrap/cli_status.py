"""`evse status`: the station's state on the board itself, for every deployment.

    evse status --config /etc/evse-stack/station.toml     # asks the running station ([status] socket)
    evse status --socket /run/evse-stack/status.sock --json
    evse status --storage /var/lib/evse-stack/station.db  # a stopped station: what its file holds

Exit status: 0 shown; 1 the station does not answer (not running?) or the file cannot be read;
2 a bad configuration or options. The database is opened read-only (``mode=ro``, or
``immutable=1`` where its folder cannot be written): reading it changes nothing, also while a
station runs on it. Secrets stored in it (SecurityCtrlr.BasicAuthPassword) are not shown.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from bootstrap.redact import MASK

_SECRET_VARIABLES = frozenset({"SecurityCtrlr/BasicAuthPassword"})


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="the station's local status (running: its status socket; "
                                      "stopped: --storage)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", help="station TOML file (its [status] socket)")
    where.add_argument("--socket", help="the status socket of a running station")
    where.add_argument("--storage", help="the SQLite file of a stopped station (read-only)")
    p.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    from bootstrap.status import format_text, read_status

    if args.storage is not None:
        try:
            stored = read_storage(args.storage)
        except (sqlite3.Error, OSError) as exc:
            print(f"evse: {args.storage}: cannot read the station database ({exc})", file=sys.stderr)
            return 1
        return _print(json.dumps(stored, ensure_ascii=False) if args.json else format_storage(stored))
    path = args.socket
    if path is None:
        from bootstrap.config import ConfigError, load_config

        try:
            path = load_config(args.config).status.socket
        except ConfigError as exc:
            print(f"evse: {exc}", file=sys.stderr)
            return 2
    try:
        status = read_status(path)
    except OSError as exc:
        print(f"evse: {path}: the station does not answer ({exc.strerror or exc}); is it running? "
              f"(a stopped station: evse status --storage PATH)", file=sys.stderr)
        return 1
    return _print(json.dumps(status, ensure_ascii=False) if args.json else format_text(status))


def _print(text: str) -> int:
    """Print `text`; a reader that went away (`evse status | head -1`) is not an error."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _connect_read_only(path: str) -> tuple[sqlite3.Connection, str | None]:
    """A connection that creates and changes no file (the reader may be root, and a -shm file
    made by root would lock the station's user out), and a note when the write-ahead log could
    not be read: `mode=ro` only where the -wal and its -shm exist, `immutable=1` otherwise."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(2, "no such file", path)
    uri = p.resolve().as_uri()
    wal, shm = Path(f"{p}-wal"), Path(f"{p}-shm")
    changes = wal.exists() and wal.stat().st_size > 0
    if changes and shm.exists():
        return sqlite3.connect(f"{uri}?mode=ro", uri=True), None
    note = (f"{wal.name} holds changes that were not read (no {shm.name}): start the station to "
            f"take them in") if changes else None
    return sqlite3.connect(f"{uri}?immutable=1", uri=True), note


def read_storage(path: str) -> dict[str, Any]:
    """What a stopped station's file holds: schema version, whether the last run stopped
    cleanly, the queued messages (action, attempts), the stored settings and state keys."""
    from adapters.sqlite_storage import SCHEMA_VERSION

    db, note = _connect_read_only(path)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version == 0 and tables or version > SCHEMA_VERSION or not {"kv", "variables"} <= tables:
            raise sqlite3.DatabaseError(f"not an evse-stack database this version reads (schema version {version})")
        kv = dict(db.execute("SELECT key, value FROM kv"))
        variables = {f"{k}" if a == "Actual" else f"{k}[{a}]": (MASK if k in _SECRET_VARIABLES else v)
                     for k, a, v in db.execute("SELECT key, attribute, value FROM variables ORDER BY key, attribute")}
        queued: list[dict[str, Any]] = []
        records: dict[str, int] = {}
        if "records" in tables:
            for tbl, key, value in db.execute("SELECT tbl, key, value FROM records ORDER BY tbl, key"):
                records[tbl] = records.get(tbl, 0) + 1
                if tbl == "queue":
                    queued.append(_queued(key, value))
    finally:
        db.close()
    return {
        "path": str(path),
        "note": note,
        "schema_version": version,
        "stopped_cleanly": "clean_stop" in kv,
        "queued": queued,
        "records": records,
        "settings": variables,
        "state_keys": sorted(k for k in kv if not k.startswith("config_applied:")),
    }


def _queued(key: str, value: str) -> dict[str, Any]:
    try:
        stored = json.loads(value)
        return {"seq": int(key), "action": stored.get("a"), "attempts": stored.get("n", 0)}
    except (ValueError, AttributeError):
        return {"seq": key, "action": None, "attempts": None}


def format_storage(stored: dict[str, Any]) -> str:
    lines = [f"database {stored['path']} (schema version {stored['schema_version']}), last run "
             f"{'stopped cleanly' if stored['stopped_cleanly'] else 'did not stop cleanly (power loss or crash) or never ran'}",
             f"queued for the CSMS: {len(stored['queued'])}"]
    if stored["note"]:
        lines.insert(1, f"note: {stored['note']}")
    lines += [f"  #{q['seq']} {q['action']} ({q['attempts']} attempt(s))" for q in stored["queued"]]
    lines.append("records: " + (", ".join(f"{t} {n}" for t, n in stored["records"].items()) or "none"))
    lines.append(f"settings ({len(stored['settings'])}):")
    lines += [f"  {k.replace('/', '.')} = {v}" for k, v in stored["settings"].items()]
    return "\n".join(lines)
