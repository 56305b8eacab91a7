"""PN532 frames (NXP UM0701-02, chapter 6): one sans-I/O codec for the I2C and HSU interfaces.

Both interfaces carry the same frames; only the way bytes arrive differs (a byte stream on
HSU, one frame per read transaction on I2C). So the codec knows nothing of I/O or time:
`information_frame` builds what the host sends, and `FrameDecoder` turns whatever bytes
arrive into frames, skipping noise until a start code and discarding (and counting) frames
whose checksums or lengths are wrong, so nothing unchecked ever reaches a caller.

Normal information frame::

    00 | 00 FF | LEN | LCS | TFI | PD0 .. PDn | DCS | 00
    preamble, start code, LEN = len(TFI + PD), LEN + LCS = 0, TFI + PD + DCS = 0 (mod 256)

Extended frames (`00 FF FF FF LENM LENL LCS ...`) are not used by a token reader (every frame
it exchanges is short) and are rejected as bad frames.
"""
from __future__ import annotations

from dataclasses import dataclass

START_CODE = b"\x00\xff"
TFI_HOST_TO_PN532 = 0xD4
TFI_PN532_TO_HOST = 0xD5
TFI_ERROR = 0x7F            # the only byte of an error frame's body (application-level error)

ACK_FRAME = bytes((0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00))
NACK_FRAME = bytes((0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00))
ERROR_FRAME = bytes((0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00))

#: Largest LEN of a normal frame this codec accepts (LEN = FF marks NACK or extended frames).
MAX_LEN = 0xFE
#: Bytes a normal frame adds around TFI + PD: preamble, start code (2), LEN, LCS, DCS, postamble.
FRAME_OVERHEAD = 7

# Command codes (UM0701-02 chapter 7) a token reader uses; the response code is command + 1.
GET_FIRMWARE_VERSION = 0x02
SAM_CONFIGURATION = 0x14
RF_CONFIGURATION = 0x32
IN_LIST_PASSIVE_TARGET = 0x4A
IN_RELEASE = 0x52

COMMAND_NAMES: dict[int, str] = {
    GET_FIRMWARE_VERSION: "GetFirmwareVersion",
    SAM_CONFIGURATION: "SAMConfiguration",
    RF_CONFIGURATION: "RFConfiguration",
    IN_LIST_PASSIVE_TARGET: "InListPassiveTarget",
    IN_RELEASE: "InRelease",
}


def command_name(code: int) -> str:
    """The manual's name of a command code, for logs and one-line errors."""
    return COMMAND_NAMES.get(code, f"command 0x{code:02X}")


# --- frames as decoded ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Ack:
    """The PN532 accepted a well-formed command (or, host to PN532, aborts one)."""


@dataclass(frozen=True, slots=True)
class Nack:
    """Asks the other side to send its last frame again."""


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """Application-level error (syntax error: unknown command, wrong parameters)."""


@dataclass(frozen=True, slots=True)
class Information:
    """A normal information frame: `command` is PD0 (the command or response code)."""

    command: int
    data: bytes


Frame = Ack | Nack | ErrorFrame | Information


# --- encoding ------------------------------------------------------------------------------
def normal_frame(tfi: int, command: int, data: bytes = b"") -> bytes:
    """A normal information frame carrying TFI, PD0 = `command` and PD1.. = `data`."""
    length = 2 + len(data)
    if length > MAX_LEN:
        raise ValueError(f"PN532 frame too long: LEN {length} > {MAX_LEN}")
    frame = bytearray(length + FRAME_OVERHEAD)
    frame[2] = 0xFF
    frame[3] = length
    frame[4] = -length & 0xFF
    frame[5] = tfi
    frame[6] = command
    frame[7:7 + len(data)] = data
    frame[-2] = -(tfi + command + sum(data)) & 0xFF
    return bytes(frame)


def information_frame(command: int, data: bytes = b"") -> bytes:
    """A command from the host to the PN532 (TFI D4)."""
    return normal_frame(TFI_HOST_TO_PN532, command, data)


def response_frame(response_code: int, data: bytes = b"") -> bytes:
    """A response from the PN532 to the host (TFI D5); `response_code` is command + 1."""
    return normal_frame(TFI_PN532_TO_HOST, response_code, data)


# --- decoding ------------------------------------------------------------------------------
_ACK = Ack()
_NACK = Nack()
_ERROR = ErrorFrame()


class FrameDecoder:
    """Incremental decoder: `feed` the bytes as they come, get the complete frames back.

    Bytes before a start code `00 FF` are skipped (`skipped_bytes` counts those that are not
    zero padding). A frame whose LCS or DCS is wrong, whose length is impossible (0, above
    `max_len`, extended) or whose TFI is not `tfi` (the direction this side receives) is
    discarded and counted in `bad_frames` (`last_problem` says why); decoding resumes right
    after its start code, so a good frame hiding behind a bad one is still found. The buffer
    never holds more than one unfinished frame (at most `max_len` + 5 bytes) between feeds.
    """

    def __init__(self, tfi: int = TFI_PN532_TO_HOST, max_len: int = MAX_LEN) -> None:
        if not 2 <= max_len <= MAX_LEN:
            raise ValueError(f"max_len must be 2..{MAX_LEN}")
        self._tfi = tfi
        self._max_len = max_len
        self._buf = bytearray()
        self.bad_frames = 0
        self.skipped_bytes = 0
        self.last_problem = ""

    @property
    def buffered(self) -> int:
        """Bytes kept for a frame not complete yet."""
        return len(self._buf)

    @property
    def partial(self) -> bool:
        """True when a frame has started (start code seen) but is not complete."""
        return self._buf[:2] == START_CODE

    def reset(self) -> None:
        """Forget a frame in progress (the other side was told to abort, or a new read began)."""
        self._buf.clear()

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add `data`; return the frames it completed, in order."""
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        pos = 0
        while True:
            start = buf.find(START_CODE, pos)
            if start < 0:
                # Keep a trailing 00: it may be the first half of the next start code.
                keep = len(buf) - 1 if buf and buf[-1] == 0 else len(buf)
                self._skip(pos, keep)
                pos = keep
                break
            self._skip(pos, start)
            if len(buf) - start < 4:
                pos = start
                break
            length, lcs = buf[start + 2], buf[start + 3]
            if length == 0x00 and lcs == 0xFF:
                frames.append(_ACK)
                pos = start + 4
                continue
            if length == 0xFF and lcs == 0x00:
                frames.append(_NACK)
                pos = start + 4
                continue
            problem = _length_problem(length, lcs, self._max_len)
            if problem:
                pos = self._bad(start, problem)
                continue
            dcs_at = start + 5 + length - 1     # TFI at start + 4, LEN bytes, then DCS
            if len(buf) <= dcs_at:
                pos = start
                break
            with memoryview(buf) as view:
                checksum = sum(view[start + 4:dcs_at + 1]) & 0xFF
            if checksum:
                pos = self._bad(start, "DCS checksum wrong")
                continue
            frame = self._body(start, length)
            if frame is None:
                pos = self._bad(start, f"unexpected TFI 0x{buf[start + 4]:02X}")
                continue
            frames.append(frame)
            pos = dcs_at + 1
        del buf[:pos]
        return frames

    def _body(self, start: int, length: int) -> Frame | None:
        """The frame whose TFI+PD (LEN bytes) start at start + 4; None if the TFI is wrong."""
        buf = self._buf
        tfi = buf[start + 4]
        if length == 1:
            return _ERROR if tfi == TFI_ERROR else None
        if tfi != self._tfi:
            return None
        return Information(buf[start + 5], bytes(buf[start + 6:start + 4 + length]))

    def _bad(self, start: int, problem: str) -> int:
        """Count a discarded frame; decoding resumes after its start code."""
        self.bad_frames += 1
        self.last_problem = problem
        return start + 2

    def _skip(self, begin: int, end: int) -> None:
        if end > begin:
            self.skipped_bytes += (end - begin) - self._buf.count(0, begin, end)


def _length_problem(length: int, lcs: int, max_len: int) -> str:
    """Why LEN/LCS cannot start a normal frame ("" when they can)."""
    if length == 0xFF and lcs == 0xFF:
        return "extended frame not supported"
    if (length + lcs) & 0xFF:
        return "LCS checksum wrong"
    if length == 0:
        return "impossible length 0"
    if length > max_len:
        return f"frame too long (LEN {length})"
    return ""
