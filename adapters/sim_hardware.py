"""Adapter: a simulated charger (EvseController + Meter ports) driven over a control socket.

The simulator has no hardware: a person, a test or the demo plays the EV driver through a
Unix stream socket speaking newline-delimited JSON, one reply line per request line::

    -> {"cmd": "plug", "evse": 1}
    <- {"ok": true, "event": "CablePlugged", "fields": {"evse": 1, "connector": 1}}
    -> {"cmd": "ev_charge", "evse": 1, "power_w": "lots"}
    <- {"ok": false, "error": "power_w: expected a number, got \\"lots\\""}

Every accepted command changes the simulated hardware (or, for ``limit``, passes on an external
limit: ``{"cmd": "limit", "evse": 1, "amps": 16, "source": "EMS"}``, ``watts`` instead of ``amps``,
neither to remove it; evse 0 is the grid connection) and pushes exactly one hardware event
(ports.hardware) to the station; a rejected one changes nothing and pushes nothing.
:meth:`SimHardware.command` takes the same request in process; with ``control_socket`` None
there is no socket at all (tests under trio's MockClock: binding a Unix socket runs in a worker
thread, and an autojumping mock clock jumps meanwhile).

The simulated meter integrates the power the EV draws over ``trio.current_time()`` (so a
``trio.testing.MockClock`` makes it deterministic). The EV draws power only while a connector
is plugged, the EV requests energy (``ev_charge``), the power path is closed and the EVSE is
not faulted; the draw is capped by the offered current (3 phases x 230 V) once the station
has set one. Electrical model: 3-phase, 230 V per phase, current per phase = P / (3 x 230).
"""
from __future__ import annotations

import dataclasses
import errno
import json
import logging
import math
import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from ports.hardware import (
    CablePlugged,
    CableUnplugged,
    EnergyPaused,
    EnergyRequested,
    ExternalLimitChanged,
    FaultCleared,
    FaultRaised,
    HardwareEvent,
    MeterReading,
    OccupancyChanged,
    TokenPresented,
)

__all__ = ["SimHardware", "MAX_LINE", "ID_TOKEN_TYPES", "LIMIT_SOURCES", "COMMANDS", "PHASE_VOLTAGE"]

logger = logging.getLogger(__name__)

MAX_LINE = 64 * 1024            # longest request line (bytes, without the newline)
_MAX_DISCARD = 16 * MAX_LINE    # an over-long line longer than this drops the connection
PHASE_VOLTAGE = 230.0
PHASES = 3
MAX_POWER_W = 1_000_000.0
ID_TOKEN_MAX = 36               # IdTokenType.idToken: string[36]
FAULT_MAX = 50
LIMIT_SOURCES = ("EMS", "Other", "SO", "CSO")   # OCPP 2.0.1 ChargingLimitSourceEnumType
MAX_CURRENT_A = 1000.0
ID_TOKEN_TYPES = ("Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local",
                  "MacAddress", "NoAuthorization")    # OCPP 2.0.1 IdTokenEnumType

StationView = Callable[[], dict]


class _Reject(Exception):
    """A request the simulator refuses; str() is the one-line error for the client."""


# --- simulated hardware state -----------------------------------------------------------------
@dataclass
class _Evse:
    plugged: dict[int, bool]                 # connector id -> cable plugged
    requested_w: float | None = None         # what the EV asks for (state C); None: not asking
    power_path_closed: bool = False
    offered_current_a: float | None = None   # None: the station never set one (no cap)
    fault: str | None = None
    occupied: bool = False
    energy_wh: float = 0.0
    since: float | None = None               # trio time energy_wh is integrated up to

    def plugged_connector(self) -> int | None:
        return next((c for c, p in self.plugged.items() if p), None)

    def power_w(self) -> float:
        if (self.plugged_connector() is None or self.requested_w is None
                or not self.power_path_closed or self.fault is not None):
            return 0.0
        power = self.requested_w
        if self.offered_current_a is not None:
            power = min(power, self.offered_current_a * PHASES * PHASE_VOLTAGE)
        return power

    def ev_state(self) -> str:
        if self.plugged_connector() is None:
            return "A"
        return "C" if self.requested_w is not None else "B"

    def integrate(self) -> None:
        """Bring energy_wh up to now at the power drawn since the last change."""
        now = trio.current_time()
        if self.since is not None and now > self.since:
            self.energy_wh += self.power_w() * (now - self.since) / 3600.0
        self.since = now


# --- request validation -----------------------------------------------------------------------
def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    return text if len(text) <= 42 else text[:38] + "..."


def _as_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Reject(f"{name}: expected an integer, got {_show(value)}")
    return value


def _as_str(name: str, value: Any, lo: int, hi: int) -> str:
    if not isinstance(value, str):
        raise _Reject(f"{name}: expected a string, got {_show(value)}")
    if not lo <= len(value) <= hi:
        raise _Reject(f"{name}: expected {lo}..{hi} characters, got {len(value)}")
    return value


@dataclass(frozen=True)
class _Field:
    required: bool = True
    default: Any = None


# cmd -> accepted fields (besides "cmd")
COMMANDS: dict[str, dict[str, _Field]] = {
    "plug": {"evse": _Field(), "connector": _Field(False, 1)},
    "unplug": {"evse": _Field(), "connector": _Field(False, 1)},
    "ev_charge": {"evse": _Field(), "power_w": _Field()},
    "ev_pause": {"evse": _Field()},
    "token": {"id_token": _Field(), "type": _Field(False, "ISO14443"), "evse": _Field(False)},
    "occupancy": {"evse": _Field(), "occupied": _Field()},
    "fault": {"evse": _Field(), "fault": _Field()},
    "clear_fault": {"evse": _Field()},
    "limit": {"evse": _Field(), "amps": _Field(False), "watts": _Field(False), "source": _Field(False, "EMS")},
    "state": {},
}


def _parse_line(line: bytes) -> dict[str, Any]:
    """Bytes of one request line -> JSON object, or _Reject."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Reject(f"request: not UTF-8 (byte {e.start})") from None

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise _Reject(f"{k}: given twice")
            out[k] = v
        return out

    if not text.strip():
        raise _Reject("request: empty line, expected a JSON object")
    try:
        obj = json.loads(text, parse_constant=no_constants, object_pairs_hook=no_duplicates)
    except _Reject:
        raise
    except RecursionError:
        raise _Reject("request: invalid JSON (nested too deeply)") from None
    except ValueError as e:
        raise _Reject(f"request: invalid JSON ({str(e).splitlines()[0]})") from None
    if not isinstance(obj, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(obj), "a number")
        raise _Reject(f"request: expected a JSON object, got {kind}")
    return obj


# --- the adapter ------------------------------------------------------------------------------
class SimHardware:
    """Simulated charger: EvseController + Meter + System ports, plus the control socket."""

    def __init__(self, evse_connectors: list[int], control_socket: str | None,
                 station_view: StationView) -> None:
        if not evse_connectors or any(
                not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in evse_connectors):
            raise ValueError(f"evse_connectors must be a non-empty list of counts >= 1, "
                             f"got {evse_connectors!r}")
        self._evses: dict[int, _Evse] = {
            i: _Evse(plugged={c: False for c in range(1, n + 1)})
            for i, n in enumerate(evse_connectors, start=1)
        }
        # the control socket's path, read when run() starts; None: no socket, command() only
        self.control_socket = None if control_socket is None else os.fspath(control_socket)
        self._station_view = station_view
        self._events: trio.MemorySendChannel[HardwareEvent] | None = None
        self._lock = trio.Lock()        # one command at a time: state and events stay in order

    # -- ports.hardware.EvseController ---------------------------------------------------------
    async def run(
        self,
        events: trio.MemorySendChannel[HardwareEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve the control socket until cancelled; accepted commands go to `events`.
        Without a control socket: until cancelled, commands through command()."""
        self._events = events
        path = self.control_socket
        if path is None:
            async with self._lock:
                for event in self._present_state():
                    await events.send(event)
            task_status.started()
            await trio.sleep_forever()
        listener, identity = await self._listen(path)
        try:
            async with trio.open_nursery() as nursery:
                async with self._lock:
                    for event in self._present_state():
                        await events.send(event)
                nursery.start_soon(self._serve, listener, nursery)
                task_status.started()
        finally:
            listener.socket.close()
            self._remove_socket(path, identity)

    def _present_state(self) -> list[HardwareEvent]:
        """Events that bring a (re)started station up to date with the simulated hardware:
        after a soft reboot the EV may still be plugged in, asking for energy, faulted."""
        out: list[HardwareEvent] = []
        for evse_id, e in self._evses.items():
            if e.occupied:
                out.append(OccupancyChanged(evse_id, True))
            for connector, plugged in e.plugged.items():
                if plugged:
                    out.append(CablePlugged(evse_id, connector))
            if e.requested_w is not None:
                out.append(EnergyRequested(evse_id, e.requested_w))
            if e.fault is not None:
                out.append(FaultRaised(evse_id, e.fault))
            e.integrate()
            e.power_path_closed = False      # the station decides again after its reboot
        return out

    async def set_power_path(self, evse: int, closed: bool) -> None:
        e = self._evse(evse)
        e.integrate()
        e.power_path_closed = bool(closed)
        await trio.lowlevel.checkpoint()

    async def set_offered_current(self, evse: int, amps: float) -> None:
        if isinstance(amps, bool) or not isinstance(amps, (int, float)) \
                or not math.isfinite(amps) or amps < 0:
            raise ValueError(f"offered current must be a finite number >= 0, got {amps!r}")
        e = self._evse(evse)
        e.integrate()
        e.offered_current_a = float(amps)
        await trio.lowlevel.checkpoint()

    async def unlock_connector(self, evse: int, connector: int) -> bool:
        e = self._evse(evse)
        if connector not in e.plugged:
            raise ValueError(f"evse {evse} has no connector {connector}")
        await trio.lowlevel.checkpoint()
        return True

    # -- the control requests, in process --------------------------------------------------------
    async def command(self, request: dict[str, Any]) -> dict[str, Any]:
        """One control request handled as if it came over the control socket (the same JSON
        line, the same validation); returns the reply object. ValueError when `request`
        cannot be written as JSON (as the `evse sim` client refuses it)."""
        line = json.dumps(request, ensure_ascii=False, allow_nan=False).encode("utf-8")
        return json.loads(await self._handle_line(line))

    # -- ports.system.System ----------------------------------------------------------------------
    async def reboot(self, reason: str) -> bool:
        """The simulator's reboot is a soft one: the station restarts in this process (the
        simulated EV stays as it is, as a real one would while the board reboots)."""
        await trio.lowlevel.checkpoint()
        return True

    # -- ports.hardware.Meter --------------------------------------------------------------------
    component = "ControlMetering"

    async def read(self, evse: int) -> MeterReading:
        e = self._evse(evse)
        e.integrate()
        power = e.power_w()
        amps = power / (PHASES * PHASE_VOLTAGE)
        await trio.lowlevel.checkpoint()
        return MeterReading(
            energy_wh=e.energy_wh,
            power_w=power,
            current_a=(amps,) * PHASES,
            voltage_v=(PHASE_VOLTAGE,) * PHASES,
        )

    # -- internals -------------------------------------------------------------------------------
    def _evse(self, evse: int) -> _Evse:
        try:
            return self._evses[evse]
        except (KeyError, TypeError):
            raise ValueError(f"no evse {evse!r} (1..{len(self._evses)})") from None

    async def _listen(self, path: str) -> tuple[trio.SocketListener, tuple[int, int]]:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(st.st_mode):
                raise FileExistsError(errno.EEXIST, "exists and is not a socket", path)
            try:
                probe = await trio.open_unix_socket(path)
            except OSError:                     # nobody listening: a stale socket file
                os.unlink(path)
            else:
                await probe.aclose()
                raise OSError(errno.EADDRINUSE, "another simulator is listening there", path)
        # bound by the stdlib socket: trio binds an AF_UNIX path in a worker thread, which would
        # end 10 s later (CPU of an idle station)
        plain = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock = trio.socket.from_stdlib_socket(plain)
        try:
            plain.bind(path)
            sock.listen(64)
            st = os.stat(path)
        except BaseException:
            sock.close()
            raise
        logger.info("simulator control socket listening on %s", path)
        return trio.SocketListener(sock), (st.st_dev, st.st_ino)

    def _remove_socket(self, path: str, identity: tuple[int, int]) -> None:
        try:
            st = os.lstat(path)
            if (st.st_dev, st.st_ino) == identity:      # still ours: not replaced meanwhile
                os.unlink(path)
        except OSError:
            pass

    async def _serve(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        await trio.serve_listeners(self._client, [listener], handler_nursery=nursery)

    async def _client(self, stream: trio.SocketStream) -> None:
        """One client connection: read lines, answer each with one line."""
        buf = bytearray()
        discarding = 0           # > 0: inside an over-long line, bytes dropped so far
        try:
            async with stream:
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        return          # EOF; an unfinished line is simply dropped
                    buf += data
                    while True:
                        nl = buf.find(b"\n")
                        if nl < 0:
                            break
                        line = bytes(buf[:nl])
                        del buf[: nl + 1]
                        if discarding:          # the rest of an over-long line
                            discarding = 0
                            continue
                        reply = await self._handle_line(line)
                        await stream.send_all(reply)
                    if len(buf) > MAX_LINE:
                        if not discarding:
                            await stream.send_all(self._encode(
                                {"ok": False, "error": f"request: line longer than "
                                                       f"{MAX_LINE} bytes"}))
                        discarding += len(buf)
                        buf.clear()
                        if discarding > _MAX_DISCARD:
                            return      # it keeps streaming: drop the connection
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass                        # the client went away

    @staticmethod
    def _encode(reply: dict[str, Any]) -> bytes:
        return (json.dumps(reply, ensure_ascii=False) + "\n").encode("utf-8")

    async def _handle_line(self, line: bytes) -> bytes:
        if len(line) > MAX_LINE:
            reply: dict[str, Any] = {"ok": False,
                                     "error": f"request: line longer than {MAX_LINE} bytes"}
        else:
            try:
                reply = await self._handle(_parse_line(line.rstrip(b"\r")))
            except _Reject as e:
                reply = {"ok": False, "error": str(e)}
            except Exception as e:     # a bug must not take the simulator down
                logger.exception("simulator command failed")
                reply = {"ok": False, "error": f"request: internal error ({type(e).__name__})"}
        return self._encode(reply)

    async def _handle(self, req: dict[str, Any]) -> dict[str, Any]:
        if "cmd" not in req:
            raise _Reject("cmd: missing")
        cmd = req["cmd"]
        if not isinstance(cmd, str):
            raise _Reject(f"cmd: expected a string, got {_show(cmd)}")
        if cmd not in COMMANDS:
            raise _Reject(f"cmd: unknown command {_show(cmd)} "
                          f"(known: {', '.join(COMMANDS)})")
        spec = COMMANDS[cmd]
        for name in req:
            if name != "cmd" and name not in spec:
                raise _Reject(f"{name}: unknown field for {cmd}")
        args: dict[str, Any] = {}
        for name, f in spec.items():
            if name in req:
                args[name] = req[name]
            elif f.required:
                raise _Reject(f"{name}: missing")
            else:
                args[name] = f.default
        if cmd == "state":
            return self._state()
        async with self._lock:
            event, apply = self._check(cmd, args)
            if self._events is None:
                raise _Reject("request: the simulator is not running")
            apply()
            try:
                await self._events.send(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise _Reject("request: the station no longer takes hardware events") from None
        return {"ok": True, "event": type(event).__name__, "fields": _event_fields(event)}

    def _get_evse(self, value: Any, name: str = "evse") -> tuple[int, _Evse]:
        evse = _as_int(name, value)
        if evse not in self._evses:
            raise _Reject(f"{name}: expected 1..{len(self._evses)}, got {evse}")
        return evse, self._evses[evse]

    def _check(self, cmd: str, a: dict[str, Any]) -> tuple[HardwareEvent, Callable[[], None]]:
        """Validate one command against the current state; return (event, state change).
        Nothing is changed here."""
        if cmd == "token":
            id_token = _as_str("id_token", a["id_token"], 1, ID_TOKEN_MAX)
            kind = a["type"]
            if not isinstance(kind, str) or kind not in ID_TOKEN_TYPES:
                raise _Reject(f"type: expected one of {', '.join(ID_TOKEN_TYPES)}, "
                              f"got {_show(kind)}")
            evse = None if a["evse"] is None else self._get_evse(a["evse"])[0]
            return TokenPresented(id_token=id_token, type=kind, evse=evse), lambda: None

        if cmd == "limit":
            return self._limit(a), lambda: None

        evse, e = self._get_evse(a["evse"])

        if cmd in ("plug", "unplug"):
            connector = _as_int("connector", a["connector"])
            if connector not in e.plugged:
                raise _Reject(f"connector: evse {evse} has connectors 1..{len(e.plugged)}, "
                              f"got {connector}")
            in_use = e.plugged_connector()
            if cmd == "plug":
                if in_use == connector:
                    raise _Reject(f"connector: evse {evse} connector {connector} is "
                                  f"already plugged")
                if in_use is not None:
                    raise _Reject(f"connector: evse {evse} already has connector {in_use} "
                                  f"plugged (one EV per EVSE)")

                def plug() -> None:
                    e.integrate()
                    e.plugged[connector] = True
                return CablePlugged(evse=evse, connector=connector), plug
            if in_use != connector:
                raise _Reject(f"connector: evse {evse} connector {connector} is not plugged")

            def unplug() -> None:
                e.integrate()
                e.plugged[connector] = False
                e.requested_w = None            # the EV is gone: it draws nothing
            return CableUnplugged(evse=evse, connector=connector), unplug

        if cmd == "ev_charge":
            power = a["power_w"]
            if isinstance(power, bool) or not isinstance(power, (int, float)):
                raise _Reject(f"power_w: expected a number, got {_show(power)}")
            if not math.isfinite(power) or not 0 <= power <= MAX_POWER_W:
                raise _Reject(f"power_w: expected 0..{MAX_POWER_W:.0f} W, got {_show(power)}")
            if e.plugged_connector() is None:
                raise _Reject(f"evse: no EV plugged in on evse {evse}")
            power = float(power)

            def request() -> None:
                e.integrate()
                e.requested_w = power
            return EnergyRequested(evse=evse, power_w=power), request

        if cmd == "ev_pause":
            if e.plugged_connector() is None:
                raise _Reject(f"evse: no EV plugged in on evse {evse}")
            if e.requested_w is None:
                raise _Reject(f"evse: the EV on evse {evse} is not requesting energy")

            def pause() -> None:
                e.integrate()
                e.requested_w = None
            return EnergyPaused(evse=evse), pause

        if cmd == "occupancy":
            occupied = a["occupied"]
            if not isinstance(occupied, bool):
                raise _Reject(f"occupied: expected true or false, got {_show(occupied)}")

            def occupy() -> None:
                e.occupied = occupied
            return OccupancyChanged(evse=evse, occupied=occupied), occupy

        if cmd == "fault":
            fault = _as_str("fault", a["fault"], 1, FAULT_MAX)

            def raise_fault() -> None:
                e.integrate()
                e.fault = fault
            return FaultRaised(evse=evse, fault=fault), raise_fault

        assert cmd == "clear_fault", cmd
        if e.fault is None:
            raise _Reject(f"evse: evse {evse} has no fault")

        def clear() -> None:
            e.integrate()
            e.fault = None
        return FaultCleared(evse=evse), clear

    def _limit(self, a: dict[str, Any]) -> ExternalLimitChanged:
        """`limit`: an external limit (energy manager, grid signal) on an EVSE (0: the grid
        connection) from `source`; `amps` (per phase) or `watts` (total), neither or null: that
        source's limit is gone. The station decides what it does with it (K11-K13)."""
        evse = _as_int("evse", a["evse"])
        if evse != 0 and evse not in self._evses:
            raise _Reject(f"evse: expected 0..{len(self._evses)}, got {evse}")
        values: dict[str, float | None] = {}
        for name, top in (("amps", MAX_CURRENT_A), ("watts", MAX_POWER_W)):
            value = a[name]
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise _Reject(f"{name}: expected a number or null, got {_show(value)}")
                if not math.isfinite(value) or not 0 <= value <= top:
                    raise _Reject(f"{name}: expected 0..{top:.0f}, got {_show(value)}")
                value = float(value)
            values[name] = value
        if values["amps"] is not None and values["watts"] is not None:
            raise _Reject("watts: give amps or watts, not both")
        source = a["source"]
        if not isinstance(source, str) or source not in LIMIT_SOURCES:
            raise _Reject(f"source: expected one of {', '.join(LIMIT_SOURCES)}, got {_show(source)}")
        return ExternalLimitChanged(evse, amps=values["amps"], watts=values["watts"], source=source)

    def _state(self) -> dict[str, Any]:
        try:
            view = self._station_view() or {}
            if not isinstance(view, dict):
                raise TypeError(f"station view returned {type(view).__name__}")
            views = view.get("evses") or {}
        except Exception as e:
            logger.exception("station view failed")
            raise _Reject(f"state: station view failed ({type(e).__name__}: {e})") from None

        def lookup(mapping: Any, key: int) -> Any:
            if not isinstance(mapping, dict):
                return None
            return mapping.get(key, mapping.get(str(key)))

        evses = []
        for evse, e in self._evses.items():
            e.integrate()
            ev_view = lookup(views, evse) or {}
            statuses = ev_view.get("connectors") if isinstance(ev_view, dict) else None
            evses.append({
                "evse": evse,
                "connectors": [
                    {"connector": c, "status": lookup(statuses, c), "plugged": plugged}
                    for c, plugged in e.plugged.items()
                ],
                "power_path_closed": e.power_path_closed,
                "ev_state": e.ev_state(),
                "power_w": e.power_w(),
                "energy_wh": e.energy_wh,
                "transaction_id": None,
                "fault": e.fault,
                "occupied": e.occupied,
                "offered_current_a": e.offered_current_a,
                "requested_power_w": e.requested_w,
                # what the station says of this EVSE (transaction_id, authorized, ...)
                **({k: v for k, v in ev_view.items() if k != "connectors"} if isinstance(ev_view, dict) else {}),
            })
        return {"ok": True, "csms_connected": bool(view.get("csms_connected", False)),
                "evses": evses}


def _event_fields(event: HardwareEvent) -> dict[str, Any]:
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
