"""adapters/firmware_signature.py with real certificates and signatures made by `cryptography`:
L01.FR.02 (the signing certificate chains to an installed ManufacturerRootCertificate and is
valid at the station's time) and L01.FR.03 (RSA PKCS#1 v1.5 and ECDSA, SHA-256, over the file's
bytes, read in blocks), each refusal one line naming the field."""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from adapters.firmware_signature import BLOCK, CryptographyFirmwareSignature
from tests.pki import issue

NOW = datetime.now(timezone.utc)
VALID = {"not_before": NOW - timedelta(days=1), "not_after": NOW + timedelta(days=30)}


def sign(key, data: bytes) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


@pytest.fixture
def pki():
    root = issue("Root", **VALID)
    sub = issue("Sub CA", issuer=root, **VALID)
    return root, sub


@pytest.mark.parametrize("key", [rsa.generate_private_key(public_exponent=65537, key_size=2048),
                                 ec.generate_private_key(ec.SECP256R1())], ids=["rsa", "ecdsa"])
def test_a_good_signature_over_a_file_of_several_blocks(tmp_path, pki, key):
    root, sub = pki
    signer = issue("Signer", issuer=sub, ca=False, key=key, **VALID)
    image = tmp_path / "image"
    data = b"evse-sim-firmware 1.0\n" + bytes(range(256)) * (3 * BLOCK // 256 + 7)
    image.write_bytes(data)
    check = CryptographyFirmwareSignature(lambda: [root.pem])
    chain = signer.pem + sub.pem
    assert check.check_certificate(chain, NOW) is None
    assert check.verify(image, chain, sign(key, data)) is None
    image.write_bytes(data[:-1] + b"\0")
    assert check.verify(image, chain, sign(key, data)) == \
        "firmware.signature: does not match the image and the signing certificate's key"


def test_refusals_name_the_field(tmp_path, pki):
    root, _ = pki
    stranger = issue("Stranger root", **VALID)
    signer = issue("Signer", issuer=root, ca=False, **VALID)
    untrusted = issue("Signer", issuer=stranger, ca=False, **VALID)
    expired = issue("Old signer", issuer=root, ca=False, not_before=NOW - timedelta(days=10),
                    not_after=NOW - timedelta(days=1))
    check = CryptographyFirmwareSignature(lambda: [root.pem])
    assert "does not chain to an installed ManufacturerRootCertificate" in check.check_certificate(untrusted.pem, NOW)
    assert "is not valid at" in check.check_certificate(expired.pem, NOW)
    assert check.check_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", NOW) == \
        "firmware.signingCertificate: not a PEM X.509 certificate"
    assert CryptographyFirmwareSignature(lambda: []).check_certificate(signer.pem, NOW) == \
        "firmware.signingCertificate: no ManufacturerRootCertificate is installed"
    image = tmp_path / "image"
    image.write_bytes(b"data")
    assert check.verify(image, signer.pem, "not base64!") == "firmware.signature: not Base64"
    assert "does not chain" in check.verify(image, untrusted.pem, sign(untrusted.key, b"data"))
    assert check.verify(tmp_path / "missing", signer.pem, sign(signer.key, b"data")).startswith(
        "firmware image missing: cannot be read")
