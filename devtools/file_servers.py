"""Development file servers on loopback for firmware images and log uploads (tests, bench, demo).

`HttpFileServer`: http.server in a thread, plain or TLS (an ssl.SSLContext), serving the files
of a folder with ETag and single Range requests (206), taking POST multipart/form-data uploads
into `<folder>/uploads/` (the part "file"). `FtpFileServer`: pyftpdlib in a thread, plain or
explicit FTPS (TLS_FTPHandler), user "station"/"secret" reads and writes, user "reader"/"secret"
only reads.

Both take faults, by file name, for the tests:

* `drop_after[name] = n`: the next transfer of `name` stops after n bytes (HTTP: the
  connection is closed under a full Content-Length; FTP: the data connection is aborted with
  426). One-shot: the next request is served whole, so a resume can be tested.
* `stall.add(name)`: sending `name` stops after its first block until the server closes.
* `chunked.add(name)` (HTTP): no Content-Length, chunked transfer coding.
* `no_resume = True`: HTTP ignores Range (200, the whole file); FTP answers REST with 502.
* `refuse_uploads = True`: uploads are refused (HTTP 403; FTP: log in as "reader").

Requests seen are recorded in `requests` (method, path, the Range header or REST offset).
Everything binds 127.0.0.1 and stops in `close()`, bounded.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.server
import logging
import os
import ssl
import threading
from pathlib import Path

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import ThreadedFTPServer

_FTP_LOG = logging.getLogger("pyftpdlib")          # a handler of its own: pyftpdlib's serve_forever
_FTP_LOG.addHandler(logging.NullHandler())        # then leaves logging alone (no line per session)
_FTP_LOG.setLevel(logging.WARNING)

BLOCK = 1 << 16
STALL_LIMIT = 60.0          # s: a stalled transfer ends at the latest after this (or at close())


class _Faults:
    def __init__(self) -> None:
        self.drop_after: dict[str, int] = {}
        self.stall: set[str] = set()
        self.chunked: set[str] = set()
        self.refuse_uploads = False
        self.no_resume = False
        self.released = threading.Event()
        self.requests: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()

    def take_drop(self, name: str) -> int | None:
        with self._lock:
            return self.drop_after.pop(name, None)


# --------------------------------------------------------------------------- HTTP


class _HttpHandler(http.server.BaseHTTPRequestHandler):
    server: "_HttpServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:        # noqa: A002  (quiet)
        pass

    def _file(self) -> Path | None:
        name = self.path.split("?", 1)[0].lstrip("/")
        path = (self.server.root / name).resolve()
        if self.server.root not in path.parents or not path.is_file():
            return None
        return path

    def do_GET(self) -> None:       # noqa: N802
        faults = self.server.faults
        faults.requests.append(("GET", self.path, self.headers.get("Range")))
        path = self._file()
        if path is None:
            self.send_error(404, "Not Found")
            return
        size = path.stat().st_size
        etag = f'"{hashlib.sha256(f"{path.name}:{size}:{path.stat().st_mtime_ns}".encode()).hexdigest()[:16]}"'
        start = 0
        ranged = self.headers.get("Range", "")
        if_range = self.headers.get("If-Range")
        if ranged.startswith("bytes=") and ranged.endswith("-") and (if_range is None or if_range == etag) \
                and not faults.no_resume:
            start = int(ranged[6:-1])
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        name = path.name
        chunked = name in faults.chunked
        self.send_response(206 if start else 200)
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size - start))
        self.end_headers()
        self._send_body(path, start, name, chunked)

    def _send_body(self, path: Path, start: int, name: str, chunked: bool) -> None:
        faults = self.server.faults
        drop = faults.take_drop(name)
        stall = name in faults.stall
        sent = 0
        with open(path, "rb") as f:
            f.seek(start)
            while True:
                want = BLOCK if drop is None else min(BLOCK, drop - sent)
                block = f.read(want) if want > 0 else b""
                if not block:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                sent += len(block)
                if stall:
                    self.wfile.flush()
                    faults.released.wait(STALL_LIMIT)
                    self.close_connection = True
                    return
        if drop is not None:
            self.close_connection = True
            self.wfile.flush()
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def do_POST(self) -> None:      # noqa: N802
        faults = self.server.faults
        faults.requests.append(("POST", self.path, None))
        length = int(self.headers.get("Content-Length", "0"))
        if faults.refuse_uploads:
            self.send_error(403, "Forbidden")
            self.close_connection = True
            return
        boundary = self.headers.get_param("boundary", header="Content-Type")
        body_file = self.server.root / "uploads" / ".incoming"
        body_file.parent.mkdir(exist_ok=True)
        with open(body_file, "wb") as f:
            left = length
            while left:
                block = self.rfile.read(min(BLOCK, left))
                if not block:
                    return
                f.write(block)
                left -= len(block)
        saved = _save_multipart(body_file, boundary, body_file.parent) if boundary else None
        body_file.unlink()
        if saved is None:
            self.send_error(400, "Bad Request")
            return
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _save_multipart(body_file: Path, boundary: str, folder: Path) -> Path | None:
    """The part "file" of a multipart/form-data body, saved under its filename."""
    data = body_file.read_bytes()
    for chunk in data.split(b"--" + boundary.encode())[1:-1]:
        head, _, content = chunk.partition(b"\r\n\r\n")
        if b'name="file"' not in head or b'filename="' not in head:
            continue
        filename = head.split(b'filename="', 1)[1].split(b'"', 1)[0].decode()
        target = folder / Path(filename).name
        target.write_bytes(content[:-2] if content.endswith(b"\r\n") else content)
        return target
    return None


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    root: Path
    faults: _Faults


class HttpFileServer(_Faults):
    """http.server over `root` on 127.0.0.1 (TLS when `tls` is given); see the module docstring."""

    def __init__(self, root: Path, tls: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.root = Path(root).resolve()
        self._server = _HttpServer(("127.0.0.1", 0), _HttpHandler)
        self._server.root = self.root
        self._server.faults = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="http-file-server")
        self._thread.start()

    def url(self, name: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> "HttpFileServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- FTP


class _FaultyFile:
    """A file opened for RETR that stops, or stalls, as the server's faults say."""

    def __init__(self, f, faults: _Faults, drop: int | None, stall: bool) -> None:
        self._f, self._faults, self._drop, self._stall = f, faults, drop, stall
        self._sent = 0
        self.name = f.name
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        if self._stall and self._sent:
            self._faults.released.wait(STALL_LIMIT)
            raise OSError("stalled transfer ended")
        if self._drop is not None and self._sent >= self._drop:
            raise OSError("connection dropped by the test server")
        if self._drop is not None:
            n = min(n if n > 0 else BLOCK, self._drop - self._sent)
        block = self._f.read(n)
        self._sent += len(block)
        return block

    def seek(self, *args):
        return self._f.seek(*args)

    def tell(self):
        return self._f.tell()

    def fileno(self):
        return self._f.fileno()

    def close(self) -> None:
        self.closed = True
        self._f.close()


def _filesystem(faults: _Faults) -> type[AbstractedFS]:
    class FaultyFS(AbstractedFS):
        def open(self, filename, mode):
            f = super().open(filename, mode)
            if "r" not in mode:
                return f
            name = os.path.basename(filename)
            drop, stall = faults.take_drop(name), name in faults.stall
            return _FaultyFile(f, faults, drop, stall) if drop is not None or stall else f
    return FaultyFS


class FtpFileServer(_Faults):
    """pyftpdlib over `root` on 127.0.0.1 (explicit FTPS when `certfile`, a PEM holding the
    certificate and its key, is given); see the module docstring."""

    USER, READER, PASSWORD = "station", "reader", "secret"

    def __init__(self, root: Path, certfile: Path | None = None) -> None:
        super().__init__()
        self.root = Path(root).resolve()
        authorizer = DummyAuthorizer()
        authorizer.add_user(self.USER, self.PASSWORD, str(self.root), perm="elradfmwMT")
        authorizer.add_user(self.READER, self.PASSWORD, str(self.root), perm="elr")
        base = TLS_FTPHandler if certfile else FTPHandler
        faults = self

        class Handler(base):
            def ftp_REST(self, line):
                faults.requests.append(("REST", line, None))
                if faults.no_resume:
                    self.respond("502 Command not implemented.")
                    return None
                return super().ftp_REST(line)

            def ftp_RETR(self, file):
                faults.requests.append(("RETR", file, None))
                return super().ftp_RETR(file)

        Handler.authorizer = authorizer
        Handler.abstracted_fs = _filesystem(self)
        Handler.use_sendfile = False
        Handler.passive_ports = None
        Handler.timeout = 30
        Handler.auth_failed_timeout = 0.1
        Handler.banner = "evse-stack test FTP server"
        if certfile:
            Handler.certfile = str(certfile)
            Handler.tls_control_required = True
            Handler.tls_data_required = True
        self.scheme = "ftps" if certfile else "ftp"
        self._server = ThreadedFTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"timeout": 0.05},
                                        daemon=True, name="ftp-file-server")
        self._thread.start()

    def url(self, name: str, user: str | None = None) -> str:
        user = user or self.USER
        return f"{self.scheme}://{user}:{self.PASSWORD}@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.released.set()
        self._server.close_all()
        self._thread.join(10)

    def __enter__(self) -> "FtpFileServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_file(path: Path, size: int) -> str:
    """A file of `size` random bytes (no two blocks alike, so a resume at a wrong offset shows
    in the hash), written in blocks; its SHA-256 hex."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            piece = os.urandom(min(BLOCK * 16, left))
            f.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()
