"""Coreference across one person's messages: facts, and who 'she', 'his name' and a bare name refer to."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tasks.patterns.blocks import KIN_ADJ, MY, NAME, OTHER, PET_WORD, REL, I
from tasks.patterns.spans import name_span
from tasks.text import normalize_value
from tasks.vocabulary import BREEDS, PETS, REL_ALIAS, RELS


def _rel(word: str) -> str:
    """The relation a word names: 'mum' -> 'mother'."""
    return REL_ALIAS.get(word.lower(), word.lower())


@dataclass(frozen=True)
class Fact:
    """One fact about the user found by a template, with the value's span in the message."""

    fact_type: str
    subject: str
    value: str
    start: int | None
    end: int | None
    question: str
    answer: str
    member: str | None = None  # the family member, pet or time slot the fact is about


@dataclass
class Context:
    """What earlier messages said about family members and pets, for 'she', 'his name' and names."""

    members: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)  # folded name -> (kind, subject, name)
    last: dict[str | None, tuple[str, str, str | None]] = field(default_factory=dict)  # gender -> (kind, subject, name)
    origin: dict[str, str] = field(default_factory=dict)  # folded name -> the exchange that introduced it
    by_subject: dict[str, dict[str, str]] = field(default_factory=dict)  # subject -> folded name -> name
    current: str = ""  # the exchange being read

    def note(self, kind: str, subject: str, name: str | None, gender: str | None) -> None:
        entry = (kind, subject, name)
        if name:
            self.members[normalize_value(name)] = entry
            self.origin.setdefault(normalize_value(name), self.current)
            self.by_subject.setdefault(subject, {})[normalize_value(name)] = name
        self.last[gender] = entry
        if gender is not None:
            self.last[None] = entry

    def named(self, name: str) -> tuple[str, str, str | None] | None:
        return self.members.get(normalize_value(name))

    def only(self, subject: str) -> str | None:
        names = self.by_subject.get(subject, {})
        return next(iter(names.values())) if len(names) == 1 else None

    def resolve(self, pronoun: str, text: str, pos: int) -> tuple[str, str, str | None] | None:
        """The nearest earlier mention (this message first, then earlier ones) matching the pronoun.

        None when the nearest mention in this message is someone outside the family ('my colleague
        Ines ... she's a producer'): the pronoun is theirs, not a relative's from an earlier message.
        """
        gender = {"he": "m", "his": "m", "him": "m", "she": "f", "her": "f"}.get(pronoun.lower())
        best: tuple[str, str, str | None] | str | None = None
        for m in MENTION.finditer(text, 0, pos):
            if m.group("rel"):
                rel = _rel(m.group("rel"))
                if RELS.get(rel) in (gender, None):
                    span = name_span(text, *m.span("name")) if m.group("name") else None  # not "Rania's"
                    best = ("family", rel, text[span[0]:span[1]] if span else self.only(rel))
            elif m.group("other"):
                best = "other"
            elif m.group("pet"):  # 'we adopted a greyhound, his name is Comet'
                word = m.group("pet").lower()
                kind = PETS.get(word) or BREEDS[word]
                best = ("pet", kind, self.only(kind))
            elif (hit := self.named(m.group("known"))) and (gender is None or hit[0] == "pet" or
                                                          RELS.get(hit[1]) in (gender, None)):
                best = hit
        if best == "other":
            return None
        return best or self.last.get(gender)


MENTION = re.compile(rf"\b{MY} {KIN_ADJ}(?P<rel>{REL})\b(?:,? (?P<name>{NAME}))?|(?P<other>{OTHER})|"
                     rf"\b(?:an?|my|our|the) (?:[a-z]+ ){{0,2}}?(?P<pet>{PET_WORD})s?\b|(?P<known>{NAME})", I)
