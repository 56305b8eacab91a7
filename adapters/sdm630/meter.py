"""Adapter: an Eastron SDM630 on RS-485 (Modbus RTU) as the station's fiscal meter (ports.hardware.Meter).

One `read` asks the meter three questions, each a Read Input Registers request:

===========  ==========================  ==================  =========
block        registers                   values              payload
===========  ==========================  ==================  =========
phases       0x0000 + 12 (30001..30012)  V L1-L3, I L1-L3    24 bytes
total power  0x0034 + 2 (30053, 30054)   total active power  4 bytes
energy       0x0046 + 4 (30071..30074)   frequency, import   8 bytes
===========  ==========================  ==================  =========

The register sheet defines nothing between those blocks, and a request touching an
undefined register may be refused (exception 2), so one large block is not an option; the
per-phase powers (0x000C..0x0011) are left out because a MeterReading has no place for
them. Energy is read together with the frequency so that no two blocks have the same
length: a Modbus RTU answer does not say which request it answers, and a late answer
(the meter replying after our timeout) can then never be taken for another block's, it
fails the byte-count check instead. A late answer to the same block carries that block's
own, slightly older, values, which is all Modbus RTU can promise.

Before each request the line must have been quiet for 3.5 character times (the RTU frame
gap); waiting for that quiet also drops whatever is still in flight (a late answer, noise).
The answer is read until exactly the frame's end (its length follows from its header), so
its bytes never have to be told apart by timing, which USB bridges and busy kernels blur.

Nothing doubtful is returned: a timeout, a corrupt or foreign frame, an exception
response, a NaN/infinite or negative value where none can be, or an import register lower
than the last good one raises MeterError (one line) and is counted in `stats`. The
connection is opened on the first read and reopened on the next read after it broke; a
device that cannot be opened is retried only after a growing back-off, so a missing meter
costs a read nothing but an immediate MeterError.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import trio

from adapters.sdm630.modbus_rtu import (
    EXCEPTION_FLAG,
    READ_INPUT_REGISTERS,
    CrcError,
    FrameError,
    ModbusException,
    crc_ok,
    float32,
    parse_read_input_registers_response,
    read_input_registers_request,
    response_length,
)
from ports.hardware import MeterError, MeterReading, SerialDevice

__all__ = ["Sdm630Meter", "Sdm630Stats", "MAX_VOLTAGE_V"]

logger = logging.getLogger("evse.hardware")

MAX_VOLTAGE_V = 1000.0        # the low-voltage limit (AC): a higher phase voltage is a decoding error
_RECEIVE_SIZE = 256           # more than the longest RTU frame
_RESPONSE_FUNCTIONS = (READ_INPUT_REGISTERS, READ_INPUT_REGISTERS | EXCEPTION_FLAG)
_BUSY = 6                     # exception code worth asking again


@dataclass(frozen=True, slots=True)
class _Block:
    """One Read Input Registers request, encoded once."""

    name: str
    address: int
    count: int
    request: bytes


@dataclass(slots=True)
class Sdm630Stats:
    """What went wrong, and how often; every failed attempt counts once."""

    reads_ok: int = 0
    timeouts: int = 0             # no (complete) answer within the timeout
    crc_errors: int = 0
    bad_frames: int = 0           # wrong length or function, another unit's frame
    exceptions: int = 0           # exception responses
    implausible: int = 0          # NaN/inf, negative, over range, energy going backwards
    discarded_bytes: int = 0      # stale or garbage bytes dropped around the answers
    connection_errors: int = 0    # open failures and connections lost


class _ConnectionLost(Exception):
    """The stream ended or broke: close it, reopen on the next read."""


class Sdm630Meter:
    """An SDM630 at `unit_id` behind `device`, metering EVSE `evse`.

    `timeout`: seconds per request attempt; `retries`: extra attempts of a request after a
    timeout, a bad frame or a busy answer; `baudrate` sets the inter-frame silence only (the
    device's line speed is the SerialDevice's business); `reopen_backoff` doubles up to
    `reopen_backoff_max` while the device cannot be opened."""

    component = "FiscalMetering"

    def __init__(self, device: SerialDevice, *, unit_id: int = 1, evse: int = 1,
                 timeout: float = 1.0, baudrate: int = 9600, retries: int = 1,
                 reopen_backoff: float = 1.0, reopen_backoff_max: float = 30.0) -> None:
        if timeout <= 0 or retries < 0 or baudrate <= 0:
            raise ValueError("timeout and baudrate must be positive, retries not negative")
        self.device = device
        self.unit_id = unit_id
        self.evse = evse
        self.timeout = timeout
        self.retries = retries
        self.stats = Sdm630Stats()
        # Modbus RTU: 3.5 characters of 11 bits; at least 1.75 ms above 19200 baud.
        self.silence = max(3.5 * 11 / baudrate, 0.00175)
        self._phases = self._block("phases", 0x0000, 12)
        self._power = self._block("total power", 0x0034, 2)
        self._energy = self._block("energy", 0x0046, 4)
        self._where = f"SDM630 unit {unit_id} on {device.label}"
        self._stream: trio.abc.Stream | None = None
        self._reopen_backoff = reopen_backoff
        self._reopen_backoff_max = reopen_backoff_max
        self._backoff = reopen_backoff
        self._next_open = -math.inf
        self._last_energy_kwh: float | None = None
        self._failing = False
        self._lock = trio.Lock()

    def _block(self, name: str, address: int, count: int) -> _Block:
        return _Block(name, address, count,
                      read_input_registers_request(self.unit_id, address, count))

    # --- the port ------------------------------------------------------------------------------
    async def read(self, evse: int) -> MeterReading:
        """One reading of all phases; MeterError (one line) instead of anything doubtful."""
        if evse != self.evse:
            raise MeterError(f"{self._where} meters EVSE {self.evse}, not {evse}")
        async with self._lock:          # one conversation on the bus at a time
            try:
                reading = await self._read()
            except MeterError as exc:
                self._note_failure(exc)
                raise
        self.stats.reads_ok += 1
        if self._failing:
            self._failing = False
            logger.info("%s: reading again", self._where)
        return reading

    async def aclose(self) -> None:
        """Close the connection (bootstrap's shutdown); the next read would reopen it."""
        await self._disconnect()

    # --- connection ----------------------------------------------------------------------------
    async def _connect(self) -> trio.abc.Stream:
        if self._stream is not None:
            return self._stream
        now = trio.current_time()
        if now < self._next_open:
            raise MeterError(f"{self._where}: not connected, next attempt in "
                             f"{self._next_open - now:.1f} s")
        try:
            stream = await self.device.open()
        except OSError as exc:
            self.stats.connection_errors += 1
            self._next_open = now + self._backoff
            self._backoff = min(2 * self._backoff, self._reopen_backoff_max)
            raise MeterError(f"{self._where}: cannot open: {exc}") from None
        self._backoff = self._reopen_backoff
        self._stream = stream
        logger.info("%s: connected", self._where)
        return stream

    async def _disconnect(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await trio.aclose_forcefully(stream)

    async def _read(self) -> MeterReading:
        stream = await self._connect()
        gone = False

        async def watch_gone() -> None:
            nonlocal gone
            try:
                await self.device.wait_gone()
            except Exception as exc:     # a broken watch must not break the reading
                logger.warning("%s: cannot watch for removal: %s", self._where, exc)
                await trio.sleep_forever()
            gone = True
            nursery.cancel_scope.cancel()

        outcome: MeterReading | Exception | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch_gone)
                try:
                    outcome = await self._read_blocks(stream)
                except (MeterError, _ConnectionLost, OSError,
                        trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    outcome = exc         # raised below, outside the nursery (no group)
                nursery.cancel_scope.cancel()
        finally:
            if gone or (outcome is not None and not isinstance(outcome, (MeterReading, MeterError))):
                self.stats.connection_errors += 1
                await self._disconnect()
        if gone:
            raise MeterError(f"{self._where}: device gone")
        if isinstance(outcome, MeterError):
            raise outcome
        if isinstance(outcome, Exception):
            raise MeterError(f"{self._where}: connection lost: {_describe(outcome)}") from None
        assert outcome is not None
        return outcome

    # --- one reading ---------------------------------------------------------------------------
    async def _read_blocks(self, stream: trio.abc.Stream) -> MeterReading:
        regs = await self._transact(stream, self._phases)
        voltage = (float32(regs, 0), float32(regs, 2), float32(regs, 4))
        current = (float32(regs, 6), float32(regs, 8), float32(regs, 10))
        regs = await self._transact(stream, self._power)
        power = float32(regs, 0)
        regs = await self._transact(stream, self._energy)
        energy_kwh = float32(regs, 2)
        self._check(voltage, current, power, energy_kwh)
        self._last_energy_kwh = energy_kwh
        return MeterReading(energy_wh=energy_kwh * 1000.0, power_w=power,
                            current_a=current, voltage_v=voltage)

    def _check(self, voltage: tuple[float, ...], current: tuple[float, ...],
               power: float, energy_kwh: float) -> None:
        """Raise MeterError for a value the meter cannot have meant. (Power may be negative:
        energy flowing back to the grid.)"""
        problem = None
        for phase, (v, i) in enumerate(zip(voltage, current), start=1):
            if not 0.0 <= v <= MAX_VOLTAGE_V:      # also false for NaN
                problem = f"L{phase} voltage {v} V"
            elif not 0.0 <= i < math.inf:
                problem = f"L{phase} current {i} A"
            if problem:
                break
        if problem is None and not math.isfinite(power):
            problem = f"total power {power} W"
        if problem is None and not 0.0 <= energy_kwh < math.inf:
            problem = f"import energy {energy_kwh} kWh"
        if problem is None and self._last_energy_kwh is not None and energy_kwh < self._last_energy_kwh:
            problem = (f"import energy went backwards: {energy_kwh} kWh after "
                       f"{self._last_energy_kwh} kWh")
        if problem is not None:
            self.stats.implausible += 1
            raise MeterError(f"{self._where}: implausible {problem}")

    async def _transact(self, stream: trio.abc.Stream, block: _Block) -> memoryview:
        """The registers of `block`, asking again (up to `retries` times) after a failure that
        another attempt may cure."""
        attempt = 0
        while True:
            try:
                return await self._exchange(stream, block)
            except _Retryable as exc:
                if attempt >= self.retries:
                    raise MeterError(f"{self._where}: {block.name}: {exc}") from None
                logger.debug("%s: %s: %s; asking again", self._where, block.name, exc)
            except ModbusException as exc:
                self.stats.exceptions += 1
                if exc.code != _BUSY or attempt >= self.retries:
                    raise MeterError(f"{self._where}: {block.name} (0x{block.address:04X}+"
                                     f"{block.count}): {exc}") from None
                logger.debug("%s: %s: %s; asking again", self._where, block.name, exc)
            attempt += 1

    async def _exchange(self, stream: trio.abc.Stream, block: _Block) -> memoryview:
        """One request and its answer, all within `timeout`."""
        buf = bytearray()
        sent = False
        dropped_before = self.stats.discarded_bytes, self.stats.bad_frames
        with trio.move_on_after(self.timeout):
            await self._await_silence(stream)
            await stream.send_all(block.request)
            sent = True
            while True:
                data = await stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    raise _ConnectionLost("end of stream")
                buf += data
                regs = self._take_answer(buf, block)
                if regs is not None:
                    return regs
        if not sent:
            self.stats.timeouts += 1
            raise _Retryable(f"line not quiet for {self.timeout} s")
        if len(buf) >= 2 and buf[0] == self.unit_id and buf[1] in _RESPONSE_FUNCTIONS:
            self.stats.bad_frames += 1
            expected = _length_or_none(buf)
            raise _Retryable(f"truncated answer: {len(buf)} of {expected or '?'} bytes "
                             f"within {self.timeout} s")
        self.stats.timeouts += 1
        noise = self.stats.discarded_bytes - dropped_before[0]
        foreign = self.stats.bad_frames - dropped_before[1]
        dropped = f" ({noise} stray bytes, {foreign} foreign frames dropped)" if noise or foreign else ""
        raise _Retryable(f"no answer within {self.timeout} s{dropped}")

    async def _await_silence(self, stream: trio.abc.Stream) -> None:
        """Return once the line has been quiet for the RTU frame gap, dropping what it
        carried until then: a late answer must not be read as the next one."""
        while True:
            data = None
            with trio.move_on_after(self.silence):
                data = await stream.receive_some(_RECEIVE_SIZE)
            if data is None:
                return
            if not data:
                raise _ConnectionLost("end of stream")
            self.stats.discarded_bytes += len(data)
            logger.debug("%s: dropped %d stale bytes", self._where, len(data))

    def _take_answer(self, buf: bytearray, block: _Block) -> memoryview | None:
        """The registers once `buf` holds our complete answer, None while it does not yet.

        Bytes that cannot begin our answer (noise, another unit's frame) are dropped from
        the front of `buf` and counted; a complete frame of ours is parsed, raising
        _Retryable (CRC, wrong length) or ModbusException."""
        unit = self.unit_id
        while len(buf) >= 2:
            if buf[0] == unit and buf[1] in _RESPONSE_FUNCTIONS:
                if buf[1] == READ_INPUT_REGISTERS and len(buf) < 3:
                    return None                 # the byte count is still on its way
                length = _length_or_none(buf)
                if length is not None:          # else an absurd byte count: noise
                    if len(buf) < length:
                        return None
                    return self._parse(buf, length, block)
            elif buf[1] in _RESPONSE_FUNCTIONS and self._drop_foreign_frame(buf):
                continue
            del buf[0]                          # cannot begin our answer: noise
            self.stats.discarded_bytes += 1
        return None

    def _parse(self, buf: bytearray, length: int, block: _Block) -> memoryview:
        """The registers of the complete frame at the front of `buf`; bytes after it are
        dropped (the next request's wait for silence clears the line anyway)."""
        extra = len(buf) - length
        if extra:
            self.stats.discarded_bytes += extra
            logger.debug("%s: dropped %d bytes after the answer", self._where, extra)
        try:
            return parse_read_input_registers_response(memoryview(buf)[:length],
                                                       self.unit_id, block.count)
        except CrcError as exc:
            self.stats.crc_errors += 1
            raise _Retryable(str(exc)) from None
        except FrameError as exc:
            self.stats.bad_frames += 1
            raise _Retryable(str(exc)) from None

    def _drop_foreign_frame(self, buf: bytearray) -> bool:
        """Drop a complete, intact frame from another unit at the front of `buf`."""
        length = _length_or_none(buf)
        if length is None or len(buf) < length or not crc_ok(buf[:length]):
            return False
        logger.debug("%s: dropped a frame from unit %d", self._where, buf[0])
        del buf[:length]
        self.stats.bad_frames += 1
        return True

    def _note_failure(self, exc: MeterError) -> None:
        """Log the first failure of a streak as a warning, the rest at debug level: a meter
        polled every second must not flood the log."""
        if self._failing:
            logger.debug("%s", exc)
        else:
            self._failing = True
            logger.warning("%s", exc)


class _Retryable(Exception):
    """A failed attempt another attempt may cure; str() is the one-line reason."""


def _length_or_none(buf: bytearray) -> int | None:
    """The frame length its header announces, None when unknown or absurd."""
    try:
        return response_length(buf)
    except FrameError:
        return None


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(exc) or (str(cause) if cause else "") or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__
