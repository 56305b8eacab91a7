"""`evse demo` (what `make run` shows): the development CSMS and a simulated
station on loopback, with a readable log of every OCPP message both ways.

`evse demo --hardware openevse-rev2` (or `openevse-rev1`) plays the same kind of session
on the real adapters instead: the station is composed for the board revision, and its
devices are emulators on pseudo-terminals (devtools.emulators.rig), all in one process.
It ends by itself after the session.

After the charging session the simulated station gets a signed firmware update: the demo
serves a sim image over HTTP on loopback (devtools/file_servers.py), installs a development
ManufacturerRootCertificate in the station's certificate store (devtools/firmware_signing.py)
and the dev CSMS sends UpdateFirmware; the FirmwareStatusNotifications, the reboot and the new
BootNotification's firmwareVersion show the whole L01 sequence.

The dev CSMS is a development tool and test double, not a product.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from bootstrap.process import run_station, run_until_signal, setup_logging
from bootstrap.config import parse_config
from devtools.dev_csms import DevCsms, format_report_table
from devtools.sim_cli import send_control_command

if TYPE_CHECKING:
    from devtools.emulators.openevse import OpenEvseEmulator
    from devtools.emulators.rig import HardwareRig

STATION_ID = "CS-DEMO-01"


def _say(text: str) -> None:
    print(f"{datetime.now():%H:%M:%S.%f}"[:-3] + "  " + text, flush=True)


def _fresh_workdir(folder: str) -> Path:
    """The demo's folder, without the files of an earlier demo (only those go, whatever
    folder --dir names)."""
    workdir = Path(folder).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("station.db", "station.db-wal", "station.db-shm", "sim.sock"):
        (workdir / name).unlink(missing_ok=True)
    for name in ("firmware", "certs", "served"):
        shutil.rmtree(workdir / name, ignore_errors=True)
    return workdir


def main(args: argparse.Namespace) -> int:
    """`evse demo` (the one entry bootstrap/cli.py imports, when the command is run): play
    the demo until it ends or SIGTERM/SIGINT arrives."""
    setup_logging("INFO", frames="full")
    trio.run(run_until_signal, run_demo, args)
    return 0


async def run_demo(args: argparse.Namespace) -> None:
    # The dev CSMS prints every frame both ways; the station's own frame log would repeat them.
    logging.getLogger("evse.ocpp").setLevel(logging.WARNING)
    if getattr(args, "hardware", None):
        await run_hardware_demo(args)
        return
    workdir = _fresh_workdir(args.dir)
    csms = DevCsms(port=args.port, heartbeat_interval=args.heartbeat_interval, log=_say)
    async with trio.open_nursery() as nursery:
        await nursery.start(csms.serve)
        config = _demo_config(csms.url, workdir, '[hardware]\nadapter = "sim"\ncontrol_socket = "sim.sock"\n')
        sock = workdir / "sim.sock"
        _say(f"station {STATION_ID}: database {workdir / 'station.db'}, control socket {sock}")
        _say(f"drive it from another terminal, e.g.: .venv/bin/evse sim --socket {sock} plug --evse 1")
        nursery.start_soon(run_station, config)
        if not args.no_script:
            await _script(csms, str(sock))
            await _firmware_update(csms, workdir)
        _say("demo running until Ctrl-C")


def _demo_config(csms_url: str, workdir, hardware_toml: str):
    """The demo station's configuration, driving the hardware of `hardware_toml`."""
    return parse_config(f"""
[station]
id = "{STATION_ID}"
evse_connectors = [1]
[csms]
url = "{csms_url}"
security_profile = 1
basic_auth_password = "demo-password-0123"
[storage]
path = "station.db"
[device_model]
"OCPPCommCtrlr.RetryBackOffWaitMinimum" = 1
"SampledDataCtrlr.TxUpdatedInterval" = 5
[log]
level = "INFO"
{hardware_toml}""", base_dir=workdir)


async def _script(csms: DevCsms, sock: str) -> None:
    await csms.wait_connected(STATION_ID, timeout=30)
    await csms.wait_for("StatusNotification", station_id=STATION_ID, timeout=30)
    await trio.sleep(2)
    result = await csms.call(STATION_ID, "GetVariables", {"getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
        {"component": {"name": "ClockCtrlr"}, "variable": {"name": "DateTime"}},
    ]})
    for r in result.get("getVariableResult", []):
        _say(f"  {r['component']['name']}.{r['variable']['name']} = {r.get('attributeValue')!r} ({r['attributeStatus']})")
    await _full_inventory(csms)
    await trio.sleep(2)
    # A whole charging session: plug in, swipe a card, charge at 11 kW with periodic meter
    # values (SampledDataCtrlr.TxUpdatedInterval), unplug.
    for cmd, pause in (({"cmd": "plug", "evse": 1, "connector": 1}, 2),
                       ({"cmd": "token", "id_token": "04A2B3C4D5E6F7", "type": "ISO14443"}, 2),
                       ({"cmd": "ev_charge", "evse": 1, "power_w": 11000}, 12),
                       ({"cmd": "unplug", "evse": 1, "connector": 1}, 2)):
        _say(f"sim: {cmd}")
        reply = await send_control_command(sock, cmd)
        if not reply.get("ok"):
            print(f"demo: control socket said {reply}", file=sys.stderr)
        await trio.sleep(pause)
    state = await send_control_command(sock, {"cmd": "state"})
    _say(f"session over: {state['evses'][0]['energy_wh']:.1f} Wh delivered")


async def _firmware_update(csms: DevCsms, workdir: Path) -> None:
    """L01: the dev CSMS serves a signed sim image over HTTP and sends UpdateFirmware; the
    station downloads, verifies, installs, reboots into it and reports Installed."""
    from devtools.file_servers import HttpFileServer
    from devtools.firmware_signing import DevManufacturer, sim_image, update_firmware

    served = workdir / "served"
    served.mkdir(exist_ok=True)
    maker = DevManufacturer.create()
    maker.install_root(workdir)
    data = sim_image(served / "evse-demo-2.0.0.img", "2.0.0-demo")
    with HttpFileServer(served) as http:
        _say(f"firmware: serving {http.url('evse-demo-2.0.0.img')} ({len(data)} bytes, signed)")
        mark = len(csms.received)
        result = await csms.call(STATION_ID, "UpdateFirmware", update_firmware(
            1, http.url("evse-demo-2.0.0.img"), maker, maker.sign(data)))
        _say(f"UpdateFirmware: {result.get('status')}")
        try:
            await csms.wait_for("FirmwareStatusNotification", station_id=STATION_ID, after=mark, timeout=60,
                                where=lambda p: p.get("status") in ("Installed", "InstallationFailed",
                                                                    "InstallVerificationFailed", "DownloadFailed",
                                                                    "InvalidSignature"))
        except trio.TooSlowError:
            _say("firmware update: no final status within 60 s")
            return
    boots = [f[3] for sid, f in csms.received[mark:] if sid == STATION_ID and f[0] == 2 and f[2] == "BootNotification"]
    version = boots[-1]["chargingStation"].get("firmwareVersion") if boots else "?"
    _say(f"firmware update over: the station runs firmware {version}")


async def _full_inventory(csms: DevCsms) -> None:
    """GetBaseReport(FullInventory), then the NotifyReport pages printed as one table."""
    start = len(csms.received)
    reply = await csms.call(STATION_ID, "GetBaseReport", {"requestId": 1, "reportBase": "FullInventory"})
    _say(f"GetBaseReport FullInventory: {reply['status']}")
    rows: list[dict] = []
    seq = 0
    while True:
        page = await csms.wait_for("NotifyReport", station_id=STATION_ID, after=start,
                                   where=lambda p, s=seq: p["requestId"] == 1 and p["seqNo"] == s)
        rows += page.get("reportData", [])
        if not page.get("tbc"):
            break
        seq += 1
    _say(f"FullInventory: {len(rows)} variables in {seq + 1} NotifyReport messages")
    print(format_report_table(rows), flush=True)


# --- on emulated hardware ---------------------------------------------------------------------
DEMO_CARD = bytes.fromhex("04A2B3C4D5E6F7")      # a double-size NFCID1 on the PN532
#: RAPI commands not worth a line: the state poll, the heartbeat, the ammeter's readings.
_ROUTINE_RAPI = frozenset({"GS", "SY", "GG", "GU"})


async def run_hardware_demo(args: argparse.Namespace) -> None:
    """The dev CSMS, the emulated board of `args.hardware` and the station composed for it
    (real adapters on ptys), in one process; plays a session unless --no-script."""
    from bootstrap.compose import compose  # noqa: PLC0415  (heavy imports: only when asked for)
    from bootstrap.runtime import StationRuntime  # noqa: PLC0415
    from devtools.emulators.rig import open_hardware_rig  # noqa: PLC0415

    workdir = _fresh_workdir(args.dir)
    csms = DevCsms(port=args.port, heartbeat_interval=args.heartbeat_interval, log=_say)
    async with open_hardware_rig(args.hardware) as rig, trio.open_nursery() as nursery:
        await nursery.start(csms.serve)
        config = _demo_config(csms.url, workdir, rig.hardware_toml())
        ports = ", ".join(f"{name} {table['port']}" for name, table in rig.hardware.items()
                          if isinstance(table, dict) and "port" in table)
        _say(f"station {STATION_ID} on an emulated {args.hardware} board: {ports}"
             + ("" if rig.reader_port else ", PN532 on an I2C bus double"))
        runtime: StationRuntime | None = None
        deployment = compose(config, lambda: runtime.snapshot() if runtime else {}, rig.edge)
        runtime = StationRuntime(config, deployment)
        station_scope, station_stopped = trio.CancelScope(), trio.Event()

        async def run_composed_station() -> None:
            with station_scope:
                await runtime.run()
            station_stopped.set()

        nursery.start_soon(_print_rapi, rig.controller)
        nursery.start_soon(run_composed_station)
        if args.no_script:
            _say("demo running until Ctrl-C")
            await trio.sleep_forever()
        await _hardware_script(csms, rig)
        station_scope.cancel()            # the station says goodbye before the CSMS goes
        with trio.move_on_after(5):
            await station_stopped.wait()
        nursery.cancel_scope.cancel()


async def _print_rapi(controller: OpenEvseEmulator) -> None:
    """One line per RAPI command the emulated controller receives (routine polls left out);
    the emulator records them, this looks every 20 ms."""
    index = 0
    while True:
        for command in controller.commands[index:]:
            if command.split(" ", 1)[0] not in _ROUTINE_RAPI:
                _say(f"OpenEVSE <- ${command}")
        index = len(controller.commands)
        await trio.sleep(0.02)


async def _hardware_script(csms: DevCsms, rig: HardwareRig) -> None:
    """Plug in, a card on the PN532 (rev1: a remote start), charge with meter values, unplug."""
    ctl, meter = rig.controller, rig.meter
    await csms.wait_connected(STATION_ID, timeout=30)
    await csms.wait_for("StatusNotification", station_id=STATION_ID, timeout=30)
    await trio.sleep(2)
    _say("EV: plugged in (pilot B)")
    ctl.plug()
    await trio.sleep(2)
    if rig.reader_port is not None:
        _say(f"PN532: card {DEMO_CARD.hex().upper()} presented")
        rig.reader.present_card(DEMO_CARD)
    else:
        _say("CSMS: RequestStartTransaction (the rev1 card reader is on I2C; a remote start here)")
        reply = await csms.call(STATION_ID, "RequestStartTransaction", {
            "evseId": 1, "remoteStartId": 1, "idToken": {"idToken": "DEMO-REMOTE", "type": "Central"}})
        _say(f"RequestStartTransaction: {reply['status']}")
    await trio.sleep(2)
    _say("EV: asks for energy (pilot C)" + (", draws 11 kW on the SDM630" if meter else ""))
    ctl.request_energy()
    if meter is not None:
        meter.set_load(11000)
    await trio.sleep(12)
    if meter is not None:
        meter.set_load(0)
    _say("EV: unplugged (pilot A)")
    ctl.unplug()
    rig.reader.remove_card()
    ended = await csms.wait_for("TransactionEvent", station_id=STATION_ID, timeout=10,
                                where=lambda p: p["eventType"] == "Ended")
    energy = [float(sv["value"]) for mv in ended.get("meterValue", []) for sv in mv["sampledValue"]
              if sv.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register"]
    await trio.sleep(2)
    register = f"{energy[-1]:.1f} Wh on the register" if energy else "no meter value"
    _say(f"session over ({ended['transactionInfo'].get('stoppedReason')}): {register}")
