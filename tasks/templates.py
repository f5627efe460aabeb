"""Regex templates that turn first-person statements in a user message into facts about the user.

Each family has a cheap RE2-compatible `trigger` (run column-wise over all messages first) and a
Python matcher that only sees messages whose trigger fired. Names, places and brands are matched
case-sensitively (capitalised); everything else case-insensitively. A match inside a sentence that
ends in '?' is a question, not a statement, and is skipped.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable

I = re.IGNORECASE
UP, LO = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"
NAME = rf"(?-i:[{UP}][{LO}'’-]+(?: [{UP}][{LO}'’-]+){{0,2}})"
PLACE = rf"(?-i:[{UP}][\w'’.-]*(?:(?: | (?:de|da|do|dos|del|di|la|le|of|upon|on|am|sur) )[{UP}][\w'’-]*){{0,3}})"
ORG = r"(?-i:[A-Z0-9][\w&'’.-]*(?:(?: | of | de | and | & | for )[A-Z0-9][\w&'’.-]*){0,4})"
BRAND = r"(?-i:[A-Z][\w-]*(?: [A-Z0-9][\w-]*){0,3})"
PHRASE = r"[^.!?;:\n]{1,60}?"  # a lazy clause; cut by STOP below
STOP = r"(?=\s*(?:[.!?;:\n()]|[-–—] |$)|,|\s+(?:but|because|since|though|although|when|while|if|so|which|especially|even)\b)"
JOB = r"[a-z][a-z-]*(?: [a-z][a-z-]*){0,3}?"
JOB_END = r"(?=\s+(?:at|for|in|with|and|but|since|because|so|who|which|from|now)\b|\s*[.,;:!?)]|\s*$)"
MONTH = (r"(?:january|february|march|april|may|june|july|august|september|october|november|december|"
         r"(?:jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\.?)")
DATE = rf"(?:{MONTH} \d{{1,2}}(?:st|nd|rd|th)?(?:,? \d{{4}})?|(?:the )?\d{{1,2}}(?:st|nd|rd|th)?(?: of)? {MONTH}(?:,? \d{{4}})?)"
WHEN = (rf"(?:next (?:week|month|year|weekend|summer|spring|autumn|fall|winter|{MONTH})|this (?:week|weekend|month|"
        rf"year|summer|spring|autumn|fall|winter)|in (?:{MONTH}|the (?:summer|spring|autumn|fall|winter))|on {DATE}|"
        r"tomorrow|in \d+ (?:days|weeks|months))")
PERIOD = r"(?:morning|evening|night|day|weekend|week|monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
# 'a bit of English', 'some jazz': how much is not part of a list item (split_list drops it).
AMOUNT = r"(?:a (?:bit|little) of|some|basic|decent|conversational|broken|rusty|passable)"
# "i'm" as typed on a phone: without the apostrophe ("im 36"), or with a curly one (folded in match_message).
IM = r"i(?:'m| am|m)"
# The user's family is 'our son Omar' as much as 'my son Omar', and 'my big sister Rania' is a sister.
MY = r"(?:my|our)"
KIN_ADJ = r"(?:(?:big|little|baby|kid|older|younger|elder|eldest|oldest|youngest|twin|step|half) )?"
# A friend or a colleague named in the message: 'she' after them is not the user's family.
OTHER = (r"\b(?:my|our|a|his|her) (?:best |old |close |good |new )?(?:friends?|colleagues?|co-?workers?|boss|manager|"
         r"neighbou?rs?|room-?mates?|flat-?mates?|house-?mates?|class-?mates?|team-?mates?|clients?|landlord|landlady|"
         r"ex)\b")
RELS = {"wife": "f", "husband": "m", "partner": None, "spouse": None, "girlfriend": "f", "boyfriend": "m",
        "son": "m", "daughter": "f", "child": None, "brother": "m", "sister": "f", "mother": "f", "father": "m",
        "grandmother": "f", "grandfather": "m", "aunt": "f", "uncle": "m", "cousin": None, "niece": "f",
        "nephew": "m", "parents": None}
REL_ALIAS = {"mom": "mother", "mum": "mother", "dad": "father", "grandma": "grandmother", "grandpa": "grandfather",
             "kid": "child", "baby": "child"}
REL = "(?:" + "|".join(sorted([*RELS, *REL_ALIAS], key=len, reverse=True)) + ")"
PETS = {"dog": "dog", "puppy": "dog", "cat": "cat", "kitten": "cat", "parrot": "parrot", "rabbit": "rabbit",
        "bunny": "rabbit", "hamster": "hamster", "horse": "horse", "pony": "horse", "turtle": "turtle",
        "tortoise": "tortoise", "snake": "snake", "lizard": "lizard", "gecko": "gecko", "ferret": "ferret",
        "goldfish": "fish", "fish": "fish", "budgie": "bird", "bird": "bird", "pig": "pig"}
BREEDS = {**{b: "dog" for b in ("retriever", "labrador", "lab", "beagle", "poodle", "terrier", "husky", "corgi",
                                 "spaniel", "shepherd", "bulldog", "dachshund", "collie", "pug", "chihuahua",
                                 "greyhound", "whippet", "boxer", "rottweiler", "doberman", "schnauzer", "inu",
                                 "labradoodle", "malamute", "setter", "pointer", "sheepdog", "samoyed")},
          **{b: "cat" for b in ("siamese", "persian", "coon", "ragdoll", "bengal", "sphynx", "tabby", "shorthair")}}
PET_WORD = "(?:" + "|".join(sorted([*PETS, *BREEDS], key=len, reverse=True)) + ")"
NOT_BREED = {"little", "old", "young", "new", "cute", "big", "small", "tiny", "sweet", "lazy", "fat", "rescue",
             "black", "white", "grey", "gray", "brown", "orange", "ginger", "also", "another", "second", "crazy"}
NOT_NAME = {"I", "The", "He", "She", "It", "We", "They", "You", "My", "Our", "And", "But", "So", "Yes", "No",
            "Not", "Just", "Also", "Too", "Here", "There", "Today", "Tomorrow", "Actually", "Anyway", "Thanks"}
JOBLIKE = re.compile(r"(?:er|or|ist|ian|ant|ent|man|woman|eon|ect|ive|nurse|chef|cook|vet|pilot|clerk|guard|judge|"
                     r"coach|tutor|barista|ceo|cto|cfo|nanny|midwife|medic|programmer|dev)$", I)
# Words that end like a job title but are not one ('I'm a beginner', 'I'm a vegetarian').
NOT_JOB = {"beginner", "member", "mother", "father", "sister", "brother", "daughter", "grandmother", "grandfather",
           "lover", "user", "believer", "learner", "drinker", "smoker", "eater", "sleeper", "worrier", "overthinker",
           "sucker", "stickler", "fighter", "vegetarian", "pescatarian", "pescetarian", "introvert", "extrovert",
           "perfectionist", "optimist", "pessimist", "realist", "romantic", "native", "resident", "citizen", "parent",
           "newcomer", "foreigner", "stranger", "fan", "person", "human", "adult", "runner", "walker", "reader",
           "gamer", "owner", "homeowner", "tenant", "patient", "customer", "client", "winner", "loser"}
LANGUAGES = {"arabic", "bengali", "bulgarian", "catalan", "chinese", "croatian", "czech", "danish", "dutch", "english",
             "estonian", "finnish", "french", "german", "greek", "hebrew", "hindi", "hungarian", "icelandic",
             "indonesian", "irish", "italian", "japanese", "korean", "latin", "latvian", "lithuanian", "malay",
             "mandarin", "cantonese", "norwegian", "persian", "farsi", "polish", "portuguese", "punjabi", "romanian",
             "russian", "serbian", "slovak", "slovenian", "spanish", "swahili", "swedish", "tagalog", "tamil", "thai",
             "turkish", "ukrainian", "urdu", "vietnamese", "welsh", "basque", "galician", "valencian", "berber",
             "amharic", "yoruba", "zulu", "esperanto", "gaelic"}
SWAP = {"my": "your", "me": "you", "i": "you", "mine": "yours", "myself": "yourself", "our": "your", "we": "you",
        "us": "you", "i'm": "you're", "am": "are"}


_ORDINAL = re.compile(r"(\d)(?:st|nd|rd|th)\b")
_NON_WORD = re.compile(r"[^\w]+")
_ARTICLES = re.compile(r"^(?:(?:a|an|the) )+")
_SWAP_RX = re.compile(r"\b(?:my|me|i|mine|myself|our|we|us|i'm|am)\b", I)


@functools.lru_cache(maxsize=1 << 16)
def normalize_value(text: str) -> str:
    """Case-, accent- and punctuation-folded form of a value, without articles or ordinal suffixes."""
    s = text.lower()
    if not s.isascii():
        s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    s = _NON_WORD.sub(" ", _ORDINAL.sub(r"\1", s))
    return _ARTICLES.sub("", s.strip())


def _rel(word: str) -> str:
    """The relation a word names: 'mum' -> 'mother'."""
    return REL_ALIAS.get(word.lower(), word.lower())


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _second_person(text: str) -> str:
    return _SWAP_RX.sub(lambda m: SWAP[m.group().lower()], text)


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


@dataclass(frozen=True)
class Rule:
    """One regex whose group `v` is the value; question/answer are format strings.

    Format fields: {v} the value as typed, {sv} the value in second person, {a} 'a'/'an' for it,
    {subject}, {when} (' in April' or ''), {verb}.
    """

    pattern: str
    fact_type: str
    question: str
    answer: str
    subject: str = "user"  # a literal, or '<group>' to take it from a regex group
    split: bool = False  # 'a, b and c' gives three facts
    check: Callable[[str], bool] | None = None
    shape: str = "phrase"  # phrase | name (capitalised words only)


def _not_pronoun(v: str) -> bool:
    return not re.match(r"(?:it|that|this|these|those|them|you|your|how|what|when|where|the idea|the way|to think|"
                        r"to know|to say|to hear|to see|to be|being|him|her|us|talking|chatting|having you)\b", v, I)


def _joblike(v: str) -> bool:
    return bool(JOBLIKE.search(v.split()[-1]))


def _plan_like(v: str) -> bool:
    # '... to fix it' / 'to understand this' is the task at hand, not a plan for one's life.
    return not re.match(r"(?:the|a|an|my|our|bed|work|school|church|be|have|do it|go)\b", v, I) and \
        not re.search(r"\b(?:it|this|that|these|those|them)$", v, I)


def _job_title(v: str) -> bool:
    return _joblike(v) and v.split()[-1].lower() not in NOT_JOB


def _activity(v: str) -> bool:
    """'getting into calligraphy' is a hobby; 'getting into bed' or 'into the car' is not."""
    return _not_pronoun(v) and not re.match(r"(?:the|a|an|my|our|his|her|their|your|too|so|much|all|bed|trouble|work|"
                                            r"town|school)\b", v, I)


def _language(v: str) -> bool:
    return v.lower() in LANGUAGES


NAME_QA = ("What is your name?", "Your name is {v}.")
LIVE_QA = ("Where do you live?", "You live in {v}.")
FROM_QA = ("Where are you originally from?", "You are originally from {v}.")
JOB_QA = ("What do you do for a living?", "You work as {a} {v}.")
WORK_QA = ("Where do you work?", "You work at {v}.")
LIKE_QA = ("Do you like {sv}?", "Yes, you {verb} {sv}.")
DISLIKE_QA = ("Do you like {sv}?", "No, you {verb} {sv}.")
ALLERGY_QA = ("What are you allergic to?", "You are allergic to {sv}.")
HOBBY_Q = "What is one of your hobbies?"
TRIP_Q = "Where are you going{when}?"
PLAN_QA = ("What are you planning to do{when}?", "You are planning to {sv}{when}.")
AGE_QA = ("How old are you?", "You are {v} years old.")
CAR_QA = ("What car do you drive?", "You drive {a} {v}.")
PC_QA = ("What computer do you use?", "You use {a} {v}.")
SPEAK_QA = ("What languages do you speak?", "You speak {v}.")
LEARN_QA = ("What language are you learning?", "You are learning {v}.")
ADJ = (r"(?:(?:old|new|used|little|trusty|battered|beat-up|beaten-up|rusty|ancient|tiny|second-hand|secondhand|"
       r"electric|hybrid|shiny|red|blue|black|white|silver|grey|gray|green|\d{4}) )*")
LANG = r"(?-i:[A-Z][a-z]+)"
LANGS = rf"(?:{AMOUNT} )?{LANG}(?:(?:, | and | & |, and )(?:{AMOUNT} )?{LANG})*"  # 'Arabic and a bit of English'
PLAY = r"\bi(?:'ve been| have been)? (?:also )?play(?:ing)?"
WHEN_OPT = rf"(?:[^.!?\n]{{0,30}}?\b(?P<when>{WHEN}))?"
GREETING = r"(?:hi|hiya|hey|heya|hello|howdy|yo|(?:good )?(?:morning|afternoon|evening))"
FAV = r"(?:favou?rite|fave|fav)"
# A clause with its subject dropped ("also been vegan for years", "oh and allergic to penicillin") is the user's.
SUBJECTLESS = r"(?:^|[.!?;,]\s*)(?:(?:oh|and|also|plus|btw|ah|but)[,!]?\s+)*"
# 'I work at', 'I'm working at', 'I've been working at', and the subjectless 'been working at'.
WORKING = rf"(?:\bi(?: work|(?:'m| am|m) working|(?:'ve| have) been working)|{SUBJECTLESS}been working)"

RULES: dict[str, list[Rule]] = {
    "name": [
        Rule(rf"\bmy name(?:'s| is) (?P<v>{NAME})", "name", *NAME_QA, shape="name"),
        Rule(rf"\b(?:call me|i'm called|i am called|people call me) (?P<v>{NAME})", "name", *NAME_QA, shape="name"),
        Rule(rf"(?:^|[.!?]\s+)(?:(?:hi|hey|hello)[,!]?\s+)?this is (?P<v>{NAME})\s*(?=[.!]|$)", "name", *NAME_QA,
             shape="name"),
        Rule(rf"\b{GREETING}[,!]? (?:there[,!]? |all[,!]? )?{IM} (?P<v>{NAME})", "name", *NAME_QA, shape="name"),
    ],
    "residence": [
        Rule(rf"\b(?:i|we) (?:currently |now |still |also )?live in (?P<v>{PLACE})", "residence", *LIVE_QA),
        Rule(rf"\b(?:{IM}|we(?:'re| are)|(?:i|we)(?:'ve| have) been) (?:currently |now |still |also )?"
             rf"(?:living|based|settled) in (?P<v>{PLACE})", "residence", *LIVE_QA),
        Rule(rf"\b(?:i|we)(?:'ve| have)? (?:just |recently |finally )?(?:moved|relocated) (?:back |over |here )?to "
             rf"(?P<v>{PLACE})", "residence", *LIVE_QA),
        Rule(rf"\bmy home is in (?P<v>{PLACE})", "residence", *LIVE_QA),
    ],
    "origin": [
        Rule(rf"\b(?:i|we)(?:'ve| have)? (?:originally |first )?(?:moved|relocated|emigrated|came (?:over|here))\b"
             rf"[^.!?\n]{{0,40}}?\bfrom (?P<v>{PLACE})", "moved_from", "Where did you move from?",
             "You moved from {v}."),
        Rule(rf"\b(?:{IM} (?:originally )?from|i (?:originally )?(?:come|hail) from) (?P<v>{PLACE})", "hometown",
             *FROM_QA),
        Rule(rf"\bi (?:grew up|was (?:born|raised)(?: and (?:raised|bred))?) in (?P<v>{PLACE})", "hometown", *FROM_QA),
    ],
    "work": [
        Rule(rf"{WORKING} as (?:an? )?(?P<v>{JOB}){JOB_END}", "job", *JOB_QA),
        Rule(rf"\bmy job is (?:being )?(?:an? )?(?P<v>{JOB}){JOB_END}", "job", *JOB_QA),
        Rule(rf"\b{IM} an? (?P<v>{JOB}) (?:by (?:profession|trade)|(?=(?:at|for) (?:the )?{ORG}))", "job",
             *JOB_QA, check=_job_title),
        # 'I'm a nurse.' / 'i'm a sound engineer, mostly theatre': a lower-case title that ends the clause
        # ('I'm an Italian' and 'I'm a beginner' are not jobs).
        Rule(rf"\b{IM} an? (?P<v>(?-i:{JOB}))(?=\s*[,.;:!)]|\s*$|\s+(?:and|but|so|now|by day)\b)", "job", *JOB_QA,
             check=_job_title),
        Rule(rf"{WORKING} (?:at|for) (?:the )?(?P<v>{ORG})", "workplace", *WORK_QA),
        Rule(rf"\b(?:i work as|{IM}) an? {JOB} (?:at|for) (?:the )?(?P<v>{ORG})", "workplace", *WORK_QA),
        Rule(rf"\b(?:my (?:company|employer) is|{IM} employed (?:at|by)) (?P<v>{ORG})", "workplace", *WORK_QA),
    ],
    "preference": [
        Rule(rf"\bmy (?:absolute |all-time |all time )?{FAV} (?P<subject>[a-z]+(?: [a-z]+)?)(?: in the world| of all "
             rf"time| ever| at the moment| right now| these days| by far)?(?:'s| is| are| has to be| would be) "
             rf"(?P<v>{PHRASE}){STOP}", "favorite", "What is your favorite {subject}?",
             "Your favorite {subject} is {sv}.", subject="<subject>"),
        Rule(rf"(?P<v>(?-i:[A-Z][\w'’-]*(?: [A-Z0-9][\w'’-]*){{0,3}})) (?:is|are) my (?:absolute |all-time )?{FAV} "
             r"(?P<subject>[a-z]+(?: [a-z]+)?)\b", "favorite", "What is your favorite {subject}?",
             "Your favorite {subject} is {v}.", subject="<subject>"),
        Rule(rf"\bi (?:really |absolutely |just |also |truly |honestly |genuinely )?(?P<verb>love|like|enjoy|adore) "
             rf"(?P<v>{PHRASE}){STOP}", "likes", *LIKE_QA, split=True, check=_not_pronoun),
        Rule(rf"\bi(?:'ve| have) always (?P<verb>loved|liked|enjoyed|adored) (?P<v>{PHRASE}){STOP}", "likes",
             "Do you like {sv}?", "Yes, you have always {verb} {sv}.", split=True, check=_not_pronoun),
        Rule(rf"\b{IM} (?:a )?(?:huge |big |great )?fan of (?P<v>{PHRASE}){STOP}", "likes",
             "Do you like {sv}?", "Yes, you are a fan of {sv}.", split=True, check=_not_pronoun),
        Rule(rf"\b{IM} (?:(?:a bit|a little|kind of|kinda|totally|completely|slightly|so|really|pretty) )?"
             rf"(?P<verb>obsessed with|crazy about|mad about|hooked on|addicted to|passionate about) (?P<v>{PHRASE})"
             rf"{STOP}", "likes", "Do you like {sv}?", "Yes, you are {verb} {sv}.", split=True, check=_not_pronoun),
        Rule(rf"\bi (?:really |absolutely |just |also |honestly |seriously |genuinely |truly )?(?P<verb>hate|dislike|"
             rf"detest|loathe|despise|can't stand|cannot stand|can't bear|cannot bear|can't stomach|don't like|"
             rf"do not like) (?P<v>{PHRASE}){STOP}", "dislikes", *DISLIKE_QA, split=True, check=_not_pronoun),
        Rule(rf"\b{IM} not (?:really )?(?:a )?(?:huge |big |great )?fan of (?P<v>{PHRASE}){STOP}", "dislikes",
             "Do you like {sv}?", "No, you are not a fan of {sv}.", split=True, check=_not_pronoun),
    ],
    "diet": [
        Rule(rf"(?:\b{IM} |{SUBJECTLESS})(?:very |severely |mildly |also |deathly )?allergic to (?P<v>{PHRASE}){STOP}",
             "allergy", *ALLERGY_QA, split=True),
        Rule(r"\bi(?:'ve got| have got| have|'ve) an? (?:(?:severe|serious|bad|mild|slight|nasty|real) )?"
             r"(?P<v>[a-z]+(?: [a-z]+)?) allergy\b", "allergy", *ALLERGY_QA),
        Rule(rf"\b{IM} (?:also )?(?P<v>lactose[- ]intolerant|gluten[- ]intolerant|celiac|coeliac)\b",
             "intolerance", "Do you have any food intolerances?", "You are {v}."),
        Rule(rf"(?:\b{IM}|\bi(?:'ve| have) been|\bi (?:went|became)|{SUBJECTLESS}been) (?:a |an |strictly |mostly |"
             r"also |fully )?(?P<v>vegetarian|vegan|pesc[ae]tarian|keto|kosher|halal)\b", "diet",
             "What diet do you follow?", "You are {v}."),
        Rule(rf"\bi (?:don't|do not|never) eat (?P<v>{PHRASE}){STOP}", "avoids_food",
             "What food do you avoid?", "You don't eat {sv}.", split=True, check=_not_pronoun),
    ],
    "possession": [
        Rule(rf"\bi drive an? {ADJ}(?P<v>{BRAND})", "possession", *CAR_QA, subject="car"),
        Rule(rf"\bi(?:'ve got| have got| have| own| bought| got) an? {ADJ}(?P<v>{BRAND}) (?:car|suv|van|truck)\b",
             "possession", *CAR_QA, subject="car"),
        Rule(rf"\bmy car(?:'s| is) an? {ADJ}(?P<v>{BRAND})", "possession", *CAR_QA, subject="car"),
        Rule(rf"\bmy (?:work )?(?:laptop|computer|pc|desktop)(?:'s| is) an? {ADJ}(?P<v>{BRAND})", "possession",
             *PC_QA, subject="computer"),
        Rule(rf"\bi(?:'ve got| have got| use| have| own| work on| bought| got) an? {ADJ}(?P<v>{BRAND}) "
             r"(?:laptop|computer|desktop|pc)\b", "possession", *PC_QA, subject="computer"),
        Rule(r"\b(?:i|we) (?:also )?(?:have|own|bought|got) an? (?:(?:small|little|old|new|big|wooden) )*"
             r"(?P<v>(?:sail|motor|row|fishing |speed)?boat|kayak|canoe|yacht|dinghy)\b", "possession",
             "What kind of boat do you have?", "You have {a} {v}.", subject="boat"),
        Rule(rf"(?:boat|\bkayak|\bcanoe|\byacht|\bdinghy),? (?:named|called) (?P<v>{NAME})", "possession_name",
             "What is your boat called?", "Your boat is called {v}.", subject="boat", shape="name"),
    ],
    "account": [
        Rule(r"\bmy (?P<subject>(?:[a-z]+ ){0,2}?(?:e-?mail(?: address)?|phone number|username|user name|login|"
             r"password|passcode|pin|api key|key|token))(?: is|:)\s*(?P<v>\S+)", "account",
             "What is your {subject}?", "Your {subject} is {v}.", subject="<subject>"),
    ],
    "dates": [
        Rule(rf"\bmy (?:birthday|bday|b-day)(?:'s| is) (?:on )?(?P<v>{DATE})", "birthday", "When is your birthday?",
             "Your birthday is on {v}."),
        Rule(rf"\bi (?:was born|(?:'ll |will )?turn \d{{1,3}}) on (?P<v>{DATE})", "birthday", "When is your birthday?",
             "Your birthday is on {v}."),
        Rule(r"\bi was born in (?P<v>\d{4})\b", "birth_year", "What year were you born?", "You were born in {v}."),
        # 'before I'm 37' and 'when I'm 40' are not ages.
        Rule(rf"(?<!before )(?<!until )(?<!till )(?<!when )(?<!once )(?<!if )\b{IM}(?: now| actually)? "
             r"(?:not \d{1,3},? but )?(?P<v>\d{1,3})(?= years? old\b| yo\b|\s*[.,!;]|\s*$|\s+(?:and|but|now)\b)",
             "age", *AGE_QA),
        Rule(r"\bi (?:just )?turned (?P<v>\d{1,3})\b(?! ?%)", "age", *AGE_QA),
    ],
    "plans": [
        Rule(rf"\b(?:{IM}|we're|we are) (?:also )?(?:going|flying|traveling|travelling|heading|driving|off) (?:back )?"
             rf"to (?P<v>{PLACE}){WHEN_OPT}", "trip", TRIP_Q, "You are going to {v}{when}."),
        Rule(rf"\b(?:{IM}|we're|we are) (?:also )?(?:planning|taking) (?:a trip|a holiday|a vacation|to go|to "
             rf"travel) to (?P<v>{PLACE}){WHEN_OPT}", "trip", TRIP_Q, "You are planning a trip to {v}{when}."),
        Rule(rf"\b(?:i|we)(?:'ll| will) (?:also )?be in (?P<v>{PLACE}){WHEN_OPT}", "trip", TRIP_Q,
             "You will be in {v}{when}."),
        Rule(rf"\b{IM} (?:also )?(?:planning|hoping|going) to (?P<v>(?-i:[a-z])[^.!?;:\n]{{1,60}}?)"
             rf"(?:\s+(?P<when>{WHEN}))?{STOP}", "plan", *PLAN_QA, check=_plan_like),
        Rule(rf"\b(?:i (?:plan|intend|aim)|i(?:'ve| have) decided|my (?:big |main |only )?(?:goal|plan|resolution)"
             rf"(?: for (?:this|next) (?:year|month|summer)| this year| next year)? is) to (?P<v>[^.!?;:\n]{{1,60}}?)"
             rf"(?:\s+(?P<when>{WHEN}))?{STOP}", "plan", *PLAN_QA, check=_plan_like),
    ],
    "routine": [
        # 'every morning' and 'on saturdays' (a plural day is a habit; 'on saturday' is one day).
        Rule(rf"\b(?:every |each |on (?=[a-z]+s\b))(?P<subject>{PERIOD})s?,? (?:i|we) (?:usually |always |often )?"
             rf"(?P<v>{PHRASE}){STOP}", "routine", "What do you do every {subject}?", "You {sv} every {subject}.",
             subject="<subject>"),
        Rule(rf"\b(?:i|we) (?:usually |always |often )?(?P<v>(?:go|play|do|take|walk|run|jog|swim|cycle|bike|ride|hike|"
             rf"climb|hit|train|work out|read|write|study|practi[cs]e|cook|bake|clean|meditate|pray|visit|see|meet|"
             rf"call|drink|eat|have|make|watch|attend|teach|volunteer|dance|sing|paint)\b[^.,;!?\n]{{0,40}}?) "
             rf"(?:every|each) (?P<subject>{PERIOD})\b", "routine", "What do you do every {subject}?",
             "You {sv} every {subject}.", subject="<subject>"),
        Rule(rf"\bmy hobb(?:y is|ies are|ies include) (?P<v>{PHRASE}){STOP}", "hobby", HOBBY_Q,
             "One of your hobbies is {sv}.", split=True),
        Rule(rf"\bin my (?:free|spare) time,? i (?:like to |love to |enjoy |usually )?(?P<v>{PHRASE}){STOP}", "hobby",
             HOBBY_Q, "In your free time you {sv}.", check=_not_pronoun),
        Rule(rf"\b{IM} (?:also |really |very |totally )?into (?P<v>{PHRASE}){STOP}", "hobby", HOBBY_Q,
             "You are into {sv}.", split=True, check=_not_pronoun),
        Rule(rf"\b(?:i(?:'ve| have) been|{IM}) (?:also |really |slowly )?getting (?:really |more )?into "
             rf"(?P<v>{PHRASE}){STOP}", "hobby", HOBBY_Q, "You are into {sv}.", split=True, check=_activity),
        Rule(rf"\bi(?:'ve| have)? (?:just |recently |finally )?(?:took|taken) up (?P<v>{PHRASE}){STOP}", "hobby",
             HOBBY_Q, "You took up {sv}.", split=True, check=_activity),
        Rule(rf"{PLAY} (?:the )?(?P<v>piano|guitar|violin|cello|drums|"
             r"double bass|bass|flute|saxophone|trumpet|ukulele|clarinet|harp|viola|trombone|banjo|accordion|organ|"
             r"harmonica|mandolin|oboe|bassoon|tuba|keyboard|oud|sitar|tabla|bouzouki|balalaika|darbuka|djembe|"
             r"bagpipes)\b", "instrument", "What instrument do you play?", "You play the {v}."),
        Rule(rf"{PLAY} (?P<v>tennis|football|soccer|basketball|volleyball|"
             r"golf|badminton|squash|hockey|rugby|baseball|cricket|chess|padel|table tennis|handball)\b", "sport",
             "What sport do you play?", "You play {v}."),
    ],
    "language": [
        Rule(rf"\b{IM} (?:currently |slowly |also |trying )?(?:learning|studying) (?P<v>{LANG})", "language_learning",
             *LEARN_QA),
        # Verbs that also take people and things ('picking up Yasmine'): only a language name counts.
        Rule(rf"\b(?:{IM}|i(?:'ve| have) (?:been|started)) (?:currently |slowly |also |finally )?(?:trying to )?"
             rf"(?:learn|learning|study|studying|pick up|picking up|brush up on|brushing up on) (?:my )?(?P<v>{LANG})",
             "language_learning", *LEARN_QA, check=_language),
        Rule(rf"\b{IM} (?:taking|doing) (?P<v>{LANG}) (?:lessons|classes)", "language_learning", *LEARN_QA),
        Rule(rf"\bi (?:also |can |can also )?speak (?:fluent )?(?P<v>{LANGS})", "language_spoken", *SPEAK_QA,
             split=True),
        Rule(rf"\b{IM} fluent in (?P<v>{LANGS})", "language_spoken", *SPEAK_QA, split=True),
        Rule(rf"\bmy (?:native|first|mother) (?:language|tongue) is (?P<v>{LANG})", "native_language",
             "What is your native language?", "Your native language is {v}."),
    ],
}

AGE = (r"(?:not \d{1,3},? but )?(?P<v>\d{1,3})(?P<unit> months?)?(?! ?(?:%|percent|am\b|pm\b|kg|lbs?|cm|m\b|feet|ft|"
       r"inch|minutes?|hours?|o'clock|:\d|\.\d|,\d))")
# 'my mum and dad still live in Tunis' is about both (group rel2).
WHO = (rf"(?:\b{MY} {KIN_ADJ}(?P<rel>{REL})(?: and (?:{MY} )?(?P<rel2>{REL}))?(?:,? (?P<name>{NAME}),?)?|"
       rf"\b(?P<pron>he|she|they)|\b(?P<known>{NAME}))")
TURNS = r"(?:'s| is| just turned| turned| will be| is turning| turns)(?: now| actually| already)?"
LIVES = (r"(?:(?: still| now| currently| also)? (?:lives?|is living|are living|is based|are based)"
         r"(?: over| up| down| out| back)? in|(?:'s| is| are) (?:still|now) (?:back |over |up |down |out )?in)")
BIRTHDAY_QA = ("When is your {who}'s birthday?", "Your {who}'s birthday is on {v}.")
MEMBER_RULES: list[tuple[str, str, str, str]] = [  # pattern, fact_type, question, answer ({who}: 'sister Karin')
    (rf"{WHO}{TURNS} {AGE}", "family_age", "How old is your {who}?", "Your {who} is {v} {unit} old."),
    (rf"{WHO}(?: works as an?| is an?|'s an?) (?P<v>{JOB}){JOB_END}", "family_job",
     "What does your {who} do for a living?", "Your {who} works as {a} {v}."),
    (rf"(?:{WHO}|\band)(?:{LIVES}| moved (?:back )?to) (?P<v>{PLACE})", "family_home", "Where does your {who} live?",
     "Your {who} lives in {v}."),
    (rf"(?:\b{MY} {KIN_ADJ}(?P<rel>{REL})(?:'s|,? (?P<name>{NAME})'s)|\b(?P<pron>his|her)|\b(?P<known>{NAME})'s) "
     rf"(?:birthday|bday) is (?:on )?(?P<v>{DATE})", "birthday", *BIRTHDAY_QA),
    # 'he turns 40 on the 3rd of May': the day is the birthday.
    (rf"{WHO}(?: turns| will turn| is turning| will be) \d{{1,3}} on (?P<v>{DATE})", "birthday", *BIRTHDAY_QA),
]
NAME_RULES = [
    rf"\b{MY} {KIN_ADJ}(?P<rel>{REL})(?:'s name(?:'s| is)|,? whose name is| is called| is named|,)? (?P<v>{NAME})",
    rf"\b(?:i|we)(?: also)?(?:'ve got| have got| have| got) an? (?:(?:\d+|one|two|three)[- ]years?[- ]old |little |"
    rf"baby |older |younger |big |twin |teenage )?(?P<rel>{REL}) (?:named|called) (?P<v>{NAME})",
    rf"\b{IM} married to (?P<v>{NAME})",
    rf"\b(?P<pron>his|her) name(?:'s| is) (?P<v>{NAME})",
]
PET_DESC = rf"(?P<desc>(?:[a-z]+ ){{0,2}}?{PET_WORD})"  # '[breed or adjectives] kind', ending in a pet word
PET_NAMED = [  # v = the pet's name, or several ('two cats, Pistache and Loukoum')
    rf"\b(?:i|we)(?:'ve| have)? (?:also |just |recently )?(?:have|got|adopted|own|rescued) an? {PET_DESC} "
    rf"(?:named |called |[^.!?\n]{{0,40}}?\b(?:his|her|its) name(?:'s| is) )(?P<v>{NAME})",
    rf"\b{MY} (?P<desc>(?:[a-z]+ )?{PET_WORD}),? (?P<v>{NAME})",
    rf"\b(?:i|we)(?:'ve| have)? (?:also )?(?:have|got|own|adopted) (?:two|three|four|2|3|4) {PET_DESC}s,? "
    rf"(?:named |called )?(?P<v>{NAME}(?:(?:,| and|, and) {NAME})+)",
]
PET_DESCRIBED = (rf"(?:\b{MY} (?P<kind>{PET_WORD})|\b(?P<pron>he|she)|\b(?P<known>{NAME}))(?: is|'s) an? "
                 rf"{PET_DESC}\b")
TRIGGERS = {  # RE2 and Python, matched case-insensitively: a cheap test before the matchers run
    "name": rf"my name|call me|called|this is|{GREETING}[,!]? (?:there[,!]? |all[,!]? )?i(?:'m| am|m) ",
    "residence": r"live in|living in|based in|settled in|moved|relocated|my home is",
    "origin": r"moved|relocated|emigrated|came over|came here|originally from|i'?m from|i am from|come from|hail from|"
              r"grew up|born|raised",
    "work": r"work|my job|by profession|by trade|my company|my employer|employed|i'?m an? |i am an? ",
    "preference": r"favou?rite|fave|\bfav\b|love|like|enjoy|adore|fan of|hate|dislike|can't stand|cannot stand|"
                  r"can't bear|cannot bear|stomach|detest|loathe|despise|obsessed|crazy about|mad about|hooked on|"
                  r"addicted to|passionate about",
    "diet": r"allerg|intolerant|celiac|coeliac|vegetarian|vegan|pesc[ae]tarian|keto|kosher|halal|eat ",
    "possession": r"drive|car\b|laptop|computer|desktop|\bpc\b|boat|kayak|canoe|yacht|dinghy|macbook|thinkpad",
    "account": r"my .{0,30}(?:mail|phone number|username|user name|login|password|passcode|pin|key|token)",
    "dates": r"birthday|bday|b-day|born|turned|turns? \d|i'?m \d|i am \d|years old",
    "plans": r"going|flying|travel|heading|driving|off to|be in|planning|taking a|plan|intend|aim to|decided to|goal|"
             r"resolution|hoping",
    "routine": r"every|each|on [a-z]+s\b|hobb|free time|spare time|into |play|took up|taken up",
    "language": r"learn|study|studying|pick up|picking up|brush|lessons|classes|speak|fluent|native|mother tongue|"
                r"first language",
    "family": rf"\b(?:my|our) (?:\w+ )?{REL}\b|married|name is|name's|named|called|\b(?:he|she|they)\b|\bhis\b|\bher\b|"
              r"\d|lives in|birthday|bday",
    "pets": rf"\b{PET_WORD}s?\b|named|called|\bhis\b|\bher\b|\bhe\b|\bshe\b|'s an? | is an? ",
}
# Apostrophes as phones type them: match_message folds a curly one to a straight one before matching.
TRIGGERS = {fam: t.replace("'", "['’]") for fam, t in TRIGGERS.items()}


def _compile(p: str) -> re.Pattern:
    return re.compile(p, I)


_RULES = {fam: [(r, _compile(r.pattern)) for r in rules] for fam, rules in RULES.items()}
_MEMBER = [(_compile(p), *rest) for p, *rest in MEMBER_RULES]
_NAMES = [_compile(p) for p in NAME_RULES]
_PETS_NAMED = [_compile(p) for p in PET_NAMED]
_PET_DESCRIBED = _compile(PET_DESCRIBED)


def _span(text: str, m: re.Match, group: str, shape: str) -> tuple[int, int] | None:
    s, e = m.span(group)
    return name_span(text, s, e) if shape == "name" else clean_span(text, s, e)


def _fill(fmt: str, v: str, **kw: str) -> str:
    return fmt.format(v=v, sv=_second_person(v), a=_a(v), **kw)


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
    elif last in BREEDS:
        kind, rest = BREEDS[last], words
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
