"""Emulator: an OpenEVSE controller speaking RAPI on the master side of a pseudo-terminal.

For the tests, the hardware demo and benchmarks: the station's adapter opens the pty's
slave as if it were the controller's UART. The emulator follows the firmware
(shared/reference/hardware/openevse-rapi.md, RAPI 5.x) where the adapter can tell:

* framing: lines from `$` to `\\r` (a 32-byte buffer, longer input is dropped), XOR `^`
  or additive `*` checksum or none; a wrong checksum is answered `$NK` without a
  sequence id; a sequence id is echoed in the answer;
* the EVSE: auth lock and sleep/enable/disable; the relay closes (evse state 03) only
  while the EV asks for energy (pilot C), the EVSE is enabled and not auth-locked;
  states 04-0E are faults; `$AT` follows every change, after the answer to a command;
* the meter: W·s of this session integrate current x voltage while the relay is closed
  (trio's clock, so a MockClock works); a session starts at plug-in and is folded into
  the accumulated Wh (whole Wh) at unplug, as the firmware does;
* what sits behind the relay: `on_power` (e.g. an `Sdm630Emulator.set_load`) is told the power
  the EV draws (charging amps x voltage) at once whenever it changes (`SC`, the relay, the EV's
  own limit, a reboot, the heartbeat fallback), the energy integrated up to that instant first,
  so a meter's energy follows the current the station sets;
* heartbeat supervision (`SY`): without a pulse for the interval the current drops to
  the fallback amps until `SY 165` acknowledges;
* a reboot (`FR` or `reboot()`) answers nothing, resets volatile settings (auth lock,
  sleep, current, echo) and announces itself with `$AB postcode fw`.

The EV and the test harness drive it with plain methods (`plug()`, `request_energy()`,
`fault()`, `reboot()`, `go_silent()`, `inject()`, ...); `commands` records what it was
sent and `wait_for_command()` waits for one.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable

import trio

from adapters.openevse import rapi

__all__ = ["OpenEvseEmulator"]

log = logging.getLogger("evse.emulator.openevse")

BUFLEN = 32                      # the firmware's RAPI input buffer
HS_ACK_COOKIE = 165
HS_MISSED_NOT_ACKED = 2
HS_MISSED_ACKED = 1
# volatile flags (m_wVFlags) the emulator maintains
ECVF_AUTH_LOCKED = 0x0008
ECVF_CHARGING_ON = 0x0040
ECVF_GFI_TRIPPED = 0x0080
ECVF_EV_CONNECTED = 0x0100
ECVF_MENNEKES_MANUAL = 0x8000

_PILOT = {"A": rapi.STATE_A, "B": rapi.STATE_B, "C": rapi.STATE_C}
_NO_ANSWER = object()            # FR: the controller restarts instead of answering

Reply = tuple[bool, str]         # (ok, parameters)


class OpenEvseEmulator:
    """One emulated OpenEVSE controller; `serve(master_fd)` runs it on a pty master."""

    def __init__(self, *, firmware: str = "7.1.3", rapi_version: str = "5.2.1",
                 max_current: int = 32, min_current: int = 6, default_current: int = 16,
                 auth_lock_default: bool = True, voltage: float = 230.0, ammeter: bool = True,
                 boot_delay: float = 0.05) -> None:
        self.firmware = firmware
        self.rapi_version = rapi_version
        self.max_current = max_current
        self.min_current = min_current
        self.default_current = default_current      # the current saved in "EEPROM"
        self.auth_lock_default = auth_lock_default
        self.voltage = voltage
        self.ammeter = ammeter
        self.boot_delay = boot_delay
        # knobs for tests
        self.response_delay = 0.0        # answer this much later ($AT may come first)
        self.async_notifications = True  # send $AT on changes
        self.unsupported: set[str] = set()   # commands this firmware build lacks ($NK)
        self.silent = False
        # record
        self.commands: list[str] = []    # every well-formed command, without seq/checksum
        self.bad_commands = 0            # lines with a wrong checksum
        self._new_command = trio.Event()
        # persistent state ("EEPROM" and physics)
        self.ev = "A"                    # the vehicle's pilot: A, B, C
        self.ev_amps: float | None = None    # what the EV draws at most (None: all offered)
        self.fault_code: int | None = None
        self.gfi_trips = self.no_ground_trips = self.stuck_relay_trips = 0
        self.whacc = 0                   # Wh accumulated over finished sessions
        self.ws = 0.0                    # W·s of this (or the last) session
        self.session_seconds = 0.0       # relay-closed time of this session
        self.hs_interval = 0             # heartbeat supervision (saved in EEPROM)
        self.hs_amps = 0
        self._since: float | None = None
        # what sits behind the relay (a meter): told the drawn power (W) whenever it changes
        self.on_power: Callable[[float], None] | None = None
        self._power_told: float | None = None
        self._decoder = rapi.LineDecoder(max_line=BUFLEN)
        self._out_send, self._out_recv = trio.open_memory_channel[bytes](math.inf)
        self._hs_wakeup = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._booting = False
        self._reset_volatile()
        self._dispatch = self._handlers()

    def _reset_volatile(self) -> None:
        self.auth_locked = self.auth_lock_default
        self.mode = "enabled"            # enabled, sleeping, disabled
        self.current = self.default_current
        self.echo = False
        self.connector_manual = False
        self.connector_locked = False
        self.hs_trigger = 0
        self.hs_last_pulse = self._now()
        self._sent: tuple[int, int, int, int] | None = None

    # -- the model ----------------------------------------------------------------------------
    @property
    def evse_state(self) -> int:
        if self.fault_code is not None:
            return self.fault_code
        if self.mode == "disabled":
            return rapi.STATE_DISABLED
        if self.mode == "sleeping":
            return rapi.STATE_SLEEPING
        if self.ev == "C" and self.auth_locked:
            return rapi.STATE_B                      # locked: never enters state C
        return _PILOT[self.ev]

    @property
    def pilot_state(self) -> int:
        return _PILOT[self.ev]

    @property
    def relay_closed(self) -> bool:
        return self.evse_state == rapi.STATE_C

    @property
    def charging_amps(self) -> float:
        if not self.relay_closed:
            return 0.0
        return float(self.current if self.ev_amps is None else min(self.current, self.ev_amps))

    @property
    def vflags(self) -> int:
        flags = 0
        if self.auth_locked:
            flags |= ECVF_AUTH_LOCKED
        if self.relay_closed:
            flags |= ECVF_CHARGING_ON
        if self.gfi_trips:
            flags |= ECVF_GFI_TRIPPED
        if self.ev != "A":
            flags |= ECVF_EV_CONNECTED
        if self.connector_manual:
            flags |= ECVF_MENNEKES_MANUAL
        return flags

    @staticmethod
    def _now() -> float:
        try:
            return trio.current_time()
        except RuntimeError:                          # built outside trio.run
            return 0.0

    def _integrate(self) -> None:
        """Bring the session's W·s up to now at the current drawn since the last change."""
        now = self._now()
        if self._since is not None and now > self._since and self.relay_closed:
            dt = now - self._since
            self.ws += self.charging_amps * self.voltage * dt
            self.session_seconds += dt
        self._since = now

    def _change(self, mutate: Callable[[], None]) -> None:
        self._integrate()
        mutate()
        self._notify_state()

    # -- the EV and the outside world (for tests and the demo) --------------------------------
    def plug(self) -> None:
        def mutate() -> None:
            if self.ev == "A":
                self._start_session()
                self.ev = "B"
        self._change(mutate)

    def request_energy(self, amps: float | None = None) -> None:
        """The EV asks for energy (pilot C) and draws up to `amps` (None: all offered)."""
        def mutate() -> None:
            if self.ev == "A":
                self._start_session()
            self.ev, self.ev_amps = "C", amps
        self._change(mutate)

    def pause(self) -> None:
        def mutate() -> None:
            if self.ev == "C":
                self.ev = "B"
        self._change(mutate)

    def unplug(self) -> None:
        def mutate() -> None:
            if self.ev != "A":
                self.whacc += int(self.ws) // 3600    # the firmware folds whole Wh only
                self.ev = "A"
        self._change(mutate)

    def fault(self, code: int) -> None:
        """A fault state 04-0E (GFCI trip 06, no ground 07, stuck relay 08, ...)."""
        if not rapi.is_fault(code):
            raise ValueError(f"fault code must be 04..0E, got {code:02X}")

        def mutate() -> None:
            self.fault_code = code
            if code == 0x06:
                self.gfi_trips += 1
            elif code == 0x07:
                self.no_ground_trips += 1
            elif code == 0x08:
                self.stuck_relay_trips += 1
        self._change(mutate)

    def clear_fault(self) -> None:
        def mutate() -> None:
            self.fault_code = None
        self._change(mutate)

    def reboot(self) -> None:
        """Restart: volatile settings back to their defaults, `$AB postcode fw`. A fault
        condition (07/08/09) persists and becomes the boot postcode."""
        self._integrate()
        self._reset_volatile()
        self._decoder.reset()
        self._booting = False
        postcode = self.fault_code if self.fault_code in rapi.BOOT_FAULTS else 0
        log.info("emulated OpenEVSE rebooted (postcode %02x)", postcode)
        if not self.silent:
            self._send(_line(f"AB {postcode:02x} {self.firmware}"))
        self._hs_wakeup.set()
        self._notify_state()

    def go_silent(self, silent: bool = True) -> None:
        """Silent: read and ignore everything, send nothing (a hung controller or a cut line)."""
        self.silent = silent

    def expire_heartbeat(self) -> None:
        """Act as if the heartbeat interval ran out now (pulses lost on the wire)."""
        self._hs_expire()

    def inject(self, raw: bytes) -> None:
        """Write raw bytes to the line as they are (garbage, bad checksums, stray answers)."""
        self._send(raw)

    async def wait_for_command(self, name: str, *, after: int = 0) -> int:
        """Wait until a command named `name` (or exactly `name`, e.g. "SC 10 V") was received
        at an index >= `after`; return its index in `commands`."""
        index = after
        while True:
            while index < len(self.commands):
                text = self.commands[index]
                if text == name or text.split(" ", 1)[0] == name:
                    return index
                index += 1
            await self._new_command.wait()

    # -- running ------------------------------------------------------------------------------
    async def serve(self, master_fd: int, *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run on the pty master `master_fd` (duplicated; the caller keeps its fd) until
        cancelled."""
        stream = trio.lowlevel.FdStream(os.dup(master_fd))
        async with stream, trio.open_nursery() as nursery:
            self._nursery = nursery
            self._since = self._now()
            self.hs_last_pulse = self._now()
            nursery.start_soon(self._write_loop, stream)
            nursery.start_soon(self._supervise)
            task_status.started()
            await self._read_loop(stream)

    async def _read_loop(self, stream: trio.lowlevel.FdStream) -> None:
        while True:
            try:
                data = await stream.receive_some(256)
            except trio.BrokenResourceError:         # EIO: no slave side open right now
                await trio.sleep(0.05)
                continue
            if not data:
                await trio.sleep(0.05)
                continue
            if self.silent or self._booting:
                continue
            if self.echo:
                self._send(data)
            for line in self._decoder.feed(data):
                await self._on_line(line)

    async def _write_loop(self, stream: trio.lowlevel.FdStream) -> None:
        async for data in self._out_recv:
            try:
                await stream.send_all(data)
            except (trio.BrokenResourceError, OSError) as exc:
                log.debug("emulated OpenEVSE: write dropped (%s)", exc)

    def _send(self, data: bytes) -> None:
        self._out_send.send_nowait(data)

    def _follow(self) -> None:
        """`on_power` told the power drawn now, when it changed (the energy is integrated up
        to now by then: every change goes through `_integrate` first)."""
        watts = self.charging_amps * self.voltage
        if self.on_power is not None and watts != self._power_told:
            self._power_told = watts
            self.on_power(watts)

    def _notify_state(self) -> None:
        """`$AT` when evse state, pilot, capacity or flags changed since the last one."""
        self._follow()
        state = (self.evse_state, self.pilot_state, self.current, self.vflags)
        if state == self._sent:
            return
        self._sent = state
        if self.async_notifications and not self.silent:
            self._send(_line(f"AT {state[0]:02x} {state[1]:02x} {state[2]} {state[3]:04x}"))

    # -- commands -----------------------------------------------------------------------------
    async def _on_line(self, line: bytes) -> None:
        parsed = _tokenize(line)
        if parsed is None:
            self.bad_commands += 1
            self._send(_line("NK"))                   # the firmware answers, without seq id
            return
        tokens, seq = parsed
        if not tokens:
            return
        self.commands.append(" ".join(tokens))
        self._new_command.set()
        self._new_command = trio.Event()
        name, args = tokens[0], tokens[1:]
        handler = None if name in self.unsupported else self._dispatch.get(name)
        self._integrate()
        reply: Reply | object = handler(args) if handler is not None else (False, "")
        self._follow()                                # `SC`: the meter behind follows at once
        if reply is _NO_ANSWER:
            return
        if self.response_delay > 0:
            await trio.sleep(self.response_delay)
        if self.silent:
            return
        ok, params = reply  # type: ignore[misc]
        self._send(rapi.encode("OK" if ok else "NK", *params.split(), seq=seq)
                   + (b"\n" if self.echo else b""))
        self._notify_state()

    def _handlers(self) -> dict[str, Callable[[list[str]], Reply | object]]:
        return {
            "GV": lambda a: (True, f"{self.firmware} {self.rapi_version}"),
            "GS": lambda a: (True, f"{self.evse_state:02x} {int(self.session_seconds)} "
                                   f"{self.pilot_state:02x} {self.vflags:04x}"),
            "GG": self._get_current_voltage,
            "GU": lambda a: (True, f"{int(self.ws)} {self.whacc}"),
            "GC": lambda a: (True, f"{self.min_current} {self.max_current} {self.current} "
                                   f"{self.default_current}"),
            "GF": lambda a: (True, f"{self.gfi_trips:x} {self.no_ground_trips:x} "
                                   f"{self.stuck_relay_trips:x}"),
            "G4": lambda a: (True, str(int(self.auth_locked))),
            "G5": lambda a: (True, f"{int(self.connector_locked)} "
                                   f"{'M' if self.connector_manual else 'A'}"),
            "GY": lambda a: (True, self._hs_status()),
            "FE": lambda a: self._set_mode("enabled"),
            "FS": lambda a: self._set_mode("sleeping"),
            "FD": lambda a: self._set_mode("disabled"),
            "FR": self._restart,
            "FF": self._feature,
            "SC": self._set_current,
            "S4": self._auth_lock,
            "S5": self._connector_lock,
            "SY": self._heartbeat,
        }

    def _get_current_voltage(self, args: list[str]) -> Reply:
        millivolts = round(self.voltage * 1000)
        if not self.ammeter:
            return True, f"-1 {millivolts}"
        return True, f"{round(self.charging_amps * 1000)} {millivolts}"

    def _set_mode(self, mode: str) -> Reply:
        self.mode = mode
        return True, ""

    def _restart(self, args: list[str]) -> object:
        self._booting = True
        if self._nursery is not None:
            self._nursery.start_soon(self._reboot_later)
        return _NO_ANSWER

    async def _reboot_later(self) -> None:
        await trio.sleep(self.boot_delay)
        self.reboot()

    def _feature(self, args: list[str]) -> Reply:
        if len(args) != 2 or args[1] not in ("0", "1") or args[0] not in "BDEFGRTV":
            return False, ""
        if args[0] == "E":
            self.echo = args[1] == "1"
        return True, ""

    def _set_current(self, args: list[str]) -> Reply:
        if len(args) not in (1, 2) or not args[0].isdigit() or (len(args) == 2 and args[1] == "M"):
            return False, ""
        amps = int(args[0])
        self.current = min(max(amps, self.min_current), self.max_current)
        if len(args) == 1:
            self.default_current = self.current       # without V it is saved
        return self.current == amps, str(self.current)

    def _auth_lock(self, args: list[str]) -> Reply:
        if len(args) != 1 or args[0] not in ("0", "1"):
            return False, ""
        self.auth_locked = args[0] == "1"
        return True, ""

    def _connector_lock(self, args: list[str]) -> Reply:
        if len(args) != 1 or args[0] not in ("A", "M", "0", "1"):
            return False, ""
        if args[0] in ("A", "M"):
            self.connector_manual = args[0] == "M"
        else:
            self.connector_locked = args[0] == "1"
        return True, ""

    # -- heartbeat supervision ----------------------------------------------------------------
    def _hs_status(self) -> str:
        return f"{self.hs_interval} {self.hs_amps} {self.hs_trigger}"

    def _heartbeat(self, args: list[str]) -> Reply:
        now = self._now()
        if not args:                                   # a pulse
            self.hs_last_pulse = now
            return self.hs_trigger != HS_MISSED_NOT_ACKED, self._hs_status()
        if len(args) == 1:                             # acknowledge a missed pulse
            if not args[0].isdigit() or int(args[0]) != HS_ACK_COOKIE:
                return False, self._hs_status()
            if self.hs_trigger == HS_MISSED_NOT_ACKED:
                self.current = self.default_current    # ampacity restored
                self.hs_trigger = HS_MISSED_ACKED
            return True, self._hs_status()
        if len(args) == 2 and args[0].isdigit() and args[1].isdigit():
            interval, amps = int(args[0]), int(args[1])
            if interval == 0 and self.hs_trigger:
                self.current = self.default_current
            self.hs_interval, self.hs_amps = interval, amps
            self.hs_trigger = 0
            self.hs_last_pulse = now
            self._hs_wakeup.set()
            return True, self._hs_status()
        return False, self._hs_status()

    async def _supervise(self) -> None:
        while True:
            self._hs_wakeup = trio.Event()
            if self.hs_interval > 0:
                with trio.move_on_at(self.hs_last_pulse + self.hs_interval):
                    await self._hs_wakeup.wait()
                if (self.hs_interval > 0
                        and self._now() >= self.hs_last_pulse + self.hs_interval):
                    self._hs_expire()
            else:
                await self._hs_wakeup.wait()

    def _hs_expire(self) -> None:
        def mutate() -> None:
            if self.hs_amps < self.current:
                self.current = self.hs_amps
            self.hs_trigger = HS_MISSED_NOT_ACKED
            self.hs_last_pulse = self._now()
        log.info("emulated OpenEVSE: heartbeat missed, current limited to %d A", self.hs_amps)
        self._change(mutate)

    def _start_session(self) -> None:
        self.ws = 0.0
        self.session_seconds = 0.0


def _line(text: str) -> bytes:
    """`$text^xk\\r` (asynchronous messages and the bare $NK carry no sequence id)."""
    raw = b"$" + text.encode("ascii")
    return b"%s^%02X\r" % (raw, rapi.checksum(raw))


def _tokenize(line: bytes) -> tuple[list[str], int | None] | None:
    """Tokens and sequence id of a command line (from `$`), or None when its checksum is
    wrong. Like the firmware it accepts the XOR (`^`), the additive (`*`) or no checksum."""
    body_end = len(line)
    for mark in (b"^", b"*"):
        at = line.find(mark)
        if at < 0:
            continue
        digits = line[at + 1: at + 3]
        try:
            given = int(digits, 16)
        except ValueError:
            return None
        head = line[:at]
        wanted = rapi.checksum(head) if mark == b"^" else sum(head) & 0xFF
        if len(digits) != 2 or given != wanted:
            return None
        body_end = at
        break
    try:
        tokens = line[1:body_end].decode("ascii").split()
    except UnicodeDecodeError:
        return None
    seq = None
    if len(tokens) > 1 and tokens[-1].startswith(":"):
        try:
            seq = int(tokens.pop()[1:3], 16) or None     # 00 means "no sequence id"
        except ValueError:
            seq = None
    return tokens, seq
