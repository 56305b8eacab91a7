"""A late card answer charges nobody (PICS C-06.2), end to end: the station as a real process
(`python -m bootstrap.cli run`, sim hardware, SQLite file) against a dev CSMS that holds its
AuthorizeResponse until the test releases it. Plug, card, unplug, then the Accepted arrives;
the next EV plugs in without a card and must not charge on the old driver's card."""
from __future__ import annotations

import subprocess
import sys

import trio

from devtools.dev_csms import DevCsms
from devtools.sim_cli import send_control_command
from tests.bootstrap.test_cli import SID, evse
from tests.integration.test_systemd_notify_e2e import write_config

CARD = "LATECARD01"


async def test_an_authorize_answer_after_the_ev_left_authorizes_nobody(tmp_path):
    with trio.fail_after(40):
        csms = DevCsms(heartbeat_interval=300)
        release = trio.Event()
        asked = trio.Event()

        async def late_authorize(station_id: str, payload: dict) -> dict:
            asked.set()
            await release.wait()
            return {"idTokenInfo": {"status": "Accepted"}}

        csms.handlers["Authorize"] = late_authorize
        sock = str(tmp_path / "sim.sock")

        async def sim(cmd: str, **args) -> dict:
            with trio.fail_after(5):
                reply = await send_control_command(sock, {"cmd": cmd, **args})
            assert reply["ok"], reply
            return reply

        async with trio.open_nursery() as nursery:
            await nursery.start(csms.serve)
            log = open(tmp_path / "station.log", "wb")
            proc = await trio.lowlevel.open_process(evse("run", "--config", str(write_config(tmp_path, csms.url))),
                                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            try:
                await csms.wait_for("StatusNotification", station_id=SID, timeout=15)
                await sim("plug", evse=1, connector=1)
                await sim("token", id_token=CARD, type="ISO14443", evse=1)
                with trio.fail_after(5):
                    await asked.wait()
                await sim("unplug", evse=1, connector=1)
                await csms.wait_for("StatusNotification", where=lambda p: p["connectorStatus"] == "Available")
                mark = len(csms.received)
                release.set()                                   # the Accepted arrives, late
                await sim("plug", evse=1, connector=1)          # the next driver, no card
                await sim("ev_charge", evse=1, power_w=11000)
                await csms.wait_for("StatusNotification", where=lambda p: p["connectorStatus"] == "Occupied",
                                    after=mark)
                await trio.sleep(1.0)                           # time for a wrongly started session to show
                events = [f[3] for sid, f in csms.received[mark:] if f[0] == 2 and f[2] == "TransactionEvent"]
                assert events == [], f"a transaction started on the old driver's card: {events}"
                [evse1] = [e for e in (await sim("state"))["evses"] if e["evse"] == 1]
                assert evse1["authorized"] is None and evse1["transaction_id"] is None, evse1
                assert not evse1["power_path_closed"] and evse1["power_w"] == 0, evse1
                # the driver who is there now presents the card: that starts the session
                csms.handlers["Authorize"] = csms.default_handlers()["Authorize"]
                await sim("token", id_token=CARD, type="ISO14443", evse=1)
                started = await csms.wait_for("TransactionEvent", where=lambda p: p["eventType"] == "Started",
                                              after=mark)
                assert started["idToken"]["idToken"] == CARD
            except BaseException:
                print("station log:\n" + (tmp_path / "station.log").read_text()[-4000:], file=sys.stderr)
                raise
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                log.close()
            nursery.cancel_scope.cancel()
