"""adapters.sdm630 (Modbus RTU codec and the SDM630 meter) and devtools.emulators.sdm630.

Real bytes over real pseudo-terminals. The adapter is cross-checked against pymodbus, an
implementation nobody here wrote, in both directions:

* pymodbus's RTU serial server plays the meter. It opens a port *path* with pyserial, so it
  gets the slave side of a pty (``os.ttyname(slave)``) and our adapter talks on the master
  side through `MasterEnd`, a SerialDevice whose `open()` is an FdStream over a dup of the
  master fd. One pty is the null-modem cable: what one end writes, the other end reads.
  The server runs in its own thread with its own asyncio loop and is shut down (and the
  thread joined) at the end of each test.
* our emulator serves the master side and pymodbus's sync client (`ModbusSerialClient`,
  in a worker thread) reads the same registers our adapter reads, decoding them itself.

Everything else runs our adapter (through the real TtyDevice on the slave path) against
our emulator on the master side.
"""
from __future__ import annotations

import asyncio
import math
import os
import pty
import struct
import termios
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from adapters.sdm630 import Sdm630Meter
from adapters.sdm630.modbus_rtu import (
    CrcError,
    FrameError,
    ModbusException,
    WrongUnitError,
    crc16,
    crc_ok,
    float32,
    parse_read_input_registers_response,
    read_input_registers_request,
    response_length,
)
from adapters.serial_tty import TtyDevice, make_raw
from devtools.emulators.sdm630 import REGISTERS, Sdm630Emulator
from ports.hardware import Meter, MeterError

GUARD = 10          # seconds: hang guard for a whole test, never a timing assertion
SHORT = 0.3         # meter timeout where a failure is expected


def f32(value: float) -> float:
    """`value` as it survives a float32 register pair."""
    return struct.unpack(">f", struct.pack(">f", value))[0]


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<H", crc16(body))


# --- the codec ---------------------------------------------------------------------------------
def test_crc16_known_vectors() -> None:
    assert crc16(bytes.fromhex("010400000002")) == 0xCB71          # sent as 71 CB
    assert crc16(b"123456789") == 0x4B37                           # CRC-16/MODBUS check value
    assert crc_ok(bytes.fromhex("01040000000271CB"))
    assert not crc_ok(bytes.fromhex("01040000000271CC"))


def test_read_input_registers_request() -> None:
    assert read_input_registers_request(1, 0x0000, 2) == bytes.fromhex("01040000000271CB")
    frame = read_input_registers_request(7, 0x0048, 4)
    assert frame[:6] == bytes.fromhex("070400480004") and crc_ok(frame)
    for bad in ((0, 0, 1), (248, 0, 1), (1, 0, 0), (1, 0, 126), (1, 0xFFFF, 2)):
        with pytest.raises(ValueError):
            read_input_registers_request(*bad)


def test_parse_answers_recorded_from_pymodbus() -> None:
    # Answers pymodbus's server sent for registers 0x0034 (7500.0 W) and for an unheld address.
    regs = parse_read_input_registers_response(bytes.fromhex("01040445ea6000e77c"), 1, 2)
    assert bytes(regs) == bytes.fromhex("45ea6000") and float32(regs, 0) == 7500.0
    with pytest.raises(ModbusException, match=r"^exception 2 \(illegal data address\)$") as info:
        parse_read_input_registers_response(bytes.fromhex("018402c2c1"), 1, 2)
    assert info.value.code == 2


@pytest.mark.parametrize(("code", "name"), [(1, "illegal function"), (2, "illegal data address"),
                                            (3, "illegal data value"), (4, "slave device failure"),
                                            (6, "slave device busy")])
def test_exception_responses_name_the_exception(code: int, name: str) -> None:
    frame = with_crc(bytes((1, 0x84, code)))
    assert response_length(frame[:2]) == 5
    with pytest.raises(ModbusException) as info:
        parse_read_input_registers_response(frame, 1, 12)
    assert info.value.code == code and str(info.value) == f"exception {code} ({name})"


def test_parse_rejects_every_kind_of_bad_frame() -> None:
    good = with_crc(bytes((1, 4, 4)) + struct.pack(">f", 230.0))
    assert float32(parse_read_input_registers_response(good, 1, 2), 0) == 230.0
    corrupt = good[:4] + bytes((good[4] ^ 0x01,)) + good[5:]
    with pytest.raises(CrcError, match="CRC"):
        parse_read_input_registers_response(corrupt, 1, 2)
    with pytest.raises(WrongUnitError, match="unit 2, expected 1"):
        parse_read_input_registers_response(with_crc(bytes((2,)) + good[1:-2]), 1, 2)
    with pytest.raises(FrameError, match="function 0x03"):
        parse_read_input_registers_response(with_crc(bytes((1, 3)) + good[2:-2]), 1, 2)
    with pytest.raises(FrameError, match="byte count 4, expected 8"):
        parse_read_input_registers_response(good, 1, 4)
    with pytest.raises(FrameError, match="for byte count 4"):            # truncated
        parse_read_input_registers_response(with_crc(good[:-3]), 1, 2)
    with pytest.raises(FrameError, match="too short"):
        parse_read_input_registers_response(b"\x01\x04", 1, 2)
    with pytest.raises(FrameError, match="exception response"):
        parse_read_input_registers_response(with_crc(bytes((1, 0x84, 2, 0))), 1, 2)


def test_response_length_from_the_header() -> None:
    assert response_length(b"") is None and response_length(b"\x01") is None
    assert response_length(b"\x01\x04") is None                 # byte count not yet seen
    assert response_length(b"\x01\x04\x18") == 5 + 24
    assert response_length(b"\x01\x84") == 5
    with pytest.raises(FrameError, match="function 0x03"):
        response_length(b"\x01\x03\x04")
    with pytest.raises(FrameError, match="byte count 251"):
        response_length(b"\x01\x04\xfb")


def test_float32_is_big_endian_high_word_first() -> None:
    regs = bytes.fromhex("43660000" "449a5000" "7fc00000")   # 230.0, 1234.5, NaN
    assert float32(regs, 0) == 230.0
    assert float32(regs, 2) == 1234.5
    assert math.isnan(float32(regs, 4))
    assert float32(memoryview(regs)[4:], 0) == 1234.5


@given(unit=st.integers(1, 247), payload=st.binary(min_size=2, max_size=250).filter(lambda b: len(b) % 2 == 0),
       bit=st.integers(0, 10_000))
def test_a_flipped_bit_never_yields_registers(unit: int, payload: bytes, bit: int) -> None:
    frame = with_crc(bytes((unit, 4, len(payload))) + payload)
    assert bytes(parse_read_input_registers_response(frame, unit, len(payload) // 2)) == payload
    bit %= 8 * len(frame)
    flipped = bytearray(frame)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises((FrameError, ModbusException)):
        parse_read_input_registers_response(flipped, unit, len(payload) // 2)


# --- the emulator, sans I/O --------------------------------------------------------------------
def request(address: int, count: int, *, unit: int = 1, function: int = 4) -> bytes:
    return with_crc(struct.pack(">BBHH", unit, function, address, count))


async def test_emulator_refuses_what_an_sdm630_refuses() -> None:
    emu = Sdm630Emulator()
    assert emu.answer(request(0x0000, 0)) == with_crc(b"\x01\x84\x03")
    assert emu.answer(request(0x0000, 126)) == with_crc(b"\x01\x84\x03")
    assert emu.answer(request(0x0012, 2)) == with_crc(b"\x01\x84\x02")    # not in the map
    assert emu.answer(request(0x0048, 6)) == with_crc(b"\x01\x84\x02")    # runs past 0x004B
    assert emu.answer(request(0x0000, 2, function=3)) == with_crc(b"\x01\x83\x01")
    assert emu.requests == 5
    assert emu.answer(request(0x0000, 2)[:-1] + b"\x00") is None          # bad CRC: mute
    assert emu.answer(request(0x0000, 2, unit=2)) is None                 # another unit: mute
    assert (emu.requests, emu.ignored) == (5, 2)
    for address in REGISTERS:                                             # every listed register
        reply = emu.answer(request(address, 2))
        assert reply is not None and reply[:3] == b"\x01\x04\x04" and crc_ok(reply)


async def test_emulator_energy_integrates_over_the_trio_clock(autojump_clock: Any) -> None:
    emu = Sdm630Emulator()
    emu.set_energy_kwh(100.0)
    emu.set_load((1000.0, 2000.0, 4200.0))
    await trio.sleep(3600)
    assert emu.energy_kwh() == pytest.approx(107.2)
    values = emu.values()
    assert values[0x0034] == pytest.approx(7200.0)
    assert values[0x000A] == pytest.approx(4200.0 / 230.0)
    emu.set_load(-3600.0)                                    # feeding back: export grows
    await trio.sleep(1800)
    assert emu.energy_kwh() == pytest.approx(107.2)
    assert emu.values()[0x004A] == pytest.approx(1.8)


# --- pty plumbing --------------------------------------------------------------------------------
class MasterEnd:
    """The master side of a pty as a SerialDevice (the far end holds the slave path)."""

    label = "pty-master"

    def __init__(self, fd: int) -> None:
        self.fd = fd

    async def open(self) -> trio.abc.Stream:
        return trio.lowlevel.FdStream(os.dup(self.fd))

    async def wait_gone(self) -> None:
        await trio.sleep_forever()


async def open_tty(path: str) -> trio.abc.Stream:
    """TtyDevice's stream, with VMIN set to 1.

    Workaround: adapters.serial_tty.make_raw sets VMIN=0, VTIME=0, under which a read with
    nothing pending returns 0 bytes instead of EAGAIN, so trio's FdStream reports end of
    stream whenever the line is idle. Harmless once make_raw sets VMIN=1 itself."""
    stream = await TtyDevice(path, 9600).open()
    assert isinstance(stream, trio.lowlevel.FdStream)
    attrs = termios.tcgetattr(stream.fileno())
    attrs[6][termios.VMIN], attrs[6][termios.VTIME] = 1, 0
    termios.tcsetattr(stream.fileno(), termios.TCSANOW, attrs)
    return stream


class Pluggable:
    """A tty device (TtyDevice) that can be unplugged, re-pointed and reported gone;
    counts opens."""

    def __init__(self, path: str) -> None:
        self.label = self.path = path
        self.present = True
        self.opens = 0
        self.gone = trio.Event()

    async def open(self) -> trio.abc.Stream:
        self.opens += 1
        if not self.present:
            raise OSError(f"{self.path}: no such device")
        return await open_tty(self.path)

    async def wait_gone(self) -> None:
        await self.gone.wait()


class Pty:
    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        make_raw(self.slave, 9600)       # never a cooked line (echo) in between
        self.path = os.ttyname(self.slave)

    def close(self) -> None:
        """Close both ends (again: no-op)."""
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1


@asynccontextmanager
async def emulated(emu: Sdm630Emulator | None = None, *, device: Any = None,
                   **meter_args: Any) -> AsyncIterator[tuple[Sdm630Emulator, Sdm630Meter, Pty]]:
    """Our emulator on a pty's master side; the meter adapter on its slave path."""
    emu = emu or Sdm630Emulator()
    line = Pty()
    try:
        with trio.fail_after(GUARD):
            async with trio.open_nursery() as nursery:
                await nursery.start(emu.serve, line.master)
                meter_args.setdefault("timeout", 2.0)
                meter_args.setdefault("retries", 0)
                meter = Sdm630Meter(device or Pluggable(line.path), **meter_args)
                try:
                    yield emu, meter, line
                finally:
                    await meter.aclose()
                    nursery.cancel_scope.cancel()
    finally:
        line.close()


@asynccontextmanager
async def pymodbus_meter(values: dict[int, list[float]]) -> AsyncIterator[Pty]:
    """pymodbus's RTU serial server holding `values` (address -> float32s) as unit 1's input
    registers, on the slave side of a fresh pty, in a thread with its own asyncio loop."""
    from pymodbus.framer import FramerType
    from pymodbus.server import ModbusSerialServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    line = Pty()
    device = SimDevice(id=1, simdata=[SimData(address=a, values=v, datatype=DataType.FLOAT32)
                                      for a, v in sorted(values.items())])
    ready = threading.Event()
    stop: dict[str, Any] = {}
    failure: list[BaseException] = []

    def run() -> None:
        async def main() -> None:
            server = ModbusSerialServer(device, framer=FramerType.RTU, port=line.path, baudrate=9600)
            await server.serve_forever(background=True)
            stop["loop"], stop["server"] = asyncio.get_running_loop(), server
            ready.set()
            await server.serving

        try:
            asyncio.run(main())
        except BaseException as exc:     # reported by the test, not lost in the thread
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=run, name="pymodbus-server", daemon=True)
    thread.start()
    try:
        assert await trio.to_thread.run_sync(ready.wait, GUARD), "pymodbus server did not start"
        assert not failure, failure
        yield line
    finally:
        if "server" in stop:
            future = asyncio.run_coroutine_threadsafe(stop["server"].shutdown(), stop["loop"])
            await trio.to_thread.run_sync(future.result, GUARD)
        await trio.to_thread.run_sync(thread.join, GUARD)
        assert not thread.is_alive(), "pymodbus server thread did not stop"
        line.close()


SDM630_VALUES = {
    0x0000: [230.5, 231.25, 229.75, 10.5, 11.25, 12.0, 2420.25, 2601.5, 2757.0],
    0x0034: [7778.75],
    0x0046: [50.0, 1234.5, 0.0],
}


# --- the adapter against pymodbus's server -----------------------------------------------------
async def test_reads_what_pymodbus_holds() -> None:
    with trio.fail_after(GUARD):
        async with pymodbus_meter(SDM630_VALUES) as line:
            meter = Sdm630Meter(MasterEnd(line.master), timeout=2.0)
            port: Meter = meter                    # the port, as bootstrap sees it
            assert port.component == "FiscalMetering"
            try:
                first = await meter.read(1)
                second = await meter.read(1)
            finally:
                await meter.aclose()
    assert first.voltage_v == (230.5, 231.25, 229.75)
    assert first.current_a == (10.5, 11.25, 12.0)
    assert first.power_w == 7778.75
    assert first.energy_wh == 1234.5 * 1000
    assert second == first
    assert meter.stats.reads_ok == 2 and meter.stats.timeouts == meter.stats.crc_errors == 0


async def test_exception_from_pymodbus_is_a_meter_error_naming_it() -> None:
    held = {a: v for a, v in SDM630_VALUES.items() if a != 0x0046}     # no energy registers
    with trio.fail_after(GUARD):
        async with pymodbus_meter(held) as line:
            meter = Sdm630Meter(MasterEnd(line.master), timeout=2.0, retries=1)
            try:
                with pytest.raises(MeterError, match=r"energy.*exception 2 \(illegal data address\)"):
                    await meter.read(1)
            finally:
                await meter.aclose()
    assert meter.stats.exceptions == 1 and meter.stats.reads_ok == 0     # not retried


async def test_pymodbus_client_reads_our_emulator_like_our_adapter() -> None:
    from pymodbus.client import ModbusSerialClient

    emu = Sdm630Emulator()
    async with emulated(emu) as (emu, meter, line):
        emu.set_load((2300.0, 2415.0, 2760.0), voltage=230.0)
        emu.set_energy_kwh(4321.25)
        ours = await meter.read(1)
        client = ModbusSerialClient(port=line.path, baudrate=9600, timeout=2, retries=1)

        def read_all() -> list[Any]:
            assert client.connect()
            try:
                return [client.read_input_registers(address, count=count, device_id=1)
                        for address, count in ((0x0000, 12), (0x0034, 2), (0x0046, 4), (0x0012, 2))]
            finally:
                client.close()

        phases, power, energy, unheld = await trio.to_thread.run_sync(read_all)
    decode = client.convert_from_registers
    floats = decode(phases.registers, client.DATATYPE.FLOAT32)
    assert floats == [230.0, 230.0, 230.0, f32(10.0), f32(10.5), f32(12.0)]
    assert list(ours.voltage_v) == floats[:3] and list(ours.current_a) == floats[3:]
    assert decode(power.registers, client.DATATYPE.FLOAT32) == ours.power_w == 7475.0
    frequency, import_kwh = decode(energy.registers, client.DATATYPE.FLOAT32)
    assert frequency == 50.0
    assert ours.energy_wh / 1000 <= import_kwh < ours.energy_wh / 1000 + 0.1   # grows, slowly
    assert unheld.isError() and unheld.exception_code == 2


# --- the adapter against our emulator -----------------------------------------------------------
async def test_energy_is_monotonic_and_grows_under_load() -> None:
    async with emulated() as (emu, meter, _):
        emu.set_energy_kwh(10.0)
        emu.set_load(360_000.0)                 # 100 Wh per second
        readings = []
        for _ in range(5):
            readings.append(await meter.read(1))
            await trio.sleep(0.02)
    energies = [r.energy_wh for r in readings]
    assert energies == sorted(energies) and energies[-1] > energies[0] >= 10_000.0
    assert readings[0].power_w == 360_000.0
    assert readings[0].voltage_v == (230.0,) * 3
    assert readings[0].current_a == (f32(120_000.0 / 230.0),) * 3
    assert meter.stats.reads_ok == 5


async def test_silence_is_a_timeout_then_the_meter_recovers() -> None:
    async with emulated(timeout=SHORT, retries=1) as (emu, meter, _):
        emu.go_silent()
        with pytest.raises(MeterError, match=r"^SDM630 unit 1 on .*: phases: no answer within 0.3 s$"):
            await meter.read(1)
        assert meter.stats.timeouts == 2 and emu.requests == 2        # one retry
        emu.go_silent(False)
        assert (await meter.read(1)).voltage_v == (230.0,) * 3
        assert meter.stats.reads_ok == 1


async def test_bad_crc_is_an_error_and_the_next_read_is_fine() -> None:
    async with emulated() as (emu, meter, _):
        emu.corrupt_next()
        with pytest.raises(MeterError, match="CRC"):
            await meter.read(1)
        assert meter.stats.crc_errors == 1
        await meter.read(1)
        assert meter.stats.reads_ok == 1


async def test_a_retry_cures_one_bad_crc() -> None:
    async with emulated(retries=1) as (emu, meter, _):
        emu.corrupt_next()
        await meter.read(1)
    assert meter.stats.crc_errors == 1 and meter.stats.reads_ok == 1 and emu.requests == 4


async def test_nan_is_implausible() -> None:
    async with emulated() as (emu, meter, _):
        emu.nan_next()
        with pytest.raises(MeterError, match="implausible L1 voltage nan"):
            await meter.read(1)
        assert meter.stats.implausible == 1
        await meter.read(1)


async def test_energy_going_backwards_is_refused_and_the_last_good_stays() -> None:
    async with emulated() as (emu, meter, _):
        emu.set_energy_kwh(100.0)
        assert (await meter.read(1)).energy_wh == 100_000.0
        emu.set_energy_kwh(50.0)
        with pytest.raises(MeterError, match=r"backwards: 50.0 kWh after 100.0 kWh"):
            await meter.read(1)
        emu.set_energy_kwh(99.5)                # above the bad value, below the last good one
        with pytest.raises(MeterError, match="backwards"):
            await meter.read(1)
        emu.set_energy_kwh(100.5)
        assert (await meter.read(1)).energy_wh == 100_500.0
    assert meter.stats.implausible == 2 and meter.stats.reads_ok == 2


async def test_exception_response_is_named_and_busy_is_asked_again() -> None:
    async with emulated(retries=1) as (emu, meter, _):
        emu.exception_next(4)
        with pytest.raises(MeterError, match=r"phases \(0x0000\+12\): exception 4 \(slave device failure\)"):
            await meter.read(1)
        emu.exception_next(6)
        await meter.read(1)
    assert meter.stats.exceptions == 2 and meter.stats.reads_ok == 1


def _garbage_first(reply: bytes) -> bytes:
    return b"\xff\x00\x13\x37\x01\x03" + reply


def _truncated(reply: bytes) -> bytes:
    return reply[:10]


def _oversized(reply: bytes) -> bytes:
    """The byte count and payload two bytes longer, with a good CRC."""
    return with_crc(reply[:2] + bytes((reply[2] + 2,)) + reply[3:-2] + b"\x00\x00")


def _from_unit_2(reply: bytes) -> bytes:
    return with_crc(b"\x02" + reply[1:-2])


def _answer_to_another_request(reply: bytes) -> bytes:
    return with_crc(b"\x01\x04\x04" + struct.pack(">f", 230.0))


async def test_noise_before_the_answer_is_dropped() -> None:
    async with emulated() as (emu, meter, _):
        emu.mangle_next(_garbage_first)
        assert (await meter.read(1)).voltage_v == (230.0,) * 3
    assert meter.stats.discarded_bytes == 6 and meter.stats.reads_ok == 1


async def test_bytes_after_a_good_answer_do_not_spoil_it_or_the_next() -> None:
    async with emulated() as (emu, meter, _):
        emu.mangle_next(lambda reply: reply + b"\x01\x04\x00\x00")
        await meter.read(1)
        await meter.read(1)
    assert meter.stats.reads_ok == 2 and meter.stats.discarded_bytes == 4


@pytest.mark.parametrize(("mangle", "error", "counter"), [
    (_truncated, r"truncated answer: 10 of 29 bytes", "bad_frames"),
    (_oversized, r"byte count 26, expected 24", "bad_frames"),
    (_answer_to_another_request, r"byte count 4, expected 24", "bad_frames"),
    (_from_unit_2, r"no answer within 0.3 s \(0 stray bytes, 1 foreign frames dropped\)", "timeouts"),
    (lambda reply: b"", r"no answer within 0.3 s$", "timeouts"),
])
async def test_bad_answers_are_errors_and_the_meter_recovers(
        mangle: Callable[[bytes], bytes], error: str, counter: str) -> None:
    async with emulated(timeout=SHORT) as (emu, meter, _):
        emu.mangle_next(mangle)
        with pytest.raises(MeterError, match=error):
            await meter.read(1)
        assert getattr(meter.stats, counter) >= 1
        assert (await meter.read(1)).voltage_v == (230.0,) * 3


async def test_a_stale_answer_on_the_line_is_not_taken_for_the_next() -> None:
    async with emulated() as (emu, meter, line):
        await meter.read(1)
        stale = with_crc(b"\x01\x04\x18" + struct.pack(">f", 240.0) * 6)   # a late phases answer
        os.write(line.master, stale)
        assert (await meter.read(1)).voltage_v == (230.0,) * 3
    assert meter.stats.discarded_bytes == len(stale)


async def test_missing_device_backs_off_then_connects() -> None:
    device = Pluggable("/dev/nonexistent-meter")
    device.present = False
    async with emulated(device=device, reopen_backoff=0.5) as (emu, meter, line):
        with pytest.raises(MeterError, match="cannot open: .*no such device"):
            await meter.read(1)
        with pytest.raises(MeterError, match="not connected, next attempt in"):
            await meter.read(1)
        assert device.opens == 1                    # no attempt within the back-off
        device.present, device.path = True, line.path
        await trio.sleep(0.5)
        await meter.read(1)
        assert device.opens == 2 and meter.stats.connection_errors == 1


async def test_lost_connection_is_reopened_on_the_next_read() -> None:
    first = Pty()
    device = Pluggable(first.path)
    try:
        async with emulated(device=device) as (emu, meter, second):
            async with trio.open_nursery() as nursery:
                await nursery.start(emu.serve, first.master)
                await meter.read(1)                 # on the first pty
                nursery.cancel_scope.cancel()
            first.close()                           # that line hangs up (the meter holds the slave)
            device.path = second.path
            with pytest.raises(MeterError, match="connection lost"):
                await meter.read(1)
            await meter.read(1)                     # reopened, on the second pty
            assert device.opens == 2 and meter.stats.connection_errors == 1
    finally:
        first.close()


async def test_device_gone_closes_and_the_next_read_reopens() -> None:
    device = Pluggable("/dev/nonexistent-meter")
    async with emulated(device=device) as (emu, meter, line):
        device.path = line.path
        await meter.read(1)
        device.gone.set()
        with pytest.raises(MeterError, match="device gone"):
            await meter.read(1)
        device.gone = trio.Event()                  # plugged back in
        await meter.read(1)
        assert device.opens == 2 and meter.stats.reads_ok == 2


async def test_reading_another_evse_is_an_error() -> None:
    async with emulated(evse=2) as (emu, meter, _):
        assert (await meter.read(2)).power_w == 0.0
        with pytest.raises(MeterError, match="meters EVSE 2, not 1"):
            await meter.read(1)
        assert emu.requests == 3
