"""OCA certification test cases TC_N_25, N_26, N_35, N_36 (N01 Retrieve log information) and TC_F_16
(TriggerMessage LogStatusNotification - Uploading), Charging Station side.

The real station against the DevCsms playing the OCTT, uploading to real servers on 127.0.0.1
(devtools/file_servers.py; a listener that accepts and never answers for an upload that stays
in progress), so these tests keep the real clock (conftest.py).

Readings and chosen configured values:
- <Configured log_location>: the HTTP file server's URL (uploads are POSTed, README "Firmware
  and logs"); FTP in TC_N_36's second request, to cover both.
- TC_N_26: <Configured retryInterval> 1 s; the server refuses uploads (HTTP 403), so every
  attempt ends PermissionDenied.
- TC_N_36 and TC_F_16 need an upload in progress: the first upload goes to a loopback listener
  that takes the connection and never answers.
- TC_N_35: "log information available" is the station's own security log (StartupOfTheDevice
  of the boot, ReconfigurationOfSecurityParameters of an InstallCertificate); the test also
  checks the uploaded file holds the entries inside oldestTimestamp..latestTimestamp only.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import trio

from devtools.file_servers import FtpFileServer, HttpFileServer
from tests.conformance.conftest import expect_call
from tests.conformance.fw_rig import CALL_WAIT, iso, manufacturer

pytestmark = pytest.mark.real_clock
TIMEOUT = 30


def log_status(status: str, request_id: int | None):
    return lambda p: p.get("status") == status and p.get("requestId") == request_id


def get_log(request_id: int, url: str, log_type: str = "DiagnosticsLog", *, log: dict | None = None,
            **extra) -> dict:
    return {"requestId": request_id, "logType": log_type, "log": {"remoteLocation": url, **(log or {})}, **extra}


@pytest.fixture
def uploads(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    with HttpFileServer(folder) as http:
        yield folder, http


@pytest.fixture
async def silent_server():
    """A loopback listener that accepts connections and never answers; its URL."""
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        held: list = []

        async def hold(stream) -> None:
            held.append(stream)
            await trio.sleep_forever()

        nursery.start_soon(trio.serve_listeners, hold, listeners)
        port = listeners[0].socket.getsockname()[1]
        yield f"http://127.0.0.1:{port}/logs/"
        nursery.cancel_scope.cancel()


async def test_TC_N_25_CS_retrieve_log_information_diagnostics_log_success(boot_station, uploads):
    folder, http = uploads
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            mark = cs.mark()
            res = await cs.call("GetLog", get_log(31, http.url("logs/")))
            assert res["status"] == "Accepted" and res.get("filename"), f"step 2: {res}"
            i, _ = await expect_call(cs, "LogStatusNotification", after=mark, timeout=CALL_WAIT, step="step 3",
                                     where=log_status("Uploading", 31))
            await expect_call(cs, "LogStatusNotification", after=i + 1, timeout=CALL_WAIT, step="step 5",
                              where=log_status("Uploaded", 31))
            uploaded = folder / "uploads" / res["filename"]
            assert uploaded.is_file(), f"the server has no {res['filename']}: {list((folder / 'uploads').iterdir())}"
            text = uploaded.read_text()
            assert text.startswith("# evse-stack diagnostics log of station CS-OCTT-1"), text[:200]


async def test_TC_N_26_CS_retrieve_log_information_diagnostics_log_upload_failed(boot_station, uploads):
    folder, http = uploads
    http.refuse_uploads = True
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            mark = cs.mark()
            res = await cs.call("GetLog", get_log(32, http.url("logs/"), retries=3, retryInterval=1))
            assert res["status"] == "Accepted", f"step 2: {res}"
            i, _ = await expect_call(cs, "LogStatusNotification", after=mark, timeout=CALL_WAIT, step="step 3",
                                     where=log_status("Uploading", 32))
            began = trio.current_time()
            for attempt in range(4):
                i, p = await expect_call(cs, "LogStatusNotification", after=i + 1, timeout=CALL_WAIT,
                                         step=f"step 5 (attempt {attempt + 1})",
                                         where=lambda p: p.get("requestId") == 32 and p["status"] != "Uploading")
                assert p["status"] == "PermissionDenied", f"step 5 (attempt {attempt + 1}): {p}"
            took = trio.current_time() - began
            assert 3 * 0.9 <= took <= 3 * 1 + 5, f"3 retryIntervals between the first and the last failure: {took:.1f} s"
            await trio.sleep(1.5)
            assert len([r for r in http.requests if r[0] == "POST"]) == 4, http.requests


async def test_TC_N_36_CS_retrieve_log_information_second_request(boot_station, uploads, silent_server, tmp_path):
    folder = tmp_path / "ftp"
    folder.mkdir()
    with FtpFileServer(folder) as ftp, trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            mark = cs.mark()
            res = await cs.call("GetLog", get_log(33, silent_server))
            assert res["status"] == "Accepted", f"step 2: {res}"
            i, _ = await expect_call(cs, "LogStatusNotification", after=mark, timeout=CALL_WAIT, step="step 3",
                                     where=log_status("Uploading", 33))
            res = await cs.call("GetLog", get_log(34, ftp.url("")))
            assert res["status"] == "AcceptedCanceled", f"step 6: {res}"
            i, _ = await expect_call(cs, "LogStatusNotification", after=i + 1, timeout=CALL_WAIT, step="step 7",
                                     where=lambda p: p["status"] == "AcceptedCanceled")
            i, _ = await expect_call(cs, "LogStatusNotification", after=i + 1, timeout=CALL_WAIT, step="step 9",
                                     where=log_status("Uploading", 34))
            await expect_call(cs, "LogStatusNotification", after=i + 1, timeout=CALL_WAIT, step="step 11",
                              where=log_status("Uploaded", 34))
            assert (folder / res["filename"]).is_file(), list(folder.iterdir())
            await trio.sleep(0.5)
            assert [p["status"] for _, p in cs.calls("LogStatusNotification", mark) if p.get("requestId") == 33] \
                == ["Uploading", "AcceptedCanceled"], "nothing more is reported for the canceled upload"


async def test_TC_F_16_CS_trigger_message_log_status_notification_uploading(boot_station, silent_server):
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            mark = cs.mark()
            res = await cs.call("GetLog", get_log(35, silent_server))
            assert res["status"] == "Accepted", f"step 2: {res}"
            i, _ = await expect_call(cs, "LogStatusNotification", after=mark, timeout=CALL_WAIT, step="step 3",
                                     where=log_status("Uploading", 35))
            res = await cs.call("TriggerMessage", {"requestedMessage": "LogStatusNotification"})
            assert res["status"] == "Accepted", f"step 6: {res}"
            await expect_call(cs, "LogStatusNotification", after=i + 1, timeout=CALL_WAIT, step="step 7",
                              where=log_status("Uploading", 35))


async def test_TC_N_35_CS_retrieve_log_information_security_log_success(boot_station, uploads):
    """Memory State "log information available": the station's own security events, the
    StartupOfTheDevice of its boot and a ReconfigurationOfSecurityParameters of an
    InstallCertificate after `boundary`; the window [before the boot, boundary] uploads the first
    and not the second, and a second GetLog from `boundary` on the other way round."""
    folder, http = uploads
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await trio.sleep(0.3)
            boundary = datetime.now(timezone.utc)
            await trio.sleep(0.3)
            res = await cs.call("InstallCertificate", {"certificateType": "ManufacturerRootCertificate",
                                                       "certificate": manufacturer().root.pem})
            assert res["status"] == "Accepted", f"Before (preparations): {res}"
            mark = cs.mark()
            res = await cs.call("GetLog", get_log(37, http.url("logs/"), "SecurityLog",
                                                  log={"oldestTimestamp": iso(before), "latestTimestamp": iso(boundary)}))
            assert res["status"] == "Accepted" and res.get("filename"), f"step 2: {res}"
            i, _ = await expect_call(cs, "LogStatusNotification", after=mark, timeout=CALL_WAIT, step="step 3",
                                     where=log_status("Uploading", 37))
            await expect_call(cs, "LogStatusNotification", after=i + 1, timeout=CALL_WAIT, step="step 5",
                              where=log_status("Uploaded", 37))
            inside = security_entries(folder / "uploads" / res["filename"])
            assert [kind for _, kind in inside] == ["StartupOfTheDevice"], inside
            assert all(before <= t <= boundary for t, _ in inside), inside

            mark = cs.mark()
            res = await cs.call("GetLog", get_log(38, http.url("logs/"), "SecurityLog",
                                                  log={"oldestTimestamp": iso(boundary)}))
            assert res["status"] == "Accepted", res
            await expect_call(cs, "LogStatusNotification", after=mark, timeout=CALL_WAIT, step="second upload",
                              where=log_status("Uploaded", 38))
            after = security_entries(folder / "uploads" / res["filename"])
            assert [kind for _, kind in after] == ["ReconfigurationOfSecurityParameters"], after
            assert all(t >= boundary for t, _ in after), after


def security_entries(uploaded: Path) -> list[tuple[datetime, str]]:
    """(timestamp, type) of each entry line of an uploaded SecurityLog (after its '#' header)."""
    assert uploaded.is_file(), f"the server has no {uploaded.name}: {list(uploaded.parent.iterdir())}"
    lines = uploaded.read_text().splitlines()
    assert lines[0].startswith("# evse-stack security log"), lines[:2]
    return [(datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")), line.split()[1]) for line in lines[1:]]
