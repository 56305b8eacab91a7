"""StationRuntime: inbound frames come from the link's task (`_frame_in`, issue 16) while the
event loop takes the other events from the channel; the station still gets one input at a time,
in the order each was taken from its source."""
from __future__ import annotations

import trio
from trio.testing import wait_all_tasks_blocked

from bootstrap.runtime import StationRuntime, _Cycle
from ports.csms_link import FrameIn


async def test_inputs_are_handled_one_at_a_time_in_the_order_they_were_taken():
    runtime = StationRuntime.__new__(StationRuntime)       # only the input plumbing is exercised
    trace: list[tuple[str, object]] = []
    gate = trio.Event()

    async def step(cyc, event):                              # stands for station input + effects
        trace.append(("start", event))
        if event == FrameIn("frame1"):
            await gate.wait()                                # e.g. its answer waits for the socket
        trace.append(("end", event))
        return None

    runtime._step = step
    send, receive = trio.open_memory_channel(10)
    cyc = runtime._cycle = _Cycle(None, None, None, None, receive, False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(runtime._frame_in, "frame1")      # the link's task has the turn
        await wait_all_tasks_blocked()
        nursery.start_soon(runtime._turn, cyc, "E1")         # the event loop took E1 meanwhile
        await wait_all_tasks_blocked()
        send.send_nowait("E2")                               # queued after E1
        nursery.start_soon(runtime._frame_in, "frame2")
        await wait_all_tasks_blocked()
        assert trace == [("start", FrameIn("frame1"))]       # nobody else while frame1 is handled
        gate.set()
    order = [FrameIn("frame1"), "E1", "E2", FrameIn("frame2")]
    assert trace == [x for e in order for x in (("start", e), ("end", e))]
