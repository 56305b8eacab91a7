"""Adapter: the board's operating system (ports.system.System) on a systemd Linux.

A Reset from the CSMS reboots the board: the runtime has stopped the station cleanly
before `reboot` is called, so the request goes to systemd (``systemctl reboot``), which
stops every service in order; this process then ends with the rest and the next boot
comes from the OS. The service user needs permission for that (a polkit rule, see the
README's "Installing on a board"); a refusal is reported as one line, never ignored.

How a command runs is injected (`run`), so the adapter can be tested without rebooting.
"""
from __future__ import annotations

import logging
import subprocess
from collections.abc import Awaitable, Callable

import trio

log = logging.getLogger("evse.system")

#: Runs argv to completion: (exit status, what it said: stderr, else stdout).
CommandRunner = Callable[[list[str]], Awaitable[tuple[int, str]]]

REBOOT_COMMAND = ["systemctl", "reboot"]


async def run_command(argv: list[str]) -> tuple[int, str]:
    """Run `argv` with trio, capturing its output; (exit status, stderr or else stdout)."""
    done = await trio.run_process(argv, check=False, stdin=subprocess.DEVNULL,
                                  capture_stdout=True, capture_stderr=True)
    said = done.stderr if done.stderr.strip() else done.stdout
    return done.returncode, said.decode("utf-8", "replace")


def _one_line(text: str) -> str:
    return " ".join(text.split())


class LinuxSystem:
    """Reboots the board through systemd. `run`: the command runner (default run_command)."""

    def __init__(self, run: CommandRunner | None = None) -> None:
        self._run = run if run is not None else run_command

    async def reboot(self, reason: str) -> bool:
        """Ask systemd to reboot the board; False: the OS does it, this process will end.

        Raises OSError (one line with the command's own message) when refused."""
        command = " ".join(REBOOT_COMMAND)
        log.warning("rebooting the board (%s): %s", _one_line(reason), command)
        try:
            status, said = await self._run(list(REBOOT_COMMAND))
        except OSError as exc:        # e.g. systemctl not installed
            raise OSError(f"{command}: cannot run it ({exc.strerror or exc})") from None
        if status != 0:
            message = _one_line(said) or "no message"
            raise OSError(f"{command} failed (exit status {status}): {message}")
        return False
