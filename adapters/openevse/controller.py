"""Adapter: an OpenEVSE controller over RAPI (ports.hardware.EvseController) and its
ammeter (ports.hardware.Meter, "ControlMetering", board rev1).

The controller runs the pilot, the relay and the safety checks on its own; this adapter
only tells it what the domain consents to and reports what it sees:

* Consent: while the domain keeps the power path open the controller is auth-locked and
  asleep (`S4 1`, `FS`), so it never closes the relay whatever the EV asks. That state is
  re-applied on every (re)connect and after every controller reboot (`$AB`), because a
  reboot resets the volatile settings.
* Supervision: the controller is told (`SY`) to drop to a safe current when the pulses
  stop; the pulses come from a task in the station's own trio loop, so a hung station
  stops them.
* Reports: `$AT` transitions (and a `GS` poll as a safety net) become domain events, only
  on change: the pilot state says what the EV does (also while the EVSE sleeps), the
  evse state says whether it is faulted.
* Link: one command at a time, matched to its answer by a sequence id; a command that
  stays unanswered after its retries means the controller is silent: FaultRaised
  ControllerSilent, reopen with back-off, FaultCleared once it answers again.

Bad bytes never become values: they are dropped, counted in `stats` and logged.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import trio

from adapters.openevse import rapi
from adapters.openevse.rapi import AsyncMessage, Fault, Response
from ports.hardware import (
    CablePlugged,
    CableUnplugged,
    DeviceProblem,
    EnergyPaused,
    EnergyRequested,
    FaultCleared,
    FaultRaised,
    HardwareError,
    HardwareEvent,
    MeterError,
    MeterReading,
    SerialDevice,
)

__all__ = ["OpenEvseController", "OpenEvseAmmeter", "RapiStats", "SILENT_FAULT"]

log = logging.getLogger("evse.hardware")

SILENT_FAULT = Fault("ControllerSilent", "Controller", "Problem")
HS_ACK_COOKIE = 165            # `$SY 165` acknowledges a missed heartbeat pulse
HS_MISSED_NOT_ACKED = 2        # SY trigger: a pulse was missed, the current is still limited
_READ_SIZE = 256

# pilot state -> what the EV does (D: asks for energy with ventilation; its fault comes
# from the evse state)
_EV_OF_PILOT = {rapi.STATE_A: "A", rapi.STATE_B: "B", rapi.STATE_C: "C", rapi.STATE_D: "C"}
_NOT_FAULTED = frozenset({rapi.STATE_A, rapi.STATE_B, rapi.STATE_C,
                          rapi.STATE_SLEEPING, rapi.STATE_DISABLED})


@dataclass
class RapiStats:
    """What went wrong on the link, for diagnostics and tests."""

    bad_frames: int = 0        # garbage, truncated/oversized lines, bad checksums, bad fields
    wrong_responses: int = 0   # a response whose sequence id matches no waiting command
    timeouts: int = 0          # command attempts left unanswered
    reconnects: int = 0        # links lost and reopened
    reboots: int = 0           # `$AB` boot notifications


class _Pending:
    """The one command waiting for its answer."""

    __slots__ = ("seq", "done", "response", "lost")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.done = trio.Event()
        self.response: Response | None = None
        self.lost = False      # the link went down while waiting


class _BadFields(ValueError):
    """A well-framed line whose fields make no sense."""


def _hex(field: str) -> int:
    try:
        return int(field, 16)
    except ValueError:
        raise _BadFields(f"not hex: {field!r}") from None


def _dec(field: str) -> int:
    try:
        return int(field, 10)
    except ValueError:
        raise _BadFields(f"not decimal: {field!r}") from None


def _fields(params: tuple[str, ...], n: int, what: str) -> tuple[str, ...]:
    if len(params) < n:
        raise _BadFields(f"{what}: expected {n} fields, got {len(params)}")
    return params


class OpenEvseController:
    """One OpenEVSE controller (one EVSE, one connector) on a serial device."""

    def __init__(self, device: SerialDevice, *, evse: int = 1, command_timeout: float = 0.5,
                 retries: int = 2, poll_interval: float = 2.0, supervision_interval: float = 30,
                 safe_current: int = 6, backoff_min: float = 1.0, backoff_max: float = 30.0,
                 initial_current: float | None = None) -> None:
        if command_timeout <= 0 or retries < 0 or poll_interval <= 0:
            raise ValueError("command_timeout and poll_interval must be > 0, retries >= 0")
        if not 0 < backoff_min <= backoff_max:
            raise ValueError("need 0 < backoff_min <= backoff_max")
        self.stats = RapiStats()
        self._device = device
        self._evse = evse
        self._command_timeout = command_timeout
        self._retries = retries
        self._poll_interval = poll_interval
        self._supervision_interval = supervision_interval
        self._safe_current = int(safe_current)
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        # what the domain wants (re-applied on every connect and after a reboot)
        self._want_closed = False
        self._current: int | None = None if initial_current is None else int(initial_current)
        self.current_set: int | None = None          # what the controller last confirmed
        # what was last pushed to the domain
        self._ev = "A"
        self._fault: Fault | None = None
        self._silent = False
        self._boots = 0                     # `$AB` seen
        self._boots_resolved = 0            # of those, re-applied by a later initialisation
        # the link
        self._ready = False
        self._supervised = False            # the firmware took `SY interval amps`
        self._lock = trio.Lock()            # one command at a time
        self._apply_lock = trio.Lock()      # multi-command sequences (init, power path) whole
        self._stream: trio.abc.Stream | None = None
        self._link_scope: trio.CancelScope | None = None
        self._link_lost: str | None = None
        self._pending: _Pending | None = None
        self._seq = 0
        self._decoder = rapi.LineDecoder()
        self._reboots: trio.MemorySendChannel[int] | None = None
        self._outbox, self._outbox_recv = trio.open_memory_channel[HardwareEvent](math.inf)

    # -- what the adapter knows ---------------------------------------------------------------
    @property
    def evse(self) -> int:
        return self._evse

    @property
    def label(self) -> str:
        return self._device.label

    @property
    def connected(self) -> bool:
        """True while the link is up and the controller initialised."""
        return self._ready

    @property
    def ev_connected(self) -> bool:
        """The EV is plugged in (pilot B or C) as last reported."""
        return self._ev != "A"

    # -- ports.hardware.EvseController --------------------------------------------------------
    async def run(self, events: trio.MemorySendChannel[HardwareEvent], *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._forward_events, events)
            task_status.started()
            await self._connection_loop()

    async def set_power_path(self, evse: int, closed: bool) -> None:
        self._check_evse(evse)
        self._want_closed = closed
        async with self._apply_lock:
            await self._apply_power_path(strict=True)

    async def set_offered_current(self, evse: int, amps: float) -> None:
        self._check_evse(evse)
        if not math.isfinite(amps) or amps < 0:
            raise ValueError(f"offered current must be a finite number >= 0, got {amps!r}")
        self._current = int(amps)           # RAPI takes whole amps: never offer more than asked
        async with self._apply_lock:
            await self._apply_current(strict=True)

    async def unlock_connector(self, evse: int, connector: int) -> bool:
        self._check_evse(evse)
        if connector != 1:
            raise HardwareError(f"{self.label}: EVSE {evse} has no connector {connector}")
        return (await self.command("S5", "0", allow_nk=True)).ok

    # -- commands -----------------------------------------------------------------------------
    async def command(self, name: str, *params: object, allow_nk: bool = False) -> Response:
        """Send one RAPI command and return its answer (matched by sequence id).

        Raises HardwareError when the controller is not connected, stays silent through
        the retries (the link is then treated as lost) or, unless `allow_nk`, answers $NK."""
        async with self._lock:
            response = await self._exchange(name, params)
        if not response.ok and not allow_nk:
            detail = "".join(" " + p for p in response.params)
            raise HardwareError(f"{self.label}: controller refused ${name} ($NK{detail})")
        return response

    async def _exchange(self, name: str, params: tuple[object, ...]) -> Response:
        attempts = 1 + self._retries
        for attempt in range(1, attempts + 1):
            stream = self._stream
            if stream is None:
                raise HardwareError(f"{self.label}: controller not connected")
            pending = self._pending = _Pending(self._next_seq())
            try:
                await stream.send_all(rapi.encode(name, *params, seq=pending.seq))
                with trio.move_on_after(self._command_timeout):
                    await pending.done.wait()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self._lose_link(f"write failed: {exc}")
                raise HardwareError(f"{self.label}: write failed ({exc})") from None
            finally:
                self._pending = None
            if pending.response is not None:
                return pending.response
            if pending.lost:
                raise HardwareError(f"{self.label}: link lost during ${name}")
            self.stats.timeouts += 1
            log.warning("%s: no answer to $%s (attempt %d of %d)", self.label, name,
                        attempt, attempts)
        self._lose_link(f"no answer to ${name}")
        raise HardwareError(f"{self.label}: controller silent (no answer to ${name})")

    def _next_seq(self) -> int:
        """01..FF cycling; 00 is reserved as 'no sequence id'."""
        self._seq = self._seq % 0xFF + 1
        return self._seq

    def _check_evse(self, evse: int) -> None:
        if evse != self._evse:
            raise HardwareError(f"{self.label}: no EVSE {evse} on this controller")

    # -- the connection loop ------------------------------------------------------------------
    async def _connection_loop(self) -> None:
        backoff = self._backoff_min
        while True:
            try:
                stream = await self._device.open()
            except OSError as exc:
                self._went_silent(f"cannot open: {exc}")
            else:
                try:
                    if await self._serve(stream):
                        backoff = self._backoff_min
                finally:
                    await trio.aclose_forcefully(stream)
                self.stats.reconnects += 1
                self._went_silent(self._link_lost or "link lost")
            await trio.sleep(backoff)
            backoff = min(backoff * 2, self._backoff_max)

    async def _serve(self, stream: trio.abc.Stream) -> bool:
        """Talk over one opened stream until the link is lost; True if it was initialised."""
        initialised = False
        self._decoder.reset()
        self._link_lost = None
        reboots_send, reboots_recv = trio.open_memory_channel[int](math.inf)
        try:
            async with trio.open_nursery() as nursery:
                self._link_scope = nursery.cancel_scope
                self._stream = stream
                self._reboots = reboots_send
                nursery.start_soon(self._read_lines, stream)
                nursery.start_soon(self._watch_gone)
                try:
                    await self._initialise()
                except HardwareError as exc:
                    self._lose_link(str(exc))
                    return False
                initialised = self._ready = True
                self._recovered()
                nursery.start_soon(self._handle_reboots, reboots_recv)
                nursery.start_soon(self._poll_state)
                nursery.start_soon(self._heartbeat)
        finally:
            self._ready = False
            self._stream = None
            self._link_scope = None
            self._reboots = None
        return initialised

    def _lose_link(self, reason: str) -> None:
        """Give up on this link: stop its tasks, fail the waiting command at once."""
        if self._link_scope is None or self._link_lost is not None:
            return
        self._link_lost = reason
        log.warning("%s: link lost: %s", self.label, reason)
        self._stream = None
        self._link_scope.cancel()
        pending = self._pending
        if pending is not None:
            pending.lost = True
            pending.done.set()

    async def _watch_gone(self) -> None:
        await self._device.wait_gone()
        self._lose_link("device removed")

    def _went_silent(self, reason: str) -> None:
        if self._silent:
            log.debug("%s: still silent: %s", self.label, reason)
            return
        self._silent = True
        log.warning("%s: controller silent: %s", self.label, reason)
        self._emit(FaultRaised(self._evse, SILENT_FAULT.name, SILENT_FAULT.component,
                               SILENT_FAULT.variable))

    def _recovered(self) -> None:
        if self._silent:
            self._silent = False
            log.info("%s: controller answers again", self.label)
            self._emit(FaultCleared(self._evse, SILENT_FAULT.name))

    # -- initialisation (every connect, every reboot) -----------------------------------------
    async def _initialise(self) -> None:
        """Bring the controller to what the domain wants and learn its present state.
        $NK answers are logged, not fatal (a feature the firmware lacks); silence is.
        A reboot seen before it started counts as resolved once it completes."""
        async with self._apply_lock:
            boots = self._boots
            await self._tolerant("FF", "E", "0")
            version = await self._tolerant("GV")
            if version.ok:
                log.info("%s: OpenEVSE firmware %s", self.label, " ".join(version.params))
            await self._apply_power_path(strict=False)
            if self._current is not None:
                await self._apply_current(strict=False)
            if self._supervision_interval > 0:
                reply = await self._tolerant("SY", max(1, round(self._supervision_interval)),
                                             self._safe_current)
                self._supervised = reply.ok
                if not reply.ok:
                    log.warning("%s: no heartbeat supervision in this firmware", self.label)
            await self._refresh_state()
            if boots > self._boots_resolved:
                self._boots_resolved = boots
                self._emit(DeviceProblem("Controller", False, self._evse,
                                         "state re-applied after controller reboot"))

    async def _tolerant(self, name: str, *params: object) -> Response:
        response = await self.command(name, *params, allow_nk=True)
        if not response.ok:
            log.warning("%s: controller refused $%s %s", self.label, name,
                        " ".join(map(str, params)))
        return response

    async def _apply_power_path(self, *, strict: bool) -> None:
        """Closed: auth lock off, then enable. Open: sleep first (stops at once), then lock."""
        steps = ((("S4", "0"), ("FE",)) if self._want_closed else (("FS",), ("S4", "1")))
        for step in steps:
            if strict:
                await self.command(*step)
            else:
                await self._tolerant(*step)

    async def _apply_current(self, *, strict: bool) -> None:
        amps = self._current
        if amps is None:
            return
        response = await self.command("SC", amps, "V", allow_nk=True)
        try:
            amps_set = _dec(response.params[0]) if response.params else None
        except _BadFields:
            amps_set = None
        if response.ok and amps_set is not None:
            self.current_set = amps_set
        elif amps_set is not None:
            self.current_set = amps_set
            log.warning("%s: controller clamped the offered current %d A to %d A",
                        self.label, amps, amps_set)
        elif strict:
            raise HardwareError(f"{self.label}: controller refused $SC {amps}")
        else:
            log.warning("%s: controller refused $SC %d", self.label, amps)

    async def _refresh_state(self) -> None:
        response = await self.command("GS")
        try:
            p = _fields(response.params, 4, "GS")
            self._apply_state(_hex(p[0]), _hex(p[2]))
        except _BadFields as exc:
            self._bad_frame(f"GS answer {response.params!r}: {exc}")

    # -- background tasks of a live link ------------------------------------------------------
    async def _handle_reboots(self, reboots: trio.MemoryReceiveChannel[int]) -> None:
        async for _postcode in reboots:
            if self._boots_resolved >= self._boots:
                continue                     # an initialisation since then re-applied all
            try:
                await self._initialise()
            except HardwareError:
                return                       # the link is lost; the loop reconnects

    async def _poll_state(self) -> None:
        while True:
            await trio.sleep(self._poll_interval)
            try:
                await self._refresh_state()
            except HardwareError as exc:
                if self._link_lost is not None:
                    return
                log.warning("%s: state poll failed: %s", self.label, exc)

    async def _heartbeat(self) -> None:
        """Pulse `SY` thrice per supervision interval; acknowledge a missed pulse (the
        controller then restores its current) and re-apply the domain's current."""
        if self._supervision_interval <= 0:
            return
        while True:
            await trio.sleep(self._supervision_interval / 3)
            if not self._supervised:
                continue
            try:
                reply = await self.command("SY", allow_nk=True)
                if reply.ok and _hs_trigger(reply) != HS_MISSED_NOT_ACKED:
                    continue
                log.warning("%s: controller reports a missed heartbeat pulse "
                            "(it dropped to %d A); acknowledging", self.label, self._safe_current)
                await self._tolerant("SY", HS_ACK_COOKIE)
                async with self._apply_lock:
                    await self._apply_current(strict=False)
            except HardwareError as exc:
                if self._link_lost is not None:
                    return
                log.warning("%s: heartbeat failed: %s", self.label, exc)

    async def _forward_events(self, events: trio.MemorySendChannel[HardwareEvent]) -> None:
        """Events leave in order through one task, so a slow consumer never stalls the
        reader (whose stall would look like a silent controller)."""
        async for event in self._outbox_recv:
            await events.send(event)

    def _emit(self, event: HardwareEvent) -> None:
        self._outbox.send_nowait(event)

    # -- reading ------------------------------------------------------------------------------
    async def _read_lines(self, stream: trio.abc.Stream) -> None:
        decoder = self._decoder
        fileno = getattr(stream, "fileno", None)
        waited = False
        while True:
            try:
                data = await stream.receive_some(_READ_SIZE)
                if not data and fileno is not None and not waited:
                    # a raw tty with VMIN=0 answers "nothing yet" with an empty read even
                    # when non-blocking: wait until readable; empty again then is the end
                    await trio.lowlevel.wait_readable(fileno())
                    waited = True
                    continue
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self._lose_link(f"read failed: {exc}")
                return
            if not data:
                self._lose_link("end of stream")
                return
            waited = False
            before = decoder.discarded
            lines = decoder.feed(data)
            if decoder.discarded != before:
                self._bad_frame(f"{decoder.discarded - before} unframed/oversized piece(s) "
                                f"near {bytes(data[:32])!r}", decoder.discarded - before)
            for line in lines:
                self._on_line(line)

    def _bad_frame(self, what: str, count: int = 1) -> None:
        self.stats.bad_frames += count
        log.warning("%s: discarded %s", self.label, what)

    def _on_line(self, line: bytes) -> None:
        message = rapi.parse(line)
        if message is None:
            self._bad_frame(f"line {line[:rapi.MAX_LINE]!r} (checksum or shape)")
        elif isinstance(message, Response):
            self._on_response(message)
        else:
            try:
                self._on_async(message)
            except _BadFields as exc:
                self._bad_frame(f"${message.kind} {' '.join(message.params)}: {exc}")

    def _on_response(self, response: Response) -> None:
        pending = self._pending
        if pending is None or pending.response is not None or response.seq != pending.seq:
            self.stats.wrong_responses += 1
            log.warning("%s: discarded a response no command waits for (seq %s, waiting %s)",
                        self.label, response.seq, None if pending is None else pending.seq)
            return
        pending.response = response
        pending.done.set()

    def _on_async(self, message: AsyncMessage) -> None:
        if message.kind == "AT":
            p = _fields(message.params, 4, "AT")
            self._apply_state(_hex(p[0]), _hex(p[1]))
        elif message.kind == "AB":
            p = _fields(message.params, 1, "AB")
            self._on_boot(_hex(p[0]), " ".join(p[1:]))
        elif message.kind == "AN":
            log.info("%s: button pressed (%s)", self.label, " ".join(message.params))
        else:
            log.debug("%s: ignored $%s", self.label, message.kind)

    def _on_boot(self, postcode: int, firmware: str) -> None:
        self.stats.reboots += 1
        self._boots += 1
        log.warning("%s: controller rebooted (postcode %02X, firmware %s)", self.label,
                    postcode, firmware or "?")
        self._emit(DeviceProblem("Controller", True, self._evse,
                                 f"controller rebooted (postcode {postcode:02X})"))
        if postcode in rapi.BOOT_FAULTS:
            self._set_fault(rapi.fault_of(postcode))
        if self._reboots is not None:
            self._reboots.send_nowait(postcode)

    # -- the view pushed to the domain --------------------------------------------------------
    def _apply_state(self, evse_state: int, pilot_state: int) -> None:
        """Pilot state: what the EV does (also while asleep); evse state: faults."""
        if rapi.is_fault(evse_state):
            self._set_fault(rapi.fault_of(evse_state))
        elif evse_state in _NOT_FAULTED:
            self._set_fault(None)
        else:
            log.debug("%s: evse state %02X carries no fault information", self.label,
                      evse_state)
        ev = _EV_OF_PILOT.get(pilot_state)
        if ev is not None:
            self._set_ev(ev)

    def _set_ev(self, ev: str) -> None:
        old = self._ev
        if ev == old:
            return
        self._ev = ev
        if old == "A":
            self._emit(CablePlugged(self._evse))
        if ev == "A":
            self._emit(CableUnplugged(self._evse))
        elif ev == "C":
            self._emit(EnergyRequested(self._evse, power_w=0.0))
        elif old == "C":
            self._emit(EnergyPaused(self._evse))

    def _set_fault(self, fault: Fault | None) -> None:
        old = self._fault
        if fault == old:
            return
        self._fault = fault
        if old is not None:
            self._emit(FaultCleared(self._evse, old.name))
        if fault is not None:
            log.warning("%s: fault %s", self.label, fault.name)
            self._emit(FaultRaised(self._evse, fault.name, fault.component, fault.variable))


def _hs_trigger(reply: Response) -> int | None:
    """The heartbeat trigger of an `SY` answer (`interval amps trigger`), if readable."""
    try:
        return _dec(reply.params[2]) if len(reply.params) >= 3 else None
    except _BadFields:
        return None


class OpenEvseAmmeter:
    """The controller's own ammeter (`GG`, `GU`) as the EVSE's meter (board rev1).

    It shares the controller's link and command lock. The energy register is the
    firmware's accumulated Wh plus this session's W·s. The firmware folds a session into
    the accumulated Wh (rounded down to whole Wh) when the EV unplugs and clears the
    session W·s at the next plug-in; the register below follows that, so it neither jumps
    nor goes backwards at those moments. Anything else that goes backwards is refused."""

    component = "ControlMetering"

    def __init__(self, controller: OpenEvseController) -> None:
        self._controller = controller
        self._last_energy: float | None = None
        self._last_ws: int | None = None
        self._last_whacc: int | None = None
        self._last_folded = False
        self._carry = 0.0      # sub-Wh fractions the firmware dropped when folding sessions

    async def read(self, evse: int) -> MeterReading:
        c = self._controller
        if evse != c.evse:
            raise MeterError(f"ControlMetering: no EVSE {evse} on {c.label}")
        try:
            gg = await c.command("GG")
            gu = await c.command("GU")
        except HardwareError as exc:
            raise MeterError(f"ControlMetering: {exc}") from None
        try:
            milliamps, millivolts = (_dec(f) for f in _fields(gg.params, 2, "GG")[:2])
            watt_seconds, wh_acc = (_dec(f) for f in _fields(gu.params, 2, "GU")[:2])
        except _BadFields as exc:
            raise MeterError(f"ControlMetering: unreadable answer ({exc})") from None
        if milliamps < 0:
            raise MeterError(f"ControlMetering: {c.label} has no ammeter (GG reports -1 A)")
        if millivolts < 0 or watt_seconds < 0 or wh_acc < 0:
            raise MeterError(f"ControlMetering: negative reading (GG {gg.params}, GU {gu.params})")
        energy, folded, carry = self._register(watt_seconds, wh_acc, c.ev_connected)
        if self._last_energy is not None and energy < self._last_energy - 1e-9:
            raise MeterError(f"ControlMetering: energy went backwards "
                             f"({energy:.3f} Wh < {self._last_energy:.3f} Wh)")
        self._last_energy, self._last_ws, self._last_whacc = energy, watt_seconds, wh_acc
        self._last_folded, self._carry = folded, carry
        amps, volts = milliamps / 1000.0, millivolts / 1000.0
        return MeterReading(energy_wh=energy, power_w=amps * volts, current_a=(amps,),
                            voltage_v=(volts,))

    def _register(self, ws: int, whacc: int, ev_connected: bool) -> tuple[float, bool, float]:
        """(energy Wh, session folded into whacc, carry) for one GU answer."""
        last_ws, last_whacc = self._last_ws, self._last_whacc
        # folded: the EV is gone (its session is in whacc), or whacc grew while the session
        # counter did not restart (the fold was seen before the unplug notification)
        folded = not ev_connected or (
            last_ws is not None and last_whacc is not None and whacc > last_whacc
            and ws >= last_ws)
        carry = self._carry
        if last_ws is not None and ws < last_ws and self._last_folded:
            carry += (last_ws % 3600) / 3600.0       # the new session cleared that fraction
        session_wh = (ws % 3600 if folded else ws) / 3600.0
        return whacc + carry + session_wh, folded, carry
