"""bootstrap.config: TOML -> frozen dataclasses, one-line errors naming the key."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from bootstrap.config import (
    HARDWARE_ADAPTERS,
    PACKAGE_VERSION,
    Config,
    ConfigError,
    EvseControllerConfig,
    MeterConfig,
    RfidConfig,
    load_config,
    parse_config,
)

REPO = Path(__file__).resolve().parents[2]
MINIMAL = '[station]\nid = "CS-0001"\n'


def parse(text: str, base: Path = Path("/etc/evse")) -> Config:
    return parse_config(text, base, source="station.toml")


def error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def with_station(extra: str) -> str:
    return MINIMAL + extra


# --- happy paths --------------------------------------------------------------------------------
def test_defaults() -> None:
    cfg = parse(MINIMAL)
    assert cfg.station.id == "CS-0001"
    assert cfg.station.vendor_name == "evse-stack"
    assert cfg.station.model == "Sim-AC-22"
    assert cfg.station.serial_number is None
    assert cfg.station.firmware_version == PACKAGE_VERSION
    assert cfg.station.evse_connectors == (1,)
    assert cfg.csms.url == "ws://127.0.0.1:9000/ocpp"
    assert cfg.csms.security_profile == 1
    assert cfg.csms.basic_auth_password is None
    assert (cfg.csms.csms_root_ca, cfg.csms.client_cert, cfg.csms.client_key) == (None,) * 3
    assert cfg.csms.message_timeout == 30
    assert cfg.storage.path == "/etc/evse/station.db"
    assert cfg.hardware.adapter == "sim"
    assert cfg.hardware.control_socket == "/etc/evse/sim.sock"
    assert cfg.hardware.evse_controller == EvseControllerConfig("/dev/ttyS1", 115200)
    assert cfg.hardware.meter == MeterConfig("/dev/ttyUSB0", 9600, 1)
    assert cfg.hardware.rfid == RfidConfig("/dev/ttyS2", 115200, 1, 0x24)
    assert cfg.smart_charging.default_limit_a is None
    assert cfg.log.level == "INFO"
    assert dict(cfg.device_model) == {}
    assert cfg.warnings == ()


def test_config_is_frozen() -> None:
    cfg = parse(MINIMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.station.id = "other"  # type: ignore[misc]


def test_full_file() -> None:
    cfg = parse("""
[station]
id = "CS-0001"
vendor_name = "ACME"
model = "Wallbox"
serial_number = "SN1"
firmware_version = "9.9"
evse_connectors = [2, 1, 4]
[csms]
url = "wss://csms.example.com/ocpp"
security_profile = 3
csms_root_ca = "certs/ca.pem"
client_cert = "/abs/cert.pem"
client_key = "~/key.pem"
message_timeout = 5
[storage]
path = "data/st.db"
[hardware]
adapter = "sim"
control_socket = "/run/evse/sim.sock"
[smart_charging]
default_limit_a = 16
[log]
level = "debug"
[device_model]
"TxCtrlr.TxStartPoint" = "PowerPathClosed"
"OCPPCommCtrlr.HeartbeatInterval" = 300
"SampledDataCtrlr.Enabled" = true
"EVSE[1].Power" = 11.5
"OCPPCommCtrlr.MessageTimeout[Default]" = 30
""")
    assert cfg.station.evse_connectors == (2, 1, 4)
    assert cfg.station.serial_number == "SN1"
    assert cfg.csms.security_profile == 3
    assert cfg.csms.csms_root_ca == "/etc/evse/certs/ca.pem"
    assert cfg.csms.client_cert == "/abs/cert.pem"
    assert cfg.csms.client_key == str(Path("~/key.pem").expanduser())
    assert cfg.csms.message_timeout == 5
    assert cfg.storage.path == "/etc/evse/data/st.db"
    assert cfg.hardware.control_socket == "/run/evse/sim.sock"
    assert cfg.smart_charging.default_limit_a == 16
    assert cfg.log.level == "DEBUG"
    assert dict(cfg.device_model) == {
        "TxCtrlr.TxStartPoint": "PowerPathClosed",
        "OCPPCommCtrlr.HeartbeatInterval": 300,
        "SampledDataCtrlr.Enabled": True,
        "EVSE[1].Power": 11.5,
        "OCPPCommCtrlr.MessageTimeout[Default]": 30,
    }
    assert type(cfg.device_model["SampledDataCtrlr.Enabled"]) is bool


def test_profile_2_with_password(caplog: pytest.LogCaptureFixture) -> None:
    cfg = parse(with_station('[csms]\nurl = "wss://h/ocpp"\nsecurity_profile = 2\n'
                             'csms_root_ca = "ca.pem"\nbasic_auth_password = "0123456789abcdef"\n'))
    assert cfg.csms.basic_auth_password == "0123456789abcdef"
    assert cfg.warnings == ()


def test_short_password_loads_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = parse(with_station('[csms]\nbasic_auth_password = "short"\n'))
    assert cfg.csms.basic_auth_password == "short"
    assert len(cfg.warnings) == 1 and cfg.warnings[0].startswith("csms.basic_auth_password:")
    assert "csms.basic_auth_password" in caplog.text


def test_storage_memory_is_not_resolved() -> None:
    assert parse(with_station('[storage]\npath = ":memory:"\n')).storage.path == ":memory:"


def test_relative_paths_resolve_against_the_config_files_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    f = tmp_path / "conf" / "station.toml"
    f.write_text(with_station('[csms]\nurl = "wss://h/o"\nsecurity_profile = 2\n'
                              'csms_root_ca = "../pki/ca.pem"\n'))
    monkeypatch.chdir(tmp_path)            # a relative path to the file itself
    cfg = load_config("conf/station.toml")
    assert cfg.storage.path == str(tmp_path / "conf" / "station.db")
    assert cfg.hardware.control_socket == str(tmp_path / "conf" / "sim.sock")
    assert cfg.csms.csms_root_ca == str(tmp_path / "conf" / ".." / "pki" / "ca.pem")


def test_parse_config_relative_base_dir_is_made_absolute(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = parse_config(MINIMAL, Path("sub"))
    assert cfg.storage.path == str(tmp_path / "sub" / "station.db")


def test_example_file_parses_and_shows_the_defaults() -> None:
    example = REPO / "examples" / "station.toml"
    cfg = load_config(example)
    default = parse_config(MINIMAL, example.parent, source=str(example))
    assert cfg == default
    # every key of every section appears in the example (commented or not); sub-tables
    # such as [hardware.meter] with each of their keys
    text = example.read_text()
    for section in ("station", "csms", "storage", "hardware", "smart_charging", "log", "status"):
        assert f"[{section}]" in text
        for f in dataclasses.fields(getattr(cfg, section)):
            value = getattr(getattr(cfg, section), f.name)
            if dataclasses.is_dataclass(value):
                assert f"[{section}.{f.name}]" in text, f"[{section}.{f.name}] missing"
                for sub in dataclasses.fields(value):
                    assert f"{sub.name} = " in text, \
                        f"{section}.{f.name}.{sub.name} missing from the example"
            else:
                assert f"{f.name} = " in text, f"{section}.{f.name} missing from the example"
    assert "[device_model]" in text


# --- file / TOML errors -------------------------------------------------------------------------
def test_file_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config("station.toml")
    assert str(info.value) == "station.toml: file not found"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_invalid_toml_names_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("station.toml").write_text('[station]\nid = "CS-1"\nmodel = nope\n')
    with pytest.raises(ConfigError) as info:
        load_config("station.toml")
    msg = str(info.value)
    assert msg.startswith("station.toml: line 3: invalid TOML (")
    assert info.value.line == 3
    assert "\n" not in msg


def test_invalid_toml_at_end_of_document() -> None:
    msg = error('[station]\nid = "CS-1"\nmodel =')
    assert msg.startswith("station.toml: line 3: invalid TOML (")


def test_duplicate_table() -> None:
    assert error(MINIMAL + "[csms]\n[csms]\n").startswith("station.toml: line 4: invalid TOML")


def test_not_utf8(tmp_path: Path) -> None:
    f = tmp_path / "station.toml"
    f.write_bytes(b'[station]\nid = "CS-\xff"\n')
    with pytest.raises(ConfigError) as info:
        load_config(f)
    assert str(info.value) == f"{f}: line 2: invalid TOML (not UTF-8)"


def test_error_attributes() -> None:
    with pytest.raises(ConfigError) as info:
        parse(with_station("[csms]\nsecurity_profile = 7\n"))
    e = info.value
    assert (e.source, e.key, e.problem) == ("station.toml", "csms.security_profile",
                                           "expected 1, 2 or 3, got 7")


def test_default_source_name() -> None:
    with pytest.raises(ConfigError, match=r"^<config>: station.id: missing$"):
        parse_config("", Path("."))


# --- structure errors ---------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    # missing / unknown
    ("", "station.id: missing"),
    ("[station]\n", "station.id: missing"),
    ('[station]\nname = "x"\n', "station.id: missing"),
    (MINIMAL + "[hardware]\ncolour = 1\n", "hardware.colour: unknown key"),
    (MINIMAL + "[colour]\n", "colour: unknown key"),
    (MINIMAL + "evse_connecters = [1]\n",
     'station.evse_connecters: unknown key (did you mean "evse_connectors"?)'),
    # wrong types: no coercion, bool is not an int
    (MINIMAL + '[csms]\nsecurity_profile = "two"\n',
     'csms.security_profile: expected an integer, got "two"'),
    (MINIMAL + '[csms]\nsecurity_profile = "2"\n',
     'csms.security_profile: expected an integer, got "2"'),
    (MINIMAL + "[csms]\nsecurity_profile = true\n",
     "csms.security_profile: expected an integer, got true"),
    (MINIMAL + "[csms]\nsecurity_profile = 1.0\n",
     "csms.security_profile: expected an integer, got 1.0"),
    (MINIMAL + "[csms]\nmessage_timeout = 2.5\n",
     "csms.message_timeout: expected an integer, got 2.5"),
    ("[station]\nid = 5\n", "station.id: expected a string, got 5"),
    ("[station]\nid = [\"a\"]\n", "station.id: expected a string, got an array"),
    ("[station]\nid = 1979-05-27\n", "station.id: expected a string, got a date"),
    (MINIMAL + "serial_number = 12\n", "station.serial_number: expected a string, got 12"),
    ("station = 5\n", "station: expected a table, got 5"),
    (MINIMAL + 'csms = "ws://x"\n', 'station.csms: unknown key'),
    ('csms = "ws://x"\n' + MINIMAL, 'csms: expected a table, got "ws://x"'),
    (MINIMAL + "evse_connectors = 2\n",
     "station.evse_connectors: expected an array of integers, got 2"),
    (MINIMAL + 'evse_connectors = "12"\n',
     'station.evse_connectors: expected an array of integers, got "12"'),
    (MINIMAL + "evse_connectors = [1, true]\n",
     "station.evse_connectors[1]: expected an integer, got true"),
    (MINIMAL + "[log]\nlevel = 10\n", "log.level: expected a string, got 10"),
    (MINIMAL + "[device_model]\nTxCtrlr.TxStartPoint = \"x\"\n",
     'device_model.TxCtrlr: expected "Component.Variable" = value; quote the key, '
     'e.g. "TxCtrlr.TxStartPoint" = ...'),
    (MINIMAL + '[device_model]\n"TxStartPoint" = "x"\n',
     'device_model.TxStartPoint: key must look like "Component.Variable" or '
     '"Component[instance].Variable"'),
    (MINIMAL + '[device_model]\n"Tx Ctrlr.X" = "x"\n',
     'device_model."Tx Ctrlr.X": key must look like "Component.Variable" or '
     '"Component[instance].Variable"'),
    (MINIMAL + '[device_model]\n"A.B.C" = 1\n', 'device_model."A.B.C": key must look like'),
    (MINIMAL + '[device_model]\n"A[].B" = 1\n', 'device_model."A[].B": key must look like'),
    (MINIMAL + '[device_model]\n"A.B" = [1]\n',
     'device_model."A.B": expected a string, number or boolean, got an array'),
    (MINIMAL + '[device_model]\n"A.B" = nan\n',
     'device_model."A.B": expected a finite number, got nan'),
    (MINIMAL + 'device_model = 3\n', "station.device_model: unknown key"),
])
def test_structure_errors(text: str, expected: str) -> None:
    msg = error(text)
    assert msg.startswith(f"station.toml: {expected}"), msg


# --- value errors -------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ('[station]\nid = ""\n', "station.id: must be 1..48 characters, got 0"),
    (f'[station]\nid = "{"x" * 49}"\n', "station.id: must be 1..48 characters, got 49"),
    ('[station]\nid = "CS/1"\n', 'station.id: must not contain "/"'),
    ('[station]\nid = "CS 1"\n', "station.id: must not contain whitespace"),
    ('[station]\nid = "CS\\t1"\n', "station.id: must not contain whitespace"),
    ('[station]\nid = "CS:1"\n', 'station.id: must not contain ":"'),
    ('[station]\nid = "CS#1"\n', 'station.id: must contain only a-z A-Z 0-9'),
    ('[station]\nid = "CSé"\n', 'station.id: must contain only a-z A-Z 0-9'),
    (MINIMAL + 'vendor_name = ""\n', "station.vendor_name: must be 1..50 characters, got 0"),
    (MINIMAL + f'model = "{"m" * 21}"\n', "station.model: must be 1..20 characters, got 21"),
    (MINIMAL + f'serial_number = "{"s" * 26}"\n',
     "station.serial_number: must be 1..25 characters"),
    (MINIMAL + "evse_connectors = []\n", "station.evse_connectors: expected 1..8 EVSEs, got 0"),
    (MINIMAL + f"evse_connectors = {[1] * 9}\n",
     "station.evse_connectors: expected 1..8 EVSEs, got 9"),
    (MINIMAL + "evse_connectors = [1, 5]\n",
     "station.evse_connectors[1]: EVSE 2: expected 1..4 connectors, got 5"),
    (MINIMAL + "evse_connectors = [0]\n",
     "station.evse_connectors[0]: EVSE 1: expected 1..4 connectors, got 0"),
    (MINIMAL + '[csms]\nurl = "http://h/ocpp"\n',
     'csms.url: expected a ws:// or wss:// URL, got "http://h/ocpp"'),
    (MINIMAL + '[csms]\nurl = "h/ocpp"\n', "csms.url: expected a ws:// or wss:// URL"),
    (MINIMAL + '[csms]\nurl = "ws:///ocpp"\n', 'csms.url: no host in "ws:///ocpp"'),
    (MINIMAL + '[csms]\nurl = "ws://h:99999/ocpp"\n', "csms.url: invalid URL"),
    (MINIMAL + '[csms]\nurl = "ws://h/ocpp?x=1"\n', "csms.url: must not have a query"),
    (MINIMAL + '[csms]\nurl = "ws://h/ocpp#x"\n', "csms.url: must not have a query"),
    (MINIMAL + "[csms]\nsecurity_profile = 0\n",
     "csms.security_profile: expected 1, 2 or 3, got 0"),
    (MINIMAL + "[csms]\nsecurity_profile = 4\n",
     "csms.security_profile: expected 1, 2 or 3, got 4"),
    (MINIMAL + '[csms]\nurl = "wss://h/ocpp"\n',
     "csms.url: security profile 1 needs a ws:// URL"),
    (MINIMAL + '[csms]\nsecurity_profile = 2\ncsms_root_ca = "ca.pem"\n',
     "csms.url: security profile 2 needs a wss:// URL"),
    (MINIMAL + '[csms]\nurl = "ws://h/o"\nsecurity_profile = 3\n',
     "csms.url: security profile 3 needs a wss:// URL"),
    (MINIMAL + '[csms]\nurl = "wss://h/o"\nsecurity_profile = 2\n',
     "csms.csms_root_ca: required by security profile 2"),
    (MINIMAL + '[csms]\nurl = "wss://h/o"\nsecurity_profile = 3\n',
     "csms.csms_root_ca: required by security profile 3"),
    (MINIMAL + '[csms]\nurl = "wss://h/o"\nsecurity_profile = 3\ncsms_root_ca = "ca"\n',
     "csms.client_cert: required by security profile 3"),
    (MINIMAL + '[csms]\nurl = "wss://h/o"\nsecurity_profile = 3\ncsms_root_ca = "ca"\n'
     'client_cert = "c"\n', "csms.client_key: required by security profile 3"),
    (MINIMAL + '[csms]\ncsms_root_ca = ""\n', "csms.csms_root_ca: must not be empty"),
    (MINIMAL + '[csms]\nbasic_auth_password = ""\n',
     "csms.basic_auth_password: must not be empty"),
    (MINIMAL + f'[csms]\nbasic_auth_password = "{"p" * 41}"\n',
     "csms.basic_auth_password: must be 1..40 characters, got 41"),
    (MINIMAL + "[csms]\nmessage_timeout = 0\n", "csms.message_timeout: expected at least 1"),
    (MINIMAL + '[storage]\npath = ""\n', "storage.path: must not be empty"),
    (MINIMAL + '[hardware]\nadapter = "openevse"\n',
     'hardware.adapter: unknown adapter "openevse" (known: openevse-rev1, openevse-rev2, sim)'),
    (MINIMAL + '[hardware]\ncontrol_socket = ""\n', "hardware.control_socket: must not be empty"),
    (MINIMAL + f'[hardware]\ncontrol_socket = "{"s" * 120}.sock"\n',
     "hardware.control_socket: too long for a Unix socket"),
    (MINIMAL + "[smart_charging]\ndefault_limit_a = 5.9\n",
     "smart_charging.default_limit_a: expected 6..80 (A per phase), got 5.9"),
    (MINIMAL + "[smart_charging]\ndefault_limit_a = 81\n",
     "smart_charging.default_limit_a: expected 6..80 (A per phase), got 81"),
    (MINIMAL + '[log]\nlevel = "chatty"\n',
     'log.level: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got "chatty"'),
])
def test_value_errors(text: str, expected: str) -> None:
    msg = error(text)
    assert msg.startswith(f"station.toml: {expected}"), msg


def test_first_error_wins() -> None:
    # two problems: the first one in file/field order is reported
    msg = error('[station]\nid = 5\nmodel = 6\n[csms]\nsecurity_profile = "x"\n')
    assert msg == "station.toml: station.id: expected a string, got 5"


def test_hardware_adapters_is_a_set_of_names() -> None:
    assert "sim" in HARDWARE_ADAPTERS
    assert HARDWARE_ADAPTERS == {"sim", "openevse-rev1", "openevse-rev2"}


# --- [hardware]: the board revisions ----------------------------------------------------------
REV1 = MINIMAL + '[hardware]\nadapter = "openevse-rev1"\n'
REV2 = MINIMAL + '[hardware]\nadapter = "openevse-rev2"\n'


def test_board_revision_defaults() -> None:
    rev1, rev2 = parse(REV1).hardware, parse(REV2).hardware
    for hw in (rev1, rev2):
        assert hw.evse_controller == EvseControllerConfig("/dev/ttyS1", 115200)
        assert hw.rfid == RfidConfig("/dev/ttyS2", 115200, 1, 0x24)
    assert rev1.meter is None                      # rev1 meters with the controller
    assert rev2.meter == MeterConfig("/dev/ttyUSB0", 9600, 1)


def test_full_hardware_table_of_the_issue() -> None:
    hw = parse(MINIMAL + """
[hardware]
adapter = "openevse-rev2"          # "sim" | "openevse-rev1" | "openevse-rev2"
[hardware.evse_controller]         # both revisions
port = "/dev/evse/controller"
baudrate = 57600
[hardware.meter]                   # rev2 only
port = "usb:0403:6001:A10K1234"
baudrate = 19200
unit_id = 247
[hardware.rfid]
port = "usb:10C4:EA60"
baudrate = 230400
i2c_bus = 0
i2c_address = 0x48
""").hardware
    assert hw.adapter == "openevse-rev2"
    assert hw.evse_controller == EvseControllerConfig("/dev/evse/controller", 57600)
    assert hw.meter == MeterConfig("usb:0403:6001:A10K1234", 19200, 247)
    assert hw.rfid == RfidConfig("usb:10C4:EA60", 230400, 0, 0x48)


def test_rev1_reader_on_i2c() -> None:
    hw = parse(REV1 + "[hardware.rfid]\ni2c_bus = 2\ni2c_address = 0x03\n").hardware
    assert (hw.rfid.i2c_bus, hw.rfid.i2c_address) == (2, 3)
    hw = parse(REV1 + "[hardware.rfid]\ni2c_address = 0x77\n").hardware
    assert hw.rfid.i2c_address == 0x77


def test_sim_keeps_any_evse_layout() -> None:
    cfg = parse(with_station("evse_connectors = [2, 1]\n[hardware]\nadapter = \"sim\"\n"))
    assert cfg.station.evse_connectors == (2, 1)


def test_port_values_are_kept_as_written() -> None:
    hw = parse(REV2 + '[hardware.meter]\nport = "usb:0403:6001:Serial:With:Colons"\n').hardware
    assert hw.meter is not None and hw.meter.port == "usb:0403:6001:Serial:With:Colons"


PATH_OR_USB = "expected a /dev/... path or usb:VVVV:PPPP[:SERIAL], got"
SPEEDS = "expected one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, got"


@pytest.mark.parametrize("text, expected", [
    # adapter
    (MINIMAL + '[hardware]\nadapter = "openevse-rev3"\n',
     'hardware.adapter: unknown adapter "openevse-rev3" (known: openevse-rev1, openevse-rev2, sim)'),
    (MINIMAL + "[hardware]\nadapter = 2\n", "hardware.adapter: expected a string, got 2"),
    # ports
    (REV2 + '[hardware.evse_controller]\nport = "ttyS1"\n',
     f'hardware.evse_controller.port: {PATH_OR_USB} "ttyS1"'),
    (REV2 + '[hardware.evse_controller]\nport = "/tmp/ttyV0"\n',
     f'hardware.evse_controller.port: {PATH_OR_USB} "/tmp/ttyV0"'),
    (REV2 + '[hardware.evse_controller]\nport = ""\n',
     f'hardware.evse_controller.port: {PATH_OR_USB} ""'),
    (REV2 + '[hardware.meter]\nport = "usb:0403"\n',
     'hardware.meter.port: expected usb:VVVV:PPPP[:SERIAL] with 4 hex digits each for vendor '
     'and product id, got "usb:0403"'),
    (REV2 + '[hardware.meter]\nport = "usb:0403:6001:"\n',
     'hardware.meter.port: empty serial number in "usb:0403:6001:"'),
    (REV2 + '[hardware.rfid]\nport = "usb:xyz0:6001"\n',
     'hardware.rfid.port: expected usb:VVVV:PPPP[:SERIAL]'),
    (REV2 + "[hardware.rfid]\nport = 2\n", "hardware.rfid.port: expected a string, got 2"),
    # baudrates
    (REV2 + "[hardware.evse_controller]\nbaudrate = 115201\n",
     f"hardware.evse_controller.baudrate: {SPEEDS} 115201"),
    (REV2 + "[hardware.meter]\nbaudrate = 300\n", f"hardware.meter.baudrate: {SPEEDS} 300"),
    (REV2 + "[hardware.rfid]\nbaudrate = 460800\n", f"hardware.rfid.baudrate: {SPEEDS} 460800"),
    (REV2 + '[hardware.meter]\nbaudrate = "9600"\n',
     'hardware.meter.baudrate: expected an integer, got "9600"'),
    # meter
    (REV2 + "[hardware.meter]\nunit_id = 0\n", "hardware.meter.unit_id: expected 1..247, got 0"),
    (REV2 + "[hardware.meter]\nunit_id = 248\n",
     "hardware.meter.unit_id: expected 1..247, got 248"),
    (REV2 + "[hardware.meter]\nunit_id = true\n",
     "hardware.meter.unit_id: expected an integer, got true"),
    (REV1 + "[hardware.meter]\n",
     "hardware.meter: openevse-rev1 has no external meter (it meters with the controller's "
     "ammeter): remove the table"),
    (REV1 + '[hardware.meter]\nport = "/dev/ttyUSB0"\n', "hardware.meter: openevse-rev1 has no"),
    # rfid
    (REV1 + "[hardware.rfid]\ni2c_bus = -1\n", "hardware.rfid.i2c_bus: expected 0 or more, got -1"),
    (REV1 + "[hardware.rfid]\ni2c_address = 0x02\n",
     "hardware.rfid.i2c_address: expected 0x03..0x77, got 0x02"),
    (REV1 + "[hardware.rfid]\ni2c_address = 0x78\n",
     "hardware.rfid.i2c_address: expected 0x03..0x77, got 0x78"),
    (REV1 + "[hardware.rfid]\ni2c_address = -36\n",
     "hardware.rfid.i2c_address: expected 0x03..0x77, got -36"),
    (REV1 + '[hardware.rfid]\ni2c_address = "0x24"\n',
     'hardware.rfid.i2c_address: expected an integer, got "0x24"'),
    # unknown keys and shapes
    (REV2 + "[hardware.meter]\nslave_id = 1\n",
     "hardware.meter.slave_id: unknown key"),
    (REV2 + "[hardware.evse_controller]\nbaud = 9600\n",
     'hardware.evse_controller.baud: unknown key (did you mean "baudrate"?)'),
    (REV1 + "[hardware.rfid]\ni2c_adress = 0x24\n",
     'hardware.rfid.i2c_adress: unknown key (did you mean "i2c_address"?)'),
    (REV2 + "[hardware.display]\n", "hardware.display: unknown key"),
    (REV2 + 'evse_controller = "/dev/ttyS1"\n',
     'hardware.evse_controller: expected a table, got "/dev/ttyS1"'),
    (REV2 + "meter = 1\n", "hardware.meter: expected a table, got 1"),
    # the layout an openevse board drives
    (with_station("evse_connectors = [2]\n[hardware]\nadapter = \"openevse-rev1\"\n"),
     "station.evse_connectors: openevse-rev1 drives one EVSE with one connector: "
     "expected [1], got [2]"),
    (with_station("evse_connectors = [1, 1]\n[hardware]\nadapter = \"openevse-rev2\"\n"),
     "station.evse_connectors: openevse-rev2 drives one EVSE with one connector: "
     "expected [1], got [1, 1]"),
])
def test_hardware_errors_name_the_key(text: str, expected: str) -> None:
    msg = error(text)
    assert msg.startswith(f"station.toml: {expected}"), msg


def test_the_readmes_board_example_parses() -> None:
    """The [hardware] example in README "Installing on a board" is a valid configuration."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Installing on a board"):]
    blocks = [b.split("```", 1)[0] for b in section.split("```toml\n")[1:]]
    (block,) = [b for b in blocks if "[hardware.meter]" in b]
    text = block.replace("[station]\n", '[station]\nid = "CS-0001"\n', 1)
    hw = parse(text).hardware
    assert hw.adapter == "openevse-rev2"
    assert hw == parse(REV2).hardware          # the README shows the defaults
