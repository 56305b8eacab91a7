"""The fast tier's plugin (tests/fast_tier.py, `make test-fast`): a test that opens a socket,
starts a process, sleeps or runs under trio fails, naming why; property tests run a fifth of
their examples. Runs pytest as a real process on probe tests (so not itself in the tier)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PROBES = '''
import socket, subprocess, sys, time

import trio
from hypothesis import given, settings, strategies as st

def test_connect():
    with socket.socket() as s:
        s.connect(("127.0.0.1", 9))

def test_bind():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))

def test_process():
    subprocess.run([sys.executable, "-c", "pass"])

def test_sleep():
    time.sleep(0.01)

async def test_trio():
    await trio.sleep(0)

CALLS = []

@settings(max_examples=50, database=None)
@given(st.integers())
def test_counted(n):
    CALLS.append(n)

def test_z_count():
    print(f"examples run: {len(CALLS)}")

def test_pure():
    assert sorted([2, 1]) == [1, 2]
'''


def run_probes(tmp_path: Path, *plugin: str) -> str:
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntrio_mode = true\n')
    (tmp_path / "test_probes.py").write_text(PROBES)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *plugin, "-rA", "-s",
                          "test_probes.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    return out.stdout + out.stderr


def results(report: str) -> dict[str, str]:
    return {line.split()[1].split("::")[1]: line.split()[0] for line in report.splitlines()
            if line.startswith(("PASSED ", "FAILED ", "ERROR "))}


def test_the_plugin_refuses_what_the_tier_must_not_do(tmp_path):
    report = run_probes(tmp_path, "-p", "tests.fast_tier")
    assert results(report) == {
        "test_connect": "FAILED", "test_bind": "FAILED", "test_process": "FAILED", "test_sleep": "FAILED",
        "test_trio": "ERROR", "test_counted": "PASSED", "test_z_count": "PASSED", "test_pure": "PASSED",
    }, report
    for reason in ("opens no socket (connect)", "opens no socket (bind)", "starts no process",
                   "sleeps for nothing (time.sleep)", "runs synchronous tests only"):
        assert f"NotInTheFastTier: the fast tier {reason}" in report, report
    assert "examples run: 10\n" in report, report


def test_without_the_plugin_the_probes_run_normally(tmp_path):
    report = run_probes(tmp_path)
    outcome = results(report)
    assert outcome.pop("test_connect") == "FAILED" and "NotInTheFastTier" not in report, report
    assert set(outcome.values()) == {"PASSED"}, report
    assert "examples run: 50\n" in report, report
