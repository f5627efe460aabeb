"""Stage 3: the hallucination firewall — accept a candidate pair only when the user's own words carry it.

Checks, in order (the first that fails is the reason): empty, secret, injection, too-long,
about-assistant, assistant-only, ungrounded. Grounding is the share of the answer's claims (content
words, names, numbers; case- and accent-folded) found in the source user messages. Secrets are
masked in everything written to `rejections`.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from storage.schemas import without_run_id
from tasks.text import word_tokens
from tasks.vocabulary import WORD_ALIASES

I = re.IGNORECASE
SECRET_PATTERNS: list[tuple[str, re.Pattern]] = [  # kind, pattern (group 'v' = the part to mask, else all)
    ("private-key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*"
                               r"PRIVATE KEY-----|\Z)")),
    ("api-key", re.compile(r"\bsk-(?:proj-|live-|test-|ant-)?[A-Za-z0-9_-]{16,}")),
    ("aws-key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("google-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("password", re.compile(r"\b(?:password|passwd|passphrase|passcode|pwd|pw|pin)\b(?: for [\w .@-]{1,30}?)?"
                            r"\s*(?:is|was|:|=)\s*[\"'“]?(?P<v>[^\s\"'”]{3,})", I)),
]
CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
TOKEN = re.compile(r"[A-Za-z0-9+/=_\-.~]{20,}")
# Cheap test first: most texts hold none of these, so the full patterns never run on them.
MAYBE_SECRET = re.compile(r"sk-|AKIA|ASIA|gh[pousr]_|github_pat_|xox|eyJ|AIza|PRIVATE KEY|pass|pwd|\bpw\b|\bpin\b|"
                          r"(?:\d[ -]?){12}|[A-Za-z0-9+/=_\-.~]{20}", I)
FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|mine|myself|we|our|ours|us)\b", I)
SECOND_PERSON = re.compile(r"\b(?:you|your|you're|yours|yourself|u|ur)\b", I)
SENTENCE = re.compile(r"[^.!?\n]+[.!?\n]*")


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
    injection_patterns: tuple[str, ...] = Field((
        r"\b(?:ignore|disregard|forget|override)\b[^.!?\n]{0,30}\b(?:previous|prior|above|earlier|all|any|your|the)\b"
        r"[^.!?\n]{0,20}\b(?:instructions?|prompts?|rules|directions|guidelines|context)\b",
        r"\byou are now\b", r"\bsystem prompt\b", r"\bnew instructions?\s*:", r"\bjailbreak\b", r"\bdeveloper mode\b",
        r"\bfrom now on,? (?:you|your|always|never|tell|respond|answer|say|reply)\b", r"<\|?(?:system|im_start)\|?>"),
        description="Regexes (case-insensitive) that mark a prompt injection in the source or the pair.")
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


def secret_spans(text: str, entropy_bits: float = 3.5, min_len: int = 20) -> list[tuple[str, int, int]]:
    """(kind, start, end) of every secret in text, non-overlapping, in text order."""
    if not MAYBE_SECRET.search(text):
        return []
    found: list[tuple[str, int, int]] = []
    taken = lambda s, e: any(s < fe and fs < e for _, fs, fe in found)  # noqa: E731
    for kind, rx in SECRET_PATTERNS:
        for m in rx.finditer(text):
            s, e = m.span("v") if "v" in rx.groupindex else m.span()
            if not taken(s, e):
                found.append((kind, s, e))
    for m in CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _luhn(digits) and not taken(*m.span()):
            found.append(("card-number", *m.span()))
    for m in TOKEN.finditer(text):
        tok = m.group()
        if len(tok) >= min_len and re.search(r"[A-Za-z]", tok) and re.search(r"\d", tok) \
                and _entropy(tok) >= entropy_bits and not taken(*m.span()):
            found.append(("high-entropy", *m.span()))
    return sorted(found, key=lambda f: f[1])


MASK_MARK = "[masked]"  # ends every masked secret; a span holding it is masked, no secret any more


def _mask(value: str, keep: int = 4) -> str:
    return value[:min(keep, len(value) // 4)] + "…" + MASK_MARK


def find_secrets(text: str, entropy_bits: float = 3.5, min_len: int = 20, keep: int = 4) -> list[str]:
    """'kind(masked value)' for every secret in text, e.g. 'api-key(sk-p…[masked])'."""
    return [f"{k}({_mask(text[s:e], keep)})" for k, s, e in secret_spans(text, entropy_bits, min_len)]


def mask_secrets(text: str, entropy_bits: float = 3.5, min_len: int = 20, keep: int = 4) -> str:
    """text with every secret replaced by its first few characters and '…[masked]'."""
    out, pos = [], 0
    for _, s, e in secret_spans(text, entropy_bits, min_len):
        out += [text[pos:s], _mask(text[s:e], keep)]
        pos = e
    return "".join(out) + text[pos:]


def _stem(tok: str) -> str:
    return tok[:-1] if len(tok) > 3 and tok.endswith("s") and not tok.endswith("ss") else tok


def words(text: str) -> list[str]:
    """Folded (tasks/text.py), lightly stemmed word tokens of text."""
    return [_stem(t) for t in word_tokens(text)]


class Source:
    """One exchange as the firewall sees it; each part is computed once, and only when asked for."""

    def __init__(self, user: str, assistant: str, injection: bool, maybe_secret: bool):
        self.user, self.assistant, self.injection, self.maybe_secret = user, assistant, injection, maybe_secret

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

    def secret_text(self, start: int | None, judge: "_Judge") -> list[str]:
        """Secrets in the sentence around `start`, or in the whole message when start is None."""
        if not self.maybe_secret:
            return []
        if start is not None and start >= 0:
            for s, e, _, _ in self.sentences:
                if s <= start < e:
                    return judge.secrets(self.user[s:e])
        return judge.secrets(self.user)


# The user says 'mom', a pattern's answer says 'mother': both name the same claim (tasks/vocabulary.py).
ALIASES = WORD_ALIASES


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
        # The sentence around the span in the first source; every other source as a whole.
        if hits := [h for i, src in enumerate(srcs) for h in src.secret_text(row["span_start"] if i == 0 else None, self)]:
            return "secret", f"secret in the source message: {', '.join(hits)}", None, []
        if any(s.injection for s in srcs) or self.injection.search(f"{q}\n{a}"):
            return "injection", "the source message or the pair tries to instruct the assistant", None, []
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
        if grounding < cfg.min_grounding:
            return ("ungrounded", f"{len(evidence)} of {len(claims)} claims found in the source, need "
                    f"{cfg.min_grounding:.0%}" + (f"; missing: {', '.join(c for c in claims if c not in evidence)}"
                                                  if claims else ""), grounding, evidence)
        return None, "", grounding, evidence


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
