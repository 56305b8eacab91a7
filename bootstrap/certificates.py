"""The security block's certificate jobs carried out on the CertificateStore (blocks A, M).

`run_certificate_job` is synchronous (file I/O, key generation): the runtime calls it off the
event loop (`Deployment.blocking`, a worker thread), one job at a time, in the order the station
asked, and hands the outcome back to the station as a `JobFinished` with a CertificateOutcome:
the job's own result and the store's listing after it, so the station's catalogue stays what
the store holds.
"""
from __future__ import annotations

import logging

from domain.effects import (CertificateOutcome, DeleteRoot, DiscardFallbackRoots, InstallRoot,
                            InstallStationCertificate, MakeCsr, SettleStationCertificate)
from domain.hardware_events import JobFinished
from ports.certificate_store import CertificateStore, CertificateStoreError

log = logging.getLogger("evse.certs")


def run_certificate_job(store: CertificateStore | None, job: object) -> JobFinished:
    """Carry out one certificate job; never raises (a failure is `ok` False with one line)."""
    if store is None:
        return JobFinished(job, False, "no certificate store")
    try:
        value = _carry_out(store, job)
    except (CertificateStoreError, OSError) as exc:
        detail = str(exc) if isinstance(exc, CertificateStoreError) else (exc.strerror or type(exc).__name__)
        log.error("%s not carried out: %s", type(job).__name__, detail)
        try:
            listing = tuple(store.list())
        except (CertificateStoreError, OSError):
            return JobFinished(job, False, detail)
        return JobFinished(job, False, detail, result=CertificateOutcome(None, listing))
    return JobFinished(job, True, "", result=CertificateOutcome(value, tuple(store.list())))


def _carry_out(store: CertificateStore, job: object) -> object:
    t = type(job)
    if t is InstallRoot:
        return store.install(job.kind, job.pem, now=job.utc, limits=job.limits,
                             additional_root_check=job.issuer_check)
    if t is DeleteRoot:
        return store.delete(job.hash_data)
    if t is MakeCsr:
        store.generate_key(job.kind)
        return store.make_csr(job.kind, job.common_name, job.organization)
    if t is InstallStationCertificate:
        return store.install_station_certificate(job.kind, job.chain_pem, now=job.utc, limits=job.limits)
    if t is SettleStationCertificate:
        if job.keep:
            store.discard_previous(job.kind)
        elif store.has_previous(job.kind):
            store.revert(job.kind)
        return None
    if t is DiscardFallbackRoots:
        store.discard_fallback_roots()
        return None
    raise TypeError(f"not a certificate job: {t.__name__}")
