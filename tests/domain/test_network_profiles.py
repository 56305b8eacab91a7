"""B09/B10/A05 network connection profiles and the link's A04 security events, on the pure domain
(domain/provisioning/network_profiles.py)."""
from __future__ import annotations

import json

import pytest

from domain.device_model import parse_ref
from domain.effects import Reconfigure, StoreRecords
from tests.domain.test_operations import Rig


def booted(security_profile: int = 1) -> Rig:
    h = Rig()
    h.settle(h.boot_accepted(now=0.0), 0.0)
    h.calls.clear()
    if security_profile != 1:       # as after an upgrade (A05)
        h.station.dm.write(parse_ref("SecurityCtrlr.SecurityProfile"), str(security_profile))
    return h


def profile(url: str = "wss://csms2.example/ocpp", security_profile: int = 2, **extra) -> dict:
    return {"ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": url, "messageTimeout": 30,
            "securityProfile": security_profile, "ocppInterface": "Wired0", **extra}


def security_events(h: Rig) -> list[dict]:
    return [c[3] for c in h.calls if c[2] == "SecurityEventNotification"]


def test_a_security_failure_is_one_event_per_failure_streak():
    h = booted()
    for attempt in (1, 2, 3):                       # the link retries: the same failure each time
        h.settle(h.run(h.station.link_down(float(attempt), attempt=attempt,
                                           security_event="InvalidCsmsCertificate", reason="expired")), attempt)
    h.settle(h.run(h.station.link_down(4.0, attempt=4, security_event="InvalidTLSVersion",
                                       reason="TLSv1.1")), 4.0)
    h.settle(h.run(h.station.link_down(4.2, attempt=5, security_event="FailedToAuthenticateAtCsms",
                                       reason="HTTP 401")), 4.2)      # not critical: logged, not sent
    h.settle(h.run(h.station.link_down(4.5, attempt=5, reason="refused")), 4.5)   # no security check
    h.settle(h.run(h.station.link_up(5.0)), 5.0)
    assert [(e["type"], e.get("techInfo")) for e in security_events(h)] == [
        ("InvalidCsmsCertificate", "expired"), ("InvalidTLSVersion", "TLSv1.1")]
    assert [e.type for e in h.station.security.log.between(None, None)][-3:] == [
        "InvalidCsmsCertificate", "InvalidTLSVersion", "FailedToAuthenticateAtCsms"]
    h.calls.clear()
    h.settle(h.run(h.station.link_down(6.0, attempt=1, security_event="InvalidCsmsCertificate",
                                       reason="expired again")), 6.0)
    h.settle(h.run(h.station.link_up(7.0)), 7.0)
    assert [e["type"] for e in security_events(h)] == ["InvalidCsmsCertificate"]   # a new streak


@pytest.mark.parametrize("slot, data, field", [
    (3, profile(), "configurationSlot"),                                       # not a slot of the list
    (0, profile(), "configurationSlot"),                                       # the installation file's
    (1, profile(ocppVersion="OCPP16"), "ocppVersion"),
    (1, profile(ocppTransport="SOAP"), "ocppTransport"),
    (1, profile(url="ws://csms2.example/ocpp"), "ocppCsmsUrl"),              # profile 2 needs wss://
    (1, profile(url="wss:///ocpp"), "ocppCsmsUrl"),                            # no host
    (1, profile(url="ws://csms2.example/ocpp", security_profile=1), "securityProfile"),  # lower (B09.FR.04)
    (1, profile(messageTimeout=0), "messageTimeout"),
    (1, profile(vpn={"server": "vpn.example", "user": "u", "password": "p", "key": "k", "type": "IPSec"}), "vpn"),
])
def test_set_network_profile_refuses_what_it_cannot_use_and_changes_nothing(slot, data, field):
    h = booted(security_profile=2)
    effects = h.station.frame_received(json.dumps(
        [2, "np", "SetNetworkProfile", {"configurationSlot": slot, "connectionData": data}]), 1.0)
    reply = h.reply_to(h.run(effects), "np")
    assert reply["status"] == "Rejected"
    assert field in reply["statusInfo"]["additionalInfo"]
    assert not any(isinstance(e, StoreRecords) for e in effects)
    assert h.station.network.profiles == {}


def test_fallback_never_goes_below_the_active_security_profile():
    """A05: after an upgrade to profile 2 the profile-1 installation slot is not tried any more."""
    h = booted()
    frames = h.call("SetNetworkProfile", {"configurationSlot": 1, "connectionData": profile()}, 1.0)
    assert h.reply_to(frames) == {"status": "Accepted"}
    h.station.dm.write(parse_ref("OCPPCommCtrlr.NetworkConfigurationPriority"), "1,0")
    h.station.dm.write(parse_ref("OCPPCommCtrlr.NetworkProfileConnectionAttempts"), "1")
    net = h.station.network
    net._order, net._index = [1, 0], 0              # as the next boot starts (priority "1,0")
    h.run(h.station.link_up(2.0))
    assert h.station.dm.get("SecurityCtrlr", "SecurityProfile") == "2"
    assert h.station.dm.get("OCPPCommCtrlr", "ActiveNetworkProfile") == "1"
    for attempt in (1, 2, 3):
        effects = h.station.link_down(3.0 + attempt, attempt=attempt, reason="timeout")
        assert net.slot == 1 and not any(isinstance(e, Reconfigure) for e in effects)


def test_a_missing_certificate_skips_a_slot_but_never_downgrades():
    h = booted()
    h.call("SetNetworkProfile", {"configurationSlot": 1, "connectionData": profile()}, 1.0)
    h.call("SetNetworkProfile", {"configurationSlot": 2, "connectionData": profile(
        "wss://csms3.example/ocpp", security_profile=3)}, 1.0)
    h.station.dm.write(parse_ref("OCPPCommCtrlr.NetworkConfigurationPriority"), "2,1,0")
    net = h.station.network
    net._order, net._index = [2, 1, 0], 0           # as the next boot starts
    net.credentials_known(csms_root=True, station_certificate=False)
    assert net.slot == 1                            # slot 2 (profile 3) needs the station certificate
    h.run(h.station.link_up(2.0))                   # connected with profile 2
    assert h.station.dm.get("SecurityCtrlr", "SecurityProfile") == "2"
    net.credentials_known(csms_root=False, station_certificate=False)
    assert net.slot == 1 and net._order == [2, 1]   # no CSMS root: still not slot 0 (profile 1)
