"""`evse status` (bootstrap/status.py, bootstrap/cli_status.py) against real processes: a running
sim station, a running station on the emulated openevse-rev2 board (the device emulators on
pseudo-terminals, `python -m devtools.emulators.rig`), and the file of a stopped station."""
from __future__ import annotations

import grp
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from bootstrap.status import summary
from devtools.dev_csms import DevCsms

SID = "CS-STATUS-1"
PASSWORD = "Status-Password-0123"


def evse(*args: str) -> list[str]:
    return [sys.executable, "-m", "bootstrap.cli", *args]


def write_config(folder: Path, url: str, hardware: str = '[hardware]\ncontrol_socket = "sim.sock"\n',
                 extra: str = "") -> Path:
    path = folder / "station.toml"
    path.write_text(f"""
[station]
id = "{SID}"
[csms]
url = "{url}"
basic_auth_password = "{PASSWORD}"
[storage]
path = "station.db"
[status]
socket = "status.sock"
{extra}
{hardware}""")
    return path


async def status(*args: str) -> tuple[int, str, str]:
    r = await trio.run_process(evse("status", *args), capture_stdout=True, capture_stderr=True, check=False)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


async def status_json(config: Path) -> dict:
    rc, out, err = await status("--config", str(config), "--json")
    assert rc == 0, err
    return json.loads(out)


async def wait_status(config: Path, ok, timeout: float = 20) -> dict:
    with trio.fail_after(timeout):
        while True:
            s = await status_json(config)
            if ok(s):
                return s
            await trio.sleep(0.2)


async def sim(folder: Path, *args: str) -> None:
    r = await trio.run_process(evse("sim", "--socket", str(folder / "sim.sock"), *args),
                               capture_stdout=True, capture_stderr=True, check=False)
    assert r.returncode == 0, r.stderr


@pytest.fixture
def group_name() -> str:
    for name in ("dialout", "adm", "daemon"):
        try:
            grp.getgrnam(name)
            return name
        except KeyError:
            continue
    pytest.fail("no group to give the status socket")


async def test_status_of_a_running_sim_station(tmp_path, group_name):
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            csms = DevCsms(basic_auth={SID: PASSWORD})
            await nursery.start(csms.serve)
            config = write_config(tmp_path, csms.url)
            config.write_text(config.read_text().replace('socket = "status.sock"',
                                                         f'socket = "status.sock"\ngroup = "{group_name}"'))
            proc = await trio.lowlevel.open_process(evse("run", "--config", str(config)),
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                await csms.wait_for("StatusNotification", station_id=SID, timeout=20)
                st = os.stat(tmp_path / "status.sock")
                assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
                assert st.st_gid == grp.getgrnam(group_name).gr_gid
                s = await wait_status(config, lambda s: s["csms"]["link"] == "connected")
                assert s["station"] == SID and s["csms"]["registration"] == "Accepted"
                assert s["csms"]["security_profile"] == 1 and s["hardware"] == "sim"
                assert s["model"] == "Sim-AC-22" and s["firmware_version"]
                assert s["evses"][0]["connectors"] == {"1": "Available"} and s["evses"][0]["transaction"] is None
                # a session: plug, a card, the EV draws 7.2 kW
                await sim(tmp_path, "plug", "--evse", "1")
                await sim(tmp_path, "token", "--id-token", "CARD-1", "--type", "ISO14443", "--evse", "1")
                await sim(tmp_path, "ev_charge", "--evse", "1", "--power-w", "7200")
                s = await wait_status(config, lambda s: (e := s["evses"][0])["transaction"] is not None
                                      and e["meter"] is not None and e["meter"]["power_w"] > 7000)
                e = s["evses"][0]
                assert e["connectors"] == {"1": "Occupied"}
                tx = e["transaction"]
                assert tx["id"] and tx["started"].endswith("+00:00") and tx["id_token"] == "CARD-1"
                assert tx["energy_wh"] is not None and tx["energy_wh"] >= 0
                assert isinstance(s["queued"], int) and s["device_problems"] == []
                assert summary(s).startswith("CSMS connected; EVSE 1 Occupied 7.2 kW; ")
                # the text form, for a person
                rc, out, _ = await status("--config", str(config))
                assert rc == 0 and f"station {SID}" in out and f"transaction {tx['id']}" in out
                assert "authorized by CARD-1" in out
                assert PASSWORD not in json.dumps(s) and PASSWORD not in out
                proc.terminate()
                with trio.fail_after(15):
                    assert await proc.wait() == 0
            finally:
                if proc.returncode is None:
                    proc.kill()
            nursery.cancel_scope.cancel()
    assert not (tmp_path / "status.sock").exists()
    rc, _, err = await status("--config", str(config))
    assert rc == 1 and "does not answer" in err and "--storage" in err and len(err.splitlines()) == 1


async def test_status_of_a_station_on_the_emulated_openevse_rev2_board(tmp_path):
    rig = subprocess.Popen([sys.executable, "-m", "devtools.emulators.rig", "--revision", "openevse-rev2",
                            "--print-config"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, bufsize=1)
    try:
        assert "serving" in rig.stderr.readline()          # the config is printed before it
        hardware = os.read(rig.stdout.fileno(), 65536).decode()
        assert 'adapter = "openevse-rev2"' in hardware
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                csms = DevCsms(basic_auth={SID: PASSWORD})
                await nursery.start(csms.serve)
                config = write_config(tmp_path, csms.url, hardware=hardware)
                proc = await trio.lowlevel.open_process(evse("run", "--config", str(config)),
                                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    boot = await csms.wait_for("BootNotification", station_id=SID, timeout=20)
                    assert boot["chargingStation"]["model"] == "OpenEVSE-rev2"      # not Sim-AC-22
                    assert boot["chargingStation"]["vendorName"] == "OpenEVSE"
                    s = await wait_status(config, lambda s: s["csms"]["link"] == "connected"
                                          and s["evses"] and s["evses"][0]["meter"] is not None)
                    assert s["hardware"] == "openevse-rev2" and s["model"] == "OpenEVSE-rev2"
                    assert s["evses"][0]["connectors"] == {"1": "Available"}
                    for line in ("plug", "card 04A2B3C4D5E6F7", "energy", "load 7200"):
                        rig.stdin.write(line + "\n")
                    rig.stdin.flush()
                    s = await wait_status(config, lambda s: (e := s["evses"][0])["transaction"] is not None
                                          and e["meter"]["power_w"] > 7000, timeout=30)
                    assert s["evses"][0]["connectors"] == {"1": "Occupied"}
                    assert s["evses"][0]["transaction"]["id_token"] == "04A2B3C4D5E6F7"
                    assert summary(s).startswith("CSMS connected; EVSE 1 Occupied 7.2 kW")
                    proc.terminate()
                    with trio.fail_after(15):
                        assert await proc.wait() == 0
                finally:
                    if proc.returncode is None:
                        proc.kill()
                nursery.cancel_scope.cancel()
    finally:
        rig.kill()
        rig.wait(timeout=10)


async def test_status_of_a_stopped_station_from_its_file(tmp_path):
    """Offline (nobody at the CSMS URL), a plug starts a transaction whose TransactionEvent stays
    queued; after the station stopped, `evse status --storage` shows it, read-only."""
    config = write_config(tmp_path, "ws://127.0.0.1:9/ocpp",
                          extra='[device_model]\n"TxCtrlr.TxStartPoint" = "EVConnected"\n'
                                '"TxCtrlr.TxBeforeAcceptedEnabled" = true\n'     # never accepted: offline
                                '"SecurityCtrlr.BasicAuthPassword" = "Stored-Password-0123"')
    with trio.fail_after(40):
        proc = await trio.lowlevel.open_process(evse("run", "--config", str(config)),
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not (tmp_path / "sim.sock").exists():
                await trio.sleep(0.05)
            await sim(tmp_path, "plug", "--evse", "1")
            await wait_status(config, lambda s: s["evses"][0]["transaction"] is not None
                              and s["queued"] >= 1)
            proc.terminate()
            assert await proc.wait() == 0
        finally:
            if proc.returncode is None:
                proc.kill()
    db = tmp_path / "station.db"
    before = db.read_bytes()
    names = sorted(p.name for p in tmp_path.iterdir())
    rc, out, err = await status("--storage", str(db), "--json")
    assert rc == 0, err
    stored = json.loads(out)
    assert stored["stopped_cleanly"] is True
    assert "TransactionEvent" in [q["action"] for q in stored["queued"]]
    assert stored["settings"]["TxCtrlr/TxStartPoint"] == "EVConnected"
    assert stored["settings"]["SecurityCtrlr/BasicAuthPassword"] == "***"
    assert "Stored-Password-0123" not in out
    rc, text, _ = await status("--storage", str(db))
    assert rc == 0 and "queued for the CSMS: " in text and "TransactionEvent" in text
    assert db.read_bytes() == before                       # read-only
    assert sorted(p.name for p in tmp_path.iterdir()) == names     # no -shm or -wal made
    rc, _, err = await status("--storage", str(tmp_path / "nope.db"))
    assert rc == 1 and len(err.splitlines()) == 1


def test_summary_line():
    s = {"csms": {"link": "down", "detail": "connection refused"}, "queued": 3, "storage": {"failing": None},
         "evses": [{"id": 1, "connectors": {"1": "Faulted"}, "faults": ["GroundFault"], "transaction": None,
                    "meter": None},
                   {"id": 2, "connectors": {"1": "Occupied"}, "faults": [], "transaction": {"id": "t"},
                    "meter": {"power_w": 11040.0}}]}
    assert summary(s) == ("CSMS link down (connection refused); EVSE 1 Faulted (GroundFault); "
                          "EVSE 2 Occupied 11.0 kW; 3 queued")


def test_unknown_status_group_stops_start_up_with_one_line(tmp_path):
    config = write_config(tmp_path, "ws://127.0.0.1:9/ocpp")
    config.write_text(config.read_text().replace('socket = "status.sock"',
                                                 'socket = "status.sock"\ngroup = "no-such-group-x"'))
    r = subprocess.run(evse("run", "--config", str(config)), capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [f"evse: {config}: status.group: no such group 'no-such-group-x'"]
