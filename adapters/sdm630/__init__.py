"""Adapter: the Eastron SDM630 MID energy meter on RS-485 (Modbus RTU), as a ports.hardware.Meter.

`modbus_rtu` is the sans-I/O frame codec (no trio); `meter` owns the connection and turns
input registers into MeterReadings, refusing anything it cannot vouch for.
"""
from __future__ import annotations

from adapters.sdm630.meter import Sdm630Meter, Sdm630Stats

__all__ = ["Sdm630Meter", "Sdm630Stats"]
