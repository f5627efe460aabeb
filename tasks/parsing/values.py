"""Values read off a parse: the words of a noun phrase, a name, a place, with their offsets in the message."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.patterns.blocks import LANGUAGES, NOT_NAME

PLACE_LABELS = frozenset({"GPE", "LOC", "FAC", "ORG", "NORP", "PERSON"})
# Modifiers that belong to a value ('old Egyptian cinema', 'oat milk lattes'); determiners and owners do not.
KEEP_LEFT = frozenset({"amod", "compound", "nummod", "nmod", "quantmod", "npadvmod", "poss"})
FILLER = frozenset("really very so just also too a the an some any lot lots bit little kinda kind sort such".split())


@dataclass(frozen=True)
class Value:
    """A value as the person typed it and its [start, end) in the sentence's text."""

    text: str
    start: int
    end: int


def _span(doc, start: int, end: int) -> Value:
    span = doc[start:end]
    return Value(span.text, span.start_char, span.end_char)


def entity_of(tok):
    """The named entity the token is part of, or None."""
    return next((e for e in tok.doc.ents if e.start <= tok.i < e.end), None)


def name_value(tok) -> Value | None:
    """A capitalised name at tok with its compound parts ('Trinity College Dublin', 'Sea Wolf')."""
    if not tok.text[:1].isupper() or tok.text in NOT_NAME or not tok.is_alpha:
        return None
    start = tok.i
    for c in sorted((c for c in tok.lefts if c.dep_ in ("compound", "amod", "nmod")), key=lambda c: -c.i):
        if c.i == start - 1 and c.text[:1].isupper() and c.is_alpha and c.text not in NOT_NAME:
            start = c.i
    end = tok.i + 1
    doc = tok.doc
    while end < len(doc) and doc[end].head.i == tok.i and (
            doc[end].dep_ in ("compound", "flat", "appos") and doc[end].text[:1].isupper() and doc[end].is_alpha
            or doc[end].dep_ in ("nummod", "appos", "npadvmod") and doc[end].text.isdigit()):  # 'Paddington 2'
        end += 1
    return _span(doc, start, end)


def place_value(tok) -> Value | None:
    """A place or organisation: the entity around tok, a capitalised name, or a bare lower-case noun."""
    ent = entity_of(tok)
    if ent is not None and ent.label_ in PLACE_LABELS:
        start = ent.start + (1 if ent[0].lower_ == "the" else 0)
        return _span(tok.doc, start, ent.end) if start < ent.end else None
    if named := name_value(tok):
        return named
    if tok.pos_ in ("NOUN", "PROPN") and not any(c.dep_ in ("det", "poss") for c in tok.children) and tok.is_alpha \
            and tok.lower_ not in ("home", "town", "city", "country", "area", "place", "here", "there", "school", "uni",
                                   "university", "college", "work", "office"):
        return np_value(tok)
    return None


QUANTITY = frozenset("lot lots cup cups glass glasses pot bit kind sort type pint mug bottle loads plenty".split())


def np_value(tok, right: bool = True) -> Value:
    """The noun phrase headed by tok without its determiner or owner ('a rescue greyhound' -> 'rescue greyhound')."""
    doc = tok.doc
    if tok.lower_ in QUANTITY:  # 'a lot of green tea', 'a cup of rooibos': the stuff, not the amount
        obj = next((g for c in tok.rights if c.dep_ == "prep" and c.lower_ == "of" for g in c.children
                    if g.dep_ == "pobj"), None)
        if obj is not None:
            return np_value(obj, right)
    start = tok.i
    for c in sorted(tok.lefts, key=lambda c: -c.i):
        edge = c.left_edge.i
        if c.i == start - 1 and c.dep_ in KEEP_LEFT and c.lower_ not in FILLER and c.dep_ != "poss" and \
                all(doc[k].dep_ in KEEP_LEFT and doc[k].dep_ != "poss" for k in range(edge, c.i)):
            start = edge  # 'oat milk lattes', 'Studio Ghibli films': a chain of modifiers
        elif c.i == start - 1 and c.dep_ == "poss":
            break
    end = tok.i + 1
    if right:
        for c in tok.rights:
            if c.i == end and c.dep_ in ("compound", "flat", "prt", "nummod"):
                end = c.i + 1
            elif c.dep_ == "prep" and c.lower_ == "of" and c.i == end and tok.lower_ in ("cup", "glass", "pot"):
                end = c.right_edge.i + 1
    if tok.pos_ == "VERB":  # 'hiking', 'playing chess': the gerund and its object
        for c in tok.rights:
            if c.dep_ in ("dobj", "prt") and c.i == end:
                end = c.right_edge.i + 1 if c.dep_ == "dobj" else c.i + 1
    while end - 1 > start and (doc[end - 1].is_punct or doc[end - 1].lower_ in FILLER):
        end -= 1
    return _span(doc, start, end)


def conjuncts(tok) -> list:
    """tok and the nouns joined to it by and / or ('jazz, opera and folk')."""
    return [tok, *[c for c in tok.conjuncts if c.i > tok.i]]


def language(tok) -> str | None:
    return tok.text if tok.lower_ in LANGUAGES else None


def number(tok) -> str | None:
    """A number as typed ('34', 'thirty') when tok is one."""
    if tok.like_num and tok.is_alpha is False and tok.text.isdigit():
        return tok.text
    if tok.like_num or tok.pos_ == "NUM":
        return tok.text
    return None


def ent_text(tok, labels: frozenset[str]) -> Value | None:
    ent = entity_of(tok)
    return _span(tok.doc, ent.start, ent.end) if ent is not None and ent.label_ in labels else None


def subtree_value(tok, stop_deps=frozenset({"relcl", "advcl", "punct", "cc", "conj", "mark"})) -> Value:
    """tok's whole phrase, cut before a relative clause, a conjunction or punctuation."""
    doc = tok.doc
    start = tok.left_edge.i
    while start < tok.i and doc[start].dep_ in ("det", "poss", "predet") or start < tok.i and \
            doc[start].lower_ in FILLER:
        start += 1
    end = tok.i + 1
    for c in tok.rights:
        if c.dep_ in stop_deps:
            break
        end = c.right_edge.i + 1
    while end - 1 > start and doc[end - 1].is_punct:
        end -= 1
    return _span(doc, start, end)
