"""The labelled evaluation case, end to end: a light sleep on the default model with the default settings.

About 15 CPU-minutes on a 2-core machine (324 examples x 3 epochs, the gate, fusion and two evaluations),
so it is marked `slow`: `make test` (CI) leaves it out and `make test-slow` runs it. The same case and
defaults are measured, with every metric, by `bench/experiments.py --configs ours` (docs/RESULTS.md).
"""

from __future__ import annotations

import json

import shutil
from pathlib import Path

import pytest

from storage import registry
from storage.catalog import connect
from storage.home import Home

CASE = Path(__file__).resolve().parents[1] / "tasks" / "data" / "eval_case"

pytestmark = [pytest.mark.slow, pytest.mark.model, pytest.mark.prefect]


def test_a_light_sleep_on_the_labelled_case_is_approved_and_remembers(prefect_harness, tmp_path,
                                                                      converted_model_dir):
    from flows.sleep import sleep_cycle

    home = Home(tmp_path / "h").ensure()
    shutil.copytree(CASE / "sessions", home.root / "inbox" / "case")
    home.config_file.write_text(f'[eval]\nprobes = "{CASE / "probes.jsonl"}"\n')
    result = sleep_cycle(home_dir=str(home.root), depth="light")
    assert result.status == "completed", result
    assert result.stages["ingest"]["exchanges_added"] == 46
    gate = connect(home).sql("select approved, benchmark_ratio, ppl_drift, recall_pre, recall_post "
                             "from gate_results").fetchall()
    assert len(gate) == 1
    approved, ratio, drift, recall_pre, recall_post = gate[0]
    # The gate approved: at most a fifth of the benchmark answers the parent got right broke, counted answer by
    # answer (measured with these defaults: ratio 0.825 on the 236-question benchmark, drift +18.1%; the
    # ratio of the old 62-question benchmark was 0.975: docs/RESULTS.md).
    details = json.loads(connect(home).sql("select details_json from gate_results").fetchall()[0][0])
    right_before = sum(o["outcome"] == "correct" for o in details["pre"]["benchmark_outcomes"])
    lost = details["decision"]["benchmark_lost"]
    assert approved and len(lost) <= 0.2 * right_before and drift <= 0.5, (len(lost), right_before, ratio)
    assert recall_post >= recall_pre + 0.5
    assert result.model_after == registry.current_name(home) == "v0001"
    assert registry.get(home, "v0001").manifest.parent == "v0000"
    # The sleep's own evaluation on the case's probes, both versions (measured: recall 0.00 -> 0.88).
    con = connect(home)
    metrics = {v: (recall, control) for v, recall, control in con.sql(
        "select model_version, recall, control_accuracy from eval_runs").fetchall()}
    assert set(metrics) == {"v0000", "v0001"}
    assert metrics["v0000"][0] <= 0.1 and metrics["v0001"][0] >= 0.75
    # No control question the parent answered right is answered wrong now.
    outcomes = con.sql("""select model_version, probe_id, verdict from eval_answers where kind = 'control'""").fetchall()
    before = {p for v, p, o in outcomes if v == "v0000" and o == "correct"}
    after = {p for v, p, o in outcomes if v == "v0001" and o == "correct"}
    summary = con.sql("select model_version, recall, generalization, precision, guard_pass_rate, control_accuracy "
                      "from eval_runs order by model_version").fetchall()
    print(f"\nlabelled case, shipped defaults: gate approved={approved} ratio {ratio:.3f} drift {drift:+.1%} "
          f"held-out recall {recall_pre:.3f} -> {recall_post:.3f}; eval (version, recall, generalization, "
          f"precision, guards, control): {summary}; control right before {sorted(before)}, after {sorted(after)}")
    assert before and before <= after
    assert (home.runs / result.run_id / "eval.png").stat().st_size > 1000
