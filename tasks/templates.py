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
NOT_BREED = {"little", "old", "young", "new", "cute", "big", "small", "tiny", "sweet", "lazy", "fat", "rescue",
             "black", "white", "grey", "gray", "brown", "orange", "ginger", "also", "another", "second", "crazy"}
NOT_NAME = {"I", "The", "He", "She", "It", "We", "They", "You", "My", "Our", "And", "But", "So", "Yes", "No",
            "Not", "Just", "Also", "Too", "Here", "There", "Today", "Tomorrow", "Actually", "Anyway", "Thanks"}
JOBLIKE = re.compile(r"(?:er|or|ist|ian|ant|ent|man|woman|eon|ect|ive|nurse|chef|cook|vet|pilot|clerk|guard|judge|"
                     r"coach|tutor|barista|ceo|cto|cfo|nanny|midwife|medic|programmer|dev)$", I)
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
        """The nearest earlier mention (this message first, then earlier ones) matching the pronoun."""
        gender = {"he": "m", "his": "m", "him": "m", "she": "f", "her": "f"}.get(pronoun.lower())
        best = None
        for m in MENTION.finditer(text, 0, pos):
            if m.group("rel"):
                rel = REL_ALIAS.get(m.group("rel").lower(), m.group("rel").lower())
                if RELS.get(rel) in (gender, None):
                    best = ("family", rel, m.group("name") or self.only(rel))
            elif (hit := self.named(m.group("known"))) and (gender is None or hit[0] == "pet" or
                                                          RELS.get(hit[1]) in (gender, None)):
                best = hit
        return best or self.last.get(gender)


MENTION = re.compile(rf"\bmy (?P<rel>{REL})\b(?:,? (?P<name>{NAME}))?|(?P<known>{NAME})", I)


_END = re.compile(r"[.!?\n]")
# "My key is X, can you use it?": the statement ends at the comma, the tag after it is the question.
_TAG = re.compile(r",\s*(?:and |so |but )?(?:can|could|would|will|do|does|did|is|are|was|have|has|what|how|why|"
                  r"where|when|who|right|ok|okay|isn't|aren't|don't|doesn't)\b", I)


def _in_question(text: str, pos: int) -> bool:
    m = _END.search(text, pos)
    return m is not None and m.group() == "?" and _TAG.search(text, pos, m.start()) is None


_TRAIL = re.compile(r"(?:[\s,;:.!?'’\"()]+|\s+(?:too|as well|a lot|so much|very much|lately|these days|now|though|"
                    r"anyway|haha|lol|by the way|mostly|actually)\b)+$", I)


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
    return [(s, e) for s, e in out if e > s]


def name_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Trim words that are not names ('And', 'Today') off a captured name; None when nothing is left."""
    words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
    while words and text[words[-1][0]:words[-1][1]].strip(".,!") in NOT_NAME:
        words.pop()
    if not words or text[words[0][0]:words[0][1]] in NOT_NAME:
        return None
    return clean_span(text, words[0][0], words[-1][1])


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
    return not re.match(r"(?:the|a|an|my|our|bed|work|school|church|be|have|do it|go)\b", v, I)


NAME_QA = ("What is your name?", "Your name is {v}.")
LIVE_QA = ("Where do you live?", "You live in {v}.")
FROM_QA = ("Where are you originally from?", "You are originally from {v}.")
JOB_QA = ("What do you do for a living?", "You work as {a} {v}.")
WORK_QA = ("Where do you work?", "You work at {v}.")
LIKE_QA = ("Do you like {sv}?", "Yes, you {verb} {sv}.")
HOBBY_Q = "What is one of your hobbies?"
TRIP_Q = "Where are you going{when}?"
AGE_QA = ("How old are you?", "You are {v} years old.")
CAR_QA = ("What car do you drive?", "You drive {a} {v}.")
PC_QA = ("What computer do you use?", "You use {a} {v}.")
SPEAK_QA = ("What languages do you speak?", "You speak {v}.")
LEARN_QA = ("What language are you learning?", "You are learning {v}.")
ADJ = r"(?:(?:old|new|used|little|trusty|red|blue|black|white|silver|grey|gray|green|\d{4}) )*"
LANG = r"(?-i:[A-Z][a-z]+)"
WHEN_OPT = rf"(?:[^.!?\n]{{0,30}}?\b(?P<when>{WHEN}))?"

RULES: dict[str, list[Rule]] = {
    "name": [
        Rule(rf"\bmy name(?:'s| is) (?P<v>{NAME})", "name", *NAME_QA, shape="name"),
        Rule(rf"\b(?:call me|i'm called|i am called|people call me) (?P<v>{NAME})", "name", *NAME_QA, shape="name"),
        Rule(rf"(?:^|[.!?]\s+)(?:(?:hi|hey|hello)[,!]?\s+)?this is (?P<v>{NAME})\s*(?=[.!]|$)", "name", *NAME_QA,
             shape="name"),
        Rule(rf"\b(?:hi|hey|hello)[,!]? (?:there[,!]? )?i(?:'m| am) (?P<v>{NAME})", "name", *NAME_QA, shape="name"),
    ],
    "residence": [
        Rule(rf"\b(?:i|we) (?:currently |now |still |also )?live in (?P<v>{PLACE})", "residence", *LIVE_QA),
        Rule(rf"\bi(?:'m| am) (?:currently |now )?based in (?P<v>{PLACE})", "residence", *LIVE_QA),
        Rule(rf"\b(?:i|we) (?:just |recently |finally )?moved to (?P<v>{PLACE})", "residence", *LIVE_QA),
        Rule(rf"\bmy home is in (?P<v>{PLACE})", "residence", *LIVE_QA),
    ],
    "origin": [
        Rule(rf"\b(?:i|we) (?:originally |first )?moved\b[^.!?\n]{{0,40}}?\bfrom (?P<v>{PLACE})", "moved_from",
             "Where did you move from?", "You moved from {v}."),
        Rule(rf"\bi(?:'m| am) (?:originally )?from (?P<v>{PLACE})", "hometown", *FROM_QA),
        Rule(rf"\bi (?:grew up|was born) in (?P<v>{PLACE})", "hometown", *FROM_QA),
    ],
    "work": [
        Rule(rf"\bi work as (?:an? )?(?P<v>{JOB}){JOB_END}", "job", *JOB_QA),
        Rule(rf"\bmy job is (?:being )?(?:an? )?(?P<v>{JOB}){JOB_END}", "job", *JOB_QA),
        Rule(rf"\bi(?:'m| am) an? (?P<v>{JOB}) (?:by (?:profession|trade)|(?=(?:at|for) (?:the )?{ORG}))", "job",
             *JOB_QA, check=_joblike),
        Rule(rf"\bi work (?:at|for) (?:the )?(?P<v>{ORG})", "workplace", *WORK_QA),
        Rule(rf"\b(?:i work as|i'm|i am) an? {JOB} (?:at|for) (?:the )?(?P<v>{ORG})", "workplace", *WORK_QA),
        Rule(rf"\bmy (?:company|employer) is (?P<v>{ORG})", "workplace", *WORK_QA),
    ],
    "preference": [
        Rule(rf"\bmy (?:absolute )?favou?rite (?P<subject>[a-z]+(?: [a-z]+)?) (?:is|are|has to be|would be) "
             rf"(?P<v>{PHRASE}){STOP}", "favorite", "What is your favorite {subject}?",
             "Your favorite {subject} is {sv}.", subject="<subject>"),
        Rule(r"(?P<v>(?-i:[A-Z][\w'’-]*(?: [A-Z0-9][\w'’-]*){0,3})) (?:is|are) my (?:absolute )?favou?rite "
             r"(?P<subject>[a-z]+(?: [a-z]+)?)\b", "favorite", "What is your favorite {subject}?",
             "Your favorite {subject} is {v}.", subject="<subject>"),
        Rule(rf"\bi (?:really |absolutely |just |also |truly )?(?P<verb>love|like|enjoy|adore) (?P<v>{PHRASE}){STOP}",
             "likes", *LIKE_QA, split=True, check=_not_pronoun),
        Rule(rf"\bi(?:'m| am) (?:a )?(?:huge |big |great )?fan of (?P<v>{PHRASE}){STOP}", "likes",
             "Do you like {sv}?", "Yes, you are a fan of {sv}.", split=True, check=_not_pronoun),
        Rule(rf"\bi (?:really |absolutely |just |also )?(?P<verb>hate|dislike|can't stand|cannot stand|can’t stand|"
             rf"don't like|do not like|don’t like|despise) (?P<v>{PHRASE}){STOP}", "dislikes",
             "Do you like {sv}?", "No, you {verb} {sv}.", split=True, check=_not_pronoun),
    ],
    "diet": [
        Rule(rf"\bi(?:'m| am) (?:very |severely |mildly |also |deathly )?allergic to (?P<v>{PHRASE}){STOP}", "allergy",
             "What are you allergic to?", "You are allergic to {sv}.", split=True),
        Rule(r"\bi have an? (?P<v>[a-z]+(?: [a-z]+)?) allergy\b", "allergy", "What are you allergic to?",
             "You are allergic to {v}."),
        Rule(r"\bi(?:'m| am) (?:also )?(?P<v>lactose[- ]intolerant|gluten[- ]intolerant|celiac|coeliac)\b",
             "intolerance", "Do you have any food intolerances?", "You are {v}."),
        Rule(r"\bi(?:'m| am) (?:a |an |strictly |mostly |also |fully )?(?P<v>vegetarian|vegan|pesc[ae]tarian|keto|"
             r"kosher|halal)\b", "diet", "What diet do you follow?", "You are {v}."),
        Rule(rf"\bi (?:don't|do not|don’t|never) eat (?P<v>{PHRASE}){STOP}", "avoids_food",
             "What food do you avoid?", "You don't eat {sv}.", split=True, check=_not_pronoun),
    ],
    "possession": [
        Rule(rf"\bi drive an? {ADJ}(?P<v>{BRAND})", "possession", *CAR_QA, subject="car"),
        Rule(rf"\bi (?:have|own|bought|got) an? {ADJ}(?P<v>{BRAND}) (?:car|suv|van|truck)\b", "possession", *CAR_QA,
             subject="car"),
        Rule(rf"\bmy car is an? {ADJ}(?P<v>{BRAND})", "possession", *CAR_QA, subject="car"),
        Rule(rf"\bmy (?:work )?(?:laptop|computer|pc|desktop) is an? {ADJ}(?P<v>{BRAND})", "possession", *PC_QA,
             subject="computer"),
        Rule(rf"\bi (?:use|have|own|work on|bought|got) an? {ADJ}(?P<v>{BRAND}) (?:laptop|computer|desktop|pc)\b",
             "possession", *PC_QA, subject="computer"),
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
        Rule(rf"\bmy birthday is (?:on )?(?P<v>{DATE})", "birthday", "When is your birthday?",
             "Your birthday is on {v}."),
        Rule(rf"\bi was born on (?P<v>{DATE})", "birthday", "When is your birthday?", "Your birthday is on {v}."),
        Rule(r"\bi was born in (?P<v>\d{4})\b", "birth_year", "What year were you born?", "You were born in {v}."),
        Rule(r"\bi(?:'m| am)(?: now| actually)? (?:not \d{1,3},? but )?(?P<v>\d{1,3})(?= years? old\b| yo\b|\s*[.,!;]|"
             r"\s*$)", "age", *AGE_QA),
        Rule(r"\bi (?:just )?turned (?P<v>\d{1,3})\b(?! ?%)", "age", *AGE_QA),
    ],
    "plans": [
        Rule(rf"\b(?:i'm|i am|we're|we are) (?:also )?(?:going|flying|traveling|travelling|heading|driving) (?:back )?"
             rf"to (?P<v>{PLACE}){WHEN_OPT}", "trip", TRIP_Q, "You are going to {v}{when}."),
        Rule(rf"\b(?:i'm|i am|we're|we are) (?:also )?(?:planning|taking) (?:a trip|a holiday|a vacation|to go|to "
             rf"travel) to (?P<v>{PLACE}){WHEN_OPT}", "trip", TRIP_Q, "You are planning a trip to {v}{when}."),
        Rule(rf"\b(?:i'm|i am) (?:also )?(?:planning|hoping|going) to (?P<v>(?-i:[a-z])[^.!?;:\n]{{1,60}}?)"
             rf"(?:\s+(?P<when>{WHEN}))?{STOP}", "plan", "What are you planning to do{when}?",
             "You are planning to {sv}{when}.", check=_plan_like),
        Rule(rf"\bi plan to (?P<v>[^.!?;:\n]{{1,60}}?)(?:\s+(?P<when>{WHEN}))?{STOP}", "plan",
             "What are you planning to do{when}?", "You are planning to {sv}{when}.", check=_plan_like),
    ],
    "routine": [
        Rule(rf"\bevery (?P<subject>{PERIOD}),? (?:i|we) (?:usually |always |often )?(?P<v>{PHRASE}){STOP}", "routine",
             "What do you do every {subject}?", "You {sv} every {subject}.", subject="<subject>"),
        Rule(rf"\b(?:i|we) (?:usually |always |often )?(?P<v>(?:go|play|do|take|walk|run|swim|cycle|ride|read|write|"
             rf"practi[cs]e|cook|bake|meditate|visit|call|drink|eat|have|make|watch)\b[^.,;!?\n]{{0,40}}?) (?:every|each)"
             rf" (?P<subject>{PERIOD})\b", "routine", "What do you do every {subject}?", "You {sv} every {subject}.",
             subject="<subject>"),
        Rule(rf"\bmy hobb(?:y is|ies are|ies include) (?P<v>{PHRASE}){STOP}", "hobby", HOBBY_Q,
             "One of your hobbies is {sv}.", split=True),
        Rule(rf"\bin my (?:free|spare) time,? i (?:like to |love to |enjoy |usually )?(?P<v>{PHRASE}){STOP}", "hobby",
             HOBBY_Q, "In your free time you {sv}.", check=_not_pronoun),
        Rule(rf"\bi(?:'m| am) (?:also |really |very |totally )?into (?P<v>{PHRASE}){STOP}", "hobby", HOBBY_Q,
             "You are into {sv}.", split=True, check=_not_pronoun),
        Rule(r"\bi play (?:the )?(?P<v>piano|guitar|violin|cello|drums|bass|flute|saxophone|trumpet|ukulele|clarinet|"
             r"harp|viola|trombone|banjo|accordion|organ|harmonica|mandolin)\b", "instrument",
             "What instrument do you play?", "You play the {v}."),
        Rule(r"\bi play (?P<v>tennis|football|soccer|basketball|volleyball|golf|badminton|squash|hockey|rugby|baseball|"
             r"cricket|chess|padel|table tennis|handball)\b", "sport", "What sport do you play?", "You play {v}."),
    ],
    "language": [
        Rule(rf"\bi(?:'m| am) (?:currently |slowly |also |trying )?(?:learning|studying) (?P<v>{LANG})", "language_learning",
             *LEARN_QA),
        Rule(rf"\bi(?:'m| am) (?:taking|doing) (?P<v>{LANG}) (?:lessons|classes)", "language_learning", *LEARN_QA),
        Rule(rf"\bi (?:also )?speak (?P<v>{LANG}(?:(?:, | and | & |, and ){LANG})*)", "language_spoken", *SPEAK_QA,
             split=True),
        Rule(rf"\bi(?:'m| am) fluent in (?P<v>{LANG}(?:(?:, | and | & |, and ){LANG})*)", "language_spoken", *SPEAK_QA,
             split=True),
        Rule(rf"\bmy (?:native|first|mother) (?:language|tongue) is (?P<v>{LANG})", "native_language",
             "What is your native language?", "Your native language is {v}."),
    ],
}

PET_WORD = "(?:" + "|".join(sorted([*PETS, *BREEDS], key=len, reverse=True)) + ")"
AGE = (r"(?:not \d{1,3},? but )?(?P<v>\d{1,3})(?P<unit> months?)?(?! ?(?:%|percent|am\b|pm\b|kg|lbs?|cm|m\b|feet|ft|"
       r"inch|minutes?|hours?|o'clock|:\d|\.\d|,\d))")
WHO = rf"(?:\bmy (?P<rel>{REL})(?:,? (?P<name>{NAME}),?)?|\b(?P<pron>he|she|they)|\b(?P<known>{NAME}))"
TURNS = r"(?:'s| is| just turned| turned| will be| is turning| turns)(?: now| actually| already)?"
LIVES = r"(?: still| now| currently| also)? (?:lives?|is living|is based) in"
MEMBER_RULES: list[tuple[str, str, str, str]] = [  # pattern, fact_type, question, answer ({who}: 'sister Karin')
    (rf"{WHO}{TURNS} {AGE}", "family_age", "How old is your {who}?", "Your {who} is {v} {unit} old."),
    (rf"{WHO}(?: works as an?| is an?|'s an?) (?P<v>{JOB}){JOB_END}", "family_job",
     "What does your {who} do for a living?", "Your {who} works as {a} {v}."),
    (rf"(?:{WHO}|\band)(?:{LIVES}| moved (?:back )?to) (?P<v>{PLACE})", "family_home", "Where does your {who} live?",
     "Your {who} lives in {v}."),
    (rf"(?:\bmy (?P<rel>{REL})(?:'s|,? (?P<name>{NAME})'s)|\b(?P<pron>his|her)|\b(?P<known>{NAME})'s) birthday is "
     rf"(?:on )?(?P<v>{DATE})", "birthday", "When is your {who}'s birthday?", "Your {who}'s birthday is on {v}."),
]
NAME_RULES = [
    rf"\bmy (?P<rel>{REL})(?:'s name is|,? whose name is| is called| is named|,)? (?P<v>{NAME})",
    rf"\b(?:i|we) (?:also )?have an? (?:(?:\d+|one|two|three)[- ]years?[- ]old |little |baby |older |younger |big |"
    rf"twin |teenage )?(?P<rel>{REL}) (?:named|called) (?P<v>{NAME})",
    rf"\bi(?:'m| am) married to (?P<v>{NAME})",
    rf"\b(?P<pron>his|her) name is (?P<v>{NAME})",
]
PET_RULES = [  # group desc = '[breed] kind' words, v = the pet's name
    rf"\b(?:i|we) (?:also |just )?(?:have|got|adopted|own) an? (?P<desc>[a-z]+(?: [a-z]+){{0,2}}?) (?:named|called) "
    rf"(?P<v>{NAME})",
    rf"\b(?:my|our) (?P<desc>(?:[a-z]+ )?{PET_WORD}),? (?P<v>{NAME})",
    rf"(?:\b(?:my|our) (?P<kind>{PET_WORD})|\b(?P<pron>he|she)|\b(?P<known>{NAME}))(?: is|'s) an? (?P<desc>[a-z]+(?: [a-z]+){{0,2}})\b",
]
TRIGGERS = {  # RE2 and Python, matched case-insensitively: a cheap test before the matchers run
    "name": r"my name|call me|called|this is|(?:hi|hey|hello)[,!]? (?:there[,!]? )?i(?:'m| am) ",
    "residence": r"live in|based in|moved to|my home is",
    "origin": r"moved|originally from|grew up|i'm from|i am from|born in",
    "work": r"work|my job|by profession|by trade|my company|my employer|i'm an? |i am an? ",
    "preference": r"favou?rite|love|like|enjoy|adore|fan of|hate|dislike|can't stand|cannot stand|can’t stand|despise",
    "diet": r"allerg|intolerant|celiac|coeliac|vegetarian|vegan|pesc[ae]tarian|keto|kosher|halal|eat ",
    "possession": r"drive|car\b|laptop|computer|desktop|\bpc\b|boat|kayak|canoe|yacht|dinghy|macbook|thinkpad",
    "account": r"my .{0,30}(?:mail|phone number|username|user name|login|password|passcode|pin|key|token)",
    "dates": r"birthday|born|turned|i'm \d|i am \d|years old",
    "plans": r"going|flying|travel|heading|driving|planning|taking a|plan to|hoping",
    "routine": r"every|each|hobb|free time|spare time|into |i play",
    "language": r"learning|studying|lessons|classes|speak|fluent|native|mother tongue|first language",
    "family": rf"\bmy {REL}\b|married|name is|named|called|\b(?:he|she|they)\b|\bhis\b|\bher\b|\d|lives in|birthday",
    "pets": rf"\b{PET_WORD}s?\b|named|called|\bhis\b|\bher\b|\bhe\b|\bshe\b|'s an? | is an? ",
}


def _compile(p: str) -> re.Pattern:
    return re.compile(p, I)


_RULES = {fam: [(r, _compile(r.pattern)) for r in rules] for fam, rules in RULES.items()}
_MEMBER = [(_compile(p), *rest) for p, *rest in MEMBER_RULES]
_NAMES = [_compile(p) for p in NAME_RULES]
_PETS = [_compile(p) for p in PET_RULES]


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
        rel = REL_ALIAS.get(g["rel"].lower(), g["rel"].lower())
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
                who = ("family", REL_ALIAS.get(g["rel"].lower(), g["rel"].lower()), None)
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
            _, subject, name = who
            s, e = clean_span(text, *m.span("v"))
            v = text[s:e]
            # 'works as' is a job by itself; 'is a ...' only when it ends like one ('a bit tired' does not).
            if not v or ftype == "family_job" and "works as" not in m.group().lower() and not _joblike(v):
                continue
            who_s = _member_label(subject, name)
            unit = (m.groupdict().get("unit") or " years").strip()
            qq, aa = q, a
            if subject == "parents":  # plural verbs
                qq, aa = qq.replace("does", "do"), aa.replace("lives", "live").replace("works", "work")
            out.append(Fact(ftype, subject, v, s, e, _fill(qq, v, who=who_s), _fill(aa, v, who=who_s, unit=unit),
                            member=name))
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


def match_pets(text: str, ctx: Context) -> list[Fact]:
    """Pets' names, kinds and breeds ('we have a border collie named Pepper', 'Miso is a ragdoll')."""
    out = []
    for i, rx in enumerate(_PETS):
        for m in rx.finditer(text):
            if _in_question(text, m.end()):
                continue
            g = m.groupdict()
            cls = classify_pet(g["desc"])
            if cls is None:
                continue
            kind, breed = cls
            if i < 2:
                span = name_span(text, *m.span("v"))
                if span is None:
                    continue
                name = text[span[0]:span[1]]
                out.append(Fact("pet_name", kind, name, *span, f"What is your {kind}'s name?",
                                f"Your {kind}'s name is {name}.", member=name))
                kind_at = text.lower().find(kind, *m.span("desc"))
                # 'a border collie' names no kind word: the value has no span then.
                ks, ke = (kind_at, kind_at + len(kind)) if kind_at >= 0 else (None, None)
                out.append(Fact("pet_kind", "pet", kind, ks, ke, f"What kind of animal is {name}?",
                                f"{name} is your {kind}.", member=name))
                ctx.note("pet", kind, name, None)
            else:
                if g.get("kind"):
                    name = ctx.only(PETS.get(g["kind"].lower(), BREEDS.get(g["kind"].lower(), "")))
                else:
                    who = ctx.named(g["known"]) if g.get("known") else ctx.resolve(g.get("pron") or "", text, m.start())
                    if who is None or who[0] != "pet":
                        continue
                    kind, name = who[1], who[2]
                if not breed or name is None:
                    continue
            if breed:
                bs = text.lower().find(breed, *m.span("desc"))
                bs, be = (bs, bs + len(breed)) if bs >= 0 else (None, None)
                out.append(Fact("pet_breed", kind, breed, bs, be, f"What breed is your {kind} {name}?",
                                f"Your {kind} {name} is {_a(breed)} {breed}.", member=name))
    return out


def match_message(text: str, families: list[str], ctx: Context) -> list[Fact]:
    """Every fact the given families find in one user message (family members and pets first)."""
    out: list[Fact] = []
    if "pets" in families:
        out += match_pets(text, ctx)
    if "family" in families:
        out += match_family(text, ctx)
    for fam in families:
        if fam in _RULES:
            out += match_rules(fam, text, ctx)
    return out
