"""Emulator: an Eastron SDM630 energy meter answering Modbus RTU on the master side of a pty.

Faithful to ../shared/reference/hardware/sdm630-modbus.md: function 0x04 (Read Input
Registers) over the sheet's register map, every value an IEEE 754 float32 in two registers,
high word first. Like a real slave it delimits requests by line silence (3.5 character
times), stays mute for frames with a bad CRC or another unit id, and answers with an
exception: 1 for any other function, 3 for a quantity of 0 or more than 125, 2 when the
requested registers are not all in the map.

The load model is three phases at power factor 1: `set_load` sets the power per phase (or
the total, split evenly), currents follow as P / V, and the import (or, for negative
power, export) register integrates the total power over ``trio.current_time()``, so a
``trio.testing.MockClock`` makes it exact.

Knobs for tests, each affecting the next answer(s) only: `go_silent`, `corrupt_next` (bad
CRC), `exception_next`, `nan_next`, `mangle_next` (any rewrite of the answer bytes:
noise in front, truncation, another unit id...), and `set_energy_kwh` (also backwards).
`requests` counts the requests addressed to this unit with a good CRC, `ignored` the
frames it stayed mute for.
"""
from __future__ import annotations

import logging
import math
import os
import struct
from collections.abc import Callable

import trio

from adapters.sdm630.modbus_rtu import EXCEPTION_FLAG, MAX_QUANTITY, READ_INPUT_REGISTERS, crc16, crc_ok

__all__ = ["Sdm630Emulator", "REGISTERS"]

logger = logging.getLogger("evse.emulator.sdm630")

#: Input register address -> value (each a float32 in registers address, address + 1).
REGISTERS: dict[int, str] = {
    0x0000: "phase 1 line-to-neutral voltage (V)",
    0x0002: "phase 2 line-to-neutral voltage (V)",
    0x0004: "phase 3 line-to-neutral voltage (V)",
    0x0006: "phase 1 current (A)",
    0x0008: "phase 2 current (A)",
    0x000A: "phase 3 current (A)",
    0x000C: "phase 1 active power (W)",
    0x000E: "phase 2 active power (W)",
    0x0010: "phase 3 active power (W)",
    0x0034: "total system active power (W)",
    0x0046: "frequency (Hz)",
    0x0048: "total import active energy (kWh)",
    0x004A: "total export active energy (kWh)",
}
_DEFINED = frozenset(a + i for a in REGISTERS for i in (0, 1))
_IMAGE_SIZE = 2 * (max(REGISTERS) + 2)   # bytes of the register image 0x0000..0x004B
_MAX_FRAME = 256                         # longer "frames" are noise
_FLOAT32 = struct.Struct(">f")
_REQUEST = struct.Struct(">HH")
_CRC = struct.Struct("<H")

ILLEGAL_FUNCTION, ILLEGAL_DATA_ADDRESS, ILLEGAL_DATA_VALUE = 1, 2, 3


class Sdm630Emulator:
    """An SDM630 at `unit_id`; `baudrate` sets the request-delimiting silence."""

    def __init__(self, unit_id: int = 1, *, baudrate: int = 9600, frequency_hz: float = 50.0) -> None:
        self.unit_id = unit_id
        self.silence = max(3.5 * 11 / baudrate, 0.00175)
        self.frequency_hz = frequency_hz
        self.requests = 0
        self.ignored = 0
        self._phase_power = (0.0, 0.0, 0.0)
        self._voltage = 230.0
        self._import_kwh = 0.0
        self._export_kwh = 0.0
        self._since: float | None = None    # trio time the energy registers are integrated up to
        self._silent = False
        self._corrupt = 0
        self._exception: int | None = None
        self._nan = False
        self._mangle: Callable[[bytes], bytes] | None = None

    # --- the load model ------------------------------------------------------------------------
    def set_load(self, power_w: float | tuple[float, float, float], voltage: float = 230.0) -> None:
        """From now on draw `power_w` (total, split over three phases, or one value per phase)
        at `voltage` per phase. Call from within trio (the energy integrates over its clock)."""
        self._integrate()
        if isinstance(power_w, (int, float)):
            per_phase = (power_w / 3.0,) * 3
        else:
            per_phase = tuple(float(p) for p in power_w)
            if len(per_phase) != 3:
                raise ValueError("power_w: one total or three per-phase values")
        self._phase_power = per_phase       # type: ignore[assignment]
        self._voltage = float(voltage)

    def set_energy_kwh(self, value: float) -> None:
        """Set the import register (tests: make it jump backwards)."""
        self._integrate()
        self._import_kwh = float(value)

    def energy_kwh(self) -> float:
        """The import register now."""
        self._integrate()
        return self._import_kwh

    def _integrate(self) -> None:
        now = trio.current_time()
        if self._since is not None:
            total_w = sum(self._phase_power)
            kwh = total_w * (now - self._since) / 3_600_000.0
            if kwh >= 0:
                self._import_kwh += kwh
            else:
                self._export_kwh -= kwh
        self._since = now

    def values(self) -> dict[int, float]:
        """Register address -> value, as the meter would answer now."""
        self._integrate()
        v = self._voltage
        p1, p2, p3 = self._phase_power
        return {
            0x0000: v, 0x0002: v, 0x0004: v,
            0x0006: abs(p1) / v if v else 0.0,
            0x0008: abs(p2) / v if v else 0.0,
            0x000A: abs(p3) / v if v else 0.0,
            0x000C: p1, 0x000E: p2, 0x0010: p3,
            0x0034: p1 + p2 + p3,
            0x0046: self.frequency_hz,
            0x0048: self._import_kwh,
            0x004A: self._export_kwh,
        }

    # --- knobs ---------------------------------------------------------------------------------
    def go_silent(self, silent: bool = True) -> None:
        """Stop (or resume) answering; requests are still counted."""
        self._silent = silent

    def corrupt_next(self, n: int = 1) -> None:
        """Send the next `n` answers with a wrong CRC."""
        self._corrupt = n

    def exception_next(self, code: int) -> None:
        """Answer the next request with exception `code`."""
        self._exception = code

    def nan_next(self) -> None:
        """Answer the next read with NaN in every value."""
        self._nan = True

    def mangle_next(self, rewrite: Callable[[bytes], bytes]) -> None:
        """Send `rewrite(answer)` instead of the next answer (b"": stay mute)."""
        self._mangle = rewrite

    # --- the protocol (sans-I/O) ---------------------------------------------------------------
    def answer(self, frame: bytes | bytearray) -> bytes | None:
        """The bytes to send for one received frame, None to stay mute."""
        if len(frame) < 4 or not crc_ok(frame):
            self.ignored += 1
            logger.debug("ignored %d-byte frame with a bad CRC", len(frame))
            return None
        if frame[0] != self.unit_id:        # another unit's, or a broadcast (reads are not)
            self.ignored += 1
            return None
        self.requests += 1
        if self._silent:
            return None
        reply = self._reply(frame)
        if self._corrupt > 0:
            self._corrupt -= 1
            reply = reply[:-2] + bytes((reply[-2] ^ 0xFF, reply[-1]))
        if self._mangle is not None:
            rewrite, self._mangle = self._mangle, None
            reply = rewrite(reply)
        return reply

    def _reply(self, frame: bytes | bytearray) -> bytes:
        function = frame[1]
        if self._exception is not None:
            code, self._exception = self._exception, None
            return self._exception_reply(function, code)
        if function != READ_INPUT_REGISTERS:
            return self._exception_reply(function, ILLEGAL_FUNCTION)
        if len(frame) != 8:
            return self._exception_reply(function, ILLEGAL_DATA_VALUE)
        address, quantity = _REQUEST.unpack_from(frame, 2)
        if not 1 <= quantity <= MAX_QUANTITY:
            return self._exception_reply(function, ILLEGAL_DATA_VALUE)
        if not _DEFINED.issuperset(range(address, address + quantity)):
            return self._exception_reply(function, ILLEGAL_DATA_ADDRESS)
        image = self._image()
        reply = bytearray((self.unit_id, READ_INPUT_REGISTERS, 2 * quantity))
        reply += image[2 * address: 2 * (address + quantity)]
        reply += _CRC.pack(crc16(reply))
        return bytes(reply)

    def _image(self) -> bytearray:
        """All registers 0x0000..0x004B as the meter would send them now."""
        image = bytearray(_IMAGE_SIZE)
        nan, self._nan = self._nan, False
        for address, value in self.values().items():
            _FLOAT32.pack_into(image, 2 * address, math.nan if nan else value)
        return image

    def _exception_reply(self, function: int, code: int) -> bytes:
        reply = bytearray((self.unit_id, (function | EXCEPTION_FLAG) & 0xFF, code))
        reply += _CRC.pack(crc16(reply))
        return bytes(reply)

    # --- on a pty ------------------------------------------------------------------------------
    async def serve(self, master_fd: int, *,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Answer on `master_fd` (not closed here) until cancelled."""
        async with trio.lowlevel.FdStream(os.dup(master_fd)) as stream:
            task_status.started()
            await self.serve_stream(stream)

    async def serve_stream(self, stream: trio.abc.Stream) -> None:
        """Answer on any byte stream until cancelled: a frame ends where the line falls
        silent for 3.5 characters, as on a real RS-485 bus."""
        frame = bytearray()
        while True:
            try:
                if frame:
                    data = None
                    with trio.move_on_after(self.silence):
                        data = await stream.receive_some(_MAX_FRAME)
                    if data is None:                # silence: the frame is complete
                        await self._respond(stream, frame)
                        frame = bytearray()
                        continue
                else:
                    data = await stream.receive_some(_MAX_FRAME)
            except trio.BrokenResourceError:
                # A pty master reads EIO while no one holds the slave open: wait for a user.
                frame = bytearray()
                await trio.sleep(0.01)
                continue
            if not data:
                await trio.sleep(0.01)
                continue
            frame += data
            if len(frame) > _MAX_FRAME:
                self.ignored += 1
                frame = bytearray()

    async def _respond(self, stream: trio.abc.Stream, frame: bytearray) -> None:
        reply = self.answer(frame)
        if reply:
            try:
                await stream.send_all(reply)
            except trio.BrokenResourceError:
                logger.debug("answer lost: nobody on the line")
