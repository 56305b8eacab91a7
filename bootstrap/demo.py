"""`evse demo` (what `make run` shows): the development CSMS and a simulated
station on loopback, with a readable log of every OCPP message both ways.

The dev CSMS is a development tool and test double, not a product.
"""
from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from pathlib import Path

import trio

from bootstrap.config import parse_config
from bootstrap.dev_csms import DevCsms, format_report_table
from bootstrap.sim_cli import send_control_command

STATION_ID = "CS-DEMO-01"


def _say(text: str) -> None:
    print(f"{datetime.now():%H:%M:%S.%f}"[:-3] + "  " + text, flush=True)


async def run_demo(args: argparse.Namespace) -> None:
    from bootstrap.cli import _run_station  # noqa: PLC0415  (cli imports this module lazily too)

    # The dev CSMS prints every frame both ways; the station's own frame log would repeat them.
    logging.getLogger("evse.ocpp").setLevel(logging.WARNING)
    workdir = Path(args.dir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # A fresh demo every time: only the demo's own files go, whatever folder --dir names.
    for name in ("station.db", "station.db-wal", "station.db-shm", "sim.sock"):
        (workdir / name).unlink(missing_ok=True)
    csms = DevCsms(port=args.port, heartbeat_interval=args.heartbeat_interval, log=_say)
    async with trio.open_nursery() as nursery:
        await nursery.start(csms.serve)
        config = parse_config(
            f"""
            [station]
            id = "{STATION_ID}"
            [csms]
            url = "{csms.url}"
            security_profile = 1
            basic_auth_password = "demo-password-0123"
            [storage]
            path = "station.db"
            [hardware]
            adapter = "sim"
            control_socket = "sim.sock"
            [device_model]
            "OCPPCommCtrlr.RetryBackOffWaitMinimum" = 1
            "SampledDataCtrlr.TxUpdatedInterval" = 5
            [log]
            level = "INFO"
            """,
            base_dir=workdir,
        )
        sock = workdir / "sim.sock"
        _say(f"station {STATION_ID}: database {workdir / 'station.db'}, control socket {sock}")
        _say(f"drive it from another terminal, e.g.: .venv/bin/evse sim --socket {sock} plug --evse 1")
        nursery.start_soon(_run_station, config)
        if not args.no_script:
            await _script(csms, str(sock))
        _say("demo running until Ctrl-C")


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
