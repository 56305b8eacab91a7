"""Port: the cryptographic checks of a signed firmware update (OCPP 2.0.1 L01).

`check_certificate` answers L01.FR.02 (the signingCertificate of UpdateFirmware must chain to an
installed ManufacturerRootCertificate and be valid at the station's time) and `verify` L01.FR.03
(the Base64 `signature` over the image's bytes, RSA PKCS#1 v1.5 or ECDSA, both with SHA-256,
made with the key of the signing certificate). Each returns None when good, else one line saying
what is wrong (never the PEM text nor the signature).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol


class FirmwareSignature(Protocol):
    def check_certificate(self, signing_certificate: str, at: datetime) -> str | None:
        """L01.FR.02: None when the PEM certificate (optionally followed by its intermediates)
        chains to an installed ManufacturerRootCertificate and every certificate of the chain
        is valid `at` (aware UTC); else why not."""

    def verify(self, image: Path, signing_certificate: str, signature: str) -> str | None:
        """L01.FR.03: None when `signature` (Base64) is the signature of the bytes of `image`
        (read streamed) by the key of `signing_certificate`, which must still chain to an installed
        ManufacturerRootCertificate (its validity was checked when the update was accepted);
        else why not. Blocking: run it in a worker thread."""
