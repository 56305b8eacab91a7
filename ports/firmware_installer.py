"""Port: the firmware installer (OCPP 2.0.1 L01/L02 Installing .. Installed, A/B with rollback).

An install writes a downloaded (and signature-checked) image to the firmware that is not
running and makes it the one to boot next; the caller then reboots (InstallRebooting). Only
after the new firmware booted and the CSMS accepted its BootNotification does the caller
`confirm` it (RAUC: mark-good); a firmware that never gets there is not confirmed, and the
board goes back to the previous one (RAUC: the bootloader's boot-count; the sim: the same rule
with its own count). What happened is learned after each boot from `after_boot`, so a power
loss at any step is answered from what the installer keeps on disk, never by installing the
same image a second time:

| BootOutcome        | what the firmware block reports                              |
|--------------------|--------------------------------------------------------------|
| NONE               | nothing was being installed                                  |
| INSTALL_INTERRUPTED| an install started and never finished: InstallationFailed     |
| AWAITING_REBOOT    | installed, the reboot has not happened yet: reboot now        |
| BOOTED_NEW         | the new firmware runs, unconfirmed: confirm after the Accepted |
|                    | BootNotification, then Installed                              |
| ROLLED_BACK        | the new firmware did not stay: InstallVerificationFailed      |

Errors: InstallationFailed (the image is refused or cannot be written: L01 InstallationFailed)
and InstallerError (the installer itself cannot be used); str() is one line.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class InstallerError(Exception):
    """The installer cannot be used (a command missing or failing, an unreadable state)."""


class InstallationFailed(InstallerError):
    """The image is not installable (not an image for this station, a bad bundle signature,
    a write that failed); nothing changed in what boots next."""


class BootOutcome(enum.Enum):
    NONE = "None"
    INSTALL_INTERRUPTED = "InstallInterrupted"
    AWAITING_REBOOT = "AwaitingReboot"
    BOOTED_NEW = "BootedNew"
    ROLLED_BACK = "RolledBack"


@dataclass(frozen=True, slots=True)
class BootReport:
    """What runs after this boot and what became of the last install."""

    running_version: str               # BootNotification chargingStation.firmwareVersion
    outcome: BootOutcome = BootOutcome.NONE
    installing_version: str | None = None   # the version the last install wrote, when known


class FirmwareInstaller(Protocol):
    async def install(self, image: Path) -> str:
        """L01 Installing: write `image` to the other firmware and make it the next to boot;
        returns the version it carries. Raises InstallationFailed (nothing changed) or
        InstallerError. The caller reboots after it returns."""

    async def after_boot(self) -> BootReport:
        """Once per boot, before the BootNotification: the running version and the outcome of
        the last install (the table above)."""

    async def confirm(self) -> None:
        """This boot is good: its BootNotification was Accepted. Called after every Accepted
        BootNotification (RAUC's boot-count counts every boot, not only the first of a new
        firmware); keeps a new firmware for good; idempotent."""

    async def reject(self) -> None:
        """The running new firmware failed its verification: boot the previous one next (the
        caller reboots)."""
