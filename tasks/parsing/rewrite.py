"""A person's sentence turned to the second person, read off its parse: I -> you, my -> your, I was -> you were."""

from __future__ import annotations

PRONOUNS = {"i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself", "we": "you", "us": "you",
            "our": "your", "ours": "yours", "ourselves": "yourselves"}
# A verb whose subject becomes 'you' takes the plural form: 'I was' -> 'you were', 'I am' -> 'you are'.
AGREE = {"am": "are", "'m": "'re", "’m": "'re", "m": "'re", "was": "were", "wasnt": "weren't", "'s": "'re"}
FIRST_SUBJECTS = frozenset({"i", "we"})


def _subject_is_first_person(tok) -> bool:
    """Does this verb (or the verb it helps) have 'I' or 'we' as its subject?"""
    head = tok if tok.dep_ not in ("aux", "auxpass") else tok.head
    for c in [*head.children, *tok.children]:
        if c.dep_ in ("nsubj", "nsubjpass") and c.lower_ in FIRST_SUBJECTS:
            return True
    # 'im' typed as one word: 'i' + 'm', where the parser may hang the 'm' under 'i'.
    return tok.i > 0 and tok.doc[tok.i - 1].lower_ in FIRST_SUBJECTS and tok.doc[tok.i - 1].whitespace_ == ""


def _cased(word: str, like: str) -> str:
    if like[:1].isupper() and (like != "I" or word):
        return word[:1].upper() + word[1:]
    return word


def second_person(doc) -> str:
    """The parsed sentence with the speaker as 'you', verbs agreeing; the first word capitalised, a full stop."""
    out = []
    for tok in doc:
        low = tok.lower_
        word = tok.text
        if low in PRONOUNS and not (low == "us" and tok.dep_ not in ("dobj", "pobj", "dative")):
            word = PRONOUNS[low]
            if low == "i" and tok.i > 0:
                word = "you"
            elif tok.i == 0:
                word = _cased(word, "X")
        elif low in AGREE and tok.pos_ in ("AUX", "VERB") and _subject_is_first_person(tok):
            word = AGREE[low]
            if low == "m" and tok.i > 0 and tok.doc[tok.i - 1].whitespace_ == "":
                word = "'re"
        out.append(word + tok.whitespace_)
    text = "".join(out).strip()
    text = text.replace("you 're", "you're")
    if text and not text[0].isupper():
        text = text[0].upper() + text[1:]
    text = text.rstrip(" ,;:-")
    if text and text[-1] not in ".!":
        text = text.rstrip("?") + "."
    return text.replace("!", ".") if text.endswith("!") else text
