"""Port: the certificate store (OCPP 2.0.1 M03-M05 installed roots, A02/A03 the station's own
key pairs and certificates).

The domain talks to it in `domain/security/certificates.py` types (kinds, hash data, results);
only `credentials` names files, for the link adapter's TLS context, through bootstrap.
`now` is wall-clock UTC (an aware datetime) from the station's clock: validity is checked
against the station's time, not the host's.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from domain.security.certificates import (CertificateEntry, CertificateKind, DeleteResult, HashData,
                                          InstallResult, KeyAlgorithm, StoreLimits)


class CertificateStoreError(Exception):
    """The store cannot be used (a directory that cannot be read or written, a request out of
    order such as a CSR without a key). str(): one line; never key material."""


@dataclass(frozen=True, slots=True)
class StationCredentials:
    """The station's certificate chain (leaf first) and its private key, as files for TLS."""

    certificate_chain: Path
    private_key: Path


class CertificateStore(Protocol):
    def install(self, kind: CertificateKind | str, pem: str, *, now: datetime,
                limits: StoreLimits, additional_root_check: bool = False) -> InstallResult:
        """InstallCertificate (M05): one root certificate of a root kind; durable when Accepted
        is returned; nothing changes otherwise. `additional_root_check`
        (SecurityCtrlr.AdditionalRootCertificateCheck): a new CSMSRootCertificate must be signed
        by the installed one (M05.FR.10) and replaces it, the replaced one kept as the fallback
        (listed with `fallback` set) until `discard_fallback_roots` (M05.FR.12/13)."""

    def list(self, kinds: Iterable[CertificateKind] = ()) -> list[CertificateEntry]:
        """Installed certificates of `kinds` (all kinds when empty): the roots and the current
        certificate of each station kind (its sub-CAs as children)."""

    def root_certificates(self, kind: CertificateKind) -> list[str]:
        """The installed roots of `kind` as PEM text (L01.FR.02: the firmware signing
        certificate is checked against the ManufacturerRootCertificates)."""

    def delete(self, hash_data: HashData) -> DeleteResult:
        """DeleteCertificate (M04): the root that `hash_data` names; the station's own
        certificates are refused (Failed)."""

    def generate_key(self, kind: CertificateKind, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256) -> None:
        """A new key pair for `kind` (a station kind), kept as the pending key (replacing an
        earlier pending one); the current key is untouched. Durable when this returns."""

    def make_csr(self, kind: CertificateKind, common_name: str, organization: str) -> str:
        """A PEM PKCS#10 CSR for the pending key of `kind`, subject CN and O (A02.FR.02);
        CertificateStoreError when there is no pending key."""

    def install_station_certificate(self, kind: CertificateKind | str, chain_pem: str, *, now: datetime,
                                    limits: StoreLimits) -> InstallResult:
        """CertificateSigned (A02/A03): a chain (leaf first) for the pending key (or, re-signed,
        the current one) of `kind`, checked before anything changes; Accepted: it is the current
        one, the one it replaces kept as the previous until `discard_previous` or `revert`."""

    def credentials(self, kind: CertificateKind = CertificateKind.CHARGING_STATION) -> StationCredentials | None:
        """The current chain and key of `kind`, or None when there is none."""

    def has_previous(self, kind: CertificateKind) -> bool:
        """Whether a replaced certificate and key are kept (not yet proven or discarded)."""

    def discard_previous(self, kind: CertificateKind) -> None:
        """The new certificate is proven (a connection works with it): remove the old one."""

    def revert(self, kind: CertificateKind) -> None:
        """The new certificate does not work: make the previous one current again."""

    def csms_root_bundle(self, fallback: bool = False) -> Path | None:
        """A PEM file of every installed CSMSRootCertificate (`fallback`: of the fallback ones
        only, M05.FR.14; else of the others), for the link's TLS context (A00: the CSMS
        certificate is checked against these roots only); rewritten atomically when the roots
        change; None when there is none."""

    def discard_fallback_roots(self) -> None:
        """The new CSMSRootCertificate validated the CSMS: remove the fallback one(s) (M05.FR.13)."""

    def import_station_credentials(self, kind: CertificateKind, chain_pem: str, key_pem: str, *,
                                   now: datetime) -> None:
        """Factory provisioning: an existing chain (leaf first) and its private key become the
        current certificate of `kind` (not checked against the installed roots: the installer
        vouches for them). CertificateStoreError (one line, no key material) for a bad PEM, a key
        that does not match the leaf, a leaf that is not valid at `now`."""
