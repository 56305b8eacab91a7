"""What the domain asks the outside world to do; the runtime carries these out."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain.security.certificates import CertificateKind, HashData, StoreLimits


@dataclass(frozen=True, slots=True)
class Send:
    """Send one OCPP-J frame to the CSMS. `queued`: a CALL of the durable queue; the deferred
    deletes of the messages delivered before it are committed before it goes out (so a crash
    of the process repeats at most this message, never an earlier one after it)."""

    frame: str
    queued: bool = False


@dataclass(frozen=True, slots=True)
class Persist:
    """Store a device-model value (key as in VariableRef.key)."""

    key: str
    value: str
    attribute: str = "Actual"


@dataclass(frozen=True, slots=True)
class Remember:
    """Store a value of the station's own state (None deletes it)."""

    key: str
    value: str | None


@dataclass(frozen=True, slots=True)
class StoreRecords:
    """One atomic change of a keyed collection (see Storage.write_records).

    `deferred`: a change whose loss only repeats an at-least-once delivery (the delete of a
    delivered queue record, docs/durability.md): the runtime may commit it later, with its
    next durable write (group commit). Every other change is durable before the next effect."""

    table: str
    upserts: dict[str, str] = field(default_factory=dict)
    deletes: tuple[str, ...] = ()
    clear: bool = False
    kv: dict[str, str | None] = field(default_factory=dict)
    deferred: bool = False


@dataclass(frozen=True, slots=True)
class Reconfigure:
    """Settings the transport uses (ping interval, back-off, password, ...) changed; `reconnect`:
    close the connection cleanly once the current input's frames are sent and connect again with
    them (A01: a new BasicAuthPassword)."""

    reconnect: bool = False


@dataclass(frozen=True, slots=True)
class Reboot:
    """Reboot the station; the next BootNotification carries `reason`."""

    reason: str


@dataclass(frozen=True, slots=True)
class EnergyOffer:
    """Hardware job: what the EVSE offers the EV: the power path closed (energy allowed) or
    open, and the limit of the offer in A per phase (`limit_a`) or W (`limit_w`); None: the
    hardware's own maximum. It replaces an on/off power path, so that a charging limit reaches
    the controller (set_offered_current) without another command."""

    evse: int
    closed: bool
    limit_a: float | None = None
    limit_w: float | None = None


@dataclass(frozen=True, slots=True)
class UnlockConnector:
    """Hardware job: unlock the cable at the station side (E07/F03 after a stop, E09.FR.02,
    F05). For a CSMS's UnlockConnectorRequest, `reply_to` is its message id: the answer waits
    for the JobFinished of this job."""

    evse: int
    connector: int
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class Log:
    """Something worth a line in the station's log."""

    level: str   # "debug" | "info" | "warning" | "error"
    text: str


# --- certificate jobs (blocks A, M): carried out on the CertificateStore, off the event loop, in
# order; each comes back as a JobFinished whose `result` is a CertificateOutcome ------------------

@dataclass(frozen=True, slots=True)
class InstallRoot:
    """InstallCertificate (M05): store one root; `issuer_check`: AdditionalRootCertificateCheck
    (M05.FR.10: a new CSMSRootCertificate must be issued by the installed one)."""

    kind: str
    pem: str
    utc: datetime
    limits: StoreLimits
    issuer_check: bool = False
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class DeleteRoot:
    """DeleteCertificate (M04) of the installed root `hash_data` names."""

    hash_data: HashData
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class MakeCsr:
    """A02/A03: a new key pair for `kind` (kept as the pending key) and its CSR (CN, O)."""

    kind: CertificateKind
    common_name: str
    organization: str


@dataclass(frozen=True, slots=True)
class InstallStationCertificate:
    """CertificateSigned (A02/A03): the chain for the station's key, checked by the store."""

    kind: str
    chain_pem: str
    utc: datetime
    limits: StoreLimits
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class SettleStationCertificate:
    """The renewed certificate of `kind` is proven (`keep`: discard the previous one) or failed
    (revert to the previous one)."""

    kind: CertificateKind
    keep: bool


@dataclass(frozen=True, slots=True)
class DiscardFallbackRoots:
    """A connection was validated with the new CSMSRootCertificate: remove the fallback one(s)
    (AdditionalRootCertificateCheck, M05.FR.13)."""

    reason: str = "the new CSMSRootCertificate validated the CSMS"


@dataclass(frozen=True, slots=True)
class CertificateOutcome:
    """What a certificate job gives back: its own result (InstallResult, DeleteResult, the CSR
    text, None) and every installed certificate after it (the store's listing)."""

    value: object
    installed: tuple = ()


@dataclass(frozen=True, slots=True)
class ReconnectLink:
    """Reconnect to the CSMS with the station certificate that is current in the store now
    (A02.FR.08: after a renewal; after a revert)."""

    reason: str


CERTIFICATE_JOBS = (InstallRoot, DeleteRoot, MakeCsr, InstallStationCertificate, SettleStationCertificate,
                    DiscardFallbackRoots)

Effect = (Send | Persist | Remember | StoreRecords | Reconfigure | Reboot | Log | EnergyOffer | UnlockConnector
          | InstallRoot | DeleteRoot | MakeCsr | InstallStationCertificate | SettleStationCertificate
          | DiscardFallbackRoots | ReconnectLink)
HARDWARE_JOBS = (EnergyOffer, UnlockConnector)     # carried out off the event loop, in order
