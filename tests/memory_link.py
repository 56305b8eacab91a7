"""The real station against the DevCsms without sockets, for tests under trio's MockClock.

With ``MockClock(autojump_threshold=0)`` the clock jumps as soon as every task is blocked,
also while bytes are in flight on a real socket, so a socket's latency would let timeouts
fire that never would in real time. Tests of the domain and the protocol therefore run the
whole station (runtime, WebSocket link, SQLite file, simulated hardware) with:

- the link's transport seam (``WebSocketCsmsLink(connect=...)``) handing it one end of
  ``trio.testing.memory_stream_pair()``, the DevCsms serving the other end
  (``DevCsms.serve_stream``): the WebSocket handshake, Basic auth, frames, closes and
  reconnections are the real ones, only TCP is not there;
- the certificate store's work (`Deployment.blocking`) inline instead of in a worker thread;
- the simulated hardware without its Unix control socket (binding one runs in a worker
  thread, and the mock clock jumps meanwhile), its requests taken in process
  (``SimHardware.command``);
- one wall clock, ``rig_utc_now``, for the station (``StationRuntime(wall_clock=...)``), the
  DevCsms (``DevCsms(clock=...)``: BootNotification / Heartbeat currentTime) and the tests
  (``RigDateTime.now``): EPOCH + trio time under the MockClock, so timestamps advance with
  mock time, and the system's UTC time otherwise.

Each helper looks at the running clock: under any other clock it does what the tests did
before (TCP on loopback, the control socket, the system's time). Tests about the link itself
(TLS, back-off measured at the CSMS, ping/pong, invalid UTF-8) keep the real clock.
"""
from __future__ import annotations

import dataclasses
import errno
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import trio
import trio.testing

from adapters.csms_link_ws import WebSocketCsmsLink
from adapters.sim_hardware import SimHardware
from bootstrap.runtime import Deployment
from devtools.dev_csms import DevCsms
from devtools.sim_cli import send_control_command
from ports.csms_link import LinkSettings

# The UTC time at trio time 0 under the MockClock (a MockClock starts at 0).
EPOCH = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)


def mock_clock_running() -> bool:
    """The current trio run uses a trio.testing.MockClock (False outside trio)."""
    try:
        return isinstance(trio.lowlevel.current_clock(), trio.testing.MockClock)
    except RuntimeError:
        return False


def rig_utc_now() -> datetime:
    """The rigs' wall clock: EPOCH + trio time under the MockClock, else the system's UTC time."""
    if mock_clock_running():
        return EPOCH + timedelta(seconds=trio.current_time())
    return datetime.now(timezone.utc)


class RigDateTime(datetime):
    """``datetime`` whose ``now()`` is ``rig_utc_now()``: what a test module imports as
    ``datetime`` to compare the station's timestamps with the time at the test."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:
        utc = rig_utc_now()
        return utc.astimezone(tz) if tz is not None else utc.astimezone().replace(tzinfo=None)


def memory_link(csms: DevCsms, nursery: trio.Nursery) -> Callable[[LinkSettings], WebSocketCsmsLink]:
    """A `Deployment.make_link` whose links connect to `csms` over in-memory streams: each
    connection attempt to the DevCsms's host and port is served by `csms.serve_stream` in
    `nursery`; any other address is refused (ECONNREFUSED), as nobody listens there."""

    async def connect(host: str, port: int) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        if (host, port) != (csms.host, csms.port):
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"no in-memory CSMS at {host}:{port}")
        station_end, csms_end = trio.testing.memory_stream_pair()
        nursery.start_soon(csms.serve_stream, csms_end)
        return station_end

    return lambda settings: WebSocketCsmsLink(settings, connect=connect)


def in_memory(deployment: Deployment, csms: DevCsms, nursery: trio.Nursery) -> Deployment:
    """Under the MockClock, `deployment` with its link on in-memory streams to `csms` and its
    simulated hardware without a control socket; as it is (TCP to the CSMS's listener, the
    control socket) otherwise."""
    if not mock_clock_running():
        return deployment
    if isinstance(deployment.hardware, SimHardware):
        deployment.hardware.control_socket = None
    return dataclasses.replace(deployment, make_link=memory_link(csms, nursery), blocking=inline)


async def inline(fn, *args):
    """`Deployment.blocking` under the MockClock: the certificate store's work in the event loop's
    thread (in a worker thread the clock would jump to the next deadline meanwhile: with
    autojump_threshold=0 every task is blocked while the thread works)."""
    await trio.lowlevel.checkpoint()
    return fn(*args)


async def serve_csms(csms: DevCsms, nursery: trio.Nursery) -> None:
    """Start the DevCsms's TCP listener, unless the MockClock runs (then `in_memory` links
    reach it without one)."""
    if not mock_clock_running():
        await nursery.start(csms.serve)


async def sim_command(deployment: Deployment, control_socket: str | Path, command: dict[str, Any]) -> dict[str, Any]:
    """One command to the simulated hardware: in process under the MockClock, over its
    control socket otherwise. Returns the simulator's reply.

    In process, the command first waits until every other task is blocked (no mock time
    passes): what is in flight (a CSMS answer on its way through the link) reaches the
    station first, as the control socket's round trip lets it in real time."""
    if mock_clock_running():
        await trio.testing.wait_all_tasks_blocked()
        return await deployment.hardware.command(command)  # type: ignore[attr-defined]
    return await send_control_command(control_socket, command)
