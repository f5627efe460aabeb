"""The `forget-rebuild` flow: unlearn a forget request's pairs by consolidating again without them.

The oldest model version that holds a forgotten pair is found through lineage; the rebuild starts from its
parent and runs the sleep's own stages once over every pair still active that the versions since then
learned, less the forgotten ones: mix (replay, anchors, rehearsal), train, gate, then a verification that
the forgotten values are not produced for their questions (and a wording never trained), and that the kept
facts' recall stays within `forget.max_recall_drop` of the version it replaces. Only then is it fused (its
manifest names the request) and made current.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.adapters import train_task
from flows.config import load_settings
from flows.gate_results import gate_task, held_out_facts
from flows.model_versions import fuse_task
from flows.training_examples import latest_buffer, mix_task
from storage import registry
from storage.catalog import connect
from storage.forget import drop_forgotten, forgotten, request_items, requests, usage, write_request_status
from storage.home import Home
from storage.ids import new_run_id
from storage.runs import record_run, utcnow
from storage.schemas import schema_of
from storage.sql import arrow, in_list
from storage.warehouse import read_table
from tasks.model import threads


@dataclass
class RebuildPlan:
    """Where a rebuild starts and what it learns again."""

    request_pairs: list[str]  # the request's forgotten pairs
    holding: list[str]  # versions that hold one of them (oldest first)
    adapters: list[str]  # adapters trained on one of them
    current: str | None
    base: str | None  # the version the rebuild starts from (None: nothing to rebuild)
    relearn: pa.Table  # the pairs learned again (rows of `pairs`)


def chain(home: Home, name: str | None) -> list[str]:
    """`name` and its ancestors, newest first."""
    out = []
    while name:
        out.append(name)
        name = registry.get(home, name).manifest.parent
    return out


def plan_rebuild(home: Home, request_ids: list[str]) -> RebuildPlan:
    """The one rebuild some requests need: from the parent of the oldest version in `current`'s chain that holds
    a forgotten pair, over the pairs the versions since then learned (new or dreamt), still current, not forgotten."""
    pairs = sorted({p for rid in request_ids for p in request_items(home, rid, "pair")})
    con = connect(home)
    try:
        _, adapters, holding = usage(con, pairs)
        current = registry.current_name(home)
        line = chain(home, current)
        held = [v for v in line if v in holding]
        if not held:
            return RebuildPlan(pairs, holding, adapters, current, None, read_table(home, "pairs").slice(0, 0))
        base = registry.get(home, held[-1]).manifest.parent
        since = line[:line.index(base)] if base in line else line
        fused = [registry.get(home, v).manifest.adapter_id for v in since]
        runs = [r[0] for r in con.sql(f"""SELECT run_id FROM gate_results WHERE adapter_id IN {in_list(fused)}
                                          UNION SELECT run_id FROM model_versions WHERE version IN {in_list(since)}
                                          """).fetchall()]
        learned = arrow(con, f"""SELECT DISTINCT pair_id FROM training_examples WHERE run_id IN {in_list(runs)}
                                 AND source IN ('new', 'dream')""")["pair_id"]
        rows = arrow(con, f"""SELECT * FROM pairs WHERE pair_id IN {in_list(learned.to_pylist())}
                              QUALIFY row_number() OVER (PARTITION BY pair_id ORDER BY run_id) = 1
                              ORDER BY run_id, pair_id""")
    finally:
        con.close()
    schema = schema_of("pairs")
    rows = rows.select(schema.names).cast(schema)  # the warehouse's own types (DuckDB reads every column nullable)
    gone = forgotten(home)
    rows = drop_forgotten(drop_forgotten(rows, "pair_id", gone.pairs), "exchange_id", gone.exchanges)
    # Still current: not replaced in its own night, nor superseded in the buffer since.
    buffer = latest_buffer(home)
    replaced = buffer.filter(pc.equal(buffer["status"], "superseded"))["pair_id"]
    rows = rows.filter(pc.is_null(rows["superseded_by"]))
    rows = rows.filter(pc.invert(pc.is_in(rows["pair_id"], value_set=replaced)))
    return RebuildPlan(pairs, holding, adapters, current, base, rows)


@task(name="verify-forgotten", cache_policy=NO_CACHE)
def verify_task(home: Home, settings, base: registry.Version, adapter_dir, forgotten_pairs: pa.Table,
                kept: pa.Table, replaced: registry.Version) -> dict:
    """Ask the rebuilt model every forgotten pair's question and a wording never trained: which answers still
    hold the forgotten value; and the kept facts' recall, rebuilt against the version it replaces.

    A value the rebuild's own starting point (`base`, which never learned the pair) also gives is a prior, not a
    memory ("Where does my brother Henrik live?" -> Oslo): it is reported, not held against the rebuild. A value
    its question already names ("Do I like cilantro?") cannot be checked by looking for it in the answer."""
    from tasks.gating import measure_new_facts
    from tasks.model.loading import load_model
    from tasks.text import fold
    from tasks.vocabulary import held_out_question

    cfg, paraphrases = settings.gate, settings.mixing.paraphrases
    asked, unchecked = [], []
    for p in forgotten_pairs.to_pylist():
        if not p["value"]:
            continue
        if fold(p["value"]) in fold(p["question"]):
            unchecked.append(p["pair_id"])
            continue
        for phrasing, q in (("trained", p["question"]),
                            ("held-out", held_out_question(p["question"], p["fact_type"], p["subject"], paraphrases))):
            asked.append({"id": f"{p['pair_id']}:{phrasing}", "question": q, "expected": [p["value"]]})
    facts = held_out_facts(kept, paraphrases)

    def produced(model, tok) -> set[str]:
        if not asked:
            return set()
        found = measure_new_facts(model, tok, asked, max_tokens=cfg.max_tokens, batch_size=cfg.batch_size)
        return {o["id"].split(":")[0] for o in found["new_fact_outcomes"] if o["outcome"] == "correct"}

    def recall(model, tok) -> float | None:
        return measure_new_facts(model, tok, facts, max_tokens=cfg.max_tokens,
                                 batch_size=cfg.batch_size)["recall"] if facts else None

    model, tok = load_model(base.path, adapter_dir=adapter_dir, fresh=True)
    rebuilt, after = produced(model, tok), recall(model, tok)
    del model
    prior = produced(*load_model(base.path)) if rebuilt else set()
    before = recall(*load_model(replaced.path))
    return {"asked": len(asked), "recalled": sorted(rebuilt - prior), "prior": sorted(rebuilt & prior),
            "unchecked": sorted(unchecked), "kept_facts": len(facts), "recall_before": before,
            "recall_after": after}


def _markdown(request_ids: list[str], plan: RebuildPlan, outcome: dict) -> str:
    rows = [("requests", ", ".join(request_ids)), ("forgotten pairs", len(plan.request_pairs)),
            ("versions holding them", ", ".join(plan.holding) or "none"),
            ("adapters trained on them", len(plan.adapters)), ("rebuilt from", plan.base or "-"),
            ("pairs learned again", plan.relearn.num_rows)]
    rows += [(k, v) for k, v in outcome.items() if k not in ("reasons",)]
    if outcome.get("reasons"):
        rows.append(("why not promoted", "; ".join(outcome["reasons"])))
    lines = ["# Forget: rebuild", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {' '.join(str(v).split()).replace('|', '/')} |" for k, v in rows]
    return "\n".join(lines) + "\n"


@flow(name="forget-rebuild", log_prints=True)
def forget_rebuild(home_dir: str, request_ids: list[str]) -> dict:
    """Rebuild the model once without the pairs of these forget requests; return the outcome (also each
    request's new state)."""
    from prefect.artifacts import create_markdown_artifact

    home = Home.resolve(home_dir)
    log = get_run_logger()
    settings = load_settings(home.config_file)
    threads.configure(settings.model.threads)
    plan = plan_rebuild(home, request_ids)
    run_id, started, t0 = new_run_id(), utcnow(), time.perf_counter()
    named = ", ".join(request_ids)
    if plan.base is None:
        outcome = {"status": "nothing-to-rebuild", "current": plan.current,
                   "note": "no version in current's chain holds a forgotten pair"}
        log.info(f"{named}: {outcome['note']}; nothing to rebuild")
    else:
        log.info(f"{named}: rebuilding from {plan.base} over {plan.relearn.num_rows} pairs "
                 f"(versions holding a forgotten pair: {', '.join(plan.holding)})")
        record_run(home, run_id, "rebuild", started, "running", depth="light")
        outcome = _rebuild(home, settings, run_id, named, plan)
        outcome["seconds"] = round(time.perf_counter() - t0, 1)
        record_run(home, run_id, "rebuild", started, "completed", depth="light", summary=outcome)
    known = requests(home)
    for rid in request_ids:  # the state last: a rebuild killed before it is redone by `forget --pending`
        request = known[rid]
        write_request_status(home, rid, run_id, request["selector"], request["reason"], outcome["status"],
                             json.loads(request["counts_json"]),
                             {**outcome, "holding": plan.holding, "adapters": plan.adapters, "base": plan.base})
    create_markdown_artifact(_markdown(request_ids, plan, outcome), key="forget-rebuild",
                             description=f"forget request(s) {named}: {outcome['status']}")
    return outcome


def _rebuild(home: Home, s, run_id: str, request_id: str, plan: RebuildPlan) -> dict:
    base = registry.get(home, plan.base)
    replaced = registry.get(home, plan.current)
    exchanges, scored = read_table(home, "exchanges"), read_table(home, "scored_exchanges")
    examples, _ = mix_task(home, run_id, "light", plan.relearn, exchanges, scored, base.path, mixing=s.mixing,
                           replay=s.replay, dreaming=s.dreams, firewall=s.firewall)
    if not examples.num_rows or not plan.relearn.num_rows:
        # Nothing else was learned since the base: the base itself is the model without the forgotten pairs.
        registry.set_current(home, base.name, run_id=run_id, action="rollback",
                             reason=f"forget request {request_id}: {base.name} holds everything that is kept")
        return {"status": "rebuilt", "version": base.name, "replaced": replaced.name,
                "note": "nothing else to learn again: current moved back to the base"}
    adapter_id, adapter_dir, trained = train_task(home, s.train, run_id, "light", examples, base,
                                                  s.mixing.rehearsal_seed)
    decision = gate_task(home, s.gate, s.mixing.paraphrases, run_id, base, adapter_id, adapter_dir, plan.relearn)
    pairs = read_table(home, "pairs")
    gone = pairs.filter(pc.is_in(pairs["pair_id"], value_set=pa.array(plan.request_pairs, pa.string())))
    gone = gone.filter(pc.is_null(gone["superseded_by"]))
    check = verify_task(home, s, base, adapter_dir, _first(gone), plan.relearn, replaced)
    check = traced(check, _first(gone), examples)
    reasons = list(decision.reasons)
    if check["recalled"]:
        reasons.append(f"still answers the forgotten value of {len(check['recalled'])} pair(s): "
                       + ", ".join(check["recalled"]))
    drop = (check["recall_before"] - check["recall_after"]) if check["kept_facts"] else 0.0
    if drop > s.forget.max_recall_drop:
        reasons.append(f"recall of the kept facts fell {drop:.2f} ({check['recall_before']:.2f} -> "
                       f"{check['recall_after']:.2f}), more than forget.max_recall_drop {s.forget.max_recall_drop}")
    outcome = {"adapter": adapter_id, "replaced": replaced.name, "benchmark_ratio": round(decision.benchmark_ratio, 3),
               "ppl_drift": round(decision.ppl_drift, 4), "regressions": len(decision.benchmark_lost), **check}
    if reasons:
        get_run_logger().warning(f"{request_id}: rebuild not promoted: {'; '.join(reasons)}")
        return {"status": "not-promoted", "reasons": reasons, **outcome}
    new = fuse_task(home, s.gate, run_id, base, adapter_id, adapter_dir, decision, forget_request=request_id)
    return {"status": "rebuilt", "version": new.name, **outcome}


def traced(check: dict, gone: pa.Table, examples: pa.Table) -> dict:
    """Split the forgotten values the rebuilt model still gives: `recalled` (blocks promotion) when the value is
    in something the rebuild learned from a person (a new, replayed or dreamt example: the words leaked back),
    `inferred` (reported) when it is in none of them: the model reached it from facts that were kept (measured on
    the labelled case: "Where does my brother Henrik live?" -> Oslo after the kept facts about Norway), which only
    forgetting those facts too can take away."""
    from tasks.text import fold

    personal = examples.filter(pc.is_in(examples["source"], value_set=pa.array(["new", "replay", "dream"])))
    learned = fold(" ".join(personal["text"].to_pylist()))
    value = {p["pair_id"]: fold(p["value"] or "") for p in gone.to_pylist()}
    leaked = [pid for pid in check["recalled"] if value.get(pid) and value[pid] in learned]
    return {**check, "recalled": leaked, "inferred": [pid for pid in check["recalled"] if pid not in leaked]}


def _first(pairs: pa.Table) -> pa.Table:
    """One row per pair id (a pair may have been written by more than one run)."""
    seen: set[str] = set()
    keep = []
    for i, pid in enumerate(pairs["pair_id"].to_pylist()):
        keep.append(pid not in seen)
        seen.add(pid)
    return pairs.filter(pa.array(keep, pa.bool_()))
