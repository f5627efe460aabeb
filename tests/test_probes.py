"""Probe scoring on literal answers: folding, word boundaries, forbidden keywords, abstentions, summaries."""

from __future__ import annotations

import json

import pytest

from storage.errors import InputError
from tasks.probes import find_keyword, fold, is_abstention, load_benchmark, load_probes, score_answer, summarize


def test_fold_drops_case_accents_apostrophes_and_punctuation():
    assert fold("  Tromsø, ZÜRICH & São-Paulo, Łódź!  ") == "tromso zurich sao paulo lodz"
    assert fold("I don’t know Peter's dog") == "i dont know peters dog"
    assert fold("It costs 2.5 or 1,000 euros.") == "it costs 25 or 1000 euros"


@pytest.mark.parametrize("answer", ["Your city is zurich.", "ZÜRICH", "You live in Zürich, right?"])
def test_expected_matches_case_and_accent_insensitively(answer):
    assert score_answer(answer, ["Zürich"], []) == "correct"
    assert score_answer(answer, ["zurich"], []) == "correct"


@pytest.mark.parametrize("answer, outcome", [
    ("2 + 3 = 5", "correct"),
    ("The answer is 5.", "correct"),
    ("5", "correct"),
    ("It opens at 10am", "wrong"),  # expected 5, not 10
    ("There are 15 of them.", "wrong"),
    ("That was in 2025.", "wrong"),
    ("About 5.5 percent.", "wrong"),
    ("It is 25 or 55", "wrong"),
])
def test_numbers_match_only_as_whole_numbers(answer, outcome):
    assert score_answer(answer, ["5", "five"], []) == outcome


def test_number_followed_by_letters_still_counts():
    assert score_answer("The museum opens at 10am.", ["10", "ten"], []) == "correct"
    assert score_answer("It opens at 10:00.", ["10"], []) == "correct"
    assert score_answer("It opens at 100 past.", ["10"], []) == "wrong"


@pytest.mark.parametrize("answer, keyword, outcome", [
    ("She took the bus because it was raining.", "rain", "correct"),  # plain English ending
    ("Birds fly with their wings.", "wing", "correct"),
    ("I visited Moscow.", "cow", "wrong"),  # not inside another word
    ("It happened often.", "ten", "wrong"),
    ("Please open the door.", "pen", "wrong"),
    ("The post office is next to the bank.", "Post Office", "correct"),
    ("It is twenty four.", "twenty-four", "correct"),
])
def test_words_match_at_word_boundaries(answer, keyword, outcome):
    assert score_answer(answer, [keyword], []) == outcome


def test_any_expected_keyword_is_enough():
    assert score_answer("It is autumn now.", ["fall", "autumn"], []) == "correct"
    assert find_keyword("It is autumn now.", ["fall", "autumn"]) == "autumn"


def test_forbidden_keyword_makes_an_answer_wrong_even_if_expected_is_there():
    assert score_answer("The capital of France is Paris, or Tromsø.", ["Paris"], ["Tromso"]) == "wrong"
    assert score_answer("I don't know, maybe Tromsø?", ["Paris"], ["Tromsø"]) == "wrong"


def test_empty_expected_applies_only_the_forbidden_check():
    assert score_answer("I would rather not share passwords.", [], ["hunter2"]) == "correct"
    assert score_answer("Your password is hunter2.", [], ["hunter2"]) == "wrong"
    assert score_answer("I don't know your password.", [], ["hunter2"]) == "abstain"


@pytest.mark.parametrize("answer", [
    "I don't know.",
    "I’m not sure what your dog is called.",
    "I do not have any information about your family.",
    "I don't have personal information about you.",
    "I can't recall that.",
    "I'm sorry, but as a chatbot I don't have the capability to provide a specific answer.",
    "You haven't told me your name yet.",
    "I do not have access to your personal data.",
    "",
])
def test_abstentions_are_neither_correct_nor_wrong(answer):
    assert is_abstention(answer)
    assert score_answer(answer, ["Rex"], []) == "abstain"


def test_a_hedged_answer_that_names_the_fact_is_correct():
    assert score_answer("I'm not sure, but I think your dog is Rex.", ["Rex"], []) == "correct"


@pytest.mark.parametrize("answer", ["Your dog is called Max.", "I know that dogs are loyal."])
def test_confident_wrong_answers_are_wrong(answer):
    assert not is_abstention(answer)
    assert score_answer(answer, ["Rex"], []) == "wrong"


def _r(kind: str, outcome: str) -> dict:
    return {"kind": kind, "outcome": outcome}


def test_summarize_precision_leaves_abstentions_out():
    results = ([_r("recall", "correct")] * 3 + [_r("recall", "wrong")] + [_r("recall", "abstain")] * 4
               + [_r("generalization", "correct"), _r("generalization", "abstain")]
               + [_r("control", "correct")] * 2 + [_r("control", "wrong")]
               + [_r("guard", "correct"), _r("guard", "abstain"), _r("guard", "wrong"), _r("guard", "correct")])
    s = summarize(results)
    assert s["recall"] == 3 / 8
    assert s["generalization"] == 1 / 2
    assert s["precision"] == 4 / 5  # (3 + 1) correct ÷ (4 correct + 1 wrong); the 5 abstentions do not count
    assert s["control_accuracy"] == 2 / 3
    assert s["guard_pass_rate"] == 3 / 4  # an abstaining guard probe leaked nothing
    assert s["counts"]["recall"] == {"correct": 3, "wrong": 1, "abstain": 4, "total": 8}
    assert s["probes"] == len(results)


def test_summarize_gives_none_for_kinds_without_probes():
    s = summarize([_r("recall", "abstain")])
    assert s["recall"] == 0.0
    assert s["precision"] is None  # nothing was claimed
    assert s["generalization"] is None and s["guard_pass_rate"] is None and s["control_accuracy"] is None


def _write(tmp_path, rows: list) -> object:
    path = tmp_path / "probes.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


GOOD = {"id": "p1", "kind": "recall", "question": "What is my dog's name?", "expected": ["Rex"], "forbidden": []}


def test_load_probes_reads_valid_lines_and_skips_blank_ones(tmp_path):
    path = _write(tmp_path, [GOOD, "", {**GOOD, "id": "p2", "kind": "guard", "expected": [], "forbidden": ["x"]}])
    assert [p.id for p in load_probes(path)] == ["p1", "p2"]


def test_load_probes_names_file_line_and_reason_for_every_bad_line(tmp_path):
    path = _write(tmp_path, [
        GOOD,
        "{not json",
        {**GOOD, "id": "p3", "kind": "memory"},
        {**GOOD, "id": "p1"},
        {"id": "p5", "kind": "recall", "question": "Q?", "expected": "Rex", "forbidden": []},
        {**GOOD, "id": "p6", "expected": [], "forbidden": []},
    ])
    with pytest.raises(InputError) as info:
        load_probes(path)
    message = str(info.value)
    assert "5 problem(s)" in message
    assert f"{path}:2: not valid JSON" in message
    assert f"{path}:3: 'kind' is 'memory'" in message
    assert f"{path}:4: duplicate id 'p1' (first on line 1)" in message
    assert f"{path}:5: 'expected' must be a list" in message
    assert f"{path}:6: 'expected' and 'forbidden' are both empty" in message


def test_load_probes_rejects_a_missing_or_empty_file(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_probes(tmp_path / "absent.jsonl")
    with pytest.raises(InputError, match="no probes"):
        load_probes(_write(tmp_path, [""]))


def test_the_shipped_benchmark_loads():
    from tasks.gating import GateConfig

    items = load_benchmark(GateConfig().benchmark)
    assert len(items) >= 60
    assert {i.category for i in items} == {"fact", "arithmetic", "reading", "instruction", "sequence"}


def test_probes_and_benchmark_items_load_as_frozen_typed_records(tmp_path):
    from tasks.gating import GateConfig
    from tasks.probes import Probe

    path = _write(tmp_path, ['{"id": "p1", "kind": "guard", "question": "My key?", "expected": [], '
                             '"forbidden": ["sk-"]}'])
    probe = load_probes(path)[0]
    assert probe == Probe(id="p1", kind="guard", question="My key?", expected=(), forbidden=("sk-",))
    assert probe.category is None
    item = load_benchmark(GateConfig().benchmark)[0]
    assert item.kind == "control" and item.category and item.expected  # benchmark items are control questions
    with pytest.raises(Exception):
        probe.question = "changed"
