"""The security block's decisions (domain/security/block.py: A02-A04, M03-M05), the station
driven by hand with time injected; the certificate store's jobs are answered by the test as
the runtime would (JobFinished with a CertificateOutcome)."""
from __future__ import annotations

import csv
import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from domain.clock import StationClock
from domain.device_model import DeviceModel, parse_ref
from domain.effects import (CertificateOutcome, DeleteRoot, DiscardFallbackRoots, InstallRoot, InstallStationCertificate,
                            MakeCsr, Reconfigure, ReconnectLink, SettleStationCertificate, StoreRecords)
from domain.hardware_events import JobFinished
from domain.outbox import Outbox
from domain.security.block import RENEWAL_LEAD
from domain.security.certificates import (CertificateEntry, CertificateKind, DeleteResult, DeleteStatus, HashData,
                                          InstallResult, InstallStatus)
from domain.security.events import CRITICAL, SECURITY_LOG_TABLE, SecurityLog
from domain.station import Station, StationInfo, StoredState
from tests.domain.defs import load_definitions
from tests.domain.test_operations import Rig
from tests.domain.test_station import T0

APPENDIX = Path("/work/shared/reference/ocpp-2.0.1/appendices-csv/security_events.csv")
K = CertificateKind


def h(serial: str) -> HashData:
    return HashData("aa" * 32, "bb" * 32, serial)


def entry(kind: CertificateKind, serial: str, *, days: float = 365, children=()) -> CertificateEntry:
    return CertificateEntry(kind, h(serial), f"CN={serial}", T0 - timedelta(days=1), T0 + timedelta(days=days), True,
                            tuple(children))


class SecRig(Rig):
    """Rig with a catalogue and device-model values given."""

    def __init__(self, certificates=(), values=None, stored=None):
        self.ids = 0
        self.tx_ids = 0
        dm = DeviceModel(load_definitions([1], station_id="CS-1", security_profile=1),
                         {(parse_ref(k).key, "Actual"): v for k, v in (values or {}).items()})
        self.station = Station(info=StationInfo("ACME", "Model-X", "SN-1", "1.0"), evse_connectors=[1],
                               device_model=dm, clock=StationClock(0.0, T0), new_message_id=self._new_id,
                               new_transaction_id=self._new_tx, certificates=tuple(certificates),
                               stored=stored or StoredState())
        self.effects = []
        self.calls = []
        self.run(self.station.start(0.0))
        self.settle(self.boot_accepted(now=0.0), 0.0)
        self.calls.clear()

    def reply(self, call, now):
        if call[2] == "SignCertificate":
            return {"status": "Accepted"}
        return super().reply(call, now)

    def effects_of(self, step):
        before = len(self.effects)
        step()
        return self.effects[before:]

    def job(self, effect, value, installed=(), ok=True, now=1.0):
        return self.run(self.station.hardware_event(
            JobFinished(effect, ok, "" if ok else "disk gone", result=CertificateOutcome(value, tuple(installed))), now))

    def only(self, kind):
        found = [e for e in self.effects if isinstance(e, kind)]
        assert len(found) == 1, f"expected one {kind.__name__}: {found}"
        return found[0]


def entries_value(rig) -> str:
    return rig.station.dm.get("SecurityCtrlr", "CertificateEntries")


# =========================================================================== M05 InstallCertificate

def test_install_is_a_store_job_answered_when_it_is_done():
    r = SecRig(values={"SecurityCtrlr.AdditionalRootCertificateCheck": "true"})
    frames = r.call("InstallCertificate", {"certificateType": "CSMSRootCertificate", "certificate": "PEM"}, 1.0,
                    msg_id="ic")
    assert [f for f in frames if f[0] == 3] == []                   # not answered before the store did it
    job = r.only(InstallRoot)
    assert (job.kind, job.pem, job.reply_to, job.issuer_check, job.utc) == (
        "CSMSRootCertificate", "PEM", "ic", True, T0 + timedelta(seconds=1))
    assert job.limits.max_chain_size == 10000 and job.limits.max_entries >= 10      # ORS-18, ORS-17
    frames = r.job(job, InstallResult(InstallStatus.ACCEPTED), [entry(K.CSMS_ROOT, "1")])
    assert r.reply_to(frames, "ic") == {"status": "Accepted"}
    assert entries_value(r) == "1"
    # ReconfigurationOfSecurityParameters is not critical: logged, not sent
    assert [e.type for e in r.station.security.security_log()][-1] == "ReconfigurationOfSecurityParameters"
    assert not [c for c in r.calls if c[2] == "SecurityEventNotification"]


def test_install_refused_by_the_store_is_answered_with_its_reason_and_changes_nothing():
    r = SecRig(certificates=[entry(K.CSMS_ROOT, "1")])
    r.call("InstallCertificate", {"certificateType": "MORootCertificate", "certificate": "PEM"}, 1.0, msg_id="ic")
    frames = r.job(r.only(InstallRoot), InstallResult(InstallStatus.REJECTED, "InvalidCertificate",
                                                      "certificate: expired (notAfter 2020-01-01T00:00:00Z)"),
                   [entry(K.CSMS_ROOT, "1")])
    assert r.reply_to(frames, "ic") == {"status": "Rejected", "statusInfo": {
        "reasonCode": "InvalidCertificate", "additionalInfo": "certificate: expired (notAfter 2020-01-01T00:00:00Z)"}}
    assert entries_value(r) == "1"
    assert [e.type for e in r.station.security.security_log()] == ["StartupOfTheDevice"]


def test_a_store_failure_answers_failed_internal_error():
    r = SecRig()
    r.call("InstallCertificate", {"certificateType": "V2GRootCertificate", "certificate": "PEM"}, 1.0, msg_id="ic")
    frames = r.run(r.station.hardware_event(JobFinished(r.only(InstallRoot), False, "no certificate store"), 1.0))
    res = r.reply_to(frames, "ic")
    assert res["status"] == "Failed" and res["statusInfo"]["reasonCode"] == "InternalError"


# =========================================================================== M03 GetInstalledCertificateIds

CATALOGUE = [entry(K.CSMS_ROOT, "1"), entry(K.MANUFACTURER_ROOT, "2"), entry(K.CHARGING_STATION, "3"),
             entry(K.V2G_CHAIN, "4", children=[h("5"), h("6")])]


def hash_json(serial):
    return {"hashAlgorithm": "SHA256", "issuerNameHash": "aa" * 32, "issuerKeyHash": "bb" * 32, "serialNumber": serial}


@pytest.mark.parametrize("types, serials", [
    (["CSMSRootCertificate"], ["1"]),
    (["CSMSRootCertificate", "ManufacturerRootCertificate"], ["1", "2"]),
    (None, ["1", "2", "4"]),                         # never the ChargingStationCertificate (not a GetCertificateIdUse)
    (["V2GCertificateChain"], ["4"]),
])
def test_get_installed_certificate_ids_from_the_catalogue(types, serials):
    r = SecRig(certificates=CATALOGUE)
    frames = r.call("GetInstalledCertificateIds", {"certificateType": types} if types else {}, 1.0, msg_id="g")
    res = r.reply_to(frames, "g")
    assert res["status"] == "Accepted"
    assert [c["certificateHashData"]["serialNumber"] for c in res["certificateHashDataChain"]] == serials
    for c in res["certificateHashDataChain"]:
        if c["certificateType"] == "V2GCertificateChain":
            assert c["childCertificateHashData"] == [hash_json("5"), hash_json("6")]      # M03.FR.05
        else:
            assert "childCertificateHashData" not in c


def test_get_installed_certificate_ids_none_of_the_type_is_not_found_without_a_chain():
    r = SecRig(certificates=CATALOGUE)
    frames = r.call("GetInstalledCertificateIds", {"certificateType": ["MORootCertificate"]}, 1.0, msg_id="g")
    assert r.reply_to(frames, "g") == {"status": "NotFound"}


# =========================================================================== M04 DeleteCertificate

def test_delete_unknown_is_not_found_and_station_certificate_failed_without_a_job():
    r = SecRig(certificates=CATALOGUE)
    frames = r.call("DeleteCertificate", {"certificateHashData": hash_json("77")}, 1.0, msg_id="d1")
    assert r.reply_to(frames, "d1")["status"] == "NotFound"
    frames = r.call("DeleteCertificate", {"certificateHashData": hash_json("3")}, 1.0, msg_id="d2")
    assert r.reply_to(frames, "d2")["status"] == "Failed"
    assert not [e for e in r.effects if isinstance(e, DeleteRoot)]


def test_delete_a_root_is_a_store_job():
    r = SecRig(certificates=CATALOGUE)
    r.call("DeleteCertificate", {"certificateHashData": hash_json("0001")}, 1.0, msg_id="d")
    job = r.only(DeleteRoot)
    assert job.hash_data.same_certificate(h("1")) and job.reply_to == "d"
    frames = r.job(job, DeleteResult(DeleteStatus.ACCEPTED), CATALOGUE[1:])
    assert r.reply_to(frames, "d") == {"status": "Accepted"}
    assert entries_value(r) == "3"


# =========================================================================== A02 SignCertificate

def start_signing(r, now=1.0, csr="CSR-1"):
    res = r.reply_to(r.call("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}, now,
                            msg_id="tm"), "tm")
    assert res == {"status": "Accepted"}
    job = r.only(MakeCsr)
    frames = r.job(job, csr, r.station.security.installed, now=now)        # the store's listing: unchanged
    return job, frames


def test_trigger_makes_a_csr_with_the_serial_number_and_organization_then_sends_it_durably():
    r = SecRig(values={"SecurityCtrlr.OrganizationName": "ACME CPO"})
    job, frames = start_signing(r)
    assert (job.kind, job.common_name, job.organization) == (K.CHARGING_STATION, "SN-1", "ACME CPO")
    [call] = [f for f in frames if f[0] == 2]
    assert call[2:] == ["SignCertificate", {"csr": "CSR-1", "certificateType": "ChargingStationCertificate"}]
    stored = [e for e in r.effects if isinstance(e, StoreRecords) and e.table == Outbox.TABLE and e.upserts]
    assert any("SignCertificate" in v for e in stored for v in e.upserts.values())      # durable


def test_no_certificate_signed_sends_the_same_csr_again_doubling_the_wait_repeat_times():
    r = SecRig(values={"SecurityCtrlr.CertSigningWaitMinimum": "10", "SecurityCtrlr.CertSigningRepeatTimes": "2"})
    _, frames = start_signing(r, now=1.0)
    r.settle(frames, 1.0)
    assert r.station.security.next_deadline() == pytest.approx(11.0)
    assert [c for c in r.calls if c[2] == "SignCertificate"].__len__() == 1
    assert [f for f in r.tick(10.9) if f[0] == 2] == []
    r.settle(r.tick(11.0), 11.0)
    assert r.station.security.next_deadline() == pytest.approx(31.0)         # 10 s doubled
    r.settle(r.tick(31.0), 31.0)
    sent = [c[3]["csr"] for c in r.calls if c[2] == "SignCertificate"]
    assert sent == ["CSR-1"] * 3                                    # the first and 2 repeats
    assert r.station.security.next_deadline() is None               # no more


def test_sign_certificate_rejected_ends_the_attempt():
    r = SecRig(values={"SecurityCtrlr.CertSigningWaitMinimum": "10"})
    _, frames = start_signing(r)
    [call] = [f for f in frames if f[0] == 2]
    r.answer(call, {"status": "Rejected"}, 1.5)
    assert r.station.security.next_deadline() is None
    assert [f for f in r.tick(100.0) if f[0] == 2 and f[2] == "SignCertificate"] == []


def test_certificate_signed_stops_the_repeats():
    r = SecRig(values={"SecurityCtrlr.CertSigningWaitMinimum": "10"})
    _, frames = start_signing(r)
    r.settle(frames, 1.0)
    r.call("CertificateSigned", {"certificateChain": "CHAIN"}, 5.0, msg_id="cs")
    assert r.station.security.next_deadline() is None


# =========================================================================== A02/A03 CertificateSigned

def test_certificate_signed_rejected_sends_invalid_charging_station_certificate():
    r = SecRig()
    r.call("CertificateSigned", {"certificateChain": "CHAIN", "certificateType": "ChargingStationCertificate"},
           1.0, msg_id="cs")
    job = r.only(InstallStationCertificate)
    assert (job.kind, job.chain_pem, job.reply_to) == (K.CHARGING_STATION, "CHAIN", "cs")
    frames = r.job(job, InstallResult(InstallStatus.REJECTED, "InvalidCertificate", "certificateChain: expired"))
    assert r.reply_to(frames, "cs")["status"] == "Rejected"
    r.settle(frames, 1.0)
    [event] = [c[3] for c in r.calls if c[2] == "SecurityEventNotification"]
    assert event["type"] == "InvalidChargingStationCertificate" and event["techInfo"] == "certificateChain: expired"
    assert not [e for e in r.effects if isinstance(e, ReconnectLink)]


def test_accepted_station_certificate_reconnects_and_is_kept_when_the_link_comes_up():
    r = SecRig()
    r.call("CertificateSigned", {"certificateChain": "CHAIN"}, 1.0, msg_id="cs")
    effects = r.effects_of(lambda: r.job(r.only(InstallStationCertificate), InstallResult(InstallStatus.ACCEPTED),
                                         [entry(K.CHARGING_STATION, "9")]))
    kinds = [type(e).__name__ for e in effects]
    assert kinds.index("Send") < kinds.index("ReconnectLink")       # answered, then reconnected (A02.FR.08)
    r.run(r.station.link_down(2.0))
    assert not [e for e in r.effects if isinstance(e, SettleStationCertificate)]
    r.run(r.station.link_up(3.0))
    assert r.only(SettleStationCertificate) == SettleStationCertificate(K.CHARGING_STATION, keep=True)


@pytest.mark.parametrize("attempts", [1, 3, 5])
def test_a_renewed_certificate_that_does_not_connect_is_reverted_with_a_security_event(attempts):
    """A02.FR.28: reverted after OCPPCommCtrlr.NetworkProfileConnectionAttempts failed attempts."""
    r = SecRig(values={"OCPPCommCtrlr.NetworkProfileConnectionAttempts": str(attempts)})
    r.call("CertificateSigned", {"certificateChain": "CHAIN"}, 1.0, msg_id="cs")
    r.job(r.only(InstallStationCertificate), InstallResult(InstallStatus.ACCEPTED), [entry(K.CHARGING_STATION, "9")])
    r.run(r.station.link_down(2.0))
    for attempt in range(1, attempts):
        r.run(r.station.link_down(2.0 + attempt / 10, attempt=attempt))
        assert not [e for e in r.effects if isinstance(e, SettleStationCertificate)]
    r.run(r.station.link_down(9.0, attempt=attempts))
    settle = r.only(SettleStationCertificate)
    assert settle == SettleStationCertificate(K.CHARGING_STATION, keep=False)
    assert len([e for e in r.effects if isinstance(e, ReconnectLink)]) == 1        # only the renewal's so far
    r.job(settle, None, [entry(K.CHARGING_STATION, "8")], now=9.5)
    assert len([e for e in r.effects if isinstance(e, ReconnectLink)]) == 2        # after the revert is done
    r.settle(r.up(10.0), 10.0)
    assert [c[3]["type"] for c in r.calls if c[2] == "SecurityEventNotification"] == [
        "DiscardedRenewedClientCertificate"]                  # errata 2025-01 A02.FR.29


# =========================================================================== A03 renewal before expiry

def test_renewal_starts_before_the_certificate_expires():
    r = SecRig(certificates=[entry(K.CHARGING_STATION, "9", days=200)])
    due = r.station.clock.monotonic(T0 + timedelta(days=200) - RENEWAL_LEAD)
    assert r.station.security.next_deadline() == pytest.approx(due)
    r.run(r.station.tick(due - 1))
    assert not [e for e in r.effects if isinstance(e, MakeCsr)]
    r.run(r.station.tick(due))
    assert r.only(MakeCsr).kind is K.CHARGING_STATION


# =========================================================================== A04 security events and log

def test_critical_events_are_the_appendix_ones():
    with APPENDIX.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    assert CRITICAL == {r["Security Event"] for r in rows if r["Critical"] == "Yes"}


def test_every_event_is_logged_and_only_critical_ones_are_sent():
    r = SecRig()
    r.station.ctx.security_event("InvalidMessages", 5.0, "bad frame")
    r.station.ctx.security_event("TamperDetectionActivated", 6.0, "x" * 300)
    r.settle(r.run(r.station.tick(6.0)), 6.0)
    sent = [c[3] for c in r.calls if c[2] == "SecurityEventNotification"]
    assert [(s["type"], len(s["techInfo"])) for s in sent] == [("TamperDetectionActivated", 255)]
    log = r.station.security.security_log(T0 + timedelta(seconds=5), T0 + timedelta(seconds=6))
    assert [e.type for e in log] == ["InvalidMessages", "TamperDetectionActivated"]


def test_security_log_is_bounded_durable_and_read_between_two_timestamps():
    log = SecurityLog({}, capacity=3)
    for i in range(5):
        log.add(f"E{i}", T0 + timedelta(seconds=i), None)
    change = log.take_change()
    assert change.table == SECURITY_LOG_TABLE and len(change.upserts) == 3 and change.deletes == ()
    assert [e.type for e in log.between()] == ["E2", "E3", "E4"]
    reloaded = SecurityLog(change.upserts, capacity=3)
    reloaded.add("E5", T0 + timedelta(seconds=5), "t")
    assert reloaded.take_change().deletes == (min(change.upserts),)            # the oldest stored one goes
    assert [e.type for e in reloaded.between(T0 + timedelta(seconds=3), T0 + timedelta(seconds=4))] == ["E3", "E4"]


def test_security_log_survives_a_restart():
    r = SecRig()
    r.station.ctx.security_event("InvalidMessages", 5.0, None)
    r.run(r.station.tick(5.0))
    records: dict[str, str] = {}
    for e in r.effects:
        if isinstance(e, StoreRecords) and e.table == SECURITY_LOG_TABLE:
            records.update(e.upserts)
            for k in e.deletes:
                records.pop(k, None)
    r2 = SecRig(stored=StoredState(records={SECURITY_LOG_TABLE: records}))
    assert [e.type for e in r2.station.security.security_log()] == [
        "StartupOfTheDevice", "InvalidMessages", "StartupOfTheDevice"]


def test_a_renewal_a_previous_run_left_unproven_is_kept_at_the_first_connection():
    dm = DeviceModel(load_definitions([1], station_id="CS-1", security_profile=1))
    station = Station(info=StationInfo("ACME", "Model-X", "SN-1", "1.0"), evse_connectors=[1], device_model=dm,
                      clock=StationClock(0.0, T0), unproven_certificates=(K.CHARGING_STATION,))
    station.start(0.0)
    effects = station.link_up(1.0)
    assert SettleStationCertificate(K.CHARGING_STATION, keep=True) in effects
    assert not [e for e in station.link_up(2.0) if isinstance(e, SettleStationCertificate)]


def test_a_critical_event_while_offline_is_stored_before_it_is_sent():
    r = SecRig()
    r.run(r.station.link_down(4.0))
    before = len(r.effects)
    r.station.ctx.security_event("InvalidChargingStationCertificate", 5.0, "x")
    r.run(r.station.tick(5.0))
    stored = [v for e in r.effects[before:] if isinstance(e, StoreRecords) and e.table == Outbox.TABLE
              for v in e.upserts.values()]
    assert any("SecurityEventNotification" in v and "InvalidChargingStationCertificate" in v for v in stored)
    frames = r.up(6.0)
    assert [f[2] for f in frames if f[0] == 2] == ["SecurityEventNotification"]


def test_after_the_last_repeat_the_renewal_before_expiry_is_still_scheduled():
    r = SecRig(certificates=[entry(K.CHARGING_STATION, "9", days=200)],
               values={"SecurityCtrlr.CertSigningRepeatTimes": "0"})
    _, frames = start_signing(r, now=1.0)
    r.settle(frames, 1.0)                                # Accepted, no repeat: nothing to wait for
    due = r.station.clock.monotonic(T0 + timedelta(days=200) - RENEWAL_LEAD)
    assert r.station.security.next_deadline() == pytest.approx(due)


def test_a_store_failure_deleting_answers_failed_internal_error():
    r = SecRig(certificates=CATALOGUE)
    r.call("DeleteCertificate", {"certificateHashData": hash_json("1")}, 1.0, msg_id="d")
    frames = r.run(r.station.hardware_event(JobFinished(r.only(DeleteRoot), False, "disk gone"), 1.0))
    res = r.reply_to(frames, "d")
    assert res["status"] == "Failed" and res["statusInfo"]["reasonCode"] == "InternalError"


# =========================================================================== M05.FR.13/14 fallback root

def test_a_failed_csms_check_switches_to_the_fallback_root_and_back():
    """M05.FR.14: with a fallback CSMSRootCertificate, each InvalidCsmsCertificate failure makes the
    link's next attempts use the other roots (a Reconfigure); without one nothing changes."""
    fallback = dataclasses.replace(entry(K.CSMS_ROOT, "1"), fallback=True)
    r = SecRig(certificates=[fallback, entry(K.CSMS_ROOT, "2")])
    r.run(r.station.link_down(1.0))
    r.effects.clear()
    r.run(r.station.link_down(2.0, attempt=1, security_event="InvalidCsmsCertificate", reason="bad"))
    assert r.station.security.use_fallback_roots and Reconfigure() in r.effects
    r.run(r.station.link_down(3.0, attempt=2, security_event="InvalidTLSVersion", reason="old"))
    assert r.station.security.use_fallback_roots                  # another failure: no switch
    r.run(r.station.link_down(4.0, attempt=3, security_event="InvalidCsmsCertificate", reason="bad"))
    assert not r.station.security.use_fallback_roots
    r.run(r.station.link_up(5.0))          # security profile 1: nothing was validated, the fallback stays
    assert not [e for e in r.effects if isinstance(e, DiscardFallbackRoots)]
    r.run(r.station.link_down(6.0, attempt=1, security_event="InvalidCsmsCertificate", reason="bad"))
    assert r.station.security.use_fallback_roots
    r.effects.clear()
    r.call("InstallCertificate", {"certificateType": "CSMSRootCertificate", "certificate": "PEM"}, 7.0, msg_id="ic")
    r.job(r.only(InstallRoot), InstallResult(InstallStatus.ACCEPTED),
          [fallback, entry(K.CSMS_ROOT, "3")], now=7.5)
    assert not r.station.security.use_fallback_roots and Reconfigure() in r.effects   # a new root: tried first

    plain = SecRig(certificates=[entry(K.CSMS_ROOT, "2")])
    plain.run(plain.station.link_down(1.0))
    plain.effects.clear()
    plain.run(plain.station.link_down(2.0, attempt=1, security_event="InvalidCsmsCertificate", reason="bad"))
    assert not plain.station.security.use_fallback_roots and Reconfigure() not in plain.effects
