"""The file-transfer adapters (ports.file_transfer; issue 15 item 2) against real servers on
127.0.0.1 started here: http.server (plain and TLS) and pyftpdlib (plain and explicit FTPS).

Cases: a good file (SHA-256 checked), a 404 / missing file, a connection dropped mid-file and
the resume that follows (Range / REST), a changed file not resumed, a server too slow for the
timeout, a file too large, a disk too small (a 1 MiB tmpfs), uploads (POST multipart, STOR)
and an upload target that refuses, bad URLs, an untrusted TLS server, cancellation.
Timeouts here are real (sockets and a real clock); every test is bounded by trio.fail_after.
"""
from __future__ import annotations

import hashlib
import ssl
import time

import pytest
import trio
import trustme

from adapters.transfer.ftp import FtpTransfer
from adapters.transfer.http import HttpTransfer
from devtools.file_servers import FtpFileServer, HttpFileServer, write_file
from ports.file_transfer import (BadReply, BadUrl, ChecksumMismatch, Interrupted, NoSpace, NotFound,
                                 PermissionDenied, ServerError, TooLarge, TransferTimeout)
from tests.fs_faults import tmpfs

SIZE = 300_000
BOUND = 20          # s: no test here takes longer


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_files(ca, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(folder / "ca.pem")
    cert.private_key_and_cert_chain_pem.write_to_path(folder / "server.pem")
    return folder


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    digest = write_file(root / "image.bin", SIZE)
    return root, digest


@pytest.fixture(params=["http", "https", "ftp", "ftps"])
def server(request, served, ca, tls_files):
    """(server, transfer adapter) for each scheme."""
    root, _ = served
    scheme = request.param
    if scheme in ("http", "https"):
        context = None
        if scheme == "https":
            context = trustme_server_context(ca)
        srv = HttpFileServer(root, context)
        transfer = HttpTransfer(ca_file=tls_files / "ca.pem")
    else:
        srv = FtpFileServer(root, tls_files / "server.pem" if scheme == "ftps" else None)
        transfer = FtpTransfer(ca_file=tls_files / "ca.pem")
    with srv:
        yield srv, transfer


def trustme_server_context(ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def http_server(root, ca=None):
    return HttpFileServer(root, trustme_server_context(ca) if ca else None)


async def test_a_good_file_arrives_whole_with_its_sha256(server, served, tmp_path):
    srv, transfer = server
    _, digest = served
    seen = []
    with trio.fail_after(BOUND):
        result = await transfer.download(srv.url("image.bin"), tmp_path / "fw.bin", max_bytes=10 * SIZE,
                                         timeout=5, expected_sha256=digest,
                                         progress=lambda done, total: seen.append((done, total)))
    assert result.sha256 == digest and result.size == SIZE and result.resumed_from == 0
    assert hashlib.sha256((tmp_path / "fw.bin").read_bytes()).hexdigest() == digest
    assert seen[-1] == (SIZE, SIZE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw.bin", "served"]


async def test_a_missing_file_is_not_found(server, tmp_path):
    srv, transfer = server
    with trio.fail_after(BOUND), pytest.raises(NotFound) as caught:
        await transfer.download(srv.url("nothing.bin"), tmp_path / "fw.bin", max_bytes=SIZE, timeout=5)
    assert "nothing.bin" in str(caught.value) and "\n" not in str(caught.value)
    assert FtpFileServer.PASSWORD not in str(caught.value)
    assert not (tmp_path / "fw.bin").exists()


async def test_a_dropped_connection_is_interrupted_and_the_next_call_resumes(server, served, tmp_path):
    srv, transfer = server
    _, digest = served
    srv.drop_after["image.bin"] = 100_000
    target = tmp_path / "fw.bin"
    with trio.fail_after(BOUND):
        with pytest.raises(Interrupted):
            await transfer.download(srv.url("image.bin"), target, max_bytes=SIZE, timeout=5)
        assert not target.exists()
        assert (tmp_path / "fw.bin.part").stat().st_size == 100_000
        result = await transfer.download(srv.url("image.bin"), target, max_bytes=SIZE, timeout=5,
                                         expected_sha256=digest)
    assert result.resumed_from == 100_000 and result.sha256 == digest and result.size == SIZE
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    if srv.scheme.startswith("http"):
        assert srv.requests[-1][2] == "bytes=100000-"
    else:
        assert ("REST", "100000", None) in srv.requests
    assert not (tmp_path / "fw.bin.part").exists() and not (tmp_path / "fw.bin.part.json").exists()


async def test_a_server_that_cannot_resume_sends_the_whole_file_again(server, served, tmp_path):
    srv, transfer = server
    _, digest = served
    srv.drop_after["image.bin"] = 100_000
    target = tmp_path / "fw.bin"
    with trio.fail_after(BOUND):
        with pytest.raises(Interrupted):
            await transfer.download(srv.url("image.bin"), target, max_bytes=SIZE, timeout=5)
        srv.no_resume = True
        result = await transfer.download(srv.url("image.bin"), target, max_bytes=SIZE, timeout=5)
    assert result.resumed_from == 0 and result.sha256 == digest and result.size == SIZE
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest


async def test_a_part_of_another_version_of_the_file_is_not_resumed(served, tmp_path):
    root, _ = served
    with http_server(root) as srv:
        srv.drop_after["image.bin"] = 100_000
        transfer = HttpTransfer()
        target = tmp_path / "fw.bin"
        with trio.fail_after(BOUND):
            with pytest.raises(Interrupted):
                await transfer.download(srv.url("image.bin"), target, max_bytes=SIZE, timeout=5)
            digest = write_file(root / "image.bin", SIZE)          # a new image at the same URL
            result = await transfer.download(srv.url("image.bin"), target, max_bytes=SIZE, timeout=5)
    assert result.resumed_from == 0 and result.sha256 == digest
    assert srv.requests[-1][2] == "bytes=100000-"                   # asked, with If-Range: refused


async def test_a_part_of_another_url_is_not_resumed(served, tmp_path):
    root, digest = served
    (root / "other.bin").write_bytes((root / "image.bin").read_bytes())
    with http_server(root) as srv:
        srv.drop_after["image.bin"] = 100_000
        transfer = HttpTransfer()
        with trio.fail_after(BOUND):
            with pytest.raises(Interrupted):
                await transfer.download(srv.url("image.bin"), tmp_path / "fw.bin", max_bytes=SIZE, timeout=5)
            result = await transfer.download(srv.url("other.bin"), tmp_path / "fw.bin", max_bytes=SIZE, timeout=5)
    assert result.resumed_from == 0 and result.sha256 == digest
    assert srv.requests[-1] == ("GET", "/other.bin", None)


@pytest.mark.parametrize("scheme", ["http", "ftp"])
async def test_a_server_too_slow_for_the_timeout(scheme, served, tmp_path):
    root, _ = served
    with (http_server(root) if scheme == "http" else FtpFileServer(root)) as srv:
        srv.stall.add("image.bin")
        transfer = HttpTransfer() if scheme == "http" else FtpTransfer()
        started = time.monotonic()
        with trio.fail_after(BOUND), pytest.raises(TransferTimeout) as caught:
            await transfer.download(srv.url("image.bin"), tmp_path / "fw.bin", max_bytes=SIZE, timeout=0.5)
    assert time.monotonic() - started < 5
    assert "timeout" in str(caught.value)
    assert not (tmp_path / "fw.bin").exists()


async def test_cancelling_an_ftp_download_stops_its_thread_and_keeps_the_part(served, tmp_path):
    root, _ = served
    with FtpFileServer(root) as srv:
        srv.stall.add("image.bin")
        started = time.monotonic()
        with trio.move_on_after(0.5) as scope:
            await FtpTransfer().download(srv.url("image.bin"), tmp_path / "fw.bin", max_bytes=SIZE, timeout=30)
        assert scope.cancelled_caught
        assert time.monotonic() - started < 5
        assert (tmp_path / "fw.bin.part").exists() and not (tmp_path / "fw.bin").exists()


async def test_cancelling_an_http_download_keeps_the_part(served, tmp_path):
    root, _ = served
    with http_server(root) as srv:
        srv.stall.add("image.bin")
        with trio.fail_after(BOUND), trio.move_on_after(0.5) as scope:
            await HttpTransfer().download(srv.url("image.bin"), tmp_path / "fw.bin", max_bytes=SIZE, timeout=30)
        assert scope.cancelled_caught
        assert (tmp_path / "fw.bin.part").stat().st_size > 0 and not (tmp_path / "fw.bin").exists()


def test_a_download_does_not_grow_the_process_with_the_file():
    """Streamed to disk: the downloading process's peak RSS at 64 MB is that of 4 MB (within
    16 MiB of it, which a whole image in memory would exceed fourfold). Separate processes."""
    from devtools.bench import transfer_rows
    rows = transfer_rows(4_000_000, 64_000_000)
    for small, big in ((rows[1], rows[2]), (rows[4], rows[5])):
        assert big.ours - small.ours < 16, (small, big)


async def test_a_wrong_hash_deletes_the_file(served, tmp_path):
    root, _ = served
    with http_server(root) as srv, trio.fail_after(BOUND), pytest.raises(ChecksumMismatch):
        await HttpTransfer().download(srv.url("image.bin"), tmp_path / "fw.bin", max_bytes=SIZE, timeout=5,
                                      expected_sha256="0" * 64)
    assert [p.name for p in tmp_path.iterdir()] == ["served"]


@pytest.mark.parametrize("scheme", ["http", "ftp"])
async def test_a_file_larger_than_the_limit_is_refused_before_downloading(scheme, served, tmp_path):
    root, _ = served
    with (http_server(root) if scheme == "http" else FtpFileServer(root)) as srv:
        transfer = HttpTransfer() if scheme == "http" else FtpTransfer()
        with trio.fail_after(BOUND), pytest.raises(TooLarge) as caught:
            await transfer.download(srv.url("image.bin"), tmp_path / "fw.bin", max_bytes=SIZE - 1, timeout=5)
    assert f"{SIZE} bytes" in str(caught.value)
    assert [p.name for p in tmp_path.iterdir()] == ["served"]
    if scheme == "ftp":
        assert not [r for r in srv.requests if r[0] == "RETR"]


async def test_an_unannounced_size_is_limited_while_streaming(served, tmp_path):
    root, _ = served
    with http_server(root) as srv:
        srv.chunked.add("image.bin")
        with trio.fail_after(BOUND), pytest.raises(TooLarge):
            await HttpTransfer().download(srv.url("image.bin"), tmp_path / "fw.bin", max_bytes=SIZE - 1, timeout=5)
    assert [p.name for p in tmp_path.iterdir()] == ["served"]


@pytest.mark.parametrize("scheme", ["http", "ftp"])
async def test_a_disk_too_small_is_refused_before_downloading(scheme, tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    write_file(root / "big.bin", 2 << 20)
    with tmpfs(tmp_path / "small", "1m") as small, \
            (http_server(root) if scheme == "http" else FtpFileServer(root)) as srv:
        transfer = HttpTransfer() if scheme == "http" else FtpTransfer()
        with trio.fail_after(BOUND), pytest.raises(NoSpace) as caught:
            await transfer.download(srv.url("big.bin"), small / "fw.bin", max_bytes=10 << 20, timeout=5)
        assert list(small.iterdir()) == []
    assert "free" in str(caught.value)
    if scheme == "ftp":
        assert not [r for r in srv.requests if r[0] == "RETR"]


async def test_a_file_that_would_leave_the_disk_nearly_full_is_refused(tmp_path):
    """The free-space check keeps KEEP_FREE bytes for the station: 6 MiB free, a 3 MiB file
    leaves less than 4 MiB."""
    from adapters.transfer.partfile import KEEP_FREE
    root = tmp_path / "served"
    root.mkdir()
    write_file(root / "image.bin", 3 << 20)
    with tmpfs(tmp_path / "small", "6m") as small, http_server(root) as srv:
        with trio.fail_after(BOUND), pytest.raises(NoSpace, match="kept for the station"):
            await HttpTransfer().download(srv.url("image.bin"), small / "fw.bin", max_bytes=10 << 20, timeout=5)
        assert list(small.iterdir()) == []
        write_file(root / "image.bin", (6 << 20) - KEEP_FREE - (256 << 10))
        with trio.fail_after(BOUND):
            await HttpTransfer().download(srv.url("image.bin"), small / "fw.bin", max_bytes=10 << 20, timeout=5)


async def test_a_disk_that_fills_up_while_streaming_is_no_space_and_freed(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    write_file(root / "big.bin", 2 << 20)
    with tmpfs(tmp_path / "small", "1m") as small, http_server(root) as srv:
        srv.chunked.add("big.bin")
        with trio.fail_after(BOUND), pytest.raises(NoSpace) as caught:
            await HttpTransfer().download(srv.url("big.bin"), small / "fw.bin", max_bytes=10 << 20, timeout=5)
        assert list(small.iterdir()) == []
    assert "no space" in str(caught.value)


async def test_uploads_arrive_whole(server, tmp_path):
    srv, transfer = server
    log = tmp_path / "diagnostics-42.log"
    log.write_bytes(b"line\n" * 50_000)
    url = srv.url("") if srv.scheme.startswith("ftp") else srv.url("upload")
    with trio.fail_after(BOUND):
        result = await transfer.upload(log, url, timeout=5)
    assert result.size == log.stat().st_size
    stored = srv.root / ("uploads" if srv.scheme.startswith("http") else "") / log.name
    assert stored.read_bytes() == log.read_bytes()


async def test_an_ftp_upload_takes_the_urls_file_name(served, tmp_path):
    root, _ = served
    log = tmp_path / "security.log"
    log.write_bytes(b"event\n")
    with FtpFileServer(root) as srv, trio.fail_after(BOUND):
        await FtpTransfer().upload(log, srv.url("station-7.log"), timeout=5)
    assert (root / "station-7.log").read_bytes() == b"event\n"


@pytest.mark.parametrize("scheme", ["http", "ftp"])
async def test_an_upload_target_that_refuses(scheme, served, tmp_path):
    root, _ = served
    log = tmp_path / "diagnostics.log"
    log.write_bytes(b"x" * 1000)
    if scheme == "http":
        srv, transfer = http_server(root), HttpTransfer()
        srv.refuse_uploads = True
        url = srv.url("upload")
    else:
        srv, transfer = FtpFileServer(root), FtpTransfer()
        url = srv.url("", user=FtpFileServer.READER)
    with srv, trio.fail_after(BOUND), pytest.raises(PermissionDenied) as caught:
        await transfer.upload(log, url, timeout=5)
    assert FtpFileServer.PASSWORD not in str(caught.value)
    assert not (root / "diagnostics.log").exists() and not (root / "uploads" / "diagnostics.log").exists()


async def test_a_wrong_ftp_password_is_permission_denied(served, tmp_path):
    root, _ = served
    with FtpFileServer(root) as srv, trio.fail_after(BOUND), pytest.raises(PermissionDenied) as caught:
        await FtpTransfer().download(f"ftp://station:wrong@127.0.0.1:{srv.port}/image.bin", tmp_path / "fw.bin",
                                     max_bytes=SIZE, timeout=5)
    assert "530" in str(caught.value) and "wrong" not in str(caught.value)


@pytest.mark.parametrize("url", ["gopher://127.0.0.1/x", "http:///no-host", "http://127.0.0.1:99999/x",
                                 "ftp://127.0.0.1:port/x"])
async def test_bad_urls(url, tmp_path):
    transfer = FtpTransfer() if url.startswith("ftp") else HttpTransfer()
    with pytest.raises(BadUrl):
        await transfer.download(url, tmp_path / "fw.bin", max_bytes=SIZE, timeout=5)
    with pytest.raises(BadUrl):
        await transfer.upload(tmp_path, url, timeout=5)


@pytest.mark.parametrize("scheme", ["https", "ftps"])
async def test_a_server_the_ca_file_does_not_trust(scheme, served, ca, tls_files, tmp_path):
    root, _ = served
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(other)
    if scheme == "https":
        srv, transfer = http_server(root, ca), HttpTransfer(ca_file=other)
    else:
        srv, transfer = FtpFileServer(root, tls_files / "server.pem"), FtpTransfer(ca_file=other)
    with srv, trio.fail_after(BOUND), pytest.raises(BadReply) as caught:
        await transfer.download(srv.url("image.bin"), tmp_path / "fw.bin", max_bytes=SIZE, timeout=5)
    assert "TLS" in str(caught.value)
    assert not (tmp_path / "fw.bin").exists()


async def test_a_refused_connection_is_a_server_error(tmp_path):
    for transfer, url in ((HttpTransfer(), "http://127.0.0.1:1/x"), (FtpTransfer(), "ftp://127.0.0.1:1/x")):
        with trio.fail_after(BOUND), pytest.raises(ServerError) as caught:
            await transfer.download(url, tmp_path / "fw.bin", max_bytes=SIZE, timeout=5)
        assert "cannot connect" in str(caught.value)

