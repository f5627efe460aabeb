"""Clauses of a parsed sentence and what kind of saying each one is: a statement, a question, a hypothetical."""

from __future__ import annotations

WH_TAGS = frozenset({"WDT", "WP", "WP$", "WRB"})
MODALS = frozenset({"would", "could", "might", "should", "'d", "’d", "may"})
IF_WORDS = frozenset({"if", "unless", "whether", "suppose", "supposing"})
# 'before I'm 37', 'once I'm settled in Oslo', 'when I'm 40': a time to come, not a fact now.
NOT_YET = frozenset({"before", "until", "till", "once", "when", "whenever"})
# 'I wish I had a dog', 'imagine I lived in Rome', 'I want to learn Welsh': not facts (yet).
UNREAL = frozenset({"wish", "imagine", "suppose", "pretend", "dream", "want", "hope", "would", "wonder", "consider",
                    "think", "plan", "intend", "if", "whether"})
CLAUSE_DEPS = frozenset({"ROOT", "conj", "ccomp", "advcl", "parataxis", "xcomp", "relcl"})
WILL = frozenset({"will", "'ll", "’ll", "shall", "wo"})  # 'wo' is the parser's first half of "won't"


def predicates(sent) -> list:
    """Tokens heading a clause: verbs and copulas at the root of the sentence or of a joined clause."""
    return [t for t in sent if t.dep_ in CLAUSE_DEPS and (t.pos_ in ("VERB", "AUX") or t.dep_ in ("ROOT", "conj"))]


def will(pred) -> bool:
    """'I'll be 68 by then', 'henceforth I will cycle': a clause about a time to come."""
    return any(c.dep_ == "aux" and c.lower_ in WILL for c in pred.children)


def negated(pred) -> bool:
    return any(c.dep_ == "neg" or c.lower_ in ("never", "no longer") for c in pred.children)


def hypothetical(pred) -> bool:
    """An 'if' clause, its consequence, a modal ('I'd call it'), or a clause under 'wish' / 'want' / 'imagine'."""
    seen = 0
    tok = pred
    while seen < 6:
        if any(c.dep_ == "aux" and c.lower_ in MODALS for c in tok.children):
            return True
        if any(c.dep_ == "mark" and c.lower_ in IF_WORDS for c in tok.children):
            return True
        if tok is pred and any(c.dep_ in ("mark", "advmod") and c.lower_ in NOT_YET for c in tok.children):
            return True
        # The consequence of an 'if' clause is unreal only with a modal ('if I had a cat I'd call it ...'):
        # 'I'm 31 if that matters' is a fact.
        if tok is not pred and tok.lemma_.lower() in UNREAL:
            return True
        if tok.dep_ in ("ROOT",) or tok.head is tok or tok.dep_ == "ccomp" and _spliced(tok, tok.head):
            return False  # the clause a comma splice puts before 'do you think ...?' is stated, not imagined
        if tok.dep_ == "conj" and tok.head.dep_ == "ROOT":
            tok = tok.head
            seen += 1
            continue
        tok = tok.head
        seen += 1
    return False


def question(pred) -> bool:
    """Is the clause itself asked ('where do I live?', 'is my daughter 8?'), not just inside a question?"""
    sent = pred.sent
    text = sent.text.rstrip()
    if not text.endswith("?"):
        return False
    clause = {pred.i, *[c.i for c in pred.children]}
    if any(sent.doc[i].tag_ in WH_TAGS for i in clause if i != pred.i) or pred.tag_ in WH_TAGS:
        return True
    subj = next((c for c in pred.children if c.dep_ in ("nsubj", "nsubjpass", "expl")), None)
    aux = [c for c in pred.children if c.dep_ in ("aux", "auxpass")] + ([pred] if pred.pos_ == "AUX" else [])
    if subj is not None and any(a.i < subj.i for a in aux):
        return True
    # 'can you help me plan a party for my husband Tariq?': the request is asked; the clause under it is too.
    top = pred
    while top.dep_ not in ("ROOT",) and top.head is not top:
        top = top.head
    if top is not pred and question(top) and pred.dep_ not in ("conj", "parataxis") and not _spliced(pred, top):
        return True
    return False


def _spliced(pred, top) -> bool:
    """'Our car is a Skoda, do you think ...': a statement before a comma, then the question it leads to."""
    end = pred.right_edge.i
    return end < top.i and any(t.text == "," for t in pred.doc[end:top.i + 1]) and \
        not any(t.tag_ in WH_TAGS or t.dep_ in ("aux", "auxpass") for t in pred.doc[pred.left_edge.i:pred.i])
