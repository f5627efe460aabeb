"""The sleep cycle: one Prefect flow run, one task per stage, an expectation suite inside each.

Read top to bottom, this is the pipeline: ingest -> (plan) -> load the model -> score -> extract ->
firewall -> mix -> train -> gate -> fuse -> eval. Each task reads through storage, calls its pure
stage, validates and writes; `SleepRun.stage` resumes a stage an earlier attempt finished.
"""

from __future__ import annotations

import signal
from collections import Counter
from datetime import datetime

import pyarrow.compute as pc
from prefect import flow, get_run_logger
from prefect.exceptions import TerminationSignal
from prefect.runtime import flow_run
from prefect.states import Cancelled

from flows.adapters import train_task
from flows.artifacts import publish_images, publish_pairs, publish_rejections, publish_summary
from flows.candidate_pairs import extract_task, extraction_generator
from flows.config import load_settings
from flows.tenancy import heavy_slot
from flows.evaluation import eval_after_sleep, sleep_probes
from flows.gate_results import gate_decision, gate_task
from flows.ingest import ingest_task, new_exchanges
from flows.model_versions import fuse_task, model_task
from flows.pairs import firewall_task
from flows.progress import STAGES, report
from flows.report import SleepSummary
from flows.resume import SleepRun, start_or_resume
from flows.scored_exchanges import score_task
from flows.training_examples import mix_task
from storage import registry
from storage.forget import drop_forgotten, forgotten
from storage.home import Home
from storage.ids import new_run_id
from storage.lock import command_line, home_lock
from storage.runs import DRY_RUN_PREFIX, is_dry_run, latest_runs, record_run, utcnow
from storage.warehouse import read_table
from tasks.depth import decide_depth
from tasks.gating import GateDecision
from tasks.model import threads


def _count(table, column: str) -> int:
    return int(pc.sum(table[column]).as_py() or 0)


def _firewall_numbers(result) -> dict:
    pairs, rejections = result
    return {"accepted": pairs.num_rows, "rejected": rejections.num_rows,
            **{f"rejected:{k}": v for k, v in Counter(rejections["reason"].to_pylist()).items()}}


def _mix_numbers(result) -> dict:
    examples, buffer = result
    return {**Counter(examples["source"].to_pylist()), "total": examples.num_rows,
            "buffer_active": int(pc.sum(pc.equal(buffer["status"], "active")).as_py() or 0)}


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _gate_numbers(d: GateDecision) -> dict:
    return {"decision": "approved" if d.approved else "rejected", "benchmark_ratio": round(d.benchmark_ratio, 3),
            "ppl_drift": f"{d.ppl_drift:+.1%}", "recall": f"{_rate(d.recall_pre)} -> {_rate(d.recall_post)}",
            "regressions": len(d.benchmark_lost),
            **({"regressions_by_category": ", ".join(f"{c} {n}" for c, n in d.regressions_by_category.items() if n)}
               if d.benchmark_lost else {}),
            **({"reasons": "; ".join(d.reasons)} if d.reasons else {}),
            **({"warnings": "; ".join(d.warnings)} if d.warnings else {})}


def attempt_started(run: SleepRun) -> None:
    """Record that an attempt of a planned run started: one that is SIGKILLed (and writes nothing more) still
    counts toward `sleep.max_attempts`. A run killed before its plan has nothing to resume and is not counted."""
    record_run(run.home, run.run_id, "sleep", utcnow(), "running", depth=run.depth,
               flow_run_id=str(flow_run.id) if flow_run.id else None)


def _plan(run: SleepRun, home: Home, settings, requested: str):
    """The exchanges tonight works on and the depth it sleeps at (a resumed run keeps its own plan)."""
    if run.resumed:
        return run.planned_exchanges()
    exchanges = new_exchanges(home)
    past = [r["depth"] for r in reversed(latest_runs(home, kind="sleep")) if r["status"] == "completed"]
    depth, why = decide_depth(requested, exchanges.num_rows, past, settings.sleep)
    run.depth, run.reason = depth, why
    if depth is not None:
        run.plan(depth, why, exchanges, settings)
        attempt_started(run)
    return exchanges


def _flow_run_name() -> str:
    params = flow_run.parameters
    return f"sleep-{params.get('depth', 'auto')}-{datetime.now():%Y-%m-%d}"


@flow(name="sleep-cycle", flow_run_name=_flow_run_name, log_prints=True)
def sleep_cycle(home_dir: str, depth: str = "auto", dry_run: bool = False,
                heavy_limit: str | None = None) -> SleepSummary:
    """Run one sleep cycle over the home's new conversations; return its summary. A dry run stops after
    mixing: tonight's pairs, rejections and mix are written under a dry-run id that later sleeps ignore.
    heavy_limit names a Prefect global concurrency limit whose slot training, the gate and fusion hold (the
    nightly fan-out over tenants passes it, so a machine runs one tenant's heavy stages at a time)."""
    home = Home.resolve(home_dir).ensure()
    with home_lock(home.root, command_line()):
        try:
            return _sleep(home, depth, dry_run, heavy_limit)
        except (TerminationSignal, KeyboardInterrupt) as exc:
            # SIGTERM (a supervisor, `kill`, Prefect cancelling the run) or SIGINT: the run is recorded as
            # cancelled and this flow run ends Cancelled; the next sleep resumes it like any unfinished run.
            return Cancelled(message=f"stopped by {stop_reason(exc)}; the next sleep resumes it")


def sleep_or_cancelled(home: Home, depth: str, dry_run: bool = False) -> tuple[SleepSummary | None, str | None]:
    """Run the sleep flow; (summary, None), or (None, why) when a signal cancelled it."""
    from prefect.exceptions import CancelledRun

    try:
        return sleep_cycle(home_dir=str(home.root), depth=depth, dry_run=dry_run), None
    except CancelledRun as exc:
        return None, str(exc) or "cancelled"


def stop_reason(exc: BaseException) -> str:
    """The signal that stopped a run, by name."""
    number = getattr(exc, "signal", None)  # Prefect's TerminationSignal, or the CLI's SIGTERM exception
    return signal.Signals(number).name if isinstance(number, int) else "SIGINT"


def _sleep(home: Home, depth: str, dry_run: bool = False, heavy_limit: str | None = None) -> SleepSummary:
    settings = load_settings(home.config_file)
    threads.configure(settings.model.threads)
    log = get_run_logger()
    if dry_run:  # a preview never continues a real run, and is never continued
        run = SleepRun(home, DRY_RUN_PREFIX + new_run_id(), requested=depth)
    else:
        run = start_or_resume(home, settings, new_run_id(), depth, log.info)
    started = utcnow()
    if run.resumed:
        attempt_started(run)
    held: dict[int, object] = {}  # signal handlers set aside while a cancelled run is recorded
    try:
        recipe(run, home, settings, heavy_limit)
        return run.summary()
    except (TerminationSignal, KeyboardInterrupt) as exc:
        for sig in (signal.SIGTERM, signal.SIGINT):  # a second signal must not cut the record below short
            held[sig] = signal.signal(sig, signal.SIG_IGN)
        run.status = "cancelled"
        report(run.current, "failed", f"cancelled by {stop_reason(exc)}")
        raise
    except BaseException as exc:
        run.status = "failed"
        report(run.current, "failed", f"{type(exc).__name__}: {exc}"[:200])
        raise
    finally:
        summary = run.summary()
        record_run(home, run.run_id, "sleep", started, summary.status, depth=summary.depth,
                   flow_run_id=str(flow_run.id) if flow_run.id else None, summary=summary.model_dump(mode="json"))
        publish_summary(summary)
        publish_images(home.runs / run.run_id)
        for sig, handler in held.items():
            signal.signal(sig, handler)


def recipe(run: SleepRun, home: Home, settings, heavy_limit: str | None = None) -> None:
    """The night, stage by stage; `run` records each stage's numbers and the outcome."""
    run_id, s = run.run_id, settings
    if s.eval.probes:
        sleep_probes(home, s)  # a bad probe file stops the night before anything is ingested
    run.stage("ingest", lambda: ingest_task(home, s.ingest, run_id),
              numbers=lambda r: r.as_dict() if r else {"files": 0})
    exchanges = _plan(run, home, s, run.requested)
    get_run_logger().info(f"depth: {run.depth or 'none'} ({run.reason})")
    if run.depth is None:
        run.status = "nothing-to-do"
        return run.skip(STAGES[1:], "nothing new to learn")

    version = run.stage("model", lambda: model_task(home, s.model, run_id),
                        restore=lambda m: registry.get(home, m["version"]), keep=lambda v: {"version": v.name},
                        numbers=lambda v: {"loaded": v.name})
    run.models["before"] = run.models["after"] = version.name
    scored = run.stage("score", lambda: score_task(home, s.scoring, run_id, exchanges, s.extraction),
                       restore=lambda _: run.read("scored_exchanges"),
                       numbers=lambda t: {"exchanges": t.num_rows, "retained": _count(t, "retained")})
    generate = (lambda: extraction_generator(s.extraction.model or version.path, s.extraction)) \
        if s.extraction.writes_with_model else lambda: None
    candidates = run.stage("extract", lambda: extract_task(home, s.extraction, run_id, exchanges, scored, generate()),
                           restore=lambda _: run.read("candidate_pairs"),
                           numbers=lambda t: {"candidates": t.num_rows, **Counter(t["method"].to_pylist())})
    all_exchanges, all_scored = read_table(home, "exchanges"), read_table(home, "scored_exchanges")
    pairs, rejections = run.stage(
        "firewall", lambda: firewall_task(home, s.firewall, run_id, candidates, all_exchanges, all_scored),
        restore=lambda _: (run.read("pairs", dreams=False), run.read("rejections", dreams=False)),
        numbers=_firewall_numbers)
    publish_pairs(pairs, all_exchanges, s.firewall)
    # Dreams start only from words nobody asked to forget (the firewall rejected their pairs by name).
    remembered = drop_forgotten(all_exchanges, "exchange_id", forgotten(home).exchanges)
    publish_rejections(rejections, s.firewall)
    examples, _ = run.stage(
        "mix", lambda: mix_task(home, run_id, run.depth, pairs, remembered, all_scored, version.path,
                                mixing=s.mixing, replay=s.replay, dreaming=s.dreams, firewall=s.firewall),
        restore=lambda _: (run.read("training_examples"), run.read("replay_buffer")), numbers=_mix_numbers)
    if is_dry_run(run_id):
        run.status, run.reason = "dry-run", f"{run.reason}; dry run: nothing trained or promoted"
        return run.skip(("train", "gate", "fuse", "eval"), "dry run")
    if not run.stages["mix"].get("new") and not run.stages["mix"].get("dream"):
        run.status, run.reason = "completed", f"{run.reason}; no new facts to learn, no training"
        return run.skip(("train", "gate", "fuse", "eval"), "no new facts")

    with heavy_slot(heavy_limit):  # a tenant's night holds a machine's slot for these three stages only
        adapter_id, adapter_dir, trained = run.stage(
            "train", lambda: train_task(home, s.train, run_id, run.depth, examples, version, s.mixing.rehearsal_seed),
            numbers=lambda r: {"adapter": r[0], "steps": r[2].iterations,
                               "loss": f"{r[2].first_epoch_loss:.3f} -> {r[2].final_loss:.3f}",
                               "tokens/s": r[2].tokens_per_second})
        decision = run.stage(
            "gate", lambda: gate_task(home, s.gate, s.mixing.paraphrases, run_id, version, adapter_id, adapter_dir, pairs),
            restore=lambda _: gate_decision(home, run_id, adapter_id), numbers=_gate_numbers)
        if decision.approved:
            fused = run.stage("fuse", lambda: fuse_task(home, s.gate, run_id, version, adapter_id, adapter_dir, decision),
                              numbers=lambda v: {"promoted": f"{version.name} -> {v.name} (current)"})
            run.models["after"] = fused.name
        else:
            run.skip(("fuse",), f"gate rejected the adapter; current stays {version.name}")
    if s.eval.probes:
        run.stage("eval", lambda: eval_after_sleep(home, s, run_id, version.name, run.models["after"]),
                  numbers=lambda numbers: numbers)
    else:
        run.skip(("eval",), "no probe file configured (eval.probes)")
    run.status = "completed"
