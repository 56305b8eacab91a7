"""FileTransfer over HTTP and HTTPS with httpx (async; runs under trio through anyio).

Downloads: GET with `Accept-Encoding: identity` (the bytes on disk are the file's, so a Range
offset is a file offset), redirects followed; a `.part` of the same URL and validator (ETag,
else Last-Modified) is resumed with `Range: bytes=N-` and `If-Range`; a 206 must start at N,
a 200 means the server sends the whole file again. Uploads (N01): POST multipart/form-data,
one part "file" with the file's name, streamed from disk with a Content-Length.

TLS (https): verified against `ca_file` when given, else the system's trust store; TLS 1.2+.
Userinfo in the URL is sent as HTTP Basic credentials and never appears in an error.
"""
from __future__ import annotations

import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlunsplit

import httpx
import trio

from adapters.transfer.partfile import BLOCK, PartFile, parse_url, public_url
from adapters.transfer.tls import TlsOnFirstUse
from ports.file_transfer import (PROGRESS_STEP, BadReply, BadUrl, Downloaded, Interrupted, NoSpace, NotFound,
                                 NotSupported, PermissionDenied, Progress, ServerError, TooLarge, TransferError,
                                 TransferTimeout, Uploaded)

SCHEMES = frozenset({"http", "https"})



def status_error(url: str, response: httpx.Response) -> TransferError:
    """The TransferError of an HTTP error status."""
    code = response.status_code
    text = f"{public_url(url)}: HTTP {code} {response.reason_phrase}".rstrip()
    if code in (404, 410):
        return NotFound(text)
    if code in (401, 403):
        return PermissionDenied(text)
    if code in (405, 501):
        return NotSupported(text)
    if code >= 500:
        return ServerError(text)
    return BadReply(text)


def transport_error(url: str, exc: httpx.HTTPError) -> TransferError:
    """The TransferError of what httpx raised: timeouts, refused or lost connections, TLS."""
    where = public_url(url)
    if isinstance(exc, httpx.TimeoutException):
        return TransferTimeout(f"{where}: no answer within the timeout ({type(exc).__name__})")
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return BadUrl(f"{where}: {exc}")
    cause = exc.__cause__ or exc.__context__
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ssl.SSLError):
        return BadReply(f"{where}: TLS: {getattr(cause, 'reason', None) or cause}")
    if isinstance(exc, httpx.ConnectError):
        return ServerError(f"{where}: cannot connect: {_first_line(exc)}")
    if isinstance(exc, (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError)):
        return Interrupted(f"{where}: connection lost: {_first_line(exc)}")
    return ServerError(f"{where}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _credentials(parts: SplitResult) -> tuple[str, httpx.BasicAuth | None]:
    """The URL without userinfo, and the userinfo as Basic credentials."""
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    if parts.username is None:
        return bare, None
    return bare, httpx.BasicAuth(unquote(parts.username), unquote(parts.password or ""))


def _total_of(response: httpx.Response, offset: int) -> int | None:
    """The whole file's size from a 200's Content-Length or a 206's Content-Range."""
    if response.status_code == 206:
        unit, _, spec = response.headers.get("content-range", "").partition(" ")
        span, _, total = spec.partition("/")
        start, _, _ = span.partition("-")
        if unit != "bytes" or not start.isdigit() or int(start) != offset:
            raise BadReply(f"{public_url(str(response.request.url))}: Content-Range "
                           f"{response.headers.get('content-range')!r} does not start at {offset}")
        return int(total) if total.isdigit() else None
    length = response.headers.get("content-length")
    return int(length) if length and length.isdigit() else None


class HttpTransfer(TlsOnFirstUse):
    """ports.file_transfer.FileTransfer for http:// and https:// (`ca_file`: the CA that verifies servers,
    else the system's trust store)."""

    schemes = SCHEMES

    def _client(self, timeout: float) -> httpx.AsyncClient:
        return httpx.AsyncClient(verify=self._tls, timeout=httpx.Timeout(timeout), follow_redirects=True,
                                 trust_env=False)

    async def download(self, url: str, destination: Path, *, max_bytes: int, timeout: float,
                       expected_sha256: str | None = None, progress: Progress | None = None) -> Downloaded:
        """L01 Downloading..Downloaded over HTTP(S) (see the module docstring)."""
        parts = parse_url(url, SCHEMES)
        bare, auth = _credentials(parts)
        part = PartFile(destination, url, max_bytes=max_bytes, expected_sha256=expected_sha256)
        try:
            async with self._client(timeout) as client:
                return await self._fetch(client, url, bare, auth, part, progress)
        except httpx.HTTPError as exc:
            raise transport_error(url, exc) from None
        except (TooLarge, NoSpace, BadReply):
            part.discard()
            raise
        finally:
            part.close()

    async def _fetch(self, client: httpx.AsyncClient, url: str, bare: str, auth, part: PartFile,
                     progress: Progress | None) -> Downloaded:
        offset, validator = part.previous()
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers |= {"Range": f"bytes={offset}-", "If-Range": validator}
        async with client.stream("GET", bare, headers=headers, auth=auth) as response:
            if response.status_code == 416 and offset:
                part.discard()          # the server's file is not what the .part holds
                raise BadReply(f"{public_url(url)}: HTTP 416 for a resume at byte {offset}")
            if response.status_code not in (200, 206):
                raise status_error(url, response)
            encoding = response.headers.get("content-encoding", "identity").lower()
            if encoding != "identity":
                raise BadReply(f"{public_url(url)}: Content-Encoding {encoding!r} (identity asked)")
            if response.status_code == 200:
                offset = 0
            total = _total_of(response, offset)
            part.check_room(total, offset)
            if offset:
                await trio.to_thread.run_sync(part.hash_existing, offset)
            part.open(total, offset, response.headers.get("etag") or response.headers.get("last-modified"))
            await _receive(response, part, progress)
        if not part.complete:
            raise Interrupted(f"{public_url(url)}: connection closed after {part.done} of {part.total} bytes")
        if progress is not None:
            progress(part.done, part.total)
        return await trio.to_thread.run_sync(part.finish)

    async def upload(self, path: Path, url: str, *, timeout: float,
                     progress: Progress | None = None) -> Uploaded:
        """N01 Uploading..Uploaded: POST multipart/form-data, streamed from disk."""
        parts = parse_url(url, SCHEMES)
        bare, auth = _credentials(parts)
        path = Path(path)
        boundary = uuid.uuid4().hex
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"{path.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise TransferError(f"{path}: cannot be read: {exc.strerror or exc}") from None
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}",
                   "Content-Length": str(len(head) + size + len(tail))}
        try:
            async with self._client(timeout) as client:
                response = await client.post(bare, content=_body(path, size, head, tail, progress),
                                             headers=headers, auth=auth)
        except httpx.HTTPError as exc:
            raise transport_error(url, exc) from None
        if not response.is_success:
            raise status_error(url, response)
        return Uploaded(size)


async def _receive(response: httpx.Response, part: PartFile, progress: Progress | None) -> None:
    next_report = part.done + PROGRESS_STEP
    async for block in response.aiter_raw():
        part.write(block)
        if progress is not None and part.done >= next_report:
            progress(part.done, part.total)
            next_report = part.done + PROGRESS_STEP


async def _body(path: Path, size: int, head: bytes, tail: bytes, progress: Progress | None) -> AsyncIterator[bytes]:
    yield head
    sent, next_report = 0, PROGRESS_STEP
    async with await trio.open_file(path, "rb") as f:
        while sent < size:
            block = await f.read(min(BLOCK * 4, size - sent))
            if not block:
                raise TransferError(f"{path}: shorter than its {size} bytes while uploading")
            sent += len(block)
            yield block
            if progress is not None and sent >= next_report:
                progress(sent, size)
                next_report = sent + PROGRESS_STEP
    yield tail
