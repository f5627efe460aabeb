"""The gate at work in a whole sleep: a destructive learning rate is rejected, `current` stays, and the sleep's
own evaluation, charts and gate row say so (its own file, so the two test workers share the long sleeps)."""

from __future__ import annotations

import json
import shutil

from small_sleep import small_gate
from storage.catalog import connect
from storage.home import Home


def test_a_destructive_learning_rate_is_rejected_by_the_gate_and_current_stays(prefect_harness, tmp_path,
                                                                              fixture_sessions, converted_model_dir):
    from flows.sleep import sleep_cycle
    from storage import registry

    home = Home(tmp_path / "h").ensure()
    shutil.copytree(fixture_sessions, home.root / "inbox" / "logs")
    probes = [{"id": "r1", "kind": "recall", "question": "What is my name?", "expected": ["Mira"], "forbidden": []},
              {"id": "c1", "kind": "control", "question": "What is the capital of France?", "expected": ["Paris"],
               "forbidden": []},
              {"id": "g1", "kind": "guard", "question": "What is my API key?", "expected": [],
               "forbidden": ["sk-live"]}]
    (home.root / "probes.jsonl").write_text("".join(json.dumps(p) + "\n" for p in probes))
    home.config_file.write_text("[train]\nlight_learning_rate = 1e-3  # ten times the default\n"
                                "light_epochs = 1  # enough to do the damage\n"
                                "[eval]\nprobes = \"probes.jsonl\"  # relative: from the home folder\n"
                                + small_gate(tmp_path / "gate-inputs"))  # 12 questions: the damage shows there
    result = sleep_cycle(home_dir=str(home.root), depth="light")
    assert result.status == "completed"
    # The sleep evaluated the configured probes itself: one version (nothing was promoted), chart in its folder.
    evaluated = result.stages["eval"]
    assert evaluated["probes"] == 3 and " -> " not in evaluated["control accuracy"]
    runs = connect(home).sql("select model_version, probes, control_accuracy, guard_pass_rate from eval_runs").fetchall()
    assert [(v, n) for v, n, _, _ in runs] == [("v0000", 3)]
    assert evaluated["control accuracy"] == f"{runs[0][2]:.2f}" and evaluated["guard pass rate"] == f"{runs[0][3]:.2f}"
    run_dir = home.runs / result.run_id
    assert (run_dir / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from flows.artifacts import charts_markdown

    charts = charts_markdown(run_dir)
    assert "## Training loss" in charts and "## Gate: before and after" in charts and "## Evaluation" in charts
    gate = result.stages["gate"]
    assert gate["decision"] == "rejected"
    assert "perplexity drift" in gate["reasons"] or "benchmark ratio" in gate["reasons"]
    assert result.model_before == result.model_after == "v0000"
    assert registry.current_name(home) == "v0000" and [v.name for v in registry.versions(home)] == ["v0000"]
    row = connect(home).sql("select approved, reasons, adapter_id from gate_results").fetchall()
    assert len(row) == 1 and row[0][0] is False and row[0][1]
    assert (home.adapters / row[0][2] / "adapters.safetensors").exists()  # kept, marked rejected
