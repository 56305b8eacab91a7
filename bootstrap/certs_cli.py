"""`evse certs list|show|csr|install`: the certificate store of a station, offline (installers,
factory provisioning). The store is the one the station uses (beside its SQLite file, see
bootstrap/credentials.py); run these while the station is stopped or idle (every write is
atomic, so a running station sees the old or the new certificate).

- list: one line per certificate (kind, subject, validity, serial).
- show [--kind K]: the certificates of one kind in detail (default ChargingStationCertificate).
- csr [--algorithm A] [--organization O] [--out FILE]: a new key pair kept in the store (0600,
  the private key never leaves it) and a PKCS#10 CSR for it (A02.FR.02: CN = the station id,
  O = SecurityCtrlr.OrganizationName), to be signed by the factory or CSO CA.
- install FILE [--kind K] [--key KEYFILE]: a signed chain for the key of the last `csr` (checked:
  matches the key, valid now, chains to an installed CSMS or manufacturer root), a root of a root
  kind, or with --key an existing certificate and key (factory credentials).
Errors are one line on stderr (a bad PEM, a key that does not match, an expired certificate);
exit 1, 2 for a configuration that cannot be read.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap.config import Config, ConfigError, load_config
from bootstrap.credentials import state_dir
from domain.security.certificates import (ROOT_KINDS, STATION_KINDS, CertificateKind, InstallStatus, KeyAlgorithm,
                                          StoreLimits)
from ports.certificate_store import CertificateStoreError

if TYPE_CHECKING:
    from adapters.certificate_store_fs import FsCertificateStore

DEFAULT_ORGANIZATION = "evse-stack"      # SecurityCtrlr.OrganizationName's default


class _Failed(Exception):
    """One line for stderr."""


def _store(config: Config) -> "FsCertificateStore":
    """The store under the state directory; cryptography is loaded here, not when the `evse`
    command line is built (issue 16, start-up: `evse run` never pays for it)."""
    from adapters.certificate_store_fs import FsCertificateStore

    folder = state_dir(config)
    if folder is None:
        raise _Failed('storage.path is ":memory:": the station keeps no certificate store')
    return FsCertificateStore(folder)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def cmd_list(config: Config, args: argparse.Namespace) -> None:
    entries = _store(config).list()
    if not entries:
        print("no certificates installed")
    now = _now()
    for e in entries:
        state = "valid" if e.not_before <= now <= e.not_after else "NOT VALID NOW"
        print(f"{e.kind:<28} {e.subject}  {_when(e.not_before)} .. {_when(e.not_after)} ({state})  "
              f"serial {e.hash_data.serial_number}")


def cmd_show(config: Config, args: argparse.Namespace) -> None:
    kind = CertificateKind(args.kind)
    store = _store(config)
    entries = store.list([kind])
    if not entries:
        raise _Failed(f"no {kind} installed")
    for e in entries:
        print(f"kind            {e.kind}")
        print(f"subject         {e.subject}")
        print(f"validity        {_when(e.not_before)} .. {_when(e.not_after)}")
        print(f"serialNumber    {e.hash_data.serial_number}")
        print(f"issuerNameHash  {e.hash_data.issuer_name_hash}")
        print(f"issuerKeyHash   {e.hash_data.issuer_key_hash}")
        print(f"trusted chain   {'yes' if e.chains_to_trusted_root else 'no'}")
        print()
    creds = store.credentials(kind) if kind in STATION_KINDS else None
    if creds is not None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        for n, cert in enumerate(x509.load_pem_x509_certificates(creds.certificate_chain.read_bytes())):
            print(f"chain[{n}]        {cert.subject.rfc4514_string()} (issuer {cert.issuer.rfc4514_string()}, "
                  f"sha256 {cert.fingerprint(hashes.SHA256()).hex()})")


def _organization(config: Config, args: argparse.Namespace) -> str:
    if args.organization:
        return args.organization
    value = config.device_model.get("SecurityCtrlr.OrganizationName")
    return str(value) if value else DEFAULT_ORGANIZATION


def cmd_csr(config: Config, args: argparse.Namespace) -> None:
    store = _store(config)
    kind = CertificateKind.CHARGING_STATION
    store.generate_key(kind, KeyAlgorithm(args.algorithm))
    csr = store.make_csr(kind, config.station.id, _organization(config, args))
    if args.out:
        Path(args.out).write_text(csr, encoding="ascii")
        print(f"CSR for {config.station.id} written to {args.out}; the key stays in the store", file=sys.stderr)
    else:
        sys.stdout.write(csr)


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise _Failed(f"{what} {path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None


def cmd_install(config: Config, args: argparse.Namespace) -> None:
    kind = CertificateKind(args.kind)
    store = _store(config)
    pem = _read(args.file, "certificate file")
    if args.key:
        if kind not in STATION_KINDS:
            raise _Failed(f"--key: only for a certificate of the station, not a {kind}")
        store.import_station_credentials(kind, pem, _read(args.key, "key file"), now=_now())
        print(f"{kind} installed with its key")
        return
    if kind in ROOT_KINDS:
        result = store.install(kind, pem, now=_now(), limits=StoreLimits())
    else:
        result = store.install_station_certificate(kind, pem, now=_now(), limits=StoreLimits())
    if result.status is not InstallStatus.ACCEPTED:
        raise _Failed(f"{args.file}: {result.detail or result.reason_code}")
    print(f"{kind} installed")


COMMANDS = {"list": cmd_list, "show": cmd_show, "csr": cmd_csr, "install": cmd_install}


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"evse: {exc}", file=sys.stderr)
        return 2
    try:
        COMMANDS[args.certs_command](config, args)
    except (_Failed, CertificateStoreError) as exc:
        print(f"evse certs {args.certs_command}: {exc}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub) -> None:
    """`evse certs ...` in the CLI's subcommands."""
    p = sub.add_parser("certs", help="the station's certificate store: list, show, csr, install")
    p.add_argument("--config", required=True, help="station TOML file")
    certs = p.add_subparsers(dest="certs_command", required=True)
    certs.add_parser("list", help="every installed certificate, one line each")
    s = certs.add_parser("show", help="the certificates of one kind in detail")
    s.add_argument("--kind", default=CertificateKind.CHARGING_STATION.value, choices=[k.value for k in CertificateKind])
    c = certs.add_parser("csr", help="a new key pair in the store and its CSR (PEM)")
    c.add_argument("--algorithm", default=KeyAlgorithm.EC_P256.value, choices=[a.value for a in KeyAlgorithm])
    c.add_argument("--organization", default=None, help="O of the subject (default SecurityCtrlr.OrganizationName)")
    c.add_argument("--out", default=None, help="write the CSR to this file (default: stdout)")
    i = certs.add_parser("install", help="install a signed certificate (or a root, or a certificate with its key)")
    i.add_argument("file", help="PEM file: the chain (leaf first) or the root certificate")
    i.add_argument("--kind", default=CertificateKind.CHARGING_STATION.value, choices=[k.value for k in CertificateKind])
    i.add_argument("--key", default=None, help="PEM private key of the certificate (factory credentials)")
    p.set_defaults(func=run)
