"""Stage 6 as a Prefect task: gate the adapter against forgetting, validate, write `gate_results`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.checks import check
from storage import registry
from storage.cache import read_or_make_json
from storage.charts import plot_gate
from storage.errors import IntegrityError
from storage.home import Home
from storage.ids import content_id
from storage.warehouse import read_table, write_table
from tasks.gating import GateConfig, GateDecision, Measurement
from tasks.model.loading import load_model
from tasks.probes import Probe


def held_out_facts(pairs: pa.Table, paraphrases: int) -> list[dict]:
    """This run's current facts asked with a wording not used in training (tasks/vocabulary.held_out_question)."""
    from tasks.vocabulary import held_out_question

    facts = []
    for p in pairs.filter(pc.is_null(pairs["superseded_by"])).to_pylist():
        if p["method"] == "dream":
            continue
        question = held_out_question(p["question"], p["fact_type"], p["subject"], paraphrases)
        facts.append({"id": p["pair_id"], "question": question, "expected": [p["value"]]})
    return facts


def measurement_key(model_key: str, inputs_key: str) -> str:
    """The cache name of a model's gate measurement on some inputs (tasks.gating.inputs_sha256)."""
    return f"{model_key}-{inputs_key[:16]}"


def shipped_cache():
    """Generated data shipped for the default model: its anchors, rehearsal prose and the gate's measurement of
    it on the shipped benchmark and text (so the first night does not spend minutes measuring the base)."""
    from flows.training_examples import _shipped_cache

    return _shipped_cache()


def adapted_layers(adapter_dir: Path) -> int | None:
    """How many last blocks the adapter's LoRA layers cover (its adapter_config.json), None when not said."""
    try:
        layers = json.loads((adapter_dir / "adapter_config.json").read_text()).get("num_layers")
    except (OSError, ValueError) as e:
        raise IntegrityError(f"{adapter_dir / 'adapter_config.json'}: unreadable ({e})") from e
    return layers if isinstance(layers, int) and layers > 0 else None


def _measurement(version: registry.Version, cfg: GateConfig, facts: list[dict], benchmark: list[Probe],
                 text: str, layers: int | None = None) -> Measurement:
    """The gate's measurement of a registered version, cached by model content and inputs (`layers`: as
    tasks.gating.measure's adapted_layers)."""
    from tasks.gating import inputs_sha256, measure, measure_new_facts

    key = inputs_sha256(benchmark, text, max_tokens=cfg.max_tokens, window=cfg.ppl_window)
    # Greedy answers and perplexity depend only on the weights and the inputs: cache by both contents.
    model_key = content_id("m", json.dumps(version.manifest.files, sort_keys=True))
    model, tok = load_model(version.path)
    pre = Measurement.model_validate(read_or_make_json("measurements", measurement_key(model_key, key), lambda: measure(
        model, tok, benchmark=benchmark, general_text=text, max_tokens=cfg.max_tokens, batch_size=cfg.batch_size,
        window=cfg.ppl_window, adapted_layers=layers).model_dump(mode="json"), shipped=shipped_cache()))
    if facts:
        pre = pre.with_new_facts(measure_new_facts(model, tok, facts, max_tokens=cfg.max_tokens,
                                                   batch_size=cfg.batch_size))
    return pre


@task(name="gate", cache_policy=NO_CACHE)
def gate_task(home: Home, cfg: GateConfig, paraphrases: int, run_id: str, version: registry.Version,
              adapter_id: str, adapter_dir: Path, pairs: pa.Table) -> GateDecision:
    """Stage 6: benchmark ratio, perplexity drift and new-fact recall before vs after; approve or reject."""
    from tasks.gating import decide, load_gate_inputs, measure

    facts = held_out_facts(pairs, paraphrases)  # asked in a wording never trained
    benchmark, text = load_gate_inputs(cfg)
    layers = adapted_layers(adapter_dir)
    pre = _measurement(version, cfg, facts, benchmark, text, layers)
    model, tok = load_model(version.path, adapter_dir=adapter_dir, fresh=True)
    post = measure(model, tok, benchmark=benchmark, general_text=text, new_facts=facts, max_tokens=cfg.max_tokens,
                   batch_size=cfg.batch_size, window=cfg.ppl_window, adapted_layers=layers)
    decision = decide(pre, post, cfg)
    metrics = ("benchmark_pre", "benchmark_post", "benchmark_ratio", "ppl_pre", "ppl_post", "ppl_drift")
    values = decision.model_dump()
    row = {"adapter_id": adapter_id, "parent_version": version.name,
           **{k: values[k] for k in ("approved", "reasons", "warnings", *metrics, "recall_pre", "recall_post",
                                     "precision_post")},
           "new_facts": len(facts),
           "details_json": json.dumps({"pre": pre.model_dump(mode="json"), "post": post.model_dump(mode="json"),
                                       "decision": values}, default=str)}
    frame = pa.table({"adapter_id": [adapter_id], "approved": [decision.approved],
                      "metrics_finite": [all(math.isfinite(values[k]) for k in metrics)],
                      **{k: [values[k]] for k in ("benchmark_pre", "benchmark_post", "ppl_pre", "ppl_post")}})
    check(home, run_id, "gate_results", frame, id_column="adapter_id")
    write_table(home, "gate_results", run_id, pa.Table.from_pylist([row]))
    plot_gate(values, home.runs / run_id / "gate.png", parent=version.name, candidate="with adapter")
    verdict = "approved" if decision.approved else "rejected: " + "; ".join(decision.reasons)
    get_run_logger().info(f"gate {verdict}; benchmark {decision.benchmark_pre:.2f} -> "
                          f"{decision.benchmark_post:.2f}, ppl drift {decision.ppl_drift:+.1%}, "
                          f"recall {decision.recall_pre} -> {decision.recall_post}")
    return decision


def gate_decision(home: Home, run_id: str, adapter_id: str) -> GateDecision:
    """The gate's decision on an adapter, as a finished gate stage of this run stored it."""
    rows = read_table(home, "gate_results", run_ids=[run_id]).to_pylist()
    row = next((r for r in rows if r["adapter_id"] == adapter_id), None)
    if row is None:
        raise IntegrityError(f"run {run_id} marked its gate finished but gate_results has no row for adapter "
                             f"{adapter_id}; the warehouse under {home.warehouse} was changed by hand")
    return GateDecision.model_validate(json.loads(row["details_json"])["decision"])
