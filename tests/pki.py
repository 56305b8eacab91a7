"""A small test PKI made with `cryptography`: roots, intermediates, leaves, expired and future
ones, as PEM text."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


@dataclass
class Issued:
    cert: x509.Certificate
    key: object

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test PKI")])


def issue(cn: str, *, issuer: Issued | None = None, ca: bool = True, public_key=None, key=None,
          serial: int | None = None, not_before: datetime = NOW - timedelta(days=1),
          not_after: datetime = NOW + timedelta(days=365)) -> Issued:
    """A certificate for `cn`: self-signed unless `issuer`; a fresh P-256 key unless
    `public_key` (a CSR's) or `key` is given."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    public_key = public_key or key.public_key()
    builder = (x509.CertificateBuilder().subject_name(name(cn))
               .issuer_name(issuer.cert.subject if issuer else name(cn))
               .public_key(public_key).serial_number(serial or x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(cert, key)
