"""Replay mixing: phrasings, exact replay share, anchors, dreams, no duplicates, seeded reproducibility."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pydantic import ValidationError

from storage.ids import content_id
from storage.schemas import SCHEMAS
from tasks.mixing import WORDINGS, MixingConfig, build_training_set, mix_summary, paraphrase_questions
from tasks.replay import buffer_schema
from tasks.vocabulary import canonical

PAIRS = SCHEMAS["pairs"].remove(SCHEMAS["pairs"].get_field_index("run_id"))
EXAMPLES = SCHEMAS["training_examples"].remove(SCHEMAS["training_examples"].get_field_index("run_id"))

FACTS = [  # fact_type, subject, question, answer
    ("name", "user", "What is my name?", "Your name is Vladimir."),
    ("moved_from", "user", "Where did I move from?", "You moved here from Lisbon."),
    ("family_name", "son", "What is my son's name?", "Your son is called Andre."),
    ("family_age", "son", "How old is my son?", "Your son is 6 years old."),
    ("pet_name", "dog", "What is my dog's name?", "Your dog is called Biscuit."),
    ("job", "user", "What is my job?", "You are a carpenter."),
    ("allergy", "user", "What am I allergic to?", "You are allergic to peanuts."),
    ("favourite", "colour", "What is my favourite colour?", "Your favourite colour is green."),
    ("language_learning", "user", "What language am I learning?", "You are learning Japanese."),
    ("birthday", "user", "When is my birthday?", "Your birthday is on 3 May."),
    ("hobby", "user", "What is my hobby?", "Your hobby is climbing."),
    ("workplace", "user", "Where do I work?", "You work at the harbour."),
]


def chat(messages: list[dict]) -> str:
    """A stand-in for tokenizer.apply_chat_template(..., add_generation_prompt=False)."""
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)


def pairs(n: int, superseded: dict[int, str] | None = None) -> pa.Table:
    rows = []
    for i, (ftype, subject, question, answer) in enumerate(FACTS[:n]):
        rows.append({
            "pair_id": f"pr_new{i:02d}", "exchange_id": f"ex_{i}", "source_exchange_ids": [f"ex_{i}"],
            "method": "template", "methods": ["template"], "fact_type": ftype, "subject": subject, "value": answer,
            "question": question, "answer": answer, "span_start": None, "span_end": None,
            "fact_key": f"{ftype}:{subject}", "superseded_by": (superseded or {}).get(i), "grounding": 1.0,
            "evidence": [answer], "score": 0.6})
    return pa.Table.from_pylist(rows, schema=PAIRS)


def buffer(n: int, extra: list[dict] = ()) -> pa.Table:
    rows = [{"pair_id": f"pr_old{i:03d}", "fact_key": f"likes:thing{i}", "question": f"Do I like thing {i}?",
             "answer": f"Yes, you like thing {i}.", "priority": 0.1 + (i % 9) / 10, "replay_count": i % 3,
             "added_run": "r0", "last_replayed_run": None, "status": "active", "status_reason": None}
            for i in range(n)]
    return pa.Table.from_pylist(rows + list(extra), schema=buffer_schema())


def anchors(n: int) -> pa.Table:
    return pa.table({"question": [f"General prompt {i}?" for i in range(n)],
                     "answer": [f"General answer {i}." for i in range(n)]})


NO_MIN = {"min_anchors": 0, "min_rehearsal": 0}


def build(n_facts=3, n_buffer=40, n_anchors=50, depth="light", seed=1, cfg=MixingConfig(**NO_MIN), dreams=None,
          **kw):
    return build_training_set(kw.get("new_pairs", pairs(n_facts)), kw.get("buf", buffer(n_buffer)),
                              kw.get("anc", anchors(n_anchors)), dreams, depth, chat, cfg, seed,
                              rehearsal=kw.get("rehearsal", ()))


def count(table: pa.Table, source: str) -> int:
    return table.column("source").to_pylist().count(source)


def replayed(table: pa.Table) -> set[str]:
    return {p for s, p in zip(table.column("source").to_pylist(), table.column("pair_id").to_pylist()) if s == "replay"}


def test_paraphrases_are_distinct_and_start_with_the_original():
    qs = paraphrase_questions("What is my name?", "name", "user", 4)
    assert qs[0] == "What is my name?"
    assert len(qs) == 4 and len({q.lower() for q in qs}) == 4
    assert "Who am I?" in paraphrase_questions("What is my name?", "name", "user", 10)
    son = paraphrase_questions("What is my son's name?", "family_name", "son", 3)
    assert len(set(son)) == 3 and all("son" in q for q in son)
    # A home (under either spelling) is trained in its own words only; its wordings are the gate's held-out questions.
    assert paraphrase_questions("Where do I live?", "lives-in", "user", 3) == ["Where do I live?"]
    from tasks.vocabulary import held_out_question

    assert held_out_question("Where do I live?", "residence", "user", 3) == "Which city do I live in?"


def test_paraphrases_never_invent_a_fact_type_or_an_empty_subject():
    assert paraphrase_questions("Who is my dentist?", "dentist", "user", 3) == ["Who is my dentist?"]
    no_subject = paraphrase_questions("What is my favourite?", "favourite", "", 5)
    assert all("{" not in q and "my 's" not in q for q in no_subject)
    for ftype, wordings in WORDINGS.items():
        assert len({t.lower() for t in wordings}) >= 3, ftype


def test_each_new_fact_appears_under_several_phrasings():
    table = build(n_facts=2)
    new = [r for r in table.to_pylist() if r["source"] == "new"]
    assert len(new) == 6
    for i, pid in enumerate(("pr_new00", "pr_new01")):
        mine = [r for r in new if r["pair_id"] == pid]
        assert len({r["question"] for r in mine}) == 3 and {r["answer"] for r in mine} == {FACTS[i][3]}
        assert [r["question"] for r in mine if r["phrasing"] == "original"] == [FACTS[i][2]]
        assert sum(r["phrasing"].startswith(f"wording:{canonical(FACTS[i][0])}.") for r in mine) == 2


@pytest.mark.parametrize("depth,share", [("light", 0.20), ("deep", 0.60)])
@pytest.mark.parametrize("n_facts", [1, 2, 3, 5, 8, 12])
def test_replay_share_is_exact_within_one_example(depth, share, n_facts):
    table = build(n_facts=n_facts, n_buffer=200, depth=depth)
    new, replay = count(table, "new"), count(table, "replay")
    assert new == 3 * n_facts
    assert abs(replay - share * (new + replay)) <= 1
    assert replay == round(new * share / (1 - share))
    assert mix_summary(table)["replay_share"] == round(replay / (new + replay), 4)


def test_replay_is_capped_by_the_active_buffer():
    retired = [{"pair_id": f"pr_ret{i}", "fact_key": f"diet:r{i}", "question": f"R{i}?", "answer": f"r{i}",
                "priority": 0.01, "replay_count": 30, "added_run": "r0", "last_replayed_run": "r9",
                "status": "retired", "status_reason": "priority 0.0100 below 0.05 after 30 replays"} for i in range(20)]
    table = build(n_facts=6, depth="deep", buf=buffer(4, retired))
    assert count(table, "replay") == 4
    assert count(build(n_facts=6, buf=buffer_schema().empty_table()), "replay") == 0


def test_replay_only_draws_active_items_that_exist_in_the_buffer():
    inactive = [{"pair_id": f"pr_x{s}", "fact_key": f"diet:{s}", "question": f"X {s}?", "answer": s, "priority": 0.99,
                 "replay_count": 0, "added_run": "r0", "last_replayed_run": None, "status": s,
                 "status_reason": "test"} for s in ("retired", "evicted", "superseded")]
    buf = buffer(30, inactive)
    active = {r["pair_id"] for r in buf.to_pylist() if r["status"] == "active"}
    for seed in range(10):
        table = build(n_facts=8, depth="deep", seed=seed, buf=buf)
        replay_ids = {r["pair_id"] for r in table.to_pylist() if r["source"] == "replay"}
        assert replay_ids and replay_ids <= active


def test_every_new_and_replay_example_traces_to_a_pair_and_anchors_have_none():
    new_pairs, buf = pairs(5), buffer(30)
    table = build(new_pairs=new_pairs, buf=buf, depth="deep")
    ids = {"new": set(new_pairs.column("pair_id").to_pylist()), "replay": set(buf.column("pair_id").to_pylist())}
    for r in table.to_pylist():
        if r["source"] == "anchor":
            assert r["pair_id"] is None
        else:
            assert r["pair_id"] in ids[r["source"]]


def test_the_old_value_of_a_fact_learned_tonight_is_never_replayed():
    old = [{"pair_id": "pr_oldname", "fact_key": "name:user", "question": "What is my name?",
            "answer": "Your name is Boris.", "priority": 1.0, "replay_count": 0, "added_run": "r0",
            "last_replayed_run": None, "status": "active", "status_reason": None}]
    for seed in range(20):
        table = build(n_facts=3, n_buffer=2, depth="deep", seed=seed, buf=buffer(2, old))
        assert "pr_oldname" not in table.column("pair_id").to_pylist()


def test_a_pair_superseded_in_the_same_batch_is_not_practised():
    new_pairs = pairs(3, superseded={1: "pr_new02"})
    table = build(new_pairs=new_pairs)
    assert "pr_new01" not in table.column("pair_id").to_pylist()
    assert count(table, "new") == 6


def test_no_duplicate_examples_even_when_inputs_repeat():
    clash = [{"pair_id": "pr_clash", "fact_key": "likes:clash", "question": "What is my name?",
              "answer": "Your name is Vladimir.", "priority": 1.0, "replay_count": 0, "added_run": "r0",
              "last_replayed_run": None, "status": "active", "status_reason": None}]
    twins = [{**r, "pair_id": r["pair_id"] + "_twin"} for r in buffer(3).to_pylist()]  # same wording, other pair_id
    anc = pa.table({"question": ["Hi?", "Hi?", "What is my name?"],
                    "answer": ["Hello.", "Hello.", "Your name is Vladimir."]})
    dreams = pa.table({"pair_id": ["pr_dream1", "pr_dream2"], "question": ["Dream?", "Dream?"], "answer": ["d", "d"]})
    table = build(n_facts=6, depth="deep", buf=buffer(3, clash + twins), anc=anc, dreams=dreams)
    keys = list(zip(table.column("question").to_pylist(), table.column("answer").to_pylist()))
    assert len(keys) == len(set(keys))
    assert len(set(table.column("example_id").to_pylist())) == table.num_rows
    assert "pr_clash" not in table.column("pair_id").to_pylist()
    assert count(table, "replay") == 3 and count(table, "anchor") == 1 and count(table, "dream") == 1


def test_same_inputs_and_seed_give_the_identical_table_and_another_seed_does_not():
    a = build(n_facts=5, depth="deep", seed=11)
    assert a.equals(build(n_facts=5, depth="deep", seed=11))
    # Row order of the inputs does not matter either: only their content and the seed.
    shuffled = build(n_facts=5, depth="deep", seed=11, new_pairs=pairs(5).take([4, 2, 0, 1, 3]),
                     buf=buffer(40).take(list(range(40))[::-1]), anc=anchors(50).take(list(range(50))[::-1]))
    assert a.equals(shuffled)
    b = build(n_facts=5, depth="deep", seed=12)
    assert a.column("example_id").to_pylist() != b.column("example_id").to_pylist()
    assert any(replayed(build(n_facts=5, depth="deep", seed=s)) != replayed(a) for s in range(12, 20))
    assert set(b.column("seed").to_pylist()) == {12}


def test_seed_defaults_to_the_config_seed():
    cfg = MixingConfig(seed=5, **NO_MIN)
    assert build_training_set(pairs(2), buffer(9), anchors(9), None, "light", chat, cfg).equals(
        build(n_facts=2, n_buffer=9, n_anchors=9, seed=5))


def test_anchors_follow_the_ratio_and_are_capped_by_what_exists():
    assert count(build(n_facts=4), "anchor") == 12
    assert count(build(n_facts=4, cfg=MixingConfig(anchor_ratio=0.5, **NO_MIN)), "anchor") == 6
    assert count(build(n_facts=4, n_anchors=5), "anchor") == 5
    assert count(build(n_facts=4, cfg=MixingConfig(anchor_ratio=0, **NO_MIN)), "anchor") == 0


def test_dreams_are_added_as_given():
    dreams = pa.table({"pair_id": ["pr_d1", "pr_d2"], "question": ["What did I dream?", "Where was I?"],
                       "answer": ["You dreamt of the sea.", "You were by the sea."]})
    table = build(n_facts=2, depth="deep", dreams=dreams)
    got = sorted((r["pair_id"], r["question"], r["answer"], r["phrasing"]) for r in table.to_pylist()
                 if r["source"] == "dream")
    assert got == [("pr_d1", "What did I dream?", "You dreamt of the sea.", "original"),
                   ("pr_d2", "Where was I?", "You were by the sea.", "original")]


def test_rows_carry_chat_text_content_ids_and_the_schema():
    table = build(n_facts=2, depth="deep", seed=3)
    assert table.schema == EXAMPLES
    for r in table.to_pylist():
        assert r["text"] == chat([{"role": "user", "content": r["question"]},
                                  {"role": "assistant", "content": r["answer"]}])
        assert r["example_id"] == content_id("te", r["source"], r["pair_id"], r["question"], r["answer"])
        assert r["seed"] == 3


def test_mix_summary_counts_sources():
    dreams = pa.table({"pair_id": ["pr_d1"], "question": ["Dream?"], "answer": ["Yes."]})
    summary = mix_summary(build(n_facts=4, depth="deep", dreams=dreams))
    assert summary == {"new": 12, "replay": 18, "dream": 1, "anchor": 12, "rehearsal": 0, "unknown": 0, "total": 43,
                       "new_facts": 4, "replay_share": 0.6}


def test_rehearsal_prose_is_mixed_in_by_ratio_as_plain_text():
    prose = [f"Sample {i} of ordinary prose about rivers, towns and the weather in spring." for i in range(40)]
    table = build(n_facts=4, rehearsal=prose, cfg=MixingConfig(rehearsal_ratio=0.5, **NO_MIN))
    rows = [r for r in table.to_pylist() if r["source"] == "rehearsal"]
    assert len(rows) == 6  # 0.5 x 12 new examples
    assert all(r["question"] == "" and r["pair_id"] is None and r["text"] == r["answer"] in prose for r in rows)
    assert "<|im_start|>" not in rows[0]["text"]  # not chat-formatted: trained on every token
    assert table == build(n_facts=4, rehearsal=list(reversed(prose)), cfg=MixingConfig(rehearsal_ratio=0.5, **NO_MIN))
    assert count(build(n_facts=4, rehearsal=prose[:3], cfg=MixingConfig(rehearsal_ratio=0.5, **NO_MIN)), "rehearsal") == 3
    assert count(build(n_facts=4, rehearsal=prose, cfg=MixingConfig(rehearsal_ratio=0, **NO_MIN)), "rehearsal") == 0


def test_a_night_with_few_facts_still_gets_the_minimum_anchors_and_rehearsal():
    prose = [f"Sample {i} of ordinary prose about rivers, towns and the weather in spring." for i in range(40)]
    cfg = MixingConfig(min_anchors=20, min_rehearsal=10)
    table = build(n_facts=1, rehearsal=prose, cfg=cfg)
    assert (count(table, "new"), count(table, "anchor"), count(table, "rehearsal")) == (3, 20, 10)
    assert count(build(n_facts=1, n_anchors=7, rehearsal=prose[:4], cfg=cfg), "anchor") == 7  # capped by supply
    empty = build(n_facts=0, n_buffer=0, rehearsal=prose, cfg=cfg)
    assert empty.num_rows == 0  # nothing new: nothing to protect


def test_readable_prose_filter():
    from tasks.rehearsal import readable

    assert readable("The river runs past the old mill and the children play on its banks every summer day.")
    assert not readable("jahwaddyItjghhh utwfey mayhwdjoj fur nviid uymaS xzqri AnalImIje tn gwrnpqz")  # too few words
    assert not readable("x = [1, 2, 3]; y = {a: b} " * 8)


def test_bad_depth_and_bad_inputs_are_named():
    with pytest.raises(ValueError, match="'medium'"):
        build(depth="medium")
    with pytest.raises(ValueError, match="answer"):
        build(anc=pa.table({"question": ["Hi?"]}))


def test_config_defaults_are_documented_frozen_and_strict():
    cfg = MixingConfig()
    assert (cfg.replay_share("light"), cfg.replay_share("deep")) == (0.2, 0.6)
    assert (cfg.paraphrases, cfg.anchor_ratio) == (3, 1.0)
    assert all(f.description for f in MixingConfig.model_fields.values())
    with pytest.raises(ValidationError):
        MixingConfig(replay=0.3)
    with pytest.raises(ValidationError):
        MixingConfig(deep_replay_share=1.0)


def test_unknown_examples_decline_only_facts_nobody_told():
    from tasks.mixing import UNKNOWN_QUESTIONS
    from tasks.probes import is_abstention

    known_buffer = [{"pair_id": "pr_oldsis", "fact_key": "family_name:sister", "question": "What is my sister's name?",
                     "answer": "Your sister's name is Ana.", "priority": 0.5, "replay_count": 0, "added_run": "r0",
                     "last_replayed_run": None, "status": "active", "status_reason": None}]
    cfg = MixingConfig(**NO_MIN, unknown_ratio=10.0)  # asks for more than there are: every candidate left
    table = build(n_facts=12, buf=buffer(0, known_buffer), cfg=cfg, depth="light")
    unknown = [r for r in table.to_pylist() if r["source"] == "unknown"]
    questions = {r["question"] for r in unknown}
    # Known tonight (FACTS) or in the buffer: never declined.
    for asked in ("What is my name?", "What is my son's name?", "What is my dog's name?", "What do I do for a living?",
                  "What am I allergic to?", "What is my favourite colour?", "What language am I learning?",
                  "When is my birthday?", "Where do I work?", "What is my sister's name?", "Where did I move from?"):
        assert asked not in questions, asked
    assert {"What is my brother's name?", "What is my cat's name?", "How old am I?"} <= questions
    assert len(unknown) == len(UNKNOWN_QUESTIONS) - 11  # the 11 questions above are the only known ones
    assert all(is_abstention(r["answer"]) and r["pair_id"] is None for r in unknown)
    assert mix_summary(table)["unknown"] == len(unknown)


def test_unknown_ratio_sets_how_many_and_zero_adds_none():
    new = count(build(n_facts=6, cfg=MixingConfig(**NO_MIN)), "new")
    assert count(build(n_facts=6, cfg=MixingConfig(**NO_MIN)), "unknown") == 0
    assert count(build(n_facts=6, cfg=MixingConfig(**NO_MIN, unknown_ratio=0.5)), "unknown") == round(0.5 * new)
    again = build(n_facts=6, cfg=MixingConfig(**NO_MIN, unknown_ratio=0.5))
    assert again.equals(build(n_facts=6, cfg=MixingConfig(**NO_MIN, unknown_ratio=0.5)))  # seeded


def with_values(table: pa.Table, values: list[str]) -> pa.Table:
    return table.set_column(table.schema.get_field_index("value"), "value", pa.array(values))


def test_inverse_questions_ask_from_the_value_back_to_whom_it_is_about():
    from tasks.mixing import inverse_questions

    assert inverse_questions("family_name", "sister", "Karin", "Your sister's name is Karin.") == [
        ("inverse:who", "Who is Karin?", "Karin is your sister.")]
    assert inverse_questions("family_job", "brother", "engineer", "Your brother Henrik works as an engineer.") == [
        ("inverse:who", "Who in my family works as an engineer?", "Your brother Henrik works as an engineer.")]
    assert inverse_questions("pet_kind", "pet", "cat", "Miso is your cat.") == [
        ("inverse:which", "Which of my pets is a cat?", "Miso is your cat.")]
    assert inverse_questions("job", "user", "pilot", "You work as a pilot.") == []
    assert inverse_questions("family_name", "sister", "", "x") == []
    facts = with_values(pairs(5), ["Vladimir", "Lisbon", "Andre", "6", "Biscuit"])
    table = build(new_pairs=facts, cfg=MixingConfig(**NO_MIN, inverse_questions=True))
    inverse = sorted((r["question"], r["answer"], r["pair_id"]) for r in table.to_pylist()
                     if r["phrasing"].startswith("inverse"))
    # Of FACTS[:5] the son's and the dog's names are asked back; the pair ids keep the lineage.
    assert inverse == [("Who is Andre?", "Andre is your son.", "pr_new02"),
                       ("Who is Biscuit?", "Biscuit is your dog.", "pr_new04")]
    assert count(build(new_pairs=facts, cfg=MixingConfig(**NO_MIN)), "new") + 2 == count(table, "new")


def test_verify_questions_offer_the_true_value_and_a_wrong_one_borrowed_from_a_neighbouring_fact():
    from tasks.mixing import VERIFY_DECOYS, verify_questions

    facts = with_values(pairs(9), ["Vladimir", "Lisbon", "Andre", "6", "Biscuit", "carpenter", "peanuts",
                                   "green", "Japanese"])
    rows = {(pid, label): (q, a) for pid, label, q, a in verify_questions(facts.to_pylist())}
    # name, moved_from, family_name, pet_name, job and language_learning have verify wordings; age, allergy, colour
    # not.
    assert {pid for pid, _ in rows} == {"pr_new00", "pr_new01", "pr_new02", "pr_new04", "pr_new05", "pr_new08"}
    assert rows[("pr_new00", "verify:yes")] == ("Is my name Vladimir?", "Yes. Your name is Vladimir.")
    question, answer = rows[("pr_new00", "verify:no")]
    assert answer == "No. Your name is Vladimir."
    # The wrong name is another fact's name (the son's or the dog's), the confusion a model makes.
    assert question in ("Is my name Andre?", "Is my name Biscuit?")
    assert rows[("pr_new02", "verify:yes")] == ("Is my son's name Andre?", "Yes. Your son is called Andre.")
    assert rows[("pr_new04", "verify:no")][0] in ("Is my dog called Vladimir?", "Is my dog called Andre?")
    assert rows[("pr_new05", "verify:yes")] == ("Do I work as a carpenter?", "Yes. You are a carpenter.")
    # Alone of its kind, a job or a place gets a decoy wrong value, never its own.
    job = rows[("pr_new05", "verify:no")][0]
    assert job.startswith("Do I work as ") and job.split(" as ", 1)[1].split(" ", 1)[1][:-1] in VERIFY_DECOYS["job"]
    place = rows[("pr_new01", "verify:no")][0].removeprefix("Did I move here from ").removesuffix("?")
    assert place in VERIFY_DECOYS["place"]
    # The choice depends on the pair, not on the order the pairs come in.
    assert verify_questions(facts.to_pylist()[::-1]) and set(verify_questions(facts.to_pylist()[::-1])) == \
        set(verify_questions(facts.to_pylist()))
    # In a training set they are new examples of their pair, only when switched on.
    on = build(new_pairs=facts, cfg=MixingConfig(**NO_MIN, verify_questions=True))
    off = build(new_pairs=facts, cfg=MixingConfig(**NO_MIN))
    verify = [r for r in on.to_pylist() if r["phrasing"].startswith("verify")]
    assert len(verify) == 12 and all(r["source"] == "new" for r in verify)
    assert {(r["pair_id"], r["question"], r["answer"]) for r in verify} == \
        {(pid, q, a) for (pid, _), (q, a) in rows.items()}
    assert not any(r["phrasing"].startswith("verify") for r in off.to_pylist())
    assert count(on, "new") == count(off, "new") + 12


def test_an_anchor_answer_ends_at_its_last_full_sentence():
    from tasks.mixing import last_full_sentence

    assert last_full_sentence("The opposite of hot is cold. This is a fundamental concept in sci") == \
        "The opposite of hot is cold."
    assert last_full_sentence("Is it? Yes! It is 3.5 metres. And then") == "Is it? Yes! It is 3.5 metres."
    assert last_full_sentence("  10 divided by 2 is 5.  ") == "10 divided by 2 is 5."
    assert last_full_sentence("To find 9 times 3, we can use") == "To find 9 times 3, we can use"  # no end: whole
    assert last_full_sentence("Version 3.5 is out") == "Version 3.5 is out"  # a decimal point ends nothing


def test_only_the_root_models_right_answers_are_replayed_as_anchors():
    from tasks.mixing import select_anchors

    table = pa.table({
        "prompt_id": ["a-1", "a-2", "a-3", "a-4", "a-5"],
        "question": ["What is 25 + 5?", "What is 10 divided by 2?", "What is the capital of Norway?",
                     "Write a sentence about the sea.", "What is 4 + 4?"],
        "answer": ["25 + 5 = 8.", "10 divided by 2 is 5.", "The capital of Norway is Oslo. It is a city on a fj",
                   "The sea is vast. Its waves", "To solve this problem, we need to think of a way to combine 4"]})
    expected = {"a-1": ["30", "thirty"], "a-2": ["5", "five"], "a-3": ["Oslo"], "a-5": ["8", "eight"]}
    right = select_anchors(table, expected, "right")
    assert right["prompt_id"].to_pylist() == ["a-2", "a-3", "a-4"]  # the wrong sum and the ramble are dropped
    assert right["answer"].to_pylist() == ["10 divided by 2 is 5.", "The capital of Norway is Oslo.",
                                           "The sea is vast."]
    assert select_anchors(table, expected, "all").equals(table)
    with pytest.raises(ValueError, match="anchor_answers"):
        select_anchors(table, expected, "best")


def test_the_shipped_anchor_answers_of_the_default_model_keep_its_right_ones_only():
    from flows.training_examples import _shipped_cache, anchor_expected, anchor_prompts
    from tasks.mixing import select_anchors
    from tasks.probes import score_answer

    prompts = anchor_prompts()
    [cache] = sorted(_shipped_cache().glob("anc_*.parquet"))
    import pyarrow.parquet as pq

    answers = pq.read_table(cache)["answer"].to_pylist()
    table = pa.table({"prompt_id": [p["id"] for p in prompts], "answer": answers})
    expected = anchor_expected(prompts)
    assert len(expected) == 77
    kept = select_anchors(table, expected, "right")
    wrong = {p["id"] for p, a in zip(prompts, answers) if p.get("expected") and
             score_answer(a, p["expected"], []) != "correct"}
    assert wrong and not wrong & set(kept["prompt_id"].to_pylist())  # the model does get some wrong: not replayed
    assert kept.num_rows == len(prompts) - len(wrong)
