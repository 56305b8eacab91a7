"""The whole station (config -> link settings -> TLS) against the dev CSMS over TLS on
loopback, with certificates generated here: security profiles 2 and 3, and Basic auth."""
from __future__ import annotations

import ssl

import trio
import trustme

from bootstrap.compose import compose
from bootstrap.config import parse_config
from devtools.dev_csms import DevCsms
from bootstrap.runtime import StationRuntime

SID = "CS-TLS-1"
PASSWORD = "0123456789abcdef"


def server_context(ca: trustme.CA, client_ca: trustme.CA | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    if client_ca is not None:
        client_ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def run_station(tmp_path, csms: DevCsms, csms_section: str, nursery):
    config = parse_config(f"""
        [station]
        id = "{SID}"
        [csms]
        url = "{csms.url}"
        {csms_section}
        [storage]
        path = "station.db"
        [hardware]
        control_socket = "sim.sock"
        """, base_dir=tmp_path)
    rt = None
    rt = StationRuntime(config, compose(config, lambda: rt.snapshot()))
    await nursery.start(rt.run)
    return rt


async def test_profile_2_tls_with_basic_auth(tmp_path):
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "csms-root.pem"))
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            csms = DevCsms(ssl_context=server_context(ca, None), basic_auth={SID: PASSWORD})
            await nursery.start(csms.serve)
            assert csms.url.startswith("wss://")
            await run_station(tmp_path, csms, f"""
                security_profile = 2
                basic_auth_password = "{PASSWORD}"
                csms_root_ca = "csms-root.pem"
                """, nursery)
            boot = await csms.wait_for("BootNotification", station_id=SID)
            assert boot["reason"] == "PowerUp"
            await csms.wait_for("StatusNotification", station_id=SID)
            nursery.cancel_scope.cancel()


async def test_profile_3_tls_with_client_certificate(tmp_path):
    ca, client_ca = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "csms-root.pem"))
    station_cert = client_ca.issue_cert(SID)
    station_cert.private_key_pem.write_to_path(str(tmp_path / "station.key"))
    with open(tmp_path / "station.pem", "wb") as f:
        for blob in station_cert.cert_chain_pems:
            f.write(blob.bytes())
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            csms = DevCsms(ssl_context=server_context(ca, client_ca))
            await nursery.start(csms.serve)
            await run_station(tmp_path, csms, """
                security_profile = 3
                csms_root_ca = "csms-root.pem"
                client_cert = "station.pem"
                client_key = "station.key"
                """, nursery)
            await csms.wait_for("StatusNotification", station_id=SID)
            nursery.cancel_scope.cancel()


async def test_wrong_basic_auth_password_never_connects_but_keeps_trying(tmp_path):
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            csms = DevCsms(basic_auth={SID: PASSWORD})
            await nursery.start(csms.serve)
            rt = await run_station(tmp_path, csms, """
                basic_auth_password = "wrong-password-0000"
                [device_model]
                "OCPPCommCtrlr.RetryBackOffWaitMinimum" = 0
                "OCPPCommCtrlr.RetryBackOffRandomRange" = 1
                """, nursery)
            await trio.sleep(1.5)
            assert csms.received == [] and rt.snapshot()["csms_connected"] is False
            # the CSMS learns the password the station uses: the next attempt gets in
            csms.basic_auth[SID] = "wrong-password-0000"
            await csms.wait_for("BootNotification", station_id=SID, timeout=10)
            nursery.cancel_scope.cancel()
