"""Chaos: the REAL `evse run` process SIGKILLed at random moments, restarted on the same database.

One DevCsms (in the test) serves a station that runs as a real process (`python -m bootstrap.cli
run`, sim hardware, SQLite file in tmp_path, two EVSEs, TxUpdatedInterval 1 s, no reconnect
back-off). Process lives follow each other on the same database; in each life two drivers (one
per EVSE) play charging sessions through the sim control socket -- plug, card (the CSMS accepts),
EV charges, a random short time, unplug; often several sessions per life -- until the life ends
with os.kill(pid, SIGKILL):

* "boot"           at a random moment of the start-up (before / around the BootNotification),
* "after_command"  immediately after the reply to the 1st or 2nd plug / token / ev_charge / unplug
                   of the life (no checkpoint between the reply and the kill),
* "timer"          at a random moment (mostly in the middle of sessions),
* "delivery"       when the CSMS receives the n-th TransactionEvent of the life: before it
                   answers, or 0-5 ms after (racing the station's deletion of the delivered event),
* "idle"           between sessions, after each driver finished its sessions.

KILLS lives (a fixed plan, shuffled by the seed), then one life stopped by SIGTERM at a random
moment, then a last life that lets everything queued drain, plays one clean session per EVSE
and stops with SIGTERM. The sim hardware restarts with the process (the EV is gone after a
kill), so a transaction cut by a kill must be ended by the next life with stoppedReason
PowerLoss, its seqNo continuing.

Oracles
-------
On the TransactionEvents the CSMS received (at-least-once: a repeat by (transactionId, seqNo)
must be the same event): per transaction the seqNos are 0..n, in order of arrival (a repeat
never comes after a later seqNo), one Started (0), one Ended (the last), one EVSE, no two
transactions open at once on an EVSE, every Started has its Ended.

After every stop (no process running) the test reads the database (read-only): every
TransactionEvent in its queue must later reach the CSMS exactly as stored, and a transaction
the EVSE snapshot ("tx:<evse>") shows running was cut: its Ended must be PowerLoss /
AbnormalCondition with the snapshot's seqNo (and no other transaction may end with PowerLoss).
Against what the drivers know: a transaction whose Started the CSMS received and whose EV was
not unplugged must be in the snapshot after the kill; an Ended the driver waited for after the
unplug is EVDisconnected. After the final SIGTERM the queue is empty and nothing runs.

Every frame the station sent is validated against the OCPP 2.0.1 schemas (the conformance rig's
`schema_problems`, with the `ocpp` package).

The seed is printed; rerun a plan with EVSE_CHAOS_SEED=<seed> (the kill moments depend on timing
too, so a rerun is similar, not identical). The station's log (all lives, with a header per
life) is tmp_path/station.log.
"""
from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import trio

from devtools.dev_csms import DevCsms
from devtools.sim_cli import send_control_command
from tests.chaos.harness import (
    COMMANDS, EVSES, SID, Session, check_deliveries, config_text, fail_on, play_session, read_database,
    schema_check, start_station, tx_id, wait_booted, wait_drained, wait_queue_empty,
)

# The fixed plan: how many lives end with a SIGKILL of each kind (shuffled by the seed).
PLAN = {"boot": 6, "after_command": 14, "timer": 14, "delivery": 10, "idle": 6}
KILLS = sum(PLAN.values())
SEED_ENV = "EVSE_CHAOS_SEED"
TIME_LIMIT = 120.0          # hard cap of the whole test (a run takes about 50 s)
BOOT_TIMEOUT = 10.0         # start of the process to its StatusNotifications
EVENT_TIMEOUT = 5.0         # a control command's TransactionEvent reaching the CSMS
DRAIN_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0          # SIGTERM to exit


@dataclass(eq=False)
class Life:
    index: int
    kind: str
    proc: Any                           # trio.Process
    mark: int
    rng: random.Random
    scope: trio.CancelScope | None = None
    kill_after_command: tuple[str, int] | None = None      # (command, n): after its n-th reply
    kill_on_event: tuple[int, bool] | None = None          # (n, before answering) TransactionEvent
    commands: Counter = field(default_factory=Counter)
    events: int = 0                     # TransactionEvents the CSMS received in this life
    started_at: float = 0.0
    ended_at: float = 0.0
    stopped_by: str | None = None       # why / when it was stopped
    signum: int | None = None
    at_stop: dict[int, tuple[str | None, bool]] = field(default_factory=dict)  # evse -> (tx, unplug sent)
    current: dict[int, Session | None] = field(default_factory=dict)
    cut: dict[int, tuple[str, int]] = field(default_factory=dict)    # evse -> (tx, seq) running at the stop
    queued: int = 0                     # TransactionEvents in the database's queue at the stop


class Chaos:
    def __init__(self, tmp_path: Path, csms: DevCsms, seed: int) -> None:
        self.tmp_path = tmp_path
        self.csms = csms
        self.seed = seed
        self.rng = random.Random(seed)
        self.sock = str(tmp_path / "sim.sock")
        self.db_path = tmp_path / "station.db"
        self.config = tmp_path / "station.toml"
        self.config.write_text(config_text(csms.url))
        self.current: Life | None = None
        self.nursery: trio.Nursery | None = None
        csms.handlers["TransactionEvent"] = self.on_transaction_event
        self.log_path = tmp_path / "station.log"
        self.log = open(self.log_path, "ab")
        self.lives: list[Life] = []
        self.sessions: list[Session] = []
        self.problems: list[str] = []
        self.must_arrive: dict[tuple[str, int], tuple[dict, int]] = {}    # (tx, seq) -> (payload, life)
        self.cut: dict[str, tuple[int, int, int]] = {}                     # tx -> (evse, seq, first life)

    # --- the plan ---------------------------------------------------------------------------------
    async def run(self) -> None:
        kinds = [kind for kind, n in PLAN.items() for _ in range(n)]
        self.rng.shuffle(kinds)
        for kind in kinds:
            await self.life(kind)
        await self.life("sigterm")
        await self.life("final")

    async def life(self, kind: str) -> None:
        index = len(self.lives)
        self.log.write(f"\n===== chaos life {index}: {kind} =====\n".encode())
        self.log.flush()
        rng = random.Random(f"{self.seed}/{index}")
        mark = len(self.csms.received)
        proc = await start_station(self.config, self.log)
        life = Life(index, kind, proc, mark, rng, started_at=time.monotonic())
        if kind == "after_command":
            life.kill_after_command = (rng.choice(COMMANDS), rng.randint(1, 2))
        elif kind == "delivery":     # counted from the start: the backlog of earlier lives comes first
            life.kill_on_event = (rng.randint(1, 6), rng.random() < 0.5)
        self.lives.append(life)
        self.current = life
        try:
            with trio.CancelScope() as life.scope:
                if kind == "boot":
                    await trio.sleep(rng.uniform(0.0, 0.45))
                    self.stop(life, f"during start-up ({'after' if self.booted(mark) else 'before'} "
                                    f"the BootNotification)")
                await self.wait_booted(life)
                if kind == "final":
                    await self.final(life)
                else:
                    await self.play(life)
        finally:
            if life.stopped_by is None:             # a failure: do not leave the process behind
                with trio.CancelScope(shield=True):
                    proc.kill()
                    await proc.wait()
        with trio.fail_after(STOP_TIMEOUT):
            rc = await proc.wait()
        life.ended_at = time.monotonic()
        self.current = None
        expected = -signal.SIGKILL if life.signum == signal.SIGKILL else 0
        if rc != expected:
            self.problems.append(f"life {index} ({kind}): the station exited with {rc}, expected {expected} "
                                 f"(stopped {life.stopped_by})")
        with trio.move_on_after(STOP_TIMEOUT):      # the CSMS has taken what the dead process sent
            while SID in self.csms.connected:
                await trio.sleep(0.005)
        self.inspect_database(life)

    async def play(self, life: Life) -> None:
        rng = life.rng
        sessions = None                              # drivers go on until the stop
        async with trio.open_nursery() as nursery:
            if life.kind in ("after_command", "delivery"):
                nursery.start_soon(self.stop_later, life, 4.0, "by the fallback timer")
            elif life.kind in ("timer", "sigterm"):
                nursery.start_soon(self.stop_later, life, rng.uniform(0.0, 1.5), "by the timer",
                                   signal.SIGTERM if life.kind == "sigterm" else signal.SIGKILL)
            else:                                    # idle: a few whole sessions, then the kill
                sessions = rng.randint(1, 2)
            async with trio.open_nursery() as drivers:
                for evse in EVSES:
                    drivers.start_soon(self.drive, life, evse, sessions)
            await trio.sleep(rng.uniform(0.0, 0.3))
            self.stop(life, "between sessions (idle)")

    async def final(self, life: Life) -> None:
        """Everything queued drains, one clean session per EVSE, a clean stop (SIGTERM)."""
        await self.wait_drained(life)
        async with trio.open_nursery() as drivers:
            for evse in EVSES:
                drivers.start_soon(self.drive, life, evse, 1)
        if not await wait_queue_empty(self.csms, EVENT_TIMEOUT):   # the last CALLRESULTs are processed too
            self.problems.append(f"life {life.index}: GetTransactionStatus still says messagesInQueue after "
                                 f"{EVENT_TIMEOUT} s")
        self.stop(life, "at the end (clean stop)", signal.SIGTERM)

    # --- one EVSE's driver ------------------------------------------------------------------------
    async def drive(self, life: Life, evse: int, sessions: int | None) -> None:
        rng = random.Random(f"{self.seed}/{life.index}/{evse}")
        final = life.kind == "final"
        await trio.sleep(rng.uniform(0.0, 0.25))
        done = 0
        while sessions is None or done < sessions:
            s = Session(life.index, evse, len(self.csms.received))
            self.sessions.append(s)
            life.current[evse] = s
            await play_session(s, rng, partial(self.command, life), partial(self.wait_event, life),
                               charge=partial(self.charge_time, rng, final, sessions),
                               wait_ended=lambda: sessions is not None or rng.random() < 0.5)
            life.current[evse] = None
            done += 1
            await trio.sleep(rng.uniform(0.0, 0.3))

    @staticmethod
    def charge_time(rng: random.Random, final: bool, sessions: int | None) -> float:
        if final:
            return 1.3                               # long enough for a MeterValuePeriodic
        if sessions is not None or rng.random() < 0.7:     # idle lives: short sessions
            return rng.uniform(0.0, 0.6)
        return rng.uniform(1.0, 2.2)

    async def command(self, life: Life, cmd: str, **fields: Any) -> dict:
        if life.stopped_by is not None:
            await trio.lowlevel.checkpoint()         # cancelled: never talk to a dead process
        try:
            with trio.fail_after(EVENT_TIMEOUT):
                reply = await send_control_command(self.sock, {"cmd": cmd, **fields})
        except (OSError, trio.TooSlowError) as exc:
            if life.stopped_by is not None:
                await trio.lowlevel.checkpoint()
            raise AssertionError(f"life {life.index}: control command {cmd} {fields} failed: {exc!r}") from exc
        assert reply.get("ok"), f"life {life.index}: the simulator refused {cmd} {fields}: {reply}"
        life.commands[cmd] += 1
        if (cmd, life.commands[cmd]) == life.kill_after_command:
            self.stop(life, f"right after '{cmd}' on EVSE {fields.get('evse')}")
        return reply

    def on_transaction_event(self, station_id: str, payload: dict) -> dict:
        """The CSMS's TransactionEvent handler (it accepts every card); a "delivery" life is
        killed on the n-th one, before the answer goes out or just after."""
        answer = {"idTokenInfo": {"status": "Accepted"}} if "idToken" in payload else {}
        life = self.current
        if life is not None and life.stopped_by is None:
            life.events += 1
            if life.kill_on_event is not None and life.kill_on_event[0] == life.events:
                what = f"{payload['eventType']} seqNo {payload['seqNo']} of {tx_id(payload)}"
                if life.kill_on_event[1]:
                    self.stop(life, f"when the CSMS received TransactionEvent #{life.events} ({what}), "
                                    f"before answering")
                else:
                    assert self.nursery is not None
                    self.nursery.start_soon(self.stop_later, life, life.rng.uniform(0.0, 0.005),
                                            f"after the CSMS answered TransactionEvent #{life.events} ({what})")
        return answer

    async def wait_event(self, life: Life, after: int, what: str, where: Callable[[dict], bool]) -> dict:
        try:
            return await self.csms.wait_for("TransactionEvent", station_id=SID, after=after, where=where,
                                            timeout=EVENT_TIMEOUT)
        except trio.TooSlowError:
            raise AssertionError(f"life {life.index} ({life.kind}): {what} did not reach the CSMS "
                                 f"within {EVENT_TIMEOUT} s") from None

    # --- stopping ------------------------------------------------------------------------------------
    def stop(self, life: Life, why: str, signum: int = signal.SIGKILL) -> None:
        """Signal the process at once (no checkpoint in between) and end the life's tasks."""
        if life.stopped_by is None:
            os.kill(life.proc.pid, signum)
            life.stopped_by, life.signum = why, signum
            life.at_stop = {e: (s.tx, s.unplug_sent) for e, s in life.current.items() if s is not None}
        assert life.scope is not None
        life.scope.cancel()

    async def stop_later(self, life: Life, delay: float, why: str, signum: int = signal.SIGKILL) -> None:
        await trio.sleep(delay)
        if life.stopped_by is None and life.proc.returncode is None:
            self.stop(life, f"{why} ({delay * 1000:.1f} ms later)", signum)

    def booted(self, after: int) -> bool:
        return any(f[0] == 2 and f[2] == "BootNotification" for _, f in self.csms.received[after:])

    async def wait_booted(self, life: Life) -> None:
        """Registered, every connector reported: what the previous lives queued went out first."""
        try:
            await wait_booted(self.csms, life.mark, BOOT_TIMEOUT)
        except trio.TooSlowError:
            raise AssertionError(f"life {life.index}: the station did not boot within {BOOT_TIMEOUT} s "
                                 f"(see {self.log_path})") from None

    async def wait_drained(self, life: Life) -> None:
        """The CSMS has the Ended of every transaction it has a Started of (bounded; a problem if not)."""
        missing = await wait_drained(self.csms, DRAIN_TIMEOUT)
        if not missing:
            return
        self.problems.append(f"life {life.index}: {len(missing)} transaction(s) still without Ended at the CSMS "
                             f"{DRAIN_TIMEOUT} s after the final start: {missing}")

    def kill_leftovers(self) -> None:
        for life in self.lives:
            if life.proc.returncode is None:
                life.proc.kill()

    # --- the database after a stop -------------------------------------------------------------------
    def inspect_database(self, life: Life) -> None:
        where = f"after life {life.index} ({life.kind}, stopped {life.stopped_by})"
        queue, snapshots = read_database(self.db_path)
        queued: list[tuple[str, int]] = []
        for key in sorted(queue):
            stored = json.loads(queue[key])
            if stored.get("a") != "TransactionEvent":
                continue
            payload = stored["p"]
            k = (tx_id(payload), payload["seqNo"])
            queued.append(k)
            known = self.must_arrive.get(k)
            if known is not None and known[0] != payload:
                self.problems.append(f"{where}: the queue holds another event for {k} than after life {known[1]}: "
                                     f"{payload} vs {known[0]}")
            self.must_arrive.setdefault(k, (payload, life.index))
        life.queued = len(queued)
        for evse, snap in snapshots.items():
            tx = snap.get("tx")
            if not tx:
                continue
            t, seq = tx["id"], int(tx["seq"])
            life.cut[evse] = (t, seq)
            known = self.cut.get(t)
            if known is not None and known[:2] != (evse, seq):
                self.problems.append(f"{where}: transaction {t} runs on EVSE {evse} with next seqNo {seq}, but "
                                     f"after life {known[2]} it was cut on EVSE {known[0]} at seqNo {known[1]} "
                                     f"(a transaction cut by a kill went on after the restart)")
            self.cut.setdefault(t, (evse, seq, life.index))
            ahead = [s for q, s in queued if q == t and s >= seq]
            if ahead:
                self.problems.append(f"{where}: the queue holds seqNo(s) {ahead} of {t}, but its snapshot's "
                                     f"next seqNo is {seq} (the recovery would reuse a seqNo)")
        for evse, (t, unplug_sent) in life.at_stop.items():
            if t is not None and not unplug_sent and life.cut.get(evse, (None,))[0] != t:
                self.problems.append(f"{where}: the CSMS had the Started of {t} on EVSE {evse} and the EV was "
                                     f"never unplugged, but the database shows {life.cut.get(evse)} running there")
        if life.kind == "final" and (queued or life.cut):
            self.problems.append(f"{where}: after the final clean stop the queue still holds {queued} and "
                                 f"{life.cut} run")

    # --- the verdict ------------------------------------------------------------------------------------
    def verify(self, received: list[tuple[str, list]]) -> dict[str, Any]:
        p = self.problems
        d = check_deliveries(received, p)
        first, firsts, evse_of = d.first, d.firsts, d.evse_of
        reasons = Counter()
        for t, events in firsts.items():
            evses = {e["evse"]["id"] for e in events if e.get("evse")}
            ended = d.ended(t)
            if ended is None:
                continue
            reason = ended["transactionInfo"].get("stoppedReason")
            reasons[reason] += 1
            if t in self.cut:
                evse, seq, life = self.cut[t]
                got = (reason, ended["triggerReason"], ended["seqNo"])
                # a kill is a power loss to the station; a SIGTERM is a clean stop (reboot)
                why = "Reboot" if self.lives[life].signum == signal.SIGTERM else "PowerLoss"
                if got != (why, "AbnormalCondition", seq):
                    p.append(f"{t} was cut by the stop of life {life} (running on EVSE {evse}, next seqNo {seq}): "
                             f"its Ended has (stoppedReason, triggerReason, seqNo) = {got}, expected "
                             f"({why!r}, 'AbnormalCondition', {seq}): {ended}")
                if evses and evses != {evse}:
                    p.append(f"{t}: cut on EVSE {evse}, but its events name EVSE(s) {sorted(evses)}")
            elif reason != "EVDisconnected":
                p.append(f"{t}: was not cut by a kill (the EV was unplugged), yet its Ended has stoppedReason "
                         f"{reason!r}: {ended}")
        # nothing stored before a stop is lost, and it arrives as stored
        for k, (payload, life) in sorted(self.must_arrive.items(), key=lambda x: x[1][1]):
            if k not in first:
                p.append(f"{k} was in the database's queue after life {life} but never reached the CSMS: {payload}")
            elif first[k][1] != payload:
                p.append(f"{k} reached the CSMS other than stored after life {life}:\n    stored  {payload}"
                         f"\n    arrived {first[k][1]}")
        for t in self.cut:
            if t not in firsts:
                p.append(f"{t} was running in the database after life {self.cut[t][2]}, but the CSMS never saw it")
        ended_powerloss = {t for t, ev in firsts.items()
                           if ev[-1]["eventType"] == "Ended"
                           and ev[-1]["transactionInfo"].get("stoppedReason") in ("PowerLoss", "Reboot")}
        if extra := ended_powerloss - set(self.cut):
            p.append(f"ended with PowerLoss/Reboot although no stop left them running: {sorted(extra)}")
        # what the drivers saw
        for s in self.sessions:
            if s.ended is not None and s.ended["transactionInfo"].get("stoppedReason") != "EVDisconnected":
                p.append(f"life {s.life} EVSE {s.evse}: the Ended after the unplug is not EVDisconnected: {s.ended}")
            if s.tx is not None and evse_of.get(s.tx) not in (None, s.evse):
                p.append(f"life {s.life}: the session on EVSE {s.evse} started {s.tx}, reported on EVSE "
                         f"{evse_of.get(s.tx)}")
        return {"transactions": len(firsts), "events": len(first), "repeats": d.repeats, "reasons": dict(reasons)}

    def life_table(self) -> str:
        return "\n".join(
            f"life {life.index:2d} {life.kind:13s} {life.ended_at - life.started_at:5.2f} s, "
            f"{sum(life.commands.values()):2d} commands, {life.events:2d} TransactionEvents; stopped "
            f"{life.stopped_by}; running {life.cut or '-'}; {life.queued} queued"
            for life in self.lives)

    def summary(self, stats: dict[str, Any], checked: int, elapsed: float) -> str:
        kills = [life for life in self.lives if life.signum == signal.SIGKILL]
        kinds = Counter(life.kind for life in kills)
        after = Counter(life.stopped_by.split("'")[1] for life in kills if life.stopped_by.startswith("right after"))
        delivery = Counter("before answer" if "before answering" in life.stopped_by else "after answer"
                           for life in kills if "TransactionEvent #" in life.stopped_by)
        seconds = defaultdict(list)
        for life in self.lives:
            seconds[life.kind].append(life.ended_at - life.started_at)
        return (f"chaos seed {self.seed} ({SEED_ENV}={self.seed}): {len(kills)} SIGKILLs "
                f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}; right after {dict(after)}; "
                f"on delivery {dict(delivery)}; {sum(1 for life in kills if life.cut)} left a transaction "
                f"running, {sum(1 for life in kills if life.queued)} left events queued), "
                f"{len(self.lives) - len(kills)} SIGTERMs, {len(self.lives)} lives "
                f"(mean s: {', '.join(f'{k} {sum(v) / len(v):.2f}' for k, v in sorted(seconds.items()))}); "
                f"{len(self.sessions)} sessions, {stats['transactions']} transactions "
                f"(stoppedReason {stats['reasons']}), {len(self.cut)} cut by a stop; {stats['events']} "
                f"TransactionEvents + {stats['repeats']} repeats; {checked} frames schema-checked; "
                f"{elapsed:.1f} s")


async def test_sigkill_at_random_moments_loses_nothing(tmp_path):
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))
    print(f"chaos seed {seed} (rerun: {SEED_ENV}={seed})")
    t0 = time.monotonic()
    log_lines: list[str] = []
    csms = DevCsms(heartbeat_interval=60, log=log_lines.append)
    chaos: Chaos | None = None
    try:
        with trio.fail_after(TIME_LIMIT):
            async with trio.open_nursery() as nursery:
                await nursery.start(csms.serve)
                chaos = Chaos(tmp_path, csms, seed)
                chaos.nursery = nursery
                try:
                    await chaos.run()
                finally:
                    chaos.kill_leftovers()
                    chaos.log.close()
                nursery.cancel_scope.cancel()
    except BaseException as exc:
        exc.add_note(f"chaos seed {seed} ({SEED_ENV}={seed}); station log: {tmp_path / 'station.log'}")
        raise
    assert chaos is not None
    checked, schema = await schema_check(csms, log_lines)
    stats = chaos.verify(csms.received)
    problems = chaos.problems + schema
    summary = chaos.summary(stats, checked, time.monotonic() - t0)
    print(chaos.life_table())
    print(summary)
    assert len([life for life in chaos.lives if life.signum == signal.SIGKILL]) == KILLS
    fail_on(problems, summary, chaos.log_path)
