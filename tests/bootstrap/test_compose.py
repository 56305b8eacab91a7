"""bootstrap.compose: each deployment is declared once and built from the config alone."""
from __future__ import annotations

from pathlib import Path

import pytest

from adapters.openevse.controller import OpenEvseAmmeter, OpenEvseController
from adapters.pn532.reader import Pn532Reader
from adapters.pn532.transports import HsuTransport, I2cTransport
from adapters.sdm630.meter import Sdm630Meter
from adapters.sim_hardware import SimHardware
from bootstrap.compose import DEPLOYMENTS, KernelEdge, compose, serial_device
from bootstrap.config import HARDWARE_ADAPTERS, parse_config
from bootstrap.definitions import DefinitionError, load_definitions


def config(adapter: str, extra: str = ""):
    layout = "" if adapter == "sim" else "evse_connectors = [1]\n"
    return parse_config(f'[station]\nid = "CS-1"\n{layout}[hardware]\nadapter = "{adapter}"\n{extra}',
                        Path("/tmp"), source="station.toml")


def test_every_configurable_adapter_has_exactly_one_declaration():
    assert set(DEPLOYMENTS) == set(HARDWARE_ADAPTERS)


def test_sim_is_the_simulator_for_every_port():
    d = compose(config("sim"), lambda: {})
    assert isinstance(d.hardware, SimHardware) and d.meter is d.hardware and d.system is d.hardware
    assert d.token_reader is None and d.parts == ()


def test_rev1_controller_ammeter_and_pn532_on_i2c_through_the_kernel_edge():
    buses = []
    d = compose(config("openevse-rev1"), lambda: {}, KernelEdge(open_i2c_bus=lambda n: buses.append(n)))
    assert isinstance(d.hardware, OpenEvseController)
    assert isinstance(d.meter, OpenEvseAmmeter) and d.meter.component == "ControlMetering"
    assert isinstance(d.token_reader, Pn532Reader)
    assert isinstance(d.token_reader._transport, I2cTransport)
    assert "ControlMetering" in d.parts and "FiscalMetering" not in d.parts and "RCD" in d.parts
    # the parts are defined (the device model of this deployment loads)
    defs = load_definitions([1], station_id="CS-1", security_profile=1, parts=d.parts)
    assert {x.ref.component for x in defs} >= set(d.parts)


def test_rev2_sdm630_on_its_port_and_pn532_on_a_uart():
    d = compose(config("openevse-rev2", '[hardware.meter]\nport = "/dev/ttyUSB3"\nunit_id = 7\n'), lambda: {})
    assert isinstance(d.hardware, OpenEvseController)
    assert isinstance(d.meter, Sdm630Meter) and d.meter.unit_id == 7 and d.meter.device.label == "/dev/ttyUSB3"
    assert isinstance(d.token_reader._transport, HsuTransport)
    assert "FiscalMetering" in d.parts and "ControlMetering" not in d.parts


def test_a_usb_identity_is_resolved_through_udev_a_path_is_opened_as_is():
    by_path = serial_device("/dev/ttyS1", 115200)
    assert by_path.label == "/dev/ttyS1" and by_path._resolve is None
    by_usb = serial_device("usb:0403:6001:A1B2", 9600)
    assert by_usb.label == "usb:0403:6001:A1B2" and by_usb._resolve is not None and by_usb._gone is not None


def test_an_unknown_hardware_part_is_a_definition_error():
    with pytest.raises(DefinitionError, match="Flux"):
        load_definitions([1], station_id="CS-1", security_profile=1, parts=("Flux",))

