"""Adapter: the OpenEVSE controller over RAPI (serial).

`rapi` is the sans-I/O codec (framing, checksums, sequence ids, the state and fault
tables); `controller` is the trio adapter (ports.hardware.EvseController) and the
controller's own ammeter (ports.hardware.Meter, board rev1).
"""
