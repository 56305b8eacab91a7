"""Group commit (docs/durability.md): a SIGKILL between the delivery of a TransactionEvent and
the deferred delete of its queue record repeats the event after the restart, never loses it.

The REAL `evse run` process (sim hardware, SQLite file in tmp_path) against a DevCsms in the
test. `storage.commit_delay` is 30 s, so the kill surely lands inside the window: the CSMS
answers a session's Started and (after the unplug) its Ended, then asks GetTransactionStatus
(its answer comes after the station has processed that CALLRESULT: one connection, frames in
order, one event loop) and the station says nothing is queued any more; SIGKILL at once. The
database must still hold the Ended (its delete was deferred, and no durable write came after
it to take it along), and the next life must send it again, the same event; after a clean
stop the queue is empty.
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import trio

from devtools.dev_csms import DevCsms
from devtools.sim_cli import send_control_command
from tests.chaos.harness import (
    SID, TOKENS, check_deliveries, config_text, read_database, start_station, transaction_events, tx_id,
    wait_booted, wait_queue_empty,
)

TIME_LIMIT = 60.0
TIMEOUT = 10.0
QUIET = {"SampledDataCtrlr.TxUpdatedInterval": 0}   # no Updated events: no durable write after the Started


def _accept(station_id: str, payload: dict) -> dict:
    return {"idTokenInfo": {"status": "Accepted"}} if "idToken" in payload else {}


async def test_a_kill_between_delivery_and_the_deferred_delete_repeats_the_event(tmp_path: Path):
    csms = DevCsms(heartbeat_interval=60, log=lambda line: None)
    csms.handlers["TransactionEvent"] = _accept
    config = tmp_path / "station.toml"
    sock = str(tmp_path / "sim.sock")
    with open(tmp_path / "station.log", "ab") as log, trio.fail_after(TIME_LIMIT):
        async with trio.open_nursery() as nursery:
            await nursery.start(csms.serve)
            config.write_text(config_text(csms.url, QUIET).replace('path = "station.db"\n',
                                                            'path = "station.db"\ncommit_delay = 30\n'))
            first = await start_station(config, log)
            try:
                await wait_booted(csms, 0, TIMEOUT)
                assert (await send_control_command(sock, {"cmd": "plug", "evse": 1}))["ok"]
                assert (await send_control_command(sock, {"cmd": "token", "evse": 1, "id_token": TOKENS[1]}))["ok"]
                started = await csms.wait_for("TransactionEvent", station_id=SID, timeout=TIMEOUT,
                                              where=lambda p: p["eventType"] == "Started")
                assert (await send_control_command(sock, {"cmd": "unplug", "evse": 1}))["ok"]
                ended = await csms.wait_for("TransactionEvent", station_id=SID, timeout=TIMEOUT,
                                            where=lambda p: p["eventType"] == "Ended")
                status = await csms.call(SID, "GetTransactionStatus", {"transactionId": tx_id(started)})
                assert status == {"messagesInQueue": False, "ongoingIndicator": False}   # CALLRESULT processed
                os.kill(first.pid, signal.SIGKILL)
                await first.wait()
            finally:
                if first.returncode is None:
                    first.kill()

            queue, _ = read_database(tmp_path / "station.db")
            stored = [json.loads(v)["p"] for v in queue.values()]
            assert stored == [ended], f"after the kill the queue holds {stored}, not the delivered Ended"

            mark = len(csms.received)
            second = await start_station(config, log)
            try:
                await wait_booted(csms, mark, TIMEOUT)
                assert await wait_queue_empty(csms, TIMEOUT)
                second.send_signal(signal.SIGTERM)
                with trio.fail_after(TIMEOUT):
                    await second.wait()
            finally:
                if second.returncode is None:
                    second.kill()
            nursery.cancel_scope.cancel()

    assert transaction_events(csms.received, mark) == [ended]     # sent again, the same event
    problems: list[str] = []
    deliveries = check_deliveries(csms.received, problems)
    assert not problems and deliveries.repeats == 1
    assert read_database(tmp_path / "station.db")[0] == {}
