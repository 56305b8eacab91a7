"""Device-model value checks, stored values and listeners; the station clock (pure)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain.clock import StationClock
from domain.device_model import DeviceModel, VariableDef, VariableRef, parse_ref


def d(data_type, default=None, **kw):
    return VariableDef(VariableRef("C", "V"), data_type, default, **kw)


@pytest.mark.parametrize(("definition", "value", "ok"), [
    (d("integer", min_limit=1, max_limit=10), "5", True),
    (d("integer", min_limit=1, max_limit=10), "0", False),
    (d("integer", min_limit=1, max_limit=10), "11", False),
    (d("integer"), "5.0", False),
    (d("integer"), "", False),
    (d("decimal"), "1.5", True),
    (d("decimal"), "nan", False),
    (d("boolean"), "true", True),
    (d("boolean"), "True", False),
    (d("dateTime"), "2026-01-01T00:00:00Z", True),
    (d("dateTime"), "yesterday", False),
    (d("OptionList", values_list=("A", "B")), "B", True),
    (d("OptionList", values_list=("A", "B")), "C", False),
    (d("MemberList", values_list=("A", "B")), "A,B", True),
    (d("MemberList", values_list=("A", "B")), "", True),
    (d("MemberList", values_list=("A", "B")), "A,A", False),
    (d("SequenceList", values_list=("A", "B")), "", False),
    (d("string", max_limit=3), "abcd", False),
    (d("identifierString"), "CS-1", True),
    (d("identifierString"), "CS 1", False),
])
def test_value_checks(definition, value, ok):
    assert (definition.check(value) is None) is ok


def test_bad_default_is_refused_at_definition():
    with pytest.raises(ValueError, match="default"):
        d("integer", "x")


def test_stored_values_win_over_defaults_unless_invalid_or_constant():
    defs = [VariableDef(VariableRef("C", "A"), "integer", "1"),
            VariableDef(VariableRef("C", "B"), "integer", "1"),
            VariableDef(VariableRef("C", "K"), "integer", "1", constant=True)]
    dm = DeviceModel(defs, {("C/A", "Actual"): "7", ("C/B", "Actual"): "seven", ("C/K", "Actual"): "9",
                            ("C/Gone", "Actual"): "3"})
    assert (dm.get("C", "A"), dm.get("C", "B"), dm.get("C", "K")) == ("7", "1", "1")


def test_listeners_hear_changes_only():
    dm = DeviceModel([VariableDef(VariableRef("C", "A"), "integer", "1")])
    heard = []
    dm.subscribe(VariableRef("C", "A"), lambda ref, v: heard.append(v))
    assert dm.write(VariableRef("C", "A"), "1") is None
    assert dm.write(VariableRef("C", "A"), "2") is None
    assert dm.write(VariableRef("C", "A"), "x") == "not an integer"
    assert heard == ["2"]


def test_parse_ref():
    assert parse_ref("OCPPCommCtrlr.MessageTimeout[Default]") == VariableRef(
        "OCPPCommCtrlr", "MessageTimeout", None, "Default")
    assert parse_ref("EVSE[x].Power") == VariableRef("EVSE", "Power", "x", None)
    with pytest.raises(ValueError):
        parse_ref("NoDot")


def test_station_clock_moves_with_monotonic_time_and_jumps_when_set():
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    c = StationClock(100.0, t0)
    assert c.utc(101.5) == t0 + timedelta(seconds=1.5)
    jump = c.set(102.0, t0 + timedelta(hours=1))
    assert jump == pytest.approx(3600 - 2.0)
    assert c.utc(103.0) == t0 + timedelta(hours=1, seconds=1)
    with pytest.raises(ValueError):
        StationClock(0.0, datetime(2026, 1, 1))
