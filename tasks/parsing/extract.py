"""The parse-based extractor's two steps: parse the marked sentences of many messages at once (nlp.pipe), then
read one message's facts and statements in time order with the person's context.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, replace

import numpy as np

from tasks.parsing.pipeline import CANDIDATES, load_pipeline
from tasks.parsing.rules import sentence_facts
from tasks.parsing.sentences import Sentence, sentences_to_parse
from tasks.parsing.statements import statement
from tasks.patterns import Context, Fact

# Every fact type the parse rules can emit (tests/test_vocabulary.py checks each is registered).
PARSE_FACT_TYPES = frozenset({
    "name", "residence", "moved_from", "hometown", "job", "workplace", "family_name", "family_age", "family_job",
    "family_home", "pet_name", "pet_kind", "pet_breed", "favorite", "likes", "dislikes", "allergy", "diet",
    "avoids_food", "possession", "possession_name", "age", "trip", "hobby", "instrument", "sport", "language_learning",
    "language_spoken", "wake_time", "drink", "fear", "education", "study_subject", "statement"})


@dataclass(frozen=True)
class Parsed:
    """One parsed sentence of a message."""

    sentence: Sentence
    doc: object  # spacy Doc


def parse_messages(texts: list[str], counts: Counter, batch_size: int = 256, max_message_chars: int = 4000,
                   max_sentence_chars: int = 400, candidates: tuple[str, ...] = CANDIDATES) -> list[list[Parsed]]:
    """Per message, its parsed sentences (only those with a first-person or possessive marker)."""
    items = [(i, s) for i, text in enumerate(texts)
             for s in sentences_to_parse(text or "", counts, max_message_chars, max_sentence_chars)]
    out: list[list[Parsed]] = [[] for _ in texts]
    if not items:
        return out
    docs = {s.text: _DOCS[s.text] for _, s in items if s.text in _DOCS}
    todo = list(dict.fromkeys(s.text for _, s in items if s.text not in docs))
    if todo:
        nlp = load_pipeline(candidates)
        for text, doc in zip(todo, nlp.pipe(todo, batch_size=batch_size)):
            doc.tensor = _NO_TENSOR  # the rules read tags, the tree and entities; the tensor is 3/4 of a Doc
            docs[text] = doc
            _remember(text, doc)
    for i, sent in items:
        out[i].append(Parsed(sent, docs[sent.text]))
    counts["sentences_parsed"] += len(items)  # read by the rules: parsed now, or by scoring just before
    counts["sentences_new"] += len(todo)  # distinct sentences the parser ran on now
    return out


# The parse of each sentence read lately: scoring reads the same messages extraction reads next. About 10 KiB
# a sentence without its tensor, so at most ~100 MiB.
_DOCS: OrderedDict[str, object] = OrderedDict()
DOC_CACHE_SIZE = 10_000
_NO_TENSOR = np.zeros((0,), dtype=np.float32)


def _remember(text: str, doc) -> None:
    _DOCS[text] = doc
    _DOCS.move_to_end(text)
    while len(_DOCS) > DOC_CACHE_SIZE:
        _DOCS.popitem(last=False)


def _placed(f: Fact, sent: Sentence) -> Fact:
    """The fact with its value's span moved from the parsed sentence to the message as typed."""
    if f.start is None or f.end is None or f.end <= f.start:
        return replace(f, start=None, end=None)
    return replace(f, start=sent.at(f.start), end=sent.at(f.end - 1) + 1)


def message_facts(parsed: list[Parsed], ctx: Context, covered: list[tuple[int, int]],
                  statements: bool = True) -> list[Fact]:
    """The facts of one message's parsed sentences, then a statement for each sentence of the person's own that
    gave no fact here and holds no span of the `covered` list (what the regex extractor found)."""
    out: list[Fact] = []
    for p in parsed:
        facts, _ = sentence_facts(p.doc, 0, ctx)
        facts = [_placed(f, p.sentence) for f in facts]
        out += facts
        if not statements or facts:
            continue
        if any(s < p.sentence.end and e > p.sentence.start for s, e in covered):
            continue
        if (st := statement(p.doc, p.sentence.start, p.sentence.end)) is not None:
            out.append(st)
    return out
