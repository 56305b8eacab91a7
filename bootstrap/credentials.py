"""The link's TLS credentials from the certificate store (A00 security profiles 2 and 3, M).

- Factory provisioning: the station TOML names the first CA bundle (`csms.csms_root_ca`), the
  station certificate chain and its key (`csms.client_cert`, `csms.client_key`). At start, when
  the store holds no CSMSRootCertificate, every certificate of the bundle is installed as one
  (InstallCertificate's checks: a self-signed CA valid now); when it holds no
  ChargingStationCertificate, the chain and key are imported as the current one (the key must
  match, the certificate be valid now). A file that cannot be used is a one-line warning; the
  station starts anyway (the CSMS or `evse certs` can install what is missing).
- The link then uses the store: the CA bundle of the installed CSMS roots (kept up to date by
  the store when the CSMS installs or deletes one) and the current station certificate. Without
  a store (storage path ":memory:") or without a certificate in it, the TOML's files are used.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bootstrap.config import Config
from domain.security.certificates import CertificateKind, InstallStatus, StoreLimits
from ports.certificate_store import CertificateStore, CertificateStoreError

log = logging.getLogger("evse.certs")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The PEM files of LinkSettings: CSMS roots, station chain, station key (None: absent)."""

    csms_root_ca: str | None = None
    client_cert: str | None = None
    client_key: str | None = None


def state_dir(config: Config) -> Path | None:
    """Where the certificate store lives: beside the SQLite file (None for ":memory:")."""
    path = config.storage.path
    return None if path == ":memory:" else Path(path).resolve().parent


def _read(path: Path, what: str) -> str | None:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("%s %s cannot be read: %s", what, path, getattr(exc, "strerror", None) or exc)
        return None


def _pem_blocks(text: str) -> list[str]:
    end = "-----END CERTIFICATE-----"
    return [block.strip() + "\n" + end + "\n" for block in text.split(end) if "-----BEGIN" in block]


def provision(config: Config, store: CertificateStore, now: datetime,
              limits: StoreLimits = StoreLimits()) -> None:
    """Import the TOML's CA bundle and station certificate into the store where it has none."""
    c = config.csms
    try:
        if c.csms_root_ca and store.csms_root_bundle() is None:
            text = _read(Path(c.csms_root_ca), "csms.csms_root_ca")
            for n, pem in enumerate(_pem_blocks(text or ""), start=1):
                result = store.install(CertificateKind.CSMS_ROOT, pem, now=now, limits=limits)
                if result.status is not InstallStatus.ACCEPTED:
                    log.warning("csms.csms_root_ca %s certificate %d not installed: %s", c.csms_root_ca, n,
                                result.detail or result.reason_code)
                else:
                    log.info("csms.csms_root_ca %s certificate %d installed as CSMSRootCertificate",
                             c.csms_root_ca, n)
        if c.client_cert and c.client_key and store.credentials() is None:
            chain, key = _read(Path(c.client_cert), "csms.client_cert"), _read(Path(c.client_key), "csms.client_key")
            if chain is not None and key is not None:
                try:
                    store.import_station_credentials(CertificateKind.CHARGING_STATION, chain, key, now=now)
                    log.info("csms.client_cert %s imported as the ChargingStationCertificate", c.client_cert)
                except CertificateStoreError as exc:
                    log.warning("csms.client_cert / csms.client_key not imported: %s", exc)
    except CertificateStoreError as exc:
        log.warning("certificate store: %s", exc)


def valid_credentials(config: Config, store: CertificateStore | None, now: datetime) -> tuple[bool, bool]:
    """(a CSMSRootCertificate valid at `now` is installed, a ChargingStationCertificate valid at
    `now` is): what A05.FR.02/03 ask before a higher security profile is used. Without a store,
    the TOML's files count as valid."""
    c = config.csms
    if store is None:
        return c.csms_root_ca is not None, c.client_cert is not None and c.client_key is not None
    try:
        entries = store.list([CertificateKind.CSMS_ROOT, CertificateKind.CHARGING_STATION])
    except CertificateStoreError as exc:
        log.warning("certificate store: %s", exc)
        return False, False

    def valid(kind: CertificateKind) -> bool:
        return any(e.kind == kind and e.not_before <= now <= e.not_after for e in entries)

    return valid(CertificateKind.CSMS_ROOT), valid(CertificateKind.CHARGING_STATION)


def tls_files(config: Config, store: CertificateStore | None, *, fallback_roots: bool = False) -> TlsFiles:
    """The files the link uses: the store's, else the TOML's. `fallback_roots`: the CSMS is
    validated with the fallback CSMSRootCertificate(s) (M05.FR.14), when the store has one."""
    c = config.csms
    root = c.csms_root_ca
    cert, key = c.client_cert, c.client_key
    if store is not None:
        try:
            bundle = (fallback_roots and store.csms_root_bundle(fallback=True)) or store.csms_root_bundle()
            creds = store.credentials(CertificateKind.CHARGING_STATION)
        except CertificateStoreError as exc:
            log.warning("certificate store: %s; using the files of the configuration", exc)
        else:
            root = str(bundle) if bundle is not None else root
            if creds is not None:
                cert, key = str(creds.certificate_chain), str(creds.private_key)
    return TlsFiles(str(root) if root else None, str(cert) if cert else None, str(key) if key else None)
