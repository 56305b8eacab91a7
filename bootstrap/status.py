"""The station's local status, for installers and scripts on the board (`evse status`).

The running station serves it on a Unix stream socket (``[status] socket``, mode 0660, group
``[status] group``): a client connects and gets ONE JSON line, then the station closes the
connection. It reads nothing from the client, so it changes nothing (read-only by
construction). The same view gives the one-line summary of systemd's STATUS
(``CSMS connected; EVSE 1 Charging 7.2 kW; 0 queued``).

What it holds: the link (state, since when, why it went down), the registration, the security
profile, each EVSE with its connectors' statuses, faults, the running transaction (id, start,
energy, authorization) and the last meter reading; device problems (the device model's
``Problem`` / ``Tripped`` variables that are true), the messages queued for the CSMS, storage
trouble, versions.
"""
from __future__ import annotations

import contextlib
import grp
import json
import logging
import os
import socket
import stat
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

import trio

from bootstrap.config import PACKAGE_VERSION, Config, ConfigError

if TYPE_CHECKING:
    from domain.hardware_events import MeterReading


class StationRuntime(Protocol):
    """What the status reads of the running station (bootstrap.runtime.StationRuntime)."""

    config: Config
    status_board: Any
    station: Any
    boot_count: int
    storage: Any


log = logging.getLogger("evse.status")

SOCKET_MODE = 0o660
_PROBLEM_VARIABLES = ("Problem", "Tripped")


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class StatusBoard:
    """What the runtime tells the status besides the station itself: the link's changes and the
    last meter reading of each EVSE (kept by reference, nothing copied per sample)."""

    def __init__(self) -> None:
        self.link = "connecting"
        self.link_since = _utc_now()
        self.link_detail: str | None = None
        self.readings: dict[int, tuple[MeterReading, float]] = {}    # EVSE -> (reading, time.time())

    def link_up(self, url: str) -> None:
        self.link, self.link_since, self.link_detail = "connected", _utc_now(), url

    def link_down(self, reason: str) -> None:
        self.link, self.link_since, self.link_detail = "down", _utc_now(), reason


def station_status(runtime: StationRuntime, *, problems: bool = True) -> dict[str, Any]:
    """The whole status as a JSON-able dict (`problems` False: without the device problems,
    which take a walk over the device model; the summary line does not show them)."""
    config, board = runtime.config, runtime.status_board
    station = runtime.station
    out: dict[str, Any] = {
        "station": config.station.id,
        "vendor": config.station.vendor_name,
        "model": config.station.model,
        "firmware_version": config.station.firmware_version,
        "software_version": PACKAGE_VERSION,
        "hardware": config.hardware.adapter,
        "csms": {"url": config.csms.url, "security_profile": config.csms.security_profile,
                 "link": board.link, "since": board.link_since, "detail": board.link_detail,
                 "registration": None},
        "boot_count": runtime.boot_count,
        "evses": [],
        "device_problems": [],
        "queued": None,
        "storage": {"path": config.storage.path, "failing": runtime.storage.failing,
                    "kept_in_memory": runtime.storage.kept()},
    }
    if station is None:               # between boot cycles (a soft reboot)
        return out
    out["csms"]["registration"] = str(station.registration)
    out["queued"] = station.outbox.queued
    for evse in station.ctx.evses.values():
        reading = board.readings.get(evse.id)
        out["evses"].append({
            "id": evse.id,
            "connectors": {str(c): conn.status(evse.fault) for c, conn in evse.connectors.items()},
            "faults": list(evse.faults),
            "transaction": evse.fsm.transaction_view,
            "meter": None if reading is None else {
                "at": datetime.fromtimestamp(reading[1], timezone.utc).isoformat(timespec="seconds"),
                "energy_wh": reading[0].energy_wh, "power_w": reading[0].power_w,
                "current_a": list(reading[0].current_a), "voltage_v": list(reading[0].voltage_v)},
        })
    dm = station.ctx.dm
    for d in (dm.definitions() if problems else ()):
        ref = d.ref
        if ref.variable in _PROBLEM_VARIABLES and d.data_type == "boolean" and dm.value(ref) == "true":
            out["device_problems"].append(str(ref))
    return out


def summary(status: dict[str, Any]) -> str:
    """One line: ``CSMS connected; EVSE 1 Charging 7.2 kW; 0 queued``."""
    link = status["csms"]["link"]
    parts = ["CSMS connected" if link == "connected" else
             f"CSMS link down ({status['csms']['detail']})" if link == "down" else f"CSMS {link}"]
    for evse in status["evses"]:
        states = sorted(set(evse["connectors"].values()))
        text = f"EVSE {evse['id']} {'/'.join(states)}"
        if evse["faults"]:
            text += f" ({', '.join(evse['faults'])})"
        meter = evse["meter"]
        if evse["transaction"] is not None and meter is not None:
            text += f" {meter['power_w'] / 1000:.1f} kW"
        parts.append(text)
    if status["queued"] is not None:
        parts.append(f"{status['queued']} queued")
    if status["storage"]["failing"]:
        parts.append("storage failing")
    return "; ".join(parts)


def format_text(status: dict[str, Any]) -> str:
    """The status for a person, a few lines."""
    c = status["csms"]
    lines = [
        f"station {status['station']} ({status['vendor']} {status['model']}, firmware "
        f"{status['firmware_version']}, evse-stack {status['software_version']}, {status['hardware']})",
        f"CSMS {c['url']} (security profile {c['security_profile']}): {c['link']} since {c['since']}"
        + (f" ({c['detail']})" if c["detail"] and c["link"] != "connected" else "")
        + (f"; registration {c['registration']}" if c["registration"] else ""),
    ]
    for e in status["evses"]:
        conns = ", ".join(f"connector {k} {v}" for k, v in e["connectors"].items())
        lines.append(f"EVSE {e['id']}: {conns}" + (f"; faults: {', '.join(e['faults'])}" if e["faults"] else ""))
        tx = e["transaction"]
        if tx is not None:
            energy = "?" if tx["energy_wh"] is None else f"{tx['energy_wh']:.0f} Wh"
            lines.append(f"  transaction {tx['id']} since {tx['started'] or '?'}, {energy}, "
                         f"authorized by {tx['id_token'] or '-'}")
        m = e["meter"]
        if m is not None:
            lines.append(f"  meter at {m['at']}: {m['energy_wh']:.0f} Wh, {m['power_w'] / 1000:.1f} kW")
    lines.append(f"device problems: {', '.join(status['device_problems']) or 'none'}")
    lines.append(f"queued for the CSMS: {status['queued'] if status['queued'] is not None else '?'}")
    s = status["storage"]
    lines.append(f"storage {s['path']}: " + (f"cannot write ({s['failing']}), {s['kept_in_memory']} "
                                             f"change(s) kept in memory" if s["failing"] else "ok"))
    return "\n".join(lines)


# --- the socket ------------------------------------------------------------------------------
def status_group(config: Config) -> int | None:
    """The gid of ``[status] group`` (None: the process's own); ConfigError naming the key."""
    name = config.status.group
    if name is None:
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ConfigError(config.source, f"no such group {name!r}", key="status.group") from None


async def serve_status(runtime: StationRuntime, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve the status socket until cancelled (removed at the end, if still ours)."""
    config = runtime.config
    path = config.status.socket
    gid = status_group(config)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)                       # stale: bootstrap.storage_errors checked nobody listens
    # bound by the stdlib socket: trio binds an AF_UNIX path in a worker thread, which would
    # end 10 s later (CPU of an idle station)
    plain = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock = trio.socket.from_stdlib_socket(plain)
    try:
        plain.bind(path)
        os.chmod(path, SOCKET_MODE)
        if gid is not None:
            os.chown(path, -1, gid)
        sock.listen(16)
        identity = os.stat(path)
    except BaseException:
        sock.close()
        raise
    log.info("status socket listening on %s", path)
    listener = trio.SocketListener(sock)
    try:
        task_status.started()
        async with trio.open_nursery() as nursery:
            while True:
                stream = await listener.accept()
                nursery.start_soon(_answer, runtime, stream)
    finally:
        sock.close()
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if (st.st_dev, st.st_ino) == (identity.st_dev, identity.st_ino):
                os.unlink(path)


async def _answer(runtime: StationRuntime, stream: trio.SocketStream) -> None:
    async with stream:
        try:
            body = json.dumps(station_status(runtime), ensure_ascii=False) + "\n"
            with trio.move_on_after(5):
                await stream.send_all(body.encode())
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


def read_status(path: str, timeout: float = 5.0) -> dict[str, Any]:
    """A running station's status from its socket (blocking). OSError when nobody answers."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        buf = bytearray()
        while data := s.recv(65536):
            buf += data
    try:
        return json.loads(buf)
    except ValueError as exc:
        raise ConnectionError(f"{path}: not a status answer ({exc})") from None
