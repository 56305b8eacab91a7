"""The `.part` file of one download, shared by the HTTP and FTP adapters (ports.file_transfer).

    <destination>.part        the bytes received so far
    <destination>.part.json   {"url": SHA-256 of the URL, "validator": what identifies the
                              server's version of the file (ETag, Last-Modified, FTP SIZE+MDTM)}

The metadata holds a hash of the URL, never the URL (it may carry a password or a signed
query). A later call resumes only a `.part` of the same URL and validator. Blocks are written
with os.write as they arrive (page cache: no thread hop per block); hashing an earlier `.part`
and the final fsync are run by the caller in a worker thread (`hash_existing`, `finish`).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from ports.file_transfer import (META_SUFFIX, PART_SUFFIX, BadReply, BadUrl, ChecksumMismatch, Downloaded,
                                 NoSpace, TooLarge, TransferError)

BLOCK = 1 << 16
KEEP_FREE = 4 << 20     # bytes a download leaves free: the station's database and logs share the disk
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def public_url(url: str) -> str:
    """`url` fit for a message or a log: scheme, host, port and path; no user, password, query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable URL>"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def parse_url(url: str, schemes: frozenset[str]) -> SplitResult:
    """The URL split, or BadUrl naming what is wrong with it."""
    try:
        parts = urlsplit(url)
        parts.port                      # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise BadUrl(f"{public_url(url)}: bad URL: {exc}") from None
    if parts.scheme.lower() not in schemes:
        raise BadUrl(f"{public_url(url)}: scheme {parts.scheme!r} is not one of {', '.join(sorted(schemes))}")
    if not parts.hostname:
        raise BadUrl(f"{public_url(url)}: no host")
    return parts


def free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


class PartFile:
    """Receives one download into `<destination>.part` (see the module docstring)."""

    def __init__(self, destination: Path, url: str, *, max_bytes: int, expected_sha256: str | None) -> None:
        self.destination = Path(destination)
        self.part = self.destination.with_name(self.destination.name + PART_SUFFIX)
        self.meta = self.destination.with_name(self.destination.name + META_SUFFIX)
        self._url_id = hashlib.sha256(url.encode()).hexdigest()
        self._public = public_url(url)
        self.max_bytes = max_bytes
        self.expected = expected_sha256.lower() if expected_sha256 else None
        self.total: int | None = None
        self.done = 0
        self.resumed_from = 0
        self._hash = hashlib.sha256()
        self._fd = -1

    # --- before the transfer ------------------------------------------------------------

    def previous(self) -> tuple[int, str | None]:
        """(bytes, validator) of an earlier `.part` of the same URL, or (0, None). Without a
        validator there is no telling whether the server's file changed since: no resume."""
        try:
            meta = json.loads(self.meta.read_text(encoding="utf-8"))
            size = self.part.stat().st_size
        except (OSError, ValueError):
            return 0, None
        validator = meta.get("validator")
        if meta.get("url") != self._url_id or not isinstance(validator, str) or not size:
            return 0, None
        return min(size, self.max_bytes), validator

    def check_room(self, total: int | None, offset: int) -> None:
        """L01: refuse a file larger than `max_bytes` or than the free space (less KEEP_FREE),
        before downloading."""
        if total is None:
            return
        if total > self.max_bytes:
            raise TooLarge(f"{self._public}: {total} bytes, more than the limit of {self.max_bytes}")
        folder = self.destination.parent
        free = free_bytes(folder)
        if total - offset > free - KEEP_FREE:
            raise NoSpace(f"{self._public}: {total - offset} bytes to store, {free} free in {folder} "
                          f"({KEEP_FREE} of them kept for the station)")

    def hash_existing(self, offset: int) -> None:
        """Hash the first `offset` bytes of the `.part` (blocking: run in a worker thread)."""
        with open(self.part, "rb") as f:
            left = offset
            while left:
                block = f.read(min(BLOCK * 16, left))
                if not block:
                    raise TransferError(f"{self.part}: shorter than its {offset} bytes while resuming")
                self._hash.update(block)
                left -= len(block)

    def open(self, total: int | None, offset: int, validator: str | None) -> None:
        """Start writing at `offset` (0: a new `.part`); `hash_existing(offset)` came first."""
        self.total = total
        self.done = self.resumed_from = offset
        if offset == 0:
            self._hash = hashlib.sha256()
        self._write_meta(validator)
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
        self._fd = os.open(self.part, flags, 0o644)
        try:
            os.ftruncate(self._fd, offset)
            os.lseek(self._fd, offset, os.SEEK_SET)
        except OSError as exc:
            self.close()
            raise self._os_error(exc) from None

    def _write_meta(self, validator: str | None) -> None:
        tmp = self.meta.with_name(f".tmp-{self.meta.name}.{secrets.token_hex(4)}")
        try:
            tmp.write_text(json.dumps({"url": self._url_id, "validator": validator}), encoding="utf-8")
            os.replace(tmp, self.meta)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise self._os_error(exc) from None

    # --- during -----------------------------------------------------------------------------

    def write(self, block: bytes) -> None:
        """Append one block: size limit, hash, disk (the hot path: no copy, no log)."""
        done = self.done + len(block)
        if done > self.max_bytes:
            raise TooLarge(f"{self._public}: more than the limit of {self.max_bytes} bytes")
        if self.total is not None and done > self.total:
            raise BadReply(f"{self._public}: more bytes than the {self.total} announced")
        self._hash.update(block)
        view = memoryview(block)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            raise self._os_error(exc) from None
        self.done = done

    def _os_error(self, exc: OSError) -> TransferError:
        if exc.errno in _NO_SPACE:
            return NoSpace(f"{self._public}: no space left in {self.destination.parent} "
                           f"after {self.done} bytes")
        return TransferError(f"{self.part}: cannot be written: {exc.strerror or exc}")

    # --- after ------------------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return self.total is None or self.done == self.total

    def finish(self) -> Downloaded:
        """fsync, check the expected hash, rename to the destination (blocking: a worker thread)."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise self._os_error(exc) from None
        finally:
            self.close()
        digest = self._hash.hexdigest()
        if self.expected is not None and digest != self.expected:
            self.discard()
            raise ChecksumMismatch(f"{self._public}: SHA-256 {digest}, expected {self.expected}")
        os.replace(self.part, self.destination)
        with contextlib.suppress(FileNotFoundError):
            self.meta.unlink()
        fd = os.open(self.destination.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return Downloaded(self.destination, self.done, digest, self.resumed_from)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        """Remove the `.part` and its metadata (a file that can never be resumed)."""
        self.close()
        for path in (self.part, self.meta):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
