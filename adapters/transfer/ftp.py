"""FileTransfer over FTP and FTPS with the standard library's ftplib, in a worker thread.

Passive mode, binary type. FTPS is explicit (AUTH TLS on the control connection, then PROT P:
the data connections are TLS too), verified against `ca_file` or the system's trust store.
The URL's user and password log in (anonymous without them); its path, percent-decoded, names
the file. A download asks SIZE (checked against `max_bytes` and the free space before RETR)
and MDTM; a `.part` of the same URL, SIZE and MDTM resumes with REST. An upload STORs under the
URL's path, or under the file's own name when the path ends in "/".

ftplib blocks, so every transfer runs in one worker thread (trio.to_thread). When the calling
task is cancelled, the sockets are shut down, which ends the thread's blocking call at once;
the caller waits (shielded, bounded) until the thread has let go of the `.part`. Progress is
reported into the trio task with trio.from_thread, at most once per PROGRESS_STEP.
"""
from __future__ import annotations

import contextlib
import ftplib
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import SplitResult, unquote

import trio

from adapters.transfer.partfile import BLOCK, PartFile, parse_url, public_url
from adapters.transfer.tls import TlsOnFirstUse
from ports.file_transfer import (PROGRESS_STEP, BadReply, Downloaded, Interrupted, NoSpace, NotFound,
                                 NotSupported, PermissionDenied, Progress, ServerError, TooLarge, TransferError,
                                 TransferTimeout, Uploaded)

SCHEMES = frozenset({"ftp", "ftps"})
ABORT_WAIT = 5.0        # s: how long a cancelled call waits for its thread to let go
T = TypeVar("T")



def reply_error(where: str, exc: ftplib.Error, *, storing: bool = False) -> TransferError:
    """The TransferError of an FTP error reply (code first in the text)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    code = text[:3]
    message = f"{where}: FTP {text}"
    if code == "530" or (storing and code in ("550", "553", "532")):
        return PermissionDenied(message)
    if code == "550":
        return NotFound(message)
    if code in ("502", "504"):
        return NotSupported(message)
    if code in ("426", "451"):
        return Interrupted(message)
    if isinstance(exc, (ftplib.error_proto, ftplib.error_reply)):
        return BadReply(message)
    return ServerError(message)


class _Session:
    """One FTP control connection and its current data connection, closable from another thread."""

    def __init__(self, parts: SplitResult, context: ssl.SSLContext, timeout: float) -> None:
        self.parts = parts
        self.where = public_url(parts.geturl())
        self.tls = parts.scheme.lower() == "ftps"
        self.ftp: ftplib.FTP = ftplib.FTP_TLS(context=context, timeout=timeout) if self.tls \
            else ftplib.FTP(timeout=timeout)
        self.data: socket.socket | None = None
        self.aborted = threading.Event()

    def login(self) -> None:
        self.ftp.connect(self.parts.hostname, self.parts.port or 21)
        user = unquote(self.parts.username) if self.parts.username else "anonymous"
        password = unquote(self.parts.password) if self.parts.password else ""
        if self.tls:
            self.ftp.auth()
        self.ftp.login(user, password)
        if self.tls:
            self.ftp.prot_p()
        self.ftp.set_pasv(True)
        self.ftp.voidcmd("TYPE I")

    def abort(self) -> None:
        """From the trio thread: end whatever the worker thread is blocked in."""
        self.aborted.set()
        for sock in (self.data, self.ftp.sock):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self.data is not None:
            with contextlib.suppress(OSError):
                self.data.close()
        if self.ftp.sock is not None and not self.aborted.is_set():
            with contextlib.suppress(OSError, EOFError, ftplib.Error):
                self.ftp.quit()
        self.ftp.close()


def _path(parts: SplitResult) -> str:
    return unquote(parts.path)


def _size_and_stamp(session: _Session, path: str) -> tuple[int | None, str | None]:
    """SIZE and MDTM of `path` (None where the server does not say); 550 is NotFound."""
    size = None
    try:
        size = session.ftp.size(path)
    except ftplib.error_perm as exc:
        if str(exc).startswith("550"):
            raise reply_error(session.where, exc) from None
    stamp = None
    with contextlib.suppress(ftplib.error_perm):
        stamp = session.ftp.voidcmd(f"MDTM {path}")[4:].strip()
    return size, stamp


class FtpTransfer(TlsOnFirstUse):
    """ports.file_transfer.FileTransfer for ftp:// and ftps:// (`ca_file`: the CA that verifies servers,
    else the system's trust store)."""

    schemes = SCHEMES

    async def download(self, url: str, destination: Path, *, max_bytes: int, timeout: float,
                       expected_sha256: str | None = None, progress: Progress | None = None) -> Downloaded:
        """L01 Downloading..Downloaded over FTP(S) (see the module docstring)."""
        parts = parse_url(url, SCHEMES)
        part = PartFile(destination, url, max_bytes=max_bytes, expected_sha256=expected_sha256)
        report = _reporter(progress)
        session = _Session(parts, self._tls, timeout)
        try:
            return await _in_thread(session, lambda: _retrieve(session, part, report), cleanup=part.close)
        except (TooLarge, NoSpace, BadReply):
            part.discard()
            raise

    async def upload(self, path: Path, url: str, *, timeout: float,
                     progress: Progress | None = None) -> Uploaded:
        """N01 Uploading..Uploaded: STOR, streamed from disk."""
        parts = parse_url(url, SCHEMES)
        session = _Session(parts, self._tls, timeout)
        return await _in_thread(session, lambda: _store(session, Path(path), _reporter(progress)))


def _reporter(progress: Progress | None) -> Callable[[int, int | None], None] | None:
    if progress is None:
        return None

    def report(done: int, total: int | None) -> None:
        trio.from_thread.run_sync(progress, done, total)
    return report


async def _in_thread(session: _Session, work: Callable[[], T], cleanup: Callable[[], None] = lambda: None) -> T:
    """Run `work` (which uses `session`) in a worker thread; on cancellation abort the session's
    sockets and wait, shielded and bounded, for the thread to end. The thread itself closes
    the session and runs `cleanup` (the `.part`'s descriptor: never closed under a thread that
    may still write to it)."""
    finished = threading.Event()

    def run() -> T:
        try:
            return _mapped(session, work)
        finally:
            session.close()
            cleanup()
            finished.set()

    try:
        return await trio.to_thread.run_sync(run, abandon_on_cancel=True)
    except trio.Cancelled:
        session.abort()
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(finished.wait, ABORT_WAIT)
        raise


def _mapped(session: _Session, work: Callable[[], T]) -> T:
    """`work()` with ftplib's and the socket's exceptions turned into TransferErrors."""
    where = session.where
    try:
        return work()
    except TransferError:
        raise
    except ftplib.Error as exc:
        raise reply_error(where, exc) from None
    except (TimeoutError, socket.timeout):
        raise TransferTimeout(f"{where}: no answer within the timeout") from None
    except ssl.SSLError as exc:
        raise BadReply(f"{where}: TLS: {exc.reason or exc}") from None
    except (EOFError, ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
        if session.aborted.is_set():
            raise Interrupted(f"{where}: cancelled") from None
        raise Interrupted(f"{where}: connection lost ({type(exc).__name__})") from None
    except OSError as exc:
        if session.aborted.is_set():
            raise Interrupted(f"{where}: cancelled") from None
        raise ServerError(f"{where}: cannot connect: {exc.strerror or exc}") from None


def _retrieve(session: _Session, part: PartFile, report) -> Downloaded:
    session.login()
    path = _path(session.parts)
    total, stamp = _size_and_stamp(session, path)
    validator = f"{total}:{stamp}" if total is not None and stamp else None
    offset, previous = part.previous()
    if previous != validator:
        offset = 0
    part.check_room(total, offset)
    if offset:
        try:
            session.ftp.sendcmd(f"REST {offset}")
        except ftplib.error_perm:
            offset = 0          # the server cannot resume: the whole file again
    if offset:
        part.hash_existing(offset)
    part.open(total, offset, validator)
    session.data = session.ftp.transfercmd(f"RETR {path}")
    next_report = offset + PROGRESS_STEP
    while not session.aborted.is_set():
        block = session.data.recv(BLOCK)
        if not block:
            break
        part.write(block)
        if report is not None and part.done >= next_report:
            report(part.done, total)
            next_report = part.done + PROGRESS_STEP
    _close_data(session)
    if session.aborted.is_set():
        raise Interrupted(f"{session.where}: cancelled")
    if not part.complete:
        raise Interrupted(f"{session.where}: connection closed after {part.done} of {total} bytes")
    session.ftp.voidresp()
    if report is not None:
        report(part.done, total)
    return part.finish()


def _store(session: _Session, path: Path, report) -> Uploaded:
    target = _path(session.parts)
    if not target or target.endswith("/"):
        target += path.name
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise TransferError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    with f:
        session.login()
        try:
            session.data = session.ftp.transfercmd(f"STOR {target}")
        except ftplib.Error as exc:
            raise reply_error(session.where, exc, storing=True) from None
        sent, next_report = 0, PROGRESS_STEP
        while not session.aborted.is_set():
            block = f.read(BLOCK * 4)
            if not block:
                break
            session.data.sendall(block)
            sent += len(block)
            if report is not None and sent >= next_report:
                report(sent, None)
                next_report = sent + PROGRESS_STEP
    _close_data(session)
    try:
        session.ftp.voidresp()
    except ftplib.Error as exc:
        raise reply_error(session.where, exc, storing=True) from None
    return Uploaded(sent)


def _close_data(session: _Session) -> None:
    """End the data connection (a TLS one with its close_notify, as ftplib does)."""
    data, session.data = session.data, None
    if data is None:
        return
    try:
        if isinstance(data, ssl.SSLSocket) and not session.aborted.is_set():
            data.unwrap()
    except (OSError, ValueError):
        pass
    finally:
        data.close()
