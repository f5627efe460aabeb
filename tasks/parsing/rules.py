"""Facts read off one parsed sentence: its noun phrases ('my sister Hilde') and each clause's predicate.

A clause gives facts only when it is about the person (or their family, pets or things), is stated (not
asked) and real (not 'if I had a cat'). Facts have the regex extractor's shape (tasks.patterns.Fact), with
the same questions and answers where a regex family states the same fact type.
"""

from __future__ import annotations

from tasks.parsing.clauses import hypothetical, negated, predicates, question, will
from tasks.parsing.lists import colon_list_facts
from tasks.parsing.subjects import (OTHERS, USER, Who, appos_name, capitalised_name, noun_who, owned_by_user,
                                    pet_kind, relation, subject_of)
from tasks.parsing.values import Value, conjuncts, language, name_value, np_value, number, place_value
from tasks.patterns import Context, Fact
from tasks.patterns.blocks import JOBLIKE, NOT_JOB
from tasks.patterns.rules import (AGE_QA, ALLERGY_QA, CAR_QA, FROM_QA, JOB_QA, KEEN_WORDS, LEARN_QA, LIVE_QA,
                                  NAME_QA, PC_QA, SPEAK_QA, WORK_QA)
from tasks.patterns.spans import _a, _second_person
from tasks.vocabulary import RELS

INSTRUMENTS = frozenset("piano guitar violin cello drums bass flute saxophone sax trumpet ukulele clarinet harp viola "
                        "trombone banjo accordion organ harmonica mandolin oboe bassoon tuba keyboard keys oud sitar "
                        "tabla bouzouki bagpipes recorder fiddle".split())
SPORTS = frozenset("tennis football soccer basketball volleyball golf badminton squash hockey rugby baseball cricket "
                   "chess padel handball netball softball lacrosse pickleball darts snooker pool bowls croquet curling "
                   "polo ping-pong".split())
DIETS = frozenset("vegan vegetarian veggie pescatarian pescetarian keto kosher halal".split())
FEAR_WORDS = frozenset("afraid scared terrified frightened petrified phobic".split())
LIKE = {"love": "love", "like": "like", "enjoy": "enjoy", "adore": "adore", "prefer": "prefer"}
DISLIKE = frozenset("hate dislike detest loathe despise".split())
# 'I can't stand / bear / abide / stomach them': a dislike when negated.
CANT = frozenset("stand bear abide stomach".split())
# 'rather fond of brass band music', 'keen on padel', 'partial to a kipper'.
FOND = {"fond": ("of",), "keen": ("on",), "partial": ("to",), "crazy": ("about",), "mad": ("about",),
        "passionate": ("about",), "big": ("on",), "obsessed": ("with",)}
# Things a person owns whose make is a possession fact ('our car is a Skoda Octavia').
MAKES = {"car": ("car", CAR_QA), "laptop": ("computer", PC_QA), "computer": ("computer", PC_QA),
         "pc": ("computer", PC_QA), "desktop": ("computer", PC_QA)}
# Where a person lives when they say they have one in a place ('we've a small terraced house in Whitby').
HOMES = frozenset("house flat apartment home cottage bungalow place condo terrace".split())
NOT_MAIN_HOME = frozenset("holiday summer second weekend beach ski".split())
# 'a pot of Earl Grey first thing', 'a mug of rooibos': what comes in these is a drink.
VESSELS = frozenset("cup cups mug mugs pot pots glass glasses pint pints flask".split())
NOT_DRINK = frozenset("flour sugar rice oats butter salt water ice soup stock beans nuts".split())
TRAVEL = frozenset("go fly head travel drive".split())
TRIPS = frozenset("week weekend fortnight trip holiday holidays vacation flight flights break cottage villa".split())
# States that hold now only when said in the present ('I lived in Paris' is not where they live).
PRESENT_ONLY = frozenset("live work play like love enjoy adore prefer hate dislike drink speak teach learn eat fear "
                         "base".split())
DEGREES = frozenset("degree masters master's phd doctorate ba bsc ma msc mba diploma bachelors bachelor's "
                    "undergrad undergraduate postgrad postgraduate".split())
LESSONS = frozenset("lesson class course".split())
COURSEWORK = frozenset("homework work course courses exams exam tests test placement internship shifts shift "
                       "nothing something everything".split())
SPORT_ING = frozenset("swimming running cycling climbing bouldering skiing snowboarding surfing rowing sailing "
                      "kayaking skating jogging".split())
FEAR_NOUNS = frozenset("phobia fear terror".split())
FEAR_VERBS = frozenset("terrify scare frighten petrify".split())
TONGUES = frozenset("tongue language".split())
OTHER_TONGUE = frozenset("second third fourth other".split())
PASSIONS = frozenset("passion hobby obsession thing".split())
WORKMATES = frozenset("boss manager colleague colleagues coworker coworkers co-worker co-workers team".split())
NOT_VALUE = frozenset("it that this them you him her us one thing things stuff something everything anything".split())


def _fact(ftype: str, subject: str, v: Value, off: int, q: str, a: str, member: str | None = None,
          **kw: str) -> Fact:
    fill = dict(v=v.text, sv=_second_person(v.text), a=_a(v.text), **kw)
    return Fact(ftype, subject, v.text, off + v.start, off + v.end, q.format(**fill), a.format(**fill), member)


def _who_label(who: Who) -> str:
    return f"{who.subject} {who.name}" if who.name else who.subject


def _child(tok, *deps: str):
    return next((c for c in tok.children if c.dep_ in deps), None)


def _preps(tok, *words: str, deps: tuple[str, ...] = ("pobj",)) -> list:
    """The objects of tok's prepositions among words ('live in X', 'grew up just outside Y'); with
    deps=("pobj", "pcomp") also a clause ('terrified of flying')."""
    out = []
    for c in tok.children:
        if c.dep_ == "prep" and c.lower_ in words:
            out += [g for g in c.children if g.dep_ in deps]
        elif c.dep_ == "advmod" and c.lower_ in ("just", "right", "here", "there", "away", "over", "back"):
            out += _preps(c, *words, deps=deps)
    for c in tok.children:  # 'just outside Cork' hangs the preposition under 'just' or the particle
        if c.dep_ in ("prt", "advmod") and c.lower_ in ("up", "out", "back", "over", "down"):
            out += _preps(c, *words, deps=deps)
    return out


def _job(tok) -> bool:
    return bool(JOBLIKE.search(tok.lower_)) and tok.lower_ not in NOT_JOB and tok.pos_ == "NOUN"


def noun_facts(sent, off: int, ctx: Context) -> list[Fact]:
    """Names placed beside the person's relations, pets and things ('my sister Hilde', 'a greyhound, Biscuit')."""
    out: list[Fact] = []
    for tok in sent:
        if tok.pos_ not in ("NOUN", "PROPN") or hypothetical(tok.head):
            continue
        if tok.dep_ in ("nsubj", "nsubjpass", "attr") and question(tok.head):  # 'Is my daughter Mia 8?'
            continue
        head = tok.head
        while tok.dep_ == "conj" and head.dep_ == "dobj":  # 'a cat called Pickles and a tortoise called Speedy'
            head = head.head
        had = tok.dep_ in ("dobj", "conj") and head.lemma_.lower() in ("have", "get", "adopt", "own", "rescue") and \
            subject_of(head, ctx) == USER
        if not (owned_by_user(tok) or had):
            continue
        name = appos_name(tok) or _called(tok)
        if name is None and tok.dep_ == "appos" and tok.head.pos_ == "PROPN" and tok.head.i < tok.i:
            name = capitalised_name(tok.head)  # 'Noodle, my cat, is 12'
        if name is None:
            if (rel := relation(tok)) and owned_by_user(tok):  # 'for my daughter? she plays ...'
                ctx.note("family", rel, ctx.only(rel), RELS.get(rel))
            continue
        v = Value(name, sent.text.find(name, tok.idx - sent[0].idx), 0)
        v = Value(name, v.start, v.start + len(name)) if v.start >= 0 else Value(name, -off, -off)
        if rel := relation(tok):
            out.append(_fact("family_name", rel, v, off, "What is your {rel}'s name?", "Your {rel}'s name is {v}.",
                             member=name, rel=rel))
            ctx.note("family", rel, name, RELS.get(rel))
        elif pk := pet_kind(tok):
            kind, breed = pk
            out.append(_fact("pet_name", kind, v, off, "What is your {k}'s name?", "Your {k}'s name is {v}.",
                             member=name, k=kind))
            kv = Value(kind, tok.idx - sent[0].idx, tok.idx - sent[0].idx + len(tok.text)) if tok.lower_ == kind \
                else Value(kind, -off, -off)
            out.append(_fact("pet_kind", "pet", kv, off, "What kind of animal is {n}?", "{n} is your {v}.",
                             member=name, n=name))
            if breed:
                bs = sent.text.lower().find(breed)
                bv = Value(breed, bs, bs + len(breed)) if bs >= 0 else Value(breed, -off, -off)
                out.append(_fact("pet_breed", kind, bv, off, "What breed is your {k} {n}?",
                                 "Your {k} {n} is {a} {v}.", member=name, k=kind, n=name))
            ctx.note("pet", kind, name, None)
        elif tok.lower_ != "name" and tok.lower_ not in OTHERS and tok.text.islower():
            out.append(_fact("possession_name", tok.lower_, v, off, "What is your {t} called?",
                             "Your {t} is called {v}.", t=tok.lower_))
    return [_unspanned(f) for f in out]


def _unspanned(f: Fact) -> Fact:
    return f if f.start is not None and f.start >= 0 else Fact(f.fact_type, f.subject, f.value, None, None,
                                                                f.question, f.answer, f.member)


def _called(tok) -> str | None:
    """'a son called Leo', 'a boat named Sea Wolf': the name in a participle after the noun; 'my dog is called
    Bramble', 'my sister is named Ingeborg': the name the noun is said to be called (not 'isn't called')."""
    participles = [c for c in tok.children if c.dep_ == "acl" and c.lower_ in ("called", "named")]
    head = tok.head
    if tok.dep_ in ("nsubjpass", "nsubj") and head.lower_ in ("called", "named") and head.tag_ == "VBN" and \
            not negated(head):
        participles.append(head)
    for c in participles:
        obj = _child(c, "oprd", "attr", "dobj", "npadvmod")
        if obj is not None and (v := name_value(obj)):
            return v.text
    return None


PLACE_NOUNS = frozenset("village town city suburb area part bit corner neighbourhood neighborhood estate hamlet "
                        "island countryside outskirts edge sticks farm coast valley street road".split())
HEADS = frozenset("head director manager chief lead intern partner founder ceo cto cfo".split())


NOT_DOING = frozenset("believer supporter follower user lover drinker eater sleeper worrier overthinker talker "
                      "spender smoker sucker stickler fighter member customer winner loser owner admirer".split())


def _doing(noun: str) -> str | None:
    """The activity a keen '-er' does: birdwatcher -> birdwatching, gardener -> gardening, runner -> running;
    None where the word does not end in 'er' or names no pastime ('a big believer', 'a keen supporter')."""
    if not noun.endswith("er") or len(noun) < 5 or noun in NOT_DOING:
        return None
    return noun[:-2] + "ing"


def _place(o) -> Value | None:
    """A place ('Cork'), the name a place noun is given ('a small town called Tralee'), or the place it is
    near or in ('a tiny village near Inverness', 'the outskirts of Lyon')."""
    v = place_value(o)
    if v is None:
        for c in o.children:
            if c.dep_ == "acl" and c.lower_ in ("called", "named") and \
                    (obj := _child(c, "oprd", "attr", "dobj", "npadvmod")) is not None:
                return name_value(obj)
        if o.lower_ in PLACE_NOUNS:
            return next((p for i in _preps(o, "near", "outside", "in", "of", "by", "around")
                         if i.pos_ == "PROPN" and (p := place_value(i))), None)
    return v


def _instrument(who: Who, v: Value, off: int) -> Fact:
    """'You play the {v}.' of the person or a relative."""
    if who.kind == "user":
        return _fact("instrument", "user", v, off, "What instrument do you play?", "You play the {v}.")
    return _fact("instrument", who.subject, v, off, "What instrument does your {w} play?", "Your {w} plays the {v}.",
                 member=who.name, w=_who_label(who))


def _ing(tok) -> bool:
    return (tok.tag_ == "VBG" or tok.lower_.endswith("ing")) and tok.lower_ not in NOT_VALUE and \
        tok.lower_ not in ("nothing", "thing")


def _activity(o):
    """What one does a lot of ('I do a lot of baking', 'I do pottery-making'): an '-ing' object without an article
    ('I do the shopping' is a chore), or the '-ing' word after 'a lot of'; None otherwise."""
    if _ing(o) and not any(c.dep_ in ("det", "poss") for c in o.children):
        return o
    if o.lower_ in ("lot", "lots", "bit", "loads"):
        return next((i for i in _preps(o, "of") if _ing(i)), None)
    return None


def _side_facts(pred, who: Who, off: int) -> list[Fact]:
    """What an object says whatever the verb: lessons in a language or an instrument ('I've been taking Spanish
    lessons', 'she has piano lessons'), a degree's subject ('I did a degree in history'), a fear one has ('I have
    a phobia of needles')."""
    out: list[Fact] = []
    lemma, user = pred.lemma_.lower(), who.kind == "user"
    for o in [c for c in pred.children if c.dep_ == "dobj"]:
        word = o.lemma_.lower()
        if word in LESSONS and lemma in ("take", "have", "do", "start", "attend", "begin") and pred.tag_ != "VBD":
            for m in o.children:
                if m.dep_ not in ("amod", "compound", "nmod"):
                    continue
                if language(m) and user:
                    out.append(_fact("language_learning", "user", _word(m), off, *LEARN_QA))
                elif m.lower_ in INSTRUMENTS:
                    out.append(_instrument(who, _word(m), off))
        elif o.lower_ == "years" and lemma == "have" and user and pred.tag_ in ("VBP", "VB") and \
                all(c.dep_ == "nummod" for c in o.children) and \
                all(c.dep_ in ("nsubj", "dobj", "punct", "aux") for c in pred.children) and \
                (num := next((c for c in o.children if number(c)), None)) is not None:
            out += _age(who, _word(num), off)  # 'i have 29 years' (a learner's 'I am 29')
        elif lemma == "do" and user and pred.tag_ in ("VBP", "VB", "VBG") and (act := _activity(o)) is not None:
            out.append(_fact("hobby", "user", Value(act.text, act.idx, act.idx + len(act.text)), off,
                             "What is one of your hobbies?", "You are into {sv}."))  # 'I do a lot of baking'
        elif lemma in ("do", "study") and user and pred.tag_ in ("VBD", "VBN") and o.pos_ == "NOUN" and \
                not any(c.dep_ in ("det", "poss") for c in o.children) and o.lower_ not in COURSEWORK and any(
                i.lower_ in ("uni", "university", "college") for i in _preps(pred, "at")) and (v := np_value(o)):
            # 'did computer science at uni'
            out.append(_fact("study_subject", "user", v, off, "What did you study?", "You studied {sv}."))
        elif o.lower_ in DEGREES and user:
            out += [_fact("study_subject", "user", v, off, "What did you study?", "You studied {sv}.")
                    for i in _preps(o, "in") or _preps(pred, "in")
                    if not i.ent_type_ and i.pos_ != "PROPN" and (v := np_value(i))]
            out += [_fact("education", "user", v, off, "Where did you study?", "You studied at {v}.")
                    for i in _preps(o, "at") or _preps(pred, "at")  # 'I did my PhD at ETH Zurich'
                    if i.pos_ == "PROPN" and i.ent_type_ not in ("DATE", "TIME") and (v := place_value(i))]
        elif word in FEAR_NOUNS and user and lemma in ("have", "get") and pred.tag_ != "VBD":
            out += [_fact("fear", "user", v, off, "What are you afraid of?", "You are afraid of {sv}.")
                    for i in _preps(o, "of", deps=("pobj", "pcomp")) for c in conjuncts(i) if (v := np_value(c))]
    return out


def clause_facts(pred, who: Who, off: int, ctx: Context) -> list[Fact]:
    """The facts one stated, real clause gives about who."""
    lemma, neg = pred.lemma_.lower(), negated(pred)
    user, member = who.kind == "user", who.kind == "family"
    out: list[Fact] = []
    s0 = 0  # offsets are within the parsed sentence (its doc), whatever sentences the parser sees in it

    def val(v: Value | None) -> Value | None:
        if v is None or v.text.lower() in NOT_VALUE and not (len(v.text) > 1 and v.text.isupper()):  # 'US', 'IT'
            return None
        return Value(v.text, v.start - s0, v.end - s0)

    if pred.dep_ == "xcomp" and pred.head.lemma_.lower() == "use" and pred.head.tag_ == "VBD":
        # 'I used to live in Oslo': where they moved from; whatever else one used to do is not so now
        return [_fact("moved_from", "user", v, off, "Where did you move from?", "You moved from {v}.")
                for o in _preps(pred, "in") if (v := val(_place(o)))] if lemma == "live" and user and not neg else []
    if not neg and (user or member):
        out += [f for f in _side_facts(pred, who, off) if f.value and f.value.lower() not in NOT_VALUE]

    if lemma == "be":
        attr, acomp = _child(pred, "attr"), _child(pred, "acomp")
        subj = _child(pred, "nsubj")
        said = attr if attr is not None else acomp
        if subj is not None and any(c.lower_ in ("favourite", "favorite", "fave", "fav") for c in subj.children) \
                and said is not None and (v := val(name_value(said) or np_value(said))):
            what = subj.lower_
            out.append(_fact("favorite", what, v, off, "What is your favorite {w}?", "Your favorite {w} is {sv}.",
                             w=what))
            return out
        if who.subject == "name" and attr is not None and (v := val(name_value(attr))):
            return [_fact("name", "user", v, off, *NAME_QA)]
        if subj is not None and subj.lower_ == "name" and who.kind in ("pet", "family") and attr is not None and \
                not neg and (v := val(name_value(attr))):  # "my cat's name is Smudge"
            if who.kind == "pet":
                return [_fact("pet_name", who.subject, v, off, "What is your {k}'s name?", "Your {k}'s name is {v}.",
                              member=v.text, k=who.subject)]
            return [_fact("family_name", who.subject, v, off, "What is your {rel}'s name?",
                          "Your {rel}'s name is {v}.", member=v.text, rel=who.subject)]
        if subj is not None and subj.lower_ == "name" and who.kind == "thing" and attr is not None and \
                (v := val(name_value(attr))):
            return [_fact("possession_name", who.subject, v, off, "What is your {t} called?",
                          "Your {t} is called {v}.", t=who.subject)]
        if who.kind == "thing" and who.subject in MAKES and attr is not None and not neg and \
                attr.pos_ == "PROPN" and (v := val(np_value(attr))) and v.text[:1].isupper():
            kind, qa = MAKES[who.subject]  # 'our car is a Skoda Octavia', 'my laptop is a ThinkPad T14'
            return [_fact("possession", kind, v, off, *qa)]
        if who.kind == "pet" and attr is not None and not neg and (pk := pet_kind(attr)) and pk[1] and \
                pk[0] == who.subject and (v := val(np_value(attr, right=False))):
            out.append(_fact("pet_breed", who.subject, v, off, "What breed is your {k}?", "Your {k} is {a} {v}.",
                             k=who.subject))  # 'our dog is a border collie'
            if (name := _called(attr)) is not None:  # 'my dog is a spaniel called Rufus'
                out.append(_fact("pet_name", who.subject, Value(name, -off, -off), off, "What is your {k}'s name?",
                                 "Your {k}'s name is {v}.", member=name, k=who.subject))
            return out
        if attr is not None and not neg:
            if user and attr.pos_ == "PROPN" and language(attr) is None and (v := val(name_value(attr))) and \
                    not any(c.dep_ == "det" and c.lower_ in ("a", "an") for c in attr.children):  # 'a Leo': a sign
                full = next((val(name_value(c)) for c in attr.children if c.dep_ == "appos"), None)
                if full is not None and full.text.split()[0] == v.text.split()[0]:
                    v = full
                out.append(_fact("name", "user", v, off, *NAME_QA))
            elif (num := number(attr)) and (user or member) and pred.tag_ != "VBD" and not will(pred):
                out += _age(who, Value(num, attr.idx - s0, attr.idx - s0 + len(attr.text)), off)
            elif (user or member) and pred.tag_ != "VBD" and (old := next(
                    (c for c in attr.children if c.lower_ == "old" and c.dep_ == "amod"), None)) is not None and (
                    num := next((g for y in old.children if y.lower_ in ("year", "years")
                                 for g in y.children if g.dep_ == "nummod" and number(g)), None)) is not None:
                out += _age(who, _word(num, s0), off)  # "I'm a 45 year old dad of three"
            elif attr.lower_ in ("graduate", "alumnus", "alumna", "grad") and user and (uni := next(
                    (c for c in attr.children if c.dep_ == "compound" and c.pos_ == "PROPN"), None)) is not None \
                    and (v := val(place_value(uni))):
                out.append(_fact("education", "user", v, off, "Where did you study?", "You studied at {v}."))
            elif attr.lower_ == "student" and user and pred.tag_ != "VBD":  # 'a student at the uni of Leeds'
                out += [_fact("education", "user", v, off, "Where did you study?", "You studied at {v}.")
                        for o in _preps(attr, "at") if (v := val(place_value(o)))]
            elif any(c.lower_ in KEEN_WORDS and c.dep_ == "amod" for c in attr.children) and attr.lower_.endswith("er"):
                if user and pred.tag_ != "VBD" and (doing := _doing(attr.lower_)):  # "I'm a keen birdwatcher"
                    out.append(_fact("hobby", "user", Value(doing, -off, -off), off, "What is one of your hobbies?",
                                     "You are into {sv}."))
            elif user and pred.tag_ != "VBD" and (attr.lower_ in HEADS or _job(attr)) and (at := next(
                    (o for o in _preps(attr, "at") if o.ent_type_ == "ORG"), None)) is not None and \
                    (v := val(place_value(at))):
                out.append(_fact("workplace", "user", v, off, *WORK_QA))  # "I'm head of marketing at Ocado"
                if _job(attr) and (j := val(np_value(attr, right=False))):
                    out.append(_fact("job", "user", j, off, *JOB_QA))
            elif _job(attr) and (v := val(np_value(attr, right=False))):
                if user and pred.tag_ != "VBD":  # 'I was a pharmacist': not what they do now
                    out.append(_fact("job", "user", v, off, *JOB_QA))
                elif member:
                    out.append(_fact("family_job", who.subject, v, off, "What does your {w} do for a living?",
                                     "Your {w} works as {a} {v}.", member=who.name, w=_who_label(who)))
            elif attr.lower_ in DIETS and user:
                out.append(_fact("diet", "user", val(np_value(attr)), off, "What diet do you follow?",
                                 "You are {v}."))
        if attr is not None and attr.lower_ == "fan" and user:
            for obj in _preps(attr, "of"):
                for o in conjuncts(obj):
                    if v := val(np_value(o)):
                        out.append(_fact("dislikes" if neg else "likes", "user", v, off, "Do you like {sv}?",
                                         ("No, you are not a fan of {sv}." if neg else "Yes, you are a fan of {sv}.")))
        if acomp is not None and user and neg and acomp.lower_ in FOND:  # "I'm not big on sports"
            out += [_fact("dislikes", "user", v, off, "Do you like {sv}?", "No, you are not {w} {p} {sv}.",
                          w=acomp.lower_, p=o.head.lower_)
                    for o in _preps(acomp, *FOND[acomp.lower_], deps=("pobj", "pcomp")) for c in conjuncts(o)
                    if (v := val(np_value(c))) and c.pos_ != "PRON"]
        if acomp is not None and user and not neg:
            word = acomp.lower_
            if word == "allergic":
                out += [_fact("allergy", "user", v, off, *ALLERGY_QA) for o in _preps(acomp, "to")
                        for c in conjuncts(o) if (v := val(np_value(c)))]
            elif word in FEAR_WORDS:  # 'scared of snakes', 'scared stiff of snakes'
                heads = [acomp] + [c for c in acomp.children if c.dep_ in ("oprd", "advmod", "acomp")]
                out += [_fact("fear", "user", v, off, "What are you afraid of?", "You are afraid of {sv}.")
                        for h in heads for o in _preps(h, "of", deps=("pobj", "pcomp")) for c in conjuncts(o)
                        if (v := val(np_value(c)))]
            elif word in FOND:
                out += [_fact("likes", "user", v, off, "Do you like {sv}?", "Yes, you are {w} {p} {sv}.",
                              w=word, p=o.head.lower_)
                        for o in _preps(acomp, *FOND[word], deps=("pobj", "pcomp")) for c in conjuncts(o)
                        if (v := val(np_value(c))) and c.pos_ != "PRON"]
            elif word in DIETS:
                out.append(_fact("diet", "user", val(np_value(acomp)), off, "What diet do you follow?",
                                 "You are {v}."))
            elif word == "based":
                out += [_fact("residence", "user", v, off, *LIVE_QA) for o in _preps(acomp, "in")
                        if (v := val(place_value(o)))]
            elif (num := number(acomp)) and pred.tag_ != "VBD" and not will(pred):
                out += _age(who, Value(num, acomp.idx - s0, acomp.idx - s0 + len(acomp.text)), off)
        if user and not neg:
            out += [_fact("hometown", "user", v, off, *FROM_QA) for o in _preps(pred, "from")
                    if (v := val(place_value(o)))]
            if pred.tag_ == "VBN" and any(c.ent_type_ == "DATE" for f in _preps(pred, "for") for c in f.subtree):
                # "I've been in Singapore for six years now": where they live
                out += [_fact("residence", "user", v, off, *LIVE_QA) for o in _preps(pred, "in")
                        if o.ent_type_ in ("GPE", "LOC") and (v := val(place_value(o)))]
            out += [_fact("hobby", "user", v, off, "What is one of your hobbies?", "You are into {sv}.")
                    for o in _preps(pred, "into") for c in conjuncts(o) if (v := val(np_value(c)))]
            if any(c.lower_ in ("up", "awake") for c in pred.children):  # 'I'm usually awake by half five'
                out += _wake(pred, off, s0)
        return out
    if neg and lemma not in ("like", "love", "eat", "enjoy", "get", *CANT):
        return out
    if pred.tag_ == "VBD" and lemma in PRESENT_ONLY:  # 'I played the violin', 'I lived in Paris': no longer
        return out
    if lemma in ("live", "base", "move", "settle", "relocate", "reside") and (user or member):
        for o in _preps(pred, "in", "near", "outside", "to", "by", "around"):
            if lemma == "move" and o.head.lower_ != "to":
                continue
            if v := val(_place(o)):
                out.append(_fact("residence", "user", v, off, *LIVE_QA) if user else
                           _fact("family_home", who.subject, v, off, "Where does your {w} live?",
                                 "Your {w} lives in {v}.", member=who.name, w=_who_label(who)))
        if lemma in ("move", "relocate") and user:
            out += [_fact("moved_from", "user", v, off, "Where did you move from?", "You moved from {v}.")
                    for o in _preps(pred, "from") if (v := val(place_value(o)))]
    elif lemma == "come" and user and any(c.lower_ in ("here", "over", "across") or c.dep_ == "prep" and
                                          c.lower_ == "to" for c in pred.children):
        # 'we came here from Harrogate': where they moved from, not where they grew up
        out += [_fact("moved_from", "user", v, off, "Where did you move from?", "You moved from {v}.")
                for o in _preps(pred, "from") if (v := val(place_value(o)))]
    elif (lemma in ("grow", "raise", "come") or lemma in ("bear", "breed") and pred.tag_ == "VBN") and user:
        words = ("from",) if lemma == "come" else ("in", "outside", "near", "around", "on", "by")
        out += [_fact("hometown", "user", v, off, *FROM_QA) for o in _preps(pred, *words)
                if (v := val(_place(o))) and not o.like_num and o.ent_type_ != "DATE"]
        out += [_fact("native_language", "user", _word(c, s0), off, "What is your native language?",
                      "Your native language is {v}.")  # 'I grew up speaking Urdu at home'
                for x in pred.children if x.dep_ in ("xcomp", "advcl") and x.lemma_.lower() == "speak"
                for o in x.children if o.dep_ == "dobj" for c in conjuncts(o) if language(c)]
    elif lemma == "graduate" and user:  # 'I graduated from McGill'
        out += [_fact("education", "user", v, off, "Where did you study?", "You studied at {v}.")
                for o in _preps(pred, "from") if o.pos_ == "PROPN" and o.ent_type_ not in ("DATE", "GPE")
                and (v := val(place_value(o)))]
    elif lemma == "go" and user and (x := _child(pred, "xcomp")) is not None and x.lower_ in SPORT_ING:
        out.append(_fact("sport", "user", val(_word(x, s0)), off, "What sport do you do?", "You go {v}."))
    elif (lemma == "work" or lemma == "employ" and pred.tag_ == "VBN") and user:
        # 'I work as a nurse', 'employed as a civil servant', 'working like software engineer' (a learner's 'as')
        out += [_fact("job", "user", v, off, *JOB_QA) for o in _preps(pred, "as", "like")
                if (o.head.lower_ == "as" or _job(o)) and (v := val(np_value(o, False)))]
        out += [_fact("workplace", "user", v, off, *WORK_QA) for o in _preps(pred, "at", "for")
                if (v := val(place_value(o)))]
    elif lemma in ("have", "own", "rent") and user and pred.tag_ != "VBD":
        # 'we've a small terraced house in Whitby', 'I rent a flat in Leith': where they live
        for o in pred.children:
            if o.dep_ == "dobj" and o.lower_ in HOMES and \
                    not any(c.lower_ in NOT_MAIN_HOME for c in o.children if c.dep_ in ("amod", "compound")):
                out += [_fact("residence", "user", v, off, *LIVE_QA) for p in _preps(o, "in") + _preps(pred, "in")
                        if (v := val(place_value(p))) and p.pos_ == "PROPN"]
    elif lemma == "work" and member:  # 'Geoffrey works part-time as a harbour pilot'
        out += [_fact("family_job", who.subject, v, off, "What does your {w} do for a living?",
                      "Your {w} works as {a} {v}.", member=who.name, w=_who_label(who))
                for o in _preps(pred, "as") if (v := val(np_value(o, False)))]
    elif lemma == "teach" and (user or member) and (obj := _child(pred, "dobj")) is not None:
        v = val(np_value(obj))
        if v is not None:
            v = Value(f"{v.text} teacher", v.start, v.end)
            out.append(Fact("job", "user", v.text, None, None, "What do you do for a living?",
                            f"You teach {v.text[:-8]}: you work as {_a(v.text)} {v.text}.") if user else
                       Fact("family_job", who.subject, v.text, None, None,
                            f"What does your {_who_label(who)} do for a living?",
                            f"Your {_who_label(who)} teaches {v.text[:-8]}.", who.name))
    elif lemma == "train" and user and pred.tag_ in ("VBD", "VBN"):  # 'I trained in law at Trinity College'
        out += [_fact("education", "user", v, off, "Where did you study?", "You studied at {v}.")
                for o in _preps(pred, "at") if o.ent_type_ == "ORG" and (v := val(place_value(o)))]
    elif lemma in ("learn", "practise", "practice") and member:  # 'my daughter's learning the violin'
        out += [_instrument(who, _word(c, s0), off) for o in pred.children if o.dep_ == "dobj" for c in conjuncts(o)
                if c.lower_ in INSTRUMENTS]
    elif lemma in ("study", "learn", "practise", "practice") and user:
        for o in [c for c in pred.children if c.dep_ == "dobj"]:
            for c in conjuncts(o):
                if c.lower_ in INSTRUMENTS and lemma != "study":  # 'i've been learning piano since lockdown'
                    out.append(_instrument(who, _word(c, s0), off))
                elif language(c) and lemma != "practice" or language(c) and pred.tag_ == "VBG":
                    out.append(_fact("language_learning", "user", _word(c, s0), off, *LEARN_QA))
                elif lemma == "study" and (v := val(np_value(c))):
                    out.append(_fact("study_subject", "user", v, off, "What did you study?", "You studied {sv}."))
        if lemma == "study":  # 'I studied at X', 'I studied pharmacy at X'
            places = _preps(pred, "at", "in") + [g for o in pred.children if o.dep_ == "dobj"
                                                 for g in _preps(o, "at")]
            out += [_fact("education", "user", v, off, "Where did you study?", "You studied at {v}.")
                    for o in places if (v := val(place_value(o))) and o.ent_type_ != "DATE"]
    elif lemma == "speak" and user:
        objs = [o for o in pred.children if o.dep_ == "dobj"]
        objs += [a for o in objs if o.lemma_.lower() == "language" for a in o.children if a.dep_ == "appos"]
        out += [_fact("language_spoken", "user", _word(c, s0), off, *SPEAK_QA)  # 'three languages - English, ...'
                for o in objs for c in conjuncts(o) if language(c)]
    elif lemma == "pick" and user and any(c.lower_ == "up" for c in pred.children) and pred.tag_ != "VBD":
        out += [_fact("language_learning", "user", _word(c, s0), off, *LEARN_QA)  # "I'm picking up some Korean"
                for o in pred.children if o.dep_ == "dobj" for c in conjuncts(o) if language(c)]
    elif lemma == "play" and (user or member):
        for o in [c for c in pred.children if c.dep_ == "dobj"]:
            for c in conjuncts(o):
                if c.lower_ in INSTRUMENTS:
                    out.append(_instrument(who, val(np_value(c)), off))
                elif c.lower_ in SPORTS and user:
                    out.append(_fact("sport", "user", val(np_value(c)), off, "What sport do you play?",
                                     "You play {v}."))
    elif lemma in LIKE or lemma in DISLIKE or (lemma in CANT and neg):
        if not user:
            return out
        hate = lemma in DISLIKE or neg
        verb = f"can't {lemma}" if lemma in CANT else ("don't " + lemma if neg else pred.lower_)
        # The first object and its conjuncts: a second one after a comma is an afterthought ('can't bear
        # mushrooms though, the texture!!').
        for o in [c for c in pred.children if c.dep_ in ("dobj", "xcomp")][:1]:
            o = _antecedent(o, pred)
            for c in conjuncts(o):
                if (v := val(np_value(c))) and c.pos_ != "PRON":
                    out.append(_fact("dislikes" if hate else "likes", "user", v, off, "Do you like {sv}?",
                                     ("No, you {verb} {sv}." if hate else "Yes, you {verb} {sv}."),
                                     verb=_second_person(verb)))
    elif lemma == "eat" and user and neg:
        out += [_fact("avoids_food", "user", v, off, "What food do you avoid?", "You don't eat {sv}.")
                for o in pred.children if o.dep_ == "dobj" for c in conjuncts(o) if (v := val(np_value(c)))]
    elif lemma == "drink" and user and (obj := _child(pred, "dobj")) is not None and obj.lower_ != "way":
        out += [_fact("drink", "user", v, off, "What do you like to drink?", "You drink {sv}.")
                for c in conjuncts(obj) if (v := val(np_value(c)))]
    elif lemma == "fear" and user:
        out += [_fact("fear", "user", v, off, "What are you afraid of?", "You are afraid of {sv}.")
                for o in pred.children if o.dep_ == "dobj" for c in conjuncts(o) if (v := val(np_value(c)))]
    elif lemma in ("get", "wake") and user and any(c.lower_ == "up" for c in pred.children) or lemma == "wake":
        out += _wake(pred, off, s0) if user and not neg else []
    elif lemma == "turn" and (user or member):
        obj = _child(pred, "dobj", "attr", "npadvmod", "oprd", "acomp")
        if obj is not None and (num := number(obj)):
            out += _age(who, Value(num, obj.idx - s0, obj.idx - s0 + len(obj.text)), off)
    elif lemma == "get" and user and neg and any(c.lower_ == "enough" for c in pred.children):
        out += [_fact("likes", "user", v, off, "Do you like {sv}?", "Yes, you can't get enough of {sv}.")
                for e in pred.children if e.lower_ == "enough" for o in _preps(e, "of") + _preps(pred, "of")
                for c in conjuncts(o) if (v := val(np_value(c))) and c.pos_ != "PRON"]
    elif lemma == "support" and user and pred.tag_ in ("VBP", "VB"):  # 'I support Arsenal': a team they follow
        out += [_fact("likes", "user", v, off, "Do you like {sv}?", "Yes, you support {sv}.")
                for o in pred.children if o.dep_ == "dobj" and o.pos_ == "PROPN" for c in conjuncts(o)
                if (v := val(name_value(c)))]
    elif lemma == "set" and user and (o := _child(pred, "dobj")) is not None and o.lower_ == "alarm" and \
            owned_by_user(o):  # 'I set my alarm for 6:15'
        out += _wake(pred, off, s0, lead=frozenset({"my", "alarm", "for", "to", "at", "usually", "always"}))
    elif lemma == "drive" and user and pred.tag_ in ("VBP", "VBZ", "VBG") and (o := _child(pred, "dobj")) is not None \
            and o.pos_ == "PROPN" and (owned_by_user(o) or any(c.dep_ == "det" and c.lower_ in ("a", "an")
                                                              for c in o.children)) \
            and (v := val(np_value(o))) and v.text[:1].isupper():
        out.append(_fact("possession", "car", v, off, *CAR_QA))  # 'we drive a Volkswagen Golf'
    elif lemma in ("visit", "book") and user and not neg and (_future(pred) or lemma == "book"):
        # "I'm visiting my sister in Toronto next month", "we've booked a week in Crete": a trip to come
        out += [_fact("trip", "user", v, off, "Where are you going?", "You are going to {v}.")
                for o in pred.children if o.dep_ in ("dobj", "npadvmod") and (lemma == "visit" or o.lower_ in TRIPS)
                for i in ([o] if o.pos_ == "PROPN" else []) + _preps(o, "in", "to") + _preps(pred, "in", "to")
                if i.ent_type_ in ("GPE", "LOC") and (v := val(place_value(i)))]
    elif lemma in TRAVEL and user and not neg and (_future(pred) or pred.tag_ in ("VBP", "VBZ") and any(
            c.dep_ in ("npadvmod", "prep") and any(g.ent_type_ == "DATE" for g in c.subtree) and not any(
                g.lower_ in ("every", "each", "usually", "always") or g.lower_.endswith("days") for g in c.subtree)
            for c in pred.children)):
        # "I'm flying to Oslo", "I fly to Boston on Thursday": a trip to come
        out += [_fact("trip", "user", v, off, "Where are you going?", "You are going to {v}.")
                for o in _preps(pred, "to") if (v := val(place_value(o))) and o.pos_ == "PROPN"]
    elif lemma == "take" and user and any(c.lower_ == "up" for c in pred.children):
        out += [_fact("hobby", "user", v, off, "What is one of your hobbies?", "You took up {sv}.")
                for o in pred.children if o.dep_ == "dobj" for c in conjuncts(o)
                if c.pos_ in ("NOUN", "PROPN", "VERB") and not _taken(c) and (v := val(np_value(c)))]
    elif lemma in ("call", "name") and pred.tag_ == "VBN":
        obj = _child(pred, "oprd", "attr", "dobj")
        v = val(name_value(obj)) if obj is not None else None
        if v and user:
            out.append(_fact("name", "user", v, off, *NAME_QA))
        elif v and who.kind == "thing":
            out.append(_fact("possession_name", who.subject, v, off, "What is your {t} called?",
                             "Your {t} is called {v}.", t=who.subject))
    elif lemma in ("call", "name") and user and (obj := _child(pred, "dobj")) is not None and \
            owned_by_user(obj) and (name := _child(pred, "oprd")) is not None and (v := val(name_value(name))):
        # 'I named my bike Rocket', 'we called our puppy Juno'
        if rel := relation(obj):
            out.append(_fact("family_name", rel, v, off, "What is your {rel}'s name?", "Your {rel}'s name is {v}.",
                             member=v.text, rel=rel))
        elif pk := pet_kind(obj):
            out.append(_fact("pet_name", pk[0], v, off, "What is your {k}'s name?", "Your {k}'s name is {v}.",
                             member=v.text, k=pk[0]))
        elif obj.lower_ not in OTHERS:
            out.append(_fact("possession_name", obj.lower_, v, off, "What is your {t} called?",
                             "Your {t} is called {v}.", t=obj.lower_))
    elif lemma == "call" and (obj := _child(pred, "dobj")) is not None and obj.lower_ == "me":
        name = _child(pred, "oprd", "attr", "ccomp", "xcomp")
        if name is not None and (v := val(name_value(name))):
            out.append(_fact("name", "user", v, off, *NAME_QA))
    return out


def _antecedent(obj, pred):
    """'Geoffrey loves kippers but I can't abide them': 'them' or 'it' is the object of the clause this one is
    joined to; any other object is itself."""
    if obj.lower_ not in ("them", "it") or pred.dep_ != "conj":
        return obj
    return next((c for c in pred.head.children if c.dep_ == "dobj" and c.pos_ in ("NOUN", "PROPN")), obj)


def _taken(tok) -> bool:
    """'took up too much of your time', 'took up the whole afternoon': room or time taken, not a hobby."""
    return tok.lower_ in ("time", "space", "room", "much", "afternoon", "day", "evening", "morning", "bit") or \
        any(c.dep_ in ("det", "poss") for c in tok.children)


def _word(tok, s0: int = 0) -> Value:
    return Value(tok.text, tok.idx - s0, tok.idx - s0 + len(tok.text))


def _future(pred) -> bool:
    """'I'm flying to Oslo', 'we'll go to Rome', 'heading to Kyoto next month': a trip, not a past visit."""
    return pred.tag_ == "VBG" or will(pred)


def _age(who: Who, v: Value, off: int) -> list[Fact]:
    if who.kind == "user":
        return [_fact("age", "user", v, off, *AGE_QA)]
    return [_fact("family_age", who.subject, v, off, "How old is your {w}?", "Your {w} is {v} years old.",
                  member=who.name, w=_who_label(who))]


TIME_WORDS = frozenset("one two three four five six seven eight nine ten eleven twelve half quarter dawn sunrise "
                       "noon midday".split())
TIME_TAIL = frozenset({"am", "a.m.", "pm", "p.m.", "o'clock", "thirty", "fifteen", "forty-five", "ish", "past", "to",
                       "six", "seven", "five", "eight", "nine"})
LEAD = frozenset({"up", "awake", "at", "around", "by", "about", "usually", "normally", "always", "before", "like",
                  "just"})


def _timeish(tok) -> bool:
    return any(ch.isdigit() for ch in tok.text) or tok.lower_ in TIME_WORDS


def _wake(pred, off: int, s0: int, lead: frozenset[str] = LEAD) -> list[Fact]:
    """'I get up at six every day', 'i wake up at 5:30': when the person gets up (the time words after the verb)."""
    doc = pred.doc
    k = pred.i + 1
    while k < len(doc) and doc[k].lower_ in lead:
        k += 1
    if k >= len(doc) or not _timeish(doc[k]) or k == pred.i + 1:
        return []
    end = k + 1
    while end < len(doc) and (doc[end].lower_ in TIME_TAIL or doc[end].text.isdigit()):
        end += 1
    span = doc[k:end]
    v = Value(span.text, span.start_char - s0, span.end_char - s0)
    return [_fact("wake_time", "user", v, off, "What time do you get up?", "You get up at {v}.")]


def _apostrophe_is(sent, ctx: Context) -> list[Fact]:
    """'Hilde's a dentist', 'our car's a Toyota Yaris': the parser may read the 's as a possessive; a known name
    (or a thing the person owns) before it is the subject."""
    out = []
    for root in sent:
        if root.dep_ != "ROOT" or hypothetical(root) or question(root):
            continue
        owner = next((c for c in root.children if c.dep_ == "poss" and any(g.dep_ == "case" for g in c.children)),
                     None)
        if owner is not None and root.pos_ == "PROPN" and owner.lower_ in MAKES and owned_by_user(owner) and \
                any(c.dep_ == "det" and c.lower_ in ("a", "an") for c in root.children):
            kind, qa = MAKES[owner.lower_]
            start = next(c for c in root.children if c.dep_ == "det").i + 1
            span = sent.doc[start:root.i + 1]
            out.append(_fact("possession", kind, Value(span.text, span.start_char, span.end_char), 0, *qa))
            continue
        if root.pos_ != "NOUN" or not _job(root):
            continue
        who = noun_who(owner, ctx) if owner is not None else None
        if who is not None and who.kind == "family":
            v = np_value(root, right=False)
            out.append(_fact("family_job", who.subject, v, 0, "What does your {w} do for a living?",
                             "Your {w} works as {a} {v}.", member=who.name, w=_who_label(who)))
    return out


GREETINGS = frozenset("hi hello hey hiya heya howdy morning evening afternoon greetings yo".split())
GREETED = frozenset("all there everyone everybody folks again".split())


def _introduced(sent) -> list[Fact]:
    """'Priya here.', 'Rosalind here, Rosalind Achterberg', 'Hiya, Marta here!': a person giving their name as
    they start."""
    words = [t for t in sent if not t.is_punct]
    k = 0
    while k < len(words) and (words[k].lower_ in GREETINGS or k and words[k].lower_ in GREETED):
        k += 1
    if 0 < k < len(words) - 1 and words[k].pos_ == "PROPN" and words[k].text[:1].isupper():
        end = k + 1 if words[k + 1].lower_ == "here" else k + 2  # 'Hi all, Tom here', 'hey, Ana Silva here'
        if end < len(words) and words[end].lower_ == "here" and words[end - 1].pos_ == "PROPN" and \
                words[end - 1].text[:1].isupper() and end + 1 == len(words):
            span = sent.doc[words[k].i:words[end - 1].i + 1]
            return [_fact("name", "user", Value(span.text, span.start_char, span.end_char), 0, *NAME_QA)]
    first = next((t for t in sent if not t.is_punct and t.dep_ not in ("intj",)), None)
    if first is None or first.dep_ != "ROOT" or not any(c.lower_ == "here" and c.dep_ == "advmod"
                                                          for c in first.children):
        return []
    v = name_value(first) if first.text[:1].isupper() else None
    if v is None:
        return []
    for c in first.children:  # the full name beside it ('Rosalind Achterberg') when it starts the same way
        if c.dep_ in ("npadvmod", "appos") and (full := name_value(c)) and full.text.split()[0] == v.text:
            v = full
    return [_fact("name", "user", v, 0, *NAME_QA)]


def _drinks(sent, ctx: Context) -> list[Fact]:
    """'I start every day with a pot of Earl Grey', 'first thing I have a cup of green tea': what comes in a cup,
    mug or pot the person has is a drink they like."""
    out = []
    for tok in sent:
        if tok.lower_ not in VESSELS:
            continue
        stuff = next((g for c in tok.children if c.dep_ == "prep" and c.lower_ == "of" for g in c.children
                      if g.dep_ == "pobj"), None)
        pred = tok.head
        while pred.pos_ not in ("VERB", "AUX") and pred.head is not pred:
            pred = pred.head
        if stuff is None or stuff.lower_ in NOT_DRINK or pred.tag_ == "VBD" or negated(pred) or \
                hypothetical(pred) or question(pred) or subject_of(pred, ctx) != USER:
            continue
        if v := np_value(stuff):
            out.append(_fact("drink", "user", v, 0, "What do you like to drink?", "You drink {sv}."))
    return out


def _about_me(sent) -> list[Fact]:
    """Facts about the person where they are not the subject: 'heights terrify me', 'Welsh is my mother
    tongue', 'as a 27-year-old I should know better'."""
    out = []
    for pred in predicates(sent):
        if negated(pred) or hypothetical(pred) or question(pred) or pred.tag_ == "VBD":
            continue
        subj = _child(pred, "nsubj")
        if subj is None:
            continue
        lemma = pred.lemma_.lower()
        if lemma in FEAR_VERBS and any(c.dep_ == "dobj" and c.lower_ == "me" for c in pred.children):
            out += [_fact("fear", "user", v, 0, "What are you afraid of?", "You are afraid of {sv}.")
                    for c in conjuncts(subj) if c.pos_ != "PRON" and (v := np_value(c))]
        elif lemma == "be" and (attr := _child(pred, "attr")) is not None and attr.lower_ in PASSIONS and \
                owned_by_user(attr) and subj.pos_ in ("NOUN", "VERB") and subj.lower_ not in NOT_VALUE:
            out.append(_fact("hobby", "user", np_value(subj), 0, "What is one of your hobbies?",
                             "You are into {sv}."))  # 'gardening is my passion'
        elif lemma == "go" and subj.lower_ == "alarm" and owned_by_user(subj) and \
                any(c.lower_ == "off" for c in pred.children):
            out += _wake(pred, 0, 0, lead=frozenset({"off", "at", "around", "usually", "normally", "always"}))
        elif lemma == "be" and language(subj) and (attr := _child(pred, "attr")) is not None and \
                attr.lower_ in TONGUES and owned_by_user(attr):
            mods = {c.lower_ for c in attr.children}
            if mods & {"mother", "first", "native"}:
                out.append(_fact("native_language", "user", _word(subj), 0, "What is your native language?",
                                 "Your native language is {v}."))
            elif mods & OTHER_TONGUE:  # 'Spanish is my second language'
                out.append(_fact("language_spoken", "user", _word(subj), 0, *SPEAK_QA))
    for tok in sent:
        if tok.dep_ == "ROOT" and tok.pos_ == "PROPN" and any(  # "the name's Declan" (the 's read as possessive)
                c.dep_ == "poss" and c.lower_ == "name" and any(d.lower_ in ("the", "my") for d in c.children)
                for c in tok.children) and (v := name_value(tok)):
            out.append(_fact("name", "user", v, 0, *NAME_QA))
        elif tok.dep_ == "pobj" and tok.head.lower_ == "as" and tok.lower_ == "old" and \
                (year := next((c for c in tok.children if c.lower_ in ("year", "years")), None)) is not None and \
                (num := next((c for c in year.children if c.dep_ == "nummod" and number(c)), None)) is not None:
            # 'as a 27-year-old': the age in a description of oneself
            pred = tok.head.head
            if pred.pos_ in ("VERB", "AUX") and not question(pred) and \
                    any(c.dep_ == "nsubj" and c.lower_ == "i" for c in pred.children):
                out += _age(USER, _word(num), 0)
        elif tok.dep_ == "pobj" and tok.head.lower_ == "as" and tok.head.i == sent[0].i and _job(tok) and \
                not any(c.lower_ in ("former", "ex", "retired") for c in tok.children):
            # 'As a nurse I work nights, ...': what they are, said on the way to something else
            me = next((c for c in sent if c.dep_ == "nsubj" and c.lower_ == "i"), None)
            if me is not None and me.head.tag_ in ("VBP", "VBZ", "VB") and not negated(me.head) and \
                    not hypothetical(me.head):
                out.append(_fact("job", "user", np_value(tok, right=False), 0, *JOB_QA))
        elif tok.lower_ in WORKMATES and owned_by_user(tok) and not hypothetical(tok.head) and not any(
                c.lower_ in ("old", "former", "ex", "previous", "last") for c in tok.children) and \
                tok.i + 1 < len(tok.doc) and (at := tok.doc[tok.i + 1]).lower_ == "at":
            # 'how do I tell my boss at Unilever ...': where they work
            out += [_fact("workplace", "user", v, 0, *WORK_QA) for o in at.children if o.dep_ == "pobj" and
                    o.pos_ == "PROPN" and o.ent_type_ not in ("DATE", "TIME", "GPE") and (v := place_value(o))]
    return out


def sentence_facts(sent, off: int, ctx: Context) -> tuple[list[Fact], bool]:
    """(facts, whether some stated real clause is the person's own) of one parsed sentence at offset off."""
    out = noun_facts(sent, off, ctx) if len(sent) else []
    own = False
    out += _apostrophe_is(sent, ctx) + colon_list_facts(sent) + _introduced(sent) + _drinks(sent, ctx) + \
        _about_me(sent)
    for pred in predicates(sent):
        if hypothetical(pred) or question(pred):
            continue
        who = subject_of(pred, ctx)
        if who is None or who.kind == "other":
            continue
        own = own or who.kind == "user"
        out += [_unspanned(f) for f in clause_facts(pred, who, off, ctx) if f.value]
    return out, own
