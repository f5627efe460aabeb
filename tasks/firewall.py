"""Stage 3: the hallucination firewall — accept a candidate pair only when the user's own words carry it.

Every source message is screened as a whole first, whatever template or model read it and whichever of its
sentences a pair came from: a message holding a secret — by its shape (keys, tokens, IBANs, card numbers,
national ids, private keys, random-looking strings) or by what the person calls it ("my pin is …", "my api
token is …", "pw: …", "… is my wifi password") — or an injection (role lines, chat-template tokens,
instruction overrides, statements that tell the assistant how to behave from now on) gives no pair at all.

Then each candidate, in order (the first that fails is the reason): empty, secret, injection, too-long,
about-assistant, assistant-only, ungrounded. Grounding is the share of the answer's claims (content words,
names, numbers; case- and accent-folded) found in the source user messages; a pair a model wrote must also
take every name and number of its answer from them. Secrets are masked in everything written to
`rejections`, and `mask_secrets` masks every secret span of any text for whoever shows it (lineage,
artifacts).
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from storage.schemas import without_run_id
from tasks.text import fold, word_tokens
from tasks.vocabulary import WORD_ALIASES

I = re.IGNORECASE
MASK_MARK = "[masked]"  # ends every masked secret; a span holding it is masked, no secret any more

# --- Secrets by their shape: (kind, pattern); group 'v' is the part to mask, else the whole match. ---------
SECRET_PATTERNS: list[tuple[str, re.Pattern]] = [(kind, re.compile(p)) for kind, p in [
    ("private-key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                    r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)"),
    ("api-key", r"\bsk-(?:proj-|live-|test-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{16,}"),
    ("api-key", r"\b[rsp]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("aws-key", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"),
    ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
    ("api-key", r"\bglpat-[A-Za-z0-9_-]{20,}"),
    ("slack-token", r"\bxox[abposre]-[A-Za-z0-9-]{10,}"),
    ("api-key", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}"),
    ("api-key", r"https://(?:canary\.|ptb\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]{20,}"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("google-key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("google-key", r"\bya29\.[0-9A-Za-z_-]{20,}"),
    ("api-key", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("api-key", r"\bpypi-AgE[A-Za-z0-9_-]{40,}"),
    ("api-key", r"\bhf_[A-Za-z0-9]{30,}"),
    ("api-key", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"),
    ("api-key", r"\b(?:AC|SK)[0-9a-f]{32}\b"),
    ("api-key", r"\bkey-[0-9a-zA-Z]{32}\b"),
    ("api-key", r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b"),
    ("api-key", r"\bsq0(?:atp|csp)-[A-Za-z0-9_-]{22,}"),
    ("api-key", r"\bdapi[0-9a-f]{32}\b"),
    ("api-key", r"\b\d{8,10}:AA[A-Za-z0-9_-]{33}\b"),
    ("cloud-key", r"\bdo[opr]_v1_[a-f0-9]{64}\b"),
    ("cloud-key", r"\bAccountKey=(?P<v>[A-Za-z0-9+/=]{40,})"),
    ("cloud-key", r"[?&]sig=(?P<v>[A-Za-z0-9%+/=]{20,})"),
    ("url-credentials", r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@]{1,64}:(?P<v>[^\s@/]{1,128})@"),
    ("bearer-token", r"(?i:\b(?:bearer|basic)\s+)(?P<v>[A-Za-z0-9._~+/-]{16,}=*)"),
    # National ids with a fixed shape (the ones that need a check digit are in _checked_ids).
    ("national-id", r"\b(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}\b"),  # US SSN
    ("national-id", r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"),
    ("national-id", r"\b(?:19|20)?\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])[-+]\d{4}\b"),  # SE personnummer
    ("national-id", r"\b(?:0[1-9]|[12]\d|3[01])(?:0[1-9]|1[0-2])\d{2}(?:-\d{4}|[-+A-FU-Y]\d{3}[0-9A-FHJ-NPR-Y])\b"),
    ("national-id", r"\b[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]\b"),  # codice fiscale
]]

# --- Secrets by what the person calls them. --------------------------------------------------------------
_QUALIFIER = (r"api|access|secret|private|client|auth|authentication|bearer|session|refresh|app|bot|deploy|"
              r"personal access|wi-?fi|wlan|network|router|admin|root|master|encryption|decryption|ssh|gpg|pgp|"
              r"licen[cs]e|product|activation|serial|door|gate|alarm|garage|safe|locker|lock|entry|keypad|unlock|"
              r"recovery|backup|verification|security|confirmation|one[- ]time|2fa|mfa|otp|sign[- ]?in|log[- ]?in|"
              r"bank|banking|card|atm|debit|credit|sim|voicemail|vault|wallet")
# Words that name a secret whatever follows them ("my password is swordfish").
_STRONG = (rf"pass(?:word|wd|wort|phrase|code)s?|pass (?:code|phrase)|pwd|pw|pass(?=\s*[:=])|"
           rf"pins?(?: (?:code|number))?|"
           rf"puk|logins?|log-?in details|credentials?|creds|otp|totp|cvv2?|cvc2?|"
           rf"(?:{_QUALIFIER})[ _-]?(?:keys?|tokens?|codes?|pins?|phrases?|secrets?)|"
           r"seed (?:phrase|words)|mnemonic|secret (?:phrase|answer|word)|"
           # The same words as people write them in other languages.
           r"contraseña|clave|passwort|kennwort|mot de passe|passord(?:et)?|lösenord(?:et)?|adgangskode(?:n)?|"
           r"wachtwoord|senha|"
           r"salasana|hasło|parola|пароль")
# Words that name a secret only when what follows looks like one ("my key is hunter2", not "the key is to rest").
_WEAK = r"keys?|tokens?|secrets?|codes?|combination|combo|wi-?fi(?: network)?"
_DIGITS_ONLY_WORDS = re.compile(r"^(?:pins?(?: (?:code|number))?|puk|cvv2?|cvc2?|otp|totp)$", I)
# 'zip code 90210', 'area code 415', 'promo code SAVE20': codes that are no secret.
_NOT_SECRET_BEFORE = frozenset(
    "zip postal post area country dress source morse bar qr color colour language tax airport discount promo "
    "coupon referral gift voucher cheat error status genetic moral penal civil highway music major minor "
    "answer piano house".split())
_GAP = r"(?:\s+(?:for|to|on|of|at|in|with|from|that|i|we|mitt|min|mio|mia)\b[^.!?\n:=]{0,30}?)?"
_IS = (r"(?P<c>(?:(?:\s+(?:is|was|are|were|reads|equals|es|ist|est|er|är|é|è|on|jest)\b|['’]s\b)\s*[:=\-–]?\s*"
       r"|\s*(?:[:=]|->|=>)\s*|\s+[-–]\s+)"
       r"(?:(?:still|now|currently|just|literally|actually|always|simply|basically|set to|changed to|updated to)\s+)*)")
_VALUE = (r"(?:[\"“‘'](?P<q>[^\"”’'\n]{2,80})[\"”’']"  # quoted, or a spaced number, or one word
          r"|(?P<v>\d(?:[ -]\d){3,11}(?!\d)|[^\s\"“”‘’]{2,}))")
# 'password hunter2' needs no 'is' when the word after it looks like a password.
_BARE = r"\s+(?=\S*(?:\d|\w[^\w\s]\w|(?-i:[a-z][A-Z])))"
_SAID = re.compile(rf"\b(?P<kw>{_STRONG}|{_WEAK})\b{_GAP}(?:{_IS}|{_BARE}){_VALUE}", I)
# Said to be a phrase: the rest of the clause is the secret.
_PHRASE_WORDS = re.compile(r"phrases?|words|mnemonic|passphrases?|pass phrase", I)
_SAID_AFTER = re.compile(
    rf"(?<![\w@.-])(?P<v>[^\s\"“”‘’]{{3,}}) (?:is|was|['’]s|=) (?:my|our|the|his|her|their|your|a) "
    rf"(?:[\w-]+ ){{0,3}}?(?P<kw>{_STRONG}|keys?|tokens?|secrets?|codes?|combination)\b"
    r"(?=\s*(?:[.,;:!?)\n]|$|(?:for|to|on|and|but|so|btw|lol|haha)\b))", I)
# A value that is a word of the sentence, not a secret ("my password is the name of my dog").
_COMMON = frozenset(
    "the a an my your his her our their its this that it what which who how same different wrong right correct "
    "incorrect expired weak strong secure safe long short hard easy simple complicated complex saved stored "
    "written in on at under from with like gone lost forgotten changed reset required needed too very so not "
    "still also just really something nothing here there below above attached following ready sent coming "
    "working broken locked one mine yours new old ok okay fine done set empty blank none unknown private secret "
    "confidential if when because and or but to for of as by be is was are were".split())

# (kind, what names it, what the secret looks like, least digits in it): looked for in the sentence that names it.
_CONTEXT_IDS = (
    r"ssn|social security(?: number| no\.?| #)?|social insurance number|sin|national (?:id(?:entity)?|identity|"
    r"identification|insurance|registration)(?: card)?(?: number| no\.?| #)?|ni number|nino|"
    r"personal (?:id(?:entity)? )?(?:number|code)|personnummer|f[øo]dselsnummer|personal identity number|"
    r"henkil[öo]tunnus|hetu|"
    r"cpr(?:[- ]?(?:number|nummer|nr\.?))?|bsn|burgerservicenummer|aadhaa?r(?: number| no\.?)?|pan(?: card)? number|"
    r"tax (?:id|identification|file|reference)(?: number| no\.?)?|tin|itin|ein|nhs number|medicare number|"
    r"health (?:insurance|card) number|dni|nie|nif|codice fiscale|steuer-?id(?:entifikationsnummer)?|pesel|"
    r"(?:id|identity|identification) (?:card )?(?:number|no\.?|#)|"
    r"driv(?:er['’]?s|ers|ing) licen[cs]e(?: number| no\.?)?|"
    r"licen[cs]e (?:number|no\.?|#)")
CONTEXT_PATTERNS: list[tuple[str, re.Pattern, re.Pattern, int]] = [
    ("national-id", re.compile(rf"\b(?:{_CONTEXT_IDS})(?!\w)", I),
     re.compile(r"(?<![\w-])(?-i:[A-Z0-9]{1,12}(?:[ -][A-Z0-9]{1,12}){0,5})(?![\w-])", I), 6),
    ("passport", re.compile(r"\bpassport(?:\s*(?:number|no\.?|num|nr\.?|#|id))?(?!\w)|\btravel document", I),
     re.compile(r"(?<![\w-])(?:[A-Z0-9]{6,10}|\d{2,4}(?: \d{2,5}){1,3})(?![\w-])", I), 3),
    ("bank-account", re.compile(r"\b(?:(?:bank )?account (?:number|no\.?|num|nr\.?|#)|acct\.?(?: (?:no\.?|number|#))?|"
                                r"routing (?:number|no\.?|#)|sort code|bsb(?: number)?|aba (?:number|routing)|"
                                r"kontonummer|clearing(?: number)?)(?!\w)", I),
     re.compile(r"(?<![\w-])\d(?:[ -]?\d){5,30}(?![\w-])"), 6),
    ("card-number", re.compile(r"\b(?:(?:credit |debit |bank )?card (?:number|no\.?|num|#)|cc (?:number|no\.?))"
                               r"(?!\w)", I),
     re.compile(r"(?<![\w-])\d(?:[ -]?\d){11,18}(?![\w-])"), 12),
    ("one-time-code", re.compile(r"\b(?:(?:verification|security|confirmation|authentication|auth|login|log-?in|"
                                 r"sign-?in|one[- ]time|2fa|two[- ]factor|2-step|two[- ]step|mfa|access|reset|pairing|"
                                 r"activation|otp|sms|text(?:ed)?)\s*(?:code|pin|passcode|number|token)s?|otp|totp|2fa|"
                                 r"mfa|to (?:log ?in|sign ?in|verify))(?!\w)", I),
     re.compile(r"(?<![\w-])(?:\d{3,4}[ -]\d{3,4}|\d{4,8}|[A-Z]-\d{4,8})(?![\w-])"), 4),
]
# Sentences for the context patterns: 'passport no. X1234' does not end at 'no.'.
_CLAUSE = re.compile(r"(?:[^.!?\n]|(?<=\bno)\.|(?<=\bnr)\.|(?<=\bacct)\.|\.(?=\S))+", I)

_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]){10,32}", I)
_IBAN_LENGTH = dict((c[:2], int(c[2:])) for c in (
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DK18 DO28 EE20 EG29 ES24 FI18 "
    "FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 "
    "LU20 LV21 LY25 MC27 MD24 ME22 MK19 MR27 MT31 MU30 NL18 NO15 PK24 PL28 PS29 PT25 QA29 RO24 RS22 SA24 SC31 SD18 "
    "SE24 SI19 SK24 SM27 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20").split())
_DNI = re.compile(r"\b(?P<n>[XYZ]?-?\d{7,8})-?(?P<c>[A-Z])\b")
_INSEE = re.compile(r"\b(?P<n>[12] ?\d{2} ?(?:0[1-9]|1[0-2]|20) ?\d{2} ?\d{3} ?\d{3}) ?(?P<k>\d{2})\b")
CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
TOKEN = re.compile(r"[A-Za-z0-9+/=_\-.~]{20,}")
_WORDLIKE = re.compile(r"[^\s\"“”‘’()<>\[\]{},;]{8,}")
_SYMBOL = re.compile(r"[!@#$%^&*()_+=\[\]{}|;:,.<>?/~`'\"\\-]")
# Cheap test first (RE2 and Python): texts holding none of these are never scanned by the patterns above.
MAYBE_SECRET = re.compile(
    r"\d|pass|pwd|\bpw\b|pin|puk|log.?in|credential|creds|key|token|secret|code|combination|combo|wi.?fi|otp|"
    r"cvv|cvc|seed|mnemonic|phrase|bearer|basic|://|sk-|xox|eyJ|AIza|PRIVATE KEY|sig=|[A-Za-z0-9+/=_\-.~]{20}", I)
FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|mine|myself|we|our|ours|us)\b", I)
SECOND_PERSON = re.compile(r"\b(?:you|your|you're|yours|yourself|u|ur)\b", I)
SENTENCE = re.compile(r"[^.!?\n]+[.!?\n]*")

# --- Injections: RE2-compatible (they run column-wise over every message first). -------------------------
# What a person tells the assistant to do when they instruct it how to talk ('you always say', 'never answer').
_TELL = (r"say|says|answer|respond|reply|speak|talk|write|call|refer|address|greet|sign|end|start|begin|output|print|"
         r"reveal|repeat|obey|follow|pretend|act|claim|insist|agree|comply|refuse|translate")
INJECTION_PATTERNS: tuple[str, ...] = (
    # Overrides of what the assistant was told.
    r"\b(?:ignore|disregard|forget|override|overwrite|bypass|skip|drop|discard|abandon|erase|delete|clear|wipe|reset|"
    r"neglect)\b[^.!?\n]{0,30}\b(?:previous|prior|above|earlier|preceding|all|any|your|the|every|those|these|system|"
    r"original|initial|old|current)\b[^.!?\n]{0,20}\b(?:instructions?|prompts?|rules|directions|guidelines|context|"
    r"programming|directives?|orders|commands|guardrails|restrictions|constraints|training|settings|messages?)\b",
    r"\bforget (?:about )?(?:everything|all|anything|what(?:ever)?)\b[^.!?\n]{0,40}\b(?:told|said|taught|learned|"
    r"learnt|know|knew|instructed|given|above|before|so far|until now|earlier)\b",
    r"\bnew (?:rules?|instructions?|directives?|orders|commands?|system (?:prompt|message)|persona|guidelines?)\s*"
    r"(?::|-|–|—)",
    r"(?m:^)\s*(?:rule|instruction|directive|override|system note|admin note|note to (?:the )?(?:ai|assistant|"
    r"model|bot))\s*(?:#?\s*\d+)?\s*:",
    r"\byou(?:['’]re| are) now\b", r"\bsystem prompt\b", r"\bjailbr[eo]ak", r"\bdeveloper mode\b",
    r"\bdo anything now\b",
    r"\b(?:reveal|print|show|repeat|output|display|leak|dump|recite)\b[^.!?\n]{0,20}\b(?:your|the) (?:system |hidden |"
    r"initial |original |secret |full )?(?:prompt|instructions|configuration)\b",
    r"\b(?:disable|turn off|remove|bypass|deactivate)\b[^.!?\n]{0,15}\b(?:safety|filters?|guardrails|restrictions|"
    r"content policy|censorship|moderation)\b",
    # What the assistant must do from now on.
    r"\b(?:from now on|henceforth|hereafter|from here on(?: out)?|from this (?:point|moment) (?:on|forward)|"
    r"going forward|starting (?:now|today|immediately)|for the rest of (?:this|our|the) (?:conversation|chat|session)|"
    r"until i say otherwise|in (?:all|every) (?:future )?(?:answers?|replies|responses|messages))\b[,:;]?\s*"
    rf"(?:please\s+)?(?:you\b|your\b|always\b|never\b|only\b|do not\b|don['’]?t\b|must\b|remember\b|stop\b|"
    rf"(?:{_TELL})\b)",
    r"\byou (?:must|will|shall|should|have to|need to|are to|['’]re to|are going to|['’]ll|are required to)\b"
    r"[^.!?\n]{0,40}\b(?:from now on|henceforth|going forward|hereafter|for the rest of)\b",
    rf"\byou(?:['’]ll| must| will| shall| should| have to| need to| are to| are going to| may)? "
    rf"(?:always|never|only) "
    rf"(?:\w+ )?(?:{_TELL})\b",
    r"\b(?:make|have|get|let|want|need|tell|ask|teach|train|program|force|instruct|order|command|require|remind) "
    r"you (?:to )?(?:always|never|only)\b",
    rf"(?:^|[.!?;:\n]\s*|\bplease\s+)(?:always|never|only) (?:{_TELL})\b",
    r"(?:^|[.!?;:\n]\s*|\bplease\s+)(?:act|behave|pretend|roleplay|role-play) (?:as|like|to be|that you|you)\b",
    r"\bpretend (?:that )?you(?:['’]re| are)\b",
    r"\b(?:ignore|disregard)\s+(?:all\s+(?:of\s+)?)?(?:the|everything)\s+(?:above|before)\b",
    r"\b(?:system|admin|developer|root)\s+override\b", r"\brepeat after me\b",
    r"\byou (?:must|will|shall|should|are to) now\b", r"\byou (?:will |must |shall )?obey\b",
    r"(?:^|[.!?;:\n]\s*|\bplease\s+)(?:speak|respond|answer|reply|talk|write)\s+only\b",
    rf"\b(?:assistant|chatbot|bot|ai|model)\s+(?:must|should|shall|has to|needs to|is to)\s+"
    rf"(?:(?:always|never|only)\s+)?(?:{_TELL})\b",
    r"\bwhen(?:ever)? you (?:answer|respond|reply|write)\b[^.!?\n]{0,20}\b(?:always|never|only|must)\b",
    r"\byour (?:new (?:name|identity|persona|role|instructions?|rules?)|name is now)\b",
    # Role lines and chat-template tokens.
    r"(?:(?m:^)|[.!?]\s+)\s*(?:#{1,4}\s*)?[\[<(]?"
    r"(?:system|user|assistant|human|ai|bot|developer|sys|instruction|response)"
    r"[\]>)]?\s*:",
    r"[\[<](?:system|assistant|user|sys)[\]>]", r"</(?:system|assistant|user)>",
    r"\[/?inst\]", r"<</?sys>>", r"<\|[a-z_]{2,30}\|>", r"</?s>", r"<(?:start|end)_of_turn>",
    r"<\|?(?:system|im_start|im_end|endoftext)\|?>",
)


class FirewallConfig(BaseModel):
    """Thresholds and word lists of stage 3."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_grounding: float = Field(0.30, ge=0, le=1, description="Least share of an answer's claims found in the source.")
    max_answer_chars: int = Field(300, gt=0, description="A longer answer is rejected as too-long.")
    entropy_bits: float = Field(3.5, description="A token of >= entropy_min_len chars with letters and digits and "
                                                 "at least this Shannon entropy per char is a secret.")
    entropy_min_len: int = Field(20, ge=8, description="Shortest token the entropy check looks at.")
    mask_keep: int = Field(4, ge=0, description="Characters of a secret kept when masking (never more than a quarter).")
    stopwords: frozenset[str] = Field(frozenset((
        "a an the and or but of to in on at for with from by as is are was were be been am do does did has have had "
        "it its this that these those there here what which who whom whose when where why how not no yes so very "
        "just also too than then about into over up out can could will would should may might must one some any "
        "you your yours yourself you're youre i me my mine we our us they them their he she his her him "
        "s t re ve ll d name named called live lives living work works working job living old years year age "
        "favorite favourite like likes kind breed drive use used have having going planning plan every day "
        "learning speak hobbies hobby hobbie originally moved move born birthday").split()),
        description="Words that are not claims: function words and the frame words of template answers.")
    injection_patterns: tuple[str, ...] = Field(INJECTION_PATTERNS, description=(
        "Regexes (case-insensitive, RE2-compatible) that mark a prompt injection in a source message or the pair."))
    assistant_words: tuple[str, ...] = Field((
        "assistant", "chatbot", "language model", "ai model", "the ai", "the bot", "as an ai"),
        description="A question or answer naming one of these is about the assistant, not the user.")




PAIRS_SCHEMA, REJECTIONS_SCHEMA = without_run_id("pairs"), without_run_id("rejections")


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _iban_ok(compact: str) -> bool:
    """A valid IBAN: a known country's length and the mod-97 checksum (ISO 13616)."""
    compact = compact.upper()
    if _IBAN_LENGTH.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _ibans(text: str) -> list[tuple[int, int]]:
    """Spans of valid IBANs, typed with or without spaces (the longest valid reading of each run)."""
    out = []
    for m in _IBAN.finditer(text):
        s, run = m.start(), m.group()
        ends = [i + 1 for i, ch in enumerate(run) if ch.isalnum() and (i + 1 == len(run) or not run[i + 1].isalnum())]
        for end in reversed(ends):
            if _iban_ok(re.sub(r"[ -]", "", run[:end])):
                out.append((s, s + end))
                break
    return out


def _checked_ids(text: str) -> list[tuple[int, int]]:
    """Spans of national ids whose check character holds: Spanish DNI/NIE, French social security number."""
    out = []
    for m in _DNI.finditer(text):
        n = m.group("n").replace("-", "")
        n = str("XYZ".index(n[0])) + n[1:] if n[0] in "XYZ" else n
        if len(n) == 8 and "TRWAGMYFPDXBNJZSQVHLCKE"[int(n) % 23] == m.group("c"):
            out.append(m.span())
    for m in _INSEE.finditer(text):
        if 97 - int(m.group("n").replace(" ", "")) % 97 == int(m.group("k")):
            out.append(m.span())
    return out


def _credential_like(value: str) -> bool:
    """Does a word look like a password or code: a digit, a symbol inside it, or a case change inside it?"""
    if len(value) < 3 or fold(value) in _COMMON:
        return False
    return bool(re.search(r"\d", value) or re.search(r"\w[^\w\s]+\w", value) or re.search(r"[a-z][A-Z]", value))


def _random_like(tok: str) -> bool:
    """A short token that looks typed at random: 'Tr0ub4dor&3' (every kind of character), '8f3k2m9x' (letters
    and digits interleaved)."""
    if "@" in tok or "://" in tok or tok.startswith(("http", "www.")):
        return False
    digits, letters = sum(c.isdigit() for c in tok), sum(c.isalpha() for c in tok)
    flips = sum(a.isdigit() != b.isdigit() for a, b in zip(tok, tok[1:]) if a.isalnum() and b.isalnum())
    symbols = set(_SYMBOL.findall(tok.strip(".,!?:;")))
    # 'Blink-182' and 'Wi-Fi6' join a word and a number; a password mixes them ('Tr0ub4dor&3', 'Lemon!Tree42').
    if re.search(r"[a-z]", tok) and re.search(r"[A-Z]", tok) and digits and symbols and \
            (symbols - set("-'._") or flips >= 2):
        return True
    return digits >= 3 and letters >= 3 and flips >= 4


def _said_value(m: re.Match) -> tuple[int, int] | None:
    """The value's span of a 'KEYWORD is VALUE' match when it looks like the secret it is called, else None."""
    kw = re.sub(r"\s+", " ", m.group("kw").lower())
    group = "q" if m.group("q") is not None else "v"
    s, e = m.span(group)
    value = m.group(group)
    if group == "v":
        stripped = value.rstrip(".,;:?)")
        e -= len(value) - len(stripped)
        value = stripped
    before = re.findall(r"[\w-]+", m.string[max(0, m.start() - 24):m.start()].lower())
    strong = re.fullmatch(_STRONG, kw, I) is not None
    if not strong and before and before[-1] in _NOT_SECRET_BEFORE:
        return None
    if _DIGITS_ONLY_WORDS.match(kw):
        ok = sum(c.isdigit() for c in value) >= 3
    elif strong and m.group("c") is not None:
        ok = len(value) >= 3 and fold(value) not in _COMMON
    else:
        ok = _credential_like(value)
    if ok and group == "v" and _PHRASE_WORDS.search(kw):
        e += len(re.match(r"[^.!?\n;]*", m.string[e:]).group().rstrip())
    return (s, e) if ok and e > s else None


def _context_spans(text: str) -> list[tuple[str, int, int]]:
    """Ids, passport and account numbers and one-time codes in the sentence that says what they are."""
    found = []
    for clause in _CLAUSE.finditer(text):
        part, base = clause.group(), clause.start()
        for kind, names, shape, least in CONTEXT_PATTERNS:
            if not names.search(part):
                continue
            for m in shape.finditer(part):
                if sum(c.isdigit() for c in m.group()) >= least:
                    found.append((kind, base + m.start(), base + m.end()))
    return found


def secret_spans(text: str, entropy_bits: float = 3.5, min_len: int = 20) -> list[tuple[str, int, int]]:
    """(kind, start, end) of every secret in text, non-overlapping, in text order."""
    if not MAYBE_SECRET.search(text):
        return []
    found: list[tuple[str, int, int]] = []

    def add(kind: str, s: int, e: int) -> None:
        if e > s and not any(s < fe and fs < e for _, fs, fe in found):
            found.append((kind, s, e))

    for kind, rx in SECRET_PATTERNS:
        for m in rx.finditer(text):
            add(kind, *(m.span("v") if "v" in rx.groupindex else m.span()))
    for s, e in _ibans(text):
        add("iban", s, e)
    for s, e in _checked_ids(text):
        add("national-id", s, e)
    for m in CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            add("card-number", *m.span())
    for m in TOKEN.finditer(text):
        tok = m.group()
        if len(tok) >= min_len and re.search(r"[A-Za-z]", tok) and re.search(r"\d", tok) \
                and _entropy(tok) >= entropy_bits:
            add("high-entropy", *m.span())
    for kind, s, e in _context_spans(text):
        add(kind, s, e)
    for m in _SAID.finditer(text):
        if span := _said_value(m):
            add("password", *span)
    for m in _SAID_AFTER.finditer(text):
        v, kw = m.group("v"), m.group("kw")
        strong = re.fullmatch(_STRONG, re.sub(r"\s+", " ", kw.lower()), I) is not None
        if fold(v) not in _COMMON and (_credential_like(v) or strong and v[:1].isalnum()):
            add("password", *m.span("v"))
    for m in _WORDLIKE.finditer(text):
        tok = m.group().rstrip(".,!?:;")
        if len(tok) < min_len and _random_like(tok):  # a longer one is the entropy test's
            add("high-entropy", m.start(), m.start() + len(tok))
    return sorted(found, key=lambda f: f[1])


def _mask(value: str, keep: int = 4) -> str:
    """The first few characters of value (never more than a quarter; none of a short number) and the mark."""
    shown = 0 if re.fullmatch(r"[\d\s-]{1,12}", value) else min(keep, len(value) // 4)
    return value[:shown] + "…" + MASK_MARK


def find_secrets(text: str, entropy_bits: float = 3.5, min_len: int = 20, keep: int = 4) -> list[str]:
    """'kind(masked value)' for every secret in text, e.g. 'api-key(sk-p…[masked])'."""
    return [f"{k}({_mask(text[s:e], keep)})" for k, s, e in secret_spans(text, entropy_bits, min_len)]


def mask_secrets(text: str, entropy_bits: float = 3.5, min_len: int = 20, keep: int = 4) -> str:
    """text with every secret replaced by its first few characters and '…[masked]'."""
    out, pos = [], 0
    for _, s, e in secret_spans(text, entropy_bits, min_len):
        if MASK_MARK in text[s:e]:  # masked already
            continue
        out += [text[pos:s], _mask(text[s:e], keep)]
        pos = e
    return "".join(out) + text[pos:]


def masker(cfg: "FirewallConfig | None" = None) -> Callable[[str], str]:
    """mask_secrets with a firewall config's thresholds, for whoever shows a person's words."""
    cfg = cfg or FirewallConfig()
    return functools.partial(mask_secrets, entropy_bits=cfg.entropy_bits, min_len=cfg.entropy_min_len,
                             keep=cfg.mask_keep)


def _stem(tok: str) -> str:
    return tok[:-1] if len(tok) > 3 and tok.endswith("s") and not tok.endswith("ss") else tok


def words(text: str) -> list[str]:
    """Folded (tasks/text.py), lightly stemmed word tokens of text."""
    return [_stem(t) for t in word_tokens(text)]


class Source:
    """One exchange as the firewall sees it; each part is computed once, and only when asked for."""

    def __init__(self, user: str, assistant: str, injection: bool, maybe_secret: bool):
        self.user, self.assistant, self.injection, self.maybe_secret = user, assistant, injection, maybe_secret
        self._secrets: list[str] | None = None

    @functools.cached_property
    def user_words(self) -> set[str]:
        ws = set(words(self.user))
        return ws | {ALIASES[w] for w in ws if w in ALIASES}

    @functools.cached_property
    def assistant_words(self) -> set[str]:
        return set(words(self.assistant))

    @functools.cached_property
    def sentences(self) -> list[tuple[int, int, set[str], bool]]:
        """(start, end, words, addressed to the assistant) of each sentence of the user message."""
        out = []
        for m in SENTENCE.finditer(self.user):
            sent = m.group()
            addressed = bool(SECOND_PERSON.search(sent)) and not FIRST_PERSON.search(sent)
            out.append((m.start(), m.end(), set(words(sent)), addressed))
        return out

    def secrets(self, judge: "_Judge") -> list[str]:
        """'kind(masked value)' of every secret anywhere in the user message (computed once)."""
        if self._secrets is None:
            self._secrets = judge.secrets(self.user) if self.maybe_secret else []
        return self._secrets

    def screened(self, judge: "_Judge") -> bool:
        """Does the message as a whole hold a secret or an injection?"""
        return bool(self.secrets(judge)) or self.injected(judge) is not None

    def injected(self, judge: "_Judge") -> str | None:
        """The words of the user message that try to instruct the assistant, or None."""
        if not self.injection:
            return None
        m = judge.injection.search(self.user)
        return judge.mask(m.group().strip()) if m else "an instruction to the assistant"


# The user says 'mom', a pattern's answer says 'mother': both name the same claim (tasks/vocabulary.py).
ALIASES = WORD_ALIASES
_NAME_OR_NUMBER = re.compile(r"\b[A-ZÀ-Þ][\w'’-]*|\b\d[\d.,:/-]*")
_INTERJECTIONS = frozenset("sure okay ok well great also note here so however actually of course indeed".split())
NUMBER_WORDS = dict(zip("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                        "fifteen sixteen seventeen eighteen nineteen twenty".split(), map(str, range(21))))
_NUMBERS_SAID = {v: k for k, v in NUMBER_WORDS.items()}


class _Judge:
    """The firewall's checks for one candidate, with the config's compiled patterns."""

    def __init__(self, cfg: FirewallConfig):
        self.cfg = cfg
        self.injection = re.compile("|".join(f"(?:{p})" for p in cfg.injection_patterns), I)
        self.assistant = re.compile(r"\b(?:" + "|".join(map(re.escape, cfg.assistant_words)) + r")\b", I)
        self.stop = set(cfg.stopwords) | {_stem(w) for w in cfg.stopwords}

    def secrets(self, text: str) -> list[str]:
        return find_secrets(text, self.cfg.entropy_bits, self.cfg.entropy_min_len, self.cfg.mask_keep)

    def mask(self, text: str) -> str:
        return mask_secrets(text, self.cfg.entropy_bits, self.cfg.entropy_min_len, self.cfg.mask_keep)

    def invented(self, answer: str, srcs: list[Source]) -> list[str]:
        """Names (capitalised words, function words aside) and numbers of answer found in no source message."""
        said = set().union(*(s.user_words for s in srcs))
        out = []
        for m in _NAME_OR_NUMBER.finditer(answer):
            for w in words(m.group()):
                if w in self.stop or w in _INTERJECTIONS or w in said or NUMBER_WORDS.get(w, w) in said or \
                        _NUMBERS_SAID.get(w, w) in said:
                    continue
                out.append(m.group())
                break
        return list(dict.fromkeys(out))

    @staticmethod
    def addressed_only(evidence: set[str], srcs: list[Source]) -> bool:
        """True when every source sentence holding evidence speaks to the assistant (and one does)."""
        seen = False
        for src in srcs:
            for _, _, ws, addressed in src.sentences:
                if ws & evidence:
                    if not addressed:
                        return False
                    seen = True
        return seen

    def __call__(self, row: dict, srcs: list[Source]) -> tuple[str | None, str, float | None, list[str]]:
        """(reason or None, detail, grounding, evidence) for one candidate pair."""
        q, a, cfg = row["question"], row["answer"], self.cfg
        if not re.search(r"\w", q) or not re.search(r"\w", a):
            return "empty", "the question or the answer has no words", None, []
        if hits := self.secrets(f"{q}\n{a}"):
            return "secret", f"secret in the pair: {', '.join(hits)}", None, []
        # Each source message as a whole: a secret anywhere in it, whichever sentence the pair came from.
        if hits := [h for src in srcs for h in src.secrets(self)]:
            return "secret", f"secret in the source message: {', '.join(hits)}", None, []
        if said := next((w for src in srcs if (w := src.injected(self))), None):
            return "injection", f"the source message tries to instruct the assistant: {said!r}", None, []
        if m := self.injection.search(f"{q}\n{a}"):
            return "injection", f"the pair tries to instruct the assistant: {self.mask(m.group().strip())!r}", None, []
        claims = list(dict.fromkeys(w for w in words(a) if w not in self.stop))
        evidence = [c for c in claims if any(c in s.user_words for s in srcs)]
        grounding = len(evidence) / len(claims) if claims else 0.0
        if len(a) > cfg.max_answer_chars:
            return "too-long", f"answer is {len(a)} chars, limit {cfg.max_answer_chars}", grounding, evidence
        if m := self.assistant.search(f"{q}\n{a}"):
            return "about-assistant", f"the pair names the assistant ({m.group()!r})", grounding, evidence
        if evidence and self.addressed_only(set(evidence), srcs):
            return ("about-assistant", "every source sentence with its evidence is addressed to the assistant "
                    "(second person, no first person)", grounding, evidence)
        if row["method"] != "template" and grounding < 1.0:
            # Template values come from the user's own span; a model may have read the assistant's words.
            only = [c for c in claims if c not in evidence and any(c in s.assistant_words for s in srcs)]
            if only:
                return "assistant-only", f"claims only the assistant made: {', '.join(only)}", grounding, evidence
        if row["method"] != "template" and (invented := self.invented(a, srcs)):
            # A model may make up a name or a number ('Your dog is called Bella.'); each must be the person's.
            return ("ungrounded", f"names or numbers the person never said: {', '.join(invented)}", grounding,
                    evidence)
        if grounding < cfg.min_grounding:
            return ("ungrounded", f"{len(evidence)} of {len(claims)} claims found in the source, need "
                    f"{cfg.min_grounding:.0%}" + (f"; missing: {', '.join(c for c in claims if c not in evidence)}"
                                                  if claims else ""), grounding, evidence)
        return None, "", grounding, evidence


def screen_message(text: str, cfg: FirewallConfig | None = None) -> tuple[str, str] | None:
    """(reason, masked detail) when a user message as a whole must give no pair (a secret or an injection
    anywhere in it), else None: the test each candidate's source messages get in apply_firewall."""
    judge = _Judge(cfg or FirewallConfig())
    src = Source(text, "", judge.injection.search(text) is not None, MAYBE_SECRET.search(text) is not None)
    if hits := src.secrets(judge):
        return "secret", f"secret in the source message: {', '.join(hits)}"
    if said := src.injected(judge):
        return "injection", f"the source message tries to instruct the assistant: {said!r}"
    return None


def _clean_sources(row: dict, sources: dict[str, Source], judge: _Judge, scored: dict) -> dict:
    """The candidate citing only its sources that hold no secret and no injection, when it has any (the person
    also said it in a clean message); else as it is, to be rejected for what its messages hold. A pair that
    loses the exchange it was found in names its earliest clean source instead, without a span."""
    ids = list(dict.fromkeys([row["exchange_id"], *row["source_exchange_ids"]]))
    clean = [e for e in ids if not sources[e].screened(judge)]
    if len(clean) == len(ids) or not any(e in scored for e in clean):
        return row
    first = row["exchange_id"] if row["exchange_id"] in clean else next(e for e in clean if e in scored)
    moved = first != row["exchange_id"]
    return dict(row, exchange_id=first, source_exchange_ids=[e for e in row["source_exchange_ids"] if e in clean],
                span_start=None if moved else row["span_start"], span_end=None if moved else row["span_end"])


def apply_firewall(candidates: pa.Table, exchanges: pa.Table, scored: pa.Table,
                   cfg: FirewallConfig) -> tuple[pa.Table, pa.Table]:
    """(pairs, rejections) without run_id: every candidate lands in exactly one of them."""
    rows = candidates.to_pylist()
    wanted = pa.array({e for r in rows for e in [r["exchange_id"], *r["source_exchange_ids"]]}, pa.string())
    judge = _Judge(cfg)
    ex = exchanges.filter(pc.is_in(exchanges.column("exchange_id"), wanted))
    user = ex.column("user_text")
    # Column-wise first (RE2): only flagged messages are scanned for secrets in Python.
    injection = pc.match_substring_regex(user, judge.injection.pattern, ignore_case=True).to_pylist()
    maybe = pc.match_substring_regex(user, MAYBE_SECRET.pattern, ignore_case=True).to_pylist()
    sources = {i: Source(u, a, inj, sec) for i, u, a, inj, sec in zip(
        ex.column("exchange_id").to_pylist(), user.to_pylist(), ex.column("assistant_text").to_pylist(), injection,
        maybe)}
    sc = scored.filter(pc.is_in(scored.column("exchange_id"), wanted))
    combined = dict(zip(sc.column("exchange_id").to_pylist(), sc.column("combined").to_pylist()))
    missing = sorted({r["exchange_id"] for r in rows} - set(combined) | (set(wanted.to_pylist()) - set(sources)))
    if missing:
        raise ValueError(f"{len(missing)} exchanges cited by candidates are missing from exchanges or scored, e.g. "
                         f"{missing[:3]}; pass the tables the candidates were extracted from")
    pairs: list[dict] = []
    rejected: dict[str, dict] = {}
    for r in rows:
        r = _clean_sources(r, sources, judge, combined)
        srcs = [sources[e] for e in dict.fromkeys([r["exchange_id"], *r["source_exchange_ids"]])]
        reason, detail, grounding, evidence = judge(r, srcs)
        if reason is None:
            pairs.append(dict(r, grounding=grounding, evidence=evidence, score=combined[r["exchange_id"]] * grounding))
        else:
            rejected[r["pair_id"]] = {
                "pair_id": r["pair_id"], "exchange_id": r["exchange_id"], "method": r["method"],
                "fact_type": r["fact_type"], "question": judge.mask(r["question"]), "answer": judge.mask(r["answer"]),
                "reason": reason, "detail": judge.mask(detail), "grounding": grounding}
    successor = {r["pair_id"]: r["superseded_by"] for r in rows}
    for p in pairs:
        # A pair replaced only by rejected pairs (an injected 'my name is ...') is current again.
        nxt = p["superseded_by"]
        while nxt is not None and nxt in rejected:
            nxt = successor.get(nxt)
        p["superseded_by"] = nxt
    return (pa.Table.from_pylist(pairs, schema=PAIRS_SCHEMA),
            pa.Table.from_pylist(list(rejected.values()), schema=REJECTIONS_SCHEMA))
