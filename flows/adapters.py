"""Stage 5 as a Prefect task: train a LoRA adapter on tonight's examples, validate, write `train_steps`."""

from __future__ import annotations

import importlib.metadata
import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.checks import check
from flows.training_examples import root_version
from storage import registry
from storage.adapters import adapter_manifest, adapter_steps, find_adapter, save_adapter
from storage.charts import plot_loss
from storage.errors import IntegrityError
from storage.home import Home
from storage.ids import content_id, sha256_bytes
from storage.warehouse import read_table, write_table
from tasks.model.loading import load_model
from tasks.training import (
    TrainConfig,
    TrainResult,
    TrainSummary,
    adapter_config,
    adapter_id,
    lora_weights_writer,
    step_count,
)
from tasks.training import adapter_manifest as training_manifest

CODE_VERSION = f"slowwave {importlib.metadata.version('slowwave')}"


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


def save_trained_adapter(adapters_dir: Path, model, cfg: TrainConfig, result: TrainResult, *, parent_version: str,
                         training_set_id: str, training_set_sha256: str, code_version: str = CODE_VERSION,
                         rehearsal_seed: int | None = None, aid: str | None = None) -> tuple[str, Path]:
    """(adapter id, folder) of a just-trained model's LoRA weights saved as adapters/<id>/ (save_adapter reuses an
    existing one). `aid`: the id the caller already derived from the same inputs."""
    aid = aid or adapter_id(cfg, parent_version=parent_version, training_set_sha256=training_set_sha256)
    manifest = training_manifest(cfg, result.summary(), parent_version=parent_version,
                                 training_set_id=training_set_id, training_set_sha256=training_set_sha256,
                                 code_version=code_version, rehearsal_seed=rehearsal_seed)
    folder = save_adapter(adapters_dir, aid, write_weights=lora_weights_writer(model),
                          adapter_config=adapter_config(cfg), steps=result.steps, manifest=manifest)
    return aid, folder


def _rehearsal_seed(seed: int, examples: pa.Table) -> int | None:
    """The seed the training set's rehearsal prose was sampled with (None: the set has none)."""
    return seed if pc.any(pc.equal(examples["source"], "rehearsal")).as_py() else None


@task(name="train", cache_policy=NO_CACHE)
def train_task(home: Home, train: TrainConfig, run_id: str, depth: str, examples: pa.Table,
               version: registry.Version, rehearsal_seed: int) -> tuple[str, Path, TrainSummary]:
    """Stage 5: a LoRA adapter on tonight's examples; a rerun with the same inputs reuses the saved adapter.

    The `adapter` suite runs before anything lands: a failing one leaves no train_steps rows and no loss.png
    (the content-addressed adapter folder stays, for audit)."""
    log = get_run_logger()
    cfg = train.for_depth(depth)
    sha = training_set_sha256(examples)
    aid = adapter_id(cfg, parent_version=version.name, training_set_sha256=sha)
    folder = find_adapter(home.adapters, aid)
    if folder is not None:
        log.info(f"adapter {aid} already trained on these inputs: reusing it")
        summary, steps = TrainSummary.model_validate(adapter_manifest(folder)["result"]), adapter_steps(folder)
    else:
        model, tok = load_model(version.path, fresh=True)  # loads the fast BLAS before MLX
        rows = training_rows(examples)
        total = step_count(len(rows), cfg.batch_size, cfg.epochs)
        teacher, teacher_id = None, None
        if cfg.distill != "off":  # toward the root's distribution, as anchors are its answers: no compounding
            root = root_version(home)
            teacher = load_model(root.path)[0] if root.name != version.name else None
            teacher_id = content_id("m", json.dumps(root.manifest.files, sort_keys=True))
        from tasks.training import train_adapter

        trained = train_adapter(model, tok, rows, cfg, teacher=teacher, teacher_id=teacher_id,
                                on_step=_progress(total, log.info))
        aid, folder = save_trained_adapter(home.adapters, model, cfg, trained, parent_version=version.name,
                                           training_set_id=run_id, training_set_sha256=sha,
                                           rehearsal_seed=_rehearsal_seed(rehearsal_seed, examples), aid=aid)
        summary, steps = trained.summary(), trained.steps
    try:
        registry.verify_folder(folder)
        files_ok = True
    except IntegrityError:
        files_ok = False
    expected = step_count(examples.num_rows, cfg.batch_size, cfg.epochs)
    frame = pa.table({"adapter_id": [aid], "files_match_manifest": [files_ok],
                      "losses_finite": [math.isfinite(summary.first_epoch_loss) and math.isfinite(summary.final_loss)],
                      "steps": [summary.iterations], "expected_steps": [expected]})
    check(home, run_id, "adapters", frame, id_column="adapter_id")
    have = read_table(home, "train_steps", run_ids=[run_id], columns=["adapter_id"])["adapter_id"].to_pylist()
    if aid not in have and steps is not None:  # not yet recorded (an attempt may have stopped after saving)
        write_table(home, "train_steps", run_id,
                    steps.append_column("adapter_id", pa.array([aid] * steps.num_rows, pa.string())))
        plot_loss(steps, home.runs / run_id / "loss.png")
    log.info(f"adapter {aid}: {summary.iterations} steps, loss {summary.first_epoch_loss:.3f} -> "
             f"{summary.final_loss:.3f}, {summary.tokens_per_second} tokens/s")
    return aid, folder, summary
