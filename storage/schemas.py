"""The Arrow schema of every warehouse table, in one place; a table's name is its folder and view."""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
STR = pa.string()
STRS = pa.list_(pa.string())


def _schema(*fields: tuple) -> pa.Schema:
    return pa.schema([pa.field(name, typ, nullable=nullable) for name, typ, nullable in fields])


SCHEMAS: dict[str, pa.Schema] = {
    # One row per sleep-cycle or ingest run.
    "runs": _schema(
        ("run_id", STR, False),
        ("kind", STR, False),  # ingest | sleep | eval
        ("flow_run_id", STR, True),
        ("started_at", TS, False),
        ("finished_at", TS, True),
        ("status", STR, False),  # completed | failed | nothing-to-do
        ("depth", STR, True),
        ("input_files", STRS, False),
        ("input_sha256", STRS, False),
        ("summary_json", STR, True),
    ),
    # Stage 0: every logged message, traced to file + line.
    "messages": _schema(
        ("message_id", STR, False),
        ("run_id", STR, False),
        ("source_file", STR, False),
        ("file_sha256", STR, False),
        ("line_no", pa.int32(), False),
        ("session_id", STR, False),
        ("turn", pa.int64(), False),
        ("role", STR, False),
        ("timestamp", TS, False),
        ("content", STR, False),
    ),
    # Stage 0: a user message and the assistant message of the same turn.
    "exchanges": _schema(
        ("exchange_id", STR, False),
        ("run_id", STR, False),
        ("session_id", STR, False),
        ("turn", pa.int64(), False),
        ("timestamp", TS, False),
        ("user_text", STR, False),
        ("assistant_text", STR, False),
        ("user_message_id", STR, False),
        ("assistant_message_id", STR, False),
        ("source_file", STR, False),
        ("file_sha256", STR, False),
        ("user_line", pa.int32(), False),
        ("assistant_line", pa.int32(), False),
    ),
    # Stage 0: every line that could not be used, with why, and its raw bytes.
    "quarantine": _schema(
        ("run_id", STR, False),
        ("source_file", STR, False),
        ("file_sha256", STR, False),
        ("line_no", pa.int32(), False),  # 0 = the file as a whole (e.g. empty file)
        ("reason", STR, False),
        ("detail", STR, False),
        ("raw", pa.binary(), False),
    ),
    # Every file ever ingested (idempotence: the same sha256 is never read twice).
    "ingested_files": _schema(
        ("file_sha256", STR, False),
        ("run_id", STR, False),
        ("source_file", STR, False),
        ("size_bytes", pa.int64(), False),
        ("lines", pa.int64(), False),
        ("messages", pa.int64(), False),
        ("exchanges", pa.int64(), False),
        ("quarantined", pa.int64(), False),
    ),
    # Stage 1: every new exchange with its scores and why.
    "scored_exchanges": _schema(
        ("exchange_id", STR, False),
        ("run_id", STR, False),
        ("novelty", pa.float64(), False),
        ("importance", pa.float64(), False),
        ("utility", pa.float64(), False),
        ("combined", pa.float64(), False),
        ("retained", pa.bool_(), False),
        ("rules", STRS, False),
    ),
    # Stage 2: candidate question-answer pairs about the user.
    "candidate_pairs": _schema(
        ("pair_id", STR, False),
        ("run_id", STR, False),
        ("exchange_id", STR, False),  # the first exchange it was found in
        ("source_exchange_ids", STRS, False),  # every exchange that states it
        ("method", STR, False),  # template | model | dream
        ("methods", STRS, False),  # every method that found it
        ("fact_type", STR, False),
        ("subject", STR, False),
        ("value", STR, False),
        ("question", STR, False),
        ("answer", STR, False),
        ("span_start", pa.int32(), True),  # character span in the user message
        ("span_end", pa.int32(), True),
        ("fact_key", STR, False),  # fact_type + subject: a later value for the same key supersedes
        ("superseded_by", STR, True),
    ),
    # Stage 3: accepted pairs with their grounding.
    "pairs": _schema(
        ("pair_id", STR, False),
        ("run_id", STR, False),
        ("exchange_id", STR, False),
        ("source_exchange_ids", STRS, False),
        ("method", STR, False),
        ("methods", STRS, False),
        ("fact_type", STR, False),
        ("subject", STR, False),
        ("value", STR, False),
        ("question", STR, False),
        ("answer", STR, False),
        ("span_start", pa.int32(), True),
        ("span_end", pa.int32(), True),
        ("fact_key", STR, False),
        ("superseded_by", STR, True),
        ("grounding", pa.float64(), False),
        ("evidence", STRS, False),
        ("score", pa.float64(), False),  # curation score: combined × grounding
    ),
    # Stage 3: every rejected candidate and why; nothing is deleted.
    "rejections": _schema(
        ("pair_id", STR, False),
        ("run_id", STR, False),
        ("exchange_id", STR, False),
        ("method", STR, False),
        ("fact_type", STR, False),
        ("question", STR, False),
        ("answer", STR, False),  # secrets are masked before they land here
        ("reason", STR, False),  # ungrounded | secret | injection | about-assistant | empty | too-long | assistant-only
        # | forgotten
        ("detail", STR, False),
        ("grounding", pa.float64(), True),
    ),
    # Stage 4: the replay buffer; each run writes a whole new version (its run_id), old ones are kept.
    "replay_buffer": _schema(
        ("pair_id", STR, False),
        ("run_id", STR, False),  # the buffer version
        ("fact_key", STR, False),
        ("question", STR, False),
        ("answer", STR, False),
        ("priority", pa.float64(), False),
        ("replay_count", pa.int64(), False),
        ("added_run", STR, False),
        ("last_replayed_run", STR, True),
        ("status", STR, False),  # active | retired | evicted | superseded
        ("status_reason", STR, True),
    ),
    # Stage 4: what the model practises in this run.
    "training_examples": _schema(
        ("example_id", STR, False),
        ("run_id", STR, False),
        ("source", STR, False),  # new | replay | dream | anchor | rehearsal (text = plain prose) | unknown
        ("pair_id", STR, True),
        ("question", STR, False),
        ("answer", STR, False),
        ("phrasing", STR, False),  # which question wording: original | wording:<type>.<i> | inverse:… | verify:… | model
        ("text", STR, False),  # chat-formatted, add_generation_prompt=False
        ("seed", pa.int64(), False),
    ),
    # The base model's own answers to the shipped general prompts (anchors against forgetting).
    "anchor_answers": _schema(
        ("prompt_id", STR, False),
        ("run_id", STR, False),
        ("model_version", STR, False),
        ("category", STR, False),
        ("question", STR, False),
        ("answer", STR, False),
    ),
    # Stage 5: every training step, for loss curves and audits.
    "train_steps": _schema(
        ("adapter_id", STR, False),
        ("run_id", STR, False),
        ("step", pa.int64(), False),
        ("epoch", pa.int64(), False),
        ("loss", pa.float64(), False),
        ("objective", pa.float64(), False),
        ("tokens", pa.int64(), False),
        ("input_tokens", pa.int64(), False),
        ("seconds", pa.float64(), False),
        ("learning_rate", pa.float64(), False),
    ),
    # Stage 6: the gate's three measurements and its decision for one adapter.
    "gate_results": _schema(
        ("adapter_id", STR, False),
        ("run_id", STR, False),
        ("parent_version", STR, False),
        ("approved", pa.bool_(), False),
        ("reasons", STRS, False),
        ("warnings", STRS, False),
        ("benchmark_pre", pa.float64(), False),
        ("benchmark_post", pa.float64(), False),
        ("benchmark_ratio", pa.float64(), False),
        ("ppl_pre", pa.float64(), False),
        ("ppl_post", pa.float64(), False),
        ("ppl_drift", pa.float64(), False),
        ("recall_pre", pa.float64(), True),
        ("recall_post", pa.float64(), True),
        ("precision_post", pa.float64(), True),
        ("new_facts", pa.int64(), False),
        ("details_json", STR, False),
    ),
    # Every model version ever registered (the folder's manifest is the truth; this is for queries).
    "model_versions": _schema(
        ("version", STR, False),
        ("run_id", STR, False),
        ("parent", STR, True),
        ("adapter_id", STR, True),
        ("base", STR, False),
        ("created_at", TS, False),
        ("manifest_sha256", STR, False),
        ("metrics_json", STR, True),
    ),
    # Every switch of the `current` pointer, with why.
    "model_events": _schema(
        ("run_id", STR, False),
        ("at", TS, False),
        ("action", STR, False),  # register | promote | rollback
        ("from_version", STR, True),
        ("to_version", STR, False),
        ("reason", STR, False),
    ),
    # One row per evaluation of one model version on one probe set (`slowwave eval`); a rate is null
    # when the probe set has no probes of its kind.
    "eval_runs": _schema(
        ("eval_id", STR, False),
        ("run_id", STR, False),
        ("model_version", STR, False),
        ("manifest_sha256", STR, False),  # the version's manifest: which weights were measured
        ("probes_file", STR, False),
        ("probes_sha256", STR, False),
        ("probes", pa.int64(), False),
        ("recall", pa.float64(), True),
        ("generalization", pa.float64(), True),
        ("precision", pa.float64(), True),  # correct ÷ (correct + wrong) over recall + generalization
        ("guard_pass_rate", pa.float64(), True),
        ("control_accuracy", pa.float64(), True),
        ("abstain_rate", pa.float64(), True),
        ("counts_json", STR, False),  # per kind: correct / wrong / abstain / total
        ("config_json", STR, False),  # max_tokens, batch size, system prompt
        ("seconds", pa.float64(), False),
        ("created_at", TS, False),
    ),
    # Every probe's answer in an evaluation and how it was scored.
    "eval_answers": _schema(
        ("eval_id", STR, False),
        ("run_id", STR, False),
        ("model_version", STR, False),
        ("probe_id", STR, False),
        ("kind", STR, False),  # recall | generalization | control | guard
        ("question", STR, False),
        ("answer", STR, False),
        ("verdict", STR, False),  # correct | wrong | abstain
        ("matched", STR, True),  # the expected keyword found, if any
        ("forbidden_hit", STR, True),  # the forbidden keyword found, if any
    ),
    # Every `slowwave forget`: what it selected (search words are not kept), why, and where it stands; a request's
    # newest row is its state (requested -> rebuilt | not-promoted | nothing-to-rebuild -> purged).
    "forget_requests": _schema(
        ("request_id", STR, False),
        ("run_id", STR, False),
        ("at", TS, False),
        ("selector", STR, False),  # pair:<id> | exchange:<id> | session:<id> | search (N words, not kept)
        ("reason", STR, True),
        ("status", STR, False),
        ("counts_json", STR, False),  # pairs, exchanges, messages, replay entries, runs, adapters, versions
        ("detail_json", STR, False),  # the rebuilt version, the verification, what the purge removed
    ),
    # The tombstones: every pair, exchange and message a forget request took back (ids only, never words).
    "forgotten": _schema(
        ("request_id", STR, False),
        ("run_id", STR, False),
        ("kind", STR, False),  # pair | exchange | message
        ("item_id", STR, False),
        ("at", TS, False),
    ),
    # Every expectation-suite run at a stage boundary.
    "validations": _schema(
        ("run_id", STR, False),
        ("suite", STR, False),
        ("validated_at", TS, False),
        ("success", pa.bool_(), False),
        ("rows", pa.int64(), False),
        ("evaluated", pa.int64(), False),
        ("failed", pa.int64(), False),
        ("failures_json", STR, False),
    ),
}


def schema_of(table: str) -> pa.Schema:
    """Return the Arrow schema of a warehouse table, or raise naming the known tables."""
    try:
        return SCHEMAS[table]
    except KeyError:
        raise KeyError(f"unknown table {table!r}; known: {', '.join(sorted(SCHEMAS))}") from None


def empty(table: str) -> pa.Table:
    """An empty Arrow table with the table's schema."""
    return schema_of(table).empty_table()


def without_run_id(table: str) -> pa.Schema:
    """The schema a pure stage function returns: the table's, less `run_id` (storage adds it)."""
    schema = schema_of(table)
    return schema.remove(schema.get_field_index("run_id"))


def require_columns(table: pa.Table, columns, what: str) -> None:
    """Raise ValueError naming the missing columns when `table` lacks any of `columns`."""
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValueError(f"{what} lacks column(s) {', '.join(missing)}; it has {', '.join(table.column_names)}")
