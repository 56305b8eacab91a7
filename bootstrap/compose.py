"""Composition root: which adapters make up each deployment.

Each deployment is declared once in DEPLOYMENTS; nothing outside bootstrap/
names a concrete adapter. Adding a board revision is one more entry here.
"""
from __future__ import annotations

from typing import Callable

from adapters.csms_link_ws import WebSocketCsmsLink
from adapters.sim_hardware import SimHardware
from adapters.sqlite_storage import SqliteStorage
from bootstrap.config import Config
from bootstrap.runtime import Deployment

StationView = Callable[[], dict]


def _sim(config: Config, station_view: StationView) -> Deployment:
    sim = SimHardware(list(config.station.evse_connectors), str(config.hardware.control_socket), station_view)
    return Deployment(
        make_link=WebSocketCsmsLink,
        hardware=sim,
        meter=sim,
        system=sim,
        open_storage=lambda: SqliteStorage(config.storage.path),
    )


DEPLOYMENTS: dict[str, Callable[[Config, StationView], Deployment]] = {
    "sim": _sim,
}


def compose(config: Config, station_view: StationView) -> Deployment:
    return DEPLOYMENTS[config.hardware.adapter](config, station_view)
