"""OCA certification test cases B09/B10 (network connection profiles), Charging Station side.

One test per test case of OCPP 2.0.1 Edition 3 Part 6 ("Test case Id TC_B_nn_CS"), the station
the real one, the OCTT the DevCsms (conftest.py validates every frame the station sent). The
OCTT's second endpoint is a tls_rig.Endpoint on another loopback port serving the same DevCsms;
which endpoint a connection came through tells which configuration slot the station used.

Chosen configured values: the station's first slot is 0 (its TOML), <Configured
configurationSlot2> is 1, messageTimeout 30 / 20, ocppInterface Wired0.
Readings:
- NetworkConfigurationPriority takes effect at the next boot (RebootRequired), so the Reset of
  step 5 is sent in every case.
- TC_B_46 step 7 "the OCTT will NOT respond to the two connection requests from the first slot":
  nobody listens at that slot's URL (connection refused), which the station counts as a failed
  attempt at once (a silent TCP peer would cost connect_timeout per attempt, nothing else).
- TC_B_49 step 11 "waits RetryBackOffWaitMinimum": measured between the refused attempt of
  step 10 and the accepted one of step 12 (RandomRange 0, RepeatTimes 0); in between the station
  tries slot 1 again (the priority list round never ends, B10.FR.09), which is refused at once.
- TC_B_50 Memory State "CertificateInstalled <CSMS Root certificate 2>": the TOML's first CA bundle
  holds both roots, installed into the store at start (factory provisioning).
- TC_B_47 (AdditionalRootCertificateCheck, PICS AS-2): "<Configured (new) CSMS Root certificate 2>"
  is a CA signed by the old root (the TOML's bundle); both OCTT endpoints present a certificate
  signed by the old root. The first attempt (slot 1, the new root) fails; NetworkProfileConnectionAttempts
  1 makes the station go back to slot 0 and the failed CSMS check makes it use the fallback root.
"""
from __future__ import annotations

import pytest
import trio

from tests.conformance.test_a_security_link import set_profile_and_priority
from tests.conformance.tls_rig import PROFILE_2, Endpoint, Pki, closed_port, network_profile

TIMEOUT = 30


async def reset_on_idle(cs) -> int:
    after = cs.mark()
    res = await cs.call("Reset", {"type": "OnIdle"})
    assert res["status"] == "Accepted"
    return after


async def test_TC_B_43_CS_set_network_profile_rejected(boot_station):
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res = await cs.call("SetNetworkProfile", {"configurationSlot": 999, "connectionData": network_profile(
                cs.config.csms.url, 1)})
            assert res["status"] == "Rejected"                                  # step 2 (B09.FR.02)
            assert "configurationSlot" in res["statusInfo"]["additionalInfo"]


def both(*endpoints: Endpoint):
    def attach(csms):
        for e in endpoints:
            e.attach(csms)
    return attach


@pytest.mark.real_clock
async def test_TC_B_45_CS_migrate_to_new_connection_profile(boot_station):
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            first, second = await Endpoint(None).start(nursery), await Endpoint(None).start(nursery)
            async with boot_station(csms_url=first.url(), on_csms=both(first, second)) as cs:
                res, sv = await set_profile_and_priority(cs, 1, network_profile(second.url(), 1, 20), "1,0")
                assert res["status"] == "Accepted"                              # step 2
                assert sv["attributeStatus"] == "RebootRequired"                # step 4
                after = await reset_on_idle(cs)                                 # 5-6
                await cs.wait_booted(after)                                     # 7: Booted
                assert len(second.seen) == 1 and len(first.seen) == 1           # ... with connectionData2
            nursery.cancel_scope.cancel()


@pytest.mark.real_clock
async def test_TC_B_46_CS_fallback_to_the_previous_profile(boot_station):
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            first = await Endpoint(None).start(nursery)
            async with boot_station(csms_url=first.url(), on_csms=first.attach,
                                    device_model={"OCPPCommCtrlr.NetworkProfileConnectionAttempts": 2}) as cs:
                dead = f"ws://127.0.0.1:{closed_port()}/ocpp"
                res, sv = await set_profile_and_priority(cs, 1, network_profile(dead, 1), "1,0")
                assert res["status"] == "Accepted" and sv["attributeStatus"] == "RebootRequired"
                after = await reset_on_idle(cs)
                await cs.wait_booted(after)                                     # 7-9: via the first slot
                assert len(first.seen) == 2
                assert cs.runtime.station.network.slot == 0
                res = await cs.call("GetVariables", {"getVariableData": [
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "ActiveNetworkProfile"}}]})
                assert res["getVariableResult"][0]["attributeValue"] == "0"
            nursery.cancel_scope.cancel()


@pytest.mark.real_clock
async def test_TC_B_47_CS_fallback_to_the_previous_profile_and_the_old_csms_root(boot_station, tmp_path):
    from tests.conformance.test_m_certificates import ca_hash, entries, get_installed, new_root_installed, same_hash
    pki = Pki()
    pki.write(tmp_path)                                             # the old CSMS root
    new_root = pki.csms_ca.create_child_ca()                        # signed by the old one
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            first = await Endpoint(pki.server()).start(nursery)
            second = await Endpoint(pki.server()).start(nursery)    # 7: signed by the old root
            async with boot_station(csms_toml=PROFILE_2, csms_url=first.url(), on_csms=both(first, second),
                                    device_model={"OCPPCommCtrlr.NetworkProfileConnectionAttempts": 1,
                                                  "SecurityCtrlr.AdditionalRootCertificateCheck": True}) as cs:
                await new_root_installed(cs, new_root)
                res, sv = await set_profile_and_priority(cs, 1, network_profile(second.url(), 2, 20), "1,0")
                assert res["status"] == "Accepted"                              # step 2
                assert sv["attributeStatus"] in ("Accepted", "RebootRequired")  # step 4
                before = len(first.seen)
                after = await reset_on_idle(cs)                                 # 5-6
                await cs.wait_booted(after)                                     # 8-10
                assert [s.failed is not None for s in second.seen] == [True], second.seen   # 8: fails
                assert first.seen[before:] and first.seen[-1].failed is None    # 9: the previous slot
                assert cs.runtime.station.network.slot == 0
                res = await get_installed(cs, ["CSMSRootCertificate"])          # 11-12
                assert res["status"] == "Accepted", f"Step 12: {res}"
                assert any(same_hash(h, ca_hash(pki.csms_ca)) for h in entries(res, "CSMSRootCertificate")), \
                    f"Step 12: the old CSMS root is not listed: {res}"
            nursery.cancel_scope.cancel()


@pytest.mark.real_clock
async def test_TC_B_49_CS_fallback_after_network_profile_connection_attempts(boot_station):
    wait_minimum = 1
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            first = await Endpoint(None).start(nursery)
            async with boot_station(csms_url=first.url(), on_csms=first.attach, device_model={
                    "OCPPCommCtrlr.NetworkProfileConnectionAttempts": 1,
                    "OCPPCommCtrlr.RetryBackOffRepeatTimes": 0,
                    "OCPPCommCtrlr.RetryBackOffRandomRange": 0,
                    "OCPPCommCtrlr.RetryBackOffWaitMinimum": wait_minimum}) as cs:
                dead = f"ws://127.0.0.1:{closed_port()}/ocpp"
                res, sv = await set_profile_and_priority(cs, 1, network_profile(dead, 1), "1,0")
                assert res["status"] == "Accepted"
                cs.csms.refuse_connections = 1                                  # step 10: not accepted
                handshakes = len(cs.csms.handshakes)
                after = await reset_on_idle(cs)                                 # 5-6
                await cs.wait_booted(after)                                     # 7-13
                (refused_at, _, refused), (accepted_at, _, accepted) = cs.csms.handshakes[handshakes:]
                assert (refused, accepted) == (503, 101)
                assert accepted_at - refused_at >= wait_minimum                 # step 11
            nursery.cancel_scope.cancel()


@pytest.mark.real_clock
async def test_TC_B_50_CS_migrate_to_a_csms_with_a_new_root(boot_station, tmp_path):
    pki = Pki()
    pki.write(tmp_path, roots=(pki.csms_ca, pki.csms_ca2))                     # both roots installed
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            first = await Endpoint(pki.server()).start(nursery)
            second = await Endpoint(pki.server(ca=pki.csms_ca2)).start(nursery)  # certificate of root 2
            async with boot_station(csms_toml=PROFILE_2, csms_url=first.url(), on_csms=both(first, second)) as cs:
                res, sv = await set_profile_and_priority(cs, 1, network_profile(second.url(), 2), "1,0")
                assert res["status"] == "Accepted"
                assert sv["attributeStatus"] == "RebootRequired"
                after = await reset_on_idle(cs)                                 # step 6: Accepted
                await cs.wait_booted(after)                                     # 7-9
                assert second.seen and second.seen[-1].tls_version is not None  # accepted root 2's certificate
            nursery.cancel_scope.cancel()
