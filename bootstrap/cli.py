"""The `evse` command line: run, sim, demo, firmware status, logs (bootstrap/inspect_cli.py)."""
from __future__ import annotations

import argparse
import sys

import trio

from adapters.sqlite_storage import StorageError
from bootstrap.config import ConfigError, load_config
from bootstrap.inspect_cli import add_parsers as add_inspect_parsers
from bootstrap.process import run_station, run_until_signal, setup_logging


def cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"evse: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.log_level or config.log.level)
    try:
        trio.run(run_until_signal, run_station, config)
    except BaseException as exc:
        known = _find(exc, (ConfigError, StorageError))
        if known is None:
            raise
        print(f"evse: {known}", file=sys.stderr)
        return 2 if isinstance(known, ConfigError) else 1
    return 0


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
    from devtools.sim_cli import add_parser as add_sim_parser

    parser = argparse.ArgumentParser(prog="evse", description="OCPP 2.0.1 charging-station stack")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the station")
    p.add_argument("--config", required=True, help="station TOML file")
    p.add_argument("--log-level", default=None, help="override [log] level")
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
    add_sim_parser(sub)
    add_inspect_parsers(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
