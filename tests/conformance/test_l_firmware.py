"""OCA certification test cases TC_L_01..L_18 (L01 Secure firmware update) and TC_F_19
(TriggerMessage FirmwareStatusNotification - Downloading), Charging Station side.

The real station (sim deployment: the sim installer, real HTTP / FTP transfers) against the
DevCsms playing the OCTT, with real file servers on 127.0.0.1 (devtools/file_servers.py), so
these tests keep the real clock (conftest.py). The manufacturer PKI, the images and their
signatures are made by the tests (fw_rig.py); the ManufacturerRootCertificate is installed in
the station's certificate store before it boots.

Readings and chosen configured values:
- <Configured firmware_location>: an HTTP URL of the test's file server (FTP for TC_L_07's
  retries, to cover both); <Configured signingCertificate>: a leaf issued by the installed root;
  <Configured signature>: the Base64 signature of the image (ECDSA P-256 SHA-256; RSA in TC_L_02).
- The "reusable state" RebootBeforeFirmwareActivation: FirmwareStatusNotification InstallRebooting,
  then a BootNotification with reason FirmwareUpdate; the new firmwareVersion is checked too.
- Optional steps (connectors Unavailable before installing) are allowed, not required.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import trio

from devtools.file_servers import FtpFileServer, HttpFileServer
from tests.conformance.conftest import expect_call
from tests.conformance.fw_rig import (CALL_WAIT, install_root, manufacturer, sim_image, update_request)

pytestmark = pytest.mark.real_clock
TIMEOUT = 40


def fw_status(status: str, request_id: int | None):
    return lambda p: p.get("status") == status and p.get("requestId") == request_id


async def expect_statuses(cs, after: int, request_id: int, statuses: list[str], step: int) -> int:
    """The FirmwareStatusNotifications `statuses` in this order from index `after`; the index of the last."""
    for status in statuses:
        after, _ = await expect_call(cs, "FirmwareStatusNotification", after=after, timeout=CALL_WAIT,
                                     step=f"step {step} ({status})", where=fw_status(status, request_id))
        after += 1
    return after - 1


def reported(cs, after: int = 0) -> list[str]:
    return [p["status"] for _, p in cs.calls("FirmwareStatusNotification", after)]


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    with HttpFileServer(folder) as http:
        yield folder, http


async def updated(cs, mark: int, request_id: int, version: str, step: int) -> None:
    """RebootBeforeFirmwareActivation, then Installed and the security event FirmwareUpdated."""
    last = await expect_statuses(cs, mark, request_id, ["InstallRebooting"], step)
    i, boot = await expect_call(cs, "BootNotification", after=last, timeout=CALL_WAIT,
                                step=f"step {step} (RebootBeforeFirmwareActivation)")
    assert boot["reason"] == "FirmwareUpdate", f"step {step}: boot reason {boot['reason']}"
    assert boot["chargingStation"].get("firmwareVersion") == version, boot
    await expect_statuses(cs, i, request_id, ["Installed"], step + 4)
    await expect_call(cs, "SecurityEventNotification", after=i, timeout=CALL_WAIT, step=f"step {step + 6}",
                      where=lambda p: p["type"] == "FirmwareUpdated")


async def test_TC_L_01_CS_secure_firmware_update_installation_successful(boot_station, files, tmp_path):
    folder, http = files
    mf = manufacturer()
    install_root(tmp_path, mf.root)
    data = sim_image(folder, "evse-2.0.0.img", "2.0.0")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            mark = cs.mark()
            now = datetime.now(timezone.utc)
            res = await cs.call("UpdateFirmware", update_request(
                11, http.url("evse-2.0.0.img"), mf, mf.sign(data), install=now - timedelta(hours=2)))
            assert res["status"] == "Accepted", f"step 2: {res}"
            last = await expect_statuses(cs, mark, 11, ["Downloading", "Downloaded", "SignatureVerified",
                                                        "Installing"], 3)
            await updated(cs, last, 11, "2.0.0", 14)
            assert reported(cs, mark) == ["Downloading", "Downloaded", "SignatureVerified", "Installing",
                                          "InstallRebooting", "Installed"]
