"""The station's authorization service: who may charge, from the local list, the cache
or the CSMS (OCPP 2.0.1 C01-C16, D01-D04), and the messages that manage them.

Pure: the station feeds presented tokens and the CSMS's answers in, with the time
(UTC from the station clock), and gets back what to do (send an AuthorizeRequest,
a token accepted or rejected for an EVSE) plus the storage changes to make.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain import messages as m
from domain.authorization.authorizer import (
    AuthSettings,
    Decision,
    accept_csms_answer,
    decide_start,
    should_cache,
)
from domain.authorization.cache import TABLE as CACHE_TABLE, AuthCache
from domain.authorization.local_list import TABLE as LIST_TABLE, LocalAuthList
from domain.device_model import DeviceModel, VariableRef
from domain.device_model.reports import check_request_limits
from domain.effects import StoreRecords

__all__ = ["CACHE_TABLE", "LIST_TABLE", "AuthorizationService", "AuthorizeCall", "TokenAccepted", "TokenRejected"]


@dataclass(frozen=True, slots=True)
class AuthorizeCall:
    """Send this AuthorizeRequest; its answer goes to `csms_answer` (no answer: `present`
    again, offline)."""

    request: m.AuthorizeRequest
    evse_id: int


@dataclass(frozen=True, slots=True)
class TokenAccepted:
    evse_id: int
    token: m.IdToken
    decision: Decision


@dataclass(frozen=True, slots=True)
class TokenRejected:
    evse_id: int
    token: m.IdToken
    decision: Decision


Outcome = AuthorizeCall | TokenAccepted | TokenRejected


class AuthorizationService:
    def __init__(self, dm: DeviceModel, *, cache_records: dict[str, str] | None = None,
                 list_records: dict[str, str] | None = None, list_version: int = 0) -> None:
        self.dm = dm
        self.cache = AuthCache(cache_records or {})
        self.local_list = LocalAuthList(list_records or {}, list_version)
        self._settings: AuthSettings | None = None
        self._changes: list[StoreRecords] = []
        for comp, var in AuthSettings.VARIABLES:
            if dm.definition(VariableRef(comp, var)) is not None:
                dm.subscribe(VariableRef(comp, var), self._settings_changed)
        self._publish_sizes()

    # --- settings -------------------------------------------------------------------------
    @property
    def settings(self) -> AuthSettings:
        if self._settings is None:
            self._settings = AuthSettings.from_device_model(self.dm)
        return self._settings

    def _settings_changed(self, _ref: VariableRef, _value: str) -> None:
        self._settings = None

    # --- tokens ----------------------------------------------------------------------------
    def present(self, token: m.IdToken, evse_id: int, *, online: bool, utc: datetime) -> Outcome:
        """A token at the reader for `evse_id` (chosen before authorization: AQ-8)."""
        s = self.settings
        d = decide_start(token, evse_id=evse_id, online=online, now_utc=utc, settings=s,
                         local_list=self.local_list if s.local_list_enabled else None,
                         cache=self.cache if s.cache_enabled else None)
        if d.source == "cache" and d.outcome != "ask_csms":
            self.cache.touch(token, utc, lifetime_s=s.cache_lifetime_s)
            self._collect()
        if d.outcome == "ask_csms":
            return AuthorizeCall(m.AuthorizeRequest(id_token=token), evse_id)
        return (TokenAccepted if d.accepted else TokenRejected)(evse_id, token, d)

    def csms_answer(self, request: m.AuthorizeRequest, response: m.AuthorizeResponse, evse_id: int,
                    utc: datetime) -> Outcome:
        """The CSMS's AuthorizeResponse to the question asked for `evse_id`: accept or reject
        (the caller has let the cache learn it: `learn`)."""
        d = accept_csms_answer(response.id_token_info, evse_id=evse_id, now_utc=utc, settings=self.settings)
        return (TokenAccepted if d.accepted else TokenRejected)(evse_id, request.id_token, d)

    def learn(self, token: m.IdToken, info: m.IdTokenInfo, utc: datetime) -> None:
        """An IdTokenInfo from the CSMS (AuthorizeResponse, TransactionEventResponse) updates
        the cache (C10.FR.04/05), unless the token is in the local list (C13, D01)."""
        s = self.settings
        in_list = s.local_list_enabled and self.local_list.lookup(token) is not None
        if s.cache_enabled and should_cache(info, s, now_utc=utc, in_local_list=in_list):
            self.cache.update(token, info, utc, lifetime_s=s.cache_lifetime_s, policy=s.cache_policy,
                              max_bytes=s.cache_max_bytes)
            self._collect()

    # --- CSMS requests -------------------------------------------------------------------
    def clear_cache(self) -> m.ClearCacheResponse:
        """C11: Rejected when the cache is disabled."""
        if not self.settings.cache_enabled:
            return m.ClearCacheResponse(status=m.ClearCacheStatus.Rejected,
                                        status_info=m.StatusInfo(reason_code="NotEnabled"))
        self.cache.clear()
        self._collect()
        return m.ClearCacheResponse(status=m.ClearCacheStatus.Accepted)

    def send_local_list(self, req: m.SendLocalListRequest, frame_bytes: int):
        """D01/D02; the request limits of LocalAuthListCtrlr give the CALLERRORs of B06.FR.16/17."""
        limit = check_request_limits(
            len(req.local_authorization_list or ()), frame_bytes,
            items_limit=self._int("ItemsPerMessage"), bytes_limit=self._int("BytesPerMessage"))
        if limit is not None:
            return limit
        s = self.settings
        if not s.local_list_enabled:
            return m.SendLocalListResponse(status=m.SendLocalListStatus.Failed,
                                           status_info=m.StatusInfo(reason_code="NotEnabled"))
        status, change = self.local_list.apply(req, max_entries=s.local_list_max_entries,
                                               max_bytes=s.local_list_max_bytes)
        if change is not None:
            self._changes.append(change)
            # C13/D01: what the list now decides is no longer the cache's business.
            for d in req.local_authorization_list or ():
                self.cache.discard(d.id_token)
            self._collect()
            self._publish_sizes()
        return m.SendLocalListResponse(status=status)

    def local_list_version(self) -> m.GetLocalListVersionResponse:
        """D02: 0 when there is no list (disabled or never sent)."""
        v = self.local_list.version if self.settings.local_list_enabled else 0
        return m.GetLocalListVersionResponse(version_number=v)

    def take_changes(self) -> list[StoreRecords]:
        self._collect()
        out, self._changes = self._changes, []
        return out

    # --- helpers -----------------------------------------------------------------------------
    def _collect(self) -> None:
        change = self.cache.take_changes()
        if change is not None:
            self._changes.append(change)
            self._publish_sizes()

    def _int(self, variable: str) -> int:
        ref = VariableRef("LocalAuthListCtrlr", variable)
        v = self.dm.value(ref) if self.dm.definition(ref) is not None else None
        return int(v) if v else 0

    def _publish_sizes(self) -> None:
        """AuthCacheCtrlr.Storage, LocalAuthListCtrlr.Entries / Storage: the actual use."""
        for comp, var, value in (("AuthCacheCtrlr", "Storage", self.cache.size_bytes()),
                                 ("LocalAuthListCtrlr", "Entries", len(self.local_list)),
                                 ("LocalAuthListCtrlr", "Storage", self.local_list.size_bytes())):
            ref = VariableRef(comp, var)
            if self.dm.definition(ref) is not None:
                self.dm.write(ref, str(value))
