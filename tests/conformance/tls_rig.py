"""TLS for the conformance tests of blocks A and B (real_clock): a test PKI made with trustme and
`Endpoint`, an OCTT endpoint on loopback that does the TLS handshake itself (a list of server
contexts, one per connection, then a default one) and hands the connection to the DevCsms
(`serve_stream`). This is how the OCTT presents an invalid certificate or an old TLS version on
the first attempt and a valid one afterwards (TC_A_05, TC_A_06), and how a second OCTT endpoint
of another configuration slot is played (TC_A_19.., TC_B_45..)."""
from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import trio
import trustme

from devtools.dev_csms import DevCsms
from tests.conformance.conftest import STATION_ID


@dataclass
class Pki:
    """The OCTT's CA (and a second one, TC_B_50), its server certificate for 127.0.0.1 and the
    station's CA; `write(folder)` puts the station's files there."""

    csms_ca: trustme.CA = field(default_factory=lambda: trustme.CA(key_type=trustme.KeyType.ECDSA))
    csms_ca2: trustme.CA = field(default_factory=lambda: trustme.CA(key_type=trustme.KeyType.ECDSA))
    station_ca: trustme.CA = field(default_factory=lambda: trustme.CA(key_type=trustme.KeyType.ECDSA))

    def write(self, folder: Path, *, roots: tuple[trustme.CA, ...] | None = None) -> None:
        """csms-root.pem (the CSMS roots), station.pem + station.key (the station certificate)."""
        roots = roots if roots is not None else (self.csms_ca,)
        (folder / "csms-root.pem").write_bytes(b"".join(ca.cert_pem.bytes() for ca in roots))
        leaf = self.station_ca.issue_cert(f"{STATION_ID.lower()}.stations.example", common_name=STATION_ID,
                                          key_type=trustme.KeyType.ECDSA)
        leaf.private_key_pem.write_to_path(str(folder / "station.key"))
        (folder / "station.pem").write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))

    def server(self, *, ca: trustme.CA | None = None, client_cert: bool = False, host: str = "127.0.0.1",
               expired: bool = False, tls11_only: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        kw = {}
        if expired:
            kw = {"not_before": datetime(2020, 1, 1, tzinfo=timezone.utc),
                  "not_after": datetime(2021, 1, 1, tzinfo=timezone.utc)}
        (ca or self.csms_ca).issue_cert(host, key_type=trustme.KeyType.ECDSA, **kw).configure_cert(ctx)
        if client_cert:
            self.station_ca.configure_trust(ctx)
            ctx.verify_mode = ssl.CERT_REQUIRED
        if tls11_only:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        return ctx


@dataclass
class Seen:
    """One connection at an Endpoint: the TLS version and cipher, the station's certificate, or
    why the handshake failed."""

    tls_version: str | None = None
    cipher: str | None = None
    peer_cn: str | None = None
    failed: str | None = None


class Endpoint:
    """An OCTT endpoint on 127.0.0.1: TCP, TLS with `first.pop(0)` (then `then`; None: plain ws),
    and the DevCsms on the resulting stream."""

    def __init__(self, then: ssl.SSLContext | None, first: list[ssl.SSLContext] | None = None,
                 csms: DevCsms | None = None):
        self.csms, self.then, self.first = csms, then, list(first or ())
        self.port = 0
        self.seen: list[Seen] = []

    def url(self, path: str = "/ocpp") -> str:
        return f"{'wss' if self.then is not None else 'ws'}://127.0.0.1:{self.port}{path}"

    async def start(self, nursery: trio.Nursery) -> Endpoint:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, self._handle, listeners)
        return self

    def attach(self, csms: DevCsms) -> None:
        """The DevCsms the connections go to (conftest's `on_csms`)."""
        self.csms = csms

    async def _handle(self, tcp: trio.abc.Stream) -> None:
        assert self.csms is not None, "Endpoint.attach() first"
        seen = Seen()
        self.seen.append(seen)
        if self.first:                  # a handshake that is to fail: every alert reaches the station
            seen.failed = await _failing_handshake(tcp, self.first.pop(0))
            await trio.aclose_forcefully(tcp)
            return
        ctx = self.then
        if ctx is None:
            await self.csms.serve_stream(tcp)
            return
        tls = trio.SSLStream(tcp, ctx, server_side=True, https_compatible=True)
        try:
            await tls.do_handshake()
        except trio.BrokenResourceError as exc:
            seen.failed = str(exc.__cause__ or exc)
            await trio.aclose_forcefully(tls)
            return
        seen.tls_version = tls.version()
        seen.cipher = (tls.cipher() or ("?",))[0]
        peer = tls.getpeercert()
        if peer:
            seen.peer_cn = dict(rdn[0] for rdn in peer["subject"]).get("commonName")
        await self.csms.serve_stream(tls)


async def _failing_handshake(tcp: trio.abc.Stream, ctx: ssl.SSLContext) -> str:
    """A server TLS handshake over memory BIOs that sends whatever OpenSSL wrote, the alert of a
    failure included (trio's SSLStream drops it), until it fails. Returns why."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        try:
            obj.do_handshake()
            why = "handshake completed"
        except ssl.SSLWantReadError:
            why = None
        except ssl.SSLError as exc:
            why = exc.reason or str(exc)
        data = outgoing.read()
        try:
            if data:
                await tcp.send_all(data)
            if why is not None:
                return why
            chunk = await tcp.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            return f"connection broken ({exc})"
        if not chunk:
            return "closed by the station"
        incoming.write(chunk)


def closed_port() -> int:
    """A loopback port nobody listens on (for an unreachable configuration slot)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PROFILE_2 = 'security_profile = 2\ncsms_root_ca = "csms-root.pem"'
PROFILE_3 = PROFILE_2.replace("2", "3", 1) + '\nclient_cert = "station.pem"\nclient_key = "station.key"'


def network_profile(url: str, security_profile: int, message_timeout: int = 30) -> dict:
    return {"ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": url,
            "messageTimeout": message_timeout, "securityProfile": security_profile, "ocppInterface": "Wired0"}
