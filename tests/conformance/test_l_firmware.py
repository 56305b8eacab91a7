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
from tests.conformance.fw_rig import CALL_WAIT, install_root, iso, manufacturer, sim_image, update_request

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


async def test_TC_L_02_CS_secure_firmware_update_install_scheduled(boot_station, files, tmp_path):
    """<Configured Install Offset Period>: 3 s. The signing key is RSA (PKCS#1 v1.5, SHA-256)."""
    folder, http = files
    mf = manufacturer(rsa_key=True)
    install_root(tmp_path, mf.root)
    data = sim_image(folder, "evse-2.1.0.img", "2.1.0")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            mark = cs.mark()
            install_at = datetime.now(timezone.utc) + timedelta(seconds=3)
            res = await cs.call("UpdateFirmware", update_request(
                12, http.url("evse-2.1.0.img"), mf, mf.sign(data), install=install_at))
            assert res["status"] == "Accepted", f"step 2: {res}"
            last = await expect_statuses(cs, mark, 12, ["Downloading", "Downloaded", "SignatureVerified",
                                                        "InstallScheduled"], 3)
            last = await expect_statuses(cs, last, 12, ["Installing"], 14)
            assert datetime.now(timezone.utc) >= install_at - timedelta(seconds=0.5), \
                "step 14: Installing before installDateTime"
            await updated(cs, last, 12, "2.1.0", 16)


async def test_TC_L_03_CS_secure_firmware_update_download_scheduled(boot_station, files, tmp_path):
    """<Configured Download Offset Period>: 3 s."""
    folder, http = files
    mf = manufacturer()
    install_root(tmp_path, mf.root)
    data = sim_image(folder, "evse-2.2.0.img", "2.2.0")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            mark = cs.mark()
            now = datetime.now(timezone.utc)
            retrieve_at = now + timedelta(seconds=3)
            res = await cs.call("UpdateFirmware", update_request(
                13, http.url("evse-2.2.0.img"), mf, mf.sign(data), retrieve=retrieve_at,
                install=now - timedelta(hours=2)))
            assert res["status"] == "Accepted", f"step 2: {res}"
            last = await expect_statuses(cs, mark, 13, ["DownloadScheduled"], 3)
            assert not http.requests, "step 3: the download started before retrieveDateTime"
            last = await expect_statuses(cs, last, 13, ["Downloading"], 5)
            assert datetime.now(timezone.utc) >= retrieve_at - timedelta(seconds=0.5), \
                "step 5: Downloading before retrieveDateTime"
            last = await expect_statuses(cs, last, 13, ["Downloaded", "SignatureVerified", "Installing"], 7)
            await updated(cs, last, 13, "2.2.0", 16)


async def test_TC_L_05_CS_secure_firmware_update_invalid_certificate(boot_station, files, tmp_path):
    """<Configured signingCertificate> is issued by a root that is not installed."""
    folder, http = files
    install_root(tmp_path, manufacturer().root)
    stranger = manufacturer(cn="Other Root")
    data = sim_image(folder, "evse-3.0.0.img", "3.0.0")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            mark = cs.mark()
            now = datetime.now(timezone.utc)
            res = await cs.call("UpdateFirmware", update_request(
                15, http.url("evse-3.0.0.img"), stranger, stranger.sign(data), install=now - timedelta(hours=2)))
            assert res["status"] in ("InvalidCertificate", "RevokedCertificate"), f"step 2: {res}"
            await expect_call(cs, "SecurityEventNotification", after=mark, timeout=CALL_WAIT, step="step 3",
                              where=lambda p: p["type"] == "InvalidFirmwareSigningCertificate")
            await trio.sleep(0.5)
            assert reported(cs, mark) == [] and not http.requests, "nothing is downloaded after step 2"


async def test_TC_L_06_CS_secure_firmware_update_invalid_signature(boot_station, files, tmp_path):
    """<Configured signature>: a signature of other bytes by the right key."""
    folder, http = files
    mf = manufacturer()
    install_root(tmp_path, mf.root)
    sim_image(folder, "evse-3.1.0.img", "3.1.0")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            mark = cs.mark()
            now = datetime.now(timezone.utc)
            res = await cs.call("UpdateFirmware", update_request(
                16, http.url("evse-3.1.0.img"), mf, mf.sign(b"some other image"), install=now - timedelta(hours=2)))
            assert res["status"] == "Accepted", f"step 2: {res}"
            last = await expect_statuses(cs, mark, 16, ["Downloading", "Downloaded", "InvalidSignature"], 3)
            await expect_call(cs, "SecurityEventNotification", after=last, timeout=CALL_WAIT, step="step 9",
                              where=lambda p: p["type"] == "InvalidFirmwareSignature")
            await trio.sleep(0.5)
            assert reported(cs, mark) == ["Downloading", "Downloaded", "InvalidSignature"]
            assert not list((tmp_path / "firmware" / "images").glob("update-16*")), "the image is discarded"


async def test_TC_L_07_CS_secure_firmware_update_download_failed(boot_station, tmp_path):
    """<Configured invalid firmware location>: a file the FTP server does not have; retries 1,
    retryInterval 1 s: two attempts, then DownloadFailed."""
    folder = tmp_path / "served"
    folder.mkdir()
    mf = manufacturer()
    install_root(tmp_path, mf.root)
    with FtpFileServer(folder) as ftp, trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            mark = cs.mark()
            now = datetime.now(timezone.utc)
            res = await cs.call("UpdateFirmware", update_request(
                17, ftp.url("no-such-image.img"), mf, mf.sign(b"x"), install=now - timedelta(hours=2),
                retries=1, retry_interval=1))
            assert res["status"] == "Accepted", f"step 2: {res}"
            last = await expect_statuses(cs, mark, 17, ["Downloading"], 3)
            began = trio.current_time()
            await expect_statuses(cs, last, 17, ["DownloadFailed"], 5)
            assert trio.current_time() - began >= 0.9, "step 5: DownloadFailed without the retry after retryInterval"
            assert reported(cs, mark) == ["Downloading", "DownloadFailed"]


async def test_TC_L_08_CS_secure_firmware_update_install_verification_failed(boot_station, files, tmp_path):
    """<Configured invalid firmware location>: a sim image whose version ends in -broken: it
    installs, fails its check after the reboot and the previous firmware runs again."""
    folder, http = files
    mf = manufacturer()
    install_root(tmp_path, mf.root)
    data = sim_image(folder, "evse-4.0.0-broken.img", "4.0.0-broken")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            before = cs.calls("BootNotification")[-1][1]["chargingStation"].get("firmwareVersion")
            mark = cs.mark()
            now = datetime.now(timezone.utc)
            res = await cs.call("UpdateFirmware", update_request(
                18, http.url("evse-4.0.0-broken.img"), mf, mf.sign(data), install=now - timedelta(hours=2)))
            assert res["status"] == "Accepted", f"step 2: {res}"
            last = await expect_statuses(cs, mark, 18, ["Downloading", "Downloaded", "SignatureVerified",
                                                        "Installing", "InstallRebooting"], 3)
            i, boot = await expect_call(cs, "BootNotification", after=last, timeout=CALL_WAIT, step="step 11")
            assert boot["chargingStation"].get("firmwareVersion") == before, boot
            await expect_call(cs, "FirmwareStatusNotification", after=i, timeout=CALL_WAIT, step="step 16",
                              where=lambda p: p["status"] in ("InstallVerificationFailed", "InstallationFailed")
                              and p.get("requestId") == 18)


async def test_TC_L_10_CS_secure_firmware_update_accepted_canceled(boot_station, files, tmp_path):
    """The first image stalls after its first block, so the first update is still downloading
    when the second UpdateFirmware comes."""
    folder, http = files
    mf = manufacturer()
    install_root(tmp_path, mf.root)
    first = sim_image(folder, "evse-5.0.0.img", "5.0.0", size=1 << 20)
    second = sim_image(folder, "evse-5.0.1.img", "5.0.1")
    http.stall.add("evse-5.0.0.img")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            mark = cs.mark()
            now = datetime.now(timezone.utc)
            res = await cs.call("UpdateFirmware", update_request(
                20, http.url("evse-5.0.0.img"), mf, mf.sign(first), install=now - timedelta(hours=2)))
            assert res["status"] == "Accepted", f"step 2: {res}"
            last = await expect_statuses(cs, mark, 20, ["Downloading"], 3)
            res = await cs.call("UpdateFirmware", update_request(
                21, http.url("evse-5.0.1.img"), mf, mf.sign(second), install=now - timedelta(hours=2)))
            assert res["status"] == "AcceptedCanceled", f"step 6: {res}"
            last = await expect_statuses(cs, last, 21, ["Downloading", "Downloaded", "SignatureVerified",
                                                        "Installing"], 7)
            await updated(cs, last, 21, "5.0.1", 18)
            assert all(p.get("requestId") == 21 for p in [p for _, p in cs.calls(
                "FirmwareStatusNotification", mark)][1:]), "nothing more is reported for the canceled update"


async def test_TC_L_11_CS_secure_firmware_update_unable_to_cancel(boot_station, files, tmp_path):
    """This station cancels an update still downloading (TC_L_10, PICS C-60), not one being
    installed: the second UpdateFirmware is sent while the first one is InstallRebooting (the
    OCTT holds back its answer to that notification, which the reboot waits for), and is
    Rejected; the first update then completes."""
    folder, http = files
    mf = manufacturer()
    install_root(tmp_path, mf.root)
    data = sim_image(folder, "evse-6.0.0.img", "6.0.0")
    rebooting, answered = trio.Event(), trio.Event()

    async def fsn(station_id, payload):
        if payload["status"] == "InstallRebooting":
            rebooting.set()
            await answered.wait()
        return {}

    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            cs.csms.handlers["FirmwareStatusNotification"] = fsn
            mark = cs.mark()
            now = datetime.now(timezone.utc)
            res = await cs.call("UpdateFirmware", update_request(
                22, http.url("evse-6.0.0.img"), mf, mf.sign(data), install=now - timedelta(hours=2)))
            assert res["status"] == "Accepted", f"step 2: {res}"
            await rebooting.wait()
            res = await cs.call("UpdateFirmware", update_request(
                23, http.url("evse-6.0.0.img"), mf, mf.sign(data), install=now - timedelta(hours=2)))
            assert res["status"] == "Rejected", f"step 6: {res}"
            answered.set()
            last = await expect_statuses(cs, mark, 22, ["Downloading", "Downloaded", "SignatureVerified",
                                                        "Installing"], 3)
            await updated(cs, last, 22, "6.0.0", 16)
            assert not [p for _, p in cs.calls("FirmwareStatusNotification", mark) if p.get("requestId") == 23]


async def test_TC_L_18_CS_secure_firmware_update_missing_signing_certificate_and_signature(boot_station, files,
                                                                                           tmp_path):
    folder, http = files
    sim_image(folder, "evse-7.0.0.img", "7.0.0")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            mark = cs.mark()
            now = datetime.now(timezone.utc)
            res = await cs.call("UpdateFirmware", {"requestId": 24, "firmware": {
                "location": http.url("evse-7.0.0.img"), "retrieveDateTime": iso(now - timedelta(hours=2)),
                "installDateTime": iso(now - timedelta(hours=2))}})
            assert res["status"] == "Rejected", f"step 2: {res}"
            await trio.sleep(0.5)
            assert reported(cs, mark) == [] and not http.requests


async def test_TC_F_19_CS_trigger_message_firmware_status_notification_downloading(boot_station, files, tmp_path):
    """A firmware download in progress (the image stalls after its first block), then the
    trigger: the station reports Downloading with the update's requestId."""
    folder, http = files
    mf = manufacturer()
    install_root(tmp_path, mf.root)
    data = sim_image(folder, "evse-8.0.0.img", "8.0.0", size=1 << 20)
    http.stall.add("evse-8.0.0.img")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            mark = cs.mark()
            now = datetime.now(timezone.utc)
            res = await cs.call("UpdateFirmware", update_request(
                25, http.url("evse-8.0.0.img"), mf, mf.sign(data), install=now - timedelta(hours=2)))
            assert res["status"] == "Accepted", f"before: {res}"
            last = await expect_statuses(cs, mark, 25, ["Downloading"], 0)
            res = await cs.call("TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"})
            assert res["status"] == "Accepted", f"step 2: {res}"
            await expect_statuses(cs, last + 1, 25, ["Downloading"], 3)


async def test_TC_L_14_CS_unable_to_install_with_ongoing_transaction_new_sessions_allowed(boot_station, files,
                                                                                          tmp_path):
    """Two EVSEs, AllowNewSessionsPendingFirmwareUpdate true. The station never installs during
    a transaction (PICS C-43 No): InstallScheduled at step 9; the second EVSE still takes a
    session (step 11); Installing only once both transactions ended (the Reusable State
    ParkingBayUnoccupied is played as the whole stop chain: StopAuthorized, EVConnectedPostSession,
    EVDisconnected, this station having no parking bay sensor configured). The last EV's
    disconnection reports its connector Unavailable, not Available: the install starts then and
    takes every EVSE out of service (the optional step 14).

    TC_L_12 / TC_L_13 are not applicable: their prerequisite is a station unable to download
    during a transaction, and this one downloads at once (it only waits with the install)."""
    from tests.conformance.test_efj_transactions import VALID, VALID2, Session, tx_points

    folder, http = files
    mf = manufacturer()
    install_root(tmp_path, mf.root)
    data = sim_image(folder, "evse-10.0.0.img", "10.0.0")
    dm = tx_points(**{"AlignedDataCtrlr.Interval": 0, "SampledDataCtrlr.TxUpdatedInterval": 0,
                      "ChargingStation.AllowNewSessionsPendingFirmwareUpdate": True})
    with trio.fail_after(2 * TIMEOUT):
        async with boot_station(device_model=dm, evse_connectors=[1, 1]) as cs:
            first, second = Session(cs, evse=1, token=VALID), Session(cs, evse=2, token=VALID2)
            await first.energy_transfer_started("Before (EnergyTransferStarted, EVSE 1)")
            assert first.started, f"Before: no transaction on EVSE 1: {first.events}"
            mark = cs.mark()
            now = datetime.now(timezone.utc)
            res = await cs.call("UpdateFirmware", update_request(
                26, http.url("evse-10.0.0.img"), mf, mf.sign(data), install=now - timedelta(hours=2)))
            assert res["status"] == "Accepted", f"step 2: {res}"
            last = await expect_statuses(cs, mark, 26, ["Downloading", "Downloaded", "SignatureVerified",
                                                        "InstallScheduled"], 3)
            second.cursor = cs.mark()
            await second.energy_transfer_started("step 11 (EnergyTransferStarted, EVSE 2)")
            assert second.started, f"step 11: no transaction on EVSE 2 while the install waits: {second.events}"
            await first.stop_chain("step 12 ")
            assert "Installing" not in reported(cs, mark), "step 12: Installing while EVSE 2 charges"
            await second.stop_authorized_local("step 13 StopAuthorized (local)")
            await second.ev_connected_post_session("step 13 EVConnectedPostSession")
            await cs.control(cmd="unplug", evse=2, connector=1)     # EVDisconnected: Available, or
            last = await expect_statuses(cs, last, 26, ["Installing"], 17)      # Unavailable (step 14)
            ends = [i for i, p in cs.calls("TransactionEvent", mark) if p["eventType"] == "Ended"]
            assert len(ends) == 2 and max(ends) < last, \
                f"step 13: both transactions end before Installing (Ended at {ends}, Installing at {last})"
            await updated(cs, last, 26, "10.0.0", 19)


async def test_image_larger_than_max_image_bytes_is_download_failed(boot_station, files, tmp_path):
    """[firmware] max_image_bytes 100000 and a 256 KiB image: every attempt fails before the image
    is kept (TooLarge), then DownloadFailed; nothing is installed and no file is left behind."""
    folder, http = files
    mf = manufacturer()
    install_root(tmp_path, mf.root)
    data = sim_image(folder, "evse-11.0.0.img", "11.0.0")
    with trio.fail_after(TIMEOUT):
        async with boot_station(tables="[firmware]\nmax_image_bytes = 100000\n") as cs:
            mark = cs.mark()
            now = datetime.now(timezone.utc)
            res = await cs.call("UpdateFirmware", update_request(
                27, http.url("evse-11.0.0.img"), mf, mf.sign(data), install=now - timedelta(hours=2), retries=0))
            assert res["status"] == "Accepted", res
            await expect_statuses(cs, mark, 27, ["Downloading", "DownloadFailed"], 3)
            await trio.sleep(0.3)
            assert reported(cs, mark) == ["Downloading", "DownloadFailed"]
            assert not list((tmp_path / "firmware" / "images").glob("update-27*"))
