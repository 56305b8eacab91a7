"""adapters.openevse.rapi: the sans-I/O RAPI codec (framing, checksums, sequence ids, tables)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.openevse import rapi
from adapters.openevse.rapi import AsyncMessage, LineDecoder, Response, encode, parse


def signed(body: bytes) -> bytes:
    """`body` + its XOR checksum (a line as the decoder returns it: no `\\r`)."""
    return body + b"^%02X" % rapi.checksum(body)


# --- encode ----------------------------------------------------------------------------------
def test_encode_matches_the_sheet_examples() -> None:
    assert encode("GS") == b"$GS^30\r"
    assert encode("FE") == b"$FE^27\r"


def test_encode_params_and_sequence_id() -> None:
    line = encode("SC", 16, "V", seq=0x1A)
    assert line.startswith(b"$SC 16 V :1A^") and line.endswith(b"\r")
    assert line[-3:-1] == b"%02X" % rapi.checksum(b"$SC 16 V :1A")
    assert encode("SY", seq=0xFF).startswith(b"$SY :FF^")


@pytest.mark.parametrize("seq", [0, 256, -1])
def test_encode_refuses_sequence_id_out_of_range(seq: int) -> None:
    with pytest.raises(ValueError):
        encode("GS", seq=seq)


@pytest.mark.parametrize("command, params", [
    ("G", ()), ("GSX", ()), ("G$", ()), ("SC", ("1 6",)), ("SC", ("6^",)), ("SC", ("",)),
    ("SC", (":1A",)), ("SC", ("6\r",)),
])
def test_encode_refuses_what_would_break_the_frame(command: str, params: tuple) -> None:
    with pytest.raises(ValueError):
        encode(command, *params)


# --- parse -----------------------------------------------------------------------------------
def test_parse_responses_with_and_without_sequence_id() -> None:
    assert parse(signed(b"$OK")) == Response(True, (), None)
    assert parse(signed(b"$OK :1A")) == Response(True, (), 0x1A)
    assert parse(signed(b"$OK 03 120 03 0100 :7f")) == Response(True, ("03", "120", "03", "0100"), 0x7F)
    assert parse(signed(b"$NK 32 :02")) == Response(False, ("32",), 2)


def test_parse_async_messages() -> None:
    assert parse(signed(b"$AT 03 03 32 0140")) == AsyncMessage("AT", ("03", "03", "32", "0140"))
    assert parse(signed(b"$AB 00 7.1.3")) == AsyncMessage("AB", ("00", "7.1.3"))
    assert parse(signed(b"$AN 1")) == AsyncMessage("AN", ("1",))


def test_parse_accepts_a_lower_case_checksum() -> None:
    line = signed(b"$OK 1 :03")
    assert parse(line[:-2] + line[-2:].lower()) == Response(True, ("1",), 3)


@pytest.mark.parametrize("line", [
    b"$OK 03 120 03 0100^00",          # wrong checksum
    b"$OK 03 120 03 0100",             # no checksum
    b"$OK 03 120 03 0100^3",           # one checksum digit
    b"$OK 03 120 03 0100^ZZ",          # not hex
    b"OK^00",                          # no `$`
    b"$^24",                           # nothing in it
])
def test_parse_refuses_bad_lines(line: bytes) -> None:
    assert parse(line) is None


def test_parse_refuses_bad_sequence_id_non_ascii_and_echoed_commands() -> None:
    assert parse(signed(b"$OK 1 :1")) is None           # one-digit sequence id
    assert parse(signed(b"$OK 1 :GG")) is None          # not hex
    assert parse(signed("$OK 1 é".encode())) is None  # not ASCII
    assert parse(signed(b"$GS :01")) is None            # a command (echo), not an answer


def test_a_checksum_over_a_changed_byte_fails() -> None:
    good = signed(b"$AT 02 02 16 0100")
    assert parse(good) is not None
    assert parse(good.replace(b"02 02", b"02 03")) is None


@given(ok=st.booleans(),
       params=st.lists(st.text(alphabet="0123456789abcdefABCDEF.-", min_size=1, max_size=6),
                       max_size=4),
       seq=st.one_of(st.none(), st.integers(1, 255)))
def test_encode_then_parse_round_trips(ok: bool, params: list[str], seq: int | None) -> None:
    line = encode("OK" if ok else "NK", *params, seq=seq)
    assert parse(line[:-1]) == Response(ok, tuple(params), seq)


# --- LineDecoder -----------------------------------------------------------------------------
def test_decoder_joins_lines_split_across_reads() -> None:
    d = LineDecoder()
    assert d.feed(b"$OK 1") == []
    assert d.feed(b"6 :0") == []
    assert d.feed(b"1^AB\r$AT") == [b"$OK 16 :01^AB"]
    assert d.feed(b" 01 01 16 0000^00\r") == [b"$AT 01 01 16 0000^00"]
    assert d.discarded == 0


def test_decoder_several_lines_in_one_read_and_line_ends_between_them() -> None:
    d = LineDecoder()
    assert d.feed(b"$OK^20\r\n$NK^21\r\r\n $OK :02^xx\r") == [b"$OK^20", b"$NK^21", b"$OK :02^xx"]
    assert d.discarded == 0


def test_decoder_discards_and_counts_garbage_before_a_line() -> None:
    d = LineDecoder()
    assert d.feed(b"\x00\xffnoise$OK^20\r") == [b"$OK^20"]
    assert d.feed(b"trailing junk") == []
    assert (d.garbage, d.truncated, d.oversized) == (2, 0, 0)


def test_decoder_drops_a_truncated_line_and_keeps_the_next() -> None:
    d = LineDecoder()
    assert d.feed(b"$OK 03 12") == []
    assert d.feed(b"$OK^20\r") == [b"$OK^20"]
    assert (d.garbage, d.truncated, d.oversized) == (0, 1, 0)


def test_decoder_drops_an_oversized_line_whole_and_recovers() -> None:
    d = LineDecoder(max_line=16)
    assert d.feed(b"$OK " + b"9" * 20) == []
    assert d.feed(b"9" * 100 + b" :01^00\r$NK^21\r") == [b"$NK^21"]
    assert (d.garbage, d.truncated, d.oversized) == (0, 0, 1)
    exactly = b"$" + b"A" * 15
    assert d.feed(exactly + b"\r") == [exactly]


def test_decoder_memory_stays_bounded_on_endless_input() -> None:
    d = LineDecoder(max_line=64)
    for _ in range(1000):
        assert d.feed(b"$" + b"x" * 4096) == []
    assert len(d._buf) <= 64
    assert d.feed(b"\r$OK^20\r") == [b"$OK^20"]


def test_decoder_reset_forgets_a_partial_line() -> None:
    d = LineDecoder()
    d.feed(b"$OK 1")
    d.reset()
    assert d.feed(b"^AB\r$OK^20\r") == [b"$OK^20"]
    assert d.garbage == 1


# --- tables ----------------------------------------------------------------------------------
def test_fault_table() -> None:
    assert rapi.fault_of(0x06) == ("GroundFault", "RCD", "Tripped")
    assert rapi.fault_of(0x08) == ("StuckRelay", "PowerContactor", "Problem")
    assert rapi.fault_of(0x0E) == ("RelayClosureFault", "PowerContactor", "Problem")
    assert rapi.fault_of(0x04) == ("VentRequired", "CPPWMController", "Problem")
    assert rapi.fault_of(0x0C) == ("ControllerFault0C", "Controller", "Problem")
    for state in (0x00, 0x01, 0x02, 0x03, 0xFE, 0xFF):
        assert rapi.fault_of(state) is None
    for code in rapi.BOOT_FAULTS:
        assert rapi.fault_of(code) == rapi.FAULTS[code]


def test_state_names_cover_the_sheet() -> None:
    assert set(rapi.STATE_NAMES) == {*range(0x00, 0x0C), 0x0E, 0xFE, 0xFF}
    assert all(rapi.is_fault(s) for s in rapi.FAULTS)
