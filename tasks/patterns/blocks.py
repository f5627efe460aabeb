"""Regex building blocks of the extraction patterns: names, places, jobs, dates, kin and pet words.

Relations, pets and breeds come from tasks/vocabulary.py; these are the regex spellings of them.
"""

from __future__ import annotations

import re

from tasks.vocabulary import BREEDS, JOB_ENDINGS, PETS, REL_ALIAS, RELS

I = re.IGNORECASE
UP, LO = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"
NAME = rf"(?-i:[{UP}][{LO}'’-]+(?: [{UP}][{LO}'’-]+){{0,2}})"
# A dot inside a place or organisation name belongs to it only after an abbreviation ('St. Olav', 'Mt. Fuji'),
# in initials ('D.C.') or between letters ('St.Gallen'); any other dot ends the sentence: 'I live in Denver. My
# dog ...' is about Denver.
ABBREV = r"(?:(?:St|Ste|Sta|Sto|Mt|Mte|Ft|Pt|Pte|Sr|Sra|Co|Inc|Ltd|Corp|Bros|Dr|Univ|Dept)\.(?!\w)|(?:[A-Z]\.){2,})"
# A day or month after a place is when, not more of its name: 'Lisbon on Friday', 'Oslo in March'.
CALENDAR = (r"(?:(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day|January|February|March|April|May|June|July|August|"
            r"September|October|November|December|Christmas|Easter)s?\b")
PLACE = (rf"(?-i:(?:{ABBREV}|[{UP}](?:[\w'’-]|\.(?=\w))*)(?:(?: | (?:de|da|do|dos|del|di|la|le|of|upon|on|am|sur) )"
         rf"(?!{CALENDAR})(?:{ABBREV}|[{UP}](?:[\w'’-]|\.(?=\w))*)){{0,3}})")
# After a joining word only a capitalised word continues the name: 'Kettenwerk for 3 yrs' is Kettenwerk.
ORG = (rf"(?-i:(?:{ABBREV}|[A-Z0-9](?:[\w&'’-]|\.(?=\w))*)(?:(?: (?!I\b)(?:{ABBREV}|[A-Z0-9](?:[\w&'’-]|\.(?=\w))*))|"
       rf"(?: of | de | and | & | for )(?!I\b)(?:{ABBREV}|[A-Z](?:[\w&'’-]|\.(?=\w))*)){{0,4}})")
BRAND = r"(?-i:[A-Z][\w-]*(?: [A-Z0-9][\w-]*){0,3})"
PHRASE = r"[^.!?;:\n]{1,60}?"  # a lazy clause; cut by STOP below
# Texting's sign-offs end a value too: 'allergic to shellfish fyi', 'barista rn'.
TAGS = r"(?:rn|tbh|fyi|lol|lmao|btw|atm|imo|imho|haha+|ngl|tho)"
# When something is done is not part of what is liked: 'painting in my spare time', 'hiking at weekends'.
WHEN_DONE = (r"in my (?:spare|free|own) time|at (?:the )?weekends?|on (?:the )?weekends?|every (?:day|week|morning|"
             r"evening|night|weekend|summer|winter)|these days|at the moment|right now|nowadays|now and then")
STOP = (r"(?=\s*(?:[.!?;:\n()]|[-–—] |$)|,|\s+(?:but|because|since|though|although|when|while|if|so|which|especially|"
        rf"even|{WHEN_DONE})\b|\s+{TAGS}\s*(?:[.!?,;:)]|$))")
JOB = r"[a-z][a-z-]*(?: [a-z][a-z-]*){0,3}?"
JOB_END = rf"(?=\s+(?:at|for|in|with|and|but|since|because|so|who|which|from|now|{TAGS})\b|\s*[.,;:!?)]|\s*$)"
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
REL = "(?:" + "|".join(sorted([*RELS, *REL_ALIAS], key=len, reverse=True)) + ")"
PET_WORD = "(?:" + "|".join(sorted([*PETS, *BREEDS], key=len, reverse=True)) + ")"
NOT_BREED = {"little", "old", "young", "new", "cute", "big", "small", "tiny", "sweet", "lazy", "fat", "rescue",
             "black", "white", "grey", "gray", "brown", "orange", "ginger", "also", "another", "second", "crazy"}
NOT_NAME = {"I", "The", "He", "She", "It", "We", "They", "You", "My", "Our", "And", "But", "So", "Yes", "No",
            "Not", "Just", "Also", "Too", "Here", "There", "Today", "Tomorrow", "Actually", "Anyway", "Thanks"}
JOBLIKE = re.compile(JOB_ENDINGS + "$", I)
# Words that end like a job title but are not one ('I'm a beginner', 'I'm a vegetarian').
NOT_JOB = {"beginner", "member", "mother", "father", "sister", "brother", "daughter", "grandmother", "grandfather",
           "lover", "user", "believer", "learner", "drinker", "smoker", "eater", "sleeper", "worrier", "overthinker",
           "sucker", "stickler", "fighter", "vegetarian", "pescatarian", "pescetarian", "introvert", "extrovert",
           "perfectionist", "optimist", "pessimist", "realist", "romantic", "native", "resident", "citizen", "parent",
           "newcomer", "foreigner", "stranger", "fan", "person", "human", "adult", "runner", "walker", "reader",
           "gamer", "owner", "homeowner", "tenant", "patient", "customer", "client", "winner", "loser", "riser",
           "commuter", "supporter", "follower", "speaker"}
LANGUAGES = {"arabic", "bengali", "bulgarian", "catalan", "chinese", "croatian", "czech", "danish", "dutch", "english",
             "estonian", "finnish", "french", "german", "greek", "hebrew", "hindi", "hungarian", "icelandic",
             "indonesian", "irish", "italian", "japanese", "korean", "latin", "latvian", "lithuanian", "malay",
             "mandarin", "cantonese", "norwegian", "persian", "farsi", "polish", "portuguese", "punjabi", "romanian",
             "russian", "serbian", "slovak", "slovenian", "spanish", "swahili", "swedish", "tagalog", "tamil", "thai",
             "turkish", "ukrainian", "urdu", "vietnamese", "welsh", "basque", "galician", "valencian", "berber",
             "amharic", "yoruba", "zulu", "esperanto", "gaelic"}
SWAP = {"my": "your", "me": "you", "i": "you", "mine": "yours", "myself": "yourself", "our": "your", "we": "you",
        "us": "you", "i'm": "you're", "am": "are"}

ADJ = (r"(?:(?:old|new|used|little|trusty|battered|beat-up|beaten-up|rusty|ancient|tiny|second-hand|secondhand|"
       r"electric|hybrid|shiny|red|blue|black|white|silver|grey|gray|green|\d{4}) )*")
LANG = r"(?-i:[A-Z][a-z]+)"
LANGS = rf"(?:{AMOUNT} )?{LANG}(?:(?:, | and | & |, and )(?:{AMOUNT} )?{LANG})*"  # 'Arabic and a bit of English'
PLAY = r"\bi(?:'ve been| have been)? (?:also )?play(?:ing)?"
WHEN_OPT = rf"(?:[^.!?\n]{{0,30}}?\b(?P<when>{WHEN}))?"
GREETING = r"(?:hi|hiya|hey|heya|hello|howdy|yo|(?:good )?(?:morning|afternoon|evening))"
FAV = r"(?:favou?rite|fave|fav)"
# "my favourite kind of music": the kind named after "of" is what is favourite
KIND_OF = r"(?:(?:kind|type|sort|genre|style|form) of )?"
# A clause with its subject dropped ("also been vegan for years", "oh and allergic to penicillin") is the user's.
SUBJECTLESS = r"(?:^|[.!?;,]\s*)(?:(?:oh|and|also|plus|btw|ah|but)[,!]?\s+)*"
# 'I work at', 'I'm working at', 'I've been working at', and the subjectless 'been working at'.
WORKING = rf"(?:\bi(?: work|(?:'m| am|m) working|(?:'ve| have) been working)|{SUBJECTLESS}been working)"
AGE = (r"(?:not \d{1,3},? but )?(?P<v>\d{1,3})(?P<unit> months?)?(?! ?(?:%|percent|am\b|pm\b|kg|lbs?|cm|m\b|feet|ft|"
       r"inch|minutes?|hours?|o'clock|:\d|\.\d|,\d))")
# 'my mum and dad still live in Tunis' is about both (group rel2).
WHO = (rf"(?:\b{MY} {KIN_ADJ}(?P<rel>{REL})(?: and (?:{MY} )?(?P<rel2>{REL}))?(?:,? (?P<name>{NAME}),?)?|"
       rf"\b(?P<pron>he|she|they)|\b(?P<known>{NAME}))")
TURNS = r"(?:'s| is| just turned| turned| will be| is turning| turns)(?: now| actually| already)?"
LIVES = (r"(?:(?: still| now| currently| also)? (?:lives?|is living|are living|is based|are based)"
         r"(?: over| up| down| out| back)? in|(?:'s| is| are) (?:still|now) (?:back |over |up |down |out )?in)")
