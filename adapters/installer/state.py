"""The installer's record of where an install stands: one JSON file, written atomically
(temporary file, fsync, rename, fsync of the folder), read back after every boot."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

from ports.firmware_installer import InstallerError


class StateFile:
    """One JSON object at `path` (created with its folder on the first write)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise InstallerError(f"{self.path}: cannot be read: {exc}") from None
        if not isinstance(data, dict):
            raise InstallerError(f"{self.path}: not a JSON object")
        return data

    def write(self, data: dict) -> None:
        folder = self.path.parent
        tmp = folder / f".tmp-{self.path.name}.{secrets.token_hex(4)}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, json.dumps(data, sort_keys=True).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise InstallerError(f"{self.path}: cannot be written: {exc.strerror or exc}") from None
