"""`evse certs list|show|csr|install` as real processes on a station's real certificate store
(certificates made by tests/pki.py with the real clock's validity)."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.pki import issue

SID = "CS-CERTS-1"
NOW = datetime.now(timezone.utc)


def config(tmp_path: Path) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(f"""
[station]
id = "{SID}"
[csms]
url = "ws://127.0.0.1:9/ocpp"
[storage]
path = "station.db"
[hardware]
control_socket = "sim.sock"
[device_model]
"SecurityCtrlr.OrganizationName" = "ACME Charging"
""")
    return path


def evse(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bootstrap.cli", "certs", "--config", str(config(tmp_path)), *args],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})


def key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_csr_then_install_of_the_signed_certificate(tmp_path):
    root = issue("CSO Root", not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=365))
    (tmp_path / "root.pem").write_text(root.pem)
    done = evse(tmp_path, "install", "root.pem", "--kind", "CSMSRootCertificate")
    assert done.returncode == 0, done.stderr
    done = evse(tmp_path, "csr", "--out", "station.csr")
    assert done.returncode == 0, done.stderr
    csr = x509.load_pem_x509_csr((tmp_path / "station.csr").read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == f"O=ACME Charging,CN={SID}"
    assert "PRIVATE" not in (tmp_path / "station.csr").read_text()
    signed = issue(SID, issuer=root, ca=False, public_key=csr.public_key(),
                   not_before=NOW - timedelta(hours=1), not_after=NOW + timedelta(days=30))
    (tmp_path / "signed.pem").write_text(signed.pem)
    done = evse(tmp_path, "install", "signed.pem")
    assert done.returncode == 0, done.stderr
    listing = evse(tmp_path, "list")
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert any(line.startswith("CSMSRootCertificate") and "CN=CSO Root" in line for line in lines)
    assert any(line.startswith("ChargingStationCertificate") and f"CN={SID}" in line and "(valid)" in line
               for line in lines)
    shown = evse(tmp_path, "show")
    assert shown.returncode == 0 and f"serialNumber    {signed.cert.serial_number:x}" in shown.stdout
    assert "trusted chain   yes" in shown.stdout


def test_one_line_errors_for_a_bad_pem_a_wrong_key_an_expired_certificate(tmp_path):
    ca = issue("Factory CA", not_before=NOW - timedelta(days=10), not_after=NOW + timedelta(days=365))
    leaf = issue(SID, issuer=ca, ca=False, not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=30))
    expired = issue(SID, issuer=ca, ca=False, key=leaf.key, not_before=NOW - timedelta(days=9),
                    not_after=NOW - timedelta(days=2))
    (tmp_path / "junk.pem").write_text("hello\n")
    (tmp_path / "leaf.pem").write_text(leaf.pem + ca.pem)
    (tmp_path / "expired.pem").write_text(expired.pem)
    (tmp_path / "leaf.key").write_text(key_pem(leaf.key))
    (tmp_path / "other.key").write_text(key_pem(ec.generate_private_key(ec.SECP256R1())))
    for args, words in ((("install", "junk.pem"), "not a PEM X.509 certificate"),
                        (("install", "junk.pem", "--kind", "CSMSRootCertificate"), "not a PEM X.509 certificate"),
                        (("install", "leaf.pem", "--key", "other.key"), "does not match"),
                        (("install", "expired.pem", "--key", "leaf.key"), "expired"),
                        (("install", "leaf.pem"), "station's public key"),      # no csr made: not our key
                        (("show",), "no ChargingStationCertificate installed")):
        done = evse(tmp_path, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr, (args, done.stderr)
        assert "BEGIN" not in done.stderr
    done = evse(tmp_path, "install", "leaf.pem", "--key", "leaf.key")      # factory credentials
    assert done.returncode == 0, done.stderr
    assert "ChargingStationCertificate" in evse(tmp_path, "list").stdout
