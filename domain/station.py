"""The charging station as a sans-I/O state machine: a router over the functional blocks.

Inputs are method calls carrying `now` (monotonic seconds): the station started, the link came
up or went down, a frame arrived, the hardware reported something, a deadline passed, storage
failed or recovered. Each returns the effects to carry out, in order (domain/effects.py). The
runtime calls `next_deadline()` to know when to call `tick()`.

The Station owns no behaviour of its own. It builds the shared context (device model, clock,
outbox, EVSE aggregates) and the blocks, and routes:
- a CSMS CALL to the block that declared its action (`Block.calls`);
- the answer to one of our CALLs to the `Answer` the CALL carries (the outbox does that);
- a hardware event to the blocks that declared its type (`Block.events`), a finished job to
  the block that declared the job's type (`Block.jobs`);
- a deadline to the block whose `next_deadline()` passed.
After every input: settings changes applied, statuses reported, the next CALL sent, what waits
for an idle EVSE settled.

The blocks, by OCPP 2.0.1 functional block: provisioning/ (B01-B04 boot, heartbeat, clock;
B11-B12 reset), device_model/ (B05-B08), authorization/ (C, D), transactions/ (E, J),
remote_control (F), availability/ (G), smart_charging/ (K), firmware/ (L01), diagnostics/ (N01),
customer_information (N09/N10), data_transfer (P), storage_health (A04 MemoryExhaustion), security/
(A02-A04 certificate renewal and security events, M03-M05 certificates).
"""
from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

from domain import messages as m
from domain.authorization.block import Authorization
from domain.availability.block import AvailabilityBlock
from domain.block import Block, Routing
from domain.clock import StationClock
from domain.context import Context, StartArgs, StationInfo
from domain.customer_information import CustomerInformationBlock
from domain.data_transfer import DataTransferBlock, DataTransferRegistry
from domain.device_model import DeviceModel
from domain.device_model.block import DeviceModelBlock
from domain.diagnostics.block import DiagnosticsBlock
from domain.effects import Effect, Log
from domain.evse import Evse
from domain.firmware.block import FirmwareBlock
from domain.hardware_events import HardwareEvent, JobFinished, MeterSampled
from domain.ocppj import CallErrorReceived, CallResultReceived, Dropped, IncomingCall, OcppJEndpoint, Reply
from domain.outbox import Outbox, Registration
from domain.provisioning.boot import Provisioning
from domain.provisioning.reset import ResetBlock
from domain.provisioning.network_profiles import NetworkProfiles
from domain.remote_control import RemoteControl
from domain.security.block import SecurityBlock
from domain.security.events import INVALID_CSMS_CERTIFICATE
from domain.smart_charging.block import SmartCharging
from domain.storage_health import StorageHealthBlock
from domain.stored_state import StoredState
from domain.transactions import EvseTransactions, TxSettings
from domain.transactions.block import Transactions

__all__ = ["Registration", "Station", "StationInfo", "StoredState"]

# The functional blocks, in the order they see an input. A new block: write its module and
# name its class here.
BLOCKS: tuple[type[Block], ...] = (
    StorageHealthBlock, Transactions, Authorization, AvailabilityBlock, Provisioning, NetworkProfiles,
    DeviceModelBlock, ResetBlock, RemoteControl, DataTransferBlock, SmartCharging, SecurityBlock,
    FirmwareBlock, DiagnosticsBlock, CustomerInformationBlock)


class Station:
    # the blocks the router calls itself (each set from BLOCKS by its name)
    storage_health: StorageHealthBlock
    transactions: Transactions
    availability: AvailabilityBlock
    provisioning: Provisioning
    network: NetworkProfiles
    reset: ResetBlock
    data_transfer: DataTransferBlock
    security: SecurityBlock

    def __init__(
        self,
        *,
        info: StationInfo,
        evse_connectors: list[int],
        device_model: DeviceModel,
        clock: StationClock,
        boot_reason: str | None = None,
        stored: StoredState | None = None,
        new_message_id: Callable[[], str] | None = None,
        event_id_seed: int = 1,
        new_transaction_id: Callable[[], str] | None = None,
        data_transfer: DataTransferRegistry | None = None,
        default_limit_a: float | None = None,
        firmware_updates: bool = False,
        log_uploads: bool = False,
        certificates: tuple = (),
        unproven_certificates: tuple = (),
    ) -> None:
        stored = stored or StoredState()
        self.info, self.dm, self.clock = info, device_model, clock
        self._effects: list[Effect] = []
        settings = TxSettings.from_device_model(device_model)
        evses = {i: Evse.create(i, n, EvseTransactions(i, settings, new_transaction_id=new_transaction_id))
                 for i, n in enumerate(evse_connectors, start=1)}
        self.outbox = Outbox(dm=device_model, effects=self._effects, registry=m.REQUESTS)
        ctx = self.ctx = Context(dm=device_model, clock=clock, outbox=self.outbox, evses=evses,
                                 effects=self._effects, info=info)

        args = StartArgs(boot_reason, event_id_seed, data_transfer, default_limit_a,
                         firmware_updates=firmware_updates, log_uploads=log_uploads,
                         certificates=tuple(certificates), unproven=tuple(unproven_certificates))
        self._route = r = Routing(cls(ctx, stored, args) for cls in BLOCKS)
        self._blocks = r.blocks
        ctx.triggers = r.triggers
        for block in r.blocks:                  # the blocks as attributes, for the runtime and views
            setattr(self, block.name, block)
        self.rpc = OcppJEndpoint(
            supported_actions=r.calls.keys(),
            new_message_id=new_message_id or (lambda: str(uuid.uuid4())),
            message_timeout=float(device_model.get_int("OCPPCommCtrlr", "MessageTimeout", "Default") or 30))
        self.outbox.attach(self.rpc, r.answers, stored.table(Outbox.TABLE))
        self.provisioning.set_registration(Registration.Unregistered)

    @staticmethod
    def stored_layout(evse_count: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The record tables and station-state keys the station starts from (StoredState): the
        outbox's queue and what the blocks declare."""
        evse_ids = range(1, evse_count + 1)
        tables = (Outbox.TABLE, *(t for b in BLOCKS for t in b.tables))
        keys = tuple(k for b in BLOCKS for k in b.stored_keys(evse_ids))
        return tables, keys

    # --- inputs ------------------------------------------------------------------------------
    def start(self, now: float, *, soft_reboot: bool | None = None, clean_stop: bool = False) -> list[Effect]:
        """After construction: end what the previous run left running (E: power loss). The
        previous run ended on purpose (its transactions end with Reboot, not PowerLoss) when it
        was stopped cleanly (`clean_stop`) or rebooted for a reason other than a power-up."""
        if soft_reboot is None:
            soft_reboot = clean_stop or self.boot_reason not in ("PowerUp", "Unknown", "Watchdog")
        for b in self._blocks:
            b.start(now, soft_reboot=soft_reboot)
        return self._take()

    def link_up(self, now: float) -> list[Effect]:
        self.outbox.connected()
        for b in self._blocks:
            b.link_up(now)
        return self._finish(now)

    def link_down(self, now: float, *, attempt: int = 0, security_event: str | None = None,
                  reason: str = "") -> list[Effect]:
        """The link is down: `attempt` > 0 when a connection attempt failed (consecutive failures),
        `security_event` the A04 type of a failed security check (B10 fallback and A04 in
        network_profiles.py; M05.FR.14 fallback root in the security block)."""
        self.outbox.link_up = False
        self.ctx.link_failures = attempt
        self.network.link_failed(now, attempt=attempt, security_event=security_event, reason=reason)
        if security_event == INVALID_CSMS_CERTIFICATE:
            self.security.csms_certificate_rejected(now)
        for b in self._blocks:
            b.link_down(now)
        self.outbox.disconnected(now)     # the CALL in flight: sent again later, or given up
        return self._finish(now)          # sends nothing now; a reset waiting for delivery goes ahead

    def frame_received(self, frame: str | bytes, now: float) -> list[Effect]:
        ev = self.rpc.receive(frame, now)
        t = type(ev)
        if t is IncomingCall:
            if ev.warning is not None:      # a leniency (README "Leniencies"), once per connection
                self._effects.append(Log("warning", ev.warning))
            size = len(frame) if isinstance(frame, bytes) or frame.isascii() else len(frame.encode())
            self._on_call(ev, now, size)
        elif t is CallResultReceived:
            if ev.warning is not None:
                self._effects.append(Log("warning", ev.warning))
            self.outbox.result(ev, now)
        elif t is CallErrorReceived:
            self.outbox.failed(ev, now)
        elif t is Reply:
            if self.rpc.refusal is None:
                self._effects.append(Log("warning", f"bad frame from CSMS: {ev.reason}"))
            self.outbox.send_frame(ev.frame)
        elif t is Dropped:
            self._effects.append(Log("warning", f"frame dropped: {ev.reason}"))
        return self._finish(now)

    def hardware_event(self, event: HardwareEvent, now: float) -> list[Effect]:
        t = type(event)
        if t is MeterSampled:                  # the per-sample path: nothing else to do
            self.transactions.meter(event, now)
            return self._finish(now) if self._effects or self.outbox.has_work else []
        if t is JobFinished:
            block = self._route.by_job.get(type(event.job))
            if block is not None:
                block.job_finished(event, now)
        else:
            for block in self._route.by_event.get(t, ()):
                block.hardware(event, now)
        self.ctx.status_changed()
        return self._finish(now)

    def tick(self, now: float) -> list[Effect]:
        timed_out = self.rpc.check_timeout(now)
        if timed_out is not None:
            self.outbox.failed(timed_out, now)
        for b in self._route.timed:
            d = b.next_deadline()
            if d is not None and d <= now:
                b.tick(now)
        return self._finish(now)

    def storage_failed(self, now: float, why: str) -> list[Effect]:
        """Storage cannot be written (domain/storage_health.py)."""
        self.storage_health.failed(now, why)
        return self._finish(now)

    def storage_restored(self, now: float) -> list[Effect]:
        self.storage_health.restored(now)
        return self._finish(now)

    def reboot_failed(self, now: float, why: str) -> list[Effect]:
        """The system could not reboot as a Reset asked (ResetRetries)."""
        self.reset.reboot_failed(now, why)
        return self._take()

    def send_data_transfer(self, vendor_id: str, message_id: str | None, data, now: float) -> list[Effect]:
        """P02: a DataTransfer of the station's own; the answer goes to the vendor's extension."""
        self.data_transfer.send(vendor_id, message_id, data)
        return self._finish(now)

    def next_deadline(self) -> float | None:
        d = self.outbox.next_deadline()
        for b in self._route.timed:
            bd = b.next_deadline()
            if bd is not None and (d is None or bd < d):
                d = bd
        return d

    # --- views ---------------------------------------------------------------------------------
    @property
    def boot_reason(self) -> str:
        return str(self.provisioning.boot_reason)

    registration = property(lambda self: self.ctx.registration)
    link_is_up = property(lambda self: self.ctx.link_is_up)
    evses = property(lambda self: self.ctx.evses)

    def connector_status(self, evse: int, connector: int) -> str:
        return self.ctx.evses[evse].connector_status(connector)

    def snapshot(self) -> dict:
        """What the sim control socket's `state` shows of the station."""
        return {
            "csms_connected": self.link_is_up,
            "registration": str(self.registration),
            "evses": {
                e.id: {
                    "transaction_id": e.fsm.transaction_id,
                    "authorized": (t.id_token if (t := e.fsm.id_token) else None),
                    "connectors": {c.connector: c.status(e.fault) for c in e.connectors.values()},
                }
                for e in self.ctx.evses.values()
            },
        }

    # --- routing helpers -------------------------------------------------------------------------
    def _on_call(self, call: IncomingCall, now: float, size: int) -> None:
        result = self.storage_health.refusal(call.action, call.request) or \
            self._route.calls[call.action](call.request, now, size)
        for b in self._route.flushing:                        # stored before the answer goes out
            b.flush()
        if isinstance(result, self._route.job_types):         # answered once the hardware has done it
            self._effects.append(dataclasses.replace(result, reply_to=call.message_id))
        elif isinstance(result, tuple):
            code, description = result
            self.outbox.refuse(call.message_id, code, description)
        else:
            self.outbox.answer(call.message_id, result)

    def _registered(self, now: float) -> None:
        self.transactions.set_online(True)

    def _finish(self, now: float) -> list[Effect]:
        """After every input: settings changes reach their users, statuses are reported, the
        next CALL goes out, what waits for an idle EVSE is settled."""
        self.transactions.apply_settings(now)
        self.availability.report_statuses(now)
        self.outbox.pump(now)
        for b in self._route.settling:
            b.settle(now)
        self.availability.report_statuses(now)
        return self._take()

    def _take(self) -> list[Effect]:
        for b in self._route.flushing:
            b.flush()
        out = self._effects[:]
        self._effects.clear()
        return out

