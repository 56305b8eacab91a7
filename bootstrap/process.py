"""Running the station as a process: logging to stderr, the clean stop on SIGTERM/SIGINT, and
the composed station. Shared by the `evse` command line and the development tools (`evse demo`),
which import it from here, not from the CLI."""
from __future__ import annotations

import logging
import signal

import trio

from bootstrap.logging_setup import setup_logging

__all__ = ["setup_logging", "run_until_signal", "run_station"]

log = logging.getLogger("evse")


async def run_until_signal(main, *args) -> None:
    """Run `main(*args)` until it returns or SIGTERM/SIGINT arrives, then stop cleanly."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            async def watch() -> None:
                async for signum in signals:
                    log.info("%s: stopping", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    return

            async def body() -> None:
                await main(*args)
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            nursery.start_soon(body)


async def run_station(config) -> None:
    """Compose the station for `config` and run it (until cancelled)."""
    from bootstrap.compose import compose
    from bootstrap.runtime import StationRuntime
    from bootstrap.status import serve_status, status_group
    from bootstrap.storage_errors import check_socket_free, hold_storage

    with hold_storage(config.storage.path):     # folder, lock, permissions: for the process's life
        if config.hardware.adapter == "sim":
            check_socket_free(config.hardware.control_socket)     # a second simulator: refused at once
        check_socket_free(config.status.socket)
        status_group(config)
        runtime: StationRuntime | None = None
        deployment = compose(config, lambda: runtime.snapshot() if runtime else {"csms_connected": False, "evses": {}})
        runtime = StationRuntime(config, deployment)
        async with trio.open_nursery() as nursery:
            async def station(task_status=trio.TASK_STATUS_IGNORED) -> None:
                await runtime.run(task_status=task_status)
                nursery.cancel_scope.cancel()

            await nursery.start(station)                       # storage open, first boot under way
            await nursery.start(serve_status, runtime)         # `evse status`
