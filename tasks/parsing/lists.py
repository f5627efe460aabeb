"""Facts said as a list after a colon: 'things i like: bouldering, dub reggae, long train rides'."""

from __future__ import annotations

from tasks.parsing.values import FILLER, Value
from tasks.patterns import Fact
from tasks.patterns.spans import _second_person

# The word before the colon -> (fact type, question, answer); the list's items are the values.
HEADS = {
    "like": ("likes", "Do you like {sv}?", "Yes, you like {sv}."),
    "love": ("likes", "Do you like {sv}?", "Yes, you love {sv}."),
    "enjoy": ("likes", "Do you like {sv}?", "Yes, you enjoy {sv}."),
    "hate": ("dislikes", "Do you like {sv}?", "No, you hate {sv}."),
    "dislike": ("dislikes", "Do you like {sv}?", "No, you dislike {sv}."),
    "hobby": ("hobby", "What is one of your hobbies?", "One of your hobbies is {sv}."),
    "hobbies": ("hobby", "What is one of your hobbies?", "One of your hobbies is {sv}."),
}
SEPARATORS = frozenset({",", "and", "or", "&", ";", "/", "+"})


def colon_list_facts(sent) -> list[Fact]:
    """The items of a list the person introduces as theirs ('i like:', 'my hobbies:') with their spans."""
    colon = next((t for t in sent if t.text == ":"), None)
    if colon is None or colon.i == 0:
        return []
    before = sent[:colon.i]
    head = before[-1]
    key = head.lemma_.lower() if head.lemma_.lower() in HEADS else head.lower_
    if key not in HEADS:
        return []
    mine = any(t.lower_ in ("i", "my", "we", "our") for t in before)
    if not mine or any(t.dep_ == "neg" for t in before):
        return []
    ftype, q, a = HEADS[key]
    items, cur = [], []
    for tok in sent[colon.i + 1:]:
        if tok.lower_ in SEPARATORS or tok.is_punct:
            items.append(cur)
            cur = []
        else:
            cur.append(tok)
    items.append(cur)
    out = []
    for toks in items:
        while toks and (toks[0].dep_ in ("det", "poss") or toks[0].lower_ in FILLER):
            toks = toks[1:]
        if not toks or len(toks) > 5:
            continue
        v = Value(sent[toks[0].i:toks[-1].i + 1].text, toks[0].idx, toks[-1].idx + len(toks[-1].text))
        fill = dict(v=v.text, sv=_second_person(v.text))
        out.append(Fact(ftype, "user", v.text, v.start, v.end, q.format(**fill), a.format(**fill)))
    return out
