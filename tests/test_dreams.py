"""Dreams: cross-topic questions sampled from the real default model, kept only when the firewall grounds them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from helpers_exchanges import EVAL_CASE, read_exchanges
from tasks.dreams import DreamConfig, dream_answer, dream_candidates, dream_chat, dream_question, make_dreams, \
    pick_combinations
from tasks.extraction import ExtractionConfig, extract_template_pairs, merge_candidates
from tasks.firewall import FirewallConfig, apply_firewall
from tasks.scoring import ScoringConfig, score_exchanges


@pytest.fixture(scope="module")
def curated():
    """The labelled case's exchanges, scores and accepted pairs, made by the real stages 1-3."""
    exchanges = read_exchanges(sorted((EVAL_CASE / "sessions").glob("*.jsonl")))
    scored = score_exchanges(exchanges, ScoringConfig())
    retained = exchanges.filter(scored["retained"])
    candidates = merge_candidates(extract_template_pairs(retained, ExtractionConfig()), retained)
    pairs, _ = apply_firewall(candidates, exchanges, scored, FirewallConfig())
    current = pairs.filter(pa.compute.is_null(pairs["superseded_by"]))
    return exchanges, scored, current


def test_combinations_cross_topics_where_they_can(curated):
    _, _, pairs = curated
    types = pairs["fact_type"].to_pylist()
    combos = pick_combinations(pairs, 50, np.random.default_rng(3))
    assert len(combos) == 50
    assert all(i != j and types[i] != types[j] for i, j in combos)
    assert combos == pick_combinations(pairs, 50, np.random.default_rng(3))


def test_dream_chat_shows_one_worked_example_then_the_two_facts(curated):
    _, _, pairs = curated
    a, b = pairs.slice(0, 2).to_pylist()
    chat = dream_chat(a, b)
    assert [m["role"] for m in chat] == ["user", "assistant", "user"]
    assert chat[1]["content"] and "\n" not in chat[1]["content"]  # the worked answer: one sentence
    assert a["answer"] in chat[2]["content"] and b["answer"] in chat[2]["content"]
    assert chat[2]["content"].endswith(dream_question(a, b))


def test_dream_question_joins_the_two_questions_and_the_answer_is_the_first_line():
    a = {"question": "Where do I live?"}
    b = {"question": "What is my son's name?"}
    assert dream_question(a, b) == "Where do I live, and what is my son's name?"
    assert dream_question(b, a) == "What is my son's name, and where do I live?"
    assert dream_answer("\nA: You live in Oslo with Emil.\nQ: more") == "You live in Oslo with Emil."


def test_an_unfaithful_dream_is_rejected_and_a_faithful_one_cites_both_sources(curated):
    exchanges, scored, pairs = curated
    rows = pairs.to_pylist()
    i, j = pick_combinations(pairs, 1, np.random.default_rng(0))[0]
    faithful = f"{rows[i]['answer']} {rows[j]['answer']}"
    invented = "Your favourite planet is Neptune, and you sail submarines."
    cands, unfaithful_ = dream_candidates(pairs, [(i, j), (j, i)], [faithful, invented])
    assert unfaithful_.num_rows == 1 and unfaithful_["reason"][0].as_py() == "unfaithful-dream"
    assert "leaves out" in unfaithful_["detail"][0].as_py()
    ok, bad = apply_firewall(cands, exchanges, scored, FirewallConfig())
    assert ok.num_rows == 1 and bad.num_rows == 0
    assert set(ok["source_exchange_ids"][0].as_py()) == {*rows[i]["source_exchange_ids"],
                                                         *rows[j]["source_exchange_ids"]}


@pytest.mark.model
def test_deep_sleep_dreams_ten_grounded_pairs_with_the_default_model(curated, converted_model_dir):
    from tasks.model.answering import sample_answers
    from tasks.model.loading import load_model

    exchanges, scored, pairs = curated
    model, tok = load_model(converted_model_dir, verify=False)
    cfg = DreamConfig()
    texts: list[str] = []

    def sample(chats, seed):
        out = sample_answers(model, tok, chats, temperature=cfg.temperature, seed=seed, max_tokens=cfg.max_tokens,
                             min_p=cfg.min_p)
        texts.extend(out)
        return out

    dreams, rejected, tried = make_dreams(pairs, exchanges, scored, sample, cfg, FirewallConfig(), seed=0)
    assert dreams.num_rows == cfg.count == 10
    assert tried <= cfg.prompts_per_round * cfg.max_rounds
    assert len(set(dreams["pair_id"].to_pylist())) == 10
    assert len(texts) == tried
    known_sources = {s for ids in pairs["source_exchange_ids"].to_pylist() for s in ids}
    for d in dreams.to_pylist():
        assert d["method"] == "dream" and d["question"] and d["answer"]
        assert d["grounding"] >= FirewallConfig().min_grounding
        assert len(d["source_exchange_ids"]) >= 2 and set(d["source_exchange_ids"]) <= known_sources
    # Every rejected dream says why, and none of them became a pair.
    assert set(rejected["pair_id"].to_pylist()).isdisjoint(dreams["pair_id"].to_pylist())
    assert all(rejected["reason"].to_pylist())


FACT_A = {"question": "Where do I live?", "answer": "You live in Tromsø.", "value": "Tromsø"}
FACT_B = {"question": "What is my son's name?", "answer": "Your son's name is Emil.", "value": "Emil"}
STOP = {"you", "your", "i", "my", "the", "in", "is", "a", "with", "name", "s"}


@pytest.mark.parametrize("question, answer, why", [
    ("Where does my son live?", "Your son Emil lives with you in Tromsø.", None),
    ("Where does my son live?", "Your son Emil lives in Berlin.", "Tromsø"),  # leaves out a fact
    ("Who lives in Tromsø?", "You and your son Emil live in Tromsø, with Pixel.", "Pixel"),  # invents a name
    ("Where do Emil and I live?", "You and Emil live in Tromsø since 2019.", "2019"),  # invents a number
    ("Does Emil live in Tromsø?", "Does Emil live in Tromsø?", "repeats"),
    ("Where do I live, and what is my son's name?", "You live in Tromsø, and your son's name is Emil.", None),
])
def test_a_dream_must_keep_to_its_two_facts(question, answer, why):
    from tasks.dreams import unfaithful

    got = unfaithful(question, answer, FACT_A, FACT_B, STOP)
    assert (got is None) if why is None else (why in got)
