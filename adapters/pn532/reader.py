"""Adapter: the NXP PN532 as the station's TokenReader (ports.hardware.TokenReader).

The reader polls: InListPassiveTarget with a finite MxRtyPassiveActivation answers at once,
with or without a card, so a poll never blocks and a silent chip shows up as timeouts. A card
held on the reader is listed on every poll; it is one presentation until a poll finds no card.

A PN532 that stops answering (several failed exchanges in a row) is reported once as a
DeviceProblem of the TokenReader, closed, and initialised again with exponential back-off;
the first good poll afterwards reports the recovery. Single bad exchanges (a corrupted frame,
an error frame, garbage) are counted and the next poll simply tries again. Charging does not
depend on the reader (remote start), so nothing here ever stops the station.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import trio

from adapters.pn532.frames import (
    GET_FIRMWARE_VERSION,
    IN_LIST_PASSIVE_TARGET,
    IN_RELEASE,
    RF_CONFIGURATION,
    SAM_CONFIGURATION,
    command_name,
)
from adapters.pn532.transports import Pn532Transport, ReaderBadFrame, ReaderError, ReaderTimeout
from ports.hardware import DeviceProblem, HardwareEvent, TokenPresented

log = logging.getLogger("evse.hardware")

COMPONENT = "TokenReader"
PN532_IC = 0x32
# SAMConfiguration: normal mode (no SAM), timeout 20 x 50 ms (virtual card mode only), use IRQ.
SAM_NORMAL_MODE = bytes((0x01, 0x14, 0x01))
CFG_ITEM_MAX_RETRIES = 0x05
MX_RTY_ATR = 0xFF
MX_RTY_PSL = 0x01
MAX_TG = 0x01
BRTY_106_TYPE_A = 0x00
RELEASE_ALL = b"\x00"
NFCID1_LENGTHS = (4, 7, 10)
SEL_RES_ISO14443_4 = 0x20       # the target sent an ATS (it follows the NFCID1)


@dataclass
class ReaderStats:
    """Counters for diagnostics: what went wrong and how often, and what was read."""

    bad_frames: int = 0         # checksum/length errors, wrong response codes, malformed data
    timeouts: int = 0           # no ACK or no response in time
    errors: int = 0             # NACK, error frames, the device missing, not a PN532
    reinitialisations: int = 0  # initialisations after the first
    presentations: int = 0      # TokenPresented pushed


@dataclass(frozen=True, slots=True)
class PassiveTarget:
    """One ISO/IEC 14443A target as InListPassiveTarget (106 kbps type A) lists it."""

    sens_res: bytes
    sel_res: int
    nfcid1: bytes


def parse_passive_target(data: bytes) -> PassiveTarget | None:
    """The target in an InListPassiveTarget response (MaxTg 1), None for NbTg 0.

    Layout: NbTg [Tg SENS_RES(2) SEL_RES NFCIDLength NFCID1 [ATS]]; an ATS (its first byte
    is its length) follows only for ISO 14443-4 targets. Raises ReaderBadFrame for anything
    that does not fit, so a damaged response never becomes a token."""
    if not data:
        raise ReaderBadFrame("InListPassiveTarget: empty response")
    targets = data[0]
    if targets == 0:
        if len(data) != 1:
            raise ReaderBadFrame("InListPassiveTarget: data after NbTg 0")
        return None
    if targets != 1:
        raise ReaderBadFrame(f"InListPassiveTarget: NbTg {targets} for MaxTg 1")
    if len(data) < 6 or data[1] != 1:
        raise ReaderBadFrame("InListPassiveTarget: target header malformed")
    uid_length = data[5]
    end = 6 + uid_length
    if uid_length not in NFCID1_LENGTHS or len(data) < end:
        raise ReaderBadFrame(f"InListPassiveTarget: NFCID length {uid_length} does not fit")
    sel_res = data[4]
    ats = data[end:]
    if ats and not (sel_res & SEL_RES_ISO14443_4 and ats[0] == len(ats)):
        raise ReaderBadFrame("InListPassiveTarget: bytes after the NFCID1 are no ATS")
    return PassiveTarget(bytes(data[2:4]), sel_res, bytes(data[6:end]))


class Pn532Reader:
    """TokenReader over a PN532 transport (HsuTransport or I2cTransport).

    `max_retries_passive` is MxRtyPassiveActivation (finite, so that polls return);
    `failures_before_problem` failed exchanges in a row make the reader "not answering"."""

    def __init__(self, transport: Pn532Transport, *, evse: int | None = None,
                 poll_interval: float = 0.1, max_retries_passive: int = 1,
                 backoff_min: float = 1.0, backoff_max: float = 30.0,
                 response_timeout: float = 0.5, failures_before_problem: int = 3) -> None:
        if not 0 <= max_retries_passive < 0xFF:
            raise ValueError("max_retries_passive must be 0..254 (0xFF would wait for a card forever)")
        if failures_before_problem < 1:
            raise ValueError("failures_before_problem must be at least 1")
        self._transport = transport
        self.evse = evse
        self.poll_interval = poll_interval
        self.max_retries_passive = max_retries_passive
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.response_timeout = response_timeout
        self.failures_before_problem = failures_before_problem
        self.stats = ReaderStats()
        self._failures = 0              # failed exchanges in a row
        self._problem = False           # DeviceProblem(True) pushed, recovery not yet
        self._backoff = backoff_min
        self._card: str | None = None   # NFCID1 of the card on the reader (one presentation)

    async def run(
        self,
        events: trio.MemorySendChannel[HardwareEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()
        try:
            while True:
                await self._session(events)
                await self._close()
                if self._failures >= self.failures_before_problem:
                    await trio.sleep(self._backoff)
                    self._backoff = min(self._backoff * 2, self.backoff_max)
                else:
                    await trio.sleep(self.poll_interval)
                self.stats.reinitialisations += 1
        finally:
            await self._close()

    # --- one session: open, initialise, poll until the reader stops answering ------------
    async def _session(self, events: trio.MemorySendChannel[HardwareEvent]) -> None:
        try:
            await self._open()
            await self._initialise()
        except ReaderError as exc:
            await self._failed(exc, events)
            return
        while True:
            if not await self._poll(events):
                return
            await trio.sleep(self.poll_interval)

    async def _open(self) -> None:
        try:
            await self._transport.open()
        except ReaderError:
            raise
        except Exception as exc:    # an error the transport did not translate: still not ours to raise
            log.exception("PN532 %s: open failed", self._transport.label)
            raise ReaderError(f"open failed: {type(exc).__name__}: {exc}") from exc

    async def _close(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            try:
                await self._transport.close()
            except Exception:       # closing must never end the reader
                log.exception("PN532 %s: close failed", self._transport.label)

    async def _exchange(self, command: int, data: bytes = b"") -> bytes:
        try:
            return await self._transport.exchange(command, data, self.response_timeout)
        except ReaderError:
            raise
        except Exception as exc:
            log.exception("PN532 %s: %s failed", self._transport.label, command_name(command))
            raise ReaderError(f"{command_name(command)}: {type(exc).__name__}: {exc}") from exc

    async def _initialise(self) -> None:
        """GetFirmwareVersion (is it a PN532?), SAMConfiguration normal mode, then MaxRetries
        with a finite MxRtyPassiveActivation so that InListPassiveTarget returns when no card."""
        firmware = await self._exchange(GET_FIRMWARE_VERSION)
        if len(firmware) != 4:
            raise ReaderBadFrame(f"GetFirmwareVersion: {len(firmware)} data bytes, expected 4")
        ic, version, revision, support = firmware
        if ic != PN532_IC:
            raise ReaderError(f"not a PN532 (IC 0x{ic:02X})")
        log.info("PN532 %s: firmware %d.%d, support 0x%02X",
                 self._transport.label, version, revision, support)
        await self._exchange(SAM_CONFIGURATION, SAM_NORMAL_MODE)
        await self._exchange(RF_CONFIGURATION, bytes(
            (CFG_ITEM_MAX_RETRIES, MX_RTY_ATR, MX_RTY_PSL, self.max_retries_passive)))

    async def _poll(self, events: trio.MemorySendChannel[HardwareEvent]) -> bool:
        """One InListPassiveTarget (and InRelease after a target); False once the reader
        has stopped answering."""
        try:
            data = await self._exchange(IN_LIST_PASSIVE_TARGET, bytes((MAX_TG, BRTY_106_TYPE_A)))
        except ReaderError as exc:
            return await self._failed(exc, events)
        try:
            target = parse_passive_target(data)
        except ReaderBadFrame as exc:
            if data and data[0]:        # the chip may hold a target: let it go
                await self._release(events)
            return await self._failed(exc, events)
        await self._answered(events)
        await self._seen(target, events)
        if target is not None:
            return await self._release(events)
        return True

    async def _release(self, events: trio.MemorySendChannel[HardwareEvent]) -> bool:
        try:
            await self._exchange(IN_RELEASE, RELEASE_ALL)
        except ReaderError as exc:
            return await self._failed(exc, events)
        return True

    # --- presentations ----------------------------------------------------------------------
    async def _seen(self, target: PassiveTarget | None,
                    events: trio.MemorySendChannel[HardwareEvent]) -> None:
        if target is None:
            if self._card is not None:
                log.debug("PN532 %s: card removed", self._transport.label)
            self._card = None
            return
        uid = target.nfcid1.hex().upper()
        if uid == self._card:
            return          # still the same presentation
        self._card = uid
        self.stats.presentations += 1
        log.debug("PN532 %s: card %s presented", self._transport.label, uid)
        await events.send(TokenPresented(id_token=uid, type="ISO14443", evse=self.evse))

    # --- failures and recovery --------------------------------------------------------------
    async def _failed(self, exc: ReaderError,
                      events: trio.MemorySendChannel[HardwareEvent]) -> bool:
        """Count a failed exchange; report the reader once when it stopped answering.
        Returns False when the session should end (close, back off, initialise again)."""
        if isinstance(exc, ReaderTimeout):
            self.stats.timeouts += 1
        elif isinstance(exc, ReaderBadFrame):
            self.stats.bad_frames += 1
        else:
            self.stats.errors += 1
        self._failures += 1
        level = logging.DEBUG if self._problem else logging.WARNING
        log.log(level, "PN532 %s: %s", self._transport.label, exc)
        if self._failures < self.failures_before_problem:
            return True
        if not self._problem:
            self._problem = True
            detail = f"PN532 {self._transport.label} not answering: {exc}"
            log.error("%s", detail)
            await events.send(DeviceProblem(COMPONENT, True, None, " ".join(detail.split())))
        return False

    async def _answered(self, events: trio.MemorySendChannel[HardwareEvent]) -> None:
        """A good poll: the reader works (again)."""
        self._failures = 0
        self._backoff = self.backoff_min
        if self._problem:
            self._problem = False
            log.warning("PN532 %s: reader answering again", self._transport.label)
            await events.send(DeviceProblem(COMPONENT, False, None, "reader answering again"))
