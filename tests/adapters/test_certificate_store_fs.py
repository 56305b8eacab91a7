"""The file-system certificate store on real files in tmp_path, with certificates made here
(tests/pki.py). Hash data is checked against cryptography's own OCSP CertID (RFC 6960), an
independent computation of the same three values."""
from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

import adapters.certificate_store_fs as fs
from adapters.certificate_store_fs import FsCertificateStore
from domain.security.certificates import (CertificateKind as K, DeleteStatus, HashData, InstallStatus, KeyAlgorithm,
                                          StoreLimits)
from ports.certificate_store import CertificateStoreError
from tests.pki import NOW, issue

REPO = Path(__file__).resolve().parents[2]
LIMITS = StoreLimits(max_entries=10, max_chain_size=10000)


def ocsp_hash(cert, issuer) -> HashData:
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    return HashData(req.issuer_name_hash.hex(), req.issuer_key_hash.hex(), format(req.serial_number, "x"))


@pytest.fixture
def store(tmp_path):
    return FsCertificateStore(tmp_path)


def signed_station_cert(store, kind, issuer, **kw):
    """CSR from the store, signed by `issuer` (a test CA), as a chain PEM with the CA."""
    csr = x509.load_pem_x509_csr(store.make_csr(kind, "CS-0001", "ACME").encode())
    leaf = issue("CS-0001", issuer=issuer, ca=False, public_key=csr.public_key(), **kw)
    return leaf


def test_install_list_delete_roots_with_hash_data(store):
    root, mo = issue("CSMS root", serial=0x00ab), issue("MO root")
    assert store.install(K.CSMS_ROOT, root.pem, now=NOW, limits=LIMITS).status is InstallStatus.ACCEPTED
    assert store.install("MORootCertificate", mo.pem, now=NOW, limits=LIMITS).accepted
    assert store.install(K.CSMS_ROOT, root.pem, now=NOW, limits=LIMITS).accepted   # again: no second entry
    entries = {e.kind: e for e in store.list()}
    assert set(entries) == {K.CSMS_ROOT, K.MO_ROOT}
    assert entries[K.CSMS_ROOT].hash_data == ocsp_hash(root.cert, root.cert)
    assert entries[K.CSMS_ROOT].hash_data.serial_number == "ab"
    assert entries[K.CSMS_ROOT].chains_to_trusted_root
    assert (entries[K.MO_ROOT].not_before, entries[K.MO_ROOT].not_after) == (
        mo.cert.not_valid_before_utc, mo.cert.not_valid_after_utc)
    assert [e.kind for e in store.list([K.MO_ROOT])] == [K.MO_ROOT]
    # a new store on the same directory sees the same
    assert FsCertificateStore(store._base.parent).list() == store.list()

    upper = entries[K.CSMS_ROOT].hash_data
    upper = HashData(upper.issuer_name_hash.upper(), upper.issuer_key_hash.upper(), "00AB")
    assert store.delete(upper).status is DeleteStatus.ACCEPTED
    assert store.delete(upper).status is DeleteStatus.NOT_FOUND
    assert [e.kind for e in store.list()] == [K.MO_ROOT]


@pytest.mark.parametrize("pem, reason, words", [
    ("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "InvalidCertificate",
     "certificate: not a PEM X.509 certificate"),
    ("", "InvalidCertificate", "not a PEM"),
    (lambda: issue("leaf", issuer=issue("ca"), ca=False).pem, "InvalidCertificate", "not a CA certificate"),
    (lambda: issue("sub", issuer=issue("ca")).pem, "InvalidCertificate", "not self-signed"),
    (lambda: issue("old", not_after=NOW - timedelta(seconds=1)).pem, "InvalidCertificate", "expired"),
    (lambda: issue("new", not_before=NOW + timedelta(hours=1)).pem, "InvalidCertificate", "not yet valid"),
    (lambda: issue("a").pem + issue("b").pem, "InvalidCertificate", "2 certificates"),
    (lambda: issue("big").pem * 10, "TooLargeElement", "MaxCertificateChainSize 2000"),
])
def test_bad_roots_are_rejected_and_change_nothing(store, pem, reason, words):
    pem = pem() if callable(pem) else pem
    r = store.install(K.V2G_ROOT, pem, now=NOW, limits=StoreLimits(10, 2000))
    assert (r.status, r.reason_code) == (InstallStatus.REJECTED, reason) and words in r.detail
    assert "\n" not in r.detail and "BEGIN" not in r.detail
    assert store.list() == [] and not list((store._base / "roots").rglob("*.pem"))


def test_store_full_fails(store):
    for n in range(3):
        assert store.install(K.CSMS_ROOT, issue(f"r{n}").pem, now=NOW, limits=StoreLimits(3, 10000)).accepted
    r = store.install(K.CSMS_ROOT, issue("r3").pem, now=NOW, limits=StoreLimits(3, 10000))
    assert (r.status, r.reason_code) == (InstallStatus.FAILED, "OutOfStorage")
    assert len(store.list()) == 3


def test_station_key_is_0600_from_the_start(store, monkeypatch):
    modes = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *a, **kw):
        fd = real_open(path, flags, mode, *a, **kw)
        if "key-" in str(path):
            modes.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return fd

    monkeypatch.setattr(fs.os, "open", spy)
    old = os.umask(0)          # the most permissive umask: the mode must come from the code
    try:
        store.generate_key(K.CHARGING_STATION)
    finally:
        os.umask(old)
    (key,) = (store._base / "station" / K.CHARGING_STATION).glob("key-*.pem")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and modes and set(modes) == {0o600}
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("algorithm, key_type, size", [(KeyAlgorithm.EC_P256, ec.EllipticCurvePublicKey, 256),
                                                       (KeyAlgorithm.RSA_2048, rsa.RSAPublicKey, 2048)])
def test_csr_verifies_and_carries_the_subject(store, algorithm, key_type, size):
    with pytest.raises(CertificateStoreError, match="no key"):
        store.make_csr(K.CHARGING_STATION, "CS-0001", "ACME")
    store.generate_key(K.CHARGING_STATION, algorithm)
    csr = x509.load_pem_x509_csr(store.make_csr(K.CHARGING_STATION, "CS-0001", "ACME").encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CS-0001"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "ACME"
    assert isinstance(csr.public_key(), key_type) and csr.public_key().key_size == size


def test_station_certificate_install_rotation_and_revert(store):
    root = issue("CSMS root")
    sub = issue("CSMS sub-CA", issuer=root)
    store.install(K.CSMS_ROOT, root.pem, now=NOW, limits=LIMITS)
    store.generate_key(K.CHARGING_STATION)
    leaf = signed_station_cert(store, K.CHARGING_STATION, sub)
    chain = leaf.pem + sub.pem
    assert store.install_station_certificate(K.CHARGING_STATION, chain, now=NOW, limits=LIMITS).accepted
    (e,) = store.list([K.CHARGING_STATION])
    assert e.hash_data == ocsp_hash(leaf.cert, sub.cert) and e.children == (ocsp_hash(sub.cert, root.cert),)
    assert e.chains_to_trusted_root and "CN=CS-0001" in e.subject.split(",")
    first = store.credentials()
    key = serialization.load_pem_private_key(first.private_key.read_bytes(), None)
    assert fs._same_key(x509.load_pem_x509_certificates(first.certificate_chain.read_bytes())[0], key)

    # renewal: a new key, the old pair kept as previous until proven
    store.generate_key(K.CHARGING_STATION)
    assert store.credentials() == first
    leaf2 = signed_station_cert(store, K.CHARGING_STATION, sub)
    assert store.install_station_certificate(K.CHARGING_STATION, leaf2.pem + sub.pem, now=NOW, limits=LIMITS).accepted
    second = store.credentials()
    assert second != first and store.has_previous(K.CHARGING_STATION) and first.private_key.exists()
    store.revert(K.CHARGING_STATION)
    assert store.credentials() == first and not second.private_key.exists()
    assert not store.has_previous(K.CHARGING_STATION)

    # the station certificate is not deleted with DeleteCertificate (TC_M_23)
    assert store.delete(e.hash_data).status is DeleteStatus.FAILED


def test_station_certificate_refusals_change_nothing(store):
    root, other = issue("CSMS root"), issue("other root")
    store.install(K.CSMS_ROOT, root.pem, now=NOW, limits=LIMITS)
    store.generate_key(K.CHARGING_STATION)
    foreign = issue("CS-0001", issuer=root, ca=False)            # signed for a key that is not ours
    cases = [
        (foreign.pem, "does not carry the station's public key"),
        (signed_station_cert(store, K.CHARGING_STATION, other).pem, "does not chain to an installed"),
        (signed_station_cert(store, K.CHARGING_STATION, root, not_after=NOW - timedelta(1)).pem,
         "certificateChain[0]: expired"),
        (signed_station_cert(store, K.CHARGING_STATION, root).pem + other.pem, "not issued by the next"),
        ("garbage", "certificateChain: not a PEM X.509 certificate"),
    ]
    for pem, words in cases:
        r = store.install_station_certificate(K.CHARGING_STATION, pem, now=NOW, limits=LIMITS)
        assert r.status is InstallStatus.REJECTED and words in r.detail, (words, r)
        assert "PRIVATE" not in r.detail
    assert store.credentials() is None and store.list([K.CHARGING_STATION]) == []
    # the pending key is still there: a good certificate for it is taken
    good = signed_station_cert(store, K.CHARGING_STATION, root)
    assert store.install_station_certificate(K.CHARGING_STATION, good.pem, now=NOW, limits=LIMITS).accepted


@pytest.mark.parametrize("failing_name", ["chain-", "meta-", "state.json"])
def test_a_failing_write_keeps_the_old_credentials(store, monkeypatch, failing_name):
    """Whichever rename of a renewal fails (disk full), the store reopens with the old pair."""
    root = issue("CSMS root")
    store.install(K.CSMS_ROOT, root.pem, now=NOW, limits=LIMITS)
    store.generate_key(K.CHARGING_STATION)
    store.install_station_certificate(K.CHARGING_STATION, signed_station_cert(store, K.CHARGING_STATION, root).pem,
                                      now=NOW, limits=LIMITS)
    before = store.credentials()
    store.generate_key(K.CHARGING_STATION)
    new = signed_station_cert(store, K.CHARGING_STATION, root)
    real_replace = os.replace

    def failing(src, dst):
        if Path(dst).name.startswith(failing_name):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(fs.os, "replace", failing)
    r = store.install_station_certificate(K.CHARGING_STATION, new.pem, now=NOW, limits=LIMITS)
    assert (r.status, r.reason_code) == (InstallStatus.FAILED, "OutOfStorage")
    monkeypatch.setattr(fs.os, "replace", real_replace)
    reopened = FsCertificateStore(store._base.parent)
    assert reopened.credentials() == before and before.private_key.exists()
    assert before.certificate_chain.exists() and reopened.list([K.CHARGING_STATION])
    assert not list(store._base.rglob(".tmp-*"))


CHURN = """
import sys
from pathlib import Path
from cryptography import x509
from adapters.certificate_store_fs import FsCertificateStore
from domain.security.certificates import CertificateKind as K, StoreLimits
from tests.pki import NOW, issue
store = FsCertificateStore(Path(sys.argv[1]))
root = issue("CSMS root")
store.install(K.CSMS_ROOT, root.pem, now=NOW, limits=StoreLimits(1000, 10000))
print("ready", flush=True)
n = 0
while True:
    n += 1
    store.install(K.V2G_ROOT, issue(f"v2g {n}").pem, now=NOW, limits=StoreLimits(1000, 10000))
    store.generate_key(K.CHARGING_STATION)
    csr = x509.load_pem_x509_csr(store.make_csr(K.CHARGING_STATION, "CS", "O").encode())
    leaf = issue("CS", issuer=root, ca=False, public_key=csr.public_key())
    store.install_station_certificate(K.CHARGING_STATION, leaf.pem, now=NOW, limits=StoreLimits(1000, 10000))
    store.discard_previous(K.CHARGING_STATION)
"""


def test_sigkill_at_random_points_leaves_a_whole_store(tmp_path):
    """A writer killed with SIGKILL at random moments (bounded: 8 kills, each within 1.5 s):
    every file the store reads is whole, and the current key matches the current certificate."""
    rng = random.Random(14)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    had_credentials = False
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", CHURN, str(tmp_path)], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close(), proc.stderr.close()
        store = FsCertificateStore(tmp_path)
        entries = store.list()
        assert any(e.kind is K.CSMS_ROOT for e in entries)
        for pem in (tmp_path / "certs" / "roots").rglob("*.pem"):
            assert x509.load_pem_x509_certificates(pem.read_bytes())
        creds = store.credentials()
        if had_credentials:
            assert creds is not None, "a kill lost the station's certificate"
        if creds is not None:
            had_credentials = True
            key = serialization.load_pem_private_key(creds.private_key.read_bytes(), None)
            assert fs._same_key(x509.load_pem_x509_certificates(creds.certificate_chain.read_bytes())[0], key)
            assert stat.S_IMODE(creds.private_key.stat().st_mode) == 0o600
        assert not list(tmp_path.rglob(".tmp-*"))
    assert had_credentials


ROOT_CHURN = """
import sys
from pathlib import Path
from adapters.certificate_store_fs import FsCertificateStore
from domain.security.certificates import CertificateKind as K, StoreLimits
from tests.pki import NOW, issue
store = FsCertificateStore(Path(sys.argv[1]))
limits = StoreLimits(1000, 10000)
current = issue("CSMS root base")
store.install(K.CSMS_ROOT, current.pem, now=NOW, limits=limits)
print("ready", flush=True)
n = 0
while True:
    n += 1
    new = issue(f"CSMS root {n}", issuer=current)
    assert store.install(K.CSMS_ROOT, new.pem, now=NOW, limits=limits, additional_root_check=True).accepted
    current = new
    if n % 2 == 0:
        store.discard_fallback_roots()
"""


def test_sigkill_while_csms_roots_replace_each_other_leaves_a_usable_ca_bundle(tmp_path):
    """AdditionalRootCertificateCheck (M05.FR.10/12/13) under SIGKILL (bounded: 6 kills, each
    within 1 s): a current CSMSRootCertificate is always installed, every root file is whole and
    the link's CA bundle loads into an SSL context."""
    import ssl
    rng = random.Random(1405)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", ROOT_CHURN, str(tmp_path)], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()
        time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close(), proc.stderr.close()
        store = FsCertificateStore(tmp_path)
        assert any(not e.fallback for e in store.list([K.CSMS_ROOT])), "no current CSMS root after a kill"
        for pem in (tmp_path / "certs" / "roots").rglob("*.pem"):
            assert x509.load_pem_x509_certificates(pem.read_bytes())
        ssl.create_default_context(cafile=str(store.csms_root_bundle()))
        assert not list(tmp_path.rglob(".tmp-*"))


# --- what the link needs: the CSMS roots' CA bundle, factory credentials ---------------------------

def test_the_csms_root_bundle_follows_installs_and_deletes(store, tmp_path):
    assert store.csms_root_bundle() is None
    a, b, other = issue("CSMS Root A"), issue("CSMS Root B"), issue("MO Root")
    store.install(K.CSMS_ROOT, a.pem, now=NOW, limits=LIMITS)
    store.install(K.MO_ROOT, other.pem, now=NOW, limits=LIMITS)         # not a CSMS root: not in it
    bundle = store.csms_root_bundle()
    assert bundle == tmp_path / "certs" / "csms-roots.pem"
    assert x509.load_pem_x509_certificates(bundle.read_bytes()) == [a.cert]
    store.install(K.CSMS_ROOT, b.pem, now=NOW, limits=LIMITS)
    assert sorted(c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(bundle.read_bytes())) == \
        sorted([a.cert.subject.rfc4514_string(), b.cert.subject.rfc4514_string()])
    for root in (a, b):
        [entry] = [e for e in store.list([K.CSMS_ROOT]) if e.subject == root.cert.subject.rfc4514_string()]
        assert store.delete(entry.hash_data).status is DeleteStatus.ACCEPTED
    assert not bundle.exists() and store.csms_root_bundle() is None       # the last one removed (AQ-1)
    assert not list(bundle.parent.glob(".tmp-*"))


def test_factory_credentials_are_imported_or_refused_with_one_line(store):
    ca = issue("Factory CA")
    leaf = issue("CS-1", issuer=ca, ca=False)
    chain = leaf.pem + ca.pem
    key = leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
    wrong_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    expired = issue("CS-1", issuer=ca, ca=False, key=leaf.key, not_after=NOW - timedelta(days=1),
                    not_before=NOW - timedelta(days=30))
    for pem, k, words in (("junk", key, "not a PEM X.509"), (chain, "junk", "not an unencrypted PEM private key"),
                          (chain, wrong_key, "does not match"), (expired.pem, key, "expired")):
        with pytest.raises(CertificateStoreError, match=words) as err:
            store.import_station_credentials(K.CHARGING_STATION, pem, k, now=NOW)
        assert "\n" not in str(err.value) and "PRIVATE KEY" not in str(err.value)
        assert store.credentials() is None
    store.import_station_credentials(K.CHARGING_STATION, chain, key, now=NOW)
    creds = store.credentials()
    assert x509.load_pem_x509_certificates(creds.certificate_chain.read_bytes()) == [leaf.cert, ca.cert]
    assert stat.S_IMODE(creds.private_key.stat().st_mode) == 0o600
    [entry] = store.list([K.CHARGING_STATION])
    assert entry.hash_data == ocsp_hash(leaf.cert, ca.cert)


def test_additional_root_certificate_check_new_csms_root_signed_by_the_old_one(tmp_path):
    """M05.FR.10/11: with the check, a new CSMSRootCertificate must be signed by the installed one;
    its hash data names the old root as issuer, and it can be deleted by it."""
    store = FsCertificateStore(tmp_path)
    old, stranger = issue("CSMS root old"), issue("CSMS root unrelated")
    new = issue("CSMS root new", issuer=old)
    assert store.install(K.CSMS_ROOT, old.pem, now=NOW, limits=LIMITS, additional_root_check=True).accepted
    refused = store.install(K.CSMS_ROOT, stranger.pem, now=NOW, limits=LIMITS, additional_root_check=True)
    assert refused.status is InstallStatus.REJECTED and "AdditionalRootCertificateCheck" in refused.detail
    assert store.install(K.CSMS_ROOT, new.pem, now=NOW, limits=LIMITS, additional_root_check=True).accepted
    assert not store.install(K.CSMS_ROOT, new.pem, now=NOW, limits=LIMITS).accepted     # without the check: not a root
    hashes = [e.hash_data for e in store.list([K.CSMS_ROOT])]
    assert ocsp_hash(new.cert, old.cert) in hashes and ocsp_hash(old.cert, old.cert) in hashes
    assert store.delete(ocsp_hash(new.cert, old.cert)).status is DeleteStatus.ACCEPTED
    assert [e.hash_data for e in store.list([K.CSMS_ROOT])] == [ocsp_hash(old.cert, old.cert)]


def test_a_root_replaced_under_the_additional_check_is_the_fallback_until_discarded(tmp_path):
    """M05.FR.12-14: the replaced CSMS root stays listed as the fallback, in its own bundle (the
    link's csms-roots.pem holds the new one only); discard_fallback_roots removes it (M05.FR.13).
    A newer root installed while a fallback is kept replaces the unproven one, not the fallback."""
    store = FsCertificateStore(tmp_path)
    old = issue("CSMS root old")
    new, newer = issue("CSMS root new", issuer=old), issue("CSMS root newer", issuer=old)
    pem = lambda c: c.cert.public_bytes(serialization.Encoding.PEM)      # noqa: E731
    assert store.install(K.CSMS_ROOT, old.pem, now=NOW, limits=LIMITS, additional_root_check=True).accepted
    assert store.csms_root_bundle(fallback=True) is None
    assert store.install(K.CSMS_ROOT, new.pem, now=NOW, limits=LIMITS, additional_root_check=True).accepted
    listed = {e.hash_data: e.fallback for e in store.list([K.CSMS_ROOT])}
    assert listed == {ocsp_hash(old.cert, old.cert): True, ocsp_hash(new.cert, old.cert): False}
    assert store.csms_root_bundle().read_bytes() == pem(new)
    assert store.csms_root_bundle(fallback=True).read_bytes() == pem(old)
    assert store.install(K.CSMS_ROOT, newer.pem, now=NOW, limits=LIMITS, additional_root_check=True).accepted
    listed = {e.hash_data: e.fallback for e in FsCertificateStore(tmp_path).list([K.CSMS_ROOT])}   # reopened
    assert listed == {ocsp_hash(old.cert, old.cert): True, ocsp_hash(newer.cert, old.cert): False}
    deleted = FsCertificateStore(tmp_path / "other")       # the new root deleted: the fallback is current again
    for c in (old, new):
        assert deleted.install(K.CSMS_ROOT, c.pem, now=NOW, limits=LIMITS, additional_root_check=True).accepted
    assert deleted.delete(ocsp_hash(new.cert, old.cert)).status is DeleteStatus.ACCEPTED
    assert [e.fallback for e in deleted.list([K.CSMS_ROOT])] == [False]
    assert deleted.csms_root_bundle().read_bytes() == pem(old) and deleted.csms_root_bundle(fallback=True) is None
    store.discard_fallback_roots()
    assert [e.fallback for e in store.list([K.CSMS_ROOT])] == [False]
    assert store.csms_root_bundle().read_bytes() == pem(newer)
    assert store.csms_root_bundle(fallback=True) is None
    assert not (tmp_path / "certs" / "csms-roots-fallback.pem").exists()


def test_a_read_only_state_directory_opens_for_reading(tmp_path, monkeypatch):
    """The station starts on a read-only file system (tests/chaos/test_storage_failure.py): a
    store whose folders exist opens and lists; one that cannot be made is a one-line error."""
    root = issue("CSMS root")
    assert FsCertificateStore(tmp_path).install(K.CSMS_ROOT, root.pem, now=NOW, limits=LIMITS).accepted

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(fs.os, "chmod", read_only)
    store = FsCertificateStore(tmp_path)
    assert [e.kind for e in store.list()] == [K.CSMS_ROOT]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "certs").write_text("a file where the folder should be")
    with pytest.raises(CertificateStoreError) as info:
        FsCertificateStore(tmp_path / "other")
    assert "\n" not in str(info.value)
