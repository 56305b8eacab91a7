"""Port: file transfers for firmware images (L01/L02 UpdateFirmware `location`) and log files
(N01 GetLog `remoteLocation`), over the protocols `OCPPCommCtrlr.FileTransferProtocols` claims:
FTP, FTPS, HTTP, HTTPS.

A download streams to disk, never holding the file in memory: the bytes go to
`<destination>.part` (with a small `<destination>.part.json` naming the URL and what the server
said about the file), the SHA-256 is computed while they arrive, and the finished file is
fsynced and renamed to `destination`. Before the first byte the announced size is checked
against `max_bytes` and against the free space of the destination's file system (statvfs, a
few MiB kept free for the station's own files);
while streaming `max_bytes` is enforced again (a server may announce nothing or lie). A call
that finds a `.part` of the same URL resumes it where the server allows it (HTTP Range with
If-Range, FTP REST after the same SIZE and MDTM), hashing what is already on disk first; a
server that cannot resume sends the file whole again.

`timeout` is the longest wait for the server at any one step (connect, a reply, the next
block of data): a server that stalls for longer fails with TransferTimeout. A bound on the
whole transfer is the caller's (a trio cancel scope); cancellation stops the transfer promptly
and keeps the `.part` for a later resume.

Retries (`retries`, `retryInterval` of UpdateFirmware and GetLog) are the domain's: an adapter
tries once and raises. Every error is a TransferError whose str() is one line naming what
failed, with the URL's password removed. How the domain maps them to statuses:

| error             | FirmwareStatus | UploadLogStatus       |
|-------------------|----------------|-----------------------|
| BadUrl            | DownloadFailed | BadMessage            |
| BadReply          | DownloadFailed | BadMessage            |
| NotSupported      | DownloadFailed | NotSupportedOperation |
| PermissionDenied  | DownloadFailed | PermissionDenied      |
| any other         | DownloadFailed | UploadFailure         |

Uploads (GetLog): FTP(S) `STOR`s the file under the URL's path (a path ending in "/" is a
folder: the file keeps its name). HTTP(S) POSTs it as multipart/form-data, one part named
"file" carrying the file name (see README "Firmware and logs" for why POST).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

#: progress(bytes_done, bytes_total_or_None): called from the caller's trio task, at most once
#: per PROGRESS_STEP bytes and once at the end.
Progress = Callable[[int, int | None], None]
PROGRESS_STEP = 1 << 20
PART_SUFFIX = ".part"
META_SUFFIX = ".part.json"


class TransferError(Exception):
    """A transfer failed; str(): one line, never a password."""


class BadUrl(TransferError):
    """The URL cannot be used: no host, a scheme this station does not speak, a bad port."""


class NotFound(TransferError):
    """The server has no such file (HTTP 404/410, FTP 550 on RETR)."""


class PermissionDenied(TransferError):
    """The server refused the credentials or the operation (HTTP 401/403, FTP 530, 550/553 on STOR)."""


class NotSupported(TransferError):
    """The server does not support the operation (HTTP 405/501, FTP 502/504)."""


class BadReply(TransferError):
    """The server answered something this station cannot use (malformed, a TLS failure, an
    inconsistent size or range)."""


class ServerError(TransferError):
    """The server failed (HTTP 5xx, FTP 4xx/5xx not named above) or could not be reached."""


class TransferTimeout(TransferError):
    """The server did not answer or send the next block within `timeout`."""


class Interrupted(TransferError):
    """The connection was lost before the end of the file; a download keeps its `.part`."""


class TooLarge(TransferError):
    """The file is larger than `max_bytes` (announced, or found while streaming)."""


class NoSpace(TransferError):
    """The destination's file system has no room for the file (statvfs before, ENOSPC during)."""


class ChecksumMismatch(TransferError):
    """The file's SHA-256 is not the expected one; the file is deleted."""


@dataclass(frozen=True, slots=True)
class Downloaded:
    """A finished download: `path` holds `size` bytes whose SHA-256 is `sha256` (hex)."""

    path: Path
    size: int
    sha256: str
    resumed_from: int = 0          # bytes taken from an earlier attempt's `.part`


@dataclass(frozen=True, slots=True)
class Uploaded:
    size: int


class FileTransfer(Protocol):
    schemes: frozenset[str]        # URL schemes served, e.g. {"http", "https"}

    async def download(self, url: str, destination: Path, *, max_bytes: int, timeout: float,
                       expected_sha256: str | None = None,
                       progress: Progress | None = None) -> Downloaded:
        """Fetch `url` into `destination` (L01 Downloading..Downloaded): streamed to disk, size
        and free space checked first, resumed from an earlier `.part` of the same URL where the
        server allows it. Raises a TransferError; `destination` is only ever the whole file."""

    async def upload(self, path: Path, url: str, *, timeout: float,
                     progress: Progress | None = None) -> Uploaded:
        """Send the file at `path` to `url` (N01 Uploading..Uploaded), streamed from disk.
        Raises a TransferError."""
