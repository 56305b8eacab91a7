"""The real station on emulated boards: StationRuntime composed by compose() for an openevse
revision, its real adapters (RAPI controller, SDM630 over Modbus RTU, PN532 over HSU or I2C)
on real pseudo-terminals with the emulators on the master sides (devtools.emulators.rig),
against the dev CSMS over loopback websockets."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import trio

from adapters.openevse import rapi
from adapters.sdm630.meter import Sdm630Meter
from adapters.serial_tty import TtyDevice
from bootstrap.compose import compose
from bootstrap.config import parse_config
from devtools.dev_csms import DevCsms
from devtools.emulators.rig import HardwareRig, open_hardware_rig
from bootstrap.runtime import Deployment, StationRuntime

SID = "CS-HW-1"
REPO = Path(__file__).resolve().parents[2]
CARD = bytes.fromhex("04A2B3C4")          # a single-size NFCID1
CARD_7 = bytes.fromhex("04112233445566")  # a double-size one
ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"


@dataclass
class HardwareStation:
    csms: DevCsms
    rig: HardwareRig
    deployment: Deployment
    runtime: StationRuntime

    def mark(self) -> int:
        return len(self.csms.received)

    async def wait(self, action: str, after: int = 0, timeout: float = 8,
                   where: Callable[[dict], bool] | None = None) -> dict:
        return await self.csms.wait_for(action, station_id=SID, after=after, where=where, timeout=timeout)

    async def status(self, status: str, after: int = 0) -> dict:
        return await self.wait("StatusNotification", after, where=lambda p: p["connectorStatus"] == status)

    async def tx_event(self, after: int = 0, **match: object) -> dict:
        def where(p: dict) -> bool:
            info = p["transactionInfo"]
            return all(p.get(k) == v or info.get(k) == v for k, v in match.items())
        return await self.wait("TransactionEvent", after, where=where)

    async def notify_event(self, component: str, variable: str, value: str, after: int = 0) -> dict:
        """The event data of the first NotifyEvent (at or after `after`) reporting `value`."""
        return (await self.wait("NotifyEvent", after, where=_reports(component, variable, value)))["eventData"][0]

    def index_of(self, action: str, after: int, where: Callable[[dict], bool]) -> int:
        """Where in `received` the first such CALL (at or after `after`) is."""
        return next(i for i, (_, f) in enumerate(self.csms.received) if i >= after and f[0] == 2
                    and f[2] == action and where(f[3]))

    def calls(self, action: str, after: int = 0, before: int | None = None) -> list[dict]:
        return [f[3] for _, f in self.csms.received[after:before] if f[0] == 2 and f[2] == action]

    async def command(self, name: str, after: int) -> int:
        """Index of the controller's next command `name` (e.g. "S4 0") at or after `after`."""
        with trio.fail_after(8):
            return await self.rig.controller.wait_for_command(name, after=after)


@asynccontextmanager
async def hardware_station(tmp_path: Path, revision: str, *, meter_period: float = 0.2) -> AsyncIterator[HardwareStation]:
    """The rig, the dev CSMS and the station composed for `revision`, booted and idle."""
    csms = DevCsms(heartbeat_interval=60)
    async with open_hardware_rig(revision) as rig, trio.open_nursery() as nursery:
        await nursery.start(csms.serve)
        config = parse_config(f"""
            [station]
            id = "{SID}"
            vendor_name = "ACME"
            model = "HW-1"
            evse_connectors = [1]
            [csms]
            url = "{csms.url}"
            basic_auth_password = "0123456789abcdef"
            [storage]
            path = "station.db"
            [device_model]
            "OCPPCommCtrlr.RetryBackOffWaitMinimum" = 0
            "OCPPCommCtrlr.RetryBackOffRandomRange" = 1
            "SampledDataCtrlr.TxUpdatedInterval" = 1
            {rig.hardware_toml()}""", base_dir=tmp_path)
        runtime: StationRuntime | None = None
        deployment = compose(config, lambda: runtime.snapshot() if runtime else {}, rig.edge)
        deployment.meter_period = meter_period
        runtime = StationRuntime(config, deployment)
        await nursery.start(runtime.run)
        station = HardwareStation(csms, rig, deployment, runtime)
        await station.status("Available")
        yield station
        nursery.cancel_scope.cancel()


def _reports(component: str, variable: str, value: str) -> Callable[[dict], bool]:
    def where(payload: dict) -> bool:
        d = payload["eventData"][0]
        return (d["component"]["name"], d["variable"]["name"], d["actualValue"]) == (component, variable, value)
    return where


def sampled(events: list[dict], measurand: str = ENERGY) -> list[float]:
    return [float(sv["value"]) for e in events for mv in e.get("meterValue", []) for sv in mv["sampledValue"]
            if sv.get("measurand", ENERGY) == measurand]


async def card_session(b: HardwareStation) -> tuple[str, int]:
    """Plug, card, authorized (power path closed on the controller); (transactionId, mark)."""
    n = b.mark()
    b.rig.controller.plug()
    await b.status("Occupied", n)
    b.rig.reader.present_card(CARD)
    started = await b.tx_event(n, eventType="Started")
    await b.command("FE", await b.command("S4 0", 0))
    return started["transactionInfo"]["transactionId"], n


async def remote_session(b: HardwareStation) -> tuple[str, int]:
    n = b.mark()
    b.rig.controller.plug()
    await b.status("Occupied", n)
    res = await b.csms.call(SID, "RequestStartTransaction", {
        "evseId": 1, "remoteStartId": 7, "idToken": {"idToken": "REMOTE1", "type": "Central"}})
    assert res["status"] == "Accepted"
    started = await b.tx_event(n, eventType="Started")
    assert started["triggerReason"] == "RemoteStart" and started["transactionInfo"]["remoteStartId"] == 7
    await b.command("FE", await b.command("S4 0", 0))
    return started["transactionInfo"]["transactionId"], n


async def periodic_events(b: HardwareStation, count: int) -> list[dict]:
    """The next `count` MeterValuePeriodic events, each sent after the one before was seen
    (so the last ones carry readings taken well after anything the test changed before)."""
    events = []
    for _ in range(count):
        events.append(await b.tx_event(b.mark(), triggerReason="MeterValuePeriodic"))
    return events


# --- (a) a whole card session on rev2 ----------------------------------------------------------
async def test_rev2_card_session_power_path_follows_authorization_meter_from_sdm630(tmp_path):
    with trio.fail_after(30):
        async with hardware_station(tmp_path, "openevse-rev2") as b:
            ctl, sdm = b.rig.controller, b.rig.meter
            assert sdm is not None
            sdm.set_energy_kwh(12.5)
            # idle: the controller is held asleep and auth-locked, it never closed the path
            await b.command("S4 1", await b.command("FS", 0))
            assert ctl.auth_locked and ctl.mode == "sleeping"
            at_authorize: list[list[str]] = []

            def authorize(station_id: str, payload: dict) -> dict:
                at_authorize.append(list(ctl.commands))
                return {"idTokenInfo": {"status": "Accepted"}}
            b.csms.handlers["Authorize"] = authorize

            n = b.mark()
            ctl.plug()
            await b.status("Occupied", n)
            b.rig.reader.present_card(CARD)
            auth = await b.wait("Authorize", n)
            assert auth["idToken"] == {"idToken": "04A2B3C4", "type": "ISO14443"}
            started = await b.tx_event(n, eventType="Started")
            tx_id = started["transactionInfo"]["transactionId"]
            assert started["idToken"] == {"idToken": "04A2B3C4", "type": "ISO14443"}
            assert sampled([started]) == [12500.0]          # the SDM630's import register, in Wh
            # the power path was closed only after the authorization: S4 0, then FE
            assert at_authorize and "S4 0" not in at_authorize[0] and "FE" not in at_authorize[0]
            await b.command("FE", await b.command("S4 0", len(at_authorize[0])))
            # the EV asks for energy: the controller closes its relay, the meter sees the load
            ctl.request_energy()
            sdm.set_load(11000)
            await b.tx_event(n, chargingState="Charging")
            assert ctl.relay_closed
            periodic = await periodic_events(b, 3)
            energy = sampled(periodic)
            assert 12500.0 <= energy[0] < energy[-1] <= sdm.energy_kwh() * 1000
            assert sampled(periodic, POWER)[-1] == 11000.0   # total system power register
            # unplug: the transaction ends, the controller is locked and asleep again
            n_unplug, i_unplug = b.mark(), len(ctl.commands)
            sdm.set_load(0)
            ctl.unplug()
            ended = await b.tx_event(n_unplug, eventType="Ended")
            assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
            await b.command("S4 1", await b.command("FS", i_unplug))
            await b.status("Available", n_unplug)
            events = b.calls("TransactionEvent", n)
            assert {e["transactionInfo"]["transactionId"] for e in events} == {tx_id}
            assert [e["seqNo"] for e in events] == list(range(len(events)))
            all_energy = sampled(events)
            assert all_energy == sorted(all_energy) and all_energy[-1] > 12500.0
            assert b.deployment.hardware.stats.bad_frames == 0
            assert b.deployment.meter.stats.crc_errors == 0


# --- (b) a remote-start session on rev1 ---------------------------------------------------------
async def test_rev1_remote_start_session_meter_is_the_controllers_ammeter_reader_on_i2c(tmp_path):
    with trio.fail_after(30):
        async with hardware_station(tmp_path, "openevse-rev1") as b:
            ctl, bus = b.rig.controller, b.rig.reader
            assert b.rig.meter is None and b.deployment.meter.component == "ControlMetering"
            tx_id, n = await remote_session(b)
            ctl.request_energy()
            await b.tx_event(n, chargingState="Charging")
            assert ctl.relay_closed
            periodic = await periodic_events(b, 3)
            energy = sampled(periodic)
            assert 0.0 <= energy[0] < energy[-1]
            # GG: 16 A (the controller's current) at 230 V
            assert sampled(periodic, POWER)[-1] == ctl.current * ctl.voltage == 3680.0
            n_unplug, i_unplug = b.mark(), len(ctl.commands)
            ctl.unplug()
            ended = await b.tx_event(n_unplug, eventType="Ended")
            assert ended["transactionInfo"]["transactionId"] == tx_id
            assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
            await b.command("S4 1", await b.command("FS", i_unplug))
            events = b.calls("TransactionEvent", n)
            all_energy = sampled(events)
            assert all_energy == sorted(all_energy) and all_energy[-1] > 0.0
            # the PN532 answers on the I2C bus double all along, and a card reaches the CSMS
            assert bus.core.polls > 0 and bus.reads > 0
            n = b.mark()
            bus.present_card(CARD_7)
            auth = await b.wait("Authorize", n)
            assert auth["idToken"] == {"idToken": "04112233445566", "type": "ISO14443"}
            assert not [e for e in b.calls("NotifyEvent")
                        if e["eventData"][0]["component"]["name"] == "TokenReader"]


# --- (c) a GFCI trip mid-session ---------------------------------------------------------------
async def test_gfci_trip_faults_the_connector_and_ends_the_transaction_then_clears(tmp_path):
    with trio.fail_after(30):
        async with hardware_station(tmp_path, "openevse-rev2") as b:
            ctl = b.rig.controller
            tx_id, n = await card_session(b)
            ctl.request_energy()
            await b.tx_event(n, chargingState="Charging")
            n_trip, i_trip = b.mark(), len(ctl.commands)
            ctl.fault(0x06)
            await b.status("Faulted", n_trip)
            tripped = await b.notify_event("RCD", "Tripped", "true", n_trip)
            assert tripped["component"]["evse"] == {"id": 1}
            ended = await b.tx_event(n_trip, eventType="Ended")
            assert ended["transactionInfo"]["transactionId"] == tx_id
            assert ended["triggerReason"] == "AbnormalCondition"
            assert ended["transactionInfo"]["stoppedReason"] == "GroundFault"
            await b.command("S4 1", await b.command("FS", i_trip))     # the power path opened
            n_clear = b.mark()
            ctl.clear_fault()
            await b.status("Occupied", n_clear)                          # the EV is still plugged
            cleared = await b.notify_event("RCD", "Tripped", "false", n_clear)
            assert cleared["cleared"] is True
            # nothing started again by itself, and the relay stays open
            assert not b.calls("TransactionEvent", n_clear) and not ctl.relay_closed


# --- (d) the controller reboots mid-session ------------------------------------------------------
async def test_controller_reboot_reapplies_lock_and_current_and_the_transaction_goes_on(tmp_path):
    with trio.fail_after(30):
        async with hardware_station(tmp_path, "openevse-rev1") as b:
            ctl = b.rig.controller
            tx_id, n = await remote_session(b)
            ctl.request_energy()
            await b.tx_event(n, chargingState="Charging")
            # an offered current below the controller's saved one (as smart charging would set)
            await b.deployment.hardware.set_offered_current(1, 10)
            assert ctl.current == 10
            n_boot, i_boot = b.mark(), len(ctl.commands)
            ctl.reboot()                            # volatile settings lost: locked, 16 A
            problem = await b.notify_event("Controller", "Problem", "true", n_boot)
            assert problem["component"]["evse"] == {"id": 1}
            await b.command("FE", await b.command("S4 0", i_boot))
            await b.command("SC 10 V", i_boot)
            await b.command("SY", i_boot)
            solved = await b.notify_event("Controller", "Problem", "false", n_boot)
            assert solved["cleared"] is True
            assert not ctl.auth_locked and ctl.mode == "enabled" and ctl.current == 10 and ctl.relay_closed
            # the transaction goes on: charging, meter values, no end
            after = await periodic_events(b, 2)
            assert {e["transactionInfo"]["transactionId"] for e in after} == {tx_id}
            assert not [e for e in b.calls("TransactionEvent", n) if e["eventType"] == "Ended"]
            energy = sampled(b.calls("TransactionEvent", n))
            assert energy == sorted(energy) and energy[-1] > energy[0]
            assert sampled(after, POWER)[-1] == 10 * ctl.voltage


# --- (f) smart charging: a TxProfile reaches the controller at its period boundary ---------------
async def test_rev2_tx_profile_10a_then_6a_sets_the_controllers_current_at_the_boundary(tmp_path):
    """K01/K08 to the hardware (issue 18): the limit of a TxProfile's period is sent as `SC`
    (volatile) when the period begins, and the SDM630's power follows the EV's draw."""
    with trio.fail_after(30):
        async with hardware_station(tmp_path, "openevse-rev2") as b:
            ctl, sdm = b.rig.controller, b.rig.meter
            assert sdm is not None
            ctl.on_power = sdm.set_load          # the SDM630 behind the relay sees what the EV draws
            tx_id, n = await card_session(b)
            ctl.request_energy()
            await b.tx_event(n, chargingState="Charging")
            assert ctl.current == 16                         # the controller's own default
            i = len(ctl.commands)
            start = datetime.now(timezone.utc).replace(microsecond=0)
            res = await b.csms.call(SID, "SetChargingProfile", {"evseId": 1, "chargingProfile": {
                "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Absolute", "transactionId": tx_id,
                "chargingSchedule": [{"id": 1, "startSchedule": start.isoformat(), "chargingRateUnit": "A",
                                      "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0},
                                                                 {"startPeriod": 5, "limit": 6.0}]}]}})
            assert res["status"] == "Accepted"
            at_10 = await b.command("SC 10 V", i)
            assert ctl.current == 10
            await b.tx_event(b.mark(), triggerReason="MeterValuePeriodic")
            at_10_power = sampled(await periodic_events(b, 1), POWER)[-1]
            at_6 = await b.command("SC 6 V", at_10 + 1)
            boundary = (start + timedelta(seconds=5)).timestamp()
            # not before the period begins, by the station's clock: it was set from the CSMS's
            # BootNotification answer to within a loopback round trip (B02), hence the 50 ms
            assert datetime.now(timezone.utc).timestamp() >= boundary - 0.05
            assert [c for c in ctl.commands[i:at_6 + 1] if c.startswith("SC")] == ["SC 10 V", "SC 6 V"]
            assert ctl.current == 6 and ctl.relay_closed
            await b.tx_event(b.mark(), triggerReason="MeterValuePeriodic")
            at_6_power = sampled(await periodic_events(b, 1), POWER)[-1]
            assert (at_10_power, at_6_power) == (10 * ctl.voltage, 6 * ctl.voltage)
            assert not [e for e in b.calls("TransactionEvent", n) if e["eventType"] == "Ended"]


# --- UnlockConnector waits for the controller's answer --------------------------------------------
async def test_unlock_connector_is_answered_by_what_the_controller_did(tmp_path):
    with trio.fail_after(30):
        async with hardware_station(tmp_path, "openevse-rev2") as b:
            ctl = b.rig.controller
            i = len(ctl.commands)
            res = await b.csms.call(SID, "UnlockConnector", {"evseId": 1, "connectorId": 1})
            assert res == {"status": "Unlocked"}
            await b.command("S5 0", i)
            ctl.unsupported.add("S5")              # a firmware build without the connector lock
            res = await b.csms.call(SID, "UnlockConnector", {"evseId": 1, "connectorId": 1})
            assert res == {"status": "UnlockFailed"}


# --- (e) the meter falls silent ------------------------------------------------------------------
async def test_silent_meter_is_a_problem_not_a_stop_and_sends_no_bogus_value(tmp_path):
    with trio.fail_after(30):
        async with hardware_station(tmp_path, "openevse-rev2") as b:
            ctl, sdm = b.rig.controller, b.rig.meter
            assert sdm is not None
            tx_id, n = await card_session(b)
            ctl.request_energy()
            sdm.set_load(7400)
            await b.tx_event(n, chargingState="Charging")
            await periodic_events(b, 1)
            n_silent = b.mark()
            sdm.go_silent()
            last_wh = sdm.energy_kwh() * 1000          # nothing the meter said can be more
            problem = await b.notify_event("FiscalMetering", "Problem", "true", n_silent)
            assert problem["component"]["evse"] == {"id": 1}
            await periodic_events(b, 1)                 # the transaction goes on meanwhile
            sdm.go_silent(False)
            await b.notify_event("FiscalMetering", "Problem", "false", n_silent)
            # one queue, in order: what was sent before this NotifyEvent used no newer reading
            n_back = b.index_of("NotifyEvent", n_silent, _reports("FiscalMetering", "Problem", "false"))
            after = await periodic_events(b, 2)
            events = b.calls("TransactionEvent", n)
            assert {e["transactionInfo"]["transactionId"] for e in events} == {tx_id}
            assert not [e for e in events if e["eventType"] == "Ended"]
            silent_values = sampled(b.calls("TransactionEvent", n_silent, n_back))
            assert silent_values and all(v <= last_wh + 0.01 for v in silent_values)
            assert sampled(after)[-1] > last_wh             # fresh readings again
            energy = sampled(events)
            assert energy == sorted(energy) and all(v >= 0 for v in energy)
            assert b.deployment.meter.stats.timeouts > 0


# --- the rig as a helper process (for a station process, integrators) -----------------------------
async def _line(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = await stream.receive_some(1)
        assert chunk, f"end of stream after {data!r}"
        data += chunk
    return data


async def _rapi_until(stream: trio.abc.ReceiveStream, decoder: rapi.LineDecoder,
                      wanted: Callable[[object], bool]) -> object:
    while True:
        for line in decoder.feed(await stream.receive_some(256)):
            if wanted(message := rapi.parse(line)):
                return message


async def test_rig_helper_process_prints_its_hardware_table_and_serves_on_it(tmp_path):
    with trio.fail_after(20):
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "devtools.emulators.rig", "--revision", "openevse-rev2", "--print-config"],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert b"serving" in await _line(proc.stderr)          # after the table was flushed
            table = (await proc.stdout.receive_some(65536)).decode()
            hw = parse_config(f'[station]\nid = "X"\nevse_connectors = [1]\n{table}', tmp_path).hardware
            assert hw.adapter == "openevse-rev2" and hw.meter is not None
            # the SDM630 answers on the printed meter port
            meter = Sdm630Meter(TtyDevice(hw.meter.port, hw.meter.baudrate), unit_id=hw.meter.unit_id,
                                baudrate=hw.meter.baudrate)
            assert (await meter.read(1)).voltage_v == (230.0, 230.0, 230.0)
            await meter.aclose()
            # the controller on its port; stdin drives the EV
            stream = await TtyDevice(hw.evse_controller.port, hw.evse_controller.baudrate).open()
            async with stream:
                decoder = rapi.LineDecoder()
                await stream.send_all(rapi.encode("GS", seq=1))
                state = await _rapi_until(stream, decoder, lambda m: isinstance(m, rapi.Response) and m.seq == 1)
                assert state.ok and state.params[0] == "01"             # state A: no EV
                await proc.stdin.send_all(b"plug\n")
                await _rapi_until(stream, decoder, lambda m: isinstance(m, rapi.AsyncMessage)
                                  and m.kind == "AT" and m.params[1] == "02")     # pilot B
                assert (await _line(proc.stderr)).strip() == b"ok"
        finally:
            proc.terminate()
            await proc.wait()
