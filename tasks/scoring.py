"""Stage 1: score every exchange's user message for novelty, importance and utility (column-wise).

The rules are the source paper's heuristics plus a `personal` bonus, so that a short message that
states a fact about the user ("I live in Oslo") is kept while "hey" and "thanks" are not.

Scores are computed in integer hundredths ("points") and divided once at the end, so the column-wise
implementation (numpy over the text column's bytes, RE2 searches of whole columns through
pyarrow.compute) and the per-row Python one give bit-identical floats, and `combined == 0.35` is an
exact comparison. Every marker list is a tuple of regex fragments valid in both RE2 and Python `re`: matched case-insensitively, and a fragment that starts (ends) with a letter or digit
must start (end) at an ASCII word boundary, so "i like" does not fire on "i likely".
"""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from storage.schemas import without_run_id
from tasks.vocabulary import scoring_markers

# ASCII whitespace spelled out: RE2's \s and Python's \s disagree on Unicode spaces.
WORD_RE = r"[^ \t\n\r\f\v]+"
SPACE_RE = r"[ \t\n\r\f\v]+"


class ScoringConfig(BaseModel):
    """Weights, marker lists and the retain threshold of stage 1 (all scores in [0, 1])."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    novelty_baseline: float = Field(0.3, description="Novelty every message starts with.")
    long_words: int = Field(20, ge=0, description="A user message with more than this many words is 'long'.")
    long_bonus: float = Field(0.2, description="Novelty added for a long message (rule novelty:long).")
    question_bonus: float = Field(0.1, description="Novelty added when the message has a '?' (novelty:question).")
    marker_bonus: float = Field(0.05, description="Novelty added per distinct domain marker word found, "
                                "compared lower-cased ('bug' and 'bugs' are two) (novelty:marker).")
    marker_cap: float = Field(0.2, description="Most novelty the domain markers can add together.")
    domain_markers: tuple[str, ...] = Field(
        ("errors?", "bugs?", "fix(?:ed|es)?", "implement\\w*", "functions?", "class(?:es)?", "databases?",
         "api", "config\\w*", "version", "because", "reason", "explain", "specifically", "python", "linux",
         "server", "deploy\\w*", "docker", "algorithm", "compile\\w*", "query", "model"),
        description="Domain-specific marker fragments (technical or specific content).")
    importance_baseline: float = Field(0.3, description="Importance every message starts with.")
    correction_bonus: float = Field(0.15, description="Importance added for a correction (importance:correction).")
    correction_markers: tuple[str, ...] = Field(
        ("actually", "no,", "i meant", "correction", "not \\w+ but", "that's wrong", "that is wrong",
         "i was wrong", "scratch that", "to be clear", "wrong"),
        description="Fragments that mark the user correcting something.")
    preference_bonus: float = Field(0.2, description="Importance added for a stated preference (importance:preference).")
    preference_markers: tuple[str, ...] = Field(
        scoring_markers(preference=True),
        description="Fragments that mark a stated preference or dislike (default: the preference fact types' "
                    "markers in tasks/vocabulary.py).")
    personal_bonus: float = Field(0.2, description="Importance added for a personal fact (importance:personal).")
    personal_markers: tuple[str, ...] = Field(
        scoring_markers(preference=False),
        description="Fragments that mark a personal fact about the user (name, home, family, pets, ...); "
                    "default: every other fact type's markers in tasks/vocabulary.py, so a message a pattern "
                    "extracts a fact from is retained.")
    emphatic_bonus: float = Field(0.05, description="Importance added per kind of emphasis found (importance:emphatic).")
    emphatic_max_kinds: int = Field(2, ge=0, le=3, description="Most emphasis kinds counted: '!', an emphatic word, an ALL-CAPS word.")
    emphatic_words: tuple[str, ...] = Field(
        ("really", "very", "always", "never", "important", "absolutely", "extremely", "seriously", "definitely",
         "must"),
        description="Fragments that count as emphatic language.")
    caps_min_letters: int = Field(4, ge=1, description="An ALL-CAPS word has at least this many A-Z letters (so 'OK', 'AI' do not count).")
    utility_baseline: float = Field(0.3, description="Utility every message starts with.")
    procedural_bonus: float = Field(0.2, description="Utility added for procedural knowledge (utility:procedural).")
    procedural_markers: tuple[str, ...] = Field(
        ("how to", "how do i", "how can i", "steps?", "first\\b.*\\bthen", "recipe", "install\\w*", "set up",
         "setup", "configure", "tutorial", "instructions", "guide"),
        description="Fragments that mark procedural knowledge.")
    project_bonus: float = Field(0.15, description="Utility added for a reference to the user's project (utility:project).")
    project_markers: tuple[str, ...] = Field(
        ("my project", "our project", "repo", "repository", "working on", "my app", "our app", "my code",
         "the codebase", "we're building", "my setup", "my workflow", "my thesis", "my startup"),
        description="Fragments that mark a reference to ongoing work.")
    trivial_words: int = Field(5, ge=1, description="A message with fewer words than this is trivial (utility:trivial).")
    trivial_penalty: float = Field(0.1, description="Utility removed for a trivial message.")
    retain_threshold: float = Field(
        0.33,
        description="Keep an exchange when combined >= this. 0.33 needs about one signal beyond the baseline: "
                    "plain chit-chat of any length (0.30) and 'hey'/'thanks' (0.27) are dropped, a short fact "
                    "('I live in Oslo': 0.3, 0.5, 0.2 -> 0.333) is kept.")

    @field_validator("novelty_baseline", "long_bonus", "question_bonus", "marker_bonus", "marker_cap",
                     "importance_baseline", "correction_bonus", "preference_bonus", "personal_bonus",
                     "emphatic_bonus", "utility_baseline", "procedural_bonus", "project_bonus", "trivial_penalty")
    @classmethod
    def _hundredths(cls, v: float) -> float:
        if abs(v * 100 - round(v * 100)) > 1e-9:
            raise ValueError(f"{v} is not a multiple of 0.01; scores are computed in hundredths")
        return v


def _pts(x: float) -> int:
    return round(x * 100)


def _fragment(f: str) -> str:
    lead = "" if re.match(r"[^\w(\[\\]", f) else r"\b"
    # A fragment ending in punctuation ("no,") has no boundary after it; one ending in a word
    # pattern ("errors?", "\\d+", "[a-z]+") has.
    tail = "" if re.search(r"[^\w?*+)\]}]$", f) else r"\b"
    return f"{lead}{f}{tail}"


def marker_regex(fragments: tuple[str, ...]) -> str:
    """One case-insensitive regex (RE2 and Python syntax) matching any of the fragments."""
    return "(?i)(?:" + "|".join(_fragment(f) for f in fragments) + ")"


def at_least_words_regex(k: int) -> str:
    """A regex that matches a text holding at least k words (runs of non-whitespace)."""
    # Cheaper than counting: RE2 answers it in one pass without building a list of words.
    return WORD_RE + "(?:" + SPACE_RE + WORD_RE + "){%d}" % max(k - 1, 0)


def _caps_regex(cfg: ScoringConfig) -> str:
    return r"\b[A-Z]{%d,}\b" % cfg.caps_min_letters


SCORED_SCHEMA = without_run_id("scored_exchanges")
RULE_NAMES = ("novelty:long", "novelty:question", "novelty:marker", "importance:correction", "importance:preference",
              "importance:personal", "importance:emphatic", "utility:procedural", "utility:project", "utility:trivial")


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _union(patterns: list[str]) -> str:
    # Each alternative in its own group, so one's (?i) does not reach the next (RE2 scopes flags to a group).
    return "|".join(f"(?:{p})" for p in patterns)


def _search(text: pa.Array, patterns: list[str]) -> list[np.ndarray]:
    """For each pattern, one bool per row of `text`: does the pattern match anywhere in it (RE2).

    Markers are rare, so the union of the patterns is searched first and only the rows it matches are
    split further (half the patterns each): a row the union misses matches none of them, so the answer
    is exact while most rows cost one search instead of one per pattern.
    """
    if len(patterns) == 1:
        return [pc.match_substring_regex(text, patterns[0]).to_numpy(zero_copy_only=False)]
    hit = pc.match_substring_regex(text, _union(patterns)).to_numpy(zero_copy_only=False)
    out = [np.zeros(len(text), dtype=bool) for _ in patterns]
    rows = np.flatnonzero(hit)
    if rows.size:
        sub, half = text.filter(hit), len(patterns) // 2
        for lo, hi in ((0, half), (half, len(patterns))):
            for o, r in zip(out[lo:hi], _search(sub, patterns[lo:hi])):
                o[rows] = r
    return out


def _distinct_lower_matches(text: pa.Array, pattern: str) -> np.ndarray:
    """Per row, how many distinct lower-cased strings RE2's successive matches of `pattern` give.

    One match: one. Two (the usual case beyond one): both are taken by one RE2 extraction of
    `pattern`, a lazy gap, `pattern` again, which picks exactly the successive matches when the row
    has two. Rows with more, or a pattern that defeats that (an empty match, its own groups), go
    through DuckDB's regexp_extract_all as before.
    """
    counts = pc.count_substring_regex(text, pattern).to_numpy(zero_copy_only=False).astype(np.int64)
    rest = counts > 2
    two = counts == 2
    if two.any():
        try:
            pair = pc.extract_regex(text.filter(two), f"(?P<a>{pattern})(?s:.*?)(?P<b>{pattern})")
            a, b = pair.field("a"), pair.field("b")
            if pair.null_count or pc.min(pc.binary_length(a)).as_py() == 0 or pc.min(pc.binary_length(b)).as_py() == 0:
                raise ValueError("not two non-empty matches")
            counts[two] = 2 - pc.equal(pc.utf8_lower(a), pc.utf8_lower(b)).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, ValueError):
            rest |= two
    if rest.any():
        con = duckdb.connect(":memory:")
        try:
            con.register("t", pa.table({"user_text": text.filter(rest)}))
            counts[rest] = con.sql(
                f"SELECT len(list_distinct(list_transform(regexp_extract_all(user_text, {_sql_str(pattern)}),"
                " lambda x: lower(x)))) AS k FROM t").to_arrow_table().column("k").to_numpy()
        finally:
            con.close()
    return counts


def _byte_scan(text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: its number of words (runs of non-ASCII-whitespace), and whether it holds '?' and '!'."""
    width = np.int64 if pa.types.is_large_string(text.type) else np.int32
    _, offs_buf, data_buf = text.buffers()
    offsets = np.frombuffer(offs_buf, dtype=width, count=len(text) + 1, offset=text.offset * np.dtype(width).itemsize)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    # One byte past the last row, so every row's first offset indexes the array (reduceat needs that).
    data = np.append(data[offsets[0]:offsets[-1]], np.uint8(32))
    offsets = (offsets - offsets[0]).astype(np.int64)
    word = ~((data == 32) | ((data - np.uint8(9)) < 5))  # not ASCII whitespace: 9-13 and 32
    starts = np.empty_like(word)
    starts[0] = word[0]
    np.greater(word[1:], word[:-1], out=starts[1:])  # a word byte after a space
    starts[offsets[:-1]] = word[offsets[:-1]]  # a row's first byte follows no byte of its own
    words = np.add.reduceat(starts, offsets[:-1], dtype=np.int32) if len(text) else np.zeros(0, np.int32)
    words[offsets[1:] == offsets[:-1]] = 0  # reduceat gives an empty row the element at its offset

    def holds(byte: str) -> np.ndarray:
        out = np.zeros(len(text), dtype=bool)
        out[np.searchsorted(offsets, np.flatnonzero(data == ord(byte)), side="right") - 1] = True
        return out

    return words, holds("?"), holds("!")


def score_exchanges(exchanges: pa.Table, cfg: ScoringConfig) -> pa.Table:
    """scored_exchanges rows (without run_id) for every exchange, computed column-wise.

    Word counts, '?' and '!' come from one numpy pass over the column's bytes; the marker lists from
    RE2 (pyarrow.compute) searches of the whole column, a union first (see `_search`). The outputs
    equal `score_exchanges_rowwise`'s exactly (tests/test_scoring.py).
    """
    text = exchanges.column("user_text")
    if not pa.types.is_large_string(text.type):
        text = text.cast(pa.string())  # an empty literal table's column is null-typed
    text = text.combine_chunks()
    words, question, bang = _byte_scan(text)
    long, trivial = words > cfg.long_words, words < cfg.trivial_words
    # personal is the longest list and the most frequent hit: searched on its own, not in the union.
    (personal,) = _search(text, [marker_regex(cfg.personal_markers)])
    names = ("domain", "correction", "preference", "emphatic", "caps", "procedural", "project")
    rare = dict(zip(names, _search(text, [
        marker_regex(cfg.domain_markers), marker_regex(cfg.correction_markers),
        marker_regex(cfg.preference_markers), marker_regex(cfg.emphatic_words), _caps_regex(cfg),
        marker_regex(cfg.procedural_markers), marker_regex(cfg.project_markers)])))
    markers = np.zeros(len(text), dtype=np.int64)
    if rare["domain"].any():
        markers[rare["domain"]] = _distinct_lower_matches(text.filter(rare["domain"]),
                                                          marker_regex(cfg.domain_markers))
    emph = np.minimum(bang.astype(np.int64) + rare["emphatic"] + rare["caps"], cfg.emphatic_max_kinds)
    n = (_pts(cfg.novelty_baseline) + long * _pts(cfg.long_bonus) + question * _pts(cfg.question_bonus)
         + np.minimum(markers * _pts(cfg.marker_bonus), _pts(cfg.marker_cap)))
    i = (_pts(cfg.importance_baseline) + rare["correction"] * _pts(cfg.correction_bonus)
         + rare["preference"] * _pts(cfg.preference_bonus) + personal * _pts(cfg.personal_bonus)
         + emph * _pts(cfg.emphatic_bonus))
    u = (_pts(cfg.utility_baseline) + rare["procedural"] * _pts(cfg.procedural_bonus)
         + rare["project"] * _pts(cfg.project_bonus) - trivial * _pts(cfg.trivial_penalty))
    n, i, u = (np.clip(x.astype(np.int64), 0, 100) for x in (n, i, u))
    combined = (n + i + u) / 300.0
    fired = np.column_stack([long, question, markers > 0, rare["correction"], rare["preference"], personal,
                             emph > 0, rare["procedural"], rare["project"], trivial])
    # Row-major: each row's rules in RULE_NAMES order, row after row.
    rule_of = (np.flatnonzero(fired) % len(RULE_NAMES)).astype(np.int32)
    offsets = np.zeros(len(text) + 1, dtype=np.int32)
    np.cumsum(fired.sum(axis=1, dtype=np.int32), out=offsets[1:])
    values = pa.DictionaryArray.from_arrays(pa.array(rule_of), pa.array(RULE_NAMES)).cast(pa.string())
    columns = [exchanges.column("exchange_id").cast(pa.string()).combine_chunks(), pa.array(n / 100.0), pa.array(i / 100.0),
               pa.array(u / 100.0), pa.array(combined), pa.array(combined >= cfg.retain_threshold),
               pa.ListArray.from_arrays(pa.array(offsets), values)]
    return pa.Table.from_arrays(columns, schema=SCORED_SCHEMA)


def score_exchanges_rowwise(exchanges: pa.Table, cfg: ScoringConfig) -> pa.Table:
    """The same scores computed one row at a time in plain Python (the benchmark's baseline)."""
    # re.ASCII: \b and \w mean what they mean in RE2.
    comp = lambda rx: re.compile(rx, re.ASCII)  # noqa: E731
    word = comp(WORD_RE)
    domain = comp(marker_regex(cfg.domain_markers))
    corr, pref, pers = (comp(marker_regex(x)) for x in
                        (cfg.correction_markers, cfg.preference_markers, cfg.personal_markers))
    emph_words, caps = comp(marker_regex(cfg.emphatic_words)), comp(_caps_regex(cfg))
    proc, proj = comp(marker_regex(cfg.procedural_markers)), comp(marker_regex(cfg.project_markers))
    clip = lambda x: min(max(x, 0), 100)  # noqa: E731
    cols: dict[str, list] = {n: [] for n in SCORED_SCHEMA.names}
    for ex_id, text in zip(exchanges.column("exchange_id").to_pylist(), exchanges.column("user_text").to_pylist()):
        words = len(word.findall(text))
        rules = []
        long, question = words > cfg.long_words, "?" in text
        markers = len({m.lower() for m in domain.findall(text)})
        n = _pts(cfg.novelty_baseline) + long * _pts(cfg.long_bonus) + question * _pts(cfg.question_bonus) \
            + min(markers * _pts(cfg.marker_bonus), _pts(cfg.marker_cap))
        rules += ["novelty:long"] * long + ["novelty:question"] * question + ["novelty:marker"] * (markers > 0)
        c, p, s = bool(corr.search(text)), bool(pref.search(text)), bool(pers.search(text))
        emph = min(("!" in text) + bool(emph_words.search(text)) + bool(caps.search(text)), cfg.emphatic_max_kinds)
        i = _pts(cfg.importance_baseline) + c * _pts(cfg.correction_bonus) + p * _pts(cfg.preference_bonus) \
            + s * _pts(cfg.personal_bonus) + emph * _pts(cfg.emphatic_bonus)
        rules += ["importance:correction"] * c + ["importance:preference"] * p + ["importance:personal"] * s \
            + ["importance:emphatic"] * (emph > 0)
        pr, pj, trivial = bool(proc.search(text)), bool(proj.search(text)), words < cfg.trivial_words
        u = _pts(cfg.utility_baseline) + pr * _pts(cfg.procedural_bonus) + pj * _pts(cfg.project_bonus) \
            - trivial * _pts(cfg.trivial_penalty)
        rules += ["utility:procedural"] * pr + ["utility:project"] * pj + ["utility:trivial"] * trivial
        n, i, u = clip(n), clip(i), clip(u)
        combined = (n + i + u) / 300.0
        cols["exchange_id"].append(ex_id)
        cols["novelty"].append(n / 100.0)
        cols["importance"].append(i / 100.0)
        cols["utility"].append(u / 100.0)
        cols["combined"].append(combined)
        cols["retained"].append(combined >= cfg.retain_threshold)
        cols["rules"].append(rules)
    return pa.Table.from_pydict(cols, schema=SCORED_SCHEMA)
