"""A PN532 NFC reader emulator (NXP UM0701-02), faithful to ../shared/reference/hardware/pn532.md.

`Pn532Core` is the chip without I/O: bytes from the host in, frames to the host out (an ACK
after every well-formed command, then the response; an error frame for a syntax error; the
last response again for a NACK; garbage and frames with bad checksums ignored), with an RF
field where a test puts and takes away an ISO 14443A card. Two faces put it on a wire:

* `Pn532HsuEmulator`: on the master side of a pseudo-terminal (the adapter opens the slave as
  its UART); asleep after power-up until the HSU wake-up sequence (55 55 then zeros).
* `Pn532I2cBus`: an I2C bus double (adapters.pn532.transports.I2cBus) with the chip at 0x24:
  every read starts with the status byte (00 busy, 01 + a frame when ready), and other
  addresses do not acknowledge (OSError, like the kernel's EREMOTEIO).

Knobs for tests and demos: present_card/remove_card, go_silent, corrupt_next (bad DCS),
error_next, inject (raw bytes), power_cycle (asleep again, configuration back to defaults).
"""
from __future__ import annotations

import errno
import os
import threading
from collections import deque

import trio

from adapters.pn532.frames import (
    ACK_FRAME,
    ERROR_FRAME,
    GET_FIRMWARE_VERSION,
    IN_LIST_PASSIVE_TARGET,
    IN_RELEASE,
    RF_CONFIGURATION,
    SAM_CONFIGURATION,
    TFI_HOST_TO_PN532,
    Ack,
    ErrorFrame,
    Frame,
    FrameDecoder,
    Information,
    Nack,
    response_frame,
)

FIRMWARE = bytes((0x32, 0x01, 0x06, 0x07))     # IC PN532, version 1.6, ISO 14443A/B + 18092
I2C_ADDRESS = 0x24
#: Bytes the chip misses after 55 55 while it leaves power-down (why the host pads with zeros).
WAKEUP_SETTLE_BYTES = 4
#: RFConfiguration items and the length of their data (UM0701-02 7.3.1).
RF_CONFIG_ITEM_LENGTHS = {0x01: 1, 0x02: 3, 0x04: 1, 0x05: 3, 0x0A: 11, 0x0B: 8, 0x0C: 3, 0x0D: 9}
CFG_ITEM_MAX_RETRIES = 0x05
MX_RTY_FOREVER = 0xFF
COMMAND_HISTORY = 4096         # the latest commands kept for tests and demos
STATUS_NOT_ACCEPTABLE = 0x27    # InRelease of a target that is not there
#: SENS_RES and SEL_RES of the emulated cards, by NFCID1 length (single, double, triple size).
CARD_TYPES = {4: (b"\x00\x04", 0x08), 7: (b"\x00\x44", 0x00), 10: (b"\x00\x84", 0x00)}


class _SyntaxError(Exception):
    """The command cannot be carried out as sent: the chip answers with an error frame."""


class Pn532Core:
    """The chip, sans I/O: `feed` host bytes, take the frames it sends with `next_frame`
    (or everything at once with `receive`/`take_output`)."""

    def __init__(self, *, asleep: bool = False) -> None:
        self._asleep_at_power_up = asleep
        self.outbox: deque[bytes] = deque()
        self._decoder = FrameDecoder(tfi=TFI_HOST_TO_PN532)
        self.card: bytes | None = None
        self.silent = False
        self.commands: deque[int] = deque(maxlen=COMMAND_HISTORY)   # accepted command codes
        self.polls = 0                      # InListPassiveTarget responses sent
        self.wakeups = 0
        self.ignored_bytes = 0              # bytes lost while asleep
        self._corrupt = 0
        self._error_next = False
        self._power_up()

    def _power_up(self) -> None:
        self.asleep = self._asleep_at_power_up
        self._settle = 0
        self._last_55 = False
        self.sam_mode: int | None = None
        self.mx_rty_passive = MX_RTY_FOREVER
        self.listed = False
        self._waiting: bytes | None = None  # a pending InListPassiveTarget (its data)
        self._last_response: bytes | None = None
        self._decoder.reset()

    # --- knobs ------------------------------------------------------------------------------
    def present_card(self, uid: bytes) -> None:
        """Put a card with NFCID1 `uid` (4, 7 or 10 bytes) in the field."""
        if len(uid) not in CARD_TYPES:
            raise ValueError("NFCID1 must be 4, 7 or 10 bytes")
        self.card = bytes(uid)
        if self._waiting is not None and self._card_matches(self._waiting):
            self._waiting = None
            self._respond(IN_LIST_PASSIVE_TARGET, self._target_data())

    def remove_card(self) -> None:
        self.card = None

    def go_silent(self, silent: bool = True) -> None:
        """Silent: the chip ignores everything (a dead or disconnected reader)."""
        self.silent = silent

    def corrupt_next(self, n: int = 1) -> None:
        """Send the next `n` frames that carry a DCS with a wrong DCS."""
        self._corrupt += n

    def error_next(self) -> None:
        """Answer the next well-formed command with an error frame (after its ACK)."""
        self._error_next = True

    def inject(self, raw: bytes) -> None:
        """Send `raw` to the host as it is (noise on the line, a stray frame)."""
        self.outbox.append(bytes(raw))

    def power_cycle(self) -> None:
        """Reset: configuration back to defaults (MxRtyPassiveActivation FF), asleep again on HSU."""
        self.outbox.clear()
        self._power_up()

    # --- bytes in, frames out ---------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.silent:
            return
        if self.asleep:
            data = self._wake(data)
        if self._settle and data:
            lost = min(self._settle, len(data))
            self._settle -= lost
            self.ignored_bytes += lost
            data = data[lost:]
        if data:
            for frame in self._decoder.feed(data):
                self._handle(frame)

    def next_frame(self) -> bytes | None:
        return self.outbox.popleft() if self.outbox else None

    def take_output(self) -> bytes:
        out = b"".join(self.outbox)
        self.outbox.clear()
        return out

    def receive(self, data: bytes) -> bytes:
        """Feed `data`, return everything the chip sends back."""
        self.feed(data)
        return self.take_output()

    def _wake(self, data: bytes) -> bytes:
        """Asleep, the chip only listens for 55 55; what follows it wakes up to (minus the
        bytes that pass while it settles)."""
        for index, byte in enumerate(data):
            if byte == 0x55 and self._last_55:
                self.asleep = False
                self._last_55 = False
                self._settle = WAKEUP_SETTLE_BYTES
                self.wakeups += 1
                self.ignored_bytes += index + 1
                return data[index + 1:]
            self._last_55 = byte == 0x55
        self.ignored_bytes += len(data)
        return b""

    def _handle(self, frame: Frame) -> None:
        if isinstance(frame, Ack):              # the host aborts the command in progress
            self._waiting = None
            self.outbox.clear()
        elif isinstance(frame, Nack):
            if self._last_response is not None:
                self._send(self._last_response)
        elif isinstance(frame, Information):
            self.outbox.append(ACK_FRAME)
            self.commands.append(frame.command)
            self._waiting = None
            self._execute(frame.command, frame.data)
        elif isinstance(frame, ErrorFrame):
            pass                                # not something a host sends; ignored

    def _execute(self, command: int, data: bytes) -> None:
        if self._error_next:
            self._error_next = False
            self._send_response(ERROR_FRAME)
            return
        handler = self._HANDLERS.get(command)
        try:
            if handler is None:
                raise _SyntaxError(f"unknown command 0x{command:02X}")
            response = handler(self, data)
        except _SyntaxError:
            self._send_response(ERROR_FRAME)
            return
        if response is not None:
            self._respond(command, response)

    def _respond(self, command: int, data: bytes) -> None:
        if command == IN_LIST_PASSIVE_TARGET:
            self.polls += 1
        self._send_response(response_frame(command + 1, data))

    def _send_response(self, frame: bytes) -> None:
        self._last_response = frame
        self._send(frame)

    def _send(self, frame: bytes) -> None:
        if self._corrupt:
            self._corrupt -= 1
            frame = frame[:-2] + bytes(((frame[-2] + 1) & 0xFF, frame[-1]))
        self.outbox.append(frame)

    # --- commands (None: the answer comes later) --------------------------------------------
    def _get_firmware_version(self, data: bytes) -> bytes | None:
        if data:
            raise _SyntaxError("GetFirmwareVersion takes no data")
        return FIRMWARE

    def _sam_configuration(self, data: bytes) -> bytes | None:
        if not 1 <= len(data) <= 3 or not 1 <= data[0] <= 4:
            raise _SyntaxError("SAMConfiguration: Mode [Timeout [IRQ]]")
        self.sam_mode = data[0]
        return b""

    def _rf_configuration(self, data: bytes) -> bytes | None:
        if not data or RF_CONFIG_ITEM_LENGTHS.get(data[0]) != len(data) - 1:
            raise _SyntaxError("RFConfiguration: unknown CfgItem or wrong length")
        if data[0] == CFG_ITEM_MAX_RETRIES:
            self.mx_rty_passive = data[3]
        return b""

    def _in_list_passive_target(self, data: bytes) -> bytes | None:
        if len(data) < 2 or not 1 <= data[0] <= 2 or data[1] > 4:
            raise _SyntaxError("InListPassiveTarget: MaxTg BrTy [InitiatorData]")
        if self._card_matches(data):
            return self._target_data()
        if self.mx_rty_passive == MX_RTY_FOREVER:
            self._waiting = bytes(data)     # answers when a card comes (or the host aborts)
            return None
        self.listed = False
        return b"\x00"

    def _in_release(self, data: bytes) -> bytes | None:
        if len(data) != 1:
            raise _SyntaxError("InRelease: Tg")
        if data[0] == 0 or (data[0] == 1 and self.listed):
            self.listed = False
            return b"\x00"
        return bytes((STATUS_NOT_ACCEPTABLE,))

    _HANDLERS = {
        GET_FIRMWARE_VERSION: _get_firmware_version,
        SAM_CONFIGURATION: _sam_configuration,
        RF_CONFIGURATION: _rf_configuration,
        IN_LIST_PASSIVE_TARGET: _in_list_passive_target,
        IN_RELEASE: _in_release,
    }

    def _card_matches(self, request: bytes) -> bool:
        """A type A card is in the field (and is the one asked for, when a UID is given)."""
        if self.card is None or request[1] != 0x00:
            return False
        return len(request) == 2 or request[2:] == self.card

    def _target_data(self) -> bytes:
        """NbTg 1, Tg 1, SENS_RES, SEL_RES, NFCIDLength, NFCID1."""
        assert self.card is not None
        self.listed = True
        sens_res, sel_res = CARD_TYPES[len(self.card)]
        return b"\x01\x01" + sens_res + bytes((sel_res, len(self.card))) + self.card


# --- HSU face: the master side of a pty ------------------------------------------------------
class Pn532HsuEmulator:
    """The chip behind a UART: run it on the master fd of a pty (it takes the fd over and
    closes it when cancelled); the adapter opens the slave. Asleep until woken up."""

    def __init__(self, master_fd: int, core: Pn532Core | None = None) -> None:
        self.core = core if core is not None else Pn532Core(asleep=True)
        self._fd = master_fd
        self._kick = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        stream = trio.lowlevel.FdStream(self._fd)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_loop, stream)
                nursery.start_soon(self._write_loop, stream)
                task_status.started()
        finally:
            stream.close()

    async def _read_loop(self, stream: trio.lowlevel.FdStream) -> None:
        while True:
            try:
                data = await stream.receive_some(4096)
            except trio.BrokenResourceError:    # EIO: nobody has the slave open right now
                data = b""
            if not data:
                await trio.sleep(0.01)
                continue
            self.core.feed(data)
            self._wake_writer()

    async def _write_loop(self, stream: trio.lowlevel.FdStream) -> None:
        while True:
            await self._kick.wait()
            self._kick = trio.Event()
            while (frame := self.core.next_frame()) is not None:
                try:
                    await stream.send_all(frame)
                except trio.BrokenResourceError:
                    break

    def _wake_writer(self) -> None:
        if self.core.outbox:
            self._kick.set()

    # knobs (see Pn532Core), flushing whatever they make the chip send
    def present_card(self, uid: bytes) -> None:
        self.core.present_card(uid)
        self._wake_writer()

    def remove_card(self) -> None:
        self.core.remove_card()

    def go_silent(self, silent: bool = True) -> None:
        self.core.go_silent(silent)

    def corrupt_next(self, n: int = 1) -> None:
        self.core.corrupt_next(n)

    def error_next(self) -> None:
        self.core.error_next()

    def inject(self, raw: bytes) -> None:
        self.core.inject(raw)
        self._wake_writer()

    def power_cycle(self) -> None:
        self.core.power_cycle()


# --- I2C face: a bus double ------------------------------------------------------------------
class Pn532I2cBus:
    """An I2C bus with the chip at `address` (adapters.pn532.transports.I2cBus).

    Reads start with the status byte: after a command, and between the ACK and the
    response, the first read answers busy (00); a ready read (01) carries one frame and
    consumes it. Thread-safe: the transport calls it from worker threads."""

    def __init__(self, address: int = I2C_ADDRESS, core: Pn532Core | None = None) -> None:
        self.address = address
        self.core = core if core is not None else Pn532Core(asleep=False)
        self._lock = threading.Lock()
        self._busy_reads = 0
        self.writes = 0
        self.reads = 0
        self.closes = 0

    def _check(self, address: int) -> None:
        if address != self.address or self.core.silent:
            raise OSError(errno.EREMOTEIO, os.strerror(errno.EREMOTEIO))

    def write(self, address: int, data: bytes) -> None:
        with self._lock:
            self._check(address)
            self.writes += 1
            self.core.feed(bytes(data))
            self._busy_reads = 1

    def read(self, address: int, length: int) -> bytes:
        with self._lock:
            self._check(address)
            self.reads += 1
            if self._busy_reads or not self.core.outbox:
                self._busy_reads = max(0, self._busy_reads - 1)
                return bytes(length)
            frame = self.core.outbox.popleft()
            self._busy_reads = 1 if self.core.outbox else 0
            out = (b"\x01" + frame)[:length]
            return out + bytes(length - len(out))

    def close(self) -> None:
        with self._lock:
            self.closes += 1

    # knobs (see Pn532Core), under the bus lock
    def present_card(self, uid: bytes) -> None:
        with self._lock:
            self.core.present_card(uid)

    def remove_card(self) -> None:
        with self._lock:
            self.core.remove_card()

    def go_silent(self, silent: bool = True) -> None:
        with self._lock:
            self.core.go_silent(silent)

    def corrupt_next(self, n: int = 1) -> None:
        with self._lock:
            self.core.corrupt_next(n)

    def error_next(self) -> None:
        with self._lock:
            self.core.error_next()

    def inject(self, raw: bytes) -> None:
        with self._lock:
            self.core.inject(raw)

    def power_cycle(self) -> None:
        with self._lock:
            self.core.power_cycle()
            self._busy_reads = 0
