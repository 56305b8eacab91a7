"""One FileTransfer (ports.file_transfer) for every URL scheme the station claims in
`OCPPCommCtrlr.FileTransferProtocols` (FTP, FTPS, HTTP, HTTPS), joined from the protocol
adapters here in bootstrap, since an adapter never imports another."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from ports.file_transfer import BadUrl, Downloaded, FileTransfer, Progress, Uploaded


class TransfersByScheme:
    """ports.file_transfer.FileTransfer: each URL to the adapter serving its scheme; BadUrl,
    naming the schemes served, for any other."""

    def __init__(self, *transfers: FileTransfer) -> None:
        self._by_scheme = {scheme: t for t in transfers for scheme in t.schemes}
        self.schemes = frozenset(self._by_scheme)

    def _for(self, url: str) -> FileTransfer:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        transfer = self._by_scheme.get(scheme)
        if transfer is None:
            parts = urlsplit(url)
            shown = f"{parts.scheme}://{parts.hostname or ''}{parts.path}" if parts.scheme else "URL"
            raise BadUrl(f"{shown}: scheme {scheme!r} is not one of {', '.join(sorted(self.schemes))}")
        return transfer

    async def download(self, url: str, destination: Path, *, max_bytes: int, timeout: float,
                       expected_sha256: str | None = None, progress: Progress | None = None) -> Downloaded:
        return await self._for(url).download(url, destination, max_bytes=max_bytes, timeout=timeout,
                                             expected_sha256=expected_sha256, progress=progress)

    async def upload(self, path: Path, url: str, *, timeout: float, progress: Progress | None = None) -> Uploaded:
        return await self._for(url).upload(path, url, timeout=timeout, progress=progress)


class Deferred:
    """A FileTransfer for `schemes` built by `build` at its first use, so that its library
    (httpx, ftplib and ssl) is imported when a file is first transferred, not at every start."""

    def __init__(self, schemes: frozenset[str], build: Callable[[], FileTransfer]) -> None:
        self.schemes = schemes
        self._build = build
        self._transfer: FileTransfer | None = None

    def _get(self) -> FileTransfer:
        if self._transfer is None:
            self._transfer = self._build()
        return self._transfer

    async def download(self, url: str, destination: Path, *, max_bytes: int, timeout: float,
                       expected_sha256: str | None = None, progress: Progress | None = None) -> Downloaded:
        return await self._get().download(url, destination, max_bytes=max_bytes, timeout=timeout,
                                          expected_sha256=expected_sha256, progress=progress)

    async def upload(self, path: Path, url: str, *, timeout: float, progress: Progress | None = None) -> Uploaded:
        return await self._get().upload(path, url, timeout=timeout, progress=progress)
