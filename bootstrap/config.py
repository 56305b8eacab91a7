"""Station configuration: one TOML file, structured into frozen dataclasses.

The file layout is a fixed outside interface (installers script against it); see
``examples/station.toml`` for every key with its default. Parsing happens in three
steps, and every problem becomes ONE :class:`ConfigError` whose ``str()`` is a single
line naming the file, the key and the problem::

    station.toml: line 3: invalid TOML (Invalid value at column 7)
    station.toml: csms.security_profile: expected an integer, got "two"
    station.toml: hardware.colour: unknown key
    station.toml: station.id: missing

1. ``tomllib`` turns the text into dicts (syntax errors name the line);
2. a strict **cattrs** converter (``forbid_extra_keys=True``, detailed validation) turns
   the dicts into dataclasses: no silent coercion, so ``"2"`` is not an integer and
   ``true`` is not ``1``;
3. :func:`_check` validates values and combinations (ranges, URL scheme vs. security
   profile, certificates) and resolves relative paths against the config file's folder.

Device-model values (``[device_model]``) are only checked for shape here: their keys must
look like ``"Component.Variable"``; the device model validates the values later.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib.metadata
import json
import logging
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, override

from adapters.serial_tty import BAUDRATES
from adapters.udev_devices import parse_device_name

__all__ = [
    "Config", "StationConfig", "CsmsConfig", "StorageConfig", "HardwareConfig", "LogConfig", "StatusConfig",
    "FirmwareConfig",
    "EvseControllerConfig", "MeterConfig", "RfidConfig",
    "ConfigError", "load_config", "parse_config", "HARDWARE_ADAPTERS", "OPENEVSE_ADAPTERS",
    "DEPLOYMENT_IDENTITY", "log_level_option",
    "LOG_LEVELS", "LOG_FORMATS", "LOG_FRAMES", "DeviceModelValue", "check_log_level",
]

logger = logging.getLogger(__name__)


def _package_version() -> str:
    try:
        return importlib.metadata.version("evse-stack")
    except importlib.metadata.PackageNotFoundError:  # running from a plain checkout
        return "0.0.0"


PACKAGE_VERSION = _package_version()

#: The reference charger's board revisions (see HardwareConfig): both drive one EVSE with
#: one connector through an OpenEVSE controller.
OPENEVSE_ADAPTERS: tuple[str, ...] = ("openevse-rev1", "openevse-rev2")

#: Hardware adapters `hardware.adapter` may name. Adding one means adding its name here and
#: wiring it in the composition (bootstrap/compose.py).
HARDWARE_ADAPTERS: frozenset[str] = frozenset({"sim", *OPENEVSE_ADAPTERS})

#: BootNotification vendorName and model per hardware adapter, when [station] leaves them out.
DEPLOYMENT_IDENTITY: dict[str, tuple[str, str]] = {
    "sim": ("evse-stack", "Sim-AC-22"),
    "openevse-rev1": ("OpenEVSE", "OpenEVSE-rev1"),
    "openevse-rev2": ("OpenEVSE", "OpenEVSE-rev2"),
}

#: Accepted `log.level` values (case-insensitive in the file, upper case in Config).
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: Accepted `log.format` and `log.frames` values.
LOG_FORMATS: tuple[str, ...] = ("text", "json")
LOG_FRAMES: tuple[str, ...] = ("full", "summary", "off")

#: Limits from OCPP 2.0.1 and the hardware model.
STATION_ID_MAX = 48            # Charging Station identity (OCPP-J part 4): identifierString[48]
MAX_EVSES = 8
MAX_CONNECTORS_PER_EVSE = 4
BASIC_AUTH_PASSWORD_MAX = 40   # SecurityCtrlr.BasicAuthPassword: passwordString[40]
BASIC_AUTH_PASSWORD_MIN = 16   # OCPP recommends >= 16; shorter ones are accepted with a warning
UNIX_SOCKET_PATH_MAX = 107     # sun_path is 108 bytes including the terminating NUL
MODBUS_UNIT_IDS = (1, 247)     # Modbus RTU slave addresses (0 is broadcast, 248.. reserved)
I2C_ADDRESSES = (0x03, 0x77)   # 7-bit addresses outside the reserved ones
DEFAULT_LIMIT_A = (6, 80)      # A per phase: IEC 61851-1's lowest PWM current .. a big AC EVSE

DeviceModelValue = str | int | float | bool


# --- the configuration ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StationConfig:
    """``[station]``: who the station is (BootNotification.chargingStation)."""

    id: str
    """Required. Charging Station identity, appended to ``csms.url`` as the last path segment.
    1..48 characters of OCPP's identifierString set (a-z A-Z 0-9 * - _ = + | @ .); no ":"
    (it is also the Basic-auth user name), no "/" and no whitespace."""
    vendor_name: str | None = None
    """BootNotification chargingStation.vendorName (1..50 characters); default: the hardware
    adapter's (:data:`DEPLOYMENT_IDENTITY`)."""
    model: str | None = None
    """BootNotification chargingStation.model (1..20 characters); default: the hardware
    adapter's (:data:`DEPLOYMENT_IDENTITY`)."""
    serial_number: str | None = None
    """BootNotification chargingStation.serialNumber (1..25 characters); None: not sent."""
    firmware_version: str = PACKAGE_VERSION
    """BootNotification chargingStation.firmwareVersion (1..50 characters); default: the
    installed evse-stack package version."""
    evse_connectors: tuple[int, ...] = (1,)
    """Connectors per EVSE, one entry per EVSE (EVSE ids 1, 2, ... in order): 1..8 EVSEs,
    each with 1..4 connectors. ``[2, 1]`` = EVSE 1 with two connectors, EVSE 2 with one."""


@dataclass(frozen=True, slots=True)
class CsmsConfig:
    """``[csms]``: how to reach the CSMS."""

    url: str = "ws://127.0.0.1:9000/ocpp"
    """CSMS endpoint, ``ws://`` or ``wss://``, without query or fragment; the station id is
    appended as the last path segment."""
    security_profile: int = 1
    """1: ws + Basic auth; 2: wss (TLS) + Basic auth; 3: wss + TLS client certificate."""
    basic_auth_password: str | None = None
    """Basic-auth password (profiles 1 and 2), initial value of SecurityCtrlr.BasicAuthPassword.
    1..40 characters; OCPP asks for at least 16, so shorter ones load with a warning
    (lab CSMSs often use short ones). None: connect without Basic auth."""
    csms_root_ca: str | None = None
    """PEM file with the CA certificate(s) that verify the CSMS server; required for 2 and 3.
    Imported with client_cert/client_key into the certificate store at start when it has none
    (bootstrap/credentials.py); the link then uses the store's copies."""
    client_cert: str | None = None
    """PEM file with the station's certificate chain; required for profile 3."""
    client_key: str | None = None
    """PEM file with the private key of ``client_cert``; required for profile 3."""
    message_timeout: int = 30
    """Seconds to wait for the CSMS's answer to a request, initial value of
    OCPPCommCtrlr.MessageTimeout (integer >= 1)."""


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """``[storage]``: everything persistent lives in one SQLite file."""

    path: str = "station.db"
    """SQLite database file (``":memory:"`` keeps everything in RAM, for tests)."""
    commit_delay: float = 0.5
    """Seconds the delete of a delivered queued message may wait to be committed with the next
    durable write (group commit, docs/durability.md); 0 commits each at once. 0..60."""


@dataclass(frozen=True, slots=True)
class EvseControllerConfig:
    """``[hardware.evse_controller]``: the OpenEVSE controller's UART (both revisions)."""

    port: str = "/dev/ttyS1"
    """A ``/dev/...`` path (a udev symlink is fine) or a USB serial adapter by identity,
    ``usb:VVVV:PPPP`` or ``usb:VVVV:PPPP:SERIAL`` (hex vendor and product id)."""
    baudrate: int = 115200
    """Serial speed: 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200 or 230400."""


@dataclass(frozen=True, slots=True)
class MeterConfig:
    """``[hardware.meter]``: the SDM630 energy meter on RS-485, Modbus RTU (rev2 only;
    rev1 meters with the controller's own ammeter and has no such table)."""

    port: str = "/dev/ttyUSB0"
    """The RS-485 adapter: a ``/dev/...`` path or ``usb:VVVV:PPPP[:SERIAL]``."""
    baudrate: int = 9600
    """Serial speed, as set on the meter (one of the speeds listed for the controller)."""
    unit_id: int = 1
    """The meter's Modbus address, 1..247."""


@dataclass(frozen=True, slots=True)
class RfidConfig:
    """``[hardware.rfid]``: the PN532 card reader: on a UART (rev2) or on I2C (rev1)."""

    port: str = "/dev/ttyS2"
    """Rev2: the reader's UART, a ``/dev/...`` path or ``usb:VVVV:PPPP[:SERIAL]``."""
    baudrate: int = 115200
    """Rev2: serial speed (one of the speeds listed for the controller)."""
    i2c_bus: int = 1
    """Rev1: the I2C bus number (``/dev/i2c-<n>``), >= 0."""
    i2c_address: int = 0x24
    """Rev1: the reader's 7-bit I2C address, 0x03..0x77."""


@dataclass(frozen=True, slots=True)
class HardwareConfig:
    """``[hardware]``: which hardware adapter drives the EVSEs, and where its devices are.

    "sim" is the simulated charger; "openevse-rev1" and "openevse-rev2" are the reference
    charger's board revisions, each driving one EVSE with one connector:

    ============== ================== =================== =========================
    adapter        evse_controller    meter               rfid
    ============== ================== =================== =========================
    openevse-rev1  UART               (controller's own)  PN532 on I2C
    openevse-rev2  UART               SDM630, RS-485      PN532 on a UART
    ============== ================== =================== =========================
    """

    adapter: str = "sim"
    """Hardware adapter; one of :data:`HARDWARE_ADAPTERS`."""
    control_socket: str = "sim.sock"
    """Unix socket of the simulator's control interface (``evse sim``); at most 107 bytes
    once made absolute."""
    evse_controller: EvseControllerConfig = field(default_factory=EvseControllerConfig)
    """``[hardware.evse_controller]`` (openevse revisions)."""
    meter: MeterConfig | None = None
    """``[hardware.meter]`` (openevse-rev2). After parsing: the defaults when the table is
    left out, None for openevse-rev1 (which must not have the table)."""
    rfid: RfidConfig = field(default_factory=RfidConfig)
    """``[hardware.rfid]`` (openevse revisions: rev1 reads i2c_*, rev2 port/baudrate)."""


@dataclass(frozen=True, slots=True)
class SmartChargingConfig:
    """``[smart_charging]``: what limits the EVSEs when the CSMS cannot."""

    default_limit_a: float | None = None
    """Offline default: the current per phase (A, 6..80) an EVSE may offer while the station is
    offline (link down or not yet accepted) and no charging profile has a limit for it at that
    instant (none installed, all expired or not yet valid, SmartChargingCtrlr.Enabled false).
    None (leave it out): the EVSE's own maximum (EVSE.Power)."""


@dataclass(frozen=True, slots=True)
class FirmwareConfig:
    """``[firmware]``: firmware downloads (L01) and log uploads (N01)."""

    max_image_bytes: int = 256 * 1024 * 1024
    """The largest firmware image the station downloads (bytes, at least 1): a larger one is
    DownloadFailed before the first byte (announced size) or as soon as it is exceeded."""

    transfer_timeout: float = 30.0
    """The longest wait (s, at least 1) for a file server at any one step of a download or an
    upload (connect, a reply, the next block)."""


@dataclass(frozen=True, slots=True)
class LogConfig:
    """``[log]``."""

    level: str = "INFO"
    """DEBUG, INFO, WARNING, ERROR or CRITICAL (any case in the file)."""
    format: str = "text"
    """"text" (one line, ISO 8601 time; none under journald) or "json" (one object per line)."""
    frames: str = "summary"
    """The OCPP frame log (logger evse.ocpp, at INFO): "full" frames, a "summary" line per frame
    (direction, type, action, message id, size) or "off". Secrets are redacted in both."""


@dataclass(frozen=True, slots=True)
class StatusConfig:
    """``[status]``: the local read-only status socket that `evse status` asks."""

    socket: str = "status.sock"
    """Unix socket path (mode 0660); at most 107 bytes once made absolute. On a board:
    "/run/evse-stack/status.sock" (the unit's RuntimeDirectory)."""
    group: str | None = None
    """Group that may read the status (the socket's group); None: the station's own group."""


@dataclass(frozen=True, slots=True)
class Config:
    """The whole file. All relative paths are already absolute (resolved against the config
    file's folder); ``~`` is expanded."""

    station: StationConfig
    csms: CsmsConfig = field(default_factory=CsmsConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    smart_charging: SmartChargingConfig = field(default_factory=SmartChargingConfig)
    firmware: FirmwareConfig = field(default_factory=FirmwareConfig)
    log: LogConfig = field(default_factory=LogConfig)
    status: StatusConfig = field(default_factory=StatusConfig)
    device_model: Mapping[str, DeviceModelValue] = field(default_factory=dict)
    """Initial device-model values, ``"Component.Variable" = value``. Keys are
    ``Component``, ``Component[instance]``, then ``.Variable`` or ``.Variable[instance]``;
    the device model checks that they exist and that the values fit."""
    source: str = "<config>"
    """Where the configuration came from (for error messages); set by parse_config, not a key."""

    @property
    def warnings(self) -> tuple[str, ...]:
        """Things that load but deserve a look (one line each, key first); parse_config also
        logs each at WARNING."""
        out: list[str] = []
        pw = self.csms.basic_auth_password
        if pw is not None and len(pw) < BASIC_AUTH_PASSWORD_MIN:
            out.append(f"csms.basic_auth_password: shorter than the {BASIC_AUTH_PASSWORD_MIN} "
                       f"characters OCPP asks for ({len(pw)})")
        if pw is not None and self.csms.security_profile == 3:
            out.append("csms.basic_auth_password: ignored by security profile 3")
        return tuple(out)


# --- errors -----------------------------------------------------------------------------------
class ConfigError(Exception):
    """A configuration problem; ``str()`` is one line: ``<file>: <key or line>: <problem>``."""

    def __init__(self, source: str, problem: str, *, key: str | None = None,
                 line: int | None = None) -> None:
        self.source = source
        self.problem = problem
        self.key = key
        self.line = line
        where = key if key is not None else (f"line {line}" if line is not None else None)
        text = f"{source}: {where}: {problem}" if where else f"{source}: {problem}"
        super().__init__(" ".join(text.split("\n")))


class _Problem(Exception):
    """Internal: one problem at a key path (relative to where the hook was called)."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _format_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
            out += f".{text}" if out else text
    return out or "(top level)"


def _show(value: Any) -> str:
    """A value as the installer wrote it in TOML (short)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 42 else text[:38] + '..."'
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time"
    return type(value).__name__


# --- the strict converter ---------------------------------------------------------------------
def _s_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise _Problem(f"expected a string, got {_show(value)}")
    return value


def _s_int(value: Any, _: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Problem(f"expected an integer, got {_show(value)}")
    return value


def _s_float(value: Any, _: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _Problem(f"expected a number, got {_show(value)}")
    return float(value)


def _s_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise _Problem(f"expected true or false, got {_show(value)}")
    return value


def _s_int_tuple(value: Any, _: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise _Problem(f"expected an array of integers, got {_show(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, int) or isinstance(item, bool):
            raise _Problem(f"expected an integer, got {_show(item)}", (i,))
    return tuple(value)


_NAME = r"[A-Za-z0-9_-]{1,50}"
_INSTANCE = r"\[[^\[\]\s]{1,50}\]"
_DEVICE_MODEL_KEY = re.compile(rf"{_NAME}(?:{_INSTANCE})?\.{_NAME}(?:{_INSTANCE})?")


def _s_device_model(value: Any, _: Any) -> dict[str, DeviceModelValue]:
    if not isinstance(value, dict):
        raise _Problem(f"expected a table, got {_show(value)}")
    out: dict[str, DeviceModelValue] = {}
    for key, item in value.items():
        if isinstance(item, dict) and _BARE_KEY.fullmatch(key):
            # `TxCtrlr.TxStartPoint = 1` without quotes is a nested table in TOML.
            inner = next(iter(item), "Variable")
            raise _Problem(f'expected "Component.Variable" = value; quote the key, '
                           f'e.g. "{key}.{inner}" = ...', (key,))
        if not _DEVICE_MODEL_KEY.fullmatch(key):
            raise _Problem('key must look like "Component.Variable" or '
                           '"Component[instance].Variable"', (key,))
        if not isinstance(item, (str, int, float, bool)):
            raise _Problem(f"expected a string, number or boolean, got {_show(item)}", (key,))
        if isinstance(item, float) and not math.isfinite(item):
            raise _Problem(f"expected a finite number, got {_show(item)}", (key,))
        out[key] = item
    return out


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(str, _s_str)
    conv.register_structure_hook(int, _s_int)
    conv.register_structure_hook(float, _s_float)
    conv.register_structure_hook(bool, _s_bool)
    conv.register_structure_hook_func(lambda t: t == tuple[int, ...], _s_int_tuple)
    conv.register_structure_hook_func(lambda t: t == Mapping[str, DeviceModelValue],
                                      _s_device_model)
    # Sub-tables first: a table's generated function binds its fields' hooks when made.
    for cls in (EvseControllerConfig, MeterConfig, RfidConfig,
                StationConfig, CsmsConfig, StorageConfig, HardwareConfig, LogConfig,
                StatusConfig):
        conv.register_structure_hook(cls, _table_hook(make_dict_structure_fn(cls, conv)))
    # `source` is set by parse_config, never read from the file (a `source` key is unknown).
    conv.register_structure_hook(Config, _table_hook(make_dict_structure_fn(
        Config, conv, source=override(omit=True), _cattrs_forbid_extra_keys=True)))
    return conv


def _table_hook(generated: Any) -> Any:
    def hook(value: Any, cls: Any) -> Any:
        if not isinstance(value, dict):
            raise _Problem(f"expected a table, got {_show(value)}")
        return generated(value, cls)
    return hook


_CONVERTER = _make_converter()


def _first_problem(exc: BaseException, path: tuple[str | int, ...] = ()
                   ) -> tuple[tuple[str | int, ...], str]:
    """The first leaf of cattrs' exception tree, as (key path, problem)."""
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        for sub in exc.exceptions:
            sub_path = path
            for note in getattr(sub, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    sub_path = path + (note.name,)
                    break
                if isinstance(note, IterableValidationNote):
                    sub_path = path + (note.index,)
                    break
            return _first_problem(sub, sub_path)
        return path, "invalid value"
    if isinstance(exc, _Problem):
        return path + exc.path, exc.message
    if isinstance(exc, KeyError):
        return path, "missing"
    if isinstance(exc, ForbiddenExtraKeysError):
        extra = sorted(exc.extra_fields)[0]
        known = [f.name for f in dataclasses.fields(exc.cl) if f.name != "source"]
        close = difflib.get_close_matches(extra, known, n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        return path + (extra,), f"unknown key{hint}"
    return path, f"invalid value ({exc})"


# --- semantic checks --------------------------------------------------------------------------
_IDENTIFIER_CHARS = re.compile(r"[A-Za-z0-9*\-_=:+|@.]+")   # OCPP identifierString


def _check_length(path: tuple[str, ...], value: str | None, lo: int, hi: int) -> None:
    if value is not None and not lo <= len(value) <= hi:
        raise _Problem(f"must be {lo}..{hi} characters, got {len(value)}", path)


def _resolve(value: str | None, base_dir: Path) -> str | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else base_dir / p)


def _check(cfg: Config, base_dir: Path) -> Config:
    st, cs, hw = cfg.station, cfg.csms, cfg.hardware

    # station
    _check_length(("station", "id"), st.id, 1, STATION_ID_MAX)
    if "/" in st.id:
        raise _Problem('must not contain "/"', ("station", "id"))
    if any(c.isspace() for c in st.id):
        raise _Problem("must not contain whitespace", ("station", "id"))
    if ":" in st.id:
        raise _Problem('must not contain ":" (it is the Basic-auth user name)', ("station", "id"))
    if not _IDENTIFIER_CHARS.fullmatch(st.id):
        bad = next(c for c in st.id if not _IDENTIFIER_CHARS.fullmatch(c))
        raise _Problem(f"must contain only a-z A-Z 0-9 * - _ = + | @ . (got {json.dumps(bad)})",
                       ("station", "id"))
    _check_length(("station", "vendor_name"), st.vendor_name, 1, 50)
    _check_length(("station", "model"), st.model, 1, 20)
    _check_length(("station", "serial_number"), st.serial_number, 1, 25)
    _check_length(("station", "firmware_version"), st.firmware_version, 1, 50)
    if not 1 <= len(st.evse_connectors) <= MAX_EVSES:
        raise _Problem(f"expected 1..{MAX_EVSES} EVSEs, got {len(st.evse_connectors)}",
                       ("station", "evse_connectors"))
    for i, n in enumerate(st.evse_connectors):
        if not 1 <= n <= MAX_CONNECTORS_PER_EVSE:
            raise _Problem(f"EVSE {i + 1}: expected 1..{MAX_CONNECTORS_PER_EVSE} connectors, "
                           f"got {n}", ("station", "evse_connectors", i))

    # csms
    url = urlsplit(cs.url)
    if url.scheme not in ("ws", "wss"):
        raise _Problem(f'expected a ws:// or wss:// URL, got {_show(cs.url)}', ("csms", "url"))
    try:
        host = url.hostname
        url.port            # a port that is not a number raises here
    except ValueError as e:
        raise _Problem(f"invalid URL ({e})", ("csms", "url")) from None
    if not host:
        raise _Problem(f"no host in {_show(cs.url)}", ("csms", "url"))
    if url.query or url.fragment or cs.url.endswith(("?", "#")):
        raise _Problem("must not have a query or fragment (the station id is appended)",
                       ("csms", "url"))
    if cs.security_profile not in (1, 2, 3):
        raise _Problem(f"expected 1, 2 or 3, got {cs.security_profile}",
                       ("csms", "security_profile"))
    if cs.security_profile == 1 and url.scheme != "ws":
        raise _Problem("security profile 1 needs a ws:// URL (profiles 2 and 3 use wss://)",
                       ("csms", "url"))
    if cs.security_profile in (2, 3) and url.scheme != "wss":
        raise _Problem(f"security profile {cs.security_profile} needs a wss:// URL",
                       ("csms", "url"))
    if cs.basic_auth_password is not None:
        if cs.basic_auth_password == "":
            raise _Problem("must not be empty (leave it out for no Basic auth)",
                           ("csms", "basic_auth_password"))
        _check_length(("csms", "basic_auth_password"), cs.basic_auth_password, 1,
                      BASIC_AUTH_PASSWORD_MAX)
    for name in ("csms_root_ca", "client_cert", "client_key"):
        if getattr(cs, name) == "":
            raise _Problem("must not be empty (leave it out instead)", ("csms", name))
    if cs.security_profile in (2, 3) and cs.csms_root_ca is None:
        raise _Problem(f"required by security profile {cs.security_profile}",
                       ("csms", "csms_root_ca"))
    if cs.security_profile == 3:
        for name in ("client_cert", "client_key"):
            if getattr(cs, name) is None:
                raise _Problem("required by security profile 3", ("csms", name))
    if cs.message_timeout < 1:
        raise _Problem(f"expected at least 1 (seconds), got {cs.message_timeout}",
                       ("csms", "message_timeout"))

    # storage, hardware, log
    if cfg.storage.path == "":
        raise _Problem("must not be empty", ("storage", "path"))
    if not 0 <= cfg.storage.commit_delay <= 60:
        raise _Problem(f"must be 0..60 seconds, got {cfg.storage.commit_delay:g}", ("storage", "commit_delay"))
    if hw.adapter not in HARDWARE_ADAPTERS:
        known = ", ".join(sorted(HARDWARE_ADAPTERS))
        raise _Problem(f"unknown adapter {_show(hw.adapter)} (known: {known})",
                       ("hardware", "adapter"))
    if hw.control_socket == "":
        raise _Problem("must not be empty", ("hardware", "control_socket"))
    hw = _check_hardware(hw, st)
    vendor, model = DEPLOYMENT_IDENTITY[hw.adapter]
    st = dataclasses.replace(st, vendor_name=st.vendor_name or vendor, model=st.model or model)
    default_a = cfg.smart_charging.default_limit_a
    if default_a is not None and not DEFAULT_LIMIT_A[0] <= default_a <= DEFAULT_LIMIT_A[1]:
        raise _Problem(f"expected {DEFAULT_LIMIT_A[0]}..{DEFAULT_LIMIT_A[1]} (A per phase), got {default_a}",
                       ("smart_charging", "default_limit_a"))
    if cfg.firmware.max_image_bytes < 1:
        raise _Problem(f"expected at least 1 (bytes), got {cfg.firmware.max_image_bytes}",
                       ("firmware", "max_image_bytes"))
    if cfg.firmware.transfer_timeout < 1:
        raise _Problem(f"expected at least 1 (seconds), got {cfg.firmware.transfer_timeout}",
                       ("firmware", "transfer_timeout"))
    level = check_log_level(cfg.log.level, ("log", "level"))
    for name, allowed in (("format", LOG_FORMATS), ("frames", LOG_FRAMES)):
        if getattr(cfg.log, name) not in allowed:
            raise _Problem(f"expected one of {', '.join(allowed)}, got {_show(getattr(cfg.log, name))}",
                           ("log", name))
    if cfg.status.socket == "":
        raise _Problem("must not be empty", ("status", "socket"))
    if cfg.status.group == "":
        raise _Problem("must not be empty (leave it out for the station's own group)", ("status", "group"))

    # relative paths -> absolute, against the config file's folder
    storage_path = cfg.storage.path
    if storage_path != ":memory:":
        storage_path = _resolve(storage_path, base_dir)
    socket_path = _resolve(hw.control_socket, base_dir)
    assert socket_path is not None
    status_path = _resolve(cfg.status.socket, base_dir)
    assert status_path is not None
    for path, where in ((socket_path, ("hardware", "control_socket")), (status_path, ("status", "socket"))):
        if len(os.fsencode(path)) > UNIX_SOCKET_PATH_MAX:
            raise _Problem(f"too long for a Unix socket once made absolute "
                           f"({len(os.fsencode(path))} > {UNIX_SOCKET_PATH_MAX} bytes): {path}", where)
    return dataclasses.replace(
        cfg,
        station=st,
        csms=dataclasses.replace(
            cs,
            csms_root_ca=_resolve(cs.csms_root_ca, base_dir),
            client_cert=_resolve(cs.client_cert, base_dir),
            client_key=_resolve(cs.client_key, base_dir),
        ),
        storage=dataclasses.replace(cfg.storage, path=storage_path),
        hardware=dataclasses.replace(hw, control_socket=socket_path),
        log=dataclasses.replace(cfg.log, level=level),
        status=dataclasses.replace(cfg.status, socket=status_path),
    )


def check_log_level(value: str, path: tuple[str, ...] = ("log", "level")) -> str:
    """`value` in upper case when it is one of LOG_LEVELS (any case), else the problem naming
    `path` (the TOML key, or the --log-level option)."""
    level = value.upper()
    if level not in LOG_LEVELS:
        raise _Problem(f"expected one of {', '.join(LOG_LEVELS)}, got {_show(value)}", path)
    return level


def log_level_option(value: str) -> str:
    """The `--log-level` option checked like `[log] level`; ValueError: one line naming it."""
    try:
        return check_log_level(value, ("--log-level",))
    except _Problem as exc:
        raise ValueError(f"--log-level: {exc.message}") from None


def _check_port(path: tuple[str, ...], value: str) -> None:
    try:
        parse_device_name(value)
    except ValueError as e:
        raise _Problem(str(e), path) from None


def _check_baudrate(path: tuple[str, ...], value: int) -> None:
    if value not in BAUDRATES:
        speeds = ", ".join(str(b) for b in sorted(BAUDRATES))
        raise _Problem(f"expected one of {speeds}, got {value}", path)


def _check_hardware(hw: HardwareConfig, st: StationConfig) -> HardwareConfig:
    """The device tables' values, the layout an openevse revision can drive, and the
    per-revision meter default; returns `hw` with the meter filled in."""
    ctl, rfid = hw.evse_controller, hw.rfid
    _check_port(("hardware", "evse_controller", "port"), ctl.port)
    _check_baudrate(("hardware", "evse_controller", "baudrate"), ctl.baudrate)
    if hw.meter is not None:
        if hw.adapter == "openevse-rev1":
            raise _Problem("openevse-rev1 has no external meter (it meters with the "
                           "controller's ammeter): remove the table", ("hardware", "meter"))
        _check_port(("hardware", "meter", "port"), hw.meter.port)
        _check_baudrate(("hardware", "meter", "baudrate"), hw.meter.baudrate)
        lo, hi = MODBUS_UNIT_IDS
        if not lo <= hw.meter.unit_id <= hi:
            raise _Problem(f"expected {lo}..{hi}, got {hw.meter.unit_id}",
                           ("hardware", "meter", "unit_id"))
    _check_port(("hardware", "rfid", "port"), rfid.port)
    _check_baudrate(("hardware", "rfid", "baudrate"), rfid.baudrate)
    if rfid.i2c_bus < 0:
        raise _Problem(f"expected 0 or more, got {rfid.i2c_bus}", ("hardware", "rfid", "i2c_bus"))
    lo, hi = I2C_ADDRESSES
    if not lo <= rfid.i2c_address <= hi:
        raise _Problem(f"expected 0x{lo:02x}..0x{hi:02x}, got {_show_address(rfid.i2c_address)}",
                       ("hardware", "rfid", "i2c_address"))
    if hw.adapter in OPENEVSE_ADAPTERS and st.evse_connectors != (1,):
        raise _Problem(f"{hw.adapter} drives one EVSE with one connector: expected [1], got "
                       f"{list(st.evse_connectors)}", ("station", "evse_connectors"))
    if hw.meter is None and hw.adapter != "openevse-rev1":
        hw = dataclasses.replace(hw, meter=MeterConfig())
    return hw


def _show_address(value: int) -> str:
    return f"0x{value:02x}" if value >= 0 else str(value)


# --- API --------------------------------------------------------------------------------------
_TOML_POSITION = re.compile(r"^(?P<msg>.*?) \(at (?:line (?P<line>\d+), column (?P<col>\d+)"
                            r"|(?P<end>end of document))\)$", re.S)


def parse_config(text: str, base_dir: Path, *, source: str = "<config>") -> Config:
    """Parse the TOML `text`; relative paths resolve against `base_dir`. `source` names the
    text in error messages (load_config passes the file name). Raises ConfigError."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = _TOML_POSITION.match(str(e))
        if m is None:
            raise ConfigError(source, f"invalid TOML ({e})") from None
        if m["end"]:
            line, where = max(1, text.count("\n") + (0 if text.endswith("\n") else 1)), \
                "at end of document"
        else:
            line, where = int(m["line"]), f"at column {m['col']}"
        raise ConfigError(source, f"invalid TOML ({m['msg']} {where})", line=line) from None
    if "station" not in data:
        data["station"] = {}      # report the missing station.id, not a missing table
    base_dir = Path(os.path.abspath(Path(base_dir).expanduser()))
    try:
        cfg = _CONVERTER.structure(data, Config)
        cfg = _check(cfg, base_dir)
    except (ClassValidationError, IterableValidationError, _Problem) as e:
        path, problem = _first_problem(e)
        if any("password" in str(part) for part in path):      # the value is a secret: not shown
            problem = re.sub(r"^(expected [^,]*), got (?!an? (?:array|table)\b).*$",
                             r"\1, got a value of another type", problem)
        raise ConfigError(source, problem, key=_format_path(path)) from None
    for warning in cfg.warnings:
        logger.warning("%s: %s", source, warning)
    return dataclasses.replace(cfg, source=source)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and parse the TOML file at `path`; relative paths in it resolve against the
    file's folder. Raises ConfigError (its str() names `path` as given)."""
    source = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(source, "is a directory, not a file") from None
    except OSError as e:
        raise ConfigError(source, f"cannot read ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(source, "invalid TOML (not UTF-8)", line=line) from None
    return parse_config(text, Path(os.path.abspath(path)).parent, source=source)
