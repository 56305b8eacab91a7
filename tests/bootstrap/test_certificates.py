"""bootstrap/certificates.py and the runtime's use of the store: the certificate jobs carried out
on a real FsCertificateStore (files in tmp_path), and the link settings taking the store's current
ChargingStationCertificate (A02.FR.08: the reconnection uses the renewed certificate)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cryptography import x509

from adapters.certificate_store_fs import FsCertificateStore
from bootstrap.certificates import run_certificate_job
from bootstrap.config import parse_config
from bootstrap.credentials import tls_files
from domain.effects import (CertificateOutcome, DeleteRoot, InstallRoot, InstallStationCertificate, MakeCsr,
                            SettleStationCertificate)
from domain.security.certificates import CertificateKind as K, InstallStatus, StoreLimits
from tests.pki import NOW, issue

LIMITS = StoreLimits()
CONFIG = parse_config('[station]\nid = "CS-1"\n[csms]\nurl = "wss://127.0.0.1:1/ocpp"\nsecurity_profile = 3\n'
                      'csms_root_ca = "/etc/evse/csms-root.pem"\n'
                      'client_cert = "/etc/evse/factory-chain.pem"\nclient_key = "/etc/evse/factory-key.pem"\n',
                      Path("/etc/evse"))
FACTORY = tls_files(CONFIG, None)


def renew(store, root, serial=None):
    done = run_certificate_job(store, MakeCsr(K.CHARGING_STATION, "CS-1", "ACME"))
    assert done.ok and isinstance(done.result, CertificateOutcome)
    csr = x509.load_pem_x509_csr(done.result.value.encode())
    leaf = issue("CS-1", issuer=root, ca=False, public_key=csr.public_key(), serial=serial)
    done = run_certificate_job(store, InstallStationCertificate(K.CHARGING_STATION, leaf.pem, NOW, LIMITS))
    assert done.ok and done.result.value.status is InstallStatus.ACCEPTED, done
    return leaf


def test_jobs_return_their_result_and_the_listing_after_them(tmp_path):
    store = FsCertificateStore(tmp_path)
    root = issue("CSMS root")
    done = run_certificate_job(store, InstallRoot(K.CSMS_ROOT, root.pem, NOW, LIMITS, reply_to="m1"))
    assert done.ok and done.result.value.accepted and [e.kind for e in done.result.installed] == [K.CSMS_ROOT]
    renew(store, root)
    done = run_certificate_job(store, SettleStationCertificate(K.CHARGING_STATION, keep=True))
    assert done.ok and {e.kind for e in done.result.installed} == {K.CSMS_ROOT, K.CHARGING_STATION}
    done = run_certificate_job(store, DeleteRoot(done.result.installed[0].hash_data))
    assert done.ok and [e.kind for e in done.result.installed] == [K.CHARGING_STATION]


def test_a_failing_store_is_a_finished_job_with_one_line_not_an_exception(tmp_path):
    store = FsCertificateStore(tmp_path)
    done = run_certificate_job(store, SettleStationCertificate(K.CHARGING_STATION, keep=False))
    assert done.ok and done.result.value is None             # nothing to revert: nothing done
    (tmp_path / "certs" / "station" / K.CHARGING_STATION / "state.json").write_text("{not json")
    done = run_certificate_job(store, MakeCsr(K.CHARGING_STATION, "CS-1", "ACME"))
    assert not done.ok and "state.json" in done.detail and "\n" not in done.detail
    assert run_certificate_job(None, MakeCsr(K.CHARGING_STATION, "CS-1", "ACME")).detail == "no certificate store"


def test_link_settings_take_the_current_station_certificate_and_the_reverted_one(tmp_path):
    store = FsCertificateStore(tmp_path)
    assert FACTORY.client_cert == "/etc/evse/factory-chain.pem"
    assert tls_files(CONFIG, store).client_cert == FACTORY.client_cert          # none: the config's files
    root = issue("CSMS root", not_before=NOW - timedelta(days=10))
    assert store.install(K.CSMS_ROOT, root.pem, now=NOW, limits=LIMITS).accepted
    first = renew(store, root)
    second = renew(store, root)
    settings = tls_files(CONFIG, store)
    assert open(settings.client_cert).read().startswith(second.pem)
    assert settings.client_key.endswith(".pem") and settings.client_key != FACTORY.client_key
    run_certificate_job(store, SettleStationCertificate(K.CHARGING_STATION, keep=False))      # reverted
    assert open(tls_files(CONFIG, store).client_cert).read().startswith(first.pem)
