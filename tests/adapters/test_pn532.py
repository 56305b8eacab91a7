"""adapters.pn532 (frames, transports, reader) and devtools.emulators.pn532.

The codec is checked against frames written by hand from the sheet (UM0701-02). The reader
runs against the emulator on real wires: over HSU through a real pseudo-terminal (TtyDevice
on the slave, the emulator on the master), over I2C through the emulator's bus double, which
answers byte for byte like the chip (status byte, busy reads, unacknowledged addresses).
"""
from __future__ import annotations

import ctypes
import os
import pty
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

import adapters.pn532.transports as transports_module
from adapters.pn532.frames import (
    ACK_FRAME,
    ERROR_FRAME,
    MAX_LEN,
    NACK_FRAME,
    TFI_HOST_TO_PN532,
    Ack,
    ErrorFrame,
    FrameDecoder,
    Information,
    Nack,
    information_frame,
    response_frame,
)
from adapters.pn532.reader import PassiveTarget, Pn532Reader, parse_passive_target
from adapters.pn532.transports import (
    WAKEUP,
    HsuTransport,
    I2cTransport,
    ReaderBadFrame,
    ReaderError,
    ReaderTimeout,
    Smbus2Bus,
)
from adapters.serial_tty import TtyDevice
from devtools.emulators.pn532 import Pn532Core, Pn532HsuEmulator, Pn532I2cBus
from ports.hardware import DeviceProblem, TokenPresented

TIMEOUT = 10
FIRMWARE_RESPONSE = bytes.fromhex("0000FF06FAD50332010607E800")     # 03 32 01 06 07, DCS E8
CARD4 = bytes.fromhex("deadbeef")
CARD7 = bytes.fromhex("04a1b2c3d4e5f6")
FAST = dict(poll_interval=0.02, backoff_min=0.05, backoff_max=0.2, response_timeout=0.5)


async def until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait for a condition (the bound only guards against a hang)."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.005)


# --- codec --------------------------------------------------------------------------------------
def test_information_frames_are_built_as_the_sheet_says() -> None:
    assert information_frame(0x02) == bytes.fromhex("0000FF02FED4022A00")
    assert information_frame(0x14, b"\x01\x14\x01") == bytes.fromhex("0000FF05FBD414011401" "0200")
    assert response_frame(0x03, b"\x32\x01\x06\x07") == FIRMWARE_RESPONSE
    with pytest.raises(ValueError):
        information_frame(0x40, bytes(MAX_LEN))


def test_ack_nack_error_and_information_decode() -> None:
    decoder = FrameDecoder()
    stream = ACK_FRAME + FIRMWARE_RESPONSE + NACK_FRAME + ERROR_FRAME
    assert decoder.feed(stream) == [Ack(), Information(0x03, b"\x32\x01\x06\x07"), Nack(), ErrorFrame()]
    assert decoder.bad_frames == 0 and decoder.skipped_bytes == 0


def test_garbage_before_a_frame_is_skipped() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x55\xaa\x12\xff\xfe" + ACK_FRAME) == [Ack()]
    assert decoder.skipped_bytes == 5 and decoder.bad_frames == 0


def test_split_feeds_give_the_same_frames() -> None:
    stream = b"\x99" + ACK_FRAME + FIRMWARE_RESPONSE + ERROR_FRAME
    decoder = FrameDecoder()
    frames = [frame for byte in stream for frame in decoder.feed(bytes((byte,)))]
    assert frames == [Ack(), Information(0x03, b"\x32\x01\x06\x07"), ErrorFrame()]


def test_wrong_lcs_is_discarded_counted_and_the_next_frame_found() -> None:
    bad_lcs = bytearray(FIRMWARE_RESPONSE)
    bad_lcs[4] = 0xFB
    decoder = FrameDecoder()
    assert decoder.feed(bytes(bad_lcs) + ACK_FRAME) == [Ack()]
    assert decoder.bad_frames == 1 and "LCS" in decoder.last_problem


def test_wrong_dcs_is_discarded_counted_and_the_next_frame_found() -> None:
    bad_dcs = bytearray(FIRMWARE_RESPONSE)
    bad_dcs[-2] ^= 0x01
    decoder = FrameDecoder()
    assert decoder.feed(bytes(bad_dcs) + FIRMWARE_RESPONSE) == [Information(0x03, b"\x32\x01\x06\x07")]
    assert decoder.bad_frames == 1 and "DCS" in decoder.last_problem


def test_a_truncated_frame_waits_for_its_end() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(FIRMWARE_RESPONSE[:8]) == []
    assert decoder.partial
    assert decoder.feed(FIRMWARE_RESPONSE[8:]) == [Information(0x03, b"\x32\x01\x06\x07")]
    assert not decoder.partial and decoder.bad_frames == 0


def test_a_truncated_frame_cut_off_by_the_next_one_is_bad_and_the_next_one_survives() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(FIRMWARE_RESPONSE[:8] + FIRMWARE_RESPONSE) == [Information(0x03, b"\x32\x01\x06\x07")]
    assert decoder.bad_frames == 1


@pytest.mark.parametrize("frame, problem", [
    (bytes.fromhex("0000FFFFFF000AF6D54B00DE00"), "extended"),      # LEN FF, LCS FF: extended frame
    (bytes.fromhex("0000FF0000D500"), "length 0"),                 # LEN 0 with LCS 0
    (bytes.fromhex("0000FF4BB5"), "too long"),                     # LEN beyond max_len (64 here)
    (information_frame(0x02), "TFI"),                               # host frame to the host
    (bytes.fromhex("0000FF01FF80" "8000"), "TFI"),                 # LEN 1 but not the error TFI
])
def test_impossible_frames_are_bad(frame: bytes, problem: str) -> None:
    decoder = FrameDecoder(max_len=64)
    assert decoder.feed(frame + ACK_FRAME) == [Ack()]
    assert decoder.bad_frames == 1 and problem in decoder.last_problem


def test_the_buffer_stays_bounded_on_endless_garbage() -> None:
    decoder = FrameDecoder()
    for _ in range(100):
        assert decoder.feed(bytes(range(1, 256)) * 4) == []
    assert decoder.buffered == 0
    # A frame that claims the longest length holds at most one frame's worth of bytes.
    decoder.feed(b"\x00\xff\xfe\x02" + bytes(range(1, 200)))
    assert decoder.buffered <= MAX_LEN + 5


@settings(max_examples=200, deadline=None)
@given(command=st.integers(0, 255), data=st.binary(max_size=MAX_LEN - 2),
       garbage=st.binary(max_size=40).map(lambda b: b.replace(b"\x00", b"\x01")),
       cuts=st.lists(st.integers(0, 300), max_size=5))
def test_any_frame_behind_noise_and_split_anywhere_decodes(
        command: int, data: bytes, garbage: bytes, cuts: list[int]) -> None:
    stream = garbage + information_frame(command, data)
    decoder = FrameDecoder(tfi=TFI_HOST_TO_PN532)
    frames = []
    previous = 0
    for cut in sorted({min(c, len(stream)) for c in cuts} | {len(stream)}):
        frames += decoder.feed(stream[previous:cut])
        previous = cut
    assert frames == [Information(command, data)]
    assert decoder.bad_frames == 0


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.binary(max_size=300), max_size=10))
def test_random_bytes_never_break_the_decoder(chunks: list[bytes]) -> None:
    decoder = FrameDecoder()
    for chunk in chunks:
        for frame in decoder.feed(chunk):
            assert isinstance(frame, (Ack, Nack, ErrorFrame, Information))
        assert decoder.buffered <= MAX_LEN + 5
    decoder.reset()
    assert decoder.feed(ACK_FRAME) == [Ack()]


# --- target data ------------------------------------------------------------------------------
def test_passive_targets_parse() -> None:
    assert parse_passive_target(b"\x00") is None
    assert parse_passive_target(bytes.fromhex("0101000408" "04") + CARD4) == PassiveTarget(
        b"\x00\x04", 0x08, CARD4)
    assert parse_passive_target(bytes.fromhex("0101004400" "07") + CARD7).nfcid1 == CARD7
    with_ats = bytes.fromhex("0101034420" "07") + CARD7 + bytes.fromhex("0575778002")
    assert parse_passive_target(with_ats).nfcid1 == CARD7


@pytest.mark.parametrize("data", [
    b"",                                                    # no NbTg
    b"\x00\x01",                                            # NbTg 0 with data
    b"\x02" + bytes.fromhex("0101000408" "04") + CARD4,     # NbTg 2 for MaxTg 1
    bytes.fromhex("0102000408" "04") + CARD4,               # Tg 2
    bytes.fromhex("0101000408" "05") + CARD4 + b"\x01",     # NFCID length 5
    bytes.fromhex("0101004400" "07") + CARD4,               # NFCID length 7, 4 bytes there
    bytes.fromhex("0101000408" "04") + CARD4 + b"\x99",     # bytes after the UID, no ATS flag
    bytes.fromhex("0101034420" "07") + CARD7 + b"\x09\x75", # ATS length that does not fit
    bytes.fromhex("01010004"),                              # header cut short
])
def test_malformed_targets_are_bad_frames(data: bytes) -> None:
    with pytest.raises(ReaderBadFrame):
        parse_passive_target(data)


# --- the emulator core ----------------------------------------------------------------------------
def test_core_acks_and_answers_get_firmware_version() -> None:
    core = Pn532Core()
    assert core.receive(information_frame(0x02)) == ACK_FRAME + FIRMWARE_RESPONSE


def test_core_answers_syntax_errors_with_an_error_frame() -> None:
    core = Pn532Core()
    assert core.receive(information_frame(0x99)) == ACK_FRAME + ERROR_FRAME          # unknown command
    assert core.receive(information_frame(0x02, b"\x01")) == ACK_FRAME + ERROR_FRAME  # wrong length
    assert core.receive(information_frame(0x32, b"\x05\xff\x01")) == ACK_FRAME + ERROR_FRAME
    assert core.receive(information_frame(0x4A, b"\x01")) == ACK_FRAME + ERROR_FRAME


def test_core_resends_the_last_response_on_nack() -> None:
    core = Pn532Core()
    core.receive(information_frame(0x02))
    assert core.receive(NACK_FRAME) == FIRMWARE_RESPONSE


def test_core_ignores_garbage_and_frames_with_bad_checksums() -> None:
    core = Pn532Core()
    bad = bytearray(information_frame(0x02))
    bad[-2] ^= 0xFF
    assert core.receive(b"\x12\x34\x00\xff\x07\x00" + bytes(bad)) == b""
    assert list(core.commands) == []


def test_core_asleep_ignores_commands_until_the_wakeup_sequence() -> None:
    core = Pn532Core(asleep=True)
    assert core.receive(information_frame(0x02)) == b""
    assert core.receive(b"\x55" + bytes(3) + information_frame(0x02)) == b""    # one 55 is not it
    assert core.receive(WAKEUP + information_frame(0x02)) == ACK_FRAME + FIRMWARE_RESPONSE
    assert list(core.commands) == [0x02] and core.wakeups == 1


def test_core_lists_cards_waits_or_answers_none_as_configured() -> None:
    core = Pn532Core()
    poll = information_frame(0x4A, b"\x01\x00")
    assert core.receive(poll) == ACK_FRAME                              # MxRty FF: waits for a card
    core.present_card(CARD4)
    assert core.take_output() == response_frame(0x4B, bytes.fromhex("0101000408" "04") + CARD4)
    assert core.receive(information_frame(0x52, b"\x00")) == ACK_FRAME + response_frame(0x53, b"\x00")
    core.remove_card()
    assert core.receive(poll) == ACK_FRAME
    assert core.receive(ACK_FRAME) == b""                               # the host aborts
    core.present_card(CARD7)
    assert core.take_output() == b""                                    # nobody waits any more
    assert core.receive(information_frame(0x32, b"\x05\xff\x01\x02")) == ACK_FRAME + response_frame(0x33)
    assert core.mx_rty_passive == 2
    assert core.receive(poll) == ACK_FRAME + response_frame(
        0x4B, bytes.fromhex("0101004400" "07") + CARD7)
    core.remove_card()
    assert core.receive(poll) == ACK_FRAME + response_frame(0x4B, b"\x00")


def test_core_knobs_corrupt_error_and_inject() -> None:
    core = Pn532Core()
    core.corrupt_next(1)
    out = core.receive(information_frame(0x02))
    decoder = FrameDecoder()
    assert decoder.feed(out) == [Ack()] and decoder.bad_frames == 1
    assert core.receive(NACK_FRAME) == FIRMWARE_RESPONSE              # the resend is sound
    core.error_next()
    assert core.receive(information_frame(0x02)) == ACK_FRAME + ERROR_FRAME
    core.inject(b"\xde\xad")
    assert core.take_output() == b"\xde\xad"


def test_i2c_bus_double_speaks_status_bytes_and_refuses_other_addresses() -> None:
    bus = Pn532I2cBus()
    with pytest.raises(OSError):
        bus.write(0x25, information_frame(0x02))
    with pytest.raises(OSError):
        bus.read(0x25, 7)
    assert bus.read(0x24, 7) == bytes(7)                              # idle: not ready
    bus.write(0x24, information_frame(0x02))
    assert bus.read(0x24, 7) == bytes(7)                              # busy right after a command
    assert bus.read(0x24, 7) == b"\x01" + ACK_FRAME
    assert bus.read(0x24, 20)[0] == 0x00                              # busy before the response
    assert bus.read(0x24, 20) == b"\x01" + FIRMWARE_RESPONSE + bytes(6)
    bus.go_silent()
    with pytest.raises(OSError):
        bus.read(0x24, 7)


# --- HSU over a real pseudo-terminal ---------------------------------------------------------------
@asynccontextmanager
async def pty_emulator() -> AsyncIterator[tuple[Pn532HsuEmulator, str]]:
    master, slave = pty.openpty()
    path = os.ttyname(slave)
    emulator = Pn532HsuEmulator(master)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(emulator.run)
            yield emulator, path
            nursery.cancel_scope.cancel()
    finally:
        os.close(slave)


async def test_hsu_emulator_sleeps_until_woken_up() -> None:
    async with pty_emulator() as (emulator, path):
        stream = await TtyDevice(path, 115200).open()
        try:
            await stream.send_all(information_frame(0x02))
            await until(lambda: emulator.core.ignored_bytes >= 9)
            await stream.send_all(WAKEUP + information_frame(0x02))
            decoder = FrameDecoder()
            frames: list[Any] = []
            with trio.fail_after(TIMEOUT):
                while len(frames) < 2:
                    chunk = await stream.receive_some(256)    # b"": nothing waiting (VMIN 0)
                    frames += decoder.feed(chunk)
                    await trio.sleep(0 if chunk else 0.002)
            # Only the command after the wake-up was answered.
            assert frames == [Ack(), Information(0x03, b"\x32\x01\x06\x07")]
            assert list(emulator.core.commands) == [0x02] and emulator.core.wakeups == 1
        finally:
            await stream.aclose()


async def test_hsu_transport_wakes_the_chip_once_per_open() -> None:
    async with pty_emulator() as (emulator, path):
        transport = HsuTransport(TtyDevice(path, 115200), ack_timeout=0.5)
        await transport.open()
        assert await transport.exchange(0x02, b"", 0.5) == b"\x32\x01\x06\x07"
        assert await transport.exchange(0x14, b"\x01", 0.5) == b""
        assert emulator.core.wakeups == 1 and list(emulator.core.commands) == [0x02, 0x14]
        emulator.power_cycle()                                      # asleep again
        with pytest.raises(ReaderTimeout):
            await transport.exchange(0x02, b"", 0.5)
        await transport.close()
        await transport.open()
        assert await transport.exchange(0x02, b"", 0.5) == b"\x32\x01\x06\x07"
        assert emulator.core.wakeups == 2
        emulator.error_next()
        with pytest.raises(ReaderError, match="error frame"):
            await transport.exchange(0x02, b"", 0.5)
        emulator.corrupt_next(1)
        with pytest.raises(ReaderBadFrame, match="DCS"):
            await transport.exchange(0x02, b"", 0.5)
        assert await transport.exchange(0x02, b"", 0.5) == b"\x32\x01\x06\x07"
        await transport.close()


@dataclass
class Rig:
    emulator: Any
    reader: Pn532Reader
    events: list[Any] = field(default_factory=list)

    @property
    def core(self) -> Pn532Core:
        return self.emulator.core

    def tokens(self) -> list[TokenPresented]:
        return [e for e in self.events if isinstance(e, TokenPresented)]

    def problems(self) -> list[bool]:
        return [e.problem for e in self.events if isinstance(e, DeviceProblem)]

    async def polls(self, n: int) -> None:
        """Wait until the reader has had `n` more poll answers (and handled all but the last)."""
        target = self.core.polls + n
        await until(lambda: self.core.polls >= target)


@asynccontextmanager
async def running(emulator: Any, transport: Any, **options: Any) -> AsyncIterator[Rig]:
    reader = Pn532Reader(transport, **{"evse": 1, **FAST, **options})
    rig = Rig(emulator, reader)
    send, receive = trio.open_memory_channel[Any](100)

    async def collect() -> None:
        async for event in receive:
            rig.events.append(event)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(collect)
        await nursery.start(reader.run, send)
        yield rig
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def hsu_reader(timeout: float = 0.5, **options: Any) -> AsyncIterator[Rig]:
    async with pty_emulator() as (emulator, path):
        transport = HsuTransport(TtyDevice(path, 115200), ack_timeout=timeout)
        async with running(emulator, transport, response_timeout=timeout, **options) as rig:
            yield rig


@asynccontextmanager
async def i2c_reader(bus: Pn532I2cBus, address: int = 0x24, **options: Any) -> AsyncIterator[Rig]:
    transport = I2cTransport(lambda: bus, address, ack_timeout=0.5, poll_delay=0.002)
    async with running(bus, transport, **options) as rig:
        yield rig


async def presentations(rig: Rig, uid: bytes, expected: str) -> None:
    """A card on the reader is one token however long it stays; taken away and brought back, two."""
    await rig.polls(3)
    assert rig.tokens() == []
    rig.emulator.present_card(uid)
    await until(lambda: len(rig.tokens()) == 1)
    await rig.polls(10)                                     # held still
    rig.emulator.remove_card()
    await rig.polls(3)                                      # seen gone
    rig.emulator.present_card(uid)
    await until(lambda: len(rig.tokens()) == 2)
    await rig.polls(5)
    assert rig.tokens() == [TokenPresented(expected, "ISO14443", 1)] * 2
    assert rig.reader.stats.presentations == 2
    assert 0x52 in rig.core.commands                        # InRelease after a listed target
    assert rig.problems() == []


async def test_hsu_reader_one_token_per_presentation() -> None:
    async with hsu_reader() as rig:
        await presentations(rig, CARD4, "DEADBEEF")
        core = rig.core
        assert list(core.commands)[:3] == [0x02, 0x14, 0x32] and core.wakeups == 1
        assert core.sam_mode == 1 and core.mx_rty_passive == 1


async def test_hsu_reader_counts_bad_frames_and_reads_no_wrong_token() -> None:
    async with hsu_reader() as rig:
        rig.emulator.present_card(CARD7)
        await until(lambda: len(rig.tokens()) == 1)
        stats = rig.reader.stats
        # One at a time, with good polls between (three failures in a row would be an outage).
        rig.emulator.corrupt_next(1)
        await until(lambda: stats.bad_frames >= 1)
        await rig.polls(2)
        rig.emulator.error_next()
        await until(lambda: stats.errors >= 1)
        await rig.polls(2)
        rig.emulator.inject(b"\x13\x37\x00\xff\x05\x00\x01\x02")            # garbage with a bad LCS
        await until(lambda: stats.bad_frames >= 2)
        await rig.polls(2)
        rig.emulator.inject(response_frame(0x03, b"\x32\x01\x06\x07"))      # a response to another command
        await until(lambda: stats.bad_frames >= 3)
        await rig.polls(5)
        assert rig.tokens() == [TokenPresented("04A1B2C3D4E5F6", "ISO14443", 1)]
        assert stats.presentations == 1 and rig.problems() == []


async def test_hsu_reader_reports_silence_once_and_recovers() -> None:
    async with hsu_reader(timeout=0.25) as rig:
        await rig.polls(2)
        rig.emulator.go_silent(True)
        await until(lambda: rig.problems() == [True])
        start = rig.reader.stats.reinitialisations
        await until(lambda: rig.reader.stats.reinitialisations >= start + 2)   # still trying, quietly
        assert rig.problems() == [True]
        problem = next(e for e in rig.events if isinstance(e, DeviceProblem))
        assert problem == DeviceProblem("TokenReader", True, None, problem.detail)
        assert problem.detail.startswith("PN532 ") and "\n" not in problem.detail
        assert rig.reader.stats.timeouts >= 3
        rig.emulator.go_silent(False)
        await until(lambda: rig.problems() == [True, False])
        rig.emulator.present_card(CARD4)
        await until(lambda: len(rig.tokens()) == 1)
        assert rig.tokens() == [TokenPresented("DEADBEEF", "ISO14443", 1)]
        assert rig.events[-2] == DeviceProblem("TokenReader", False, None, "reader answering again")


async def test_hsu_reader_wakes_the_chip_again_after_a_power_cycle() -> None:
    async with hsu_reader(timeout=0.25) as rig:
        await rig.polls(2)
        rig.emulator.power_cycle()              # asleep, MxRtyPassiveActivation back to FF
        await until(lambda: rig.problems() == [True, False])
        assert rig.core.wakeups == 2 and rig.core.mx_rty_passive == 1
        rig.emulator.present_card(CARD4)
        await until(lambda: len(rig.tokens()) == 1)


async def test_hsu_reader_without_a_device_reports_a_problem() -> None:
    transport = HsuTransport(TtyDevice("/nonexistent/ttyPN532", 115200))
    async with running(None, transport) as rig:
        await until(lambda: rig.problems() == [True])
        assert rig.reader.stats.errors >= 3 and "cannot open" in rig.events[0].detail


# --- I2C over the bus double ------------------------------------------------------------------------
async def test_i2c_reader_one_token_per_presentation() -> None:
    bus = Pn532I2cBus()
    async with i2c_reader(bus) as rig:
        await presentations(rig, CARD7, "04A1B2C3D4E5F6")
        assert list(bus.core.commands)[:3] == [0x02, 0x14, 0x32] and bus.core.mx_rty_passive == 1


async def test_i2c_reader_counts_bad_frames_and_reads_no_wrong_token() -> None:
    bus = Pn532I2cBus()
    async with i2c_reader(bus) as rig:
        bus.present_card(CARD4)
        await until(lambda: len(rig.tokens()) == 1)
        stats = rig.reader.stats
        bus.corrupt_next(1)
        await until(lambda: stats.bad_frames >= 1)
        await rig.polls(2)
        bus.error_next()
        await until(lambda: stats.errors >= 1)
        await rig.polls(2)
        bus.inject(b"\x12\x34\x56")                                          # no frame at all
        await until(lambda: stats.bad_frames >= 2)
        await rig.polls(2)
        bus.inject(bytes.fromhex("0000FF0BF5D54B010100040804") + b"\x01\x02")   # truncated, wrong UID
        await until(lambda: stats.bad_frames >= 3)
        await rig.polls(5)
        assert rig.tokens() == [TokenPresented("DEADBEEF", "ISO14443", 1)]
        assert stats.presentations == 1 and rig.problems() == []


async def test_i2c_reader_reports_silence_once_and_recovers() -> None:
    bus = Pn532I2cBus()
    async with i2c_reader(bus) as rig:
        await rig.polls(2)
        bus.go_silent(True)
        await until(lambda: rig.problems() == [True])
        start = rig.reader.stats.reinitialisations
        await until(lambda: rig.reader.stats.reinitialisations >= start + 3)
        assert rig.problems() == [True] and bus.closes >= 3
        bus.go_silent(False)
        await until(lambda: rig.problems() == [True, False])
        bus.present_card(CARD4)
        await until(lambda: len(rig.tokens()) == 1)
        assert rig.tokens() == [TokenPresented("DEADBEEF", "ISO14443", 1)]


async def test_i2c_reader_at_the_wrong_address_reports_a_problem_and_reads_nothing() -> None:
    bus = Pn532I2cBus()
    bus.present_card(CARD4)
    async with i2c_reader(bus, address=0x25) as rig:
        await until(lambda: rig.problems() == [True])
        assert "I2C 0x25" in rig.events[0].detail and rig.reader.stats.errors >= 3
        assert rig.tokens() == [] and list(bus.core.commands) == []


def test_smbus2_bus_uses_one_combined_transaction_per_read_and_write(monkeypatch: pytest.MonkeyPatch) -> None:
    transactions: list[list[Any]] = []

    class FakeSMBus:
        def __init__(self, bus: int | str) -> None:
            assert bus == 1
            self.closed = False

        def i2c_rdwr(self, *messages: Any) -> None:
            transactions.append([(m.addr, m.flags, bytes(m)) for m in messages])
            for message in messages:
                if message.flags & 1:       # I2C_M_RD: the "device" fills the buffer
                    ctypes.memmove(message.buf, b"\x01" + ACK_FRAME, message.len)

        def close(self) -> None:
            self.closed = True

    monkeypatch.setattr(transports_module, "SMBus", FakeSMBus)
    bus = Smbus2Bus(1)
    bus.write(0x24, information_frame(0x02))
    assert bus.read(0x24, 7) == b"\x01" + ACK_FRAME
    bus.close()
    assert transactions[0] == [(0x24, 0, information_frame(0x02))]
    assert transactions[1][0][:2] == (0x24, 1)
    assert bus._bus.closed
