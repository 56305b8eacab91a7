"""The ChargingStationCertificate renewal over real TLS, checked on the server side (A02,
errata 2025-01 A02.FR.28/29; issue 14 "Done when"): the station as a real process (`evse run`)
on security profile 3 against a dev CSMS whose TLS server requires a client certificate, all
certificates made here with `cryptography` around the real current time.

TriggerMessage SignChargingStationCertificate -> SignCertificate (CSR made on the station) ->
the test CA signs it -> CertificateSigned -> the station reconnects and the SERVER sees the new
client certificate; the old one leaves the store once the new connection works. And the case
where the server does not trust the new certificate: after NetworkProfileConnectionAttempts the
station goes back to the old one (seen by the server) and reports
DiscardedRenewedClientCertificate."""
from __future__ import annotations

import ipaddress
import ssl
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devtools.dev_csms import HANDSHAKE_TIMEOUT, DevCsms
from tests.bootstrap.test_cli import evse
from tests.pki import Issued, issue

SID = "CS-RENEW-1"
ORGANIZATION = "Renewal Test CSO"
T = 60
NOW = datetime.now(timezone.utc)
VALID = {"not_before": NOW - timedelta(hours=1), "not_after": NOW + timedelta(days=90)}


class PeerCertificateCsms(DevCsms):
    """The dev CSMS that also records, per TLS connection, the client certificate the server
    saw (DER), or None for a handshake the server refused."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.peer_certificates: list[bytes | None] = []

    async def _serve_connection(self, stream: trio.abc.Stream, peer: str) -> None:
        if isinstance(stream, trio.SSLStream):
            try:
                with trio.fail_after(HANDSHAKE_TIMEOUT):
                    await stream.do_handshake()
            except (trio.BrokenResourceError, trio.TooSlowError):
                self.peer_certificates.append(None)
                self._notify()
                return
            self.peer_certificates.append(stream.getpeercert(binary_form=True))
            self._notify()
        await super()._serve_connection(stream, peer)

    async def wait_peer(self, after: int, wanted: bytes, timeout: float = 20) -> int:
        """Wait for a TLS connection at index >= `after` whose client certificate is `wanted`."""
        with trio.fail_after(timeout):
            while True:
                for i in range(after, len(self.peer_certificates)):
                    if self.peer_certificates[i] == wanted:
                        return i
                await trio.sleep(0.05)


def der(cert: Issued) -> bytes:
    return cert.cert.public_bytes(serialization.Encoding.DER)


def server_context(root: Issued, client_ca: Issued, tmp_path: Path) -> ssl.SSLContext:
    """TLS server for 127.0.0.1 (its certificate issued by `root`) requiring a client
    certificate issued by `client_ca`."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(root.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(VALID["not_before"]).not_valid_after(VALID["not_after"])
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(root.key, hashes.SHA256()))
    (tmp_path / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    ctx.load_verify_locations(cadata=client_ca.pem)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def write_station(tmp_path: Path, url: str, root: Issued, client: Issued) -> Path:
    """The CSMS root, the provisioned client certificate and key, and the station TOML."""
    (tmp_path / "csms-root.pem").write_text(root.pem)
    (tmp_path / "station.pem").write_text(client.pem)
    (tmp_path / "station.key").write_bytes(client.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    path = tmp_path / "station.toml"
    path.write_text(f"""
[station]
id = "{SID}"
[csms]
url = "{url}"
security_profile = 3
csms_root_ca = "csms-root.pem"
client_cert = "station.pem"
client_key = "station.key"
[storage]
path = "station.db"
[hardware]
adapter = "sim"
control_socket = "sim.sock"
[device_model]
"OCPPCommCtrlr.RetryBackOffWaitMinimum" = 0
"OCPPCommCtrlr.RetryBackOffRandomRange" = 1
"OCPPCommCtrlr.NetworkProfileConnectionAttempts" = 2
"SecurityCtrlr.OrganizationName" = "{ORGANIZATION}"
""")
    return path


def stored_station_certificates(tmp_path: Path) -> list[x509.Certificate]:
    """The leaf of every ChargingStationCertificate chain file in the station's store."""
    folder = tmp_path / "certs" / "station" / "ChargingStationCertificate"
    return [x509.load_pem_x509_certificates(p.read_bytes())[0] for p in sorted(folder.glob("chain-*.pem"))]


async def renew(csms: PeerCertificateCsms, root: Issued, old: Issued) -> Issued:
    """TriggerMessage SignChargingStationCertificate; check the CSR (A02.FR.02/03); the test CA
    signs it; CertificateSigned Accepted. Returns the new certificate."""
    res = await csms.call(SID, "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"})
    assert res["status"] == "Accepted", res
    sign = await csms.wait_for("SignCertificate", station_id=SID)
    assert sign.get("certificateType", "ChargingStationCertificate") == "ChargingStationCertificate"
    csr = x509.load_pem_x509_csr(sign["csr"].encode())
    assert csr.is_signature_valid
    assert [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [SID]
    assert [a.value for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [ORGANIZATION]
    key = csr.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    assert key.public_numbers() != old.cert.public_key().public_numbers()      # a new key pair
    new = issue(SID, issuer=root, ca=False, public_key=key, **VALID)
    res = await csms.call(SID, "CertificateSigned", {"certificateChain": new.pem,
                                                    "certificateType": "ChargingStationCertificate"})
    assert res["status"] == "Accepted", res
    return new


async def certs_list(config: Path) -> str:
    out = await trio.run_process(evse("certs", "--config", str(config), "list"), capture_stdout=True,
                                 capture_stderr=True, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode()


async def run_case(tmp_path: Path, *, server_trusts_renewed: bool) -> None:
    root = issue("Renewal Test CSMS Root", **VALID)
    factory = root if server_trusts_renewed else issue("Renewal Test Factory CA", **VALID)
    old = issue(SID, issuer=factory, ca=False, **VALID)
    csms = PeerCertificateCsms(ssl_context=server_context(root, factory, tmp_path), heartbeat_interval=300)
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            await nursery.start(csms.serve)
            config = write_station(tmp_path, csms.url, root, old)
            log = open(tmp_path / "station.log", "wb")
            proc = await trio.lowlevel.open_process(evse("run", "--config", str(config)),
                                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            try:
                await csms.wait_for("StatusNotification", station_id=SID, timeout=20)
                assert csms.peer_certificates[-1] == der(old)
                mark = len(csms.peer_certificates)
                received = len(csms.received)
                new = await renew(csms, root, old)
                if server_trusts_renewed:
                    await check_renewed(csms, config, tmp_path, new, old, mark)
                else:
                    await check_reverted(csms, config, tmp_path, new, old, mark, received)
            except BaseException:
                print("station log:\n" + (tmp_path / "station.log").read_text()[-6000:], file=sys.stderr)
                raise
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                log.close()
            nursery.cancel_scope.cancel()


async def check_renewed(csms: PeerCertificateCsms, config: Path, tmp_path: Path, new: Issued, old: Issued,
                        mark: int) -> None:
    """A02.FR.08: the next connection presents the new certificate (seen by the server);
    A02.FR.10: once it works the old one is gone from the store."""
    i = await csms.wait_peer(mark, der(new))
    assert csms.peer_certificates[mark:i] == []            # no connection with the old one in between
    await csms.wait_connected(SID)
    res = await csms.call(SID, "GetVariables", {"getVariableData": [
        {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"}}]})
    assert res["getVariableResult"][0]["attributeValue"] == "3"
    with trio.fail_after(10):
        while stored_station_certificates(tmp_path) != [new.cert]:
            await trio.sleep(0.1)
    keys = list((tmp_path / "certs" / "station" / "ChargingStationCertificate").glob("key-*.pem"))
    assert len(keys) == 1
    listing = await certs_list(config)
    assert f"serial {new.cert.serial_number:x}" in listing
    assert f"serial {old.cert.serial_number:x}" not in listing


async def check_reverted(csms: PeerCertificateCsms, config: Path, tmp_path: Path, new: Issued, old: Issued,
                         mark: int, received: int) -> None:
    """The server refuses the new certificate: after NetworkProfileConnectionAttempts (2) failed
    attempts the station restores the old one, reconnects with it (seen by the server) and
    sends DiscardedRenewedClientCertificate (errata 2025-01 A02.FR.28/29)."""
    i = await csms.wait_peer(mark, der(old))
    refused = csms.peer_certificates[mark:i]
    assert len(refused) >= 2 and all(c is None for c in refused), refused
    event = await csms.wait_for("SecurityEventNotification", station_id=SID, after=received,
                                where=lambda p: p["type"] == "DiscardedRenewedClientCertificate")
    assert "attempts" in event["techInfo"]
    # A04: the refusals themselves are reported too (TLS 1.3: the CSMS ended the session)
    await csms.wait_for("SecurityEventNotification", station_id=SID, after=received,
                        where=lambda p: p["type"] == "InvalidChargingStationCertificate")
    await csms.wait_connected(SID)
    assert stored_station_certificates(tmp_path) == [old.cert]
    keys = list((tmp_path / "certs" / "station" / "ChargingStationCertificate").glob("key-*.pem"))
    assert len(keys) == 1                                   # the renewed key is gone with it
    listing = await certs_list(config)
    assert f"serial {old.cert.serial_number:x}" in listing
    assert f"serial {new.cert.serial_number:x}" not in listing


async def test_renewal_reconnects_with_the_new_client_certificate_seen_by_the_server(tmp_path):
    await run_case(tmp_path, server_trusts_renewed=True)


async def test_a_renewed_certificate_the_server_refuses_is_reverted_after_the_attempts(tmp_path):
    await run_case(tmp_path, server_trusts_renewed=False)
