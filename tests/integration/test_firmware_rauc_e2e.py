"""The running station with the RAUC installer (adapters/installer/rauc.py; the `rauc` command is
tests/fake_rauc.py, the one fake, checked against the real tool elsewhere): the BootNotification
carries the version of the slot RAUC booted, and the station marks the booted slot good
(`rauc status mark-good booted`) after its BootNotification is Accepted, at every boot, never
before (ports/firmware_installer.py: confirm after EVERY Accepted BootNotification, so RAUC's
boot-count never runs out on a firmware that reaches its CSMS). Real loopback websockets, the
real SQLite file, the sim hardware."""
from __future__ import annotations

import dataclasses

import trio

from bootstrap.compose import compose
from bootstrap.runtime import StationRuntime
from devtools.dev_csms import DevCsms
from tests.adapters.test_firmware_installers import Board
from tests.conformance.conftest import make_config

SID = "CS-OCTT-1"


async def test_booted_slot_marked_good_after_the_accepted_boot_notification_only(tmp_path, monkeypatch):
    board = Board(tmp_path, monkeypatch)
    board.reboot()                                  # the bootloader used one of the slot's attempts
    attempts = lambda: board.slots()["slots"]["rootfs.0"]["attempts"]   # noqa: E731
    assert attempts() == 2
    csms = DevCsms(heartbeat_interval=1, boot_statuses=["Rejected"])
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(csms.serve)
            config = make_config(tmp_path, csms.url)
            runtime: StationRuntime | None = None
            deployment = dataclasses.replace(compose(config, lambda: runtime.snapshot()),
                                             firmware_installer=board.installer())
            runtime = StationRuntime(config, deployment)
            nursery.start_soon(runtime.run)
            first = await csms.wait_for("BootNotification", station_id=SID, timeout=10)
            assert first["chargingStation"]["firmwareVersion"] == "1.0.0", first
            await trio.sleep(0.5)
            assert attempts() == 2, "marked good after a Rejected BootNotification"
            mark = len(csms.received)
            await csms.wait_for("BootNotification", station_id=SID, after=mark, timeout=10)
            with trio.move_on_after(10):
                while attempts() != 3:
                    await trio.sleep(0.05)
            assert attempts() == 3, "the booted slot was not marked good after the Accepted BootNotification"
            nursery.cancel_scope.cancel()
