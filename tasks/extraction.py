"""Stage 2: turn retained exchanges into candidate question-answer pairs about the user.

Extractors share one output (candidate_pairs without run_id): rules over the user's own words (method
"template": regex patterns, tasks/patterns/, and dependency-parse rules with statement memories,
tasks/parsing/) and an injected model that writes `Q:`/`A:` pairs. Only `user_text` is ever read by the
rules: what the assistant said never becomes a fact.
`merge_candidates` folds duplicates into one pair and links corrections to what they replace.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from storage.ids import pair_id
from storage.schemas import without_run_id
from tasks.parsing.extract import message_facts, parse_messages
from tasks.patterns import TRIGGERS, Context, Fact, match_message
from tasks.text import normalize_value

Generate = Callable[[list[list[dict]]], list[str]]
# Facts a person can have several of: the value is part of the key, so they accumulate.
MULTI_VALUED = frozenset({"likes", "dislikes", "allergy", "intolerance", "avoids_food", "hobby", "instrument", "sport",
                          "language_learning", "language_spoken", "trip", "plan", "drink", "fear", "statement"})
METHOD_ORDER = {"template": 0, "model": 1, "dream": 2}


class ExtractionConfig(BaseModel):
    """Which template families run, and how model-based extraction is batched and capped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    families: tuple[str, ...] = Field(tuple(TRIGGERS), description="Pattern families to run (see tasks/patterns/rules.py).")
    max_pairs_per_exchange: int = Field(6, ge=1, description="Most model-written pairs kept from one exchange.")
    batch_size: int = Field(16, ge=1, description="Prompts per call of the injected generate function.")
    model_batch_size: int = Field(8, ge=1, description="Prompts the model decodes at once inside one generate call "
                                  "(batched decoding: ~3x the tokens/s of one prompt at a time on CPU).")
    max_prompt_chars: int = Field(1500, ge=100, description="User or assistant text longer than this is cut in the prompt.")
    # Off by default: on the labelled case the 135M default model wrote 6 pairs in 16 CPU minutes and
    # the firewall rejected all 6 as ungrounded. Worth turning on with a larger model or on Metal.
    use_model: bool = Field(False, description="Also ask the current model to write pairs (slow on CPU; the "
                            "firewall checks them like any other).")
    model: str | None = Field(None, description="An mlx-lm model that writes pairs at night instead of the current "
                              "version: a local folder (e.g. a 1-3B instruct model made with mlx_lm.convert) or a "
                              "Hugging Face id 'owner/name' (mlx-lm fetches it, so only with a network). Setting it "
                              "turns model extraction on; its pairs pass the same firewall as every pair.")
    model_max_tokens: int = Field(128, ge=16, description="Longest model-written extraction per exchange.")
    parse: bool = Field(True, description="Also read facts off the dependency parse of each user sentence with a "
                        "first-person or possessive marker (tasks/parsing/, spaCy en_core_web_sm).")
    statements: bool = Field(True, description="Keep a first-person sentence no fact type covers as a statement "
                             "memory ('What did I tell you about my boat?').")
    parse_batch_size: int = Field(256, ge=1, description="Sentences per nlp.pipe batch.")
    max_parse_message_chars: int = Field(4000, ge=100, description="A longer user message is not parsed "
                                         "(counted as skipped:too-long).")
    max_parse_sentence_chars: int = Field(400, ge=20, description="A longer sentence is not parsed.")

    @field_validator("model")
    @classmethod
    def _model_ref(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        path = Path(value).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise ValueError(f"{path} has no config.json: not an mlx-lm model folder")
            return str(path.resolve())
        if re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", value):
            return value  # a Hugging Face id, fetched when the model is loaded
        raise ValueError(f"no folder {path}, and not a Hugging Face id 'owner/name'")

    @property
    def writes_with_model(self) -> bool:
        """Whether a model writes pairs too (the named extraction model, or the current version)."""
        return self.model is not None or self.use_model


CANDIDATE_SCHEMA = without_run_id("candidate_pairs")


def fact_key(fact_type: str, subject: str, member: str | None, value: str) -> str:
    """fact_type:subject[:member][:value]; a later value for the same key supersedes an earlier one."""
    key = f"{fact_type}:{subject}"
    if member:
        key += ":" + normalize_value(member)
    if fact_type in MULTI_VALUED:
        key += ":" + normalize_value(value)
    return key


def _rows_by_time(exchanges: pa.Table, idx: np.ndarray) -> list[int]:
    """Row indices ordered by (timestamp, session_id, turn): the order a person said things in."""
    sub = exchanges.select(["timestamp", "session_id", "turn"]).take(pa.array(idx, pa.int64()))
    order = pc.sort_indices(sub, [("timestamp", "ascending"), ("session_id", "ascending"), ("turn", "ascending")])
    return idx[order.to_numpy()].tolist()


_POV = [(re.compile(r"\bare you\b", re.I), "am I"), (re.compile(r"\bwere you\b", re.I), "was I"),
        (re.compile(r"\byourself\b", re.I), "myself"), (re.compile(r"\byours\b", re.I), "mine"),
        (re.compile(r"\byour\b", re.I), "my"), (re.compile(r"\byou\b", re.I), "I")]


def user_question(question: str) -> str:
    """The question as the user would ask it ("What is my name?"): the model answers "Your name is ...".

    Trained the other way round ("What is your name?"), the model would learn the user's name as its own.
    """
    for pattern, repl in _POV:
        question = pattern.sub(lambda m: repl if m.group(0)[0].islower() else repl[0].upper() + repl[1:],
                               question)
    return question


def _candidates(cols: dict[str, list], ex_id: str, method: str, f: Fact, key: str, also: str | None = None) -> None:
    if f.fact_type != "statement":  # a statement's question is written as the person asks it
        f = dataclasses.replace(f, question=user_question(f.question))
    cols["pair_id"].append(pair_id(ex_id, method, f.question, f.answer))
    cols["exchange_id"].append(ex_id)
    cols["source_exchange_ids"].append([ex_id] if also in (None, ex_id) else [ex_id, also])
    cols["method"].append(method)
    cols["methods"].append([method])
    cols["fact_type"].append(f.fact_type)
    cols["subject"].append(f.subject)
    cols["value"].append(f.value)
    cols["question"].append(f.question)
    cols["answer"].append(f.answer)
    cols["span_start"].append(f.start)
    cols["span_end"].append(f.end)
    cols["fact_key"].append(key)
    cols["superseded_by"].append(None)


def _regex_has(found: list[Fact], f: Fact) -> bool:
    """Did the regex families already state this fact: the same type at an overlapping span, or, for a fact
    a person has one of (or one the parser cannot place), the same type about the same subject?"""
    for g in found:
        if g.fact_type != f.fact_type:
            continue
        if f.start is not None and g.start is not None and g.start < f.end and f.start < g.end:
            return True
        if (f.fact_type not in MULTI_VALUED or f.start is None or g.start is None) and g.subject == f.subject:
            return True
    return False


def keep_stated_facts(exchanges: pa.Table, scored: pa.Table, cfg: ExtractionConfig,
                      counts: Counter | None = None) -> pa.Table:
    """scored, with every exchange scoring dropped but whose user message the parse rules read a fact from
    retained after all (rule `importance:fact`): scoring must not drop what extraction would find.

    The person's messages are read in the order they were said, the retained ones too, so a name said in
    one ('my husband, Geoffrey') lets a later one ('Geoffrey works as a harbour pilot') be read. Statement
    memories do not count: they are kept only of what scoring retained.
    """
    retained = scored["retained"].to_numpy(zero_copy_only=False)
    if not cfg.parse or retained.all() or exchanges.num_rows == 0:
        return scored
    ids = exchanges["exchange_id"].to_pylist()
    row_of = {e: i for i, e in enumerate(scored["exchange_id"].to_pylist())}
    parsed = parse_messages(exchanges["user_text"].to_pylist(), Counter() if counts is None else counts,
                            cfg.parse_batch_size, cfg.max_parse_message_chars, cfg.max_parse_sentence_chars)
    ctx, rescued = Context(), set()
    for row in _rows_by_time(exchanges, np.flatnonzero([bool(p) for p in parsed])):
        ctx.current = ids[row]
        facts = message_facts(parsed[row], ctx, [], statements=False)
        if facts and ids[row] in row_of and not retained[row_of[ids[row]]]:
            rescued.add(row_of[ids[row]])
    if not rescued:
        return scored
    keep = retained.copy()
    keep[list(rescued)] = True
    rules = scored["rules"].to_pylist()
    for i in rescued:
        rules[i] = [*rules[i], "importance:fact"]
    out = scored.set_column(scored.schema.get_field_index("retained"), "retained", pa.array(keep, pa.bool_()))
    return out.set_column(out.schema.get_field_index("rules"), out.schema.field("rules"),
                          pa.array(rules, out.schema.field("rules").type))


def extract_template_pairs(exchanges: pa.Table, cfg: ExtractionConfig, counts: Counter | None = None) -> pa.Table:
    """candidate_pairs rows (without run_id) found by the rules in each user message (regex, then parse).

    counts, when given, receives the parser's numbers: sentences parsed and sentences or messages left
    out by reason (skipped:too-long, skipped:code, skipped:no-words, skipped:other-script, ...).
    """
    counts = Counter() if counts is None else counts
    texts = exchanges.column("user_text")
    fired = {fam: pc.match_substring_regex(texts, TRIGGERS[fam], ignore_case=True).to_numpy(zero_copy_only=False)
             for fam in cfg.families}
    hits = np.vstack(list(fired.values())) if fired else np.zeros((0, len(texts)), bool)
    parsed = parse_messages(texts.to_pylist(), counts, cfg.parse_batch_size, cfg.max_parse_message_chars,
                            cfg.max_parse_sentence_chars) if cfg.parse else [[] for _ in range(len(texts))]
    wanted = hits.any(axis=0) | np.array([bool(p) for p in parsed], bool) if len(texts) else np.zeros(0, bool)
    idx = np.flatnonzero(wanted)
    cols: dict[str, list] = {n: [] for n in CANDIDATE_SCHEMA.names}
    ctx = Context()  # one person's logs: what they said earlier resolves 'she' and names later
    names = list(fired)
    order = _rows_by_time(exchanges, idx) if len(idx) else []
    picked = exchanges.select(["exchange_id", "user_text"]).take(pa.array(order, pa.int64()))
    # Which families fired, as one integer per row: few distinct combinations, each decoded once.
    masks = (hits[:, order].T.astype(np.int64) << np.arange(len(names), dtype=np.int64)).sum(axis=1).tolist() \
        if len(order) else []
    decode = functools.lru_cache(maxsize=None)(lambda m: [n for k, n in enumerate(names) if m >> k & 1])
    for row, mask, ex_id, text in zip(order, masks, picked.column("exchange_id").to_pylist(),
                                      picked.column("user_text").to_pylist()):
        families = decode(mask)
        seen: set[tuple[str, str]] = set()
        ctx.current = ex_id
        found = match_message(text, families, ctx) if families else []
        # The regex families were tuned first: where one found a fact, its value stands, and the parser adds
        # the facts it reads elsewhere in the message ('I speak Dutch as well as English').
        covered = [(f.start, f.end) for f in found if f.start is not None]
        parse_found = [f for f in message_facts(parsed[row], ctx, covered, cfg.statements)
                       if not _regex_has(found, f)] if parsed[row] else []
        counts["parse_facts"] += sum(f.fact_type != "statement" for f in parse_found)
        counts["statements"] += sum(f.fact_type == "statement" for f in parse_found)
        for f in [*found, *parse_found]:
            key = fact_key(f.fact_type, f.subject, f.member, f.value)
            if (key, normalize_value(f.value)) in seen:
                continue
            seen.add((key, normalize_value(f.value)))
            # 'He's 6' names nobody: the exchange that introduced the son is a source of the fact too.
            also = ctx.origin.get(normalize_value(f.member)) if f.member else None
            _candidates(cols, ex_id, "template", f, key, also)
    return pa.Table.from_pydict(cols, schema=CANDIDATE_SCHEMA)


def merge_candidates(candidates: pa.Table, exchanges: pa.Table) -> pa.Table:
    """One pair per (fact_key, value) with every source and method; older values superseded by newer."""
    rows = candidates.to_pylist()
    wanted = pa.array({e for r in rows for e in [r["exchange_id"], *r["source_exchange_ids"]]}, pa.string())
    known = exchanges.filter(pc.is_in(exchanges.column("exchange_id"), wanted))
    when = {r["exchange_id"]: (r["timestamp"], r["session_id"], r["turn"])
            for r in known.select(["exchange_id", "timestamp", "session_id", "turn"]).to_pylist()}
    missing = sorted(set(wanted.to_pylist()) - set(when))
    if missing:
        raise ValueError(f"{len(missing)} candidate source exchanges are not in the exchanges table, e.g. "
                         f"{missing[:3]}; pass every exchange the candidates came from")
    _align_model_rows(rows)
    rows.sort(key=lambda r: (when[r["exchange_id"]], METHOD_ORDER.get(r["method"], 9)))
    groups: dict[tuple[str, str], dict] = {}
    sources: dict[tuple[str, str], dict[str, None]] = {}  # ordered sets: a fact may be said thousands of times
    methods: dict[tuple[str, str], dict[str, None]] = {}
    for r in rows:
        k = (r["fact_key"], normalize_value(r["value"]))
        if k not in groups:
            groups[k], sources[k], methods[k] = dict(r, superseded_by=None), {}, {}
        sources[k].update(dict.fromkeys(r["source_exchange_ids"]))
        methods[k].update(dict.fromkeys(r["methods"]))
    merged = list(groups.values())
    for k, g in groups.items():
        g["source_exchange_ids"] = sorted(sources[k], key=when.__getitem__)
        g["methods"] = list(methods[k])
    by_key: dict[str, list[dict]] = {}
    for g in merged:
        by_key.setdefault(g["fact_key"], []).append(g)
    for chain in by_key.values():
        # The value said last is the current one; each older value points at the next newer one.
        chain.sort(key=lambda g: (when[g["source_exchange_ids"][-1]], when[g["exchange_id"]]))
        for older, newer in zip(chain, chain[1:]):
            older["superseded_by"] = newer["pair_id"]
    return pa.Table.from_pylist(merged, schema=CANDIDATE_SCHEMA)


def _align_model_rows(rows: list[dict]) -> None:
    """Give a model pair the key and value of the template fact it restates, so they merge."""
    by_question: dict[str, list[dict]] = {}
    for r in rows:
        if r["method"] == "template":
            by_question.setdefault(normalize_value(r["question"]), []).append(r)
    for r in rows:
        if r["method"] == "template":
            continue
        answer = f" {normalize_value(r['answer'])} "
        for t in by_question.get(normalize_value(r["question"]), []):
            if f" {normalize_value(t['value'])} " in answer:
                r["fact_key"], r["fact_type"], r["subject"], r["value"] = t["fact_key"], t["fact_type"], \
                    t["subject"], t["value"]
                break


EXTRACTION_SYSTEM = (
    "You write flashcards about the USER from one exchange of a chat. Use only facts the user states about "
    "themselves or their family, pets, home, work, likes and plans. Never use anything the assistant said. "
    "Never include passwords, keys or other secrets. Ask in second person ('What is your ...?') and answer in "
    "second person ('Your ... is ...'). Write each pair as two lines, 'Q: ...' then 'A: ...'. If the user states "
    "no fact about themselves, write NONE."
)


def build_extraction_prompt(user_text: str, assistant_text: str, max_chars: int = 1500) -> list[dict]:
    """Chat messages asking a model for Q:/A: pairs about the user in one exchange."""
    cut = lambda s: s if len(s) <= max_chars else s[:max_chars] + " [...]"  # noqa: E731
    return [
        {"role": "system", "content": EXTRACTION_SYSTEM},
        {"role": "user", "content": f"USER said: {cut(user_text)}\nASSISTANT replied: {cut(assistant_text)}\n\n"
                                    "Flashcards about the USER:"},
    ]


_BULLET = r"^\s*(?:[-*•]+|\(?\d+[.):]|\(?[a-z][.)])?\s*(?:\*\*)?"
_Q = re.compile(_BULLET + r"(?:q|question)\s*\d*\s*(?:\*\*)?\s*[:.)\-]\s*(?:\*\*)?\s*(?P<q>.*)$", re.I)
_A = re.compile(_BULLET + r"(?:a|answer)\s*\d*\s*(?:\*\*)?\s*[:.)\-]\s*(?:\*\*)?\s*(?P<a>.*)$", re.I)
_INLINE_A = re.compile(r"\s+(?:\*\*)?(?:a|answer)\s*(?:\*\*)?\s*:\s*", re.I)


def parse_qa_pairs(text: str, max_pairs: int) -> list[tuple[str, str]]:
    """(question, answer) pairs from a model's Q:/A: output, tolerant of numbering, bullets and prose."""
    pairs: list[tuple[str, str]] = []
    question: str | None = None
    for line in text.splitlines():
        if len(pairs) >= max_pairs:
            break
        if m := _Q.match(line):
            q = m.group("q").strip()
            inline = _INLINE_A.split(q, maxsplit=1)  # 'Q: ... A: ...' on one line
            question = inline[0].strip().strip("*").strip() or None
            if len(inline) == 2 and question and inline[1].strip():
                pairs.append((question, inline[1].strip().strip("*").strip()))
                question = None
        elif (m := _A.match(line)) and question:
            answer = m.group("a").strip().strip("*").strip()
            if answer:
                pairs.append((question, answer))
            question = None
    # A question left without an answer (the output was cut) is dropped.
    return [(q, a) for q, a in pairs if q and a][:max_pairs]


_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|im|my|me|mine|myself|we|we're|our|us)\b", re.I)


def _to_second_person(answer: str) -> str:
    """A model's answer said as the person would ('My name is Ingrid') turned to the second person ('Your name is
    Ingrid.'), as statement memories are: trained in the first person, the model would take it as its own."""
    if not _FIRST_PERSON.search(answer):
        return answer
    from tasks.parsing.pipeline import load_pipeline
    from tasks.parsing.rewrite import second_person

    return " ".join(second_person(sent.as_doc()) for sent in load_pipeline()(answer).sents)


def extract_model_pairs(exchanges: pa.Table, generate: Generate, cfg: ExtractionConfig) -> pa.Table:
    """candidate_pairs rows (without run_id) written by an injected model for each exchange."""
    ids = exchanges.column("exchange_id").to_pylist()
    users, assistants = exchanges.column("user_text").to_pylist(), exchanges.column("assistant_text").to_pylist()
    cols: dict[str, list] = {n: [] for n in CANDIDATE_SCHEMA.names}
    for lo in range(0, len(ids), cfg.batch_size):
        hi = min(lo + cfg.batch_size, len(ids))
        prompts = [build_extraction_prompt(users[i], assistants[i], cfg.max_prompt_chars) for i in range(lo, hi)]
        outputs = generate(prompts)
        if len(outputs) != len(prompts):
            raise ValueError(f"generate returned {len(outputs)} outputs for {len(prompts)} prompts; it must return "
                             "one string per prompt")
        for i, out in zip(range(lo, hi), outputs):
            seen: set[tuple[str, str]] = set()
            for q, a in parse_qa_pairs(out, cfg.max_pairs_per_exchange):
                a = _to_second_person(a)
                key = "model:" + normalize_value(q)
                if (key, normalize_value(a)) in seen:
                    continue
                seen.add((key, normalize_value(a)))
                _candidates(cols, ids[i], "model", Fact("model", "user", a, None, None, q, a), key)
    return pa.Table.from_pydict(cols, schema=CANDIDATE_SCHEMA)
