"""The device-model definitions for domain tests, without the composition root.

Reads the JSON files of the package domain.device_model.definitions (tests may do I/O) and
hands them to the pure loader, domain.device_model.definitions_loader; same signatures as
bootstrap.definitions, so the domain tests do not import bootstrap.
"""
from __future__ import annotations

import functools
from collections.abc import Collection, Iterator, Sequence
from importlib import resources
from importlib.resources.abc import Traversable

from domain.device_model import VariableDef
from domain.device_model.definitions_loader import (
    HARDWARE_FOLDER,
    ComponentSpec,
    definitions_for,
    installation_values,
    parse_definition_files,
)

__all__ = ["HARDWARE_FOLDER", "PACKAGE", "load_definitions", "read_definition_files"]

PACKAGE = "domain.device_model.definitions"


def read_definition_files(source: Traversable | None = None) -> list[ComponentSpec]:
    """The checked files of `source` (default: the package's folder)."""
    folder = source if source is not None else resources.files(PACKAGE)
    return parse_definition_files(_json_files(folder), str(folder))


def load_definitions(evse_connectors: Sequence[int], *, station_id: str, security_profile: int,
                     basic_auth_password: str | None = None, message_timeout: int = 30,
                     parts: Collection[str] = ()) -> list[VariableDef]:
    """Every variable of a station laid out as `evse_connectors`, with the hardware `parts`."""
    values = installation_values(station_id, security_profile, basic_auth_password, message_timeout)
    hardware = _package_specs(HARDWARE_FOLDER) if parts else ()
    return definitions_for(_package_specs(""), hardware, evse_connectors, values, parts)


@functools.cache
def _package_specs(folder: str) -> tuple[ComponentSpec, ...]:
    """The package's checked files (`folder` "") or those of a subfolder, read once per test run."""
    root = resources.files(PACKAGE)
    return tuple(read_definition_files(root.joinpath(folder) if folder else root))


def _json_files(folder: Traversable) -> Iterator[tuple[str, bytes]]:
    for f in sorted(folder.iterdir(), key=lambda f: f.name):
        if f.name.endswith(".json") and f.is_file():
            yield f.name, f.read_bytes()
