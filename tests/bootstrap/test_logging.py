"""The process's log (bootstrap/logging_setup.py, bootstrap/redact.py): no secret in any line,
the frame log's three modes, ISO 8601 / JSON lines, journald, `--log-level` checked like TOML.

The in-process tests log through the real handler set up by setup_logging into a buffer; the
end-to-end test runs `evse run` as a process against the dev CSMS and reads its stderr."""
from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import time

import pytest
import trio

from bootstrap import logging_setup
from bootstrap.logging_setup import frame_log, setup_logging
from bootstrap.redact import MASK, redact, register_secret
from devtools.dev_csms import DevCsms
from domain import messages as m

PASSWORD = "NewPassw0rd-7f3a9c1e2b"          # a SecurityCtrlr.BasicAuthPassword the CSMS sets
SHORT = "Sh0rt-pw-91"                        # one the station refuses (under 16 characters)
KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
PEM_KEY = f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n"
EC_KEY = f"-----BEGIN EC PRIVATE KEY-----\n{KEY_BODY}\n-----END EC PRIVATE KEY-----"
BASIC = "Q1MtMTpOZXdQYXNzdzByZC03ZjNhOWMxZTJi"   # base64 of "CS-1:<password>"
SECRETS = (PASSWORD, KEY_BODY, BASIC)

_DM_PW = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}

#: Every secret-bearing message, as a frame in one direction or the other.
SECRET_FRAMES = {
    "SetVariables request": [2, "sv-1", "SetVariables", {"setVariableData": [
        {"attributeValue": PASSWORD, **_DM_PW},
        {"attributeValue": "300", "component": {"name": "OCPPCommCtrlr"},
         "variable": {"name": "HeartbeatInterval"}}]}],
    "GetVariables result": [3, "gv-1", {"getVariableResult": [
        {"attributeStatus": "Accepted", "attributeValue": PASSWORD, **_DM_PW}]}],
    "NotifyReport": [2, "nr-1", "NotifyReport", {"requestId": 1, "generatedAt": "2026-12-08T00:00:00Z",
                     "seqNo": 0, "reportData": [{**_DM_PW, "variableAttribute": [
                         {"type": "Actual", "value": PASSWORD, "mutability": "WriteOnly"}]}]}],
    "SetNetworkProfile": [2, "np-1", "SetNetworkProfile", {"configurationSlot": 1, "connectionData": {
        "ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": "wss://csms/ocpp",
        "messageTimeout": 30, "securityProfile": 2, "ocppInterface": "Wired0",
        "basicAuthPassword": PASSWORD}}],
    "DataTransfer with a private key": [2, "dt-1", "DataTransfer", {"vendorId": "x", "data": PEM_KEY}],
    "CertificateSigned with key material": [2, "cs-1", "CertificateSigned",
                                             {"certificateChain": EC_KEY}],
}


@pytest.fixture
def captured():
    """setup_logging's real handler writing into a buffer; the root logger restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, frame_log.mode)
    buffer = io.StringIO()

    def setup(level="DEBUG", **kw):
        setup_logging(level, stream=buffer, **kw)
        return buffer
    yield setup
    root.handlers[:], frame_log.mode = saved[0], saved[2]
    root.setLevel(saved[1])


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, text


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("mode", ["full", "summary"])
@pytest.mark.parametrize("name", sorted(SECRET_FRAMES))
def test_no_secret_in_frame_log_errors_or_debug(captured, name, mode, fmt):
    out = captured(frames=mode, format=fmt, station_id="CS-1")
    text = json.dumps(SECRET_FRAMES[name], separators=(",", ":"))
    frame_log.received(text)
    frame_log.sent(text)
    log = logging.getLogger("evse.station")
    log.debug("decoded %r from %s", SECRET_FRAMES[name], text)            # debug output
    log.warning("CALLERROR FormatViolation for %s", text)                   # an error path
    log.info("handshake headers: {'Authorization': 'Basic %s'}", BASIC)
    log.info("GET /ocpp/CS-1 HTTP/1.1\r\nAuthorization: Basic %s\r\n", BASIC)
    log.debug("request headers %r", [(b"Host", b"csms"), (b"Authorization", f"Basic {BASIC}".encode())])
    try:
        raise ValueError(f"cannot decode {text}")
    except ValueError:
        log.exception("frame refused")                                      # a traceback
    written = out.getvalue()
    assert_no_secret(written)
    assert MASK in written
    assert len(written.splitlines()) >= 7


def test_no_secret_in_the_repr_of_a_decoded_message(captured):
    out = captured()
    request = m.SetVariablesRequest(set_variable_data=[m.SetVariableData(
        attribute_value=PASSWORD, component=m.Component(name="SecurityCtrlr"),
        variable=m.Variable(name="BasicAuthPassword"))])
    logging.getLogger("evse.station").debug("handling %r", request)
    assert PASSWORD not in out.getvalue() and MASK in out.getvalue()


def test_registered_secret_is_masked_anywhere(captured):
    out = captured()
    register_secret("configured-secret-0123")
    logging.getLogger("evse.link").error("connect failed for CS-1:configured-secret-0123@csms")
    assert "configured-secret-0123" not in out.getvalue()


def test_other_variables_keep_their_values():
    text = json.dumps(SECRET_FRAMES["SetVariables request"], separators=(",", ":"))
    redacted = json.loads(redact(text))
    values = [d["attributeValue"] for d in redacted[3]["setVariableData"]]
    assert values == [MASK, "300"]


def test_prose_about_authorization_is_left_alone():
    assert redact("local authorization, cache hit") == "local authorization, cache hit"


def test_text_without_markers_is_returned_unchanged():
    text = '[2,"1","Heartbeat",{}]'
    assert redact(text) is text


def test_summary_names_direction_action_id_and_size_and_no_payload(captured):
    out = captured(level="INFO", frames="summary")
    call = '[2,"m-7","BootNotification",{"reason":"PowerUp","chargingStation":{"model":"X","vendorName":"Y"}}]'
    result = '[3,"m-7",{"status":"Accepted","currentTime":"2026-12-08T00:00:00Z","interval":10}]'
    frame_log.sent(call)
    frame_log.received(result)
    lines = out.getvalue().splitlines()
    assert re.search(rf"CS -> CSMS  CALL BootNotification id=m-7 {len(call)} B$", lines[0]), lines
    assert re.search(rf"CSMS -> CS  CALLRESULT BootNotification id=m-7 {len(result)} B$", lines[1]), lines
    assert "PowerUp" not in out.getvalue() and "Accepted" not in out.getvalue()


def test_frames_off_builds_no_record(captured, monkeypatch):
    captured(level="INFO", frames="off")
    assert not frame_log.enabled
    captured(level="WARNING", frames="full")
    assert not frame_log.enabled                  # INFO not enabled: nothing built either
    captured(level="INFO", frames="full")
    assert frame_log.enabled


def test_text_lines_carry_an_iso_8601_time_with_date_and_offset(captured):
    out = captured(level="INFO")
    logging.getLogger("evse.station").info("hello")
    line = out.getvalue().strip()
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d INFO    evse\.station: hello$", line), line


def test_json_lines_parse_and_carry_the_fields(captured):
    out = captured(level="INFO", format="json", frames="full", station_id="CS-9")
    logging.getLogger("evse.station").info("boot %d", 1)
    frame_log.sent('[2,"a-1","Heartbeat",{}]')
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "INFO" and first["logger"] == "evse.station" and first["station"] == "CS-9"
    assert first["message"] == "boot 1" and re.match(r"\d{4}-\d\d-\d\dT.*[+-]\d\d:\d\d$", first["time"])
    assert second["logger"] == "evse.ocpp" and second["direction"] == "out" and second["action"] == "Heartbeat"
    assert second["message_id"] == "a-1" and second["type"] == "CALL" and second["size"] == 24


def test_under_journald_the_journal_stamps_the_lines(tmp_path, monkeypatch):
    with open(tmp_path / "journal", "w") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert logging_setup.under_journald(stream)
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
        assert not logging_setup.under_journald(stream)     # stderr is not the journal's stream
    record = logging.LogRecord("evse", logging.INFO, __file__, 1, "hello", (), None)
    assert logging_setup.TextFormatter(timestamps=False).format(record) == "INFO    evse: hello"


def test_a_crash_traceback_goes_through_the_redaction(tmp_path, captured, capsys, monkeypatch):
    """An unexpected error in `evse run` is logged (exit 1), not printed raw by Python."""
    from bootstrap import cli

    frame = json.dumps(SECRET_FRAMES["SetVariables request"])

    async def crash(config):
        raise RuntimeError(f"cannot handle {frame}")
    monkeypatch.setattr(cli, "run_station", crash)
    config = tmp_path / "station.toml"
    config.write_text('[station]\nid = "CS-1"\n')
    assert cli.main(["run", "--config", str(config)]) == cli.EXIT_CRASH
    err = capsys.readouterr().err
    assert "stopped by an unexpected error" in err and "RuntimeError" in err and "Traceback" in err
    assert_no_secret(err)


def evse(*args: str) -> list[str]:
    return [sys.executable, "-m", "bootstrap.cli", *args]


def test_log_level_option_is_checked_like_the_toml_value(tmp_path):
    config = tmp_path / "station.toml"
    config.write_text('[station]\nid = "CS-1"\n')
    r = subprocess.run(evse("run", "--config", str(config), "--log-level", "verbose"),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        'evse: --log-level: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got "verbose"']
    assert not (tmp_path / "station.db").exists()


@pytest.mark.parametrize(("frames", "fmt"), [("full", "text"), ("summary", "text"), ("off", "text"),
                                             ("full", "json")])
async def test_a_running_station_logs_no_secret_a_csms_sets(tmp_path, frames, fmt):
    """End to end: a real `evse run` at DEBUG with each frame mode; the CSMS sets a new
    BasicAuthPassword (SetVariables) and asks for it back (GetVariables); the configured password
    is in the handshake. Nothing of either reaches stderr; frames off: no evse.ocpp line."""
    sid = "CS-LOG-1"
    config = tmp_path / "station.toml"
    config.write_text(f"""
[station]
id = "{sid}"
[csms]
url = "%URL%"
basic_auth_password = "Configured-0123456789"
[storage]
path = "station.db"
[hardware]
control_socket = "sim.sock"
[status]
socket = "status.sock"
[log]
level = "DEBUG"
frames = "{frames}"
format = "{fmt}"
""")
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            csms = DevCsms(basic_auth={sid: "Configured-0123456789"})
            await nursery.start(csms.serve)
            config.write_text(config.read_text().replace("%URL%", csms.url))
            proc = await trio.lowlevel.open_process(evse("run", "--config", str(config)),
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            err = bytearray()

            async def read_stderr():
                while data := await proc.stderr.receive_some(65536):
                    err.extend(data)
            nursery.start_soon(read_stderr)
            try:
                await csms.wait_for("StatusNotification", station_id=sid, timeout=20)
                csms.basic_auth[sid] = PASSWORD       # A01: the station reconnects with the new one
                handshakes = len(csms.handshakes)
                reply = await csms.call(sid, "SetVariables", {"setVariableData": [
                    {"attributeValue": PASSWORD, **_DM_PW}]})
                assert reply["setVariableResult"][0]["attributeStatus"] == "Accepted"
                await csms.wait_handshake(sid, after=handshakes, timeout=15)
                await csms.wait_connected(sid, timeout=15)
                await csms.call(sid, "GetVariables", {"getVariableData": [_DM_PW]})
                # refused ones: too short (Rejected), and a frame with an unknown field (CALLERROR)
                short = await csms.call(sid, "SetVariables", {"setVariableData": [
                    {"attributeValue": SHORT, **_DM_PW}]})
                assert short["setVariableResult"][0]["attributeStatus"] == "Rejected"
                await csms.send_raw(sid, json.dumps([2, "bad-1", "SetVariables", {"setVariableData": [
                    {"attributeValue": PASSWORD, **_DM_PW}], "bogus": 1}]))
                with trio.fail_after(10):
                    while not any(f[:2] == [4, "bad-1"] for _, f in csms.received):
                        await trio.sleep(0.05)
                proc.terminate()
                with trio.fail_after(10):
                    assert await proc.wait() == 0
            finally:
                if proc.returncode is None:
                    proc.kill()
            nursery.cancel_scope.cancel()
    text = err.decode()
    assert "boot 1" in text                                   # the log is there
    for secret in (PASSWORD, "Configured-0123456789", SHORT):
        assert secret not in text, text
    if fmt == "json":                                         # every line one JSON object
        records = [json.loads(line) for line in text.splitlines()]
        assert all(r["station"] == sid and r["time"] and r["level"] and r["logger"] for r in records)
        frames_in = [r for r in records if r["logger"] == "evse.ocpp"]
        assert any(r["action"] == "SetVariables" and r["direction"] == "in" and r["type"] == "CALL"
                   and r["message_id"] and r["size"] > 0 for r in frames_in), frames_in
        return
    frame_lines = [line for line in text.splitlines() if " evse.ocpp: " in line]
    if frames == "off":
        assert frame_lines == []
    else:
        assert any("SetVariables" in line for line in frame_lines), text
        if frames == "summary":
            assert not any("setVariableData" in line for line in frame_lines)


@pytest.mark.parametrize(("toml", "message"), [
    ('[log]\nformat = "xml"\n', 'log.format: expected one of text, json, got "xml"'),
    ('[log]\nframes = "verbose"\n', 'log.frames: expected one of full, summary, off, got "verbose"'),
])
def test_log_format_and_frames_are_checked(toml, message):
    from pathlib import Path

    from bootstrap.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as info:
        parse_config('[station]\nid = "CS-1"\n' + toml, Path("/tmp"))
    assert str(info.value) == f"<config>: {message}"


def test_frames_default_to_summary_for_evse_run():
    from pathlib import Path

    from bootstrap.config import parse_config

    cfg = parse_config('[station]\nid = "CS-1"\n', Path("/tmp"))
    assert (cfg.log.frames, cfg.log.format) == ("summary", "text")


@pytest.mark.parametrize("toml", [
    '[csms]\nbasic_auth_password = 7305119846215537\n',
    '[csms]\nbasic_auth_password = 7305.119846215537\n',
    '[device_model]\n"SecurityCtrlr.BasicAuthPassword" = "7305-short"\n',
])
def test_a_bad_password_in_the_config_is_not_shown(tmp_path, toml):
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\nid = "CS-1"\n[storage]\npath = "station.db"\n'
                      f'[hardware]\ncontrol_socket = "sim.sock"\n[status]\nsocket = "status.sock"\n{toml}')
    r = subprocess.run(evse("run", "--config", str(config)), capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "password" in r.stderr.lower(), r.stderr
    assert "7305" not in r.stderr, r.stderr


def test_under_journald_a_running_station_writes_no_timestamps(tmp_path):
    """`evse run` with JOURNAL_STREAM naming its stderr (as systemd sets it): the journal stamps
    the lines, so they start with the level."""
    config = tmp_path / "station.toml"
    config.write_text('[station]\nid = "CS-J"\n[csms]\nurl = "ws://127.0.0.1:9/ocpp"\n')
    log_path = tmp_path / "journal"
    with open(log_path, "wb") as log:
        st = os.fstat(log.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        proc = subprocess.Popen(evse("run", "--config", str(config)), stdout=subprocess.DEVNULL,
                                stderr=log, env=env)
        try:
            deadline = time.monotonic() + 20
            while "boot 1" not in log_path.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.05)
            proc.terminate()
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    lines = log_path.read_text().splitlines()
    assert lines and all(re.match(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+: ", line) for line in lines), lines


def test_version():
    r = subprocess.run(evse("--version"), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and re.fullmatch(r"evse-stack \d+\.\d+\.\d+\S*\n", r.stdout), r.stdout
