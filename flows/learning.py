"""Stages 5-7 as Prefect tasks: train an adapter, gate it against forgetting, fuse it into a new version."""

from __future__ import annotations

import json
import math
import os
import signal
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.checks import check
from flows.consolidation import root_version
from storage import registry
from storage.atomic import write_text_atomic
from storage.errors import IntegrityError
from storage.home import Home
from storage.ids import content_id, sha256_bytes
from storage.warehouse import read_table, write_table
from tasks.model.loading import load_model

CODE_VERSION = "slowwave 0.1.0"
# Test-only: called after every training step, to simulate a failure mid-training. For a real kill,
# SLOWWAVE_TEST_KILL_AT_STEP=N makes the process SIGKILL itself after step N (no cleanup runs).
FAULT_HOOK = None


def _fault_hook():
    if FAULT_HOOK is not None:
        return FAULT_HOOK
    at = os.environ.get("SLOWWAVE_TEST_KILL_AT_STEP")
    if not at:
        return None

    def kill(step: int) -> None:
        if step >= int(at):
            os.kill(os.getpid(), signal.SIGKILL)

    return kill


def training_set_sha256(examples: pa.Table) -> str:
    """Content hash of a training set: its example ids and texts, in order."""
    blob = json.dumps([examples["example_id"].to_pylist(), examples["text"].to_pylist()], ensure_ascii=False)
    return sha256_bytes(blob.encode())


def _progress(total: int, say):
    """An on_step callback: the Prefect progress artifact (it publishes every 5%) and a log line every ~10%."""
    from flows.artifacts import progress_artifact
    from flows.progress import report

    bar = progress_artifact(total)
    every = max(1, total // 10)

    def on_step(record: dict) -> None:
        bar.update(record["step"])
        report("train", "step", f"loss {record['loss']:.3f}", done=record["step"], total=total)
        if record["step"] % every == 0 or record["step"] == total:
            say(f"train step {record['step']}/{total}: loss {record['loss']:.3f}, "
                f"{record['tokens']} tokens in {record['seconds']:.2f} s")

    return on_step


def training_rows(examples: pa.Table) -> list[dict]:
    """What the trainer sees per example: a question and answer, or plain prose (rehearsal), and its origin
    (the source; train.distill picks the origins trained toward the teacher's distribution)."""
    rows = []
    for r in examples.select(["source", "question", "answer", "text"]).to_pylist():
        row = {"text": r["text"]} if r["source"] == "rehearsal" else {"question": r["question"], "answer": r["answer"]}
        rows.append({**row, "origin": r["source"]})
    return rows


def _record_steps(home: Home, run_id: str, aid: str, steps: pa.Table) -> None:
    """The run's train_steps rows for an adapter and its loss-curve PNG."""
    from tasks.training import plot_loss

    write_table(home, "train_steps", run_id,
                steps.append_column("adapter_id", pa.array([aid] * steps.num_rows, pa.string())))
    plot_loss(steps, home.runs / run_id / "loss.png")


@task(name="train", cache_policy=NO_CACHE)
def train_task(home: Home, settings, run_id: str, depth: str, examples: pa.Table,
               version: registry.Version) -> tuple[str, Path, dict]:
    """Stage 5: a LoRA adapter on tonight's examples; a rerun with the same inputs reuses the saved adapter."""
    from tasks.training import STEPS_FILE, adapter_id, find_adapter, save_adapter, train_adapter

    log = get_run_logger()
    cfg = settings.train.for_depth(depth)
    sha = training_set_sha256(examples)
    aid = adapter_id(cfg, parent_version=version.name, training_set_sha256=sha)
    folder = find_adapter(home.adapters, aid)
    if folder is not None:
        log.info(f"adapter {aid} already trained on these inputs: reusing it")
        result = json.loads((folder / registry.MANIFEST).read_text())["result"]
        have = read_table(home, "train_steps", run_ids=[run_id], columns=["adapter_id"])["adapter_id"].to_pylist()
        if aid not in have and (folder / STEPS_FILE).exists():  # an attempt stopped after saving the adapter
            _record_steps(home, run_id, aid, pq.read_table(folder / STEPS_FILE))
    else:
        model, tok = load_model(version.path, fresh=True)
        rows = training_rows(examples)
        total = (len(rows) // cfg.batch_size) * cfg.epochs
        teacher = None
        if cfg.distill != "off":  # toward the root's distribution, as anchors are its answers: no compounding
            root = root_version(home)
            teacher = load_model(root.path)[0] if root.name != version.name else None
        trained = train_adapter(model, tok, rows, cfg, teacher=teacher, on_step=_progress(total, log.info),
                                fault_hook=_fault_hook())
        aid, folder = save_adapter(home.adapters, model, cfg, trained, parent_version=version.name,
                                   training_set_id=run_id, training_set_sha256=sha, code_version=CODE_VERSION)
        _record_steps(home, run_id, aid, trained.steps)
        result = trained.summary()
    try:
        registry.verify_folder(folder)
        files_ok = True
    except IntegrityError:
        files_ok = False
    expected = (examples.num_rows // cfg.batch_size) * cfg.epochs
    frame = pa.table({"adapter_id": [aid], "files_match_manifest": [files_ok],
                      "losses_finite": [all(math.isfinite(result[k]) for k in ("first_epoch_loss", "final_loss"))],
                      "steps": [result["iterations"]], "expected_steps": [expected]})
    check(home, run_id, "adapter", frame, id_column="adapter_id")
    log.info(f"adapter {aid}: {result['iterations']} steps, loss {result['first_epoch_loss']:.3f} -> "
             f"{result['final_loss']:.3f}, {result['tokens_per_second']} tokens/s")
    return aid, folder, result


def held_out_facts(pairs: pa.Table, paraphrases: int) -> list[dict]:
    """This run's current facts asked with a wording not used in training (the next unused paraphrase)."""
    from tasks.mixing import paraphrase_questions

    facts = []
    for p in pairs.filter(pc.is_null(pairs["superseded_by"])).to_pylist():
        if p["method"] == "dream":
            continue
        wordings = paraphrase_questions(p["question"], p["fact_type"], p["subject"], paraphrases + 1)
        question = wordings[paraphrases] if len(wordings) > paraphrases else wordings[-1]
        facts.append({"id": p["pair_id"], "question": question, "expected": [p["value"]]})
    return facts


def _measurement(home: Home, version: registry.Version, settings, facts: list[dict], benchmark: list[dict],
                 text: str) -> dict:
    """The gate's measurement of a registered version, cached by model content and inputs."""
    from tasks.gating import inputs_sha256, measure, measure_new_facts
    from tasks.model.pull import cache_dir

    cfg = settings.gate
    key = inputs_sha256(benchmark, text, max_tokens=cfg.max_tokens, window=cfg.ppl_window)
    # Greedy answers and perplexity depend only on the weights and the inputs: cache by both contents.
    model_key = content_id("m", json.dumps(version.manifest["files"], sort_keys=True))
    cache = cache_dir() / "measurements" / f"{model_key}-{key[:16]}.json"
    model, tok = load_model(version.path)
    if cache.exists():
        pre = json.loads(cache.read_text())
    else:
        pre = measure(model, tok, benchmark=benchmark, general_text=text, max_tokens=cfg.max_tokens,
                      batch_size=cfg.batch_size, window=cfg.ppl_window)
        write_text_atomic(cache, json.dumps(pre))
    if facts:
        pre = {**pre, **measure_new_facts(model, tok, facts, max_tokens=cfg.max_tokens, batch_size=cfg.batch_size)}
    return pre


@task(name="gate", cache_policy=NO_CACHE)
def gate_task(home: Home, settings, run_id: str, version: registry.Version, adapter_id: str, adapter_dir: Path,
              pairs: pa.Table) -> dict:
    """Stage 6: benchmark ratio, perplexity drift and new-fact recall before vs after; approve or reject."""
    from tasks.gating import decide, load_gate_inputs, measure, plot_gate

    cfg = settings.gate
    facts = held_out_facts(pairs, settings.mixing.paraphrases)
    benchmark, text = load_gate_inputs(cfg)
    pre = _measurement(home, version, settings, facts, benchmark, text)
    model, tok = load_model(version.path, adapter_dir=adapter_dir, fresh=True)
    post = measure(model, tok, benchmark=benchmark, general_text=text, new_facts=facts, max_tokens=cfg.max_tokens,
                   batch_size=cfg.batch_size, window=cfg.ppl_window)
    decision = decide(pre, post, cfg)
    metrics = ("benchmark_pre", "benchmark_post", "benchmark_ratio", "ppl_pre", "ppl_post", "ppl_drift")
    row = {"adapter_id": adapter_id, "parent_version": version.name, "approved": decision["approved"],
           "reasons": decision["reasons"], "warnings": decision["warnings"],
           **{k: decision[k] for k in metrics},
           "recall_pre": decision["recall_pre"], "recall_post": decision["recall_post"],
           "precision_post": decision["precision_post"], "new_facts": len(facts),
           "details_json": json.dumps({"pre": pre, "post": post, "decision": decision}, default=str)}
    frame = pa.table({"adapter_id": [adapter_id], "approved": [decision["approved"]],
                      "metrics_finite": [all(math.isfinite(decision[k]) for k in metrics)],
                      **{k: [decision[k]] for k in ("benchmark_pre", "benchmark_post", "ppl_pre", "ppl_post")}})
    check(home, run_id, "gate", frame, id_column="adapter_id")
    write_table(home, "gate_results", run_id, pa.Table.from_pylist([row]))
    plot_gate(decision, home.runs / run_id / "gate.png", parent=version.name, candidate="with adapter")
    verdict = "approved" if decision["approved"] else "rejected: " + "; ".join(decision["reasons"])
    get_run_logger().info(f"gate {verdict}; benchmark {decision['benchmark_pre']:.2f} -> "
                          f"{decision['benchmark_post']:.2f}, ppl drift {decision['ppl_drift']:+.1%}, "
                          f"recall {decision['recall_pre']} -> {decision['recall_post']}")
    return decision


def gate_decision(home: Home, run_id: str, adapter_id: str) -> dict:
    """The gate's decision on an adapter, as a finished gate stage of this run stored it."""
    rows = read_table(home, "gate_results", run_ids=[run_id]).to_pylist()
    row = next((r for r in rows if r["adapter_id"] == adapter_id), None)
    if row is None:
        raise IntegrityError(f"run {run_id} marked its gate finished but gate_results has no row for adapter "
                             f"{adapter_id}; the warehouse under {home.warehouse} was changed by hand")
    return json.loads(row["details_json"])["decision"]


def promoted_by(home: Home, parent: str, adapter_id: str) -> registry.Version | None:
    """The version an earlier attempt fused from this parent and adapter, if it got as far as registering it."""
    for v in registry.versions(home):
        if v.manifest.get("parent") == parent and v.manifest.get("adapter_id") == adapter_id:
            return v
    return None


@task(name="fuse", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def fuse_task(home: Home, settings, run_id: str, version: registry.Version, adapter_id: str, adapter_dir: Path,
              decision: dict) -> registry.Version:
    """Stage 7: fuse the approved adapter into a new immutable version, smoke-test it, then switch `current`."""
    from tasks.fusion import fuse_adapter, smoke_test
    from tasks.gating import load_gate_inputs

    log = get_run_logger()
    new = promoted_by(home, version.name, adapter_id)
    if new is not None:  # an earlier attempt of this run fused and registered it, then stopped
        registry.verify_folder(new.path)
        registry.record_version(home, new, run_id)
        log.info(f"{new.name} was fused from {adapter_id} by an earlier attempt: checking and promoting it")
    else:
        # Fused into scratch space beside the versions, then registered (hard links, no copy): a crash
        # leaves only the scratch folder, never a half-written version, and `current` is untouched.
        with tempfile.TemporaryDirectory(prefix=f".fuse-{run_id}-", dir=home.models) as scratch:
            info = fuse_adapter(version.path, adapter_dir, Path(scratch) / "model")
            gate = {k: decision[k] for k in ("benchmark_ratio", "ppl_drift", "recall_post")}
            new = registry.register(home, Path(scratch) / "model", run_id=run_id, parent=version.name,
                                    adapter_id=adapter_id, base=version.manifest.get("base", "?"), link=True,
                                    extra={"gate": gate, "run_id": run_id,
                                           "fusion": {k: info[k] for k in ("fused_layers", "quantized", "seconds")}})
    benchmark, _ = load_gate_inputs(settings.gate)
    smoke = smoke_test(new.path, benchmark[:settings.gate.smoke_questions])
    try:
        manifest, files_ok = registry.verify_folder(new.path), True
    except IntegrityError:
        manifest, files_ok = new.manifest, False
    frame = pa.table({"version": [new.name],
                      "manifest_complete": [all(k in manifest for k in ("version", "parent", "adapter_id", "files", "gate"))],
                      "files_match_manifest": [files_ok], "parent_exists": [(home.models / version.name).is_dir()],
                      "smoke_correct": [smoke["correct"]]})
    check(home, run_id, "model", frame, id_column="version")
    registry.set_current(home, new.name, run_id=run_id, action="promote",
                         reason=f"adapter {adapter_id} approved by the gate")
    log.info(f"fused {adapter_id} into {new.name} (smoke test {smoke['correct']}/{smoke['asked']}); "
                          f"current is now {new.name}")
    return new
