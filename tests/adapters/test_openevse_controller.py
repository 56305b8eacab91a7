"""adapters.openevse.controller against devtools.emulators.openevse over real pseudo-terminals.

The emulator sits on the pty master, the adapter opens the slave through TtyDevice: every
byte goes through the kernel's tty layer as it would to a UART.
"""
from __future__ import annotations

import logging
import os
import pty
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio
import trio.testing

from adapters.openevse import rapi
from adapters.openevse.controller import OpenEvseAmmeter, OpenEvseController
from adapters.serial_tty import TtyDevice, make_raw
from devtools.emulators.openevse import OpenEvseEmulator
from ports.hardware import (
    CablePlugged,
    CableUnplugged,
    DeviceProblem,
    EnergyPaused,
    EnergyRequested,
    FaultCleared,
    FaultRaised,
    HardwareError,
    MeterError,
)

HANG_GUARD = 8          # seconds; only against hangs, never a timing assertion
FAST = dict(command_timeout=1.0, retries=2, poll_interval=0.3, backoff_min=0.05,
            backoff_max=0.2)
SILENT = FaultRaised(1, "ControllerSilent", "Controller", "Problem")


@dataclass
class Rig:
    emu: OpenEvseEmulator
    ctl: OpenEvseController
    events: trio.MemoryReceiveChannel
    nursery: trio.Nursery
    ctl_scope: trio.CancelScope
    slave: int                      # the test's own fd of the pty slave (writes reach the emulator)

    async def event(self) -> Any:
        with trio.fail_after(HANG_GUARD):
            return await self.events.receive()

    async def expect(self, *expected: Any) -> None:
        for want in expected:
            assert await self.event() == want

    async def events_until(self, last: Any) -> list[Any]:
        """Every event up to and including `last`."""
        seen = []
        while True:
            seen.append(await self.event())
            if seen[-1] == last:
                return seen

    def no_event(self) -> None:
        with pytest.raises(trio.WouldBlock):
            self.events.receive_nowait()

    def since(self, index: int) -> list[str]:
        return self.emu.commands[index:]


async def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) until `condition()` holds."""
    with trio.fail_after(HANG_GUARD):
        while not condition():
            await trio.sleep(0.01)


@asynccontextmanager
async def rig(emu: OpenEvseEmulator | None = None, *, before: Callable[[OpenEvseEmulator], None]
              | None = None, **options: Any) -> AsyncIterator[Rig]:
    """Emulator on a fresh pty, controller on its slave, both running; yields once the
    controller finished its initialisation."""
    master, slave = pty.openpty()
    make_raw(slave, 115200)         # the slave stays open: the master never sees EIO
    emu = emu or OpenEvseEmulator()
    send, recv = trio.open_memory_channel(100)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(emu.serve, master)
            if before is not None:
                before(emu)
            ctl = OpenEvseController(TtyDevice(os.ttyname(slave), 115200), **{**FAST, **options})
            ctl_scope = trio.CancelScope()

            async def run_controller(task_status: trio.TaskStatus[None]) -> None:
                with ctl_scope:
                    await ctl.run(send, task_status=task_status)

            await nursery.start(run_controller)
            await until(lambda: ctl.connected)
            yield Rig(emu, ctl, recv, nursery, ctl_scope, slave)
            nursery.cancel_scope.cancel()
    finally:
        os.close(master)
        os.close(slave)


# --- start-up --------------------------------------------------------------------------------
async def test_start_up_sequence_locks_the_controller_and_pushes_the_present_state() -> None:
    async with rig(before=lambda emu: emu.request_energy(), initial_current=10,
                   supervision_interval=30, safe_current=6) as r:
        await r.expect(CablePlugged(1), EnergyRequested(1, power_w=0.0))
        assert r.emu.commands[:7] == ["FF E 0", "GV", "FS", "S4 1", "SC 10 V", "SY 30 6", "GS"]
        assert r.emu.auth_locked and r.emu.mode == "sleeping"
        assert not r.emu.relay_closed                 # the EV asks, nobody consented
        assert (r.emu.current, r.emu.hs_interval, r.emu.hs_amps) == (10, 30, 6)
        assert not r.emu.echo
        r.no_event()


async def test_started_at_once_and_silent_fault_when_the_device_is_missing(tmp_path) -> None:
    send, recv = trio.open_memory_channel(10)
    ctl = OpenEvseController(TtyDevice(str(tmp_path / "nothing"), 115200), **FAST)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(HANG_GUARD):
            await nursery.start(ctl.run, send)         # started although nothing is there
            assert await recv.receive() == SILENT
        with pytest.raises(HardwareError):
            await ctl.set_power_path(1, True)
        with pytest.raises(HardwareError):
            await ctl.set_offered_current(1, 16)
        await trio.sleep(0.3)                          # several reopen attempts ...
        with pytest.raises(trio.WouldBlock):
            recv.receive_nowait()                      # ... reported once
        nursery.cancel_scope.cancel()


# --- the EV ----------------------------------------------------------------------------------
async def test_plug_request_pause_unplug_become_events() -> None:
    async with rig(poll_interval=60) as r:
        r.emu.plug()
        await r.expect(CablePlugged(1))
        r.emu.request_energy()
        await r.expect(EnergyRequested(1, power_w=0.0))
        r.emu.pause()
        await r.expect(EnergyPaused(1))
        r.emu.request_energy()
        await r.expect(EnergyRequested(1, power_w=0.0))
        r.emu.unplug()                                  # straight from C
        await r.expect(CableUnplugged(1))
        r.emu.request_energy()                          # straight from A
        await r.expect(CablePlugged(1), EnergyRequested(1, power_w=0.0))
        r.no_event()


async def test_the_state_poll_catches_changes_without_notifications() -> None:
    async with rig(poll_interval=0.1) as r:
        r.emu.async_notifications = False
        r.emu.plug()
        await r.expect(CablePlugged(1))
        r.emu.unplug()
        await r.expect(CableUnplugged(1))


async def test_the_ev_is_seen_through_the_pilot_while_the_evse_sleeps() -> None:
    async with rig(poll_interval=60) as r:
        assert r.emu.evse_state == rapi.STATE_SLEEPING
        r.emu.request_energy()
        await r.expect(CablePlugged(1), EnergyRequested(1, power_w=0.0))
        assert r.emu.evse_state == rapi.STATE_SLEEPING


# --- consent ---------------------------------------------------------------------------------
async def test_the_relay_closes_only_with_the_domains_consent() -> None:
    async with rig(poll_interval=60) as r:
        r.emu.request_energy()
        await r.expect(CablePlugged(1), EnergyRequested(1, power_w=0.0))
        assert not r.emu.relay_closed
        n = len(r.emu.commands)
        await r.ctl.set_power_path(1, True)
        assert r.since(n) == ["S4 0", "FE"]
        assert r.emu.relay_closed and r.emu.evse_state == rapi.STATE_C
        n = len(r.emu.commands)
        await r.ctl.set_power_path(1, False)
        assert r.since(n) == ["FS", "S4 1"]
        assert not r.emu.relay_closed and r.emu.auth_locked
        r.no_event()                                     # the EV still asks: nothing to report


async def test_an_enabled_unlocked_controller_is_locked_at_start() -> None:
    emu = OpenEvseEmulator(auth_lock_default=False)
    async with rig(emu, before=lambda e: e.request_energy()) as r:
        await r.expect(CablePlugged(1), EnergyRequested(1, power_w=0.0))
        assert not r.emu.relay_closed and r.emu.auth_locked


async def test_set_power_path_raises_when_refused() -> None:
    async with rig() as r:
        r.emu.unsupported = {"FE"}
        with pytest.raises(HardwareError, match=r"refused \$FE"):
            await r.ctl.set_power_path(1, True)
        with pytest.raises(HardwareError, match="no EVSE 2"):
            await r.ctl.set_power_path(2, True)


# --- current ---------------------------------------------------------------------------------
async def test_offered_current_is_set_and_clamping_is_a_warning(caplog) -> None:
    async with rig(poll_interval=60) as r:
        n = len(r.emu.commands)
        await r.ctl.set_offered_current(1, 10.7)
        assert r.since(n) == ["SC 10 V"] and r.emu.current == 10 and r.ctl.current_set == 10
        with caplog.at_level(logging.WARNING, logger="evse.hardware"):
            await r.ctl.set_offered_current(1, 40)
        assert r.emu.current == 32 and r.ctl.current_set == 32
        assert "clamped the offered current 40 A to 32 A" in caplog.text
        await r.ctl.set_offered_current(1, 2)
        assert r.emu.current == 6 and r.ctl.current_set == 6


# --- connector -------------------------------------------------------------------------------
async def test_unlock_connector() -> None:
    async with rig(command_timeout=0.3, retries=0) as r:
        r.emu.connector_locked = True
        assert await r.ctl.unlock_connector(1, 1) is True
        assert r.emu.commands[-1] == "S5 0" and not r.emu.connector_locked
        r.emu.unsupported = {"S5"}                       # no Mennekes lock in this build
        assert await r.ctl.unlock_connector(1, 1) is False
        r.emu.go_silent(True)
        with pytest.raises(HardwareError):
            await r.ctl.unlock_connector(1, 1)


# --- asynchronous messages -------------------------------------------------------------------
async def test_a_state_change_between_a_command_and_its_answer() -> None:
    async with rig(poll_interval=60) as r:
        r.emu.response_delay = 0.3
        n = len(r.emu.commands)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(r.ctl.set_offered_current, 1, 12)
            with trio.fail_after(HANG_GUARD):
                await r.emu.wait_for_command("SC", after=n)
            r.emu.plug()                                 # $AT goes out before the answer
            await r.expect(CablePlugged(1))
        assert r.emu.current == 12 and r.ctl.current_set == 12
        assert r.ctl.stats.wrong_responses == 0


async def test_a_reboot_mid_session_re_applies_consent_and_current() -> None:
    emu = OpenEvseEmulator(auth_lock_default=False, default_current=16)
    async with rig(emu, poll_interval=60) as r:
        r.emu.request_energy()
        await r.expect(CablePlugged(1), EnergyRequested(1, power_w=0.0))
        await r.ctl.set_power_path(1, True)
        await r.ctl.set_offered_current(1, 10)
        assert r.emu.relay_closed
        r.emu.auth_lock_default = True                   # the firmware boots locked ...
        n = len(r.emu.commands)
        r.emu.reboot()                                   # ... at its saved current
        seen = await r.events_until(
            DeviceProblem("Controller", False, 1, "state re-applied after controller reboot"))
        assert seen[0] == DeviceProblem("Controller", True, 1, "controller rebooted (postcode 00)")
        assert [e for e in seen[1:-1] if not isinstance(e, DeviceProblem)] == []
        for command in ("S4 0", "FE", "SC 10 V"):
            assert command in r.since(n)
        assert r.emu.relay_closed and r.emu.current == 10 and not r.emu.auth_locked
        assert r.ctl.stats.reboots == 1


async def test_a_reboot_without_consent_locks_again() -> None:
    emu = OpenEvseEmulator(auth_lock_default=False)
    async with rig(emu, poll_interval=60) as r:
        r.emu.request_energy()
        await r.expect(CablePlugged(1), EnergyRequested(1, power_w=0.0))
        n = len(r.emu.commands)
        r.emu.reboot()                                   # boots unlocked and enabled
        await r.events_until(
            DeviceProblem("Controller", False, 1, "state re-applied after controller reboot"))
        assert r.since(n)[:4] == ["FF E 0", "GV", "FS", "S4 1"]
        assert not r.emu.relay_closed and r.emu.auth_locked


async def test_a_restart_from_elsewhere_is_survived() -> None:
    async with rig(poll_interval=60) as r:
        await r.ctl.set_offered_current(1, 10)
        os.write(r.slave, rapi.encode("FR"))             # someone restarts the controller
        await r.expect(DeviceProblem("Controller", True, 1, "controller rebooted (postcode 00)"),
                       DeviceProblem("Controller", False, 1,
                                     "state re-applied after controller reboot"))
        assert r.emu.current == 10 and r.emu.auth_locked and r.emu.mode == "sleeping"
        assert r.ctl.stats.reboots == 1


# --- faults ----------------------------------------------------------------------------------
@pytest.mark.parametrize("code, fault", [
    (0x06, FaultRaised(1, "GroundFault", "RCD", "Tripped")),
    (0x08, FaultRaised(1, "StuckRelay", "PowerContactor", "Problem")),
    (0x0B, FaultRaised(1, "OverCurrent", "OverCurrentProtection", "Problem")),
    (0x0E, FaultRaised(1, "RelayClosureFault", "PowerContactor", "Problem")),
])
async def test_faults_are_raised_and_cleared(code: int, fault: FaultRaised) -> None:
    async with rig(poll_interval=60) as r:
        r.emu.fault(code)
        await r.expect(fault)
        r.emu.clear_fault()
        await r.expect(FaultCleared(1, fault.fault))
        r.no_event()


async def test_one_fault_follows_another() -> None:
    async with rig(poll_interval=60) as r:
        r.emu.fault(0x07)
        await r.expect(FaultRaised(1, "NoGround", "ElectricalFeed", "Problem"))
        r.emu.fault(0x0A)
        await r.expect(FaultCleared(1, "NoGround"),
                       FaultRaised(1, "OverTemperature", "TemperatureSensor", "Problem"))


async def test_a_boot_postcode_fault() -> None:
    async with rig(poll_interval=0.2) as r:
        r.emu.async_notifications = False
        r.emu.fault(0x09)
        r.emu.reboot()
        await r.expect(DeviceProblem("Controller", True, 1, "controller rebooted (postcode 09)"),
                       FaultRaised(1, "GfiSelfTestFailed", "RCD", "Problem"),
                       DeviceProblem("Controller", False, 1,
                                     "state re-applied after controller reboot"))
        r.emu.clear_fault()                              # no $AT: the poll sees it
        await r.expect(FaultCleared(1, "GfiSelfTestFailed"))


# --- silence ---------------------------------------------------------------------------------
async def test_silence_faults_the_evse_and_recovery_clears_it() -> None:
    async with rig(command_timeout=0.2, retries=1, poll_interval=0.1) as r:
        r.emu.go_silent(True)
        await r.expect(SILENT)
        with pytest.raises(HardwareError):
            await r.ctl.set_power_path(1, True)          # bounded: fails, remembered
        r.emu.request_energy()                           # while nobody listens
        r.emu.go_silent(False)
        await r.expect(CablePlugged(1), EnergyRequested(1, power_w=0.0),
                       FaultCleared(1, "ControllerSilent"))
        assert r.ctl.stats.timeouts >= 2 and r.ctl.stats.reconnects >= 1
        await until(lambda: r.emu.relay_closed)          # the remembered consent applied
        r.no_event()


# --- bad bytes -------------------------------------------------------------------------------
def line(body: bytes) -> bytes:
    return body + b"^%02X\r" % rapi.checksum(body)


async def test_bad_bytes_are_counted_and_ignored() -> None:
    async with rig(poll_interval=60) as r:
        stats = r.ctl.stats
        r.emu.inject(b"\x00\xff\x13garbage")                       # garbage
        r.emu.inject(b"$AT 02 02 16 0100^00\r")                    # wrong checksum (a plug!)
        r.emu.inject(b"$AT 03 03 16 01")                           # truncated ...
        r.emu.inject(b"$OK " + b"7" * 200 + b"\r")                 # oversized
        r.emu.inject(line(b"$AT zz 02 16 0100"))                   # well framed, bad field
        r.emu.inject(line(b"$OK 1 :00"))                           # a response nobody waits for
        await until(lambda: stats.bad_frames >= 5 and stats.wrong_responses >= 1)
        await trio.testing.wait_all_tasks_blocked(0.05)
        r.no_event()                                               # nothing taken from them
        assert (stats.bad_frames, stats.wrong_responses) == (5, 1)
        assert r.ctl.connected
        r.emu.plug()                                               # sense again
        await r.expect(CablePlugged(1))
        await r.ctl.set_offered_current(1, 10)
        assert r.emu.current == 10


async def test_a_response_with_the_wrong_sequence_id_is_not_taken() -> None:
    async with rig(poll_interval=60) as r:
        r.emu.response_delay = 0.3
        n = len(r.emu.commands)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(r.ctl.set_offered_current, 1, 12)
            with trio.fail_after(HANG_GUARD):
                await r.emu.wait_for_command("SC", after=n)
            r.emu.inject(line(b"$NK 32"))                          # no sequence id
            r.emu.inject(line(b"$NK 32 :00"))                      # the reserved one
        assert r.ctl.current_set == 12 and r.emu.current == 12
        assert r.ctl.stats.wrong_responses == 2


async def test_the_bare_nk_to_a_garbled_command_is_nobodys_answer() -> None:
    """The firmware answers a command whose checksum is wrong with a bare $NK (no sequence
    id): no waiting command takes it."""
    async with rig(poll_interval=60) as r:
        os.write(r.slave, b"$SC 90 V :05^00\r")                   # bits flipped on the wire
        await until(lambda: r.ctl.stats.wrong_responses == 1)
        assert r.emu.bad_commands == 1 and r.emu.current == 16     # not applied
        await r.ctl.set_offered_current(1, 10)
        assert r.emu.current == 10


# --- the ammeter -----------------------------------------------------------------------------
async def test_ammeter_readings_while_charging() -> None:
    async with rig(poll_interval=60) as r:
        meter = OpenEvseAmmeter(r.ctl)
        assert meter.component == "ControlMetering"
        r.emu.request_energy()
        await r.expect(CablePlugged(1), EnergyRequested(1, power_w=0.0))
        idle = await meter.read(1)
        assert (idle.current_a, idle.voltage_v, idle.power_w) == ((0.0,), (230.0,), 0.0)
        await r.ctl.set_offered_current(1, 16)
        await r.ctl.set_power_path(1, True)
        first = await meter.read(1)
        assert first.current_a == (16.0,) and first.voltage_v == (230.0,)
        assert first.power_w == pytest.approx(16 * 230.0)
        with trio.fail_after(HANG_GUARD):
            while (second := await meter.read(1)).energy_wh < first.energy_wh + 0.5:
                await trio.sleep(0.05)
        assert second.energy_wh == pytest.approx(int(r.emu.ws) / 3600)  # what GU said


async def test_ammeter_register_across_unplug_and_replug() -> None:
    """The firmware folds a session into whole Wh at unplug and clears the session at the
    next plug-in: the register neither jumps nor goes backwards."""
    async with rig(poll_interval=60) as r:
        meter = OpenEvseAmmeter(r.ctl)
        r.emu.plug()
        await r.expect(CablePlugged(1))
        r.emu.whacc, r.emu.ws = 2, 9000.0                          # 2 Wh before, 2.5 Wh now
        assert (await meter.read(1)).energy_wh == pytest.approx(4.5)
        r.emu.unplug()
        await r.expect(CableUnplugged(1))
        assert r.emu.whacc == 4                                    # folded, 0.5 Wh dropped
        assert (await meter.read(1)).energy_wh == pytest.approx(4.5)
        r.emu.plug()
        await r.expect(CablePlugged(1))
        assert r.emu.ws == 0
        assert (await meter.read(1)).energy_wh == pytest.approx(4.5)
        r.emu.ws = 1800.0
        assert (await meter.read(1)).energy_wh == pytest.approx(5.0)


async def test_ammeter_refuses_bad_readings() -> None:
    async with rig(command_timeout=0.3, retries=0, poll_interval=60) as r:
        meter = OpenEvseAmmeter(r.ctl)
        r.emu.whacc = 100
        assert (await meter.read(1)).energy_wh == pytest.approx(100.0)
        r.emu.whacc = 50                                           # backwards
        with pytest.raises(MeterError, match="backwards"):
            await meter.read(1)
        r.emu.whacc = 100
        assert (await meter.read(1)).energy_wh == pytest.approx(100.0)
        r.emu.ammeter = False                                      # GG answers -1 A
        with pytest.raises(MeterError, match="no ammeter"):
            await meter.read(1)
        r.emu.ammeter = True
        with pytest.raises(MeterError, match="no EVSE 2"):
            await meter.read(2)
        r.emu.go_silent(True)                                      # timeout
        with pytest.raises(MeterError):
            await meter.read(1)
        await r.expect(SILENT)
        with pytest.raises(MeterError):                            # disconnected
            await meter.read(1)
        r.emu.go_silent(False)
        await r.expect(FaultCleared(1, "ControllerSilent"))
        assert (await meter.read(1)).energy_wh == pytest.approx(100.0)


async def test_ammeter_ignores_a_stray_answer() -> None:
    async with rig(poll_interval=60) as r:
        meter = OpenEvseAmmeter(r.ctl)
        r.emu.response_delay = 0.3
        n = len(r.emu.commands)
        async with trio.open_nursery() as nursery:
            async def read() -> None:
                reading = await meter.read(1)
                assert reading.current_a == (0.0,) and reading.voltage_v == (230.0,)
            nursery.start_soon(read)
            with trio.fail_after(HANG_GUARD):
                await r.emu.wait_for_command("GG", after=n)
            r.emu.inject(line(b"$OK 99000 230000 :00"))
        assert r.ctl.stats.wrong_responses == 1


# --- heartbeat supervision -------------------------------------------------------------------
async def test_when_the_pulses_stop_the_controller_drops_to_the_safe_current() -> None:
    async with rig(supervision_interval=2, safe_current=6, poll_interval=60) as r:
        await r.ctl.set_offered_current(1, 20)
        n = len(r.emu.commands)
        with trio.fail_after(HANG_GUARD):
            await r.emu.wait_for_command("SY", after=n)            # pulses flow
        assert r.emu.hs_trigger == 0 and r.emu.current == 20
        r.ctl_scope.cancel()                                       # the station hangs
        await until(lambda: r.emu.current == 6)
        assert r.emu.hs_trigger == 2


async def test_a_missed_pulse_is_acknowledged_and_the_current_re_applied() -> None:
    async with rig(supervision_interval=2, safe_current=6, poll_interval=60) as r:
        await r.ctl.set_offered_current(1, 20)
        n = len(r.emu.commands)
        r.emu.expire_heartbeat()                                   # pulses lost on the wire
        assert r.emu.current == 6
        with trio.fail_after(HANG_GUARD):
            await r.emu.wait_for_command("SY 165", after=n)
        await until(lambda: r.emu.current == 20)
        assert r.emu.hs_trigger == 1
        assert r.ctl.connected


@pytest.mark.mock_clock
async def test_emulator_meter_behind_the_relay_follows_sc_with_the_energy_integrated() -> None:
    """The emulator's `on_power` (an SDM630 emulator behind the relay): `SC` changes the drawn
    power at once and the energy up to that instant counts at the old current: 10 s at the
    default 16 A, then `SC 6 V` and 10 s at 6 A (MockClock: exact)."""
    from devtools.emulators.sdm630 import Sdm630Emulator

    emu, sdm = OpenEvseEmulator(), Sdm630Emulator()
    emu.on_power = sdm.set_load
    for command in (b"$S4 0", b"$FE"):
        await emu._on_line(command)
    emu.request_energy()
    assert emu.relay_closed and sum(sdm.values()[r] for r in (0x000C, 0x000E, 0x0010)) == 16 * 230
    await trio.sleep(10)
    await emu._on_line(b"$SC 6 V")
    assert emu.current == 6 and sdm.values()[0x0034] == 6 * 230
    await trio.sleep(10)
    assert sdm.energy_kwh() == pytest.approx((16 + 6) * 230 * 10 / 3_600_000)
    emu.pause()                                         # the relay opens: nothing drawn
    assert sdm.values()[0x0034] == 0
