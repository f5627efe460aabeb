"""The extraction rule tables: per family, the regexes that find a fact and its question and answer.

Each family has a cheap RE2-compatible trigger (run column-wise over all messages first) and rules that
only see messages whose trigger fired. Names, places and brands are matched case-sensitively
(capitalised); everything else case-insensitively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from tasks.patterns.blocks import (ADJ, AGE, BRAND, DATE, FAV, GREETING, IM, JOB, JOB_END, JOBLIKE, KIN_ADJ, KIND_OF,
                                   LANG, LANGS, LANGUAGES, LIVES, MY, NAME, NOT_JOB, ORG, PERIOD, PET_WORD, PHRASE,
                                   PLACE, PLAY, REL, STOP, SUBJECTLESS, TURNS, WHEN, WHEN_OPT, WHO, WORKING, I)


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


KEEN_WORDS = frozenset("keen avid amateur enthusiastic passionate casual occasional big huge massive".split())


def _job_title(v: str) -> bool:
    # 'a keen birdwatcher', 'an avid reader': what someone loves doing, not their work
    return _joblike(v) and v.split()[-1].lower() not in NOT_JOB and v.split()[0].lower() not in KEEN_WORDS


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
        Rule(rf"\bmy (?:absolute |all-time |all time )?{FAV} {KIND_OF}(?P<subject>[a-z]+(?: [a-z]+)?)(?: in the world| of all "
             rf"time| ever| at the moment| right now| these days| by far)?(?:'s| is| are| has to be| would be) "
             rf"(?P<v>{PHRASE}){STOP}", "favorite", "What is your favorite {subject}?",
             "Your favorite {subject} is {sv}.", subject="<subject>"),
        Rule(rf"(?P<v>(?-i:[A-Z][\w'’-]*(?: [A-Z0-9][\w'’-]*){{0,3}})) (?:is|are) my (?:absolute |all-time )?{FAV} "
             rf"{KIND_OF}(?P<subject>[a-z]+(?: [a-z]+)?)\b", "favorite", "What is your favorite {subject}?",
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
        # 'I was born in 1987', 'I was born on 3rd March 1985', 'Born in 1979, so ...'
        Rule(r"(?:\bi was |^\W*)born (?:in |on [^.!?\n]{0,25}?)(?P<v>(?:1[89]|20)\d{2})\b", "birth_year",
             "What year were you born?", "You were born in {v}."),
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

