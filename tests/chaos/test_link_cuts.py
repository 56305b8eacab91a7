"""Chaos: the CSMS link of the REAL `evse run` process cut at random moments, through a TCP proxy.

One DevCsms and a small TCP proxy run in the test (127.0.0.1 only); the station runs as a real
process (`python -m bootstrap.cli run`, sim hardware, SQLite file in tmp_path, two EVSEs,
TxUpdatedInterval 1 s, WebSocketPingInterval 1 s, no reconnect back-off) for the whole run and
connects to the CSMS through the proxy. Two drivers (one per EVSE) play charging sessions
through the sim control socket -- plug, card, EV charges a random while, unplug -- while a fixed
plan of CUTS link cuts (kinds shuffled by the seed) runs, one after the other:

* "fin"        the proxy ends both TCP connections cleanly (FIN both ways, no WebSocket close),
* "rst"        the proxy closes both with SO_LINGER 0: each peer gets an RST,
* "ws_close"   the DevCsms closes the WebSocket (close frame 1001, then TCP),
* "blackhole"  the proxy forwards nothing more, either way, and closes nothing: the station must
               find out by its WebSocket ping (OCPPCommCtrlr.WebSocketPingInterval, Part 4
               §8.4) and reconnect; the old connection is dropped when the new one comes.

A cut happens at a random moment: when the CSMS receives the n-th TransactionEvent on the link,
before it answers (the answer never reaches the station) or 0-5 ms after; or at a random time
after the link came up. After the cut the proxy holds new connections for the cut's outage (0.1
to 3 s, the station's WebSocket handshake waits in the proxy), so events pile up offline; then
the next connection is forwarded as normal and the next cut waits for it.

Oracles
-------
On the TransactionEvents the CSMS received, tests/chaos/harness.py's `check_deliveries`
(at-least-once: a repeat by (transactionId, seqNo) must be the same event; seqNos 0..n, in order
of arrival; one Started, one Ended, one EVSE; no two transactions open at once on an EVSE),
plus: every transaction is one of the drivers' sessions and ends EVDisconnected; an event cut
before its answer arrives again (E11: queued, delivered at least once); and the offline flag (E12,
E12.FR.01/02 as TC_E_43_CS checks it: TransactionEventRequest.offline true), by
what the test sees: an outage lasts from the cut (a blackhole: from the moment the station gave up
the connection) to the moment the proxy passed the CSMS's handshake answer of the next
connection; an event stamped inside an outage (EDGE later than its start) must say offline true,
one stamped while connected (from EDGE after an outage to the next cut) must not. The unnoticed
part of a blackhole and the EDGE around each change are not judged; at least MIN_JUDGED events
each way must have been judged. Every frame the station sent
is schema-valid. The link: one new connection per cut; a blackhole is found by the ping within
2 x WebSocketPingInterval (+ DETECTION_SLACK), and the station's log says "no pong" once per
blackhole. After draining and a SIGTERM the station exits 0 with nothing queued and nothing
running in its database.

The seed is EVSE_LINK_CHAOS_SEED, by default the fixed DEFAULT_SEED; it is printed, also on a
failure, with the plan (moments depend on timing too, so a rerun is similar, not identical). The
station's log is tmp_path/station.log.
"""
from __future__ import annotations

import json
import math
import os
import random
import signal
import socket
import struct
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import trio

from devtools.dev_csms import DevCsms
from devtools.sim_cli import send_control_command
from tests.chaos.harness import (
    EVSES, SID, Deliveries, Session, check_deliveries, config_text, fail_on, play_session, read_database,
    schema_check, start_station, tx_id, wait_booted, wait_drained, wait_queue_empty,
)

# The fixed plan: how many cuts of each kind (shuffled by the seed).
PLAN = {"fin": 8, "rst": 8, "ws_close": 6, "blackhole": 8}
CUTS = sum(PLAN.values())
SEED_ENV = "EVSE_LINK_CHAOS_SEED"
DEFAULT_SEED = 20240612
PING_INTERVAL = 1           # OCPPCommCtrlr.WebSocketPingInterval (s); the link's pong timeout is the same
DEVICE_MODEL = {
    "OCPPCommCtrlr.WebSocketPingInterval": PING_INTERVAL,
    "OCPPCommCtrlr.RetryBackOffRandomRange": 0,    # reconnect at once: the proxy decides the outage
}
TIME_LIMIT = 100.0          # hard cap of the whole test (a run takes about 50 s)
BOOT_TIMEOUT = 10.0
EVENT_TIMEOUT = 12.0        # a driver's TransactionEvent reaching the CSMS, across an outage
DELIVERY_FALLBACK = 3.0     # a "delivery" cut without a TransactionEvent by then cuts anyway
DETECTION_SLACK = 1.0       # a blackhole is found within 2 x PING_INTERVAL + this
RECONNECT_TIMEOUT = 2 * PING_INTERVAL + DETECTION_SLACK + 5.0   # after the outage, the next link is up
DRAIN_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
LINGER = 3.0                # a "fin" link still open this long after the cut is dropped
EDGE = 0.2                  # s around a link change where the offline flag is not judged (the station
                            # notices a cut or a new connection within ms)
MIN_JUDGED = 10             # at least this many events judged offline, and online (else the plan is too tame)
SKEW = 0.05                 # station clock vs the test's (the station takes the CSMS's time)
RECEIVE_SIZE = 65536


def wall() -> float:
    return time.time()


# --- the proxy -----------------------------------------------------------------------------------------
@dataclass(eq=False)
class Link:
    """One station connection through the proxy."""
    index: int
    station: trio.SocketStream
    accepted_at: float
    csms: trio.SocketStream | None = None
    state: str = "held"                 # held -> open -> fin | rst | blackhole; ended
    up_at: float | None = None          # wall time the CSMS's handshake answer was passed on
    station_gone_at: float | None = None  # wall time the station's side ended (EOF or reset)
    dropped: int = 0                    # bytes not forwarded after a cut
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


class LinkProxy:
    """A TCP proxy on 127.0.0.1 between the station and the DevCsms that cuts links on demand."""

    def __init__(self, csms_port: int) -> None:
        self.csms_port = csms_port
        self.port = 0
        self.links: list[Link] = []
        self.hold_until = 0.0           # trio time: new connections wait until then (an outage)
        self._changed = trio.Event()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        await trio.serve_listeners(self._handle, listeners, task_status=task_status)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_up(self, after: int) -> Link:
        """The first connection after link `after` whose handshake answer went through."""
        while True:
            link = next((k for k in self.links[after + 1:] if k.up_at is not None), None)
            if link is not None:
                return link
            await self._changed.wait()

    async def _handle(self, station: trio.SocketStream) -> None:
        link = Link(len(self.links), station, wall())
        self.links.append(link)
        try:
            with link.scope:
                while trio.current_time() < self.hold_until:    # an outage: the handshake waits
                    await trio.sleep_until(self.hold_until)
                link.csms = await trio.open_tcp_stream("127.0.0.1", self.csms_port)
                link.state = "open"
                for old in self.links[:-1]:
                    if old.state == "blackhole":                 # the old connection is dropped
                        if old.station_gone_at is None:          # (the station left it before this one)
                            old.station_gone_at = link.accepted_at
                        self.rst(old)
                async with trio.open_nursery() as pumps:
                    pumps.start_soon(self._pump, link, station, link.csms, True)
                    pumps.start_soon(self._pump, link, link.csms, station, False)
        finally:
            if link.state in ("held", "open"):
                link.state = "ended"
            for stream in (station, link.csms):
                if stream is not None:
                    await trio.aclose_forcefully(stream)
            self._notify()

    async def _pump(self, link: Link, src: trio.SocketStream, dst: trio.SocketStream, to_csms: bool) -> None:
        try:
            while data := await src.receive_some(RECEIVE_SIZE):
                if link.state != "open":
                    link.dropped += len(data)
                    continue
                if not to_csms and link.up_at is None:
                    link.up_at = wall()
                    self._notify()
                await dst.send_all(data)
        except trio.BrokenResourceError:
            pass                                     # src reset (or dst gone while sending)
        except trio.ClosedResourceError:
            return                                   # closed by the proxy itself (rst)
        if to_csms and link.station_gone_at is None:
            link.station_gone_at = wall()
            self._notify()
        if link.state == "open":                     # pass the end on, like a router
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await dst.send_eof()

    # the cuts (synchronous: one can happen inside the CSMS's handler, before it answers)
    def fin(self, link: Link) -> None:
        """A clean TCP close both ways; what comes in after it is dropped, then both are closed."""
        link.state = "fin"
        for stream in (link.station, link.csms):
            with suppress(OSError):
                stream.socket.shutdown(socket.SHUT_WR)
        link.scope.deadline = trio.current_time() + LINGER

    def rst(self, link: Link) -> None:
        link.state = "rst"
        for stream in (link.station, link.csms):
            with suppress(OSError):
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            stream.socket.close()

    def blackhole(self, link: Link) -> None:
        link.state = "blackhole"


# --- the plan --------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Cut:
    index: int
    kind: str                           # fin | rst | ws_close | blackhole
    moment: str                         # before_answer | after_answer | timer
    outage: float                       # s the proxy holds new connections after the cut
    gap: float                          # timer: s after the link came up
    nth: int                            # before/after_answer: the n-th TransactionEvent on the link
    delay: float                        # after_answer: s after the answer
    link: Link | None = None
    at: float | None = None             # wall time of the cut
    how: str = ""
    event: tuple[str, int] | None = None    # the TransactionEvent it was cut on
    next_link: Link | None = None
    fired: trio.Event = field(default_factory=trio.Event)

    @property
    def down_at(self) -> float | None:
        """Start of the outage: the cut, or for a blackhole the moment the station gave up."""
        return self.link.station_gone_at if self.kind == "blackhole" and self.link else self.at

    @property
    def up_at(self) -> float | None:
        return self.next_link.up_at if self.next_link else None

    def row(self) -> str:
        found = (f", found after {self.down_at - self.at:.2f} s"
                 if self.kind == "blackhole" and self.down_at and self.at else "")
        back = f", up again {self.up_at - self.at:.2f} s after" if self.up_at and self.at else ""
        return (f"cut {self.index:2d} {self.kind:9s} {self.moment:13s} outage {self.outage:.2f} s, "
                f"link {self.link.index if self.link else '-'} {self.how}{found}{back}")


def make_plan(seed: int) -> list[Cut]:
    rng = random.Random(seed)
    kinds = [kind for kind, n in PLAN.items() for _ in range(n)]
    rng.shuffle(kinds)
    plan = []
    for index, kind in enumerate(kinds):
        # a WebSocket close comes from the DevCsms itself: not from inside its handler
        moments = ("after_answer", "timer") if kind == "ws_close" else (
            "before_answer", "after_answer", "timer", "timer")
        moment = rng.choice(moments)
        outage = rng.uniform(1.5, 3.0) if rng.random() < 0.2 else rng.uniform(0.1, 1.2)
        plan.append(Cut(index, kind, moment, outage, gap=rng.uniform(0.05, 1.2), nth=rng.randint(1, 3),
                        delay=rng.uniform(0.0, 0.005)))
    return plan


def epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


class LinkChaos:
    def __init__(self, tmp_path: Path, csms: DevCsms, proxy: LinkProxy, seed: int,
                 nursery: trio.Nursery) -> None:
        self.csms = csms
        self.proxy = proxy
        self.seed = seed
        self.nursery = nursery
        self.sock = str(tmp_path / "sim.sock")
        self.db_path = tmp_path / "station.db"
        self.config = tmp_path / "station.toml"
        self.config.write_text(config_text(f"ws://127.0.0.1:{proxy.port}/ocpp", DEVICE_MODEL))
        self.log_path = tmp_path / "station.log"
        self.log = open(self.log_path, "ab")
        self.plan = make_plan(seed)
        self.proc: Any = None
        self.link: Link | None = None       # the connection up now
        self.armed: Cut | None = None
        self.armed_count = 0
        self.plan_done = False
        self.sessions: list[Session] = []
        self.started: set[str] = set()      # transactions the drivers' sessions started
        self.problems: list[str] = []
        self.stats: Counter = Counter()
        csms.handlers["TransactionEvent"] = self.on_transaction_event

    # --- the run -----------------------------------------------------------------------------------
    async def run(self) -> None:
        self.proc = await start_station(self.config, self.log)
        try:
            await wait_booted(self.csms, 0, BOOT_TIMEOUT)
        except trio.TooSlowError:
            raise AssertionError(f"the station did not boot within {BOOT_TIMEOUT} s") from None
        self.link = self.proxy.links[-1]
        async with trio.open_nursery() as drivers:
            for evse in EVSES:
                drivers.start_soon(self.drive, evse)
            for evse in EVSES:      # the cards are in the authorization cache before the first cut
                await self.wait_event(0, f"the first Started on EVSE {evse}",
                                      lambda p, e=evse: p["eventType"] == "Started" and (p.get("evse") or {}).get("id") == e)
            for cut in self.plan:
                await self.cut(cut)
            self.plan_done = True
        missing = await wait_drained(self.csms, DRAIN_TIMEOUT)
        if missing:
            self.problems.append(f"{len(missing)} transaction(s) still without Ended at the CSMS {DRAIN_TIMEOUT} s "
                                 f"after the last cut: {missing}")
        if not await wait_queue_empty(self.csms, EVENT_TIMEOUT):
            self.problems.append(f"GetTransactionStatus still says messagesInQueue after {EVENT_TIMEOUT} s")
        if self.proc.returncode is not None:
            raise AssertionError(f"the station exited during the run with {self.proc.returncode}")
        self.proc.send_signal(signal.SIGTERM)
        with trio.fail_after(STOP_TIMEOUT):
            rc = await self.proc.wait()
        if rc != 0:
            self.problems.append(f"the station exited with {rc} after SIGTERM, expected 0")
        queue, snapshots = read_database(self.db_path)
        queued = [key for key, value in queue.items() if json.loads(value).get("a") == "TransactionEvent"]
        running = {evse: snap["tx"] for evse, snap in snapshots.items() if snap.get("tx")}
        if queued or running:
            self.problems.append(f"after the clean stop the queue still holds TransactionEvents {queued} and "
                                 f"{running} run")

    def kill_leftover(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    async def cut(self, cut: Cut) -> None:
        """One cut of the plan: wait for its moment, cut, hold the outage, wait for the next link."""
        cut.link = link = self.link
        if cut.moment == "timer":
            await trio.sleep(cut.gap)
            self.fire(cut, f"{cut.gap:.2f} s after the link came up")
        else:
            self.armed, self.armed_count = cut, 0
            with trio.move_on_after(DELIVERY_FALLBACK):
                await cut.fired.wait()
            if self.armed is cut:
                self.armed = None
                self.fire(cut, f"no TransactionEvent #{cut.nth} within {DELIVERY_FALLBACK} s: cut anyway")
        await cut.fired.wait()
        with trio.move_on_after(cut.outage + RECONNECT_TIMEOUT) as waiting:
            cut.next_link = self.link = await self.proxy.wait_up(link.index)
        if waiting.cancelled_caught:
            raise AssertionError(f"{cut.row()}: the station did not connect again within "
                                 f"{cut.outage + RECONNECT_TIMEOUT:.1f} s")

    def fire(self, cut: Cut, how: str) -> None:
        """Cut now (no checkpoint: it may run inside the CSMS's handler) and start the outage."""
        assert cut.link is not None
        cut.how = how
        self.proxy.hold_until = trio.current_time() + cut.outage
        if cut.kind == "ws_close":
            self.nursery.start_soon(self.ws_close, cut)
            return
        cut.at = wall()
        getattr(self.proxy, cut.kind)(cut.link)
        cut.fired.set()

    async def ws_close(self, cut: Cut) -> None:
        await self.csms.wait_connected(SID, timeout=EVENT_TIMEOUT)
        cut.at = wall()
        cut.fired.set()
        await self.csms.disconnect(SID, 1001)

    async def fire_later(self, cut: Cut, how: str) -> None:
        await trio.sleep(cut.delay)
        self.fire(cut, how)

    def on_transaction_event(self, station_id: str, payload: dict) -> dict:
        """The CSMS's TransactionEvent handler (it accepts every card); an armed cut fires on
        the n-th one, before the answer goes out or just after."""
        answer = {"idTokenInfo": {"status": "Accepted"}} if "idToken" in payload else {}
        cut = self.armed
        if cut is not None:
            self.armed_count += 1
            if self.armed_count == cut.nth:
                self.armed = None
                cut.event = (tx_id(payload), payload["seqNo"])
                what = f"{payload['eventType']} seqNo {payload['seqNo']} of {tx_id(payload)}"
                if cut.moment == "before_answer":
                    self.fire(cut, f"on TransactionEvent #{cut.nth} ({what}), before answering")
                else:
                    self.nursery.start_soon(self.fire_later, cut, f"on TransactionEvent #{cut.nth} ({what}), "
                                                                  f"{cut.delay * 1000:.1f} ms after answering")
        return answer

    # --- one EVSE's driver -----------------------------------------------------------------------------
    async def drive(self, evse: int) -> None:
        rng = random.Random(f"{self.seed}/{evse}")
        await trio.sleep(rng.uniform(0.0, 0.25))
        while not self.plan_done:
            s = Session(0, evse, len(self.csms.received))
            self.sessions.append(s)
            await play_session(s, rng, self.command, self.wait_event,
                               charge=lambda: rng.uniform(0.2, 2.5),
                               wait_ended=lambda: self.plan_done or rng.random() < 0.5,
                               earlier=self.started)
            self.started.add(s.tx)
            await trio.sleep(rng.uniform(0.0, 0.3))

    async def command(self, cmd: str, **fields: Any) -> dict:
        try:
            with trio.fail_after(EVENT_TIMEOUT):
                reply = await send_control_command(self.sock, {"cmd": cmd, **fields})
        except (OSError, trio.TooSlowError) as exc:
            raise AssertionError(f"control command {cmd} {fields} failed: {exc!r}") from exc
        assert reply.get("ok"), f"the simulator refused {cmd} {fields}: {reply}"
        return reply

    async def wait_event(self, after: int, what: str, where: Callable[[dict], bool]) -> dict:
        try:
            return await self.csms.wait_for("TransactionEvent", station_id=SID, after=after, where=where,
                                            timeout=EVENT_TIMEOUT)
        except trio.TooSlowError:
            raise AssertionError(f"{what} did not reach the CSMS within {EVENT_TIMEOUT} s") from None

    # --- the verdict -------------------------------------------------------------------------------------
    def verify(self) -> Deliveries:
        p = self.problems
        d = check_deliveries(self.csms.received, p)
        if extra := set(d.firsts) - self.started:
            p.append(f"transactions no session started: {sorted(extra)}")
        if lost := self.started - set(d.firsts):
            p.append(f"sessions whose transaction the CSMS never saw: {sorted(lost)}")
        for t in d.firsts:
            ended = d.ended(t)
            if ended is not None and ended["transactionInfo"].get("stoppedReason") != "EVDisconnected":
                p.append(f"{t}: the EV was unplugged, yet its Ended has stoppedReason "
                         f"{ended['transactionInfo'].get('stoppedReason')!r}: {ended}")
        for s in self.sessions:
            if s.tx is not None and d.evse_of.get(s.tx) not in (None, s.evse):
                p.append(f"the session on EVSE {s.evse} started {s.tx}, reported on EVSE {d.evse_of.get(s.tx)}")
        for cut in self.plan:
            if cut.moment == "before_answer" and cut.event is not None and d.arrivals[cut.event[0]].count(
                    cut.event[1]) < 2:
                p.append(f"{cut.row()}: its answer never reached the station, yet it was not sent again")
        self.judge_offline(d)
        self.judge_link()
        return d

    def judge_offline(self, d: Deliveries) -> None:
        """E12: offline true exactly on the events that happened while the link was down."""
        outages = [(c.down_at, c.up_at, c) for c in self.plan]
        connected, start = [], self.proxy.links[0].up_at
        for c in self.plan:
            connected.append((start, c.at))
            start = c.up_at
        connected.append((start, math.inf))
        for (t, seq), (_, e) in d.first.items():
            ts, offline = epoch(e["timestamp"]), e.get("offline", False) is True
            what = f"{t} seqNo {seq} ({e['eventType']}, {e['triggerReason']}, {e['timestamp']})"
            cut = next((c for down, up, c in outages if down + EDGE <= ts <= up - SKEW), None)
            if cut is not None:
                self.stats["judged offline"] += 1
                if not offline:
                    self.problems.append(f"{what} happened {ts - cut.down_at:.2f} s into the outage of "
                                         f"{cut.row()}, but is not marked offline")
            elif any(up + EDGE <= ts <= at - SKEW for up, at in connected):
                self.stats["judged online"] += 1
                if offline:
                    self.problems.append(f"{what} happened while connected, but is marked offline")
            else:
                self.stats["not judged"] += 1
            self.stats["offline true"] += offline
        if min(self.stats["judged offline"], self.stats["judged online"]) < MIN_JUDGED:
            self.problems.append(f"too few events judged for the offline flag ({dict(self.stats)}, at least "
                                 f"{MIN_JUDGED} each way expected): the plan does not test it")

    def judge_link(self) -> None:
        p = self.problems
        forwarded = [k for k in self.proxy.links if k.up_at is not None]
        if (len(self.proxy.links), len(forwarded)) != (CUTS + 1, CUTS + 1):
            p.append(f"{len(self.proxy.links)} connections, {len(forwarded)} of them up, for {CUTS} cuts: "
                     f"one reconnection per cut expected")
        limit = 2 * PING_INTERVAL + DETECTION_SLACK
        for cut in self.plan:
            if cut.kind == "blackhole" and cut.down_at - cut.at > limit:
                p.append(f"{cut.row()}: found {cut.down_at - cut.at:.2f} s after it began, not within {limit} s")
        pongs = self.log_path.read_text(errors="replace").count("CSMS link down: no pong from the CSMS")
        if pongs != PLAN["blackhole"]:
            p.append(f"the station's log tells {pongs} times of a missing pong, for {PLAN['blackhole']} blackholes")

    def summary(self, d: Deliveries, checked: int, elapsed: float) -> str:
        found = [c.down_at - c.at for c in self.plan if c.kind == "blackhole"]
        outages = [c.up_at - c.down_at for c in self.plan]
        moments = Counter(c.moment for c in self.plan)
        return (f"link chaos seed {self.seed} ({SEED_ENV}={self.seed}): {CUTS} cuts ({dict(PLAN)}; "
                f"{dict(moments)}), blackholes found in {min(found):.2f}..{max(found):.2f} s, outages "
                f"{min(outages):.2f}..{max(outages):.2f} s, {sum(k.dropped for k in self.proxy.links)} bytes "
                f"dropped after cuts; {len(self.sessions)} sessions, {len(d.firsts)} "
                f"transactions, {len(d.first)} TransactionEvents + {d.repeats} repeats; offline flags: "
                f"{dict(self.stats)}; {checked} frames schema-checked; {elapsed:.1f} s")


async def test_link_cuts_lose_nothing(tmp_path):
    seed = int(os.environ.get(SEED_ENV) or DEFAULT_SEED)
    print(f"link chaos seed {seed} (rerun: {SEED_ENV}={seed})")
    t0 = time.monotonic()
    log_lines: list[str] = []
    csms = DevCsms(heartbeat_interval=60, log=log_lines.append)
    chaos: LinkChaos | None = None
    try:
        with trio.fail_after(TIME_LIMIT):
            async with trio.open_nursery() as nursery:
                await nursery.start(csms.serve)
                proxy = LinkProxy(csms.port)
                await nursery.start(proxy.serve)
                chaos = LinkChaos(tmp_path, csms, proxy, seed, nursery)
                try:
                    await chaos.run()
                finally:
                    chaos.kill_leftover()
                    chaos.log.close()
                nursery.cancel_scope.cancel()
    except BaseException as exc:
        plan = "\n".join(c.row() for c in chaos.plan) if chaos is not None else ""
        exc.add_note(f"link chaos seed {seed} ({SEED_ENV}={seed}); station log: {tmp_path / 'station.log'}\n{plan}")
        raise
    assert chaos is not None
    checked, schema = await schema_check(csms, log_lines)
    d = chaos.verify()
    summary = chaos.summary(d, checked, time.monotonic() - t0)
    print("\n".join(c.row() for c in chaos.plan))
    print(summary)
    fail_on(chaos.problems + schema, summary, chaos.log_path)
