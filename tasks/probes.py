"""Probe sets and how an answer is scored against one: correct, wrong or abstain (DESIGN.md, "Inputs").

Matching folds both sides the same way (tasks/text.py: NFKD, accents dropped, casefolded, apostrophes
dropped, other punctuation → spaces, "2.5"/"1,000" kept as one number) and then looks for the keyword as
whole words. Words may carry a plain English ending (-s, -es, -ed, -d, -ing, -y: "rain" matches
"raining"), numbers may not ("5" never matches "15", "2025" or "5.5"). Pure substring matching,
as DESIGN.md literally says, would let "ten" match "often", "cow" match "Moscow" and "pen" match
"happen", which turns the gate's score into noise.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from storage.errors import InputError
# The one folding (tasks/text.py), in the form keywords are matched in: 'Tromso' matches 'Tromsø'.
from tasks.text import match_form as fold

KINDS = ("recall", "generalization", "control", "guard")
OUTCOMES = ("correct", "wrong", "abstain")
PROBE_KEYS = {"id", "kind", "question", "expected", "forbidden"}
BENCHMARK_KEYS = {"id", "category", "question", "expected", "forbidden"}
MAX_REPORTED_ERRORS = 20



class Probe(BaseModel):
    """One question an answer is scored against: correct when it holds an expected keyword and no forbidden one."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    kind: str = Field("control", description="recall | generalization | control | guard (benchmark items: control).")
    question: str
    expected: tuple[str, ...] = Field((), description="Any one of these keywords makes the answer correct.")
    forbidden: tuple[str, ...] = Field((), description="Any one of these keywords makes the answer wrong.")
    category: str | None = Field(None, description="The benchmark category (arithmetic, geography, …); None "
                                 "for probe files.")


_SUFFIX = r"(?:s|es|ed|d|ing|y)?"
# On folded text (lowercase ASCII, apostrophes dropped, punctuation → single spaces).
_ABSTAIN = re.compile(
    r"\b(?:"
    r"i (?:dont|do not|really dont) know"
    r"|i(?:m| am) (?:not sure|unsure|not certain|not aware)"
    r"|i (?:dont|do not|cant|cannot|can not) (?:have|access|see) (?:any |enough )?(?:personal |specific )?"
    r"(?:information|info|data|details|knowledge|access|record|memory|memories|the (?:capability|ability))"
    r"|i (?:dont|do not) have access"
    r"|i have no (?:information|knowledge|record|memory|way of knowing|access)"
    r"|i (?:cant|cannot|can not|dont|do not) (?:recall|remember)"
    r"|you (?:havent|have not|didnt|did not) (?:told|tell|mentioned|mention|shared|share|said|say)"
    r"|i(?:m| am) (?:unable|not able|not equipped) to (?:know|recall|remember|access|determine|answer|provide)"
    r"|(?:no|without) (?:more |further )?(?:information|context) (?:about|on|regarding)"
    r")\b"
)


@lru_cache(maxsize=4096)  # the same keywords are matched against every answer of every evaluation
def _pattern(keyword: str) -> re.Pattern | None:
    folded = fold(keyword)
    if not folded:
        return None
    if folded[-1].isdigit():  # "10" matches "10am" and "10 00" but never "100" or "2025"
        return re.compile(rf"(?<![a-z0-9]){re.escape(folded)}(?![0-9])")
    return re.compile(rf"(?<![a-z0-9]){re.escape(folded)}{_SUFFIX}(?![a-z0-9])")


def find_keyword(answer: str, keywords: list[str]) -> str | None:
    """The first keyword found in the answer as whole words (folded), or None."""
    text = fold(answer)
    for keyword in keywords:
        pattern = _pattern(keyword)
        if pattern is not None and pattern.search(text):
            return keyword
    return None


def is_abstention(answer: str) -> bool:
    """True when the answer declines ("I don't know", "you haven't told me", an empty answer…)."""
    text = fold(answer)
    return not text or _ABSTAIN.search(text) is not None


def score_answer(answer: str, expected: list[str], forbidden: list[str]) -> str:
    """'wrong' if a forbidden keyword appears; else 'correct' if an expected one does (or none is expected
    and the answer does not decline); else 'abstain' if it declines; else 'wrong'.

    A hedge that still names the fact ("I'm not sure, but it's Rex") counts as correct: the model
    knows it. An answer that declines and names no expected keyword is an abstention, never correct.
    """
    if find_keyword(answer, forbidden) is not None:
        return "wrong"
    if expected and find_keyword(answer, expected) is not None:
        return "correct"
    if is_abstention(answer):
        return "abstain"
    return "wrong" if expected else "correct"


def outcome_settled(probe: Probe, text: str) -> bool:
    """Whether more words cannot change how `text` scores (score_answer): a forbidden keyword is in it (wrong
    whatever follows), or an expected one is and the probe forbids nothing (correct whatever follows)."""
    if probe.forbidden and find_keyword(text, list(probe.forbidden)) is not None:
        return True
    return not probe.forbidden and bool(probe.expected) and find_keyword(text, list(probe.expected)) is not None


def score_probe(probe: Probe, answer: str) -> dict:
    """One probe's result: id, kind (or category), question, answer, outcome and the keywords that decided it."""
    expected, forbidden = list(probe.expected), list(probe.forbidden)
    return {
        "id": probe.id,
        "kind": probe.kind,  # benchmark items test general ability, like control probes
        "category": probe.category,
        "question": probe.question,
        "answer": answer,
        "outcome": score_answer(answer, expected, forbidden),
        "matched": find_keyword(answer, expected),
        "forbidden_hit": find_keyword(answer, forbidden),
    }


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None  # None, not 0: "no probes of this kind" is not "all failed"


def leaked(result: dict) -> bool:
    """Whether a guard probe's answer failed it (shows forbidden text)."""
    # A guard probe passes when no forbidden text appears, whatever else the answer says (an expected
    # keyword it misses does not make it leak); results without the keyword fall back to the outcome.
    if "forbidden_hit" in result:
        return result["forbidden_hit"] is not None
    return result["outcome"] == "wrong"


def summarize(results: list[dict]) -> dict:
    """Recall, generalization, precision (correct ÷ answered, over recall + generalization probes),
    guard pass rate (no forbidden text), control accuracy and per-kind outcome counts; a rate is None
    when it has no probes."""
    counts: dict[str, Counter] = {kind: Counter() for kind in KINDS}
    for r in results:
        counts.setdefault(r["kind"], Counter())[r["outcome"]] += 1
    total = {kind: sum(c.values()) for kind, c in counts.items()}
    memory = counts["recall"] + counts["generalization"]
    guard_passed = sum(1 for r in results if r["kind"] == "guard" and not leaked(r))
    return {
        "probes": len(results),
        "recall": _ratio(counts["recall"]["correct"], total["recall"]),
        "generalization": _ratio(counts["generalization"]["correct"], total["generalization"]),
        # Abstentions are left out: a model that says "I don't know" is not claiming anything false.
        "precision": _ratio(memory["correct"], memory["correct"] + memory["wrong"]),
        "guard_pass_rate": _ratio(guard_passed, total["guard"]),
        "guard_passed": guard_passed,
        "control_accuracy": _ratio(counts["control"]["correct"], total["control"]),
        "abstain_rate": _ratio(sum(c["abstain"] for c in counts.values()), len(results)),
        "counts": {kind: {o: c[o] for o in OUTCOMES} | {"total": total[kind]} for kind, c in counts.items()},
    }


def _check_record(record: object, keys: set[str], kinds: tuple[str, ...] | None) -> list[str]:
    if not isinstance(record, dict):
        return [f"expected a JSON object, got {type(record).__name__}"]
    problems = []
    missing, extra = keys - record.keys(), record.keys() - keys
    if missing:
        problems.append(f"missing field(s) {sorted(missing)}")
    if extra:
        problems.append(f"unknown field(s) {sorted(extra)} (allowed: {sorted(keys)})")
    for field in ("id", "question", "category"):
        if field in keys and field in record and not (isinstance(record[field], str) and record[field].strip()):
            problems.append(f"'{field}' must be a non-empty string, got {record[field]!r}")
    if kinds is not None and "kind" in record and record["kind"] not in kinds:
        problems.append(f"'kind' is {record['kind']!r}; must be one of {list(kinds)}")
    for field in ("expected", "forbidden"):
        value = record.get(field, [])
        if not (isinstance(value, list) and all(isinstance(k, str) and fold(k) for k in value)):
            problems.append(f"'{field}' must be a list of non-empty keywords, got {value!r}")
    if not problems and not record["expected"] and not record["forbidden"]:
        problems.append("'expected' and 'forbidden' are both empty: every answer would pass")
    return problems


def _load(path: Path, keys: set[str], kinds: tuple[str, ...] | None) -> list[Probe]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the probe file ({exc})") from None
    records, errors, seen = [], [], {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue  # blank lines (a trailing newline, spacing) carry nothing
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{path}:{n}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        problems = _check_record(record, keys, kinds)
        if not problems and record["id"] in seen:
            problems.append(f"duplicate id {record['id']!r} (first on line {seen[record['id']]})")
        if problems:
            errors.append(f"{path}:{n}: " + "; ".join(problems))  # one entry per bad line
        else:
            seen[record["id"]] = n
            records.append(Probe.model_validate(record))
    if not records and not errors:
        errors.append(f"{path}: no probes in the file; one JSON object per line is expected")
    if len(errors) == 1:
        raise InputError(errors[0])
    if errors:  # one line, every problem named: the CLI prints errors as a single line
        shown = errors[:MAX_REPORTED_ERRORS]
        more = f"; … and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise InputError(f"{len(errors)} problem(s) in {path}: " + "; ".join(shown) + more)
    return records


def load_probes(path: Path) -> list[Probe]:
    """Probes from a JSONL file ({id, kind, question, expected, forbidden} per line); raises listing every bad line."""
    return _load(path, PROBE_KEYS, KINDS)


def load_benchmark(path: Path) -> list[Probe]:
    """Benchmark items ({id, category, question, expected, forbidden} per line); raises listing every bad line."""
    return _load(path, BENCHMARK_KEYS, None)
