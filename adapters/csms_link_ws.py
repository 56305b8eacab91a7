"""CSMS link on trio-websocket: OCPP-J transport (OCPP 2.0.1 Part 4) for the station.

Implements ports.csms_link.CsmsLink. One connection at a time; run() owns it and
reconnects forever with the Part 4 §5.3 back-off. The link knows nothing of OCPP
messages: frames are text in, text out.

Spec rules implemented here (OCPP 2.0.1 Edition 3, Part 4 unless said otherwise):

- §3.1.1 connection URL: endpoint URL + "/" + station identity, percent-encoded as a
  path segment (RFC 3986). The identity may not contain ":" (it is the Basic auth
  user name) and is at most 48 characters.
- §3.1.2 / §3.2: Sec-WebSocket-Protocol "ocpp2.0.1" is offered; a CSMS that does not
  agree completes the handshake without the header and closes. We close too, report
  it and retry with back-off. A 404 (unknown station) or 401 is reported with its code.
- §5.3 reconnecting: first wait RetryBackOffWaitMinimum + random(0..RetryBackOffRandomRange);
  after every failed reconnection attempt the previous back-off time is doubled and a
  new random value added, RetryBackOffRepeatTimes times at most; then the last
  back-off time is kept. Back to the start after a successful connection
  (TC_B_57_CS checks "at least 2x the previous reconnection time").
- §8.4 WebSocketPingInterval: ping every N s, 0 = no client pings (we still answer
  the CSMS's pings). The spec gives no pong timeout; we use min(N, 10 s).
- §4.1.2 / RFC 6455 8.1, 7.1.7, 7.4.1: a text message that is not UTF-8 (or any frame
  the protocol forbids) fails the connection: we send a Close frame with 1007 (1002),
  wait for the CSMS to close TCP (bounded), report that the station closed it because
  of what the CSMS sent, and reconnect with back-off as after any link loss.
- Part 2 A00 (security profiles; requirement ids as in Part 2 / Part 6 / errata):
  profile 1 ws:// + HTTP Basic auth, profile 2 wss:// + Basic auth, profile 3
  wss:// + TLS client certificate, no Basic auth. Basic auth user = station id,
  password = SecurityCtrlr.BasicAuthPassword sent as UTF-8 (A00.FR.205 / A00.FR.304,
  TC_A_01_CS: "Authorization: Basic base64(<id>:<password>)").
  TLS 1.2 or above only (A00.FR.313 / A00.FR.416); the CSMS certificate and host
  name are verified against the CSMS roots of `csms_root_ca` only (the certificate store's bundle
  of the installed CSMSRootCertificates, bootstrap/credentials.py), never the system's CA list
  (A00.FR.309..311 as tested by TC_A_05_CS, errata 2025-01 §2.6 note); no TLS compression or renegotiation;
  TLS 1.2 cipher suites limited to the ones a Charging Station must support
  (A00.FR.319 / A00.FR.422, PICS C-41, TC_A_04_CS / TC_A_07_CS):
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
  TLS_RSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_AES_256_GCM_SHA384. TLS 1.3 suites
  (all AEAD) are left at the OpenSSL defaults.

- A04 security events: a failed attempt whose cause is a security check carries its type in
  LinkDown.security_event (ports.csms_link): InvalidCsmsCertificate (the CSMS certificate fails
  validation against csms_root_ca or the host name, TC_A_05_CS step 14), InvalidTLSVersion (the
  CSMS offers nothing of TLS 1.2 or above), InvalidTLSCipherSuite (no cipher suite of A00.FR.319 in
  common: a handshake failure before the ServerHello), FailedToAuthenticateAtCsms (HTTP 401 on the
  upgrade request), InvalidChargingStationCertificate (profile 3: the CSMS asked for our certificate
  and refused it, by a TLS alert or, TLS 1.3, by ending the session before answering). Telling a
  refused client certificate from a cipher-suite mismatch (both end with the alert
  handshake_failure in TLS 1.2) uses the handshake messages the context's `_msg_callback` sees
  (CPython's debugging hook): whether the CSMS sent ServerHello / CertificateRequest.

The transport under TLS and WebSocket is one seam: `connect(host, port)` returns a connected
trio Stream (default `trio.open_tcp_stream`; OSError when there is nobody to connect to).
Tests hand the link one end of an in-memory stream pair this way, the other end served by the
CSMS double, so the station runs under trio's MockClock; TLS, the handshake, back-off and
everything above the byte stream stay the same.
"""
from __future__ import annotations

import base64
import contextlib
import http
import logging
import os
import random
import ssl
import struct
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import trio
import trio_websocket
import wsproto.utilities
from trio_websocket import ConnectionClosed, ConnectionRejected, WebSocketConnection
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection

from ports.csms_link import (FAILED_TO_AUTHENTICATE_AT_CSMS, INVALID_CHARGING_STATION_CERTIFICATE,
                             INVALID_CSMS_CERTIFICATE, INVALID_TLS_CIPHER_SUITE, INVALID_TLS_VERSION, FrameIn,
                             LinkClosed, LinkDown, LinkEvent, LinkSettings, LinkUp)

SUBPROTOCOL = "ocpp2.0.1"

# Largest inbound message (characters of a text message, as trio-websocket counts);
# a bigger one closes the connection with 1009 (Message Too Big) and we reconnect.
MAX_MESSAGE_SIZE = 1 << 20

# OpenSSL names of the TLS 1.2 suites of A00.FR.319 (the ECDHE-ECDSA pair is what
# the reference product lists in its PICS C-41; the RSA pair is the spec's alternative).
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",  # TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        "ECDHE-ECDSA-AES256-GCM-SHA384",  # TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        "AES128-GCM-SHA256",  # TLS_RSA_WITH_AES_128_GCM_SHA256
        "AES256-GCM-SHA384",  # TLS_RSA_WITH_AES_256_GCM_SHA384
    )
)

MAX_STATION_ID_LENGTH = 48  # Part 4 §3.1.1
PONG_TIMEOUT_MAX = 10.0  # seconds; no pong within min(ping_interval, this) -> dead
CLOSE_TIMEOUT = 2.0  # seconds to wait for the CSMS's close frame when we close

# RFC 3986 pchar minus unreserved (which quote() keeps anyway): sub-delims, ":" and "@".
_PCHAR_SAFE = "!$&'()*+,;=:@"

_log_default = logging.getLogger("evse.link")

# The transport: (host, port) -> a connected byte stream; OSError when nobody answers.
Connect = Callable[[str, int], Awaitable[trio.abc.Stream]]


# --- settings -> connection target --------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Target:
    url: str  # connection URL, as reported in LinkUp
    host: str  # for TCP and TLS server_hostname
    port: int
    host_header: str
    resource: str  # path (+ query) of the GET request
    tls: bool
    headers: tuple[tuple[bytes, bytes], ...]


def _target(s: LinkSettings) -> _Target:
    """Validate settings and derive the connection target; ValueError names the field."""
    if s.security_profile not in (1, 2, 3):
        raise ValueError(f"security_profile: must be 1, 2 or 3, not {s.security_profile!r}")
    if not s.station_id:
        raise ValueError("station_id: empty")
    if ":" in s.station_id:  # Part 4 §3.1.1: ":" separates user and password in Basic auth
        raise ValueError(f"station_id: {s.station_id!r} contains ':' (not allowed, Part 4 §3.1.1)")
    if len(s.station_id) > MAX_STATION_ID_LENGTH:
        raise ValueError(f"station_id: longer than {MAX_STATION_ID_LENGTH} characters (Part 4 §3.1.1)")
    try:
        parts = urlsplit(s.csms_url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"csms_url: {s.csms_url!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise ValueError(f"csms_url: {s.csms_url!r} must start with ws:// or wss://")
    want = "ws" if s.security_profile == 1 else "wss"
    if scheme != want:
        raise ValueError(
            f"csms_url: security profile {s.security_profile} requires a {want}:// URL, got {s.csms_url!r}"
        )
    host = parts.hostname
    if not host:
        raise ValueError(f"csms_url: {s.csms_url!r} has no host")
    if s.security_profile >= 2 and not s.csms_root_ca:
        raise ValueError(f"csms_root_ca: required for security profile {s.security_profile}")
    if s.security_profile == 3:
        if not s.client_cert:
            raise ValueError("client_cert: required for security profile 3")
        if not s.client_key:
            raise ValueError("client_key: required for security profile 3")
    if s.ping_interval < 0:  # §8.4: negative values are not allowed
        raise ValueError(f"ping_interval: must be >= 0, not {s.ping_interval!r}")
    for name in ("retry_backoff_wait_minimum", "retry_backoff_random_range", "retry_backoff_repeat_times"):
        if getattr(s, name) < 0:
            raise ValueError(f"{name}: must be >= 0, not {getattr(s, name)!r}")
    if not s.connect_timeout > 0:
        raise ValueError(f"connect_timeout: must be > 0, not {s.connect_timeout!r}")

    tls = scheme == "wss"
    default_port = 443 if tls else 80
    if port is None:
        port = default_port
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port == default_port else f"{bracketed}:{port}"
    # §3.1.1: append "/" + percent-encoded identity to the endpoint path.
    path = parts.path.rstrip("/") + "/" + quote(s.station_id, safe=_PCHAR_SAFE)
    resource = path + (f"?{parts.query}" if parts.query else "")
    url = f"{scheme}://{host_header}{resource}"

    headers: list[tuple[bytes, bytes]] = []
    if s.security_profile in (1, 2) and s.basic_auth_password is not None:
        # A00.FR.205: password as UTF-8; TC_A_01_CS: Basic base64(<id>:<password>).
        token = base64.b64encode(f"{s.station_id}:{s.basic_auth_password}".encode("utf-8"))
        headers.append((b"Authorization", b"Basic " + token))
    return _Target(url, host, port, host_header, resource, tls, tuple(headers))


class _AttemptFailed(Exception):
    """One connection attempt failed; str() is the LinkDown reason, `security_event` its A04 type."""

    def __init__(self, reason: str, security_event: str | None = None) -> None:
        super().__init__(reason)
        self.security_event = security_event


# OpenSSL reasons (ours, or the CSMS's alert) by the A04 security event they are.
_VERSION_REASONS = frozenset({"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "WRONG_VERSION_NUMBER",
                              "NO_PROTOCOLS_AVAILABLE", "TLSV1_ALERT_INAPPROPRIATE_FALLBACK"})
_CIPHER_REASONS = frozenset({"NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE", "WRONG_CIPHER_RETURNED",
                             "NO_SUITABLE_SIGNATURE_ALGORITHM"})
_CLIENT_CERT_REASONS = frozenset({
    "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED", "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "TLSV1_ALERT_UNKNOWN_CA",
    "TLSV1_ALERT_ACCESS_DENIED", "TLSV1_ALERT_DECRYPT_ERROR", "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "TLSV1_CERTIFICATE_REQUIRED"})
_HANDSHAKE_FAILURE = "SSLV3_ALERT_HANDSHAKE_FAILURE"


@dataclass(slots=True)
class _Handshake:
    """What the CSMS sent during the current TLS handshake (one connection at a time per link)."""

    server_hello: bool = False
    certificate_requested: bool = False

    def observe(self, _conn, direction: str, _version, content_type, msg_type, _data) -> None:
        if direction == "read" and content_type == 22:  # handshake message from the CSMS
            if msg_type == 2:  # ServerHello
                self.server_hello = True
            elif msg_type == 13:  # CertificateRequest
                self.certificate_requested = True


def _tls_security_event(cause: BaseException | None, hs: _Handshake, profile: int) -> str | None:
    """The A04 security event a failed TLS handshake is (None: not a security check)."""
    if isinstance(cause, ssl.SSLCertVerificationError):
        return INVALID_CSMS_CERTIFICATE
    if not isinstance(cause, ssl.SSLError):
        return None
    reason = cause.reason or ""
    if reason in _VERSION_REASONS:
        return INVALID_TLS_VERSION
    if reason in _CIPHER_REASONS:
        return INVALID_TLS_CIPHER_SUITE
    if profile == 3 and hs.certificate_requested and (reason in _CLIENT_CERT_REASONS or reason == _HANDSHAKE_FAILURE):
        return INVALID_CHARGING_STATION_CERTIFICATE
    if reason == _HANDSHAKE_FAILURE and not hs.server_hello:
        return INVALID_TLS_CIPHER_SUITE  # refused at the ClientHello: no suite in common
    return None


class _ConsumerGone(Exception):
    """The events channel was closed by its receiver (a bug in the caller, not the network)."""


def _check_readable(field: str, path: str) -> None:
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise _AttemptFailed(f"{field} file {path!r} cannot be read: {exc.strerror or exc}") from None


def _build_tls_context(s: LinkSettings, hs: _Handshake | None = None) -> ssl.SSLContext:
    """Client context for profiles 2 and 3; _AttemptFailed names the file at fault. `hs` is told
    the CSMS's handshake messages (for the security event of a failed handshake)."""
    assert s.csms_root_ca is not None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verify_mode CERT_REQUIRED, check_hostname on
    if hs is not None and hasattr(ctx, "_msg_callback"):
        ctx._msg_callback = hs.observe
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # A00.FR.313 / A00.FR.416
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.set_ciphers(TLS12_CIPHERS)  # A00.FR.319 / A00.FR.422 (TLS 1.2 only; 1.3 suites unaffected)
    _check_readable("csms_root_ca", s.csms_root_ca)
    try:
        # Only the configured CSMS root: no system CA bundle (errata 2025-01 §2.6 note).
        ctx.load_verify_locations(cafile=s.csms_root_ca)
        # each of them is a trust anchor, also a CSMS root signed by the one it replaced
        # (AdditionalRootCertificateCheck, M05.FR.10): the chain stops at an installed root
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    except (OSError, ssl.SSLError) as exc:
        raise _AttemptFailed(f"csms_root_ca file {s.csms_root_ca!r} is not a usable CA certificate: {exc}") from None
    if s.security_profile == 3:
        assert s.client_cert is not None and s.client_key is not None
        _check_readable("client_cert", s.client_cert)
        _check_readable("client_key", s.client_key)
        try:
            ctx.load_cert_chain(certfile=s.client_cert, keyfile=s.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise _AttemptFailed(
                f"client_cert {s.client_cert!r} / client_key {s.client_key!r} cannot be loaded: {exc}"
            ) from None
    return ctx


def _describe_io_error(exc: BaseException) -> str:
    """One line for a transport error (trio wraps ssl errors in BrokenResourceError)."""
    cause = exc
    if isinstance(exc, trio.BrokenResourceError) and exc.__cause__ is not None:
        cause = exc.__cause__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"CSMS certificate rejected: {cause.verify_message or cause.reason} (not valid for csms_root_ca / host)"
    if isinstance(cause, ssl.SSLError):
        return f"TLS error: {cause.reason or cause}"
    if isinstance(cause, OSError):
        group = cause.__cause__
        if isinstance(group, BaseExceptionGroup):  # trio.open_tcp_stream: one error per address tried
            texts = dict.fromkeys(
                os.strerror(e.errno) if e.errno else str(e) for e in group.exceptions if isinstance(e, OSError)
            )
            if texts:
                return "; ".join(texts)
        return cause.strerror or str(cause) or type(cause).__name__
    return str(cause) or type(cause).__name__


# The RFC 6455 7.4.1 codes wsproto fails a connection with: (what the CSMS sent, for
# the log; the reason of our Close frame). 1007: a text message (or a Close reason)
# that is not UTF-8 (8.1); 1002: any other frame the protocol does not allow.
_FAILURES = {
    1007: ("invalid UTF-8", "invalid UTF-8"),
    1002: ("a frame the WebSocket protocol does not allow", "protocol error"),
}


def _failed_by_us(ws: WebSocketConnection) -> bool:
    """The connection ended because our side found the CSMS's data invalid.

    wsproto turns a frame it cannot accept (invalid UTF-8 in a text message, a
    protocol violation) into a CloseConnection event as if the CSMS had sent it,
    and trio-websocket then ends the connection with that code without sending
    a Close frame. Only in that case is wsproto's connection still OPEN: a Close
    frame from the CSMS moves it on (REMOTE_CLOSING, CLOSED), so do a lost TCP
    connection (CLOSED) and our own close (LOCAL_CLOSING). trio-websocket has no
    public accessor for it (checked by tests/adapters/test_csms_link.py)."""
    proto = getattr(ws, "_wsproto", None)
    return proto is not None and proto.state is ConnectionState.OPEN


def _close_text(reason: trio_websocket.CloseReason | None) -> str:
    if reason is None:
        return "connection closed"
    text = f"code {reason.code} {reason.name}"
    return f"{text}: {reason.reason}" if reason.reason else text


class _WatchedStream(trio.abc.Stream):
    """Pass-through stream that notices EOF / breakage while the WebSocket handshake runs.

    trio-websocket waits for the opening handshake without a way to learn that the
    reader died (EOF, reset, protocol error); `on_broken` lets us stop waiting at once
    instead of sitting out the connect timeout.
    """

    __slots__ = ("_s", "on_broken", "broken", "cause", "received")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._s = stream
        self.on_broken: Callable[[], object] | None = None
        self.broken: str | None = None
        self.cause: BaseException | None = None  # the transport error behind `broken`, if any
        self.received = False  # any byte from the CSMS yet

    def _note(self, what: str, exc: BaseException | None = None) -> None:
        if self.broken is None:
            self.broken = what
            self.cause = exc.__cause__ if exc is not None else None
        cb = self.on_broken
        if cb is not None:
            self.on_broken = None
            cb()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        try:
            await self._s.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._note(_describe_io_error(exc), exc)
            raise

    async def wait_send_all_might_not_block(self) -> None:
        await self._s.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        try:
            data = await self._s.receive_some(max_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._note(_describe_io_error(exc), exc)
            raise
        if not data:
            self._note("connection closed by the CSMS")
        else:
            self.received = True
        return data

    async def aclose(self) -> None:
        # trio-websocket closes the stream itself on a malformed handshake response.
        self._note("invalid WebSocket handshake response from the CSMS")
        await self._s.aclose()


# --- the link ------------------------------------------------------------------------------
class WebSocketCsmsLink:
    """CsmsLink over trio-websocket. See the module docstring for the spec rules."""

    def __init__(
        self,
        settings: LinkSettings,
        *,
        rng: random.Random | None = None,
        logger: logging.Logger | None = None,
        connect: Connect = trio.open_tcp_stream,
    ) -> None:
        self._target = _target(settings)  # ValueError on bad configuration
        self._settings = settings
        self._connect = connect
        self._rng = rng if rng is not None else random.Random()
        self._log = logger if logger is not None else _log_default
        self._tls: tuple[LinkSettings, ssl.SSLContext] | None = None
        self._ws: WebSocketConnection | None = None
        self._scope: trio.CancelScope | None = None  # the interruptible section running now
        self._stop: tuple[int, str] | None = None
        self._reconnect_now = False
        self._running = False
        self._done: trio.Event | None = None
        self._settings_changed = trio.Event()
        self._worker_error: BaseException | None = None
        self._on_frame: Callable[[str], Awaitable[None]] | None = None   # run(on_frame=...)
        # §5.3 back-off state
        self._backoff: float | None = None  # last back-off time, None = start over
        self._doublings = 0
        self._failed = 0  # consecutive failed attempts
        self._up = False  # LinkUp sent for the current connection
        self._security_event: str | None = None  # A04 type of the current attempt's failure
        self._handshake = _Handshake()  # what the CSMS sent in the current TLS handshake
        if settings.security_profile in (1, 2) and settings.basic_auth_password is None:
            self._log.warning("security profile %d without basic_auth_password: no Basic auth sent",
                              settings.security_profile)

    # -- port API ------------------------------------------------------------------------------
    async def send(self, frame: str) -> None:
        ws = self._ws
        if ws is None:
            raise LinkClosed("not connected to the CSMS")
        try:
            await ws.send_message(frame)
        except ConnectionClosed as exc:
            raise LinkClosed(f"connection closed ({_close_text(exc.reason)})") from None
        except wsproto.utilities.LocalProtocolError:  # CSMS close frame seen, not yet processed
            raise LinkClosed("connection closing") from None

    def update(self, settings: LinkSettings) -> None:
        target = _target(settings)  # validate first: a bad update changes nothing
        old = self._settings
        self._settings, self._target = settings, target
        self._tls = None  # rebuilt (files re-read) at the next connection
        if (
            old.retry_backoff_wait_minimum != settings.retry_backoff_wait_minimum
            or old.retry_backoff_random_range != settings.retry_backoff_random_range
            or old.retry_backoff_repeat_times != settings.retry_backoff_repeat_times
        ):
            self._backoff, self._doublings = None, 0  # new back-off rule from the next wait on
        changed, self._settings_changed = self._settings_changed, trio.Event()
        changed.set()  # wakes the pinger: new ping interval at once
        self._log.info("settings updated (url %s, security profile %d)", target.url, settings.security_profile)

    def reconnect(self) -> None:
        self._reconnect_now = True
        self._tls = None  # e.g. a new client certificate was installed under the same path
        if self._scope is not None:
            self._scope.cancel()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._stop is None:
            self._stop = (code, reason)
        if self._scope is not None:
            self._scope.cancel()
        done = self._done
        if self._running and done is not None:
            await done.wait()

    async def run(
        self,
        events: trio.MemorySendChannel[LinkEvent],
        *,
        on_frame: Callable[[str], Awaitable[None]] | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        if self._running:
            raise RuntimeError("WebSocketCsmsLink.run() is already running")
        self._running = True
        self._on_frame = on_frame
        self._worker_error = None
        self._done = done = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._worker_task, events, done)
                task_status.started()
                try:
                    await done.wait()
                except BaseException:
                    # Cancelled from outside: let the (shielded) worker close the socket
                    # normally, within bounded time, then let the cancellation through.
                    if self._stop is None:
                        self._stop = (1000, "")
                    if self._scope is not None:
                        self._scope.cancel()
                    raise
        finally:
            self._running = False
        if self._worker_error is not None:
            raise self._worker_error

    # -- worker ---------------------------------------------------------------------------------
    async def _worker_task(self, events: trio.MemorySendChannel[LinkEvent], done: trio.Event) -> None:
        try:
            # Shielded so that the connection's reader task survives an outside
            # cancellation long enough for a clean close handshake. Every wait in
            # the worker is interruptible (self._scope) or bounded by a timeout.
            with trio.CancelScope(shield=True):
                await self._worker(events)
        except _ConsumerGone as exc:
            self._worker_error = exc.__cause__ or exc
        except Exception as exc:  # a bug: surface it from run()
            self._worker_error = exc
        finally:
            done.set()

    async def _worker(self, events: trio.MemorySendChannel[LinkEvent]) -> None:
        while self._stop is None:
            settings, target = self._settings, self._target
            self._reconnect_now = False
            self._up = False
            self._security_event = None
            try:
                ctx = self._tls_context(settings) if target.tls else None
            except _AttemptFailed as exc:
                reason = str(exc)
            else:
                self._log.debug("connecting to %s", target.url)
                reason = await self._session(events, settings, target, ctx)
            if self._stop is not None:
                break
            interrupted = self._reconnect_now
            if not self._up and not interrupted:
                self._failed += 1
            wait = 0.0 if interrupted else self._next_backoff()
            event = self._security_event
            self._log.warning("link down: %s (failed attempts %d, retry in %.1f s)%s", reason, self._failed, wait,
                              f" [security event {event}]" if event else "")
            with self._interruptible():
                await self._emit(events, LinkDown(reason, self._failed, wait, event))
                if wait > 0:
                    await trio.sleep(wait)
        code, why = self._stop or (1000, "")
        self._log.info("link closed by the station (code %d%s)", code, f": {why}" if why else "")
        with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            events.send_nowait(LinkDown(f"closed by the station (code {code})", self._failed, None))

    def _next_backoff(self) -> float:
        """Part 4 §5.3: WaitMinimum + rnd, then 2 * previous + rnd (RepeatTimes times), then constant."""
        s = self._settings
        if self._backoff is None:
            self._backoff = s.retry_backoff_wait_minimum + self._random(s)
        elif self._doublings < s.retry_backoff_repeat_times:
            self._backoff = 2 * self._backoff + self._random(s)
            self._doublings += 1
        return self._backoff

    def _random(self, s: LinkSettings) -> float:
        return self._rng.uniform(0, s.retry_backoff_random_range) if s.retry_backoff_random_range > 0 else 0.0

    def _tls_context(self, s: LinkSettings) -> ssl.SSLContext:
        cached = self._tls
        if cached is not None and cached[0] is s:
            return cached[1]
        ctx = _build_tls_context(s, self._handshake)  # _AttemptFailed: not cached, retried next attempt
        self._tls = (s, ctx)
        return ctx

    @contextlib.contextmanager
    def _interruptible(self) -> Iterator[trio.CancelScope]:
        """A section that close() / reconnect() / outside cancellation can cut short."""
        scope = trio.CancelScope()
        if self._stop is not None:
            scope.cancel()
        prev, self._scope = self._scope, scope
        try:
            with scope:
                yield scope
        finally:
            self._scope = prev

    async def _emit(self, events: trio.MemorySendChannel[LinkEvent], event: LinkEvent) -> None:
        try:
            await events.send(event)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _ConsumerGone("link events channel closed by its receiver") from exc

    def _interrupt_reason(self) -> str:
        if self._stop is not None:
            return "closed by the station"
        return "reconnect requested"

    async def _session(
        self,
        events: trio.MemorySendChannel[LinkEvent],
        settings: LinkSettings,
        target: _Target,
        ctx: ssl.SSLContext | None,
    ) -> str:
        """One connection: attempt, and if it opens, its life. Returns the LinkDown reason."""
        deadline = trio.current_time() + settings.connect_timeout  # bounds the whole attempt
        stream: trio.abc.Stream | None = None
        try:
            with self._interruptible():
                with trio.move_on_at(deadline):
                    stream = await self._open_stream(target, ctx)
                if stream is None:
                    raise _AttemptFailed(
                        f"connect timeout: no TCP/TLS connection to {target.host}:{target.port} "
                        f"within {settings.connect_timeout:g} s"
                    )
            if stream is None:
                return self._interrupt_reason()
            watched = _WatchedStream(stream)
            try:
                async with trio.open_nursery() as nursery:
                    return await self._serve(nursery, watched, events, settings, target, deadline, stream)
            except BaseExceptionGroup as group:
                return self._reason_from_group(group)
        except _AttemptFailed as exc:
            self._security_event = exc.security_event
            return str(exc)
        finally:
            if stream is not None:
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(stream)

    async def _open_stream(self, target: _Target, ctx: ssl.SSLContext | None) -> trio.abc.Stream:
        try:
            tcp = await self._connect(target.host, target.port)
        except OSError as exc:
            raise _AttemptFailed(f"cannot connect to {target.host}:{target.port}: {_describe_io_error(exc)}") from None
        if ctx is None:
            return tcp
        tls = trio.SSLStream(tcp, ctx, server_hostname=target.host, https_compatible=True)
        hs = self._handshake
        hs.server_hello = hs.certificate_requested = False
        try:
            await tls.do_handshake()
        except trio.BrokenResourceError as exc:
            await trio.aclose_forcefully(tls)
            raise _AttemptFailed(
                f"TLS handshake with {target.host}:{target.port} failed: {_describe_io_error(exc)}",
                _tls_security_event(exc.__cause__, hs, self._settings.security_profile),
            ) from None
        except BaseException:
            await trio.aclose_forcefully(tls)
            raise
        return tls

    def _reason_from_group(self, group: BaseExceptionGroup) -> str:
        leaves: list[BaseException] = []

        def walk(exc: BaseException) -> None:
            if isinstance(exc, BaseExceptionGroup):
                for sub in exc.exceptions:
                    walk(sub)
            else:
                leaves.append(exc)

        walk(group)
        for exc in leaves:
            if isinstance(exc, _ConsumerGone) or not isinstance(exc, Exception | trio.Cancelled):
                raise exc  # not the network's doing
        for exc in leaves:
            if isinstance(exc, ConnectionRejected):
                try:
                    phrase = http.HTTPStatus(exc.status_code).phrase
                except ValueError:
                    phrase = ""
                if exc.status_code == 401:  # A00.FR.206 / A04: the CSMS refused our credentials
                    self._security_event = FAILED_TO_AUTHENTICATE_AT_CSMS
                hint = " (check station id and BasicAuthPassword)" if exc.status_code in (401, 403) else ""
                hint = " (station id unknown to the CSMS)" if exc.status_code == 404 else hint
                return f"CSMS rejected the WebSocket handshake: HTTP {exc.status_code} {phrase}".rstrip() + hint
        for exc in leaves:
            if not isinstance(exc, trio.Cancelled):
                self._log.debug("websocket error", exc_info=exc)
                return f"WebSocket error: {type(exc).__name__}: {exc}"
        return "connection cancelled"

    async def _serve(
        self,
        nursery: trio.Nursery,
        watched: _WatchedStream,
        events: trio.MemorySendChannel[LinkEvent],
        settings: LinkSettings,
        target: _Target,
        deadline: float,
        raw: trio.abc.Stream,
    ) -> str:
        ws: WebSocketConnection | None = None
        close_with: tuple[int, str] | None = None  # close handshake at teardown, None = just drop
        dead: list[str] = []
        try:
            with self._interruptible() as body:
                with trio.move_on_at(deadline) as handshake:
                    watched.on_broken = handshake.cancel
                    ws = await trio_websocket.wrap_client_stream(
                        nursery,
                        watched,
                        target.host_header,
                        target.resource,
                        subprotocols=[SUBPROTOCOL],
                        extra_headers=list(target.headers),
                        max_message_size=MAX_MESSAGE_SIZE,
                    )
                watched.on_broken = None
                if ws is None:
                    if watched.broken is not None:
                        if target.tls and settings.security_profile == 3:
                            # TLS 1.3: the client certificate is judged after our side of the
                            # handshake: an alert now, or the CSMS hangs up without answering.
                            self._security_event = _tls_security_event(
                                watched.cause, self._handshake, 3) or (
                                INVALID_CHARGING_STATION_CERTIFICATE if not watched.received else None)
                        if target.tls and not watched.received:
                            # TLS 1.3: the CSMS checks the client certificate after our side of
                            # the handshake is done, and may just hang up.
                            return (
                                f"WebSocket handshake failed: the CSMS ended the TLS session before "
                                f"answering ({watched.broken}); client certificate required or refused?"
                            )
                        return f"WebSocket handshake failed: {watched.broken}"
                    return f"connect timeout: no WebSocket handshake response within {settings.connect_timeout:g} s"
                if ws.subprotocol != SUBPROTOCOL:  # §3.2
                    close_with = (1002, f"subprotocol {SUBPROTOCOL} required")
                    return (
                        f"CSMS did not accept subprotocol {SUBPROTOCOL} "
                        f"(selected: {ws.subprotocol or 'none'})"
                    )
                close_with = (1000, "")
                nursery.start_soon(self._pinger, ws, body, dead)
                self._ws = ws
                self._up = True
                self._backoff, self._doublings, self._failed = None, 0, 0  # §5.3: reset on success
                self._log.info("link up: %s%s", target.url, _tls_info(raw))
                await self._emit(events, LinkUp(target.url))
                return await self._receive(ws, events, watched)
            # The body was cancelled: close(), reconnect() or no pong.
            if dead:
                close_with = None  # nobody there to answer a close frame
                return dead[0]
            if self._stop is not None:
                close_with = self._stop
            elif close_with is not None:
                close_with = (1000, "reconnecting")
            return self._interrupt_reason()
        finally:
            self._ws = None
            if (
                ws is not None
                and close_with is not None
                and ws.closed is None
                and not nursery.cancel_scope.cancel_called
            ):
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                    await ws.aclose(*close_with)
            nursery.cancel_scope.cancel()

    async def _receive(
        self, ws: WebSocketConnection, events: trio.MemorySendChannel[LinkEvent], watched: _WatchedStream
    ) -> str:
        get, put, put_now = ws.get_message, events.send, events.send_nowait
        on_frame = self._on_frame
        while True:
            try:
                message = await get()
            except ConnectionClosed as exc:
                if exc.reason is not None and _failed_by_us(ws):
                    return await self._fail(ws, watched, exc.reason)
                return self._closed_reason(exc.reason)
            if message.__class__ is str and on_frame is not None:
                try:
                    await on_frame(message)     # the station, in this task: no hop (issue 16)
                except Exception as exc:        # not the network's doing: run() raises it
                    raise _ConsumerGone("the frame handler failed") from exc
            elif message.__class__ is str:
                try:
                    # no checkpoint of our own per frame: get() is the next one (issue 16)
                    put_now(FrameIn(message))  # type: ignore[arg-type]
                except trio.WouldBlock:      # the station is behind: wait for room
                    try:
                        await put(FrameIn(message))  # type: ignore[arg-type]
                    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                        raise _ConsumerGone("link events channel closed by its receiver") from exc
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    raise _ConsumerGone("link events channel closed by its receiver") from exc
            else:  # OCPP-J messages are JSON text, UTF-8 (Part 4 §4.1.2): no binary frames
                self._log.warning("ignored a binary frame of %d bytes from the CSMS", len(message))

    async def _fail(self, ws: WebSocketConnection, watched: _WatchedStream, reason: trio_websocket.CloseReason) -> str:
        """RFC 6455 7.1.7 _Fail the WebSocket Connection_ on invalid data from the CSMS:
        send a Close frame with the code wsproto chose (7.4.1: 1007 for a text message
        that is not UTF-8, 8.1), then, as a client (7.1.1), wait up to CLOSE_TIMEOUT for
        the CSMS to close TCP. Returns the LinkDown reason."""
        what, close_reason = _FAILURES.get(reason.code, _FAILURES[1002])
        self._log.debug("failing the connection: %s", reason.reason)
        with trio.move_on_after(CLOSE_TIMEOUT) as waiting:
            watched.on_broken = waiting.cancel
            try:
                # trio-websocket's locked writer (the public aclose() is a no-op here:
                # the connection already counts as closed)
                await ws._send(CloseConnection(code=reason.code, reason=close_reason))
            except ConnectionClosed:
                pass  # TCP already gone
            else:
                if watched.broken is None:
                    await trio.sleep_forever()
        watched.on_broken = None
        name = reason.name.replace("_", " ").lower()  # e.g. "invalid frame payload data"
        return f"closed by the station with code {reason.code} ({name}): the CSMS sent {what}"

    def _closed_reason(self, reason: trio_websocket.CloseReason | None) -> str:
        if reason is None:
            return "connection closed"
        if reason.code == 1009 and (reason.reason or "").startswith("Exceeded maximum message size"):
            return f"message from the CSMS larger than {MAX_MESSAGE_SIZE} characters: closed with 1009"
        if reason.code == 1006:
            return "connection lost (closed without a close frame)"
        return f"CSMS closed the connection ({_close_text(reason)})"

    async def _pinger(self, ws: WebSocketConnection, body: trio.CancelScope, dead: list[str]) -> None:
        """§8.4 WebSocketPingInterval; a missing pong means the connection is dead."""
        seq = 0
        last = trio.current_time()  # connection opened / last pong
        while True:
            interval = self._settings.ping_interval
            changed = self._settings_changed
            if interval <= 0:
                await changed.wait()
                continue
            # Next ping `interval` after the last one; an update() re-reads the interval
            # without restarting the period (frequent updates must not starve the pings).
            with trio.move_on_at(last + interval) as idle:
                await changed.wait()
            if not idle.cancelled_caught:
                continue
            timeout = min(interval, PONG_TIMEOUT_MAX)
            seq += 1
            with trio.move_on_after(timeout) as waiting:
                try:
                    await ws.ping(struct.pack("!Q", seq))
                except ConnectionClosed:
                    return
            last = trio.current_time()
            if waiting.cancelled_caught:
                dead.append(f"no pong from the CSMS within {timeout:g} s: connection considered dead")
                body.cancel()
                return


def _tls_info(stream: trio.abc.Stream) -> str:
    if isinstance(stream, trio.SSLStream):
        cipher = stream.cipher()
        return f" ({stream.version()}, {cipher[0] if cipher else '?'})"
    return ""


__all__ = ["MAX_MESSAGE_SIZE", "SUBPROTOCOL", "TLS12_CIPHERS", "Connect", "WebSocketCsmsLink"]
