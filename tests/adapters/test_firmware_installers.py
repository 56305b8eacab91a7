"""The firmware installers (ports.firmware_installer; issue 15 item 3).

The sim installer with its fixed outside interface (first line `evse-sim-firmware <VERSION>`,
`-broken` rolls back after its boot, anything else InstallationFailed, the version persisting
under the state directory). The RAUC installer against tests/fake_rauc.py, the one fake (the
`rauc` command at the edge; tests_rauc/ checks it against the real RAUC): install, the boot
that has not happened yet, the new slot booted and marked good, refusals, the boot-count
running out, mark-bad, a kill during `rauc install`. A new installer object is a new process.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

from adapters.installer.rauc import RaucInstaller, parse_status
from adapters.installer.sim import SimInstaller
from ports.firmware_installer import BootOutcome, BootReport, InstallationFailed, InstallerError
from tests import fake_rauc

FAKE = Path(fake_rauc.__file__)


def sim_image(folder: Path, first_line: bytes, name: str = "fw.img") -> Path:
    path = folder / name
    path.write_bytes(first_line + b"\n" + b"\x00payload" * 100)
    return path


# --------------------------------------------------------------------------- sim


async def test_sim_runs_its_factory_version_until_an_install(tmp_path):
    assert await SimInstaller(tmp_path, "1.0.0").after_boot() == BootReport("1.0.0")


async def test_sim_install_then_boot_then_confirm_keeps_the_new_version(tmp_path):
    image = sim_image(tmp_path, b"evse-sim-firmware 2.1.0-rc1")
    assert await SimInstaller(tmp_path, "1.0.0").install(image) == "2.1.0-rc1"
    booted = SimInstaller(tmp_path, "1.0.0")                       # the soft reboot: a new boot
    assert await booted.after_boot() == BootReport("2.1.0-rc1", BootOutcome.BOOTED_NEW, "2.1.0-rc1")
    await booted.confirm()
    await booted.confirm()                                         # idempotent (a kill after it)
    assert await SimInstaller(tmp_path, "1.0.0").after_boot() == BootReport("2.1.0-rc1")
    assert (tmp_path / "firmware" / "sim-installer.json").exists()


async def test_sim_broken_image_installs_then_rolls_back_after_its_boot(tmp_path):
    image = sim_image(tmp_path, b"evse-sim-firmware 2.0.0-broken")
    assert await SimInstaller(tmp_path, "1.0.0").install(image) == "2.0.0-broken"
    report = await SimInstaller(tmp_path, "1.0.0").after_boot()
    assert report == BootReport("1.0.0", BootOutcome.ROLLED_BACK, "2.0.0-broken")
    assert await SimInstaller(tmp_path, "1.0.0").after_boot() == BootReport("1.0.0")


@pytest.mark.parametrize("content", [
    b"", b"evse-sim-firmware\n", b"evse-sim-firmware \n", b"evse-sim-firmware 1.0 beta\n",
    b"evse-sim-firmware " + b"9" * 51 + b"\n", b"EVSE-SIM-FIRMWARE 2.0\n", b"\x7fELF\x02\x01\x01",
    b"#!/bin/sh\nevse-sim-firmware 2.0\n"])
async def test_sim_refuses_anything_else_and_changes_nothing(tmp_path, content):
    image = tmp_path / "fw.img"
    image.write_bytes(content)
    with pytest.raises(InstallationFailed) as caught:
        await SimInstaller(tmp_path, "1.0.0").install(image)
    assert "evse-sim-firmware <VERSION>" in str(caught.value) and "\n" not in str(caught.value)
    assert await SimInstaller(tmp_path, "1.0.0").after_boot() == BootReport("1.0.0")


async def test_sim_version_of_fifty_characters_is_accepted(tmp_path):
    image = sim_image(tmp_path, b"evse-sim-firmware " + b"v" * 50)
    assert await SimInstaller(tmp_path, "1.0.0").install(image) == "v" * 50


async def test_sim_unconfirmed_version_rolls_back_when_its_boot_attempts_run_out(tmp_path):
    await SimInstaller(tmp_path, "1.0.0").install(sim_image(tmp_path, b"evse-sim-firmware 2.0.0"))
    for _ in range(3):
        report = await SimInstaller(tmp_path, "1.0.0").after_boot()
        assert report.outcome is BootOutcome.BOOTED_NEW and report.running_version == "2.0.0"
    report = await SimInstaller(tmp_path, "1.0.0").after_boot()
    assert report == BootReport("1.0.0", BootOutcome.ROLLED_BACK, "2.0.0")


async def test_sim_rejected_version_rolls_back_at_the_next_boot(tmp_path):
    await SimInstaller(tmp_path, "1.0.0").install(sim_image(tmp_path, b"evse-sim-firmware 2.0.0"))
    booted = SimInstaller(tmp_path, "1.0.0")
    await booted.after_boot()
    await booted.reject()
    assert await SimInstaller(tmp_path, "1.0.0").after_boot() == BootReport("1.0.0", BootOutcome.ROLLED_BACK,
                                                                           "2.0.0")


# --------------------------------------------------------------------------- RAUC (fake command)


class Board:
    """The fake rauc's state plus a boot id file: `reboot()` is the bootloader and a new boot."""

    def __init__(self, folder: Path, monkeypatch) -> None:
        self.folder = folder
        self.state = folder / "rauc-state.json"
        self.boot_id = folder / "boot_id"
        fake_rauc.save(self.state, fake_rauc.new_state())
        self.boots = 0
        self.boot_id.write_text("boot-0\n")
        monkeypatch.setenv("FAKE_RAUC_STATE", str(self.state))

    def installer(self) -> RaucInstaller:
        return RaucInstaller(self.folder / "state", "factory", rauc=(sys.executable, str(FAKE)),
                             boot_id_file=self.boot_id)

    def reboot(self) -> str:
        self.boots += 1
        self.boot_id.write_text(f"boot-{self.boots}\n")
        return fake_rauc.reboot(self.state)

    def bundle(self, version: str, compatible: str = "evse-openevse") -> Path:
        path = self.folder / f"update-{version}.raucb"
        path.write_text(f"[update]\ncompatible={compatible}\nversion={version}\n\n"
                        f"[image.rootfs]\nfilename=rootfs.ext4\n")
        return path

    def slots(self) -> dict:
        return fake_rauc.load(self.state)


@pytest.fixture
def board(tmp_path, monkeypatch):
    return Board(tmp_path, monkeypatch)


async def test_rauc_install_reboot_confirm(board):
    assert await board.installer().after_boot() == BootReport("1.0.0")
    assert await board.installer().install(board.bundle("2.0.0")) == "2.0.0"
    # killed or restarted before the reboot: the same boot, nothing installed twice
    assert await board.installer().after_boot() == BootReport("1.0.0", BootOutcome.AWAITING_REBOOT, "2.0.0")
    assert board.reboot() == "B"
    installer = board.installer()
    assert await installer.after_boot() == BootReport("2.0.0", BootOutcome.BOOTED_NEW, "2.0.0")
    await installer.confirm()
    assert board.slots()["slots"]["rootfs.1"]["attempts"] == fake_rauc.ATTEMPTS
    board.reboot()
    assert await board.installer().after_boot() == BootReport("2.0.0")


async def test_rauc_refused_bundle_is_installation_failed_and_changes_nothing(board):
    with pytest.raises(InstallationFailed) as caught:
        await board.installer().install(board.bundle("2.0.0", compatible="other-board"))
    assert str(caught.value) == ("rauc install: Installation error: Compatible mismatch: Expected "
                                 "'evse-openevse' but bundle manifest has 'other-board'")
    assert board.slots()["primary"] == "rootfs.0"
    board.reboot()
    assert await board.installer().after_boot() == BootReport("1.0.0")


async def test_rauc_write_failure_is_installation_failed(board, monkeypatch):
    monkeypatch.setenv("FAKE_RAUC_FAIL", "Installation error: Failed updating slot rootfs.1: No space left")
    with pytest.raises(InstallationFailed, match="Failed updating slot rootfs.1"):
        await board.installer().install(board.bundle("2.0.0"))
    assert await board.installer().after_boot() == BootReport("1.0.0")


async def test_rauc_unconfirmed_slot_is_rolled_back_by_the_boot_count(board):
    await board.installer().install(board.bundle("2.0.0"))
    for _ in range(fake_rauc.ATTEMPTS):
        assert board.reboot() == "B"
        assert (await board.installer().after_boot()).outcome is BootOutcome.BOOTED_NEW
    assert board.reboot() == "A"                  # attempts used up: the bootloader goes back
    assert await board.installer().after_boot() == BootReport("1.0.0", BootOutcome.ROLLED_BACK, "2.0.0")
    board.reboot()
    assert await board.installer().after_boot() == BootReport("1.0.0")


async def test_rauc_rejected_slot_is_marked_bad_and_rolled_back(board):
    await board.installer().install(board.bundle("2.0.0"))
    board.reboot()
    installer = board.installer()
    await installer.after_boot()
    await installer.reject()
    assert board.slots()["slots"]["rootfs.1"]["attempts"] == 0
    assert board.reboot() == "A"
    assert await board.installer().after_boot() == BootReport("1.0.0", BootOutcome.ROLLED_BACK, "2.0.0")


async def test_rauc_killed_during_install_is_reported_interrupted_once(board, monkeypatch):
    monkeypatch.setenv("FAKE_RAUC_HANG", "30")
    with trio.move_on_after(1.0):
        await board.installer().install(board.bundle("2.0.0"))
    monkeypatch.delenv("FAKE_RAUC_HANG")
    assert await board.installer().after_boot() == BootReport("1.0.0", BootOutcome.INSTALL_INTERRUPTED)
    assert await board.installer().after_boot() == BootReport("1.0.0")


def killed_after_rauc_finished(board: Board, version: str) -> None:
    """The station was killed during `rauc install`; the RAUC service finished it anyway."""
    state = board.folder / "state" / "firmware" / "rauc-installer.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"stage": "installing", "from": "rootfs.0", "boot_id": "boot-0"}')
    assert fake_rauc.main(["install", str(board.bundle(version))]) == 0


async def test_rauc_install_finished_by_the_service_after_a_kill_awaits_its_reboot(board, capsys):
    killed_after_rauc_finished(board, "2.0.0")
    assert await board.installer().after_boot() == BootReport("1.0.0", BootOutcome.AWAITING_REBOOT, "2.0.0")
    board.reboot()
    assert await board.installer().after_boot() == BootReport("2.0.0", BootOutcome.BOOTED_NEW, "2.0.0")


async def test_rauc_install_finished_by_the_service_and_booted_is_the_new_firmware(board, capsys):
    killed_after_rauc_finished(board, "2.0.0")
    assert board.reboot() == "B"
    assert await board.installer().after_boot() == BootReport("2.0.0", BootOutcome.BOOTED_NEW, "2.0.0")
    assert await board.installer().after_boot() == BootReport("2.0.0", BootOutcome.BOOTED_NEW, "2.0.0")


async def test_rauc_interrupted_install_makes_the_running_slot_primary_again(board):
    """Killed during `rauc install` that RAUC had not finished: INSTALL_INTERRUPTED, and the
    running slot is made primary again (mark-active: its boot attempts are reset too), so an
    install RAUC might still finish never boots unannounced."""
    state = board.slots()
    state["slots"]["rootfs.0"]["attempts"] = 1
    fake_rauc.save(board.state, state)
    record = board.folder / "state" / "firmware" / "rauc-installer.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"stage": "installing", "from": "rootfs.0", "boot_id": "boot-0"}')
    assert await board.installer().after_boot() == BootReport("1.0.0", BootOutcome.INSTALL_INTERRUPTED)
    assert board.slots()["primary"] == "rootfs.0"
    assert board.slots()["slots"]["rootfs.0"]["attempts"] == fake_rauc.ATTEMPTS
    assert await board.installer().after_boot() == BootReport("1.0.0")


async def test_rauc_missing_command_is_an_installer_error(tmp_path):
    installer = RaucInstaller(tmp_path, "factory", rauc=(str(tmp_path / "no-rauc"),), boot_id_file=tmp_path / "b")
    with pytest.raises(InstallerError, match="cannot run"):
        await installer.after_boot()


def test_rauc_status_parser_reads_rauc_1_8_json():
    """The shape printed by the real `rauc status --detailed --output-format=json` (1.8)."""
    text = ('{"compatible":"evse-test","variant":"","booted":"A","boot_primary":"rootfs.1","slots":['
            '{"rootfs.1":{"class":"rootfs","device":"/dev/x1","type":"raw","bootname":"B","state":"inactive",'
            '"parent":null,"mountpoint":null,"boot_status":"bad","slot_status":{"bundle":{"compatible":'
            '"evse-test","version":"2.0.0"},"checksum":{"sha256":"90b6","size":65536},"installed":'
            '{"timestamp":"2026-12-08T01:33:33Z","count":1},"activated":{"timestamp":"2026-12-08T01:33:33Z",'
            '"count":1},"status":"ok"}}},{"rootfs.0":{"class":"rootfs","device":"/dev/x0","type":"raw",'
            '"bootname":"A","state":"booted","parent":null,"mountpoint":null,"boot_status":"good",'
            '"slot_status":{"bundle":{"compatible":null}}}}]}')
    status = parse_status(text)
    assert status.primary == "rootfs.1" and status.booted_slot().name == "rootfs.0"
    assert status.slots["rootfs.1"].version == "2.0.0" and status.slots["rootfs.0"].version is None
    with pytest.raises(InstallerError, match="unexpected output"):
        parse_status('{"slots": [{"a": 1, "b": 2}]}')
