"""Evaluating model versions on a probe set: answer, score, store, plot, and show it in Prefect when in a run.

`run_evaluation` is the whole recipe as a plain function (the CLI calls it without starting Prefect);
`eval_models` is the same as a Prefect flow, and `eval_task` lets another flow (the sleep cycle)
evaluate as one of its tasks. Inside a flow or task run the metrics and every answer also become
Prefect artifacts (a table and a markdown report).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.artifacts import in_run
from storage import registry
from storage.home import Home
from storage.ids import content_id, sha256_file
from storage.runs import record_run, utcnow
from storage.warehouse import read_table, write_table
from storage.charts import plot_eval
from tasks.evaluation import METRICS, EvalConfig, evaluate, metric_cells
from tasks.model import threads
from tasks.probes import Probe, load_probes

Say = Callable[[str], None]
ARTIFACT_ANSWER_CHARS = 300  # an answer longer than this is cut in the markdown artifact (the table keeps all)


def resolve_versions(home: Home, names: list[str] | None, settings, run_id: str, say: Say) -> list[registry.Version]:
    """The named versions ('current' allowed; all checked before any model loads), or the current one
    (pulled on first use)."""
    if not names:
        from tasks.model.pull import ensure_model

        return [ensure_model(home, settings.model, run_id, say=say)]
    current = registry.current_name(home)
    names = [current if name == "current" and current else name for name in names]
    return [registry.get(home, name) for name in dict.fromkeys(names)]


def evaluate_version(home: Home, version: registry.Version, probes: list[Probe], probes_file: Path,
                     probes_sha256: str, cfg: EvalConfig, run_id: str, say: Say) -> dict:
    """Load one version (sha256-verified against its manifest), evaluate it, write `eval_runs` and `eval_answers`."""
    from tasks.model.loading import load_model

    say(f"{version.name}: verifying and loading {version.path}")
    model, tokenizer = load_model(version.path)  # checks every file against the manifest before loading

    def progress(done: int, total: int) -> None:
        say(f"{version.name}: {done}/{total} probes answered")

    result = evaluate(model, tokenizer, probes, cfg, on_progress=progress)
    eval_id = content_id("ev", run_id, version.name, probes_sha256)
    summary = result.summary
    config = cfg.model_dump()
    run_row = {"eval_id": eval_id, "model_version": version.name,
               "manifest_sha256": registry.manifest_sha256(version), "probes_file": str(probes_file),
               "probes_sha256": probes_sha256, "probes": summary["probes"],
               **{key: summary[key] for _, key in METRICS}, "abstain_rate": summary["abstain_rate"],
               "counts_json": json.dumps(summary["counts"], sort_keys=True), "config_json": json.dumps(config),
               "seconds": round(result.seconds, 3), "created_at": utcnow()}
    answers = [{"eval_id": eval_id, "model_version": version.name, **row} for row in result.rows]
    write_table(home, "eval_answers", run_id, pa.Table.from_pylist(answers))
    write_table(home, "eval_runs", run_id, pa.Table.from_pylist([run_row]))
    say(f"{version.name}: {summary['probes']} probes in {result.seconds:.1f} s")
    return {"eval_id": eval_id, "model_version": version.name, "manifest_sha256": run_row["manifest_sha256"],
            "seconds": run_row["seconds"], "config": config, "metrics": summary, "answers": result.rows}


def earlier_summaries(home: Home, probes_sha256: str, skip: set[str]) -> dict[str, dict]:
    """The latest stored metrics of every other version on the same probe file, by version name."""
    rows = read_table(home, "eval_runs").to_pylist()
    latest: dict[str, dict] = {}
    for r in sorted(rows, key=lambda r: r["created_at"]):
        if r["probes_sha256"] == probes_sha256 and r["model_version"] not in skip:
            latest[r["model_version"]] = r
    return dict(sorted(latest.items()))


def run_evaluation(home: Home, probes_path: Path, versions: list[str] | None = None, *, settings=None,
                   run_id: str | None = None, say: Say = print) -> dict:
    """Evaluate each version (default: current) on the probe file; store, plot, and return the report as a dict."""
    from flows.config import load_settings
    from storage.ids import new_run_id

    settings = settings or load_settings(home.config_file)
    threads.configure(settings.model.threads)
    probes_path = Path(probes_path)
    probes = load_probes(probes_path)  # a bad file stops here, naming file, line and reason
    probes_sha256 = sha256_file(probes_path)
    run_id = run_id or new_run_id()
    started, status, report = utcnow(), "failed", None
    try:
        targets = resolve_versions(home, versions, settings, run_id, say)
        evaluations = [evaluate_version(home, v, probes, probes_path, probes_sha256, settings.eval, run_id, say)
                       for v in targets]
        ours = {e["model_version"]: e["metrics"] for e in evaluations}
        earlier = earlier_summaries(home, probes_sha256, skip=set(ours))
        png = plot_eval({**earlier, **ours}, home.runs / run_id / "eval.png", metrics=METRICS,
                        title=f"{probes_path.name}: {', '.join(ours)}"
                              + (f" (earlier runs: {', '.join(earlier)})" if earlier else ""))
        report = {"run_id": run_id, "probes_file": str(probes_path), "probes_sha256": probes_sha256,
                  "png": str(png), "earlier_versions": list(earlier), "evaluations": evaluations}
        if in_run():
            publish_artifacts(report)
        status = "completed"
        return report
    finally:
        summary = {"versions": [e["model_version"] for e in report["evaluations"]]} if report else None
        record_run(home, run_id, "eval", started, status, input_files=[str(probes_path)],
                   input_sha256=[probes_sha256], summary=summary)


def _md(text: object) -> str:
    """A markdown table cell: pipes escaped, on one line."""
    return " ".join(str(text).split()).replace("|", "\\|")


def metrics_table(report: dict) -> list[dict]:
    """One row per evaluated version: its metrics as numbers (None = no probes of that kind)."""
    return [{"version": e["model_version"], "probes": e["metrics"]["probes"],
             **{label: e["metrics"][key] for label, key in METRICS}, "abstain rate": e["metrics"]["abstain_rate"],
             "seconds": e["seconds"]} for e in report["evaluations"]]


def answers_markdown(report: dict) -> str:
    """The report as markdown: the metrics with their counts, then every probe's answer and verdict."""
    lines = [f"# Evaluation on `{Path(report['probes_file']).name}`", "",
             f"run `{report['run_id']}`, probes sha256 `{report['probes_sha256'][:12]}…`, chart `{report['png']}`", ""]
    versions = [e["model_version"] for e in report["evaluations"]]
    cells = [metric_cells(e["metrics"]) for e in report["evaluations"]]
    lines += ["| metric | " + " | ".join(versions) + " |", "|---|" + "---|" * len(versions)]
    for label, key in (*METRICS, ("abstentions", "abstentions")):
        lines.append(f"| {label} | " + " | ".join(c[key] for c in cells) + " |")
    for e in report["evaluations"]:
        lines += ["", f"## {e['model_version']}: answers", "", "| probe | kind | verdict | keyword | answer |",
                  "|---|---|---|---|---|"]
        for r in e["answers"]:
            keyword = f"forbidden: {r['forbidden_hit']}" if r["forbidden_hit"] else (r["matched"] or "")
            answer = r["answer"] if len(r["answer"]) <= ARTIFACT_ANSWER_CHARS else r["answer"][:ARTIFACT_ANSWER_CHARS] + "…"
            lines.append(f"| {_md(r['probe_id'])} | {r['kind']} | {r['verdict']} | {_md(keyword)} | {_md(answer)} |")
    return "\n".join(lines) + "\n"


def publish_artifacts(report: dict) -> None:
    """The metrics as a Prefect table artifact and the full report (every answer) as a markdown artifact."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    name = Path(report["probes_file"]).name
    create_table_artifact(metrics_table(report), key="eval-metrics", description=f"Evaluation metrics on {name}")
    create_markdown_artifact(answers_markdown(report), key="eval-answers",
                             description=f"Evaluation on {name}: metrics and every probe's answer")


def report_lines(report: dict, verbose: bool = False) -> list[str]:
    """The report as terminal lines: a metrics table (one column per version), then answers when verbose."""
    versions = [e["model_version"] for e in report["evaluations"]]
    cells = [metric_cells(e["metrics"]) for e in report["evaluations"]]
    width = max([22, *(len(c[k]) + 2 for c in cells for k in c)])
    out = [f"eval {report['run_id']} on {report['probes_file']} ({report['evaluations'][0]['metrics']['probes']} "
           f"probes, sha256 {report['probes_sha256'][:12]})",
           f"{'metric':18}" + "".join(f"{v:{width}}" for v in versions)]
    for label, key in (*METRICS, ("abstentions", "abstentions")):
        out.append(f"{label:18}" + "".join(f"{c[key]:{width}}" for c in cells))
    out.append(f"{'seconds':18}" + "".join(f"{e['seconds']:<{width}.1f}" for e in report["evaluations"]))
    if verbose:
        for e in report["evaluations"]:
            out += ["", f"{e['model_version']} answers:"]
            for r in e["answers"]:
                keyword = f" [forbidden: {r['forbidden_hit']}]" if r["forbidden_hit"] else (
                    f" [{r['matched']}]" if r["matched"] else "")
                out.append(f"  {r['probe_id']:10} {r['kind']:15} {r['verdict']:8}{keyword} {' '.join(r['answer'].split())}")
    out.append(f"chart: {report['png']}")
    return out


@task(name="eval", cache_policy=NO_CACHE)
def eval_task(home: Home, probes_path: Path, versions: list[str] | None = None, settings=None,
              run_id: str | None = None) -> dict:
    """Evaluate inside another flow (e.g. after a sleep): the same report, with artifacts on this task run."""
    return run_evaluation(home, probes_path, versions, settings=settings, run_id=run_id, say=get_run_logger().info)


@flow(name="eval-models", log_prints=True)
def eval_models(home_dir: str, probes: str, versions: list[str] | None = None) -> dict:
    """Evaluate model versions (default: current) on a probe file; artifacts show the metrics and answers."""
    home = Home.resolve(home_dir).ensure()
    return run_evaluation(home, Path(probes), versions, say=get_run_logger().info)


def sleep_probes(home: Home, settings) -> Path:
    """The probe file sleeps evaluate (settings.eval.probes; relative to the home folder), checked now: a bad
    file stops a sleep before it trains, naming the file, line and reason, not after it promoted a model."""
    path = Path(settings.eval.probes).expanduser()
    path = path if path.is_absolute() else home.root / path
    load_probes(path)
    return path


def eval_after_sleep(home: Home, settings, sleep_run_id: str, before: str, after: str) -> dict:
    """The configured probe file (settings.eval.probes) on a sleep's versions before and after; its chart is
    copied into the sleep's run folder as eval.png, and the stage's numbers ('recall 0.00 -> 0.88', ...) returned."""
    from storage.atomic import copy_file_atomic

    report = eval_task(home, sleep_probes(home, settings), list(dict.fromkeys([before, after])), settings=settings)
    copy_file_atomic(Path(report["png"]), home.runs / sleep_run_id / "eval.png")
    metrics = [e["metrics"] for e in report["evaluations"]]
    numbers: dict[str, object] = {"probes": metrics[0]["probes"], "eval_run": report["run_id"]}
    for label, key in METRICS:
        values = ["n/a" if m[key] is None else f"{m[key]:.2f}" for m in metrics]
        numbers[label] = " -> ".join(values)
    return numbers
