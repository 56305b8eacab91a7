"""Modbus RTU, the part an SDM630 reader needs: sans-I/O (bytes in, values or errors out).

Only function 0x04 (Read Input Registers) and its exception response are spoken. A response
carries no address, so the reader must know what it asked for: `response_length` says from
a frame's first bytes how long it is (0x04: 5 + byte count, 0x84: 5), letting the reader
stop exactly at the frame's end instead of guessing from line silence, which a USB-RS485
bridge or a busy kernel does not preserve. `parse_read_input_registers_response` then
checks everything a frame can get wrong and hands back the register bytes without copying.

Errors are one line each: `FrameError` (and its `CrcError`, `WrongUnitError`) for frames
that must be discarded, `ModbusException` for a device that answered with a refusal.
"""
from __future__ import annotations

import struct

__all__ = [
    "READ_INPUT_REGISTERS", "EXCEPTION_FLAG", "MAX_QUANTITY", "EXCEPTION_NAMES",
    "RtuError", "FrameError", "CrcError", "WrongUnitError", "ModbusException",
    "crc16", "crc_ok", "read_input_registers_request", "response_length",
    "parse_read_input_registers_response", "float32",
]

READ_INPUT_REGISTERS = 0x04
EXCEPTION_FLAG = 0x80           # set in the function code of an exception response
MAX_QUANTITY = 125              # registers per read (Modbus application protocol, 6.4)
MAX_BYTE_COUNT = 2 * MAX_QUANTITY
EXCEPTION_LENGTH = 5            # unit, function | 0x80, code, CRC lo, CRC hi

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "slave device failure",
    5: "acknowledge",
    6: "slave device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}

_REQUEST = struct.Struct(">BBHH")
_CRC = struct.Struct("<H")      # the CRC travels low byte first
_FLOAT32 = struct.Struct(">f")  # high word first, each word big-endian: one big-endian float


class RtuError(Exception):
    """Anything wrong with a Modbus RTU exchange; str() is one line."""


class FrameError(RtuError):
    """A frame that cannot be used (wrong length, function, unit or CRC): discard it."""


class CrcError(FrameError):
    """The frame's CRC does not match its bytes: nothing in it can be trusted."""


class WrongUnitError(FrameError):
    """A well-formed frame from another unit on the bus: not an answer to us."""


class ModbusException(RtuError):
    """The device refused the request with an exception response."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(f"exception {code} ({self.name})")


# --- CRC-16/MODBUS: reflected polynomial 0xA001, initial value 0xFFFF -----------------------------
def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/MODBUS of `data` (sent after it, low byte first)."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def crc_ok(frame: bytes | bytearray | memoryview) -> bool:
    """True when the frame's last two bytes are the CRC of the rest. (The CRC of a frame
    including its own CRC, low byte first, is zero: no slicing needed.)"""
    return len(frame) >= 4 and crc16(frame) == 0


# --- requests ------------------------------------------------------------------------------
def read_input_registers_request(unit: int, address: int, count: int) -> bytes:
    """The 8-byte frame asking `unit` for `count` input registers from `address` (0-based)."""
    if not 1 <= unit <= 247:
        raise ValueError(f"unit id {unit} outside 1..247")
    if not 1 <= count <= MAX_QUANTITY:
        raise ValueError(f"register count {count} outside 1..{MAX_QUANTITY}")
    if not 0 <= address <= 0xFFFF or address + count > 0x10000:
        raise ValueError(f"registers 0x{address:04X}+{count} outside the address space")
    frame = bytearray(8)
    _REQUEST.pack_into(frame, 0, unit, READ_INPUT_REGISTERS, address, count)
    _CRC.pack_into(frame, 6, crc16(memoryview(frame)[:6]))
    return bytes(frame)


# --- responses -----------------------------------------------------------------------------
def response_length(head: bytes | bytearray | memoryview) -> int | None:
    """Total length of the response whose first bytes are `head`, or None while `head` is
    too short to tell (the byte count is the third byte). Raises FrameError when the
    function code is neither 0x04 nor 0x84, or the byte count is beyond any valid answer."""
    if len(head) < 2:
        return None
    function = head[1]
    if function == READ_INPUT_REGISTERS | EXCEPTION_FLAG:
        return EXCEPTION_LENGTH
    if function != READ_INPUT_REGISTERS:
        raise FrameError(f"function 0x{function:02X}, expected 0x04")
    if len(head) < 3:
        return None
    byte_count = head[2]
    if byte_count > MAX_BYTE_COUNT or byte_count % 2:
        raise FrameError(f"byte count {byte_count} is not a register block")
    return 5 + byte_count


def parse_read_input_registers_response(
    frame: bytes | bytearray | memoryview, unit: int, count: int,
) -> memoryview:
    """The register bytes (big-endian, 2 per register) of a complete response to a read of
    `count` input registers from `unit`: a view into `frame`, not a copy.

    Checked in the order that keeps errors honest: the CRC first (a corrupt frame says
    nothing reliable about its unit or length), then unit, function, byte count."""
    view = memoryview(frame)
    if len(view) < EXCEPTION_LENGTH:
        raise FrameError(f"{len(view)}-byte frame is too short")
    if not crc_ok(view):
        received = _CRC.unpack_from(view, len(view) - 2)[0]
        raise CrcError(f"CRC 0x{received:04X}, computed 0x{crc16(view[:-2]):04X}")
    if view[0] != unit:
        raise WrongUnitError(f"frame from unit {view[0]}, expected {unit}")
    function = view[1]
    if function == READ_INPUT_REGISTERS | EXCEPTION_FLAG:
        if len(view) != EXCEPTION_LENGTH:
            raise FrameError(f"{len(view)}-byte exception response, expected {EXCEPTION_LENGTH}")
        raise ModbusException(view[2])
    if function != READ_INPUT_REGISTERS:
        raise FrameError(f"function 0x{function:02X}, expected 0x04")
    byte_count = view[2]
    if byte_count != 2 * count:
        raise FrameError(f"byte count {byte_count}, expected {2 * count}")
    if len(view) != 5 + byte_count:
        raise FrameError(f"{len(view)}-byte frame for byte count {byte_count}")
    return view[3:-2]


def float32(regs: bytes | bytearray | memoryview, index: int) -> float:
    """The IEEE 754 float in registers `index` (high word) and `index + 1` (low word) of a
    register block as returned by `parse_read_input_registers_response`."""
    return _FLOAT32.unpack_from(regs, 2 * index)[0]
