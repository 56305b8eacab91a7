"""`evse logs` and `evse firmware status` (bootstrap/inspect_cli.py) as real processes on a real
SQLite file of a stopped station: what GetLog (N01) left, without credentials, the file left
unchanged; a missing database is one line and exit 1. (The firmware status of a killed and of a
running station: tests/chaos/test_firmware_sigkill.py.)"""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from adapters.sqlite_storage import SqliteStorage
from domain import messages as m
from domain.diagnostics.upload import LOG_UPLOAD_KEY, LogUpload
from domain.queue import TABLE as QUEUE_TABLE


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "station.toml"
    path.write_text('[station]\nid = "CS-INSPECT-1"\n[storage]\npath = "station.db"\n')
    return path


def evse(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bootstrap.cli", *args], capture_output=True, text=True, timeout=30)


def test_logs_shows_the_stored_upload_without_credentials(tmp_path):
    config = write_config(tmp_path)
    upload = LogUpload(request_id=7, log_type="DiagnosticsLog", remote_location="ftp://station:secret@10.0.0.9/logs/?t=x",
                       filename="diagnostics-20261208T020000Z-7.log", oldest=None,
                       latest=datetime(2026, 12, 8, tzinfo=timezone.utc), retries=2, retry_interval=30,
                       status=m.UploadLogStatus.PermissionDenied, attempt=1,
                       retry_at=datetime(2026, 12, 8, 2, 0, 30, tzinfo=timezone.utc))
    storage = SqliteStorage(str(tmp_path / "station.db"))
    notice = json.dumps({"a": "LogStatusNotification", "p": {"status": "PermissionDenied", "requestId": 7}})
    storage.write_records(QUEUE_TABLE, {"000000000001": notice}, (), kv={LOG_UPLOAD_KEY: upload.dump()})
    storage.close()
    before = (tmp_path / "station.db").read_bytes()

    r = evse("logs", "--config", str(config), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["log_upload"]["status"] == "PermissionDenied" and report["log_upload"]["active"]
    assert report["log_upload"]["remote_location"] == "ftp://10.0.0.9/logs/"
    assert report["undelivered_notifications"] == ["PermissionDenied (request 7)"]
    text = evse("logs", "--config", str(config))
    assert text.returncode == 0 and "status: PermissionDenied" in text.stdout and "secret" not in text.stdout
    assert "secret" not in r.stdout
    assert (tmp_path / "station.db").read_bytes() == before

    fw = evse("firmware", "status", "--config", str(config))
    assert fw.returncode == 0 and "firmware_update: none" in fw.stdout, fw.stdout


def test_missing_database_is_one_line_and_exit_1(tmp_path):
    config = write_config(tmp_path)
    r = evse("firmware", "status", "--config", str(config))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "station.db" in lines[0] and "no such database" in lines[0], r.stderr
    assert not (tmp_path / "station.db").exists()
