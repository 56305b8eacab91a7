"""The suite's timeout (pyproject `timeout`, pytest-timeout, tests/conftest.py): a hung test
fails instead of hanging, and a trio test that hung leaves trio usable for the next ones.

Runs pytest as a real process on a few tests that hang, with this repository's pytest
settings and conftest and the timeout lowered to 1 s (bounded: the process gets 60 s)."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

HANGING = '''
import threading
import trio

async def test_1_waits_forever_in_the_event_loop():
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep_forever)
        await trio.sleep_forever()

async def test_2_trio_still_works_after_it():
    await trio.sleep(0)

def test_3_sync_wait_forever():
    threading.Event().wait()

async def test_4_mock_clock_still_works(autojump_clock):
    await trio.sleep(3600)

async def test_5_spins_without_checkpoint():
    while True:
        pass
'''


def ini_options(**overrides) -> str:
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    options = {k: v for k, v in options.items() if k != "testpaths"} | overrides
    lines = [f"{k} = {v!r}".replace("'", '"').replace("True", "true").replace("False", "false")
             for k, v in options.items()]
    return "[tool.pytest.ini_options]\n" + "\n".join(lines) + "\n"


def test_the_suite_has_a_signal_timeout():
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert 0 < options["timeout"] <= 600 and options["timeout_method"] == "signal"


def test_hung_tests_fail_and_trio_tests_after_them_pass(tmp_path):
    (tmp_path / "pyproject.toml").write_text(ini_options(timeout=1))
    (tmp_path / "test_hanging.py").write_text(HANGING)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-rA", "test_hanging.py"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    report = out.stdout + out.stderr
    results = {line.split()[1].split("::")[1]: line.split()[0] for line in report.splitlines()
               if line.startswith(("PASSED ", "FAILED ", "ERROR "))}
    assert results == {
        "test_1_waits_forever_in_the_event_loop": "FAILED",
        "test_2_trio_still_works_after_it": "PASSED",
        "test_3_sync_wait_forever": "FAILED",
        "test_4_mock_clock_still_works": "PASSED",
        "test_5_spins_without_checkpoint": "FAILED",
    }, report
    assert report.count("Timeout (>1.0s) from pytest-timeout.") >= 3, report
    assert "run() from inside a run()" not in report and "PytestUnraisableExceptionWarning" not in report, report
