"""`evse run` as a real process: clean stop on SIGTERM/SIGINT, one-line config errors,
refusal of a damaged database; `evse sim` against the running station; `evse demo` (a
development tool the product CLI loads when asked for) until SIGINT."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from devtools.dev_csms import DevCsms

SID = "CS-CLI-1"


def write_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "station.toml"
    path.write_text(f"""
[station]
id = "{SID}"
[csms]
url = "{url}"
basic_auth_password = "0123456789abcdef"
[storage]
path = "station.db"
[hardware]
adapter = "sim"
control_socket = "sim.sock"
[device_model]
"TxCtrlr.TxStartPoint" = "PowerPathClosed"
{extra}
""")
    return path


def evse(*args: str, **kw) -> list[str]:
    return [sys.executable, "-m", "bootstrap.cli", *args]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_run_stops_cleanly_on_signal(tmp_path, signum):
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            csms = DevCsms()
            await nursery.start(csms.serve)
            config = write_config(tmp_path, csms.url)
            proc = await trio.lowlevel.open_process(evse("run", "--config", str(config)),
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                await csms.wait_for("StatusNotification", station_id=SID, timeout=15)
                # the sim CLI talks to the running station
                out = await trio.run_process(evse("sim", "--socket", str(tmp_path / "sim.sock"), "plug",
                                                  "--evse", "1"), capture_stdout=True, capture_stderr=True)
                assert out.returncode == 0, out.stderr
                await csms.wait_for("StatusNotification", where=lambda p: p["connectorStatus"] == "Occupied")
                proc.send_signal(signum)
                with trio.fail_after(5):
                    rc = await proc.wait()
            finally:
                if proc.returncode is None:
                    proc.kill()
            assert rc == 0
            with trio.fail_after(5):
                while not csms.disconnects:
                    await trio.sleep(0.02)
            assert csms.disconnects[0][0] == SID and csms.disconnects[0][1].startswith("code 1000")
            assert not (tmp_path / "sim.sock").exists()
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("extra", "message"), [
    ('[log]\ncolour = "red"', "log.colour: unknown key"),
    ('"OCPPCommCtrlr.HeartbeatInterval" = "often"', "device_model.OCPPCommCtrlr.HeartbeatInterval"),
    ('"NoSuchCtrlr.Thing" = 1', "device_model.NoSuchCtrlr.Thing: unknown variable"),
])
def test_bad_config_exits_nonzero_with_one_line(tmp_path, extra, message):
    config = write_config(tmp_path, "ws://127.0.0.1:9/ocpp", extra)
    r = subprocess.run(evse("run", "--config", str(config)), capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_missing_config_file(tmp_path):
    r = subprocess.run(evse("run", "--config", str(tmp_path / "nope.toml")), capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip().endswith("nope.toml: file not found")


def test_damaged_database_refuses_to_start(tmp_path):
    config = write_config(tmp_path, "ws://127.0.0.1:9/ocpp")
    (tmp_path / "station.db").write_bytes(b"this is not a database" * 100)
    r = subprocess.run(evse("run", "--config", str(config)), capture_output=True, text=True, timeout=30)
    assert r.returncode == 10           # damaged (bootstrap.storage_errors.EXIT_CODES)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "station.db") in lines[0] and "Recovering" in lines[0], r.stderr
    assert (tmp_path / "station.db").read_bytes().startswith(b"this is not a database")


async def test_demo_runs_the_dev_csms_and_a_station_until_sigint(tmp_path):
    """`evse demo` goes through the CLI's lazy entry (devtools.demo.main): the dev CSMS
    prints the booted station's frames; SIGINT stops both cleanly."""
    with trio.fail_after(30):
        proc = await trio.lowlevel.open_process(
            evse("demo", "--no-script", "--dir", str(tmp_path / "demo")),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out = bytearray()
            while b'"connectorStatus":"Available"' not in out:
                data = await proc.stdout.receive_some(65536)
                assert data, out.decode(errors="replace")
                out += data
            assert b"CS-DEMO-01 -> CSMS" in out and b'"BootNotification"' in out
            proc.send_signal(signal.SIGINT)
            rc = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
    assert rc == 0
    assert (tmp_path / "demo" / "station.db").exists()
    assert not (tmp_path / "demo" / "sim.sock").exists()
