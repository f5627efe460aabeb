"""The fact vocabulary, in one place: every fact type extraction emits, with its question wordings, its
scoring markers, its "I don't know" question and its yes/no verify wording, and the shared word lists
(relations, pets, breeds, aliases).

Scoring's default markers, mixing's wordings and tables, the firewall's aliases and the extraction
patterns' relation and pet words are all derived from here; nothing else keeps a copy.

Wordings are asked by the user about themselves ("my"); {subject} is the fact's subject ("son", "dog",
"colour"). Markers are regex fragments valid in RE2 and Python `re` (see tasks/scoring.py), written with
straight apostrophes: `scoring_markers` lets each one match a curly apostrophe as phones type it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# Relations the patterns know, with their grammatical gender (None: either).
RELS: dict[str, str | None] = {
    "wife": "f", "husband": "m", "partner": None, "spouse": None, "girlfriend": "f", "boyfriend": "m", "son": "m",
    "daughter": "f", "child": None, "brother": "m", "sister": "f", "mother": "f", "father": "m", "grandmother": "f",
    "grandfather": "m", "aunt": "f", "uncle": "m", "cousin": None, "niece": "f", "nephew": "m", "parents": None,
    "grandson": "m", "granddaughter": "f", "grandchild": None}
# How people say them: 'mum' is the mother.
REL_ALIAS = {"mom": "mother", "mum": "mother", "dad": "father", "grandma": "grandmother", "grandpa": "grandfather",
             "kid": "child", "baby": "child", "grandkid": "grandchild", "missus": "wife", "wifey": "wife",
             "hubby": "husband", "fiance": "partner", "fiancé": "partner", "fiancee": "partner", "fiancée": "partner",
             "sis": "sister", "bro": "brother", "nan": "grandmother", "nana": "grandmother", "nanna": "grandmother",
             "gran": "grandmother", "granny": "grandmother", "grandad": "grandfather", "granddad": "grandfather",
             "mam": "mother", "mummy": "mother", "mommy": "mother", "daddy": "father", "gf": "girlfriend",
             "bf": "boyfriend"}
# Pet words -> the kind of animal.
PETS = {"dog": "dog", "puppy": "dog", "pup": "dog", "doggo": "dog", "cat": "cat", "kitty": "cat", "moggy": "cat", "kitten": "cat", "parrot": "parrot", "rabbit": "rabbit",
        "bunny": "rabbit", "hamster": "hamster", "horse": "horse", "pony": "horse", "turtle": "turtle",
        "tortoise": "tortoise", "snake": "snake", "lizard": "lizard", "gecko": "gecko", "ferret": "ferret",
        "goldfish": "fish", "fish": "fish", "budgie": "bird", "bird": "bird", "pig": "pig"}
BREEDS = {**{b: "dog" for b in ("retriever", "labrador", "lab", "beagle", "poodle", "terrier", "husky", "corgi",
                                 "spaniel", "shepherd", "bulldog", "dachshund", "collie", "pug", "chihuahua",
                                 "greyhound", "whippet", "boxer", "rottweiler", "doberman", "schnauzer", "inu",
                                 "labradoodle", "malamute", "setter", "pointer", "sheepdog", "samoyed")},
          **{b: "cat" for b in ("siamese", "persian", "coon", "ragdoll", "bengal", "sphynx", "tabby", "shorthair")}}
# First words of breed names ('border collie', 'golden retriever').
BREED_WORDS = frozenset({"border", "golden", "german", "jack", "russell", "cocker", "maine", "french", "english",
                         "springer", "bernese", "shiba", "irish", "scottish", "siberian", "labrador"})
# The user says 'mom', an answer says 'mother': both name the same claim (the firewall's word aliases).
WORD_ALIASES = {**REL_ALIAS, **{w: kind for w, kind in PETS.items() if w != kind}, "favourite": "favorite"}
# Other spellings of a fact type (another extractor's, a model's) -> the extractor's name.
FACT_TYPE_ALIASES = {"favourite": "favorite", "lives_in": "residence", "lives": "residence", "home": "residence",
                     "occupation": "job", "employer": "workplace", "pet_type": "pet_kind", "pet_species": "pet_kind",
                     "language": "language_learning", "travel": "trip", "allergies": "allergy", "like": "likes",
                     "dislike": "dislikes", "owns": "possession"}
# Who "I don't know" questions ask about, and what favourites.
RELATIVES = ("mother", "father", "brother", "sister", "son", "daughter", "wife", "husband", "partner",
             "grandmother", "grandfather", "aunt", "uncle", "cousin", "best friend")
PET_KINDS = ("dog", "cat", "rabbit", "parrot", "horse", "hamster", "tortoise")
OTHERS = frozenset(RELATIVES + PET_KINDS + ("child", "children", "friend"))
FAVOURITES = ("colour", "food", "book", "film", "song", "season", "sport", "band", "drink", "city")
# Endings of a job title ('nurse', 'engineer', 'pharmacist'): the patterns' check and scoring's marker.
JOB_ENDINGS = (r"(?:er|or|ist|ian|ant|ent|man|woman|eon|ect|ive|smith|mechanic|nurse|chef|cook|vet|pilot|clerk|guard|judge|"
               r"coach|tutor|barista|ceo|cto|cfo|nanny|midwife|medic|programmer|dev)")
# Wrong values for yes/no verify questions when a night has no other fact of the same kind.
VERIFY_DECOYS: dict[str, tuple[str, ...]] = {
    "name": ("Anna", "Lukas", "Maria", "Tomas", "Elena", "David", "Yusuf", "Ingrid"),
    "place": ("Paris", "Madrid", "Chicago", "Nairobi", "Melbourne", "Warsaw", "Toronto", "Seoul"),
    "job": ("lawyer", "chef", "nurse", "architect", "accountant", "electrician", "journalist", "farmer"),
    "workplace": ("Google", "the city hospital", "a bank", "the post office", "a law firm", "a bakery"),
    "language": ("French", "German", "Spanish", "Italian", "Korean", "Arabic", "Russian", "Dutch"),
}


def _alts(words) -> str:
    return "(?:" + "|".join(sorted(words, key=len, reverse=True)) + ")"


_REL_WORDS = _alts([*RELS, *REL_ALIAS])
_PET_WORDS = _alts([*PETS, *BREEDS])
_CAP = "(?-i:[A-Z][a-z]+)"
_IM = "(?:i'm|im|i am)"


@dataclass(frozen=True)
class FactType:
    """One kind of fact about the user and every word that belongs to it."""

    name: str
    wordings: tuple[str, ...]  # the question asked other ways, most natural first
    markers: tuple[str, ...] = ()  # scoring fragments of the messages that state it
    preference: bool = False  # its markers count as importance:preference, not importance:personal
    unknown: tuple[tuple[str, str, str], ...] = ()  # (subject, question, what is unknown) for "I don't know"
    verify: tuple[str, str] | None = None  # (kind of value, yes/no wording with {x} / {a} / {subject})
    # Asked instead of `wordings` when the fact is about someone else (a relative's birthday, not the user's).
    member_wordings: tuple[str, ...] = ()
    # How many of the wordings training may use (None: all). The rest are only ever asked by the gate, as
    # held-out questions. Types trained on their original question alone keep it so: on the labelled case, two
    # more training wordings for residence lost a control answer and 0.025 of benchmark ratio (one seed each).
    train_wordings: int | None = None

    def training_wordings_for(self, subject: str) -> tuple[str, ...]:
        """The wordings training may use for this subject (a prefix of wordings_for)."""
        return self.wordings_for(subject)[:self.train_wordings]

    def wordings_for(self, subject: str) -> tuple[str, ...]:
        """The wordings that ask about this subject."""
        return self.member_wordings if self.member_wordings and subject not in ("", "user") else self.wordings


def _unknown(rows, template: str, what: str) -> tuple[tuple[str, str, str], ...]:
    return tuple((s, template.format(s=s), what.format(s=s)) for s in rows)


_FAMILY = (r"(?:my|our) (?:\w+ )?(?:wife|husband|partner|girlfriend|boyfriend|fianc[ée]e?)",
           r"(?:my|our) (?:\w+ )?(?:son|daughter|kids?|children|baby|brother|sister|siblings?|mom|mum|mother|dad|"
           r"father|parents)", rf"(?:my|our) (?:\w+ )?{_REL_WORDS}")
_PETS = (r"(?:dog|cat|puppy|kitten|pet|parrot|rabbit|hamster|horse|collie|retriever|terrier|spaniel)s?",
         rf"(?:my|our) (?:\w+ ){{0,2}}{_PET_WORDS}", rf"(?:'s| is) an? (?:\w+ ){{0,2}}{_PET_WORDS}",
         rf"(?:two|three|four|2|3|4) (?:\w+ ){{0,2}}{_PET_WORDS}s")
_NAMED = ("named", f"called {_CAP}", "name is", "name's")
_LIVES = (r"lives? (?:over |up |down |out |back )?in", r"(?:is|are|'s) (?:still|now) (?:back |over |up |down |out )?in",
          "moved (?:back )?to", "based in")
_PLAY = (r"i(?:'ve been| have been)? play(?:ing)?", r"i(?:'ve been| have been)? (?:also )?play(?:ing)?")
_LIKE_VERBS = "(?:love|like|enjoy|adore|hate|dislike|detest|loathe|despise)"

FACT_TYPES: tuple[FactType, ...] = (
    FactType("name", ("What is my name?", "What's my name?", "Do you remember my name?", "Who am I?",
                      "What am I called?"),
             ("my name", "call me", "i'm called", "i am called", "(?-i:[Tt]his is [A-Z][a-z]+)",
              f"(?:hi|hiya|hey|hello)[,!]? i'?m {_CAP}", f"called {_CAP}",
              rf"(?:hi|hiya|hey|heya|hello|howdy|yo|(?:good )?(?:morning|afternoon|evening))[,!]? "
              rf"(?:there[,!]? |all[,!]? )?{_IM} (?-i:[A-Z])",
              # 'I'm Priya, Priya Nair': the name said twice, the second time whole.
              rf"{_IM} {_CAP}, {_CAP} {_CAP}"),
             unknown=(("user", "What is my name?", "your name"),), verify=("name", "Is my name {x}?")),
    FactType("residence", ("Where do I live?", "Which city do I live in?", "Where is my home?", "Where am I based?",
                           "Which town is my home?"),
             ("i live", "we live", "live in", "living in", "i moved", "we moved", "relocated", "based in",
              "settled in", "my home is", r"(?:i|we)(?:'ve| have)? (?:\w+ )?(?:moved|relocated) (?:\w+ )?to"),
             unknown=(("user", "Where do I live?", "where you live"),), verify=("place", "Do I live in {x}?")),
    FactType("moved_from", ("Where did I move from?", "Where did I live before?", "Which place did I move away from?",
                            "Where did I use to live?"),
             ("i moved", "we moved", "relocated", "emigrated", "came over", "came here",
              r"(?:i|we)(?:'ve| have)? (?:\w+ )?(?:moved|relocated)"),
             unknown=(("user", "Where did I move from?", "where you moved from"),),
             verify=("place", "Did I move here from {x}?")),
    FactType("hometown", ("Where am I originally from?", "Where do I come from?", "Where did I grow up?",
                          "Which place am I from?", "Where was I raised?"),
             ("i'm from", "i am from", "im from", "originally from", "grew up", "born and raised", "come from",
              "hail from", "i was born", "i was raised"),
             unknown=(("user", "Where am I originally from?", "where you are from"),),
             verify=("place", "Am I originally from {x}?")),
    FactType("job", ("What is my job?", "What do I do for a living?", "What is my profession?", "What work do I do?",
                     "What is my occupation?"),
             ("i work", "been working", "my job", "my boss", r"i'm an? \w+ at", "by profession", "by trade",
              rf"{_IM} an? (?:[a-z-]+ ){{0,3}}[a-z-]*{JOB_ENDINGS}"),
             unknown=(("user", "What do I do for a living?", "what you do for a living"),),
             verify=("job", "Do I work as {a}?")),
    FactType("workplace", ("Where do I work?", "Which company do I work for?", "Who is my employer?",
                           "What is the name of my workplace?"),
             ("i work", "been working", "my company", "my employer", "employed (?:at|by)", "working (?:at|for)"),
             unknown=(("user", "Where do I work?", "where you work"),), verify=("workplace", "Do I work at {x}?")),
    FactType("family_name", ("What is my {subject}'s name?", "What's my {subject} called?",
                             "Do you remember my {subject}'s name?", "What did I say my {subject} is called?"),
             (*_FAMILY, *_NAMED, "i'm married", "i am married", "married to"),
             unknown=_unknown(RELATIVES, "What is my {s}'s name?", "your {s}'s name"),
             verify=("name", "Is my {subject}'s name {x}?")),
    FactType("family_age", ("How old is my {subject}?", "What is my {subject}'s age?",
                            "Do you know how old my {subject} is?", "What age is my {subject}?"),
             (*_FAMILY, r"(?:he|she)(?:'s| is) \d+", r"turned \d+", r"turns \d+",
              rf"(?:he|she|they|{_CAP})(?:'s| is| just turned| turned| will be| is turning| turns)"
              r"(?: now| actually| already)? (?:not \d+,? but )?\d")),
    FactType("family_job", ("What does my {subject} do for a living?", "What is my {subject}'s job?",
                            "What work does my {subject} do?", "What is my {subject}'s profession?"),
             (*_FAMILY, "works as", r"(?:he|she)(?:'s| is) an?", r"(?:my|our) (?:other|better) half",
              r"i teach \w+", r"(?:my|our) (?:\w+ )?(?:\w+ )?teaches"),
             unknown=_unknown(RELATIVES, "What does my {s} do for a living?", "what your {s} does for a living"),
             verify=("job", "Does my {subject} work as {a}?")),
    FactType("family_home", ("Where does my {subject} live?", "Which city does my {subject} live in?",
                             "Where is my {subject}'s home?", "Where is my {subject} based?"),
             (*_FAMILY, *_LIVES),
             unknown=_unknown(RELATIVES, "Where does my {s} live?", "where your {s} lives"),
             verify=("place", "Does my {subject} live in {x}?")),
    FactType("pet_name", ("What is my {subject}'s name?", "What did I name my {subject}?",
                          "What's my {subject} called?", "What do I call my {subject}?"),
             (*_PETS, *_NAMED, r"(?:i|we) (?:also )?(?:have|own|use|drive|adopted|got) an?"),
             unknown=_unknown(PET_KINDS, "What is my {s}'s name?", "your {s}'s name"),
             verify=("name", "Is my {subject} called {x}?")),
    FactType("pet_kind", ("What kind of pet do I have?", "What animal is my pet?", "What pet do I own?",
                          "What sort of animal do I keep?"), _PETS),
    FactType("pet_breed", ("What breed is my {subject}?", "Which breed is my {subject}?",
                           "What kind of {subject} do I have?", "What breed of {subject} do I own?"), _PETS),
    FactType("favorite", ("What is my favourite {subject}?", "Which {subject} do I like best?",
                          "What {subject} do I love most?", "What {subject} do I prefer above all?"),
             ("my (?:favou?rite|fave)", "my (?:absolute |all-time |all time )?(?:favou?rite|fave|fav)",
              "(?:is|are) my (?:absolute |all-time )?(?:favou?rite|fave|fav)"), preference=True,
             unknown=_unknown(FAVOURITES, "What is my favourite {s}?", "your favourite {s}")),
    FactType("likes", ("What do I like?", "What do I enjoy?", "Is there something I really like?",
                       "What is something I love?"),
             ("i prefer", "i (?:really )?like", "i (?:really )?love", "i enjoy", "fan of", "i adore", "obsessed with",
              rf"i (?:really |absolutely |just |also |truly |honestly |genuinely |seriously )?{_LIKE_VERBS}",
              r"i(?:'ve| have) always (?:loved|liked|enjoyed|adored)", "crazy about", "mad about", "hooked on",
              "addicted to", "passionate about"), preference=True),
    FactType("dislikes", ("What do I dislike?", "What don't I like?", "Is there something I can't stand?",
                          "What is something I hate?"),
             ("i hate", "i dislike", "i can't stand", "i cannot stand", "can't bear", "cannot bear", "can't stomach",
              "i don't like", "i do not like", "detest", "loathe", "despise",
              r"i (?:really |just |honestly |actually )?(?:don't|do not) (?:like|love|enjoy)"), preference=True),
    FactType("allergy", ("What am I allergic to?", "Do I have any allergies?", "Which allergy do I have?",
                         "What gives me an allergic reaction?"),
             ("i'm allergic", "i am allergic", "allergic to", "allergy"),
             unknown=(("user", "What am I allergic to?", "whether you have any allergies"),)),
    FactType("intolerance", ("Do I have any food intolerances?", "What food intolerance do I have?",
                             "Which foods can't I tolerate?", "What can't my stomach handle?"),
             ("gluten", "lactose", "intolerant", "celiac", "coeliac")),
    FactType("diet", ("What diet do I follow?", "Do I have any dietary restrictions?", "What kind of food do I avoid?",
                      "How do I eat?"),
             ("vegetarian", "vegan", "pesc[ae]tarian", "keto", "kosher", "halal"),
             unknown=(("user", "Do I follow a special diet?", "whether you follow a special diet"),)),
    FactType("avoids_food", ("What food do I avoid?", "What don't I eat?", "Which food do I never eat?",
                             "Is there a food I stay away from?"),
             ("i don't eat", "i do not eat", "i never eat")),
    FactType("possession", ("What {subject} do I have?", "What kind of {subject} do I own?", "Which {subject} is mine?",
                            "Which {subject} do I use?"),
             ("my car", "my (?:laptop|computer|phone|bike|boat)", r"(?:i|we) (?:also )?(?:have|own|use|drive|adopted|got) an?",
              "i drive", "my (?:work )?(?:laptop|computer|pc|desktop)",
              r"(?:i|we)(?:'ve| have)? (?:also )?(?:got|bought|own|use|work on) an?"),
             unknown=(("car", "What car do I drive?", "what car you drive"),)),
    FactType("possession_name", ("What is my {subject} called?", "What is the name of my {subject}?",
                                 "What did I name my {subject}?", "What do I call my {subject}?"),
             ("named", f"called {_CAP}", "(?:boat|kayak|canoe|yacht|dinghy)"), verify=("name", "Is my {subject} called {x}?")),
    FactType("account", ("What is my {subject}?", "Do you know my {subject}?", "Which {subject} did I give you?",
                         "What did I say my {subject} is?"),
             (r"my (?:\w+ ){0,2}(?:password|api key|key|token|e-?mail|username|login|pin)",
              "my (?:[a-z]+ ){0,2}(?:phone number|user name|passcode)")),
    FactType("birthday", ("When is my birthday?", "What day is my birthday?", "When was I born?",
                          "On what date is my birthday?"),
             ("birthday", "bday", "b-day", "i was born", r"turns? \d+ on", r"turn \d+ on"),
             unknown=(("user", "When is my birthday?", "when your birthday is"),),
             member_wordings=("When is my {subject}'s birthday?", "What day is my {subject}'s birthday?",
                              "When was my {subject} born?", "On what date is my {subject}'s birthday?")),
    FactType("birth_year", ("What year was I born?", "In which year was I born?", "When was I born?",
                            "What is my year of birth?"), ("i was born",)),
    FactType("age", ("How old am I?", "What is my age?", "Do you know how old I am?", "What age am I?"),
             ("years old", r"turned \d+", r"i'?m \d+", r"i am \d+", r"i'?m (?:now |actually )\d+"),
             unknown=(("user", "How old am I?", "how old you are"),)),
    FactType("trip", ("Where am I travelling to?", "Where is my trip to?", "Where am I going on my trip?",
                      "Which place am I visiting?"),
             ("(?:going|flying|traveling|travelling|heading|moving) to", "driving to", f"off to {_CAP}",
              f"i'll be in {_CAP}", "trip to", f"(?:i|we)(?:'ll| will) (?:also )?be in {_CAP}",
              "(?:a holiday|a vacation) to", r"(?:i|we)(?:'ll| will) (?:go|fly|head|travel|drive) to"),
             unknown=(("user", "Where am I travelling next?", "where you are travelling"),),
             verify=("place", "Am I travelling to {x}?")),
    FactType("plan", ("What am I planning?", "What are my plans?", "What do I plan to do?", "What do I intend to do?"),
             ("planning", "my (?:\\w+ )?goal", "(?:i|we) (?:plan|intend|aim) to", "decided to", "hoping to",
              "going to", "my (?:\\w+ )?(?:plan|resolution)")),
    FactType("routine", ("What is my routine?", "What do I do regularly?", "What is part of my daily routine?",
                         "What do I usually do every {subject}?"),
             ("every (?:day|morning|evening|night|week|weekend|monday|tuesday|wednesday|thursday|friday|saturday|"
              "sunday)", "each (?:day|morning|evening|night|week|weekend|monday|tuesday|wednesday|thursday|friday|"
              "saturday|sunday)", "on (?:mondays|tuesdays|wednesdays|thursdays|fridays|saturdays|sundays|weekends|"
              "mornings|evenings|nights|days|weeks)", "i usually")),
    FactType("hobby", ("What is my hobby?", "What do I do for fun?", "What do I like to do in my free time?",
                       "What is one of my pastimes?"),
             ("my hobb(?:y|ies)", "in my free time", "in my spare time", "(?:i'm|i am) (?:also |really )?into",
              rf"{_IM} (?:\w+ )?into", "getting into", "took up", "taken up")),
    FactType("instrument", ("What instrument do I play?", "Which instrument do I play?", "What do I play musically?",
                            "Do I play an instrument?"), (*_PLAY, rf"(?:my|our) (?:\w+ )?{_REL_WORDS} plays"),
             unknown=(("user", "What instrument do I play?", "whether you play an instrument"),),
             member_wordings=("What instrument does my {subject} play?", "Which instrument does my {subject} play?",
                              "What does my {subject} play musically?", "Does my {subject} play an instrument?")),
    FactType("sport", ("What sport do I play?", "Which sport do I play?", "What game do I play?",
                       "Do I play a sport?"), _PLAY),
    FactType("language_learning", ("What language am I learning?", "Which language am I studying?",
                                   "What new language am I working on?", "Which language am I trying to learn?"),
             ("i'm learning", "i am learning", f"picking up {_CAP}",
              r"(?:started|begun|been) (?:learning|studying)",
              rf"(?:learning|studying|learn|study|pick up|brush up on|brushing up on) (?:my )?{_CAP}",
              rf"(?:taking|doing) {_CAP} (?:lessons|classes)"),
             unknown=(("user", "What language am I learning?", "which language you are learning"),),
             verify=("language", "Am I learning {x}?")),
    FactType("language_spoken", ("What languages do I speak?", "Which languages do I speak?",
                                 "What languages can I speak?", "Which languages am I able to speak?"),
             ("i speak", "fluent in", "i (?:also |can |can also )?speak")),
    FactType("wake_time", ("What time do I get up?", "When do I wake up?", "What time do I usually wake up?",
                           "How early do I get up?"),
             (r"(?:get|got|wake|woke|i'm|im|i am) up (?:at|around|by)", "wake up at", "wake at",
              r"alarm (?:is set |goes off )?(?:for|at)")),
    FactType("drink", ("What do I like to drink?", "What do I drink?", "What is my usual drink?",
                       "Which drink do I have?"),
             (r"i (?:only |mostly |usually |always |just )?drink", "my (?:usual |go-to |daily )?drink")),
    FactType("fear", ("What am I afraid of?", "What scares me?", "What is my fear?", "What am I scared of?"),
             ("afraid of", "scared of", "terrified of", "frightened of", "petrified of", "phobia", "fear of",
              "i fear")),
    FactType("education", ("Where did I study?", "Which university did I go to?", "Where did I go to university?",
                           "Which school did I study at?"),
             ("i studied", "studied at", r"went to (?:uni|university|college|school)", "graduated", "my degree")),
    FactType("study_subject", ("What did I study?", "What was my degree in?", "What subject did I study?",
                               "What did I major in?"), ("i studied", "my degree", "majored in", "degree in")),
    # A first-person sentence no other type covers, kept as said; {subject} is its topic ('my boat', 'Hilde').
    FactType("statement", ("What did I tell you about {subject}?", "What do you know about {subject}?",
                           "What have I told you about {subject}?", "What did I say about {subject}?",
                           "What do you remember about {subject}?")),
    FactType("native_language", ("What is my native language?", "What is my mother tongue?",
                                 "What is my first language?", "Which language did I grow up speaking?"),
             ("native (?:language|tongue)", "mother tongue", "first language")),
)
# Trained on their original question only, as before their wordings existed; the wordings are the gate's
# held-out questions. Giving them training wordings too changed what a night learns (see train_wordings).
HELD_OUT_ONLY = frozenset({"residence", "hometown", "age", "language_spoken", "instrument", "possession_name",
                           "wake_time", "drink", "fear", "education", "study_subject", "statement",
                           "native_language", "intolerance", "avoids_food", "account", "birth_year", "sport"})
FACT_TYPES = tuple(replace(ft, train_wordings=0) if ft.name in HELD_OUT_ONLY else ft for ft in FACT_TYPES)
REGISTRY: dict[str, FactType] = {ft.name: ft for ft in FACT_TYPES}


def canonical(fact_type: str) -> str:
    """The registry's name for a fact type under any spelling ('Favourite', 'lives-in' -> 'favorite', 'residence')."""
    key = fact_type.strip().lower().replace("-", "_").replace(" ", "_")
    return FACT_TYPE_ALIASES.get(key, key)


def wordings(fact_type: str, subject: str = "user") -> tuple[str, ...]:
    """The question wordings of a fact type (any spelling) about a subject; () for a type the registry lacks."""
    ft = REGISTRY.get(canonical(fact_type))
    return ft.wordings_for(subject.strip().lower()) if ft else ()


def training_wordings(fact_type: str, subject: str = "user") -> tuple[str, ...]:
    """The wordings training may ask a fact in (see FactType.train_wordings); () for an unknown type."""
    ft = REGISTRY.get(canonical(fact_type))
    return ft.training_wordings_for(subject.strip().lower()) if ft else ()


def _curly(fragment: str) -> str:
    return fragment.replace("'", "['’]")


def scoring_markers(preference: bool) -> tuple[str, ...]:
    """Scoring's default personal (or preference) marker fragments: every fact type's, once each."""
    frags = [m for ft in FACT_TYPES if ft.preference == preference for m in ft.markers]
    return tuple(dict.fromkeys(_curly(f) for f in frags))


def unknown_questions() -> tuple[tuple[str, str, str, str], ...]:
    """(fact type, subject, question, what is unknown) of every "I don't know" question."""
    order = ("name", "residence", "hometown", "moved_from", "job", "workplace", "age", "birthday", "allergy", "diet",
             "language_learning", "instrument", "trip", "possession", "family_name", "family_job", "family_home",
             "pet_name", "favorite")
    return tuple((name, *u) for name in order for u in REGISTRY[name].unknown)


def verify_wordings() -> dict[str, tuple[str, str]]:
    """Fact type -> (kind of value, yes/no wording) for the fact types that have one."""
    return {ft.name: ft.verify for ft in FACT_TYPES if ft.verify}


def phrasings(question: str, fact_type: str, subject: str, n: int) -> list[tuple[str, str]]:
    """(phrasing label, question) pairs: the original first, then wordings that read differently; at most n."""
    out = [("original", question)]
    seen = {question.strip().lower()}
    ftype = canonical(fact_type)
    subject = (subject or "").strip()
    for i, wording in enumerate(training_wordings(ftype, subject)):
        if len(out) >= n:
            break
        if "{subject}" in wording and not subject:
            continue  # "What is my 's name?" would teach nonsense
        text = wording.format(subject=subject)
        if text.strip().lower() not in seen:
            seen.add(text.strip().lower())
            out.append((f"wording:{ftype}.{i}", text))
    return out[:n]


def held_out_question(question: str, fact_type: str, subject: str, paraphrases: int) -> str:
    """A wording of the fact's question that is none of its `paraphrases` training phrasings (the next one).

    Falls back to the last training phrasing only for a fact type the registry does not know (a model-written
    pair): every registered type has at least paraphrases + 1 wordings, so one is always left over."""
    trained = phrasings(question, fact_type, subject, paraphrases)
    taken = {q.strip().lower() for _, q in trained}
    subject = (subject or "").strip()
    for wording in wordings(fact_type, subject):
        if "{subject}" in wording and not subject:
            continue
        text = wording.format(subject=subject)
        if text.strip().lower() not in taken:
            return text
    return trained[-1][1]
