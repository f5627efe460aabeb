"""Spans of a pattern's value in a message: trimming, list items, names, questions, second person."""

from __future__ import annotations

import re

from tasks.patterns.blocks import AMOUNT, I, NOT_NAME, SWAP

_SWAP_RX = re.compile(r"\b(?:my|me|i|mine|myself|our|we|us|i'm|am)\b", I)


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _second_person(text: str) -> str:
    return _SWAP_RX.sub(lambda m: SWAP[m.group().lower()], text)



def _span(text: str, m: re.Match, group: str, shape: str) -> tuple[int, int] | None:
    s, e = m.span(group)
    return name_span(text, s, e) if shape == "name" else clean_span(text, s, e)


def _fill(fmt: str, v: str, **kw: str) -> str:
    return fmt.format(v=v, sv=_second_person(v), a=_a(v), **kw)



_END = re.compile(r"[.!?\n]")
# "My key is X, can you use it?": the statement ends at the comma, the tag after it is the question.
_TAG = re.compile(r",\s*(?:and |so |but )?(?:can|could|would|will|do|does|did|is|are|was|have|has|what|how|why|"
                  r"where|when|who|right|ok|okay|isn't|aren't|don't|doesn't|any|anything|thoughts|ideas|tips)\b", I)


def _in_question(text: str, pos: int) -> bool:
    m = _END.search(text, pos)
    return m is not None and m.group() == "?" and _TAG.search(text, pos, m.start()) is None


_TRAIL = re.compile(r"(?:[\s,;:.!?'’\"()]+|\s+(?:too|as well|a lot|so much|very much|lately|these days|now|though|"
                    r"anyway|haha|lol|by the way|btw|tbh|honestly|mostly|actually|at the moment|right now|for now|"
                    # 'I took up crochet over the winter': when it started is not part of the hobby.
                    r"(?:over|during|in|last|this) (?:the )?(?:winter|summer|spring|autumn|fall|holidays|lockdown|year|"
                    r"month|week|weekend))\b)+$", I)
_LEAD = re.compile(rf"(?:{AMOUNT} )+", I)


def clean_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink a span to drop surrounding spaces, trailing punctuation and filler words."""
    while start < end and text[start].isspace():
        start += 1
    m = _TRAIL.search(text, start, end)
    return start, (m.start() if m and m.end() == end else end)


def split_list(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of the items of 'a, b and c' / 'a or b' inside text[start:end]."""
    out, pos = [], start
    for sep in re.finditer(r",\s*(?:and |or )?|\s+(?:and|or|&)\s+", text[start:end]):
        out.append(clean_span(text, pos, start + sep.start()))
        pos = start + sep.end()
    out.append(clean_span(text, pos, end))
    out = [(m.end() if (m := _LEAD.match(text, s, e)) else s, e) for s, e in out]
    return [(s, e) for s, e in out if e > s]


def name_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Trim words that are not names ('And', 'Today') off a captured name; None when nothing is left."""
    words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
    while words and text[words[-1][0]:words[-1][1]].strip(".,!") in NOT_NAME:
        words.pop()
    if not words or text[words[0][0]:words[0][1]] in NOT_NAME:
        return None
    end = words[-1][1]
    if text[end - 2:end] in ("'s", "’s"):  # "my sister Rania's a pharmacist": the name is Rania
        end -= 2
    return clean_span(text, words[0][0], end)

