"""The charging station as a sans-I/O state machine.

Inputs are method calls carrying `now` (monotonic seconds): the link came up or
went down, a frame arrived, the hardware reported something, a deadline passed.
Outputs are Effects (frames to send, values to persist, a reboot). The runtime
calls `next_deadline()` to know when to call `tick()`.

Provisioning (OCPP 2.0.1 block B): BootNotification with its reason, the
registration status (B01 Accepted, B02 Pending, B03 Rejected), Heartbeat
(B04/G02) adjusting the clock, StatusNotification + NotifyEvent(AvailabilityState)
for every connector after boot and on every change.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Callable, Mapping

import msgspec

from domain import messages as m
from domain.clock import StationClock
from domain.connectors import Evse
from domain.device_model import DeviceModel, VariableRef
from domain.authorization.service import (
    AuthorizationService,
    AuthorizeCall,
    Outcome as AuthOutcome,
    TokenAccepted,
    TokenRejected,
)
from domain.authorization.authorizer import decide_stop, is_master_pass, local_info, stopped_reason
from domain.authorization.tokens import token_key
from domain.charging import Charging
from domain.queue import Queued
from domain.transactions import PowerPath, UnlockConnector
from domain.device_model import reports
from domain.device_model.service import DeviceModelService
from domain.effects import Effect, Log, Persist, Reconfigure, Remember, Send
from domain.availability import Availability
from domain.data_transfer import DataTransferRegistry
from domain.operations import NEXT_BOOT_REASON, Operations
from domain.status_report import StatusReport
from domain.storage_health import StorageHealth
from domain.hardware_events import (
    CablePlugged,
    CableUnplugged,
    DeviceProblem,
    EnergyPaused,
    EnergyRequested,
    FaultCleared,
    FaultRaised,
    HardwareEvent,
    MeterSampled,
    OccupancyChanged,
    TokenPresented,
    UnlockResult,
)
from domain.ocppj import (
    CallErrorReceived,
    CallResultReceived,
    CallTimedOut,
    Dropped,
    IncomingCall,
    OcppJEndpoint,
    Reply,
    RpcErrorCode,
)

BOOT_RETRY_AFTER_ERROR = 10.0      # s: BootNotification answered by CALLERROR or timed out
BOOT_RETRY_DEFAULT = 30.0          # s: Pending/Rejected with interval 0
SETTING_SYSTEM_TIME = "SettingSystemTime"     # security event of a clock jump (A04)

# Variables whose change the transport must see at once.
_LINK_VARIABLES = {
    VariableRef("OCPPCommCtrlr", "WebSocketPingInterval"),
    VariableRef("OCPPCommCtrlr", "RetryBackOffWaitMinimum"),
    VariableRef("OCPPCommCtrlr", "RetryBackOffRandomRange"),
    VariableRef("OCPPCommCtrlr", "RetryBackOffRepeatTimes"),
    VariableRef("SecurityCtrlr", "BasicAuthPassword"),
}


class Registration(StrEnum):
    """Where the BootNotification handshake stands in this boot cycle."""

    Unregistered = "Unregistered"   # no BootNotificationResponse yet
    Pending = "Pending"
    Rejected = "Rejected"
    Accepted = "Accepted"


@dataclass(frozen=True, slots=True)
class StationInfo:
    """chargingStation data of the BootNotification (from config)."""

    vendor_name: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None


# A handler gets the request, `now` and the inbound frame's size in bytes (for the
# BytesPerMessage limits); it returns the response, or (RPC error code, description).
@dataclass(frozen=True, slots=True)
class AuthRecords:
    """What storage holds of the authorization cache and the local list."""

    cache: dict[str, str] = field(default_factory=dict)
    local_list: dict[str, str] = field(default_factory=dict)
    list_version: int = 0


Handler = Callable[[msgspec.Struct, float, int], "msgspec.Struct | tuple[str, str]"]


class Station:
    def __init__(
        self,
        *,
        info: StationInfo,
        evse_connectors: list[int],
        device_model: DeviceModel,
        clock: StationClock,
        boot_reason: str = "PowerUp",
        new_message_id: Callable[[], str] | None = None,
        event_id_seed: int = 1,
        auth_records: AuthRecords | None = None,
        queue_records: Mapping[str, str] | None = None,
        tx_snapshots: Mapping[int, str] | None = None,
        new_transaction_id: Callable[[], str] | None = None,
        availability: str | None = None,
        data_transfer: DataTransferRegistry | None = None,
    ) -> None:
        self.info = info
        self.dm = device_model
        self.clock = clock
        self.boot_reason = m.BootReason(boot_reason)
        self.evses = {i: Evse.with_connectors(i, n) for i, n in enumerate(evse_connectors, start=1)}
        self.registration = Registration.Unregistered
        self.link_is_up = False
        self._effects: list[Effect] = []
        # Our CALLs in order: volatile messages and durable (Queued) ones. The head stays until
        # it is answered (or dropped after its attempts), so nothing is skipped on link loss.
        self._outbox: deque[msgspec.Struct | Queued] = deque()
        self._in_flight: msgspec.Struct | Queued | None = None
        # What the CSMS asked for (NotifyReport after GetReport, ...): also sent while Pending (B02).
        self._replies: deque[msgspec.Struct] = deque()
        self._boot_due: float | None = None          # when to (re)send BootNotification once the link is up
        self._heartbeat_due: float | None = None
        self._call_sent_at = 0.0
        self._offline_since: float | None = None       # when the link went down (B04 OfflineThreshold)
        self.report = StatusReport(self.evses, event_id_seed)
        self.storage_health = StorageHealth()
        self._dm_service = DeviceModelService(device_model)
        self.charging = Charging(device_model, list(self.evses), queue_records=queue_records or {},
                                 snapshots=tx_snapshots or {}, new_transaction_id=new_transaction_id)
        self._outbox.extend(self.charging.queue)      # what a previous run left undelivered
        self._groups: dict[int, m.IdToken | None] = {}   # EVSE -> groupIdToken of its authorization
        # token key -> (EVSE, transactionId, idToken) of the session a presented token may stop,
        # waiting for an AuthorizeRequest to learn its group (C09)
        self._stop_waiting: dict[str, tuple[int, str | None, m.IdToken | None]] = {}
        self._energy_flowing = dict.fromkeys(self.evses, False)
        self._remote_starts: dict[int, int] = {}         # EVSE -> remoteStartId awaiting Authorize
        records = auth_records or AuthRecords()
        self.auth = AuthorizationService(device_model, cache_records=records.cache,
                                         list_records=records.local_list, list_version=records.list_version)
        self._handlers: dict[str, Handler] = {
            "ClearCache": lambda req, now, size: self.auth.clear_cache(),
            "SendLocalList": lambda req, now, size: self.auth.send_local_list(req, size),
            "GetLocalListVersion": lambda req, now, size: self.auth.local_list_version(),
            "GetVariables": self._on_get_variables,
            "SetVariables": self._on_set_variables,
            "Reset": lambda req, now, size: self.ops.reset(req, now, size),
            "GetBaseReport": self._on_get_base_report,
            "GetReport": self._on_get_report,
            "RequestStartTransaction": self._on_request_start,
            "RequestStopTransaction": self._on_request_stop,
            "GetTransactionStatus": self._on_transaction_status,
            "UnlockConnector": self._on_unlock_connector,
            "ChangeAvailability": lambda req, now, size: self.ops.change_availability(req, now, size),
            "TriggerMessage": lambda req, now, size: self.ops.trigger(req, now, size),
            "DataTransfer": lambda req, now, size: self.ops.data_transfer_call(req, now, size),
        }
        layout = {i: n for i, n in enumerate(evse_connectors, start=1)}
        avail, problem = Availability.load(availability, layout)
        if problem:
            self._effects.append(Log("warning", problem))
        self.ops = Operations(self, avail, data_transfer or DataTransferRegistry())
        for e in self.evses.values():
            for c in e.connectors.values():
                c.operative = avail.connector_operative(e.id, c.connector)
        self.rpc = OcppJEndpoint(
            supported_actions=self._handlers.keys(),
            new_message_id=new_message_id or (lambda: str(uuid.uuid4())),
            message_timeout=float(self.dm.get_int("OCPPCommCtrlr", "MessageTimeout", "Default") or 30),
        )
        self._set_registration(Registration.Unregistered)
        self._wire_device_model()

    # --- inputs ------------------------------------------------------------------------------
    def start(self, now: float, *, soft_reboot: bool = False) -> list[Effect]:
        """After construction: end what the previous run left running (E: power loss)."""
        self.charging.set_online(False)          # what recovery reports happens before reconnecting
        effects, queued = self.charging.recover(now, self.clock.utc(now), soft_reboot=soft_reboot)
        self._effects += effects
        self._outbox.extend(queued)
        self.charging.idle_meter_values(now, self.clock.utc(now))      # schedules the first
        # A01/A04 security event of this start, kept durably; it goes out once accepted.
        kind = "StartupOfTheDevice" if self.boot_reason == m.BootReason.PowerUp else "ResetOrReboot"
        item, change = self.charging.queue.push(m.SecurityEventNotificationRequest(
            type=kind, timestamp=self.clock.utc(now), tech_info=f"boot reason {self.boot_reason}"))
        self._effects.append(change)
        self._outbox.append(item)
        return self._take()

    def link_up(self, now: float) -> list[Effect]:
        self.link_is_up = True
        if self.registration is not Registration.Accepted:
            self._boot_due = now
        else:
            self.charging.set_online(True)
            self.charging.queue.link_restored()
            # B04.FR.?? (TC_B_51/52): offline longer than OfflineThreshold -> every connector's
            # status again; shorter -> only the ones that changed.
            offline = now - self._offline_since if self._offline_since is not None else 0.0
            if offline > self.dm.get_int("OCPPCommCtrlr", "OfflineThreshold"):
                self._report_all_statuses(now)
            else:
                self._report_changed_statuses(now)
        self._offline_since = None
        return self._pump(now)

    def link_down(self, now: float) -> list[Effect]:
        self.link_is_up = False
        if self._offline_since is None:
            self._offline_since = now
        self.charging.set_online(False)
        lost = self.rpc.connection_lost()
        in_flight, self._in_flight = self._in_flight, None
        if lost is not None:
            _, request = lost
            if isinstance(request, m.BootNotificationRequest):
                self._boot_due = now
            elif isinstance(request, m.NotifyReportRequest):
                self._replies.appendleft(request)
            elif self._outbox and self._outbox[0] is in_flight:
                if isinstance(request, m.AuthorizeRequest):      # decided offline instead
                    self._outbox.popleft()
                    self._auth_outcome(self.auth.csms_failed(request, self.clock.utc(now)), now)
                elif isinstance(in_flight, Queued):
                    self.charging.queue.unsent(in_flight)      # lost with the link: not an attempt
                # otherwise the head stays: sent again after reconnecting
        return self._pump(now)       # sends nothing now; a reset waiting for delivery goes ahead

    def frame_received(self, frame: str | bytes, now: float) -> list[Effect]:
        ev = self.rpc.receive(frame, now)
        if isinstance(ev, IncomingCall):
            if ev.warning is not None:      # a leniency (README "Leniencies"), once per connection
                self._effects.append(Log("warning", ev.warning))
            size = len(frame) if isinstance(frame, bytes) or frame.isascii() else len(frame.encode())
            self._on_call(ev, now, size)
        elif isinstance(ev, CallResultReceived):
            if ev.warning is not None:
                self._effects.append(Log("warning", ev.warning))
            self._on_result(ev.request, ev.response, now)
        elif isinstance(ev, (CallErrorReceived, CallTimedOut)):
            self._on_call_failed(ev, now)
        elif isinstance(ev, Reply):
            if self.rpc.refusal is None:
                self._effects.append(Log("warning", f"bad frame from CSMS: {ev.reason}"))
            self._effects.append(Send(ev.frame))
        elif isinstance(ev, Dropped):
            self._effects.append(Log("warning", f"frame dropped: {ev.reason}"))
        return self._pump(now)

    def hardware_event(self, event: HardwareEvent, now: float) -> list[Effect]:
        if type(event) is MeterSampled:                  # the per-sample path: nothing else to do
            fsm = self.charging.fsm.get(event.evse)
            if fsm is not None:
                self.charging.readings[event.evse] = event.reading
                self._tx_outputs(event.evse, fsm.meter(event.reading, now, self.clock.utc(now)), now)
            return self._pump(now) if self._effects or self._outbox else []
        self._tx_input(event, now)
        match event:
            case CablePlugged(evse=e, connector=c) | CableUnplugged(evse=e, connector=c):
                conn = self._connector(e, c)
                if conn is not None:
                    conn.plugged = isinstance(event, CablePlugged)
                    if not conn.plugged:     # PICS C-06.2: the authorization asked for it ends too
                        self._abandon_authorization(e, "EV unplugged")
            case FaultRaised() | FaultCleared():
                self._fault_event(event, now)
            case DeviceProblem(component=comp, problem=p, evse=e, detail=d):
                self._part_changed(comp, "Problem", p, e, d, now)
            case UnlockResult(reply_to=str(message_id), unlocked=ok):
                self._effects.append(Send(self.rpc.result_frame(message_id, m.UnlockConnectorResponse(
                    status=m.UnlockStatus.Unlocked if ok else m.UnlockStatus.UnlockFailed))))
            case OccupancyChanged(evse=e, occupied=o):
                if (evse := self.evses.get(e)) is not None:
                    evse.occupied = o
            case TokenPresented():
                self._token_presented(event, now)
        self._report_changed_statuses(now)
        return self._pump(now)

    def tick(self, now: float) -> list[Effect]:
        timed_out = self.rpc.check_timeout(now)
        if timed_out is not None:
            self._on_call_failed(timed_out, now)
        utc = self.clock.utc(now)
        self.charging.refresh_settings(now, utc)
        for evse_id, fsm in self.charging.fsm.items():
            d = fsm.next_deadline()
            if d is not None and d <= now:
                self._tx_outputs(evse_id, fsm.tick(now, utc), now)
        for request in self.charging.idle_meter_values(now, utc):
            self._enqueue(request)
        if (due := self._time_offset_due(now)) is not None and due <= now:
            self._time_offset_transition()
        return self._pump(now)

    def storage_failed(self, now: float, why: str) -> list[Effect]:
        """Storage cannot be written; the runtime keeps the changes in memory (storage_health:
        EVSEs Unavailable, MemoryExhaustion sent as a volatile message, storing CALLs refused)."""
        event = self.storage_health.failed(why, self.clock.utc(now))
        if event is not None:
            self._effects.append(Log("error", self.storage_health.failed_text()))
            self._outbox.append(event)
            self.ops.apply(now)
        return self._pump(now)

    def storage_restored(self, now: float) -> list[Effect]:
        """What was kept in memory is stored: the connectors come back to their real status."""
        if self.storage_health.restored():
            self._effects.append(Log("info", self.storage_health.restored_text()))
            self.ops.apply(now)
        return self._pump(now)

    def reboot_failed(self, now: float, why: str) -> list[Effect]:
        """The system could not reboot as a Reset asked (ResetRetries)."""
        self.ops.reboot_failed(now, why)
        return self._take()

    def send_data_transfer(self, vendor_id: str, message_id: str | None, data, now: float) -> list[Effect]:
        """P02: a DataTransfer of the station's own; the answer goes to the vendor's extension."""
        self._enqueue(m.DataTransferRequest(vendor_id=vendor_id, message_id=message_id, data=data))
        return self._pump(now)

    def next_deadline(self) -> float | None:
        deadlines = [self.rpc.next_deadline(), self.charging.next_deadline(), self.ops.next_deadline(),
                     self._time_offset_due(None)]
        if self.link_is_up:
            if self.registration is not Registration.Accepted:
                deadlines.append(self._boot_due)
            elif self._outbox and isinstance(self._outbox[0], Queued):
                deadlines.append(self._outbox[0].not_before)
            elif not self._outbox and not self._replies:
                deadlines.append(self._heartbeat_due)
        ds = [d for d in deadlines if d is not None]
        return min(ds) if ds else None

    # --- views ---------------------------------------------------------------------------------
    def connector_status(self, evse: int, connector: int) -> str:
        e = self.evses[evse]
        return e.connectors[connector].status(e.fault)

    def snapshot(self) -> dict:
        """What the sim control socket's `state` shows of the station."""
        return {
            "csms_connected": self.link_is_up,
            "registration": str(self.registration),
            "evses": {
                e.id: {
                    "transaction_id": self.charging.fsm[e.id].transaction_id,
                    "authorized": (t.id_token if (t := self.charging.fsm[e.id].id_token) else None),
                    "connectors": {c.connector: c.status(e.fault) for c in e.connectors.values()},
                }
                for e in self.evses.values()
            },
        }

    # --- sending -------------------------------------------------------------------------------
    def _take(self) -> list[Effect]:
        self._effects.extend(self.auth.take_changes())
        out, self._effects = self._effects, []
        return out

    def _pump(self, now: float) -> list[Effect]:
        """Send the next CALL if the link, the registration and the one-call rule allow it.
        Every input ends here: a setting it changed is put in effect first (a flag check)."""
        if self.charging.settings_pending:
            self.charging.refresh_settings(now, self.clock.utc(now))
        if self.link_is_up and not self.rpc.busy:
            if self.registration is not Registration.Accepted:
                if self._boot_due is not None and now >= self._boot_due:
                    self._boot_due = None
                    self._send_call(self._boot_request(), now)
                elif self._replies and self.registration is Registration.Pending:
                    self._send_call(self._replies.popleft(), now)
            elif self._replies:
                self._send_call(self._replies.popleft(), now)
            elif self._outbox:
                head = self._outbox[0]
                if isinstance(head, Queued):
                    if head.not_before <= now:
                        self.charging.queue.sent(head)
                        self._send_call(head.request, now, head)
                else:
                    self._send_call(head, now, head)
            elif self._heartbeat_due is not None and now >= self._heartbeat_due:
                self._send_call(m.HeartbeatRequest(), now)
        self.ops.settle(now)
        if (reboot := self.ops.reboot_due(now)) is not None:
            self._effects.append(reboot)
        return self._take()

    def _send_call(self, request: msgspec.Struct, now: float, item: msgspec.Struct | Queued | None = None) -> None:
        try:
            frame = self.rpc.send_call(request, now)
        except ValueError as exc:  # OutboundInvalid: a bug or a bad configured value; never send it
            self._effects.append(Log("error", f"not sending {type(request).__name__}: {exc}"))
            if item is not None:
                self._finish_head(item, delivered=True)
            return
        self._in_flight = item
        self._call_sent_at = now
        if self.registration is Registration.Accepted:
            # HeartbeatInterval is an interval of inactivity (no OCPP exchange).
            self._heartbeat_due = now + self._heartbeat_interval()
        self._effects.append(Send(frame))

    def _enqueue(self, request: msgspec.Struct) -> None:
        """Queue one of our CALLs. With OCPPCommCtrlr.QueueAllMessages true (PICS C-21) every
        message that reports something (not an Authorize: that is a question for now) is
        kept durably like the transaction events."""
        if self._queue_all and not isinstance(request, m.AuthorizeRequest):
            item, change = self.charging.queue.push(request)
            self._effects.append(change)
            self._outbox.append(item)
        else:
            self._outbox.append(request)

    @property
    def _queue_all(self) -> bool:
        ref = VariableRef("OCPPCommCtrlr", "QueueAllMessages")
        return self.dm.definition(ref) is not None and self.dm.value(ref) == "true"

    def _boot_request(self, reason: m.BootReason | None = None) -> m.BootNotificationRequest:
        """The BootNotification of this boot cycle; `reason` Triggered for one the CSMS asked
        for with TriggerMessage (F06.FR.17 while Pending, TC_B_02)."""
        i = self.info
        return m.BootNotificationRequest(
            charging_station=m.ChargingStation(
                model=i.model, vendor_name=i.vendor_name,
                serial_number=i.serial_number, firmware_version=i.firmware_version,
            ),
            reason=reason or self.boot_reason,
        )

    def _heartbeat_interval(self) -> int:
        return max(1, self.dm.get_int("OCPPCommCtrlr", "HeartbeatInterval"))

    # --- responses to our calls ------------------------------------------------------------
    def _finish_head(self, item: msgspec.Struct | Queued, *, delivered: bool) -> None:
        """The outbox head `item` is done with: answered, or given up."""
        if self._outbox and self._outbox[0] is item:
            self._outbox.popleft()
            if isinstance(item, Queued) and delivered:
                self._effects.append(self.charging.queue.delivered(item))

    def _on_result(self, request: msgspec.Struct, response: msgspec.Struct, now: float) -> None:
        item, self._in_flight = self._in_flight, None
        if item is not None:
            self._finish_head(item, delivered=True)
        if isinstance(response, m.TransactionEventResponse):
            self._on_transaction_response(request, response, now)
        elif isinstance(response, m.BootNotificationResponse):
            self._on_boot_response(response, now)
        elif isinstance(response, m.AuthorizeResponse):
            self._on_authorize_response(request, response, now)
        elif isinstance(response, m.HeartbeatResponse):
            # Half the round trip is the best guess of the time the CSMS's reading is old.
            self._set_clock(response.current_time, now, (now - self._call_sent_at) / 2)
        elif isinstance(response, m.DataTransferResponse):
            self.ops.data_transfer.answered(request, response)

    def _on_boot_response(self, r: m.BootNotificationResponse, now: float) -> None:
        self._set_clock(r.current_time, now, (now - self._call_sent_at) / 2)
        status = r.status
        if status == m.RegistrationStatus.Accepted:
            self._set_registration(Registration.Accepted)
            self.charging.set_online(True)
            if r.interval > 0:
                self._write("OCPPCommCtrlr", "HeartbeatInterval", str(r.interval))
            self._heartbeat_due = now + self._heartbeat_interval()
            if self.boot_reason != m.BootReason.PowerUp:
                self._effects.append(Remember(NEXT_BOOT_REASON, None))
            self._effects.append(Log("info", "BootNotification Accepted"))
            self._report_all_statuses(now)
        else:
            self._set_registration(Registration(str(status)))
            self._boot_due = now + (r.interval if r.interval > 0 else BOOT_RETRY_DEFAULT)
            self._effects.append(Log("info", f"BootNotification {status}: retry in {self._boot_due - now:g} s"))

    def _set_registration(self, registration: Registration) -> None:
        self.registration = registration
        if registration in (Registration.Unregistered, Registration.Rejected):
            # B03.FR.08: CSMS-initiated CALLs are refused until the station is Accepted or Pending.
            self.rpc.refusal = (RpcErrorCode.SecurityError, f"refused, the station is not registered ({registration})")
        else:
            self.rpc.refusal = None

    def _on_call_failed(self, ev: CallErrorReceived | CallTimedOut, now: float) -> None:
        what = f"{ev.code}: {ev.description}" if isinstance(ev, CallErrorReceived) else "no answer (MessageTimeout)"
        self._effects.append(Log("warning", f"{ev.action} failed: {what}"))
        item, self._in_flight = self._in_flight, None
        if isinstance(item, Queued):
            # E13: MessageAttempts / MessageAttemptInterval, then dropped.
            q = self.charging.queue
            # E13 retries TransactionEvents; any other durable message refused by a CALLERROR
            # would be refused again: it is dropped at once (a timeout is retried).
            retried = isinstance(item.request, m.TransactionEventRequest) or isinstance(ev, CallTimedOut)
            change = q.failed(item, now, why=what,
                              max_attempts=self.dm.get_int("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent")
                              if retried else 1,
                              interval=self.dm.get_int("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent"))
            if change is not None:
                self._effects.append(change)
            for dropped, why in q.take_dropped():
                self._finish_head(item, delivered=False)
                self._effects.append(Log("error", f"{ev.action} dropped after {item.attempts} attempts: {why}"))
        elif item is not None:
            self._finish_head(item, delivered=False)
        if isinstance(ev.request, m.BootNotificationRequest):
            self._boot_due = now + BOOT_RETRY_AFTER_ERROR
        elif isinstance(ev.request, m.AuthorizeRequest):
            self._auth_outcome(self.auth.csms_failed(ev.request, self.clock.utc(now)), now)
        elif isinstance(ev.request, m.DataTransferRequest):
            self.ops.data_transfer.answered(ev.request, None, what)

    # --- local time (ClockCtrlr, PICS C-25/C-26) ------------------------------------------------
    _NEXT_TRANSITION = VariableRef("ClockCtrlr", "NextTimeOffsetTransitionDateTime")
    _NEXT_OFFSET = VariableRef("ClockCtrlr", "TimeOffset", variable_instance="NextTransition")

    def _time_offset_due(self, now: float | None) -> float | None:
        """Monotonic time of the next TimeOffset transition (None: none set)."""
        raw = self.dm.value(self._NEXT_TRANSITION) if self.dm.definition(self._NEXT_TRANSITION) else None
        if not raw:
            return None
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return self.clock.monotonic(at)

    def _time_offset_transition(self) -> None:
        """The transition has come: TimeOffset takes TimeOffset[NextTransition]; both
        transition variables are cleared so it happens once."""
        nxt = self.dm.value(self._NEXT_OFFSET)
        if nxt:
            self._write("ClockCtrlr", "TimeOffset", nxt)
            self._effects.append(Log("info", f"local time offset now {nxt}"))
        for ref in (self._NEXT_TRANSITION, self._NEXT_OFFSET):
            self.dm.clear(ref)
            self._persist(ref, "")

    def _set_clock(self, utc: datetime, now: float, age: float) -> None:
        jump = self.clock.set(now, utc + timedelta(seconds=age))
        if abs(jump) >= 1.0:
            self._effects.append(Log("info", f"clock set from CSMS ({jump:+.3f} s)"))
        threshold = self.dm.get_int("ClockCtrlr", "TimeAdjustmentReportingThreshold")
        if threshold and abs(jump) > threshold:
            # A04: a time adjustment larger than the threshold is a security event, kept durably.
            item, change = self.charging.queue.push(m.SecurityEventNotificationRequest(
                type=SETTING_SYSTEM_TIME, timestamp=self.clock.utc(now),
                tech_info=f"clock set from the CSMS, {jump:+.3f} s"))
            self._effects.append(change)
            self._outbox.append(item)

    # --- calls from the CSMS ----------------------------------------------------------------
    def _on_call(self, call: IncomingCall, now: float, size: int) -> None:
        result = self.storage_health.refusal(call.action, call.request) or \
            self._handlers[call.action](call.request, now, size)
        self._effects.extend(self.auth.take_changes())      # stored before the answer goes out
        if isinstance(result, UnlockConnector):             # answered once the hardware has done it
            self._effects.append(UnlockConnector(result.evse, result.connector, reply_to=call.message_id))
        elif isinstance(result, tuple):
            code, description = result
            self._effects.append(Send(self.rpc.error_frame(call.message_id, code, description)))
        else:
            self._effects.append(Send(self.rpc.result_frame(call.message_id, result)))

    def _on_get_variables(self, req: m.GetVariablesRequest, now: float, size: int):
        return self._dm_service.get_variables(req, now, size)

    def _on_set_variables(self, req: m.SetVariablesRequest, now: float, size: int):
        result = self._dm_service.set_variables(req, size)
        for ref, value, attribute in self._dm_service.take_changes():
            self._persist(ref, value, attribute)
        return result

    def _on_get_base_report(self, req: m.GetBaseReportRequest, now: float, size: int):
        selected = reports.select_base(self.dm, req.report_base, now)
        if selected is None:
            return m.GetBaseReportResponse(status=m.GenericDeviceModelStatus.NotSupported)
        return m.GetBaseReportResponse(status=self._queue_report(req.request_id, selected, now))

    def _on_get_report(self, req: m.GetReportRequest, now: float, size: int):
        if err := self._dm_service.request_limits("GetReport", len(req.component_variable or ()), size):
            return err
        selected = reports.select_custom(
            self.dm, req.component_variable, [str(c) for c in req.component_criteria or ()], now)
        return m.GetReportResponse(status=self._queue_report(req.request_id, selected, now))

    def _queue_report(self, request_id: int, selected, now: float) -> m.GenericDeviceModelStatus:
        """NotifyReport messages follow the response (B07/B08), paged within
        ItemsPerMessage[GetReport] and BytesPerMessage[GetReport]."""
        if not selected:
            return m.GenericDeviceModelStatus.EmptyResultSet
        limits = self.dm.get_int("DeviceDataCtrlr", "ItemsPerMessage", "GetReport"), \
            self.dm.get_int("DeviceDataCtrlr", "BytesPerMessage", "GetReport")
        self._replies.extend(reports.paginate(
            request_id, reports.report_entries(self.dm, selected, now), self.clock.utc(now),
            items_per_message=limits[0], bytes_per_message=limits[1]))
        return m.GenericDeviceModelStatus.Accepted

    # --- device model --------------------------------------------------------------------------
    def _wire_device_model(self) -> None:
        dm = self.dm
        dm.provide(VariableRef("ClockCtrlr", "DateTime"),
                   lambda now: self.clock.utc(now).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
        for ref in _LINK_VARIABLES:
            dm.subscribe(ref, lambda _r, _v: self._effects.append(Reconfigure()))
        dm.subscribe(VariableRef("OCPPCommCtrlr", "HeartbeatInterval"), self._on_heartbeat_interval)
        dm.subscribe(VariableRef("OCPPCommCtrlr", "MessageTimeout", variable_instance="Default"),
                     lambda _r, v: setattr(self.rpc, "message_timeout", float(v)))
        dm.provide(VariableRef("ChargingStation", "AvailabilityState"), lambda _now: self.report.station_availability())
        for d in dm.definitions():
            if d.ref.variable in ("Problem", "Tripped") and d.ref.connector is None:
                key = (d.ref.component, d.ref.variable, d.ref.evse)
                dm.provide(d.ref, lambda _now, key=key: "true" if self.report.parts.get(key) else "false")
        for e in self.evses.values():
            dm.provide(VariableRef("EVSE", "AvailabilityState", evse=e.id), lambda _now, e=e: e.status())
            for c in e.connectors.values():
                dm.provide(VariableRef("Connector", "AvailabilityState", evse=e.id, connector=c.connector),
                           lambda _now, e=e, c=c: c.status(e.fault))

    def _on_heartbeat_interval(self, _ref: VariableRef, value: str) -> None:
        if self.registration is Registration.Accepted:
            self._heartbeat_due = self._call_sent_at + max(1, int(value))

    def _write(self, component: str, variable: str, value: str) -> None:
        ref = VariableRef(component, variable)
        if self.dm.write(ref, value) is None:
            self._persist(ref, value)

    def _persist(self, ref: VariableRef, value: str, attribute: str = "Actual") -> None:
        d = self.dm.definition(ref)
        if d is not None and d.persistent:
            self._effects.append(Persist(ref.key, value, attribute))

    # --- authorization (C01-C16) ----------------------------------------------------------------
    def _online(self) -> bool:
        return self.link_is_up and self.registration is Registration.Accepted

    def _evse_for_token(self, event: TokenPresented) -> int | None:
        """AQ-8: the EVSE is chosen before authorization: the reader's own EVSE, the only
        EVSE, or the only EVSE with an EV plugged in and nobody authorized on it."""
        if event.evse is not None:
            return event.evse if event.evse in self.evses else None
        if len(self.evses) == 1:
            return next(iter(self.evses))
        waiting = [e.id for e in self.evses.values()
                   if self.charging.fsm[e.id].id_token is None and any(c.plugged for c in e.connectors.values())]
        return waiting[0] if len(waiting) == 1 else None

    def _token_presented(self, event: TokenPresented, now: float) -> None:
        token = m.IdToken(id_token=event.id_token, type=m.IdTokenEnum(event.type))
        evse_id = self._evse_for_token(event)
        if evse_id is None:
            self._effects.append(Log("warning", f"token {event.id_token}: no EVSE selected (plug in first, or "
                                                f"present it at an EVSE's reader)"))
            return
        fsm = self.charging.fsm[evse_id]
        if fsm.id_token is not None:
            self._stop_by_token(evse_id, token, now)
            return
        if self.evses[evse_id].status() in ("Unavailable", "Faulted"):
            self._effects.append(Log("info", f"token {event.id_token}: EVSE {evse_id} is "
                                             f"{self.evses[evse_id].status()}, no new session"))
            return
        if self.registration is not Registration.Accepted and not self.dm.get_bool("TxCtrlr", "TxBeforeAcceptedEnabled"):
            self._effects.append(Log("info", f"token {event.id_token}: no charging before the CSMS accepted the "
                                             f"station (TxCtrlr.TxBeforeAcceptedEnabled is false)"))
            return
        self._auth_outcome(self.auth.present(token, evse_id, online=self._online(), utc=self.clock.utc(now)), now)

    def _stop_by_token(self, evse_id: int, token: m.IdToken, now: float) -> None:
        """C09/C16: the same token, one of the same group, or a master pass stops."""
        fsm = self.charging.fsm[evse_id]
        utc = self.clock.utc(now)
        s = self.auth.settings
        known = local_info(token, now_utc=utc, settings=s,
                           local_list=self.auth.local_list if s.local_list_enabled else None,
                           cache=self.auth.cache if s.cache_enabled else None)
        info, source = known if known else (None, None)
        verdict = decide_stop(token, tx_token=fsm.id_token, tx_group=self._groups.get(evse_id),
                              presented_info=info, settings=s, online=self._online(), info_source=source)
        if verdict == "stop":
            if is_master_pass(info, s):
                self._master_pass(token, now)
            else:
                self._tx_outputs(evse_id, fsm.stop_authorized(token, now, utc, reason=stopped_reason(info, s)), now)
        elif verdict == "ask_csms":
            self._stop_waiting[token_key(token)] = (evse_id, fsm.transaction_id, fsm.id_token)
            self._enqueue(m.AuthorizeRequest(id_token=token))
        else:
            self._effects.append(Log("info", f"EVSE {evse_id}: {token.id_token} may not stop this session"))

    def _master_pass(self, token: m.IdToken, now: float) -> None:
        """C16: a master pass stops every ongoing transaction (stoppedReason MasterPass)."""
        utc = self.clock.utc(now)
        for evse_id, fsm in self.charging.fsm.items():
            if fsm.transaction_id is not None:
                self._tx_outputs(evse_id, fsm.stop_authorized(token, now, utc, reason=m.Reason.MasterPass), now)

    def _on_authorize_response(self, request: m.AuthorizeRequest, response: m.AuthorizeResponse,
                               now: float) -> None:
        waiting = self._stop_waiting.pop(token_key(request.id_token), None)
        if waiting is None:
            self._auth_outcome(self.auth.csms_answer(request, response, self.clock.utc(now)), now)
            return
        utc = self.clock.utc(now)
        info = response.id_token_info
        self.auth.learn(request.id_token, info, utc)
        evse_id, transaction_id, tx_token = waiting
        fsm = self.charging.fsm[evse_id]
        if fsm.id_token is None or fsm.id_token != tx_token or fsm.transaction_id != transaction_id:
            return          # the session it was asked about is over: the answer only fed the cache
        verdict = decide_stop(request.id_token, tx_token=fsm.id_token, tx_group=self._groups.get(evse_id),
                              presented_info=info, settings=self.auth.settings, online=True, info_source="csms")
        if verdict == "stop" and is_master_pass(info, self.auth.settings):
            self._master_pass(request.id_token, now)
        elif verdict == "stop":
            self._tx_outputs(evse_id, fsm.stop_authorized(request.id_token, now, utc), now)
        else:
            self._effects.append(Log("info", f"EVSE {evse_id}: {request.id_token.id_token} may not stop this session"))

    def _auth_outcome(self, outcome: AuthOutcome | None, now: float) -> None:
        if isinstance(outcome, AuthorizeCall):
            self._enqueue(outcome.request)
        elif isinstance(outcome, TokenAccepted):
            if (status := self.evses[outcome.evse_id].status()) in ("Unavailable", "Faulted"):
                self._remote_starts.pop(outcome.evse_id, None)
                self._effects.append(Log("info", f"EVSE {outcome.evse_id}: {outcome.token.id_token} accepted, "
                                                 f"but the EVSE is {status}: no session"))
                return
            info = outcome.decision.info
            self._groups[outcome.evse_id] = info.group_id_token if info else None
            fsm = self.charging.fsm[outcome.evse_id]
            self._tx_outputs(outcome.evse_id, fsm.authorized(
                outcome.token, now, self.clock.utc(now),
                remote_start_id=self._remote_starts.pop(outcome.evse_id, None)), now)
            self._effects.append(Log("info", f"EVSE {outcome.evse_id}: {outcome.token.id_token} authorized "
                                             f"({outcome.decision.reason})"))
            self._show_personal_message(outcome.decision)
        elif isinstance(outcome, TokenRejected):
            if outcome.decision.source == "master_pass":
                self._master_pass(outcome.token, now)
            self._effects.append(Log("info", f"EVSE {outcome.evse_id}: {outcome.token.id_token} not authorized "
                                             f"({outcome.decision.reason})"))
            self._show_personal_message(outcome.decision)

    def _abandon_authorization(self, evse_id: int, why: str) -> None:
        """The EVSE is no longer in the state an open authorization was asked for (EV unplugged,
        PICS C-06.2; fault; Unavailable; reset): a late AuthorizeResponse then only updates
        the cache (C10) and authorizes nobody; a pending remote start is dropped."""
        abandoned = self.auth.abandon(evse_id)
        remote = self._remote_starts.pop(evse_id, None)
        if abandoned or remote is not None:
            self._effects.append(Log("info", f"EVSE {evse_id}: {why}; the open authorization request is "
                                             f"abandoned (its answer only updates the cache)"))

    def withdraw_authorization(self, evse_id: int, why: str, now: float) -> None:
        """The EVSE cannot take a session any more (fault, Unavailable, reset): an authorization
        not yet used by a transaction ends, and so does one still asked for."""
        self._abandon_authorization(evse_id, why)
        fsm = self.charging.fsm[evse_id]
        if fsm.transaction_id is None and fsm.id_token is not None:
            self._groups.pop(evse_id, None)
            self._tx_outputs(evse_id, fsm.cancel_authorization(now, self.clock.utc(now)), now)
            self._effects.append(Log("info", f"EVSE {evse_id}: {why}; its authorization ends"))

    def _show_personal_message(self, decision) -> None:
        info = decision.info
        if info is not None and info.personal_message is not None:
            self._effects.append(Log("info", f"message for the driver: {info.personal_message.content}"))

    # --- transactions (E, F01-F04, J) ---------------------------------------------------------
    def _tx_input(self, event: HardwareEvent, now: float) -> None:
        """What the hardware says, for the transaction state machines."""
        fsm = self.charging.fsm.get(getattr(event, "evse", None) or 0)
        if fsm is None:
            return
        e, utc = event.evse, self.clock.utc(now)
        match event:
            case CablePlugged(connector=c) if c in self.evses[e].connectors \
                    and self.evses[e].connectors[c].operative:       # G03: none on an Inoperative one
                self._tx_outputs(e, fsm.ev_connected(c, now, utc), now)
            case CableUnplugged(connector=c) if c in self.evses[e].connectors:
                self.charging.energy_requested[e] = False      # the EV is gone, and what it asked for
                self._tx_outputs(e, fsm.ev_disconnected(c, now, utc), now)
            case OccupancyChanged(occupied=o):
                self._tx_outputs(e, fsm.parking_bay_occupied(o, now, utc), now)
            case EnergyRequested() | EnergyPaused():
                self.charging.energy_requested[e] = isinstance(event, EnergyRequested)
                self._energy_follows(e, now)

    def _fault_event(self, event: FaultRaised | FaultCleared, now: float) -> None:
        """EVSE faults: Faulted while any lasts, the transaction ends by the fault (first one),
        and the reporting component's variable follows (NotifyEvent)."""
        evse = self.evses.get(event.evse)
        if evse is None:
            return
        fsm, utc = self.charging.fsm[evse.id], self.clock.utc(now)
        if isinstance(event, FaultRaised):
            if event.fault in evse.faults:
                return
            first = not evse.faults
            evse.faults[event.fault] = (event.component, event.variable)
            if first:
                self._abandon_authorization(evse.id, f"fault {event.fault}")
            if event.component:
                self._part_changed(event.component, event.variable, True, evse.id, event.fault, now)
            if first:
                self._tx_outputs(evse.id, fsm.abnormal(event.fault, now, utc), now)
            return
        cleared = [event.fault] if event.fault in evse.faults else list(evse.faults) if event.fault is None else []
        for fault in cleared:
            component, variable = evse.faults.pop(fault)
            if component:
                self._part_changed(component, variable, False, evse.id, f"{fault} cleared", now)
        if cleared and not evse.faults:
            self._tx_outputs(evse.id, fsm.abnormal_cleared(now, utc), now)

    def _part_changed(self, component: str, variable: str, value: bool, evse: int | None, detail: str,
                      now: float) -> None:
        """A hardware component's Problem/Tripped changed: kept for the device model and told
        to the CSMS as a NotifyEvent (cleared when it ends)."""
        event = self.report.part_changed(component, variable, value, evse, detail, self.clock.utc(now))
        if event is None:
            return
        self._effects.append(Log("warning" if value else "info",
                                 f"{component}{f' of EVSE {evse}' if evse else ''}: {variable} "
                                 f"{'true' if value else 'false'}{f' ({detail})' if detail else ''}"))
        self._enqueue(event)

    def _tx_outputs(self, evse_id: int, outputs: list, now: float) -> None:
        if not outputs:
            return
        effects, queued = self.charging.outputs(evse_id, outputs, now)
        self._effects += effects          # stored (with the machine's snapshot) before sending
        self._outbox.extend(queued)
        if any(isinstance(o, PowerPath) for o in outputs):
            self._energy_follows(evse_id, now)

    def _energy_follows(self, evse_id: int, now: float) -> None:
        """EnergyTransfer: the EV draws once it asks for energy and the power path is closed."""
        flowing = self.charging.energy_requested[evse_id] and self.charging.power_path[evse_id]
        if flowing != self._energy_flowing[evse_id]:
            self._energy_flowing[evse_id] = flowing
            fsm = self.charging.fsm[evse_id]
            self._tx_outputs(evse_id, fsm.energy_transfer(flowing, now, self.clock.utc(now)), now)

    def _on_transaction_response(self, request: m.TransactionEventRequest, response: m.TransactionEventResponse,
                                 now: float) -> None:
        info = response.id_token_info
        if info is None:
            return
        fsm = self.charging.transaction_of(request.transaction_info.transaction_id)
        token = request.id_token or (fsm.id_token if fsm else None)
        if token is not None:
            self.auth.learn(token, info, self.clock.utc(now))       # C10: the cache follows
        if fsm is not None:
            self._tx_outputs(fsm.evse_id, fsm.csms_response(info, now, self.clock.utc(now)), now)

    def _on_request_start(self, req: m.RequestStartTransactionRequest, now: float, size: int):
        """F01/F02: a remote start, authorized by the CSMS (AuthorizeRemoteStart false) or
        after an AuthorizeRequest of our own (true)."""
        rejected = m.RequestStartTransactionResponse(status=m.RequestStartStopStatus.Rejected)
        if self.registration is not Registration.Accepted:
            return rejected
        evse_id = req.evse_id
        if evse_id is None:
            free = [e for e, f in self.charging.fsm.items() if f.id_token is None and f.transaction_id is None]
            evse_id = free[0] if len(free) == 1 or (free and len(self.evses) == 1) else None
        fsm = self.charging.fsm.get(evse_id or 0)
        if fsm is None or fsm.id_token is not None or self.evses[evse_id].fault is not None \
                or self.connector_status(evse_id, 1) in ("Unavailable", "Faulted"):
            return rejected
        utc = self.clock.utc(now)
        if self.auth.settings.authorize_remote_start:
            outcome = self.auth.present(req.id_token, evse_id, online=self._online(), utc=utc)
            if not isinstance(outcome, (AuthorizeCall, TokenAccepted)):
                return rejected
            self._remote_starts[evse_id] = req.remote_start_id
            self._auth_outcome(outcome, now)
        else:
            self._groups[evse_id] = req.group_id_token
            self._tx_outputs(evse_id, fsm.authorized(req.id_token, now, utc, remote_start_id=req.remote_start_id),
                             now)
        return m.RequestStartTransactionResponse(status=m.RequestStartStopStatus.Accepted,
                                                 transaction_id=fsm.transaction_id)

    def _on_request_stop(self, req: m.RequestStopTransactionRequest, now: float, size: int):
        """F03: stop the transaction with that id."""
        fsm = self.charging.transaction_of(req.transaction_id)
        if fsm is None:
            return m.RequestStopTransactionResponse(status=m.RequestStartStopStatus.Rejected)
        self._tx_outputs(fsm.evse_id, fsm.remote_stop(now, self.clock.utc(now)), now)
        return m.RequestStopTransactionResponse(status=m.RequestStartStopStatus.Accepted)

    def _on_unlock_connector(self, req: m.UnlockConnectorRequest, now: float, size: int):
        """F05: unlock a connector that no authorized transaction holds. The answer (Unlocked or
        UnlockFailed) follows the hardware's UnlockResult."""
        evse = self.evses.get(req.evse_id)
        if evse is None or req.connector_id not in evse.connectors:
            return m.UnlockConnectorResponse(status=m.UnlockStatus.UnknownConnector)
        fsm = self.charging.fsm[req.evse_id]
        if fsm.transaction_id is not None and fsm.id_token is not None:
            return m.UnlockConnectorResponse(status=m.UnlockStatus.OngoingAuthorizedTransaction)
        return UnlockConnector(req.evse_id, req.connector_id)

    def _on_transaction_status(self, req: m.GetTransactionStatusRequest, now: float, size: int):
        """E14: whether it still runs, and whether messages of it are still queued."""
        ongoing = None
        if req.transaction_id is not None:
            ongoing = self.charging.transaction_of(req.transaction_id) is not None
        return m.GetTransactionStatusResponse(ongoing_indicator=ongoing,
                                              messages_in_queue=self.charging.queued_for(req.transaction_id))

    # --- connector status ---------------------------------------------------------------------
    def _connector(self, evse: int, connector: int):
        e = self.evses.get(evse)
        return e.connectors.get(connector) if e else None

    def _report_all_statuses(self, now: float) -> None:
        self.report.forget()
        self._report_changed_statuses(now)

    def _report_changed_statuses(self, now: float) -> None:
        """Queue StatusNotification + NotifyEvent(AvailabilityState) for what changed since it
        was last reported; only once accepted (B02/B03: nothing else is sent before). Changes
        while offline are reported after reconnecting."""
        if self.registration is not Registration.Accepted or not self.link_is_up:
            return
        for message in self.report.changed(self.clock.utc(now)):
            self._enqueue(message)
