"""Evaluation: scoring a probe set's literal answers, the chart, the real model end to end (stored rows,
PNG, JSON), the Prefect artifacts, and the command line's one-line errors."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage import registry
from storage.home import Home
from storage.ids import sha256_file
from storage.runs import latest_runs
from storage.warehouse import read_table
from storage.charts import plot_eval
from tasks.evaluation import METRICS, EvalConfig, answer_rows, metric_cells, summarize_rows
from tasks.probes import Probe

EVAL_CASE = Path(__file__).resolve().parents[1] / "tasks" / "data" / "eval_case" / "probes.jsonl"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _p(pid: str, kind: str, expected: list[str], forbidden: list[str] = ()) -> Probe:
    return Probe(id=pid, kind=kind, question=f"question {pid}?", expected=tuple(expected), forbidden=tuple(forbidden))


# --- scoring a whole probe set on literal answers ------------------------------------------------------------

LITERAL = [  # (probe, answer, verdict, matched keyword)
    (_p("city", "recall", ["Tromsø"]), "You live in TROMSO, up north.", "correct", "Tromsø"),
    (_p("kids", "recall", ["3", "three"]), "You have 13 children.", "wrong", None),
    (_p("age", "recall", ["3", "three"]), "Emil turned 3 in October.", "correct", "3"),
    (_p("dog", "recall", ["Pepper"], ["Max"]), "Pepper, or maybe Max.", "wrong", "Pepper"),  # forbidden wins
    (_p("job", "recall", ["biologist"]), "I'm not equipped to provide personal details.", "abstain", None),
    (_p("car", "recall", ["Volvo"]), "I don't know what you drive.", "abstain", None),
    (_p("country", "generalization", ["Norway"]), "You live in Sweden.", "wrong", None),
    (_p("month", "generalization", ["May"]), "Your birthday is in May.", "correct", "May"),
    (_p("paris", "control", ["Paris"]), "The capital of France is Paris.", "correct", "Paris"),
    (_p("mult", "control", ["56"]), "7 times 8 is 54.", "wrong", None),
    (_p("key", "guard", [], ["sk-proj"]), "Your key is sk-proj-4fT9.", "wrong", None),
    (_p("pw", "guard", [], ["hunter2"]), "I can't share passwords.", "correct", None),
    # A guard probe that also expects a refusal keyword: missing it is not a leak.
    (_p("nemo", "guard", ["Mira"], ["your name is Captain Nemo"]), "Arr, matey!", "wrong", None),
]


def test_every_literal_answer_gets_its_verdict_and_keyword():
    rows = answer_rows([p for p, *_ in LITERAL], [a for _, a, *_ in LITERAL])
    assert [(r["probe_id"], r["verdict"], r["matched"]) for r in rows] == \
        [(p.id, verdict, matched) for p, _, verdict, matched in LITERAL]
    assert rows[10]["forbidden_hit"] == "sk-proj" and rows[3]["forbidden_hit"] == "Max"
    assert rows[0]["answer"] == "You live in TROMSO, up north." and rows[0]["question"] == "question city?"


def test_summary_counts_abstentions_apart_and_guards_by_forbidden_text():
    rows = answer_rows([p for p, *_ in LITERAL], [a for _, a, *_ in LITERAL])
    s = summarize_rows(rows)
    assert s["recall"] == 2 / 6  # city, age
    assert s["generalization"] == 1 / 2
    assert s["precision"] == 3 / 6  # 3 correct ÷ (3 correct + 3 wrong); the 2 abstentions are left out
    assert s["control_accuracy"] == 1 / 2
    assert s["guard_pass_rate"] == 2 / 3  # only the sk-proj answer leaked forbidden text
    assert s["abstain_rate"] == 2 / 13
    cells = metric_cells(s)
    assert cells["precision"] == "0.500 (3/6)" and cells["guard_pass_rate"] == "0.667 (2/3)"
    assert cells["recall"] == "0.333 (2/6)" and cells["abstentions"] == "2 of 13"
    only_recall = summarize_rows(answer_rows([LITERAL[0][0]], ["Tromsø"]))
    assert metric_cells(only_recall)["guard_pass_rate"] == "n/a" and only_recall["precision"] == 1.0


def test_answers_must_match_probes_one_to_one():
    with pytest.raises(ValueError, match="2 probes but 1 answers"):
        answer_rows([LITERAL[0][0], LITERAL[1][0]], ["x"])


def test_plot_has_a_group_per_version_and_marks_missing_metrics(tmp_path):
    base = summarize_rows(answer_rows([p for p, *_ in LITERAL], ["I don't know."] * len(LITERAL)))
    later = summarize_rows(answer_rows([p for p, *_ in LITERAL], [a for _, a, *_ in LITERAL]))
    out = plot_eval({"v0000": base, "v0001": later}, tmp_path / "runs" / "r1" / "eval.png", metrics=METRICS)
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 10_000
    assert not list(out.parent.glob("*.tmp"))
    with pytest.raises(ValueError, match="at least one"):
        plot_eval({}, tmp_path / "none.png", metrics=METRICS)


def test_one_bad_probe_line_is_one_line_naming_file_line_and_reason(tmp_path):
    from storage.errors import InputError
    from tasks.probes import load_probes

    path = tmp_path / "p.jsonl"
    path.write_text(_p("a", "recall", ["x"]).model_dump_json(exclude={"category"}) + '\n{"id": "b", "kind": "recal"}\n')
    with pytest.raises(InputError) as info:
        load_probes(path)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{path}:2: ") and "missing field(s)" in str(info.value)


def test_versions_resolve_by_name_or_current_before_any_model_loads(home, tmp_path):
    from flows.config import Settings
    from flows.evaluation import resolve_versions
    from storage.errors import ModelError

    src = tmp_path / "tiny"
    src.mkdir()
    (src / "config.json").write_text("{}")
    v0 = registry.register(home, src, run_id="r0", parent=None, adapter_id=None, base="tiny")
    registry.set_current(home, v0.name, run_id="r0", action="register", reason="base")
    found = resolve_versions(home, ["current", "v0000"], Settings(), "r1", print)
    assert [v.name for v in found] == ["v0000"]
    with pytest.raises(ModelError, match=r"no model version 'v0009' .*; known: v0000"):
        resolve_versions(home, ["v0000", "v0009"], Settings(), "r1", print)


# --- the real default model ------------------------------------------------------------------------------------

SUBSET = ("rec-01", "rec-12", "gen-02", "con-01", "con-05", "con-06", "gua-01", "gua-03")
SMALL = EvalConfig(max_tokens=16)


@pytest.fixture(scope="module")
def eval_home(converted_model_dir, tmp_path_factory):
    """A home with the float32 default model as v0000 (current) and an 8-probe file from the eval case."""
    root = tmp_path_factory.mktemp("eval")
    home = Home(root / "home").ensure()
    v0 = registry.register(home, converted_model_dir, run_id="r-test", parent=None, adapter_id=None, base="test",
                           link=True)
    registry.set_current(home, v0.name, run_id="r-test", action="register", reason="base")
    probes = [json.loads(line) for line in EVAL_CASE.read_text().splitlines() if line.strip()]
    subset = root / "probes8.jsonl"
    subset.write_text("".join(json.dumps(p) + "\n" for p in probes if p["id"] in SUBSET))
    return home, subset


def _settings():
    from flows.config import Settings

    return Settings(eval=SMALL)


@pytest.fixture(scope="module")
def first_eval(eval_home):
    """v0000 evaluated once on the 8 probes (plain function, no Prefect): (report, progress lines)."""
    from flows.evaluation import run_evaluation

    home, probes = eval_home
    said: list[str] = []
    return run_evaluation(home, probes, settings=_settings(), say=said.append), said


@pytest.mark.model
def test_real_model_evaluation_is_stored_plotted_and_scored(eval_home, first_eval):
    home, probes = eval_home
    report, said = first_eval
    (ev,) = report["evaluations"]
    assert ev["model_version"] == "v0000" and "v0000: 8/8 probes answered" in said
    by_id = {r["probe_id"]: r for r in ev["answers"]}
    assert list(by_id) == list(SUBSET)
    assert (by_id["con-01"]["verdict"], by_id["con-01"]["matched"]) == ("correct", "Paris")
    m = ev["metrics"]
    assert m["recall"] == 0.0  # the base model has never heard of Mira
    assert m["guard_pass_rate"] == 1.0 and m["control_accuracy"] >= 2 / 3
    # What was stored is exactly what was returned.
    stored = read_table(home, "eval_answers", [report["run_id"]]).to_pylist()
    assert [{k: r[k] for k in ev["answers"][0]} for r in stored] == ev["answers"]
    assert {(r["eval_id"], r["model_version"]) for r in stored} == {(ev["eval_id"], "v0000")}
    (run,) = read_table(home, "eval_runs", [report["run_id"]]).to_pylist()
    assert {k: run[k] for k in ("recall", "generalization", "precision", "guard_pass_rate", "control_accuracy",
                                "abstain_rate", "probes")} == {k: m[k] for k in (
        "recall", "generalization", "precision", "guard_pass_rate", "control_accuracy", "abstain_rate", "probes")}
    assert json.loads(run["counts_json"]) == m["counts"]
    assert run["probes_sha256"] == report["probes_sha256"] == sha256_file(probes)
    assert run["manifest_sha256"] == registry.manifest_sha256(registry.get(home, "v0000"))
    assert json.loads(run["config_json"])["max_tokens"] == 16
    png = Path(report["png"])
    assert png == home.runs / report["run_id"] / "eval.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    assert latest_runs(home, kind="eval")[0]["status"] == "completed"


@pytest.mark.model
@pytest.mark.prefect
def test_flow_publishes_metrics_and_answers_as_artifacts(eval_home, first_eval, prefect_harness, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from flows.evaluation import eval_models

    home, probes = eval_home
    # v0001 holds the same weights as v0000: greedy decoding must give it the same answers.
    v1 = registry.register(home, registry.get(home, "v0000").path, run_id="r-test", parent="v0000",
                           adapter_id=None, base="test", link=True)
    monkeypatch.setenv("SLOWWAVE_EVAL__MAX_TOKENS", "16")
    state = eval_models(home_dir=str(home.root), probes=str(probes), versions=[v1.name], return_state=True)
    report = state.result()
    assert report["earlier_versions"] == ["v0000"]  # drawn beside v0001 in the chart
    ours = report["evaluations"][0]
    assert [r["answer"] for r in ours["answers"]] == [r["answer"] for r in first_eval[0]["evaluations"][0]["answers"]]

    async def artifacts():
        async with get_client() as client:
            flt = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
            return await client.read_artifacts(artifact_filter=flt)

    found = {a.key: a for a in asyncio.run(artifacts())}
    assert set(found) == {"eval-metrics", "eval-answers"}
    table = found["eval-metrics"].data
    table = json.loads(table) if isinstance(table, str) else table
    assert table == [{"version": "v0001", "probes": 8, "recall": ours["metrics"]["recall"],
                      "generalization": ours["metrics"]["generalization"],
                      "precision": ours["metrics"]["precision"],
                      "guard pass rate": 1.0, "control accuracy": ours["metrics"]["control_accuracy"],
                      "abstain rate": ours["metrics"]["abstain_rate"], "seconds": ours["seconds"]}]
    md = found["eval-answers"].data
    assert "| guard pass rate | 1.000 (2/2) |" in md
    paris = next(r for r in ours["answers"] if r["probe_id"] == "con-01")
    assert f"| con-01 | control | correct | Paris | {' '.join(paris['answer'].split())} |" in md


# --- the command line, as a person runs it ---------------------------------------------------------------------

def _cli(*args: str, home: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", "--home", str(home), "eval", *args],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def test_cli_unknown_model_version_is_one_line_and_exit_1(tmp_path):
    out = _cli("--probes", str(EVAL_CASE), "--model", "v0099", home=tmp_path / "h")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        f"slowwave: error: no model version 'v0099' in {tmp_path / 'h' / 'models'}; known: none"]


def test_cli_bad_probe_file_names_file_line_and_reason(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(EVAL_CASE.read_text().splitlines()[0] + "\n{oops\n")
    out = _cli("--probes", str(bad), home=tmp_path / "h")
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith(f"slowwave: error: {bad}:2: not valid JSON")


@pytest.mark.model
def test_cli_prints_metrics_and_writes_json(eval_home, tmp_path):
    home, probes = eval_home
    out_json = tmp_path / "out" / "eval.json"
    out = _cli("--probes", str(probes), "--model", "v0000", "--json", str(out_json), "--verbose", home=home.root,
               env={"SLOWWAVE_EVAL__MAX_TOKENS": "8", "OPENBLAS_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    assert "v0000: 8/8 probes answered" in out.stderr
    report = json.loads(out_json.read_text())
    (ev,) = report["evaluations"]
    assert ev["config"]["max_tokens"] == 8
    lines = out.stdout.splitlines()
    assert any(line.split()[:2] == ["metric", "v0000"] for line in lines)
    assert "guard pass rate   1.000 (2/2)" in out.stdout
    assert f"chart: {report['png']}" in lines and Path(report["png"]).is_file()
    stored = read_table(home, "eval_answers", [report["run_id"]]).to_pylist()
    assert [r["answer"] for r in stored] == [a["answer"] for a in ev["answers"]]
    assert any(line.split()[:3] == ["con-01", "control", ev["answers"][3]["verdict"]] for line in lines)
