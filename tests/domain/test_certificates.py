"""The certificate decisions of domain/security/certificates.py (M03-M05, A02/A03), table-driven."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from domain.security.certificates import (
    CertificateEntry, CertificateFacts, CertificateKind, DeleteStatus, HashData, InstallStatus, StoreLimits,
    check_request, decide_delete, decide_root_install, decide_station_certificate, normalize_serial)

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)
H = HashData("aa" * 32, "bb" * 32, "1f")
ROOT = CertificateFacts("CN=root", is_ca=True, self_signed=True, not_before=NOW - timedelta(days=1),
                        not_after=NOW + timedelta(days=1), hash_data=H)
LEAF = replace(ROOT, subject="CN=leaf", is_ca=False, self_signed=False, hash_data=replace(H, serial_number="2"))
SUB = replace(ROOT, subject="CN=sub", self_signed=False, hash_data=replace(H, serial_number="3"))
LIMITS = StoreLimits(max_entries=2, max_chain_size=100)


def entry(kind, h=H):
    return CertificateEntry(kind, h, "CN=x", NOW, NOW, True)


@pytest.mark.parametrize("kind, certs, size, installed, status, reason, words", [
    ("ChargingStationCertificate", [ROOT], 10, [], "Rejected", "InvalidValue", "certificateType"),
    ("Foo", [ROOT], 10, [], "Rejected", "InvalidValue", "certificateType: Foo"),
    ("CSMSRootCertificate", [ROOT], 101, [], "Rejected", "TooLargeElement", "MaxCertificateChainSize 100"),
    ("CSMSRootCertificate", [ROOT, ROOT], 10, [], "Rejected", "InvalidCertificate", "2 certificates"),
    ("CSMSRootCertificate", [LEAF], 10, [], "Rejected", "InvalidCertificate", "not a CA"),
    ("CSMSRootCertificate", [SUB], 10, [], "Rejected", "InvalidCertificate", "not self-signed"),
    ("CSMSRootCertificate", [replace(ROOT, not_after=NOW - timedelta(seconds=1))], 10, [], "Rejected",
     "InvalidCertificate", "expired"),
    ("CSMSRootCertificate", [replace(ROOT, not_before=NOW + timedelta(seconds=1))], 10, [], "Rejected",
     "InvalidCertificate", "not yet valid"),
    ("CSMSRootCertificate", [ROOT], 10, [entry("V2GRootCertificate", replace(H, serial_number="9"))] * 2,
     "Failed", "OutOfStorage", "CertificateEntries limit 2"),
    # the same certificate again: nothing to add, even when full
    ("CSMSRootCertificate", [ROOT], 10, [entry(CertificateKind.CSMS_ROOT, replace(H, serial_number="001F"))] * 2,
     "Accepted", None, ""),
    ("MORootCertificate", [ROOT], 10, [entry(CertificateKind.CSMS_ROOT)], "Accepted", None, ""),
])
def test_root_install_decisions(kind, certs, size, installed, status, reason, words):
    r = decide_root_install(kind, certs, size, now=NOW, installed=installed, limits=LIMITS)
    assert (r.status, r.reason_code) == (InstallStatus(status), reason)
    assert words in r.detail and "\n" not in r.detail


@pytest.mark.parametrize("chain, ok, status_words", [
    ([LEAF, SUB], dict(), None),
    ([], dict(), "0 certificates"),
    ([LEAF, SUB, SUB, SUB, SUB, SUB], dict(), "6 certificates"),
    ([SUB], dict(), "the first certificate is a CA"),
    ([LEAF, SUB], dict(linked=False), "not issued by the next"),
    ([LEAF, replace(SUB, not_after=NOW - timedelta(1))], dict(), "certificateChain[1]: expired"),
    ([LEAF], dict(matches_key=False), "station's public key"),
    ([LEAF], dict(chains_to_trusted_root=False), "CSMSRootCertificate or ManufacturerRootCertificate"),
])
def test_station_certificate_decisions(chain, ok, status_words):
    flags = dict(linked=True, matches_key=True, chains_to_trusted_root=True) | ok
    r = decide_station_certificate("ChargingStationCertificate", chain, 10, now=NOW, limits=LIMITS, **flags)
    if status_words is None:
        assert r.accepted
    else:
        assert (r.status, r.reason_code) == (InstallStatus.REJECTED, "InvalidCertificate")
        assert status_words in r.detail


def test_requests_checked_before_parsing():
    assert check_request("CSMSRootCertificate", 100, LIMITS) is None
    assert check_request("CSMSRootCertificate", 100, LIMITS, station=True).reason_code == "InvalidValue"
    assert check_request("V2GCertificateChain", 101, LIMITS, station=True).detail.startswith("certificateChain: 101 bytes")


def test_hash_data_names_a_certificate_leniently():
    """The CSMS may write hex in upper case and the serial number with leading zeros."""
    assert normalize_serial("000A0") == "a0" and normalize_serial("00") == "0"
    upper = HashData(H.issuer_name_hash.upper(), H.issuer_key_hash.upper(), "001F")
    assert H.same_certificate(upper)
    assert not H.same_certificate(replace(upper, serial_number="1e"))
    assert not H.same_certificate(replace(upper, hash_algorithm="SHA384"))


def test_delete_decisions():
    installed = [entry(CertificateKind.CSMS_ROOT), entry(CertificateKind.CHARGING_STATION, replace(H, serial_number="5"))]
    assert decide_delete(installed, H) is None
    assert decide_delete(installed, replace(H, serial_number="6")).status is DeleteStatus.NOT_FOUND
    assert decide_delete(installed, replace(H, serial_number="05")).status is DeleteStatus.FAILED


@pytest.mark.parametrize("installed, issued_by, self_signed, status, words", [
    # AdditionalRootCertificateCheck on, a CSMS root installed: the new one must be signed by it
    ([entry(CertificateKind.CSMS_ROOT)], False, True, "Rejected", "not signed by the installed CSMSRootCertificate"),
    ([entry(CertificateKind.CSMS_ROOT)], True, False, "Accepted", ""),
    # no CSMS root yet: the first one is self-signed as without the check
    ([], False, True, "Accepted", ""),
    ([], False, False, "Rejected", "not self-signed"),
    # the check off (None): self-signed required, the issuer does not matter
    ([entry(CertificateKind.CSMS_ROOT)], None, False, "Rejected", "not self-signed"),
])
def test_additional_root_certificate_check(installed, issued_by, self_signed, status, words):
    cert = replace(ROOT, self_signed=self_signed, hash_data=replace(H, serial_number="77"))
    r = decide_root_install("CSMSRootCertificate", [cert], 10, now=NOW, installed=installed,
                            limits=StoreLimits(), issued_by_installed_csms_root=issued_by)
    assert r.status == status and words in r.detail
