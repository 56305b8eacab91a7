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
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import trio

from bootstrap.certificates import run_certificate_job
from bootstrap.config import Config, ConfigError
from bootstrap.credentials import TlsFiles, provision, tls_files, valid_credentials
from bootstrap.definitions import load_definitions
from bootstrap.logging_setup import frame_log
from bootstrap.redact import register_secret
from bootstrap.status import StatusBoard, station_status, summary
from bootstrap.firmware_jobs import FileJobs
from bootstrap.storage_guard import StorageGuard
from domain.clock import StationClock
from domain.data_transfer import DataTransferRegistry, VendorExtension
from domain.device_model import DeviceModel, parse_ref
from domain.effects import (CERTIFICATE_JOBS, EnergyOffer, Log, Persist, Reboot, Reconfigure, ReconnectLink, Remember,
                            Send, StoreRecords, UnlockConnector)
from domain.hardware_events import DeviceProblem, HardwareEvent, JobFinished, MeterSampled
from domain.provisioning.network_profiles import NetworkConnection
from domain.security.certificates import STATION_KINDS
from domain.station import Registration, Station, StationInfo, StoredState
from ports.certificate_store import CertificateStore, CertificateStoreError
from ports.csms_link import CsmsLink, FrameIn, LinkClosed, LinkDown, LinkSettings, LinkUp
from ports.file_transfer import FileTransfer
from ports.firmware_installer import FirmwareInstaller
from ports.firmware_signature import FirmwareSignature
from ports.hardware import EvseController, HardwareError, Meter, TokenReader
from ports.system import ServiceManager, System
from ports.storage import Storage

log = logging.getLogger("evse.station")

_CONFIG_APPLIED = "config_applied:"
CLEAN_STOP = "clean_stop"                  # storage key: the last run ended on purpose


@dataclass(slots=True)
class _Run:
    """What the effect executors of one batch work with."""

    link: CsmsLink
    storage: StorageGuard
    dm: DeviceModel
    wire_on: bool
    reconnect: bool = False            # a Reconfigure asked for a new connection after this batch


@dataclass(slots=True, eq=False)
class _Cycle:
    """The event loop's state in one boot cycle, shared with the link's frame callback."""

    station: Station
    link: CsmsLink
    storage: StorageGuard
    dm: DeviceModel
    receive: trio.MemoryReceiveChannel
    wire_on: bool
    ping_every: float | None = None
    next_ping: float = math.inf
    held: deque = field(default_factory=deque)   # inputs taken from their source, not handled yet
    busy: bool = False                  # an input is being handled (one at a time)
    waiting: int = 0                    # tasks waiting for their turn
    free: trio.Event = field(default_factory=trio.Event)
    wait: trio.CancelScope | None = None   # the event loop's wait for an event, while it waits
    reboot: str | None = None
    confirmed: bool = False             # the installer was told of this boot's Accepted BootNotification
    # the station's next deadline as the last step left it (inf: none; None: not known, ask it)
    deadline: float | None = None


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
    meter_period: float = 1.0          # seconds between meter readings while energy may flow
    parts: tuple[str, ...] = ()        # hardware components in the device model (Controller, RCD, ...)
    file_transfer: FileTransfer | None = None           # firmware downloads, log uploads (L01, N01)
    firmware_installer: FirmwareInstaller | None = None  # A/B install and rollback (L01)
    # opens the certificate store (roots and the station's keys, blocks A, M) at each boot cycle
    open_certificates: Callable[[], CertificateStore] | None = None
    # how blocking work (the certificate store's files, key generation) runs off the event loop
    blocking: Callable[..., Awaitable[Any]] = trio.to_thread.run_sync
    firmware_signature: FirmwareSignature | None = None  # signing certificate and signature checks (L01)
    firmware_dir: Path | None = None                     # where firmware images are downloaded to


def link_settings(config: Config, dm: DeviceModel, connection: NetworkConnection | None = None,
                  files: TlsFiles | None = None) -> LinkSettings:
    """The link's settings: the installation file's connection (slot 0) or the network connection
    profile of the slot the station tries now (`connection`, B09/B10), the TLS files (`files`:
    the certificate store's, bootstrap/credentials.py; default the TOML's) and the device model's."""
    c = config.csms
    files = files or tls_files(config, None)
    password = dm.get("SecurityCtrlr", "BasicAuthPassword") or c.basic_auth_password
    register_secret(password)            # never logged (bootstrap.redact)
    return LinkSettings(
        csms_url=c.url if connection is None else connection.url,
        station_id=config.station.id,
        security_profile=c.security_profile if connection is None else connection.security_profile,
        basic_auth_password=password,
        csms_root_ca=files.csms_root_ca,
        client_cert=files.client_cert,
        client_key=files.client_key,
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
            shown = "the value" if "password" in ref.variable.lower() else repr(value)     # a secret: not shown
            raise ConfigError(config.source, f"{shown} is {err}" if err.startswith("not ") else f"{shown}: {err}",
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
        # how each effect is carried out, and each hardware job (a new one: one entry here)
        self._executors = {
            Send: self._send, Persist: self._persist, Remember: self._remember, StoreRecords: self._store_records,
            Reconfigure: self._reconfigure, Log: self._log, Reboot: self._reboot,
            EnergyOffer: self._hardware_job, UnlockConnector: self._hardware_job,
            ReconnectLink: self._reconnect_link,
            **{job: self._certificate_job for job in CERTIFICATE_JOBS},
        }
        self._jobs = {EnergyOffer: self._energy_offer, UnlockConnector: self._unlock}
        self._flowing: set[int] = set()     # EVSEs whose power path is (or may be) closed
        self._meter_wake = trio.Event()     # a power path changed: read the meters now
        # outlives boot cycles: what storage could not take yet
        self.storage = StorageGuard(commit_delay=config.storage.commit_delay)
        self._cycle: _Cycle | None = None   # the running event loop's state
        self.files = FileJobs(config, deployment)    # firmware (L01) and log upload (N01) jobs
        self._executors.update(self.files.executors)
        self.certificates: CertificateStore | None = None     # opened at each boot cycle
        self.status_board = StatusBoard()   # the local status (bootstrap/status.py)
        self._status_line: str | None = None
        self._station_changed = False       # an effect executor called into the station (see _step)

    def link_settings(self, dm: DeviceModel) -> LinkSettings:
        """What the link connects with now: the network profile slot the station tries (B10) and
        the TLS files of the certificate store (its current ChargingStationCertificate: A02.FR.08,
        a renewed certificate replaces the configuration's; the new or the fallback
        CSMSRootCertificate: M05.FR.14)."""
        station = self.station
        if station is not None:         # A05.FR.02/03: what a higher security profile needs
            self._station_changed = True
            csms_root, station_cert = valid_credentials(self.config, self.certificates,
                                                        station.clock.utc(trio.current_time()))
            station.network.credentials_known(csms_root=csms_root, station_certificate=station_cert)
        return link_settings(self.config, dm, station.network.connection() if station is not None else None,
                             tls_files(self.config, self.certificates,
                                       fallback_roots=station is not None and station.security.use_fallback_roots))

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
        s = config.station
        d = self.deployment
        self.certificates = await self._open_certificates()
        certificates, unproven = await self._certificate_catalogue()
        firmware_version = await self.files.after_boot(s.firmware_version)     # once per boot (L01)
        now = trio.current_time()
        tables, keys = Station.stored_layout(len(s.evse_connectors))      # what the blocks declare
        station = Station(
            info=StationInfo(s.vendor_name, s.model, s.serial_number, firmware_version),
            evse_connectors=list(s.evse_connectors),
            device_model=dm,
            clock=StationClock(now, self._wall_clock()),
            stored=StoredState(records={t: storage.load_records(t) for t in tables},
                               values={k: v for k in keys if (v := storage.get(k)) is not None}),
            event_id_seed=int(self._wall_clock().timestamp() * 1000) % 2**31,
            data_transfer=DataTransferRegistry(self.deployment.extensions),
            default_limit_a=config.smart_charging.default_limit_a,
            certificates=certificates,
            unproven_certificates=unproven,
            firmware_updates=self.files.firmware_updates,
            log_uploads=self.files.log_uploads,
        )
        boot_reason = station.boot_reason
        self.station = station
        try:
            link = d.make_link(self.link_settings(dm))
        except ValueError as exc:       # a network profile slot the link cannot use: the TOML's (slot 0)
            log.error("network profile slot %d not usable (%s); connecting with the configuration's",
                      station.network.slot, exc)
            link = d.make_link(link_settings(config, dm, None, tls_files(config, self.certificates)))
        self.link = link
        self.boot_count += 1
        log.info("station %s boot %d (reason %s)", s.id, self.boot_count, boot_reason)
        send, receive = trio.open_memory_channel[FrameIn | LinkUp | LinkDown | HardwareEvent](1024)
        reboot: str | None = None
        # A soft reboot leaves its reason for the next boot, a clean stop (SIGTERM) its mark;
        # a power loss or a crash leaves nothing: its transactions end with PowerLoss.
        clean = storage.get(CLEAN_STOP) is not None
        storage.put(CLEAN_STOP, None)
        startup = station.start(now, clean_stop=clean)
        if storage.failing is not None:           # the station starts anyway, from what storage holds
            storage.discovered = False
            startup += station.storage_failed(now, f"{storage.failing}; found at start-up, the station "
                                                   f"starts from what the database holds")
        self._commands, commands = trio.open_memory_channel[object](math.inf)
        self._certificate_jobs, certificate_jobs = trio.open_memory_channel[object](math.inf)
        self._flowing.clear()          # the controller starts a boot cycle with its power paths open
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._hardware_commands, commands, send.clone())
                nursery.start_soon(self._run_certificate_jobs, certificate_jobs, send.clone())
                await nursery.start(d.hardware.run, send.clone())
                if d.token_reader is not None:
                    await nursery.start(d.token_reader.run, send.clone())
                # inbound frames go straight to the station (_frame_in), the rest through the channel
                await nursery.start(partial(link.run, send.clone(), on_frame=self._frame_in))
                nursery.start_soon(self._read_meters, send.clone(), len(s.evse_connectors))
                self.files.attach(nursery, send.clone())
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
        """Feed the station every event of the channel and every deadline; inbound frames come
        through `_frame_in` instead (the link's task calls it directly). One input at a time:
        each step holds `_Cycle.busy` until its effects are carried out."""
        service = self.deployment.service
        cyc = self._cycle = _Cycle(station, link, storage, dm, receive, frame_log.enabled)  # frames off: no record
        # The watchdog is fed from this loop, so a wedged loop (not just a live process) restarts.
        cyc.ping_every = service.watchdog_interval if service is not None else None
        cyc.next_ping = trio.current_time() if cyc.ping_every else math.inf
        try:
            while cyc.reboot is None:
                try:
                    event = receive.receive_nowait()     # fast path: no cancel scope when queued
                except trio.WouldBlock:
                    event = None
                    with trio.move_on_at(self._wake_at(cyc)) as cyc.wait:
                        event = await receive.receive()
                    cyc.wait = None
                await self._turn(cyc, event)
            return cyc.reboot
        finally:
            self._cycle = None

    async def _frame_in(self, text: str) -> None:
        """An inbound frame, called by the link's receiving task (no task hop, issue 16): the
        events queued before it go first (LinkUp before the CSMS's first frame), then the
        frame; the event loop's wait is shortened to the station's new next deadline."""
        cyc = self._cycle
        if cyc is None or cyc.reboot is not None:
            return                      # between boot cycles, or rebooting: as a closed link
        receive, held = cyc.receive, cyc.held
        while True:
            try:
                held.append(receive.receive_nowait())
            except trio.WouldBlock:
                break
        await self._turn(cyc, FrameIn(text))
        if (wait := cyc.wait) is not None:
            if cyc.reboot is not None:
                wait.cancel()
            else:
                wait.deadline = min(wait.deadline, self._wake_at(cyc))

    async def _turn(self, cyc: "_Cycle", event) -> None:
        """Handle `event` (None: woken for a deadline) after every input held before it, one
        input at a time: whoever has the turn (the event loop, or the link's task in
        `_frame_in`) handles everything held, in the order it was taken from its source."""
        cyc.held.append(event)
        if cyc.busy:
            cyc.waiting += 1
            try:
                while cyc.busy:
                    await cyc.free.wait()
            finally:
                cyc.waiting -= 1
        cyc.busy = True
        try:
            held = cyc.held
            while held and cyc.reboot is None:
                cyc.reboot = await self._step(cyc, held.popleft())
        finally:
            cyc.busy = False
            if cyc.waiting:
                cyc.free.set()
                cyc.free = trio.Event()

    @staticmethod
    def _wake_at(cyc: "_Cycle") -> float:
        """When the event loop must wake up with no event: a deadline of the station, the
        watchdog, a storage retry, the group commit's bound."""
        deadline = cyc.deadline
        if deadline is None:
            deadline = cyc.station.next_deadline()
        return min(math.inf if deadline is None else deadline, cyc.next_ping,
                   cyc.storage.retry_at, cyc.storage.flush_at)

    async def _step(self, cyc: "_Cycle", event) -> str | None:
        """One input (an event, or None: woken by a deadline) fed to the station and its
        effects carried out; returns a reboot reason if one came."""
        station, link, storage, dm, wire_on = cyc.station, cyc.link, cyc.storage, cyc.dm, cyc.wire_on
        service = self.deployment.service
        now = trio.current_time()
        cyc.deadline = None                   # not known until this step has handled its input
        if now >= cyc.next_ping:
            service.watchdog()
            cyc.next_ping = now + cyc.ping_every
            self._update_status_line()
        if now >= storage.flush_at:           # group commit: the deferred writes, at the latest now
            storage.flush()
            if (reboot := await self._apply([], link, storage, dm, wire_on)) is not None:
                return reboot
        if now >= storage.retry_at and storage.retry():      # storage can be written again
            reboot = await self._apply(station.storage_restored(now), link, storage, dm, wire_on)
            if reboot is not None:
                return reboot
        if event is None and not ((d := station.next_deadline()) is not None and d <= now):
            cyc.deadline = math.inf if d is None else d
            return None
        if event is None:
            effects = station.tick(now)
        elif type(event) is FrameIn:
            if wire_on:
                frame_log.received(event.text)
            effects = station.frame_received(event.text, now)
        elif type(event) is LinkUp:
            log.info("CSMS link up (%s)", event.url)
            self.status_board.link_up(event.url)
            self._update_status_line()
            effects = station.link_up(now)
        elif type(event) is LinkDown:
            log.info("CSMS link down: %s", event.reason)
            self.status_board.link_down(event.reason)
            self._update_status_line()
            effects = station.link_down(now, attempt=event.attempt, security_event=event.security_event,
                                        reason=event.reason)
        else:
            effects = station.hardware_event(event, now)
        if (d := station.next_deadline()) is not None and d <= now:
            effects += station.tick(now)
            d = None                          # the tick moved it: ask again
        elif d is None:
            d = math.inf
        self._station_changed = False
        reboot = await self._apply(effects, link, storage, dm, wire_on)
        if not self._station_changed:         # no executor called into the station: d still holds
            cyc.deadline = d                  # (the wait's deadline without asking it again)
        if not cyc.confirmed and station.registration is Registration.Accepted:
            cyc.confirmed = True        # the installer is told of this boot's Accepted BootNotification
            self.files.boot_accepted()
        return reboot

    def _update_status_line(self) -> None:
        """systemd's STATUS: the one-line summary of the local status, sent when it changed
        (on link changes and at each watchdog ping)."""
        service = self.deployment.service
        if service is None or not getattr(service, "enabled", True):
            return
        line = summary(station_status(self, problems=False))
        if line != self._status_line:
            self._status_line = line
            service.status(line)

    async def _read_meters(self, send: trio.MemorySendChannel, evse_count: int) -> None:
        """Feed every EVSE's meter reading to the station: once at the start, once per
        meter_period while a power path is (or may be) closed, and once after a power path
        changed. While every power path is open no energy flows (the controller does not
        energise the EV), the registers stand still: no periodic wake-up (issue 16, idle);
        the last reading stays the station's value (idle clock-aligned values, J01)."""
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
                    self.status_board.readings[evse] = (reading, time.time())
                    await send.send(MeterSampled(evse, reading))
                if self._flowing:
                    with trio.move_on_after(period):
                        await self._meter_wake.wait()
                else:
                    await self._meter_wake.wait()
                self._meter_wake = trio.Event()

    async def _hardware_commands(self, commands: trio.MemoryReceiveChannel,
                                 events: trio.MemorySendChannel) -> None:
        """The station's hardware jobs, in order, off the event loop: a slow or silent device
        never holds up the OCPP link (it reports its own fault). A job that answers a CSMS
        CALL (`reply_to`) comes back to the station as JobFinished."""
        async with events:
            async for job in commands:
                ok, detail = False, ""
                try:
                    ok = await self._jobs[type(job)](job)
                except HardwareError as exc:
                    detail = str(exc)
                    log.warning("EVSE %d: %s not carried out: %s", job.evse, type(job).__name__, exc)
                if getattr(job, "reply_to", None) is not None:
                    await events.send(JobFinished(job, ok, detail))

    async def _open_certificates(self) -> CertificateStore | None:
        """The deployment's certificate store; None (the station starts anyway, its certificate
        operations fail with InternalError) when there is none or it cannot be opened (a state
        directory where its folders neither exist nor can be made). Opened, provisioned and listed
        on the event loop, before anything else of the boot cycle runs: a few small files, and no
        worker thread started for them (a thread left idle ends 10 s later: CPU while idle).
        Certificate jobs (key generation, installs) run off the loop (`Deployment.blocking`)."""
        opener = self.deployment.open_certificates
        if opener is None:
            return None
        try:
            store = opener()
        except CertificateStoreError as exc:
            log.error("no certificate store: %s", exc)
            return None
        # the TOML's first CA bundle and station certificate, where the store has none (factory)
        provision(self.config, store, self._wall_clock())
        return store

    async def _certificate_catalogue(self) -> tuple[tuple, tuple]:
        """The certificate store's listing, for the station's catalogue (M03), and the station
        kinds whose replaced certificate is still kept (a renewal the last run did not prove)."""
        store = self.certificates
        if store is None:
            return (), ()

        def read() -> tuple[tuple, tuple]:
            return tuple(store.list()), tuple(k for k in STATION_KINDS if store.has_previous(k))

        try:
            return read()
        except (CertificateStoreError, OSError) as exc:
            log.error("certificate store unreadable, starting without its certificates: %s", exc)
            return (), ()

    async def _run_certificate_jobs(self, jobs: trio.MemoryReceiveChannel, events: trio.MemorySendChannel) -> None:
        """The security block's certificate jobs, in order, off the event loop; each comes back
        as a JobFinished with its outcome (bootstrap/certificates.py)."""
        d = self.deployment
        async with events:
            async for job in jobs:
                await events.send(await d.blocking(run_certificate_job, self.certificates, job))

    async def _energy_offer(self, job: EnergyOffer) -> bool:
        hardware = self.deployment.hardware
        if job.closed:
            self._flowing.add(job.evse)        # read the meter from now on, whatever comes
            if job.limit_a is not None:
                await hardware.set_offered_current(job.evse, job.limit_a)     # the limit before the energy
        await hardware.set_power_path(job.evse, job.closed)
        if not job.closed:
            self._flowing.discard(job.evse)    # open for sure: the reading after it is the last
        self._meter_wake.set()
        return True

    async def _unlock(self, job: UnlockConnector) -> bool:
        return await self.deployment.hardware.unlock_connector(job.evse, job.connector)

    async def _apply(self, effects: list, link: CsmsLink, storage: StorageGuard, dm: DeviceModel,
                     wire_on: bool = False) -> str | None:
        """Carry out the station's effects in order (each by the executor of its type); returns a
        reboot reason if one came. A write that finds storage failing is kept in memory
        (StorageGuard); the station learns of it (storage_failed) once this batch is done."""
        run = _Run(link, storage, dm, wire_on)
        executors = self._executors
        for effect in effects:
            reboot = await executors[type(effect)](effect, run)
            if reboot is not None:
                return reboot
        if run.reconnect:               # after the batch's frames (the answer that caused it) are sent
            link.reconnect()
        if storage.discovered and self.station is not None:
            storage.discovered = False
            self._station_changed = True
            return await self._apply(self.station.storage_failed(trio.current_time(), storage.failing),
                                     link, storage, dm, wire_on)
        return None

    # --- effect executors, by effect type ---------------------------------------------------
    async def _send(self, effect: Send, run: "_Run") -> None:
        frame = effect.frame
        if effect.queued and run.storage.deferred:
            # the deletes of the messages delivered before it first: after a crash of the
            # process only this message can come again (docs/durability.md)
            run.storage.flush(durable=False)
        if run.storage.discovered and frame.startswith("[3,"):
            frame = self._not_stored_answer(frame, run.storage.failing)
        if run.wire_on:
            frame_log.sent(frame)
        try:
            await run.link.send(frame)
        except LinkClosed:
            pass    # LinkDown follows; the station re-sends what matters

    async def _persist(self, effect: Persist, run: "_Run") -> None:
        run.storage.save_variable(effect.key, effect.value, effect.attribute)

    async def _remember(self, effect: Remember, run: "_Run") -> None:
        run.storage.put(effect.key, effect.value)

    async def _store_records(self, effect: StoreRecords, run: "_Run") -> None:
        run.storage.write_records(effect.table, effect.upserts, effect.deletes, clear=effect.clear, kv=effect.kv,
                                  deferred=effect.deferred)

    async def _reconfigure(self, effect: Reconfigure, run: "_Run") -> None:
        self._update_link(run)
        run.reconnect = run.reconnect or effect.reconnect

    def _update_link(self, run: "_Run") -> None:
        try:
            run.link.update(self.link_settings(run.dm))
        except ValueError as exc:       # e.g. a slot's profile needs files the store no longer has
            log.error("link settings not applied: %s", exc)

    async def _reconnect_link(self, effect: ReconnectLink, run: "_Run") -> None:
        """A02.FR.08: connect again with the station certificate that is current now."""
        log.info("reconnecting to the CSMS: %s", effect.reason)
        self._update_link(run)
        run.link.reconnect()

    async def _certificate_job(self, effect, run: "_Run") -> None:
        self._certificate_jobs.send_nowait(effect)

    async def _log(self, effect: Log, run: "_Run") -> None:
        getattr(log, effect.level)(effect.text)

    async def _hardware_job(self, effect, run: "_Run") -> None:
        self._commands.send_nowait(effect)

    async def _reboot(self, effect: Reboot, run: "_Run") -> str | None:
        try:
            in_process = await self.deployment.system.reboot(effect.reason)
        except OSError as exc:
            log.error("reboot refused: %s", exc)
            station = self.station
            if station is not None:
                self._station_changed = True
                return await self._apply(station.reboot_failed(trio.current_time(), str(exc)),
                                         run.link, run.storage, run.dm, run.wire_on)
            return None
        if in_process:
            return effect.reason
        log.info("the operating system reboots the board (%s)", effect.reason)
        return None

    def _not_stored_answer(self, frame: str, why: str | None) -> str:
        """The answer to a CSMS CALL whose effect was to be stored by a write of the same batch
        that found storage failing: no confirmation of what is not stored, an InternalError
        CALLERROR instead. (Once the station knows, it refuses such CALLs itself.)"""
        message_id = json.loads(frame)[1]
        return self.station.rpc.error_frame(message_id, "InternalError",
                                            f"storage unavailable, the change is not stored ({why})")
