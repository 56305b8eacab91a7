"""Adapter: firmware installers (ports.firmware_installer.FirmwareInstaller).

`rauc` drives RAUC on the boards (A/B slots, the bootloader's boot-count for rollback); `sim`
is the simulator's installer with the fixed outside interface of issue 15 item 3 (an image is a
file whose first line is `evse-sim-firmware <VERSION>`). `state` is what both share: the small
JSON file under the state directory that says where an install stands, written atomically so
a power loss leaves the old record or the new one.
"""
