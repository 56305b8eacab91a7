"""Certificate store port on the file system (OCPP 2.0.1 M03-M05, A02/A03), under the
station's state directory:

    certs/roots/<kind>/<SHA-256 of the DER>.pem          one installed root each (0644)
    certs/station/<kind>/key-<id>.pem                     private keys, PKCS#8 (0600, dir 0700)
    certs/station/<kind>/chain-<id>.pem, meta-<id>.json   a signed chain (leaf first), its hash data
    certs/station/<kind>/state.json                       {"pending_key", "current", "previous"}
    certs/roots/CSMSRootCertificate/<SHA-256>.fallback.pem  a CSMS root replaced under
                                                          AdditionalRootCertificateCheck (M05.FR.12)
    certs/csms-roots.pem                                  every current CSMSRootCertificate: the link's CA bundle
    certs/csms-roots-fallback.pem                         the fallback CSMSRootCertificate(s) (M05.FR.14)

Every file is written whole: a temporary file in the same directory (created with its final
mode, so a key is never readable by others, not even for an instant), fsync, rename over the
name, fsync of the directory. A new key or chain is written under a new name first and
`state.json` (the one pointer) is switched after, so a kill at any point leaves the old state
or the new one; what the switch dereferenced is removed after it (a kill in between leaves an
unreferenced file, never a lost key). A replaced certificate stays as "previous" until
`discard_previous` (the new one is proven) or `revert`. Leftover temporary files are removed
when the store is opened.

AdditionalRootCertificateCheck (M05.FR.10-13): a new CSMSRootCertificate is written first, then
each current one is renamed to its `.fallback.pem` name (one rename each: a kill in between
leaves two current roots, never none), then the bundles are rewritten; an earlier fallback stays
the fallback (it is the one that worked) and the unproven roots it had are removed instead.
`discard_fallback_roots` removes the fallback once the new root validated the CSMS; deleting
the new root (DeleteCertificate) makes the fallback current again.

Parsing and checks with `cryptography`, loaded at the first certificate or key the store reads or
makes (`_load_cryptography`): opening an empty store, listing it and the profile-1 boot need none
(issue 16, start-up); the decisions are `domain/security/certificates.py`.
Errors and logs name fields and kinds, never key material nor the PEM text.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from domain.security.certificates import (
    ROOT_KINDS, STATION_KINDS, TRUST_ANCHORS, CertificateEntry, CertificateFacts, CertificateKind,
    DeleteResult, DeleteStatus, HashData, InstallResult, InstallStatus, KeyAlgorithm, StoreLimits,
    check_request, decide_delete, decide_root_install, decide_station_certificate, malformed, validity_problem)
from ports.certificate_store import CertificateStoreError, StationCredentials

log = logging.getLogger("evse.certs")

_TMP = ".tmp-"
_EMPTY_STATE: dict = {"pending_key": None, "current": None, "previous": None}

# cryptography's modules, set by _load_cryptography before the first certificate or key is read
x509 = InvalidSignature = hashes = serialization = ec = rsa = NameOID = None


def _load_cryptography() -> None:
    """Import cryptography into this module's names (once; NameOID last, so that a thread that
    sees it set sees the others too). Called where a certificate or a key enters the store."""
    global x509, InvalidSignature, hashes, serialization, ec, rsa, NameOID
    if NameOID is not None:
        return
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID


# --- DER and hash data -------------------------------------------------------------------

def _der_element(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at `offset`."""
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        length = int.from_bytes(data[offset:offset + count], "big")
        offset += count
    return tag, offset, offset + length


def _issuer_der(cert: x509.Certificate) -> bytes:
    """The issuer Name exactly as encoded in the certificate (TBSCertificate's 4th field, or
    3rd without the explicit [0] version)."""
    tbs = cert.tbs_certificate_bytes
    _, pos, _ = _der_element(tbs, 0)
    fields = []
    while len(fields) < 4:
        tag, start, end = _der_element(tbs, pos)
        fields.append((tag, pos, end))
        pos = end
    if fields[0][0] != 0xA0:          # no version field (v1)
        fields.insert(0, (0, 0, 0))
    _, begin, end = fields[3]
    return tbs[begin:end]


def public_key_bits(public_key) -> bytes:
    """The subjectPublicKey BIT STRING's contents (without its unused-bits byte) of a key's
    SubjectPublicKeyInfo: what OCSP's CertID and OCPP's issuerKeyHash hash."""
    _load_cryptography()
    spki = public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    _, pos, _ = _der_element(spki, 0)
    _, _, pos = _der_element(spki, pos)          # AlgorithmIdentifier
    tag, start, end = _der_element(spki, pos)
    assert tag == 0x03, "subjectPublicKey is a BIT STRING"
    return spki[start + 1:end]


def certificate_hash_data(cert: x509.Certificate, issuer: x509.Certificate) -> HashData:
    """certificateHashData of `cert`, issued by `issuer` (SHA256)."""
    _load_cryptography()
    return HashData(issuer_name_hash=hashlib.sha256(_issuer_der(cert)).hexdigest(),
                    issuer_key_hash=hashlib.sha256(public_key_bits(issuer.public_key())).hexdigest(),
                    serial_number=format(cert.serial_number, "x"))


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def facts(cert: x509.Certificate, issuer: x509.Certificate | None) -> CertificateFacts:
    """What the domain decides on about `cert` (its issuer: itself when None)."""
    _load_cryptography()
    return CertificateFacts(subject=cert.subject.rfc4514_string(), is_ca=_is_ca(cert),
                            self_signed=cert.issuer == cert.subject and _issued_by(cert, cert),
                            not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                            hash_data=certificate_hash_data(cert, issuer or cert))


def _parse(pem: str) -> list[x509.Certificate] | None:
    _load_cryptography()
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except (ValueError, UnicodeEncodeError):
        return None


def _same_key(cert: x509.Certificate, key) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return (cert.public_key().public_bytes(serialization.Encoding.DER, spki)
            == key.public_key().public_bytes(serialization.Encoding.DER, spki))


def _new_key(algorithm: KeyAlgorithm):
    _load_cryptography()
    if algorithm is KeyAlgorithm.EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm is KeyAlgorithm.EC_P384:
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(algorithm.value.split("-")[1]))


# --- files ----------------------------------------------------------------------------------

def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """`path` holds `data` whole, or what it held before: a temporary file created with `mode`
    (O_EXCL), fsync, rename, fsync of the directory."""
    tmp = path.with_name(f"{_TMP}{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)   # the umask may have taken bits away; never added any
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _remove(paths: Iterable[Path]) -> None:
    removed = set()
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.add(path.parent)
    for folder in removed:
        _fsync_dir(folder)


_FALLBACK = ".fallback.pem"
_BUNDLES = {False: "csms-roots.pem", True: "csms-roots-fallback.pem"}


def _is_fallback(path: Path) -> bool:
    return path.name.endswith(_FALLBACK)


def _failed(field: str, exc: OSError) -> InstallResult:
    reason = "OutOfStorage" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "InternalError"
    return InstallResult(InstallStatus.FAILED, reason, f"{field}: cannot be stored: {exc.strerror or exc}")


class FsCertificateStore:
    """CertificateStore on files under `state_dir` (see the module docstring)."""

    def __init__(self, state_dir: Path) -> None:
        self._base = Path(state_dir) / "certs"
        try:
            for kind in ROOT_KINDS:
                (self._base / "roots" / kind).mkdir(parents=True, exist_ok=True)
            for kind in STATION_KINDS:
                folder = self._base / "station" / kind
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(folder, 0o700)
            self._sweep_temporaries()
        except OSError as exc:
            if not all((self._base / "roots" / k).is_dir() for k in ROOT_KINDS) or \
                    not all((self._base / "station" / k).is_dir() for k in STATION_KINDS):
                raise CertificateStoreError(f"certificate store {self._base}: {exc.strerror or exc}") from None
            # a read-only file system: what is stored can be read; a write fails when it is tried
            log.warning("certificate store %s: cannot be prepared for writing (%s); read only for now",
                        self._base, exc.strerror or exc)

    def _sweep_temporaries(self) -> None:
        _remove(p for p in self._base.rglob(f"{_TMP}*") if p.is_file())

    # --- roots (M03-M05) -------------------------------------------------------------------

    def _root_files(self, kinds: Iterable[CertificateKind]) -> list[tuple[Path, x509.Certificate, CertificateKind]]:
        found = []
        for kind in sorted(kinds):
            for path in sorted((self._base / "roots" / kind).glob("*.pem")):
                certs = _parse(path.read_text(encoding="ascii", errors="replace"))
                if not certs:
                    log.warning("certificate store: %s/%s is not a certificate; ignored", kind, path.name)
                    continue
                found.append((path, certs[0], kind))
        return found

    def install(self, kind: CertificateKind | str, pem: str, *, now: datetime,
                limits: StoreLimits, additional_root_check: bool = False) -> InstallResult:
        early = check_request(kind, len(pem.encode()), limits)
        if early is not None:
            return early
        certs = _parse(pem)
        if not certs:
            return malformed()
        kind = CertificateKind(kind)
        issued_by = None
        if additional_root_check:
            csms_roots = [c for _, c, _ in self._root_files([CertificateKind.CSMS_ROOT])]
            issued_by = any(_issued_by(certs[0], root) for root in csms_roots)
        result = decide_root_install(kind, [facts(c, None) for c in certs], len(pem.encode()),
                                     now=now, installed=self.list(), limits=limits,
                                     issued_by_installed_csms_root=issued_by)
        if not result.accepted:
            return result
        der = certs[0].public_bytes(serialization.Encoding.DER)
        path = self._base / "roots" / kind / f"{hashlib.sha256(der).hexdigest()}.pem"
        if path.exists() or path.with_suffix(_FALLBACK).exists():
            return result
        replaced = ([p for p, _, _ in self._root_files([kind]) if not _is_fallback(p)]
                    if additional_root_check and kind is CertificateKind.CSMS_ROOT else [])
        try:
            write_atomic(path, certs[0].public_bytes(serialization.Encoding.PEM), 0o644)
            if replaced:
                self._replace_roots(replaced)
            if kind is CertificateKind.CSMS_ROOT:
                self._write_bundle()
        except OSError as exc:
            return _failed("certificate", exc)
        return result

    def _replace_roots(self, replaced: list[Path]) -> None:
        """M05.FR.10/12: the CSMS roots a new one replaced become the fallback; when a fallback
        is kept already (the new roots before were never proven), they go."""
        folder = self._base / "roots" / CertificateKind.CSMS_ROOT
        if any(_is_fallback(p) for p in folder.glob("*.pem")):
            _remove(replaced)
            return
        for old in replaced:
            os.replace(old, old.with_suffix(_FALLBACK))
        _fsync_dir(folder)

    def _promote_fallback(self) -> None:
        """The last current CSMS root deleted while a fallback is kept: the fallback is the
        current root again (the link is never left with no CSMS root while one is installed)."""
        files = [p for p, _, _ in self._root_files([CertificateKind.CSMS_ROOT])]
        if files and all(_is_fallback(p) for p in files):
            for old in files:
                os.replace(old, old.with_name(old.name[:-len(_FALLBACK)] + ".pem"))
            _fsync_dir(files[0].parent)

    def discard_fallback_roots(self) -> None:
        try:
            _remove([p for p, _, _ in self._root_files([CertificateKind.CSMS_ROOT]) if _is_fallback(p)])
            self._write_bundle()
        except OSError as exc:
            raise CertificateStoreError(f"certificate store fallback CSMSRootCertificate: "
                                        f"{exc.strerror or exc}") from None

    # --- the link's CA bundle ----------------------------------------------------------------

    def _bundle_text(self, fallback: bool) -> bytes:
        return b"".join(cert.public_bytes(serialization.Encoding.PEM)
                        for path, cert, _ in self._root_files([CertificateKind.CSMS_ROOT])
                        if _is_fallback(path) == fallback)

    def _write_bundle(self) -> tuple[bytes, bytes]:
        """certs/csms-roots.pem = the current CSMS roots, csms-roots-fallback.pem = the fallback
        ones (each removed when there is none)."""
        out = []
        for fallback in (False, True):
            data, path = self._bundle_text(fallback), self._base / _BUNDLES[fallback]
            out.append(data)
            if not data:
                _remove([path])
                continue
            try:
                current = path.read_bytes()
            except FileNotFoundError:
                current = None
            if current != data:
                write_atomic(path, data, 0o644)
        return out[0], out[1]

    def csms_root_bundle(self, fallback: bool = False) -> Path | None:
        try:
            data = self._write_bundle()[fallback]
        except OSError as exc:
            raise CertificateStoreError(f"certificate store {_BUNDLES[fallback]}: {exc.strerror or exc}") from None
        return self._base / _BUNDLES[fallback] if data else None

    def _trusted_roots(self, kind: CertificateKind) -> list[x509.Certificate]:
        return [cert for _, cert, _ in self._root_files(TRUST_ANCHORS[kind])]

    def root_certificates(self, kind: CertificateKind) -> list[str]:
        return [cert.public_bytes(serialization.Encoding.PEM).decode("ascii") for _, cert, _ in self._root_files((kind,))]

    def _anchor(self, top: x509.Certificate, roots: Sequence[x509.Certificate]) -> x509.Certificate | None:
        """The installed root `top` is, or is directly issued by."""
        for root in roots:
            if top == root or _issued_by(top, root):
                return root
        return None

    def _root_hash_data(self) -> list[tuple[Path, x509.Certificate, CertificateKind, HashData]]:
        """Every installed root with its hash data: issued by itself, or (a CSMS root installed
        under AdditionalRootCertificateCheck, M05.FR.10) by the installed root that signed it."""
        found = self._root_files(ROOT_KINDS)
        certs = [cert for _, cert, _ in found]
        out = []
        for path, cert, kind in found:
            issuer = cert if cert.issuer == cert.subject else next(
                (other for other in certs if other is not cert and _issued_by(cert, other)), cert)
            out.append((path, cert, kind, certificate_hash_data(cert, issuer)))
        return out

    def list(self, kinds: Iterable[CertificateKind] = ()) -> list[CertificateEntry]:
        wanted = frozenset(kinds) or frozenset(CertificateKind)
        entries = [CertificateEntry(kind=kind, hash_data=hash_data, subject=cert.subject.rfc4514_string(),
                                    not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                                    chains_to_trusted_root=True, fallback=_is_fallback(path))
                   for path, cert, kind, hash_data in self._root_hash_data() if kind in wanted]
        for kind in sorted(wanted & STATION_KINDS):
            entry = self._station_entry(kind)
            if entry is not None:
                entries.append(entry)
        return entries

    def delete(self, hash_data: HashData) -> DeleteResult:
        decision = decide_delete(self.list(), hash_data)
        if decision is not None:
            return decision
        for path, _, _, installed in self._root_hash_data():
            if installed.same_certificate(hash_data):
                try:
                    _remove([path])
                    self._promote_fallback()
                    self._write_bundle()
                except OSError as exc:
                    return DeleteResult(DeleteStatus.FAILED, f"certificateHashData: cannot be deleted: {exc.strerror or exc}")
        return DeleteResult(DeleteStatus.ACCEPTED)

    # --- the station's key pairs and certificates (A02/A03) ---------------------------------

    def _folder(self, kind: CertificateKind) -> Path:
        if kind not in STATION_KINDS:
            raise CertificateStoreError(f"certificateType: {kind} is not a certificate of the station")
        return self._base / "station" / kind

    def _state(self, kind: CertificateKind) -> dict:
        path = self._folder(kind) / "state.json"
        try:
            return {**_EMPTY_STATE, **json.loads(path.read_text(encoding="utf-8"))}
        except FileNotFoundError:
            return dict(_EMPTY_STATE)
        except (OSError, ValueError) as exc:
            raise CertificateStoreError(f"certificate store {kind}/state.json: unreadable ({exc.__class__.__name__})") from None

    def _switch(self, kind: CertificateKind, state: dict) -> None:
        """The commit point: `state` replaces the pointer file; then the files no longer
        referenced by it (and referenced before) are removed."""
        before = self._referenced(self._state(kind))
        write_atomic(self._folder(kind) / "state.json", json.dumps(state, sort_keys=True).encode(), 0o600)
        folder = self._folder(kind)
        _remove(folder / name for name in before - self._referenced(state))

    @staticmethod
    def _referenced(state: dict) -> set[str]:
        names = set()
        if state.get("pending_key"):
            names.add(f"key-{state['pending_key']}.pem")
        for slot in ("current", "previous"):
            if state.get(slot):
                names |= {f"key-{state[slot]['key']}.pem", f"chain-{state[slot]['chain']}.pem",
                          f"meta-{state[slot]['chain']}.json"}
        return names

    def _load_key(self, kind: CertificateKind, key_id: str):
        _load_cryptography()
        data = (self._folder(kind) / f"key-{key_id}.pem").read_bytes()
        try:
            return serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise CertificateStoreError(f"certificate store {kind}: a private key cannot be read") from None

    def generate_key(self, kind: CertificateKind, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256) -> None:
        folder = self._folder(kind)
        key = _new_key(KeyAlgorithm(algorithm))
        key_id = secrets.token_hex(8)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        try:
            write_atomic(folder / f"key-{key_id}.pem", pem, 0o600)
            self._switch(kind, {**self._state(kind), "pending_key": key_id})
        except OSError as exc:
            raise CertificateStoreError(f"certificate store {kind}: the key cannot be stored: {exc.strerror or exc}") from None

    def make_csr(self, kind: CertificateKind, common_name: str, organization: str) -> str:
        key_id = self._state(kind)["pending_key"]
        if not key_id:
            raise CertificateStoreError(f"certificate store {kind}: no key to sign a CSR with (generate one first)")
        key = self._load_key(kind, key_id)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])
        digest = hashes.SHA384() if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256 else hashes.SHA256()
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, digest)
        return csr.public_bytes(serialization.Encoding.PEM).decode()

    def install_station_certificate(self, kind: CertificateKind | str, chain_pem: str, *, now: datetime,
                                    limits: StoreLimits) -> InstallResult:
        size = len(chain_pem.encode())
        early = check_request(kind, size, limits, station=True)
        if early is not None:
            return early
        chain = _parse(chain_pem)
        if not chain:
            return malformed(station=True)
        kind = CertificateKind(kind)
        state = self._state(kind)
        key_id = None
        for candidate in (state["pending_key"], (state["current"] or {}).get("key")):
            if candidate and _same_key(chain[0], self._load_key(kind, candidate)):
                key_id = candidate
                break
        linked = all(_issued_by(c, i) for c, i in zip(chain, chain[1:]))
        anchor = self._anchor(chain[-1], self._trusted_roots(kind))
        issuers = [*chain[1:], anchor]
        chain_facts = [facts(c, i) for c, i in zip(chain, issuers)] if anchor is not None else \
            [facts(c, i) for c, i in zip(chain, [*chain[1:], None])]
        result = decide_station_certificate(kind, chain_facts, size, now=now, linked=linked,
                                            matches_key=key_id is not None,
                                            chains_to_trusted_root=anchor is not None, limits=limits)
        if not result.accepted:
            return result
        chain_id = secrets.token_hex(8)
        folder = self._folder(kind)
        meta = {"hash_data": _hash_json(chain_facts[0].hash_data),
                "children": [_hash_json(f.hash_data) for f in chain_facts[1:]]}
        current = state["current"]
        new_state = {"pending_key": None if key_id == state["pending_key"] else state["pending_key"],
                     "current": {"key": key_id, "chain": chain_id},
                     "previous": current if current else state["previous"]}
        try:
            write_atomic(folder / f"chain-{chain_id}.pem",
                         b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain), 0o644)
            write_atomic(folder / f"meta-{chain_id}.json", json.dumps(meta, sort_keys=True).encode(), 0o644)
            self._switch(kind, new_state)
        except OSError as exc:
            return _failed("certificateChain", exc)
        return result

    def _station_entry(self, kind: CertificateKind) -> CertificateEntry | None:
        current = self._state(kind)["current"]
        if not current:
            return None
        folder = self._folder(kind)
        chain = _parse((folder / f"chain-{current['chain']}.pem").read_text(encoding="ascii"))
        meta = json.loads((folder / f"meta-{current['chain']}.json").read_text(encoding="utf-8"))
        if not chain:
            raise CertificateStoreError(f"certificate store {kind}: the current chain cannot be read")
        trusted = (all(_issued_by(c, i) for c, i in zip(chain, chain[1:]))
                   and self._anchor(chain[-1], self._trusted_roots(kind)) is not None)
        return CertificateEntry(kind=kind, hash_data=HashData(**meta["hash_data"]),
                                subject=chain[0].subject.rfc4514_string(),
                                not_before=chain[0].not_valid_before_utc, not_after=chain[0].not_valid_after_utc,
                                chains_to_trusted_root=trusted,
                                children=tuple(HashData(**h) for h in meta["children"]))

    def credentials(self, kind: CertificateKind = CertificateKind.CHARGING_STATION) -> StationCredentials | None:
        current = self._state(kind)["current"]
        if not current:
            return None
        folder = self._folder(kind)
        return StationCredentials(folder / f"chain-{current['chain']}.pem", folder / f"key-{current['key']}.pem")

    def import_station_credentials(self, kind: CertificateKind, chain_pem: str, key_pem: str, *,
                                   now: datetime) -> None:
        folder = self._folder(kind)
        chain = _parse(chain_pem)
        if not chain:
            raise CertificateStoreError(f"{kind}: the certificate file is not a PEM X.509 certificate")
        try:
            key = serialization.load_pem_private_key(key_pem.encode(), password=None)
        except (ValueError, TypeError, UnicodeEncodeError):
            raise CertificateStoreError(f"{kind}: the key file is not an unencrypted PEM private key") from None
        if not _same_key(chain[0], key):
            raise CertificateStoreError(f"{kind}: the private key does not match the certificate")
        problem = validity_problem(facts(chain[0], None), now)
        if problem:
            raise CertificateStoreError(f"{kind}: the certificate is {problem}")
        issuer = chain[1] if len(chain) > 1 else next(
            (root for _, root, _ in self._root_files(ROOT_KINDS) if _issued_by(chain[0], root)), chain[0])
        key_id = chain_id = secrets.token_hex(8)
        meta = {"hash_data": _hash_json(certificate_hash_data(chain[0], issuer)),
                "children": [_hash_json(certificate_hash_data(c, i))
                             for c, i in zip(chain[1:], [*chain[2:], chain[-1]])]}
        state = self._state(kind)
        try:
            write_atomic(folder / f"key-{key_id}.pem", key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)
            write_atomic(folder / f"chain-{chain_id}.pem",
                         b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain), 0o644)
            write_atomic(folder / f"meta-{chain_id}.json", json.dumps(meta, sort_keys=True).encode(), 0o644)
            self._switch(kind, {**state, "current": {"key": key_id, "chain": chain_id},
                                "previous": state["current"] or state["previous"]})
        except OSError as exc:
            raise CertificateStoreError(f"{kind}: cannot be stored: {exc.strerror or exc}") from None

    def has_previous(self, kind: CertificateKind) -> bool:
        return self._state(kind)["previous"] is not None

    def discard_previous(self, kind: CertificateKind) -> None:
        state = self._state(kind)
        if state["previous"]:
            self._switch(kind, {**state, "previous": None})

    def revert(self, kind: CertificateKind) -> None:
        state = self._state(kind)
        if not state["previous"]:
            raise CertificateStoreError(f"certificate store {kind}: no previous certificate to go back to")
        self._switch(kind, {**state, "current": state["previous"], "previous": None})


def _hash_json(h: HashData) -> dict[str, str]:
    return {"issuer_name_hash": h.issuer_name_hash, "issuer_key_hash": h.issuer_key_hash,
            "serial_number": h.serial_number, "hash_algorithm": h.hash_algorithm}
