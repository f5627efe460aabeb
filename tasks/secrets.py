"""Secrets in a person's words: by their shape (keys, tokens, IBANs, card numbers, national ids, private keys,
random-looking strings) or by what the person calls them ("my pin is …", "pw: …", "… is my wifi password").

`secret_spans` finds them, `find_secrets` names them masked and `mask_secrets` masks every span of any text for
whoever shows it. The firewall (tasks/firewall.py) rejects every message that holds one.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from tasks.text import fold

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
