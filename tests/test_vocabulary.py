"""The one fact vocabulary: what extraction emits, scoring keeps, mixing trains and the gate holds out agree."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from extraction_sentences import CASUAL_CASES, FAMILY_CASES, PARSE_CASES
from flows.config import Settings
from flows.gate_results import held_out_facts
from flows.preview import curate_case, curate_exchanges
from helpers_exchanges import exchanges_from_texts
from storage.home import Home
from tasks import firewall, probes
from tasks.extraction import keep_stated_facts
from tasks.mixing import MixingConfig, build_training_set
from tasks.parsing.extract import PARSE_FACT_TYPES
from tasks.patterns import emitted_fact_types
from tasks.replay import buffer_schema
from tasks.scoring import ScoringConfig, score_exchanges
from tasks.text import fold, normalize_value
from tasks.vocabulary import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
CASES = {"labelled": ROOT / "tasks" / "data" / "eval_case", "dev": ROOT / "bench" / "cases" / "dev",
         "unseen": ROOT / "bench" / "cases" / "unseen"}
# Sentences a pattern extracts a fact from that the hand-kept markers once scored 0.267-0.300 (dropped).
ONCE_DROPPED = ["I come from Bergen.", "I hail from Cork.", "I emigrated from Chile.", "I'm a nurse.", "I'm halal.",
                "My aunt Rosa is a dentist.", "My native language is Tamil."]
EVERYTHING = ScoringConfig(retain_threshold=0.0)


def _dropped_sources(exchanges: pa.Table) -> list[str]:
    """User texts of exchanges that give an accepted fact pair when all are extracted, but that stage 1 drops
    (its scores, then the exchanges the parse rules read a fact from kept after all, as a sleep scores).

    Statement memories are left out: they are kept only of what scoring already retained."""
    curated = curate_exchanges(exchanges, Settings().model_copy(update={"scoring": EVERYTHING}))
    scored = keep_stated_facts(exchanges, score_exchanges(exchanges, ScoringConfig()), Settings().extraction)
    kept = {e for e, r in zip(scored["exchange_id"].to_pylist(), scored["retained"].to_pylist()) if r}
    texts = dict(zip(exchanges["exchange_id"].to_pylist(), exchanges["user_text"].to_pylist()))
    pairs = curated["pairs"].to_pylist()
    return sorted({texts[p["exchange_id"]] for p in pairs
                   if p["exchange_id"] not in kept and p["fact_type"] != "statement"})


def test_every_emitted_fact_type_is_registered_with_enough_distinct_wordings():
    paraphrases = MixingConfig().paraphrases
    emitted = emitted_fact_types() | PARSE_FACT_TYPES
    assert len(emitted) >= 30 and emitted <= set(REGISTRY), sorted(emitted - set(REGISTRY))
    for ftype in emitted:
        for asked in (REGISTRY[ftype].wordings, REGISTRY[ftype].member_wordings or REGISTRY[ftype].wordings):
            wordings = {w.lower() for w in asked}
            assert len(wordings) >= paraphrases + 1, (ftype, sorted(wordings))


def test_scoring_keeps_every_literal_sentence_a_pattern_extracts_from():
    texts = [t for t, *_ in FAMILY_CASES] + [t for texts, _ in CASUAL_CASES for t in texts] + ONCE_DROPPED
    # One session per sentence: no sentence leans on another for 'she' or a name.
    dropped = [t for i, t in enumerate(texts)
               if _dropped_sources(exchanges_from_texts([(t, "ok")], session_id=f"s{i}"))]
    assert dropped == []


def test_scoring_keeps_every_literal_sentence_the_parse_rules_extract_from():
    # The last sentence of each case gives the fact; earlier ones only set the context.
    texts = sorted({texts[-1] for texts, _ in PARSE_CASES if len(texts) == 1})
    dropped = [t for i, t in enumerate(texts)
               if _dropped_sources(exchanges_from_texts([(t, "ok")], session_id=f"p{i}"))]
    assert dropped == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_scoring_keeps_every_case_sentence_a_pattern_extracts_from(name, tmp_path):
    exchanges = curate_case(Home(tmp_path), CASES[name], Settings())["exchanges"]
    assert _dropped_sources(exchanges) == []


def _chat(messages: list[dict]) -> str:
    return "".join(f"<{m['role']}>{m['content']}" for m in messages)


def test_the_gate_never_asks_a_question_the_night_trained_on(tmp_path):
    pairs = curate_case(Home(tmp_path), CASES["labelled"], Settings())["pairs"]
    cfg = MixingConfig()
    buffer = buffer_schema().empty_table()
    anchors = pa.table({"question": pa.array([], pa.string()), "answer": pa.array([], pa.string())})
    training = build_training_set(pairs, buffer, anchors, None, "light", _chat, cfg)
    trained = {q.strip().lower() for q in training["question"].to_pylist()}
    held_out = held_out_facts(pairs, cfg.paraphrases)
    assert len(held_out) >= 40
    asked_trained = [f["question"] for f in held_out if f["question"].strip().lower() in trained]
    assert asked_trained == []


@pytest.mark.parametrize("text, folded", [("Tromsø", "tromso"), ("O'Brien", "obrien"), ("O’Brien", "obrien"),
                                          ("ZÜRICH", "zurich"), ("Łódź", "lodz")])
def test_every_caller_folds_the_same_way(text, folded):
    assert fold(text) == probes.fold(text) == normalize_value(text) == " ".join(firewall.words(text)) == folded


def test_a_keyword_typed_without_its_accent_matches():
    assert probes.find_keyword("You live in Tromsø.", ["Tromso"]) == "Tromso"
    assert probes.find_keyword("You live in Tromso.", ["Tromsø"]) == "Tromsø"
    assert normalize_value("Tromso") == normalize_value("Tromsø")


def test_types_trained_in_their_own_words_still_have_a_held_out_question():
    from tasks.vocabulary import HELD_OUT_ONLY, REGISTRY, held_out_question, phrasings

    for name in sorted(HELD_OUT_ONLY):
        subject = "boat" if "{subject}" in REGISTRY[name].wordings[0] else "user"
        question = "Tell me about it?"
        assert phrasings(question, name, subject, 3) == [("original", question)], name
        held_out = held_out_question(question, name, subject, 3)
        assert held_out != question and held_out in {w.format(subject=subject) for w in REGISTRY[name].wordings}
