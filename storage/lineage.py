"""Lineage audit: DuckDB queries from a pair, an exchange, words or a model version to all that is linked to it.

The chain: model_versions (parent, adapter_id) -> the run that trained and gated the adapter (gate_results,
model_versions, train_steps) -> training_examples (pair_id, run_id) -> pairs (source_exchange_ids) ->
exchanges -> messages (file, line). A version contains a pair when an adapter fused into it or into any
ancestor was trained on a run whose examples used the pair.

Each query returns an Arrow table: one row with nested sections for a pair or an exchange, one row per
pair for a model version or a search. `con` is `storage.catalog.connect(home, NEEDS[kind])`. Ids found in
one step go into the next as constant IN-lists: DuckDB pushes those into the Parquet scan, where the
min/max of `run_id` (one run per file) skips every file of another run.
"""

from __future__ import annotations

import re
from typing import Callable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from storage.errors import LineageError
from storage.schemas import empty
from storage.sql import arrow, first_by_run, in_list, prepare, record, registered, resolve_id

TABLES = ["candidate_pairs", "exchanges", "gate_results", "messages", "model_events", "model_versions", "pairs",
          "rejections", "replay_buffer", "runs", "scored_exchanges", "train_steps", "training_examples"]
# The views each query kind reads (fewer views, faster connect).
NEEDS = {
    "pair": TABLES,
    "exchange": ["candidate_pairs", "exchanges", "gate_results", "messages", "model_versions", "pairs",
                 "rejections", "scored_exchanges", "training_examples"],
    "search": ["exchanges", "gate_results", "model_versions", "pairs", "rejections", "training_examples"],
    "model": ["gate_results", "model_versions", "pairs", "training_examples"],
}
# What shows a person's words: the caller's secret masker (flows pass tasks.firewall.masker); this layer cannot
# tell a secret, so without one every message's words are withheld.
Mask = Callable[[str], str]
WITHHELD = "[withheld: the firewall found a secret in this message]"
NO_MASK = "[withheld: no secret masker was given]"
_FULL_ID = re.compile(r"^(pr|ex)_[0-9a-f]{16}$")

# One row per version (a version is registered once; the guard keeps a duplicated row from doubling counts).
_MV = """mv AS (SELECT version, parent, adapter_id, run_id, created_at FROM model_versions
        QUALIFY row_number() OVER (PARTITION BY version ORDER BY created_at) = 1)"""
# The run that trained and gated each adapter. A version's adapter was always gated first, so every run
# whose adapter is in a version is here; train_steps adds only adapters that never reached the gate.
_RUN_ADAPTERS = """run_adapters AS (SELECT DISTINCT run_id, adapter_id FROM (
        SELECT run_id, adapter_id FROM gate_results
        UNION ALL SELECT run_id, adapter_id FROM mv WHERE adapter_id IS NOT NULL))"""
# Every (ancestor, version), a version being its own ancestor: the parent links walked down.
_CLOSURE = """closure(ancestor, version) AS (
        SELECT version, version FROM mv
        UNION SELECT c.ancestor, mv.version FROM closure c JOIN mv ON mv.parent = c.version)"""
# The sources of a pair's examples in one run, from per-source counts (cheaper than a list aggregate).
_SOURCES = ("list_filter([CASE WHEN dream > 0 THEN 'dream' END, CASE WHEN new > 0 THEN 'new' END, "
            "CASE WHEN replay > 0 THEN 'replay' END], lambda s: s IS NOT NULL)")
_COUNTS = ("count(*) AS examples, count(*) FILTER (WHERE source = 'new') AS new, "
           "count(*) FILTER (WHERE source = 'replay') AS replay, count(*) FILTER (WHERE source = 'dream') AS dream")
_CURRENT = '(SELECT to_version FROM model_events ORDER BY "at" DESC LIMIT 1)'

def resolve_pair(con: duckdb.DuckDBPyConnection, ref: str) -> str:
    """The full pair id that `ref` names (whole or a unique prefix), accepted, rejected or candidate."""
    return resolve_id(con, ref, "pr_", "pair", ["pairs", "rejections", "candidate_pairs"], "pair_id")

def resolve_exchange(con: duckdb.DuckDBPyConnection, ref: str) -> str:
    """The full exchange id that `ref` names (whole or a unique prefix)."""
    return resolve_id(con, ref, "ex_", "exchange", ["exchanges"], "exchange_id")

def _sources(con: duckdb.DuckDBPyConnection, ids: list[str], mask: Mask | None,
             secret: set[str] | None = None) -> pa.Table:
    """Exchanges `ids`, in that order: file + line of the user's message, session, turn, words and scores.

    The words go through `mask`, so every secret span anywhere in them is masked; a message the firewall
    rejected a pair of as a secret (`secret`: exchange ids; None = look them up) in which `mask` finds nothing
    is withheld whole (the secret was seen with other settings)."""
    ex = arrow(con, f"""SELECT * FROM exchanges WHERE exchange_id IN {in_list(ids)}
                         QUALIFY row_number() OVER (PARTITION BY exchange_id ORDER BY run_id) = 1""")
    runs = ex["run_id"].to_pylist()  # a sleep ingests, scores and writes messages in one run
    msg = first_by_run(con, "messages", "message_id", ex["user_message_id"].to_pylist(), runs,
                        "message_id, source_file, line_no, run_id")
    sc = first_by_run(con, "scored_exchanges", "exchange_id", ids, runs)
    if secret is None:
        secret = {r[0] for r in con.sql(f"""SELECT exchange_id FROM rejections
                                            WHERE reason = 'secret' AND exchange_id IN {in_list(ids)}""").fetchall()}
    with registered(con, _ex=ex, _msg=msg, _sc=sc):
        rows = arrow(con, """
        SELECT ex.exchange_id, ex.session_id, ex.turn, ex.timestamp,
               coalesce(msg.source_file, ex.source_file) AS source_file, coalesce(msg.line_no, ex.user_line) AS line,
               ex.assistant_line, ex.user_text,
               sc.novelty, sc.importance, sc.utility, sc.combined, sc.retained, sc.rules
        FROM _ex ex LEFT JOIN _sc sc USING (exchange_id) LEFT JOIN _msg msg ON msg.message_id = ex.user_message_id
        ORDER BY list_position($ids, ex.exchange_id)""", ids=ids)

    def shown(exchange: str, text: str) -> str:
        if mask is None:
            return NO_MASK
        masked = mask(text)
        return WITHHELD if exchange in secret and masked == text else masked

    texts = [shown(e, t) for e, t in zip(rows["exchange_id"].to_pylist(), rows["user_text"].to_pylist())]
    return rows.set_column(rows.schema.get_field_index("user_text"), "user_text", pa.array(texts, pa.string()))

def _masked(table: pa.Table, columns: tuple[str, ...], mask: Mask | None) -> pa.Table:
    """`table` with the text of `columns` masked (withheld without a masker)."""
    for name in columns:
        if name in table.column_names:
            texts = [None if t is None else (mask(t) if mask else NO_MASK) for t in table[name].to_pylist()]
            table = table.set_column(table.schema.get_field_index(name), name, pa.array(texts, pa.string()))
    return table

def _training(con: duckdb.DuckDBPyConnection, pid: str, mv: pa.Table) -> pa.Table:
    """Every run whose training set used the pair: its examples, adapter, gate decision and fused version."""
    used = arrow(con, f"SELECT run_id, {_COUNTS} FROM training_examples WHERE pair_id = $id GROUP BY run_id", id=pid)
    gate = arrow(con, f"SELECT * FROM gate_results WHERE run_id IN {in_list(used['run_id'].to_pylist())}")
    # A run with no gate row may still have trained an adapter (stopped before the gate): its steps name it.
    ungated = set(used["run_id"].to_pylist()) - set(gate["run_id"].to_pylist())
    steps = arrow(con, f"SELECT DISTINCT run_id, adapter_id FROM train_steps WHERE run_id IN {in_list(ungated)}") \
        if ungated else pa.table({"run_id": pa.array([], pa.string()), "adapter_id": pa.array([], pa.string())})
    with registered(con, _used=used, _gate=gate, _steps=steps, _mv=mv):
        return arrow(con, f"""
        WITH adapters AS (SELECT DISTINCT run_id, adapter_id FROM (
            SELECT run_id, adapter_id FROM _gate UNION ALL SELECT run_id, adapter_id FROM _steps
            UNION ALL SELECT run_id, adapter_id FROM _mv WHERE adapter_id IS NOT NULL))
        , status AS (SELECT run_id, arg_max(status, coalesce(finished_at, started_at)) AS status FROM runs
                     WHERE run_id IN (SELECT run_id FROM _used) GROUP BY run_id)
        SELECT u.run_id, coalesce(st.status, 'running (not committed)') AS run_status,
               {_SOURCES} AS sources, u.examples, a.adapter_id, g.approved, g.reasons, g.warnings,
               g.benchmark_ratio, g.ppl_drift, g.recall_pre, g.recall_post, mv.version AS fused_into
        FROM _used u LEFT JOIN status st ON st.run_id = u.run_id LEFT JOIN adapters a ON a.run_id = u.run_id
        LEFT JOIN _gate g ON g.adapter_id = a.adapter_id AND g.run_id = u.run_id
        LEFT JOIN _mv mv ON mv.adapter_id = a.adapter_id
        ORDER BY u.run_id, a.adapter_id""")

def _versions(con: duckdb.DuckDBPyConnection, fused: list[str], mv: pa.Table) -> pa.Table:
    """Every version that is one of `fused` or descends from one, with the ones it learned the pair in."""
    with registered(con, _mv=mv):
        return arrow(con, f"""WITH RECURSIVE
        holds(version, learned_in) AS (
            SELECT version, version FROM _mv WHERE version IN {in_list(fused)}
            UNION SELECT mv.version, h.learned_in FROM holds h JOIN _mv mv ON mv.parent = h.version)
        SELECT h.version, mv.parent, mv.adapter_id, mv.created_at,
               list(DISTINCT h.learned_in ORDER BY h.learned_in) AS learned_in,
               coalesce(h.version = {_CURRENT}, false) AS current
        FROM holds h JOIN _mv mv USING (version) GROUP BY ALL ORDER BY h.version""")

def pair_lineage(con: duckdb.DuckDBPyConnection, ref: str, mask: Mask | None = None) -> pa.Table:
    """One row: the pair, its firewall verdict and supersession, with nested `sources`, `replay`,
    `training` (runs, adapters, gate results) and `versions` (model versions that contain it); every text a
    person's words could hold a secret in goes through `mask`."""
    prepare(con)
    pid = ref.strip() if _FULL_ID.match(ref.strip()) else resolve_pair(con, ref)
    # One query per table: this pair's row and the pairs it supersedes; its rejection (and every secret
    # rejection of its exchanges); its candidate row only when it was not accepted (the pair row has it all).
    found = arrow(con, """SELECT *, pair_id = $id AS this FROM (
                             SELECT * FROM pairs WHERE pair_id = $id UNION ALL
                             SELECT * FROM pairs WHERE superseded_by = $id) ORDER BY run_id""", id=pid)
    acc = found.filter(found["this"]).slice(0, 1).drop_columns(["this"])
    later = found.filter(pc.invert(found["this"]))["pair_id"].to_pylist()
    cand = (empty("candidate_pairs") if acc.num_rows else
            arrow(con, "SELECT * FROM candidate_pairs WHERE pair_id = $id ORDER BY run_id LIMIT 1", id=pid))
    cited = [e for r in (acc if acc.num_rows else cand).to_pylist()
             for e in [r["exchange_id"], *r["source_exchange_ids"]]]
    rejected = arrow(con, f"""SELECT * FROM rejections WHERE pair_id = $id
                               OR (reason = 'secret' AND exchange_id IN {in_list(cited)}) ORDER BY run_id DESC""", id=pid)
    rej = rejected.filter(pc.equal(rejected["pair_id"], pid)).slice(0, 1)
    secret = set(rejected.filter(pc.equal(rejected["reason"], "secret"))["exchange_id"].to_pylist())
    if not (acc.num_rows or rej.num_rows or cand.num_rows):
        raise LineageError(f"no pair matches {ref!r} in the warehouse; "
                           "find pairs with `slowwave lineage --search WORDS`")
    buffer = arrow(con, """SELECT run_id AS buffer_version, pair_id, status, priority, replay_count, added_run,
                            last_replayed_run, status_reason FROM replay_buffer
                            WHERE pair_id = $id OR status_reason = 'superseded by ' || $id ORDER BY run_id""", id=pid)
    with registered(con, _acc=acc, _rej=rej, _cand=cand, _buf=buffer):
        head = arrow(con, """
        WITH later AS (SELECT list(DISTINCT pair_id ORDER BY pair_id) AS ids FROM (
                SELECT unnest($later) AS pair_id UNION ALL SELECT pair_id FROM _buf WHERE pair_id <> $id)),
        buf AS (SELECT status, status_reason FROM _buf WHERE pair_id = $id ORDER BY buffer_version DESC LIMIT 1)
        SELECT $id AS pair_id,
            CASE WHEN acc.pair_id IS NOT NULL THEN 'accepted' WHEN rej.pair_id IS NOT NULL THEN 'rejected'
                 ELSE 'candidate' END AS status,
            coalesce(acc.run_id, cand.run_id, rej.run_id) AS run_id,
            coalesce(acc.exchange_id, cand.exchange_id, rej.exchange_id) AS exchange_id,
            coalesce(acc.source_exchange_ids, cand.source_exchange_ids, [rej.exchange_id]) AS source_exchange_ids,
            coalesce(acc.method, cand.method, rej.method) AS method,
            coalesce(acc.methods, cand.methods, [rej.method]) AS methods,
            coalesce(acc.fact_type, cand.fact_type, rej.fact_type) AS fact_type,
            -- a rejected pair shows only the firewall's masked wording: it may hold a secret
            CASE WHEN acc.pair_id IS NOT NULL OR rej.pair_id IS NULL THEN coalesce(acc.subject, cand.subject) END
                AS subject,
            CASE WHEN acc.pair_id IS NOT NULL OR rej.pair_id IS NULL THEN coalesce(acc.value, cand.value) END AS value,
            CASE WHEN acc.pair_id IS NOT NULL THEN acc.question ELSE coalesce(rej.question, cand.question) END
                AS question,
            CASE WHEN acc.pair_id IS NOT NULL THEN acc.answer ELSE coalesce(rej.answer, cand.answer) END AS answer,
            coalesce(acc.fact_key, cand.fact_key) AS fact_key,
            coalesce(acc.grounding, rej.grounding) AS grounding, acc.evidence, acc.score,
            rej.reason AS rejection_reason, rej.detail AS rejection_detail,
            coalesce(acc.superseded_by, cand.superseded_by) AS superseded_by, coalesce(later.ids, []) AS supersedes,
            buf.status AS buffer_status, buf.status_reason AS buffer_status_reason
        FROM (SELECT 1) one LEFT JOIN _acc acc ON true LEFT JOIN _cand cand ON true LEFT JOIN _rej rej ON true
        LEFT JOIN buf ON true LEFT JOIN later ON true""", id=pid, later=later)
    mv = arrow(con, f"WITH {_MV} SELECT * FROM mv")
    training = _training(con, pid, mv)
    replay = buffer.filter(pc.equal(buffer["pair_id"], pid)).drop_columns(["pair_id"])
    first = head["exchange_id"][0].as_py()
    ids = list(dict.fromkeys([first, *head["source_exchange_ids"][0].as_py()]))
    head = _masked(head, ("subject", "value", "question", "answer", "rejection_detail"), mask)
    return record(head, sources=_sources(con, ids, mask, secret),
                   replay=replay, training=training, versions=_versions(con, training["fused_into"].to_pylist(), mv))

def _usage_ctes() -> str:
    """CTEs `usage_runs` and `usage_versions` for the pair ids of a CTE `wanted` defined before them."""
    return f"""{_MV}, {_RUN_ADAPTERS}, {_CLOSURE},
    used AS (SELECT pair_id, run_id, count(*) AS examples FROM training_examples
             WHERE pair_id IN (SELECT pair_id FROM wanted) GROUP BY ALL),
    usage_runs AS (SELECT pair_id, count(*) AS training_runs, sum(examples)::BIGINT AS examples
                   FROM used GROUP BY pair_id),
    usage_versions AS (SELECT u.pair_id, list(DISTINCT cl.version ORDER BY cl.version) AS versions
                       FROM used u JOIN run_adapters ra USING (run_id) JOIN mv ON mv.adapter_id = ra.adapter_id
                       JOIN closure cl ON cl.ancestor = mv.version GROUP BY u.pair_id)"""

def _with_usage(con: duckdb.DuckDBPyConnection, found: pa.Table, order: str) -> pa.Table:
    """`found` (pairs) with how many runs trained on each, on how many examples, and the versions holding it."""
    with registered(con, _found=found):
        return arrow(con, f"""WITH RECURSIVE wanted AS (SELECT pair_id FROM _found), {_usage_ctes()}
        SELECT f.*, coalesce(ur.training_runs, 0) AS training_runs, coalesce(ur.examples, 0) AS examples,
               coalesce(uv.versions, []) AS versions
        FROM _found f LEFT JOIN usage_runs ur USING (pair_id) LEFT JOIN usage_versions uv USING (pair_id)
        ORDER BY {order}""")

def exchange_lineage(con: duckdb.DuckDBPyConnection, ref: str, mask: Mask | None = None) -> pa.Table:
    """One row: the exchange (file, line, session, turn, the user's words through `mask`, scores) with a nested
    `pairs` section: every pair that cites it, accepted or rejected, with its training runs and model versions."""
    prepare(con)
    eid = resolve_exchange(con, ref)
    found = arrow(con, """
    WITH acc AS (SELECT pair_id, 'accepted' AS status, NULL::VARCHAR AS reason, method, fact_type, question, answer,
                        grounding, superseded_by, run_id
                 FROM pairs WHERE list_contains(source_exchange_ids, $id) OR exchange_id = $id
                 QUALIFY row_number() OVER (PARTITION BY pair_id ORDER BY run_id) = 1),
    cited AS (SELECT pair_id FROM candidate_pairs WHERE list_contains(source_exchange_ids, $id) OR exchange_id = $id),
    rej AS (SELECT pair_id, 'rejected' AS status, reason, method, fact_type, question, answer, grounding,
                   NULL::VARCHAR AS superseded_by, run_id
            FROM rejections WHERE (exchange_id = $id OR pair_id IN (SELECT pair_id FROM cited))
              AND pair_id NOT IN (SELECT pair_id FROM acc)
            QUALIFY row_number() OVER (PARTITION BY pair_id ORDER BY run_id DESC) = 1)
    SELECT * FROM acc UNION ALL SELECT * FROM rej""", id=eid)
    found = _masked(found, ("question", "answer"), mask)
    return record(_sources(con, [eid], mask), pairs=_with_usage(con, found, "f.run_id, f.pair_id"))

def _like(word: str) -> str:
    """An ILIKE pattern matching `word` anywhere (its own % and _ escaped)."""
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

def search_pairs(con: duckdb.DuckDBPyConnection, text: str) -> pa.Table:
    """Pairs whose question, answer or source words contain every word of `text` (case-insensitive),
    one row each: status, where it came from, and how often it was trained and into which versions."""
    prepare(con)
    words = text.split() if text else []
    if not words:
        raise LineageError("--search needs at least one word")
    n = range(len(words))

    def has(column: str, i: int) -> str:
        return f"{column} ILIKE $w{i} ESCAPE '\\'"

    # The user's words take one scan of exchanges (a flag per word); a pair matches when each word is in
    # its question, its answer or the words of the exchange it came from.
    found = arrow(con, f"""
    WITH said AS (SELECT exchange_id, {", ".join(f"{has('user_text', i)} AS m{i}" for i in n)} FROM exchanges
                  WHERE {" OR ".join(has("user_text", i) for i in n)}),
    acc AS (SELECT p.pair_id, 'accepted' AS status, NULL::VARCHAR AS reason, p.run_id, p.method, p.fact_type,
                   p.question, p.answer, p.superseded_by, p.exchange_id
            FROM pairs p LEFT JOIN said USING (exchange_id)
            WHERE {" AND ".join(f"({has('p.question', i)} OR {has('p.answer', i)} OR coalesce(said.m{i}, false))"
                                for i in n)}
            QUALIFY row_number() OVER (PARTITION BY p.pair_id ORDER BY p.run_id) = 1),
    rej AS (SELECT pair_id, 'rejected' AS status, reason, run_id, method, fact_type, question, answer,
                   NULL::VARCHAR AS superseded_by, exchange_id
            FROM rejections WHERE {" AND ".join(f"({has('question', i)} OR {has('answer', i)})" for i in n)}
              AND pair_id NOT IN (SELECT pair_id FROM acc)
            QUALIFY row_number() OVER (PARTITION BY pair_id ORDER BY run_id DESC) = 1)
    SELECT * FROM acc UNION ALL SELECT * FROM rej""", **{f"w{i}": _like(w) for i, w in enumerate(words)})
    place = first_by_run(con, "exchanges", "exchange_id", found["exchange_id"].to_pylist(),
                          found["run_id"].to_pylist(), "exchange_id, session_id, turn, source_file, user_line, run_id")
    place = place.drop_columns(["run_id"]).rename_columns(["exchange_id", "session_id", "turn", "source_file", "line"])
    with registered(con, _hits=found, _place=place):
        found = arrow(con, "SELECT h.*, p.* EXCLUDE (exchange_id) FROM _hits h LEFT JOIN _place p USING (exchange_id)")
    return _with_usage(con, found, "f.status, f.run_id, f.pair_id")

def model_lineage(con: duckdb.DuckDBPyConnection, version: str) -> pa.Table:
    """One row per (training run, pair) in `version`'s ancestry (it and every parent up to the base):
    the version that fused the run's adapter, its depth (0 = `version`), the examples that used the pair,
    and the run's own counts (`run_pairs`, `run_examples`)."""
    prepare(con)
    # The ancestry with the run(s) that trained and gated each adapter in it (none for the base version).
    ancestry = arrow(con, f"""WITH RECURSIVE {_MV}, {_RUN_ADAPTERS},
    ancestry(version, parent, adapter_id, depth) AS (
        SELECT version, parent, adapter_id, 0 FROM mv WHERE version = $v
        UNION SELECT mv.version, mv.parent, mv.adapter_id, a.depth + 1
              FROM ancestry a JOIN mv ON mv.version = a.parent WHERE a.depth < 100000)
    SELECT a.version, a.depth, ra.run_id, a.adapter_id FROM ancestry a LEFT JOIN run_adapters ra USING (adapter_id)""",
                      v=version)
    if not ancestry.num_rows:
        known = [r[0] for r in con.sql("SELECT DISTINCT version FROM model_versions ORDER BY 1").fetchall()]
        listed = ", ".join(known if len(known) <= 8 else known[:3] + ["…"] + known[-3:])
        raise LineageError(f"no model version {version!r} in the warehouse; known: {listed or 'none'}")
    fused = ancestry.filter(pc.invert(pc.is_null(ancestry["run_id"])))
    with registered(con, _fused=fused):
        rows = arrow(con, f"""
        WITH per_pair AS (SELECT run_id, pair_id, {_COUNTS} FROM training_examples
                          WHERE run_id IN {in_list(fused["run_id"].to_pylist())} AND pair_id IS NOT NULL
                          GROUP BY run_id, pair_id),
        per_run AS (SELECT run_id, count(*) AS run_pairs, sum(examples)::BIGINT AS run_examples FROM per_pair
                    GROUP BY run_id)
        SELECT fr.version, fr.depth, pp.run_id, fr.adapter_id, pp.pair_id, {_SOURCES} AS sources, pp.examples,
               pr.run_pairs, pr.run_examples
        FROM per_pair pp JOIN _fused fr USING (run_id) JOIN per_run pr USING (run_id)
        ORDER BY fr.depth DESC, pp.run_id, pp.pair_id""")
    # The words of each pair, looked up after sorting (sorting the long texts too costs more than this).
    # A pair id is a hash of its exchange, method, question and answer: any of its rows has the same words.
    facts = arrow(con, "SELECT pair_id, question, answer, exchange_id FROM pairs")
    found = facts.take(pc.index_in(rows["pair_id"], value_set=facts["pair_id"]))
    for name in ("question", "answer", "exchange_id"):
        rows = rows.append_column(name, found[name])
    return rows

def run_counts(rows: pa.Table) -> pa.Table:
    """Per training run of a `model_lineage` result: its version, adapter, and pairs and examples by source."""
    con = duckdb.connect(":memory:")
    try:
        with registered(con, _rows=rows):
            return arrow(con, """
            SELECT version, run_id, adapter_id, count(*) AS pairs, sum(examples)::BIGINT AS examples,
                   count(*) FILTER (WHERE list_contains(sources, 'new')) AS new_pairs,
                   count(*) FILTER (WHERE list_contains(sources, 'replay')) AS replay_pairs,
                   count(*) FILTER (WHERE list_contains(sources, 'dream')) AS dream_pairs
            FROM _rows GROUP BY ALL ORDER BY min(depth) DESC, run_id""")
    finally:
        con.close()
