"""Adapter: configured device names, and USB serial adapters found and watched through udev.

A device name in the configuration is either a node path (``/dev/ttyS1``, or a udev
symlink such as ``/dev/evse/meter``) or a USB identity ``usb:VVVV:PPPP[:SERIAL]``
(vendor and product id in hex, as ``lsusb`` shows them; the serial number as the
device reports it). A USB identity survives re-plugging and renumbering
(``/dev/ttyUSB0`` today, ``/dev/ttyUSB1`` after a hub reset), which a node path does not.

:class:`UsbSerialWatcher` turns an identity into the present tty node and tells when the
device goes away or comes back, from udev's netlink events read through trio. This is
the only module that touches pyudev; bootstrap/ hands ``resolve``/``wait_gone`` to the
serial adapter.

udev events can be missed (the netlink buffer overflows, or no udev daemon runs), so
both waits also re-check what sysfs says every ``recheck_interval`` seconds: a missed
event costs a delay, never a hang.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import trio

log = logging.getLogger("evse.hardware")

USB_PREFIX = "usb:"
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_DEVICE_NAME_HINT = "expected a /dev/... path or usb:VVVV:PPPP[:SERIAL]"


# --- device names -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DevicePath:
    """A device node given by its path (a udev symlink is fine)."""

    path: str

    def __str__(self) -> str:
        return self.path


@dataclass(frozen=True, slots=True)
class UsbIdentity:
    """A USB device by vendor/product id (lower-case hex) and, optionally, serial number."""

    vendor_id: str
    product_id: str
    serial: str | None = None

    def __str__(self) -> str:
        text = f"{USB_PREFIX}{self.vendor_id}:{self.product_id}"
        return text if self.serial is None else f"{text}:{self.serial}"

    def matches(self, vendor_id: str | None, product_id: str | None,
                serial: str | None) -> bool:
        """True when a device with these ids (as udev reports them) is this one."""
        if vendor_id is None or product_id is None:
            return False
        if vendor_id.lower() != self.vendor_id or product_id.lower() != self.product_id:
            return False
        return self.serial is None or serial == self.serial


def parse_device_name(text: str) -> DevicePath | UsbIdentity:
    """``/dev/...`` -> DevicePath; ``usb:VVVV:PPPP[:SERIAL]`` -> UsbIdentity.

    Raises ValueError (one line, quoting `text`) for anything else. The serial is
    everything after the third colon (it may itself contain colons); it must not be empty."""
    if text[:len(USB_PREFIX)].lower() == USB_PREFIX:
        parts = text[len(USB_PREFIX):].split(":", 2)
        if len(parts) < 2 or not (_HEX4.fullmatch(parts[0]) and _HEX4.fullmatch(parts[1])):
            raise ValueError(f"expected usb:VVVV:PPPP[:SERIAL] with 4 hex digits each for "
                             f"vendor and product id, got {_show(text)}")
        serial = parts[2] if len(parts) == 3 else None
        if serial == "":
            raise ValueError(f'empty serial number in {_show(text)} (leave out the last ":")')
        if serial is not None and not serial.isprintable():
            raise ValueError(f"control character in the serial number of {_show(text)}")
        return UsbIdentity(parts[0].lower(), parts[1].lower(), serial)
    if (not text.startswith("/dev/") or text.endswith("/")
            or any(c.isspace() or not c.isprintable() for c in text)):
        raise ValueError(f"{_DEVICE_NAME_HINT}, got {_show(text)}")
    return DevicePath(text)


def _show(text: str) -> str:
    """`text` double-quoted on one line (as TOML shows it), shortened."""
    shown = json.dumps(text, ensure_ascii=False)
    return shown if len(shown) <= 60 else shown[:56] + '..."'


# --- reading udev devices (pyudev Device or anything shaped like one) ---------------------------
def _text(value: Any) -> str | None:
    """A udev property or sysfs attribute as text (attributes come as bytes)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip() or None


def _ids_of_usb_device(device: Any) -> tuple[str | None, str | None, str | None]:
    """(vendor, product, serial) of a usb_device: udev's properties, else sysfs attributes."""
    props = device.properties
    vendor, product = _text(props.get("ID_VENDOR_ID")), _text(props.get("ID_MODEL_ID"))
    serial = _text(props.get("ID_SERIAL_SHORT"))
    attrs = device.attributes
    if vendor is None or product is None:
        vendor, product = _text(attrs.get("idVendor")), _text(attrs.get("idProduct"))
    if serial is None:
        serial = _text(attrs.get("serial"))
    return vendor, product, serial


def _ancestors(device: Any) -> Iterator[Any]:
    parent = device.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def usb_ids_of_tty(device: Any) -> tuple[str | None, str | None, str | None]:
    """(vendor, product, serial) of the USB device a tty belongs to; Nones if not USB.

    The parent chain is the truth (tty -> usb-serial port -> interface -> usb_device);
    a removed device has no parents left in sysfs, so the properties udev copied onto the
    tty itself (ID_VENDOR_ID, ID_MODEL_ID, ID_SERIAL_SHORT) stand in for it then."""
    for parent in _ancestors(device):
        if parent.subsystem == "usb" and parent.device_type == "usb_device":
            return _ids_of_usb_device(parent)
    props = device.properties
    return (_text(props.get("ID_VENDOR_ID")), _text(props.get("ID_MODEL_ID")),
            _text(props.get("ID_SERIAL_SHORT")))


# --- the watcher -------------------------------------------------------------------------------
class UsbSerialWatcher:
    """Finds the tty node of one USB serial device and notices it leaving and coming back.

    `context` is a pyudev Context (default: a new one); `monitor` a pyudev Monitor
    (default: a netlink one from `context`), filtered here to the tty subsystem and
    started on first use, so events from then on are kept until a wait reads them.
    Only one task may wait (wait_gone or wait_added) at a time."""

    def __init__(self, identity: UsbIdentity, *, context: Any = None, monitor: Any = None,
                 recheck_interval: float = 10.0) -> None:
        self.identity = identity
        self.recheck_interval = recheck_interval
        self._context = context
        self._monitor = monitor
        self._monitor_ready = False
        self._monitor_failed = False
        self._node: str | None = None    # the node resolve() last returned

    # -- udev access ---------------------------------------------------------------------------
    def _get_context(self) -> Any:
        if self._context is None:
            try:
                import pyudev
                self._context = pyudev.Context()
            except ImportError as exc:     # pyudev raises it when libudev is missing
                raise OSError(f"{self.identity}: cannot use udev ({exc})") from None
        return self._context

    def _get_monitor(self) -> Any | None:
        """The started monitor, or None when none can be had (then waits re-check sysfs)."""
        if self._monitor_ready:
            return self._monitor
        if self._monitor_failed:
            return None
        try:
            if self._monitor is None:
                import pyudev
                self._monitor = pyudev.Monitor.from_netlink(self._get_context())
            self._monitor.filter_by(subsystem="tty")
            self._monitor.start()
        except (OSError, ImportError) as exc:
            self._monitor_failed = True
            log.warning("%s: no udev monitor (%s); checking for the device every %g s",
                        self.identity, exc, self.recheck_interval)
            return None
        self._monitor_ready = True
        return self._monitor

    def _matches(self) -> dict[str, str | None]:
        """{node: serial} of the tty devices of a USB device with our identity."""
        found: dict[str, str | None] = {}
        for device in self._get_context().list_devices(subsystem="tty"):
            node = device.device_node
            if node is None:
                continue
            ids = usb_ids_of_tty(device)
            if self.identity.matches(*ids):
                found[node] = ids[2]
        return found

    def _drain(self) -> None:
        """Forget queued events: they are older than what an enumeration now shows."""
        monitor = self._get_monitor()
        if monitor is None:
            return
        try:
            while monitor.poll(timeout=0) is not None:
                pass
        except OSError as exc:
            log.warning("%s: udev monitor: %s", self.identity, exc)

    # -- the API bootstrap wires ---------------------------------------------------------------
    def resolve(self) -> str:
        """The tty node of the device now, e.g. ``/dev/ttyUSB0``.

        Raises OSError (one line) when no such device is plugged in, or when the identity
        names more than one port (add the serial, or name the port by path)."""
        self._drain()
        found = self._matches()
        if not found:
            raise OSError(f"{self.identity}: no such USB serial device (is it plugged in?)")
        if len(found) > 1:
            raise OSError(self._ambiguous(found))
        (self._node,) = found
        return self._node

    def _ambiguous(self, found: dict[str, str | None]) -> str:
        nodes = ", ".join(sorted(found))
        serials = sorted({s for s in found.values() if s is not None})
        if self.identity.serial is None and len(serials) > 1:
            return (f"{self.identity}: {len(found)} USB serial devices match ({nodes}); "
                    f"add the serial, e.g. {self.identity}:{serials[0]}")
        # Same serial (or none): several ports of one device, or devices without serials.
        return (f"{self.identity}: {len(found)} ports match ({nodes}); "
                f"name the port by path, e.g. /dev/serial/by-path/...")

    def _state(self, action: str) -> bool | None:
        """Has `action` already happened, as sysfs shows it now? None: cannot tell.

        "remove": the node resolve() returned is no longer one of ours (no node yet: no
        device of ours at all). "add": a device of ours is there, under any node."""
        try:
            found = self._matches()
        except OSError as exc:
            log.warning("%s: cannot list tty devices (%s)", self.identity, exc)
            return None
        if action == "add":
            return bool(found)
        return self._node not in found if self._node is not None else not found

    def _is_ours(self, device: Any, action: str) -> bool:
        """Is this event about our device? A removal may also be recognised by the node
        resolve() returned (a node belongs to one device at a time); an addition only by
        the identity, since the old node may now be another device's."""
        if device.action != action or device.subsystem != "tty":
            return False
        if action == "remove" and self._node is not None and device.device_node == self._node:
            return True
        return self.identity.matches(*usb_ids_of_tty(device))

    async def wait_gone(self) -> None:
        """Return when the device resolve() found is unplugged (at once if it already is)."""
        await self._wait_for("remove")

    async def wait_added(self) -> None:
        """Return when the device is plugged in (at once if it already is)."""
        await self._wait_for("add")

    async def _wait_for(self, action: str) -> None:
        monitor = self._get_monitor()      # started before looking, so nothing slips by
        if self._state(action):
            return
        while True:
            if monitor is not None:
                with trio.move_on_after(self.recheck_interval):
                    await trio.lowlevel.wait_readable(monitor.fileno())
                    if self._read_events(monitor, action):
                        break
                    continue               # other devices' events: keep waiting
            else:
                await trio.sleep(self.recheck_interval)
            if self._state(action):        # the recheck: an event may have been missed
                break
        log.info("%s: %s", self.identity, "plugged in" if action == "add"
                 else f"{self._node or 'device'} removed")

    def _read_events(self, monitor: Any, action: str) -> bool:
        """Read every queued event; True when one is `action` for our device."""
        found = False
        while True:
            try:
                device = monitor.poll(timeout=0)
            except OSError as exc:
                log.warning("%s: udev monitor: %s", self.identity, exc)
                return found
            if device is None:
                return found
            if self._is_ours(device, action):
                found = True
