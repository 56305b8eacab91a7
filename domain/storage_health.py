"""Storage that cannot be written (disk full, read-only file system): what the station does
while that lasts.

The runtime keeps every change it could not store in memory, stores them when it can, and
tells the station (`Station.storage_failed` / `storage_restored`). While storage fails:

- no new session starts: every EVSE goes Unavailable, as after ChangeAvailability
  Inoperative for the whole station (G03.FR.05: an EVSE with a running transaction when that
  has ended), but this is not the operator's availability setting: nothing of it is stored,
  and the connectors come back to their real status when storage works again;
- the CSMS is told once per failure with the critical security event MemoryExhaustion
  (A04, "the Flash or RAM memory of the Charging Station is getting full"), sent as a
  volatile message: it cannot be stored; it goes into the security log too (A04.FR.03), whose
  record the runtime keeps in memory with the other changes and stores once it can;
- a CSMS CALL whose effect would have to be stored is refused before anything changes:
  Rejected (SendLocalList: Failed, SetVariables: per variable) with reasonCode OutOfStorage.
  Every such action the station handles has a status to refuse with; the runtime answers
  InternalError for the one CALL that came before the station knew (the write that found
  the storage failing).

Transactions already running go on: their events are kept in memory, in order, and sent.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from domain import messages as m
from domain.block import Block

MEMORY_EXHAUSTION = "MemoryExhaustion"     # security event (appendix: security events)
OUT_OF_STORAGE = "OutOfStorage"            # reasonCode (appendix: reason codes)

Refusal = Callable[[Any, m.StatusInfo], "msgspec.Struct | None"]    # None: this request can be handled

# CSMS CALLs whose effect is stored: the answer while storage fails.
_REFUSALS: dict[str, Refusal] = {
    "SetVariables": lambda req, info: m.SetVariablesResponse(set_variable_result=[
        m.SetVariableResult(attribute_type=d.attribute_type, attribute_status=m.SetVariableStatus.Rejected,
                            attribute_status_info=info, component=d.component, variable=d.variable)
        for d in req.set_variable_data]),
    "ChangeAvailability": lambda req, info: m.ChangeAvailabilityResponse(
        status=m.ChangeAvailabilityStatus.Rejected, status_info=info),
    "ClearCache": lambda req, info: m.ClearCacheResponse(status=m.ClearCacheStatus.Rejected, status_info=info),
    "SendLocalList": lambda req, info: m.SendLocalListResponse(status=m.SendLocalListStatus.Failed,
                                                               status_info=info),
    "Reset": lambda req, info: m.ResetResponse(status=m.ResetStatus.Rejected, status_info=info),
    "RequestStartTransaction": lambda req, info: m.RequestStartTransactionResponse(
        status=m.RequestStartStopStatus.Rejected, status_info=info),
    "UpdateFirmware": lambda req, info: m.UpdateFirmwareResponse(status=m.UpdateFirmwareStatus.Rejected,
                                                                 status_info=info),
    "GetLog": lambda req, info: m.GetLogResponse(status=m.LogStatus.Rejected, status_info=info),
    "CustomerInformation": lambda req, info: m.CustomerInformationResponse(      # a report alone stores nothing
        status=m.CustomerInformationStatus.Rejected, status_info=info) if req.clear else None,
}


class StorageHealth:
    def __init__(self) -> None:
        self.failing: str | None = None        # why storage cannot be written, while it cannot

    def failed(self, why: str) -> str | None:
        """The start of a failure: its MemoryExhaustion event's techInfo (None: it was failing
        already)."""
        if self.failing is not None:
            return None
        self.failing = why
        return f"storage cannot be written: {why}"[:255]

    def restored(self) -> bool:
        """Storage works again; False if it was not failing."""
        was, self.failing = self.failing, None
        return was is not None

    def refusal(self, action: str, request: msgspec.Struct) -> msgspec.Struct | None:
        """The answer to a CSMS CALL that cannot be carried out now (None: handle it)."""
        if self.failing is None:
            return None
        refuse = _REFUSALS.get(action)
        return None if refuse is None else refuse(request, m.StatusInfo(
            reason_code=OUT_OF_STORAGE, additional_info=f"storage cannot be written: {self.failing}"[:512]))

    def failed_text(self) -> str:
        return (f"storage: cannot write ({self.failing}); no new sessions (EVSEs Unavailable), changes kept "
                f"in memory until they can be stored")

    @staticmethod
    def restored_text() -> str:
        return "storage: can be written again; what was kept in memory is stored, EVSEs back in service"


class StorageHealthBlock(Block):
    """The station's inputs `storage_failed` / `storage_restored`, as a block: the security
    event, the log lines, and the EVSEs following (the availability block's `apply`)."""

    name = "storage_health"
    needs = {"availability": "availability"}

    def __init__(self, ctx, stored, args) -> None:
        super().__init__(ctx, stored, args)
        self.health = StorageHealth()

    @property
    def failing(self) -> bool:
        return self.health.failing is not None

    def refusal(self, action: str, request: msgspec.Struct) -> msgspec.Struct | None:
        return self.health.refusal(action, request)

    def failed(self, now: float, why: str) -> None:
        tech_info = self.health.failed(why)
        if tech_info is not None:
            self.ctx.log("error", self.health.failed_text())
            # to the CSMS as a volatile message (the queue cannot be stored now); into the
            # security log, whose record the runtime keeps in memory until storage works again
            self.ctx.security_event(MEMORY_EXHAUSTION, now, tech_info, volatile=True)
            self.availability.apply(now)

    def restored(self, now: float) -> None:
        if self.health.restored():
            self.ctx.log("info", self.health.restored_text())
            self.availability.apply(now)
