"""The development CSMS (devtools/dev_csms.py), driven by a raw trio-websocket client
that plays the station, over real websockets on 127.0.0.1."""
from __future__ import annotations

import ast
import base64
import json
import re
import ssl
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
import importlib.util
from pathlib import Path

import pytest
import trio
import trustme
import trio.testing
from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError, open_websocket, wrap_client_stream

import devtools.dev_csms as dev_csms_module
from devtools.dev_csms import CallError, DevCsms, StationDisconnected, format_report_table, main, print_log

# The official schemas, as shipped by the PyPI `ocpp` package (a test dependency).
SCHEMAS = Path(importlib.util.find_spec("ocpp").submodule_search_locations[0]) / "v201" / "schemas"
RFC3339_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TIMEOUT = 5


# ---------------------------------------------------------------- helpers

@pytest.fixture
async def csms(nursery):
    lines: list[str] = []
    server = DevCsms(log=lines.append, heartbeat_interval=42)
    await nursery.start(server.serve)
    server.test_lines = lines  # type: ignore[attr-defined]
    return server


@asynccontextmanager
async def station(csms: DevCsms, station_id: str = "CS-0001", *, path: str | None = None,
                  subprotocols=("ocpp2.0.1",), headers=None, ssl_context=None,
                  connect_timeout: float = 3):
    async with open_websocket("127.0.0.1", csms.port, path or f"/ocpp/{station_id}",
                              use_ssl=ssl_context or False, subprotocols=list(subprotocols),
                              extra_headers=headers or [], connect_timeout=connect_timeout,
                              disconnect_timeout=1) as ws:
        yield ws


async def rpc(ws, action: str, payload: dict, message_id: str = "m1") -> list:
    await ws.send_message(json.dumps([2, message_id, action, payload]))
    return json.loads(await ws.get_message())


def basic(user: str, password: str) -> list[tuple[bytes, bytes]]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [(b"Authorization", f"Basic {token}".encode())]


def validate(action: str, payload: dict) -> None:
    schema_file = SCHEMAS / f"{action}Response.json"
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - the venv has it
        jsonschema = None
    if jsonschema is None or not schema_file.exists():
        return
    schema = json.loads(schema_file.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(payload)


# ---------------------------------------------------------------- handshake

async def test_path_and_subprotocol_accepted(csms):
    with trio.fail_after(TIMEOUT):
        async with station(csms, subprotocols=("ocpp1.6", "ocpp2.0.1")) as ws:
            assert ws.subprotocol == "ocpp2.0.1"
            await csms.wait_connected("CS-0001")
            assert csms.connected == {"CS-0001"}
        # any prefix; the id is the last, percent-decoded segment
        async with station(csms, path="/some/prefix/CS%20A%2F1?x=1"):
            await csms.wait_connected("CS A/1")
    assert csms.url == f"ws://127.0.0.1:{csms.port}/ocpp"


@pytest.mark.parametrize("path", ["/ocpp", "/", "/ocpp/"])
async def test_path_without_station_id_is_rejected(csms, path):
    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as info:
            async with station(csms, path=path):
                pass
    assert info.value.status_code == 404
    assert not csms.connected


async def test_missing_subprotocol_rejected_with_400_and_logged(csms):
    with trio.fail_after(TIMEOUT):
        for offered in ((), ("ocpp1.6",)):
            with pytest.raises(ConnectionRejected) as info:
                async with station(csms, subprotocols=offered):
                    pass
            assert info.value.status_code == 400
    assert any("400" in line and "ocpp2.0.1" in line and "not offered" in line for line in csms.test_lines)
    assert not csms.received


async def test_basic_auth(nursery):
    csms = DevCsms(basic_auth={"CS-0001": "s3cret-password-0001"})
    await nursery.start(csms.serve)
    with trio.fail_after(TIMEOUT):
        for headers in ([], basic("CS-0001", "wrong"), basic("CS-0002", "s3cret-password-0001"),
                        [(b"Authorization", b"Bearer abc")], [(b"Authorization", b"Basic !!!")]):
            with pytest.raises(ConnectionRejected) as info:
                async with station(csms, headers=headers):
                    pass
            assert info.value.status_code == 401
        async with station(csms, headers=basic("CS-0001", "s3cret-password-0001")) as ws:
            reply = await rpc(ws, "Heartbeat", {})
            assert reply[0] == 3


async def test_refuse_connections_and_handshake_record(csms):
    """refuse_connections: that many otherwise acceptable handshakes are refused (503), then
    they are accepted again; every handshake is recorded with its time and HTTP status."""
    with trio.fail_after(TIMEOUT):
        with pytest.raises(ConnectionRejected) as info:          # recorded without a station id
            async with station(csms, path="/ocpp"):
                pass
        assert info.value.status_code == 404
        csms.refuse_connections = 2
        before = trio.current_time()
        for _ in range(2):
            with pytest.raises(ConnectionRejected) as info:
                async with station(csms, "CS-R"):
                    pass
            assert info.value.status_code == 503
        assert csms.refuse_connections == 0 and not csms.connected
        async with station(csms, "CS-R") as ws:
            assert (await rpc(ws, "Heartbeat", {}))[0] == 3
        index, (at, sid, status) = await csms.wait_handshake("CS-R", after=3)
    assert [(sid, status) for _, sid, status in csms.handshakes] == [
        (None, 404), ("CS-R", 503), ("CS-R", 503), ("CS-R", 101)]
    assert (index, sid, status) == (3, "CS-R", 101)
    times = [t for t, _, _ in csms.handshakes]
    assert times == sorted(times) and before <= times[1] <= at <= trio.current_time()
    assert any("refused (503)" in line for line in csms.test_lines)


async def test_wait_handshake_times_out(csms):
    with pytest.raises(trio.TooSlowError):
        await csms.wait_handshake("CS-NOBODY", timeout=0.05)


async def test_boot_statuses_answer_the_next_boots_in_order(nursery):
    csms = DevCsms(boot_status="Accepted", boot_statuses=["Pending", "Rejected"], heartbeat_interval=7)
    await nursery.start(csms.serve)
    with trio.fail_after(TIMEOUT):
        async with station(csms) as ws:
            answers = [(await rpc(ws, "BootNotification", {}, f"b{i}"))[2] for i in range(3)]
    assert [a["status"] for a in answers] == ["Pending", "Rejected", "Accepted"]
    assert all(a["interval"] == 7 for a in answers) and csms.boot_statuses == []


async def test_frame_times(csms):
    with trio.fail_after(TIMEOUT):
        async with station(csms) as ws:
            start = trio.current_time()
            await rpc(ws, "Heartbeat", {})
            await csms.wait_connected("CS-0001")
    assert len(csms.received_at) == len(csms.received) == 1
    assert len(csms.sent_at) == len(csms.sent) == 1
    assert start <= csms.received_at[0] <= csms.sent_at[0] <= trio.current_time()


def _tls(tmp_path):
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_ctx)
    bare_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(bare_ctx)
    ca.issue_cert("CS-0001").configure_cert(client_ctx)
    return server_ctx, client_ctx, bare_ctx


async def test_tls_with_client_certificates(nursery, tmp_path):
    server_ctx, client_ctx, bare_ctx = _tls(tmp_path)
    lines: list[str] = []
    csms = DevCsms(ssl_context=server_ctx, log=lines.append)
    await nursery.start(csms.serve)
    assert csms.url.startswith("wss://127.0.0.1:")
    with trio.fail_after(TIMEOUT):
        with pytest.raises((HandshakeError, ConnectionClosed, trio.BrokenResourceError, OSError)):
            # no client certificate (with TLS 1.3 the client only notices via its connect timeout)
            async with station(csms, ssl_context=bare_ctx, connect_timeout=0.5) as ws:
                await ws.get_message()
        async with station(csms, ssl_context=client_ctx) as ws:
            assert (await rpc(ws, "Heartbeat", {}))[0] == 3
    assert any("TLS handshake" in line for line in lines)
    assert any("CS-0001 connected" in line and "TLS" in line for line in lines)


# ---------------------------------------------------------------- default answers

async def test_boot_notification_and_heartbeat_answers_are_schema_valid(csms):
    boot = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}
    with trio.fail_after(TIMEOUT):
        async with station(csms) as ws:
            reply = await rpc(ws, "BootNotification", boot, "b1")
            assert reply[:2] == [3, "b1"]
            assert reply[2]["interval"] == 42 and reply[2]["status"] == "Accepted"
            assert RFC3339_MS_Z.match(reply[2]["currentTime"])
            validate("BootNotification", reply[2])
            reply = await rpc(ws, "Heartbeat", {}, "h1")
            assert RFC3339_MS_Z.match(reply[2]["currentTime"])
            validate("Heartbeat", reply[2])
    assert csms.received[0] == ("CS-0001", [2, "b1", "BootNotification", boot])
    assert csms.sent[0][0] == "CS-0001" and csms.sent[0][1][:2] == [3, "b1"]


async def test_serve_stream_over_memory_and_the_time_from_its_clock(nursery, autojump_clock):
    """serve_stream serves a station on any connected stream (here in memory, under the
    MockClock); the currentTime of BootNotification and Heartbeat comes from `clock`."""
    ticks = iter([datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc),
                  datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))])
    server = DevCsms(heartbeat_interval=42, clock=lambda: next(ticks))
    station_end, csms_end = trio.testing.memory_stream_pair()
    nursery.start_soon(server.serve_stream, csms_end)
    boot = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}
    with trio.fail_after(TIMEOUT):
        ws = await wrap_client_stream(nursery, station_end, "csms", "/ocpp/CS-MEM", subprotocols=["ocpp2.0.1"])
        assert ws.subprotocol == "ocpp2.0.1"
        reply = await rpc(ws, "BootNotification", boot, "b1")
        assert reply == [3, "b1", {"currentTime": "2030-01-02T03:04:05.678Z", "interval": 42, "status": "Accepted"}]
        reply = await rpc(ws, "Heartbeat", {}, "h1")
        assert reply == [3, "h1", {"currentTime": "2030-01-02T03:04:05.000Z"}]
        assert server.connected == {"CS-MEM"}
        await ws.aclose()
        await server.wait_for("Heartbeat", station_id="CS-MEM")
        while server.connected:
            await trio.sleep(0.01)
    assert server.disconnects == [("CS-MEM", "code 1000")]


@pytest.mark.parametrize(("action", "request_payload", "expected"), [
    ("StatusNotification", {"timestamp": "2024-01-01T00:00:00Z", "connectorStatus": "Available",
                            "evseId": 1, "connectorId": 1}, {}),
    ("NotifyReport", {"requestId": 1, "generatedAt": "2024-01-01T00:00:00Z", "seqNo": 0}, {}),
    ("Authorize", {"idToken": {"idToken": "X", "type": "ISO14443"}}, {"idTokenInfo": {"status": "Accepted"}}),
    ("TransactionEvent", {"eventType": "Updated"}, {}),
    ("TransactionEvent", {"eventType": "Started", "idToken": {"idToken": "X", "type": "ISO14443"}},
     {"idTokenInfo": {"status": "Accepted"}}),
    ("DataTransfer", {"vendorId": "acme"}, {"status": "UnknownVendorId"}),
    ("SignCertificate", {"csr": "x"}, {"status": "Accepted"}),
])
async def test_other_default_answers(csms, action, request_payload, expected):
    with trio.fail_after(TIMEOUT):
        async with station(csms) as ws:
            reply = await rpc(ws, action, request_payload)
    assert reply == [3, "m1", expected]
    validate(action, reply[2])


async def test_unknown_action_bad_handlers_and_replaced_handlers(csms):
    async def slow_accept(station_id, payload):
        await trio.sleep(0.01)
        return {"currentTime": "2024-01-01T00:00:00.000Z", "interval": 5, "status": "Pending"}

    def broken(station_id, payload):
        raise RuntimeError("boom")

    async def broken_async(station_id, payload):
        raise ValueError("async boom")

    csms.handlers["BootNotification"] = slow_accept
    csms.handlers["Heartbeat"] = broken
    csms.handlers["MeterValues"] = broken_async
    csms.handlers["Authorize"] = lambda sid, p: ("SecurityError", "go away")
    csms.handlers["NotifyEvent"] = lambda sid, p: "not a dict"
    with trio.fail_after(TIMEOUT):
        async with station(csms) as ws:
            assert (await rpc(ws, "BootNotification", {}))[2]["status"] == "Pending"
            assert (await rpc(ws, "FooBar", {}))[:3] == [4, "m1", "NotImplemented"]
            reply = await rpc(ws, "Heartbeat", {})
            assert reply[:3] == [4, "m1", "InternalError"] and reply[4] == {}
            assert (await rpc(ws, "MeterValues", {}))[:3] == [4, "m1", "InternalError"]
            assert await rpc(ws, "Authorize", {}) == [4, "m1", "SecurityError", "go away", {}]
            assert (await rpc(ws, "NotifyEvent", {}))[:3] == [4, "m1", "InternalError"]
            csms.handlers.update(csms.default_handlers())
            assert (await rpc(ws, "Heartbeat", {}))[0] == 3
    assert any("RuntimeError('boom')" in line for line in csms.test_lines)


async def test_boot_status_setting(nursery):
    csms = DevCsms(boot_status="Rejected", heartbeat_interval=300)
    await nursery.start(csms.serve)
    with trio.fail_after(TIMEOUT):
        async with station(csms) as ws:
            reply = await rpc(ws, "BootNotification", {})
    assert reply[2]["status"] == "Rejected" and reply[2]["interval"] == 300


# ---------------------------------------------------------------- call / wait_for / disconnect

async def test_call_round_trip_callerror_timeout(csms, nursery):
    with trio.fail_after(TIMEOUT):
        async with station(csms) as ws:
            await csms.wait_connected("CS-0001")

            async def answer_once(reply_for):
                frame = json.loads(await ws.get_message())
                assert frame[0] == 2
                await ws.send_message(json.dumps(reply_for(frame)))

            nursery.start_soon(answer_once, lambda f: [3, f[1], {"status": "Accepted", "echo": f[2]}])
            assert await csms.call("CS-0001", "Reset", {"type": "Immediate"}) == {"status": "Accepted", "echo": "Reset"}

            nursery.start_soon(answer_once, lambda f: [4, f[1], "NotSupported", "nope", {"x": 1}])
            with pytest.raises(CallError) as info:
                await csms.call("CS-0001", "Reset", {"type": "Immediate"})
            assert (info.value.code, info.value.description, info.value.details) == ("NotSupported", "nope", {"x": 1})

            with pytest.raises(trio.TooSlowError):
                await csms.call("CS-0001", "Reset", {"type": "OnIdle"}, timeout=0.2)
            late = json.loads(await ws.get_message())
            await ws.send_message(json.dumps([3, late[1], {"status": "Accepted"}]))   # after the timeout
            await ws.send_message(json.dumps([2, "hb", "Heartbeat", {}]))
            assert (await ws.get_message()).startswith('[3,"hb"')
    assert any("CALLRESULT for unknown message id" in line for line in csms.test_lines)
    actions = [f[2] for sid, f in csms.sent if f[0] == 2]
    assert actions == ["Reset", "Reset", "Reset"]

    with pytest.raises(StationDisconnected):
        await csms.call("CS-0001", "Reset", {"type": "Immediate"})


async def test_call_is_ended_by_disconnect(csms, nursery):
    with trio.fail_after(TIMEOUT):
        async with station(csms) as ws:
            await csms.wait_connected("CS-0001")

            async def hang_up():
                await ws.get_message()
                await ws.aclose()

            nursery.start_soon(hang_up)
            with pytest.raises(StationDisconnected):
                await csms.call("CS-0001", "GetVariables", {"getVariableData": []})
    assert "CS-0001" not in csms.connected


async def test_async_handler_may_call_back_the_station(csms):
    got: dict = {}

    async def boot(station_id, payload):
        got["reply"] = await csms.call(station_id, "GetBaseReport", {"requestId": 1, "reportBase": "FullInventory"})
        return {"currentTime": "2024-01-01T00:00:00.000Z", "interval": 10, "status": "Accepted"}

    csms.handlers["BootNotification"] = boot
    with trio.fail_after(TIMEOUT):
        async with station(csms) as ws:
            await ws.send_message(json.dumps([2, "b", "BootNotification", {}]))
            call = json.loads(await ws.get_message())
            assert call[2] == "GetBaseReport"
            await ws.send_message(json.dumps([3, call[1], {"status": "Accepted"}]))
            assert json.loads(await ws.get_message())[:2] == [3, "b"]
    assert got["reply"] == {"status": "Accepted"}


async def test_wait_for(csms, nursery):
    with trio.fail_after(TIMEOUT):
        async with station(csms, "CS-A") as a, station(csms, "CS-B") as b:
            await rpc(a, "StatusNotification", {"evseId": 1, "connectorStatus": "Available"})
            assert (await csms.wait_for("StatusNotification"))["evseId"] == 1       # already received counts
            mark = len(csms.received)

            async def later():
                await trio.sleep(0.05)
                await rpc(a, "StatusNotification", {"evseId": 2, "connectorStatus": "Occupied"})
                await rpc(b, "StatusNotification", {"evseId": 2, "connectorStatus": "Available"})
                await rpc(b, "StatusNotification", {"evseId": 2, "connectorStatus": "Occupied"})

            nursery.start_soon(later)
            payload = await csms.wait_for("StatusNotification", station_id="CS-B", after=mark,
                                          where=lambda p: p["connectorStatus"] == "Occupied")
            assert payload == {"evseId": 2, "connectorStatus": "Occupied"}
            assert [sid for sid, f in csms.received[mark:]] == ["CS-A", "CS-B", "CS-B"]
            with pytest.raises(trio.TooSlowError):
                await csms.wait_for("Heartbeat", timeout=0.05)
            with pytest.raises(trio.TooSlowError):
                await csms.wait_connected("CS-C", timeout=0.05)


async def test_disconnect_and_reconnect(csms):
    with trio.fail_after(TIMEOUT):
        async with station(csms) as ws:
            await csms.wait_connected("CS-0001")
            await csms.disconnect("CS-0001", code=4000)
            assert "CS-0001" not in csms.connected
            with pytest.raises(ConnectionClosed) as info:
                await ws.get_message()
            assert info.value.reason.code == 4000
        async with station(csms) as ws:
            await csms.wait_connected("CS-0001")
            await csms.disconnect("CS-0001", abrupt=True)
            assert not csms.connected
            with pytest.raises(ConnectionClosed):
                await ws.get_message()
        await csms.disconnect("CS-0001")   # not connected: no-op
    assert any("CS-0001 disconnected" in line for line in csms.test_lines)


async def test_several_stations_and_replaced_connection(csms):
    with trio.fail_after(TIMEOUT):
        async with station(csms, "CS-1") as one, station(csms, "CS-2") as two:
            await csms.wait_connected("CS-1")
            await csms.wait_connected("CS-2")
            assert csms.connected == {"CS-1", "CS-2"}
            assert (await rpc(two, "Heartbeat", {}))[0] == 3
            async with station(csms, "CS-1") as again:            # same id: the newer wins
                assert (await rpc(again, "Heartbeat", {}))[0] == 3
                with pytest.raises(ConnectionClosed):
                    await one.get_message()
                assert csms.connected == {"CS-1", "CS-2"}
                await csms.send_raw("CS-1", '[2,"x","Reset",{"type":"Immediate"}]')
                assert json.loads(await again.get_message()) == [2, "x", "Reset", {"type": "Immediate"}]
    assert csms.sent[-1] == ("CS-1", [2, "x", "Reset", {"type": "Immediate"}])


# ---------------------------------------------------------------- robustness

async def test_garbage_frames_do_not_crash_it(csms):
    with trio.fail_after(TIMEOUT):
        async with station(csms) as ws:
            async def expect(frame_text: str, code: str, message_id: str = "-1"):
                await ws.send_message(frame_text)
                reply = json.loads(await ws.get_message())
                assert reply[:3] == [4, message_id, code], (frame_text, reply)

            await expect("this is not json", "RpcFrameworkError")
            await expect("{}", "RpcFrameworkError")
            await expect("[]", "RpcFrameworkError")
            await expect('["2","a","Heartbeat",{}]', "RpcFrameworkError")
            await expect("[2]", "RpcFrameworkError")
            await expect('[2,"a","Heartbeat"]', "RpcFrameworkError", "a")
            await expect('[2,"a","Heartbeat",[]]', "FormatViolation", "a")
            await expect('[7,"a"]', "MessageTypeNotSupported", "a")
            await ws.send_message('[3,"nobody-asked",{}]')                 # logged, no answer
            await ws.send_message('[4,"nobody-asked","X","y",{}]')
            await ws.send_message('[3]')
            await ws.send_message(b'[2,"bin","Heartbeat",{}]')             # binary: logged, still handled
            assert json.loads(await ws.get_message())[:2] == [3, "bin"]
            assert (await rpc(ws, "Heartbeat", {}))[0] == 3
            assert csms.connected == {"CS-0001"}
    assert any("not JSON" in line for line in csms.test_lines)
    assert any("unknown message id 'nobody-asked'" in line for line in csms.test_lines)


async def test_client_that_never_upgrades_does_not_block_others(csms):
    with trio.fail_after(TIMEOUT):
        raw = await trio.open_tcp_stream("127.0.0.1", csms.port)
        await raw.send_all(b"GARBAGE\r\n\r\n")
        async with station(csms) as ws:
            assert (await rpc(ws, "Heartbeat", {}))[0] == 3
        await raw.aclose()


# ---------------------------------------------------------------- log and helpers

async def test_log_lines(csms):
    big = {"data": "x" * 1000}
    with trio.fail_after(TIMEOUT):
        async with station(csms) as ws:
            await ws.send_message('[2,"h1","Heartbeat",{}]')
            await ws.get_message()
            await rpc(ws, "DataTransfer", {"vendorId": "v", **big}, "d1")
    lines = csms.test_lines
    assert "NOT a product" in lines[0] and f"ws://127.0.0.1:{csms.port}/ocpp" in lines[0]
    assert 'CS-0001 -> CSMS  [2,"h1","Heartbeat",{}]' in lines                 # the text as received
    assert any(re.fullmatch(r'CSMS -> CS-0001  \[3,"h1",\{"currentTime":"[^"]+"\}\]', line) for line in lines)
    long_line = next(line for line in lines if '"d1"' in line and "-> CSMS" in line)
    assert len(long_line) < 340 and "chars)" in long_line
    assert any(line.startswith("CS-0001 connected from 127.0.0.1:") for line in lines)
    assert any(line.startswith("CS-0001 disconnected") for line in lines)


def test_print_log_format(capsys):
    print_log("CS-0001 -> CSMS  [2,\"1\",\"Heartbeat\",{}]")
    out = capsys.readouterr().out
    assert re.fullmatch(r'\d\d:\d\d:\d\d\.\d{3}  CS-0001 -> CSMS  \[2,"1","Heartbeat",\{\}\]\n', out)


async def test_main_runs_stand_alone(capsys):
    with trio.move_on_after(0.3):
        await main(["--port", "0", "--heartbeat-interval", "5"])
    out = capsys.readouterr().out
    assert re.match(r"\d\d:\d\d:\d\d\.\d{3}  dev CSMS .*NOT a product.*ws://127\.0\.0\.1:\d+/ocpp", out)


def test_format_report_table():
    report = [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
         "variableAttribute": [{"type": "Actual", "value": "10", "mutability": "ReadWrite"}],
         "variableCharacteristics": {"dataType": "integer", "supportsMonitoring": False}},
        {"component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
         "variable": {"name": "AvailabilityState"},
         "variableAttribute": [{"value": "Available", "mutability": "ReadOnly"}]},
        {"component": {"name": "EVSE", "instance": "a", "evse": {"id": 2}}, "variable": {"name": "Power", "instance": "x"},
         "variableAttribute": [{"type": "MaxSet", "value": "22000"}]},
        {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
         "variableAttribute": [{"mutability": "WriteOnly"}]},
        {"component": {"name": "X"}, "variable": {"name": "Long"},
         "variableAttribute": [{"value": "y" * 200}]},
    ]
    table = format_report_table(report)
    lines = table.splitlines()
    assert lines[0].split() == ["Component", "EVSE", "Conn", "Variable", "Actual", "Mutability"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["OCPPCommCtrlr", "HeartbeatInterval", "10", "ReadWrite"]
    assert lines[3].split() == ["Connector", "1", "1", "AvailabilityState", "Available", "ReadOnly"]
    assert lines[4].split() == ["EVSE[a]", "2", "Power[x]", "-", "-"]
    assert lines[5].split() == ["SecurityCtrlr", "BasicAuthPassword", "WriteOnly"]
    assert len(lines[6]) < 120 and lines[6].split()[2].endswith("…")
    # columns are aligned: every row's Variable column starts at the same offset
    col = lines[0].index("Variable")
    assert all(line[col - 2:col] == "  " and line[col] != " " for line in lines[2:])
    assert format_report_table(report, sort=True).splitlines()[2].startswith("Connector")
    assert len(format_report_table([]).splitlines()) == 2


def test_independent_of_the_station_code():
    tree = ast.parse(Path(dev_csms_module.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert not imported & {"domain", "adapters", "ports", "bootstrap"}
    assert "not a product" in (dev_csms_module.__doc__ or "").lower()
