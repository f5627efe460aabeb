"""Stage 4 as a Prefect task: anchors, dreams, replay mixing, `training_examples` and the new `replay_buffer` version."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from expectations.derive import buffer_frame, training_set_frame
from flows.checks import check
from flows.pairs import check_pairs
from storage import registry
from storage.cache import read_or_make
from storage.home import Home
from storage.ids import content_id
from storage.runs import latest_committed
from storage.warehouse import read_table, write_table
from tasks.dreams import DreamConfig
from tasks.firewall import FirewallConfig
from tasks.mixing import MixingConfig
from tasks.model.loading import chat_formatter, load_model
from tasks.replay import ReplayConfig

ANCHOR_PROMPTS = "anchor_prompts.jsonl"


def _logger():
    """The Prefect run logger inside a flow, else the module's (for benchmarks and scripts)."""
    from flows.artifacts import in_run

    if in_run():
        return get_run_logger()
    return logging.getLogger("slowwave")


def latest_buffer(home: Home) -> pa.Table:
    """The newest replay-buffer version of a completed sleep (empty before the first one).

    A killed or failed run's version is not a base: its resumed run rebuilds the same version. Forgotten pairs
    are left out, so the next version no longer holds them."""
    from storage.forget import drop_forgotten, forgotten

    return drop_forgotten(latest_committed(home, "replay_buffer"), "pair_id", forgotten(home).pairs)


def root_version(home: Home) -> registry.Version:
    """The first ancestor of the current model: anchors are always its answers, so drift cannot compound."""
    v = registry.get(home, registry.current_name(home))
    while v.manifest.parent:
        v = registry.get(home, v.manifest.parent)
    return v


def _shipped_cache():
    """Generated data shipped with slowwave for the default float32 model (made here once), looked in first."""
    from tasks.data_files import DATA_DIR

    return DATA_DIR / "anchor_cache"


def anchor_prompts() -> list[dict]:
    """The shipped general prompts anchors are the root model's answers to ({id, category, prompt[, expected]})."""
    from tasks.data_files import data_path

    return [json.loads(line) for line in data_path(ANCHOR_PROMPTS).read_text().splitlines() if line.strip()]


def anchor_expected(prompts: list[dict]) -> dict[str, list[str]]:
    """{prompt id: expected keywords} of the anchor prompts that have one right answer."""
    return {p["id"]: p["expected"] for p in prompts if p.get("expected")}


def anchors_key(root_files: dict, prompts: list[dict], max_tokens: int) -> str:
    """Cache key of the root model's anchor answers: its content, the prompts asked (not what is expected of
    them: that decides which answers are used, not what is answered) and the answer length."""
    asked = [(p["id"], p["prompt"]) for p in prompts]
    return content_id("anc", json.dumps(root_files, sort_keys=True), json.dumps(asked), max_tokens)


def anchors_for(home: Home, run_id: str, cfg: MixingConfig) -> pa.Table:
    """The root model's answers to the shipped general prompts (generated once per home and kept), as
    `mixing.anchor_answers` selects them for replay (tasks.mixing.select_anchors)."""
    from tasks.mixing import select_anchors

    prompts = anchor_prompts()
    return select_anchors(all_anchor_answers(home, run_id, cfg, prompts), anchor_expected(prompts),
                          cfg.anchor_answers)


def all_anchor_answers(home: Home, run_id: str, cfg: MixingConfig, prompts: list[dict]) -> pa.Table:
    """Every answer the root model gave to the anchor prompts, as generated (the `anchor_answers` table)."""
    from tasks.model.answering import answer_questions

    root = root_version(home)
    have = read_table(home, "anchor_answers")
    have = have.filter(pc.equal(have["model_version"], root.name))
    if have.num_rows:
        return have
    # Greedy answers depend only on the weights, the prompts and the length: cache them across homes.
    key = anchors_key(root.manifest.files, prompts, cfg.anchor_max_tokens)

    def make() -> pa.Table:
        model, tok = load_model(root.path)
        _logger().info(f"anchors: {root.name} answers {len(prompts)} general prompts (once per model)")
        return pa.table({"answer": answer_questions(model, tok, [p["prompt"] for p in prompts],
                                                    max_tokens=cfg.anchor_max_tokens)})

    answers = read_or_make("anchors", key, make, shipped=_shipped_cache()).column("answer").to_pylist()
    table = pa.table({
        "prompt_id": [p["id"] for p in prompts], "model_version": [root.name] * len(prompts),
        "category": [p["category"] for p in prompts], "question": [p["prompt"] for p in prompts], "answer": answers,
    })
    table = table.filter(pc.greater(pc.utf8_length(table["answer"]), 0))
    write_table(home, "anchor_answers", run_id, table)
    return table


def rehearsal_key(root_files: dict, cfg) -> str:
    """Cache key of the rehearsal prose: the root model's content, the sample count and length, the seed."""
    return content_id("reh", json.dumps(root_files, sort_keys=True), cfg.rehearsal_samples,
                      cfg.rehearsal_max_tokens, cfg.rehearsal_seed)


def rehearsal_for(home: Home, cfg: MixingConfig) -> list[str]:
    """The root model's own prose for rehearsal, sampled once per model and settings (seed included), cached
    like anchors; the cache file records the seed it was sampled with."""
    from tasks.rehearsal import sample_prose

    if cfg.rehearsal_ratio <= 0 or cfg.rehearsal_samples <= 0:
        return []
    root = root_version(home)

    def make() -> pa.Table:
        model, tok = load_model(root.path)
        _logger().info(f"rehearsal: {root.name} writes {cfg.rehearsal_samples} prose samples (once per model, "
                       f"seed {cfg.rehearsal_seed})")
        texts = sample_prose(model, tok, cfg.rehearsal_samples, cfg.rehearsal_max_tokens, seed=cfg.rehearsal_seed)
        return pa.table({"text": pa.array(texts, pa.string())})

    made = {"seed": cfg.rehearsal_seed, "samples": cfg.rehearsal_samples, "max_tokens": cfg.rehearsal_max_tokens}
    table = read_or_make("rehearsal", rehearsal_key(root.manifest.files, cfg), make, made_with=made,
                         shipped=_shipped_cache())
    return table.column("text").to_pylist()


def _replay_target(new_pairs: pa.Table, buffer: pa.Table, n_new: int, share: float) -> int:
    """Replay examples the mix should hold: the share's ideal count, capped by what can be replayed."""
    keys = set(new_pairs["fact_key"].to_pylist())
    eligible = sum(1 for s, k in zip(buffer["status"].to_pylist(), buffer["fact_key"].to_pylist())
                   if s == "active" and k not in keys)
    return min(round(n_new * share / (1 - share)), eligible)


@task(name="mix", cache_policy=NO_CACHE)
def mix_task(home: Home, run_id: str, depth: str, pairs: pa.Table, exchanges: pa.Table, scored: pa.Table,
             model_dir: Path, *, mixing: MixingConfig, replay: ReplayConfig, dreaming: DreamConfig,
             firewall: FirewallConfig) -> tuple[pa.Table, pa.Table]:
    """Stage 4: tonight's training set (new + replay + dreams + anchors) and the next buffer version; dreams
    go through the firewall's config, and every random choice is seeded from `mixing.seed`."""
    from storage.forget import drop_forgotten, forgotten
    from tasks.dreams import make_dreams
    from tasks.mixing import build_training_set, mix_summary
    from tasks.replay import update_buffer

    log = get_run_logger()
    previous = latest_buffer(home)
    current = pairs.filter(pc.is_null(pairs["superseded_by"]))
    model, tok = load_model(model_dir)
    dreams = None
    if depth == "deep":
        from tasks.model.answering import sample_answers

        def sample(chats: list[list[dict]], s: int) -> list[str]:
            return sample_answers(model, tok, chats, temperature=dreaming.temperature, seed=s,
                                  max_tokens=dreaming.max_tokens, min_p=dreaming.min_p)

        known = pa.concat_tables([read_table(home, "pairs"), pairs]) if pairs.num_rows else read_table(home, "pairs")
        known = drop_forgotten(known, "pair_id", forgotten(home).pairs)  # never dreamt about again
        dreams, bad, tried = make_dreams(known.filter(pc.is_null(known["superseded_by"])), exchanges, scored,
                                         sample, dreaming, firewall, mixing.seed)
        check_pairs(home, firewall, run_id, dreams, bad, exchanges)
        log.info(f"dreams: {dreams.num_rows} grounded of {tried} dreamt ({bad.num_rows} rejected)")
    anchors = anchors_for(home, run_id, mixing)
    examples = build_training_set(current, previous, anchors, dreams, depth, chat_formatter(tok),
                                  mixing, seed=mixing.seed, rehearsal=rehearsal_for(home, mixing))
    summary = mix_summary(examples)
    target = _replay_target(current, previous, summary["new"], mixing.replay_share(depth))
    known_ids = pa.concat_tables([read_table(home, "pairs", columns=["pair_id"]),
                                  pairs.select(["pair_id"])])["pair_id"]
    active = previous.filter(pc.equal(previous["status"], "active"))["pair_id"]
    dream_ids = dreams["pair_id"] if dreams is not None else pa.array([], pa.string())
    check(home, run_id, "training_examples", training_set_frame(examples, known_ids, active, dream_ids, target),
          id_column="example_id")
    replayed = examples.filter(pc.equal(examples["source"], "replay"))["pair_id"].to_pylist()
    buffer = update_buffer(previous, current, replayed, run_id, replay)
    check(home, run_id, "replay_buffer", buffer_frame(buffer), id_column="pair_id",
          params={"capacity": replay.capacity})
    # Everything passed its suite: only now does anything of this stage land.
    if dreams is not None:
        write_table(home, "pairs", run_id, dreams)
        write_table(home, "rejections", run_id, bad)
    write_table(home, "training_examples", run_id, examples)
    write_table(home, "replay_buffer", run_id, buffer)
    log.info(f"mix ({depth}): {summary}")
    return examples, buffer
