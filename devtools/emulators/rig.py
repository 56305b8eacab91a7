"""The hardware rig: a whole board revision emulated, each serial device on its own pty.

For the end-to-end tests, `evse demo --hardware`, the benchmarks and integrators without a
board. The real adapters cannot tell the rig from the board: each serial device is a
pseudo-terminal with its emulator on the master side, and the station's config names the
slave (``os.ttyname``) as the device's port; the rev1 card reader sits on an I2C bus double
that ``compose()`` gets through the rig's ``KernelEdge`` (there is no /dev/i2c-* here).

=============  ======================  ===================  ======================
revision       controller (RAPI)       meter                card reader (PN532)
=============  ======================  ===================  ======================
openevse-rev1  OpenEvseEmulator, pty   (the controller's)   Pn532I2cBus (no pty)
openevse-rev2  OpenEvseEmulator, pty   Sdm630Emulator, pty  Pn532HsuEmulator, pty
=============  ======================  ===================  ======================

In a program::

    async with open_hardware_rig("openevse-rev2") as rig:
        config = parse_config(station_table + rig.hardware_toml(), base_dir)
        deployment = compose(config, view, rig.edge)
        ...
        rig.controller.plug()
        rig.reader.present_card(bytes.fromhex("04A2B3C4"))

From a shell, ``python -m devtools.emulators.rig --revision openevse-rev2 --print-config``
prints the ``[hardware]`` table to paste into a station's config file and serves until
killed; lines on stdin drive the emulators (``help`` lists them).

Both ends of every pty stay open for the rig's lifetime: with the slave held open the
master never reads EIO while the station reconnects, and both are raw, so nothing the
emulators send is echoed back or translated before the station's TtyDevice configures its
side.
"""
from __future__ import annotations

import argparse
import errno
import os
import pty
import sys
import tty
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from bootstrap.compose import KernelEdge
from devtools.emulators.openevse import OpenEvseEmulator
from devtools.emulators.pn532 import I2C_ADDRESS, Pn532HsuEmulator, Pn532I2cBus
from devtools.emulators.sdm630 import Sdm630Emulator
from devtools.toml_text import toml_value

__all__ = ["REVISIONS", "HardwareRig", "open_hardware_rig", "main"]

REVISIONS = ("openevse-rev1", "openevse-rev2")
CONTROLLER_BAUDRATE = 115200     # the OpenEVSE's RAPI UART
METER_BAUDRATE = 9600            # the SDM630's factory setting
METER_UNIT_ID = 1
READER_BAUDRATE = 115200         # the PN532's HSU default
I2C_BUS = 1                      # /dev/i2c-1, the rev1 board's bus (a double here)


@dataclass
class HardwareRig:
    """The emulators of one board revision and where the station finds them.

    `reader` is the PN532 either way (`present_card(uid)`, `remove_card()`, ...): on a pty
    for rev2, the I2C bus double for rev1. `meter` is None for rev1, which meters with the
    controller's ammeter. `edge` goes to ``compose(config, view, edge)``."""

    revision: str
    controller: OpenEvseEmulator
    reader: Pn532HsuEmulator | Pn532I2cBus
    meter: Sdm630Emulator | None
    edge: KernelEdge
    controller_port: str
    meter_port: str | None = None
    reader_port: str | None = None           # None: the reader is on I2C

    @property
    def hardware(self) -> dict[str, Any]:
        """The station config's [hardware] table as values (nested tables as dicts)."""
        values: dict[str, Any] = {
            "adapter": self.revision,
            "evse_controller": {"port": self.controller_port, "baudrate": CONTROLLER_BAUDRATE},
        }
        if self.meter_port is not None:
            values["meter"] = {"port": self.meter_port, "baudrate": METER_BAUDRATE,
                               "unit_id": METER_UNIT_ID}
        if self.reader_port is not None:
            values["rfid"] = {"port": self.reader_port, "baudrate": READER_BAUDRATE}
        else:
            values["rfid"] = {"i2c_bus": I2C_BUS, "i2c_address": I2C_ADDRESS}
        return values

    def hardware_toml(self) -> str:
        """The [hardware] table (with its device tables) as TOML text for a station config."""
        lines = ["[hardware]"]
        tables: list[tuple[str, dict[str, Any]]] = []
        for key, value in self.hardware.items():
            if isinstance(value, dict):
                tables.append((key, value))
            else:
                lines.append(f"{key} = {toml_value(value)}")
        for name, table in tables:
            lines.append(f"[hardware.{name}]")
            lines += [f"{key} = {toml_value(value, hex_int=key == 'i2c_address')}"
                      for key, value in table.items()]
        return "\n".join(lines) + "\n"


def _open_pty(fds: ExitStack) -> tuple[int, str]:
    """A raw pty pair whose fds `fds` closes; returns (master fd, slave path)."""
    master, slave = pty.openpty()
    fds.callback(os.close, master)
    fds.callback(os.close, slave)
    tty.setraw(master)
    tty.setraw(slave)
    return master, os.ttyname(slave)


def _i2c_edge(bus: Pn532I2cBus, number: int) -> KernelEdge:
    """rev1's kernel edge: bus `number` is the double; any other bus does not exist."""
    def open_i2c_bus(n: int) -> Pn532I2cBus:
        if n != number:
            raise FileNotFoundError(errno.ENOENT, f"no /dev/i2c-{n} on the rig (it has bus {number})")
        return bus
    return KernelEdge(open_i2c_bus=open_i2c_bus)


def _no_i2c(n: int) -> Any:
    raise FileNotFoundError(errno.ENOENT, f"no /dev/i2c-{n}: the openevse-rev2 rig has no I2C bus")


@asynccontextmanager
async def open_hardware_rig(revision: str, *, controller: OpenEvseEmulator | None = None,
                            meter: Sdm630Emulator | None = None) -> AsyncIterator[HardwareRig]:
    """Open the ptys of `revision`, run its emulators on their masters, yield the rig; on
    exit stop the emulators and close every fd. `controller`/`meter`: emulators configured
    by the caller (else the defaults; rev1 has no external meter)."""
    if revision not in REVISIONS:
        raise ValueError(f"unknown board revision {revision!r} (known: {', '.join(REVISIONS)})")
    if meter is not None and revision != "openevse-rev2":
        raise ValueError(f"{revision} has no external meter")
    controller = controller if controller is not None else OpenEvseEmulator()
    with ExitStack() as fds:
        controller_master, controller_port = _open_pty(fds)
        async with trio.open_nursery() as nursery:
            await nursery.start(controller.serve, controller_master)
            if revision == "openevse-rev2":
                meter = meter if meter is not None else Sdm630Emulator(METER_UNIT_ID, baudrate=METER_BAUDRATE)
                meter_master, meter_port = _open_pty(fds)
                await nursery.start(meter.serve, meter_master)
                reader_master, reader_port = _open_pty(fds)
                hsu = Pn532HsuEmulator(os.dup(reader_master))    # it closes the fd it is given
                await nursery.start(hsu.run)
                rig = HardwareRig(revision, controller, hsu, meter, KernelEdge(open_i2c_bus=_no_i2c),
                                  controller_port, meter_port=meter_port, reader_port=reader_port)
            else:
                bus = Pn532I2cBus(I2C_ADDRESS)
                rig = HardwareRig(revision, controller, bus, None, _i2c_edge(bus, I2C_BUS),
                                  controller_port)
            yield rig
            nursery.cancel_scope.cancel()


# --- run alone ---------------------------------------------------------------------------------
HELP = """commands (one per line on stdin):
  plug | energy [AMPS] | pause | unplug       the EV (pilot B, C, B, A)
  fault CODE | clear | reboot                 controller fault state (hex, e.g. 06 = GFCI trip)
  card UID | nocard                           a card (hex NFCID1, 4/7/10 bytes) on the PN532
  load WATTS                                  the SDM630's load (rev2)
  silent controller|meter|reader [off]        a device stops (or resumes) answering
  state | help"""


def _command(rig: HardwareRig, line: str) -> str:
    """Carry out one stdin command; returns what to print."""
    words = line.split()
    if not words:
        return ""
    name, args = words[0].lower(), words[1:]
    c = rig.controller
    actions: dict[str, Callable[[], object]] = {
        "plug": c.plug,
        "energy": lambda: c.request_energy(float(args[0]) if args else None),
        "pause": c.pause,
        "unplug": c.unplug,
        "fault": lambda: c.fault(int(args[0], 16)),
        "clear": c.clear_fault,
        "reboot": c.reboot,
        "card": lambda: rig.reader.present_card(bytes.fromhex(args[0])),
        "nocard": rig.reader.remove_card,
        "load": lambda: _meter(rig).set_load(float(args[0])),
        "silent": lambda: _silence(rig, args),
    }
    if name == "help":
        return HELP
    if name == "state":
        meter = f", meter {rig.meter.energy_kwh():.4f} kWh" if rig.meter is not None else ""
        return (f"EV {c.ev}, evse state {c.evse_state:02x}, relay {'closed' if c.relay_closed else 'open'}, "
                f"auth lock {'on' if c.auth_locked else 'off'}, {c.current} A{meter}")
    action = actions.get(name)
    if action is None:
        return f"unknown command {name!r} (try help)"
    try:
        action()
    except (ValueError, IndexError) as exc:
        return f"{name}: {exc or 'missing argument'}"
    return "ok"


def _meter(rig: HardwareRig) -> Sdm630Emulator:
    if rig.meter is None:
        raise ValueError(f"{rig.revision} has no external meter")
    return rig.meter


def _silence(rig: HardwareRig, args: list[str]) -> None:
    devices = {"controller": rig.controller, "reader": rig.reader, "meter": rig.meter}
    device = devices.get(args[0]) if args else None
    if device is None:
        raise ValueError("which device: controller, meter (rev2) or reader")
    device.go_silent(not (len(args) > 1 and args[1] == "off"))


async def _serve(revision: str, print_config: bool) -> None:
    async with open_hardware_rig(revision) as rig:
        if print_config:
            print(rig.hardware_toml(), end="", flush=True)
        print(f"# {revision} rig serving until killed; type help for commands", file=sys.stderr,
              flush=True)
        while True:
            line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
            if not line:                    # no (more) input: just serve
                await trio.sleep_forever()
            if reply := _command(rig, line):
                print(reply, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.emulators.rig",
        description="Emulated OpenEVSE board on pseudo-terminals, for a station without hardware.")
    parser.add_argument("--revision", choices=REVISIONS, default="openevse-rev2")
    parser.add_argument("--print-config", action="store_true",
                        help="print the [hardware] table for the station's config file (stdout)")
    args = parser.parse_args(argv)
    try:
        trio.run(_serve, args.revision, args.print_config)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
