"""Device-model definitions: reading the JSON data files for one installation.

The files live in the package `domain.device_model.definitions` (the format is described
in its README.md). This module only reads them, through importlib.resources (so it works
from a wheel or a zip as well as from a source tree); checking and expanding them is
domain.device_model.definitions_loader (pure).

The package's files do not change while the process runs: they are read and checked once
per process, and the definitions of an installation are expanded once per set of arguments
(issue 13: loaded once per process, not per boot; a simulator's reboot composes again).
What is cached is immutable (frozen specs and VariableDefs in tuples); callers get a new
list each time.
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Collection, Sequence

from domain.device_model.definitions_loader import (
    HARDWARE_FOLDER,
    ComponentSpec,
    DefinitionError,
    VariableSpec,
    check_layout,
    definitions_for,
    expand,
    installation_values,
    parse_definition_file,
    parse_definition_files,
)
from domain.device_model.model import VariableDef

PACKAGE = "domain.device_model.definitions"
EXPANSIONS_KEPT = 8             # installations whose expanded definitions stay cached


def load_definitions(
    evse_connectors: Sequence[int], *, station_id: str, security_profile: int,
    basic_auth_password: str | None = None, message_timeout: int = 30,
    source: Traversable | None = None, parts: Collection[str] = (),
) -> list[VariableDef]:
    """Every variable of the station laid out as `evse_connectors` (connectors per EVSE).

    `source` is the folder of the definition files (default: the package
    domain.device_model.definitions; tests pass their own, read at every call). `parts`
    names the hardware components the deployment has (Controller, RCD, TokenReader, ...):
    their definitions come from the `hardware/` subfolder, one file per component.
    """
    layout = tuple(check_layout(evse_connectors))
    values = installation_values(station_id, security_profile, basic_auth_password, message_timeout)
    if source is None:
        return list(_package_definitions(layout, tuple(values.items()), tuple(sorted(parts))))
    hardware = read_definition_files(source.joinpath(HARDWARE_FOLDER)) if parts else ()
    return definitions_for(read_definition_files(source), hardware, layout, values, parts)


def read_definition_files(source: Traversable | None = None) -> list[ComponentSpec]:
    """Every `*.json` file of `source` (default: the package's folder, read once), by name, checked."""
    if source is None:
        return list(_package_specs(""))
    return parse_definition_files(_json_files(source), str(source))


@functools.lru_cache(maxsize=None)
def _package_specs(folder: str) -> tuple[ComponentSpec, ...]:
    """The checked files of the package (`folder` "") or of one of its subfolders."""
    root = resources.files(PACKAGE)
    source = root.joinpath(folder) if folder else root
    return tuple(parse_definition_files(_json_files(source), str(source)))


@functools.lru_cache(maxsize=EXPANSIONS_KEPT)
def _package_definitions(layout: tuple[int, ...], values: tuple[tuple[str, str | None], ...],
                         parts: tuple[str, ...]) -> tuple[VariableDef, ...]:
    hardware = _package_specs(HARDWARE_FOLDER) if parts else ()
    return tuple(definitions_for(_package_specs(""), hardware, layout, dict(values), parts))


def _json_files(folder: Traversable) -> Iterator[tuple[str, bytes]]:
    """(name, content) of the `*.json` files of `folder` by name, each read when reached."""
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".json") and f.is_file()),
                   key=lambda f: f.name)
    for f in files:
        yield f.name, f.read_bytes()


def clear_cache() -> None:
    """Forget what was read and expanded (tests)."""
    _package_definitions.cache_clear()
    _package_specs.cache_clear()


__all__ = ["DefinitionError", "ComponentSpec", "VariableSpec", "HARDWARE_FOLDER", "PACKAGE", "clear_cache",
           "expand", "load_definitions", "parse_definition_file", "read_definition_files"]
