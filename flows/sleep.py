"""The sleep cycle: one Prefect flow run, one task per stage, an expectation suite after each.

Read top to bottom, this is the pipeline: ingest -> score -> extract -> firewall -> mix ->
(train -> gate -> fuse). Each task reads through storage, calls its pure stage, validates, writes.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import pyarrow.compute as pc
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.adapters import train_task
from flows.artifacts import (
    publish_images,
    publish_pairs,
    publish_rejections,
    publish_summary,
)
from flows.candidate_pairs import extract_task
from flows.config import Settings
from flows.evaluation import eval_after_sleep, sleep_probes
from flows.gate_results import gate_decision, gate_task
from flows.ingest import IngestReport, ingest_paths, new_exchanges
from flows.model_versions import fuse_task
from flows.pairs import firewall_task
from flows.progress import STAGES, report
from flows.report import stage_text
from flows.scored_exchanges import score_task
from flows.training_examples import mix_task
from storage.home import Home
from storage.ids import new_run_id
from storage.runs import latest_runs, record_run, utcnow
from storage.warehouse import read_table


def inbox_paths(home: Home, settings: Settings) -> list[Path]:
    """The folders the nightly run ingests from (those that exist)."""
    paths = [home.root / "inbox", *(Path(p).expanduser() for p in settings.ingest.inbox)]
    return [p for p in paths if p.exists()]


@task(name="ingest", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def ingest_task(home: Home, settings: Settings, run_id: str) -> IngestReport | None:
    """Stage 0: ingest new session files from the inbox (retried: it is disk I/O)."""
    paths = inbox_paths(home, settings)
    if not paths or not any(any(p.rglob(settings.ingest.pattern)) for p in paths):
        get_run_logger().info("inbox is empty: nothing to ingest")
        return None
    report = ingest_paths(home, paths, settings.ingest, run_id=run_id)
    get_run_logger().info(report.line())
    return report


@task(name="load-model", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def model_task(home: Home, settings: Settings, run_id: str):
    """The current model version (pulled and registered the first time; retried: download and disk)."""
    from tasks.model.pull import ensure_model

    return ensure_model(home, settings.model, run_id, say=get_run_logger().info)


def _extraction_generator(model_dir: Path, settings: Settings):
    from tasks.model.answering import generate_chats
    from tasks.model.loading import load_model

    model, tok = load_model(model_dir)
    cfg = settings.extraction

    def generate(chats: list[list[dict]]) -> list[str]:
        return generate_chats(model, tok, chats, max_tokens=cfg.model_max_tokens, batch_size=8)

    return generate


def _finish(stages: dict, stage: str, numbers: dict, resumed: bool = False) -> None:
    """Record a stage's numbers in the summary and tell the progress view."""
    stages[stage] = numbers
    report(stage, "resumed" if resumed else "done", stage_text(numbers))


def _rate(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _flow_run_name() -> str:
    params = flow_run.parameters
    return f"sleep-{params.get('depth', 'auto')}-{datetime.now():%Y-%m-%d}"


@flow(name="sleep-cycle", flow_run_name=_flow_run_name, log_prints=True)
def sleep_cycle(home_dir: str, depth: str = "auto") -> dict:
    """Run one sleep cycle over the home's new conversations; return its summary."""
    from flows.config import load_settings
    from flows.resume import start_or_resume
    from tasks.depth import decide_depth

    home = Home.resolve(home_dir).ensure()
    settings = load_settings(home.config_file)
    log = get_run_logger()
    run = start_or_resume(home, settings, new_run_id(), log.info)
    run_id = run.run_id
    started = utcnow()
    stages: dict[str, dict] = {}
    summary = {"run_id": run_id, "requested": depth, "depth": None, "status": "running", "stages": stages,
               **({"resumed": run.finished_stages()} if run.resumed else {})}
    current = "ingest"
    try:
        if settings.eval.probes:
            sleep_probes(home, settings)
        report("ingest", "running")
        ingested = ingest_task(home, settings, run_id)
        _finish(stages, "ingest", ingested.as_dict() if ingested else {"files": 0})
        if run.resumed:
            exchanges = run.planned_exchanges()
            chosen, why = run.depth, f"resumed: {run.reason}"
        else:
            exchanges = new_exchanges(home)
            past = [r["depth"] for r in reversed(latest_runs(home, kind="sleep")) if r["status"] == "completed"]
            chosen, why = decide_depth(depth, exchanges.num_rows, past, settings.sleep)
            if chosen is not None:
                run.write_plan(chosen, why, exchanges, settings)
        summary.update(depth=chosen, reason=why)
        log.info(f"depth: {chosen or 'none'} ({why})")
        if chosen is None:
            summary["status"] = "nothing-to-do"
            for stage in STAGES[1:]:
                report(stage, "skipped", "nothing new to learn")
            return summary
        current = "model"
        report("model", "running")
        if run.done("model"):  # the version this run started from, even if it already promoted its own
            from storage import registry

            version = registry.get(home, run.facts("model")["version"])
        else:
            version = model_task(home, settings, run_id)
            run.mark("model", version=version.name)
        summary["model_before"] = version.name
        report("model", "done", version.name)
        current = "score"
        report("score", "running")
        if resumed := run.done("score"):
            scored = run.read("scored_exchanges")
        else:
            scored = score_task(home, settings, run_id, exchanges)
            run.mark("score")
        _finish(stages, "score", {"exchanges": scored.num_rows,
                                  "retained": int(pc.sum(scored["retained"]).as_py() or 0)}, resumed)
        current = "extract"
        report("extract", "running")
        if resumed := run.done("extract"):
            candidates = run.read("candidate_pairs")
        else:
            generate = _extraction_generator(version.path, settings) if settings.extraction.use_model else None
            candidates = extract_task(home, settings, run_id, exchanges, scored, generate=generate)
            run.mark("extract")
        _finish(stages, "extract", {"candidates": candidates.num_rows, **Counter(candidates["method"].to_pylist())},
                resumed)
        all_exchanges, all_scored = read_table(home, "exchanges"), read_table(home, "scored_exchanges")
        current = "firewall"
        report("firewall", "running")
        if resumed := run.done("firewall"):
            pairs, rejections = run.read("pairs", dreams=False), run.read("rejections", dreams=False)
        else:
            pairs, rejections = firewall_task(home, settings, run_id, candidates, all_exchanges, all_scored)
            run.mark("firewall")
        _finish(stages, "firewall", {"accepted": pairs.num_rows, "rejected": rejections.num_rows,
                                     **{f"rejected:{k}": v for k, v in Counter(rejections["reason"].to_pylist()).items()}},
                resumed)
        publish_pairs(pairs, all_exchanges)
        publish_rejections(rejections, settings.firewall)
        current = "mix"
        report("mix", "running")
        if resumed := run.done("mix"):
            examples, buffer = run.read("training_examples"), run.read("replay_buffer")
        else:
            examples, buffer = mix_task(home, settings, run_id, chosen, pairs, all_exchanges, all_scored,
                                        version.path, settings.mixing.seed)
            run.mark("mix")
        _finish(stages, "mix", {**Counter(examples["source"].to_pylist()), "total": examples.num_rows,
                                "buffer_active": int(pc.sum(pc.equal(buffer["status"], "active")).as_py() or 0)},
                resumed)
        if not stages["mix"].get("new") and not stages["mix"].get("dream"):
            summary.update(status="completed", reason=f"{why}; no new facts to learn, no training")
            summary["model_after"] = version.name
            for stage in ("train", "gate", "fuse", "eval"):
                report(stage, "skipped", "no new facts")
            return summary
        current = "train"
        report("train", "running")
        adapter_id, adapter_dir, trained = train_task(home, settings, run_id, chosen, examples, version)
        _finish(stages, "train", {"adapter": adapter_id, "steps": trained["iterations"],
                                  "loss": f"{trained['first_epoch_loss']:.3f} -> {trained['final_loss']:.3f}",
                                  "tokens/s": trained["tokens_per_second"]})
        current = "gate"
        report("gate", "running")
        if resumed := run.done("gate"):
            decision = gate_decision(home, run_id, adapter_id)
        else:
            decision = gate_task(home, settings, run_id, version, adapter_id, adapter_dir, pairs)
            run.mark("gate")
        _finish(stages, "gate", {
            "decision": "approved" if decision["approved"] else "rejected",
            "benchmark_ratio": round(decision["benchmark_ratio"], 3),
            "ppl_drift": f"{decision['ppl_drift']:+.1%}",
            "recall": f"{_rate(decision['recall_pre'])} -> {_rate(decision['recall_post'])}",
            **({"reasons": "; ".join(decision["reasons"])} if decision["reasons"] else {}),
            **({"warnings": "; ".join(decision["warnings"])} if decision["warnings"] else {})}, resumed)
        summary["model_after"] = version.name
        current = "fuse"
        if decision["approved"]:
            report("fuse", "running")
            summary["model_after"] = fuse_task(home, settings, run_id, version, adapter_id, adapter_dir,
                                               decision).name
            report("fuse", "done", f"{version.name} -> {summary['model_after']} (current)")
        else:
            report("fuse", "skipped", f"gate rejected the adapter; current stays {version.name}")
        current = "eval"
        if settings.eval.probes:
            report("eval", "running")
            stages["eval"] = eval_after_sleep(home, settings, run_id, version.name, summary["model_after"])
            report("eval", "done", stage_text(stages["eval"]))
        else:
            report("eval", "skipped", "no probe file configured (eval.probes)")
        summary["status"] = "completed"
        return summary
    except BaseException as exc:
        summary["status"] = "failed"
        report(current, "failed", f"{type(exc).__name__}: {exc}"[:200])
        raise
    finally:
        record_run(home, run_id, "sleep", started, summary["status"], depth=summary["depth"],
                   flow_run_id=str(flow_run.id) if flow_run.id else None, summary=summary)
        publish_summary(summary)
        publish_images(home.runs / run_id)

