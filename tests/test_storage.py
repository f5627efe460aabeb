"""Storage round trips in temp homes: atomic immutable Parquet, schemas, catalog views, ids, runs."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from storage import ids
from storage.atomic import atomic_dir, atomic_path
from storage.catalog import connect, write_catalog_file
from storage.errors import SchemaError
from storage.runs import latest_runs, record_run
from storage.schemas import SCHEMAS
from storage.warehouse import read_table, table_files, write_table


def _quarantine_rows(n: int) -> pa.Table:
    return pa.Table.from_pydict({
        "source_file": [f"f{i}.jsonl" for i in range(n)], "file_sha256": ["0" * 64] * n,
        "line_no": list(range(1, n + 1)), "reason": ["invalid-json"] * n, "detail": ["x"] * n,
        "raw": [b"{"] * n,
    })


def test_write_is_partitioned_immutable_and_idempotent(home):
    path = write_table(home, "quarantine", "r1", _quarantine_rows(3))
    assert path.parent.name == "run_id=r1" and path.parent.parent.name == "quarantine"
    assert path.name.startswith("part-") and path.suffix == ".parquet"
    mtime = path.stat().st_mtime_ns
    again = write_table(home, "quarantine", "r1", _quarantine_rows(3))
    assert again == path and path.stat().st_mtime_ns == mtime  # same content: not rewritten
    write_table(home, "quarantine", "r2", _quarantine_rows(2))
    table = read_table(home, "quarantine")
    assert table.num_rows == 5
    assert sorted(set(table["run_id"].to_pylist())) == ["r1", "r2"]
    assert read_table(home, "quarantine", run_ids=["r2"]).num_rows == 2
    assert table.schema == SCHEMAS["quarantine"]


def test_schema_mismatch_names_the_columns(home):
    bad = _quarantine_rows(1).drop_columns(["reason"]).append_column("why", pa.array(["?"]))
    with pytest.raises(SchemaError, match=r"missing columns \['reason'\].*unexpected columns \['why'\]"):
        write_table(home, "quarantine", "r1", bad)
    assert table_files(home, "quarantine") == []


def test_readers_never_see_temp_files(home):
    write_table(home, "quarantine", "r1", _quarantine_rows(1))
    final = home.table_dir("quarantine") / "run_id=r1" / "part-zzzz.parquet"
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"PAR1 half written")
        # While the writer is mid-file, the reader sees only the finished file.
        assert read_table(home, "quarantine").num_rows == 1
        assert connect(home).sql("select count(*) from quarantine").fetchall() == [(1,)]
    os.unlink(final)


def test_failed_write_leaves_nothing(tmp_path):
    final = tmp_path / "x.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("crash")
    assert not final.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "v0001") as d:
            (d / "weights").write_bytes(b"partial")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_catalog_has_a_typed_view_per_table_even_when_empty(home):
    con = connect(home)
    views = {r[0] for r in con.sql("select view_name from duckdb_views() where not internal").fetchall()}
    assert views == set(SCHEMAS)
    cols = [r[0] for r in con.sql("describe exchanges").fetchall()]
    assert cols == SCHEMAS["exchanges"].names
    assert con.sql("select count(*) from exchanges").fetchall() == [(0,)]
    write_table(home, "quarantine", "r20261123", _quarantine_rows(2))
    con = connect(home)
    # run ids that look like dates stay strings (hive partition parsing is off).
    assert con.sql("select distinct run_id from quarantine").fetchall() == [("r20261123",)]
    assert write_catalog_file(home)
    import duckdb

    ext = duckdb.connect(str(home.catalog_file), read_only=True)
    assert ext.sql("select count(*) from quarantine").fetchall() == [(2,)]
    ext.close()


def test_ids_are_content_hashes():
    a = ids.exchange_id("s1", 0, "hi", "hello")
    assert a == ids.exchange_id("s1", 0, "hi", "hello")
    assert a != ids.exchange_id("s1", 1, "hi", "hello")
    assert a.startswith("ex_") and len(a) == 3 + ids.ID_HEX
    p = ids.pair_id(a, "template", "What is your name?", "Ana")
    assert p != ids.pair_id(a, "model", "What is your name?", "Ana")
    assert ids.message_id("s", 0, "user", "t", "x") != ids.message_id("s", 0, "assistant", "t", "x")


def test_runs_latest_status_wins(home):
    t0 = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)
    record_run(home, "r1", "sleep", t0, "running", finished_at=t0, input_files=["a"], input_sha256=["b"])
    record_run(home, "r1", "sleep", t0, "completed", summary={"ingest": {"files": 1}})
    runs = latest_runs(home)
    assert len(runs) == 1 and runs[0]["status"] == "completed"
    assert '"files": 1' in runs[0]["summary_json"]


def test_fast_id_spellings_match_content_id():
    assert ids.message_id("s", 3, "user", "t", "x\x1fy") == ids.content_id("msg", "s", 3, "user", "t", "x\x1fy")
    assert ids.exchange_id("s", 12, "a:b", "") == ids.content_id("ex", "s", 12, "a:b", "")
    # Length prefixes keep fields from running into each other.
    assert ids.content_id("x", "ab", "c") != ids.content_id("x", "a", "bc")


def test_a_killed_fusions_scratch_folder_is_stale_and_a_live_ones_is_not(tmp_path):
    import subprocess
    import sys

    from storage.atomic import clean_stale_temp

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    models = tmp_path / "models"
    dead = models / f".tmp-fuse-r20261204T030000-1a2b3c-{gone.pid}-k3j_x9q2"
    live = models / f".tmp-fuse-r20261204T030000-1a2b3c-{os.getpid()}-p0o9i8u7"
    for folder in (dead, live):
        (folder / "model").mkdir(parents=True)
        (folder / "model" / "model.safetensors").write_bytes(b"\0" * 16)
    assert clean_stale_temp(tmp_path) == [dead]
    assert not dead.exists() and live.exists()
