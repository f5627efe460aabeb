"""Forgetting on request: the purge's parts (masking, in-place rewrites, purged manifests), the firewall's
`forgotten` rejection, the CLI's errors, and the whole loop with real processes: a sleep, three forget requests
(a pair id, words, a whole session), one rebuild, a purge killed with SIGKILL at every step and run again, and a
byte scan of the home (Parquet decoded, the Prefect database included) for every forgotten word."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from small_sleep import write_small_config
from storage import registry
from storage.errors import IntegrityError, ModelError
from storage.forget import KILL_AT, MASK, Forgotten, Killer, Masker, _rewrite_part
from storage.home import Home
from storage.warehouse import read_table, table_files, write_table

REPO = Path(__file__).resolve().parents[1]
LABELLED = REPO / "tasks" / "data" / "eval_case"  # the labelled case


# --- the parts --------------------------------------------------------------------------------------------------

def test_the_masker_erases_whole_messages_and_values_as_words_but_not_short_or_numeric_values():
    mask = Masker(["My sister is Ingeborg.\nShe lives in Bergen."], ["Ingeborg", "Bergen", "6", "ox"])
    assert mask("My sister is Ingeborg.\nShe lives in Bergen.") == MASK
    # The JSON-escaped form (a log line, an artifact) is found too.
    assert MASK in mask(json.dumps({"content": "My sister is Ingeborg.\nShe lives in Bergen."}))
    assert mask("Your sister is ingeborg, in BERGEN.") == f"Your sister is {MASK}, in {MASK}."
    # Whole words only, and values too short or numeric are left: masking "6" would mangle every number.
    assert mask("Ingeborgs and Bergenline, 6 oxen, ratio 0.6") == "Ingeborgs and Bergenline, 6 oxen, ratio 0.6"
    assert mask.bytes("Ingeborg \u00e9".encode()) == f"{MASK} \u00e9".encode()
    assert not Masker([], ["6", ""])


def test_a_part_is_rewritten_in_place_without_forgotten_rows_and_removed_when_nothing_is_left(home):
    rows = [{"pair_id": f"pr_{i:016x}", "fact_key": "k", "question": "Q?", "answer": f"Your sister is Ingeborg {i}.",
             "priority": 1.0, "replay_count": 0, "added_run": "r1", "last_replayed_run": None, "status": "active",
             "status_reason": None} for i in range(3)]
    path = write_table(home, "replay_buffer", "r1", pa.Table.from_pylist(rows))
    gone = Forgotten(pairs=frozenset({rows[0]["pair_id"]}))
    removed, masked = _rewrite_part(path, "replay_buffer", gone, Masker([], ["Ingeborg"]), Killer(print))
    assert (removed, masked) == (1, 2)
    left = read_table(home, "replay_buffer")
    assert left["pair_id"].to_pylist() == [rows[1]["pair_id"], rows[2]["pair_id"]]
    assert left["answer"].to_pylist() == [f"Your sister is {MASK} 1.", f"Your sister is {MASK} 2."]
    assert table_files(home, "replay_buffer") == [path]  # the same part, no second copy beside it
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    assert _rewrite_part(path, "replay_buffer", gone, Masker([], ["Ingeborg"]), Killer(print)) == (0, 0)
    everything = Forgotten(pairs=frozenset(r["pair_id"] for r in rows))
    assert _rewrite_part(path, "replay_buffer", everything, Masker([], []), Killer(print)) == (2, 0)
    assert table_files(home, "replay_buffer") == []


def test_a_purged_version_cannot_be_verified_or_made_current(home, tmp_path):
    src = tmp_path / "model"
    src.mkdir()
    (src / "weights.bin").write_bytes(b"w")
    v0 = registry.register(home, src, run_id="r0", parent=None, adapter_id=None, base="b")
    v1 = registry.register(home, src, run_id="r1", parent=v0.name, adapter_id="ad_1", base="b")
    registry.set_current(home, v0.name, run_id="r1", action="promote", reason="test")
    manifest = json.loads((v1.path / registry.MANIFEST).read_text())
    manifest["purged"] = {"request_id": "fr_abc", "at": "2026-12-07T10:00:00+00:00"}
    (v1.path / registry.MANIFEST).write_text(json.dumps(manifest))
    (v1.path / "weights.bin").unlink()
    assert registry.get(home, "v0001").manifest.purged["request_id"] == "fr_abc"
    with pytest.raises(IntegrityError, match="purged by forget request fr_abc"):
        registry.verify_folder(v1.path)
    with pytest.raises(ModelError, match="v0001 was purged by forget request fr_abc"):
        registry.set_current(home, "v0001", run_id="r2", action="rollback", reason="test")
    assert registry.current_name(home) == "v0000"


def test_the_firewall_rejects_a_forgotten_pair_and_anything_found_in_forgotten_words():
    from tasks.firewall import FirewallConfig, apply_firewall

    def exchange(eid: str, text: str) -> dict:
        return {"exchange_id": eid, "user_text": text, "assistant_text": "Nice!"}

    def candidate(pid: str, eid: str, value: str) -> dict:
        return {"pair_id": pid, "exchange_id": eid, "source_exchange_ids": [eid], "method": "parse",
                "methods": ["parse"], "fact_type": "pet_name", "subject": "dog", "value": value,
                "question": "What is my dog called?", "answer": f"Your dog is called {value}.", "span_start": None,
                "span_end": None, "fact_key": f"pet_name:dog:{pid}", "superseded_by": None}

    exchanges = pa.Table.from_pylist([exchange("ex_a", "My dog is called Bramble."),
                                      exchange("ex_b", "My dog is called Pickle."),
                                      exchange("ex_c", "My dog is called Biscuit.")])
    scored = pa.table({"exchange_id": ["ex_a", "ex_b", "ex_c"], "combined": [1.0, 1.0, 1.0]})
    candidates = pa.Table.from_pylist([candidate("pr_a", "ex_a", "Bramble"), candidate("pr_b", "ex_b", "Pickle"),
                                       candidate("pr_c", "ex_c", "Biscuit")])
    gone = Forgotten(pairs=frozenset({"pr_a"}), exchanges=frozenset({"ex_b"}),
                     by_item={"pr_a": "fr_1", "ex_b": "fr_2"})
    pairs, rejections = apply_firewall(candidates, exchanges, scored, FirewallConfig(), gone)
    assert pairs["pair_id"].to_pylist() == ["pr_c"]
    got = {r["pair_id"]: (r["reason"], r["detail"]) for r in rejections.to_pylist()}
    assert got == {"pr_a": ("forgotten", "taken back by forget request fr_1"),
                   "pr_b": ("forgotten", "taken back by forget request fr_2")}
    # Without tombstones the same candidates are all accepted.
    assert apply_firewall(candidates, exchanges, scored, FirewallConfig())[0].num_rows == 3


def test_the_purge_kill_point_counts_steps(monkeypatch):
    monkeypatch.setenv(KILL_AT, "3")
    killer = Killer(print)
    killer.step("one")
    killer.step("two")
    assert killer.n == 2 and killer.at == 3  # the third step would SIGKILL this process


def _cli(home: Path, *args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLOWWAVE_"))}
    return subprocess.run([sys.executable, "-m", "flows.cli", "--home", str(home), *args], cwd=REPO,
                          capture_output=True, text=True, env={**clean, "OPENBLAS_NUM_THREADS": "1", **(env or {})},
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_forgetting_what_is_not_there_is_one_line_and_exit_1(tmp_path):
    home = tmp_path / "h"
    for args, said in [(["pr_0123"], "no pair matches 'pr_0123'"),
                       (["--search", "ingeborg"], "no pair matches those words"),
                       (["--session", "nosuch"], "no session matches 'nosuch'"),
                       (["--pending"], "no forget request is waiting for a rebuild")]:
        out = _cli(home, "forget", *args, "--yes")
        assert out.returncode == 1, (args, out.stderr)
        assert out.stderr.strip() == f"slowwave: error: {said}" or said in out.stderr.strip(), out.stderr
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


# --- the whole loop -----------------------------------------------------------------------------------------------

def _scan_words(home: Path, words: list[str]) -> list[str]:
    """Every file under `home` holding one of `words` (case-insensitive): its raw bytes, and for Parquet its
    decoded cells; the base model's vocabulary files are not a person's words and are skipped."""
    found = []
    needles = [w.casefold() for w in words]
    for path in sorted(home.rglob("*")):
        if not path.is_file() or path.name in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
            continue
        data = path.read_bytes().decode("utf-8", "replace").casefold()
        texts = [data]
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            texts.append(json.dumps(table.to_pylist(), default=str, ensure_ascii=False).casefold())
        for w in needles:
            if any(w in t for t in texts):
                found.append(f"{path.relative_to(home)}: {w}")
    return found


def _state(home: Path) -> dict:
    """What a purge leaves, comparable between two homes: files (but the run-named partitions, Prefect's
    database and times), each table's rows without run ids and times, manifests without the purge's time."""
    out: dict = {"files": set(), "manifests": {}, "tables": {}}
    for path in home.rglob("*"):
        rel = path.relative_to(home)
        if not path.is_file() or rel.parts[0] in ("prefect", "catalog.duckdb") or path.name.startswith("."):
            continue
        if rel.parts[0] == "warehouse":
            continue
        if path.name == registry.MANIFEST:
            m = json.loads(path.read_text())
            if m.get("purged"):
                m["purged"] = m["purged"]["request_id"]
            out["manifests"][str(rel)] = m
        else:
            out["files"].add((str(rel), hashlib.sha256(path.read_bytes()).hexdigest()))
    h = Home(home)
    from storage.schemas import SCHEMAS

    for table in SCHEMAS:
        t = read_table(h, table)
        keep = [c for c in t.column_names if c not in ("run_id", "at", "detail_json", "validated_at", "started_at",
                                                        "finished_at", "summary_json", "source_file")]
        out["tables"][table] = sorted(json.dumps(r, default=str, sort_keys=True) for r in t.select(keep).to_pylist())
    out["tables"]["forget_requests"] = sorted({json.dumps(r) for r in json.loads(
        json.dumps([{"id": r["request_id"], "status": r["status"]} for r in read_table(h, "forget_requests")
                    .to_pylist()]))})
    return out


def _pick_facts(home: Home) -> list[dict]:
    """Three accepted, trained facts whose value is a distinctive word said in one exchange only, each from a
    different session."""
    pairs = {p["pair_id"]: p for p in read_table(home, "pairs").to_pylist() if p["superseded_by"] is None}
    trained = set(read_table(home, "training_examples")["pair_id"].to_pylist())
    ex = read_table(home, "exchanges").to_pylist()
    session = {e["exchange_id"]: e["session_id"] for e in ex}
    picked: list[dict] = []
    for p in sorted(pairs.values(), key=lambda p: p["pair_id"]):
        v = (p["value"] or "").strip()
        if p["pair_id"] not in trained or p["method"] == "dream" or len(v) < 5 or not v.isalpha():
            continue
        said_in = {e["exchange_id"] for e in ex if v.casefold() in (e["user_text"] + e["assistant_text"]).casefold()}
        if said_in != {p["exchange_id"]} or session[p["exchange_id"]] in {f["session"] for f in picked}:
            continue
        picked.append({**p, "session": session[p["exchange_id"]]})
    return picked[:3]


# Three days of conversation, two facts a day, each value said once (the shared fixtures hold too few facts).
DAYS = {
    "20261201_090000": ["Hi there!", "My sister is named Ingeborg.", "I live in Galway these days."],
    "20261202_090000": ["Morning.", "My dog is called Bramble.", "I work as a luthier."],
    "20261203_090000": ["Hello again.", "My favourite drink is rooibos.", "I grew up in Tromsø."],
}


def _write_days(folder: Path) -> None:
    folder.mkdir(parents=True)
    for sid, said in DAYS.items():
        stamp = f"{sid[:4]}-{sid[4:6]}-{sid[6:8]}T09:00:0"
        lines = []
        for turn, text in enumerate(said):
            lines.append({"timestamp": f"{stamp}{turn}+00:00", "session_id": sid, "turn": turn, "role": "user",
                          "content": text})
            lines.append({"timestamp": f"{stamp}{turn}+00:00", "session_id": sid, "turn": turn, "role": "assistant",
                          "content": "Thanks for telling me!"})
        (folder / f"session_{sid}.jsonl").write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))


@pytest.mark.model
def test_forget_three_facts_rebuild_and_purge_killed_at_every_step(tmp_path, converted_model_dir):
    root = tmp_path / "home"
    home = Home(root).ensure()
    _write_days(root / "inbox" / "logs")
    write_small_config(home.config_file, tmp_path / "gate-inputs")
    # Three epochs over few anchors and little rehearsal: enough that v0001 really knows the facts (the small
    # configuration's one epoch recalls none of them, and forgetting nothing proves nothing). The gate's
    # regression limit is lifted: this is about forgetting on request, not about the gate.
    home.config_file.write_text(home.config_file.read_text().replace("light_epochs = 1", "light_epochs = 3").replace(
        "anchor_ratio = 0.25", "anchor_ratio = 0.25\nmin_anchors = 4\nrehearsal_ratio = 0.25\nmin_rehearsal = 2")
        .replace("smoke_questions = 2", "smoke_questions = 2\nmax_regression_share = 1.0"))
    _sleep_forget_rebuild_purge(tmp_path, home)


@pytest.mark.slow
@pytest.mark.model
def test_forget_on_the_labelled_case_with_the_shipped_defaults(tmp_path, converted_model_dir):
    """The same loop on the labelled case, with the shipped training and gate (one question wording per fact,
    as CI's labelled-case sleep): `make test-slow`."""
    root = tmp_path / "home"
    home = Home(root).ensure()
    shutil.copytree(LABELLED / "sessions", root / "inbox" / "case")
    # Every labelled night measured breaks 15-24% of the parent's right benchmark answers (docs/RESULTS.md), so the
    # default limit of 20% rejects about half of them, a rebuild included (measured: 21%): lifted to 25% here,
    # where what is tested is forgetting.
    home.config_file.write_text("[mixing]\nparaphrases = 1\n[gate]\nmax_regression_share = 0.25\n")
    _sleep_forget_rebuild_purge(tmp_path, home)


def _sleep_forget_rebuild_purge(tmp_path: Path, home: Home) -> None:
    root = home.root
    slept = _cli(root, "sleep", "--depth", "light")
    assert slept.returncode == 0, slept.stderr[-3000:]
    assert registry.current_name(home) == "v0001"
    facts = _pick_facts(home)
    assert len(facts) == 3, facts
    by_pair, by_words, by_session = facts
    session_pairs = {p["pair_id"] for p in read_table(home, "pairs").to_pylist()
                     if p["exchange_id"] in {e["exchange_id"] for e in read_table(home, "exchanges").to_pylist()
                                             if e["session_id"] == by_session["session"]}}

    # The forgotten facts' questions, in the trained wording and one never trained, asked of v0001 now and of the
    # rebuilt version later by `slowwave eval`, independently of the rebuild's own check.
    from tasks.vocabulary import held_out_question

    from tasks.text import fold

    # (A value its own question names, "Do I like cilantro?", cannot be looked for in the answer.)
    gone = [p for p in read_table(home, "pairs").to_pylist()
            if p["pair_id"] in {by_pair["pair_id"], by_words["pair_id"]} | session_pairs and p["value"]
            and fold(p["value"]) not in fold(p["question"])]
    probes = tmp_path / "forgotten.jsonl"
    probes.write_text("".join(json.dumps({"id": f"{p['pair_id']}-{i}", "kind": "recall", "question": q,
                                          "expected": [p["value"]], "forbidden": []}) + "\n"
                              for p in gone for i, q in enumerate(
                                  [p["question"], held_out_question(p["question"], p["fact_type"], p["subject"], 1)])))
    assert _cli(root, "eval", "--probes", str(probes)).returncode == 0
    before = [v for v in read_table(home, "eval_answers").to_pylist() if v["verdict"] == "correct"]
    assert before, "v0001 recalls none of the facts to forget: the test would prove nothing"

    # Every message the three selectors take back, whole (the purge must leave none of them anywhere).
    session_ex = {e["exchange_id"] for e in read_table(home, "exchanges").to_pylist()
                  if e["session_id"] == by_session["session"]}
    said = sorted({e["user_text"] for e in read_table(home, "exchanges").to_pylist()
                   if e["exchange_id"] in session_ex | {by_pair["exchange_id"], by_words["exchange_id"]}
                   and len(e["user_text"]) >= 12})

    # Without --yes (and no terminal to ask at) nothing is forgotten.
    out = _cli(root, "forget", by_pair["pair_id"][:10])
    assert out.returncode == 1 and "add --yes" in out.stderr, out.stderr
    assert read_table(home, "forgotten").num_rows == 0
    # The preview names the pair, its words' place, and the version that holds it.
    out = _cli(root, "forget", by_pair["pair_id"][:10], "--yes", "--no-rebuild", "--reason", "wrong")
    assert out.returncode == 0, out.stderr
    assert by_pair["pair_id"] in out.stdout and "held by model version(s): v0001 (current)" in out.stdout, out.stdout
    out = _cli(root, "forget", "--search", by_words["value"], "--yes", "--no-rebuild")
    assert out.returncode == 0 and by_words["pair_id"] in out.stdout, out.stdout + out.stderr
    out = _cli(root, "forget", "--session", by_session["session"], "--yes", "--no-rebuild")
    assert out.returncode == 0 and by_session["pair_id"] in out.stdout, out.stdout + out.stderr
    # Twice is a clear message and exit code.
    again = _cli(root, "forget", by_pair["pair_id"], "--yes")
    assert again.returncode == 1 and "already forgotten by request fr_" in again.stderr, again.stderr

    # One rebuild for the three requests: from v0000, promoted only if nothing forgotten is recalled.
    rebuilt = _cli(root, "forget", "--pending")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr[-3000:]
    current = registry.get(home, registry.current_name(home))
    assert current.name == "v0002" and current.manifest.parent == "v0000", rebuilt.stdout
    assert current.manifest.forget_request and current.manifest.forget_request.count("fr_") == 3
    states = {r["request_id"]: r for r in read_table(home, "forget_requests").to_pylist()}
    detail = json.loads(max(states.values(), key=lambda r: r["at"])["detail_json"])
    assert detail["status"] == "rebuilt" and detail["recalled"] == [], detail  # no forgotten word leaked back
    assert detail["recall_after"] >= detail["recall_before"] - 0.05, detail
    # Asked of the new current version and of the base it was rebuilt from by `slowwave eval`: no forgotten value
    # comes back that the base, which never learned it, does not give too (a prior, not a memory).
    asked = _cli(root, "eval", "--probes", str(probes), "--model", "v0000", "--model", "v0002")
    assert asked.returncode == 0, asked.stderr[-2000:]
    verdicts = read_table(home, "eval_answers").to_pylist()
    right = {v: {a["probe_id"] for a in verdicts if a["model_version"] == v and a["verdict"] == "correct"}
             for v in ("v0000", "v0002")}
    assert len([a for a in verdicts if a["model_version"] == "v0002"]) == 2 * len(gone)
    # Any value still given is one the rebuild inferred from kept facts (or the base gave too), reported by name.
    assert {a.rsplit("-", 1)[0] for a in right["v0002"] - right["v0000"]} <= set(detail["inferred"]), verdicts

    # The purge, SIGKILLed right after each of its steps (every run does one step and dies at its second), run
    # again until one finishes: the same state as one uninterrupted purge of a copy.
    reference = tmp_path / "reference"
    shutil.copytree(root, reference, copy_function=os.link, ignore=shutil.ignore_patterns("prefect"))
    shutil.copytree(root / "prefect", reference / "prefect")
    done = _cli(reference, "forget", "--pending", "--purge")
    assert done.returncode == 0, done.stderr[-3000:]
    kills = 0
    for _ in range(200):
        out = _cli(root, "forget", "--pending", "--purge", env={KILL_AT: "2"})
        if out.returncode == 0:
            break
        assert out.returncode == -signal.SIGKILL, out.stderr[-3000:]
        kills += 1
    assert kills >= 10, kills
    assert _state(root) == _state(reference)
    assert not list(root.rglob("*.tmp"))  # the temp parts killed writers left were cleaned up

    # Purged: v0001 keeps only its manifest, marked; the adapter that learned the facts too.
    v1 = root / "models" / "v0001"
    assert [p.name for p in v1.iterdir()] == [registry.MANIFEST]
    assert json.loads((v1 / registry.MANIFEST).read_text())["purged"]["request_id"].startswith("fr_")
    back = _cli(root, "rollback", "v0001")
    assert back.returncode == 1 and "v0001 was purged by forget request" in back.stderr, back.stderr
    assert registry.current_name(home) == "v0002"
    assert _cli(root, "models").returncode == 0
    # Lineage tells what happened instead of the words.
    line = _cli(root, "lineage", by_pair["pair_id"])
    assert line.returncode == 0 and "forgotten by request fr_" in line.stdout and "purged" in line.stdout, line
    # No forgotten word anywhere under the home: Parquet decoded, the Prefect database, logs, artifacts. Looked
    # for: the three chosen values (each said once) and every forgotten message whole (a whole session's other
    # values may be words the model's own anchors use too, "Oslo").
    assert _scan_words(root, [f["value"] for f in facts] + said) == []
    # Nothing else was lost: every pair that was not forgotten is still there.
    kept = {p["pair_id"] for p in read_table(home, "pairs").to_pylist()}
    assert kept and not kept & {p["pair_id"] for p in gone}
