"""OpenEVSE RAPI codec, sans I/O: framing, XOR checksums, sequence ids, states and faults.

RAPI is line-based ASCII over a UART (see shared/reference/hardware/openevse-rapi.md)::

    $GS :1A^xx\\r                  command, optional sequence id, XOR checksum
    $OK 03 120 03 0100 :1A^xx\\r   response echoing the sequence id
    $AT 03 03 32 0100^xx\\r        asynchronous state transition (no sequence id)

Nothing here does I/O, so the controller adapter, the emulator and the tests share
one definition of the wire format. A line that is not well-formed is never repaired:
`LineDecoder` drops what cannot be a line and `parse` returns None for a line whose
checksum or shape is wrong; the callers count and log those.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import reduce
from operator import xor
from typing import Final, NamedTuple

__all__ = [
    "MAX_LINE", "Response", "AsyncMessage", "LineDecoder", "checksum", "encode", "parse",
    "STATE_NAMES", "STATE_UNKNOWN", "STATE_A", "STATE_B", "STATE_C", "STATE_D",
    "STATE_SLEEPING", "STATE_DISABLED", "Fault", "FAULTS", "BOOT_FAULTS", "is_fault", "fault_of",
]

SOC: Final = 0x24          # '$' start of a line
EOC: Final = 0x0D          # '\r' end of a line
MAX_LINE: Final = 64       # the firmware's buffers are 32 bytes; anything past 64 is noise

# --- states (evsestate / pilotstate, hex on the wire) ----------------------------------------
STATE_UNKNOWN: Final = 0x00
STATE_A: Final = 0x01          # 12 V, no vehicle
STATE_B: Final = 0x02          # 9 V, vehicle connected
STATE_C: Final = 0x03          # 6 V, vehicle asks for energy; as evsestate: relay closed
STATE_D: Final = 0x04          # 3 V, vent required
STATE_SLEEPING: Final = 0xFE
STATE_DISABLED: Final = 0xFF

STATE_NAMES: Final[dict[int, str]] = {
    0x00: "UNKNOWN", 0x01: "A", 0x02: "B", 0x03: "C", 0x04: "D",
    0x05: "DIODE_CHK_FAILED", 0x06: "GFCI_FAULT", 0x07: "NO_GROUND", 0x08: "STUCK_RELAY",
    0x09: "GFI_TEST_FAILED", 0x0A: "OVER_TEMPERATURE", 0x0B: "OVER_CURRENT",
    0x0E: "RELAY_CLOSURE_FAULT", 0xFE: "SLEEPING", 0xFF: "DISABLED",
}


class Fault(NamedTuple):
    """An EVSE fault as the domain names it: the fault and the device-model variable
    (component.variable) that reports it."""

    name: str
    component: str
    variable: str


FAULTS: Final[dict[int, Fault]] = {
    0x04: Fault("VentRequired", "CPPWMController", "Problem"),
    0x05: Fault("DiodeCheckFailed", "CPPWMController", "Problem"),
    0x06: Fault("GroundFault", "RCD", "Tripped"),
    0x07: Fault("NoGround", "ElectricalFeed", "Problem"),
    0x08: Fault("StuckRelay", "PowerContactor", "Problem"),
    0x09: Fault("GfiSelfTestFailed", "RCD", "Problem"),
    0x0A: Fault("OverTemperature", "TemperatureSensor", "Problem"),
    0x0B: Fault("OverCurrent", "OverCurrentProtection", "Problem"),
    0x0E: Fault("RelayClosureFault", "PowerContactor", "Problem"),
}
#: `$AB` postcodes that mean the controller booted into a fault (same codes as the states).
BOOT_FAULTS: Final = frozenset({0x07, 0x08, 0x09})


def is_fault(state: int) -> bool:
    """States 04-0E are faults (the sheet); 0C/0D are reserved but still faults."""
    return 0x04 <= state <= 0x0E


def fault_of(state: int) -> Fault | None:
    """The fault an evse state (or boot postcode) stands for; None when it is no fault.
    A fault code the table does not know still faults the EVSE, under a name that
    keeps the code so it can be looked up."""
    if not is_fault(state):
        return None
    return FAULTS.get(state) or Fault(f"ControllerFault{state:02X}", "Controller", "Problem")


# --- framing ---------------------------------------------------------------------------------
def checksum(data: bytes | bytearray | memoryview) -> int:
    """8-bit XOR of every byte (RAPI's `^xk` checksum covers everything before the `^`)."""
    return reduce(xor, data, 0)


_BAD_PARAM = re.compile(r"[\s$^*:]")


def encode(command: str, *params: object, seq: int | None = None) -> bytes:
    """One command line: `$` cmd params [` :ss`] `^` XOR checksum (upper-case hex) `\\r`."""
    if len(command) != 2 or not command.isascii() or not command.isalnum():
        raise ValueError(f"RAPI command must be 2 letters/digits, got {command!r}")
    text = "$" + command
    for p in params:
        s = str(p)
        if not s or _BAD_PARAM.search(s) or not s.isascii():
            raise ValueError(f"RAPI parameter {s!r} is empty or holds a reserved character")
        text += " " + s
    if seq is not None:
        if not 0x01 <= seq <= 0xFF:
            raise ValueError(f"sequence id must be 01..FF, got {seq}")
        text += f" :{seq:02X}"
    raw = text.encode("ascii")
    return b"%s^%02X\r" % (raw, checksum(raw))


@dataclass(frozen=True, slots=True)
class Response:
    """`$OK ...` / `$NK ...`: the answer to a command; `seq` echoes the command's id."""

    ok: bool
    params: tuple[str, ...] = ()
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class AsyncMessage:
    """A line the controller sends on its own: `AB` boot, `AT` state transition, `AN`
    button, (`WF`, `ST` from older firmware)."""

    kind: str
    params: tuple[str, ...] = ()


_HEX = frozenset(b"0123456789ABCDEFabcdef")


def _seq_id(token: str) -> int | None:
    """`:1A` -> 0x1A; None when the token is not a two-digit hex sequence id."""
    if len(token) != 3 or not all(ord(c) in _HEX for c in token[1:]):
        return None
    return int(token[1:], 16)


def parse(line: bytes) -> Response | AsyncMessage | None:
    """A complete line (from `$`, without the `\\r`) -> Response or AsyncMessage.

    None when the checksum is missing or wrong, the line is not ASCII, or it is neither
    a response nor an asynchronous message (e.g. a command echoed back)."""
    n = len(line)
    if n < 5 or line[0] != SOC or line[n - 3] != 0x5E:           # shortest: $OK^xx
        return None
    if line[n - 2] not in _HEX or line[n - 1] not in _HEX:
        return None
    if checksum(memoryview(line)[: n - 3]) != int(line[n - 2:], 16):
        return None
    try:
        tokens = line[1: n - 3].decode("ascii").split()
    except UnicodeDecodeError:
        return None
    if not tokens:
        return None
    kind = tokens[0]
    if kind == "OK" or kind == "NK":
        seq = None
        if len(tokens) > 1 and tokens[-1].startswith(":"):
            seq = _seq_id(tokens.pop())
            if seq is None:
                return None
        return Response(kind == "OK", tuple(tokens[1:]), seq)
    if len(kind) == 2 and (kind[0] == "A" or kind in ("WF", "ST")):
        return AsyncMessage(kind, tuple(tokens[1:]))
    return None


_DELIMS = re.compile(rb"[$\r]")


class LineDecoder:
    """Incremental splitter of the byte stream into `$...` lines (bounded memory).

    Bytes outside a line (before a `$`) are garbage, a `$` before the `\\r` means the
    line so far was truncated (the firmware restarts its buffer the same way), and a
    line longer than `max_line` is dropped whole up to its `\\r`. Each is counted in
    `garbage`, `truncated` or `oversized`; CR/LF/space between lines are not garbage."""

    __slots__ = ("max_line", "garbage", "truncated", "oversized", "_buf", "_in_line", "_skip")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self.garbage = 0
        self.truncated = 0
        self.oversized = 0
        self._buf = bytearray()
        self._in_line = False      # inside a line (after its `$`)
        self._skip = False         # inside a line that grew too long: drop to its end

    @property
    def discarded(self) -> int:
        return self.garbage + self.truncated + self.oversized

    def reset(self) -> None:
        """Forget a partial line (the link was reopened)."""
        self._buf.clear()
        self._in_line = self._skip = False

    def feed(self, data: bytes) -> list[bytes]:
        """The complete lines in `data` (with what was buffered before), each from `$`."""
        lines: list[bytes] = []
        pos = 0
        for m in _DELIMS.finditer(data):
            at = m.start()
            if data[at] == SOC:
                if self._in_line:
                    if not self._skip:
                        self.truncated += 1
                elif data[pos:at].strip():
                    self.garbage += 1
                self._buf.clear()
                self._buf.append(SOC)
                self._in_line, self._skip = True, False
            elif self._in_line:
                self._append(data, pos, at)
                if not self._skip:
                    lines.append(bytes(self._buf))
                self._buf.clear()
                self._in_line = self._skip = False
            elif data[pos:at].strip():
                self.garbage += 1
            pos = at + 1
        if self._in_line:
            self._append(data, pos, len(data))
        elif data[pos:].strip():
            self.garbage += 1
        return lines

    def _append(self, data: bytes, start: int, end: int) -> None:
        if self._skip or start == end:
            return
        if len(self._buf) + end - start > self.max_line:
            self.oversized += 1
            self._skip = True
            self._buf.clear()
            return
        self._buf += memoryview(data)[start:end]
