"""WebSocketCsmsLink against real WebSocket servers on 127.0.0.1 (ephemeral ports).

Certificates are made here with trustme: an ECDSA CSMS certificate for 127.0.0.1 /
localhost under its own root, an unrelated root (wrong CA), and a separate client CA
with a station certificate for security profile 3.
"""
from __future__ import annotations

import contextlib

import base64
import errno
import logging
import random
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing
import trustme
import wsproto
import wsproto.events
from trio_websocket import ConnectionClosed, WebSocketRequest, wrap_server_stream

from adapters.csms_link_ws import MAX_MESSAGE_SIZE, SUBPROTOCOL, WebSocketCsmsLink
from ports.csms_link import FrameIn, LinkClosed, LinkDown, LinkEvent, LinkSettings, LinkUp

ALLOWED_TLS12 = {
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
}
STATION = "CS001"
PASSWORD = "0123456789abcdef0123456789abcdef0123456789"
T = 10  # seconds: upper bound for any one test


# --- PKI ---------------------------------------------------------------------------------------
@dataclass
class Pki:
    csms_ca: trustme.CA
    server: trustme.LeafCert
    client_ca: trustme.CA
    root: str  # PEM of the CSMS root
    wrong_root: str  # PEM of an unrelated root
    client_cert: str
    client_key: str


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    csms_ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    server = csms_ca.issue_cert("127.0.0.1", "localhost", key_type=trustme.KeyType.ECDSA)
    wrong_ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    client_ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    client = client_ca.issue_cert("cs001.stations.example", common_name=STATION, key_type=trustme.KeyType.ECDSA)
    csms_ca.cert_pem.write_to_path(str(d / "root.pem"))
    wrong_ca.cert_pem.write_to_path(str(d / "wrong_root.pem"))
    (d / "client.pem").write_bytes(b"".join(b.bytes() for b in client.cert_chain_pems))
    client.private_key_pem.write_to_path(str(d / "client.key"))
    return Pki(csms_ca, server, client_ca, str(d / "root.pem"), str(d / "wrong_root.pem"),
               str(d / "client.pem"), str(d / "client.key"))


def server_tls(pki: Pki, *, require_client_cert: bool = False, tls12_only: bool = False,
               ciphers: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pki.server.configure_cert(ctx)
    if require_client_cert:
        pki.client_ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
    if tls12_only:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


# --- a test CSMS -------------------------------------------------------------------------------
@dataclass
class Seen:
    """One connection as the test CSMS saw it."""

    at: float
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    proposed: tuple[str, ...] = ()
    tls_version: str | None = None
    cipher: str | None = None
    peer_cert: dict | None = None
    messages: list[str | bytes] = field(default_factory=list)
    close_code: int | None = None
    closed: trio.Event = field(default_factory=trio.Event)


async def accept_and_read(csms: FakeCsms, request: WebSocketRequest, seen: Seen) -> None:
    ws = await request.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in request.proposed_subprotocols else None)
    csms.ws = ws
    csms.up.send_nowait(seen)
    while True:
        try:
            message = await ws.get_message()
        except ConnectionClosed as exc:
            seen.close_code = exc.reason.code if exc.reason else None
            return
        seen.messages.append(message)
        csms.inbox.send_nowait(message)


class FakeCsms:
    """WebSocket server on 127.0.0.1:<ephemeral>; `behaviour` handles each handshake."""

    def __init__(self, behaviour=accept_and_read, ssl_context: ssl.SSLContext | None = None) -> None:
        self.behaviour = behaviour
        self.ssl_context = ssl_context
        self.seen: list[Seen] = []
        self.tls_errors: list[str] = []
        self.ws = None
        self.up, self.up_rx = trio.open_memory_channel[Seen](100)
        self.inbox, self.inbox_rx = trio.open_memory_channel[str | bytes](100)
        self.port = 0

    async def start(self, nursery: trio.Nursery) -> FakeCsms:
        tcp = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        self.port = tcp.socket.getsockname()[1]
        listener = trio.SSLListener(tcp, self.ssl_context, https_compatible=True) if self.ssl_context else tcp
        nursery.start_soon(trio.serve_listeners, self._handle, [listener])
        return self

    def url(self, path: str = "/ocpp") -> str:
        return f"{'wss' if self.ssl_context else 'ws'}://127.0.0.1:{self.port}{path}"

    async def _handle(self, stream: trio.abc.Stream) -> None:
        seen = Seen(at=trio.current_time())
        self.seen.append(seen)
        try:
            if isinstance(stream, trio.SSLStream):
                try:
                    await stream.do_handshake()
                except trio.BrokenResourceError as exc:
                    self.tls_errors.append(str(exc.__cause__))
                    return
                seen.tls_version = stream.version()
                seen.cipher = stream.cipher()[0]
                seen.peer_cert = stream.getpeercert()
            async with trio.open_nursery() as nursery:
                request = await wrap_server_stream(nursery, stream)
                seen.path = request.path
                seen.headers = {k.decode().lower(): v.decode() for k, v in request.headers}
                seen.proposed = tuple(request.proposed_subprotocols)
                await self.behaviour(self, request, seen)
                nursery.cancel_scope.cancel()
        except Exception:  # whatever the client does, the test server survives
            pass
        finally:
            seen.closed.set()
            await trio.aclose_forcefully(stream)


class RawCsms:
    """Bare wsproto server: accepts with ocpp2.0.1, counts pings, answers them or not."""

    def __init__(self, answer_pings: bool) -> None:
        self.answer_pings = answer_pings
        self.pings = 0
        self.connections = 0
        self.port = 0

    async def start(self, nursery: trio.Nursery) -> RawCsms:
        listeners = await nursery.start(trio.serve_tcp, self._handle, 0)
        self.port = listeners[0].socket.getsockname()[1]
        return self

    async def _handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        conn = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        try:
            while data := await stream.receive_some():
                conn.receive_data(data)
                for event in conn.events():
                    if isinstance(event, wsproto.events.Request):
                        await stream.send_all(conn.send(wsproto.events.AcceptConnection(subprotocol=SUBPROTOCOL)))
                    elif isinstance(event, wsproto.events.Ping):
                        self.pings += 1
                        if self.answer_pings:
                            await stream.send_all(conn.send(event.response()))
                    elif isinstance(event, wsproto.events.CloseConnection):
                        await stream.send_all(conn.send(event.response()))
                        return
        except (trio.BrokenResourceError, trio.ClosedResourceError, wsproto.utilities.ProtocolError):
            pass


class BadFrameCsms:
    """Bare wsproto server whose first connection, once open, sends `frame` (raw bytes
    written by hand: wsproto would not build a bad frame), then records the close code
    the station sends back. Later connections stay open."""

    def __init__(self, frame: bytes) -> None:
        self.frame = frame
        self.connections = 0
        self.close_codes: list[int | None] = []
        self.close_reasons: list[str | None] = []
        self.closed = trio.Event()
        self.port = 0

    async def start(self, nursery: trio.Nursery) -> BadFrameCsms:
        listeners = await nursery.start(trio.serve_tcp, self._handle, 0)
        self.port = listeners[0].socket.getsockname()[1]
        return self

    async def _handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        first = self.connections == 1
        conn = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        try:
            while data := await stream.receive_some():
                conn.receive_data(data)
                for event in conn.events():
                    if isinstance(event, wsproto.events.Request):
                        await stream.send_all(conn.send(wsproto.events.AcceptConnection(subprotocol=SUBPROTOCOL)))
                        if first:
                            await stream.send_all(self.frame)
                    elif isinstance(event, wsproto.events.CloseConnection):
                        self.close_codes.append(event.code)
                        self.close_reasons.append(event.reason)
                        await stream.send_all(conn.send(event.response()))
                        return
        except (trio.BrokenResourceError, trio.ClosedResourceError, wsproto.utilities.ProtocolError):
            pass
        finally:
            if first:
                self.closed.set()
            await trio.aclose_forcefully(stream)


# --- helpers -----------------------------------------------------------------------------------
FAST = dict(retry_backoff_wait_minimum=0.01, retry_backoff_random_range=0.0, retry_backoff_repeat_times=0,
            ping_interval=0.0, connect_timeout=5.0)


def settings(url: str, **kw) -> LinkSettings:
    base = dict(csms_url=url, station_id=STATION, basic_auth_password=PASSWORD, **FAST)
    base.update(kw)
    return LinkSettings(**base)


async def next_event(rx: trio.MemoryReceiveChannel[LinkEvent], kind: type) -> LinkEvent:
    while True:
        event = await rx.receive()
        if isinstance(event, kind):
            return event


async def start_link(nursery: trio.Nursery, link: WebSocketCsmsLink):
    tx, rx = trio.open_memory_channel[LinkEvent](1000)
    await nursery.start(link.run, tx)
    return rx


# --- URL, subprotocol, Basic auth, frames ------------------------------------------------------
async def test_url_subprotocol_basic_auth_and_frames_both_ways() -> None:
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms().start(nursery)
            link = WebSocketCsmsLink(settings(csms.url("/ocppj/"), station_id="RDAM 123"))
            rx = await start_link(nursery, link)
            up = await next_event(rx, LinkUp)
            seen = await csms.up_rx.receive()

            # Part 4 §3.1.1 (example 2) and §3.1.2
            assert seen.path == "/ocppj/RDAM%20123"
            assert up.url == f"ws://127.0.0.1:{csms.port}/ocppj/RDAM%20123"
            assert seen.proposed == ("ocpp2.0.1",)
            # TC_A_01_CS: AUTHORIZATION: Basic <base64(<id>:<password>)>
            token = base64.b64encode(f"RDAM 123:{PASSWORD}".encode()).decode()
            assert seen.headers["authorization"] == f"Basic {token}"

            out = '[2,"1","DataTransfer",{"vendorId":"Ünïcødé ⚡ 充电 🚗","data":"' + "x" * 70_000 + '"}]'
            await link.send(out)
            assert await csms.inbox_rx.receive() == out

            await csms.ws.send_message(b"\x00\x01binary")  # OCPP-J is text only: ignored
            inbound = '[3,"1",{"status":"Accepted","data":"ÆØÅ €"}]'
            await csms.ws.send_message(inbound)
            frame = await next_event(rx, FrameIn)
            assert frame == FrameIn(inbound)

            await link.close()
            assert rx.receive_nowait() == LinkDown("closed by the station (code 1000)", 0, None)
            nursery.cancel_scope.cancel()


async def test_on_frame_is_called_by_the_reading_task_in_order_and_its_failure_surfaces() -> None:
    """Issue 16: with on_frame the frames go to the station by a direct call from the task that
    reads them (in order, no channel in between); an exception of the station's is raised by
    run(), never taken for a network problem."""
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms().start(nursery)
            link = WebSocketCsmsLink(settings(csms.url()))
            got: list[tuple[str, object]] = []

            async def on_frame(text: str) -> None:
                got.append((text, trio.lowlevel.current_task()))
                if text == "boom":
                    raise KeyError("a bug in the station")

            tx, rx = trio.open_memory_channel[LinkEvent](1000)
            failed: list[BaseException] = []

            async def run_link() -> None:
                try:
                    await link.run(tx, on_frame=on_frame)
                except KeyError as exc:
                    failed.append(exc)

            nursery.start_soon(run_link)
            await next_event(rx, LinkUp)
            await csms.up_rx.receive()
            frames = [f'[3,"{i}",{{}}]' for i in range(20)]
            for frame in frames:
                await csms.ws.send_message(frame)
            while len(got) < len(frames):
                await trio.sleep(0.01)
            assert [text for text, _ in got] == frames
            assert len({task for _, task in got}) == 1 and got[0][1] is not trio.lowlevel.current_task()
            assert not [e for e in _drain(rx) if isinstance(e, FrameIn)]     # nothing through the channel

            await csms.ws.send_message("boom")
            while not failed:
                await trio.sleep(0.01)
            assert isinstance(failed[0], KeyError)
            nursery.cancel_scope.cancel()


def _drain(rx: trio.MemoryReceiveChannel[LinkEvent]) -> list[LinkEvent]:
    out = []
    with contextlib.suppress(trio.WouldBlock):
        while True:
            out.append(rx.receive_nowait())
    return out


async def test_no_authorization_header_without_password() -> None:
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms().start(nursery)
            link = WebSocketCsmsLink(settings(csms.url(), basic_auth_password=None))
            rx = await start_link(nursery, link)
            await next_event(rx, LinkUp)
            seen = await csms.up_rx.receive()
            assert "authorization" not in seen.headers
            assert seen.path == f"/ocpp/{STATION}"
            await link.close()
            nursery.cancel_scope.cancel()


# --- handshake failures --------------------------------------------------------------------------
async def test_subprotocol_not_accepted_is_reported_and_retried() -> None:
    async def no_subprotocol(csms: FakeCsms, request: WebSocketRequest, seen: Seen) -> None:
        ws = await request.accept(subprotocol=None)  # §3.2: no Sec-WebSocket-Protocol, then close
        try:
            await ws.get_message()
        except ConnectionClosed as exc:
            seen.close_code = exc.reason.code if exc.reason else None

    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms(no_subprotocol).start(nursery)
            link = WebSocketCsmsLink(settings(csms.url()))
            rx = await start_link(nursery, link)
            first = await rx.receive()
            assert isinstance(first, LinkDown)
            assert first.reason.startswith("CSMS did not accept subprotocol ocpp2.0.1")
            assert first.attempt == 1 and first.retry_in == pytest.approx(0.01)
            second = await rx.receive()
            assert isinstance(second, LinkDown) and "ocpp2.0.1" in second.reason
            assert second.attempt == 2
            assert len(csms.seen) >= 2
            await csms.seen[0].closed.wait()
            assert csms.seen[0].close_code == 1002  # we closed the socket
            with pytest.raises(LinkClosed):
                await link.send("[]")
            await link.close()
            nursery.cancel_scope.cancel()


async def test_http_401_reports_the_status_code() -> None:
    async def reject(csms: FakeCsms, request: WebSocketRequest, seen: Seen) -> None:
        await request.reject(401, body=b"bad password")

    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms(reject).start(nursery)
            link = WebSocketCsmsLink(settings(csms.url()))
            rx = await start_link(nursery, link)
            down = await rx.receive()
            assert isinstance(down, LinkDown)
            assert "HTTP 401" in down.reason and "Unauthorized" in down.reason
            assert down.security_event == "FailedToAuthenticateAtCsms"  # A04
            assert (await rx.receive()).attempt == 2  # and it keeps trying
            await link.close()
            nursery.cancel_scope.cancel()


async def test_connection_refused_keeps_retrying() -> None:
    tcp = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = tcp.socket.getsockname()[1]
    await tcp.aclose()  # nobody listens there now
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            link = WebSocketCsmsLink(settings(f"ws://127.0.0.1:{port}/ocpp"))
            rx = await start_link(nursery, link)
            for attempt in (1, 2, 3):
                down = await rx.receive()
                assert isinstance(down, LinkDown) and down.attempt == attempt
                assert f"cannot connect to 127.0.0.1:{port}" in down.reason
                assert down.security_event is None  # not a security check
            await link.close()
            nursery.cancel_scope.cancel()


# --- the transport seam ---------------------------------------------------------------------------
async def test_connect_seam_carries_the_link_over_any_stream(autojump_clock: trio.testing.MockClock) -> None:
    """`connect(host, port)` is the link's one transport: here in-memory streams under the
    MockClock (the conformance rig's way). A refused attempt is reported and retried after
    the §5.3 back-off (in mock time); the WebSocket handshake, Basic auth and frames are
    the same as over TCP."""
    csms = FakeCsms()
    csms.port = 9999
    targets: list[tuple[str, int]] = []
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            async def connect(host: str, port: int) -> trio.abc.Stream:
                targets.append((host, port))
                if len(targets) == 1:
                    raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
                station_end, csms_end = trio.testing.memory_stream_pair()
                nursery.start_soon(csms._handle, csms_end)
                return station_end

            link = WebSocketCsmsLink(settings(csms.url(), retry_backoff_wait_minimum=30.0), connect=connect)
            rx = await start_link(nursery, link)
            down = await rx.receive()
            assert down == LinkDown("cannot connect to 127.0.0.1:9999: Connection refused", 1, 30.0)
            waited_from = trio.current_time()
            assert await next_event(rx, LinkUp) == LinkUp("ws://127.0.0.1:9999/ocpp/CS001")
            assert trio.current_time() - waited_from >= 30.0
            seen = await csms.up_rx.receive()
            token = base64.b64encode(f"{STATION}:{PASSWORD}".encode()).decode()
            assert (seen.path, seen.headers["authorization"]) == ("/ocpp/CS001", f"Basic {token}")
            await link.send('[2,"1","Heartbeat",{}]')
            assert await csms.inbox_rx.receive() == '[2,"1","Heartbeat",{}]'
            await csms.ws.send_message('[3,"1",{"currentTime":"2025-01-06T08:00:00Z"}]')
            assert await next_event(rx, FrameIn) == FrameIn('[3,"1",{"currentTime":"2025-01-06T08:00:00Z"}]')
            await link.close()
            await seen.closed.wait()
            assert seen.close_code == 1000
            nursery.cancel_scope.cancel()
    assert targets == [("127.0.0.1", 9999)] * 2


# --- reconnecting --------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["close_frame", "tcp_reset"])
async def test_server_drop_gives_link_down_then_up_again(how: str) -> None:
    async def drop_first(csms: FakeCsms, request: WebSocketRequest, seen: Seen) -> None:
        if len(csms.seen) > 1:
            return await accept_and_read(csms, request, seen)
        ws = await request.accept(subprotocol=SUBPROTOCOL)
        csms.up.send_nowait(seen)
        if how == "close_frame":
            await ws.aclose(4000, "going for maintenance")
        # else: returning makes FakeCsms close the TCP stream without a close frame

    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms(drop_first).start(nursery)
            link = WebSocketCsmsLink(settings(csms.url()))
            rx = await start_link(nursery, link)
            assert isinstance(await rx.receive(), LinkUp)
            down = await rx.receive()
            assert isinstance(down, LinkDown)
            if how == "close_frame":
                assert "code 4000" in down.reason and "going for maintenance" in down.reason
            else:
                assert "connection lost" in down.reason
            assert down.attempt == 0 and down.retry_in == pytest.approx(0.01)
            assert isinstance(await rx.receive(), LinkUp)
            assert len(csms.seen) == 2
            await link.send("[2,\"9\",\"Heartbeat\",{}]")
            assert await csms.inbox_rx.receive() == "[2,\"9\",\"Heartbeat\",{}]"
            await link.close()
            nursery.cancel_scope.cancel()


def expected_backoff(seed: int, wait_min: float, rnd_range: float, repeat: int, n: int) -> list[float]:
    """Part 4 §5.3 written out independently: b1 = min + r; b(k+1) = 2 b(k) + r while
    fewer than `repeat` doublings were made; afterwards the last back-off time stays."""
    rng = random.Random(seed)
    out: list[float] = []
    doublings = 0
    for k in range(n):
        if k == 0:
            out.append(wait_min + rng.uniform(0, rnd_range))
        elif doublings < repeat:
            out.append(2 * out[-1] + rng.uniform(0, rnd_range))
            doublings += 1
        else:
            out.append(out[-1])
    return out


@pytest.fixture
def clock() -> trio.testing.MockClock:
    # virtual time; jumps when everything has been idle for 10 ms of real time
    return trio.testing.MockClock(autojump_threshold=0.01)


async def test_backoff_sequence_follows_part4_5_3(clock: trio.testing.MockClock) -> None:
    failures = 6

    async def fail_then_accept(csms: FakeCsms, request: WebSocketRequest, seen: Seen) -> None:
        n = len(csms.seen)
        if n <= failures or n == failures + 2:
            await request.reject(503)
        elif n == failures + 1:  # up once, then dropped by the CSMS
            ws = await request.accept(subprotocol=SUBPROTOCOL)
            await ws.aclose(1001)
        else:
            await accept_and_read(csms, request, seen)

    s = dict(retry_backoff_wait_minimum=5.0, retry_backoff_random_range=10.0, retry_backoff_repeat_times=3)
    with trio.fail_after(100_000):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms(fail_then_accept).start(nursery)
            link = WebSocketCsmsLink(settings(csms.url(), **s), rng=random.Random(42))
            rx = await start_link(nursery, link)
            downs = [await rx.receive() for _ in range(failures)]
            assert all(isinstance(d, LinkDown) and "HTTP 503" in d.reason for d in downs)
            assert [d.attempt for d in downs] == [1, 2, 3, 4, 5, 6]
            want = expected_backoff(42, 5.0, 10.0, 3, failures)
            assert [d.retry_in for d in downs] == pytest.approx(want)
            assert want[3] == want[4] == want[5]  # 3 doublings, then constant
            assert want[1] >= 2 * want[0] and want[3] >= 2 * want[2]  # TC_B_57_CS step 7
            assert isinstance(await rx.receive(), LinkUp)
            # the waits really happened (virtual time)
            starts = [seen.at for seen in csms.seen]
            for k in range(failures):
                assert want[k] - 1e-6 <= starts[k + 1] - starts[k] < want[k] + 1

            down = await rx.receive()  # connection lost after success: the sequence starts over
            assert isinstance(down, LinkDown) and down.attempt == 0
            rng = random.Random(42)
            for _ in range(4):  # draws used so far: one per growing step
                rng.uniform(0, 10.0)
            assert down.retry_in == pytest.approx(5.0 + rng.uniform(0, 10.0))
            again = await rx.receive()  # the 503 right after: doubled from the fresh start
            assert isinstance(again, LinkDown) and again.attempt == 1
            assert again.retry_in == pytest.approx(2 * down.retry_in + rng.uniform(0, 10.0))
            assert isinstance(await rx.receive(), LinkUp)
            await link.close()
            nursery.cancel_scope.cancel()


async def test_backoff_tc_b_57_without_randomness(clock: trio.testing.MockClock) -> None:
    async def always_reject(csms: FakeCsms, request: WebSocketRequest, seen: Seen) -> None:
        await request.reject(503)

    s = dict(retry_backoff_wait_minimum=7.0, retry_backoff_random_range=0.0, retry_backoff_repeat_times=2)
    with trio.fail_after(100_000):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms(always_reject).start(nursery)
            link = WebSocketCsmsLink(settings(csms.url(), **s))
            rx = await start_link(nursery, link)
            waits = [(await rx.receive()).retry_in for _ in range(5)]
            assert waits == [7.0, 14.0, 28.0, 28.0, 28.0]
            # update(): a new back-off rule applies from the next wait on
            link.update(settings(csms.url(), **{**s, "retry_backoff_wait_minimum": 1.0}))
            # (the 28 s wait in progress runs out; the sequence then starts over)
            waits = [(await rx.receive()).retry_in for _ in range(3)]
            assert waits == [1.0, 2.0, 4.0]
            await link.close()
            nursery.cancel_scope.cancel()


async def test_reconnect_now_skips_backoff() -> None:
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms().start(nursery)
            link = WebSocketCsmsLink(settings(csms.url(), retry_backoff_wait_minimum=3600.0))
            rx = await start_link(nursery, link)
            await next_event(rx, LinkUp)
            link.reconnect()
            down = await rx.receive()
            assert down == LinkDown("reconnect requested", 0, 0.0)
            assert isinstance(await rx.receive(), LinkUp)
            await csms.seen[0].closed.wait()
            assert csms.seen[0].close_code == 1000
            assert len(csms.seen) == 2
            await link.close()
            nursery.cancel_scope.cancel()


# --- TLS: security profiles 2 and 3 --------------------------------------------------------------
async def test_profile2_with_the_right_root(pki: Pki) -> None:
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms(ssl_context=server_tls(pki)).start(nursery)
            link = WebSocketCsmsLink(settings(csms.url(), security_profile=2, csms_root_ca=pki.root))
            rx = await start_link(nursery, link)
            up = await next_event(rx, LinkUp)
            assert up.url.startswith("wss://127.0.0.1:")
            seen = await csms.up_rx.receive()
            assert seen.tls_version in ("TLSv1.2", "TLSv1.3")
            assert seen.headers["authorization"].startswith("Basic ")  # profile 2: Basic auth too
            await link.send("[2,\"1\",\"Heartbeat\",{}]")
            assert await csms.inbox_rx.receive() == "[2,\"1\",\"Heartbeat\",{}]"
            await link.close()
            nursery.cancel_scope.cancel()


async def test_profile2_with_a_wrong_root_fails_clearly(pki: Pki) -> None:
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms(ssl_context=server_tls(pki)).start(nursery)
            link = WebSocketCsmsLink(settings(csms.url(), security_profile=2, csms_root_ca=pki.wrong_root))
            rx = await start_link(nursery, link)
            down = await rx.receive()
            assert isinstance(down, LinkDown)
            assert "TLS handshake" in down.reason and "CSMS certificate rejected" in down.reason
            assert "certificate verify failed" in down.reason or "unable to get local issuer" in down.reason
            assert down.security_event == "InvalidCsmsCertificate"  # A04, TC_A_05_CS step 14
            assert (await rx.receive()).attempt == 2
            await link.close()
            nursery.cancel_scope.cancel()


async def test_profile2_host_name_is_verified(pki: Pki) -> None:
    other = pki.csms_ca.issue_cert("csms.example.com")  # right root, wrong host
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    other.configure_cert(ctx)
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms(ssl_context=ctx).start(nursery)
            link = WebSocketCsmsLink(settings(csms.url(), security_profile=2, csms_root_ca=pki.root))
            rx = await start_link(nursery, link)
            down = await rx.receive()
            assert isinstance(down, LinkDown) and "CSMS certificate rejected" in down.reason
            assert "mismatch" in down.reason.lower()
            assert down.security_event == "InvalidCsmsCertificate"
            await link.close()
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("tls12_only", [False, True])
async def test_profile3_client_certificate(pki: Pki, tls12_only: bool) -> None:
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            ctx = server_tls(pki, require_client_cert=True, tls12_only=tls12_only)
            csms = await FakeCsms(ssl_context=ctx).start(nursery)
            link = WebSocketCsmsLink(settings(
                csms.url(), security_profile=3, csms_root_ca=pki.root,
                client_cert=pki.client_cert, client_key=pki.client_key,
            ))
            rx = await start_link(nursery, link)
            await next_event(rx, LinkUp)
            seen = await csms.up_rx.receive()
            assert ("commonName", STATION) in [rdn[0] for rdn in seen.peer_cert["subject"]]
            assert "authorization" not in seen.headers  # profile 3: no Basic auth
            assert seen.tls_version == ("TLSv1.2" if tls12_only else "TLSv1.3")
            await link.close()
            nursery.cancel_scope.cancel()


def refusing_tls_server(ctx: ssl.SSLContext, connections: int) -> tuple[int, Callable[[], None]]:
    """Blocking stdlib TLS server (in a thread): real OpenSSL alerts when the handshake fails."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(T)

    def serve() -> None:
        with sock:
            for _ in range(connections):
                conn, _ = sock.accept()
                conn.settimeout(T)
                try:
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
                except (ssl.SSLError, OSError):
                    conn.close()

    return sock.getsockname()[1], serve


@pytest.mark.parametrize("tls12_only", [False, True])
async def test_without_client_certificate_the_mtls_csms_refuses(pki: Pki, tls12_only: bool) -> None:
    ctx = server_tls(pki, require_client_cert=True, tls12_only=tls12_only)
    port, serve = refusing_tls_server(ctx, connections=2)
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(trio.to_thread.run_sync, serve, abandon_on_cancel=True))
            # profile 2 presents no client certificate
            link = WebSocketCsmsLink(settings(f"wss://127.0.0.1:{port}/ocpp", security_profile=2,
                                              csms_root_ca=pki.root))
            rx = await start_link(nursery, link)
            down = await rx.receive()
            assert isinstance(down, LinkDown)
            assert down.security_event is None  # profile 2 has no certificate to refuse: a misconfiguration
            if tls12_only:  # the alert arrives during the TLS handshake
                assert "TLS handshake" in down.reason and "HANDSHAKE_FAILURE" in down.reason, down.reason
            else:
                # TLS 1.3: the CSMS refuses after our side of the handshake is done, with the
                # alert "certificate required" -- or a TCP reset that overtakes it (our upgrade
                # request was already on its way and is never read).
                assert "CERTIFICATE_REQUIRED" in down.reason or "client certificate" in down.reason, down.reason
            assert (await rx.receive()).attempt == 2
            await link.close()
            nursery.cancel_scope.cancel()


async def test_an_expired_csms_certificate_is_an_invalid_csms_certificate(pki: Pki) -> None:
    expired = pki.csms_ca.issue_cert("127.0.0.1", key_type=trustme.KeyType.ECDSA,
                                     not_before=datetime(2020, 1, 1, tzinfo=timezone.utc),
                                     not_after=datetime(2021, 1, 1, tzinfo=timezone.utc))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    expired.configure_cert(ctx)
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms(ssl_context=ctx).start(nursery)
            link = WebSocketCsmsLink(settings(csms.url(), security_profile=2, csms_root_ca=pki.root))
            rx = await start_link(nursery, link)
            down = await rx.receive()
            assert isinstance(down, LinkDown) and "expired" in down.reason, down.reason
            assert down.security_event == "InvalidCsmsCertificate"  # A00.FR.311 / A04
            assert [x.path for x in csms.seen] == [""]  # TCP only: no upgrade request sent
            await link.close()
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("tls12_only", [False, True])
async def test_a_client_certificate_the_csms_refuses(pki: Pki, tls12_only: bool) -> None:
    """Profile 3 with a certificate of a CA the CSMS does not trust: InvalidChargingStationCertificate
    (TLS 1.2: the alert ends the handshake; TLS 1.3: it comes, or the CSMS hangs up, after ours)."""
    other_ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    ctx = server_tls(pki, tls12_only=tls12_only)
    other_ca.configure_trust(ctx)  # trusts only other_ca for clients
    ctx.verify_mode = ssl.CERT_REQUIRED
    port, serve = refusing_tls_server(ctx, connections=1)
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(trio.to_thread.run_sync, serve, abandon_on_cancel=True))
            link = WebSocketCsmsLink(settings(
                f"wss://127.0.0.1:{port}/ocpp", security_profile=3, csms_root_ca=pki.root,
                client_cert=pki.client_cert, client_key=pki.client_key))
            rx = await start_link(nursery, link)
            down = await rx.receive()
            assert isinstance(down, LinkDown)
            assert down.security_event == "InvalidChargingStationCertificate", down.reason
            await link.close()
            nursery.cancel_scope.cancel()


async def test_tls12_cipher_suites_are_the_ocpp_ones(pki: Pki) -> None:
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms(ssl_context=server_tls(pki, tls12_only=True)).start(nursery)
            link = WebSocketCsmsLink(settings(csms.url(), security_profile=2, csms_root_ca=pki.root))
            rx = await start_link(nursery, link)
            await next_event(rx, LinkUp)
            seen = await csms.up_rx.receive()
            assert seen.tls_version == "TLSv1.2"
            assert seen.cipher in ALLOWED_TLS12
            await link.close()
            nursery.cancel_scope.cancel()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
@pytest.mark.parametrize("case", ["other_tls12_suites_only", "tls11_only"])
async def test_no_connection_outside_the_ocpp_tls_rules(pki: Pki, case: str) -> None:
    if case == "other_tls12_suites_only":  # A00.FR.319: none of the four suites
        ctx = server_tls(pki, tls12_only=True, ciphers="ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA256")
        alert, event = "HANDSHAKE_FAILURE", "InvalidTLSCipherSuite"
    else:  # A00.FR.313: TLS 1.2 or above only
        ctx = server_tls(pki, ciphers="DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        alert, event = "PROTOCOL_VERSION", "InvalidTLSVersion"
    port, serve = refusing_tls_server(ctx, connections=1)
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(trio.to_thread.run_sync, serve, abandon_on_cancel=True))
            link = WebSocketCsmsLink(settings(f"wss://127.0.0.1:{port}/ocpp", security_profile=2,
                                              csms_root_ca=pki.root))
            rx = await start_link(nursery, link)
            down = await rx.receive()
            assert isinstance(down, LinkDown)
            assert "TLS handshake" in down.reason and alert in down.reason, down.reason
            assert down.security_event == event  # A04
            await link.close()
            nursery.cancel_scope.cancel()


async def test_missing_certificate_files_are_named_and_retried(pki: Pki, tmp_path: Path) -> None:
    missing = str(tmp_path / "station.pem")
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms(ssl_context=server_tls(pki, require_client_cert=True)).start(nursery)
            link = WebSocketCsmsLink(settings(
                csms.url(), security_profile=3, csms_root_ca=pki.root, client_cert=missing,
                client_key=pki.client_key,
            ))
            rx = await start_link(nursery, link)
            for attempt in (1, 2):
                down = await rx.receive()
                assert isinstance(down, LinkDown) and down.attempt == attempt
                assert "client_cert" in down.reason and missing in down.reason
            assert csms.seen == []  # nothing was sent to the network
            # the installer puts the file in place: the next attempt picks it up
            Path(missing).write_bytes(Path(pki.client_cert).read_bytes())
            await next_event(rx, LinkUp)
            await link.close()
            nursery.cancel_scope.cancel()


def test_configuration_errors_name_the_field(pki: Pki) -> None:
    with pytest.raises(ValueError, match="csms_url"):
        WebSocketCsmsLink(settings("wss://127.0.0.1:1/ocpp", security_profile=1))
    with pytest.raises(ValueError, match="csms_url"):
        WebSocketCsmsLink(settings("ws://127.0.0.1:1/ocpp", security_profile=2, csms_root_ca=pki.root))
    with pytest.raises(ValueError, match="csms_url"):
        WebSocketCsmsLink(settings("http://127.0.0.1:1/ocpp"))
    with pytest.raises(ValueError, match="csms_root_ca"):
        WebSocketCsmsLink(settings("wss://127.0.0.1:1/ocpp", security_profile=2))
    with pytest.raises(ValueError, match="client_cert"):
        WebSocketCsmsLink(settings("wss://127.0.0.1:1/ocpp", security_profile=3, csms_root_ca=pki.root))
    with pytest.raises(ValueError, match="station_id"):
        WebSocketCsmsLink(settings("ws://127.0.0.1:1/ocpp", station_id="CS:1"))
    with pytest.raises(ValueError, match="ping_interval"):
        WebSocketCsmsLink(settings("ws://127.0.0.1:1/ocpp", ping_interval=-1))
    link = WebSocketCsmsLink(settings("ws://127.0.0.1:1/ocpp"))
    with pytest.raises(ValueError, match="csms_url"):
        link.update(settings("ws://127.0.0.1:1/ocpp", security_profile=3, csms_root_ca=pki.root,
                             client_cert=pki.client_cert, client_key=pki.client_key))


# --- keep-alive ----------------------------------------------------------------------------------
async def test_no_pong_means_dead_connection() -> None:
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await RawCsms(answer_pings=False).start(nursery)
            link = WebSocketCsmsLink(settings(f"ws://127.0.0.1:{csms.port}/ocpp", ping_interval=0.1,
                                              retry_backoff_wait_minimum=3600.0))
            rx = await start_link(nursery, link)
            await next_event(rx, LinkUp)
            down = await rx.receive()
            assert isinstance(down, LinkDown) and "no pong" in down.reason, down
            assert csms.pings == 1
            with pytest.raises(LinkClosed):
                await link.send("[]")
            await link.close()
            nursery.cancel_scope.cancel()


async def test_pings_answered_keep_the_link_and_interval_updates_at_once() -> None:
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await RawCsms(answer_pings=True).start(nursery)
            s = settings(f"ws://127.0.0.1:{csms.port}/ocpp", ping_interval=0.0)
            link = WebSocketCsmsLink(s)
            rx = await start_link(nursery, link)
            await next_event(rx, LinkUp)
            await trio.sleep(0.3)
            assert csms.pings == 0  # 0 = no client pings (§8.4)
            link.update(replace(s, ping_interval=0.1))
            await trio.sleep(0.6)
            assert csms.pings >= 4
            # frequent update() calls (e.g. other variables set by the CSMS) do not starve pings
            before = csms.pings
            for _ in range(20):
                link.update(replace(s, ping_interval=0.1))
                await trio.sleep(0.03)
            assert csms.pings - before >= 4
            assert rx.statistics().current_buffer_used == 0  # no LinkDown
            assert csms.connections == 1
            await link.close()
            nursery.cancel_scope.cancel()


# --- send / close / cancel / limits --------------------------------------------------------------
async def test_send_while_down_raises_link_closed() -> None:
    link = WebSocketCsmsLink(settings("ws://127.0.0.1:1/ocpp"))
    with trio.fail_after(T), pytest.raises(LinkClosed):
        await link.send("[2,\"1\",\"Heartbeat\",{}]")


async def test_close_sends_1000_and_run_returns() -> None:
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms().start(nursery)
            link = WebSocketCsmsLink(settings(csms.url()))
            tx, rx = trio.open_memory_channel[LinkEvent](100)
            returned = trio.Event()

            async def run_link(task_status=trio.TASK_STATUS_IGNORED) -> None:
                await link.run(tx, task_status=task_status)
                returned.set()

            await nursery.start(run_link)
            await next_event(rx, LinkUp)
            seen = await csms.up_rx.receive()
            await link.close(1000, "bye")
            await returned.wait()
            await seen.closed.wait()
            assert seen.close_code == 1000
            with pytest.raises(LinkClosed):
                await link.send("[]")
            assert len(csms.seen) == 1  # no reconnect after close()
            nursery.cancel_scope.cancel()


async def test_cancelling_run_closes_normally_and_promptly() -> None:
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms().start(nursery)
            link = WebSocketCsmsLink(settings(csms.url()))
            tx, rx = trio.open_memory_channel[LinkEvent](100)
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as inner:
                    await inner.start(link.run, tx)
                    await next_event(rx, LinkUp)
                    seen = await csms.up_rx.receive()
                    started = trio.current_time()
                    scope.cancel()
            assert trio.current_time() - started < 1.5
            await seen.closed.wait()
            assert seen.close_code == 1000
            nursery.cancel_scope.cancel()


async def test_cancelling_run_while_backing_off_returns_at_once() -> None:
    with trio.fail_after(T):
        link = WebSocketCsmsLink(settings("ws://127.0.0.1:1/ocpp", retry_backoff_wait_minimum=3600.0))
        tx, rx = trio.open_memory_channel[LinkEvent](100)
        with trio.move_on_after(0.3):
            await link.run(tx)
        assert isinstance(rx.receive_nowait(), LinkDown)


async def test_oversized_message_closes_with_1009_and_reconnects() -> None:
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await FakeCsms().start(nursery)
            link = WebSocketCsmsLink(settings(csms.url()))
            rx = await start_link(nursery, link)
            await next_event(rx, LinkUp)
            seen = await csms.up_rx.receive()
            await csms.ws.send_message("x" * (MAX_MESSAGE_SIZE + 1))
            down = await rx.receive()
            assert isinstance(down, LinkDown) and "1009" in down.reason
            await seen.closed.wait()
            assert seen.close_code == 1009
            assert isinstance(await rx.receive(), LinkUp)
            await csms.ws.send_message("x" * MAX_MESSAGE_SIZE)  # at the limit: fine
            assert (await next_event(rx, FrameIn)).text == "x" * MAX_MESSAGE_SIZE
            await link.close()
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    "frame, code, reason, sent",
    [
        # FIN + text, unmasked (server), 6 bytes: ["<ff><fe>"]
        (b"\x81\x06" + b'["\xff\xfe"]', 1007, "invalid frame payload data",
         "invalid UTF-8"),
        # split across two frames, the second ends inside a 3-byte sequence ("€" cut short)
        (b"\x01\x02" + b'["' + b"\x80\x03" + b"\xe2\x82\x22", 1007, "invalid frame payload data",
         "invalid UTF-8"),
        # RSV1 set without a negotiated extension
        (b"\xc1\x02[]", 1002, "protocol error", "a frame the WebSocket protocol does not allow"),
    ],
    ids=["invalid-utf8", "invalid-utf8-fragmented", "reserved-bit"],
)
async def test_invalid_data_from_the_csms_is_answered_with_a_close_frame_and_reconnects(
        caplog, frame: bytes, code: int, reason: str, sent: str) -> None:
    """RFC 6455 8.1 / 7.1.7 / 7.4.1: a text message that is not UTF-8 (or a frame the
    protocol forbids) fails the connection: the station sends a Close frame with 1007
    (1002), logs that it closed because of what the CSMS sent (not that the CSMS
    closed), and reconnects."""
    caplog.set_level(logging.INFO, logger="evse.link")
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = await BadFrameCsms(frame).start(nursery)
            link = WebSocketCsmsLink(settings(f"ws://127.0.0.1:{csms.port}/ocpp"))
            rx = await start_link(nursery, link)
            assert isinstance(await rx.receive(), LinkUp)
            down = await rx.receive()  # no FrameIn: the message is not handed on
            assert isinstance(down, LinkDown), down
            assert down.reason == f"closed by the station with code {code} ({reason}): the CSMS sent {sent}"
            assert down.attempt == 0 and down.retry_in == pytest.approx(0.01)
            await csms.closed.wait()
            assert csms.close_codes == [code]
            assert csms.close_reasons == [
                "invalid UTF-8" if code == 1007 else "protocol error"]
            assert isinstance(await rx.receive(), LinkUp)  # reconnected as after any link loss
            assert csms.connections == 2
            await link.close()
            nursery.cancel_scope.cancel()
    lines = [r.getMessage() for r in caplog.records if r.name == "evse.link" and "link down" in r.getMessage()]
    assert lines == [f"link down: {down.reason} (failed attempts 0, retry in 0.0 s)"]
    assert not any("CSMS closed" in r.getMessage() for r in caplog.records)


async def test_server_accepting_tcp_but_never_answering_times_out() -> None:
    async def mute(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, mute, 0)
            port = listeners[0].socket.getsockname()[1]
            link = WebSocketCsmsLink(settings(f"ws://127.0.0.1:{port}/ocpp", connect_timeout=0.2))
            rx = await start_link(nursery, link)
            down = await rx.receive()
            assert isinstance(down, LinkDown) and "connect timeout" in down.reason
            await link.close()
            nursery.cancel_scope.cancel()


async def test_server_closing_during_handshake_is_reported_at_once() -> None:
    async def slam(stream: trio.SocketStream) -> None:
        await stream.receive_some()
        await stream.aclose()

    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, slam, 0)
            port = listeners[0].socket.getsockname()[1]
            link = WebSocketCsmsLink(settings(f"ws://127.0.0.1:{port}/ocpp", connect_timeout=30.0))
            rx = await start_link(nursery, link)
            with trio.fail_after(2):  # not the 30 s connect timeout
                down = await rx.receive()
            assert isinstance(down, LinkDown) and "handshake" in down.reason
            await link.close()
            nursery.cancel_scope.cancel()
