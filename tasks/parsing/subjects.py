"""Who a parsed clause is about: the person, one of their family or pets, a thing they own, or someone else.

Read off the dependency tree: 'I' / 'we' (or no subject at all), 'my X' / 'our X' with X a relation, a pet
or a thing, an apposition ('my sister Hilde'), a possessive ('Hilde's'), a name or a pronoun the person's
earlier words resolve (tasks.patterns.Context, shared with the regex extractor).
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.patterns import Context
from tasks.patterns.blocks import NOT_NAME
from tasks.vocabulary import BREED_WORDS, BREEDS, PETS, REL_ALIAS, RELS

NOT_LOWER = frozenset("is was and or but so the a an who which that lol btw".split())
FIRST = frozenset({"i", "we", "me", "us"})
MINE = frozenset({"my", "our"})
# People who are not the person's family: their facts are theirs ('my friend moved to Berlin').
OTHERS = frozenset("friend friends colleague colleagues coworker co-worker boss manager neighbour neighbor flatmate "
                   "roommate housemate classmate teammate client landlord landlady ex mate buddy pal teacher doctor "
                   "therapist".split())


@dataclass(frozen=True)
class Who:
    """A clause's subject: kind is user, family, pet, thing or other; subject the relation, animal or thing."""

    kind: str
    subject: str = "user"
    name: str | None = None
    token: object = None  # the subject's head token (spacy Token), when there is one


USER = Who("user")
OTHER = Who("other")


YOUNG = frozenset("little baby eldest oldest youngest middle teenage".split())


def relation(tok) -> str | None:
    """The relation a noun names ('mum' -> 'mother', 'other half' -> 'partner'), or None."""
    word = tok.lower_
    if word == "half" and any(c.lower_ in ("other", "better") for c in tok.children):
        return "partner"
    if word in ("boy", "lad") or word == "girl" and any(c.lower_ in YOUNG for c in tok.children):
        return "son" if word != "girl" else "daughter"  # 'my little boy Sam', 'our eldest girl'
    word = REL_ALIAS.get(word, word)
    if word in ("kids", "children"):
        return "child"
    if word in ("grandkids", "grandchildren"):
        return "grandchild"
    return word if word in RELS else None


def pet_kind(tok) -> tuple[str, str | None] | None:
    """(kind, breed) of a pet noun with its compound modifiers ('border collie' -> dog, 'border collie')."""
    word = tok.lower_
    mods = [c.lower_ for c in tok.children if c.dep_ in ("compound", "amod") and c.i < tok.i
            and (c.lower_ in BREEDS or c.lower_ in BREED_WORDS)]
    if word in PETS:
        return PETS[word], (" ".join(mods) or None) if mods else None
    if word in BREEDS:
        return BREEDS[word], " ".join([*mods, word])
    if word.endswith("s") and word[:-1] in PETS:
        return PETS[word[:-1]], None
    return None


def owned_by_user(tok) -> bool:
    return any(c.dep_ == "poss" and c.lower_ in MINE for c in tok.children)


def capitalised_name(tok) -> str | None:
    """The name a token and its compound parts spell ('Priya Nair'), when capitalised and not a function word."""
    if not tok.text[:1].isupper() or tok.text in NOT_NAME or not tok.is_alpha:
        return None
    parts = [c for c in tok.lefts if c.dep_ == "compound" and c.text[:1].isupper() and c.is_alpha]
    start = parts[0].i if parts else tok.i
    if any(not tok.doc[k].text[:1].isupper() for k in range(start, tok.i)):
        start = tok.i
    return tok.doc[start:tok.i + 1].text


def appos_name(tok) -> str | None:
    """'my sister Hilde', 'a greyhound, Biscuit', 'my son, Leo': the name placed beside a noun."""
    for c in tok.children:
        if c.dep_ in ("appos", "npadvmod", "attr") and c.i > tok.i and (name := capitalised_name(c)):
            return name
        if c.dep_ == "compound" and c.i > tok.i and (name := capitalised_name(c)):
            return name
        # 'my daughter ada': a name typed in lower case, which the parser still reads as one
        if c.dep_ == "appos" and c.i == tok.i + 1 and c.pos_ == "PROPN" and c.is_alpha and c.lower_ not in NOT_LOWER:
            return c.text
    if tok.dep_ == "compound" and tok.head.i == tok.i + 1 and tok.head.pos_ == "PROPN" and \
            (name := capitalised_name(tok.head)):
        return name  # "my brother Callum's wedding": the parser makes the relation a modifier of the name
    nxt = tok.doc[tok.i + 1] if tok.i + 1 < len(tok.doc) else None
    if nxt is not None and nxt.head == tok and nxt.dep_ not in ("prep", "punct", "cc", "conj", "relcl", "acl") \
            and (name := capitalised_name(nxt)):
        return name
    # 'my other half Sunniva says ...': the parser may hang the name elsewhere; right beside the noun it is a name.
    if nxt is not None and nxt.pos_ == "PROPN" and nxt.dep_ in ("nsubj", "appos", "npadvmod", "compound") and \
            (name := capitalised_name(nxt)):
        return name
    return None


def noun_who(tok, ctx: Context) -> Who | None:
    """Who a noun subject or object names, or None for a thing that belongs to nobody in particular."""
    low = tok.lower_
    if low in FIRST:
        return USER
    if low in OTHERS or (tok.head.lower_ in OTHERS and tok.dep_ == "appos"):
        return OTHER
    if tok.dep_ == "appos" and tok.head.lower_ in OTHERS:
        return OTHER
    rel = relation(tok)
    mine = owned_by_user(tok)
    if rel and (mine or tok.dep_ == "dobj"):
        name = appos_name(tok) or ctx.only(rel)
        return Who("family", rel, name, tok)
    if (pk := pet_kind(tok)) and mine:
        return Who("pet", pk[0], appos_name(tok) or ctx.only(pk[0]), tok)
    if low in ("he", "she", "they", "him", "her"):
        gender = {"he": "m", "him": "m", "she": "f", "her": "f"}.get(low)
        # The nearest person named before it in this sentence wins: 'my colleague Ines ... she's a producer'.
        for prev in reversed(tok.doc[:tok.i]):
            if prev.lower_ in OTHERS:
                return OTHER
            if (rel := relation(prev)) and owned_by_user(prev) and RELS.get(rel) in (gender, None):
                return Who("family", rel, appos_name(prev) or ctx.only(rel), tok)
        hit = ctx.last.get(gender)
        anyone = ctx.last.get(None)
        if hit is None and anyone and anyone[0] == "family" and RELS.get(anyone[1]) is None:
            hit = anyone  # 'my partner Sunniva ... she teaches piano': a relation of either gender
        return Who(*hit, tok) if hit else OTHER
    if tok.pos_ == "PROPN" and not tok.text[:1].isupper() and (hit := ctx.named(tok.text)):
        return Who(*hit, tok)  # 'milo is 6': a name said before, now in lower case
    if tok.pos_ == "PROPN" or tok.text[:1].isupper():
        name = capitalised_name(tok)
        hit = ctx.named(name) if name else None
        if hit is None and name:
            hit = ctx.named(tok.text)
        return Who(*hit, tok) if hit else (OTHER if tok.pos_ == "PROPN" else None)
    if mine:
        return Who("thing", low, appos_name(tok), tok)
    if any(c.dep_ == "poss" and c.lower_ not in MINE for c in tok.children):
        owner = next(c for c in tok.children if c.dep_ == "poss")
        who = noun_who(owner, ctx)
        if who and who.kind in ("family", "pet") and low == "name":
            return who
        return OTHER
    return None


def subject_of(pred, ctx: Context) -> Who | None:
    """Who the clause headed by pred is about; None when it has no subject the rules can read."""
    subj = next((c for c in pred.children if c.dep_ in ("nsubj", "nsubjpass", "expl")), None)
    if subj is None and pred.dep_ in ("conj", "xcomp", "advcl") and pred.head is not pred:
        return subject_of(pred.head, ctx)
    if subj is None:
        # 'grew up just outside Cork', 'been vegan for years': a sentence that starts with its verb.
        # "can't get enough of Korean food": a helping verb or negation before it still starts the clause
        first = next((t for t in pred.sent if not t.is_punct and t.dep_ not in ("intj", "cc", "advmod", "discourse")
                      and not (t.dep_ in ("aux", "neg") and t.head.i == pred.i)), None)
        return USER if first is not None and first.i == pred.i else None
    if any(c.dep_ == "conj" and c.lower_ in FIRST for c in subj.children) or \
            any(c.dep_ == "nsubj" and c.lower_ in FIRST and c.i > subj.i for c in pred.children):
        return USER  # 'Geoffrey and I play bowls': the person does it too
    if subj.lower_ in ("who", "that", "which") and pred.dep_ == "relcl" and pred.head is not pred:
        return noun_who(pred.head, ctx)  # 'my daughter, who is a solicitor, ...': the noun it describes
    if subj.lower_ == "name" and any(c.dep_ == "poss" for c in subj.children):
        owner = next(c for c in subj.children if c.dep_ == "poss")
        if owner.lower_ in MINE:
            return Who("user", "name", None, subj)
        return noun_who(owner, ctx)
    return noun_who(subj, ctx)
