"""The trio runtime: feeds the domain's Station with events and carries out its effects.

One boot cycle = open storage, build the device model and the station, connect,
run until a reboot is asked for or the process is told to stop. A reboot in the
sim deployment is a soft reboot: the cycle starts again in the same process,
everything reloaded from storage, with a new BootNotification.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import trio

from bootstrap.config import Config, ConfigError
from bootstrap.definitions import load_definitions
from bootstrap.storage_guard import StorageGuard
from domain.availability import AVAILABILITY_KEY
from domain.clock import StationClock
from domain.data_transfer import DataTransferRegistry, VendorExtension
from domain.device_model import DeviceModel, parse_ref
from domain.effects import Log, Persist, Reboot, Reconfigure, Remember, Send, StoreRecords
from domain.hardware_events import HardwareEvent
from domain.authorization.local_list import VERSION_KEY
from domain.authorization.service import CACHE_TABLE, LIST_TABLE
from domain.charging import SNAPSHOT_KEY
from domain.hardware_events import DeviceProblem, MeterSampled, UnlockResult
from domain.queue import TABLE as QUEUE_TABLE
from domain.station import NEXT_BOOT_REASON, AuthRecords, Station, StationInfo
from domain.transactions import PowerPath, UnlockConnector
from ports.csms_link import CsmsLink, FrameIn, LinkClosed, LinkDown, LinkSettings, LinkUp
from ports.hardware import EvseController, HardwareError, Meter, TokenReader
from ports.system import ServiceManager, System
from ports.storage import Storage

log = logging.getLogger("evse.station")
wire = logging.getLogger("evse.ocpp")      # one line per OCPP frame, both directions

_CONFIG_APPLIED = "config_applied:"
CLEAN_STOP = "clean_stop"                  # storage key: the last run ended on purpose        # storage key prefix: a [device_model] value last applied


@dataclass
class Deployment:
    """The adapters of one deployment, composed in bootstrap.compose."""

    make_link: Callable[[LinkSettings], CsmsLink]
    hardware: EvseController
    meter: Meter
    open_storage: Callable[[], Storage]
    system: System                     # reboots for a Reset (in process for the simulator)
    token_reader: TokenReader | None = None
    service: ServiceManager | None = None      # systemd notify when run as a service
    extensions: tuple[VendorExtension, ...] = ()   # DataTransfer vendors of this deployment
    meter_period: float = 1.0          # seconds between meter readings fed to the station
    parts: tuple[str, ...] = ()        # hardware components in the device model (Controller, RCD, ...)


def link_settings(config: Config, dm: DeviceModel) -> LinkSettings:
    c = config.csms
    return LinkSettings(
        csms_url=c.url,
        station_id=config.station.id,
        security_profile=c.security_profile,
        basic_auth_password=dm.get("SecurityCtrlr", "BasicAuthPassword") or c.basic_auth_password,
        csms_root_ca=str(c.csms_root_ca) if c.csms_root_ca else None,
        client_cert=str(c.client_cert) if c.client_cert else None,
        client_key=str(c.client_key) if c.client_key else None,
        ping_interval=float(dm.get_int("OCPPCommCtrlr", "WebSocketPingInterval")),
        retry_backoff_wait_minimum=float(dm.get_int("OCPPCommCtrlr", "RetryBackOffWaitMinimum")),
        retry_backoff_random_range=float(dm.get_int("OCPPCommCtrlr", "RetryBackOffRandomRange")),
        retry_backoff_repeat_times=dm.get_int("OCPPCommCtrlr", "RetryBackOffRepeatTimes"),
    )


def build_device_model(config: Config, storage: Storage, parts: tuple[str, ...] = ()) -> DeviceModel:
    """Definitions + stored values + the config's [device_model] table.

    A config value is applied when it is new or changed since it was last applied;
    otherwise a value the CSMS set since then is kept.
    """
    s, c = config.station, config.csms
    defs = load_definitions(
        list(s.evse_connectors), station_id=s.id, security_profile=c.security_profile,
        basic_auth_password=c.basic_auth_password, message_timeout=int(c.message_timeout), parts=parts,
    )
    dm = DeviceModel(defs, storage.load_variables())
    for key, raw in config.device_model.items():
        value = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
        try:
            ref = parse_ref(key)
        except ValueError as exc:
            raise ConfigError(config.source, str(exc), key=f"device_model.{key}") from None
        if dm.definition(ref) is None:
            raise ConfigError(config.source, "unknown variable", key=f"device_model.{key}")
        if storage.get(_CONFIG_APPLIED + ref.key) == value:
            continue
        if (err := dm.write(ref, value)) is not None:
            raise ConfigError(config.source, f"{value!r} is {err}" if err.startswith("not ") else f"{value!r}: {err}",
                              key=f"device_model.{key}")
        storage.save_variable(ref.key, value)
        storage.put(_CONFIG_APPLIED + ref.key, value)
    return dm


class StationRuntime:
    def __init__(
        self,
        config: Config,
        deployment: Deployment,
        *,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.config = config
        self.deployment = deployment
        self._wall_clock = wall_clock
        self.station: Station | None = None
        self.link: CsmsLink | None = None
        self.boot_count = 0
        self._stopping = False
        self.storage = StorageGuard()       # outlives boot cycles: what storage could not take yet

    def snapshot(self) -> dict:
        """The station's view for the sim control socket."""
        if self.station is None:
            return {"csms_connected": False, "evses": {}}
        return self.station.snapshot()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Boot cycles until cancelled (SIGTERM/SIGINT are handled by the caller)."""
        started = False
        storage = self.storage
        while True:
            storage.attach(self.deployment.open_storage())
            reason = None
            try:
                reason = await self._boot_cycle(storage, task_status if not started else None)
                started = True
            finally:
                storage.detach(stopping=reason is None)
            if reason is None:
                return
            log.info("soft reboot (%s)", reason)

    async def _boot_cycle(self, storage: StorageGuard, task_status) -> str | None:
        config = self.config
        dm = build_device_model(config, storage, self.deployment.parts)
        boot_reason = storage.get(NEXT_BOOT_REASON) or "PowerUp"
        s = config.station
        now = trio.current_time()
        station = Station(
            info=StationInfo(s.vendor_name, s.model, s.serial_number, s.firmware_version),
            evse_connectors=list(s.evse_connectors),
            device_model=dm,
            clock=StationClock(now, self._wall_clock()),
            boot_reason=boot_reason,
            event_id_seed=int(self._wall_clock().timestamp() * 1000) % 2**31,
            auth_records=AuthRecords(
                cache=storage.load_records(CACHE_TABLE), local_list=storage.load_records(LIST_TABLE),
                list_version=int(storage.get(VERSION_KEY) or 0)),
            queue_records=storage.load_records(QUEUE_TABLE),
            tx_snapshots={e: v for e in range(1, len(s.evse_connectors) + 1)
                          if (v := storage.get(SNAPSHOT_KEY.format(evse=e))) is not None},
            availability=storage.get(AVAILABILITY_KEY),
            data_transfer=DataTransferRegistry(self.deployment.extensions),
        )
        link = self.deployment.make_link(link_settings(config, dm))
        self.station, self.link = station, link
        self.boot_count += 1
        log.info("station %s boot %d (reason %s)", s.id, self.boot_count, boot_reason)
        send, receive = trio.open_memory_channel[FrameIn | LinkUp | LinkDown | HardwareEvent](1024)
        reboot: str | None = None
        # A soft reboot leaves its reason for the next boot, a clean stop (SIGTERM) its mark;
        # a power loss or a crash leaves nothing: its transactions end with PowerLoss.
        clean = storage.get(CLEAN_STOP) is not None
        storage.put(CLEAN_STOP, None)
        startup = station.start(now, soft_reboot=clean or boot_reason not in ("PowerUp", "Unknown", "Watchdog"))
        if storage.failing is not None:           # the station starts anyway, from what storage holds
            storage.discovered = False
            startup += station.storage_failed(now, f"{storage.failing}; found at start-up, the station "
                                                   f"starts from what the database holds")
        d = self.deployment
        self._commands, commands = trio.open_memory_channel[object](math.inf)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._hardware_commands, commands, send.clone())
                await nursery.start(d.hardware.run, send.clone())
                if d.token_reader is not None:
                    await nursery.start(d.token_reader.run, send.clone())
                await nursery.start(link.run, send.clone())
                nursery.start_soon(self._read_meters, send.clone(), len(s.evse_connectors))
                await self._apply(startup, link, storage, dm)
                if task_status is not None:
                    task_status.started()
                    if d.service is not None:
                        d.service.ready()
                reboot = await self._event_loop(station, link, storage, dm, receive)
                with trio.move_on_after(3):
                    await link.close(1000, "reboot")
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(3):
                    await link.close(1000, "station stopping" if reboot is None else "reboot")
                # the meter is read on demand, so it holds its device open between boot cycles
                if (aclose := getattr(d.meter, "aclose", None)) is not None:
                    with trio.move_on_after(1):
                        await aclose()
            if reboot is None:
                storage.put(CLEAN_STOP, "1")     # ended on purpose: not a power loss
                if d.service is not None:
                    d.service.stopping()
            self.station = None
        return reboot

    async def _event_loop(self, station: Station, link: CsmsLink, storage: StorageGuard,
                          dm: DeviceModel, receive: trio.MemoryReceiveChannel) -> str:
        wire_on = wire.isEnabledFor(logging.INFO)
        service = self.deployment.service
        # The watchdog is fed from this loop, so a wedged loop (not just a live process) restarts.
        ping_every = service.watchdog_interval if service is not None else None
        next_ping = trio.current_time() if ping_every else math.inf
        while True:
            try:
                event = receive.receive_nowait()     # fast path: no cancel scope when queued
            except trio.WouldBlock:
                deadline = station.next_deadline()
                event = None
                with trio.move_on_at(min(math.inf if deadline is None else deadline, next_ping,
                                         storage.retry_at)):
                    event = await receive.receive()
            now = trio.current_time()
            if now >= next_ping:
                service.watchdog()
                next_ping = now + ping_every
            if now >= storage.retry_at and storage.retry():      # storage can be written again
                reboot = await self._apply(station.storage_restored(now), link, storage, dm, wire_on)
                if reboot is not None:
                    return reboot
            if event is None and not ((d := station.next_deadline()) is not None and d <= now):
                continue
            if event is None:
                effects = station.tick(now)
            elif type(event) is FrameIn:
                if wire_on:
                    wire.info("CSMS -> CS  %s", event.text)
                effects = station.frame_received(event.text, now)
            elif type(event) is LinkUp:
                log.info("CSMS link up (%s)", event.url)
                if service is not None:
                    service.status(f"CSMS connected: {event.url}")
                effects = station.link_up(now)
            elif type(event) is LinkDown:
                log.info("CSMS link down: %s", event.reason)
                if service is not None:
                    service.status(f"CSMS link down: {event.reason}")
                effects = station.link_down(now)
            else:
                effects = station.hardware_event(event, now)
            if (d := station.next_deadline()) is not None and d <= now:
                effects += station.tick(now)
            reboot = await self._apply(effects, link, storage, dm, wire_on)
            if reboot is not None:
                return reboot

    async def _read_meters(self, send: trio.MemorySendChannel, evse_count: int) -> None:
        """Feed every EVSE's meter reading to the station once per meter_period."""
        meter, period = self.deployment.meter, self.deployment.meter_period
        failing: set[int] = set()
        async with send:
            while True:
                for evse in range(1, evse_count + 1):
                    try:
                        reading = await meter.read(evse)
                    except HardwareError as exc:   # never a value; the last good one stays
                        # warned once per failure streak (the adapter logs its own details)
                        (log.debug if evse in failing else log.warning)("meter of EVSE %d: %s", evse, exc)
                        if evse not in failing:
                            failing.add(evse)
                            await send.send(DeviceProblem(meter.component, True, evse, str(exc)))
                        continue
                    if evse in failing:
                        failing.discard(evse)
                        await send.send(DeviceProblem(meter.component, False, evse, "readings good again"))
                    await send.send(MeterSampled(evse, reading))
                await trio.sleep(period)

    async def _hardware_commands(self, commands: trio.MemoryReceiveChannel,
                                 events: trio.MemorySendChannel) -> None:
        """The station's hardware commands, in order, off the event loop: a slow or silent
        device never holds up the OCPP link (it reports its own fault). The outcome of an
        unlock the CSMS asked for goes back to the station, which answers with it."""
        hardware = self.deployment.hardware
        async with events:
            async for effect in commands:
                ok = False
                try:
                    if type(effect) is PowerPath:
                        await hardware.set_power_path(effect.evse, effect.closed)
                    else:
                        ok = await hardware.unlock_connector(effect.evse, effect.connector)
                except HardwareError as exc:
                    log.warning("EVSE %d: %s not carried out: %s", effect.evse, type(effect).__name__, exc)
                if type(effect) is UnlockConnector and effect.reply_to is not None:
                    await events.send(UnlockResult(effect.evse, effect.connector, ok, effect.reply_to))

    async def _apply(self, effects: list, link: CsmsLink, storage: StorageGuard, dm: DeviceModel,
                     wire_on: bool = False) -> str | None:
        """Carry out the station's effects in order; returns a reboot reason if one came.
        A write that finds storage failing is kept in memory (StorageGuard); the station
        learns of it (storage_failed) once this batch is done."""
        for effect in effects:
            t = type(effect)
            if t is Send:
                frame = effect.frame
                if storage.discovered and frame.startswith("[3,"):
                    frame = self._not_stored_answer(frame, storage.failing)
                if wire_on:
                    wire.info("CS -> CSMS  %s", frame)
                try:
                    await link.send(frame)
                except LinkClosed:
                    pass    # LinkDown follows; the station re-sends what matters
            elif t is Persist:
                storage.save_variable(effect.key, effect.value, effect.attribute)
            elif t is Remember:
                storage.put(effect.key, effect.value)
            elif t is StoreRecords:
                storage.write_records(effect.table, effect.upserts, effect.deletes,
                                      clear=effect.clear, kv=effect.kv)
            elif t is Reconfigure:
                link.update(link_settings(self.config, dm))
            elif t is Log:
                getattr(log, effect.level)(effect.text)
            elif t is PowerPath or t is UnlockConnector:
                self._commands.send_nowait(effect)
            elif t is Reboot:
                try:
                    in_process = await self.deployment.system.reboot(effect.reason)
                except OSError as exc:
                    log.error("reboot refused: %s", exc)
                    station = self.station
                    if station is not None:
                        return await self._apply(station.reboot_failed(trio.current_time(), str(exc)),
                                                 link, storage, dm, wire_on)
                    continue
                if in_process:
                    return effect.reason
                log.info("the operating system reboots the board (%s)", effect.reason)
        if storage.discovered and self.station is not None:
            storage.discovered = False
            return await self._apply(self.station.storage_failed(trio.current_time(), storage.failing),
                                     link, storage, dm, wire_on)
        return None

    def _not_stored_answer(self, frame: str, why: str | None) -> str:
        """The answer to a CSMS CALL whose effect was to be stored by a write of the same batch
        that found storage failing: no confirmation of what is not stored, an InternalError
        CALLERROR instead. (Once the station knows, it refuses such CALLs itself.)"""
        message_id = json.loads(frame)[1]
        return self.station.rpc.error_frame(message_id, "InternalError",
                                            f"storage unavailable, the change is not stored ({why})")
