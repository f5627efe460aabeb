"""The shipped anchor prompts, benchmark and general text parse, are big enough and do not overlap."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import tasks

DATA = Path(tasks.__file__).parent / "data"
ANCHOR_CATEGORIES = {"fact", "arithmetic", "instruction", "chitchat", "reading"}
BENCH_CATEGORIES = {"fact", "arithmetic", "reading", "instruction", "sequence"}


def read_jsonl(name: str) -> list[dict]:
    rows = []
    for n, line in enumerate((DATA / name).read_text(encoding="utf-8").splitlines(), 1):
        assert line.strip(), f"{name}:{n} is blank"
        rows.append(json.loads(line))
    return rows


def normalise(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


@pytest.fixture(scope="module")
def anchors() -> list[dict]:
    return read_jsonl("anchor_prompts.jsonl")


@pytest.fixture(scope="module")
def benchmark() -> list[dict]:
    return read_jsonl("benchmark.jsonl")


def test_anchor_prompts_are_well_formed(anchors):
    assert len(anchors) >= 120
    for row in anchors:
        assert set(row) - {"expected"} == {"id", "category", "prompt"}, row
        assert row["category"] in ANCHOR_CATEGORIES, row
        # What is right is stated for every question with one right answer (mixing.anchor_answers = "right").
        if row["category"] in ("fact", "arithmetic", "reading"):
            assert row["expected"] and all(isinstance(k, str) and k.strip() for k in row["expected"]), row
        else:
            assert "expected" not in row, row
        assert isinstance(row["prompt"], str) and 0 < len(row["prompt"]) <= 200, row
    assert len({r["id"] for r in anchors}) == len(anchors)
    assert len({normalise(r["prompt"]) for r in anchors}) == len(anchors)
    assert {r["category"] for r in anchors} == ANCHOR_CATEGORIES


def test_benchmark_is_well_formed(benchmark):
    assert len(benchmark) >= 200  # enough answers to lose that one broken answer is seen (gate.max_regressions)
    for row in benchmark:
        assert set(row) == {"id", "category", "question", "expected", "forbidden"}, row
        assert row["category"] in BENCH_CATEGORIES, row
        assert isinstance(row["question"], str) and row["question"].strip(), row
        assert row["expected"] and all(isinstance(k, str) and k.strip() for k in row["expected"]), row
        assert isinstance(row["forbidden"], list) and all(isinstance(k, str) for k in row["forbidden"]), row
    assert len({r["id"] for r in benchmark}) == len(benchmark)
    assert len({normalise(r["question"]) for r in benchmark}) == len(benchmark)
    assert {r["category"] for r in benchmark} == BENCH_CATEGORIES


def test_reading_items_carry_a_passage_before_the_question(benchmark, anchors):
    texts = [r["question"] for r in benchmark if r["category"] == "reading"]
    texts += [r["prompt"] for r in anchors if r["category"] == "reading"]
    assert len(texts) >= 20
    for text in texts:
        sentences = re.findall(r"[^.!?]+[.!?]", text)
        assert len(sentences) >= 3 and text.endswith("?"), text  # two or more of passage, then the question


def test_no_anchor_prompt_appears_in_the_benchmark(anchors, benchmark):
    prompts = {normalise(r["prompt"]) for r in anchors}
    questions = {normalise(r["question"]) for r in benchmark}
    assert not prompts & questions
    # Nor inside one another (a reading passage reusing an anchor question, say).
    for q in questions:
        assert not [p for p in prompts if p in q or q in p], q


def test_no_evaluation_probe_is_a_benchmark_question(benchmark):
    # The gate rejects on broken benchmark answers: sharing a probe would let it select for the evaluation's.
    root = DATA.parents[1]
    probes = [DATA / "eval_case" / "probes.jsonl", *sorted((root / "bench" / "cases").glob("*/probes.jsonl"))]
    assert len(probes) >= 3
    asked = {normalise(json.loads(line)["question"]) for p in probes for line in p.read_text().splitlines() if line}
    shared = asked & {normalise(r["question"]) for r in benchmark}
    # Only two of the first 62 items (written before the grown part, which leaves every probe out) are shared.
    assert shared <= {normalise(r["question"]) for r in benchmark[:62]} and len(shared) <= 2, sorted(shared)


def test_general_text_has_at_least_5000_tokens():
    text = (DATA / "general_text.txt").read_text(encoding="utf-8")
    # Words and punctuation marks: a lower bound for any BPE tokenizer's count.
    assert len(re.findall(r"\w+|[^\w\s]", text)) >= 5000
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    assert len(paragraphs) >= 20
    assert len({p.strip() for p in paragraphs}) == len(paragraphs)  # no padding by repetition


def test_readme_describes_every_shipped_file():
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for name in ("anchor_prompts.jsonl", "benchmark.jsonl", "general_text.txt"):
        assert name in readme
    assert "MIT" in readme


def test_shipped_rehearsal_prose_is_the_models_own_and_not_the_gate_text():
    import pyarrow.parquet as pq

    from tasks.data_files import DATA_DIR
    from tasks.rehearsal import readable

    files = sorted((DATA_DIR / "anchor_cache").glob("reh_*.parquet"))
    assert files, "the default model's rehearsal samples are shipped"
    texts = pq.read_table(files[0]).column("text").to_pylist()
    assert len(texts) >= 64 and all(readable(t) for t in texts)
    general = (DATA_DIR / "general_text.txt").read_text()
    # No 8-word run of the gate's held-out text appears in what the model rehearses.
    grams = {" ".join(w[i:i + 8]) for w in [general.split()] for i in range(len(w) - 7)}
    assert not any(" ".join(t.split()[i:i + 8]) in grams for t in texts for i in range(len(t.split()) - 7))
