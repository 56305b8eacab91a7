"""adapters.sim_hardware (the simulated charger) and devtools.sim_cli (its client)."""
from __future__ import annotations

import argparse
import json
import math
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from adapters.sim_hardware import MAX_LINE, SimHardware
from devtools.sim_cli import (
    add_parser,
    build_command,
    control_command,
    run_sim_command,
    send_control_command,
)
from ports.hardware import (
    CablePlugged,
    CableUnplugged,
    EnergyPaused,
    EnergyRequested,
    ExternalLimitChanged,
    FaultCleared,
    FaultRaised,
    MeterReading,
    OccupancyChanged,
    TokenPresented,
)

TIMEOUT = 5


def empty_view() -> dict:
    return {"csms_connected": False, "evses": {}}


@dataclass
class Sim:
    hw: SimHardware
    events: trio.MemoryReceiveChannel
    path: str

    async def cmd(self, **command: Any) -> dict:
        return await send_control_command(self.path, command)

    async def raw(self, data: bytes) -> list[dict]:
        """Send raw bytes on a fresh connection, half-close, return every reply line."""
        stream = await trio.open_unix_socket(self.path)
        async with stream:
            await stream.send_all(data)
            await stream.send_eof()
            buf = b""
            while chunk := await stream.receive_some(65536):
                buf += chunk
        return [json.loads(line) for line in buf.splitlines()]

    def no_event(self) -> None:
        with pytest.raises(trio.WouldBlock):
            self.events.receive_nowait()

    def event(self) -> Any:
        return self.events.receive_nowait()


@asynccontextmanager
async def running_sim(tmp_path: Path, evse_connectors: list[int] | None = None,
                      view: Callable[[], dict] = empty_view) -> AsyncIterator[Sim]:
    path = str(tmp_path / "sim.sock")
    send, recv = trio.open_memory_channel(1000)
    hw = SimHardware(evse_connectors or [2, 1], path, view)
    async with trio.open_nursery() as nursery:
        await nursery.start(hw.run, send)
        yield Sim(hw, recv, path)
        nursery.cancel_scope.cancel()


# --- commands and their events ----------------------------------------------------------------
async def test_every_command_emits_its_event(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            cases: list[tuple[dict, Any]] = [
                ({"cmd": "plug", "evse": 1}, CablePlugged(1, 1)),
                ({"cmd": "ev_charge", "evse": 1, "power_w": 7400}, EnergyRequested(1, 7400.0)),
                ({"cmd": "ev_pause", "evse": 1}, EnergyPaused(1)),
                ({"cmd": "unplug", "evse": 1}, CableUnplugged(1, 1)),
                ({"cmd": "plug", "evse": 1, "connector": 2}, CablePlugged(1, 2)),
                ({"cmd": "unplug", "evse": 1, "connector": 2}, CableUnplugged(1, 2)),
                ({"cmd": "token", "id_token": "04A2B3C4"}, TokenPresented("04A2B3C4")),
                ({"cmd": "token", "id_token": "EMP1", "type": "eMAID", "evse": 2},
                 TokenPresented("EMP1", "eMAID", 2)),
                ({"cmd": "token", "id_token": "X", "evse": None}, TokenPresented("X")),
                ({"cmd": "occupancy", "evse": 2, "occupied": True}, OccupancyChanged(2, True)),
                ({"cmd": "occupancy", "evse": 2, "occupied": False}, OccupancyChanged(2, False)),
                ({"cmd": "fault", "evse": 2, "fault": "GroundFailure"},
                 FaultRaised(2, "GroundFailure")),
                ({"cmd": "clear_fault", "evse": 2}, FaultCleared(2)),
                ({"cmd": "limit", "evse": 1, "amps": 16}, ExternalLimitChanged(1, amps=16.0)),
                ({"cmd": "limit", "evse": 0, "watts": 11000.5, "source": "SO"},
                 ExternalLimitChanged(0, watts=11000.5, source="SO")),
                ({"cmd": "limit", "evse": 1, "amps": None, "source": "CSO"}, ExternalLimitChanged(1, source="CSO")),
                ({"cmd": "limit", "evse": 2}, ExternalLimitChanged(2)),
            ]
            for command, expected in cases:
                reply = await sim.cmd(**command)
                assert reply["ok"] is True, (command, reply)
                assert sim.event() == expected
                assert reply["event"] == type(expected).__name__
                sim.no_event()


async def test_command_in_process_is_the_control_socket_request(tmp_path: Path) -> None:
    """SimHardware.command takes a request as the control socket does (same validation,
    same reply, one event per accepted command, none for a refused one)."""
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            assert await sim.hw.command({"cmd": "plug", "evse": 2}) == {
                "ok": True, "event": "CablePlugged", "fields": {"evse": 2, "connector": 1}}
            assert sim.event() == CablePlugged(2, 1)
            for request in ({"cmd": "plug", "evse": 2}, {"cmd": "plug", "evse": 3}, {"cmd": "plug"},
                            {"cmd": "ev_charge", "evse": 2, "power_w": "lots"}, {"cmd": "fly"}):
                reply = await sim.hw.command(request)
                assert reply == await sim.cmd(**request), request
                assert reply["ok"] is False, request
                sim.no_event()
            state = await sim.hw.command({"cmd": "state"})
            assert state == await sim.cmd(cmd="state")
            assert state["evses"][1]["connectors"][0]["plugged"] is True
            with pytest.raises(ValueError):
                await sim.hw.command({"cmd": "ev_charge", "evse": 2, "power_w": math.nan})
            sim.no_event()


async def test_without_a_control_socket_commands_come_in_process_only(tmp_path: Path) -> None:
    """control_socket None: no socket file, no listener; command() drives the simulator and
    run() still brings a (re)started station up to date first."""
    send, recv = trio.open_memory_channel(10)
    hw = SimHardware([1], None, empty_view)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(hw.run, send)
            assert (await hw.command({"cmd": "plug", "evse": 1}))["ok"] is True
            assert recv.receive_nowait() == CablePlugged(1, 1)
            nursery.cancel_scope.cancel()
        async with trio.open_nursery() as nursery:
            await nursery.start(hw.run, send)
            assert recv.receive_nowait() == CablePlugged(1, 1)      # still plugged after a restart
            nursery.cancel_scope.cancel()
    assert list(tmp_path.iterdir()) == []


async def test_reply_shape_of_an_event_command(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            assert await sim.cmd(cmd="plug", evse=2) == {
                "ok": True, "event": "CablePlugged", "fields": {"evse": 2, "connector": 1}}
            assert await sim.cmd(cmd="token", id_token="AB", type="Local") == {
                "ok": True, "event": "TokenPresented",
                "fields": {"id_token": "AB", "type": "Local", "evse": None}}


async def test_state_tracks_the_hardware(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            def evse1(state: dict) -> dict:
                return state["evses"][0]
            s = await sim.cmd(cmd="state")
            assert evse1(s)["ev_state"] == "A"
            await sim.cmd(cmd="plug", evse=1, connector=2)
            s = await sim.cmd(cmd="state")
            assert evse1(s)["ev_state"] == "B"
            assert [c["plugged"] for c in evse1(s)["connectors"]] == [False, True]
            await sim.cmd(cmd="ev_charge", evse=1, power_w=3000)
            s = await sim.cmd(cmd="state")
            assert evse1(s)["ev_state"] == "C"
            assert evse1(s)["power_w"] == 0.0          # power path still open
            assert evse1(s)["requested_power_w"] == 3000.0
            await sim.hw.set_power_path(1, True)
            s = await sim.cmd(cmd="state")
            assert evse1(s)["power_path_closed"] is True
            assert evse1(s)["power_w"] == 3000.0
            await sim.cmd(cmd="fault", evse=1, fault="OverCurrent")
            s = await sim.cmd(cmd="state")
            assert evse1(s)["fault"] == "OverCurrent" and evse1(s)["power_w"] == 0.0
            await sim.cmd(cmd="clear_fault", evse=1)
            await sim.cmd(cmd="occupancy", evse=1, occupied=True)
            await sim.hw.set_offered_current(1, 4)
            s = await sim.cmd(cmd="state")
            assert evse1(s)["occupied"] is True
            assert evse1(s)["offered_current_a"] == 4.0
            assert evse1(s)["power_w"] == pytest.approx(4 * 3 * 230)
            await sim.cmd(cmd="unplug", evse=1, connector=2)   # the EV leaves: no more draw
            s = await sim.cmd(cmd="state")
            assert evse1(s)["ev_state"] == "A" and evse1(s)["power_w"] == 0.0
            assert evse1(s)["requested_power_w"] is None


async def test_state_merges_the_station_view(tmp_path: Path) -> None:
    def view() -> dict:
        return {"csms_connected": True,
                "evses": {1: {"transaction_id": "tx-1",
                              "connectors": {1: "Occupied", 2: "Unavailable"}}}}
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path, view=view) as sim:
            await sim.cmd(cmd="plug", evse=1)
            assert sim.event() == CablePlugged(1, 1)
            state = await sim.cmd(cmd="state")
    assert state == {
        "ok": True,
        "csms_connected": True,
        "evses": [
            {"evse": 1,
             "connectors": [{"connector": 1, "status": "Occupied", "plugged": True},
                            {"connector": 2, "status": "Unavailable", "plugged": False}],
             "power_path_closed": False, "ev_state": "B", "power_w": 0.0, "energy_wh": 0.0,
             "transaction_id": "tx-1", "fault": None, "occupied": False,
             "offered_current_a": None, "requested_power_w": None},
            {"evse": 2,
             "connectors": [{"connector": 1, "status": None, "plugged": False}],
             "power_path_closed": False, "ev_state": "A", "power_w": 0.0, "energy_wh": 0.0,
             "transaction_id": None, "fault": None, "occupied": False,
             "offered_current_a": None, "requested_power_w": None},
        ],
    }
    sim.no_event()


async def test_state_accepts_string_keys_in_the_view(tmp_path: Path) -> None:
    def view() -> dict:
        return {"csms_connected": False,
                "evses": {"1": {"transaction_id": None, "connectors": {"1": "Available"}}}}
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path, [1], view=view) as sim:
            state = await sim.cmd(cmd="state")
    assert state["evses"][0]["connectors"][0]["status"] == "Available"


async def test_state_when_the_station_view_fails(tmp_path: Path) -> None:
    def view() -> dict:
        raise RuntimeError("boom")
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path, view=view) as sim:
            reply = await sim.cmd(cmd="state")
            assert reply["ok"] is False and reply["error"].startswith("state: station view")
            assert (await sim.cmd(cmd="plug", evse=1))["ok"] is True   # still serving


# --- validation: error reply, nothing else changes --------------------------------------------
BAD_COMMANDS: list[tuple[dict, str]] = [
    ({}, "cmd: missing"),
    ({"cmd": 5}, "cmd: expected a string, got 5"),
    ({"cmd": "fly"}, 'cmd: unknown command "fly"'),
    ({"cmd": "plug"}, "evse: missing"),
    ({"cmd": "plug", "evse": 1, "colour": "red"}, "colour: unknown field for plug"),
    ({"cmd": "plug", "evse": True}, "evse: expected an integer, got true"),
    ({"cmd": "plug", "evse": 1.0}, "evse: expected an integer, got 1.0"),
    ({"cmd": "plug", "evse": "1"}, 'evse: expected an integer, got "1"'),
    ({"cmd": "plug", "evse": None}, "evse: expected an integer, got null"),
    ({"cmd": "plug", "evse": 0}, "evse: expected 1..2, got 0"),
    ({"cmd": "plug", "evse": 3}, "evse: expected 1..2, got 3"),
    ({"cmd": "plug", "evse": 2, "connector": 2}, "connector: evse 2 has connectors 1..1, got 2"),
    ({"cmd": "plug", "evse": 1, "connector": False}, "connector: expected an integer, got false"),
    ({"cmd": "unplug", "evse": 2}, "connector: evse 2 connector 1 is not plugged"),
    ({"cmd": "unplug", "evse": 1, "connector": 0}, "connector: evse 1 has connectors 1..2"),
    ({"cmd": "ev_charge", "evse": 2, "power_w": 1000}, "evse: no EV plugged in on evse 2"),
    ({"cmd": "ev_charge", "evse": 1}, "power_w: missing"),
    ({"cmd": "ev_pause", "evse": 2}, "evse: no EV plugged in on evse 2"),
    ({"cmd": "token"}, "id_token: missing"),
    ({"cmd": "token", "id_token": ""}, "id_token: expected 1..36 characters, got 0"),
    ({"cmd": "token", "id_token": "x" * 37}, "id_token: expected 1..36 characters, got 37"),
    ({"cmd": "token", "id_token": 1234}, "id_token: expected a string, got 1234"),
    ({"cmd": "token", "id_token": "A", "type": "Card"}, "type: expected one of Central, eMAID"),
    ({"cmd": "token", "id_token": "A", "type": "iso14443"}, "type: expected one of"),
    ({"cmd": "token", "id_token": "A", "evse": 5}, "evse: expected 1..2, got 5"),
    ({"cmd": "token", "id_token": "A", "connector": 1}, "connector: unknown field for token"),
    ({"cmd": "occupancy", "evse": 1}, "occupied: missing"),
    ({"cmd": "occupancy", "evse": 1, "occupied": 1}, "occupied: expected true or false, got 1"),
    ({"cmd": "occupancy", "evse": 1, "occupied": "yes"}, "occupied: expected true or false"),
    ({"cmd": "fault", "evse": 1}, "fault: missing"),
    ({"cmd": "fault", "evse": 1, "fault": ""}, "fault: expected 1..50 characters, got 0"),
    ({"cmd": "fault", "evse": 1, "fault": 7}, "fault: expected a string, got 7"),
    ({"cmd": "clear_fault", "evse": 1}, "evse: evse 1 has no fault"),
    ({"cmd": "state", "evse": 1}, "evse: unknown field for state"),
    ({"cmd": "limit"}, "evse: missing"),
    ({"cmd": "limit", "evse": 3, "amps": 6}, "evse: expected 0..2, got 3"),
    ({"cmd": "limit", "evse": -1, "amps": 6}, "evse: expected 0..2, got -1"),
    ({"cmd": "limit", "evse": "1", "amps": 6}, 'evse: expected an integer, got "1"'),
    ({"cmd": "limit", "evse": 1, "amps": "16"}, 'amps: expected a number or null, got "16"'),
    ({"cmd": "limit", "evse": 1, "amps": True}, "amps: expected a number or null, got true"),
    ({"cmd": "limit", "evse": 1, "amps": -1}, "amps: expected 0..1000, got -1"),
    ({"cmd": "limit", "evse": 1, "amps": 1e9}, "amps: expected 0..1000, got 1000000000.0"),
    ({"cmd": "limit", "evse": 1, "watts": 2e6}, "watts: expected 0..1000000, got 2000000.0"),
    ({"cmd": "limit", "evse": 1, "amps": 16, "watts": 3680}, "watts: give amps or watts, not both"),
    ({"cmd": "limit", "evse": 1, "amps": 16, "source": "Grid"}, "source: expected one of EMS, Other, SO, CSO"),
    ({"cmd": "limit", "evse": 1, "amps": 16, "source": None}, "source: expected one of EMS, Other, SO, CSO"),
    ({"cmd": "limit", "evse": 1, "volts": 230}, "volts: unknown field for limit"),
]


@pytest.mark.parametrize("command, error", BAD_COMMANDS)
async def test_bad_commands_are_refused_without_effect(
        tmp_path: Path, command: dict, error: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            before = await sim.cmd(cmd="state")
            reply = await sim.cmd(**command)
            assert reply["ok"] is False
            assert set(reply) == {"ok", "error"}
            assert reply["error"].startswith(error), reply["error"]
            assert "\n" not in reply["error"]
            sim.no_event()
            assert await sim.cmd(cmd="state") == before


BAD_POWER: list[tuple[Any, str]] = [
    (-1, "power_w: expected 0..1000000 W, got -1"),
    (-0.5, "power_w: expected 0..1000000 W, got -0.5"),
    (2_000_000, "power_w: expected 0..1000000 W"),
    ("11000", 'power_w: expected a number, got "11000"'),
    (True, "power_w: expected a number, got true"),
    (None, "power_w: expected a number, got null"),
]


@pytest.mark.parametrize("power, error", BAD_POWER)
async def test_bad_power_with_a_plugged_ev(tmp_path: Path, power: Any, error: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            await sim.cmd(cmd="plug", evse=1)
            sim.event()
            reply = await sim.cmd(cmd="ev_charge", evse=1, power_w=power)
            assert reply == {"ok": False, "error": reply["error"]}
            assert reply["error"].startswith(error), reply["error"]
            sim.no_event()
            assert (await sim.cmd(cmd="state"))["evses"][0]["ev_state"] == "B"


async def test_refusals_that_depend_on_state(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            await sim.cmd(cmd="plug", evse=1)
            sim.event()
            for command, error in [
                ({"cmd": "plug", "evse": 1}, "connector: evse 1 connector 1 is already plugged"),
                ({"cmd": "plug", "evse": 1, "connector": 2},
                 "connector: evse 1 already has connector 1 plugged (one EV per EVSE)"),
                ({"cmd": "unplug", "evse": 1, "connector": 2},
                 "connector: evse 1 connector 2 is not plugged"),
                ({"cmd": "ev_pause", "evse": 1},
                 "evse: the EV on evse 1 is not requesting energy"),
            ]:
                reply = await sim.cmd(**command)
                assert reply == {"ok": False, "error": error}
                sim.no_event()


@pytest.mark.parametrize("line, error", [
    (b"not json\n", "request: invalid JSON ("),
    (b"[1, 2]\n", "request: expected a JSON object, got an array"),
    (b'"plug"\n', "request: expected a JSON object, got a string"),
    (b"42\n", "request: expected a JSON object, got a number"),
    (b"null\n", "request: expected a JSON object, got null"),
    (b"\n", "request: empty line"),
    (b"  \r\n", "request: empty line"),
    (b'{"cmd": "plug", "evse": 1\n', "request: invalid JSON ("),
    (b'{"cmd": "plug", "evse": 1, "evse": 1}\n', "evse: given twice"),
    (b'{"cmd": "ev_charge", "evse": 1, "power_w": NaN}\n', "request: invalid JSON (NaN"),
    (b'{"cmd": "ev_charge", "evse": 1, "power_w": -Infinity}\n',
     "request: invalid JSON (-Infinity"),
    (b'{"cmd": "ev_charge", "evse": 1, "power_w": 1e999}\n',
     "power_w: expected 0..1000000 W, got Infinity"),
    (b'{"cmd": "plug", "evse": 1}\xff\n', "request: not UTF-8"),
    (b'{"cmd": "token", "id_token": "\xc3"}\n', "request: not UTF-8"),
    (b"[" * 50_000 + b"\n", "request: invalid JSON"),
])
async def test_bad_lines_are_refused_without_effect(
        tmp_path: Path, line: bytes, error: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            await sim.cmd(cmd="plug", evse=1)
            sim.event()
            before = await sim.cmd(cmd="state")
            replies = await sim.raw(line)
            assert len(replies) == 1
            assert replies[0]["ok"] is False
            assert replies[0]["error"].startswith(error), replies[0]["error"]
            sim.no_event()
            assert await sim.cmd(cmd="state") == before


async def test_crlf_lines_are_accepted(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            replies = await sim.raw(b'{"cmd": "plug", "evse": 1}\r\n')
            assert replies[0]["ok"] is True
            assert sim.event() == CablePlugged(1, 1)


async def test_pipelined_lines_get_one_reply_each_in_order(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            replies = await sim.raw(b'{"cmd": "plug", "evse": 1}\n'
                                    b'oops\n'
                                    b'{"cmd": "ev_charge", "evse": 1, "power_w": 1}\n'
                                    b'{"cmd": "state"}\n')
            assert [r["ok"] for r in replies] == [True, False, True, True]
            assert sim.event() == CablePlugged(1, 1)
            assert sim.event() == EnergyRequested(1, 1.0)
            sim.no_event()


async def test_over_long_line_is_refused_and_the_connection_goes_on(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            long_line = b'{"cmd": "token", "id_token": "' + b"x" * (MAX_LINE + 10) + b'"}\n'
            replies = await sim.raw(long_line + b'{"cmd": "plug", "evse": 2}\n')
            assert replies[0] == {"ok": False,
                                  "error": f"request: line longer than {MAX_LINE} bytes"}
            assert replies[1]["ok"] is True
            assert len(replies) == 2
            assert sim.event() == CablePlugged(2, 1)
            sim.no_event()


async def test_a_client_that_keeps_streaming_is_dropped(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            stream = await trio.open_unix_socket(sim.path)
            received = b""
            async with stream:
                with trio.move_on_after(3) as scope:
                    try:
                        chunk = b"x" * 65536
                        for _ in range(10_000):         # 640 MiB: far past the cap
                            await stream.send_all(chunk)
                    except trio.BrokenResourceError:
                        pass
                assert not scope.cancelled_caught, "the server kept reading"
                try:
                    while data := await stream.receive_some(65536):
                        received += data
                except trio.BrokenResourceError:
                    pass
            assert json.loads(received.splitlines()[0])["error"].startswith(
                "request: line longer than")
            sim.no_event()
            assert (await sim.cmd(cmd="plug", evse=1))["ok"] is True


async def test_client_disconnecting_mid_line_disturbs_nothing(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            before = await sim.cmd(cmd="state")
            for _ in range(5):
                stream = await trio.open_unix_socket(sim.path)
                await stream.send_all(b'{"cmd": "plug", "evse": 1')
                await stream.aclose()
            # one that disconnects without reading its reply
            stream = await trio.open_unix_socket(sim.path)
            await stream.send_all(b'{"cmd": "state"}\n' * 100)
            await stream.aclose()
            await trio.sleep(0.05)
            sim.no_event()
            assert await sim.cmd(cmd="state") == before
            assert (await sim.cmd(cmd="plug", evse=1))["ok"] is True


async def test_many_clients_at_once(tmp_path: Path) -> None:
    n = 40
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            replies: list[dict] = []

            async def client(i: int) -> None:
                replies.append(await sim.cmd(cmd="token", id_token=f"T{i}"))
                replies.append(await sim.cmd(cmd="state"))

            async with trio.open_nursery() as nursery:
                for i in range(n):
                    nursery.start_soon(client, i)
            assert len(replies) == 2 * n and all(r["ok"] for r in replies)
            tokens = {sim.event().id_token for _ in range(n)}
            assert tokens == {f"T{i}" for i in range(n)}
            sim.no_event()


# --- socket file lifecycle ----------------------------------------------------------------------
async def test_socket_file_is_removed_at_exit(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            assert os.path.exists(sim.path)
        assert not os.path.exists(sim.path)


async def test_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "sim.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()                      # the file stays, nobody listens
    assert path.exists()
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            assert (await sim.cmd(cmd="plug", evse=1))["ok"] is True


async def test_refuses_to_replace_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "sim.sock").write_text("precious")
    hw = SimHardware([1], str(tmp_path / "sim.sock"), empty_view)
    send, _ = trio.open_memory_channel(1)
    with trio.fail_after(TIMEOUT), pytest.raises(FileExistsError):
        await hw.run(send)
    assert (tmp_path / "sim.sock").read_text() == "precious"


async def test_refuses_to_steal_a_live_socket(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            other = SimHardware([1], sim.path, empty_view)
            send, _ = trio.open_memory_channel(1)
            with pytest.raises(OSError, match="another simulator"):
                await other.run(send)
            assert (await sim.cmd(cmd="plug", evse=1))["ok"] is True


# --- port side ----------------------------------------------------------------------------------
async def test_port_methods_reject_unknown_evses(tmp_path: Path) -> None:
    hw = SimHardware([1], str(tmp_path / "sim.sock"), empty_view)
    with pytest.raises(ValueError):
        await hw.set_power_path(2, True)
    with pytest.raises(ValueError):
        await hw.set_offered_current(0, 16)
    with pytest.raises(ValueError):
        await hw.set_offered_current(1, -1)
    with pytest.raises(ValueError):
        await hw.set_offered_current(1, math.nan)
    with pytest.raises(ValueError):
        await hw.unlock_connector(1, 2)
    with pytest.raises(ValueError):
        await hw.read(3)
    assert await hw.unlock_connector(1, 1) is True


def test_constructor_validates_connectors() -> None:
    for bad in ([], [0], [1, True], ["1"]):
        with pytest.raises(ValueError):
            SimHardware(bad, "x.sock", empty_view)  # type: ignore[arg-type]


async def test_meter_reading_shape_when_idle(tmp_path: Path) -> None:
    hw = SimHardware([1], str(tmp_path / "sim.sock"), empty_view)
    assert await hw.read(1) == MeterReading(energy_wh=0.0, power_w=0.0,
                                            current_a=(0.0, 0.0, 0.0),
                                            voltage_v=(230.0, 230.0, 230.0))


@pytest.fixture
def clock() -> trio.testing.MockClock:
    # Time moves only when the test jumps it, or (if something hangs) after 1 s of real
    # idleness, so the fail_after below still bounds the test.
    return trio.testing.MockClock(autojump_threshold=1.0)


async def test_meter_integrates_energy_over_mock_time(
        tmp_path: Path, clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1_000_000):
        async with running_sim(tmp_path) as sim:
            hw = sim.hw
            await sim.cmd(cmd="plug", evse=1)
            await sim.cmd(cmd="ev_charge", evse=1, power_w=11_000)
            clock.jump(600)                          # power path open: nothing flows
            assert (await hw.read(1)).energy_wh == 0.0
            await hw.set_power_path(1, True)
            clock.jump(3600)
            r = await hw.read(1)
            assert r.energy_wh == pytest.approx(11_000, abs=1e-6)
            assert r.power_w == 11_000
            assert r.current_a == pytest.approx((11_000 / 690,) * 3)
            assert r.voltage_v == (230.0, 230.0, 230.0)

            # half an hour paused by the EV, then half an hour at 7.4 kW
            await sim.cmd(cmd="ev_pause", evse=1)
            clock.jump(1800)
            assert (await hw.read(1)).power_w == 0.0
            await sim.cmd(cmd="ev_charge", evse=1, power_w=7400)
            clock.jump(1800)
            assert (await hw.read(1)).energy_wh == pytest.approx(11_000 + 3_700, abs=1e-6)

            # offered current caps the draw: 10 A x 3 x 230 V = 6.9 kW for an hour
            await hw.set_offered_current(1, 10)
            clock.jump(3600)
            assert (await hw.read(1)).energy_wh == pytest.approx(14_700 + 6_900, abs=1e-6)
            await hw.set_offered_current(1, 32)      # back above the request

            # a fault stops the flow, clearing it resumes
            await sim.cmd(cmd="fault", evse=1, fault="OverTemperature")
            clock.jump(3600)
            assert (await hw.read(1)).energy_wh == pytest.approx(21_600, abs=1e-6)
            await sim.cmd(cmd="clear_fault", evse=1)
            clock.jump(900)                          # 15 min at 7.4 kW
            assert (await hw.read(1)).energy_wh == pytest.approx(21_600 + 1_850, abs=1e-6)

            # opening the power path / unplugging stop it; energy never goes down
            await hw.set_power_path(1, False)
            clock.jump(3600)
            e1 = (await hw.read(1)).energy_wh
            assert e1 == pytest.approx(23_450, abs=1e-6)
            await hw.set_power_path(1, True)
            clock.jump(360)                          # 0.1 h at 7.4 kW
            await sim.cmd(cmd="unplug", evse=1)
            clock.jump(3600)
            e2 = (await hw.read(1)).energy_wh
            assert e2 == pytest.approx(e1 + 740, abs=1e-6)
            await hw.set_power_path(1, False)
            assert (await hw.read(1)).energy_wh == e2

            # the other EVSE was never touched
            assert (await hw.read(2)).energy_wh == 0.0
            state = await sim.cmd(cmd="state")
            assert state["evses"][0]["energy_wh"] == pytest.approx(e2)


async def test_energy_is_monotonic_across_many_changes(
        tmp_path: Path, clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1_000_000):
        async with running_sim(tmp_path, [1]) as sim:
            await sim.cmd(cmd="plug", evse=1)
            await sim.hw.set_power_path(1, True)
            last = 0.0
            expected = 0.0
            for i in range(50):
                power = float((i * 1237) % 22_000)
                await sim.cmd(cmd="ev_charge", evse=1, power_w=power)
                clock.jump(7.5)
                expected += power * 7.5 / 3600
                energy = (await sim.hw.read(1)).energy_wh
                assert energy >= last
                last = energy
            assert last == pytest.approx(expected)


# --- clients ------------------------------------------------------------------------------------
async def test_sync_client_against_the_running_server(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            reply = await trio.to_thread.run_sync(
                control_command, sim.path, {"cmd": "plug", "evse": 2})
            assert reply["ok"] is True
            assert sim.event() == CablePlugged(2, 1)
            reply = await trio.to_thread.run_sync(control_command, sim.path, {"cmd": "nope"})
            assert reply["ok"] is False
            sim.no_event()


def test_sync_client_without_server(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        control_command(str(tmp_path / "none.sock"), {"cmd": "state"})


def make_args(path: str, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="evse")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["sim", "--socket", path, *argv])


def test_cli_builds_only_the_given_options() -> None:
    args = make_args("s.sock", "ev-charge", "--evse", "2", "--power-w", "11000")
    assert args.func is run_sim_command
    assert build_command(args) == {"cmd": "ev_charge", "evse": 2, "power_w": 11000.0}
    args = make_args("s.sock", "token", "--id-token", "AB", "--type", "KeyCode")
    assert build_command(args) == {"cmd": "token", "id_token": "AB", "type": "KeyCode"}
    args = make_args("s.sock", "occupancy", "--evse", "1", "--occupied", "false")
    assert build_command(args) == {"cmd": "occupancy", "evse": 1, "occupied": False}
    args = make_args("s.sock", "fault", "--evse", "1", "--fault", "X", "--connector", "1")
    assert build_command(args) == {"cmd": "fault", "evse": 1, "fault": "X", "connector": 1}
    args = make_args("s.sock", "limit", "--evse", "1", "--amps", "16")
    assert build_command(args) == {"cmd": "limit", "evse": 1, "amps": 16.0}
    args = make_args("s.sock", "limit", "--evse", "0", "--watts", "11000", "--source", "SO")
    assert build_command(args) == {"cmd": "limit", "evse": 0, "watts": 11000.0, "source": "SO"}
    assert build_command(make_args("s.sock", "limit", "--evse", "1")) == {"cmd": "limit", "evse": 1}
    with pytest.raises(SystemExit):
        make_args("s.sock", "fly")


async def test_cli_exit_codes_and_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with trio.fail_after(TIMEOUT):
        async with running_sim(tmp_path) as sim:
            run = trio.to_thread.run_sync
            assert await run(run_sim_command, make_args(sim.path, "plug", "--evse", "1")) == 0
            out, err = capsys.readouterr()
            assert out == "ok: CablePlugged evse=1 connector=1\n" and err == ""
            assert sim.event() == CablePlugged(1, 1)

            assert await run(run_sim_command, make_args(sim.path, "limit", "--evse", "1", "--amps", "16")) == 0
            out, err = capsys.readouterr()
            assert out == "ok: ExternalLimitChanged evse=1 amps=16.0 watts=None source=EMS\n" and err == ""
            assert sim.event() == ExternalLimitChanged(1, amps=16.0)

            assert await run(run_sim_command, make_args(sim.path, "plug", "--evse", "9")) == 1
            out, err = capsys.readouterr()
            assert out == "" and err == "error: evse: expected 1..2, got 9\n"
            sim.no_event()

            code = await run(run_sim_command,
                             make_args(sim.path, "ev_pause", "--evse", "1", "--json"))
            assert code == 1
            out, _ = capsys.readouterr()
            assert json.loads(out) == {"ok": False,
                                       "error": "evse: the EV on evse 1 is not requesting energy"}

            assert await run(run_sim_command, make_args(sim.path, "state", "--json")) == 0
            out, _ = capsys.readouterr()
            assert out.count("\n") == 1
            assert json.loads(out) == await sim.cmd(cmd="state")

            assert await run(run_sim_command, make_args(sim.path, "state")) == 0
            out, _ = capsys.readouterr()
            assert "CSMS: not connected" in out and "connector 1: unknown (plugged)" in out


def test_cli_unreachable_socket(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = str(tmp_path / "none.sock")
    assert run_sim_command(make_args(path, "state")) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"evse sim: cannot reach the simulator at {path} (")
    assert err.count("\n") == 1
