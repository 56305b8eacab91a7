"""B11/B12 Reset: of the station or of one EVSE, OnIdle or Immediate.

- Station, OnIdle: at once when no transaction runs, else Scheduled and carried out when every
  EVSE is idle (boot reason ScheduledReset).
- Station, Immediate: every transaction ends (ResetCommand / ImmediateReset); the station
  waits for their CALLRESULTs, at most RESET_DELIVERY_WAIT and not once the link is down, then
  reboots (RemoteReset) through the System port. Undelivered events stay queued for after
  the boot. A refused reboot is tried again ResetRetries times.
- EVSE (EVSE.AllowReset): its transaction ends (Immediate) or it is reset once idle (OnIdle).
"""
from __future__ import annotations

from dataclasses import dataclass

from domain import messages as m
from domain.block import Block
from domain.context import Context
from domain.device_model import VariableRef
from domain.effects import Reboot, Remember
from domain.provisioning.boot import NEXT_BOOT_REASON

RESET_DELIVERY_WAIT = 10.0              # s: an Immediate reset waits at most this for its Ended events

_R = m.ResetStatus


@dataclass
class PendingReboot:
    reason: str                 # BootReason of the next boot
    deadline: float             # reboot then at the latest (undelivered events stay queued)
    attempts: int = 0


class ResetBlock(Block):
    name = "reset"
    needs = {"sessions": "transactions", "authorization": "authorization"}

    def __init__(self, ctx: Context, stored, args) -> None:
        super().__init__(ctx, stored, args)
        self.reset_scheduled = False          # station OnIdle reset waiting for idle EVSEs
        self.evse_resets_scheduled: set[int] = set()
        self.reboot: PendingReboot | None = None
        self.calls = {"Reset": self._reset}

    def _reset(self, req: m.ResetRequest, now: float, size: int):
        ctx = self.ctx
        immediate = req.type == m.Reset.Immediate
        utc = ctx.utc(now)
        if req.evse_id is not None and req.evse_id != 0:
            e = req.evse_id
            if e not in ctx.evses:
                return m.ResetResponse(status=_R.Rejected, status_info=m.StatusInfo(reason_code="UnknownEvse"))
            if ctx.dm.value(VariableRef("EVSE", "AllowReset", evse=e)) == "false":
                return m.ResetResponse(status=_R.Rejected, status_info=m.StatusInfo(
                    reason_code="UnsupportedRequest", additional_info=f"EVSE {e}: AllowReset is false"))
            fsm = ctx.evses[e].fsm
            if not immediate and not fsm.idle:
                self.evse_resets_scheduled.add(e)         # B11.FR.09: when its transaction has ended
                return m.ResetResponse(status=_R.Scheduled)
            self.authorization.withdraw(e, "EVSE reset", now)
            self.sessions.drive(e, fsm.reset(now, utc, immediate=True), now)
            ctx.log("info", f"EVSE {e} reset ({req.type})")
            return m.ResetResponse(status=_R.Accepted)
        if self.reboot is not None:
            return m.ResetResponse(status=_R.Accepted)      # already on its way
        if not immediate and not all(e.fsm.idle for e in ctx.evses.values()):
            self.reset_scheduled = True                       # B11.FR.03: when every EVSE is idle
            return m.ResetResponse(status=_R.Scheduled)
        for evse_id, evse in ctx.evses.items():               # B12.FR.04/05: Ended, ImmediateReset
            self.authorization.withdraw(evse_id, "station reset", now)
            self.sessions.drive(evse_id, evse.fsm.reset(now, utc, immediate=True), now)
        self._reboot(m.BootReason.RemoteReset, now)
        return m.ResetResponse(status=_R.Accepted)

    def reboot_for(self, reason: m.BootReason, now: float) -> None:
        """A reboot another block needs (L01: FirmwareUpdate to activate a new firmware): the
        boot reason stored, then the reboot like a Reset's (ResetRetries)."""
        if self.reboot is None:
            self._reboot(reason, now)
        self.settle(now)

    def _reboot(self, reason: m.BootReason, now: float) -> None:
        self.reset_scheduled = False
        self.ctx.emit(Remember(NEXT_BOOT_REASON, reason.value))
        self.reboot = PendingReboot(reason.value, now + RESET_DELIVERY_WAIT)

    def settle(self, now: float) -> None:
        """Scheduled resets whose EVSEs are idle now; the reboot once its events are delivered
        (or cannot be: they stay durably queued for after the boot)."""
        evses = self.ctx.evses
        if self.evse_resets_scheduled:
            for e in [e for e in self.evse_resets_scheduled if evses[e].fsm.idle]:
                self.evse_resets_scheduled.discard(e)
                self.ctx.log("info", f"EVSE {e} reset (scheduled, now idle)")
        if self.reset_scheduled and all(e.fsm.idle for e in evses.values()):
            self._reboot(m.BootReason.ScheduledReset, now)
        r = self.reboot
        if r is None or r.attempts:
            return
        if self.ctx.link_is_up and now < r.deadline and self.sessions.queued_for(None):
            return
        r.attempts = 1
        self.ctx.emit(Reboot(r.reason))

    def next_deadline(self) -> float | None:
        r = self.reboot
        return r.deadline if r is not None and not r.attempts else None

    def reboot_failed(self, now: float, why: str) -> None:
        """The system refused the reboot: tried again ResetRetries times (B12), then given up."""
        r = self.reboot
        if r is None:
            return
        retries = self.ctx.dm.get_int("OCPPCommCtrlr", "ResetRetries")
        if r.attempts > retries:
            self.ctx.log("error", f"reset failed {r.attempts} times ({why}); giving up")
            self.ctx.emit(Remember(NEXT_BOOT_REASON, None))
            self.reboot = None
            return
        self.ctx.log("warning", f"reset failed ({why}); retry {r.attempts} of {retries}")
        r.attempts += 1
        self.ctx.emit(Reboot(r.reason))
