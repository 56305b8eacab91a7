"""Certificates as the domain sees them, and the install/delete decisions (OCPP 2.0.1 M03-M05,
A02/A03).

Pure: no clock, no I/O, no cryptography. An adapter parses a PEM into `CertificateFacts` (one
per certificate, with its OCPP certificateHashData already computed) and asks the functions
here what to answer; the station sees `CertificateEntry` (never a file path).

certificateHashData (CertificateHashDataType, M03/M04): hashAlgorithm SHA256, issuerNameHash =
SHA-256 of the DER of the certificate's issuer Name, issuerKeyHash = SHA-256 of the issuer's
public key (the contents of the subjectPublicKey BIT STRING, as in an OCSP CertID, RFC 6960),
serialNumber in hexadecimal, lower case, without leading zeros. Hashes are lower-case hex.

Installing a root (InstallCertificate, M05), checked in this order; the first failure is the
answer and nothing is stored:

| check | status | reasonCode |
|---|---|---|
| certificateType is not one of the four root types | Rejected | InvalidValue |
| the PEM is longer than SecurityCtrlr.MaxCertificateChainSize | Rejected | TooLargeElement |
| not exactly one certificate | Rejected | InvalidCertificate |
| not a CA (basicConstraints) or not self-signed: not a root | Rejected | InvalidCertificate |
| expired / not yet valid | Rejected | InvalidCertificate |
| already installed as this type | Accepted | (nothing changes) |
| SecurityCtrlr.CertificateEntries reached | Failed | OutOfStorage |

Installing the station's own certificate (CertificateSigned, A02/A03), in this order:
too long (TooLargeElement), no certificate or more than 1 + MAX_CHILD_CERTIFICATES, the leaf is
a CA, the chain's certificates do not each issue the one before, a certificate expired or not
yet valid, the leaf's key is not the station's key, no chain to an installed trust anchor of
`TRUST_ANCHORS` (all Rejected, InvalidCertificate).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class CertificateKind(StrEnum):
    """InstallCertificateUseEnumType, GetCertificateIdUseEnumType and the station's own
    certificates (CertificateSigningUseEnumType: ChargingStationCertificate, V2GCertificate,
    listed as V2GCertificateChain)."""

    CSMS_ROOT = "CSMSRootCertificate"
    MANUFACTURER_ROOT = "ManufacturerRootCertificate"
    V2G_ROOT = "V2GRootCertificate"
    MO_ROOT = "MORootCertificate"
    CHARGING_STATION = "ChargingStationCertificate"
    V2G_CHAIN = "V2GCertificateChain"


ROOT_KINDS = frozenset({CertificateKind.CSMS_ROOT, CertificateKind.MANUFACTURER_ROOT,
                        CertificateKind.V2G_ROOT, CertificateKind.MO_ROOT})
# certificates signed for a key of the station (CertificateSigned)
STATION_KINDS = frozenset({CertificateKind.CHARGING_STATION, CertificateKind.V2G_CHAIN})
# the installed roots a station certificate must chain to (A02: the CSMS's or the manufacturer's
# root for the Charging Station certificate; the V2G root for the V2G chain, ISO 15118)
TRUST_ANCHORS: dict[CertificateKind, frozenset[CertificateKind]] = {
    CertificateKind.CHARGING_STATION: frozenset({CertificateKind.CSMS_ROOT,
                                                 CertificateKind.MANUFACTURER_ROOT}),
    CertificateKind.V2G_CHAIN: frozenset({CertificateKind.V2G_ROOT}),
}
# CertificateHashDataChainType.childCertificateHashData: maxItems 4 (the sub-CAs of a chain)
MAX_CHILD_CERTIFICATES = 4


class InstallStatus(StrEnum):
    """InstallCertificateStatusEnumType / CertificateSignedStatusEnumType (Accepted, Rejected)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    FAILED = "Failed"


class DeleteStatus(StrEnum):
    """DeleteCertificateStatusEnumType."""

    ACCEPTED = "Accepted"
    FAILED = "Failed"
    NOT_FOUND = "NotFound"


class KeyAlgorithm(StrEnum):
    """Key pairs the station makes for a CSR (A02/A03): EC P-256 by default, RSA >= 2048."""

    EC_P256 = "EC-P256"
    EC_P384 = "EC-P384"
    RSA_2048 = "RSA-2048"
    RSA_3072 = "RSA-3072"
    RSA_4096 = "RSA-4096"


def normalize_serial(serial: str) -> str:
    """A serialNumber as the station writes it: lower-case hex without leading zeros ("0" for 0)."""
    return serial.strip().lower().lstrip("0") or "0"


@dataclass(frozen=True, slots=True)
class HashData:
    """CertificateHashDataType."""

    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str
    hash_algorithm: str = "SHA256"

    def same_certificate(self, other: HashData) -> bool:
        """Whether `other` (e.g. from a DeleteCertificateRequest) names this certificate: the
        hashes compared case-insensitively, the serial numbers as numbers (leading zeros and
        case do not matter), the algorithm exactly."""
        return (self.hash_algorithm == other.hash_algorithm
                and self.issuer_name_hash.lower() == other.issuer_name_hash.lower()
                and self.issuer_key_hash.lower() == other.issuer_key_hash.lower()
                and normalize_serial(self.serial_number) == normalize_serial(other.serial_number))


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """What an adapter read from one certificate. Times are aware UTC datetimes."""

    subject: str            # RFC 4514 string, for people (`evse certs list`)
    is_ca: bool             # basicConstraints cA
    self_signed: bool       # issuer == subject and the signature verifies with its own key
    not_before: datetime
    not_after: datetime
    hash_data: HashData


@dataclass(frozen=True, slots=True)
class CertificateEntry:
    """An installed certificate (a root, or the leaf of a station chain with its sub-CAs in
    `children`: CertificateHashDataChainType, M03.FR.05)."""

    kind: CertificateKind
    hash_data: HashData
    subject: str
    not_before: datetime
    not_after: datetime
    chains_to_trusted_root: bool
    children: tuple[HashData, ...] = ()
    # a CSMSRootCertificate replaced under AdditionalRootCertificateCheck, kept as the fallback
    # until a connection validated with the new one (M05.FR.12/13)
    fallback: bool = False

    def valid_at(self, now: datetime) -> bool:
        return self.not_before <= now <= self.not_after


@dataclass(frozen=True, slots=True)
class InstallResult:
    """The answer to an install: status, Appendix 5 reasonCode and one line for additionalInfo
    and logs (names the field; never key material)."""

    status: InstallStatus
    reason_code: str | None = None
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.status is InstallStatus.ACCEPTED


@dataclass(frozen=True, slots=True)
class DeleteResult:
    status: DeleteStatus
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """SecurityCtrlr.CertificateEntries (maxLimit: how many certificates can be installed) and
    SecurityCtrlr.MaxCertificateChainSize (bytes of one PEM the station takes)."""

    max_entries: int = 10
    max_chain_size: int = 10000


ACCEPTED = InstallResult(InstallStatus.ACCEPTED)


def _rejected(reason: str, detail: str) -> InstallResult:
    return InstallResult(InstallStatus.REJECTED, reason, detail)


def validity_problem(facts: CertificateFacts, now: datetime) -> str | None:
    """Why `facts` is not valid at `now` (one line), or None."""
    if now > facts.not_after:
        return f"expired (notAfter {facts.not_after:%Y-%m-%dT%H:%M:%SZ})"
    if now < facts.not_before:
        return f"not yet valid (notBefore {facts.not_before:%Y-%m-%dT%H:%M:%SZ})"
    return None


def check_request(kind: str, pem_size: int, limits: StoreLimits, *, station: bool = False) -> InstallResult | None:
    """The checks that come before the PEM is parsed: the kind (a root kind for
    InstallCertificate, a station kind for CertificateSigned) and the size; None: go on."""
    field = "certificateChain" if station else "certificate"
    if station and kind not in STATION_KINDS:
        return _rejected("InvalidValue", f"certificateType: {kind} is not a certificate of the station")
    if not station and kind not in ROOT_KINDS:
        return _rejected("InvalidValue", f"certificateType: {kind} cannot be installed with InstallCertificate")
    if pem_size > limits.max_chain_size:
        return _rejected("TooLargeElement", f"{field}: {pem_size} bytes, more than "
                                            f"MaxCertificateChainSize {limits.max_chain_size}")
    return None


def malformed(station: bool = False) -> InstallResult:
    """A PEM that holds no readable X.509 certificate (nothing of its text is repeated)."""
    field = "certificateChain" if station else "certificate"
    return _rejected("InvalidCertificate", f"{field}: not a PEM X.509 certificate")


def decide_root_install(kind: str, certificates: Sequence[CertificateFacts], pem_size: int, *,
                        now: datetime, installed: Sequence[CertificateEntry],
                        limits: StoreLimits, issued_by_installed_csms_root: bool | None = None) -> InstallResult:
    """InstallCertificate (M05): the checks of the module's first table, in order. `installed`:
    every certificate in the store (all kinds count towards CertificateEntries).

    `issued_by_installed_csms_root`: None when SecurityCtrlr.AdditionalRootCertificateCheck is
    false; else whether the new certificate is signed by an installed CSMSRootCertificate. With
    the check on and a CSMSRootCertificate installed, a new one must be signed by it (M05.FR.10,
    instead of self-signed; else Rejected, M05.FR.11, TC_M_09); the first one is self-signed."""
    early = check_request(kind, pem_size, limits)
    if early is not None:
        return early
    if len(certificates) != 1:
        return _rejected("InvalidCertificate", f"certificate: {len(certificates)} certificates, expected one")
    cert = certificates[0]
    if not cert.is_ca:
        return _rejected("InvalidCertificate", f"certificate: not a CA certificate, cannot be a {kind}")
    checked = (issued_by_installed_csms_root is not None and kind == CertificateKind.CSMS_ROOT
               and any(e.kind == CertificateKind.CSMS_ROOT for e in installed))
    if checked and not issued_by_installed_csms_root:
        return _rejected("InvalidCertificate", "certificate: not signed by the installed CSMSRootCertificate "
                                               "(AdditionalRootCertificateCheck)")
    if not checked and not cert.self_signed:
        return _rejected("InvalidCertificate", f"certificate: not self-signed, cannot be a {kind}")
    problem = validity_problem(cert, now)
    if problem:
        return _rejected("InvalidCertificate", f"certificate: {problem}")
    if any(e.kind == kind and e.hash_data.same_certificate(cert.hash_data) for e in installed):
        return ACCEPTED
    if len(installed) >= limits.max_entries:
        return InstallResult(InstallStatus.FAILED, "OutOfStorage",
                             f"certificate: CertificateEntries limit {limits.max_entries} reached")
    return ACCEPTED


def decide_station_certificate(kind: str, chain: Sequence[CertificateFacts], pem_size: int, *,
                               now: datetime, linked: bool, matches_key: bool, chains_to_trusted_root: bool,
                               limits: StoreLimits) -> InstallResult:
    """CertificateSigned (A02/A03): the checks of the module's second paragraph, in order.
    `linked`: each certificate of `chain` is issued by the next; `matches_key`: the leaf carries
    the public key of the station's key pair; `chains_to_trusted_root`: the last one is, or is
    issued by, an installed root of TRUST_ANCHORS[kind]."""
    early = check_request(kind, pem_size, limits, station=True)
    if early is not None:
        return early
    if not chain or len(chain) > 1 + MAX_CHILD_CERTIFICATES:
        return _rejected("InvalidCertificate", f"certificateChain: {len(chain)} certificates, expected 1 to "
                                               f"{1 + MAX_CHILD_CERTIFICATES}")
    if chain[0].is_ca:
        return _rejected("InvalidCertificate", "certificateChain: the first certificate is a CA, not the station's")
    if not linked:
        return _rejected("InvalidCertificate", "certificateChain: a certificate is not issued by the next one")
    for position, cert in enumerate(chain):
        problem = validity_problem(cert, now)
        if problem:
            return _rejected("InvalidCertificate", f"certificateChain[{position}]: {problem}")
    if not matches_key:
        return _rejected("InvalidCertificate", "certificateChain: the certificate does not carry the station's public key")
    if not chains_to_trusted_root:
        roots = " or ".join(sorted(TRUST_ANCHORS[CertificateKind(kind)]))
        return _rejected("InvalidCertificate", f"certificateChain: does not chain to an installed {roots}")
    return ACCEPTED


def find_installed(installed: Sequence[CertificateEntry], hash_data: HashData) -> CertificateEntry | None:
    """The installed certificate DeleteCertificate's certificateHashData names (M04), if any."""
    return next((e for e in installed if e.hash_data.same_certificate(hash_data)), None)


def decide_delete(installed: Sequence[CertificateEntry], hash_data: HashData) -> DeleteResult | None:
    """DeleteCertificate (M04): NotFound when nothing matches (M04.FR.04, TC_M_22); Failed for
    the station's own certificate (M04.FR.06, TC_M_23: NotFound or Failed); None: delete it."""
    entry = find_installed(installed, hash_data)
    if entry is None:
        return DeleteResult(DeleteStatus.NOT_FOUND, "certificateHashData: no installed certificate matches")
    if entry.kind in STATION_KINDS:
        return DeleteResult(DeleteStatus.FAILED,
                            f"certificateHashData: the {entry.kind} cannot be deleted with DeleteCertificate")
    return None
