"""Blocks C Authorization and D Local authorization list management, as the station runs them.

- A token at the reader (C01-C16): the EVSE is chosen before authorization (AQ-8); the local
  list, the cache and the CSMS decide (`AuthorizationService`); an accepted token authorizes
  the EVSE's transaction state machine; the same token, one of its group or a master pass
  stops a session (C09, C16).
- An AuthorizeRequest's answer belongs to the EVSE state it was asked in: the EVSE keeps the
  request it waits for (`Evse.pending_authorization`); unplugging the EV (PICS C-06.2), a
  fault, Unavailable, a reset or a newer card clear it, and a late answer then only updates
  the cache (C10).
- ClearCache (C11), SendLocalList and GetLocalListVersion (D01, D02).
"""
from __future__ import annotations

from domain import messages as m
from domain.authorization.authorizer import decide_stop, is_master_pass, local_info, stopped_reason
from domain.authorization.local_list import VERSION_KEY
from domain.authorization.service import (
    CACHE_TABLE,
    LIST_TABLE,
    AuthorizationService,
    AuthorizeCall,
    Outcome,
    TokenAccepted,
    TokenRejected,
)
from domain.block import Block
from domain.context import Context
from domain.hardware_events import CableUnplugged, TokenPresented
from domain.outbox import Failure, Registration
from domain.stored_state import StoredState


class Authorization(Block):
    name = "authorization"
    needs = {"sessions": "transactions"}
    events = (TokenPresented, CableUnplugged)
    tables = (CACHE_TABLE, LIST_TABLE)
    keys = (VERSION_KEY,)

    def __init__(self, ctx: Context, stored: StoredState, args) -> None:
        super().__init__(ctx, stored, args)
        self.service = AuthorizationService(
            ctx.dm, cache_records=dict(stored.table(CACHE_TABLE)), list_records=dict(stored.table(LIST_TABLE)),
            list_version=int(stored.value(VERSION_KEY) or 0))
        s = self.service
        self.calls = {
            "ClearCache": lambda req, now, size: s.clear_cache(),
            "SendLocalList": lambda req, now, size: s.send_local_list(req, size),
            "GetLocalListVersion": lambda req, now, size: s.local_list_version(),
        }

    @property
    def settings(self):
        return self.service.settings

    def flush(self) -> None:
        self.ctx.effects.extend(self.service.take_changes())

    # --- public: for the blocks built on this one -------------------------------------------
    def learn(self, token: m.IdToken, info: m.IdTokenInfo, now: float) -> None:
        """An IdTokenInfo from the CSMS (TransactionEventResponse) updates the cache (C10)."""
        self.service.learn(token, info, self.ctx.utc(now))

    def customer_data(self, token: m.IdToken, now: float) -> list[str]:
        """N09: what the authorization cache and the Local Authorization List keep about
        `token`, one human-readable line each (none: nothing kept)."""
        s, lines = self.service, []
        hit = s.cache.lookup(token, self.ctx.utc(now))
        if hit is not None:
            lines.append(f"Authorization cache: {token.type} {token.id_token}: {_info_text(hit.info)}"
                         f"{' (expired)' if hit.expired else ''}")
        info = s.local_list.lookup(token)
        if info is not None:
            lines.append(f"Local authorization list version {s.local_list.version}: {token.type} {token.id_token}: "
                         f"{_info_text(info)}")
        return lines

    def forget_customer(self, token: m.IdToken) -> bool:
        """N10: the authorization cache forgets `token` (stored by `flush`, before the answer);
        the Local Authorization List is the CSMS's own and is kept (TC_N_30). True if there
        was an entry."""
        return self.service.cache.discard(token)

    def abandon(self, evse_id: int, why: str) -> None:
        """The EVSE is no longer in the state an open authorization was asked for (EV unplugged,
        PICS C-06.2; fault; Unavailable; reset): a late AuthorizeResponse then only updates
        the cache (C10) and authorizes nobody; a pending remote start is dropped."""
        if self.ctx.evses[evse_id].abandon_authorization():
            self.ctx.log("info", f"EVSE {evse_id}: {why}; the open authorization request is abandoned "
                                 f"(its answer only updates the cache)")

    def withdraw(self, evse_id: int, why: str, now: float) -> None:
        """The EVSE cannot take a session any more (fault, Unavailable, reset): an authorization
        not yet used by a transaction ends, and so does one still asked for."""
        self.abandon(evse_id, why)
        evse = self.ctx.evses[evse_id]
        if evse.fsm.transaction_id is None and evse.fsm.id_token is not None:
            evse.group_token = None
            self.sessions.drive(evse_id, evse.fsm.cancel_authorization(now, self.ctx.utc(now)), now)
            self.ctx.log("info", f"EVSE {evse_id}: {why}; its authorization ends")

    def remote_start(self, req: m.RequestStartTransactionRequest, evse_id: int, now: float) -> bool:
        """F01/F02 with AuthCtrlr.AuthorizeRemoteStart true: the idToken is authorized like a
        card (an AuthorizeRequest when not known locally); False: refused now."""
        outcome = self.service.present(req.id_token, evse_id, online=self.ctx.online, utc=self.ctx.utc(now))
        if not isinstance(outcome, (AuthorizeCall, TokenAccepted)):
            return False
        self.ctx.evses[evse_id].remote_start_id = req.remote_start_id
        self._outcome(outcome, now)
        return True

    # --- the hardware -------------------------------------------------------------------------
    def hardware(self, event, now: float) -> None:
        if type(event) is CableUnplugged:
            if event.evse in self.ctx.evses and event.connector in self.ctx.evses[event.evse].connectors:
                self.abandon(event.evse, "EV unplugged")      # PICS C-06.2: what was asked for ends too
        else:
            self._token_presented(event, now)

    def _token_presented(self, event: TokenPresented, now: float) -> None:
        token = m.IdToken(id_token=event.id_token, type=m.IdTokenEnum(event.type))
        evse_id = self._evse_for_token(event)
        if evse_id is None:
            self.ctx.log("warning", f"token {event.id_token}: no EVSE selected (plug in first, or "
                                    f"present it at an EVSE's reader)")
            return
        evse = self.ctx.evses[evse_id]
        if evse.fsm.id_token is not None:
            self._stop_by_token(evse_id, token, now)
            return
        if not evse.usable:
            self.ctx.log("info", f"token {event.id_token}: EVSE {evse_id} is {evse.status()}, no new session")
            return
        if self.ctx.registration is not Registration.Accepted \
                and not self.ctx.dm.get_bool("TxCtrlr", "TxBeforeAcceptedEnabled"):
            self.ctx.log("info", f"token {event.id_token}: no charging before the CSMS accepted the "
                                 f"station (TxCtrlr.TxBeforeAcceptedEnabled is false)")
            return
        self._outcome(self.service.present(token, evse_id, online=self.ctx.online, utc=self.ctx.utc(now)), now)

    def _evse_for_token(self, event: TokenPresented) -> int | None:
        """AQ-8: the EVSE is chosen before authorization: the reader's own EVSE, the only
        EVSE, or the only EVSE with an EV plugged in and nobody authorized on it."""
        evses = self.ctx.evses
        if event.evse is not None:
            return event.evse if event.evse in evses else None
        if len(evses) == 1:
            return next(iter(evses))
        waiting = [e.id for e in evses.values() if e.fsm.id_token is None and e.plugged]
        return waiting[0] if len(waiting) == 1 else None

    # --- starting -----------------------------------------------------------------------------
    def _outcome(self, outcome: Outcome, now: float) -> None:
        evse = self.ctx.evses[outcome.evse_id]
        if isinstance(outcome, AuthorizeCall):
            evse.pending_authorization = outcome.request       # a newer card replaces an older question
            self.ctx.outbox.post(outcome.request, _StartAnswer(self, outcome.evse_id), question=True)
        elif isinstance(outcome, TokenAccepted):
            if not evse.usable:
                evse.remote_start_id = None
                self.ctx.log("info", f"EVSE {evse.id}: {outcome.token.id_token} accepted, but the EVSE is "
                                     f"{evse.status()}: no session")
                return
            info = outcome.decision.info
            evse.group_token = info.group_id_token if info else None
            remote_start_id, evse.remote_start_id = evse.remote_start_id, None
            self.sessions.drive(evse.id, evse.fsm.authorized(outcome.token, now, self.ctx.utc(now),
                                                             remote_start_id=remote_start_id), now)
            self.ctx.log("info", f"EVSE {evse.id}: {outcome.token.id_token} authorized ({outcome.decision.reason})")
            self._personal_message(outcome.decision)
        elif isinstance(outcome, TokenRejected):
            evse.remote_start_id = None
            if outcome.decision.source == "master_pass":
                self._master_pass(outcome.token, now)
            self.ctx.log("info", f"EVSE {evse.id}: {outcome.token.id_token} not authorized "
                                 f"({outcome.decision.reason})")
            self._personal_message(outcome.decision)

    def start_answered(self, evse_id: int, request: m.AuthorizeRequest, response: m.AuthorizeResponse,
                       now: float) -> None:
        utc = self.ctx.utc(now)
        self.service.learn(request.id_token, response.id_token_info, utc)
        evse = self.ctx.evses[evse_id]
        if evse.pending_authorization is not request:
            return                  # abandoned (or replaced by a newer card): the cache only
        evse.pending_authorization = None
        self._outcome(self.service.csms_answer(request, response, evse_id, utc), now)

    def start_failed(self, evse_id: int, request: m.AuthorizeRequest, now: float) -> None:
        """No answer (timeout, CALLERROR, link lost): decided as offline."""
        evse = self.ctx.evses[evse_id]
        if evse.pending_authorization is not request:
            return
        evse.pending_authorization = None
        self._outcome(self.service.present(request.id_token, evse_id, online=False, utc=self.ctx.utc(now)), now)

    def _personal_message(self, decision) -> None:
        info = decision.info
        if info is not None and info.personal_message is not None:
            self.ctx.log("info", f"message for the driver: {info.personal_message.content}")

    # --- stopping (C09, C16) -------------------------------------------------------------------
    def _stop_by_token(self, evse_id: int, token: m.IdToken, now: float) -> None:
        """C09/C16: the same token, one of the same group, or a master pass stops."""
        evse = self.ctx.evses[evse_id]
        fsm, utc, s = evse.fsm, self.ctx.utc(now), self.service.settings
        known = local_info(token, now_utc=utc, settings=s,
                           local_list=self.service.local_list if s.local_list_enabled else None,
                           cache=self.service.cache if s.cache_enabled else None)
        info, source = known if known else (None, None)
        verdict = decide_stop(token, tx_token=fsm.id_token, tx_group=evse.group_token,
                              presented_info=info, settings=s, online=self.ctx.online, info_source=source)
        if verdict == "stop":
            if is_master_pass(info, s):
                self._master_pass(token, now)
            else:
                self.sessions.drive(evse_id, fsm.stop_authorized(token, now, utc, reason=stopped_reason(info, s)), now)
        elif verdict == "ask_csms":
            self.ctx.outbox.post(m.AuthorizeRequest(id_token=token),
                                 _StopAnswer(self, evse_id, fsm.transaction_id, fsm.id_token), question=True)
        else:
            self.ctx.log("info", f"EVSE {evse_id}: {token.id_token} may not stop this session")

    def stop_answered(self, evse_id: int, transaction_id: str | None, tx_token: m.IdToken | None,
                      request: m.AuthorizeRequest, response: m.AuthorizeResponse, now: float) -> None:
        utc = self.ctx.utc(now)
        info = response.id_token_info
        self.service.learn(request.id_token, info, utc)
        evse = self.ctx.evses[evse_id]
        fsm = evse.fsm
        if fsm.id_token is None or fsm.id_token != tx_token or fsm.transaction_id != transaction_id:
            return          # the session it was asked about is over: the answer only fed the cache
        verdict = decide_stop(request.id_token, tx_token=fsm.id_token, tx_group=evse.group_token,
                              presented_info=info, settings=self.service.settings, online=True, info_source="csms")
        if verdict == "stop" and is_master_pass(info, self.service.settings):
            self._master_pass(request.id_token, now)
        elif verdict == "stop":
            self.sessions.drive(evse_id, fsm.stop_authorized(request.id_token, now, utc), now)
        else:
            self.ctx.log("info", f"EVSE {evse_id}: {request.id_token.id_token} may not stop this session")

    def _master_pass(self, token: m.IdToken, now: float) -> None:
        """C16: a master pass stops every ongoing transaction (stoppedReason MasterPass)."""
        utc = self.ctx.utc(now)
        for evse_id, evse in self.ctx.evses.items():
            if evse.fsm.transaction_id is not None:
                self.sessions.drive(evse_id, evse.fsm.stop_authorized(token, now, utc, reason=m.Reason.MasterPass),
                                    now)


class _StartAnswer:
    """The answer to an AuthorizeRequest that decides whether a session may start."""

    __slots__ = ("block", "evse_id")

    def __init__(self, block: Authorization, evse_id: int) -> None:
        self.block, self.evse_id = block, evse_id

    def result(self, request, response, now: float) -> None:
        self.block.start_answered(self.evse_id, request, response, now)

    def failed(self, request, failure: Failure, now: float) -> None:
        self.block.start_failed(self.evse_id, request, now)


class _StopAnswer:
    """The answer to an AuthorizeRequest that decides whether a token may stop a session."""

    __slots__ = ("block", "evse_id", "transaction_id", "tx_token")

    def __init__(self, block: Authorization, evse_id: int, transaction_id: str | None,
                 tx_token: m.IdToken | None) -> None:
        self.block, self.evse_id, self.transaction_id, self.tx_token = block, evse_id, transaction_id, tx_token

    def result(self, request, response, now: float) -> None:
        self.block.stop_answered(self.evse_id, self.transaction_id, self.tx_token, request, response, now)

    def failed(self, request, failure: Failure, now: float) -> None:
        pass            # nobody stops the session without the CSMS's word


def _info_text(info: m.IdTokenInfo) -> str:
    parts = [f"status {info.status}"]
    if info.cache_expiry_date_time is not None:
        parts.append(f"valid until {info.cache_expiry_date_time.isoformat().replace('+00:00', 'Z')}")
    if info.group_id_token is not None:
        parts.append(f"group {info.group_id_token.id_token}")
    return ", ".join(parts)
