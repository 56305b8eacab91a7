"""How PN532 frames reach the chip: HSU (a UART byte stream) or I2C (read/write transactions).

Both transports offer the same small interface to the reader: `open()`, `exchange(command,
data, timeout)` and `close()`. An exchange is one command: send the frame, wait for the ACK
(a short, fixed time: the PN532 acknowledges at once), then for the response, whose code
must be command + 1. Anything else (silence, a NACK, an error frame, a frame with a bad
checksum, a response to another command) raises a one-line `ReaderError` and aborts the
command on the chip (an ACK frame from the host aborts it, UM0701-02 ACK frame) so that a late
answer cannot be mistaken for the answer to the next command.
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

import trio
from smbus2 import SMBus, i2c_msg

from adapters.pn532.frames import (
    ACK_FRAME,
    FRAME_OVERHEAD,
    Ack,
    ErrorFrame,
    FrameDecoder,
    Frame,
    Information,
    Nack,
    command_name,
    information_frame,
)
from ports.hardware import HardwareError, SerialDevice

log = logging.getLogger("evse.hardware")

#: HSU wake-up (UM0701-02 HSU wake-up condition): 55 55 then zeros that give the chip time to
#: leave power-down; the first command follows in the same write.
WAKEUP = bytes((0x55, 0x55)) + bytes(14)
#: I2C: every read transaction starts with this status byte; bit 0 set = a frame follows.
STATUS_READY = 0x01
I2C_ADDRESS = 0x24
#: I2C read for the ACK: status byte + the 6-byte ACK frame.
ACK_READ_LENGTH = 1 + len(ACK_FRAME)


class ReaderError(HardwareError):
    """One failed exchange with the PN532 (NACK, error frame, device gone); one line."""


class ReaderTimeout(ReaderError):
    """The PN532 did not answer (no ACK or no response) in time."""


class ReaderBadFrame(ReaderError):
    """A frame that failed its checks (LCS/DCS, length, truncated) or answered another command."""


class Pn532Transport(Protocol):
    """What the reader needs from an interface."""

    label: str      # for logs and problem reports

    async def open(self) -> None:
        """Get the interface ready; raises ReaderError when it is not there."""

    async def exchange(self, command: int, data: bytes, timeout: float) -> bytes:
        """Send `command` with `data`; the response data (after its response code).
        Raises ReaderError (ReaderTimeout, ReaderBadFrame) within about ack + `timeout` s."""

    async def close(self) -> None:
        """Release the interface; never raises."""


# --- checks shared by both interfaces ------------------------------------------------------
def _describe(frame: Frame) -> str:
    if isinstance(frame, Information):
        return f"a frame with code 0x{frame.command:02X}"
    if isinstance(frame, ErrorFrame):
        return "an error frame (syntax error)"
    if isinstance(frame, Nack):
        return "a NACK"
    return "an ACK"


def _unexpected(frame: Frame, command: int, wanted: str) -> ReaderError:
    text = f"{command_name(command)}: {_describe(frame)} instead of the {wanted}"
    if isinstance(frame, (ErrorFrame, Nack)):
        return ReaderError(text)
    return ReaderBadFrame(text)


def check_ack(frame: Frame, command: int) -> None:
    """The first frame after a command must be its ACK."""
    if not isinstance(frame, Ack):
        raise _unexpected(frame, command, "ACK")


def response_data(frame: Frame, command: int) -> bytes:
    """The data of the response to `command`; a frame answering anything else is bad."""
    if not isinstance(frame, Information):
        raise _unexpected(frame, command, "response")
    if frame.command != (command + 1) & 0xFF:
        raise ReaderBadFrame(
            f"{command_name(command)}: response code 0x{frame.command:02X}, "
            f"expected 0x{(command + 1) & 0xFF:02X}")
    return frame.data


# --- HSU -----------------------------------------------------------------------------------
class HsuTransport:
    """The PN532 on a UART (115200 8N1 by default), through a SerialDevice from bootstrap/.

    The chip may be asleep after power-up: after each `open` the first command goes out
    behind the wake-up sequence, until the chip has acknowledged one command."""

    def __init__(self, device: SerialDevice, *, ack_timeout: float = 0.1, quiet: float = 0.02,
                 idle_poll: float = 0.002, receive_size: int = 256) -> None:
        self._device = device
        self.label = device.label
        self.ack_timeout = ack_timeout
        self.quiet = quiet          # silence that ends the drain after an aborted command
        self.idle_poll = idle_poll  # pause after an empty read before reading again
        self._receive_size = receive_size
        self._stream: trio.abc.Stream | None = None
        self._decoder = FrameDecoder()
        self._frames: deque[Frame] = deque()
        self._awake = False

    async def open(self) -> None:
        if self._stream is not None:
            return
        try:
            self._stream = await self._device.open()
        except OSError as exc:
            raise ReaderError(f"{self.label}: cannot open ({exc})") from None
        self._decoder.reset()
        self._frames.clear()
        self._awake = False

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                await stream.aclose()
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    async def exchange(self, command: int, data: bytes, timeout: float) -> bytes:
        stream = self._stream
        if stream is None:
            raise ReaderError(f"{self.label}: not open")
        frame = information_frame(command, data)
        seen_bad = self._decoder.bad_frames
        try:
            await self._send(stream, frame if self._awake else WAKEUP + frame)
            check_ack(await self._next_frame(stream, self.ack_timeout, command, "ACK", seen_bad), command)
            self._awake = True
            return response_data(
                await self._next_frame(stream, timeout, command, "response", seen_bad), command)
        except ReaderError:
            await self._abort(stream)
            raise

    async def _send(self, stream: trio.abc.Stream, data: bytes) -> None:
        try:
            await stream.send_all(data)
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise ReaderError(f"{self.label}: write failed ({exc!r})") from None

    async def _next_frame(self, stream: trio.abc.Stream, timeout: float, command: int,
                          wanted: str, seen_bad: int) -> Frame:
        """The next frame from the chip; a bad frame seen meanwhile fails the exchange."""
        with trio.move_on_after(timeout):
            while not self._frames:
                chunk = await self._receive(stream)
                frames = self._decoder.feed(chunk)
                if self._decoder.bad_frames != seen_bad:
                    raise ReaderBadFrame(f"{command_name(command)}: {self._decoder.last_problem}")
                self._frames.extend(frames)
            return self._frames.popleft()
        raise ReaderTimeout(f"{command_name(command)}: no {wanted} within {timeout:g} s")

    async def _receive(self, stream: trio.abc.Stream) -> bytes:
        """The next bytes from the chip. An empty read is "nothing yet", not the end: a tty in
        raw mode with VMIN 0 answers so when no byte is waiting, and a hung-up tty does too;
        both end in a timeout of the exchange, which the reader handles."""
        while True:
            try:
                chunk = await stream.receive_some(self._receive_size)
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ReaderError(f"{self.label}: read failed ({exc!r})") from None
            if chunk:
                return chunk
            await trio.sleep(self.idle_poll)

    async def _abort(self, stream: trio.abc.Stream) -> None:
        """Abort the command on the chip and drop what it still sends, until it is quiet."""
        try:
            with trio.move_on_after(self.ack_timeout):
                await stream.send_all(ACK_FRAME)
            with trio.move_on_after(self.ack_timeout + 4 * self.quiet):
                while True:
                    with trio.move_on_after(self.quiet) as idle:
                        await self._receive(stream)
                    if idle.cancelled_caught:
                        break
        except (ReaderError, OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self._decoder.reset()
        self._frames.clear()


# --- I2C -----------------------------------------------------------------------------------
class I2cBus(Protocol):
    """One I2C bus, blocking: each call is one transaction (the transport runs them in a thread)."""

    def write(self, address: int, data: bytes) -> None:
        """Write `data` to `address` in one transaction; OSError when nobody acknowledges."""

    def read(self, address: int, length: int) -> bytes:
        """Read `length` bytes from `address` in one transaction; OSError as for write."""

    def close(self) -> None:
        """Release the bus."""


class Smbus2Bus:
    """The kernel's I2C bus (/dev/i2c-N) through smbus2's combined transactions (I2C_RDWR)."""

    def __init__(self, bus: int | str) -> None:
        self._bus = SMBus(bus)      # OSError when the bus node is missing

    def write(self, address: int, data: bytes) -> None:
        self._bus.i2c_rdwr(i2c_msg.write(address, data))

    def read(self, address: int, length: int) -> bytes:
        message = i2c_msg.read(address, length)
        self._bus.i2c_rdwr(message)
        return bytes(message)

    def close(self) -> None:
        self._bus.close()


class I2cTransport:
    """The PN532 on I2C (7-bit address 0x24). A command is one write; then the host polls
    reads whose first byte is the status (bit 0: ready, the frame follows in the same read):
    a 7-byte read for the ACK, then reads of `read_length` frame bytes for the response."""

    def __init__(self, open_bus: Callable[[], I2cBus], address: int = I2C_ADDRESS, *,
                 ack_timeout: float = 0.1, poll_delay: float = 0.005, read_length: int = 64) -> None:
        if read_length < FRAME_OVERHEAD + 2:
            raise ValueError("read_length too short for a frame")
        self._open_bus = open_bus
        self.address = address
        self.label = f"I2C 0x{address:02X}"
        self.ack_timeout = ack_timeout
        self.poll_delay = poll_delay
        self._response_read = 1 + read_length
        self._bus: I2cBus | None = None
        self._decoder = FrameDecoder()

    async def open(self) -> None:
        if self._bus is not None:
            return
        try:
            self._bus = await trio.to_thread.run_sync(self._open_bus)
        except OSError as exc:
            raise ReaderError(f"{self.label}: cannot open the bus ({exc})") from None

    async def close(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            try:
                await trio.to_thread.run_sync(bus.close)
            except OSError:
                pass

    async def exchange(self, command: int, data: bytes, timeout: float) -> bytes:
        bus = self._bus
        if bus is None:
            raise ReaderError(f"{self.label}: not open")
        try:
            await self._write(bus, information_frame(command, data), command)
            check_ack(await self._read_frame(bus, ACK_READ_LENGTH, self.ack_timeout, command, "ACK"),
                      command)
            return response_data(
                await self._read_frame(bus, self._response_read, timeout, command, "response"), command)
        except ReaderError:
            await self._abort(bus)
            raise

    async def _write(self, bus: I2cBus, frame: bytes, command: int) -> None:
        try:
            await trio.to_thread.run_sync(bus.write, self.address, frame)
        except OSError as exc:
            raise ReaderError(f"{command_name(command)}: I2C write failed ({exc})") from None

    async def _read(self, bus: I2cBus, length: int, command: int) -> bytes:
        try:
            return await trio.to_thread.run_sync(bus.read, self.address, length)
        except OSError as exc:
            raise ReaderError(f"{command_name(command)}: I2C read failed ({exc})") from None

    async def _read_frame(self, bus: I2cBus, length: int, timeout: float, command: int,
                          wanted: str) -> Frame:
        """Poll until a read says ready, then decode the frame it carries."""
        deadline = trio.current_time() + timeout
        while True:
            raw = await self._read(bus, length, command)
            if raw and raw[0] & STATUS_READY:
                return self._decode(raw, command)
            if trio.current_time() >= deadline:
                raise ReaderTimeout(f"{command_name(command)}: no {wanted} within {timeout:g} s")
            await trio.sleep(self.poll_delay)

    def _decode(self, raw: bytes, command: int) -> Frame:
        """The frame in one ready read (after the status byte); it must be complete and sound."""
        decoder = self._decoder
        decoder.reset()
        seen_bad = decoder.bad_frames
        frames = decoder.feed(memoryview(raw)[1:])
        if decoder.bad_frames != seen_bad:
            raise ReaderBadFrame(f"{command_name(command)}: {decoder.last_problem}")
        if not frames:
            what = "truncated frame" if decoder.partial else "no frame"
            raise ReaderBadFrame(f"{command_name(command)}: {what} in a ready read")
        return frames[0]

    async def _abort(self, bus: I2cBus) -> None:
        """Abort the command on the chip (ACK frame), so its late response is never read."""
        try:
            await trio.to_thread.run_sync(bus.write, self.address, ACK_FRAME)
        except OSError as exc:     # the chip is gone or silent: nothing left to abort
            log.debug("PN532 %s: abort failed: %s", self.label, exc)
