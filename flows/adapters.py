"""Stage 5 as a Prefect task: train a LoRA adapter on tonight's examples, validate, write `train_steps`."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.checks import check
from flows.training_examples import root_version
from storage import registry
from storage.errors import IntegrityError
from storage.home import Home
from storage.ids import sha256_bytes
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
    from tasks.training import (
        STEPS_FILE,
        adapter_id,
        find_adapter,
        save_adapter,
        train_adapter,
    )

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
    check(home, run_id, "adapters", frame, id_column="adapter_id")
    log.info(f"adapter {aid}: {result['iterations']} steps, loss {result['first_epoch_loss']:.3f} -> "
             f"{result['final_loss']:.3f}, {result['tokens_per_second']} tokens/s")
    return aid, folder, result
