"""Statement memories: a first-person disclosure no fact type covers, kept as the person said it.

The question is keyed by the sentence's topic — a name it mentions ("What do you know about Hilde?") or its
head noun phrase ("What did I tell you about my boat?") — and the answer is the sentence in the second
person ("You painted your boat green last summer.").
"""

from __future__ import annotations

from tasks.parsing.clauses import hypothetical, question, will
from tasks.parsing.rewrite import second_person
from tasks.parsing.subjects import OTHERS
from tasks.parsing.values import entity_of, name_value, np_value
from tasks.patterns import Fact
from tasks.secrets import secret_spans

TOPIC_LABELS = frozenset({"PERSON", "GPE", "LOC", "ORG", "FAC", "PRODUCT", "WORK_OF_ART", "EVENT"})
# Requests, thanks and thinking aloud are no disclosure ('I need help with my cover letter', 'I think so').
NOT_DISCLOSURE = frozenset("need want think guess mean know suppose wonder hope try see look ask help thank agree "
                           "understand forget remember wish wait let check tell say give show find get make "
                           "appreciate feel bet reckon care sound seem".split())
WH = frozenset({"WDT", "WP", "WP$", "WRB"})  # 'What's the difference …, my mum keeps asking': a reported question
CHATTER = frozenset("sorry lol haha thanks thank oops btw".split())
YOU = frozenset({"you", "your", "yours", "yourself", "u", "ur"})
QUOTES = frozenset({'"', "'", "“", "”", "‘", "’", "`", ":"})  # quoted or pasted text is not their own words
MIN_WORDS, MAX_WORDS = 5, 40


def _topic(doc) -> tuple[str, str] | None:
    """(subject, question) of a sentence: a name it mentions, else its first noun phrase the person owns or acts on."""
    for tok in doc:
        ent = entity_of(tok)
        if ent is not None and ent.label_ in TOPIC_LABELS and tok.pos_ == "PROPN" and (v := name_value(tok)):
            return v.text, f"What do you know about {v.text}?"
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    for tok in doc:  # a capitalised name the entity recogniser missed ('Hilde taught me to sail')
        if tok.pos_ == "PROPN" and tok.dep_ in ("nsubj", "dobj", "pobj") and tok.i > 0 or \
                tok.pos_ == "PROPN" and tok.dep_ == "nsubj":
            if (v := name_value(tok)) is not None:
                return v.text, f"What do you know about {v.text}?"
    chunks = list(doc.noun_chunks)
    owned = [c for c in chunks if any(t.lower_ in ("my", "our") and t.dep_ == "poss" for t in c)]
    acted = [c for c in chunks if root is not None and c.root.head in (root, *root.children)
             and c.root.dep_ in ("dobj", "pobj", "attr") and c.root.pos_ == "NOUN"]
    for chunk in owned + acted:
        if chunk.root.pos_ == "PRON" or chunk.root.lower_ in ("name", "time", "thing", "lot", "bit"):
            continue
        head = chunk.root
        words = [t.text for t in chunk if t.dep_ not in ("det",) or t.lower_ in ("my", "our")]
        if head.dep_ == "poss":
            continue
        phrase = " ".join(w.lower() if w.lower() in ("my", "our") else w for w in words)
        phrase = phrase.replace("our ", "my ") if phrase.startswith("our ") else phrase
        if not phrase.startswith("my "):
            phrase = "the " + phrase
        return phrase, f"What did I tell you about {phrase}?"
    return None


def statement(doc, sent_start: int, sent_end: int) -> Fact | None:
    """A statement memory from one parsed sentence the person said of themselves, or None."""
    words = [t for t in doc if not t.is_punct]
    if not words or words[0].tag_ in WH or any(t.lower_ in CHATTER for t in words):
        return None
    if not MIN_WORDS <= len(words) <= MAX_WORDS or any(t.lower_ in YOU or t.text in QUOTES for t in doc):
        return None
    if secret_spans(doc.text):  # never a secret in a question or an answer, even one the firewall will reject
        return None
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    if root is None or will(root):
        return None  # 'henceforth I will cycle to work': an intention, and a shape instructions take
    if root.lemma_.lower() in NOT_DISCLOSURE or question(root) or hypothetical(root) or \
            any(c.lower_ in ("here", "there") and c.dep_ in ("advmod", "expl") for c in root.children):
        return None
    subj = next((c for c in root.children if c.dep_ in ("nsubj", "nsubjpass")), None)
    if subj is None or subj.lower_ in OTHERS or subj.head.lower_ in OTHERS:
        return None
    mine = subj.lower_ in ("i", "we") or any(c.dep_ == "poss" and c.lower_ in ("my", "our") for c in subj.children)
    # 'Hilde taught me to sail': a named person acting on the speaker is the speaker's story too.
    told = subj.pos_ == "PROPN" and any(c.lower_ in ("me", "us") and c.dep_ in ("dobj", "dative", "nsubj")
                                        for c in root.subtree)
    if not (mine or told):
        return None
    topic = _topic(doc)
    if topic is None:
        return None
    subject, q = topic
    answer = second_person(doc)
    obj = next((c for c in root.children if c.dep_ in ("dobj", "attr", "acomp", "oprd")), None)
    value = np_value(obj).text if obj is not None and obj.pos_ != "PRON" else root.text
    return Fact("statement", subject, value, sent_start, sent_end, q, answer)
