"""Stage 2 extraction on literal rows: each template family, corrections, merging, model output parsing."""

from __future__ import annotations

import pyarrow as pa
import pytest

from extraction_sentences import CASUAL_CASES, FAMILY_CASES
from helpers_exchanges import exchanges_from_texts
from storage.ids import pair_id
from storage.schemas import SCHEMAS
from tasks.extraction import (ExtractionConfig, build_extraction_prompt, extract_model_pairs, extract_template_pairs,
                              merge_candidates, parse_qa_pairs)

CFG = ExtractionConfig(statements=False)  # statement memories: tests/test_statements.py


def _extract(*texts: str) -> list[dict]:
    return extract_template_pairs(exchanges_from_texts([(t, "ok") for t in texts]), CFG).to_pylist()


def _facts(*texts: str) -> set[tuple[str, str, str]]:
    return {(r["fact_type"], r["subject"], r["value"]) for r in _extract(*texts)}


@pytest.mark.parametrize("text, fact_type, subject, value, question, answer", FAMILY_CASES)
def test_each_template_family(text, fact_type, subject, value, question, answer):
    rows = [r for r in _extract(text) if r["fact_type"] == fact_type and r["value"] == value]
    assert len(rows) == 1, _extract(text)
    r = rows[0]
    assert (r["subject"], r["question"], r["answer"]) == (subject, question, answer)
    if r["span_start"] is not None:
        assert text[r["span_start"]:r["span_end"]] == value
    assert r["method"] == "template" and r["methods"] == ["template"]
    assert r["pair_id"] == pair_id(r["exchange_id"], "template", question, answer)


def test_fact_keys_separate_members_and_accumulate_multi_valued_facts():
    keys = {r["fact_key"] for r in _extract("My daughter Mia is 8.", "I love jazz and cross-country skiing.")}
    assert {"family_age:daughter:mia", "family_name:daughter:mia", "likes:user:jazz",
            "likes:user:cross country skiing"} <= keys


def test_questions_and_negations_give_no_facts():
    assert _extract("What's my son's name?", "Is my daughter Mia 8?", "I don't live in Oslo anymore.",
                    "I'm not allergic to anything.", "I love you", "Where do I live?") == []


def test_assistant_text_never_becomes_a_fact():
    table = exchanges_from_texts([("My husband's name is Jonas.",
                                   "Since your husband is a fisherman, you must love the sea. You live in Paris.")])
    rows = extract_template_pairs(table, CFG).to_pylist()
    assert [(r["fact_type"], r["value"]) for r in rows] == [("family_name", "Jonas")]


def test_pronoun_resolves_to_the_member_named_earlier_and_cites_that_exchange():
    table = exchanges_from_texts([("I have a son named Leo.", "Nice!"), ("He's 6 years old.", "Fun age.")])
    rows = extract_template_pairs(table, CFG).to_pylist()
    age = [r for r in rows if r["fact_type"] == "family_age"][0]
    ids = table.column("exchange_id").to_pylist()
    assert (age["answer"], age["exchange_id"], age["source_exchange_ids"]) == (
        "Your son Leo is 6 years old.", ids[1], [ids[1], ids[0]])


def test_correction_supersedes_the_older_value_with_a_link():
    table = exchanges_from_texts([("My daughter Mia is 8.", "Lovely."), ("hey", "hi"),
                                  ("Actually she turned 9 last week, not 8.", "Happy birthday to Mia!")])
    merged = merge_candidates(extract_template_pairs(table, CFG), table).to_pylist()
    ages = {r["value"]: r for r in merged if r["fact_key"] == "family_age:daughter:mia"}
    assert set(ages) == {"8", "9"}
    assert ages["8"]["superseded_by"] == ages["9"]["pair_id"] and ages["9"]["superseded_by"] is None


def test_correction_form_with_not_but():
    assert ("family_age", "daughter", "9") in _facts("My daughter Mia is 8.", "Correction: Mia is not 8 but 9.")


def test_same_fact_in_several_exchanges_merges_into_the_earliest():
    table = exchanges_from_texts([("My name is Ana.", "Hi Ana"), ("hello", "hi"), ("My name is Ana!", "I know")])
    reversed_candidates = extract_template_pairs(table, CFG).take([1, 0])
    merged = merge_candidates(reversed_candidates, table).to_pylist()
    ids = table.column("exchange_id").to_pylist()
    assert len(merged) == 1
    assert (merged[0]["exchange_id"], merged[0]["source_exchange_ids"]) == (ids[0], [ids[0], ids[2]])
    assert merged[0]["pair_id"] == pair_id(ids[0], "template", "What is my name?", "Your name is Ana.")


def test_same_fact_from_template_and_model_merges_with_both_methods():
    table = exchanges_from_texts([("My name is Ana.", "Hi Ana")])
    model = extract_model_pairs(table, lambda prompts: ["Q: What is your name?\nA: Your name is Ana."] * len(prompts),
                                CFG)
    template = extract_template_pairs(table, CFG)
    merged = merge_candidates(pa.concat_tables([model, template]), table).to_pylist()
    assert len(merged) == 1
    assert (merged[0]["method"], merged[0]["methods"], merged[0]["fact_key"]) == (
        "template", ["template", "model"], "name:user")


def test_merge_rejects_candidates_from_unknown_exchanges():
    table = exchanges_from_texts([("My name is Ana.", "Hi")])
    with pytest.raises(ValueError, match="not in the exchanges table"):
        merge_candidates(extract_template_pairs(table, CFG), exchanges_from_texts([("x", "y")]))


MESSY = """Sure! Here are the flashcards:

1. Q: What is your name?
   A: Your name is Ana.
2) **Question:** Where do you live?
**Answer:** You live in Porto.
- Q: What is your dog's name? A: Your dog's name is Biscuit.
* question 4: How old is your son?
answer 4 - Your son is 6.
I hope this helps!
Q: What do you do?
"""


def test_parse_qa_pairs_handles_numbering_bullets_variants_prose_and_a_cut_last_pair():
    assert parse_qa_pairs(MESSY, max_pairs=10) == [
        ("What is your name?", "Your name is Ana."),
        ("Where do you live?", "You live in Porto."),
        ("What is your dog's name?", "Your dog's name is Biscuit."),
        ("How old is your son?", "Your son is 6."),
    ]


def test_parse_qa_pairs_caps_and_ignores_answers_without_questions():
    assert parse_qa_pairs("A: orphan\nQ: one?\nA: 1\nQ: two?\nA: 2", max_pairs=1) == [("one?", "1")]
    assert parse_qa_pairs("NONE", max_pairs=5) == []


def test_model_extraction_builds_rows_and_caps_pairs_per_exchange():
    table = exchanges_from_texts([("I live in Porto and love jazz.", "Nice"), ("hey", "hi")])
    out = "\n".join(f"Q: Question {i}?\nA: Answer {i}." for i in range(10))
    seen: list[list[dict]] = []

    def generate(prompts):
        seen.extend(prompts)
        return [out, "NONE"]

    rows = extract_model_pairs(table, generate, ExtractionConfig(max_pairs_per_exchange=3)).to_pylist()
    assert [(r["question"], r["value"], r["fact_type"], r["subject"], r["span_start"]) for r in rows] == [
        (f"Question {i}?", f"Answer {i}.", "model", "user", None) for i in range(3)]
    assert rows[0]["fact_key"] == "model:question 0" and rows[0]["method"] == "model"
    assert len(seen) == 2 and "I live in Porto" in seen[0][-1]["content"]


def test_model_extraction_requires_one_output_per_prompt():
    table = exchanges_from_texts([("a", "b"), ("c", "d")])
    with pytest.raises(ValueError, match="2 prompts"):
        extract_model_pairs(table, lambda prompts: ["Q: x\nA: y"], CFG)


def test_extraction_prompt_is_about_the_user_only():
    msgs = build_extraction_prompt("I live in Porto.", "Since you are a fisherman...")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "USER" in msgs[0]["content"] and "Never use anything the assistant said" in msgs[0]["content"]
    assert "I live in Porto." in msgs[1]["content"]


def test_output_schema_is_candidate_pairs_without_run_id():
    schema = SCHEMAS["candidate_pairs"]
    table = extract_template_pairs(exchanges_from_texts([("My name is Ana.", "Hi")]), CFG)
    assert table.schema == schema.remove(schema.get_field_index("run_id"))


def test_questions_are_asked_as_the_user_would():
    from tasks.extraction import user_question

    assert user_question("What is your name?") == "What is my name?"
    assert user_question("Are you allergic to nuts?") == "Am I allergic to nuts?"
    assert user_question("How old is your son Emil?") == "How old is my son Emil?"
    assert user_question("Where were you born?") == "Where was I born?"
    assert user_question("What do you do every morning?") == "What do I do every morning?"


@pytest.mark.parametrize("texts, fact", CASUAL_CASES)
def test_casual_wordings(texts, fact):
    assert fact in _facts(*texts)


@pytest.mark.parametrize("texts, fact_type", [
    (("morning! I'm exhausted",), "name"),
    (("my birthday's on feb 9 so I've got a while before I'm 37",), "age"),
    (("my colleague has been living in Lyon",), "residence"),
    (("I'm a complete beginner.", "I'm an Italian.", "I'm a vegetarian."), "job"),
    (("my son is allergic to eggs",), "allergy"),
    (("he's been vegan for years",), "diet"),
    (("I'm not a big fan of crowds",), "likes"),
    (("I'll be in touch", "we'll be in a meeting until 3"), "trip"),
    (("my goal is to fix it",), "plan"),
    (("on saturday I go to a wedding",), "routine"),
    (("I'm getting into bed now", "I took up too much of your time"), "hobby"),
    (("I'm picking up Maya from school",), "language_learning"),
    (("I have a husband named Tariq.", "we adopted a rescue greyhound, his name's Comet"), "family_name"),
    (("My mom is a nurse.", "my colleague Ines lives in Lyon and she's a producer"), "family_job"),
    (("My mom is a nurse.", "my colleague Ines lives in Lyon and she's a producer"), "family_home"),
])
def test_casual_near_misses(texts, fact_type):
    wrong = {"family_name": "Comet", "family_job": "producer", "family_home": "Lyon"}.get(fact_type)
    assert not [f for f in _facts(*texts) if f[0] == fact_type and (wrong is None or f[2] == wrong)]


@pytest.mark.parametrize("text, fact_type, value", [
    ("I live in Denver. My.", "residence", "Denver"),
    ("I live in Madrid. Henceforth.", "residence", "Madrid"),
    ("I live in Rio. My mum too.", "residence", "Rio"),
    ("I work at Google. My boss is kind.", "workplace", "Google"),
    ("been working at Kettenwerk for 3 yrs", "workplace", "Kettenwerk"),
    ("I work for Bank of America.", "workplace", "Bank of America"),
    ("My parents live in Faro. Dad is retired.", "family_home", "Faro"),
    # A dot inside a name is kept: abbreviations, initials, 'St.Gallen'.
    ("I live in St. Louis.", "residence", "St. Louis"),
    ("I live in Washington D.C. now", "residence", "Washington D.C"),
    ("We moved to St.Gallen last year", "residence", "St.Gallen"),
    ("I work as a nurse at St. Olav Hospital.", "workplace", "St. Olav Hospital"),
])
def test_a_place_or_workplace_ends_where_its_sentence_ends(text, fact_type, value):
    assert [f[2] for f in _facts(text) if f[0] == fact_type] == [value]
