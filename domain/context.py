"""What the functional blocks share: the device model, the clock, the outbox, the EVSEs, the
effects of the current input, and the station's small common state (registration, link).

A block reads and changes the station through this context and through the narrow public
interfaces of the blocks it builds on (passed to it by the Station), never through another
block's private state.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain import messages as m
from domain.clock import StationClock
from domain.device_model import DeviceModel, VariableRef
from domain.effects import Effect, Log, Persist
from domain.evse import Evse
from domain.outbox import Outbox, Registration

Handler = Callable[..., object]     # (request, now, size) -> response | (code, description) | effect
SecuritySink = Callable[[str, datetime, 'str | None', bool], None]   # (type, timestamp, techInfo, volatile)


@dataclass(frozen=True, slots=True)
class StationInfo:
    """chargingStation data of the BootNotification (from config)."""

    vendor_name: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None


@dataclass(frozen=True, slots=True)
class StartArgs:
    """What the station is started with besides its stored state."""

    boot_reason: str | None = None              # None: the one stored by a reset, else PowerUp
    event_id_seed: int = 1                      # first NotifyEvent eventId of this boot
    data_transfer: Any = None                   # the deployment's DataTransferRegistry (P01/P02)
    default_limit_a: float | None = None        # K: the offline default limit ([smart_charging])
    firmware_updates: bool = False              # the runtime carries out the firmware jobs (L01)
    log_uploads: bool = False                   # the runtime carries out log uploads (N01)
    certificates: tuple = ()                    # the certificate store's listing (CertificateEntry)
    unproven: tuple = ()                        # station kinds whose replaced certificate is still kept


class Context:
    def __init__(self, *, dm: DeviceModel, clock: StationClock, outbox: Outbox, evses: dict[int, Evse],
                 effects: list[Effect], info: StationInfo) -> None:
        self.dm = dm
        self.clock = clock
        self.outbox = outbox
        self.evses = evses
        self.effects = effects              # what the current input asks of the outside world, in order
        self.info = info
        self.statuses_changed = False       # the availability block reports at the end of the input
        self.report_all_statuses = False    # ... every status, changed or not
        self.link_failures = 0              # consecutive failed connection attempts (the last LinkDown)
        self.security_sink: SecuritySink = self._send_security_event
        # F06: the blocks' TriggerMessage hooks, requestedMessage -> hook (Block.triggers)
        self.triggers: dict[str, Callable[..., Any]] = {}

    # --- A04 security events ------------------------------------------------------------
    def security_event(self, kind: str, now: float, tech_info: str | None = None, *, volatile: bool = False) -> None:
        """A04: a security event the station detected (a type of the security events appendix).
        The security block decides what goes to the CSMS and what is kept in the security log
        (it sets `security_sink`); without it every event is sent through the durable queue.
        `volatile`: sent as a volatile message (MemoryExhaustion: the queue cannot be stored)."""
        self.security_sink(kind, self.utc(now), tech_info, volatile)

    def _send_security_event(self, kind: str, utc: datetime, tech_info: str | None, volatile: bool) -> None:
        request = m.SecurityEventNotificationRequest(
            type=kind, timestamp=utc, tech_info=None if tech_info is None else tech_info[:255])
        if volatile:
            self.outbox.post(request, volatile=True)
        else:
            self.outbox.post_durable([request])

    # --- common state -------------------------------------------------------------------
    @property
    def registration(self) -> Registration:
        return self.outbox.registration

    @property
    def link_is_up(self) -> bool:
        return self.outbox.link_up

    @property
    def online(self) -> bool:
        """Connected and accepted by the CSMS: what it says can be asked now."""
        return self.outbox.link_up and self.outbox.registration is Registration.Accepted

    def utc(self, now: float) -> datetime:
        return self.clock.utc(now)

    # --- effects ------------------------------------------------------------------------
    def log(self, level: str, text: str) -> None:
        self.effects.append(Log(level, text))

    def emit(self, effect: Effect) -> None:
        self.effects.append(effect)

    def persist(self, ref: VariableRef, value: str, attribute: str = "Actual") -> None:
        """Store a device-model value that survives a reboot (its definition says so)."""
        d = self.dm.definition(ref)
        if d is not None and d.persistent:
            self.effects.append(Persist(ref.key, value, attribute))

    def write(self, component: str, variable: str, value: str) -> None:
        """Set a device-model value from the station's side, stored when persistent."""
        ref = VariableRef(component, variable)
        if self.dm.write(ref, value) is None:
            self.persist(ref, value)

    def status_changed(self, *, all_again: bool = False) -> None:
        """A connector or EVSE status may have changed: reported at the end of the input."""
        self.statuses_changed = True
        if all_again:
            self.report_all_statuses = True
