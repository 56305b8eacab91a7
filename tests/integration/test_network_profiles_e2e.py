"""The whole station on loopback with real TLS and certificates made here: the certificate store
provisioned from the TOML, security-profile upgrades 1 -> 2 and 2 -> 3 by SetNetworkProfile +
NetworkConfigurationPriority + Reset (A05, TC_A_19..A_21), a fallback from an unreachable slot to
the next one (B10), and the link's security events (A04)."""
from __future__ import annotations

import ssl
from datetime import datetime, timezone
from pathlib import Path

import trio
import trustme

from adapters.certificate_store_fs import FsCertificateStore
from bootstrap.compose import compose
from bootstrap.config import parse_config
from bootstrap.runtime import StationRuntime
from devtools.dev_csms import DevCsms
from domain.security.certificates import CertificateKind, StoreLimits

SID = "CS-NP-1"
PASSWORD = "0123456789abcdef"
T = 30
FAST = """
    [device_model]
    "OCPPCommCtrlr.RetryBackOffWaitMinimum" = 0
    "OCPPCommCtrlr.RetryBackOffRandomRange" = 1
    "OCPPCommCtrlr.NetworkProfileConnectionAttempts" = 2
"""


def server_context(ca: trustme.CA, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    if client_ca is not None:
        client_ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def write_station_cert(tmp_path: Path, client_ca: trustme.CA) -> None:
    leaf = client_ca.issue_cert(SID)
    leaf.private_key_pem.write_to_path(str(tmp_path / "station.key"))
    (tmp_path / "station.pem").write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))


async def start_station(tmp_path: Path, url: str, csms_section: str, nursery) -> StationRuntime:
    config = parse_config(f"""
        [station]
        id = "{SID}"
        [csms]
        url = "{url}"
        basic_auth_password = "{PASSWORD}"
        {csms_section}
        [storage]
        path = "station.db"
        [hardware]
        control_socket = "sim.sock"
        {FAST}
        """, base_dir=tmp_path)
    rt = None
    rt = StationRuntime(config, compose(config, lambda: rt.snapshot()))
    await nursery.start(rt.run)
    return rt


async def get(csms: DevCsms, component: str, variable: str) -> str:
    res = await csms.call(SID, "GetVariables", {"getVariableData": [
        {"component": {"name": component}, "variable": {"name": variable}}]})
    return res["getVariableResult"][0]["attributeValue"]


async def switch_to(csms: DevCsms, url: str, security_profile: int) -> None:
    """SetNetworkProfile into slot 1, NetworkConfigurationPriority "1,0", Reset OnIdle."""
    res = await csms.call(SID, "SetNetworkProfile", {"configurationSlot": 1, "connectionData": {
        "ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": url, "messageTimeout": 30,
        "securityProfile": security_profile, "ocppInterface": "Wired0"}})
    assert res == {"status": "Accepted"}
    res = await csms.call(SID, "SetVariables", {"setVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NetworkConfigurationPriority"},
         "attributeValue": "1,0"}]})
    assert res["setVariableResult"][0]["attributeStatus"] == "RebootRequired"
    assert (await csms.call(SID, "Reset", {"type": "OnIdle"}))["status"] == "Accepted"


async def test_profile_2_credentials_come_from_the_store_after_provisioning(tmp_path):
    """The TOML's CA bundle is imported once; the link then uses the store's bundle (the TOML
    file can go away)."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "factory-root.pem"))
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = DevCsms(ssl_context=server_context(ca), basic_auth={SID: PASSWORD})
            await nursery.start(csms.serve)
            await start_station(tmp_path, csms.url, 'security_profile = 2\ncsms_root_ca = "factory-root.pem"',
                                nursery)
            await csms.wait_for("BootNotification", station_id=SID)
            bundle = tmp_path / "certs" / "csms-roots.pem"
            assert bundle.read_bytes() == ca.cert_pem.bytes()
            nursery.cancel_scope.cancel()
        (tmp_path / "factory-root.pem").write_text("not a certificate any more\n")
        async with trio.open_nursery() as nursery:
            csms = DevCsms(ssl_context=server_context(ca), basic_auth={SID: PASSWORD})
            await nursery.start(csms.serve)
            await start_station(tmp_path, csms.url, 'security_profile = 2\ncsms_root_ca = "factory-root.pem"',
                                nursery)
            await csms.wait_for("BootNotification", station_id=SID)
            nursery.cancel_scope.cancel()


async def test_security_profile_upgrade_1_to_2(tmp_path):
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "csms-root.pem"))
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            plain = DevCsms(basic_auth={SID: PASSWORD})
            tls = DevCsms(ssl_context=server_context(ca), basic_auth={SID: PASSWORD})
            await nursery.start(plain.serve)
            await nursery.start(tls.serve)
            await start_station(tmp_path, plain.url, 'csms_root_ca = "csms-root.pem"', nursery)
            await plain.wait_for("StatusNotification", station_id=SID)
            assert await get(plain, "SecurityCtrlr", "SecurityProfile") == "1"
            await switch_to(plain, tls.url, 2)
            boot = await tls.wait_for("BootNotification", station_id=SID)
            assert boot["reason"] == "RemoteReset"
            await tls.wait_for("StatusNotification", station_id=SID)
            assert await get(tls, "SecurityCtrlr", "SecurityProfile") == "2"          # A05.FR.06
            assert await get(tls, "OCPPCommCtrlr", "ActiveNetworkProfile") == "1"
            assert await get(tls, "OCPPCommCtrlr", "NetworkConfigurationPriority") == "1,0"
            # no way back to profile 1 now (TC_A_22, B09.FR.04)
            res = await tls.call(SID, "SetNetworkProfile", {"configurationSlot": 2, "connectionData": {
                "ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": plain.url, "messageTimeout": 30,
                "securityProfile": 1, "ocppInterface": "Wired0"}})
            assert res["status"] == "Rejected" and "securityProfile" in res["statusInfo"]["additionalInfo"]
            nursery.cancel_scope.cancel()


async def test_security_profile_upgrade_2_to_3_with_the_provisioned_client_certificate(tmp_path):
    ca, client_ca = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "csms-root.pem"))
    write_station_cert(tmp_path, client_ca)
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            basic = DevCsms(ssl_context=server_context(ca), basic_auth={SID: PASSWORD})
            mutual = DevCsms(ssl_context=server_context(ca, client_ca))       # refuses a station without it
            await nursery.start(basic.serve)
            await nursery.start(mutual.serve)
            await start_station(tmp_path, basic.url, """security_profile = 2
                csms_root_ca = "csms-root.pem"
                client_cert = "station.pem"
                client_key = "station.key"
                """, nursery)
            await basic.wait_for("StatusNotification", station_id=SID)
            await switch_to(basic, mutual.url, 3)
            await mutual.wait_for("BootNotification", station_id=SID)
            assert await get(mutual, "SecurityCtrlr", "SecurityProfile") == "3"
            # the link used the store's copy of the certificate and key (0600)
            keys = list((tmp_path / "certs" / "station" / "ChargingStationCertificate").glob("key-*.pem"))
            assert len(keys) == 1 and keys[0].stat().st_mode & 0o777 == 0o600
            nursery.cancel_scope.cancel()


async def test_fallback_from_an_unreachable_slot_to_the_next(tmp_path):
    """B10.FR.03/04 (TC_B_46): NetworkProfileConnectionAttempts = 2 failed attempts with slot 1,
    then slot 0; ActiveNetworkProfile says which one is up."""
    tcp = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    dead_port = tcp.socket.getsockname()[1]
    await tcp.aclose()                                  # nobody listens there
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = DevCsms(basic_auth={SID: PASSWORD})
            await nursery.start(csms.serve)
            rt = await start_station(tmp_path, csms.url, "", nursery)
            await csms.wait_for("StatusNotification", station_id=SID)
            await switch_to(csms, f"ws://127.0.0.1:{dead_port}/ocpp", 1)
            after = len(csms.received)
            boot = await csms.wait_for("BootNotification", station_id=SID, after=after)
            assert boot["reason"] == "RemoteReset"
            assert rt.station.network.slot == 0
            assert await get(csms, "OCPPCommCtrlr", "ActiveNetworkProfile") == "0"
            nursery.cancel_scope.cancel()


async def test_an_untrusted_csms_certificate_is_one_security_event(tmp_path):
    """A04 / TC_A_05 step 14: the station refuses a CSMS certificate of another CA and, once it
    can connect, reports InvalidCsmsCertificate once, whatever the number of attempts."""
    ca, other = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "csms-root.pem"))
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            ctx = server_context(other)
            csms = DevCsms(ssl_context=ctx, basic_auth={SID: PASSWORD})
            await nursery.start(csms.serve)
            await start_station(tmp_path, csms.url, 'security_profile = 2\ncsms_root_ca = "csms-root.pem"', nursery)
            await trio.sleep(1.5)                               # several failed attempts
            assert csms.received == [] and csms.handshakes == []
            ca.issue_cert("127.0.0.1").configure_cert(ctx)      # the CSMS gets a certificate we trust
            event = await csms.wait_for("SecurityEventNotification", station_id=SID,
                                        where=lambda p: p["type"] == "InvalidCsmsCertificate")
            assert "certificate" in event["techInfo"]
            await csms.wait_for("StatusNotification", station_id=SID)
            await trio.sleep(0.5)
            events = [f[3] for _, f in csms.received if f[0] == 2 and f[2] == "SecurityEventNotification"
                      and f[3]["type"] == "InvalidCsmsCertificate"]
            assert len(events) == 1
            nursery.cancel_scope.cancel()


async def test_a_slot_the_link_cannot_use_at_boot_falls_back_to_the_configuration(tmp_path):
    """The priority names a profile-2 slot (accepted while a CSMS root was installed); the root is
    deleted before the reboot: the station connects with the TOML's connection instead of failing."""
    ca = trustme.CA()
    store = FsCertificateStore(tmp_path)
    assert store.install(CertificateKind.CSMS_ROOT, ca.cert_pem.bytes().decode(), now=datetime.now(timezone.utc),
                         limits=StoreLimits()).accepted
    with trio.fail_after(T):
        async with trio.open_nursery() as nursery:
            csms = DevCsms(basic_auth={SID: PASSWORD})
            await nursery.start(csms.serve)
            rt = await start_station(tmp_path, csms.url, "", nursery)
            await csms.wait_for("StatusNotification", station_id=SID)
            [root] = rt.certificates.list([CertificateKind.CSMS_ROOT])
            res = await csms.call(SID, "SetNetworkProfile", {"configurationSlot": 1, "connectionData": {
                "ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": f"wss://127.0.0.1:{csms.port}/ocpp",
                "messageTimeout": 30, "securityProfile": 2, "ocppInterface": "Wired0"}})
            assert res == {"status": "Accepted"}
            res = await csms.call(SID, "SetVariables", {"setVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NetworkConfigurationPriority"},
                 "attributeValue": "1,0"}]})
            assert res["setVariableResult"][0]["attributeStatus"] == "RebootRequired"
            rt.certificates.delete(root.hash_data)          # as DeleteCertificate would (M04)
            after = len(csms.received)
            assert (await csms.call(SID, "Reset", {"type": "OnIdle"}))["status"] == "Accepted"
            boot = await csms.wait_for("BootNotification", station_id=SID, after=after)
            assert boot["reason"] == "RemoteReset"
            await csms.wait_for("StatusNotification", station_id=SID, after=after)
            assert await get(csms, "OCPPCommCtrlr", "ActiveNetworkProfile") == "0"
            assert await get(csms, "SecurityCtrlr", "SecurityProfile") == "1"
            nursery.cancel_scope.cancel()
