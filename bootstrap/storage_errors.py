"""Why the station's storage cannot be used at start-up, in one line, with its own exit code and
the advice that fits (README "Storage errors at start-up").

Before the database is opened (:func:`hold_storage`), nothing in it is touched:

1. the folder of ``[storage] path`` must exist (systemd's StateDirectory= makes it; a typo in the
   path must not boot a fresh database on defaults);
2. the station takes an exclusive lock (``fcntl.flock`` on ``<db>.lock`` next to the file) and
   holds it for the life of the process: a second station on the same file is refused at once;
3. the file and its folder must be writable by the user the station runs as (a wrong owner is
   the likeliest failure on a board, and never a reason to throw the database away).

A read-only or full file system is not an error here: the station starts from what the file
holds (README "When storage cannot be written"). When the file cannot be read even so, or is
damaged or not ours, :func:`explain` turns the adapter's StorageError into the line to print.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pwd
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

from adapters.sqlite_storage import StorageError

#: Exit codes of `evse run` (README lists them). 2 is a bad configuration (bootstrap.cli).
EXIT_CODES: dict[str, int] = {
    "damaged": 10,
    "foreign": 11,
    "permission": 12,
    "read-only": 13,
    "missing-directory": 14,
    "disk-full": 15,
    "locked": 16,
    "socket-in-use": 17,
}

_RECOVER = "see README 'Recovering a damaged database'"


class StartupError(Exception):
    """The station cannot start; str() is one line, `exit_code` the process's exit status."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.exit_code = EXIT_CODES[kind]


def _user() -> str:
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _owner(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "?"
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    return f"owner {owner}, mode {stat.S_IMODE(st.st_mode):04o}"


def permission_denied(db: Path, what: Path) -> StartupError:
    user = _user()
    return StartupError("permission", (
        f"{db}: permission denied: user {user} cannot write {what} ({_owner(what)}); give the folder "
        f"and the database to that user (chown -R {user}: {db.parent}); nothing is damaged, do not "
        f"move the database away"))


def read_only(db: Path, detail: str = "") -> StartupError:
    return StartupError("read-only", (
        f"{db}: read-only file system{f' ({detail})' if detail else ''}; the station can start on it "
        f"only from a database it can read: mount the file system read-write (and check it if the "
        f"kernel made it read-only after an error), then start again; the database is not damaged"))


def disk_full(db: Path, detail: str = "") -> StartupError:
    return StartupError("disk-full", (
        f"{db}: no space left on the device{f' ({detail})' if detail else ''}; free space on "
        f"{db.parent}'s file system, then start again; the database is not damaged"))


def _classify_errno(db: Path, exc: OSError, what: Path) -> StartupError | None:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return permission_denied(db, what)
    if exc.errno == errno.EROFS:
        return read_only(db)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return disk_full(db)
    return None


def check_folder(db: Path) -> None:
    """[storage] path's folder must exist (never made silently)."""
    folder = db.parent
    if not folder.is_dir():
        why = "is not a folder" if folder.exists() else "does not exist"
        raise StartupError("missing-directory", (
            f"{db}: the folder {folder} {why}; check [storage] path for a typo, or create the folder "
            f"for the station's user (systemd's StateDirectory= makes /var/lib/evse-stack)"))


@contextlib.contextmanager
def hold_storage(path: str) -> Iterator[None]:
    """The checks above, then the exclusive lock, held until the block ends (the process's life).
    ":memory:" has nothing to check or lock."""
    if path == ":memory:":
        yield
        return
    db = Path(path)
    check_folder(db)
    fd = _lock(db)
    try:
        _check_writable(db)
        yield
    finally:
        os.close(fd)


def _lock(db: Path) -> int:
    """flock(LOCK_EX | LOCK_NB) on ``<db>.lock`` (our pid written into it); on a file system where
    it cannot be made (read-only, full), on the folder itself. StartupError("locked") when another
    process holds it."""
    lock = Path(f"{db}.lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        writable = True
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise permission_denied(db, lock if lock.exists() else db.parent) from None
        if exc.errno not in (errno.EROFS, errno.ENOSPC, errno.EDQUOT):
            raise
        fd = os.open(lock if lock.exists() else db.parent, os.O_RDONLY | os.O_CLOEXEC)
        writable = False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise StartupError("locked", (
            f"{db}: in use by another station{f' (pid {holder})' if holder else ''}, which holds "
            f"{lock.name}; two stations must never share a database: stop the other one, or give "
            f"this one its own [storage] path")) from None
    if writable:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _check_writable(db: Path) -> None:
    """The file (opened for writing, nothing written) and its folder (a probe file made and removed)
    must be writable by us; a read-only or full file system is let through (README)."""
    try:
        os.close(os.open(db, os.O_RDWR | os.O_CLOEXEC))
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise permission_denied(db, db) from None
    probe = db.parent / f".evse-probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise permission_denied(db, db.parent) from None
        return
    with contextlib.suppress(OSError):
        probe.unlink()


def explain(exc: StorageError, path: str) -> StartupError:
    """The adapter's refusal as the line to print, by what is wrong."""
    db = Path(path)
    if exc.kind == "foreign":
        return StartupError("foreign", (
            f"{exc}; this is not this station's database or it is from a newer evse-stack: check "
            f"[storage] path, or install the version that wrote it; leave the file as it is"))
    if exc.kind == "unreadable":
        return _unreadable(db, exc)
    return StartupError("damaged", f"{exc}; {_RECOVER}")


def _unreadable(db: Path, exc: StorageError) -> StartupError:
    """A file that cannot be read without writing (or no file): say what the file system says."""
    folder = db.parent
    try:
        st = os.statvfs(folder)
    except OSError as err:
        found = _classify_errno(db, err, folder)
        return found or StartupError("damaged", f"{exc}; {_RECOVER}")
    if st.f_flag & os.ST_RDONLY:
        return read_only(db, str(exc))
    probe = folder / f".evse-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as f:
            f.write(b"\0" * 65536)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        found = _classify_errno(db, err, folder)
        if found is not None:
            return found
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    if st.f_bavail == 0:
        return disk_full(db, str(exc))
    return StartupError("damaged", f"{exc}; {_RECOVER}")


def check_socket_free(path: str) -> None:
    """Refuse at once when a station already listens on the Unix socket at `path` (a stale socket
    file, nobody listening, is left for the listener to replace)."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        probe.settimeout(2)
        probe.connect(path)
    except OSError:
        return
    finally:
        probe.close()
    raise socket_in_use(OSError(errno.EADDRINUSE, "in use", path))


def socket_in_use(exc: OSError) -> StartupError:
    """A second station (simulator) on the same control socket."""
    return StartupError("socket-in-use", (
        f"{exc.filename}: another station is listening on this socket; stop it, or give this one "
        f"its own socket path in the configuration"))
