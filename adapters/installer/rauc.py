"""The boards' firmware installer (ports.firmware_installer) on RAUC (1.8): A/B root file
systems, the bootloader's boot-count for rollback.

Commands (the `rauc` CLI, a client of the RAUC service):

* `rauc status --detailed --output-format=json`: the booted slot (`booted`, a bootname), the
  slot to boot next (`boot_primary`, a slot name) and per slot its `bootname`, `state`
  (booted/active/inactive), `boot_status` (good/bad) and the installed bundle's
  `slot_status.bundle.version`;
* `rauc install BUNDLE`: verifies the bundle against the system's keyring, writes the other
  slot and makes it primary; exit status 1 with `LastError: <reason>` on stdout when refused;
* `rauc status mark-good booted` / `mark-bad booted`.

Where an install stands is kept in `<state_dir>/firmware/rauc-installer.json`, written before
`rauc install` (stage "installing", the booted slot, this boot's id) and after it (stage
"installed", the target slot and its version). After a boot, `after_boot` compares it with
what RAUC says: the same boot id (from /proc/sys/kernel/random/boot_id) means no reboot
happened yet; the target slot booted means the new firmware runs (mark-good once its
BootNotification is Accepted, `confirm`); any other slot means the bootloader went back (the
boot-count ran out, or `reject` marked it bad). Never a second `rauc install` of the same
bundle: after a kill during "installing", an install the RAUC service finished on its own is
taken as installed (awaiting its reboot, or booted), one it did not is INSTALL_INTERRUPTED and
the running slot is made primary again (`mark-active booted`).
"""
from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from adapters.installer.state import StateFile
from ports.firmware_installer import BootOutcome, BootReport, InstallationFailed, InstallerError

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
STATUS_TIMEOUT = 30.0       # s: rauc status / mark-good
INSTALL_TIMEOUT = 1800.0    # s: rauc install of a whole root file system


@dataclass(frozen=True, slots=True)
class Slot:
    name: str                   # e.g. "rootfs.0"
    bootname: str | None        # e.g. "A"
    state: str                  # booted / active / inactive
    boot_good: bool
    version: str | None         # the installed bundle's version, when RAUC knows it


@dataclass(frozen=True, slots=True)
class RaucStatus:
    booted: str                 # bootname (or slot name) of the booted slot
    primary: str | None         # slot name of the next boot
    slots: dict[str, Slot]

    def booted_slot(self) -> Slot | None:
        for slot in self.slots.values():
            if slot.state == "booted" or self.booted in (slot.bootname, slot.name):
                return slot
        return None


def parse_status(text: str) -> RaucStatus:
    """`rauc status --detailed --output-format=json` (RAUC 1.8's shape), or InstallerError."""
    try:
        data = json.loads(text)
        slots = {}
        for entry in data["slots"]:
            (name, s), = entry.items()
            bundle = (s.get("slot_status") or {}).get("bundle") or {}
            slots[name] = Slot(name, s.get("bootname"), s.get("state") or "", s.get("boot_status") == "good",
                               bundle.get("version"))
        return RaucStatus(data.get("booted") or "", data.get("boot_primary"), slots)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InstallerError(f"rauc status: unexpected output ({type(exc).__name__}: {exc})") from None


def failure_reason(stdout: str, stderr: str) -> str:
    """The one line that says why a rauc command failed: its `LastError:`, else the last line
    of stderr, else of stdout."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("LastError: "):
            return line[len("LastError: "):].strip()
    for text in (stderr, stdout):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return "no output"


class RaucInstaller:
    """ports.firmware_installer.FirmwareInstaller on RAUC (see the module docstring).
    `rauc`: the command (a path or argv prefix); `unknown_version`: what runs when RAUC has
    no bundle version for the booted slot (a factory-flashed board)."""

    def __init__(self, state_dir: Path, unknown_version: str, *, rauc: Sequence[str] = ("rauc",),
                 boot_id_file: Path = BOOT_ID) -> None:
        self._state = StateFile(Path(state_dir) / "firmware" / "rauc-installer.json")
        self._rauc = tuple(rauc)
        self._boot_id_file = Path(boot_id_file)
        self._unknown = unknown_version

    # --- the rauc command ---------------------------------------------------------------

    async def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        argv = [*self._rauc, *args]
        try:
            with trio.fail_after(timeout):
                return await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
        except trio.TooSlowError:
            raise InstallerError(f"rauc {args[0]}: no answer within {timeout:.0f} s") from None
        except OSError as exc:
            raise InstallerError(f"rauc {args[0]}: cannot run {argv[0]}: {exc.strerror or exc}") from None

    async def _status(self) -> RaucStatus:
        done = await self._run("status", "--detailed", "--output-format=json", timeout=STATUS_TIMEOUT)
        if done.returncode != 0:
            raise InstallerError(f"rauc status: {failure_reason(done.stdout.decode(), done.stderr.decode())}")
        return parse_status(done.stdout.decode())

    async def _mark(self, how: str) -> None:
        done = await self._run("status", how, "booted", timeout=STATUS_TIMEOUT)
        if done.returncode != 0:
            raise InstallerError(f"rauc status {how}: {failure_reason(done.stdout.decode(), done.stderr.decode())}")

    def _boot_id(self) -> str:
        try:
            return self._boot_id_file.read_text(encoding="ascii").strip()
        except OSError as exc:
            raise InstallerError(f"{self._boot_id_file}: cannot be read: {exc.strerror or exc}") from None

    async def _read(self) -> dict:
        return await trio.to_thread.run_sync(self._state.read)

    async def _write(self, data: dict) -> None:
        await trio.to_thread.run_sync(self._state.write, data)

    # --- the port -------------------------------------------------------------------------

    async def install(self, image: Path) -> str:
        """L01 Installing: `rauc install` (bundle verified by RAUC against its keyring)."""
        status = await self._status()
        booted = status.booted_slot()
        if booted is None:
            raise InstallerError(f"rauc status: no slot is booted (booted={status.booted!r})")
        await self._write({"stage": "installing", "from": booted.name, "boot_id": self._boot_id()})
        done = await self._run("install", str(image), timeout=INSTALL_TIMEOUT)
        if done.returncode != 0:
            await self._write({})
            raise InstallationFailed(f"rauc install: {failure_reason(done.stdout.decode(), done.stderr.decode())}")
        after = await self._status()
        target = after.slots.get(after.primary or "")
        if target is None or target.name == booted.name:
            await self._write({})
            raise InstallationFailed(f"rauc install: the next boot is still {booted.name} "
                                     f"(boot_primary={after.primary!r})")
        version = target.version or "unknown"
        await self._write({"stage": "installed", "from": booted.name, "target": target.name,
                           "version": version, "boot_id": self._boot_id()})
        return version

    async def after_boot(self) -> BootReport:
        """The running version and the outcome of the last install (ports.firmware_installer)."""
        status = await self._status()
        booted = status.booted_slot()
        running = (booted.version if booted else None) or self._unknown
        state = await self._read()
        stage = state.get("stage")
        if stage is None:
            return BootReport(running)
        version = state.get("version")
        if stage == "installing":
            return await self._after_interrupted_install(status, state, running)
        if stage == "installed" and state.get("boot_id") == self._boot_id():
            return BootReport(running, BootOutcome.AWAITING_REBOOT, version)
        if stage == "installed" and booted is not None and booted.name == state.get("target"):
            return BootReport(running, BootOutcome.BOOTED_NEW, version)
        await self._write({})
        return BootReport(running, BootOutcome.ROLLED_BACK, version)

    async def _after_interrupted_install(self, status: RaucStatus, state: dict, running: str) -> BootReport:
        """The station stopped during `rauc install` (the RAUC service may have finished it):
        finished and booted -> BOOTED_NEW; finished, same boot -> AWAITING_REBOOT; not
        finished -> INSTALL_INTERRUPTED, with the running slot made primary again so that no
        later boot runs an image reported as failed."""
        booted = status.booted_slot()
        same_boot = state.get("boot_id") == self._boot_id()
        target = booted if not same_boot else status.slots.get(status.primary or "")
        if target is not None and target.name != state.get("from"):
            version = target.version or "unknown"
            await self._write(state | {"stage": "installed", "target": target.name, "version": version})
            if same_boot:
                return BootReport(running, BootOutcome.AWAITING_REBOOT, version)
            return BootReport(running, BootOutcome.BOOTED_NEW, version)
        if same_boot:
            await self._mark("mark-active")
        await self._write({})
        return BootReport(running, BootOutcome.INSTALL_INTERRUPTED)

    async def confirm(self) -> None:
        """mark-good: the new slot stays (the boot-count no longer runs); idempotent."""
        await self._mark("mark-good")
        await self._write({})

    async def reject(self) -> None:
        """mark-bad: the bootloader boots the other slot next (the caller reboots)."""
        await self._mark("mark-bad")
        state = await self._read()
        if state:
            await self._write(state | {"stage": "rejected"})
