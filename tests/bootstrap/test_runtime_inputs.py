"""StationRuntime: inbound frames come from the link's task (`_frame_in`, issue 16) while the
event loop takes the other events from the channel; the station still gets one input at a time,
in the order each was taken from its source."""
from __future__ import annotations

import pytest
import trio
from trio.testing import wait_all_tasks_blocked

from bootstrap.runtime import StationRuntime, _Cycle
from ports.csms_link import FrameIn
from tests.integration.test_station_e2e import SID, open_rig


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


@pytest.mark.mock_clock
async def test_a_frame_asks_the_station_for_its_next_deadline_once_and_it_still_holds(tmp_path):
    """The per-frame path (issue 16): the deadline the step computed is the event loop's wait,
    not asked of the station again; the Heartbeat due after the answer still goes out on time."""
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            rig = await open_rig(nursery, tmp_path, heartbeat_interval=30)
            await rig.csms.wait_for("StatusNotification", station_id=SID)
            await wait_all_tasks_blocked()
            station = rig.runtime.station
            asked = []
            real = station.next_deadline
            station.next_deadline = lambda: asked.append(1) or real()
            n = len(rig.csms.received)
            for i in range(5):
                answer = await rig.csms.call(SID, "GetVariables", {"getVariableData": [
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
                assert answer["getVariableResult"][0]["attributeValue"] == "30"
            assert len(asked) == 5                     # one per frame
            answered_at = trio.current_time()
            await rig.csms.wait_for("Heartbeat", station_id=SID, after=n, timeout=40)
            assert trio.current_time() - answered_at == pytest.approx(30, abs=0.5)   # HeartbeatInterval
            nursery.cancel_scope.cancel()
