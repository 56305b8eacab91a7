"""bootstrap/transfers.py: one FileTransfer for every scheme, each URL to its protocol's adapter
(real loopback servers), any other scheme BadUrl naming the ones served."""
from __future__ import annotations

import pytest
import trio

from bootstrap.compose import file_transfers
from devtools.file_servers import FtpFileServer, HttpFileServer, write_file
from ports.file_transfer import BadUrl


async def test_each_url_goes_to_its_protocol(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    digest = write_file(root / "fw.bin", 10_000)
    transfers = file_transfers()
    with HttpFileServer(root) as http, FtpFileServer(root) as ftp, trio.fail_after(20):
        for n, server in enumerate((http, ftp)):
            result = await transfers.download(server.url("fw.bin"), tmp_path / f"got-{n}.bin", max_bytes=10_000,
                                              timeout=5)
            assert result.sha256 == digest
        await transfers.upload(root / "fw.bin", ftp.url("copy.bin"), timeout=5)
    assert (root / "copy.bin").read_bytes() == (root / "fw.bin").read_bytes()


@pytest.mark.parametrize("url", ["sftp://user:pw@host/fw.bin", "file:///etc/passwd", "fw.bin", ""])
async def test_any_other_scheme_is_a_bad_url(url, tmp_path):
    with pytest.raises(BadUrl) as caught:
        await file_transfers().download(url, tmp_path / "x", max_bytes=1, timeout=1)
    assert "ftp, ftps, http, https" in str(caught.value) and "pw" not in str(caught.value)
    with pytest.raises(BadUrl):
        await file_transfers().upload(tmp_path, url, timeout=1)
