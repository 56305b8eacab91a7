"""B01-B04: BootNotification and registration, Heartbeat, the clock, the offline period.

- BootNotification with the boot's reason (PowerUp, RemoteReset, ScheduledReset, ...; Triggered
  for one the CSMS asked for while Pending, F06/TC_B_02), sent first on every connection until
  Accepted; Pending/Rejected retry after `interval` (B02/B03); a CALLERROR or no answer after
  BOOT_RETRY_AFTER_ERROR. Until Accepted or Pending, CSMS CALLs are refused with SecurityError
  (B03.FR.08).
- Heartbeat (B04/G02) and the BootNotificationResponse set the clock (half the round trip as
  the age of the CSMS's reading); a jump larger than TimeAdjustmentReportingThreshold is the
  security event SettingSystemTime (A04), kept durably.
- Local time (C-25/C-26): at NextTimeOffsetTransitionDateTime, TimeOffset takes
  TimeOffset[NextTransition], once.
- After an offline period longer than OfflineThreshold every connector's status is reported
  again, after a shorter one only what changed (TC_B_51/52).
- The security event of this start (StartupOfTheDevice or ResetOrReboot, A01/A04), durable.
- The transactions block is told whether the station is accepted: before, no transaction
  starts unless TxCtrlr.TxBeforeAcceptedEnabled (B02/B03, B 1.1).
- Variables the link adapter applies (ping, back-off, password) give a Reconfigure effect. A new
  BasicAuthPassword (A01.FR.01/11/12, TC_A_09) reconnects at once: after the SetVariablesResponse,
  the connection is closed cleanly and opened again with the new password. A refused value
  (shorter than 16 or longer than maxLimit characters, 2025-01 errata A00.FR.205: maxLimit 40..64,
  no limit on the characters) changes nothing (TC_A_10).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from domain import messages as m
from domain.block import Block
from domain.context import Context
from domain.device_model import VariableRef
from domain.effects import Reconfigure, Remember
from domain.ocppj import RpcErrorCode
from domain.outbox import Failure, Registration
from domain.stored_state import StoredState

NEXT_BOOT_REASON = "next_boot_reason"   # storage key: the reason the next BootNotification gives
BOOT_RETRY_AFTER_ERROR = 10.0          # s: BootNotification answered by CALLERROR or timed out
BOOT_RETRY_DEFAULT = 30.0              # s: Pending/Rejected with interval 0
SETTING_SYSTEM_TIME = "SettingSystemTime"     # security event of a clock jump (A04)

# Variables whose change the transport must see at once.
LINK_VARIABLES = (
    VariableRef("OCPPCommCtrlr", "WebSocketPingInterval"),
    VariableRef("OCPPCommCtrlr", "RetryBackOffWaitMinimum"),
    VariableRef("OCPPCommCtrlr", "RetryBackOffRandomRange"),
    VariableRef("OCPPCommCtrlr", "RetryBackOffRepeatTimes"),
)
BASIC_AUTH_PASSWORD = VariableRef("SecurityCtrlr", "BasicAuthPassword")
_NEXT_TRANSITION = VariableRef("ClockCtrlr", "NextTimeOffsetTransitionDateTime")
_NEXT_OFFSET = VariableRef("ClockCtrlr", "TimeOffset", variable_instance="NextTransition")


class Provisioning(Block):
    name = "provisioning"
    needs = {"sessions": "transactions"}
    keys = (NEXT_BOOT_REASON,)

    def __init__(self, ctx: Context, stored: StoredState, args) -> None:
        super().__init__(ctx, stored, args)
        self.boot_reason = m.BootReason(args.boot_reason or stored.value(NEXT_BOOT_REASON) or "PowerUp")
        self._boot_due: float | None = None     # when to (re)send BootNotification once the link is up
        self._offline_since: float | None = None
        self._boot_answer = _BootAnswer(self)
        self._heartbeat_answer = _HeartbeatAnswer(self)
        self.answers = {"BootNotification": self._boot_answer, "Heartbeat": self._heartbeat_answer}
        ctx.outbox.heartbeat(m.HeartbeatRequest(), self._heartbeat_answer)
        self._wire_device_model()

    # --- inputs ---------------------------------------------------------------------------------
    def start(self, now: float, *, soft_reboot: bool = False) -> None:
        """A01/A04: the security event of this start, kept durably; it goes out once accepted."""
        kind = "StartupOfTheDevice" if self.boot_reason == m.BootReason.PowerUp else "ResetOrReboot"
        self.ctx.security_event(kind, now, f"boot reason {self.boot_reason}")

    def link_up(self, now: float) -> None:
        if self.ctx.registration is not Registration.Accepted:
            self._boot_due = now
            self.tick(now)
        else:
            offline = now - self._offline_since if self._offline_since is not None else 0.0
            self.ctx.status_changed(all_again=offline > self.ctx.dm.get_int("OCPPCommCtrlr", "OfflineThreshold"))
        self._offline_since = None

    def link_down(self, now: float) -> None:
        if self._offline_since is None:
            self._offline_since = now

    def next_deadline(self) -> float | None:
        due = self._time_offset_due()
        if self.ctx.link_is_up and self.ctx.registration is not Registration.Accepted and self._boot_due is not None:
            due = self._boot_due if due is None else min(due, self._boot_due)
        return due

    def tick(self, now: float) -> None:
        if self.ctx.link_is_up and self._boot_due is not None and now >= self._boot_due \
                and self.ctx.registration is not Registration.Accepted:
            self._boot_due = None
            self.ctx.outbox.send_first(self.boot_request(), self._boot_answer)
        if (due := self._time_offset_due()) is not None and due <= now:
            self._time_offset_transition()

    # --- BootNotification -----------------------------------------------------------------------
    def boot_request(self, reason: m.BootReason | None = None) -> m.BootNotificationRequest:
        """The BootNotification of this boot cycle; `reason` Triggered for one the CSMS asked
        for with TriggerMessage (F06.FR.17 while Pending, TC_B_02)."""
        i = self.ctx.info
        return m.BootNotificationRequest(
            charging_station=m.ChargingStation(model=i.model, vendor_name=i.vendor_name,
                                               serial_number=i.serial_number, firmware_version=i.firmware_version),
            reason=reason or self.boot_reason)

    def boot_answered(self, r: m.BootNotificationResponse, now: float) -> None:
        self.set_clock(r.current_time, now)
        ctx = self.ctx
        if r.status == m.RegistrationStatus.Accepted:
            self.set_registration(Registration.Accepted)
            self._boot_due = None
            self.sessions.set_online(True)          # events from now on are not offline (E12)
            if r.interval > 0:
                ctx.write("OCPPCommCtrlr", "HeartbeatInterval", str(r.interval))
            ctx.outbox.accepted(now)
            self.sessions.set_accepted(True, now)   # a start held back until now (B02/B03)
            if self.boot_reason != m.BootReason.PowerUp:
                ctx.emit(Remember(NEXT_BOOT_REASON, None))
            ctx.log("info", "BootNotification Accepted")
            ctx.status_changed(all_again=True)
        else:
            self.set_registration(Registration(str(r.status)))
            self.sessions.set_accepted(False, now)
            self._boot_due = now + (r.interval if r.interval > 0 else BOOT_RETRY_DEFAULT)
            ctx.log("info", f"BootNotification {r.status}: retry in {self._boot_due - now:g} s")

    def boot_failed(self, failure: Failure, now: float) -> None:
        self._boot_due = now if failure.kind == "lost" else now + BOOT_RETRY_AFTER_ERROR

    def set_registration(self, registration: Registration) -> None:
        self.ctx.outbox.registration = registration
        rpc = self.ctx.outbox.rpc
        if registration in (Registration.Unregistered, Registration.Rejected):
            # B03.FR.08: CSMS-initiated CALLs are refused until the station is Accepted or Pending.
            rpc.refusal = (RpcErrorCode.SecurityError, f"refused, the station is not registered ({registration})")
        else:
            rpc.refusal = None

    # --- the clock ------------------------------------------------------------------------------
    def set_clock(self, utc: datetime, now: float) -> None:
        """The CSMS's time, read half a round trip ago (the best guess of its age)."""
        age = (now - self.ctx.outbox.last_sent_at) / 2
        jump = self.ctx.clock.set(now, utc + timedelta(seconds=age))
        if abs(jump) >= 1.0:
            self.ctx.log("info", f"clock set from CSMS ({jump:+.3f} s)")
        threshold = self.ctx.dm.get_int("ClockCtrlr", "TimeAdjustmentReportingThreshold")
        if threshold and abs(jump) > threshold:
            # A04: a time adjustment larger than the threshold is a security event, kept durably.
            self.ctx.security_event(SETTING_SYSTEM_TIME, now, f"clock set from the CSMS, {jump:+.3f} s")

    def _password_changed(self, _ref: VariableRef, _value: str) -> None:
        """A01: the new password is used at once: reconnect with it (never logged)."""
        if self.ctx.link_is_up:
            self.ctx.log("info", "BasicAuthPassword changed: reconnecting with the new password")
        self.ctx.emit(Reconfigure(reconnect=self.ctx.link_is_up))

    def _time_offset_due(self) -> float | None:
        """Monotonic time of the next TimeOffset transition (None: none set)."""
        dm = self.ctx.dm
        raw = dm.value(_NEXT_TRANSITION) if dm.definition(_NEXT_TRANSITION) else None
        if not raw:
            return None
        return self.ctx.clock.monotonic(datetime.fromisoformat(raw.replace("Z", "+00:00")))

    def _time_offset_transition(self) -> None:
        """The transition has come: TimeOffset takes TimeOffset[NextTransition]; both
        transition variables are cleared so it happens once."""
        nxt = self.ctx.dm.value(_NEXT_OFFSET)
        if nxt:
            self.ctx.write("ClockCtrlr", "TimeOffset", nxt)
            self.ctx.log("info", f"local time offset now {nxt}")
        for ref in (_NEXT_TRANSITION, _NEXT_OFFSET):
            self.ctx.dm.clear(ref)
            self.ctx.persist(ref, "")

    # --- device model ---------------------------------------------------------------------------
    def _wire_device_model(self) -> None:
        ctx, dm = self.ctx, self.ctx.dm
        dm.provide(VariableRef("ClockCtrlr", "DateTime"),
                   lambda now: ctx.utc(now).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
        for ref in LINK_VARIABLES:
            dm.subscribe(ref, lambda _r, _v: ctx.emit(Reconfigure()))
        dm.subscribe(BASIC_AUTH_PASSWORD, self._password_changed)
        dm.subscribe(VariableRef("OCPPCommCtrlr", "HeartbeatInterval"),
                     lambda _r, _v: ctx.outbox.heartbeat_interval_changed())
        dm.subscribe(VariableRef("OCPPCommCtrlr", "MessageTimeout", variable_instance="Default"),
                     lambda _r, v: ctx.outbox.rpc is not None     # (set before the RPC layer exists: read then)
                     and setattr(ctx.outbox.rpc, "message_timeout", float(v)))


class _BootAnswer:
    __slots__ = ("block",)

    def __init__(self, block: Provisioning) -> None:
        self.block = block

    def result(self, request, response: m.BootNotificationResponse, now: float) -> None:
        self.block.boot_answered(response, now)

    def failed(self, request, failure: Failure, now: float) -> None:
        self.block.boot_failed(failure, now)


class _HeartbeatAnswer:
    __slots__ = ("block",)

    def __init__(self, block: Provisioning) -> None:
        self.block = block

    def result(self, request, response: m.HeartbeatResponse, now: float) -> None:
        self.block.set_clock(response.current_time, now)

    def failed(self, request, failure: Failure, now: float) -> None:
        pass
