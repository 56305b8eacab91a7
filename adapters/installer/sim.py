"""The simulator's firmware installer (ports.firmware_installer), with the fixed outside
interface of issue 15 item 3 that test rigs rely on:

* a sim firmware image is a file whose first line is `evse-sim-firmware <VERSION>` (VERSION:
  1..50 printable ASCII characters without spaces, the size of BootNotification's
  `firmwareVersion`); anything else is refused as not installable (InstallationFailed);
* after the install's soft reboot the running version is VERSION, so the next
  BootNotification carries it; it persists in `<state_dir>/firmware/sim-installer.json`;
* an image whose VERSION ends in `-broken` installs, then fails its post-boot verification:
  the simulator rolls back to the previous version (BootOutcome.ROLLED_BACK ->
  InstallVerificationFailed);
* like RAUC's boot-count, a new version that is not confirmed within BOOT_ATTEMPTS boots is
  rolled back; `reject` rolls back at the next boot.

For the simulator a start of the process is a boot (its reboot is a new boot cycle in the same
process), so it never reports AWAITING_REBOOT.
"""
from __future__ import annotations

import re
from pathlib import Path

import trio

from adapters.installer.state import StateFile
from ports.firmware_installer import BootOutcome, BootReport, InstallationFailed

MAGIC = "evse-sim-firmware"
BOOT_ATTEMPTS = 3
_HEADER = re.compile(rb"evse-sim-firmware ([\x21-\x7e]{1,50})\r?(?:\n|$)")
_LONGEST_HEADER = len(MAGIC) + 1 + 50 + 2


def image_version(image: Path) -> str:
    """VERSION of a sim firmware image, or InstallationFailed naming what is wrong."""
    try:
        with open(image, "rb") as f:
            head = f.read(_LONGEST_HEADER)
    except OSError as exc:
        raise InstallationFailed(f"{image}: cannot be read: {exc.strerror or exc}") from None
    match = _HEADER.match(head)
    if match is None:
        raise InstallationFailed(f"{image.name}: not a sim firmware image (first line must be "
                                 f"'{MAGIC} <VERSION>', VERSION 1..50 characters without spaces)")
    return match.group(1).decode("ascii")


class SimInstaller:
    """ports.firmware_installer.FirmwareInstaller for the simulator (see the module docstring).

    `factory_version` runs until a first install is confirmed (the configured
    `station.firmware_version`)."""

    def __init__(self, state_dir: Path, factory_version: str) -> None:
        self._state = StateFile(Path(state_dir) / "firmware" / "sim-installer.json")
        self._factory = factory_version

    # The record is one small JSON file: read and written in the event loop, like the station's
    # SQLite writes, at most a few times per boot (after_boot, confirm, install), no thread hop.
    async def _read(self) -> dict:
        await trio.lowlevel.checkpoint()
        return self._state.read()

    async def _write(self, data: dict) -> None:
        await trio.lowlevel.checkpoint()
        self._state.write(data)

    async def install(self, image: Path) -> str:
        """L01 Installing: the image's VERSION becomes the one to boot next."""
        version = await trio.to_thread.run_sync(image_version, Path(image))
        state = await self._read()
        running = state.get("running", self._factory)
        await self._write({"running": running,
                           "pending": {"version": version, "previous": running, "stage": "installed"}})
        return version

    async def after_boot(self) -> BootReport:
        """Once per boot: the outcome of the last install (see the module docstring)."""
        state = await self._read()
        running = state.get("running", self._factory)
        pending = state.get("pending")
        if not pending:
            return BootReport(running)
        version, stage = pending["version"], pending["stage"]
        if stage == "installed" and not version.endswith("-broken"):
            pending |= {"stage": "booted", "attempts": BOOT_ATTEMPTS - 1}
            await self._write({"running": running, "pending": pending})
            return BootReport(version, BootOutcome.BOOTED_NEW, version)
        if stage == "booted" and pending["attempts"] > 0:
            pending["attempts"] -= 1
            await self._write({"running": running, "pending": pending})
            return BootReport(version, BootOutcome.BOOTED_NEW, version)
        # -broken failed its post-boot check, the attempts are used up, or it was rejected
        await self._write({"running": running, "pending": None})
        return BootReport(running, BootOutcome.ROLLED_BACK, version)

    async def confirm(self) -> None:
        """The new version's BootNotification was Accepted: it stays (idempotent)."""
        state = await self._read()
        pending = state.get("pending")
        if pending and pending["stage"] == "booted":
            await self._write({"running": pending["version"], "pending": None})

    async def reject(self) -> None:
        """The new version failed its verification: the previous one runs after the next boot."""
        state = await self._read()
        pending = state.get("pending")
        if pending and pending["stage"] == "booted":
            pending["stage"] = "rejected"
            await self._write({"running": state.get("running", self._factory), "pending": pending})
