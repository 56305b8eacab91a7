"""The installed charging profiles (OCPP 2.0.1 K01 SetChargingProfile, K09 GetChargingProfiles,
K10 ClearChargingProfile; TxProfiles end with their transaction; durable form for K01.FR.27).

Pure: no clock, no I/O. A profile is kept as the `m.ChargingProfile` the CSMS sent, with the
EVSE it is installed on (0: the station; a TxDefaultProfile on 0 applies to every EVSE) and its
ChargingLimitSource (CSO for the CSMS's; an external system's ChargingStationExternalConstraints
carry theirs).

`ProfileStore.install` checks, in this order, and answers the first failure with Rejected and
a StatusInfo (reasonCode from Part 2 Appendix 5, additionalInfo naming the field); a rejected
profile changes nothing:

| check | reasonCode | requirement |
|---|---|---|
| evseId not 0 and not an EVSE of the station | UnknownEvse | K01.FR.28 (TC_K_14) |
| ChargingStationExternalConstraints from the CSMS (source CSO) | InvalidValue | K01 (only external systems set it) |
| ChargingStationMaxProfile on an EVSE > 0 | InvalidValue | K01.FR.38 (TC_K_03: EVSE 0) |
| TxProfile on EVSE 0 | InvalidValue | K01.FR.16 (TC_K_11) |
| TxProfile without transactionId | MissingParam | K01.FR.03 |
| TxProfile, no transaction on the EVSE / another transaction | TxNotFound | K01.FR.09 (TC_K_02), K01.FR.33 (TC_K_16) |
| transactionId on another purpose | InvalidValue | ChargingProfileType: "SHALL only be included if TxProfile" |
| stackLevel < 0 or > SmartChargingCtrlr.ProfileStackLevel | InvalidStackLevel | ProfileStackLevel |
| validTo not after validFrom | InvalidProfile | K01.FR.36/37 |
| Recurring without recurrencyKind; Relative ChargingStationMaxProfile (no transaction to be relative to) | InvalidProfile | K01 |
| more than one chargingSchedule (only ISO 15118 offers several) | InvalidSchedule | K01 |
| chargingRateUnit not in SmartChargingCtrlr.RateUnit | UnsupportedRateUnit | K01.FR.26 (TC_K_12) |
| Absolute/Recurring without startSchedule; Relative with one | InvalidSchedule | K01.FR.40, K01.FR.41 |
| negative duration or minChargingRate | InvalidSchedule | K01 |
| more periods than SmartChargingCtrlr.PeriodsPerSchedule | TooManyElements | PeriodsPerSchedule |
| first startPeriod not 0; startPeriods not strictly ascending | InvalidSchedule | K01.FR.31, K01.FR.35 |
| negative limit | InvalidSchedule | K01 |
| numberPhases/phaseToUse on DC; numberPhases not 1..supply phases | InvalidSchedule | K01.FR.44, K01.FR.45 |
| phaseToUse unless numberPhases = 1 and ACPhaseSwitchingSupported; not 1..3 | InvalidSchedule | K01.FR.19, K01.FR.20 |
| the id belongs to a ChargingStationExternalConstraints profile | DuplicateProfile | K01.FR.05 (its exception) |
| TxDefaultProfile with the stackLevel of one with another id on 0 vs an EVSE | DuplicateProfile | K01.FR.52, K01.FR.53 |
| another id with the same purpose, EVSE, stackLevel (and transaction for TxProfile) and an overlapping validity period | DuplicateProfile | Appendix 5 DuplicateProfile (K01.FR.06) |
| installed profiles would exceed SmartChargingCtrlr.Entries maxLimit | OutOfStorage | Entries[ChargingProfiles] |

Accepted: a profile with the same id (wherever installed) is replaced (K01.FR.05, TC_K_04),
otherwise the profile is added; the TxDefaultProfile on EVSE 0 applies to each EVSE
(K01.FR.14), one on an EVSE to that EVSE (K01.FR.15). Lenient (costs nothing in safety):
recurrencyKind on a non-Recurring profile is ignored; limits with more than one decimal are
taken as sent. A chargingProfile of RequestStartTransaction (K05) is installed by the block once
the transaction exists, with its transactionId set.

`clear` (K10): by chargingProfileId (the criteria are then not used, K10.FR.03), else by every
criterion given (evseId, purpose, stackLevel; none: all, K10.FR.04); Accepted when something
was removed, Unknown otherwise (K10.FR.01). ChargingStationExternalConstraints are the external
system's and never cleared by the CSMS.

`report` (K09): the profiles matching GetChargingProfilesRequest (evseId absent: all, K09.FR.06;
0: the station's only, K09.FR.05; n: EVSE n's, K09.FR.04; every criterion given must hold,
K09.FR.01/02), grouped by (EVSE, source) because a ReportChargingProfilesRequest carries one of
each; `report_pages` splits them into messages, tbc on all but the last.

Durable form (K01.FR.27, TC_K_13): table "charging_profiles", one record per profile, key the
profile id (restored in id order), value {"evseId", "chargingLimitSource", "chargingProfile"} as
JSON; `take_change` returns what changed since the last call as one `StoreRecords`.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import msgspec

from domain import messages as m
from domain.effects import StoreRecords

TABLE = "charging_profiles"

Purpose = m.ChargingProfilePurpose
Kind = m.ChargingProfileKind
Rejected = m.ChargingProfileStatus.Rejected
Accepted = m.ChargingProfileStatus.Accepted
CSO = m.ChargingLimitSource.CSO


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """What the station accepts (SmartChargingCtrlr variables and the hardware)."""

    evse_count: int                     # EVSEs 1..evse_count exist
    stack_level_max: int                # SmartChargingCtrlr.ProfileStackLevel
    periods_max: int                    # SmartChargingCtrlr.PeriodsPerSchedule
    entries_max: int                    # SmartChargingCtrlr.Entries maxLimit
    rate_units: frozenset[m.ChargingRateUnit] = frozenset(m.ChargingRateUnit)  # SmartChargingCtrlr.RateUnit
    supply_phases: int = 3              # phases of the supply; 0: DC
    phase_switching: bool = False       # SmartChargingCtrlr.ACPhaseSwitchingSupported


@dataclass(frozen=True, slots=True)
class Installed:
    """An installed profile: where, from whom, what."""

    evse_id: int
    profile: m.ChargingProfile
    source: m.ChargingLimitSource = CSO


class ReportGroup(NamedTuple):
    """The profiles of one ReportChargingProfilesRequest's evseId and chargingLimitSource."""

    evse_id: int
    source: m.ChargingLimitSource
    profiles: list[m.ChargingProfile]


class _Record(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    evse_id: int
    charging_limit_source: m.ChargingLimitSource
    charging_profile: m.ChargingProfile


_record_decoder = msgspec.json.Decoder(_Record)
_encode = msgspec.json.encode


def _no(code: str, info: str) -> m.StatusInfo:
    return m.StatusInfo(reason_code=code, additional_info=info)


def _key(profile_id: int) -> str:
    return str(profile_id)


def _text(item: Installed) -> str:
    return _encode(_Record(evse_id=item.evse_id, charging_limit_source=item.source,
                           charging_profile=item.profile)).decode()


# ---------------------------------------------------------------- K01 checks (no store needed)
def _check_target(evse_id: int, p: m.ChargingProfile, limits: StoreLimits,
                  source: m.ChargingLimitSource) -> m.StatusInfo | None:
    """K01.FR.28, K01.FR.38, K01.FR.16; ChargingStationExternalConstraints not from the CSMS."""
    if not 0 <= evse_id <= limits.evse_count:
        return _no("UnknownEvse", f"evseId: no EVSE {evse_id}")
    purpose = p.charging_profile_purpose
    if purpose == Purpose.ChargingStationExternalConstraints and source == CSO:
        return _no("InvalidValue", "chargingProfilePurpose: ChargingStationExternalConstraints is set "
                                   "by external systems only")
    if purpose == Purpose.ChargingStationMaxProfile and evse_id != 0:
        return _no("InvalidValue", "evseId: a ChargingStationMaxProfile is installed on EVSE 0 only")
    if purpose == Purpose.TxProfile and evse_id == 0:
        return _no("InvalidValue", "evseId: a TxProfile needs the EVSE of its transaction, not 0")
    return None


def _check_transaction(evse_id: int, p: m.ChargingProfile,
                       running: str | None) -> m.StatusInfo | None:
    """K01.FR.03, K01.FR.09, K01.FR.33: a TxProfile belongs to the EVSE's running transaction."""
    if p.charging_profile_purpose != Purpose.TxProfile:
        if p.transaction_id is not None:
            return _no("InvalidValue", "transactionId: only a TxProfile has one")
        return None
    if p.transaction_id is None:
        return _no("MissingParam", "transactionId: a TxProfile needs one")
    if running is None:
        return _no("TxNotFound", f"transactionId: no transaction on EVSE {evse_id}")
    if p.transaction_id != running:
        return _no("TxNotFound", f"transactionId: not the transaction on EVSE {evse_id}")
    return None


def _check_profile(p: m.ChargingProfile, limits: StoreLimits) -> m.StatusInfo | None:
    """stackLevel within ProfileStackLevel; validFrom before validTo; kind rules."""
    if not 0 <= p.stack_level <= limits.stack_level_max:
        return _no("InvalidStackLevel", f"stackLevel: {p.stack_level} not in 0..{limits.stack_level_max}")
    if p.valid_from is not None and p.valid_to is not None and p.valid_to <= p.valid_from:
        return _no("InvalidProfile", "validTo: not after validFrom")
    if p.charging_profile_kind == Kind.Recurring and p.recurrency_kind is None:
        return _no("InvalidProfile", "recurrencyKind: a Recurring profile needs one")
    if (p.charging_profile_kind == Kind.Relative
            and p.charging_profile_purpose == Purpose.ChargingStationMaxProfile):
        return _no("InvalidProfile", "chargingProfileKind: a ChargingStationMaxProfile cannot be "
                                     "Relative (no transaction to start from)")
    if len(p.charging_schedule) > 1:
        return _no("InvalidSchedule", "chargingSchedule: one schedule only (several are for ISO 15118)")
    return None


def _check_schedule(p: m.ChargingProfile, s: m.ChargingSchedule,
                    limits: StoreLimits) -> m.StatusInfo | None:
    """K01.FR.26, K01.FR.40, K01.FR.41, PeriodsPerSchedule, K01.FR.31, K01.FR.35."""
    where = "chargingSchedule[0]"
    if s.charging_rate_unit not in limits.rate_units:
        return _no("UnsupportedRateUnit", f"{where}.chargingRateUnit: {s.charging_rate_unit} not supported")
    relative = p.charging_profile_kind == Kind.Relative
    if relative and s.start_schedule is not None:
        return _no("InvalidSchedule", f"{where}.startSchedule: a Relative profile has none")
    if not relative and s.start_schedule is None:
        return _no("InvalidSchedule", f"{where}.startSchedule: required for {p.charging_profile_kind}")
    if s.duration is not None and s.duration < 0:
        return _no("InvalidSchedule", f"{where}.duration: negative")
    if s.min_charging_rate is not None and s.min_charging_rate < 0:
        return _no("InvalidSchedule", f"{where}.minChargingRate: negative")
    periods = s.charging_schedule_period
    if len(periods) > limits.periods_max:
        return _no("TooManyElements", f"{where}.chargingSchedulePeriod: more than PeriodsPerSchedule "
                                      f"({limits.periods_max})")
    if periods[0].start_period != 0:
        return _no("InvalidSchedule", f"{where}.chargingSchedulePeriod[0].startPeriod: must be 0")
    for i in range(1, len(periods)):
        if periods[i].start_period <= periods[i - 1].start_period:
            return _no("InvalidSchedule", f"{where}.chargingSchedulePeriod[{i}].startPeriod: not after "
                                          "the one before")
    for i, period in enumerate(periods):
        problem = _check_period(period, limits)
        if problem is not None:
            return _no("InvalidSchedule", f"{where}.chargingSchedulePeriod[{i}].{problem}")
    return None


def _check_period(period: m.ChargingSchedulePeriod, limits: StoreLimits) -> str | None:
    """K01.FR.44, K01.FR.45, K01.FR.19, K01.FR.20: what is wrong with the period, or None."""
    if period.limit < 0:
        return "limit: negative"
    n, use = period.number_phases, period.phase_to_use
    if limits.supply_phases == 0 and (n is not None or use is not None):
        return "numberPhases: not for DC"
    if n is not None and not 1 <= n <= limits.supply_phases:
        return f"numberPhases: {n} not in 1..{limits.supply_phases}"
    if use is not None:
        if n != 1:
            return "phaseToUse: only with numberPhases 1"
        if not limits.phase_switching:
            return "phaseToUse: the EVSE cannot switch phases (ACPhaseSwitchingSupported)"
        if not 1 <= use <= 3:
            return f"phaseToUse: {use} not in 1..3"
    return None


def check(evse_id: int, profile: m.ChargingProfile, limits: StoreLimits,
          source: m.ChargingLimitSource = CSO) -> m.StatusInfo | None:
    """The K01 checks that need neither the installed profiles nor a transaction (target,
    stackLevel, kind, schedule): for a RequestStartTransaction's chargingProfile (K05), checked
    before its transaction exists; None: no objection."""
    return (_check_target(evse_id, profile, limits, source)
            or _check_profile(profile, limits)
            or _check_schedule(profile, profile.charging_schedule[0], limits))


def _overlap(a: m.ChargingProfile, b: m.ChargingProfile) -> bool:
    """Whether the validity periods [validFrom, validTo) of two profiles overlap."""
    a_from, a_to, b_from, b_to = a.valid_from, a.valid_to, b.valid_from, b.valid_to
    return ((a_from is None or b_to is None or a_from < b_to)
            and (b_from is None or a_to is None or b_from < a_to))


# ---------------------------------------------------------------- the store
class ProfileStore:
    """The charging profiles installed on the station, by id (ids are station-wide)."""

    def __init__(self) -> None:
        self._items: dict[int, Installed] = {}
        self._dirty: dict[str, str | None] = {}          # key -> new text, None: deleted

    # -------------------------------------------------------------- durable form
    @classmethod
    def restore(cls, records: Mapping[str, str]) -> ProfileStore:
        """The store from its records (K01.FR.27); unreadable records are left out."""
        store = cls()
        items: list[tuple[int, Installed]] = []
        for key, text in records.items():
            try:
                r = _record_decoder.decode(text)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            if _key(r.charging_profile.id) == key:
                items.append((r.charging_profile.id, Installed(r.evse_id, r.charging_profile,
                                                               r.charging_limit_source)))
        store._items = dict(sorted(items, key=lambda kv: kv[0]))
        return store

    def records(self) -> dict[str, str]:
        """The records storage holds for the store (one per profile, key its id)."""
        return {_key(i): _text(item) for i, item in self._items.items()}

    def take_change(self) -> StoreRecords | None:
        """What changed since the last call, as one atomic change of the table (or None)."""
        if not self._dirty:
            return None
        upserts = {k: t for k, t in self._dirty.items() if t is not None}
        deletes = tuple(k for k, t in self._dirty.items() if t is None)
        self._dirty = {}
        return StoreRecords(TABLE, upserts=upserts, deletes=deletes)

    # -------------------------------------------------------------- reading
    def __len__(self) -> int:
        """Installed profiles (SmartChargingCtrlr.Entries)."""
        return len(self._items)

    def installed(self) -> Iterator[Installed]:
        """Every installed profile, in id order of restore / installation order."""
        return iter(self._items.values())

    def get(self, profile_id: int) -> Installed | None:
        return self._items.get(profile_id)

    # -------------------------------------------------------------- K01
    def install(self, evse_id: int, profile: m.ChargingProfile, *, transaction_id_of_evse: str | None,
                limits: StoreLimits, source: m.ChargingLimitSource = CSO,
                ) -> tuple[m.ChargingProfileStatus, m.StatusInfo | None]:
        """SetChargingProfile (K01): check `profile` for EVSE `evse_id` (whose running transaction
        is `transaction_id_of_evse`) and install it; (Accepted, None) or (Rejected, why)."""
        problem = (_check_target(evse_id, profile, limits, source)
                   or _check_transaction(evse_id, profile, transaction_id_of_evse)
                   or check(evse_id, profile, limits, source)
                   or self._check_duplicates(evse_id, profile, source)
                   or self._check_room(profile, limits))
        if problem is not None:
            return Rejected, problem
        self._put(Installed(evse_id, profile, source))
        return Accepted, None

    def _others(self, profile_id: int) -> Iterator[Installed]:
        return (item for i, item in self._items.items() if i != profile_id)

    def _check_duplicates(self, evse_id: int, p: m.ChargingProfile,
                          source: m.ChargingLimitSource) -> m.StatusInfo | None:
        """K01.FR.05's exception, K01.FR.52/53, DuplicateProfile (same purpose, EVSE, stackLevel,
        transaction, overlapping validity)."""
        same_id = self._items.get(p.id)
        if (same_id is not None and same_id.source != source
                and same_id.profile.charging_profile_purpose == Purpose.ChargingStationExternalConstraints):
            return _no("DuplicateProfile", f"id: {p.id} is a ChargingStationExternalConstraints profile")
        purpose = p.charging_profile_purpose
        for other in self._others(p.id):
            q = other.profile
            if q.charging_profile_purpose != purpose or q.stack_level != p.stack_level:
                continue
            if purpose == Purpose.TxDefaultProfile and (evse_id == 0) != (other.evse_id == 0):
                return _no("DuplicateProfile", f"stackLevel: TxDefaultProfile {q.id} on EVSE {other.evse_id} "
                                               "has this stackLevel")
            if other.evse_id != evse_id or q.transaction_id != p.transaction_id:
                continue
            if _overlap(p, q):
                return _no("DuplicateProfile", f"stackLevel: profile {q.id} has this purpose and stackLevel "
                                               "with an overlapping validity period")
        return None

    def _check_room(self, p: m.ChargingProfile, limits: StoreLimits) -> m.StatusInfo | None:
        """SmartChargingCtrlr.Entries maxLimit: a replaced profile makes room for its successor."""
        count = len(self._items) + (0 if p.id in self._items else 1)
        if count > limits.entries_max:
            return _no("OutOfStorage", f"chargingProfile: the station holds at most {limits.entries_max} profiles")
        return None

    def _put(self, item: Installed) -> None:
        self._items.pop(item.profile.id, None)
        self._items[item.profile.id] = item
        self._dirty[_key(item.profile.id)] = _text(item)

    def _remove(self, ids: Iterable[int]) -> list[int]:
        removed = []
        for i in ids:
            if self._items.pop(i, None) is not None:
                self._dirty[_key(i)] = None
                removed.append(i)
        return removed

    # -------------------------------------------------------------- K10, transactions
    def clear(self, request: m.ClearChargingProfileRequest) -> m.ClearChargingProfileStatus:
        """ClearChargingProfile (K10): Accepted when a profile was removed, else Unknown."""
        if request.charging_profile_id is not None:
            hits = [request.charging_profile_id]
        else:
            hits = [i for i, item in self._items.items() if _clear_matches(item, request.charging_profile_criteria)]
        hits = [i for i in hits if i in self._items
                and self._items[i].profile.charging_profile_purpose != Purpose.ChargingStationExternalConstraints]
        if not self._remove(hits):
            return m.ClearChargingProfileStatus.Unknown
        return m.ClearChargingProfileStatus.Accepted

    def transaction_ended(self, evse_id: int, transaction_id: str) -> list[int]:
        """The TxProfiles of that transaction are removed; their ids."""
        return self._remove([i for i, item in self._items.items()
                             if item.evse_id == evse_id and item.profile.transaction_id == transaction_id
                             and item.profile.charging_profile_purpose == Purpose.TxProfile])

    # -------------------------------------------------------------- K09
    def report(self, request: m.GetChargingProfilesRequest, also: Iterable[Installed] = ()) -> list[ReportGroup]:
        """The profiles GetChargingProfilesRequest asks for, by (EVSE, source); [] : NoProfiles.
        `also`: profiles that are not stored here but are reported like them (the external
        limits as ChargingStationExternalConstraints, K12.FR.05)."""
        groups: dict[tuple[int, m.ChargingLimitSource], list[m.ChargingProfile]] = {}
        for item in sorted((*self._items.values(), *also), key=lambda it: (it.evse_id, it.profile.id)):
            if request.evse_id is not None and item.evse_id != request.evse_id:
                continue
            if _report_matches(item, request.charging_profile):
                groups.setdefault((item.evse_id, item.source), []).append(item.profile)
        return [ReportGroup(e, s, ps) for (e, s), ps in groups.items()]


def _clear_matches(item: Installed, c: m.ClearChargingProfile | None) -> bool:
    if c is None:
        return True
    return ((c.evse_id is None or c.evse_id == item.evse_id)
            and (c.charging_profile_purpose is None
                 or c.charging_profile_purpose == item.profile.charging_profile_purpose)
            and (c.stack_level is None or c.stack_level == item.profile.stack_level))


def _report_matches(item: Installed, c: m.ChargingProfileCriterion) -> bool:
    p = item.profile
    return ((c.charging_profile_id is None or p.id in c.charging_profile_id)
            and (c.charging_profile_purpose is None or c.charging_profile_purpose == p.charging_profile_purpose)
            and (c.stack_level is None or c.stack_level == p.stack_level)
            and (c.charging_limit_source is None or item.source in c.charging_limit_source))


def report_pages(request_id: int, groups: Iterable[ReportGroup],
                 per_message: int) -> list[m.ReportChargingProfilesRequest]:
    """ReportChargingProfilesRequests of at most `per_message` profiles each, one (EVSE, source)
    per message; tbc true on all but the last (K09)."""
    if per_message < 1:
        raise ValueError("per_message: at least 1")
    pages = [m.ReportChargingProfilesRequest(request_id=request_id, charging_limit_source=g.source,
                                             evse_id=g.evse_id, charging_profile=g.profiles[i:i + per_message],
                                             tbc=True)
             for g in groups for i in range(0, len(g.profiles), per_message)]
    if pages:
        pages[-1] = msgspec.structs.replace(pages[-1], tbc=False)
    return pages

