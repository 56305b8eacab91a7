"""`evse sim`: play the EV driver against a running simulator (adapters.sim_hardware).

    evse sim --socket run/sim.sock plug --evse 1
    evse sim --socket run/sim.sock ev-charge --evse 1 --power-w 11000
    evse sim --socket run/sim.sock token --id-token 04A2B3C4 --type ISO14443
    evse sim --socket run/sim.sock limit --evse 1 --amps 16 --source EMS
    evse sim --socket run/sim.sock state --json

One JSON request line goes to the control socket and its one reply line is printed.
Exit status: 0 the simulator accepted the command, 1 it refused it (the reason is printed),
2 the socket could not be reached (or did not answer).

The simulator validates every field; this client only builds the request from the options
given, so an option that does not belong to the command is reported by the simulator.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Any

import trio

__all__ = ["add_parser", "run_sim_command", "send_control_command", "control_command",
           "SIM_COMMANDS", "DEFAULT_TIMEOUT"]

SIM_COMMANDS = ("plug", "unplug", "ev_charge", "ev_pause", "token", "occupancy", "fault",
                "clear_fault", "limit", "state")
DEFAULT_TIMEOUT = 10.0
_MAX_REPLY = 16 * 1024 * 1024


def _encode(command: dict[str, Any]) -> bytes:
    return (json.dumps(command, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def _decode(line: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ConnectionError(f"the simulator sent an invalid reply ({e})") from None
    if not isinstance(reply, dict):
        raise ConnectionError("the simulator sent an invalid reply (not a JSON object)")
    return reply


async def send_control_command(path: str | os.PathLike[str], command: dict[str, Any]
                               ) -> dict[str, Any]:
    """Send one command to the control socket at `path` and return the decoded reply.
    Raises OSError (ConnectionError when the simulator closes without a valid reply).
    No timeout of its own: wrap it in trio.fail_after / move_on_after."""
    stream = await trio.open_unix_socket(os.fspath(path))
    async with stream:
        await stream.send_all(_encode(command))
        buf = bytearray()
        while b"\n" not in buf:
            data = await stream.receive_some(65536)
            if not data:
                raise ConnectionError("the simulator closed the connection without a reply")
            buf += data
            if len(buf) > _MAX_REPLY:
                raise ConnectionError("the simulator's reply is too long")
        return _decode(bytes(buf[: buf.index(b"\n")]))


def control_command(path: str | os.PathLike[str], command: dict[str, Any],
                    timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Blocking version of send_control_command (stdlib socket), for scripts and threads.
    Raises OSError: FileNotFoundError / ConnectionRefusedError when nobody listens,
    TimeoutError after `timeout` seconds, ConnectionError on a missing or invalid reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(os.fspath(path))
        sock.sendall(_encode(command))
        buf = bytearray()
        while b"\n" not in buf:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the simulator closed the connection without a reply")
            buf += data
            if len(buf) > _MAX_REPLY:
                raise ConnectionError("the simulator's reply is too long")
        return _decode(bytes(buf[: buf.index(b"\n")]))


# --- CLI ----------------------------------------------------------------------------------------
def _command_name(text: str) -> str:
    return text.replace("-", "_")


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "yes", "1", "on"):
        return True
    if t in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `sim` to the `evse` CLI's subparsers (the one entry bootstrap/cli.py imports);
    returns the new parser. The parsed namespace has func=run_sim_command."""
    p = subparsers.add_parser(
        "sim",
        help="send one command to a running hardware simulator",
        description="Play the EV driver: send one command to the simulator's control socket "
                    "and print its reply. Exit 0 accepted, 1 refused, 2 unreachable.",
        epilog="commands: plug/unplug --evse N [--connector N]; ev-charge --evse N --power-w W; "
               "ev-pause --evse N; token --id-token X [--type T] [--evse N]; "
               "occupancy --evse N --occupied true|false; fault --evse N --fault NAME; "
               "clear-fault --evse N; limit --evse N (0: the grid connection) [--amps A | --watts W] "
               "[--source EMS|Other|SO|CSO] (neither amps nor watts: the limit is removed); state",
    )
    p.add_argument("--socket", default="sim.sock", metavar="PATH",
                   help="the simulator's control socket (hardware.control_socket; "
                        "default: %(default)s)")
    p.add_argument("sim_cmd", metavar="command", type=_command_name, choices=SIM_COMMANDS,
                   help=", ".join(SIM_COMMANDS) + " (- or _ both work)")
    p.add_argument("--evse", type=int, metavar="N")
    p.add_argument("--connector", type=int, metavar="N")
    p.add_argument("--power-w", dest="power_w", type=float, metavar="W",
                   help="power the EV draws once the power path is closed")
    p.add_argument("--id-token", dest="id_token", metavar="X")
    p.add_argument("--type", dest="token_type", metavar="T",
                   help="IdTokenEnumType (default ISO14443)")
    p.add_argument("--occupied", type=_bool, metavar="true|false")
    p.add_argument("--fault", metavar="NAME")
    p.add_argument("--amps", type=float, metavar="A", help="limit: the external limit, A per phase")
    p.add_argument("--watts", type=float, metavar="W", help="limit: the external limit, W in total")
    p.add_argument("--source", metavar="S", help="limit: ChargingLimitSourceEnumType (default EMS)")
    p.add_argument("--json", action="store_true", help="print the exact JSON reply")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                   help="seconds to wait for the reply (default: %(default)s)")
    p.set_defaults(func=run_sim_command)
    return p


def build_command(args: argparse.Namespace) -> dict[str, Any]:
    """The request for the parsed options: only the options given."""
    command: dict[str, Any] = {"cmd": args.sim_cmd}
    for option, key in (("evse", "evse"), ("connector", "connector"), ("power_w", "power_w"),
                        ("id_token", "id_token"), ("token_type", "type"),
                        ("occupied", "occupied"), ("fault", "fault"), ("amps", "amps"),
                        ("watts", "watts"), ("source", "source")):
        value = getattr(args, option, None)
        if value is not None:
            command[key] = value
    return command


def _human(reply: dict[str, Any]) -> str:
    if "evses" in reply:           # state
        lines = [f"CSMS: {'connected' if reply.get('csms_connected') else 'not connected'}"]
        for e in reply["evses"]:
            power_path = "closed" if e.get("power_path_closed") else "open"
            lines.append(
                f"EVSE {e.get('evse')}: EV state {e.get('ev_state')}, power path {power_path}, "
                f"{e.get('power_w', 0.0):.0f} W, {e.get('energy_wh', 0.0):.1f} Wh, "
                f"transaction {e.get('transaction_id') or '-'}, fault {e.get('fault') or '-'}")
            for c in e.get("connectors", []):
                plugged = "plugged" if c.get("plugged") else "unplugged"
                lines.append(f"  connector {c.get('connector')}: "
                             f"{c.get('status') or 'unknown'} ({plugged})")
        return "\n".join(lines)
    event, fields = reply.get("event"), reply.get("fields")
    if isinstance(event, str):
        args = " ".join(f"{k}={v}" for k, v in fields.items()) if isinstance(fields, dict) else ""
        return f"ok: {event} {args}".rstrip()
    return "ok"


def run_sim_command(args: argparse.Namespace) -> int:
    """Send the command described by `args`; print the reply; return the exit status."""
    command = build_command(args)
    try:
        reply = control_command(args.socket, command, timeout=getattr(args, "timeout", None))
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else (str(e) or
                                                                           type(e).__name__)
        if isinstance(e, TimeoutError):
            reason = "no reply in time"
        print(f"evse sim: cannot reach the simulator at {args.socket} ({reason})",
              file=sys.stderr)
        return 2
    ok = reply.get("ok") is True
    if getattr(args, "json", False):
        print(json.dumps(reply, ensure_ascii=False))
    elif ok:
        print(_human(reply))
    else:
        print(f"error: {reply.get('error', 'refused')}", file=sys.stderr)
    return 0 if ok else 1
