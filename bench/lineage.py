"""Time every lineage query kind on a generated warehouse of 1,000,000 exchanges and 100 model versions.

    python bench/lineage.py [--exchanges 1000000] [--versions 100] [--repeat 5] [--keep DIR]

The warehouse is written with the project's own writers (storage.warehouse.write_table, storage.registry,
storage.runs) from columns built with pyarrow: 110 nights (every 10th adapter rejected by the gate, one
rollback that starts a branch), each with its messages, exchanges, scores, candidates, pairs, rejections,
replay-buffer version, training set (new x 3 phrasings, 20% replay, as many anchors as new), one training
step per example per epoch (3 epochs), gate result and fused version. Each query is timed from a fresh
catalog connection, as `slowwave lineage` runs it. Target: every kind under a second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage import lineage, registry  # noqa: E402
from storage.catalog import connect  # noqa: E402
from storage.home import Home  # noqa: E402
from storage.runs import record_run  # noqa: E402
from storage.warehouse import write_table  # noqa: E402

# (user says: prefix, suffix; fact type; question; answer: prefix, suffix) — a fact with a filler value.
FACTS = [("My name is ", ".", "name", "What is my name?", "Your name is ", "."),
         ("I live in ", ", it is lovely.", "residence", "Where do I live?", "You live in ", "."),
         ("I work as a ", " these days.", "job", "What do I do for a living?", "You work as a ", "."),
         ("My dog is called ", ".", "pet_name", "What is my dog's name?", "Your dog's name is ", "."),
         ("My favorite food is ", ".", "favorite", "What is my favorite food?", "Your favorite food is ", ".")]
CHAT = ["thanks!", "what's the weather like?", "how do I install a package with pip?", "ok", "lol",
        "can you summarise this article for me?", "tell me a joke", "what time is it in Tokyo?"]
SYLLABLES = ["ka", "lo", "mi", "ra", "ven", "tor", "sa", "bel", "qu", "ix", "no", "da", "fen", "gro", "lu", "zet"]
FACT_SHARE = 0.3  # of exchanges that state a fact
REJECT_SHARE = 0.1  # of candidates the firewall rejects
BUFFER = 1000
EPOCHS = 3


def _ids(prefix: str, rng: np.random.Generator, n: int) -> pa.Array:
    # Uniform over the whole 64-bit range, like the project's sha256-based ids (min/max stats prune nothing).
    return pa.array([f"{prefix}{v:016x}" for v in rng.integers(0, 2**64, n, dtype=np.uint64).tolist()], pa.string())


def _lists(values: pa.Array) -> pa.Array:
    """Each value as a one-element list."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return pa.ListArray.from_arrays(pa.array(np.arange(len(values) + 1, dtype=np.int32)), values)


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _words(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct made-up capitalised words (filler values the search can look for)."""
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choice(SYLLABLES, size=int(rng.integers(2, 5)))).capitalize())
    return sorted(out)


def build(home: Home, n_exchanges: int, n_versions: int, seed: int = 7, say=print) -> dict:
    """Write the warehouse; return what the queries need (ids to look up, words to search)."""
    rng = np.random.default_rng(seed)
    nights = n_versions - 1 + (n_versions - 1) // 9  # every 10th adapter is rejected: n_versions - 1 get fused
    vocab = pa.array(_words(rng, 5000))
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    weights = home.root / "weights-src"
    weights.mkdir(parents=True)
    (weights / "model.safetensors").write_bytes(b"tiny stand-in weights")
    registry.register(home, weights, run_id="r20251231T000000-base00", parent=None, adapter_id=None, base="bench")
    registry.set_current(home, "v0000", run_id="r20251231T000000-base00", action="register", reason="bench")
    fused: list[str] = ["v0000"]
    all_pairs: list[pa.Table] = []
    lookups: dict = {}
    for night, idx in enumerate(np.array_split(np.arange(n_exchanges), nights)):
        day = t0 + timedelta(days=night)
        run = f"r{day:%Y%m%dT%H%M%S}-{night:06x}"
        k = len(idx)
        turn = pa.array(np.arange(k) % 50, pa.int64())
        session = pc.cast(pa.array(np.arange(k) // 50 + night * 1000), pa.string())
        session_id = _join(pa.scalar(f"{day:%Y%m%d}_"), session)
        source_file = _join(pa.scalar(f"/home/user/assistant/logs/session_{day:%Y%m%d}_"), session,
                            pa.scalar(".jsonl"))
        ts = pa.array(np.datetime64(day.replace(tzinfo=None), "us") + np.arange(k) * np.timedelta64(7, "s"),
                      pa.timestamp("us", "UTC"))
        is_fact = rng.random(k) < FACT_SHARE
        kind = rng.integers(0, len(FACTS), k)
        value = vocab.take(pa.array(rng.integers(0, len(vocab), k)))
        pre = pa.array([f[0] for f in FACTS]).take(pa.array(kind))
        suf = pa.array([f[1] for f in FACTS]).take(pa.array(kind))
        chat = pa.array(CHAT).take(pa.array(rng.integers(0, len(CHAT), k)))
        user = pc.if_else(pa.array(is_fact), _join(pre, value, suf), chat)
        assistant = pc.if_else(pa.array(is_fact), pa.scalar("Good to know!"), pa.scalar("Sure, here you go."))
        ex_id, user_msg, asst_msg = _ids("ex_", rng, k), _ids("msg_", rng, k), _ids("msg_", rng, k)
        sha = pc.binary_join_element_wise(pa.scalar("f" * 48), session, "")
        line = pc.add(pc.multiply(pc.cast(turn, pa.int32()), 2), 1)
        write_table(home, "messages", run, pa.concat_tables([pa.table({
            "message_id": mid, "source_file": source_file, "file_sha256": sha, "line_no": ln, "session_id": session_id,
            "turn": turn, "role": pa.array([role] * k), "timestamp": ts, "content": text})
            for mid, ln, role, text in ((user_msg, line, "user", user), (asst_msg, pc.add(line, 1), "assistant",
                                                                         assistant))]))
        write_table(home, "exchanges", run, pa.table({
            "exchange_id": ex_id, "session_id": session_id, "turn": turn, "timestamp": ts, "user_text": user,
            "assistant_text": assistant, "user_message_id": user_msg, "assistant_message_id": asst_msg,
            "source_file": source_file, "file_sha256": sha, "user_line": line, "assistant_line": pc.add(line, 1)}))
        scores = rng.random((3, k)) * 0.4 + np.where(is_fact, 0.4, 0.1)
        write_table(home, "scored_exchanges", run, pa.table({
            "exchange_id": ex_id, "novelty": scores[0], "importance": scores[1], "utility": scores[2],
            "combined": scores.mean(axis=0), "retained": pa.array(is_fact),
            "rules": _lists(pc.if_else(pa.array(is_fact), pa.scalar("importance:personal"), pa.scalar("chit-chat")))}))
        f = np.flatnonzero(is_fact)
        fk = pa.array(kind[f])
        fval = value.take(pa.array(f))
        fact_type = pa.array([x[2] for x in FACTS]).take(fk)
        cand = pa.table({
            "pair_id": _ids("pr_", rng, len(f)), "exchange_id": ex_id.take(pa.array(f)),
            "source_exchange_ids": _lists(ex_id.take(pa.array(f))), "method": pa.array(["template"] * len(f)),
            "methods": _lists(pa.array(["template"] * len(f))), "fact_type": fact_type,
            "subject": pa.array(["user"] * len(f)), "value": fval,
            "question": pa.array([x[3] for x in FACTS]).take(fk),
            "answer": _join(pa.array([x[4] for x in FACTS]).take(fk), fval, pa.array([x[5] for x in FACTS]).take(fk)),
            "span_start": pa.nulls(len(f), pa.int32()), "span_end": pa.nulls(len(f), pa.int32()),
            "fact_key": _join(fact_type, pa.scalar(":user")), "superseded_by": pa.nulls(len(f), pa.string())})
        write_table(home, "candidate_pairs", run, cand)
        rejected = pa.array(rng.random(len(f)) < REJECT_SHARE)
        acc, rej = cand.filter(pc.invert(rejected)), cand.filter(rejected)
        pairs = acc.append_column("grounding", pa.array(np.ones(acc.num_rows))) \
            .append_column("evidence", _lists(pc.utf8_lower(acc["value"]))) \
            .append_column("score", pa.array(rng.random(acc.num_rows)))
        write_table(home, "pairs", run, pairs)
        nr = rej.num_rows
        write_table(home, "rejections", run, rej.select(["pair_id", "exchange_id", "method", "fact_type", "question",
                                                         "answer"])
                    .append_column("reason", pa.array(["ungrounded"] * nr))
                    .append_column("detail", pa.array(["0 of 1 claims in the source"] * nr))
                    .append_column("grounding", pa.array(np.zeros(nr))))
        # Training set: 3 phrasings per new pair, replay of earlier pairs (20% share), as many anchors as new.
        n_new = pairs.num_rows * 3
        new_ids = pc.cast(pa.array(np.repeat(np.arange(pairs.num_rows), 3)), pa.int64())
        earlier = (pa.concat_tables(all_pairs) if all_pairs
                   else pairs.slice(0, 0).select(["pair_id", "question", "answer"]))
        n_replay = min(n_new // 4, earlier.num_rows)
        replay = earlier.take(pa.array(rng.choice(earlier.num_rows, n_replay, replace=False))) if n_replay else earlier
        q = pa.concat_arrays([pairs["question"].combine_chunks().take(new_ids), replay["question"].combine_chunks(),
                              pa.array(["Name a primary colour."] * n_new)])
        a = pa.concat_arrays([pairs["answer"].combine_chunks().take(new_ids), replay["answer"].combine_chunks(),
                              pa.array(["Red."] * n_new)])
        n = len(q)
        write_table(home, "training_examples", run, pa.table({
            "example_id": _ids("te_", rng, n),
            "source": pa.array(["new"] * n_new + ["replay"] * n_replay + ["anchor"] * n_new),
            "pair_id": pa.concat_arrays([pairs["pair_id"].combine_chunks().take(new_ids),
                                         replay["pair_id"].combine_chunks(), pa.nulls(n_new, pa.string())]),
            "question": q, "answer": a, "phrasing": pa.array(["original"] * n),
            "text": _join(pa.scalar("<|user|>"), q, pa.scalar("\n<|assistant|>"), a), "seed": pa.array([7] * n)}))
        all_pairs.append(pairs.select(["pair_id", "question", "answer"]))
        buf = pa.concat_tables(all_pairs[-3:])
        buf = buf.slice(max(0, buf.num_rows - BUFFER))
        write_table(home, "replay_buffer", run, pa.table({
            "pair_id": buf["pair_id"], "fact_key": pa.array(["name:user"] * buf.num_rows), "question": buf["question"],
            "answer": buf["answer"], "priority": rng.random(buf.num_rows), "replay_count": pa.array([0] * buf.num_rows),
            "added_run": pa.array([run] * buf.num_rows), "last_replayed_run": pa.nulls(buf.num_rows, pa.string()),
            "status": pa.array(["active"] * buf.num_rows), "status_reason": pa.nulls(buf.num_rows, pa.string())}))
        adapter = f"ad_{night:016x}"
        steps = n * EPOCHS
        write_table(home, "train_steps", run, pa.table({
            "adapter_id": pa.array([adapter] * steps), "step": pa.array(np.arange(1, steps + 1)),
            "epoch": pa.array(np.arange(steps) // n + 1), "loss": rng.random(steps), "objective": rng.random(steps),
            "tokens": rng.integers(20, 80, steps), "input_tokens": rng.integers(10, 40, steps),
            "seconds": rng.random(steps) * 0.1, "learning_rate": np.full(steps, 1e-4)}))
        approved = night % 10 != 9
        # One rollback: the night after the 60th starts a branch from two versions back.
        parent = fused[-3] if night == 61 else registry.current_name(home)
        write_table(home, "gate_results", run, pa.Table.from_pylist([{
            "adapter_id": adapter, "parent_version": parent, "approved": approved,
            "reasons": [] if approved else ["benchmark ratio 0.41 < 0.5"], "warnings": [], "benchmark_pre": 0.5,
            "benchmark_post": 0.48 if approved else 0.2, "benchmark_ratio": 0.96 if approved else 0.41,
            "ppl_pre": 10.0, "ppl_post": 10.5, "ppl_drift": 0.05, "recall_pre": 0.1, "recall_post": 0.8,
            "precision_post": 0.9, "new_facts": pairs.num_rows, "details_json": "{}"}]))
        if approved:
            v = registry.register(home, weights, run_id=run, parent=parent, adapter_id=adapter, base="bench")
            registry.set_current(home, v.name, run_id=run, action="promote", reason="bench")
            fused.append(v.name)
        record_run(home, run, "sleep", day, "completed", depth="light", finished_at=day + timedelta(hours=1))
        if night == 3:
            lookups["pair"] = pairs["pair_id"][5].as_py()
            lookups["exchange"] = pairs["exchange_id"][5].as_py()
            lookups["rare_word"] = pairs["value"][5].as_py()
        if (night + 1) % 10 == 0:
            say(f"  night {night + 1}/{nights}: {idx[-1] + 1:,} exchanges, versions up to {fused[-1]}")
    lookups.update(newest=fused[-1], middle=fused[len(fused) // 2], nights=nights)
    return lookups


def _time(home: Home, kind: str, fn, repeat: int) -> tuple[list[float], list[float], int]:
    """Seconds for each repeat (connect + query + fetch to Arrow), seconds of those in connect, result rows."""
    times, connects, rows = [], [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        con = connect(home, lineage.NEEDS[kind])
        connects.append(time.perf_counter() - start)
        result = fn(con)
        con.close()
        times.append(time.perf_counter() - start)
        rows = result.num_rows
    return times, connects, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exchanges", type=int, default=1_000_000)
    ap.add_argument("--versions", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="build the warehouse here and keep it (default: a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(args.keep or Path(tmp) / "home").ensure()
        start = time.perf_counter()
        print(f"building {args.exchanges:,} exchanges, {args.versions} model versions in {home.root} …")
        look = build(home, args.exchanges, args.versions)
        built = time.perf_counter() - start
        con = connect(home, lineage.TABLES)
        sizes = {t: con.sql(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in
                 ("messages", "exchanges", "pairs", "training_examples", "train_steps", "model_versions")}
        word = look["rare_word"].lower()
        common = con.sql("SELECT count(*) FROM pairs WHERE contains(lower(question), 'live')").fetchall()[0][0]
        con.close()
        print(f"build: {built:.1f} s for {look['nights']} nights; rows: "
              + ", ".join(f"{t} {n:,}" for t, n in sizes.items()))
        kinds = [
            ("pair", "pair (full id)", lambda c: lineage.pair_lineage(c, look["pair"])),
            ("pair", "pair (10-char prefix)", lambda c: lineage.pair_lineage(c, look["pair"][:10])),
            ("exchange", "exchange", lambda c: lineage.exchange_lineage(c, look["exchange"])),
            ("search", f"search '{word}'", lambda c: lineage.search_pairs(c, word)),
            ("search", f"search 'live {word}'", lambda c: lineage.search_pairs(c, f"live {word}")),
            ("model", f"model {look['middle']}", lambda c: lineage.model_lineage(c, look["middle"])),
            ("model", f"model {look['newest']} (whole ancestry)", lambda c: lineage.model_lineage(c, look["newest"])),
        ]
        print(f"{'query (fresh catalog connection each time)':44} {'rows':>9} {'min s':>7} {'median s':>9} "
              f"{'max s':>7} {'of which connect':>17}")
        worst = 0.0
        for kind, name, fn in kinds:
            times, connects, rows = _time(home, kind, fn, args.repeat)
            worst = max(worst, statistics.median(times))
            print(f"{name:44} {rows:>9,} {min(times):>7.3f} {statistics.median(times):>9.3f} {max(times):>7.3f} "
                  f"{statistics.median(connects):>17.3f}")
        print(f"({common:,} pairs mention 'live'; slowest median {worst:.3f} s; target < 1 s per query)")


if __name__ == "__main__":
    main()
