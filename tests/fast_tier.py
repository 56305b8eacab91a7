"""The fast test tier (`make test-fast`, which loads this plugin: `pytest -p tests.fast_tier`).

Its tests are synchronous and open no socket, start no process and sleep for nothing: a test
that tries fails at once, naming what it did, so the tier stays well under 30 s as it grows.
Property tests (hypothesis) run a fifth of the examples their settings ask for (at least
MIN_EXAMPLES); `make test` runs them all. (trio's wakeup socketpair is not a network socket
and is left alone; ptys, SQLite files and package data are allowed.)
"""
from __future__ import annotations

import functools
import socket
import subprocess
import time

import pytest
from hypothesis import settings

EXAMPLES_SHARE = 5
MIN_EXAMPLES = 3


class NotInTheFastTier(RuntimeError):
    """A test of the fast tier opened a socket, started a process or slept."""


def _forbid(what: str):
    def forbidden(*args, **kwargs):
        raise NotInTheFastTier(f"the fast tier {what}: this test belongs in `make test` only")
    return forbidden


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config) -> None:
    socket.socket.connect = _forbid("opens no socket (connect)")
    socket.socket.connect_ex = _forbid("opens no socket (connect)")
    socket.socket.bind = _forbid("opens no socket (bind)")
    subprocess.Popen.__init__ = _forbid("starts no process")
    time.sleep = _forbid("sleeps for nothing (time.sleep)")
    _fewer_examples()


def _fewer_examples() -> None:
    """Every hypothesis `settings(max_examples=n)` made from now on (the test modules are not
    imported yet; some build theirs when they run) asks for n / EXAMPLES_SHARE; so does the
    default profile."""
    original = settings.__init__

    @functools.wraps(original)
    def init(self, parent=None, **kwargs):
        n = kwargs.get("max_examples")
        if isinstance(n, int) and not isinstance(n, bool):
            kwargs["max_examples"] = _share(n)
        original(self, parent, **kwargs)

    settings.__init__ = init
    settings.register_profile("fast-tier", max_examples=_share(settings.default.max_examples))
    settings.load_profile("fast-tier")


def _share(n: int) -> int:
    return max(min(n, MIN_EXAMPLES), n // EXAMPLES_SHARE)


def pytest_runtest_setup(item) -> None:
    if item.get_closest_marker("trio") is not None:
        raise NotInTheFastTier("the fast tier runs synchronous tests only (a trio test may wait "
                               "on real time): this test belongs in `make test` only")
