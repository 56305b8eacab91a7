"""Block K Smart charging: the CSMS's charging profiles and the limit they put on the EVSEs.

- SetChargingProfile (K01): checked and installed by the `ProfileStore` (a TxProfile against the
  EVSE's running transaction), answered with its status and statusInfo; Rejected with reasonCode
  NotEnabled while SmartChargingCtrlr.Enabled is false. ClearChargingProfile (K10).
  GetChargingProfiles (K09): the answer, then the ReportChargingProfilesRequests (at most
  PROFILES_PER_REPORT profiles each) as replies the CSMS asked for, sent again when lost.
  GetCompositeSchedule (K08): `composite_schedule` of the EVSE (0: the grid connection) from now
  over `duration`, in the requested unit (default A); Rejected for an unknown EVSE (UnknownEvse),
  a unit not in SmartChargingCtrlr.RateUnit (UnsupportedRateUnit) or a duration longer than
  COMPOSITE_MAX_S, a week (ValueTooHigh: the work and the answer grow with it).
- Durable (K01.FR.27, TC_K_13): table "charging_profiles", restored at construction; `flush`
  puts the change into the effects before the answer goes out. SmartChargingCtrlr
  Entries[ChargingProfiles] follows the count.
- Transactions: the transactions block tells the block when one starts or ends on an EVSE
  (`transaction_started` / `transaction_ended`, from its Started / Ended TransactionEvents);
  an ended transaction takes its TxProfiles with it. At start-up (transactions do not survive
  a restart) the TxProfiles of transactions no longer running go.
- RequestStartTransaction's chargingProfile (K05, F01.FR.08..11, TC_K_37): the remote control
  block checks it (`check_for_start`: a TxProfile without transactionId, else Rejected) and
  leaves it on the EVSE (`Evse.charging_profile`); it is installed with the transactionId when
  the transaction starts (`transaction_started`) and dropped when the remote start ends
  without one. Not stored: the remote start it belongs to does not survive a restart either
  (the authorization is dropped at start-up), so after a reboot it would limit nobody.
  Ignored while SmartChargingCtrlr.Enabled is false (F01.FR.12's behaviour).
- The limit applied: `Evse.limit_a` is the composite schedule's limit now, in A per phase on
  the EVSE's supply phases (a limit counted on fewer phases is spread over all of them: the
  controller cannot hold the EV to fewer phases), None when it does not go below the EVSE's
  own maximum (EVSE.Power maxLimit) or nothing limits (no profile, smart charging disabled).
  It is computed again after every change (install, clear, a transaction starting or ending,
  Enabled) and at the next period boundary (`next_deadline`); the transactions block asks for
  it (`refresh`) before it closes the power path, so the first offer already carries it. A
  changed limit while the power path is closed is a new EnergyOffer (`_offer_limit`), which the
  runtime turns into set_offered_current.
- External limits (K11-K13): `ExternalLimitChanged` (an energy manager or grid signal, from
  the hardware adapter) sets or removes the limit of one source on an EVSE (0: every EVSE); the
  limits in force enter the composite schedule as external limits (also without profiles and
  while SmartChargingCtrlr.Enabled is false: they are not the CSMS's), so the offer follows at
  once. The CSMS is told: NotifyChargingLimitRequest (chargingLimitSource, evseId unless 0, the
  limit as a chargingSchedule when NotifyChargingLimitWithSchedules) when a limit is set, or
  changed by more than LimitChangeSignificance percent (K11/K12), ClearedChargingLimitRequest
  when it is removed (K13). SmartChargingCtrlr.ExternalControlSignalsEnabled false: the station
  does not respond to external signals (Part 2 Appendices: "whether a Charging Station should
  respond to external control signals"): they are ignored (logged), and the limits in force
  when it is set false are dropped (ClearedChargingLimit each). Volatile: an external limit does
  not survive a restart (its sender sends it again). GetChargingProfiles reports them as
  ChargingStationExternalConstraints profiles with their source (K12.FR.05, `_external_profiles`),
  and their ids are refused to the CSMS (DuplicateProfile, K01.FR.05's exception).
"""
from __future__ import annotations

from datetime import datetime

import msgspec

from domain import messages as m
from domain.block import Block
from domain.context import Context
from domain.device_model import VariableRef
from domain.evse import Evse
from domain.hardware_events import ExternalLimitChanged
from domain.smart_charging.composite import (ExternalLimit, Limit, Transaction, combine, composite_schedule,
                                             limit_at, station_schedule)
from domain.smart_charging.profiles import TABLE, Installed, ProfileStore, StoreLimits, check, report_pages
from domain.stored_state import StoredState

CTRLR = "SmartChargingCtrlr"
ENTRIES = VariableRef(CTRLR, "Entries", variable_instance="ChargingProfiles")
EXTERNAL = VariableRef(CTRLR, "ExternalControlSignalsEnabled")
PROFILES_PER_REPORT = 8             # profiles per ReportChargingProfilesRequest (K09)
WINDOW_S = 86_400                   # the applied limit is computed a day ahead (again at its end)
EXTERNAL_ID_BASE = 2_000_000_000   # ids of the external limits reported as profiles: BASE + 8 x EVSE + source
COMPOSITE_MAX_S = 604_800           # GetCompositeSchedule's longest duration: a week (one Weekly recurrence)

A, W = m.ChargingRateUnit.A, m.ChargingRateUnit.W
Purpose = m.ChargingProfilePurpose


def _no(code: str, info: str) -> m.StatusInfo:
    return m.StatusInfo(reason_code=code, additional_info=info)


class SmartCharging(Block):
    name = "smart_charging"
    needs = {"transactions": "transactions"}        # ChargingRateChanged is its TransactionEvent (K11)
    tables = (TABLE,)
    events = (ExternalLimitChanged,)

    def __init__(self, ctx: Context, stored: StoredState, args) -> None:
        super().__init__(ctx, stored, args)
        self.store = ProfileStore.restore(stored.table(TABLE))
        self._running: dict[int, Transaction] = {}      # EVSE -> the transaction seen running there
        self._until: dict[int, datetime] = {}           # EVSE -> when its limit next changes
        self._dirty = True                               # the limits must be computed again
        self._external: dict[tuple[int, m.ChargingLimitSource], ExternalLimit] = {}   # (EVSE, source) ->
        self._external_changed = False                   # an external signal changed the limits (K11)
        self._external_since: dict[tuple[int, m.ChargingLimitSource], datetime] = {}   # when each was set
        self._default_a = args.default_limit_a           # the offline default ([smart_charging])
        self._online = False                             # ctx.online as the limits were last computed
        self.calls = {
            "SetChargingProfile": self._set_charging_profile,
            "ClearChargingProfile": self._clear_charging_profile,
            "GetChargingProfiles": self._get_charging_profiles,
            "GetCompositeSchedule": self._get_composite_schedule,
        }
        ctx.dm.subscribe(VariableRef(CTRLR, "Enabled"), self._enabled_changed)
        if ctx.dm.definition(EXTERNAL) is not None:
            ctx.dm.subscribe(EXTERNAL, self._external_enabled_changed)
        self._publish_entries()

    # --- settings ------------------------------------------------------------------------------
    def _setting(self, variable: str, instance: str | None = None) -> str:
        ref = VariableRef(CTRLR, variable, variable_instance=instance)
        return (self.ctx.dm.value(ref) or "") if self.ctx.dm.definition(ref) is not None else ""

    @property
    def enabled(self) -> bool:
        """SmartChargingCtrlr.Enabled (and Available): profiles are taken and applied."""
        return self._setting("Enabled") == "true" and self._setting("Available") == "true"

    def _enabled_changed(self, _ref: VariableRef, _value: str) -> None:
        self._dirty = True

    def limits(self) -> StoreLimits:
        """What SetChargingProfile may ask for: SmartChargingCtrlr and the EVSEs' supply."""
        entries = self.ctx.dm.definition(ENTRIES)
        units = frozenset(m.ChargingRateUnit(u) for u in self._setting("RateUnit").split(",") if u)
        return StoreLimits(
            evse_count=len(self.ctx.evses),
            stack_level_max=int(self._setting("ProfileStackLevel") or 0),
            periods_max=int(self._setting("PeriodsPerSchedule") or 0),
            entries_max=int(entries.max_limit) if entries is not None and entries.max_limit is not None else 0,
            rate_units=units,
            supply_phases=max((self._phases(e) for e in self.ctx.evses), default=3),
            phase_switching=self._setting("ACPhaseSwitchingSupported") == "true")

    def _phases(self, evse_id: int) -> int:
        """EVSE.SupplyPhases (1..3; 3 when not told)."""
        ref = VariableRef("EVSE", "SupplyPhases", evse=evse_id)
        v = self.ctx.dm.value(ref) if self.ctx.dm.definition(ref) is not None else None
        return min(3, max(1, int(v))) if v else 3

    def _max_w(self, evse_id: int) -> float:
        """The most the EVSE can deliver: EVSE.Power maxLimit (W); 0: the station's EVSEs together."""
        if evse_id == 0:
            return sum(self._max_w(e) for e in self.ctx.evses)
        d = self.ctx.dm.definition(VariableRef("EVSE", "Power", evse=evse_id))
        return float(d.max_limit) if d is not None and d.max_limit else 3 * 32 * 230.0

    # --- K01 SetChargingProfile ----------------------------------------------------------------
    def _set_charging_profile(self, req: m.SetChargingProfileRequest, now: float, size: int):
        if not self.enabled:
            return m.SetChargingProfileResponse(status=m.ChargingProfileStatus.Rejected,
                                                status_info=_no("NotEnabled", "SmartChargingCtrlr.Enabled is false"))
        if any(x.profile.id == req.charging_profile.id for x in self._external_profiles()):
            return m.SetChargingProfileResponse(status=m.ChargingProfileStatus.Rejected, status_info=_no(
                "DuplicateProfile", f"id: {req.charging_profile.id} is a ChargingStationExternalConstraints profile"))
        evse = self.ctx.evses.get(req.evse_id)
        status, info = self.store.install(req.evse_id, req.charging_profile, limits=self.limits(),
                                          transaction_id_of_evse=evse.fsm.transaction_id if evse else None)
        if status == m.ChargingProfileStatus.Accepted:
            self._changed()
        return m.SetChargingProfileResponse(status=status, status_info=info)

    # --- K10 ClearChargingProfile --------------------------------------------------------------
    def _clear_charging_profile(self, req: m.ClearChargingProfileRequest, now: float, size: int):
        status = self.store.clear(req)
        if status == m.ClearChargingProfileStatus.Accepted:
            self._changed()
        return m.ClearChargingProfileResponse(status=status)

    # --- K09 GetChargingProfiles ---------------------------------------------------------------
    def _get_charging_profiles(self, req: m.GetChargingProfilesRequest, now: float, size: int):
        groups = self.store.report(req, self._external_profiles())
        if not groups:
            return m.GetChargingProfilesResponse(status=m.GetChargingProfileStatus.NoProfiles)
        for page in report_pages(req.request_id, groups, PROFILES_PER_REPORT):
            self.ctx.outbox.reply(page, resend=True)     # a lost page goes again: the report stays whole
        return m.GetChargingProfilesResponse(status=m.GetChargingProfileStatus.Accepted)

    # --- K08 GetCompositeSchedule --------------------------------------------------------------
    def _get_composite_schedule(self, req: m.GetCompositeScheduleRequest, now: float, size: int):
        rejected = m.GenericStatus.Rejected
        if req.evse_id != 0 and req.evse_id not in self.ctx.evses:
            return m.GetCompositeScheduleResponse(status=rejected,
                                                  status_info=_no("UnknownEvse", f"evseId: no EVSE {req.evse_id}"))
        if req.duration < 0:
            return m.GetCompositeScheduleResponse(status=rejected, status_info=_no("InvalidValue", "duration: negative"))
        if req.duration > COMPOSITE_MAX_S:
            return m.GetCompositeScheduleResponse(status=rejected, status_info=_no(
                "ValueTooHigh", f"duration: {req.duration} s, at most {COMPOSITE_MAX_S} s (a week)"))
        units = self.limits().rate_units
        unit = req.charging_rate_unit or (A if A in units else W)
        if unit not in units:
            return m.GetCompositeScheduleResponse(status=rejected, status_info=_no(
                "UnsupportedRateUnit", f"chargingRateUnit: {unit} not in SmartChargingCtrlr.RateUnit"))
        schedule = self._schedule(req.evse_id, self.ctx.utc(now), req.duration, unit)
        return m.GetCompositeScheduleResponse(status=m.GenericStatus.Accepted, schedule=schedule)

    def _schedule(self, evse_id: int, start: datetime, duration: int, unit: m.ChargingRateUnit,
                  fallback: Limit | None = None) -> m.CompositeSchedule:
        """The composite schedule of the EVSE from `start`: the installed profiles (none while
        disabled), its running transaction, its phases and maximum. 0: the station's own limits
        and the EVSEs' schedules added (`station_schedule`, TC_K_22)."""
        schedule = self._own_schedule(evse_id, start, duration, unit, fallback)
        if evse_id != 0:
            return schedule
        return station_schedule(schedule, [self._own_schedule(e, start, duration, unit) for e in self.ctx.evses])

    def _own_schedule(self, evse_id: int, start: datetime, duration: int, unit: m.ChargingRateUnit,
                      fallback: Limit | None = None) -> m.CompositeSchedule:
        """`composite_schedule` of one EVSE, or of the station's own limits (0)."""
        phases = self._phases(evse_id) if evse_id else max((self._phases(e) for e in self.ctx.evses), default=3)
        return composite_schedule(
            evse_id, self.store.installed() if self.enabled else (), start=start, duration=duration, unit=unit,
            physical_max=Limit(self._max_w(evse_id), W), transaction=self._running.get(evse_id), phases=phases,
            external=self._externals_on(evse_id), fallback=fallback)

    # --- K05 a remote start's profile ----------------------------------------------------------
    def check_for_start(self, evse_id: int, profile: m.ChargingProfile) -> m.StatusInfo | None:
        """RequestStartTransaction's chargingProfile (F01.FR.09, F01.FR.11, K01's checks): why
        the remote start is Rejected, or None."""
        if profile.charging_profile_purpose != Purpose.TxProfile:
            return _no("InvalidValue", "chargingProfile.chargingProfilePurpose: must be TxProfile")
        if profile.transaction_id is not None:
            return _no("InvalidValue", "chargingProfile.transactionId: must be absent")
        return check(evse_id, profile, self.limits())

    def install_for_transaction(self, evse_id: int, profile: m.ChargingProfile,
                                transaction_id: str) -> m.ChargingProfileStatus:
        """K05: a remote start's TxProfile installed for the transaction it started."""
        profile = msgspec.structs.replace(profile, transaction_id=transaction_id)
        status, info = self.store.install(evse_id, profile, transaction_id_of_evse=transaction_id,
                                          limits=self.limits())
        if status == m.ChargingProfileStatus.Accepted:
            self._changed()
        else:
            self.ctx.log("warning", f"EVSE {evse_id}: the chargingProfile of the remote start not installed "
                                    f"({info.reason_code}: {info.additional_info})")
        return status

    def _drop_remote_profile(self, evse: Evse) -> None:
        """A remote start's profile whose remote start ended without a transaction (no
        authorization held or asked for) is forgotten."""
        if evse.fsm.transaction_id is None and evse.fsm.id_token is None and evse.remote_start_id is None:
            evse.charging_profile = None

    # --- transactions (the transactions block tells: `transaction_started` / `_ended`) --------
    def transaction_started(self, evse_id: int, transaction_id: str, now: float) -> None:
        """E -> K: a transaction began on the EVSE (its Started TransactionEvent). It is known
        from now (Relative profiles start with it, TxProfiles may name it) and a remote start's
        TxProfile waiting on the EVSE is installed for it (K05)."""
        self._running[evse_id] = Transaction(transaction_id, self.ctx.utc(now))
        evse = self.ctx.evses[evse_id]
        profile, evse.charging_profile = evse.charging_profile, None
        if profile is not None:
            self.install_for_transaction(evse_id, profile, transaction_id)
        self._changed()

    def transaction_ended(self, evse_id: int, transaction_id: str, now: float) -> None:
        """E -> K: the transaction ended (its Ended TransactionEvent): its TxProfiles go (a
        TxProfile lives as long as its transaction)."""
        known = self._running.get(evse_id)
        if known is not None and known.transaction_id == transaction_id:
            del self._running[evse_id]
        self.store.transaction_ended(evse_id, transaction_id)
        self._changed()

    def start(self, now: float, *, soft_reboot: bool = False) -> None:
        """The TxProfiles of transactions no longer running (ended by the restart) go."""
        for item in list(self.store.installed()):
            p = item.profile
            evse = self.ctx.evses.get(item.evse_id)
            if p.charging_profile_purpose == Purpose.TxProfile and (
                    evse is None or evse.fsm.transaction_id != p.transaction_id):
                self.store.transaction_ended(item.evse_id, p.transaction_id)
                self._changed()

    # --- the limit -----------------------------------------------------------------------------
    def refresh(self, evse_id: int, now: float) -> None:
        """The EVSE's limit brought up to date without a new offer: the transactions block calls
        it before it closes the power path (after `transaction_started`, when one began)."""
        evse = self.ctx.evses[evse_id]
        evse.limit_a = self._limit(evse, self.ctx.utc(now))

    def _limit(self, evse: Evse, utc: datetime) -> float | None:
        """The limit in force at `utc` (A per phase on the EVSE's phases, None: none below its
        maximum); when it next changes goes to `_until`."""
        self._until.pop(evse.id, None)
        fallback = self._offline_default()
        if not (self.enabled and len(self.store)) and not self._externals_on(evse.id) and fallback is None:
            return None
        schedule = self._schedule(evse.id, utc, WINDOW_S, A, fallback)
        now = limit_at(schedule, utc)
        self._until[evse.id] = now.until
        phases = self._phases(evse.id)
        amps = combine([(now.limit * (now.number_phases or phases) / phases, A, phases)], A)[0]
        return amps if amps < combine([(self._max_w(evse.id), W, phases)], A)[0] else None

    def _offline_default(self) -> Limit | None:
        """[smart_charging] default_limit_a while the station is offline (link down or not
        accepted): it limits where no profile does, until the CSMS can manage the EVSEs again."""
        if self._default_a is None or self.ctx.online:
            return None
        return Limit(self._default_a, A)

    def _offer_limit(self, evse: Evse, limit: float | None) -> None:
        """The limit changed -> a new offer while the power path is closed. A limit lifted while
        the hardware holds a lower one is offered as the EVSE's maximum, so the controller
        goes back up (a missing limit would leave it where it was)."""
        if limit is None and evse.offer is not None and evse.offer.limit_a is not None:
            phases = self._phases(evse.id)
            limit = combine([(self._max_w(evse.id), W, phases)], A)[0]
        evse.limit_a = limit
        if evse.offer is not None and evse.offer.closed and evse.offer.limit_a != limit:
            self.ctx.emit(evse.offer_for(True))

    def settle(self, now: float) -> None:
        if self.ctx.online != self._online:              # the offline default starts or ends
            self._online = self.ctx.online
            self._dirty = self._dirty or self._default_a is not None
        for evse in self.ctx.evses.values():
            if evse.charging_profile is not None:
                self._drop_remote_profile(evse)
        if self._dirty:
            self._dirty = False
            external, self._external_changed = self._external_changed, False
            utc = self.ctx.utc(now)
            for evse in self.ctx.evses.values():
                before = self._applied_a(evse.id, evse.limit_a)
                self._offer_limit(evse, self._limit(evse, utc))
                if external and evse.fsm.transaction_id is not None and self._beyond_significance(
                        before, self._applied_a(evse.id, evse.limit_a)):
                    self.transactions.charging_rate_changed(evse.id, now)

    def _applied_a(self, evse_id: int, limit: float | None) -> float:
        """The current the EVSE may deliver per phase: its limit, or its maximum (None)."""
        return limit if limit is not None else combine([(self._max_w(evse_id), W, self._phases(evse_id))], A)[0]

    def _beyond_significance(self, old: float, new: float) -> bool:
        """K11/K12: a change of more than LimitChangeSignificance percent of the old value."""
        if old == new:
            return False
        threshold = float(self._setting("LimitChangeSignificance") or 0)
        return old == 0 or abs(new - old) * 100 / old > threshold

    def next_deadline(self) -> float | None:
        if not self._until:
            return None
        return self.ctx.clock.monotonic(min(self._until.values()))

    def tick(self, now: float) -> None:
        utc = self.ctx.utc(now)
        for evse_id, until in list(self._until.items()):
            if self.ctx.clock.monotonic(until) <= now:
                evse = self.ctx.evses[evse_id]
                self._offer_limit(evse, self._limit(evse, max(utc, until)))   # never before the boundary

    # --- K11-K13 external limits ----------------------------------------------------------------
    def _externals_on(self, evse_id: int) -> list[ExternalLimit]:
        """The external limits that bound EVSE `evse_id` (its own and the station's; 0: the station's)."""
        return [x for (e, _), x in self._external.items() if e in (0, evse_id)]

    def hardware(self, event: ExternalLimitChanged, now: float) -> None:
        """An external limit set, changed or removed: the offer follows, the CSMS is told."""
        if event.evse != 0 and event.evse not in self.ctx.evses:
            self.ctx.log("warning", f"external limit ignored: evse: no EVSE {event.evse}")
            return
        try:
            source = m.ChargingLimitSource(event.source)
        except ValueError:
            self.ctx.log("warning", f"external limit ignored: source: {event.source!r} not a ChargingLimitSource")
            return
        if self._setting("ExternalControlSignalsEnabled") != "true":
            self.ctx.log("info", f"external limit on EVSE {event.evse} from {source} ignored: "
                                 f"{CTRLR}.ExternalControlSignalsEnabled is false")
            return
        key = (event.evse, source)
        old = self._external.get(key)
        if event.amps is None and event.watts is None:
            if old is not None:
                self._drop_external(key)
            return
        new = ExternalLimit(event.amps, A, source) if event.amps is not None else ExternalLimit(event.watts, W, source)
        if new == old:
            return
        self._external[key] = new
        self._external_since[key] = self.ctx.utc(now)
        self._dirty = self._external_changed = True
        if old is None or self._significant(old, new):
            self._notify_limit(event.evse, new)

    def _external_profiles(self) -> list[Installed]:
        """K12.FR.05 (TC_K_52): the external limits in force as ChargingStationExternalConstraints
        profiles, for GetChargingProfiles: on their EVSE (0: the station), with their source,
        one Absolute period from when they were set; id EXTERNAL_ID_BASE + 8 x EVSE + the
        source's place in ChargingLimitSourceEnumType (stable while the limit lasts)."""
        sources = list(m.ChargingLimitSource)
        return [Installed(evse_id, m.ChargingProfile(
            id=EXTERNAL_ID_BASE + 8 * evse_id + sources.index(source), stack_level=0,
            charging_profile_purpose=Purpose.ChargingStationExternalConstraints,
            charging_profile_kind=m.ChargingProfileKind.Absolute,
            charging_schedule=[m.ChargingSchedule(
                id=1, start_schedule=self._external_since[(evse_id, source)], charging_rate_unit=limit.unit,
                charging_schedule_period=[m.ChargingSchedulePeriod(start_period=0, limit=limit.value)])]), source)
            for (evse_id, source), limit in self._external.items()]

    def _significant(self, old: ExternalLimit, new: ExternalLimit) -> bool:
        """K11/K12: a change of more than LimitChangeSignificance percent (another unit: always)."""
        return old.unit != new.unit or self._beyond_significance(old.value, new.value)

    def _notify_limit(self, evse_id: int, limit: ExternalLimit) -> None:
        """NotifyChargingLimitRequest; the limit as a one-period chargingSchedule when
        NotifyChargingLimitWithSchedules is true."""
        schedule = None
        if self._setting("NotifyChargingLimitWithSchedules") == "true":
            schedule = [m.ChargingSchedule(id=max(evse_id, 1), charging_rate_unit=limit.unit, charging_schedule_period=[
                m.ChargingSchedulePeriod(start_period=0, limit=limit.value)])]
        self.ctx.outbox.post(m.NotifyChargingLimitRequest(
            charging_limit=m.ChargingLimit(charging_limit_source=limit.source),
            evse_id=evse_id or None, charging_schedule=schedule))

    def _drop_external(self, key: tuple[int, m.ChargingLimitSource]) -> None:
        """K13: the limit is gone (K13.FR.01: it limits no more), ClearedChargingLimitRequest."""
        del self._external[key]
        self._external_since.pop(key, None)
        self._dirty = self._external_changed = True
        evse_id, source = key
        self.ctx.outbox.post(m.ClearedChargingLimitRequest(charging_limit_source=source, evse_id=evse_id or None))

    def _external_enabled_changed(self, _ref: VariableRef, value: str) -> None:
        """ExternalControlSignalsEnabled set false: the external limits in force are dropped."""
        if value != "true":
            for key in list(self._external):
                self._drop_external(key)

    # --- storage -------------------------------------------------------------------------------
    def _changed(self) -> None:
        self._dirty = True
        self._publish_entries()

    def _publish_entries(self) -> None:
        """SmartChargingCtrlr.Entries[ChargingProfiles]: the installed profiles."""
        if self.ctx.dm.definition(ENTRIES) is not None:
            self.ctx.dm.write(ENTRIES, str(len(self.store)))

    def flush(self) -> None:
        change = self.store.take_change()
        if change is not None:
            self.ctx.emit(change)
