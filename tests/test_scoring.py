"""Stage 1 scoring on literal rows: exact scores per rule, column-wise == row-wise, the threshold."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pydantic import ValidationError

from storage.schemas import SCHEMAS
from tasks.scoring import ScoringConfig, score_exchanges, score_exchanges_rowwise

CFG = ScoringConfig()
LONG = ("I have been thinking about the trip a lot and I want to know what the best time of year would be to go "
        "there")  # 25 words


def _table(texts: list[str]) -> pa.Table:
    return pa.table({"exchange_id": [f"ex_{i}" for i in range(len(texts))], "user_text": texts})


def _score(text: str) -> dict:
    return score_exchanges(_table([text]), CFG).to_pylist()[0]


@pytest.mark.parametrize("text, novelty, importance, utility, rules", [
    ("hey", 0.3, 0.3, 0.2, ["utility:trivial"]),
    ("thanks", 0.3, 0.3, 0.2, ["utility:trivial"]),
    ("I live in Oslo", 0.3, 0.5, 0.2, ["importance:personal", "utility:trivial"]),
    (LONG, 0.5, 0.3, 0.3, ["novelty:long"]),
    ("What is the capital of Australia?", 0.4, 0.3, 0.3, ["novelty:question"]),
    ("error bug fix api config", 0.5, 0.3, 0.3, ["novelty:marker"]),  # 5 markers, capped at +0.2
    ("the api keeps failing", 0.35, 0.3, 0.2, ["novelty:marker", "utility:trivial"]),
    ("Actually, no, I meant the blue one", 0.3, 0.45, 0.3, ["importance:correction"]),
    ("I prefer tea over coffee", 0.3, 0.5, 0.3, ["importance:preference"]),
    ("wow!", 0.3, 0.35, 0.2, ["importance:emphatic", "utility:trivial"]),
    ("This is REALLY important!", 0.3, 0.4, 0.2, ["importance:emphatic", "utility:trivial"]),  # 3 kinds, max 2
    ("how to install the thing quickly", 0.3, 0.3, 0.5, ["utility:procedural"]),
    ("can you look at my project repo later", 0.3, 0.3, 0.45, ["utility:project"]),
    ("", 0.3, 0.3, 0.2, ["utility:trivial"]),
])
def test_each_rule_gives_its_exact_score(text, novelty, importance, utility, rules):
    row = _score(text)
    assert (row["novelty"], row["importance"], row["utility"]) == (novelty, importance, utility)
    assert row["combined"] == round(novelty * 100 + importance * 100 + utility * 100) / 300.0
    assert row["rules"] == rules


def test_short_personal_fact_is_retained_and_small_talk_is_not():
    out = {r["exchange_id"]: r for r in score_exchanges(_table(["I live in Oslo", "hey", "thanks", "ok cool"]),
                                                         CFG).to_pylist()}
    assert out["ex_0"]["retained"] and out["ex_0"]["combined"] == 100 / 300
    assert [out[f"ex_{i}"]["retained"] for i in (1, 2, 3)] == [False, False, False]


def test_casually_typed_facts_are_retained_and_capitalised_words_are_matched_whole():
    facts = ["hiya! I'm Dalia, quick question", "we're off to Istanbul in August", "im 36 lol",
             "my fave band is Tinariwen btw", "i honestly can't bear mushrooms", "my big sister lives in Montreal",
             "our dog is called Pepper", "I've been playing the oud for years"]
    chat = ["we're off to bed now", "it is called quits", "hiya! I'm tired", "I'll be in touch"]
    out = score_exchanges(_table(facts + chat), CFG).to_pylist()
    assert [r["retained"] for r in out] == [True] * len(facts) + [False] * len(chat)
    assert all("importance:personal" in r["rules"] or "importance:preference" in r["rules"] for r in out[:len(facts)])


def test_scores_are_clipped_to_one():
    cfg = ScoringConfig(importance_baseline=0.9)
    row = score_exchanges(_table(["Actually I prefer it, my wife says so!"]), cfg).to_pylist()[0]
    assert row["importance"] == 1.0


def test_output_has_the_schema_without_run_id():
    schema = SCHEMAS["scored_exchanges"]
    assert score_exchanges(_table(["hi"]), CFG).schema == schema.remove(schema.get_field_index("run_id"))


VARIED = [
    "hey", "", "   ", "I live in Tromsø 🙂", "My daughter Mia is 8 years old!", LONG, LONG + "?",
    "NEVER EVER do that AGAIN", "ÉCOLE über straße — naïve café", "no, that's wrong", "No,thanks", "noble, kind",
    "I likely left", "I like it", "tabs\tand\nnewlines  and   spaces here", "error errors ERROR Bug bugs",
    "first install python then configure the server", "i'm allergic to peanuts", "She's 9 now", "call me Ana",
    "Just coming to chat. This is Vladimir", "this is great", "What's my son's name?", "working on my thesis repo",
    "Ｆｕｌｌｗｉｄｔｈ ＡＰＩ", "a\u00a0b\u00a0c\u00a0d\u00a0e", "x " * 30, "!!!???", "I'm 34.", "version 2.0 fixes a bug",
]


def test_column_wise_equals_row_wise_on_varied_rows():
    table = _table(VARIED)
    assert score_exchanges(table, CFG).equals(score_exchanges_rowwise(table, CFG))


def test_column_wise_equals_row_wise_with_another_config():
    cfg = ScoringConfig(long_words=3, trivial_words=2, caps_min_letters=2, marker_cap=0.1, retain_threshold=0.4)
    table = _table(VARIED)
    assert score_exchanges(table, cfg).equals(score_exchanges_rowwise(table, cfg))


def test_weights_must_be_hundredths():
    with pytest.raises(ValidationError, match="0.01"):
        ScoringConfig(long_bonus=0.123)


def test_config_is_frozen_and_strict():
    with pytest.raises(ValidationError):
        ScoringConfig(unknown=1)
    with pytest.raises(ValidationError):
        CFG.long_bonus = 0.5  # type: ignore[misc]


def _random_messages(n: int, seed: int) -> list[str]:
    """n seeded messages built from marker words, fact phrases, filler, punctuation, capitals and odd spacing."""
    import random

    rng = random.Random(seed)
    pieces = ["error", "errors", "Bug", "bugs", "fix", "fixes", "implementation", "API", "config", "configured",
              "because", "Python", "docker", "query", "model", "actually", "no,", "I meant", "wrong", "i prefer",
              "I like", "I love", "i hate", "my favourite", "I live in", "my name is", "call me", "my daughter",
              "our dog", "she's 9", "I'm a nurse", "really", "always", "NEVER", "URGENT", "OK", "how to", "How do I",
              "steps", "first", "then", "install", "set up", "my project", "repo", "working on", "the codebase",
              "hey", "thanks", "the", "a", "and", "to", "Oslo", "Tromsø", "café", "🙂", "x", "it", "is", "was",
              "?", "!", "!!", "...", ",", "hello", "world", "very", "This is Ana", "likely", "noble"]
    spaces = [" "] * 12 + ["  ", "\t", "\n", " \n ", "\u00a0"]
    out = []
    for _ in range(n):
        k = rng.choice([0, 1, 1, 2, 3, 4, 5, 6, 8, 12, 20, 21, 22, 30])
        text = "".join(rng.choice(pieces) + rng.choice(spaces) for _ in range(k))
        out.append(rng.choice(["", " ", "\t"]) * (rng.random() < 0.1) + text.rstrip(" ") * (rng.random() < 0.97))
    return out


@pytest.mark.parametrize("cfg", [CFG, ScoringConfig(long_words=3, trivial_words=2, caps_min_letters=2,
                                                    marker_cap=0.1, retain_threshold=0.4)])
def test_column_wise_equals_row_wise_on_thousands_of_random_rows(cfg):
    # The column-wise path searches unions of the marker lists first, takes word counts, '?' and '!' from
    # the column's bytes and a row's two domain matches from one extraction: none of that may change a score.
    table = _table(_random_messages(4000, seed=11) + VARIED)
    expected = score_exchanges_rowwise(table, cfg)
    assert score_exchanges(table, cfg).equals(expected)
    # Several chunks, a slice that does not start at the buffer's first byte, large_string.
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=333))
    assert score_exchanges(chunked, cfg).equals(expected)
    assert score_exchanges(table.slice(17, 1500), cfg).equals(expected.slice(17, 1500))
    large = table.cast(pa.schema([("exchange_id", pa.string()), ("user_text", pa.large_string())]))
    assert score_exchanges(large, cfg).equals(expected)


def test_domain_markers_counted_distinct_for_one_two_and_many_matches():
    texts = ["fix this error", "error ERROR", "Bug bug", "bugs bug", "error bug fix api", "api api api", "python"]
    rows = score_exchanges(_table(texts), CFG).to_pylist()
    assert [r["novelty"] for r in rows] == [0.4, 0.35, 0.35, 0.4, 0.5, 0.35, 0.35]
    assert score_exchanges(_table(texts), CFG).equals(score_exchanges_rowwise(_table(texts), CFG))


def test_empty_input_and_empty_texts():
    assert score_exchanges(_table([]), CFG).num_rows == 0
    assert score_exchanges(_table([]), CFG).schema == score_exchanges_rowwise(_table([]), CFG).schema
    table = _table(["", "", "hey"])
    assert score_exchanges(table, CFG).equals(score_exchanges_rowwise(table, CFG))
