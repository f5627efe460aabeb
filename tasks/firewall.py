"""Stage 3: the hallucination firewall — accept a candidate pair only when the user's own words carry it.

Every source message is screened as a whole first, whatever template or model read it and whichever of its
sentences a pair came from: a message holding a secret — by its shape (keys, tokens, IBANs, card numbers,
national ids, private keys, random-looking strings) or by what the person calls it ("my pin is …", "my api
token is …", "pw: …", "… is my wifi password") — or an injection (role lines, chat-template tokens,
instruction overrides, statements that tell the assistant how to behave from now on) gives no pair at all.

Then each candidate, in order (the first that fails is the reason): forgotten (a forget request took the pair
or its words back), empty, secret, injection, too-long,
about-assistant, assistant-only, ungrounded. Grounding is the share of the answer's claims (content words,
names, numbers; case- and accent-folded) found in the source user messages; a pair a model wrote must also
take every name and number of its answer from them. Secrets are masked in everything written to
`rejections`, and `mask_secrets` masks every secret span of any text for whoever shows it (lineage,
artifacts).
"""

from __future__ import annotations

import functools
import re
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from storage.schemas import without_run_id
from tasks.injections import INJECTION_PATTERNS
from tasks.secrets import MASK_MARK, MAYBE_SECRET, find_secrets, mask_secrets, secret_spans
from tasks.text import NUMBER_WORDS as NUMBERS, word_tokens
from tasks.vocabulary import WORD_ALIASES

I = re.IGNORECASE
__all__ = ["MASK_MARK", "FirewallConfig", "Source", "apply_firewall", "find_secrets", "mask_secrets", "masker",
           "screen_message", "secret_spans", "words"]

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
    injection_patterns: tuple[str, ...] = Field(INJECTION_PATTERNS, description=(
        "Regexes (case-insensitive, RE2-compatible) that mark a prompt injection in a source message or the pair."))
    assistant_words: tuple[str, ...] = Field((
        "assistant", "chatbot", "language model", "ai model", "the ai", "the bot", "as an ai"),
        description="A question or answer naming one of these is about the assistant, not the user.")




PAIRS_SCHEMA, REJECTIONS_SCHEMA = without_run_id("pairs"), without_run_id("rejections")


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
NUMBER_WORDS = {w: str(n) for w, n in NUMBERS.items() if n <= 20}  # 'three' stands for '3' said (zero to twenty)
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
                   cfg: FirewallConfig, forgotten=None) -> tuple[pa.Table, pa.Table]:
    """(pairs, rejections) without run_id: every candidate lands in exactly one of them. A candidate that is a
    forgotten pair, or was found in a forgotten exchange (`forgotten`: storage.forget.Forgotten), is rejected
    with reason `forgotten`."""
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
        request = forgotten.covers(r["pair_id"], [r["exchange_id"], *r["source_exchange_ids"]]) if forgotten else None
        if request is not None:
            reason, detail, grounding, evidence = "forgotten", f"taken back by forget request {request}", None, []
        else:
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
