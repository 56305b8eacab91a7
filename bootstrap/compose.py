"""Composition root: which adapters make up each deployment.

Each deployment is declared once in DEPLOYMENTS; nothing outside bootstrap/ names a
concrete adapter. Adding a board revision is one more declaration here (plus its
defaults in bootstrap/config.py):

| deployment      | EVSE controller      | meter                       | card reader        |
|-----------------|----------------------|-----------------------------|--------------------|
| `sim`           | simulated            | simulated                   | (control socket)   |
| `openevse-rev1` | OpenEVSE RAPI, UART  | the controller's ammeter    | PN532 on I2C       |
| `openevse-rev2` | OpenEVSE RAPI, UART  | Eastron SDM630, Modbus RTU  | PN532 on a UART    |

Firmware is installed by the sim installer on `sim` and by RAUC on the boards, its records
under the state directory (the storage file's folder), images signed by a key whose
certificate chains to a ManufacturerRootCertificate of the certificate store there; every
deployment transfers files over
FTP, FTPS, HTTP and HTTPS (what `OCPPCommCtrlr.FileTransferProtocols` claims), TLS verified
against the system's trust store.

Serial devices are named by path or by USB identity; a USB identity is resolved and
watched through the udev adapter, and the tty adapter opens what it resolves to. The
service manager (systemd notify) is the same for every deployment: it is a no-op unless
NOTIFY_SOCKET is set.

Imports are per deployment: a deployment's function imports the adapters it builds, so the
simulator never loads the OpenEVSE, PN532, SDM630, udev or serial adapters (start-up time,
memory; `tests/bootstrap/test_compose.py` checks it in a fresh interpreter).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from adapters.csms_link_ws import WebSocketCsmsLink
from adapters.sqlite_storage import SqliteStorage
from adapters.systemd_notify import SystemdNotifier
from bootstrap.config import Config
from bootstrap.credentials import state_dir
from bootstrap.runtime import Deployment
from bootstrap.transfers import Deferred, TransfersByScheme
from domain.security.certificates import CertificateKind

if TYPE_CHECKING:
    from adapters.serial_tty import TtyDevice

StationView = Callable[[], dict]


def _smbus2_bus(number: int) -> Any:
    """The kernel's I2C bus /dev/i2c-<number> (smbus2)."""
    from adapters.pn532.transports import Smbus2Bus

    return Smbus2Bus(number)


@dataclass(frozen=True)
class KernelEdge:
    """What a deployment needs from the kernel that tests and the hardware demo replace
    (there is no /dev/i2c-* on a development machine): the I2C bus by number."""

    open_i2c_bus: Callable[[int], Any] = _smbus2_bus

#: Device-model components of the reference charger's controller (faults it reports).
OPENEVSE_PARTS = ("Controller", "CPPWMController", "RCD", "PowerContactor", "ElectricalFeed",
                  "TemperatureSensor", "OverCurrentProtection", "TokenReader")


def serial_device(port: str, baudrate: int) -> "TtyDevice":
    """A tty by path, or a USB serial adapter by identity (resolved and watched by udev)."""
    from adapters.serial_tty import TtyDevice
    from adapters.udev_devices import UsbIdentity, UsbSerialWatcher, parse_device_name

    name = parse_device_name(port)
    if isinstance(name, UsbIdentity):
        watcher = UsbSerialWatcher(name)
        return TtyDevice(port, baudrate, resolve=watcher.resolve, gone=watcher.wait_gone)
    return TtyDevice(port, baudrate)


def _files_dir(config: Config) -> Path:
    """The folder of the station's files besides SQLite: the storage file's folder (the
    current one for an in-memory database); nothing is created until an adapter writes."""
    return Path(config.storage.path).parent


def _http() -> Any:
    from adapters.transfer.http import HttpTransfer

    return HttpTransfer()


def _ftp() -> Any:
    from adapters.transfer.ftp import FtpTransfer

    return FtpTransfer()


def file_transfers() -> TransfersByScheme:
    """FTP, FTPS, HTTP and HTTPS, as OCPPCommCtrlr.FileTransferProtocols claims; each protocol's
    adapter (and its library) loaded at its first transfer."""
    return TransfersByScheme(Deferred(frozenset({"http", "https"}), _http),
                             Deferred(frozenset({"ftp", "ftps"}), _ftp))


def _certificates(config: Config) -> Callable[[], Any] | None:
    """The certificate store beside the SQLite file (none when storage is ":memory:"), opened
    by the runtime at each boot cycle (cryptography: at the first certificate or key it reads)."""
    folder = state_dir(config)
    if folder is None:
        return None

    def open_store() -> Any:
        from adapters.certificate_store_fs import FsCertificateStore

        return FsCertificateStore(folder)
    return open_store


def firmware_signature(config: Config) -> Any:
    """L01.FR.02/03 checks against the ManufacturerRootCertificates of the certificate store under
    the state directory (opened at each check: nothing is created before the first update)."""
    from adapters.firmware_signature import CryptographyFirmwareSignature

    def manufacturer_roots() -> list[str]:
        from adapters.certificate_store_fs import FsCertificateStore    # cryptography: at the first check

        return FsCertificateStore(_files_dir(config)).root_certificates(CertificateKind.MANUFACTURER_ROOT)
    return CryptographyFirmwareSignature(manufacturer_roots)


def _sim(config: Config, station_view: StationView, edge: KernelEdge) -> Deployment:
    from adapters.installer.sim import SimInstaller
    from adapters.sim_hardware import SimHardware

    sim = SimHardware(list(config.station.evse_connectors), str(config.hardware.control_socket), station_view)
    return Deployment(
        make_link=WebSocketCsmsLink,
        hardware=sim,
        meter=sim,
        system=sim,
        open_storage=lambda: SqliteStorage(config.storage.path),
        service=SystemdNotifier.from_environment(),
        file_transfer=file_transfers(),
        firmware_installer=SimInstaller(_files_dir(config), config.station.firmware_version),
        open_certificates=_certificates(config),
        firmware_signature=firmware_signature(config),
        firmware_dir=_files_dir(config) / "firmware" / "images",
    )


def _openevse(config: Config, edge: KernelEdge, *, meter: str, reader: str) -> Deployment:
    from adapters.installer.rauc import RaucInstaller
    from adapters.linux_system import LinuxSystem
    from adapters.openevse.controller import OpenEvseAmmeter, OpenEvseController
    from adapters.pn532.reader import Pn532Reader
    from adapters.pn532.transports import HsuTransport, I2cTransport

    hw = config.hardware
    c = hw.evse_controller
    controller = OpenEvseController(serial_device(c.port, c.baudrate))
    if meter == "sdm630":
        assert hw.meter is not None          # the config gives rev2 its [hardware.meter] defaults
        from adapters.sdm630.meter import Sdm630Meter

        the_meter = Sdm630Meter(serial_device(hw.meter.port, hw.meter.baudrate),
                                unit_id=hw.meter.unit_id, baudrate=hw.meter.baudrate)
    else:
        the_meter = OpenEvseAmmeter(controller)
    r = hw.rfid
    if reader == "i2c":
        transport = I2cTransport(lambda: edge.open_i2c_bus(r.i2c_bus), r.i2c_address)
    else:
        transport = HsuTransport(serial_device(r.port, r.baudrate))
    return Deployment(
        make_link=WebSocketCsmsLink,
        hardware=controller,
        meter=the_meter,
        token_reader=Pn532Reader(transport),
        system=LinuxSystem(),
        open_storage=lambda: SqliteStorage(config.storage.path),
        service=SystemdNotifier.from_environment(),
        parts=OPENEVSE_PARTS + (the_meter.component,),
        file_transfer=file_transfers(),
        firmware_installer=RaucInstaller(_files_dir(config), config.station.firmware_version),
        open_certificates=_certificates(config),
        firmware_signature=firmware_signature(config),
        firmware_dir=_files_dir(config) / "firmware" / "images",
    )


def _openevse_rev1(config: Config, station_view: StationView, edge: KernelEdge) -> Deployment:
    return _openevse(config, edge, meter="ammeter", reader="i2c")


def _openevse_rev2(config: Config, station_view: StationView, edge: KernelEdge) -> Deployment:
    return _openevse(config, edge, meter="sdm630", reader="hsu")


DEPLOYMENTS: dict[str, Callable[[Config, StationView, KernelEdge], Deployment]] = {
    "sim": _sim,
    "openevse-rev1": _openevse_rev1,
    "openevse-rev2": _openevse_rev2,
}


def compose(config: Config, station_view: StationView, edge: KernelEdge = KernelEdge()) -> Deployment:
    return DEPLOYMENTS[config.hardware.adapter](config, station_view, edge)
