"""Suite-wide: a test that hangs fails instead of hanging CI (pytest-timeout; the limit is
`timeout` in pyproject.toml, method signal; `@pytest.mark.timeout(s)` for one test).

pytest-timeout's signal handler raises wherever the test happens to be. In a trio test that
is usually inside trio's event loop, which leaves the run half-open: the test fails, and so
does every later trio test of the session ("Attempted to call run() from inside a run()").
So every trio test runs inside a cancel scope (pytest-trio's `run=` marker argument): on
timeout the signal handler cancels it through the run's TrioToken (safe from a signal
handler), the test unwinds (nurseries, sockets, processes closed as on any cancellation)
and fails with pytest-timeout's message. A test still running after a grace period (a loop
without checkpoints) gets pytest-timeout's own handler (stacks dumped, failure raised).
"""
from __future__ import annotations

import functools
import signal

import pytest
import trio
import trio.testing
from pytest_timeout import PYTEST_FAILURE_MESSAGE

GRACE_S = 10.0          # after the cancellation, before pytest-timeout's own handler


class _TrioTest:
    """The trio test running now: its cancel scope and token; the timeout once it hit."""

    scope: trio.CancelScope | None = None
    token: trio.lowlevel.TrioToken | None = None
    timed_out: float | None = None
    unwound: BaseException | None = None    # what the cancellation raised (shows where it hung)


def run_cancellable(async_fn, *args, mock_clock: bool = False, **run_kwargs):
    """trio.run for pytest-trio, with the test in a cancel scope the timeout can cancel;
    `mock_clock`: under trio.testing.MockClock(autojump_threshold=0) unless the test asks
    for a clock fixture of its own."""
    if mock_clock and run_kwargs.get("clock") is None:
        run_kwargs["clock"] = trio.testing.MockClock(autojump_threshold=0)

    async def main():
        with trio.CancelScope() as scope:
            _TrioTest.scope, _TrioTest.token = scope, trio.lowlevel.current_trio_token()
            try:
                return await async_fn(*args)
            except BaseException as exc:
                if _TrioTest.timed_out is not None:
                    _TrioTest.unwound = exc
                raise
            finally:
                _TrioTest.scope = _TrioTest.token = None

    try:
        return trio.run(main, **run_kwargs)
    finally:
        timeout, _TrioTest.timed_out = _TrioTest.timed_out, None
        cause, _TrioTest.unwound = _TrioTest.unwound, None
        if timeout is not None:
            raise pytest.fail.Exception(PYTEST_FAILURE_MESSAGE % timeout) from cause


def pytest_configure(config):
    config.addinivalue_line("markers", "mock_clock: run the trio test under trio.testing.MockClock("
                                       "autojump_threshold=0) (tests/memory_link.py: the station without sockets)")
    config.addinivalue_line("markers", "real_clock: a conformance test that keeps the real clock, "
                                       "loopback websockets (tests/conformance/conftest.py)")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """After pytest-trio has marked the async tests (trio_mode: `trio(run=trio.run)`): run
    each with run_cancellable (pytest-trio takes the first `run=` it finds), under the
    MockClock when marked mock_clock."""
    for item in items:
        if item.get_closest_marker("trio") is not None:
            run = run_cancellable
            if item.get_closest_marker("mock_clock") is not None:
                run = functools.partial(run_cancellable, mock_clock=True)
            item.add_marker(pytest.mark.trio(run=run), append=False)


@pytest.hookimpl(wrapper=True)
def pytest_timeout_set_timer(item, settings):
    """Around pytest-timeout's SIGALRM handler: cancel a running trio test first."""
    result = yield
    handler = signal.getsignal(signal.SIGALRM)
    if settings.method != "signal" or not callable(handler):
        return result

    def on_timeout(signum, frame):
        if _TrioTest.scope is None or _TrioTest.timed_out is not None:
            handler(signum, frame)          # not in a trio test, or the cancellation did not end it
            return
        _TrioTest.timed_out = settings.timeout
        _TrioTest.token.run_sync_soon(_TrioTest.scope.cancel)
        signal.setitimer(signal.ITIMER_REAL, min(GRACE_S, settings.timeout))

    signal.signal(signal.SIGALRM, on_timeout)
    return result
