"""The real station (runtime + websocket link + SQLite + sim hardware) against the
dev CSMS over loopback websockets (in memory when a test runs under the MockClock:
tests/memory_link.py)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import trio

from bootstrap.compose import compose
from bootstrap.config import parse_config
from devtools.dev_csms import CallError, DevCsms
from bootstrap.runtime import StationRuntime
from tests.memory_link import in_memory, rig_utc_now, serve_csms, sim_command

SID = "CS-E2E-1"


def make_config(tmp_path: Path, url: str, extra: str = "", evses: str = "[1]"):
    return parse_config(
        f"""
        [station]
        id = "{SID}"
        vendor_name = "ACME"
        model = "E2E-1"
        evse_connectors = {evses}
        [csms]
        url = "{url}"
        basic_auth_password = "0123456789abcdef"
        [storage]
        path = "station.db"
        [hardware]
        control_socket = "sim.sock"
        [device_model]
        "OCPPCommCtrlr.RetryBackOffWaitMinimum" = 0
        "OCPPCommCtrlr.RetryBackOffRandomRange" = 1
        {extra}
        """,
        base_dir=tmp_path,
    )


class Rig:
    def __init__(self, tmp_path: Path, csms: DevCsms, config):
        self.tmp_path, self.csms, self.config = tmp_path, csms, config
        self.runtime: StationRuntime | None = None
        self.sock = str(tmp_path / "sim.sock")

    async def start(self, nursery: trio.Nursery) -> StationRuntime:
        rt = None
        deployment = in_memory(compose(self.config, lambda: rt.snapshot()), self.csms, nursery)
        rt = StationRuntime(self.config, deployment, wall_clock=rig_utc_now)
        self.runtime = rt
        await nursery.start(rt.run)
        return rt

    async def control(self, **cmd):
        reply = await sim_command(self.runtime.deployment, self.sock, cmd)
        assert reply["ok"], reply
        return reply

    def actions(self, after: int = 0) -> list[str]:
        return [f[2] for _, f in self.csms.received[after:] if f[0] == 2]


async def open_rig(nursery, tmp_path, *, heartbeat_interval=60, extra="", evses="[1]", **csms_kw):
    csms = DevCsms(heartbeat_interval=heartbeat_interval, clock=rig_utc_now, **csms_kw)
    await serve_csms(csms, nursery)
    rig = Rig(tmp_path, csms, make_config(tmp_path, csms.url, extra, evses))
    await rig.start(nursery)
    return rig


async def test_boot_status_and_heartbeat(tmp_path):
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            rig = await open_rig(nursery, tmp_path, heartbeat_interval=1, evses="[1, 2]")
            boot = await rig.csms.wait_for("BootNotification", station_id=SID)
            assert boot == {"chargingStation": {"model": "E2E-1", "vendorName": "ACME", "firmwareVersion": "0.1.0"},
                            "reason": "PowerUp"}
            for evse, conn in ((1, 1), (2, 1), (2, 2)):
                await rig.csms.wait_for("StatusNotification", where=lambda p, e=evse, c=conn: (
                    p["evseId"], p["connectorId"], p["connectorStatus"]) == (e, c, "Available"))
                await rig.csms.wait_for("NotifyEvent", where=lambda p, e=evse, c=conn: (
                    p["eventData"][0]["component"]["evse"] == {"id": e, "connectorId": c}))
            n = len(rig.csms.received)
            await rig.csms.wait_for("Heartbeat", after=n, timeout=5)
            # the interval from the BootNotificationResponse was adopted and stored
            res = await rig.csms.call(SID, "GetVariables", {"getVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
            assert res["getVariableResult"][0]["attributeValue"] == "1"
            nursery.cancel_scope.cancel()


async def test_plug_unplug_reported_and_state_command(tmp_path):
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            rig = await open_rig(nursery, tmp_path)
            await rig.csms.wait_for("StatusNotification", where=lambda p: p["connectorStatus"] == "Available")
            n = len(rig.csms.received)
            await rig.control(cmd="plug", evse=1, connector=1)
            await rig.csms.wait_for("StatusNotification", after=n, where=lambda p: p["connectorStatus"] == "Occupied")
            state = await rig.control(cmd="state")
            assert state["csms_connected"] is True
            assert state["evses"][0]["connectors"][0]["status"] == "Occupied"
            n = len(rig.csms.received)
            await rig.control(cmd="fault", evse=1, fault="GroundFailure")
            await rig.csms.wait_for("StatusNotification", after=n, where=lambda p: p["connectorStatus"] == "Faulted")
            n = len(rig.csms.received)
            await rig.control(cmd="clear_fault", evse=1)
            await rig.control(cmd="unplug", evse=1, connector=1)
            await rig.csms.wait_for("StatusNotification", after=n, where=lambda p: p["connectorStatus"] == "Available")
            nursery.cancel_scope.cancel()


async def test_set_variable_persists_across_soft_reboot(tmp_path):
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            rig = await open_rig(nursery, tmp_path)
            await rig.csms.wait_for("StatusNotification")
            res = await rig.csms.call(SID, "SetVariables", {"setVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"},
                 "attributeValue": "345"}]})
            assert res["setVariableResult"][0]["attributeStatus"] == "Accepted"
            n = len(rig.csms.received)
            await rig.control(cmd="plug", evse=1, connector=1)
            res = await rig.csms.call(SID, "Reset", {"type": "Immediate"})
            assert res == {"status": "Accepted"}
            boot = await rig.csms.wait_for("BootNotification", after=n)
            assert boot["reason"] == "RemoteReset"
            # the plugged EV is still there after the soft reboot
            await rig.csms.wait_for("StatusNotification", after=n, where=lambda p: p["connectorStatus"] == "Occupied")
            res = await rig.csms.call(SID, "GetVariables", {"getVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"}}]})
            assert res["getVariableResult"][0]["attributeValue"] == "345"
            assert rig.runtime.boot_count == 2
            nursery.cancel_scope.cancel()


async def test_reconnects_after_csms_drops_without_new_boot(tmp_path):
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            rig = await open_rig(nursery, tmp_path)
            await rig.csms.wait_for("StatusNotification")
            await trio.sleep(0.2)
            await rig.csms.disconnect(SID, abrupt=True)
            await rig.control(cmd="plug", evse=1, connector=1)      # while offline
            n = len(rig.csms.received)
            await rig.csms.wait_connected(SID, timeout=10)
            await rig.csms.wait_for("StatusNotification", after=n, where=lambda p: p["connectorStatus"] == "Occupied")
            assert "BootNotification" not in rig.actions(n)
            nursery.cancel_scope.cancel()


async def test_link_settings_set_by_the_csms_reach_the_link_at_once(tmp_path, caplog):
    """SecurityCtrlr.BasicAuthPassword and the OCPPCommCtrlr back-off, accepted by SetVariables,
    go to the websocket link at once (the runtime carries out the station's Reconfigure
    effect): the station reconnects at once with the new password (A01), which is now the only
    one the CSMS takes, and after the next connection loss it waits the new back-off."""
    new_password = "a-new-password-0123"
    caplog.set_level(logging.WARNING, logger="evse.link")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            rig = await open_rig(nursery, tmp_path, basic_auth={SID: "0123456789abcdef"})
            await rig.csms.wait_for("StatusNotification")
            rig.csms.basic_auth = {SID: new_password}
            before = len(rig.csms.handshakes)
            res = await rig.csms.call(SID, "SetVariables", {"setVariableData": [
                {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
                 "attributeValue": new_password},
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "RetryBackOffWaitMinimum"},
                 "attributeValue": "2"},
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "RetryBackOffRandomRange"},
                 "attributeValue": "0"}]})
            assert [r["attributeStatus"] for r in res["setVariableResult"]] == ["Accepted"] * 3
            _, (_, _, status) = await rig.csms.wait_handshake(SID, after=before)
            assert status == 101                                          # the new password, at once
            await rig.csms.wait_connected(SID)
            caplog.clear()
            lost = trio.current_time()
            await rig.csms.disconnect(SID, abrupt=True)
            await rig.csms.wait_connected(SID, timeout=10)
            assert trio.current_time() - lost >= 2.0
            waits = [r.getMessage() for r in caplog.records if "retry in" in r.getMessage()]
            assert waits and all("retry in 2.0 s" in w for w in waits), waits
            assert not any("401" in w for w in waits)                    # the first attempt got in
            nursery.cancel_scope.cancel()


async def test_malformed_frames_get_callerror_and_change_nothing(tmp_path):
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            rig = await open_rig(nursery, tmp_path)
            await rig.csms.wait_for("StatusNotification")
            sent_before = len(rig.csms.received)
            for text in ("not json", "[2", '{"a": 1}', '[2, "id-1", "GetVariables", {"getVariableData": "x"}]',
                         '[2, "id-2", "FlyToTheMoon", {}]', '[9, "id-3"]', "[3, \"nobody\", {}]"):
                await rig.csms.send_raw(SID, text)
            try:
                await rig.csms.call(SID, "GetVariables", {"getVariableData": []})
            except CallError as e:
                assert e.code == "FormatViolation"   # minItems 1
            else:
                raise AssertionError("an empty getVariableData must be refused")
            res = await rig.csms.call(SID, "GetVariables", {"getVariableData": [
                {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "Identity"}}]})
            assert res["getVariableResult"][0]["attributeValue"] == SID
            errors = [f for _, f in rig.csms.received[sent_before:] if f[0] == 4]
            codes = [(f[1], f[2]) for f in errors]
            assert ("-1", "RpcFrameworkError") in codes
            assert ("id-1", "TypeConstraintViolation") in codes
            assert ("id-2", "NotImplemented") in codes
            assert ("id-3", "MessageTypeNotSupported") in codes
            for f in errors:
                json.dumps(f)
                assert len(f) == 5 and isinstance(f[4], dict) and len(f[3]) <= 255
            nursery.cancel_scope.cancel()


async def test_pending_then_accepted(tmp_path):
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            csms = DevCsms(heartbeat_interval=1, boot_status="Pending")
            await nursery.start(csms.serve)
            rig = Rig(tmp_path, csms, make_config(tmp_path, csms.url))
            await rig.start(nursery)
            await csms.wait_for("BootNotification")
            res = await csms.call(SID, "GetVariables", {"getVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "OfflineThreshold"}}]})
            assert res["getVariableResult"][0]["attributeStatus"] == "Accepted"
            assert rig.actions() == ["BootNotification"]
            csms.boot_status = "Accepted"
            await csms.wait_for("StatusNotification", timeout=5)
            assert rig.actions()[:2] == ["BootNotification", "BootNotification"]
            nursery.cancel_scope.cancel()


async def test_card_at_the_reader_is_authorized_by_the_csms_and_cached(tmp_path):
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            rig = await open_rig(nursery, tmp_path)
            await rig.csms.wait_for("StatusNotification")
            n = len(rig.csms.received)
            await rig.control(cmd="token", id_token="04A2B3C4", type="ISO14443")
            auth = await rig.csms.wait_for("Authorize", after=n)
            assert auth == {"idToken": {"idToken": "04A2B3C4", "type": "ISO14443"}}
            with trio.fail_after(5):
                while (await rig.control(cmd="state"))["evses"][0].get("authorized") != "04A2B3C4":
                    await trio.sleep(0.02)
            # the cache survives a reboot: offline, the card is accepted without the CSMS
            await rig.control(cmd="token", id_token="04A2B3C4")          # same card: authorization ends
            await rig.csms.call(SID, "Reset", {"type": "Immediate"})
            await rig.csms.wait_for("BootNotification", after=n)
            await rig.csms.wait_for("StatusNotification", after=n + 3)
            rig.csms.basic_auth = {SID: "not-the-station-password"}     # it cannot come back
            await rig.csms.disconnect(SID, abrupt=True)
            with trio.fail_after(5):
                while (await rig.control(cmd="state"))["csms_connected"]:
                    await trio.sleep(0.02)
            n = len(rig.csms.received)
            await rig.control(cmd="token", id_token="04a2b3c4")
            with trio.fail_after(5):
                while (await rig.control(cmd="state"))["evses"][0].get("authorized") != "04a2b3c4":
                    await trio.sleep(0.02)
            assert "Authorize" not in rig.actions(n)
            nursery.cancel_scope.cancel()
