"""Lineage audit over a real warehouse: the bundled sample sessions run through the real stage code, four
nights, model versions v0000 -> v0001 -> v0002 -> v0003 and a sibling branch v0001 -> v0004.

The model itself is not loaded: training, gating and fusion are represented by the rows and folders their
stages write (train_steps, gate_results, registry versions), through the real writers and schemas.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from flows.lineage_report import jsonable, lineage_report
from storage import lineage, registry
from storage.catalog import connect
from storage.errors import LineageError
from storage.home import Home
from storage.warehouse import read_table, table_files, write_table
from tasks.firewall import MASK_MARK, masker

REPO = Path(__file__).resolve().parents[1]
SESSIONS = sorted((REPO / "tasks" / "data" / "eval_case" / "sessions").glob("*.jsonl"))
RUNS = ["r20260302T230000-aaaaa1", "r20260306T230000-aaaaa2", "r20260309T230000-aaaaa3",
        "r20260312T230000-aaaaa4"]
NIGHTS = [  # (run, session files, parent version, version it becomes)
    (RUNS[0], SESSIONS[0:2], "v0000", "v0001"),
    (RUNS[1], SESSIONS[2:3], "v0001", "v0002"),
    (RUNS[2], SESSIONS[3:4], "v0002", "v0003"),
    (RUNS[3], SESSIONS[4:5], "v0001", "v0004"),  # after a rollback to v0001: a sibling branch
]
MASK = masker()  # the firewall's default thresholds, as `slowwave lineage` uses a home's
ANCHORS = pa.table({"question": ["What is the capital of France?", "Name a primary colour."],
                    "answer": ["Paris.", "Red."]})


def _chat(messages: list[dict]) -> str:
    return "".join(f"<|{m['role']}|>{m['content']}\n" for m in messages)


def _latest_buffer(home: Home) -> pa.Table:
    files = table_files(home, "replay_buffer")
    if not files:
        return read_table(home, "replay_buffer")
    return read_table(home, "replay_buffer", run_ids=[max(f.parent.name.removeprefix("run_id=") for f in files)])


def _night(home: Home, run_id: str, files: list[Path], parent: str, weights: Path) -> None:
    """One light sleep through mixing with the real stage code, then its adapter, gate row and version."""
    from flows.ingest import ingest_paths, new_exchanges
    from storage.runs import record_run
    from tasks.extraction import ExtractionConfig, extract_template_pairs, merge_candidates
    from tasks.firewall import FirewallConfig, apply_firewall
    from tasks.ingest import IngestConfig
    from tasks.mixing import MixingConfig, build_training_set
    from tasks.replay import ReplayConfig, update_buffer
    from tasks.scoring import ScoringConfig, score_exchanges

    started = datetime.now(timezone.utc)
    ingest_paths(home, files, IngestConfig(), run_id=run_id)
    exchanges = new_exchanges(home)
    scored = score_exchanges(exchanges, ScoringConfig())
    write_table(home, "scored_exchanges", run_id, scored)
    keep = scored.filter(scored["retained"])["exchange_id"]
    retained = exchanges.filter(pc.is_in(exchanges["exchange_id"], value_set=keep))
    candidates = merge_candidates(extract_template_pairs(retained, ExtractionConfig()), retained)
    write_table(home, "candidate_pairs", run_id, candidates)
    pairs, rejections = apply_firewall(candidates, read_table(home, "exchanges"), read_table(home, "scored_exchanges"),
                                       FirewallConfig())
    write_table(home, "pairs", run_id, pairs)
    write_table(home, "rejections", run_id, rejections)
    previous = _latest_buffer(home)
    current = pairs.filter(pc.is_null(pairs["superseded_by"]))
    examples = build_training_set(current, previous, ANCHORS, None, "light", _chat, MixingConfig(), seed=7)
    replayed = examples.filter(pc.equal(examples["source"], "replay"))["pair_id"].to_pylist()
    write_table(home, "training_examples", run_id, examples)
    write_table(home, "replay_buffer", run_id, update_buffer(previous, current, replayed, run_id, ReplayConfig()))
    adapter = f"ad_{run_id[-6:]}"
    write_table(home, "train_steps", run_id, pa.Table.from_pylist([
        {"adapter_id": adapter, "step": s, "epoch": 1, "loss": 2.0 / s, "objective": 2.0 / s, "tokens": 40,
         "input_tokens": 30, "seconds": 0.1, "learning_rate": 1e-4} for s in (1, 2, 3)]))
    write_table(home, "gate_results", run_id, pa.Table.from_pylist([{
        "adapter_id": adapter, "parent_version": parent, "approved": True, "reasons": [], "warnings": [],
        "benchmark_pre": 0.5, "benchmark_post": 0.45, "benchmark_ratio": 0.9, "ppl_pre": 10.0, "ppl_post": 11.0,
        "ppl_drift": 0.1, "recall_pre": 0.0, "recall_post": 0.75, "precision_post": 1.0,
        "new_facts": current.num_rows, "details_json": "{}"}]))
    version = registry.register(home, weights, run_id=run_id, parent=parent, adapter_id=adapter, base="test-base")
    registry.set_current(home, version.name, run_id=run_id, action="promote", reason="test")
    record_run(home, run_id, "sleep", started, "completed", depth="light")


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Home:
    """The four-night warehouse (built once for this module; tests only read it, except the concurrent one)."""
    home = Home(tmp_path_factory.mktemp("lineage") / "home").ensure()
    weights = home.root.parent / "weights"
    weights.mkdir()
    (weights / "model.bin").write_bytes(b"not a real model")
    registry.register(home, weights, run_id="r20260301T000000-base00", parent=None, adapter_id=None, base="test-base")
    registry.set_current(home, "v0000", run_id="r20260301T000000-base00", action="register", reason="test")
    for run_id, files, parent, name in NIGHTS:
        if parent != registry.current_name(home):
            registry.set_current(home, parent, run_id=run_id, action="rollback", reason="test")
        _night(home, run_id, files, parent, weights)
        assert registry.current_name(home) == name
    return home


@pytest.fixture
def con(wh):
    c = connect(wh, lineage.TABLES)
    yield c
    c.close()


def _examples(home: Home) -> pa.Table:
    t = read_table(home, "training_examples")
    return t.filter(pc.invert(pc.is_null(t["pair_id"])))


def _pair_where(home: Home, needle: str) -> dict:
    rows = [p for p in read_table(home, "pairs").to_pylist() if needle in p["answer"]]
    assert len(rows) == 1, rows
    return rows[0]


def _versions_holding(home: Home, pair_id: str) -> list[str]:
    """Oracle in plain Python: versions whose own adapter or an ancestor's was trained on the pair."""
    runs = {r for r, p in zip(_examples(home)["run_id"].to_pylist(), _examples(home)["pair_id"].to_pylist())
            if p == pair_id}
    adapters = {f"ad_{r[-6:]}" for r in runs}
    out = []
    for v in registry.versions(home):
        name = v.name
        while name is not None:
            m = registry.get(home, name).manifest
            if m.adapter_id in adapters:
                out.append(v.name)
                break
            name = m.parent
    return out


def _shortest_unique_prefix(ids: list[str], full: str) -> str:
    for n in range(len("pr_") + 1, len(full) + 1):
        if sum(i.startswith(full[:n]) for i in ids) == 1:
            return full[:n]
    return full


def test_the_warehouse_has_what_the_tests_rely_on(wh):
    ex = _examples(wh)
    by_source = Counter(ex["source"].to_pylist())
    assert by_source["new"] > 20 and by_source["replay"] > 0
    assert Counter(read_table(wh, "rejections")["reason"].to_pylist())["secret"] >= 1
    assert [(v.name, v.manifest.parent) for v in registry.versions(wh)] == [
        ("v0000", None), ("v0001", "v0000"), ("v0002", "v0001"), ("v0003", "v0002"), ("v0004", "v0001")]


def test_a_pair_traces_to_its_file_line_words_scores_runs_and_versions(wh, con):
    fact = _pair_where(wh, "live in Tromsø")
    pid = fact["pair_id"]
    prefix = _shortest_unique_prefix(read_table(wh, "pairs")["pair_id"].to_pylist(), pid)
    row = lineage.pair_lineage(con, prefix, MASK).to_pylist()[0]
    assert row["pair_id"] == pid and row["status"] == "accepted"
    assert (row["question"], row["answer"], row["method"]) == (fact["question"], fact["answer"], fact["method"])
    assert row["grounding"] == fact["grounding"] and row["evidence"] == fact["evidence"] and row["evidence"]
    # The line a person typed, found here by reading the file itself.
    lines = SESSIONS[0].read_text(encoding="utf-8").splitlines()
    line_no = next(i for i, text in enumerate(lines, 1)
                   if "Tromsø" in text and json.loads(text)["role"] == "user")
    said = json.loads(lines[line_no - 1])
    [src] = row["sources"]
    assert (Path(src["source_file"]).name, src["line"]) == (SESSIONS[0].name, line_no)
    assert (src["session_id"], src["turn"], src["user_text"]) == (said["session_id"], said["turn"], said["content"])
    scores = {s["exchange_id"]: s for s in read_table(wh, "scored_exchanges").to_pylist()}[src["exchange_id"]]
    assert [src[k] for k in ("novelty", "importance", "utility", "combined")] == \
        [scores[k] for k in ("novelty", "importance", "utility", "combined")]
    # Every run that used it, with its example count, adapter and gate decision.
    ex = _examples(wh).filter(pc.equal(_examples(wh)["pair_id"], pid))
    counts = Counter(ex["run_id"].to_pylist())
    assert {t["run_id"]: t["examples"] for t in row["training"]} == dict(counts)
    assert RUNS[0] in counts and row["training"][0]["sources"] == ["new"]
    assert all(t["adapter_id"] == f"ad_{t['run_id'][-6:]}" and t["approved"] and t["benchmark_ratio"] == 0.9
               and t["run_status"] == "completed" for t in row["training"])
    assert [r["buffer_version"] for r in row["replay"]] == sorted(
        set(read_table(wh, "replay_buffer").filter(pc.equal(read_table(wh, "replay_buffer")["pair_id"], pid))
            ["run_id"].to_pylist()))
    versions = [v["version"] for v in row["versions"]]
    assert versions == _versions_holding(wh, pid) and versions[0] == "v0001" and "v0000" not in versions
    assert [v["current"] for v in row["versions"]].count(True) == ("v0004" in versions)


def test_a_later_nights_pair_is_in_its_branch_only(wh, con):
    third_night = read_table(wh, "pairs", run_ids=[RUNS[2]])["pair_id"].to_pylist()
    r4 = set(_examples(wh).filter(pc.equal(_examples(wh)["run_id"], RUNS[3]))["pair_id"].to_pylist())
    pid = next(p for p in third_night if p not in r4)
    versions = [v["version"] for v in lineage.pair_lineage(con, pid)["versions"][0].as_py()]
    assert versions == ["v0003"] == _versions_holding(wh, pid)


def test_model_lineage_walks_the_parent_chain_and_not_a_sibling_branch(wh, con):
    ex = _examples(wh)
    used = {r: Counter(p for rr, p in zip(ex["run_id"].to_pylist(), ex["pair_id"].to_pylist()) if rr == r)
            for r in RUNS}
    rows = lineage.model_lineage(con, "v0003")
    got = Counter({(r["run_id"], r["pair_id"]): r["examples"] for r in rows.to_pylist()})
    want = Counter({(r, p): n for r in RUNS[:3] for p, n in used[r].items()})
    assert got == want and len(got) > 10
    sibling_only = set(used[RUNS[3]]) - set().union(*(used[r] for r in RUNS[:3]))
    assert sibling_only and not sibling_only & set(rows["pair_id"].to_pylist())
    by_run = {r["run_id"]: r for r in rows.to_pylist()}
    assert {r: (by_run[r]["version"], by_run[r]["depth"]) for r in RUNS[:3]} == {
        RUNS[0]: ("v0001", 2), RUNS[1]: ("v0002", 1), RUNS[2]: ("v0003", 0)}
    for r in RUNS[:3]:  # counts per run
        assert (by_run[r]["run_pairs"], by_run[r]["run_examples"]) == (len(used[r]), sum(used[r].values()))
    summary = {s["run_id"]: s for s in lineage.run_counts(rows).to_pylist()}
    assert {r: (s["pairs"], s["examples"]) for r, s in summary.items()} == {
        r: (len(used[r]), sum(used[r].values())) for r in RUNS[:3]}
    assert summary[RUNS[1]]["replay_pairs"] > 0  # night 2 replayed night 1's facts
    sibling = lineage.model_lineage(con, "v0004")
    assert set(sibling["run_id"].to_pylist()) == {RUNS[0], RUNS[3]}
    assert set(sibling["pair_id"].to_pylist()) == set(used[RUNS[0]]) | set(used[RUNS[3]])
    assert lineage.model_lineage(con, "v0000").num_rows == 0


def test_every_format_round_trips(wh, tmp_path):
    con = connect(wh, lineage.TABLES)
    rows = lineage.model_lineage(con, "v0003")
    con.close()
    want = [jsonable(r) for r in rows.to_pylist()]
    assert json.loads(lineage_report(wh, model="v0003", fmt="json")) == want
    parsed = list(csv.DictReader(io.StringIO(lineage_report(wh, model="v0003", fmt="csv"))))
    assert len(parsed) == len(want)
    for got, exp in zip(parsed, want):
        assert json.loads(got["sources"]) == exp["sources"]
        for key in ("pair_id", "run_id", "version", "question", "answer"):
            assert got[key] == exp[key]
        assert (int(got["examples"]), int(got["depth"]), int(got["run_pairs"])) == \
            (exp["examples"], exp["depth"], exp["run_pairs"])
    out = tmp_path / "v0003.parquet"
    assert lineage_report(wh, model="v0003", fmt="parquet", out=str(out)) == f"wrote {rows.num_rows} row(s) to {out}\n"
    assert pq.read_table(out).equals(rows)
    # A pair's record: one JSON object; CSV and Parquet carry the nested sections too.
    pid = _pair_where(wh, "live in Tromsø")["pair_id"]
    record = json.loads(lineage_report(wh, pair=pid, fmt="json"))
    assert record["pair_id"] == pid and record["sources"][0]["user_text"].startswith("I live in Tromsø")
    [line] = list(csv.DictReader(io.StringIO(lineage_report(wh, pair=pid, fmt="csv"))))
    assert json.loads(line["training"]) == record["training"] and line["answer"] == record["answer"]
    lineage_report(wh, pair=pid, fmt="parquet", out=str(out))
    assert jsonable(pq.read_table(out).to_pylist()[0]) == record
    text = lineage_report(wh, pair=pid)
    assert f"pair {pid} (accepted)" in text and "Tromsø" in text and SESSIONS[0].name in text


def test_search_finds_pairs_by_words_in_any_case(wh, con):
    pid = _pair_where(wh, "live in Tromsø")["pair_id"]
    for words in ("TROMSØ", "tromsø where", "norway LIVE"):  # "Norway" is only in the user's own words
        hits = lineage.search_pairs(con, words)
        assert pid in hits["pair_id"].to_pylist(), words
    hits = lineage.search_pairs(con, "tromsø").to_pylist()
    hit = next(h for h in hits if h["pair_id"] == pid)
    assert hit["status"] == "accepted" and hit["training_runs"] >= 1 and "v0001" in hit["versions"]
    assert lineage.search_pairs(con, "tromsø zeppelin").num_rows == 0
    rejected = lineage.search_pairs(con, "bank password").to_pylist()
    assert [(h["status"], h["reason"]) for h in rejected] == [("rejected", "secret")]
    with pytest.raises(LineageError, match="at least one word"):
        lineage.search_pairs(con, "   ")


def test_exchange_lineage_and_a_secret_never_repeated(wh, con):
    fact = _pair_where(wh, "live in Tromsø")
    row = lineage.exchange_lineage(con, fact["exchange_id"][:9], MASK).to_pylist()[0]
    assert row["exchange_id"] == fact["exchange_id"] and row["retained"] is True
    assert row["user_text"].startswith("I live in Tromsø")
    assert [p["pair_id"] for p in row["pairs"] if p["status"] == "accepted"] == [fact["pair_id"]]
    hello = next(e for e in read_table(wh, "exchanges").to_pylist() if e["user_text"] == "hi there")
    quiet = lineage.exchange_lineage(con, hello["exchange_id"], MASK).to_pylist()[0]
    assert quiet["retained"] is False and quiet["pairs"] == []
    secret = next(r for r in read_table(wh, "rejections").to_pylist() if "bank password" in r["question"])
    typed = next(e for e in read_table(wh, "exchanges").to_pylist() if e["exchange_id"] == secret["exchange_id"])
    word = next(w for w in typed["user_text"].split() if w.startswith("Fjor")).strip(".,!")
    dumps = [lineage_report(wh, pair=secret["pair_id"], fmt="json"),
             lineage_report(wh, exchange=secret["exchange_id"], fmt="json"),
             lineage_report(wh, pair=secret["pair_id"])]
    assert all(word not in d for d in dumps)
    record = json.loads(dumps[0])
    assert (record["status"], record["rejection_reason"]) == ("rejected", "secret")
    # The message is shown with its secret masked, the rest of what the person said kept.
    assert record["sources"][0]["user_text"] == f"And my bank password is Fjor…{MASK_MARK} if the script needs it."
    assert record["training"] == []


def _secret_home(root: Path) -> tuple[Home, dict[str, str]]:
    """A home where a message holding a secret and a fact is a pair's source, as a firewall that looked only
    at the fact's sentence accepted it, plus one whose secret gave no candidate at all: exchange id by text."""
    from flows.ingest import ingest_paths
    from storage.schemas import without_run_id
    from tasks.extraction import ExtractionConfig, extract_template_pairs
    from tasks.ingest import IngestConfig
    from tasks.scoring import ScoringConfig, score_exchanges

    home = Home(root / "home").ensure()
    texts = ["I work as a pilot. pw: Tr0ub4dor&3", "here it is: Tr0ub4dor&3 for the router", "hi there"]
    lines = [{"timestamp": f"2026-05-01T10:0{t}:00+00:00", "session_id": "s", "turn": t, "role": role,
              "content": text if role == "user" else "Okay."} for t, text in enumerate(texts)
             for role in ("user", "assistant")]
    (root / "s.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    run = "r20260501T230000-secret"
    ingest_paths(home, [root / "s.jsonl"], IngestConfig(), run_id=run)
    exchanges = read_table(home, "exchanges")
    scored = score_exchanges(exchanges, ScoringConfig())
    write_table(home, "scored_exchanges", run, scored)
    [pilot] = extract_template_pairs(exchanges.slice(0, 1), ExtractionConfig()).to_pylist()
    accepted = dict(pilot, grounding=1.0, evidence=["pilot"], score=0.5)
    write_table(home, "pairs", run, pa.Table.from_pylist([accepted], schema=without_run_id("pairs")))
    return home, dict(zip(exchanges["user_text"].to_pylist(), exchanges["exchange_id"].to_pylist()))


def test_lineage_masks_every_secret_in_a_message_whatever_the_firewall_decided(tmp_path):
    from storage.schemas import without_run_id

    home, ids = _secret_home(tmp_path)
    pid = read_table(home, "pairs")["pair_id"][0].as_py()
    shown = [lineage_report(home, pair=pid), lineage_report(home, pair=pid, fmt="json"),
             lineage_report(home, exchange=ids["here it is: Tr0ub4dor&3 for the router"], fmt="json"),
             lineage_report(home, exchange=ids["I work as a pilot. pw: Tr0ub4dor&3"], fmt="csv")]
    assert all("Tr0ub4dor" not in text and MASK_MARK in text for text in shown)
    record = json.loads(shown[1])
    assert (record["status"], record["answer"]) == ("accepted", "You work as a pilot.")
    assert record["sources"][0]["user_text"] == f"I work as a pilot. pw: Tr…{MASK_MARK}"
    assert json.loads(shown[2])["user_text"] == f"here it is: Tr…{MASK_MARK} for the router"
    # A message the firewall rejected as a secret (with other settings) where the masker finds none: withheld.
    write_table(home, "rejections", "r20260502T230000-other", pa.Table.from_pylist([{
        "pair_id": "pr_0000000000000001", "exchange_id": ids["hi there"], "method": "model", "fact_type": "model",
        "question": "q", "answer": "a", "reason": "secret", "detail": "d", "grounding": None}],
        schema=without_run_id("rejections")))
    assert json.loads(lineage_report(home, exchange=ids["hi there"], fmt="json"))["user_text"] == lineage.WITHHELD
    # Without a masker the storage layer shows no words at all: it cannot tell a secret.
    con = connect(home, lineage.TABLES)
    try:
        assert lineage.pair_lineage(con, pid)["sources"][0].as_py()[0]["user_text"] == lineage.NO_MASK
        assert lineage.exchange_lineage(con, ids["here it is: Tr0ub4dor&3 for the router"],
                                        MASK)["user_text"][0].as_py() == f"here it is: Tr…{MASK_MARK} for the router"
    finally:
        con.close()


def test_unknown_and_ambiguous_ids_name_the_culprit(wh, con):
    with pytest.raises(LineageError, match="no pair matches 'pr_0000000000000zz'"):
        lineage.pair_lineage(con, "pr_0000000000000zz")
    with pytest.raises(LineageError, match=r"pair id prefix 'pr_' is ambiguous: it matches pr_\w+, "):
        lineage.pair_lineage(con, "pr_")
    with pytest.raises(LineageError, match="no model version 'v0042' in the warehouse; known: v0000, v0001"):
        lineage.model_lineage(con, "v0042")
    with pytest.raises(LineageError, match="no exchange matches 'ex_nope'"):
        lineage.exchange_lineage(con, "ex_nope")
    with pytest.raises(LineageError, match="--format parquet writes a file: add --out FILE"):
        lineage_report(wh, model="v0001", fmt="parquet")


def test_cli_errors_are_one_line_with_exit_code_1(wh):
    slowwave = Path(sys.executable).parent / "slowwave"
    for args, culprit in ((["lineage", "pr_feedfacefeedface"], "'pr_feedfacefeedface'"),
                          (["lineage", "--model", "v0099"], "'v0099'"),
                          (["lineage", "--model", "v0001", "--format", "parquet"], "--out FILE")):
        out = subprocess.run([str(slowwave), "--home", str(wh.root), *args], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 1, out
        assert out.stdout == "" and "Traceback" not in out.stderr
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("slowwave: error: ") and culprit in out.stderr


def test_cli_prints_a_readable_table(wh, capsys):
    from flows.cli import main

    assert main(["--home", str(wh.root), "lineage", "--model", "v0002"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("model v0002: ") and RUNS[0] in out and RUNS[1] in out and RUNS[2] not in out
    assert max(len(line) for line in out.splitlines()) < 400  # long text is cut, not wrapped


_WRITER = textwrap.dedent("""
    import sys, time
    import pyarrow as pa
    from storage.home import Home
    from storage.warehouse import write_table
    home = Home.resolve(sys.argv[1])
    for i in range(int(sys.argv[2])):
        write_table(home, "training_examples", f"r20260401T{i:06d}-writer", pa.Table.from_pylist([
            {"example_id": f"te_{i}_{j}", "source": "new", "pair_id": f"pr_w{i:06d}{j:06d}", "question": "q" * 200,
             "answer": "a", "phrasing": "original", "text": "t" * 500, "seed": 0} for j in range(1000)]))
        print(i, flush=True)
        time.sleep(0.05)
""")


def test_queries_work_while_another_process_adds_parts(wh, tmp_path):
    import shutil

    pid = _pair_where(wh, "live in Tromsø")["pair_id"]
    shutil.copytree(wh.root, tmp_path / "home")  # a copy: the other tests' oracles read every part of theirs
    wh = Home(tmp_path / "home")
    con = connect(wh, lineage.TABLES)
    before = lineage.pair_lineage(con, pid).to_pylist()[0]
    before_model = lineage.model_lineage(con, "v0003")
    con.close()
    files_before = len(table_files(wh, "training_examples"))
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(wh.root), "30"], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    queries = 0
    try:
        assert writer.stdout.readline().strip() == "0"  # the writer has started landing parts
        while writer.poll() is None:
            con = connect(wh, lineage.TABLES)
            row = lineage.pair_lineage(con, pid).to_pylist()[0]
            model = lineage.model_lineage(con, "v0003")
            con.close()
            assert row["sources"] == before["sources"] and row["training"] == before["training"]
            assert model.equals(before_model)
            queries += 1
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert len(table_files(wh, "training_examples")) == files_before + 30 and queries >= 2
    con = connect(wh, lineage.TABLES)
    hits = con.sql("SELECT count(*) FROM training_examples WHERE starts_with(pair_id, 'pr_w')").fetchall()
    con.close()
    assert hits == [(30 * 1000,)]


def test_a_run_still_writing_or_failed_is_marked_as_not_committed(wh, tmp_path):
    import shutil

    from storage.runs import record_run

    pid = _pair_where(wh, "live in Tromsø")["pair_id"]
    shutil.copytree(wh.root, tmp_path / "home")
    home = Home(tmp_path / "home")
    run_id = "r20260501T000000-night5"
    row = _examples(home).filter(pc.equal(_examples(home)["pair_id"], pid)).slice(0, 1).drop_columns(["run_id"])
    write_table(home, "training_examples", run_id, row)  # mid-run: examples written, no runs row yet

    def status() -> str:
        con = connect(home, lineage.TABLES)
        try:
            training = lineage.pair_lineage(con, pid).to_pylist()[0]["training"]
        finally:
            con.close()
        return {t["run_id"]: t["run_status"] for t in training}[run_id]

    assert status() == "running (not committed)"
    started = datetime.now(timezone.utc)
    record_run(home, run_id, "sleep", started, "failed", depth="light")
    assert status() == "failed"
    record_run(home, run_id, "sleep", started, "completed", depth="light")  # resumed and finished: latest wins
    assert status() == "completed"
