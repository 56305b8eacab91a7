"""Firmware signature checks with `cryptography` (ports.firmware_signature, OCPP 2.0.1 L01).

L01.FR.02: the signingCertificate of UpdateFirmware (PEM; the signing certificate first, then
any intermediates) must chain to one of the installed ManufacturerRootCertificates, each
certificate of the chain valid at the station's time. L01.FR.03: the `signature` is the Base64
of a signature over the image's bytes by the signing certificate's key: RSA PKCS#1 v1.5 with
SHA-256, or ECDSA with SHA-256. The image is hashed in blocks (never read whole into memory) and
the digest verified as prehashed.

The roots come from `roots()` (the certificate store's ManufacturerRootCertificates, as PEM),
asked at every check, so a root installed or deleted meanwhile counts. `cryptography` is
imported at the first check, not when the station starts.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

BLOCK = 1 << 20


def _chain(pem: str) -> list[x509.Certificate] | str:
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(pem.encode("ascii", errors="replace"))
    except ValueError:
        return "firmware.signingCertificate: not a PEM X.509 certificate"
    return certs or "firmware.signingCertificate: not a PEM X.509 certificate"


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


class CryptographyFirmwareSignature:
    """ports.firmware_signature.FirmwareSignature (see the module docstring)."""

    def __init__(self, roots: Callable[[], list[str]]) -> None:
        self._roots = roots

    def _anchored(self, chain: list[x509.Certificate]) -> str | None:
        from cryptography import x509

        for cert, issuer in zip(chain, chain[1:]):
            if not _issued_by(cert, issuer):
                return f"firmware.signingCertificate: {cert.subject.rfc4514_string()} is not issued by the next " \
                       f"certificate of the chain"
        top = chain[-1]
        roots = [c for pem in self._roots() for c in x509.load_pem_x509_certificates(pem.encode("ascii"))]
        if not roots:
            return "firmware.signingCertificate: no ManufacturerRootCertificate is installed"
        if not any(top == root or _issued_by(top, root) for root in roots):
            return (f"firmware.signingCertificate: {chain[0].subject.rfc4514_string()} does not chain to an "
                    f"installed ManufacturerRootCertificate")
        return None

    def check_certificate(self, signing_certificate: str, at: datetime) -> str | None:
        chain = _chain(signing_certificate)
        if isinstance(chain, str):
            return chain
        for cert in chain:
            if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
                return (f"firmware.signingCertificate: {cert.subject.rfc4514_string()} is not valid at "
                        f"{at:%Y-%m-%dT%H:%M:%SZ} (valid {cert.not_valid_before_utc:%Y-%m-%d} .. "
                        f"{cert.not_valid_after_utc:%Y-%m-%d})")
        return self._anchored(chain)

    def verify(self, image: Path, signing_certificate: str, signature: str) -> str | None:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

        chain = _chain(signing_certificate)
        if isinstance(chain, str):
            return chain
        if (why := self._anchored(chain)) is not None:
            return why
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return "firmware.signature: not Base64"
        digest = hashlib.sha256()
        try:
            with open(image, "rb") as f:
                while block := f.read(BLOCK):
                    digest.update(block)
        except OSError as exc:
            return f"firmware image {Path(image).name}: cannot be read: {exc.strerror or exc}"
        key = chain[0].public_key()
        prehashed = utils.Prehashed(hashes.SHA256())
        try:
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(raw, digest.digest(), padding.PKCS1v15(), prehashed)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(raw, digest.digest(), ec.ECDSA(prehashed))
            else:
                return f"firmware.signingCertificate: a {type(key).__name__} key (RSA or ECDSA expected)"
        except InvalidSignature:
            return "firmware.signature: does not match the image and the signing certificate's key"
        return None
