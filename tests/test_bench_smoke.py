"""Smoke test of tools/bench.py (`make bench`): the in-process measurements run with the
--quick counts and produce numbers. No timing assertions: speed is for `make bench` to show."""
from __future__ import annotations

import json

from tools import bench


def test_both_builders_make_the_same_transaction_event():
    bench.check_same_transaction_event()
    frame = json.loads(bench.ours_transaction_event_op()())
    assert frame[0] == 2 and frame[2] == "TransactionEvent"
    assert len(frame[3]["meterValue"][0]["sampledValue"]) == 10


def test_inbound_ops_answer_the_get_variables_call():
    for op in (bench.ours_inbound_op(), bench.ocpp_inbound_op()):
        result = json.loads(op())
        assert result[0] == 3
        assert result[2]["getVariableResult"][0]["attributeStatus"] == "Accepted"


def test_in_process_measurements_produce_numbers():
    rows = bench.run(None, bench.QUICK, in_process_only=True)
    keys = {m.key for m in bench.REGISTRY if m.in_process}
    assert {"build", "inbound"} <= keys
    assert len(rows) >= len(keys)
    for row in rows:
        assert isinstance(row.ours, bench.Stats), row
        assert row.ours.n == bench.QUICK.micro_n
        assert 0 < row.ours.p50 <= row.ours.p99
        if row.theirs is not None:
            assert isinstance(row.theirs, bench.Stats) and row.theirs.p50 > 0
            assert row.ratio() is not None and row.ratio() > 0
    table = bench.format_table(rows)
    lines = table.splitlines()
    assert lines[0].split()[0] == "measurement" and len(lines) == len(rows) + 2
    assert len({len(line) for line in lines[:2]}) == 1     # aligned


def test_main_quick_prints_the_table_and_the_machine(capsys):
    assert bench.main(["--quick", "--only", "build"]) == 0
    out = capsys.readouterr().out
    assert "build+validate+encode TransactionEvent" in out
    assert "machine: Python" in out and "cores" in out


def test_stats_percentiles():
    s = bench.Stats.of(list(range(1, 101)))
    assert (s.n, s.p50, s.p99, s.mean) == (100, 50.0, 99.0, 50.5)
    assert bench.Row("x", 2.0, 5.0, unit="MiB").ratio() == 2.5
