"""TOML values for the station config files the tools and the tests write (one definition)."""
from __future__ import annotations

import json
from typing import Any

__all__ = ["toml_value"]


def toml_value(value: Any, *, hex_int: bool = False) -> str:
    """`value` as a TOML value: a boolean, an integer (`hex_int`: 0x.., e.g. an I2C address),
    a float, or a basic string for anything else (its str(); JSON's escapes are TOML's, and
    TOML also wants DEL escaped; non-ASCII stays as it is: JSON would write characters beyond
    U+FFFF as surrogate pairs, which TOML refuses)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"0x{value:02x}" if hex_int else str(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
