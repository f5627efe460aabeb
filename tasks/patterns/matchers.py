"""Matchers: every fact the rule tables find in one user message, family members and pets first."""

from __future__ import annotations

import re

from tasks.patterns.blocks import NOT_BREED, NOT_NAME, I
from tasks.patterns.context import Context, Fact, _rel
from tasks.patterns.rules import MEMBER_RULES, NAME_RULES, PET_DESCRIBED, PET_NAMED, RULES, _joblike
from tasks.patterns.spans import _a, _fill, _in_question, _span, clean_span, name_span, split_list
from tasks.vocabulary import BREED_WORDS, BREEDS, PETS, RELS


def _compile(p: str) -> re.Pattern:
    return re.compile(p, I)


_RULES = {fam: [(r, _compile(r.pattern)) for r in rules] for fam, rules in RULES.items()}
_MEMBER = [(_compile(p), *rest) for p, *rest in MEMBER_RULES]
_NAMES = [_compile(p) for p in NAME_RULES]
_PETS_NAMED = [_compile(p) for p in PET_NAMED]
_PET_DESCRIBED = _compile(PET_DESCRIBED)


def match_rules(family: str, text: str, ctx: Context) -> list[Fact]:
    """Facts found by one family of simple rules."""
    out = []
    for rule, rx in _RULES[family]:
        for m in rx.finditer(text):
            whole = _span(text, m, "v", rule.shape)
            if whole is None or _in_question(text, whole[1]):
                continue
            subject = (m.group(rule.subject[1:-1]) if rule.subject.startswith("<") else rule.subject).lower()
            groups = m.groupdict()
            when = f" {groups['when']}" if groups.get("when") else ""
            verb = (groups.get("verb") or "").lower().replace("’", "'")
            shown = subject.capitalize() if subject in ("monday", "tuesday", "wednesday", "thursday", "friday",
                                                        "saturday", "sunday") else subject
            for s, e in split_list(text, *whole) if rule.split else [whole]:
                v = text[s:e]
                if not v or (rule.check and not rule.check(v)):
                    continue
                kw = dict(subject=shown, when=when, verb=verb)
                out.append(Fact(rule.fact_type, subject, v, s, e, _fill(rule.question, v, **kw),
                                _fill(rule.answer, v, **kw)))
    return out


def _who(m: re.Match, text: str, ctx: Context) -> tuple[str, str, str | None] | None:
    """(kind, subject, name) of the person or pet a member rule's match is about."""
    g = m.groupdict()
    if g.get("rel"):
        rel = _rel(g["rel"])
        name = g.get("name")
        return "family", rel, (name if name and name not in NOT_NAME else ctx.only(rel))
    if g.get("known"):
        return ctx.named(g["known"])
    return ctx.resolve(g.get("pron") or "", text, m.start())


def _member_label(subject: str, name: str | None) -> str:
    return f"{subject} {name}" if name else subject


def match_family(text: str, ctx: Context) -> list[Fact]:
    """Names, ages, jobs, homes and birthdays of family members ('my daughter Mia is 8', 'she turned 9')."""
    out = []
    for rx in _NAMES:
        for m in rx.finditer(text):
            span = name_span(text, *m.span("v"))
            g = m.groupdict()
            if g.get("rel"):
                who = ("family", _rel(g["rel"]), None)
            elif g.get("pron"):
                who = ctx.resolve(g["pron"], text, m.start())
            else:
                who = ("family", "spouse", None)
            if span is None or who is None or _in_question(text, m.end("v")):
                continue
            kind, subject, _ = who
            name = text[span[0]:span[1]]
            ftype, what = ("pet_name", f"{subject}'s") if kind == "pet" else ("family_name", f"{subject}'s")
            out.append(Fact(ftype, subject, name, *span, f"What is your {what} name?", f"Your {what} name is {name}.",
                            member=name))
            ctx.note(kind, subject, name, RELS.get(subject) if kind == "family" else
                     {"his": "m", "her": "f"}.get((g.get("pron") or "").lower()))
    for rx, ftype, q, a in _MEMBER:
        for m in rx.finditer(text):
            who = _who(m, text, ctx)
            if who is None or who[0] != "family" or _in_question(text, m.end("v")):
                continue
            s, e = clean_span(text, *m.span("v"))
            v = text[s:e]
            # 'works as' is a job by itself; 'is a ...' only when it ends like one ('a bit tired' does not).
            if not v or ftype == "family_job" and "works as" not in m.group().lower() and not _joblike(v):
                continue
            members = [who[1:]]
            if rel2 := m.groupdict().get("rel2"):  # 'my mum and dad live in Tunis'
                members.append((_rel(rel2), ctx.only(_rel(rel2))))
            unit = (m.groupdict().get("unit") or " years").strip()
            for subject, name in members:
                who_s = _member_label(subject, name)
                qq, aa = q, a
                if subject == "parents":  # plural verbs
                    qq, aa = qq.replace("does", "do"), aa.replace("lives", "live").replace("works", "work")
                out.append(Fact(ftype, subject, v, s, e, _fill(qq, v, who=who_s),
                                _fill(aa, v, who=who_s, unit=unit), member=name))
                ctx.note("family", subject, name, RELS.get(subject))
    return out


def classify_pet(desc: str) -> tuple[str, str | None] | None:
    """(kind, breed) for words like 'border collie' or 'little black cat'; None when not an animal."""
    words = desc.lower().split()
    if not words:
        return None
    last = words[-1]
    if last in PETS:
        kind, rest = PETS[last], words[:-1]
    elif last in BREEDS:  # 'an elderly whippet' -> whippet; 'a border collie' -> border collie
        kind, rest = BREEDS[last], [last]
        for w in reversed(words[:-1]):
            if w not in BREED_WORDS and w not in BREEDS:
                break
            rest.insert(0, w)
    else:
        return None
    breed = " ".join(w for w in rest if w not in NOT_BREED and w not in PETS)
    return kind, (breed or None)


def _breed(text: str, m: re.Match, kind: str, breed: str, name: str) -> Fact:
    bs = text.lower().find(breed, *m.span("desc"))
    bs, be = (bs, bs + len(breed)) if bs >= 0 else (None, None)
    return Fact("pet_breed", kind, breed, bs, be, f"What breed is your {kind} {name}?",
                f"Your {kind} {name} is {_a(breed)} {breed}.", member=name)


def match_pets(text: str, ctx: Context) -> list[Fact]:
    """Pets' names, kinds and breeds ('we have a border collie named Pepper', 'Miso is a ragdoll')."""
    out = []
    for rx in _PETS_NAMED:
        for m in rx.finditer(text):
            if _in_question(text, m.end()) or (cls := classify_pet(m.group("desc"))) is None:
                continue
            kind, breed = cls
            kind_at = text.lower().find(kind, *m.span("desc"))
            # 'a border collie' names no kind word: the value has no span then.
            ks, ke = (kind_at, kind_at + len(kind)) if kind_at >= 0 else (None, None)
            for item in split_list(text, *m.span("v")):
                if (span := name_span(text, *item)) is None:
                    continue
                name = text[span[0]:span[1]]
                out.append(Fact("pet_name", kind, name, *span, f"What is your {kind}'s name?",
                                f"Your {kind}'s name is {name}.", member=name))
                out.append(Fact("pet_kind", "pet", kind, ks, ke, f"What kind of animal is {name}?",
                                f"{name} is your {kind}.", member=name))
                ctx.note("pet", kind, name, None)
                if breed:
                    out.append(_breed(text, m, kind, breed, name))
    for m in _PET_DESCRIBED.finditer(text):
        if _in_question(text, m.end()) or (cls := classify_pet(m.group("desc"))) is None:
            continue
        kind, breed = cls
        g = m.groupdict()
        if g.get("kind"):
            name = ctx.only(PETS.get(g["kind"].lower(), BREEDS.get(g["kind"].lower(), "")))
        else:
            who = ctx.named(g["known"]) if g.get("known") else ctx.resolve(g.get("pron") or "", text, m.start())
            if who is None or who[0] != "pet":
                continue
            kind, name = who[1], who[2]
        if breed and name is not None:
            out.append(_breed(text, m, kind, breed, name))
    return out


def match_message(text: str, families: list[str], ctx: Context) -> list[Fact]:
    """Every fact the given families find in one user message (family members and pets first)."""
    text = text.replace("’", "'")  # same length: spans still index the message as typed
    out: list[Fact] = []
    if "pets" in families:
        out += match_pets(text, ctx)
    if "family" in families:
        out += match_family(text, ctx)
    for fam in families:
        if fam in _RULES:
            out += match_rules(fam, text, ctx)
    return out
