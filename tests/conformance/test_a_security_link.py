"""OCA certification test cases of functional block A (security) on the link side, Charging Station.

One test per test case of OCPP 2.0.1 Edition 3 Part 6 ("Test case Id TC_A_nn_CS"): the steps are
followed as written and every tool validation is asserted; the station is the real one, the OCTT
is played by the DevCsms (conftest.py validates every frame the station sent against the official
JSON schemas when a test ends).

The TLS cases (TC_A_04.., marked real_clock) run on loopback with certificates made by the test
(tls_rig.py): the OCTT endpoint does the TLS handshake itself and hands the connection to the
DevCsms, so it can present an invalid certificate or TLS 1.1 on the first attempt only.

Chosen configured values: <Configured BasicAuthPassword> is conftest.PASSWORD; <NewPassword> is
NEW_PASSWORD (24 characters, letters, digits and symbols of the old passwordString set); the
station's first configuration slot is 0 (its TOML), <Configured configurationSlot> of the OCTT's
second endpoint is 1; the invalid server certificates of TC_A_05 are the three the prerequisites
list (unknown CA, expired, commonName/SAN not the CSMS's host).
Readings:
- TC_A_01 "BasicAuthPassword may only contain ... identifierString": the 2025-01 errata (A00.FR.205)
  lifts the character set and allows 16..maxLimit (40..64) characters; the configured password
  (16 hex digits) passes both readings.
- TC_A_05 / TC_A_06: the security event is sent once for the failure streak (not once per
  attempt), after the Booted state; TC_A_06 step 16 (optional in Part 6) is sent: the station
  does detect a TLS version below 1.2.
- TC_A_19..A_22: slot 0 is the TOML's connection; the OCTT's other endpoint goes into slot 1, and
  NetworkConfigurationPriority takes effect at the next boot (RebootRequired), so step 5's Reset
  is sent.
- TC_A_09 step 2 "Accepted or RebootRequired": this station answers Accepted and reconnects at
  once with the new password (steps 5-8, only for RebootRequired, do not apply). "Store and log the
  new password": it is stored (persistent); it is never written to a log (A01), so the test checks
  that the station's log does not hold it.
"""
from __future__ import annotations

import logging

import pytest
import trio

from devtools.dev_csms import ACCEPTED_STATUS
from tests.conformance.conftest import PASSWORD, STATION_ID
from tests.conformance.tls_rig import PROFILE_2, PROFILE_3, Endpoint, Pki, closed_port, network_profile

ALLOWED_TLS12 = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                 "AES128-GCM-SHA256", "AES256-GCM-SHA384"}

TIMEOUT = 20
NEW_PASSWORD = "N3w-Passw0rd_for*OCTT+1|"


def set_password(value: str) -> dict:
    return {"setVariableData": [{"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
                                 "attributeValue": value}]}


async def test_TC_A_09_CS_update_basic_auth_password_accepted(boot_station, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            csms = cs.csms
            csms.basic_auth = {STATION_ID: NEW_PASSWORD}      # 4: the OCTT validates the NEW password
            after = len(csms.handshakes)
            # 1-2: SetVariables BasicAuthPassword -> Accepted
            res = await cs.call("SetVariables", set_password(NEW_PASSWORD))
            [result] = res["setVariableResult"]
            assert result["attributeStatus"] in ("Accepted", "RebootRequired"), result
            assert result["attributeStatus"] == "Accepted"
            # the old connection is closed cleanly by the station
            # 3-4: the station upgrades again, with Authorization Basic base64(<id>:<NEW password>)
            _, (_, sid, status) = await csms.wait_handshake(STATION_ID, after=after)
            assert (sid, status) == (STATION_ID, ACCEPTED_STATUS)
            await csms.wait_connected(STATION_ID)
            assert any(how.startswith("code 1000") for s, how in csms.disconnects if s == STATION_ID), \
                csms.disconnects
            # online again, no BootNotification (Accepted: no reboot needed)
            res = await cs.call("GetVariables", {"getVariableData": [
                {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"}}]})
            assert res["getVariableResult"][0]["attributeValue"] == "1"
    assert NEW_PASSWORD not in caplog.text        # A01: never in a log (wire log included)


async def test_TC_A_10_CS_update_basic_auth_password_rejected(boot_station, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    short = "0123456789abcde"        # 15 characters
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            csms = cs.csms
            csms.basic_auth = {STATION_ID: PASSWORD}          # 4: the OCTT validates the OLD password
            res = await cs.call("SetVariables", set_password(short))
            [result] = res["setVariableResult"]
            assert result["attributeStatus"] == "Rejected"    # step 2
            assert short not in str(result)
            # 3-5: the next connection uses the old password and is accepted (Booted)
            after = len(csms.handshakes)
            await csms.disconnect(STATION_ID)
            _, (_, sid, status) = await csms.wait_handshake(STATION_ID, after=after)
            assert status == ACCEPTED_STATUS
            await csms.wait_connected(STATION_ID)
    assert short not in caplog.text


def security_events(cs, kind: str) -> list[dict]:
    return [p for _, p in cs.calls("SecurityEventNotification") if p["type"] == kind]


def get_variable(component: str, variable: str) -> dict:
    return {"getVariableData": [{"component": {"name": component}, "variable": {"name": variable}}]}


async def test_TC_A_01_CS_basic_authentication_valid_credentials(boot_station):
    with trio.fail_after(TIMEOUT):
        async with boot_station(basic_auth={STATION_ID: PASSWORD}) as cs:      # 1: Booted
            # the DevCsms accepted the upgrade only with Basic base64(<id>:<configured password>)
            assert [(sid, status) for _, sid, status in cs.csms.handshakes] == [(STATION_ID, ACCEPTED_STATUS)]
            assert 16 <= len(PASSWORD) <= 40


@pytest.mark.real_clock
async def test_TC_A_04_CS_tls_server_certificate_valid(boot_station, tmp_path):
    pki = Pki()
    pki.write(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            octt = await Endpoint(pki.server()).start(nursery)
            async with boot_station(csms_toml=PROFILE_2, csms_url=octt.url(), on_csms=octt.attach,
                                    basic_auth={STATION_ID: PASSWORD}) as cs:   # 1-10
                [seen] = octt.seen
                assert seen.tls_version in ("TLSv1.2", "TLSv1.3")             # A00.FR.313
                if seen.tls_version == "TLSv1.2":
                    assert seen.cipher in ALLOWED_TLS12                         # A00.FR.319
                assert seen.peer_cn is None                                     # profile 2: no client cert
                assert [s for _, _, s in cs.csms.handshakes] == [ACCEPTED_STATUS]   # with Basic auth
            nursery.cancel_scope.cancel()


@pytest.mark.real_clock
@pytest.mark.parametrize("invalid", ["unknown", "expired", "wrong_host"])
async def test_TC_A_05_CS_tls_server_certificate_invalid(boot_station, tmp_path, invalid):
    pki = Pki()
    pki.write(tmp_path)
    bad = {"unknown": lambda: pki.server(ca=pki.csms_ca2), "expired": lambda: pki.server(expired=True),
           "wrong_host": lambda: pki.server(host="csms.example.com")}[invalid]()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            octt = await Endpoint(pki.server(), first=[bad]).start(nursery)
            async with boot_station(csms_toml=PROFILE_2, csms_url=octt.url(), on_csms=octt.attach,
                                    device_model={"OCPPCommCtrlr.NetworkProfileConnectionAttempts": 2}) as cs:
                # 1-3: the station deems the certificate invalid and terminates the connection
                assert octt.seen[0].failed is not None, octt.seen[0]
                # 4-13: then TLS with the configured certificate, Booted
                assert octt.seen[-1].tls_version is not None and len(cs.csms.handshakes) == 1
                # 14: SecurityEventNotification InvalidCsmsCertificate
                await cs.next_call("SecurityEventNotification", after=0,
                                   where=lambda p: p["type"] == "InvalidCsmsCertificate")
                await trio.sleep(0.3)
                assert len(security_events(cs, "InvalidCsmsCertificate")) == 1
            nursery.cancel_scope.cancel()


@pytest.mark.real_clock
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_TC_A_06_CS_tls_version_too_low(boot_station, tmp_path):
    """The local OpenSSL (3.0) can still serve TLS 1.1 at security level 0: the OCTT's step 2 is real."""
    pki = Pki()
    pki.write(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            octt = await Endpoint(pki.server(), first=[pki.server(tls11_only=True)]).start(nursery)
            async with boot_station(csms_toml=PROFILE_2, csms_url=octt.url(), on_csms=octt.attach,
                                    device_model={"OCPPCommCtrlr.NetworkProfileConnectionAttempts": 1}) as cs:
                assert octt.seen[0].failed is not None                          # 3: terminated
                assert octt.seen[-1].tls_version in ("TLSv1.2", "TLSv1.3")     # 4-13: Booted
                await cs.next_call("SecurityEventNotification", after=0,        # 14
                                   where=lambda p: p["type"] in ("StartupOfTheDevice", "ResetOrReboot"))
                await cs.next_call("SecurityEventNotification", after=0,        # 16
                                   where=lambda p: p["type"] == "InvalidTLSVersion")
            nursery.cancel_scope.cancel()


@pytest.mark.real_clock
async def test_TC_A_07_CS_tls_client_certificate_valid(boot_station, tmp_path):
    pki = Pki()
    pki.write(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            octt = await Endpoint(pki.server(client_cert=True)).start(nursery)
            async with boot_station(csms_toml=PROFILE_3, csms_url=octt.url(), on_csms=octt.attach) as cs:
                [seen] = octt.seen
                assert seen.peer_cn == STATION_ID                               # 3: client certificate sent
                assert seen.tls_version in ("TLSv1.2", "TLSv1.3")
                assert [s for _, _, s in cs.csms.handshakes] == [ACCEPTED_STATUS]
            nursery.cancel_scope.cancel()


async def set_profile_and_priority(cs, slot: int, data: dict, priority: str) -> tuple[dict, dict]:
    """Steps 1-4 of TC_A_19..A_22 / TC_B_45..B_50: SetNetworkProfile, then SetVariables
    NetworkConfigurationPriority (when the first was Accepted)."""
    res = await cs.call("SetNetworkProfile", {"configurationSlot": slot, "connectionData": data})
    if res["status"] != "Accepted":
        return res, {}
    sv = await cs.call("SetVariables", {"setVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NetworkConfigurationPriority"},
         "attributeValue": priority}]})
    return res, sv["setVariableResult"][0]


@pytest.mark.real_clock
@pytest.mark.parametrize("upgrade", [(1, 2), (2, 3)])
async def test_TC_A_19_CS_upgrade_security_profile_accepted(boot_station, tmp_path, upgrade):
    old, new = upgrade
    pki = Pki()
    pki.write(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            first = await Endpoint(None if old == 1 else pki.server()).start(nursery)
            second = await Endpoint(pki.server(client_cert=new == 3)).start(nursery)
            toml = {1: 'csms_root_ca = "csms-root.pem"',                     # CertificateInstalled
                    2: PROFILE_2 + '\nclient_cert = "station.pem"\nclient_key = "station.key"'}[old]
            def attach(csms):
                first.attach(csms)
                second.attach(csms)
            async with boot_station(csms_toml=toml, csms_url=first.url(), on_csms=attach) as cs:
                res, sv = await set_profile_and_priority(cs, 1, network_profile(second.url(), new), "1,0")
                assert res["status"] == "Accepted"                              # step 2
                assert sv["attributeStatus"] in ("Accepted", "RebootRequired")  # step 4
                after = cs.mark()
                assert (await cs.call("Reset", {"type": "OnIdle"}))["status"] == "Accepted"   # 5-6
                await cs.wait_booted(after)                                     # 7-9
                assert second.seen and second.seen[-1].tls_version is not None
                if new == 3:
                    assert second.seen[-1].peer_cn == STATION_ID
                res = await cs.call("GetVariables", get_variable("SecurityCtrlr", "SecurityProfile"))   # 10-11
                assert res["getVariableResult"][0]["attributeValue"] == str(new)
                res = await cs.call("GetVariables", get_variable("OCPPCommCtrlr", "NetworkConfigurationPriority"))
                assert res["getVariableResult"][0]["attributeValue"] == "1,0"  # 12-13
            nursery.cancel_scope.cancel()


async def test_TC_A_20_CS_upgrade_without_a_valid_csms_root(boot_station):
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:                    # profile 1, no CSMS root installed
            res, sv = await set_profile_and_priority(
                cs, 1, network_profile("wss://127.0.0.1:9/ocpp", 2, message_timeout=20), "1,0")
            assert res["status"] == "Accepted"                                  # step 2
            assert sv["attributeStatus"] == "Rejected"                          # step 4 (A05.FR.02)
            assert "CSMSRootCertificate" in sv["attributeStatusInfo"]["additionalInfo"]


async def test_a_csms_root_installed_or_deleted_is_known_to_the_priority_check_without_a_reboot(boot_station):
    """A05.FR.02 after M05/M04: a CSMSRootCertificate installed by InstallCertificate makes a
    profile-2 slot acceptable in NetworkConfigurationPriority at once; deleting the last one makes
    it unacceptable again (no reboot in between)."""
    from tests.conformance.test_m_certificates import certificate_installed, entries, get_installed, valid
    root = valid("CSMS Root")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:                    # profile 1, no CSMS root installed
            await certificate_installed(cs, "CSMSRootCertificate", root)
            res, sv = await set_profile_and_priority(
                cs, 1, network_profile("wss://127.0.0.1:9/ocpp", 2, message_timeout=20), "1,0")
            assert res["status"] == "Accepted"
            assert sv["attributeStatus"] in ("Accepted", "RebootRequired"), sv
            [installed] = entries(await get_installed(cs, ["CSMSRootCertificate"]), "CSMSRootCertificate")
            assert (await cs.call("DeleteCertificate", {"certificateHashData": installed}))["status"] == "Accepted"
            _, sv = await set_profile_and_priority(
                cs, 1, network_profile("wss://127.0.0.1:9/ocpp", 2, message_timeout=20), "1,0")
            assert sv["attributeStatus"] == "Rejected", sv
            assert "CSMSRootCertificate" in sv["attributeStatusInfo"]["additionalInfo"]


@pytest.mark.real_clock
async def test_TC_A_21_CS_upgrade_without_a_valid_station_certificate(boot_station, tmp_path):
    pki = Pki()
    pki.write(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            octt = await Endpoint(pki.server()).start(nursery)
            async with boot_station(csms_toml=PROFILE_2, csms_url=octt.url(), on_csms=octt.attach) as cs:
                res, sv = await set_profile_and_priority(
                    cs, 1, network_profile(f"wss://127.0.0.1:{closed_port()}/ocpp", 3), "1,0")
                assert res["status"] == "Accepted"                              # step 2
                assert sv["attributeStatus"] == "Rejected"                      # step 4 (A05.FR.03)
                assert "ChargingStationCertificate" in sv["attributeStatusInfo"]["additionalInfo"]
            nursery.cancel_scope.cancel()


@pytest.mark.real_clock
async def test_TC_A_22_CS_downgrade_security_profile_rejected(boot_station, tmp_path):
    pki = Pki()
    pki.write(tmp_path)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            octt = await Endpoint(pki.server()).start(nursery)
            async with boot_station(csms_toml=PROFILE_2, csms_url=octt.url(), on_csms=octt.attach) as cs:
                res = await cs.call("SetNetworkProfile", {"configurationSlot": 1, "connectionData": network_profile(
                    f"ws://127.0.0.1:{closed_port()}/ocpp", 1, message_timeout=20)})
                assert res["status"] == "Rejected"                              # step 2 (B09.FR.04)
                res = await cs.call("GetVariables", get_variable("OCPPCommCtrlr", "NetworkConfigurationPriority"))
                assert res["getVariableResult"][0]["attributeValue"] == "0"     # nothing changed
            nursery.cancel_scope.cancel()
