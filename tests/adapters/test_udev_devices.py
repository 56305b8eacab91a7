"""adapters.udev_devices: device names, finding a USB serial adapter's tty, noticing re-plugs.

There is no udev daemon here, so the udev side is faked at pyudev's surface: a context
whose devices carry properties, sysfs attributes, a parent chain and a node (as pyudev
Devices do), and a monitor backed by a real socketpair, so trio waits on a real fd. The
tty nodes the fake devices name are real pseudo-terminals where a test opens them. The
real pyudev is exercised against this machine's sysfs (which has no USB serial adapter).
"""
from __future__ import annotations

import collections
import logging
import os
import pty
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from adapters.serial_tty import TtyDevice
from adapters.udev_devices import (
    DevicePath,
    UsbIdentity,
    UsbSerialWatcher,
    parse_device_name,
    usb_ids_of_tty,
)

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 10
FTDI = "usb:0403:6001"


# --- fakes shaped like pyudev ------------------------------------------------------------------
class FakeAttributes:
    """sysfs attributes: bytes, None when absent (pyudev's Attributes.get)."""

    def __init__(self, values: dict[str, bytes]) -> None:
        self._values = values

    def get(self, name: str, default: Any = None) -> Any:
        return self._values.get(name, default)


class FakeDevice:
    def __init__(self, subsystem: str, *, device_type: str | None = None,
                 node: str | None = None, parent: FakeDevice | None = None,
                 properties: dict[str, str] | None = None,
                 attributes: dict[str, bytes] | None = None, action: str | None = None) -> None:
        self.subsystem = subsystem
        self.device_type = device_type
        self.device_node = node
        self.parent = parent
        self.properties = dict(properties or {})
        self.attributes = FakeAttributes(attributes or {})
        self.action = action

    def event(self, action: str, *, detached: bool = False) -> FakeDevice:
        """This device as a monitor reports it; `detached`: its parents already gone."""
        return FakeDevice(self.subsystem, device_type=self.device_type, node=self.device_node,
                          parent=None if detached else self.parent,
                          properties=self.properties, attributes=self.attributes._values,
                          action=action)


def usb_tty(node: str, vendor: str = "0403", product: str = "6001", serial: str | None = None,
            *, via: str = "attributes", tty_properties: bool = False) -> FakeDevice:
    """tty -> usb-serial port -> usb_interface -> usb_device, ids where udev puts them."""
    ids: dict[str, str] = {"ID_VENDOR_ID": vendor, "ID_MODEL_ID": product}
    attrs: dict[str, bytes] = {"idVendor": vendor.encode() + b"\n",
                               "idProduct": product.encode() + b"\n"}
    if serial is not None:
        ids["ID_SERIAL_SHORT"] = serial
        attrs["serial"] = serial.encode() + b"\n"
    usb_device = FakeDevice("usb", device_type="usb_device",
                            properties=ids if via == "properties" else {},
                            attributes=attrs if via == "attributes" else {},
                            parent=FakeDevice("usb", device_type="usb_device",   # the hub
                                              attributes={"idVendor": b"1d6b",
                                                          "idProduct": b"0002"}))
    interface = FakeDevice("usb", device_type="usb_interface", parent=usb_device)
    port = FakeDevice("usb-serial", parent=interface)
    return FakeDevice("tty", node=node, parent=port,
                      properties={"DEVNAME": node, **(ids if tty_properties else {})})


def plain_tty(node: str) -> FakeDevice:
    return FakeDevice("tty", node=node, parent=FakeDevice("platform"),
                      properties={"DEVNAME": node})


class FakeContext:
    def __init__(self, *devices: FakeDevice) -> None:
        self.devices = list(devices)
        self.fail: OSError | None = None

    def list_devices(self, **match: str) -> Iterator[FakeDevice]:
        if self.fail is not None:
            raise self.fail
        return iter([d for d in self.devices
                     if all(getattr(d, key) == value for key, value in match.items())])


class FakeMonitor:
    """Events queue up behind a real socketpair: one byte per event, like a netlink fd."""

    def __init__(self, *, start_error: OSError | None = None) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._events: collections.deque[FakeDevice] = collections.deque()
        self._start_error = start_error
        self.filters: list[tuple[str, str | None]] = []
        self.started = False

    def filter_by(self, subsystem: str, device_type: str | None = None) -> None:
        self.filters.append((subsystem, device_type))

    def start(self) -> None:
        if self._start_error is not None:
            raise self._start_error
        self.started = True

    def fileno(self) -> int:
        return self._reader.fileno()

    def poll(self, timeout: float | None = None) -> FakeDevice | None:
        assert timeout == 0, "the watcher must never block in poll()"
        try:
            self._reader.recv(1)
        except BlockingIOError:
            return None
        return self._events.popleft()

    def emit(self, event: FakeDevice) -> None:
        self._events.append(event)
        self._writer.send(b"!")

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


@pytest.fixture
def monitor() -> Iterator[FakeMonitor]:
    m = FakeMonitor()
    yield m
    m.close()


def watcher(name: str, context: FakeContext, monitor: Any, **kw: Any) -> UsbSerialWatcher:
    identity = parse_device_name(name)
    assert isinstance(identity, UsbIdentity)
    return UsbSerialWatcher(identity, context=context, monitor=monitor, **kw)


async def finished(task_done: list[bool]) -> bool:
    """Whether the waiting task finished once everything that could run has run."""
    await trio.testing.wait_all_tasks_blocked()
    return bool(task_done)


# --- device names ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("/dev/ttyS1", DevicePath("/dev/ttyS1")),
    ("/dev/evse/meter", DevicePath("/dev/evse/meter")),
    ("usb:0403:6001", UsbIdentity("0403", "6001", None)),
    ("usb:10C4:EA60", UsbIdentity("10c4", "ea60", None)),
    ("USB:10c4:ea60", UsbIdentity("10c4", "ea60", None)),
    ("usb:0403:6001:A10K1234", UsbIdentity("0403", "6001", "A10K1234")),
    ("usb:0403:6001:ab:cd", UsbIdentity("0403", "6001", "ab:cd")),
    ("usb:0403:6001:Serial No 7", UsbIdentity("0403", "6001", "Serial No 7")),
])
def test_parse_device_name(text: str, expected: DevicePath | UsbIdentity) -> None:
    assert parse_device_name(text) == expected


@pytest.mark.parametrize("text", ["usb:0403:6001", "usb:0403:6001:A10K1234", "/dev/ttyS1"])
def test_device_name_round_trips_through_str(text: str) -> None:
    assert str(parse_device_name(text)) == text


PATH_HINT = "expected a /dev/... path or usb:VVVV:PPPP[:SERIAL], got "
USB_HINT = "expected usb:VVVV:PPPP[:SERIAL] with 4 hex digits each for vendor and product id, got "


@pytest.mark.parametrize("text, problem", [
    ("", PATH_HINT + '""'),
    ("ttyS1", PATH_HINT + '"ttyS1"'),
    ("dev/ttyS1", PATH_HINT + '"dev/ttyS1"'),
    ("/tmp/ttyV0", PATH_HINT + '"/tmp/ttyV0"'),
    ("/dev/", PATH_HINT + '"/dev/"'),
    ("/dev/tty\n", PATH_HINT + '"/dev/tty\\n"'),
    ("usb:", USB_HINT + '"usb:"'),
    ("usb:0403", USB_HINT + '"usb:0403"'),
    ("usb:403:6001", USB_HINT + '"usb:403:6001"'),
    ("usb:04030:6001", USB_HINT + '"usb:04030:6001"'),
    ("usb:0403:60g1", USB_HINT + '"usb:0403:60g1"'),
    ("usb:0403:6001\n:x", USB_HINT + '"usb:0403:6001\\n:x"'),
    ("usb:0403:6001:", 'empty serial number in "usb:0403:6001:" (leave out the last ":")'),
    ("usb:0403:6001:A1\n", 'control character in the serial number of "usb:0403:6001:A1\\n"'),
    ("/dev/tty S1", PATH_HINT + '"/dev/tty S1"'),
    ("x" * 80, PATH_HINT + '"' + "x" * 55 + '..."'),
])
def test_bad_device_names_are_one_line_value_errors(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_device_name(text)
    assert str(info.value) == problem


# --- resolve ------------------------------------------------------------------------------------
def test_resolve_finds_the_tty_by_sysfs_attributes(monitor: FakeMonitor) -> None:
    ctx = FakeContext(plain_tty("/dev/ttyS0"), usb_tty("/dev/ttyUSB0", "10c4", "ea60"),
                      usb_tty("/dev/ttyUSB1", "0403", "6001", "A10K1234"))
    assert watcher(FTDI, ctx, monitor).resolve() == "/dev/ttyUSB1"
    assert watcher("usb:0403:6001:A10K1234", ctx, monitor).resolve() == "/dev/ttyUSB1"
    assert watcher("usb:10C4:EA60", ctx, monitor).resolve() == "/dev/ttyUSB0"


def test_resolve_finds_the_tty_by_udev_properties(monitor: FakeMonitor) -> None:
    ctx = FakeContext(usb_tty("/dev/ttyACM0", "2341", "0043", "SN9", via="properties"))
    assert watcher("usb:2341:0043:SN9", ctx, monitor).resolve() == "/dev/ttyACM0"


def test_the_serial_picks_one_of_two_identical_adapters(monitor: FakeMonitor) -> None:
    ctx = FakeContext(usb_tty("/dev/ttyUSB0", serial="AAA1"), usb_tty("/dev/ttyUSB1", serial="BBB2"))
    assert watcher(f"{FTDI}:BBB2", ctx, monitor).resolve() == "/dev/ttyUSB1"
    assert watcher(f"{FTDI}:AAA1", ctx, monitor).resolve() == "/dev/ttyUSB0"
    with pytest.raises(OSError, match=r"^usb:0403:6001:aaa1: no such USB serial device"):
        watcher(f"{FTDI}:aaa1", ctx, monitor).resolve()     # serials are case-sensitive


def test_two_matches_without_a_serial_ask_for_it(monitor: FakeMonitor) -> None:
    ctx = FakeContext(usb_tty("/dev/ttyUSB1", serial="BBB2"), usb_tty("/dev/ttyUSB0", serial="AAA1"))
    with pytest.raises(OSError) as info:
        watcher(FTDI, ctx, monitor).resolve()
    assert str(info.value) == ("usb:0403:6001: 2 USB serial devices match (/dev/ttyUSB0, "
                               "/dev/ttyUSB1); add the serial, e.g. usb:0403:6001:AAA1")


def test_two_ports_of_one_device_ask_for_a_path(monitor: FakeMonitor) -> None:
    ctx = FakeContext(usb_tty("/dev/ttyUSB0", serial="S"), usb_tty("/dev/ttyUSB1", serial="S"))
    with pytest.raises(OSError) as info:
        watcher(f"{FTDI}:S", ctx, monitor).resolve()
    assert "2 ports match (/dev/ttyUSB0, /dev/ttyUSB1); name the port by path" in str(info.value)


def test_no_match_is_a_one_line_oserror(monitor: FakeMonitor) -> None:
    ctx = FakeContext(plain_tty("/dev/ttyS0"), usb_tty("/dev/ttyUSB0", "10c4", "ea60"),
                      FakeDevice("tty", node=None, parent=None))          # e.g. the console
    with pytest.raises(OSError) as info:
        watcher(FTDI, ctx, monitor).resolve()
    assert str(info.value) == "usb:0403:6001: no such USB serial device (is it plugged in?)"


def test_the_watcher_filters_its_monitor_to_tty_and_starts_it(monitor: FakeMonitor) -> None:
    w = watcher(FTDI, FakeContext(usb_tty("/dev/ttyUSB0")), monitor)
    assert not monitor.started
    w.resolve()
    assert monitor.filters == [("tty", None)] and monitor.started


def test_usb_ids_of_a_tty() -> None:
    assert usb_ids_of_tty(usb_tty("/dev/ttyUSB0", serial="X1")) == ("0403", "6001", "X1")
    assert usb_ids_of_tty(usb_tty("/dev/ttyUSB0", via="properties")) == ("0403", "6001", None)
    assert usb_ids_of_tty(plain_tty("/dev/ttyS0")) == (None, None, None)
    # removed: no parents any more, udev's copy on the tty stands in
    gone = usb_tty("/dev/ttyUSB0", serial="X1", tty_properties=True).event("remove", detached=True)
    assert usb_ids_of_tty(gone) == ("0403", "6001", "X1")


async def test_a_resolved_pty_opens_through_the_serial_adapter(monitor: FakeMonitor) -> None:
    """The wiring bootstrap does: TtyDevice(label, baud, resolve=..., gone=...), real bytes."""
    master, slave = pty.openpty()
    try:
        ctx = FakeContext(usb_tty(os.ttyname(slave), serial="A1"))
        w = watcher(f"{FTDI}:A1", ctx, monitor)
        dev = TtyDevice(f"{FTDI}:A1", 9600, resolve=w.resolve, gone=w.wait_gone)
        with trio.fail_after(TIMEOUT):
            stream = await dev.open()
            async with stream:
                os.write(master, b"\x01\x03\x00")
                got = b""
                while len(got) < 3:
                    got += await stream.receive_some(16)
                assert got == b"\x01\x03\x00"
    finally:
        os.close(master)
        os.close(slave)


# --- wait_gone / wait_added ---------------------------------------------------------------------
async def test_wait_gone_returns_on_the_remove_event_for_our_node(monitor: FakeMonitor) -> None:
    ours, other = usb_tty("/dev/ttyUSB0", serial="A1"), usb_tty("/dev/ttyUSB1", "10c4", "ea60")
    ctx = FakeContext(ours, other, plain_tty("/dev/ttyS0"))
    w = watcher(FTDI, ctx, monitor, recheck_interval=60)
    w.resolve()
    done: list[bool] = []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            async def wait() -> None:
                await w.wait_gone()
                done.append(True)
            nursery.start_soon(wait)
            assert not await finished(done)
            # other devices leaving, our own "change", a non-tty event: not our removal
            ctx.devices.remove(other)
            monitor.emit(other.event("remove", detached=True))
            monitor.emit(ours.event("change"))
            monitor.emit(FakeDevice("usb", device_type="usb_device", action="remove"))
            assert not await finished(done)
            # ours: the tty's parents are gone by the time udev reports it; the node tells
            ctx.devices.remove(ours)
            monitor.emit(ours.event("remove", detached=True))
    assert done == [True]


async def test_wait_gone_knows_a_removal_by_udevs_ids_on_the_tty(monitor: FakeMonitor) -> None:
    ours = usb_tty("/dev/ttyUSB3", serial="A1", tty_properties=True)
    ctx = FakeContext(ours)
    w = watcher(f"{FTDI}:A1", ctx, monitor, recheck_interval=60)
    # never resolved: no node known, so only the identity can tell
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(w.wait_gone)
            await trio.testing.wait_all_tasks_blocked()
            ctx.devices.clear()
            monitor.emit(ours.event("remove", detached=True))


async def test_wait_gone_returns_at_once_when_already_unplugged(monitor: FakeMonitor) -> None:
    ours = usb_tty("/dev/ttyUSB0")
    ctx = FakeContext(ours)
    w = watcher(FTDI, ctx, monitor, recheck_interval=60)
    w.resolve()
    ctx.devices.remove(ours)              # unplugged before anyone waited: no event read
    with trio.fail_after(TIMEOUT):
        await w.wait_gone()


async def test_wait_gone_notices_the_node_now_belongs_to_another_device(
        monitor: FakeMonitor) -> None:
    ctx = FakeContext(usb_tty("/dev/ttyUSB0", serial="A1"))
    w = watcher(f"{FTDI}:A1", ctx, monitor, recheck_interval=60)
    w.resolve()
    # replugged elsewhere while nobody listened: ours is ttyUSB1, ttyUSB0 is another adapter
    ctx.devices[:] = [usb_tty("/dev/ttyUSB0", "10c4", "ea60"), usb_tty("/dev/ttyUSB1", serial="A1")]
    with trio.fail_after(TIMEOUT):
        await w.wait_gone()
    assert w.resolve() == "/dev/ttyUSB1"


async def test_a_missed_event_is_caught_by_the_recheck(
        monitor: FakeMonitor, caplog: pytest.LogCaptureFixture) -> None:
    ours = usb_tty("/dev/ttyUSB0")
    ctx = FakeContext(ours)
    w = watcher(FTDI, ctx, monitor, recheck_interval=0.02)
    w.resolve()
    done: list[bool] = []
    with caplog.at_level(logging.INFO, logger="evse.hardware"):
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                async def wait() -> None:
                    await w.wait_gone()
                    done.append(True)
                nursery.start_soon(wait)
                await trio.sleep(0.1)                  # several rechecks: still there
                assert not done
                ctx.devices.remove(ours)               # and udev never says so
    assert done == [True]
    assert "usb:0403:6001: /dev/ttyUSB0 removed" in caplog.text


async def test_stale_events_from_before_resolve_are_dropped(monitor: FakeMonitor) -> None:
    ours = usb_tty("/dev/ttyUSB0")
    ctx = FakeContext(ours)
    w = watcher(FTDI, ctx, monitor, recheck_interval=60)
    w.resolve()                                        # the monitor runs from here on
    monitor.emit(ours.event("remove", detached=True))  # an unplug...
    monitor.emit(ours.event("add"))                    # ...and re-plug nobody waited for
    assert w.resolve() == "/dev/ttyUSB0"               # the port was reopened since
    done: list[bool] = []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            async def wait() -> None:
                await w.wait_gone()
                done.append(True)
            nursery.start_soon(wait)
            assert not await finished(done)
            nursery.cancel_scope.cancel()
    assert done == []


async def test_wait_added_notices_the_replug_under_a_new_node(monitor: FakeMonitor) -> None:
    ours = usb_tty("/dev/ttyUSB0", serial="A1")
    ctx = FakeContext(ours)
    w = watcher(f"{FTDI}:A1", ctx, monitor, recheck_interval=60)
    w.resolve()
    ctx.devices.remove(ours)
    monitor.emit(ours.event("remove", detached=True))
    done: list[bool] = []
    with trio.fail_after(TIMEOUT):
        await w.wait_gone()
        with pytest.raises(OSError, match="no such USB serial device"):
            w.resolve()
        async with trio.open_nursery() as nursery:
            async def wait() -> None:
                await w.wait_added()
                done.append(True)
            nursery.start_soon(wait)
            assert not await finished(done)
            # another adapter takes the old node: not ours
            stranger = usb_tty("/dev/ttyUSB0", "10c4", "ea60")
            ctx.devices.append(stranger)
            monitor.emit(stranger.event("add"))
            assert not await finished(done)
            back = usb_tty("/dev/ttyUSB1", serial="A1")
            ctx.devices.append(back)
            monitor.emit(back.event("add"))
    assert done == [True]
    assert w.resolve() == "/dev/ttyUSB1"


async def test_wait_added_returns_at_once_when_plugged_in(monitor: FakeMonitor) -> None:
    w = watcher(FTDI, FakeContext(usb_tty("/dev/ttyUSB0")), monitor, recheck_interval=60)
    with trio.fail_after(TIMEOUT):
        await w.wait_added()


async def test_without_a_monitor_the_watcher_falls_back_to_rechecks(
        caplog: pytest.LogCaptureFixture) -> None:
    broken = FakeMonitor(start_error=OSError("netlink: permission denied"))
    ours = usb_tty("/dev/ttyUSB0")
    ctx = FakeContext(ours)
    w = watcher(FTDI, ctx, broken, recheck_interval=0.02)
    try:
        with caplog.at_level(logging.WARNING, logger="evse.hardware"):
            assert w.resolve() == "/dev/ttyUSB0"           # resolving does not need it
        assert "no udev monitor (netlink: permission denied)" in caplog.text
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(w.wait_gone)
                await trio.sleep(0.05)
                ctx.devices.remove(ours)
            ctx.devices.append(ours)
            await w.wait_added()
    finally:
        broken.close()


async def test_a_failing_enumeration_is_no_news(monitor: FakeMonitor,
                                                caplog: pytest.LogCaptureFixture) -> None:
    ours = usb_tty("/dev/ttyUSB0")
    ctx = FakeContext(ours)
    w = watcher(FTDI, ctx, monitor, recheck_interval=0.02)
    w.resolve()
    ctx.fail = OSError("sysfs: I/O error")
    done: list[bool] = []
    with caplog.at_level(logging.WARNING, logger="evse.hardware"):
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                async def wait() -> None:
                    await w.wait_gone()
                    done.append(True)
                nursery.start_soon(wait)
                await trio.sleep(0.1)
                assert not done                         # neither gone nor crashed
                ctx.fail = None
                ctx.devices.remove(ours)
    assert done == [True]
    assert "cannot list tty devices (sysfs: I/O error)" in caplog.text


# --- the real pyudev, on this machine's sysfs ----------------------------------------------------
def test_real_pyudev_devices_read_without_errors() -> None:
    import pyudev
    context = pyudev.Context()
    ttys = list(context.list_devices(subsystem="tty"))
    assert ttys, "sysfs lists no tty at all"
    for device in ttys:
        vendor, product, serial = usb_ids_of_tty(device)
        assert vendor is None or re.fullmatch(r"[0-9a-f]{4}", vendor)
    identity = UsbIdentity("ffff", "fffe", "no-such-serial")
    with pytest.raises(OSError, match=r"^usb:ffff:fffe:no-such-serial: no such USB serial"):
        UsbSerialWatcher(identity).resolve()


async def test_real_pyudev_monitor_absent_device_is_gone_at_once() -> None:
    w = UsbSerialWatcher(UsbIdentity("ffff", "fffe"), recheck_interval=60)
    with trio.fail_after(TIMEOUT):
        await w.wait_gone()


# --- the example udev rules ------------------------------------------------------------------
_RULE_TERM = re.compile(r'\s*(?P<key>[A-Z_]+(?:\{[^}]+\})?)\s*(?P<op>==|!=|\+=|-=|:=|=)\s*'
                        r'"(?P<value>[^"]*)"\s*')


def rules() -> list[list[tuple[str, str, str]]]:
    """The example rules file as rules of (key, op, value) terms; fails on a malformed line."""
    text = (REPO / "examples" / "udev" / "99-evse-stack.rules").read_text()
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        terms = []
        for part in line.split(","):
            m = _RULE_TERM.fullmatch(part)
            assert m is not None, f"malformed term {part!r} in: {line}"
            terms.append((m["key"], m["op"], m["value"]))
        out.append(terms)
    return out


def test_example_udev_rules_give_stable_names_with_group_and_mode() -> None:
    parsed = rules()
    links = {}
    for terms in parsed:
        keys = {(k, op): v for k, op, v in terms}
        assert keys.get(("MODE", "=")) == "0660"
        assert keys.get(("GROUP", "=")) in ("dialout", "i2c")
        if ("SYMLINK", "+=") in keys:
            links[keys[("SYMLINK", "+=")]] = keys
    assert set(links) == {"evse/controller", "evse/meter", "evse/rfid"}
    meter = links["evse/meter"]
    for attr in ("ATTRS{idVendor}", "ATTRS{idProduct}", "ATTRS{serial}"):
        assert (attr, "==") in meter
    assert re.fullmatch(r"[0-9a-f]{4}", meter[("ATTRS{idVendor}", "==")])
    assert any(("SUBSYSTEM", "==") in {(k, op) for k, op, _ in t}
               and ("i2c-dev" in {v for _, _, v in t}) for t in parsed), "no i2c-dev rule"
