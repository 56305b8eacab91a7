"""Real file-system faults for storage tests (root only): a small tmpfs to fill up, remounted
read-only and back, and an ext4 image that the kernel turns read-only under a running process.

Linux refuses `mount -o remount,ro` (EBUSY) while any file on the mount is open for writing,
which a running station's SQLite files always are. So a tmpfs goes read-only only while the
station is not running (it then starts on a read-only file system) and back to read-write
under it. Under a running process a file system goes read-only the way it does in the field:
ext4 mounted errors=remount-ro meets an error (/sys/fs/ext4/<dev>/trigger_fs_error); the
kernel then keeps it read-only until it is unmounted.
"""
from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


def _run(*args: str) -> str:
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()} (these tests need root)")
    return r.stdout


def _unmount(mountpoint: Path) -> None:
    if subprocess.run(["umount", str(mountpoint)], capture_output=True, timeout=30).returncode != 0:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=30)


@contextlib.contextmanager
def tmpfs(mountpoint: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (mount(8) syntax, e.g. "4m") at `mountpoint`, unmounted afterwards."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mountpoint))
    try:
        yield mountpoint
    finally:
        _unmount(mountpoint)


def remount(mountpoint: Path, mode: str) -> None:
    """`mount -o remount,ro` or `remount,rw`."""
    _run("mount", "-o", f"remount,{mode}", str(mountpoint))


def fill(mountpoint: Path, name: str = "filler") -> Path:
    """Write a file until the file system is full (ENOSPC); returns it (delete it to free the space)."""
    path = mountpoint / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    block = b"\0" * 65536
    try:
        while True:
            try:
                os.write(fd, block)
            except OSError:
                if len(block) == 512:
                    break
                block = block[: len(block) // 2]
    finally:
        os.close(fd)
    return path


@contextlib.contextmanager
def ext4_image(image: Path, mountpoint: Path, size: str = "16M") -> Iterator[Path]:
    """An ext4 file system in `image` on a loop device, mounted errors=remount-ro at `mountpoint`."""
    _run("truncate", "-s", size, str(image))
    _run("mkfs.ext4", "-q", "-F", str(image))
    mountpoint.mkdir(parents=True, exist_ok=True)
    _run("mount", "-o", "loop,errors=remount-ro", str(image), str(mountpoint))
    try:
        yield mountpoint
    finally:
        _unmount(mountpoint)


def ext4_error(mountpoint: Path) -> None:
    """An ext4 error on the file system at `mountpoint`: with errors=remount-ro the kernel
    turns it read-only at once, under every process that has files open on it."""
    device = os.path.basename(os.path.realpath(_run("findmnt", "-no", "SOURCE", str(mountpoint)).strip()))
    Path(f"/sys/fs/ext4/{device}/trigger_fs_error").write_text("test: storage goes read-only\n")
    try:            # (the mount still says rw: ext4 refuses writes itself, "emergency_ro")
        os.close(os.open(mountpoint / "probe", os.O_WRONLY | os.O_CREAT, 0o644))
    except OSError as exc:
        if exc.errno == errno.EROFS:
            return
        raise
    raise AssertionError(f"{mountpoint} is still writable after an ext4 error")
