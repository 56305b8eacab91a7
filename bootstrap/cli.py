"""The `evse` command line: run, status, certs (bootstrap/certs_cli.py), firmware status, logs
(bootstrap/inspect_cli.py), sim, demo."""
from __future__ import annotations

import argparse
import errno
import logging
import sys

import trio

from adapters.sqlite_storage import StorageError
from bootstrap import certs_cli
from bootstrap.config import PACKAGE_VERSION, ConfigError, load_config, log_level_option
from bootstrap.inspect_cli import add_parsers as add_inspect_parsers
from bootstrap.process import run_station, run_until_signal, setup_logging
from bootstrap.storage_errors import StartupError, explain, socket_in_use


EXIT_CRASH = 1      # an unexpected error; its traceback is in the log


def cmd_run(args: argparse.Namespace) -> int:
    try:
        level = log_level_option(args.log_level) if args.log_level is not None else None
        config = load_config(args.config)
    except (ConfigError, ValueError) as exc:
        print(f"evse: {exc}", file=sys.stderr)
        return 2
    setup_logging(level or config.log.level, format=config.log.format, frames=config.log.frames,
                  station_id=config.station.id)
    try:
        trio.run(run_until_signal, run_station, config)
    except BaseException as exc:
        known = _find(exc, (ConfigError, StorageError, StartupError)) or _socket_in_use(exc)
        if known is None:
            if not isinstance(exc, Exception) and not isinstance(exc, BaseExceptionGroup):
                raise                        # KeyboardInterrupt, SystemExit: as they are
            # through the log, so that the one redaction point sees the traceback too
            logging.getLogger("evse").critical("stopped by an unexpected error", exc_info=exc)
            return EXIT_CRASH
        if isinstance(known, StorageError):
            known = explain(known, config.storage.path)
        elif isinstance(known, OSError):
            known = socket_in_use(known)
        print(f"evse: {known}", file=sys.stderr)
        return 2 if isinstance(known, ConfigError) else known.exit_code
    return 0


def _socket_in_use(exc: BaseException) -> OSError | None:
    """A Unix socket of ours (control, status) that another station listens on."""
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE and exc.filename:
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _socket_in_use(inner)) is not None:
                return found
    return None


def _find(exc: BaseException, types: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first exception of `types` in `exc`, looking inside exception groups."""
    if isinstance(exc, types):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _find(inner, types)) is not None:
                return found
    return None


def cmd_demo(args: argparse.Namespace) -> int:
    """`evse demo`: a development tool (devtools/), loaded only when asked for."""
    from devtools.demo import main as demo_main

    return demo_main(args)


def main(argv: list[str] | None = None) -> int:
    # `evse sim` is a development tool (devtools/) that declares its own options.
    from bootstrap.cli_status import add_parser as add_status_parser
    from devtools.sim_cli import add_parser as add_sim_parser

    parser = argparse.ArgumentParser(prog="evse", description="OCPP 2.0.1 charging-station stack")
    parser.add_argument("--version", action="version", version=f"evse-stack {PACKAGE_VERSION}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the station")
    p.add_argument("--config", required=True, help="station TOML file")
    p.add_argument("--log-level", default=None,
                   help="override [log] level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    p.set_defaults(func=cmd_run)
    d = sub.add_parser("demo", help="dev CSMS + simulated station on loopback, until Ctrl-C "
                                    "(--hardware: an emulated board)")
    d.add_argument("--port", type=int, default=0, help="dev CSMS port (default: any free port)")
    d.add_argument("--heartbeat-interval", type=int, default=10)
    d.add_argument("--dir", default=".demo", help="where the demo keeps its database and socket")
    d.add_argument("--no-script", action="store_true", help="do not play the scripted session")
    d.add_argument("--hardware", choices=("openevse-rev1", "openevse-rev2"), default=None,
                   help="the real adapters on an emulated board revision (devices on pseudo-"
                        "terminals) instead of the simulator; ends after the session")
    d.set_defaults(func=cmd_demo)
    certs_cli.add_parser(sub)
    add_sim_parser(sub)
    add_status_parser(sub)
    add_inspect_parsers(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
