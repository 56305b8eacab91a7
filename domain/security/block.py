"""The security block (OCPP 2.0.1 A02-A04, M03-M05): certificates, the station certificate's
renewal and the security events.

The domain does no I/O: each certificate operation is an effect (domain/effects.py:
InstallRoot, DeleteRoot, MakeCsr, InstallStationCertificate, SettleStationCertificate) that the
runtime carries out on the CertificateStore, off the event loop and in order; it comes back as a
`JobFinished` whose `result` is a CertificateOutcome (the job's own result and the store's
listing after it). A CALL waiting for one is answered then (like UnlockConnector).

- M05 InstallCertificate: the kind and the size are checked here (Rejected at once), the rest by
  the store (domain/security/certificates.py: decide_root_install); with
  SecurityCtrlr.AdditionalRootCertificateCheck a new CSMSRootCertificate must be signed by the
  installed one (M05.FR.10/11).
- M03 GetInstalledCertificateIds: from the catalogue (the store's listing, loaded at start and
  replaced by every job's outcome); the station's ChargingStationCertificate is not a
  GetCertificateIdUse and is never listed; a V2GCertificateChain carries its sub-CAs.
- M04 DeleteCertificate: NotFound and the station certificate (Failed, M04.FR.06, TC_M_23)
  decided from the catalogue; a root is deleted by the store.
- M05.FR.12-16 AdditionalRootCertificateCheck: the store keeps the CSMSRootCertificate a new one
  replaced as the fallback (listed, M05.FR.12). Each boot cycle's connections validate the CSMS
  with the new root only; one that fails that check (the link's InvalidCsmsCertificate) makes the
  next attempts use the fallback root(s) only, and the other way round while both fail
  (M05.FR.14; with the network profiles' own fallback to the previous slot on the same failure:
  M05.FR.15/16, TC_B_47). A TLS connection (security profile 2 or 3) validated with the new root
  removes the fallback (M05.FR.13, TC_M_30); one validated with the fallback keeps both.
- After a root is installed or deleted, a Reconfigure: the runtime builds the link's settings
  again, which tells the network block which certificates are valid (A05.FR.02/03, without a
  reboot) and makes the link re-read the CSMS roots at its next connection.
- A02/A03 SignCertificate: on TriggerMessage SignChargingStationCertificate (F06.FR.04) or
  before the certificate expires (A03: RENEWAL_LEAD before notAfter), a new key pair and CSR
  (CN: the serial number, else SecurityCtrlr.Identity; O: SecurityCtrlr.OrganizationName), sent
  through the durable queue. Without a CertificateSigned after the CSMS Accepted it, the same CSR
  is sent again after CertSigningWaitMinimum, doubling each time, CertSigningRepeatTimes times
  (A02.FR.17/18, TC_A_23); Rejected: the station stops (TC_A_15).
- A02/A03 CertificateSigned: checked by the store (decide_station_certificate); Rejected sends
  the security event InvalidChargingStationCertificate (A02.FR.07, TC_A_14). An Accepted
  ChargingStationCertificate makes the link reconnect with it (A02.FR.08); the first connection
  that comes up proves it and the previous one is discarded (A02.FR.10); after
  OCPPCommCtrlr.NetworkProfileConnectionAttempts failed attempts the previous one is restored, the link reconnects
  with it and DiscardedRenewedClientCertificate is sent (errata 2025-01 A02.FR.28/29).
- A04: `ctx.security_sink` is this block's: every event is kept in the bounded security log
  (domain/security/events.py), a critical one (and DiscardedRenewedClientCertificate) also goes
  to the CSMS through the durable queue.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from domain import messages as m
from domain.block import Block
from domain.context import Context, StartArgs
from domain.device_model import VariableRef
from domain.effects import (CERTIFICATE_JOBS, CertificateOutcome, DeleteRoot, DiscardFallbackRoots, InstallRoot,
                            InstallStationCertificate, MakeCsr, Reconfigure, ReconnectLink, SettleStationCertificate)
from domain.hardware_events import JobFinished
from domain.outbox import Failure, Registration
from domain.security.certificates import (ROOT_KINDS, CertificateEntry, CertificateKind, DeleteResult, DeleteStatus,
                                          HashData, InstallResult, InstallStatus, StoreLimits, check_request,
                                          decide_delete)
from domain.security.events import (DISCARDED_RENEWED_CLIENT_CERTIFICATE, INVALID_CHARGING_STATION_CERTIFICATE,
                                    RECONFIGURATION_OF_SECURITY_PARAMETERS, SECURITY_LOG_TABLE, SENT, SecurityLog,
                                    SecurityLogEntry)
from domain.stored_state import StoredState

CTRLR = "SecurityCtrlr"
ENTRIES = VariableRef(CTRLR, "CertificateEntries")
RENEWAL_LEAD = timedelta(days=30)          # A03: renew this long before notAfter (at most a quarter of the validity)
RENEWAL_RETRY = 3600.0                     # s: a renewal that could not start or finish is tried again after
# failed connections with a renewed certificate before it is reverted (A02.FR.28)
CONNECT_ATTEMPTS = VariableRef("OCPPCommCtrlr", "NetworkProfileConnectionAttempts")
# GetCertificateIdUse: what GetInstalledCertificateIds can list (not the ChargingStationCertificate)
LISTED_KINDS = ROOT_KINDS | {CertificateKind.V2G_CHAIN}
_SIGNING_USE = {m.CertificateSigningUse.ChargingStationCertificate: CertificateKind.CHARGING_STATION,
                m.CertificateSigningUse.V2GCertificate: CertificateKind.V2G_CHAIN}


@dataclass(slots=True)
class _Signing:
    """A02/A03 in progress for one kind: the CSR once made, the SignCertificateRequests sent,
    when to send it again if no CertificateSigned came (None: not waiting)."""

    kind: CertificateKind
    csr: str | None = None
    sent: int = 0
    resend_at: float | None = None


class SecurityBlock(Block):
    name = "security"
    needs = {"network": "network"}
    jobs = CERTIFICATE_JOBS
    tables = (SECURITY_LOG_TABLE,)

    def __init__(self, ctx: Context, stored: StoredState, args: StartArgs) -> None:
        super().__init__(ctx, stored, args)
        self.installed: tuple[CertificateEntry, ...] = tuple(args.certificates)
        self.log = SecurityLog(stored.table(SECURITY_LOG_TABLE))
        self._signing: _Signing | None = None
        self._renew_after: float | None = None       # no automatic renewal before (a failed one)
        # a renewed certificate the link has not proven yet (also one a previous run left unproven)
        self._proving: CertificateKind | None = (CertificateKind.CHARGING_STATION if CertificateKind.CHARGING_STATION
                                                 in args.unproven else None)
        self._failed_attempts = 0
        self.use_fallback_roots = False     # M05.FR.14: the link validates the CSMS with the fallback root(s)
        ctx.security_sink = self._security_event
        self.calls = {
            "InstallCertificate": self._install_certificate,
            "GetInstalledCertificateIds": self._get_installed_certificate_ids,
            "DeleteCertificate": self._delete_certificate,
            "CertificateSigned": self._certificate_signed,
        }
        self._sign_answer = _SignAnswer(self)
        self.answers = {"SignCertificate": self._sign_answer}

    def start(self, now: float, *, soft_reboot: bool = False) -> None:
        self._publish_entries()

    # --- settings ------------------------------------------------------------------------------
    def limits(self) -> StoreLimits:
        """SecurityCtrlr.CertificateEntries maxLimit (ORS-17) and MaxCertificateChainSize (ORS-18)."""
        entries = self.ctx.dm.definition(ENTRIES)
        max_entries = int(entries.max_limit) if entries is not None and entries.max_limit is not None else 10
        return StoreLimits(max_entries=max_entries,
                           max_chain_size=self.ctx.dm.get_int(CTRLR, "MaxCertificateChainSize") or 10000)

    def _setting(self, variable: str) -> str:
        ref = VariableRef(CTRLR, variable)
        return (self.ctx.dm.value(ref) or "") if self.ctx.dm.definition(ref) is not None else ""

    # --- A04 security events ---------------------------------------------------------------------
    def _security_event(self, kind: str, utc, tech_info: str | None, volatile: bool = False) -> None:
        """Every event into the security log; a critical one (and DiscardedRenewedClientCertificate)
        to the CSMS, durably (A04.FR.01/02), or as a volatile message when the queue cannot be
        stored (MemoryExhaustion: the log's record is kept in memory by the runtime and stored once
        storage works again)."""
        tech_info = None if tech_info is None else tech_info[:255]
        self.log.add(kind, utc, tech_info)
        if kind not in SENT:
            return
        request = m.SecurityEventNotificationRequest(type=kind, timestamp=utc, tech_info=tech_info)
        if volatile:
            self.ctx.outbox.post(request, volatile=True)
        else:
            self.ctx.outbox.post_durable([request])

    def security_log(self, start=None, stop=None) -> list[SecurityLogEntry]:
        """The security log's entries between two UTC timestamps (GetLog SecurityLog, N01)."""
        return self.log.between(start, stop)

    def flush(self) -> None:
        change = self.log.take_change()
        if change is not None:
            self.ctx.emit(change)

    # --- M05 InstallCertificate ----------------------------------------------------------------
    def _install_certificate(self, req: m.InstallCertificateRequest, now: float, size: int):
        early = check_request(req.certificate_type, len(req.certificate.encode()), self.limits())
        if early is not None:
            return _install_response(early)
        return InstallRoot(req.certificate_type, req.certificate, self.ctx.utc(now), self.limits(),
                           issuer_check=self._setting("AdditionalRootCertificateCheck") == "true")

    # --- M03 GetInstalledCertificateIds --------------------------------------------------------
    def _get_installed_certificate_ids(self, req: m.GetInstalledCertificateIdsRequest, now: float, size: int):
        wanted = {CertificateKind(k) for k in req.certificate_type} if req.certificate_type else LISTED_KINDS
        chain = [m.CertificateHashDataChain(
            certificate_type=m.GetCertificateIdUse(e.kind), certificate_hash_data=_hash_message(e.hash_data),
            child_certificate_hash_data=[_hash_message(h) for h in e.children] or None)
            for e in self.installed if e.kind in wanted and e.kind in LISTED_KINDS]
        if not chain:
            return m.GetInstalledCertificateIdsResponse(status=m.GetInstalledCertificateStatus.NotFound)
        return m.GetInstalledCertificateIdsResponse(status=m.GetInstalledCertificateStatus.Accepted,
                                                    certificate_hash_data_chain=chain)

    # --- M04 DeleteCertificate -----------------------------------------------------------------
    def _delete_certificate(self, req: m.DeleteCertificateRequest, now: float, size: int):
        h = req.certificate_hash_data
        hash_data = HashData(issuer_name_hash=h.issuer_name_hash, issuer_key_hash=h.issuer_key_hash,
                             serial_number=h.serial_number, hash_algorithm=str(h.hash_algorithm))
        decision = decide_delete(self.installed, hash_data)
        if decision is not None:
            return _delete_response(decision)
        return DeleteRoot(hash_data)

    # --- A02/A03 CertificateSigned -------------------------------------------------------------
    def _certificate_signed(self, req: m.CertificateSignedRequest, now: float, size: int):
        kind = _SIGNING_USE[req.certificate_type or m.CertificateSigningUse.ChargingStationCertificate]
        if self._signing is not None and self._signing.kind == kind:
            self._signing = None                 # the CSMS answered the CSR: no more SignCertificate
        early = check_request(kind, len(req.certificate_chain.encode()), self.limits(), station=True)
        if early is not None:
            self._invalid_certificate(early, now)
            return _signed_response(early)
        return InstallStationCertificate(kind, req.certificate_chain, self.ctx.utc(now), self.limits())

    def _invalid_certificate(self, result: InstallResult, now: float) -> None:
        self.ctx.security_event(INVALID_CHARGING_STATION_CERTIFICATE, now, result.detail)

    # --- A02/A03 SignCertificate ---------------------------------------------------------------
    def sign(self, kind: CertificateKind, now: float) -> None:
        """Start A02 (TriggerMessage Sign...Certificate, F06.FR.04) or A03 for `kind`: a new key
        pair and its CSR (the MakeCsr job), sent as a SignCertificateRequest once made."""
        if self._signing is not None and self._signing.kind == kind and self._signing.csr is None:
            return                                     # a CSR is being made already
        self._signing = _Signing(kind)
        common_name = self.ctx.info.serial_number or self._setting("Identity")
        self.ctx.emit(MakeCsr(kind, common_name, self._setting("OrganizationName")))

    def _send_csr(self, now: float) -> None:
        s = self._signing
        assert s is not None and s.csr is not None
        s.sent += 1
        s.resend_at = None
        use = (m.CertificateSigningUse.ChargingStationCertificate if s.kind is CertificateKind.CHARGING_STATION
               else m.CertificateSigningUse.V2GCertificate)
        self.ctx.outbox.post_durable([m.SignCertificateRequest(csr=s.csr, certificate_type=use)], self._sign_answer)

    def sign_answered(self, request: m.SignCertificateRequest, accepted: bool, now: float) -> None:
        """The CSMS's SignCertificateResponse: Accepted waits CertSigningWaitMinimum (doubling)
        for the CertificateSigned, at most CertSigningRepeatTimes times (A02.FR.17/18);
        Rejected ends the attempt (TC_A_15)."""
        s = self._signing
        if s is None or s.csr != request.csr:
            return
        repeat = self.ctx.dm.get_int(CTRLR, "CertSigningRepeatTimes")
        wait = self.ctx.dm.get_int(CTRLR, "CertSigningWaitMinimum")
        if not accepted or s.sent > repeat or wait <= 0:
            if not accepted:
                self.ctx.log("warning", f"SignCertificate for the {s.kind} Rejected by the CSMS")
            # no more SignCertificate; a CertificateSigned for this CSR is still taken (the store
            # keeps the pending key), and the A03 renewal may start again after RENEWAL_RETRY
            self._signing = None
            self._renew_after = now + RENEWAL_RETRY
            return
        s.resend_at = now + wait * 2 ** (s.sent - 1)

    # --- jobs done -----------------------------------------------------------------------------
    def job_finished(self, event: JobFinished, now: float) -> None:
        job = event.job
        outcome = event.result if isinstance(event.result, CertificateOutcome) else None
        if outcome is not None:
            self.installed = tuple(outcome.installed)
            self._publish_entries()
        value = outcome.value if outcome is not None else None
        t = type(job)
        if t is InstallRoot:
            result = value if isinstance(value, InstallResult) else _internal_error(event.detail)
            if result.accepted:
                self.ctx.security_event(RECONFIGURATION_OF_SECURITY_PARAMETERS, now, f"{job.kind} installed")
                if job.kind == CertificateKind.CSMS_ROOT:
                    self.use_fallback_roots = False      # the next connections try the new root first
                self._roots_changed()
            self._answer(job, _install_response(result))
        elif t is DeleteRoot:
            if not isinstance(value, DeleteResult):
                self._answer(job, m.DeleteCertificateResponse(status=m.DeleteCertificateStatus.Failed, status_info=(
                    m.StatusInfo(reason_code="InternalError", additional_info=f"certificate store: {event.detail}"[:512]))))
                return
            if value.status is DeleteStatus.ACCEPTED:
                self.ctx.security_event(RECONFIGURATION_OF_SECURITY_PARAMETERS, now, "a root certificate deleted")
                self._roots_changed()
            self._answer(job, _delete_response(value))
        elif t is MakeCsr:
            s = self._signing
            if s is None or s.kind != job.kind:
                return
            if not event.ok or not isinstance(value, str):
                self.ctx.log("error", f"no CSR for the {job.kind}: {event.detail}")
                self._signing = None
                self._renew_after = now + RENEWAL_RETRY
                return
            s.csr = value
            self._send_csr(now)
        elif t is InstallStationCertificate:
            result = value if isinstance(value, InstallResult) else _internal_error(event.detail)
            self._answer(job, _signed_response(result))
            if not result.accepted:
                self._invalid_certificate(result, now)
                return
            self.ctx.security_event(RECONFIGURATION_OF_SECURITY_PARAMETERS, now, f"new {job.kind}")
            if job.kind == CertificateKind.CHARGING_STATION:        # A02.FR.08
                self._proving, self._failed_attempts = CertificateKind.CHARGING_STATION, 0
                self.ctx.emit(ReconnectLink("new ChargingStationCertificate"))
        elif t is DiscardFallbackRoots:
            if not event.ok:
                self.ctx.log("error", f"the fallback CSMSRootCertificate could not be removed: {event.detail}")
            self._roots_changed()
        elif t is SettleStationCertificate:
            if not event.ok:
                self.ctx.log("error", f"the {job.kind} could not be {'kept' if job.keep else 'restored'}: {event.detail}")
            if not job.keep:
                self.ctx.emit(ReconnectLink(f"the new {job.kind} does not connect: back to the previous one"))

    def _roots_changed(self) -> None:
        """The store's roots changed: the link's settings are built again (A05.FR.02/03: the
        network block learns which certificates are valid now, before the next
        NetworkConfigurationPriority; the link re-reads the CSMS roots at its next connection)."""
        self.ctx.emit(Reconfigure())

    def _answer(self, job, response) -> None:
        if job.reply_to is not None:
            self.ctx.outbox.answer(job.reply_to, response)

    def _publish_entries(self) -> None:
        """SecurityCtrlr.CertificateEntries: the certificates installed now."""
        if self.ctx.dm.definition(ENTRIES) is not None:
            self.ctx.dm.write(ENTRIES, str(len(self.installed)))

    # --- M05.FR.13/14: the fallback CSMSRootCertificate ---------------------------------------
    def _has_fallback_root(self) -> bool:
        return any(e.fallback and e.kind == CertificateKind.CSMS_ROOT for e in self.installed)

    def csms_certificate_rejected(self, now: float) -> None:
        """A connection attempt failed the CSMS certificate check (InvalidCsmsCertificate): with a
        fallback root installed, the next attempts validate with the other set of roots (M05.FR.14)."""
        if not self._has_fallback_root():
            return
        self.use_fallback_roots = not self.use_fallback_roots
        which = "the fallback" if self.use_fallback_roots else "the new"
        self.ctx.log("warning", f"the CSMS certificate did not validate: trying {which} CSMSRootCertificate")
        self.ctx.emit(Reconfigure())

    def _validated_with_new_root(self) -> None:
        """M05.FR.13: a TLS connection validated with the new root: the fallback goes."""
        if self.use_fallback_roots or not self._has_fallback_root():
            return
        if (self.network.security_profile_of(self.network.slot) or 1) < 2:
            return                      # no TLS: nothing was validated with the new root
        self.ctx.log("info", "the new CSMSRootCertificate validated the CSMS: the fallback one is removed")
        self.installed = tuple(e for e in self.installed if not e.fallback)    # no longer listed (TC_M_30)
        self._publish_entries()
        self.ctx.emit(DiscardFallbackRoots())

    # --- A02.FR.08/10/28: the renewed certificate on the link ---------------------------------
    def link_up(self, now: float) -> None:
        self._validated_with_new_root()
        if self._proving is not None:
            self.ctx.emit(SettleStationCertificate(self._proving, keep=True))
            self.ctx.log("info", f"the new {self._proving} works: the previous one is discarded")
            self._proving = None

    def link_down(self, now: float) -> None:
        if self._proving is None or self.ctx.link_failures <= 0:
            return
        self._failed_attempts += 1
        allowed = self.ctx.dm.get_int(CONNECT_ATTEMPTS.component, CONNECT_ATTEMPTS.variable)
        if self._failed_attempts < max(1, allowed):
            return
        kind, self._proving = self._proving, None
        self.ctx.emit(SettleStationCertificate(kind, keep=False))      # then the link reconnects (job_finished)
        self.ctx.security_event(DISCARDED_RENEWED_CLIENT_CERTIFICATE, now,
                                f"no connection with the new {kind} after {self._failed_attempts} attempts; "
                                f"the previous one is used again")

    # --- timers: CertSigningWaitMinimum, A03 renewal -------------------------------------------
    def _renewal_due(self) -> float | None:
        """A03: when to renew the ChargingStationCertificate (RENEWAL_LEAD before notAfter, at
        most a quarter of its validity)."""
        cert = next((e for e in self.installed if e.kind == CertificateKind.CHARGING_STATION), None)
        if cert is None or self._signing is not None or self._proving is not None:
            return None
        lead = min(RENEWAL_LEAD, (cert.not_after - cert.not_before) / 4)
        due = self.ctx.clock.monotonic(cert.not_after - lead)
        return max(due, self._renew_after) if self._renew_after is not None else due

    def next_deadline(self) -> float | None:
        if self._signing is not None:
            return self._signing.resend_at
        return self._renewal_due()

    def tick(self, now: float) -> None:
        s = self._signing
        if s is not None:
            if s.resend_at is not None and s.resend_at <= now:
                self._send_csr(now)                  # A02.FR.17: the same CSR again
            return
        due = self._renewal_due()
        if due is None or due > now:
            return
        if self.ctx.registration is not Registration.Accepted:
            self._renew_after = now + RENEWAL_RETRY
            return
        self._renew_after = now + RENEWAL_RETRY      # if this one comes to nothing
        self.ctx.log("info", "the ChargingStationCertificate expires soon: renewing it (A03)")
        self.sign(CertificateKind.CHARGING_STATION, now)


class _SignAnswer:
    """The CSMS's answer to a SignCertificateRequest."""

    def __init__(self, block: SecurityBlock) -> None:
        self.block = block

    def result(self, request: m.SignCertificateRequest, response: m.SignCertificateResponse, now: float) -> None:
        self.block.sign_answered(request, response.status == m.GenericStatus.Accepted, now)

    def failed(self, request: m.SignCertificateRequest, failure: Failure, now: float) -> None:
        if failure.kind != "lost":      # given up by the queue: the renewal may start again later
            self.block.sign_answered(request, False, now)


def _hash_message(h: HashData) -> m.CertificateHashData:
    return m.CertificateHashData(hash_algorithm=m.HashAlgorithm(h.hash_algorithm), issuer_name_hash=h.issuer_name_hash,
                                 issuer_key_hash=h.issuer_key_hash, serial_number=h.serial_number)


def _status_info(reason: str | None, detail: str) -> m.StatusInfo | None:
    return None if reason is None else m.StatusInfo(reason_code=reason, additional_info=detail[:512] or None)


def _install_response(r: InstallResult) -> m.InstallCertificateResponse:
    return m.InstallCertificateResponse(status=m.InstallCertificateStatus(r.status),
                                        status_info=_status_info(r.reason_code, r.detail))


def _signed_response(r: InstallResult) -> m.CertificateSignedResponse:
    status = m.CertificateSignedStatus.Accepted if r.accepted else m.CertificateSignedStatus.Rejected
    return m.CertificateSignedResponse(status=status, status_info=_status_info(r.reason_code, r.detail))


def _delete_response(r: DeleteResult) -> m.DeleteCertificateResponse:
    return m.DeleteCertificateResponse(status=m.DeleteCertificateStatus(r.status),
                                       status_info=None if not r.detail or r.status == "Accepted" else
                                       m.StatusInfo(reason_code=_DELETE_REASON[r.status], additional_info=r.detail[:512]))


_DELETE_REASON = {"NotFound": "NotFound", "Failed": "UnsupportedRequest"}


def _internal_error(detail: str) -> InstallResult:
    return InstallResult(InstallStatus.FAILED, "InternalError", f"certificate store: {detail}")
