"""Which sentences of a user message the parser reads, and why the others are left out.

A message is cut into sentences with their offsets; a sentence is parsed only when it carries a first-person
or possessive marker (or a pronoun that may point at someone the person named) and is ordinary English
prose. Long messages, code, emoji-only lines, other scripts and other languages are left out whole or per
sentence and counted by reason, so bad input costs nothing and gives no pair.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

I = re.IGNORECASE
# Sentence ends: after . ! ? (not after an abbreviation or an initial) or at a line break.
_ABBREV = r"(?<!\bSt)(?<!\bMt)(?<!\bDr)(?<!\bMr)(?<!\bMs)(?<!\bMrs)(?<!\bSte)(?<!\bvs)(?<!\b[A-Z])"
_END = re.compile(rf"(?:{_ABBREV}[.!?]+|\?+|!+)(?=\s|$)|\n+")
MARKER = re.compile(
    r"\b(?:i|i['’]m|im|i['’]ve|ive|i['’]d|i['’]ll|me|my|mine|myself|we|we['’]re|we['’]ve|our|ours|us|"
    r"he|she|his|her|hers|they|their|he['’]s|she['’]s)\b|['’]s\b|"
    # A name said to be or do something ('Milo is 6 not 5'): someone the person may have named before.
    r"(?-i:\b[A-Z][a-z]+ (?:is|was|turned|turns|lives|works|plays)\b)|\bcorrection\b|"
    # 'Priya here.': a person giving their name as they start.
    r"(?-i:^\W*[A-Z][a-z]+(?: [A-Z][a-z]+)? here\b)|"
    # A clause that drops its subject ('grew up just outside Cork', 'been vegan for years') is the person's.
    r"^\W*(?:(?:oh|and|also|plus|btw|but|so|well|ah|yeah|anyway|ok|okay|lol|haha)\W+)*"
    r"(?:grew|born|raised|moved|living|live|working|work|worked|been|studied|started|learning|got|have|had|love|"
    r"loving|hate|took|taken|play|playing|allergic|terrified|scared|afraid|married|engaged|currently|originally|"
    r"still|just|not a fan|turned|turning|studying|doing|retired|moving|heading|flying|off to|obsessed|saving|"
    r"planning|trying|teaching|training|up at|can['’]?t|couldn['’]?t|never|did)\b", I)
_CODE = re.compile(r"```|^\s{4,}\S|[{};<>=]{2,}|\b(?:def|class|import|return|function|const|var|SELECT)\b.*[(){};=]",
                   re.M)
_LETTER = re.compile(r"[^\W\d_]")
_LATIN = re.compile(r"[A-Za-zÀ-ɏ]")
_WORD = re.compile(r"[a-zà-ÿ']+")
ENGLISH = frozenset("i me my we our you the a an and or but to of in on at for with is am are was were be been "
                    "have has had do does did not it this that so just really also from about".split())
# Function words of other languages written in Latin script: a sentence with more of these than of
# English's is not read ('me llamo Ana y vivo en Lyon').
FOREIGN = frozenset("de la le les el los las que qui und der die das ich bin ist nicht je suis est et y en un une "
                    "una mi soy llamo vivo mais pero con por para ein eine mein meine wir sind och jag är har och "
                    "na sie jest nie ja mam".split())


# Casual spellings the parser reads better spelled out; offsets are mapped back to the message as typed.
_CASUAL = re.compile(r"\b(?:(?P<hes>hes)|(?P<shes>shes)|(?P<fill>(?:btw|lol|tbh|fyi|imo|haha+|lmao|ngl|tho)\b)|"
                     r"(?P<im>im)|(?P<ive>ive)|(?P<id>id(?=\s+(?:love|like|rather|say)\b))|(?P<dont>dont)|"
                     r"(?P<cant>cant)|(?P<didnt>didnt)|(?P<isnt>isnt)|(?P<wasnt>wasnt))\b|(?P<q>’)")
_SPELLED = {"hes": "he's", "shes": "she's", "fill": "", "im": "i'm", "ive": "i've", "id": "i'd", "dont": "don't", "cant": "can't", "didnt": "didn't",
            "isnt": "isn't", "wasnt": "wasn't", "q": "'"}


@dataclass(frozen=True)
class Sentence:
    """One sentence of a message: its text as parsed and, per character of it, where it was in the message."""

    text: str
    start: int
    origin: tuple[int, ...] = ()  # message offset of each character of text (empty: start + i)

    def at(self, i: int) -> int:
        """The message offset of position i of text (i == len(text): the end)."""
        if not self.origin:
            return self.start + i
        return self.origin[i] if i < len(self.origin) else self.origin[-1] + 1

    @property
    def end(self) -> int:
        return self.at(len(self.text))


def spelled_out(sent: Sentence) -> Sentence:
    """The sentence with 'im', 'ive', 'dont' and curly apostrophes spelled as the parser expects."""
    if not _CASUAL.search(sent.text):
        return sent
    out, origin, pos = [], [], 0
    for m in _CASUAL.finditer(sent.text):
        out.append(sent.text[pos:m.start()])
        origin += range(sent.start + pos, sent.start + m.start())
        word = _SPELLED[m.lastgroup]
        if m.lastgroup == "fill" and m.start() > 0 and sent.text[m.start() - 1] == " ":
            out[-1] = out[-1][:-1]  # 'limerick btw, might' -> 'limerick, might'
            origin.pop()
        if m.group()[:1].isupper() and word:
            word = word[0].upper() + word[1:]
        out.append(word)
        # Every added character maps to the typed word's span: a value never starts inside a spelled-out word.
        origin += [sent.start + m.start() + min(k, len(m.group()) - 1) for k in range(len(word))]
        pos = m.end()
    out.append(sent.text[pos:])
    origin += range(sent.start + pos, sent.start + len(sent.text))
    return Sentence("".join(out), sent.start, tuple(origin))


def split_sentences(text: str) -> list[Sentence]:
    """The message's sentences with their offsets, spaces trimmed."""
    out, pos = [], 0
    for m in _END.finditer(text):
        out.append((pos, m.end()))
        pos = m.end()
    out.append((pos, len(text)))
    sents = []
    for s, e in out:
        chunk = text[s:e]
        lead = len(chunk) - len(chunk.lstrip())
        body = chunk.strip()
        if body:
            sents.append(Sentence(body, s + lead))
    return sents


def message_problem(text: str, max_chars: int) -> str | None:
    """Why a whole message is not parsed (too-long, code), or None."""
    if len(text) > max_chars:
        return "too-long"
    if _CODE.search(text):
        return "code"
    return None


def sentence_problem(text: str, max_chars: int) -> str | None:
    """Why one sentence is not parsed (no-words, other-script, other-language, too-long), or None."""
    letters = _LETTER.findall(text)
    if len(letters) < 2:
        return "no-words"
    if len(text) > max_chars:
        return "too-long"
    if sum(1 for c in letters if _LATIN.match(c)) < 0.9 * len(letters):
        return "other-script"
    words = _WORD.findall(text.lower())
    if sum(w in FOREIGN for w in words) > sum(w in ENGLISH for w in words):
        return "other-language"
    return None


def sentences_to_parse(text: str, counts: Counter, max_message_chars: int = 4000,
                       max_sentence_chars: int = 400) -> list[Sentence]:
    """The sentences of one message the parser reads; what is left out is counted by reason in counts."""
    if problem := message_problem(text, max_message_chars):
        counts[f"skipped:{problem}"] += 1
        return []
    out = []
    for sent in split_sentences(text):
        if not MARKER.search(sent.text):
            continue
        if problem := sentence_problem(sent.text, max_sentence_chars):
            counts[f"skipped:{problem}"] += 1
            continue
        out.append(spelled_out(sent))
    return out
