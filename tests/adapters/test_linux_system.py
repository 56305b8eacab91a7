"""adapters.linux_system: the reboot request, with a recording runner and with real processes."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest
import trio

from adapters.linux_system import LinuxSystem, run_command

TIMEOUT = 10


class Runner:
    """Records argv; answers with the given exit status and message (or raises)."""

    def __init__(self, status: int = 0, said: str = "", error: OSError | None = None) -> None:
        self.calls: list[list[str]] = []
        self.status, self.said, self.error = status, said, error

    async def __call__(self, argv: list[str]) -> tuple[int, str]:
        self.calls.append(list(argv))
        await trio.lowlevel.checkpoint()
        if self.error is not None:
            raise self.error
        return self.status, self.said


async def test_reboot_asks_systemd_and_leaves_the_restart_to_the_os(
        caplog: pytest.LogCaptureFixture) -> None:
    run = Runner()
    with caplog.at_level(logging.WARNING, logger="evse.system"):
        assert await LinuxSystem(run).reboot("ResetRequest OnIdle\nfrom CSMS") is False
    assert run.calls == [["systemctl", "reboot"]]
    assert "rebooting the board (ResetRequest OnIdle from CSMS): systemctl reboot" in caplog.text


async def test_a_refused_reboot_is_a_one_line_oserror_with_the_commands_message() -> None:
    run = Runner(1, "Failed to reboot system via logind: Access denied\n"
                    "Failed to start reboot.target: Interactive authentication required.\n")
    with pytest.raises(OSError) as info:
        await LinuxSystem(run).reboot("ResetRequest")
    assert str(info.value) == (
        "systemctl reboot failed (exit status 1): Failed to reboot system via logind: "
        "Access denied Failed to start reboot.target: Interactive authentication required.")
    assert run.calls == [["systemctl", "reboot"]]


async def test_a_silent_failure_still_says_what_failed() -> None:
    with pytest.raises(OSError, match=r"^systemctl reboot failed \(exit status 3\): no message$"):
        await LinuxSystem(Runner(3, "  \n")).reboot("x")


async def test_a_missing_systemctl_is_a_one_line_oserror() -> None:
    run = Runner(error=FileNotFoundError(2, "No such file or directory"))
    with pytest.raises(OSError) as info:
        await LinuxSystem(run).reboot("x")
    assert str(info.value) == "systemctl reboot: cannot run it (No such file or directory)"


# --- the default runner, on real processes ----------------------------------------------------
async def test_run_command_returns_status_and_stderr() -> None:
    with trio.fail_after(TIMEOUT):
        status, said = await run_command([
            sys.executable, "-c",
            "import sys; print('ignored'); sys.stderr.write('Access denied\\n'); sys.exit(4)"])
    assert (status, said) == (4, "Access denied\n")


async def test_run_command_falls_back_to_stdout_and_passes_success() -> None:
    with trio.fail_after(TIMEOUT):
        assert await run_command([sys.executable, "-c", "print('ok')"]) == (0, "ok\n")


def fake_systemctl(folder: Path, status: int, stderr: str) -> Path:
    """An executable `systemctl` that records its arguments and answers like the real one."""
    script = folder / "systemctl"
    script.write_text(f'#!/bin/sh\necho "$@" > "{folder}/argv"\n'
                      f'printf \'{stderr}\' >&2\nexit {status}\n')
    script.chmod(0o755)
    return folder / "argv"


async def test_linux_system_runs_systemctl_from_path(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """LinuxSystem() as bootstrap builds it, with a stand-in systemctl first on PATH."""
    argv = fake_systemctl(tmp_path, 0, "")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with trio.fail_after(TIMEOUT):
        assert await LinuxSystem().reboot("ResetRequest") is False
    assert argv.read_text() == "reboot\n"


async def test_linux_system_reports_systemctls_refusal(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fake_systemctl(tmp_path, 1, "Failed to reboot system via logind: Access denied\\n")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with trio.fail_after(TIMEOUT):
        with pytest.raises(OSError) as info:
            await LinuxSystem().reboot("ResetRequest")
    assert str(info.value) == ("systemctl reboot failed (exit status 1): "
                               "Failed to reboot system via logind: Access denied")


async def test_linux_system_without_systemctl(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))           # an empty folder: no systemctl
    with trio.fail_after(TIMEOUT):
        with pytest.raises(OSError) as info:
            await LinuxSystem().reboot("ResetRequest")
    assert str(info.value) == "systemctl reboot: cannot run it (No such file or directory)"
