"""N09/N10 CustomerInformation: report and/or clear what the station keeps about a customer.

A request names the customer by exactly one of idToken, customerCertificate and
customerIdentifier, and asks for a report, a clear or both; otherwise it is answered Invalid
with the field named (TC_N_29/33 expect Invalid for a request the station cannot process).
Accepted, then NotifyCustomerInformation pages (`data` at most 512 characters, seqNo from 0,
tbc on every page but the last, the request's requestId and generatedAt), after the response:

- about an idToken: its authorization cache entry, its Local Authorization List entry, the
  transactions it authorizes now, and its TransactionEvents still queued for the CSMS;
- about a customerCertificate or a customerIdentifier: the station keeps nothing by them (no
  ISO 15118 contract certificates, no customer identifiers), so nothing is found.

Clear (N10): the idToken's authorization cache entry is deleted durably (stored before the
answer). The Local Authorization List is the CSMS's own and is kept (TC_N_30), and so are
transactions and their queued events (they are the CSMS's billing records, not the station's).

A report that finds nothing is one page with empty `data` (TC_N_28/31, TC_N_62 step 7); a clear
without report is one page saying what was cleared (TC_N_32). While storage cannot be written a
clear is Rejected OutOfStorage (domain/storage_health.py); a report still works.
"""
from __future__ import annotations

from domain import messages as m
from domain.authorization.tokens import same_token
from domain.block import Block
from domain.context import Context

PAGE = 512                          # NotifyCustomerInformationRequest.data maxLength

_C = m.CustomerInformationStatus


class CustomerInformationBlock(Block):
    name = "customer_information"
    needs = {"authorization": "authorization"}

    def __init__(self, ctx: Context, stored, args) -> None:
        super().__init__(ctx, stored, args)
        self.calls = {"CustomerInformation": self._customer_information}

    def _customer_information(self, req: m.CustomerInformationRequest, now: float, size: int):
        named = [name for name, value in (("idToken", req.id_token), ("customerCertificate", req.customer_certificate),
                                          ("customerIdentifier", req.customer_identifier)) if value is not None]
        if len(named) != 1:
            return _invalid("MissingParam" if not named else "InvalidValue",
                            "one of idToken, customerCertificate, customerIdentifier is required"
                            if not named else f"{' and '.join(named)}: give one of them, not {len(named)}")
        if not req.report and not req.clear:
            return _invalid("InvalidValue", "report, clear: at least one must be true")
        token = req.id_token
        lines = self._about(token, now) if token is not None and req.report else []
        cleared = self.authorization.forget_customer(token) if token is not None and req.clear else False
        if req.report:
            pages = _pages("\n".join(lines))
        else:
            pages = [f"Cleared: {'the authorization cache entry' if cleared else 'nothing was kept'} "
                     f"(the Local Authorization List and transactions are kept)"]
        utc = self.ctx.utc(now)
        for n, data in enumerate(pages):
            self.ctx.outbox.reply(m.NotifyCustomerInformationRequest(
                data=data, tbc=True if n < len(pages) - 1 else None, seq_no=n, generated_at=utc,
                request_id=req.request_id), resend=True)
        return m.CustomerInformationResponse(status=_C.Accepted)

    def _about(self, token: m.IdToken, now: float) -> list[str]:
        """N09: everything kept about `token`, one line each."""
        lines = self.authorization.customer_data(token, now)
        for e in self.ctx.evses.values():
            if e.fsm.transaction_id is not None and same_token(e.fsm.id_token, token):
                lines.append(f"EVSE {e.id}: transaction {e.fsm.transaction_id} authorized by this idToken")
        for r in self.ctx.outbox.durable_requests():
            if isinstance(r, m.TransactionEventRequest) and same_token(r.id_token, token):
                lines.append(f"TransactionEvent {r.event_type} seqNo {r.seq_no} of transaction "
                             f"{r.transaction_info.transaction_id} not yet delivered")
        return lines


def _pages(text: str) -> list[str]:
    """`text` in pages of at most PAGE characters, cut at line ends where a line fits; one
    empty page when there is nothing."""
    pages: list[str] = []
    page = ""
    for line in text.split("\n") if text else []:
        while len(line) > PAGE:
            if page:
                pages.append(page)
                page = ""
            pages.append(line[:PAGE])
            line = line[PAGE:]
        candidate = f"{page}\n{line}" if page else line
        if len(candidate) > PAGE:
            pages.append(page)
            candidate = line
        page = candidate
    if page or not pages:
        pages.append(page)
    return pages


def _invalid(reason: str, info: str) -> m.CustomerInformationResponse:
    return m.CustomerInformationResponse(status=_C.Invalid, status_info=m.StatusInfo(reason_code=reason,
                                                                                    additional_info=info))
