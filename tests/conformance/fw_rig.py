"""What the L (firmware) and N (logs) conformance tests share: a manufacturer PKI made with
`cryptography`, signed sim firmware images (`evse-sim-firmware <VERSION>`), the ManufacturerRoot
installed in the station's certificate store before it boots, and real file servers on
127.0.0.1 (devtools/file_servers.py).

Certificates are valid from a day ago to a year ahead of the real clock: these tests run with
the real clock (``@pytest.mark.real_clock``), since the file servers are threads with real
sockets.
"""
from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from adapters.certificate_store_fs import FsCertificateStore
from domain.security.certificates import CertificateKind, StoreLimits
from tests.pki import Issued, issue

CALL_WAIT = 10          # s, for a message the station must send (real clock, real transfers)


@dataclass
class Manufacturer:
    root: Issued
    signer: Issued

    def sign(self, data: bytes) -> str:
        """The Base64 signature of `data` by the signing certificate's key (UpdateFirmware signature)."""
        key = self.signer.key
        if isinstance(key, rsa.RSAPrivateKey):
            raw = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        else:
            raw = key.sign(data, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(raw).decode()


def manufacturer(*, rsa_key: bool = False, cn: str = "ACME Firmware Root") -> Manufacturer:
    now = datetime.now(timezone.utc)
    valid = {"not_before": now - timedelta(days=1), "not_after": now + timedelta(days=365)}
    root = issue(cn, **valid)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key else None
    signer = issue("ACME Firmware Signing", issuer=root, ca=False, key=key, **valid)
    return Manufacturer(root, signer)


def install_root(state_dir: Path, root: Issued) -> None:
    """Before (preparations): the ManufacturerRootCertificate in the station's certificate store."""
    result = FsCertificateStore(state_dir).install(CertificateKind.MANUFACTURER_ROOT, root.pem,
                                                   now=datetime.now(timezone.utc), limits=StoreLimits())
    assert result.accepted, f"Before (preparations): the ManufacturerRootCertificate was refused: {result}"


def sim_image(folder: Path, name: str, version: str, size: int = 256 * 1024) -> bytes:
    """A sim firmware image `name` in `folder` carrying `version`; its bytes."""
    data = f"evse-sim-firmware {version}\n".encode() + os.urandom(size)
    (folder / name).write_bytes(data)
    return data


def update_request(request_id: int, location: str, mf: Manufacturer, signature: str, *,
                   retrieve: datetime | None = None, install: datetime | None = None,
                   retries: int | None = None, retry_interval: int | None = None) -> dict:
    now = datetime.now(timezone.utc)
    firmware = {"location": location,
                "retrieveDateTime": iso(retrieve or now - timedelta(hours=2)),
                "signingCertificate": mf.signer.pem, "signature": signature}
    if install is not None:
        firmware["installDateTime"] = iso(install)
    req = {"requestId": request_id, "firmware": firmware}
    if retries is not None:
        req["retries"] = retries
    if retry_interval is not None:
        req["retryInterval"] = retry_interval
    return req


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
