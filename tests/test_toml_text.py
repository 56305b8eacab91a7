"""devtools.toml_text.toml_value: what the tools and the tests write into station config
files reads back as the same value (tomllib)."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from devtools.toml_text import toml_value


@pytest.mark.parametrize("value", [
    True, False, 0, 300, -1, 1.5, 1e-3, "", "CS-1", 'a "quoted" \\ back\\slash', "tab\tnew\nline\r",
    "\x00\x1f\x7f control", "é ü ß", "😀 beyond U+FFFF", "ws://127.0.0.1:9/ocpp",
])
def test_values_read_back_the_same(value):
    assert tomllib.loads(f"k = {toml_value(value)}")["k"] == value


def test_other_values_are_written_as_their_text_and_integers_in_hex_when_asked():
    assert tomllib.loads(f"k = {toml_value(Path('/run/x.sock'))}")["k"] == "/run/x.sock"
    assert toml_value(0x24, hex_int=True) == "0x24"
    assert tomllib.loads(f"k = {toml_value(0x24, hex_int=True)}")["k"] == 0x24
