"""OCA certification test cases of functional block M (certificate management), Charging Station
side: TC_M_01, M_02, M_07, M_09, M_12, M_13, M_17..M_20, M_22, M_23, M_30, M_31.

One test per test case of OCPP 2.0.1 Edition 3 Part 6 ("Test case Id TC_M_nn_CS"): the steps are
followed as written and every tool validation is asserted; the station is the real one (its
certificate store on files next to its SQLite database), the OCTT is played by the DevCsms (see
conftest.py, which validates every frame the station sent against the official JSON schemas).

Certificates are made by the test with `cryptography` (tests/pki.py), valid around the rig's
clock. The expected certificateHashData is computed independently of the station: by
cryptography's OCSP request builder (an OCSP CertID has the same issuerNameHash, issuerKeyHash
and serialNumber, RFC 6960).

Readings:
- "<Configured new CSMS Root certificate>" / "Root 2": a root the test makes; the station starts
  with none installed.
- TC_M_30 / TC_M_31 (security profile 2, real TLS on loopback, tls_rig.py): the old root is the
  TOML's CA bundle, "<Configured new CSMS Root certificate 2>" a CA the old one signed (trustme's
  child CA); the OCTT endpoint presents a certificate signed by the new (M_30) or the old (M_31)
  root after the Reset.
- TC_M_09 (AdditionalRootCertificateCheck true, "the old CSMSRootCertificate"): the old one is
  installed first (the first CSMSRootCertificate needs no signature by a previous one), then a new
  self-signed root not signed by it is Rejected.
- TC_M_23: the station runs security profile 1 in this rig (in-memory link, no TLS); the
  RenewChargingStationCertificate state is played as in Part 6 (TC_A_11's steps), which is what
  the test needs: a ChargingStationCertificate generated on the station.
"""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from tests.conformance.conftest import expect_call
from tests.memory_link import rig_utc_now
from tests.pki import Issued, issue

TIMEOUT = 20


# --------------------------------------------------------------------------- certificates

def valid(cn: str, *, issuer: Issued | None = None, ca: bool = True, public_key=None, days: float = 365,
          expired: bool = False) -> Issued:
    """A certificate valid now at the rig's clock (or expired yesterday)."""
    now = rig_utc_now()
    if expired:
        return issue(cn, issuer=issuer, ca=ca, public_key=public_key, not_before=now - timedelta(days=30),
                     not_after=now - timedelta(days=1))
    return issue(cn, issuer=issuer, ca=ca, public_key=public_key, not_before=now - timedelta(days=1),
                 not_after=now + timedelta(days=days))


def hash_data(cert: Issued, issuer: Issued | None = None) -> dict:
    """certificateHashData of `cert` (issued by `issuer`, itself when None), via an OCSP CertID."""
    req = ocsp.OCSPRequestBuilder().add_certificate(cert.cert, (issuer or cert).cert, hashes.SHA256()).build()
    return {"hashAlgorithm": "SHA256", "issuerNameHash": req.issuer_name_hash.hex(),
            "issuerKeyHash": req.issuer_key_hash.hex(), "serialNumber": format(req.serial_number, "x")}


def same_hash(a: dict, b: dict) -> bool:
    return (a["hashAlgorithm"] == b["hashAlgorithm"] and a["issuerNameHash"].lower() == b["issuerNameHash"].lower()
            and a["issuerKeyHash"].lower() == b["issuerKeyHash"].lower()
            and int(a["serialNumber"], 16) == int(b["serialNumber"], 16))


def entries(res: dict, kind: str) -> list[dict]:
    return [c["certificateHashData"] for c in res.get("certificateHashDataChain", ()) if c["certificateType"] == kind]


# --------------------------------------------------------------------------- reusable states

async def certificate_installed(cs, kind: str, cert: Issued, step: str = "CertificateInstalled") -> None:
    """Memory State CertificateInstalled (Part 6 table 442)."""
    res = await cs.call("InstallCertificate", {"certificateType": kind, "certificate": cert.pem})
    assert res["status"] == "Accepted", f"{step} step 2: InstallCertificateResponse {res}"


async def get_installed(cs, kinds: list[str] | None) -> dict:
    return await cs.call("GetInstalledCertificateIds", {"certificateType": kinds} if kinds else {})


async def get_installed_certificates(cs, kind: str, cert: Issued, step: str = "GetInstalledCertificates") -> dict:
    """Reusable State GetInstalledCertificates (Part 6 table 438): Accepted, with an entry of the
    type carrying the certificate's hash data."""
    res = await get_installed(cs, [kind])
    assert res["status"] == "Accepted", f"{step} step 2: {res}"
    assert any(same_hash(h, hash_data(cert)) for h in entries(res, kind)), \
        f"{step} step 2: no {kind} with the installed certificate's hash data in {res}"
    return res


def check_csr(step: str, pem: str) -> x509.CertificateSigningRequest:
    """The CSR tool validation (TC_A_11/14/23 step 3): RFC 2986 in PEM, RSA >= 2048 or EC >= 224
    bits; plus A02.FR.02: signed by its key, O = SecurityCtrlr.OrganizationName."""
    assert pem.startswith("-----BEGIN CERTIFICATE REQUEST-----"), f"{step}: the csr is not a PEM PKCS#10 request"
    csr = x509.load_pem_x509_csr(pem.encode())
    assert csr.is_signature_valid, f"{step}: the CSR's signature does not verify"
    key = csr.public_key()
    assert (isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size >= 224) or \
        (isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048), f"{step}: key too small or of another type"
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME), f"{step}: no commonName in {csr.subject}"
    return csr


async def renew_charging_station_certificate(cs, csms_root: Issued, step: str = "RenewChargingStationCertificate"
                                             ) -> Issued:
    """Memory State RenewChargingStationCertificate (Part 6 table 446): TriggerMessage
    SignChargingStationCertificate, SignCertificate Accepted (the DevCsms's default answer), the
    CSR signed by `csms_root` sent back with CertificateSigned, Accepted. Returns the certificate."""
    after = cs.mark()
    res = await cs.call("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"})
    assert res["status"] == "Accepted", f"{step} step 2: TriggerMessageResponse {res}"
    _, req = await expect_call(cs, "SignCertificate", after=after, step=f"{step} step 3")
    csr = check_csr(f"{step} step 3", req["csr"])
    assert req.get("certificateType", "ChargingStationCertificate") == "ChargingStationCertificate", req
    signed = valid(cs.station_id, issuer=csms_root, ca=False, public_key=csr.public_key())
    handshakes = len(cs.csms.handshakes)
    res = await cs.call("CertificateSigned", {"certificateChain": signed.pem,
                                              "certificateType": "ChargingStationCertificate"})
    assert res["status"] == "Accepted", f"{step} step 6: CertificateSignedResponse {res}"
    await reconnected(cs, handshakes, f"{step} after step 6 (A02.FR.08)")
    return signed


async def reconnected(cs, handshakes: int, step: str) -> None:
    """The station connects again (a new WebSocket handshake after index `handshakes`)."""
    try:
        await cs.csms.wait_handshake(cs.station_id, after=handshakes, timeout=10)
    except trio.TooSlowError:
        raise AssertionError(f"{step}: the station did not reconnect with its new certificate") from None
    await cs.csms.wait_connected(cs.station_id)


# --------------------------------------------------------------------------- M05 install

async def test_TC_M_01_CS_install_csms_root_certificate(boot_station):
    root2 = valid("CSMS Root 2")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await certificate_installed(cs, "CSMSRootCertificate", root2, "Step 1")
            await get_installed_certificates(cs, "CSMSRootCertificate", root2, "Step 2")


async def test_TC_M_02_CS_install_manufacturer_root_certificate(boot_station):
    root = valid("Manufacturer Root")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await certificate_installed(cs, "ManufacturerRootCertificate", root, "Step 1")
            await get_installed_certificates(cs, "ManufacturerRootCertificate", root, "Step 2")


async def test_TC_M_07_CS_install_expired_certificate_rejected(boot_station):
    expired = valid("CSMS Root expired", expired=True)
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res = await cs.call("InstallCertificate", {"certificateType": "CSMSRootCertificate",
                                                       "certificate": expired.pem})
            assert res["status"] == "Rejected", f"Step 2: {res}"
            res = await get_installed(cs, ["CSMSRootCertificate"])
            assert res["status"] in ("Accepted", "NotFound"), f"Step 4: {res}"
            assert not any(same_hash(h, hash_data(expired)) for h in entries(res, "CSMSRootCertificate")), \
                f"Step 4: the rejected certificate is listed: {res}"


async def test_TC_M_09_CS_additional_root_certificate_check_rejects_a_root_not_signed_by_the_old_one(boot_station):
    old, new = valid("CSMS Root old"), valid("CSMS Root new, not signed by the old one")
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={"SecurityCtrlr.AdditionalRootCertificateCheck": True}) as cs:
            await certificate_installed(cs, "CSMSRootCertificate", old, "Before (the old CSMS root)")
            res = await cs.call("InstallCertificate", {"certificateType": "CSMSRootCertificate",
                                                       "certificate": new.pem})
            assert res["status"] == "Rejected", f"Step 2: {res}"
            res = await get_installed(cs, ["CSMSRootCertificate"])
            assert res["status"] == "Accepted", f"Step 4: {res}"
            listed = entries(res, "CSMSRootCertificate")
            assert len(listed) == 1 and same_hash(listed[0], hash_data(old)), f"Step 4: {res}"


async def test_additional_root_certificate_check_accepts_a_root_signed_by_the_old_one(boot_station):
    """M05.FR.10: with the check on, a new CSMSRootCertificate signed by the installed one is
    Accepted (the old one stays listed, as the fallback of M05.FR.12/14)."""
    old = valid("CSMS Root old")
    new = valid("CSMS Root new", issuer=old)
    with trio.fail_after(TIMEOUT):
        async with boot_station(device_model={"SecurityCtrlr.AdditionalRootCertificateCheck": True}) as cs:
            await certificate_installed(cs, "CSMSRootCertificate", old)
            await certificate_installed(cs, "CSMSRootCertificate", new)
            res = await get_installed(cs, ["CSMSRootCertificate"])
            assert len(entries(res, "CSMSRootCertificate")) == 2, res


# --------------------------------------------------------------------------- M05 AdditionalRootCertificateCheck, on TLS

def ca_hash(ca) -> dict:
    """certificateHashData of a trustme CA (self-signed: its own issuer)."""
    return hash_data(SimpleNamespace(cert=x509.load_pem_x509_certificate(ca.cert_pem.bytes())))


async def new_root_installed(cs, new_root) -> None:
    """Memory State CertificateInstalled <Configured new CSMS Root certificate 2>, signed by the
    old one (the TOML's CA bundle, installed at start)."""
    res = await cs.call("InstallCertificate", {"certificateType": "CSMSRootCertificate",
                                               "certificate": new_root.cert_pem.bytes().decode()})
    assert res["status"] == "Accepted", f"CertificateInstalled step 2: InstallCertificateResponse {res}"


ROOT_CHECK = {"SecurityCtrlr.AdditionalRootCertificateCheck": True}


@pytest.mark.real_clock
async def test_TC_M_30_CS_reconnect_using_the_new_csms_root_success(boot_station, tmp_path):
    from tests.conformance.tls_rig import PROFILE_2, Endpoint, Pki
    pki = Pki()
    pki.write(tmp_path)                                 # the old CSMS root: the TOML's bundle
    new_root = pki.csms_ca.create_child_ca()            # signed by the old one (prerequisite)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            octt = await Endpoint(pki.server()).start(nursery)
            async with boot_station(csms_toml=PROFILE_2, csms_url=octt.url(), on_csms=octt.attach,
                                    device_model=ROOT_CHECK) as cs:
                await new_root_installed(cs, new_root)
                octt.then = pki.server(ca=new_root)                             # 3: signed by the new root
                seen = len(octt.seen)
                after = cs.mark()
                res = await cs.call("Reset", {"type": "OnIdle"})
                assert res["status"] == "Accepted", f"Step 2: {res}"
                await cs.wait_booted(after)                                     # 4-5: succeeds at once
                assert [s.failed for s in octt.seen[seen:]] == [None], octt.seen[seen:]
                res = await get_installed(cs, ["CSMSRootCertificate"])          # 6-7
                assert res["status"] == "Accepted", f"Step 7: {res}"
                assert not any(same_hash(h, ca_hash(pki.csms_ca)) for h in entries(res, "CSMSRootCertificate")), \
                    f"Step 7: the old CSMS root is still listed: {res}"
                bundle = cs.runtime.certificates.csms_root_bundle(fallback=True)
                assert bundle is None                                           # M05.FR.13: removed
            nursery.cancel_scope.cancel()


@pytest.mark.real_clock
async def test_TC_M_31_CS_reconnect_using_the_new_csms_root_fallback(boot_station, tmp_path):
    from tests.conformance.tls_rig import PROFILE_2, Endpoint, Pki
    pki = Pki()
    pki.write(tmp_path)
    new_root = pki.csms_ca.create_child_ca()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            octt = await Endpoint(pki.server()).start(nursery)                  # 3: signed by the old root
            async with boot_station(csms_toml=PROFILE_2, csms_url=octt.url(), on_csms=octt.attach,
                                    device_model=ROOT_CHECK) as cs:
                await new_root_installed(cs, new_root)
                seen = len(octt.seen)
                after = cs.mark()
                res = await cs.call("Reset", {"type": "OnIdle"})
                assert res["status"] == "Accepted", f"Step 2: {res}"
                await cs.wait_booted(after)                                     # 4-6
                attempts = octt.seen[seen:]
                assert attempts[0].failed is not None, attempts                 # 4: the new root fails
                assert attempts[-1].failed is None and attempts[-1].tls_version, attempts   # 5: the old one
                res = await get_installed(cs, ["CSMSRootCertificate"])          # 7-8
                assert res["status"] == "Accepted", f"Step 8: {res}"
                assert any(same_hash(h, ca_hash(pki.csms_ca)) for h in entries(res, "CSMSRootCertificate")), \
                    f"Step 8: the old CSMS root is not listed: {res}"
            nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------- M03 retrieve

async def test_TC_M_12_CS_get_installed_csms_root_certificates(boot_station):
    root = valid("CSMS Root")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await certificate_installed(cs, "CSMSRootCertificate", root, "Before")
            await get_installed_certificates(cs, "CSMSRootCertificate", root, "Step 1")


async def test_TC_M_13_CS_get_installed_manufacturer_root_certificates(boot_station):
    root = valid("Manufacturer Root")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await certificate_installed(cs, "ManufacturerRootCertificate", root, "Before")
            await get_installed_certificates(cs, "ManufacturerRootCertificate", root, "Step 1")


async def test_TC_M_17_CS_get_installed_csms_and_manufacturer_root_certificates(boot_station):
    csms, manufacturer = valid("CSMS Root"), valid("Manufacturer Root")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await certificate_installed(cs, "CSMSRootCertificate", csms, "Before")
            await certificate_installed(cs, "ManufacturerRootCertificate", manufacturer, "Before")
            res = await get_installed(cs, ["CSMSRootCertificate", "ManufacturerRootCertificate"])
            assert res["status"] == "Accepted", f"Step 1: {res}"
            assert [len(entries(res, k)) for k in ("CSMSRootCertificate", "ManufacturerRootCertificate")] == [1, 1]
            assert same_hash(entries(res, "CSMSRootCertificate")[0], hash_data(csms))
            assert same_hash(entries(res, "ManufacturerRootCertificate")[0], hash_data(manufacturer))


async def test_TC_M_18_CS_get_installed_certificates_of_all_types(boot_station):
    csms, manufacturer = valid("CSMS Root"), valid("Manufacturer Root")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await certificate_installed(cs, "CSMSRootCertificate", csms, "Before")
            await certificate_installed(cs, "ManufacturerRootCertificate", manufacturer, "Before")
            res = await get_installed(cs, None)
            assert res["status"] == "Accepted", f"Step 2: {res}"
            assert len(res["certificateHashDataChain"]) == 2, f"Step 2: {res}"
            assert same_hash(entries(res, "CSMSRootCertificate")[0], hash_data(csms))
            assert same_hash(entries(res, "ManufacturerRootCertificate")[0], hash_data(manufacturer))


async def test_TC_M_19_CS_get_installed_certificates_none_of_the_type(boot_station):
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res = await get_installed(cs, ["MORootCertificate"])
            assert res["status"] == "NotFound", f"Step 2: {res}"
            assert "certificateHashDataChain" not in res, f"Step 2: {res}"


async def test_installed_certificates_survive_a_restart_and_are_counted(boot_station):
    """M05.FR.02 (stored), SecurityCtrlr.CertificateEntries: the catalogue is loaded from the
    store at start."""
    root = valid("CSMS Root")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await certificate_installed(cs, "CSMSRootCertificate", root)
            await cs.restart()
            await get_installed_certificates(cs, "CSMSRootCertificate", root, "after the restart")
            res = await cs.call("GetVariables", {"getVariableData": [
                {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "CertificateEntries"}}]})
            assert res["getVariableResult"][0]["attributeValue"] == "1", res


# --------------------------------------------------------------------------- M04 delete

async def test_TC_M_20_CS_delete_certificate(boot_station):
    root = valid("CSMS Root")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await certificate_installed(cs, "CSMSRootCertificate", root, "Before")
            res = await get_installed_certificates(cs, "CSMSRootCertificate", root, "Step 1")
            returned = entries(res, "CSMSRootCertificate")[0]
            res = await cs.call("DeleteCertificate", {"certificateHashData": returned})
            assert res["status"] == "Accepted", f"Step 3: {res}"
            res = await get_installed(cs, ["CSMSRootCertificate"])
            assert not any(same_hash(h, returned) for h in entries(res, "CSMSRootCertificate")), f"Step 4: {res}"


async def test_TC_M_22_CS_delete_unknown_certificate(boot_station):
    root, unknown = valid("CSMS Root"), valid("never installed")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await certificate_installed(cs, "CSMSRootCertificate", root, "Before")
            await get_installed_certificates(cs, "CSMSRootCertificate", root, "Step 1")
            res = await cs.call("DeleteCertificate", {"certificateHashData": hash_data(unknown)})
            assert res["status"] == "NotFound", f"Step 3: {res}"


async def test_TC_M_23_CS_the_charging_station_certificate_cannot_be_deleted(boot_station):
    root = valid("CSMS Root")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await certificate_installed(cs, "CSMSRootCertificate", root, "Prerequisite")
            signed = await renew_charging_station_certificate(cs, root, "Before (RenewChargingStationCertificate)")
            res = await get_installed(cs, None)
            assert res["status"] == "Accepted", f"Step 1: {res}"
            res = await cs.call("DeleteCertificate", {"certificateHashData": hash_data(signed, root)})
            assert res["status"] in ("NotFound", "Failed"), f"Step 3: {res}"


@pytest.mark.real_clock
async def test_install_and_list_with_the_store_in_a_worker_thread_over_loopback(boot_station):
    """The runtime as deployed: the certificate jobs in trio.to_thread (the MockClock rig runs them
    inline), a real websocket on 127.0.0.1."""
    root = valid("CSMS Root")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            await certificate_installed(cs, "CSMSRootCertificate", root)
            await get_installed_certificates(cs, "CSMSRootCertificate", root)


async def test_a_station_whose_certificate_store_cannot_be_opened_starts_and_answers_failed(boot_station, tmp_path):
    """The state directory has a file where the store's folder should be: the station starts
    anyway (BootNotification, statuses) and answers InstallCertificate Failed / InternalError."""
    (tmp_path / "certs").write_text("not a folder")
    with trio.fail_after(TIMEOUT):
        async with boot_station() as cs:
            res = await cs.call("InstallCertificate", {"certificateType": "CSMSRootCertificate",
                                                       "certificate": valid("CSMS Root").pem})
            assert res["status"] == "Failed" and res["statusInfo"]["reasonCode"] == "InternalError", res
            assert (await get_installed(cs, None))["status"] == "NotFound"
