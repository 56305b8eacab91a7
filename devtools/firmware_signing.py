"""A development manufacturer for signed firmware updates (L01), for `evse demo` and `make bench`:
a ManufacturerRootCertificate and a signing certificate made with `cryptography` (valid from a
day ago for a year), the Base64 signature of an image (ECDSA P-256 with SHA-256, as
UpdateFirmware's `signature`), the root installed in a station's certificate store, and sim
firmware images (`evse-sim-firmware <VERSION>` on the first line).

Development only: the keys live in memory for one run and are never written.
"""
from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.certificate_store_fs import FsCertificateStore
from domain.security.certificates import CertificateKind, StoreLimits


def _certificate(cn: str, key, issuer_name: x509.Name | None, issuer_key, *, ca: bool) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "evse-stack development")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name or name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass
class DevManufacturer:
    root_pem: str
    signing_certificate: str
    _key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls) -> "DevManufacturer":
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = _certificate("evse-stack dev firmware root", root_key, None, root_key, ca=True)
        key = ec.generate_private_key(ec.SECP256R1())
        signer = _certificate("evse-stack dev firmware signing", key, root.subject, root_key, ca=False)
        return cls(_pem(root), _pem(signer), key)

    def sign(self, data: bytes) -> str:
        """UpdateFirmware `signature`: Base64 of the ECDSA SHA-256 signature of `data`."""
        return base64.b64encode(self._key.sign(data, ec.ECDSA(hashes.SHA256()))).decode("ascii")

    def install_root(self, state_dir: Path) -> None:
        """The root as the station's ManufacturerRootCertificate (its store under `state_dir`)."""
        result = FsCertificateStore(state_dir).install(CertificateKind.MANUFACTURER_ROOT, self.root_pem,
                                                       now=datetime.now(timezone.utc), limits=StoreLimits())
        if not result.accepted:
            raise RuntimeError(f"the development ManufacturerRootCertificate was refused: {result}")


def sim_image(path: Path, version: str, size: int = 64 * 1024) -> bytes:
    """A sim firmware image of `version` at `path` (`size` random bytes after the first line)."""
    data = f"evse-sim-firmware {version}\n".encode() + os.urandom(size)
    path.write_bytes(data)
    return data


def update_firmware(request_id: int, location: str, manufacturer: DevManufacturer, signature: str) -> dict:
    """An UpdateFirmwareRequest payload: retrieve and install now."""
    now = (datetime.now(timezone.utc) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"requestId": request_id, "firmware": {
        "location": location, "retrieveDateTime": now, "installDateTime": now,
        "signingCertificate": manufacturer.signing_certificate, "signature": signature}}
