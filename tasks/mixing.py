"""Stage 4b: mix new facts (several phrasings each), replayed buffer items, dreams and anchors into a training set."""

from __future__ import annotations

from collections import Counter
from typing import Callable, Literal, Sequence

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from storage.ids import content_id
from storage.schemas import require_columns, without_run_id
from tasks.replay import ACTIVE, sample_replay, supersession

SOURCES = ("new", "replay", "dream", "anchor", "rehearsal", "unknown")
Depth = Literal["light", "deep"]

# Question wordings per fact type, asked by the user about themselves ("my"), since the assistant
# answers the user ("Your name is …"). {subject} is the fact's subject (e.g. "son", "dog", "colour").
TEMPLATES: dict[str, tuple[str, ...]] = {
    "name": ("What is my name?", "What's my name?", "Do you remember my name?", "Who am I?", "What am I called?"),
    "lives_in": ("Where do I live?", "Which city do I live in?", "Where is my home?", "Where am I based?"),
    "moved_from": ("Where did I move from?", "Where did I live before?", "Which place did I move away from?"),
    "job": ("What is my job?", "What do I do for a living?", "What is my profession?", "What work do I do?"),
    "workplace": ("Where do I work?", "Which company do I work for?", "Who is my employer?"),
    "family_name": ("What is my {subject}'s name?", "What's my {subject} called?",
                    "Do you remember my {subject}'s name?", "What did I say my {subject} is called?"),
    "family_age": ("How old is my {subject}?", "What is my {subject}'s age?", "Do you know how old my {subject} is?"),
    "family_job": ("What does my {subject} do for a living?", "What is my {subject}'s job?",
                   "What work does my {subject} do?"),
    "family_home": ("Where does my {subject} live?", "Which city does my {subject} live in?",
                    "Where is my {subject}'s home?"),
    "pet_name": ("What is my {subject}'s name?", "What did I name my {subject}?", "What's my {subject} called?"),
    "pet_kind": ("What kind of pet do I have?", "What animal is my pet?", "What pet do I own?"),
    "pet_breed": ("What breed is my {subject}?", "Which breed is my {subject}?", "What kind of {subject} do I have?"),
    "favourite": ("What is my favourite {subject}?", "Which {subject} do I like best?",
                  "What {subject} do I love most?"),
    "likes": ("What do I like?", "What do I enjoy?", "Is there something I really like?"),
    "dislikes": ("What do I dislike?", "What don't I like?", "Is there something I can't stand?"),
    "allergy": ("What am I allergic to?", "Do I have any allergies?", "Which allergy do I have?"),
    "diet": ("What diet do I follow?", "Do I have any dietary restrictions?", "What kind of food do I avoid?"),
    "possession": ("What {subject} do I have?", "What kind of {subject} do I own?", "Which {subject} is mine?"),
    "birthday": ("When is my birthday?", "What day is my birthday?", "When was I born?"),
    "plan": ("What am I planning?", "What are my plans?", "What do I plan to do?"),
    "trip": ("Where am I travelling to?", "Where is my trip to?", "Where am I going on my trip?"),
    "routine": ("What is my routine?", "What do I do regularly?", "What is part of my daily routine?"),
    "hobby": ("What is my hobby?", "What do I do for fun?", "What do I like to do in my free time?"),
    "language_learning": ("What language am I learning?", "Which language am I studying?",
                          "What new language am I working on?"),
    "model": ("What model am I working on?", "Which model do I use?", "What model did I tell you about?"),
}
# Spellings another extractor might use for the same fact type.
# The extractor's "residence" is not an alias yet: see docs/RESULTS.md ("fixed wordings").
_ALIASES = {"favorite": "favourite", "lives": "lives_in", "home": "lives_in",
            "occupation": "job", "employer": "workplace", "pet_type": "pet_kind", "pet_species": "pet_kind",
            "language": "language_learning", "travel": "trip", "allergies": "allergy", "like": "likes",
            "dislike": "dislikes", "owns": "possession"}


# Personal questions the assistant may be asked but has not been told the answer to: (fact type, subject,
# question, what is unknown). A night trains "I don't know" on a sample of those whose (fact type, subject)
# no current fact covers, so a question about an untold fact is declined instead of answered with a
# neighbouring fact ("Your brother's name is Karin"). Fact types and subjects are the extractor's.
_RELATIVES = ("mother", "father", "brother", "sister", "son", "daughter", "wife", "husband", "partner",
              "grandmother", "grandfather", "aunt", "uncle", "cousin", "best friend")
_PETS = ("dog", "cat", "rabbit", "parrot", "horse", "hamster", "tortoise")
_OTHERS = frozenset(_RELATIVES + _PETS + ("child", "children", "friend"))
_FAVOURITES = ("colour", "food", "book", "film", "song", "season", "sport", "band", "drink", "city")
UNKNOWN_QUESTIONS: tuple[tuple[str, str, str, str], ...] = (
    ("name", "user", "What is my name?", "your name"),
    ("residence", "user", "Where do I live?", "where you live"),
    ("hometown", "user", "Where am I originally from?", "where you are from"),
    ("moved_from", "user", "Where did I move from?", "where you moved from"),
    ("job", "user", "What do I do for a living?", "what you do for a living"),
    ("workplace", "user", "Where do I work?", "where you work"),
    ("age", "user", "How old am I?", "how old you are"),
    ("birthday", "user", "When is my birthday?", "when your birthday is"),
    ("allergy", "user", "What am I allergic to?", "whether you have any allergies"),
    ("diet", "user", "Do I follow a special diet?", "whether you follow a special diet"),
    ("language_learning", "user", "What language am I learning?", "which language you are learning"),
    ("instrument", "user", "What instrument do I play?", "whether you play an instrument"),
    ("trip", "user", "Where am I travelling next?", "where you are travelling"),
    ("possession", "car", "What car do I drive?", "what car you drive"),
    *(("family_name", r, f"What is my {r}'s name?", f"your {r}'s name") for r in _RELATIVES),
    *(("family_job", r, f"What does my {r} do for a living?", f"what your {r} does for a living")
      for r in _RELATIVES),
    *(("family_home", r, f"Where does my {r} live?", f"where your {r} lives") for r in _RELATIVES),
    *(("pet_name", a, f"What is my {a}'s name?", f"your {a}'s name") for a in _PETS),
    *(("favorite", f, f"What is my favourite {f}?", f"your favourite {f}") for f in _FAVOURITES),
)
UNKNOWN_ANSWERS = ("I don't know {what}. You haven't told me.", "You haven't told me {what}, so I don't know.",
                   "I don't know {what}; you haven't mentioned it to me.")


def unknown_questions(known_keys: set[tuple[str, str]], n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """n (question, "I don't know" answer) pairs about facts whose (fact type, subject) is not known."""
    def kind(fact_type: str) -> str:  # the same fact under either spelling is known
        canonical = _fact_type(fact_type)
        return "lives_in" if canonical == "residence" else canonical

    known = {(kind(t), s.strip().lower()) for t, s in known_keys}
    candidates = [(q, what) for t, s, q, what in UNKNOWN_QUESTIONS if (kind(t), s) not in known]
    if n <= 0 or not candidates:
        return []
    picks = sorted(rng.choice(len(candidates), size=min(n, len(candidates)), replace=False).tolist())
    return [(candidates[i][0], UNKNOWN_ANSWERS[i % len(UNKNOWN_ANSWERS)].format(what=candidates[i][1]))
            for i in picks]


class MixingConfig(BaseModel):
    """How a night's training set is composed."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    light_replay_share: float = Field(0.20, ge=0, lt=1, description="Share of replay among new + replay examples "
                                      "in light sleep.")
    deep_replay_share: float = Field(0.60, ge=0, lt=1, description="Share of replay among new + replay examples "
                                     "in deep sleep.")
    paraphrases: int = Field(3, ge=1, description="Question phrasings per new fact, the original included "
                             "(fewer when the fact type has too few templates).")
    anchor_ratio: float = Field(1.0, ge=0, description="Anchor examples (the model's own answers to general prompts) "
                                "per new example; mixing them in is what kept the model from forgetting.")
    min_anchors: int = Field(32, ge=0, description="At least this many anchors whenever there is anything new: a "
                             "night with few facts otherwise gets too few to hold the general answers.")
    anchor_max_tokens: int = Field(64, ge=8, description="Longest anchor answer generated by the base model.")
    rehearsal_ratio: float = Field(0.5, ge=0, description="Rehearsal examples (plain prose the root model wrote "
                                   "itself, trained on every token) per new example: they hold the model's "
                                   "next-token distribution on ordinary text where it was (perplexity drift).")
    min_rehearsal: int = Field(16, ge=0, description="At least this many rehearsal samples whenever there is "
                               "anything new.")
    rehearsal_samples: int = Field(96, ge=0, description="Prose samples the root model writes once (cached).")
    rehearsal_max_tokens: int = Field(128, ge=16, description="Length of each rehearsal sample in tokens.")
    inverse_questions: bool = Field(False, description="Also ask names, relatives' jobs and homes and pets' kinds "
                                    "the other way round (see inverse_questions).")
    verify_questions: bool = Field(False, description="Also ask each name, place, job and language as a yes/no "
                                   "question, once with its value and once with a wrong one (see verify_questions), "
                                   "so a value offered in the question is not simply repeated back.")
    unknown_ratio: float = Field(0.0, ge=0, description="'I don't know' examples per new example: personal "
                                 "questions about facts never told (see UNKNOWN_QUESTIONS), so the model declines "
                                 "instead of answering them with a neighbouring fact.")
    seed: int = Field(0, description="Seed for replay sampling, anchor choice and shuffling when the caller "
                      "gives none.")

    def replay_share(self, depth: Depth) -> float:
        """The replay share for a sleep depth."""
        if depth not in ("light", "deep"):
            raise ValueError(f"depth must be 'light' or 'deep', got {depth!r}")
        return self.light_replay_share if depth == "light" else self.deep_replay_share


def _fact_type(fact_type: str) -> str:
    key = fact_type.strip().lower().replace("-", "_").replace(" ", "_")
    return _ALIASES.get(key, key)


def _phrasings(question: str, fact_type: str, subject: str, n: int) -> list[tuple[str, str]]:
    """(phrasing label, question) pairs: the original first, then templates that read differently."""
    out = [("original", question)]
    seen = {question.strip().lower()}
    ftype = _fact_type(fact_type)
    subject = (subject or "").strip()
    for i, template in enumerate(TEMPLATES.get(ftype, ())):
        if len(out) >= n:
            break
        if "{subject}" in template and not subject:
            continue  # "What is my 's name?" would teach nonsense
        text = template.format(subject=subject)
        if text.strip().lower() not in seen:
            seen.add(text.strip().lower())
            out.append((f"template:{ftype}.{i}", text))
    return out[:n]


def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def inverse_questions(fact_type: str, subject: str, value: str, answer: str) -> list[tuple[str, str, str]]:
    """(phrasing label, question, answer) asking a fact the other way round: from its value to whom it is
    about ("Who is Karin?" -> "Karin is your sister."; "Who in my family works as a dentist?" -> the fact's
    own answer). A model trained only on "What is my sister's name?" does not answer the reverse."""
    ftype, subj, value = _fact_type(fact_type), (subject or "").strip().lower(), (value or "").strip()
    if not value:
        return []
    if ftype in ("family_name", "pet_name", "possession_name") and subj:
        return [("inverse:who", f"Who is {value}?" if ftype != "possession_name" else f"What is {value}?",
                 f"{value} is your {subj}.")]
    if ftype == "family_job" and subj in _OTHERS:
        return [("inverse:who", f"Who in my family works as {_a(value)}?", answer)]
    if ftype == "family_home" and subj in _OTHERS:
        return [("inverse:who", f"Who in my family lives in {value}?", answer)]
    if ftype == "pet_kind":
        return [("inverse:which", f"Which of my pets is {_a(value)}?", answer)]
    return []


# Yes/no questions that state a fact's value, right or wrong: "Is my name Karin?" -> "No. Your name is Mira
# Halvorsen." A model trained only on "What is my name?" -> "Your name is …" learns to repeat whatever value
# the question offers ("Is my name Captain Nemo?" -> "Your name is Captain Nemo."). Keyed by fact type; the
# kind says which other facts' values are plausible wrong ones.
VERIFY_TEMPLATES: dict[str, tuple[str, str]] = {
    "name": ("name", "Is my name {x}?"),
    "family_name": ("name", "Is my {subject}'s name {x}?"),
    "pet_name": ("name", "Is my {subject} called {x}?"),
    "possession_name": ("name", "Is my {subject} called {x}?"),
    "lives_in": ("place", "Do I live in {x}?"),
    "residence": ("place", "Do I live in {x}?"),
    "hometown": ("place", "Am I originally from {x}?"),
    "moved_from": ("place", "Did I move here from {x}?"),
    "family_home": ("place", "Does my {subject} live in {x}?"),
    "trip": ("place", "Am I travelling to {x}?"),
    "job": ("job", "Do I work as {a}?"),
    "family_job": ("job", "Does my {subject} work as {a}?"),
    "workplace": ("workplace", "Do I work at {x}?"),
    "language_learning": ("language", "Am I learning {x}?"),
}
# Wrong values used when a night has no other fact of the same kind to borrow one from.
VERIFY_DECOYS: dict[str, tuple[str, ...]] = {
    "name": ("Anna", "Lukas", "Maria", "Tomas", "Elena", "David", "Yusuf", "Ingrid"),
    "place": ("Paris", "Madrid", "Chicago", "Nairobi", "Melbourne", "Warsaw", "Toronto", "Seoul"),
    "job": ("lawyer", "chef", "nurse", "architect", "accountant", "electrician", "journalist", "farmer"),
    "workplace": ("Google", "the city hospital", "a bank", "the post office", "a law firm", "a bakery"),
    "language": ("French", "German", "Spanish", "Italian", "Korean", "Arabic", "Russian", "Dutch"),
}


def verify_questions(pairs: Sequence[dict]) -> list[tuple[str, str, str, str]]:
    """(pair id, phrasing label, question, answer): each fact with a verify template asked once with its own
    value ("Yes. " + its answer) and once with another value ("No. " + its answer). The wrong value is, where
    the night has one, another fact's value of the same kind (the sister's name for the son's), which is the
    confusion the model makes; otherwise a decoy. The choice is a function of the pair id, not of the seed."""
    facts = []
    for p in pairs:
        ftype, value = _fact_type(p["fact_type"]), (p.get("value") or "").strip()
        if ftype in VERIFY_TEMPLATES and value:
            facts.append((p, ftype, (p.get("subject") or "").strip().lower(), value))
    true_values: dict[tuple[str, str], set[str]] = {}
    by_kind: dict[str, set[str]] = {}
    for p, ftype, subject, value in facts:
        kind = VERIFY_TEMPLATES[ftype][0]
        true_values.setdefault((ftype, subject), set()).add(value.lower())
        by_kind.setdefault(kind, set()).add(value)
    out = []
    for p, ftype, subject, value in facts:
        kind, template = VERIFY_TEMPLATES[ftype]
        if "{subject}" in template and not subject:
            continue
        wrong_ok = [v for v in sorted(by_kind[kind]) if v.lower() not in true_values[(ftype, subject)]]
        decoys = wrong_ok or [v for v in VERIFY_DECOYS[kind] if v.lower() not in true_values[(ftype, subject)]]
        wrong = decoys[int(content_id("vq", p["pair_id"])[3:11], 16) % len(decoys)]

        def ask(x: str) -> str:
            return template.format(subject=subject, x=x, a=_a(x))

        out.append((p["pair_id"], "verify:yes", ask(value), f"Yes. {p['answer']}"))
        out.append((p["pair_id"], "verify:no", ask(wrong), f"No. {p['answer']}"))
    return out


def paraphrase_questions(question: str, fact_type: str, subject: str, n: int) -> list[str]:
    """Up to n distinct wordings of a fact's question, the original first."""
    return [text for _, text in _phrasings(question, fact_type, subject, n)]


def _out_schema() -> pa.Schema:
    return without_run_id("training_examples")




def _replay_pool(buffer: pa.Table, new_pairs: pa.Table, taken: set[tuple[str, str]]) -> pa.Table:
    """Active buffer items that may be replayed alongside these new pairs."""
    new_ids = set(new_pairs.column("pair_id").to_pylist())
    new_keys = set(new_pairs.column("fact_key").to_pylist())
    columns = buffer.select(["pair_id", "fact_key", "question", "answer", "priority", "status"])
    # Highest priority first, so of two items with the same wording the stronger one stays in the pool.
    rows = sorted(columns.to_pylist(), key=lambda r: (-r["priority"], r["pair_id"]))
    pool = []
    for r in rows:
        # Replaying the old value of a fact learned again tonight would teach both values at once.
        if r["status"] != ACTIVE or r["pair_id"] in new_ids or r["fact_key"] in new_keys:
            continue
        if (r["question"], r["answer"]) in taken:
            continue  # keeps the set free of duplicates without losing a sampled slot later
        taken.add((r["question"], r["answer"]))
        pool.append(r)
    return pa.Table.from_pylist(pool, schema=columns.schema)


def build_training_set(new_pairs: pa.Table, buffer: pa.Table, anchors: pa.Table, dreams: pa.Table | None,
                       depth: Depth, format_chat: Callable[[list[dict]], str], cfg: MixingConfig = MixingConfig(),
                       seed: int | None = None, rehearsal: Sequence[str] = ()) -> pa.Table:
    """Return this run's training_examples (without run_id): new facts, replay, dreams and anchors, shuffled."""
    seed = cfg.seed if seed is None else seed
    share = cfg.replay_share(depth)
    require_columns(new_pairs, ("pair_id", "fact_key", "fact_type", "subject", "question", "answer", "superseded_by"),
             "new_pairs")
    require_columns(buffer, ("pair_id", "fact_key", "question", "answer", "priority", "status"), "buffer")
    require_columns(anchors, ("question", "answer"), "anchors")
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    taken: set[tuple[str, str]] = set()

    def add(source: str, pair_id: str | None, question: str, answer: str, phrasing: str) -> None:
        # The first source to claim a wording keeps it: new beats replay beats dream beats anchor.
        if (question, answer) not in taken:
            taken.add((question, answer))
            rows.append({"source": source, "pair_id": pair_id, "question": question, "answer": answer,
                         "phrasing": phrasing})

    replaced = supersession(new_pairs)
    # An older value of a fact restated tonight is not practised.
    current = [p for p in new_pairs.to_pylist() if p["pair_id"] not in replaced]
    for p in current:
        for phrasing, question in _phrasings(p["question"], p["fact_type"], p["subject"], cfg.paraphrases):
            add("new", p["pair_id"], question, p["answer"], phrasing)
        if cfg.inverse_questions:
            for phrasing, question, answer in inverse_questions(p["fact_type"], p["subject"], p["value"], p["answer"]):
                add("new", p["pair_id"], question, answer, phrasing)
    if cfg.verify_questions:
        for pair_id, phrasing, question, answer in verify_questions(current):
            add("new", pair_id, question, answer, phrasing)
    n_new = len(rows)

    # k makes replay / (new + replay) = share within one example: |k - share*(n+k)| = (1-share)|k - x| <= 0.5.
    pool = _replay_pool(buffer, new_pairs, set(taken))
    k = min(round(n_new * share / (1 - share)), pool.num_rows)
    by_id = {r["pair_id"]: r for r in pool.to_pylist()}
    for pid in sample_replay(pool, k, rng):
        add("replay", pid, by_id[pid]["question"], by_id[pid]["answer"], "original")

    if dreams is not None:
        require_columns(dreams, ("pair_id", "question", "answer"), "dreams")
        for d in dreams.select(["pair_id", "question", "answer"]).to_pylist():
            add("dream", d["pair_id"], d["question"], d["answer"], "original")

    candidates = sorted({(a["question"], a["answer"]) for a in anchors.select(["question", "answer"]).to_pylist()}
                        - taken)
    n_anchor = min(max(round(cfg.anchor_ratio * n_new), cfg.min_anchors if n_new else 0), len(candidates))
    picks = rng.choice(len(candidates), size=n_anchor, replace=False).tolist() if n_anchor else []
    for i in sorted(picks):
        add("anchor", None, candidates[i][0], candidates[i][1], "original")

    known = {tuple(key.split(":")[:2]) for key in new_pairs.column("fact_key").to_pylist()}
    known |= {tuple(key.split(":")[:2]) for key, status in zip(buffer.column("fact_key").to_pylist(),
                                                                buffer.column("status").to_pylist())
              if status == ACTIVE}
    for question, answer in unknown_questions(known, round(cfg.unknown_ratio * n_new), rng):
        add("unknown", None, question, answer, "original")

    pool_texts = sorted(set(t for t in rehearsal if t.strip()))
    wanted = round(cfg.rehearsal_ratio * n_new)
    n_text = min(max(wanted, cfg.min_rehearsal if n_new and cfg.rehearsal_ratio > 0 else 0), len(pool_texts))
    picks = rng.choice(len(pool_texts), size=n_text, replace=False).tolist() if n_text else []
    for i in sorted(picks):
        add("rehearsal", None, "", pool_texts[i], "original")

    for r in rows:
        r["example_id"] = content_id("te", r["source"], r["pair_id"], r["question"], r["answer"])
        # Rehearsal prose is trained as plain text, every token; the rest as a chat, answer only.
        r["text"] = r["answer"] if r["source"] == "rehearsal" else format_chat(
            [{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["answer"]}])
        r["seed"] = seed
    # Sort by content id before shuffling so the order depends only on the inputs' content and the seed.
    rows.sort(key=lambda r: r["example_id"])
    order = rng.permutation(len(rows)).tolist()
    return pa.Table.from_pylist([rows[i] for i in order], schema=_out_schema())


def mix_summary(table: pa.Table) -> dict:
    """Counts per source, total, distinct new facts and the replay share of new + replay."""
    counts = Counter(table.column("source").to_pylist())
    new, replay = counts.get("new", 0), counts.get("replay", 0)
    new_facts = {p for s, p in zip(table.column("source").to_pylist(), table.column("pair_id").to_pylist())
                 if s == "new"}
    return {**{s: counts.get(s, 0) for s in SOURCES}, "total": table.num_rows, "new_facts": len(new_facts),
            "replay_share": round(replay / (new + replay), 4) if new + replay else 0.0}
