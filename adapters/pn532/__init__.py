"""Adapter: the NXP PN532 NFC reader (ISO 14443A cards) as the station's TokenReader.

`frames` is the sans-I/O frame codec, `transports` puts frames on HSU (a UART) or I2C,
and `reader.Pn532Reader` polls for cards over either. bootstrap/ picks the transport by
board revision (rev1: I2C bus 1 at 0x24, rev2: a UART).
"""
from __future__ import annotations

from adapters.pn532.reader import Pn532Reader, ReaderStats
from adapters.pn532.transports import (
    HsuTransport,
    I2cBus,
    I2cTransport,
    ReaderBadFrame,
    ReaderError,
    ReaderTimeout,
    Smbus2Bus,
)

__all__ = [
    "HsuTransport", "I2cBus", "I2cTransport", "Pn532Reader", "ReaderBadFrame", "ReaderError",
    "ReaderStats", "ReaderTimeout", "Smbus2Bus",
]
