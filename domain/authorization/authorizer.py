"""Authorization decisions (OCPP 2.0.1 C01, C09, C10-C16, D01): pure functions over a
snapshot of the settings, the Local Authorization List and the Authorization Cache.

Starting (`decide_start`), in this order:
1. AuthCtrlr.Enabled false: no authorization, accepted ("auth_disabled").
2. What the station knows locally: the Local Authorization List first (when enabled),
   the cache only for tokens not in the list (C13.FR.01, C14.FR.01, TC_C_25). A cache
   entry past its cacheExpiryDateTime or LifeTime counts as not cached (see cache.py).
3. A locally known token of the Master Pass group never starts a transaction (C16.FR.03,
   TC_C_14, TC_C_45), whatever its status: rejected ("master_pass").
4. The local status is Accepted only if the token is valid for this EVSE: an
   IdTokenInfo.evseId list without the EVSE makes it NotAllowedTypeEVSE (the status the
   schema has for "not for this EVSE"); it is then handled like any non-Accepted status.
5. Online:
   - local Accepted: LocalPreAuthorize true -> accepted without asking (C12.FR.02/04,
     C14.FR.02, TC_C_08, TC_C_27); false -> ask the CSMS (C10.FR.11, TC_C_36).
   - local non-Accepted: ask the CSMS (C10.FR.03, C12.FR.05, C14.FR.03; TC_C_09..12,
     TC_C_28..31) unless DisablePostAuthorize of the list (LocalAuthListCtrlr) or of the
     cache (AuthCacheCtrlr), whichever knew it, is true: then rejected (TC_C_57, TC_C_58).
   - unknown: ask the CSMS (C01).
6. Offline (never "ask_csms"):
   - local Accepted: LocalAuthorizeOffline true -> accepted (C13.FR.02, TC_C_21); false ->
     accepted only as an unknown token would be (OfflineTxForUnknownIdEnabled), so that
     knowing a token is Accepted never makes it worse off than not knowing it.
   - local non-Accepted: rejected, even with OfflineTxForUnknownIdEnabled (TC_C_22..25),
     except status Unknown (below).
   - local Unknown: the CSMS said it does not know the token, which is what "unknown" means
     in C15, so it is decided as an unknown token (C15.FR.01/02, TC_C_26). The decision:
     an entry that says Unknown carries no verdict against the token (unlike Invalid, Blocked,
     Expired, NotAllowedTypeEVSE, NoCredit, which do and stay rejected: C12.FR.05 / C13.FR.02),
     and the operator who enabled OfflineTxForUnknownIdEnabled accepted the risk of an unknown
     token charging offline; the CSMS still decides on reconnect (StopTxOnInvalidId /
     MaxEnergyOnInvalidId). Online the entry is asked about as any non-Accepted one (C10.FR.03).
   - unknown: OfflineTxForUnknownIdEnabled -> accepted ("offline_unknown", C15.FR.02,
     TC_C_26), else rejected ("unknown").
Every start accepted without the CSMS's word is `provisional`: the idTokenInfo of the
TransactionEventResponse to the (possibly queued) Authorized event decides afterwards
(StopTxOnInvalidId / MaxEnergyOnInvalidId: TC_C_15..18, TC_C_26).

The CSMS's answer (`accept_csms_answer`): Accepted and valid for this EVSE and not of the
Master Pass group -> accepted; anything else rejected with the status. A
cacheExpiryDateTime in the past does not change the answer: it only keeps the token out
of the cache (errata 2025-01 note on C10.FR.13: "e.g. prepaid accounts").

Caching (`should_cache`): every status is cached (the test cases cache Invalid, Blocked
and Expired tokens through AuthorizeResponses: TC_C_09..11, TC_C_34), except when the
cache is disabled, when the token is in the Local Authorization List (the cache is only
for tokens the list does not know: C10.FR.04/05, C13.FR.01) or when cacheExpiryDateTime
is already past (C10.FR.13, errata 2025-01).

Stopping (`decide_stop`, C01.FR.03, C09, C16, TC_C_04, TC_C_39..44, TC_C_47..49): see there.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec

from domain import messages as m
from domain.authorization.cache import DEFAULT_LIFETIME_S, DEFAULT_MAX_BYTES, POLICIES, AuthCache
from domain.authorization.local_list import LocalAuthList
from domain.authorization.tokens import same_token
from domain.device_model import DeviceModel, VariableRef

Outcome = Literal["accepted", "rejected", "ask_csms"]
StopOutcome = Literal["stop", "refuse", "ask_csms"]
Source = Literal["auth_disabled", "remote_start", "local_list", "cache", "csms", "offline_unknown",
                 "master_pass", "unknown"]

DEFAULT_LOCAL_LIST_ENTRIES = 10000     # the definition maxLimit of LocalAuthListCtrlr.Entries

_ACCEPTED = m.AuthorizationStatus.Accepted


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """The device-model variables the authorization logic obeys (a snapshot)."""

    auth_enabled: bool = True                       # AuthCtrlr.Enabled
    authorize_remote_start: bool = False            # AuthCtrlr.AuthorizeRemoteStart
    local_pre_authorize: bool = False               # AuthCtrlr.LocalPreAuthorize
    local_authorize_offline: bool = True            # AuthCtrlr.LocalAuthorizeOffline
    master_pass_group_id: str | None = None         # AuthCtrlr.MasterPassGroupId (None: no master pass)
    offline_tx_for_unknown_id: bool = False         # AuthCtrlr.OfflineTxForUnknownIdEnabled
    cache_enabled: bool = True                      # AuthCacheCtrlr.Available and .Enabled
    cache_lifetime_s: int = DEFAULT_LIFETIME_S      # AuthCacheCtrlr.LifeTime
    cache_policy: str = "LRU"                       # AuthCacheCtrlr.Policy
    cache_max_bytes: int = DEFAULT_MAX_BYTES        # AuthCacheCtrlr.Storage maxLimit
    cache_disable_post_authorize: bool = False      # AuthCacheCtrlr.DisablePostAuthorize
    local_list_enabled: bool = False                # LocalAuthListCtrlr.Available and .Enabled
    local_list_max_entries: int = DEFAULT_LOCAL_LIST_ENTRIES   # LocalAuthListCtrlr.Entries maxLimit
    local_list_max_bytes: int | None = None         # LocalAuthListCtrlr.Storage maxLimit
    local_list_disable_post_authorize: bool = False  # LocalAuthListCtrlr.DisablePostAuthorize

    # (component, variable) of every variable read by from_device_model
    VARIABLES = (
        ("AuthCtrlr", "Enabled"), ("AuthCtrlr", "AuthorizeRemoteStart"), ("AuthCtrlr", "LocalPreAuthorize"),
        ("AuthCtrlr", "LocalAuthorizeOffline"), ("AuthCtrlr", "MasterPassGroupId"),
        ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"),
        ("AuthCacheCtrlr", "Available"), ("AuthCacheCtrlr", "Enabled"), ("AuthCacheCtrlr", "LifeTime"),
        ("AuthCacheCtrlr", "Policy"), ("AuthCacheCtrlr", "Storage"), ("AuthCacheCtrlr", "DisablePostAuthorize"),
        ("LocalAuthListCtrlr", "Available"), ("LocalAuthListCtrlr", "Enabled"), ("LocalAuthListCtrlr", "Entries"),
        ("LocalAuthListCtrlr", "Storage"), ("LocalAuthListCtrlr", "DisablePostAuthorize"),
    )

    @classmethod
    def from_device_model(cls, dm: DeviceModel) -> AuthSettings:
        """Read the variables; a variable the station does not define (or that has no value)
        takes the OCPP meaning of its absence: no AuthCacheCtrlr.Enabled / LocalAuthListCtrlr.Enabled
        means no cache / no list, no OfflineTxForUnknownIdEnabled means not supported, no
        MasterPassGroupId means no master pass; the others take the defaults above."""
        d = cls()

        def raw(comp: str, var: str) -> str | None:
            ref = VariableRef(comp, var)
            return dm.value(ref) if dm.definition(ref) is not None else None

        def flag(comp: str, var: str, default: bool) -> bool:
            v = raw(comp, var)
            return default if v is None or v == "" else v.strip().lower() == "true"

        def integer(comp: str, var: str, default: int) -> int:
            try:
                return int(raw(comp, var) or "")
            except ValueError:
                return default

        def max_limit(comp: str, var: str, default: int | None) -> int | None:
            definition = dm.definition(VariableRef(comp, var))
            if definition is None or definition.max_limit is None:
                return default
            return int(definition.max_limit)

        policy = (raw("AuthCacheCtrlr", "Policy") or d.cache_policy).strip().upper()
        group = (raw("AuthCtrlr", "MasterPassGroupId") or "").strip()
        return cls(
            auth_enabled=flag("AuthCtrlr", "Enabled", True),
            authorize_remote_start=flag("AuthCtrlr", "AuthorizeRemoteStart", d.authorize_remote_start),
            local_pre_authorize=flag("AuthCtrlr", "LocalPreAuthorize", d.local_pre_authorize),
            local_authorize_offline=flag("AuthCtrlr", "LocalAuthorizeOffline", d.local_authorize_offline),
            master_pass_group_id=group or None,
            offline_tx_for_unknown_id=flag("AuthCtrlr", "OfflineTxForUnknownIdEnabled", False),
            cache_enabled=flag("AuthCacheCtrlr", "Available", True) and flag("AuthCacheCtrlr", "Enabled", False),
            cache_lifetime_s=max(1, integer("AuthCacheCtrlr", "LifeTime", d.cache_lifetime_s)),
            cache_policy=policy if policy in POLICIES else d.cache_policy,
            cache_max_bytes=max_limit("AuthCacheCtrlr", "Storage", d.cache_max_bytes) or d.cache_max_bytes,
            cache_disable_post_authorize=flag("AuthCacheCtrlr", "DisablePostAuthorize", False),
            local_list_enabled=(flag("LocalAuthListCtrlr", "Available", True)
                                and flag("LocalAuthListCtrlr", "Enabled", False)),
            local_list_max_entries=max_limit("LocalAuthListCtrlr", "Entries", DEFAULT_LOCAL_LIST_ENTRIES)
            or DEFAULT_LOCAL_LIST_ENTRIES,
            local_list_max_bytes=max_limit("LocalAuthListCtrlr", "Storage", None) or None,
            local_list_disable_post_authorize=flag("LocalAuthListCtrlr", "DisablePostAuthorize", False),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a presented idToken.

    outcome   "accepted" (start / authorize), "rejected", or "ask_csms" (send an
              AuthorizeRequest, then `accept_csms_answer`).
    info      the IdTokenInfo the decision rests on (for an EVSE the token is not valid
              for: a copy with status NotAllowedTypeEVSE); None when nothing is known.
    source    where the decision comes from (see Source).
    reason    one line for the log.
    provisional  accepted without the CSMS's word (local list, cache, unknown offline):
              the idTokenInfo in the TransactionEventResponse decides afterwards.
    """

    outcome: Outcome
    info: m.IdTokenInfo | None
    source: str
    reason: str
    provisional: bool = False

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"


def is_master_pass(info: m.IdTokenInfo | None, settings: AuthSettings) -> bool:
    """The token belongs to the Master Pass group: its groupIdToken.idToken equals
    AuthCtrlr.MasterPassGroupId (case-insensitive; the group's type is not compared, the
    variable has none). Says nothing about the status (see decide_stop)."""
    g = settings.master_pass_group_id
    if not g or info is None or info.group_id_token is None:
        return False
    return info.group_id_token.id_token.casefold() == g.casefold()


def evse_allowed(info: m.IdTokenInfo, evse_id: int) -> bool:
    """IdTokenInfo.evseId restricts the token to those EVSEs; absent: every EVSE. An
    `evse_id` <= 0 means "not chosen yet": not checked (check again once it is)."""
    return info.evse_id is None or evse_id <= 0 or evse_id in info.evse_id


def effective_status(info: m.IdTokenInfo, evse_id: int) -> m.AuthorizationStatus:
    """The status for this EVSE: NotAllowedTypeEVSE for an Accepted token not valid here."""
    if info.status == _ACCEPTED and not evse_allowed(info, evse_id):
        return m.AuthorizationStatus.NotAllowedTypeEVSE
    return info.status


def _for_evse(info: m.IdTokenInfo, evse_id: int) -> m.IdTokenInfo:
    status = effective_status(info, evse_id)
    return info if status == info.status else msgspec.structs.replace(info, status=status)


def local_info(token: m.IdToken, *, now_utc: datetime, settings: AuthSettings,
               local_list: LocalAuthList | None, cache: AuthCache | None,
               ) -> tuple[m.IdTokenInfo, Literal["local_list", "cache"]] | None:
    """What the station knows about `token`: the list entry (list enabled) or else the
    cache entry (cache enabled, not expired); None when neither knows it."""
    if settings.local_list_enabled and local_list is not None:
        info = local_list.lookup(token)
        if info is not None:
            return info, "local_list"
    if settings.cache_enabled and cache is not None:
        hit = cache.lookup(token, now_utc, lifetime_s=settings.cache_lifetime_s)
        if hit is not None and not hit.expired:
            return hit.info, "cache"
    return None


def _post_authorize_disabled(source: str | None, settings: AuthSettings) -> bool:
    if source == "local_list":
        return settings.local_list_disable_post_authorize
    if source == "cache":
        return settings.cache_disable_post_authorize
    return False


def decide_start(token: m.IdToken, *, evse_id: int, online: bool, now_utc: datetime, settings: AuthSettings,
                 local_list: LocalAuthList | None, cache: AuthCache | None) -> Decision:
    """May `token`, presented at `evse_id`, start (authorize) a transaction? (module text)"""
    if not settings.auth_enabled:
        return Decision("accepted", None, "auth_disabled", "AuthCtrlr.Enabled is false: no authorization")
    known = local_info(token, now_utc=now_utc, settings=settings, local_list=local_list, cache=cache)
    where = "Local Authorization List" if known and known[1] == "local_list" else "Authorization Cache"
    if known is not None:
        info, source = known
        if is_master_pass(info, settings):
            return Decision("rejected", info, "master_pass",
                            f"in the {where} as a Master Pass token: it cannot start a transaction (C16.FR.03)")
        here = _for_evse(info, evse_id)
        if here.status == _ACCEPTED:
            if online:
                if settings.local_pre_authorize:
                    return Decision("accepted", here, source, f"Accepted in the {where} (LocalPreAuthorize)",
                                    provisional=True)
                return Decision("ask_csms", here, source,
                                f"Accepted in the {where}, but LocalPreAuthorize is false: asking the CSMS")
            if settings.local_authorize_offline:
                return Decision("accepted", here, source, f"offline, Accepted in the {where} (LocalAuthorizeOffline)",
                                provisional=True)
            if settings.offline_tx_for_unknown_id:
                return Decision("accepted", here, "offline_unknown",
                                f"offline, Accepted in the {where}; LocalAuthorizeOffline is false, "
                                "started as an unknown token (OfflineTxForUnknownIdEnabled)", provisional=True)
            return Decision("rejected", here, source,
                            f"offline, Accepted in the {where}, but LocalAuthorizeOffline is false")
        status = here.status
        evse_note = f" for EVSE {evse_id}" if status != info.status else ""
        if not online and status == m.AuthorizationStatus.Unknown and settings.offline_tx_for_unknown_id:
            return Decision("accepted", None, "offline_unknown",
                            f"offline, Unknown in the {where}: started as an unknown token "
                            "(OfflineTxForUnknownIdEnabled, C15.FR.02); the CSMS decides on reconnect",
                            provisional=True)
        if online and not _post_authorize_disabled(source, settings):
            return Decision("ask_csms", here, source, f"{status}{evse_note} in the {where}: asking the CSMS")
        why = "offline" if not online else "DisablePostAuthorize is true"
        return Decision("rejected", here, source, f"{status}{evse_note} in the {where} ({why})")
    if online:
        return Decision("ask_csms", None, "csms", "not in the local list or cache: asking the CSMS")
    if settings.offline_tx_for_unknown_id:
        return Decision("accepted", None, "offline_unknown",
                        "offline, unknown token: started (OfflineTxForUnknownIdEnabled); the CSMS decides on reconnect",
                        provisional=True)
    return Decision("rejected", None, "unknown", "offline and unknown (OfflineTxForUnknownIdEnabled is false)")


def decide_remote_start(token: m.IdToken, *, evse_id: int, online: bool, now_utc: datetime, settings: AuthSettings,
                        local_list: LocalAuthList | None, cache: AuthCache | None) -> Decision:
    """RequestStartTransaction: authorized like a local start only when
    AuthCtrlr.AuthorizeRemoteStart is true (C-48.1/C-48.2); otherwise accepted as is."""
    if not settings.authorize_remote_start:
        return Decision("accepted", None, "remote_start", "remote start, AuthorizeRemoteStart is false")
    return decide_start(token, evse_id=evse_id, online=online, now_utc=now_utc, settings=settings,
                        local_list=local_list, cache=cache)


def accept_csms_answer(info: m.IdTokenInfo, *, evse_id: int, now_utc: datetime,
                       settings: AuthSettings | None = None) -> Decision:
    """The CSMS's idTokenInfo (AuthorizeResponse): accepted when Accepted and valid for this
    EVSE and (given `settings`) not of the Master Pass group (C16.FR.03, TC_C_45).
    `now_utc` is not used: a past cacheExpiryDateTime only keeps the token out of the
    cache (see should_cache), it does not refuse the token."""
    if settings is not None and is_master_pass(info, settings):
        return Decision("rejected", info, "master_pass", "the CSMS says Master Pass: it cannot start a transaction")
    here = _for_evse(info, evse_id)
    if here.status == _ACCEPTED:
        return Decision("accepted", here, "csms", "Accepted by the CSMS")
    evse_note = f" for EVSE {evse_id}" if here.status != info.status else ""
    return Decision("rejected", here, "csms", f"the CSMS says {here.status}{evse_note}")


def should_cache(info: m.IdTokenInfo, settings: AuthSettings, *, now_utc: datetime | None = None,
                 in_local_list: bool = False) -> bool:
    """Store this idTokenInfo (AuthorizeResponse or TransactionEventResponse) in the cache?
    Every status is cached; not when the cache is disabled, the token is in the (enabled)
    Local Authorization List, or (given `now_utc`) its cacheExpiryDateTime is past."""
    if not settings.cache_enabled:
        return False
    if in_local_list and settings.local_list_enabled:
        return False
    x = info.cache_expiry_date_time
    return not (now_utc is not None and x is not None and now_utc > x)


def decide_stop(presented: m.IdToken, *, tx_token: m.IdToken, tx_group: m.IdToken | None,
                presented_info: m.IdTokenInfo | None, settings: AuthSettings, online: bool = True,
                info_source: str | None = None) -> StopOutcome:
    """May `presented` end the authorization of the transaction started with `tx_token`
    (group `tx_group`)?

    - The same token (C01.FR.25 equality) stops at once, without asking (C01.FR.03, E07).
    - `presented_info` is what is known of the presented token: from the list or cache
      (`info_source` "local_list" / "cache"), or the CSMS's AuthorizeResponse ("csms").
      With status Accepted it stops the transaction when it is of the Master Pass group
      (C16.FR.02/07: the caller stops every transaction, stoppedReason MasterPass, see
      `stopped_reason`) or has the transaction's groupIdToken (C09.FR.03/07, TC_C_39..41).
    - Otherwise: the CSMS's answer, or a local Accepted entry of another group, refuses
      (TC_C_04, TC_C_42). A local non-Accepted entry asks the CSMS when online (TC_C_43,
      TC_C_44), unless DisablePostAuthorize of its source is true. An unknown token asks
      the CSMS when online (its group is learnt from the AuthorizeResponse).
    - An unknown token is always asked about when online (TC_C_04: the station cannot know
      its group, and the answer also feeds the cache); a known non-Accepted one only when an
      answer could allow the stop (a group or a Master Pass group exists). Offline, nothing
      is asked: refuse.
    """
    if same_token(presented, tx_token):
        return "stop"
    could_stop = tx_group is not None or bool(settings.master_pass_group_id)
    if presented_info is not None:
        if presented_info.status == _ACCEPTED:
            if is_master_pass(presented_info, settings):
                return "stop"
            if same_token(presented_info.group_id_token, tx_group):
                return "stop"
            return "refuse"
        if info_source == "csms":
            return "refuse"
        if online and could_stop and not _post_authorize_disabled(info_source, settings):
            return "ask_csms"
        return "refuse"
    return "ask_csms" if online else "refuse"


def stopped_reason(presented_info: m.IdTokenInfo | None, settings: AuthSettings) -> m.Reason:
    """transactionInfo.stoppedReason of a transaction a presented token stopped: MasterPass
    for a Master Pass token (C16.FR.07 as added by the 2025-01 errata), else Local."""
    return m.Reason.MasterPass if is_master_pass(presented_info, settings) else m.Reason.Local
