"""Smoke test of devtools/bench.py (`make bench`): the in-process measurements run with the
--quick counts and produce numbers. No timing assertions: speed is for `make bench` to show."""
from __future__ import annotations

import json

from devtools import bench


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
    assert {"build", "inbound", "sqlite-event"} <= keys
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


def test_sqlite_event_cost_writes_and_deletes_the_stations_own_change(tmp_path):
    change = bench.transaction_event_change()
    assert change.table == "queue" and len(change.upserts) == 1 and "tx:1" in change.kv
    write, delete = bench.run_sqlite_event_cost(tmp_path, bench.QUICK.micro_n, bench.QUICK.micro_warmup)
    for stats in (write, delete):
        assert stats.n == bench.QUICK.micro_n and 0 < stats.p50 <= stats.p99
    assert (tmp_path / "station.db").exists()


def test_queued_events_database_holds_contiguous_seq_nos(tmp_path):
    from adapters.sqlite_storage import SqliteStorage
    from domain import messages as m
    from domain.queue import DurableQueue

    bench.write_queued_events(tmp_path / "station.db", 50)
    storage = SqliteStorage(tmp_path / "station.db")
    try:
        queue = DurableQueue(storage.load_records("queue"), m.REQUESTS)
    finally:
        storage.close()
    assert [q.request.seq_no for q in queue] == list(range(1, 51))
    assert {q.request.transaction_info.transaction_id for q in queue} == {bench.REPLAY_TX_ID}
    assert bench.queued_records(tmp_path / "station.db") == 50


def test_station_config_takes_extra_device_model_values(tmp_path):
    from bootstrap.config import load_config

    path = bench.write_station_config(tmp_path, "ws://127.0.0.1:9/ocpp", bench.REMOTE_TX_DEVICE_MODEL)
    config = load_config(path)
    assert config.device_model["TxCtrlr.TxStopPoint"] == "Authorized"
    assert config.device_model["AuthCtrlr.AuthorizeRemoteStart"] is False
    assert config.device_model["OCPPCommCtrlr.RetryBackOffWaitMinimum"] == 0


def test_main_quick_prints_the_table_and_the_machine(capsys):
    assert bench.main(["--quick", "--only", "build"]) == 0
    out = capsys.readouterr().out
    assert "build+validate+encode TransactionEvent" in out
    assert "machine: Python" in out and "cores" in out


def test_stats_percentiles():
    s = bench.Stats.of(list(range(1, 101)))
    assert (s.n, s.p50, s.p99, s.mean) == (100, 50.0, 99.0, 50.5)
    assert bench.Row("x", 2.0, 5.0, unit="MiB").ratio() == 2.5


def test_transfer_rows_download_over_http_and_ftp_in_a_process_of_their_own():
    """The `transfer` rows (not in the in-process run: they start processes), with small files."""
    rows = bench.transfer_rows(200_000, 1_000_000)
    assert [r.unit for r in rows] == ["MB/s", "MiB", "MiB"] * 2
    assert all(isinstance(r.ours, float) and r.ours > 0 for r in rows)
    assert "HTTP" in rows[0].label and "FTP" in rows[3].label


def test_station_config_for_profile_3_names_the_bench_pki_files(tmp_path):
    """The tls-connect row's station: security profile 3 with the files bench_pki wrote; the
    CSMS's context requires a client certificate."""
    import ssl

    from bootstrap.config import load_config

    ctx = bench.bench_pki(tmp_path)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    path = bench.write_station_config(tmp_path, "wss://127.0.0.1:9/ocpp", csms_toml=bench.PROFILE_3_TOML)
    c = load_config(path).csms
    assert c.security_profile == 3
    for name in (c.csms_root_ca, c.client_cert, c.client_key):
        assert name is not None and (tmp_path / name).exists()
