"""The development CSMS: a DEVELOPMENT TOOL AND TEST DOUBLE, NOT A PRODUCT.

A small OCPP 2.0.1 Central System that

* backs ``evse demo`` (``make run``): a simulated station talks to it on
  loopback and every OCPP message in both directions is logged as one readable
  line, and
* is the CSMS double of the integration tests: tests swap entries of
  :attr:`DevCsms.handlers`, inspect :attr:`DevCsms.received` / :attr:`DevCsms.sent`
  (with their arrival / sending times in :attr:`DevCsms.received_at` /
  :attr:`DevCsms.sent_at`) and the connection attempts in :attr:`DevCsms.handshakes`,
  send CALLs with :meth:`DevCsms.call`, wait with :meth:`DevCsms.wait_for` /
  :meth:`DevCsms.wait_handshake`, drop connections with :meth:`DevCsms.disconnect`,
  answer the next BootNotifications otherwise (:attr:`DevCsms.boot_statuses`) and
  refuse the next connection attempts (:attr:`DevCsms.refuse_connections`).

It serves a TCP (TLS) listener (:meth:`DevCsms.serve`) or any connected byte stream handed
to :meth:`DevCsms.serve_stream` (tests: one end of ``trio.testing.memory_stream_pair()``,
the station's link holding the other, so both run under trio's MockClock). The date and
time it tells the station (BootNotification, Heartbeat) come from ``clock`` (default: the
system's UTC time).

It works purely at the OCPP-J JSON level (plain dicts and lists) and is
deliberately independent of the station's code: it imports nothing from
``domain``, ``adapters`` or the station runtime, so it cannot share the
station's bugs.  It does not persist anything, does not validate what the
station sends beyond the OCPP-J framing, and accepts every station (unless
``basic_auth`` is given).  Do not deploy it.

Stand-alone::

    python -m devtools.dev_csms --port 9000 --heartbeat-interval 10

Log lines handed to ``log`` carry no timestamp (the demo's printer adds one);
:func:`print_log` prints ``HH:MM:SS.mmm  <line>`` and is what ``main`` uses::

    12:00:00.123  CS-0001 -> CSMS  [2,"1","BootNotification",{...}]
    12:00:00.125  CSMS -> CS-0001  [3,"1",{...}]
"""
from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import inspect
import json
import ssl
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, wrap_server_stream

__all__ = [
    "BANNER",
    "CallError",
    "DevCsms",
    "StationDisconnected",
    "format_report_table",
    "main",
    "print_log",
    "utc_now",
]

SUBPROTOCOL = "ocpp2.0.1"
BANNER = "dev CSMS — a development tool and test double, NOT a product"
LOG_FRAME_LIMIT = 300          # frames longer than this are abbreviated (in the log only)
HANDSHAKE_TIMEOUT = 10.0       # seconds for TLS + HTTP upgrade
CLOSE_TIMEOUT = 3.0            # seconds for the closing handshake
REFUSED_STATUS = 503           # HTTP status of a handshake refused by refuse_connections
ACCEPTED_STATUS = 101          # recorded in handshakes for an accepted WebSocket upgrade

CALL, CALLRESULT, CALLERROR = 2, 3, 4

Handler = Callable[[str, dict], Any]   # -> dict | (code, description[, details]) | Awaitable of those


class CallError(Exception):
    """The station answered a CALL with a CALLERROR."""

    def __init__(self, code: str, description: str = "", details: dict | None = None) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.details = details if details is not None else {}


class StationDisconnected(ConnectionError):
    """The station is not connected, or its connection dropped while a call() was pending."""


def utc_now(now: datetime | None = None) -> str:
    """Current UTC time (or `now`) as RFC 3339 with milliseconds and 'Z' (OCPP dateTime)."""
    now = datetime.now(timezone.utc) if now is None else now.astimezone(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _timestamp() -> str:
    return f"{datetime.now():%H:%M:%S.%f}"[:-3]


def print_log(line: str) -> None:
    """A `log` callable for humans: prints ``HH:MM:SS.mmm  <line>`` to stdout."""
    print(f"{_timestamp()}  {line}", flush=True)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _abbreviate(text: str, limit: int = LOG_FRAME_LIMIT) -> str:
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "\\r").replace("\n", "\\n")
    if len(text) <= limit:
        return text
    keep = limit - 20
    return f"{text[:keep]}… (+{len(text) - keep} chars)"


def _peer(stream: trio.abc.Stream) -> str:
    inner = stream
    while hasattr(inner, "transport_stream"):
        inner = inner.transport_stream
    try:
        host, port = inner.socket.getpeername()[:2]  # type: ignore[attr-defined]
        return f"{host}:{port}"
    except Exception:  # noqa: BLE001
        return "?"


def _station_id_from_path(path: str) -> str | None:
    """'/ocpp/CS-0001' -> 'CS-0001'; the id is the last (percent-decoded) segment.

    At least two segments are required, so a bare '/ocpp' (the base URL without the
    station id) is refused rather than taken as a station called 'ocpp'."""
    segments = urlsplit(path).path.strip("/").split("/")
    if len(segments) < 2 or not segments[-1]:
        return None
    station_id = unquote(segments[-1])
    return station_id or None


@dataclass
class _Pending:
    action: str
    done: trio.Event = field(default_factory=trio.Event)
    result: Any = None
    error: BaseException | None = None


@dataclass(eq=False)
class _Station:
    id: str
    ws: WebSocketConnection
    stream: trio.abc.Stream
    peer: str
    nursery: trio.Nursery | None = None
    send_lock: trio.Lock = field(default_factory=trio.Lock)
    pending: dict[str, _Pending] = field(default_factory=dict)
    finished: trio.Event = field(default_factory=trio.Event)
    closing: bool = False                                      # disconnect() is closing it
    closed: trio.Event = field(default_factory=trio.Event)     # ... and the closing handshake is over


class DevCsms:
    """A development CSMS / test double (see the module docstring). NOT a product."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval: int = 10,
        boot_status: str = "Accepted",
        boot_statuses: Iterable[str] = (),
        basic_auth: dict[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.heartbeat_interval = heartbeat_interval   # read by the default BootNotification handler at call time
        self.boot_status = boot_status                 # idem
        # The answers to the next BootNotificationRequests (of any station), one each, in
        # order; boot_status applies again once they are used up (["Pending"]: B02).
        self.boot_statuses: list[str] = list(boot_statuses)
        # The next `refuse_connections` WebSocket handshakes that would be accepted are
        # refused with HTTP REFUSED_STATUS instead (a CSMS not accepting a connection attempt).
        self.refuse_connections = 0
        self.basic_auth = basic_auth
        self.ssl_context = ssl_context
        self._log_sink = log
        self._clock = clock
        self.handlers: dict[str, Handler] = self.default_handlers()
        self.received: list[tuple[str, list]] = []
        self.sent: list[tuple[str, list]] = []
        self.received_at: list[float] = []              # trio.current_time() of each `received` frame
        self.sent_at: list[float] = []                  # ... and of each `sent` frame
        # Every WebSocket handshake: (trio.current_time() it arrived, station id or None,
        # HTTP status: ACCEPTED_STATUS or the status it was rejected with).
        self.handshakes: list[tuple[float, str | None, int]] = []
        self.connected: set[str] = set()
        self.disconnects: list[tuple[str, str]] = []    # (station id, "code 1000 ..." or "connection lost")
        self._stations: dict[str, _Station] = {}
        self._changed = trio.Event()   # set (and replaced) whenever received/connected/handshakes change

    # ------------------------------------------------------------------ public API

    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_context is not None else "ws"
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}/ocpp"

    def default_handlers(self) -> dict[str, Handler]:
        """A fresh copy of the default action -> handler table."""
        empty = lambda station_id, payload: {}  # noqa: E731
        return {
            "BootNotification": self._boot_notification,
            "Heartbeat": lambda station_id, payload: {"currentTime": self.current_time()},
            "StatusNotification": empty,
            "NotifyEvent": empty,
            "NotifyReport": empty,
            "MeterValues": empty,
            "SecurityEventNotification": empty,
            "FirmwareStatusNotification": empty,
            "LogStatusNotification": empty,
            "NotifyMonitoringReport": empty,
            "NotifyCustomerInformation": empty,
            "Authorize": lambda station_id, payload: {"idTokenInfo": {"status": "Accepted"}},
            "TransactionEvent": _transaction_event,
            "DataTransfer": lambda station_id, payload: {"status": "UnknownVendorId"},
            "SignCertificate": lambda station_id, payload: {"status": "Accepted"},
        }

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled; ``await nursery.start(csms.serve)``."""
        listeners: list = await trio.open_tcp_listeners(self.port, host=self.host)
        if self.port == 0 and len(listeners) > 1:   # e.g. "localhost": keep one, all ports would differ
            for extra in listeners[1:]:
                await extra.aclose()
            listeners = listeners[:1]
        self.port = listeners[0].socket.getsockname()[1]
        if self.ssl_context is not None:
            listeners = [trio.SSLListener(lst, self.ssl_context, https_compatible=True) for lst in listeners]
        self._say(f"{BANNER}; listening on {self.url}/<station id>")
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self.serve_stream, listeners)
            task_status.started()
            await trio.sleep_forever()

    async def serve_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one connection on an already connected byte stream (an accepted TCP or TLS
        stream, or one end of an in-memory stream pair) until it ends; closes the stream."""
        peer = _peer(stream)
        try:
            await self._serve_connection(stream, peer)
        except Exception as exc:  # noqa: BLE001 - one bad connection never crashes the server
            self._say(f"connection from {peer}: internal error {exc!r}")
        finally:
            await trio.aclose_forcefully(stream)

    def current_time(self) -> str:
        """The date and time the CSMS tells the station (OCPP dateTime), from `clock`."""
        return utc_now(None if self._clock is None else self._clock())

    async def call(self, station_id: str, action: str, payload: dict, timeout: float = 10) -> dict:
        """Send a CALL and return the CALLRESULT payload.

        Raises CallError on a CALLERROR, trio.TooSlowError on timeout and
        StationDisconnected when the station is (or gets) disconnected."""
        station = self._stations.get(station_id)
        if station is None:
            raise StationDisconnected(f"station {station_id!r} is not connected")
        message_id = str(uuid.uuid4())
        pending = _Pending(action)
        station.pending[message_id] = pending
        try:
            with trio.fail_after(timeout):
                try:
                    await self._send_frame(station, [CALL, message_id, action, payload])
                except ConnectionClosed as exc:
                    raise StationDisconnected(f"station {station_id!r} disconnected") from exc
                await pending.done.wait()
        except trio.TooSlowError:
            self._say(f"{station_id}: no answer to {action} ({message_id}) within {timeout} s")
            raise
        finally:
            station.pending.pop(message_id, None)
        if pending.error is not None:
            raise pending.error
        return pending.result

    async def send_raw(self, station_id: str, text: str) -> None:
        """Send any text frame as is (it is appended to `sent` only if it parses as a JSON list)."""
        station = self._stations.get(station_id)
        if station is None:
            raise StationDisconnected(f"station {station_id!r} is not connected")
        try:
            frame = json.loads(text)
        except ValueError:
            frame = None
        try:
            await self._send_text(station, text, frame if isinstance(frame, list) else None)
        except ConnectionClosed as exc:
            raise StationDisconnected(f"station {station_id!r} disconnected") from exc

    async def wait_for(
        self,
        action: str,
        *,
        station_id: str | None = None,
        where: Callable[[dict], bool] | None = None,
        timeout: float = 10,
        after: int = 0,
    ) -> dict:
        """Wait for a CALL `action` (from `station_id`, payload matching `where`) received
        at index >= `after` of `received` (already received ones count); return its payload."""
        index = after
        with trio.fail_after(timeout):
            while True:
                while index < len(self.received):
                    sid, frame = self.received[index]
                    index += 1
                    if (len(frame) >= 4 and frame[0] == CALL and frame[2] == action
                            and (station_id is None or sid == station_id)
                            and isinstance(frame[3], dict)
                            and (where is None or where(frame[3]))):
                        return frame[3]
                await self._changed.wait()

    async def wait_handshake(self, station_id: str | None = None, *, after: int = 0,
                             timeout: float = 10) -> tuple[int, tuple[float, str | None, int]]:
        """Wait for a WebSocket handshake (of `station_id`) at index >= `after` of
        `handshakes` (already recorded ones count); return its index and entry."""
        index = after
        with trio.fail_after(timeout):
            while True:
                while index < len(self.handshakes):
                    entry = self.handshakes[index]
                    if station_id is None or entry[1] == station_id:
                        return index, entry
                    index += 1
                await self._changed.wait()

    async def wait_connected(self, station_id: str, timeout: float = 10) -> None:
        with trio.fail_after(timeout):
            while station_id not in self.connected:
                await self._changed.wait()

    async def disconnect(self, station_id: str, code: int = 1000, *, abrupt: bool = False) -> None:
        """Close a station's connection (close frame with `code`; `abrupt=True`: just drop
        the TCP connection, like a network loss). Returns once the station is no longer in
        `connected`. No-op when it is not connected."""
        station = self._stations.get(station_id)
        if station is None:
            return
        self._say(f"{station_id}: dropping the connection" + (" (abruptly)" if abrupt else f" (code {code})"))
        station.closing = True
        try:
            if not abrupt:
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await station.ws.aclose(code)
        finally:
            station.closed.set()
            await trio.aclose_forcefully(station.stream)
        with trio.move_on_after(CLOSE_TIMEOUT):
            await station.finished.wait()

    # ------------------------------------------------------------------ internals

    def _say(self, line: str) -> None:
        if self._log_sink is None:
            return
        try:
            self._log_sink(line)
        except Exception:  # noqa: BLE001 - a broken log sink must not take the CSMS down
            pass

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _boot_notification(self, station_id: str, payload: dict) -> dict:
        status = self.boot_statuses.pop(0) if self.boot_statuses else self.boot_status
        return {"currentTime": self.current_time(), "interval": self.heartbeat_interval, "status": status}

    async def _serve_connection(self, stream: trio.abc.Stream, peer: str) -> None:
        if isinstance(stream, trio.SSLStream):
            try:
                with trio.fail_after(HANDSHAKE_TIMEOUT):
                    await stream.do_handshake()
            except (trio.BrokenResourceError, trio.TooSlowError) as exc:
                cause = exc.__cause__ or exc
                self._say(f"TLS handshake with {peer} failed: {cause!r}")
                return
        async with trio.open_nursery() as nursery:
            try:
                request = None
                with trio.move_on_after(HANDSHAKE_TIMEOUT):
                    request = await wrap_server_stream(nursery, stream)
                if request is None:
                    self._say(f"connection from {peer}: no WebSocket handshake within {HANDSHAKE_TIMEOUT} s")
                    return
                at = trio.current_time()
                station_id = await self._check_handshake(request, peer, at)
                if station_id is None:
                    return
                ws = await request.accept(subprotocol=SUBPROTOCOL)
                self._record_handshake(at, station_id, ACCEPTED_STATUS)
                station = _Station(station_id, ws, stream, peer)
                try:
                    await self._session(station)
                finally:
                    with trio.move_on_after(CLOSE_TIMEOUT):   # not shielded: cancelling serve() stays fast
                        await ws.aclose()
            finally:
                nursery.cancel_scope.cancel()

    async def _check_handshake(self, request: WebSocketRequest, peer: str, at: float) -> str | None:
        """Return the station id if the upgrade request is acceptable, else reject it."""
        path = request.path
        station_id = _station_id_from_path(path)
        if station_id is None:
            return await self._reject(request, at, None, 404,
                                      f"handshake from {peer} rejected (404): no station id in path {path!r}")
        offered = request.proposed_subprotocols
        if SUBPROTOCOL not in offered:
            return await self._reject(
                request, at, station_id, 400,
                f"handshake {station_id} from {peer} rejected (400): subprotocol {SUBPROTOCOL!r} not offered "
                f"(offered: {', '.join(offered) or 'none'})")
        if self.basic_auth is not None:
            problem = self._check_basic_auth(request, station_id)
            if problem:
                return await self._reject(
                    request, at, station_id, 401, f"handshake {station_id} from {peer} rejected (401): {problem}",
                    headers=[(b"WWW-Authenticate", b'Basic realm="OCPP", charset="UTF-8"')])
        if self.refuse_connections > 0:
            self.refuse_connections -= 1
            return await self._reject(
                request, at, station_id, REFUSED_STATUS,
                f"handshake {station_id} from {peer} refused ({REFUSED_STATUS}): refuse_connections "
                f"({self.refuse_connections} more)")
        return station_id

    def _check_basic_auth(self, request: WebSocketRequest, station_id: str) -> str | None:
        values = [v for k, v in request.headers if k.lower() == b"authorization"]
        if not values:
            return "no Authorization header"
        scheme, _, token = values[0].decode("latin-1").strip().partition(" ")
        if scheme.lower() != "basic":
            return f"Authorization scheme {scheme!r} is not Basic"
        try:
            user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "malformed Basic credentials"
        if not sep:
            return "malformed Basic credentials (no ':')"
        if user != station_id:
            return f"user {user!r} is not the station id"
        expected = self.basic_auth.get(station_id) if self.basic_auth is not None else None
        if expected is None:
            return "unknown station"
        if not hmac.compare_digest(password.encode(), expected.encode()):
            return "wrong password"
        return None

    async def _reject(self, request: WebSocketRequest, at: float, station_id: str | None, status: int, why: str,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self._say(why)
        self._record_handshake(at, station_id, status)
        await request.reject(status, extra_headers=headers, body=(why + "\n").encode())
        return None

    def _record_handshake(self, at: float, station_id: str | None, status: int) -> None:
        self.handshakes.append((at, station_id, status))
        self._notify()

    async def _session(self, station: _Station) -> None:
        sid = station.id
        old = self._stations.get(sid)
        tls = " TLS" if isinstance(station.stream, trio.SSLStream) else ""
        self._say(f"{sid} connected from {station.peer} ({SUBPROTOCOL}{tls})")
        self._stations[sid] = station
        self.connected.add(sid)
        self._notify()
        if old is not None:
            self._say(f"{sid}: new connection replaces the old one")
            await trio.aclose_forcefully(old.stream)
        how = "connection lost"
        try:
            async with trio.open_nursery() as tasks:
                station.nursery = tasks
                while True:
                    try:
                        message = await station.ws.get_message()
                    except ConnectionClosed as exc:
                        reason = exc.reason
                        if reason is not None:
                            how = f"code {reason.code}" + (f" {reason.reason}" if reason.reason else "")
                        break
                    await self._on_message(station, message)
                tasks.cancel_scope.cancel()
            if station.closing:   # keep the reader task alive for disconnect()'s closing handshake
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await station.closed.wait()
        finally:
            if self._stations.get(sid) is station:
                del self._stations[sid]
                self.connected.discard(sid)
            for pending in station.pending.values():
                if not pending.done.is_set():
                    pending.error = StationDisconnected(f"station {sid!r} disconnected during {pending.action}")
                    pending.done.set()
            station.finished.set()
            self.disconnects.append((sid, how))
            self._notify()
            self._say(f"{sid} disconnected ({how})")

    async def _on_message(self, station: _Station, message: str | bytes) -> None:
        sid = station.id
        if isinstance(message, bytes):
            self._say(f"{sid}: binary frame ({len(message)} bytes); OCPP-J uses text frames — decoding it anyway")
            message = message.decode("utf-8", errors="replace")
        try:
            frame = json.loads(message)
        except ValueError:
            frame = None
            parsed = False
        else:
            parsed = True
        shown = _dumps(frame) if parsed and ("\n" in message or "\r" in message) else message
        self._say(f"{sid} -> CSMS  {_abbreviate(shown)}")
        if isinstance(frame, list):
            self.received.append((sid, frame))
            self.received_at.append(trio.current_time())
            self._notify()
        if not parsed:
            self._say(f"{sid}: frame is not JSON")
            await self._send_error(station, "-1", "RpcFrameworkError", "frame is not valid JSON")
            return
        if not isinstance(frame, list) or not frame or not isinstance(frame[0], int) or isinstance(frame[0], bool):
            self._say(f"{sid}: frame is not an OCPP-J array [messageTypeId, messageId, ...]")
            await self._send_error(station, "-1", "RpcFrameworkError", "frame is not an OCPP-J message array")
            return
        kind = frame[0]
        message_id = frame[1] if len(frame) > 1 and isinstance(frame[1], str) else None
        if kind == CALL:
            if len(frame) != 4 or message_id is None or not isinstance(frame[2], str):
                self._say(f"{sid}: malformed CALL")
                await self._send_error(station, message_id or "-1", "RpcFrameworkError",
                                       "CALL must be [2, messageId, action, payload]")
                return
            if not isinstance(frame[3], dict):
                self._say(f"{sid}: CALL payload is not an object")
                await self._send_error(station, message_id, "FormatViolation", "payload must be a JSON object")
                return
            await self._on_call(station, message_id, frame[2], frame[3])
        elif kind == CALLRESULT:
            if len(frame) != 3 or message_id is None:
                self._say(f"{sid}: malformed CALLRESULT ignored")
                return
            self._resolve(station, message_id, result=frame[2])
        elif kind == CALLERROR:
            if len(frame) < 4 or message_id is None:
                self._say(f"{sid}: malformed CALLERROR ignored")
                return
            details = frame[4] if len(frame) > 4 and isinstance(frame[4], dict) else {}
            self._resolve(station, message_id, error=CallError(str(frame[2]), str(frame[3]), details))
        else:
            self._say(f"{sid}: unknown messageTypeId {kind!r}")
            await self._send_error(station, message_id or "-1", "MessageTypeNotSupported",
                                   f"messageTypeId {kind} is not supported")

    def _resolve(self, station: _Station, message_id: str, *, result: Any = None,
                 error: CallError | None = None) -> None:
        pending = station.pending.get(message_id)
        if pending is None or pending.done.is_set():
            what = "CALLERROR" if error is not None else "CALLRESULT"
            self._say(f"{station.id}: {what} for unknown message id {message_id!r} ignored")
            return
        if error is None and not isinstance(result, dict):
            self._say(f"{station.id}: CALLRESULT payload for {pending.action} is not an object")
        pending.result, pending.error = result, error
        pending.done.set()

    async def _on_call(self, station: _Station, message_id: str, action: str, payload: dict) -> None:
        handler = self.handlers.get(action)
        if handler is None:
            await self._send_error(station, message_id, "NotImplemented",
                                   f"the dev CSMS has no handler for {action}")
            return
        try:
            answer = handler(station.id, payload)
        except Exception as exc:  # noqa: BLE001
            await self._handler_failed(station, message_id, action, exc)
            return
        if inspect.isawaitable(answer):
            assert station.nursery is not None
            station.nursery.start_soon(self._finish_async_call, station, message_id, action, answer)
            return
        await self._answer(station, message_id, action, answer)

    async def _finish_async_call(self, station: _Station, message_id: str, action: str,
                                 answer: Awaitable[Any]) -> None:
        try:
            result = await answer
        except Exception as exc:  # noqa: BLE001
            await self._handler_failed(station, message_id, action, exc)
            return
        await self._answer(station, message_id, action, result)

    async def _handler_failed(self, station: _Station, message_id: str, action: str, exc: Exception) -> None:
        self._say(f"{station.id}: handler for {action} raised {exc!r}")
        await self._send_error(station, message_id, "InternalError", f"handler for {action} failed: {exc!r}")

    async def _answer(self, station: _Station, message_id: str, action: str, answer: Any) -> None:
        if isinstance(answer, dict):
            await self._send_frame_quietly(station, [CALLRESULT, message_id, answer])
        elif (isinstance(answer, tuple) and len(answer) in (2, 3)
              and isinstance(answer[0], str) and isinstance(answer[1], str)):
            details = answer[2] if len(answer) == 3 and isinstance(answer[2], dict) else {}
            await self._send_error(station, message_id, answer[0], answer[1], details)
        else:
            self._say(f"{station.id}: handler for {action} returned {type(answer).__name__}, not dict or (code, description)")
            await self._send_error(station, message_id, "InternalError", f"handler for {action} returned a bad value")

    async def _send_error(self, station: _Station, message_id: str, code: str, description: str,
                          details: dict | None = None) -> None:
        await self._send_frame_quietly(station, [CALLERROR, message_id, code, description[:255], details or {}])

    async def _send_frame_quietly(self, station: _Station, frame: list) -> None:
        try:
            await self._send_frame(station, frame)
        except ConnectionClosed:
            self._say(f"{station.id}: connection closed; could not send {_abbreviate(_dumps(frame), 80)}")

    async def _send_frame(self, station: _Station, frame: list) -> None:
        await self._send_text(station, _dumps(frame), frame)

    async def _send_text(self, station: _Station, text: str, frame: list | None) -> None:
        async with station.send_lock:
            if frame is not None:
                self.sent.append((station.id, frame))
                self.sent_at.append(trio.current_time())
            self._say(f"CSMS -> {station.id}  {_abbreviate(text)}")
            await station.ws.send_message(text)


def _transaction_event(station_id: str, payload: dict) -> dict:
    if "idToken" in payload:
        return {"idTokenInfo": {"status": "Accepted"}}
    return {}


# ---------------------------------------------------------------------- report table

def _name_instance(obj: dict | None) -> str:
    if not isinstance(obj, dict):
        return ""
    name = str(obj.get("name", ""))
    instance = obj.get("instance")
    return f"{name}[{instance}]" if instance not in (None, "") else name


def format_report_table(report_data: list[dict], *, sort: bool = False, max_value_width: int = 60) -> str:
    """Render NotifyReport ``reportData`` entries as an aligned text table.

    Columns: Component (name[instance]), EVSE, Conn, Variable (name[instance]),
    Actual (value of the Actual attribute, abbreviated to `max_value_width`) and
    Mutability (of the Actual attribute; OCPP's default ReadWrite when absent).
    `sort=True` orders rows by component, EVSE, connector, variable (handy when the
    entries were collected from several NotifyReport parts)."""
    header = ("Component", "EVSE", "Conn", "Variable", "Actual", "Mutability")
    rows: list[tuple[str, ...]] = []
    for entry in report_data:
        component = entry.get("component") or {}
        evse = component.get("evse") if isinstance(component, dict) else None
        evse_id = str(evse.get("id", "")) if isinstance(evse, dict) else ""
        connector = str(evse.get("connectorId", "")) if isinstance(evse, dict) and "connectorId" in evse else ""
        attributes = entry.get("variableAttribute") or []
        actual = next((a for a in attributes if isinstance(a, dict) and a.get("type", "Actual") == "Actual"), None)
        if actual is None:
            value, mutability = "-", "-"
        else:
            value = str(actual.get("value", ""))
            mutability = str(actual.get("mutability", "ReadWrite"))
        value = value.replace("\r", "\\r").replace("\n", "\\n")
        if len(value) > max_value_width:
            value = value[: max_value_width - 1] + "…"
        rows.append((_name_instance(component), evse_id, connector,
                     _name_instance(entry.get("variable")), value, mutability))
    if sort:
        def key(row: tuple[str, ...]) -> tuple:
            def num(text: str) -> tuple[int, int | str]:
                return (0, int(text)) if text.isdigit() else (1, text)
            return (row[0], num(row[1]), num(row[2]), row[3])
        rows.sort(key=key)
    widths = [max(len(col[i]) for col in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


# ---------------------------------------------------------------------- stand-alone

def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.dev_csms",
        description=f"{BANNER}. Logs every OCPP 2.0.1 message to stdout until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--heartbeat-interval", type=int, default=10)
    parser.add_argument("--boot-status", default="Accepted", choices=("Accepted", "Pending", "Rejected"))
    parser.add_argument("--basic-auth", action="append", metavar="STATION_ID:PASSWORD", default=[],
                        help="require HTTP Basic auth; repeat for several stations")
    parser.add_argument("--tls-cert", help="server certificate chain (PEM); enables wss")
    parser.add_argument("--tls-key", help="server private key (PEM)")
    parser.add_argument("--tls-client-ca", help="require client certificates signed by this CA (PEM)")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    basic_auth = None
    if args.basic_auth:
        basic_auth = {}
        for item in args.basic_auth:
            station_id, sep, password = item.partition(":")
            if not sep:
                raise SystemExit(f"--basic-auth wants STATION_ID:PASSWORD, got {item!r}")
            basic_auth[station_id] = password
    ssl_context = None
    if args.tls_cert:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            ssl_context.load_verify_locations(args.tls_client_ca)
            ssl_context.verify_mode = ssl.CERT_REQUIRED
    csms = DevCsms(host=args.host, port=args.port, heartbeat_interval=args.heartbeat_interval,
                   boot_status=args.boot_status, basic_auth=basic_auth, ssl_context=ssl_context,
                   log=print_log)
    await csms.serve()


def run(argv: list[str] | None = None) -> int:
    try:
        trio.run(main, argv)
    except KeyboardInterrupt:
        print("dev CSMS stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run())
