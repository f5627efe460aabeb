"""Stage 1: score every exchange's user message for novelty, importance and utility (column-wise).

The rules are the source paper's heuristics plus a `personal` bonus, so that a short message that
states a fact about the user ("I live in Oslo") is kept while "hey" and "thanks" are not.

Scores are computed in integer hundredths ("points") and divided once at the end, so the DuckDB
implementation and the per-row Python one give bit-identical floats, and `combined == 0.35` is an
exact comparison. Every marker list is a tuple of regex fragments valid in both RE2 (DuckDB) and
Python `re`: matched case-insensitively, and a fragment that starts (ends) with a letter or digit
must start (end) at an ASCII word boundary, so "i like" does not fire on "i likely".
"""

from __future__ import annotations

import re

import duckdb
import pyarrow as pa
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


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _scoring_sql(cfg: ScoringConfig) -> str:
    m = lambda frags: f"regexp_matches(user_text, {_sql_str(marker_regex(frags))})"  # noqa: E731
    domain = _sql_str(marker_regex(cfg.domain_markers))
    emph = (f"(contains(user_text, '!')::INT + {m(cfg.emphatic_words)}::INT"
            f" + regexp_matches(user_text, {_sql_str(_caps_regex(cfg))})::INT)")
    return f"""
    WITH f AS (
      SELECT exchange_id,
        regexp_matches(user_text, {_sql_str(at_least_words_regex(cfg.long_words + 1))}) AS long,
        NOT regexp_matches(user_text, {_sql_str(at_least_words_regex(cfg.trivial_words))}) AS trivial,
        contains(user_text, '?') AS question,
        len(list_distinct(list_transform(regexp_extract_all(user_text, {domain}), lambda x: lower(x)))) AS markers,
        {m(cfg.correction_markers)} AS correction,
        {m(cfg.preference_markers)} AS preference,
        {m(cfg.personal_markers)} AS personal,
        least({emph}, {cfg.emphatic_max_kinds}) AS emph,
        {m(cfg.procedural_markers)} AS procedural,
        {m(cfg.project_markers)} AS project
      FROM exchanges
    ), p AS (
      SELECT *,
        least(greatest({_pts(cfg.novelty_baseline)} + long::INT * {_pts(cfg.long_bonus)}
          + question::INT * {_pts(cfg.question_bonus)}
          + least(markers * {_pts(cfg.marker_bonus)}, {_pts(cfg.marker_cap)}), 0), 100) AS n,
        least(greatest({_pts(cfg.importance_baseline)} + correction::INT * {_pts(cfg.correction_bonus)}
          + preference::INT * {_pts(cfg.preference_bonus)} + personal::INT * {_pts(cfg.personal_bonus)}
          + emph * {_pts(cfg.emphatic_bonus)}, 0), 100) AS i,
        least(greatest({_pts(cfg.utility_baseline)} + procedural::INT * {_pts(cfg.procedural_bonus)}
          + project::INT * {_pts(cfg.project_bonus)}
          - trivial::INT * {_pts(cfg.trivial_penalty)}, 0), 100) AS u
      FROM f
    )
    SELECT exchange_id,
      n / 100.0::DOUBLE AS novelty, i / 100.0::DOUBLE AS importance, u / 100.0::DOUBLE AS utility,
      (n + i + u) / 300.0::DOUBLE AS combined,
      (n + i + u) / 300.0::DOUBLE >= $threshold::DOUBLE AS retained,
      list_filter([
        CASE WHEN long THEN 'novelty:long' END, CASE WHEN question THEN 'novelty:question' END,
        CASE WHEN markers > 0 THEN 'novelty:marker' END, CASE WHEN correction THEN 'importance:correction' END,
        CASE WHEN preference THEN 'importance:preference' END, CASE WHEN personal THEN 'importance:personal' END,
        CASE WHEN emph > 0 THEN 'importance:emphatic' END, CASE WHEN procedural THEN 'utility:procedural' END,
        CASE WHEN project THEN 'utility:project' END, CASE WHEN trivial THEN 'utility:trivial' END
      ], lambda x: x IS NOT NULL) AS rules
    FROM p
    """


def score_exchanges(exchanges: pa.Table, cfg: ScoringConfig) -> pa.Table:
    """scored_exchanges rows (without run_id) for every exchange, computed column-wise in DuckDB."""
    con = duckdb.connect(":memory:")
    try:
        con.register("exchanges", exchanges.select(["exchange_id", "user_text"]))
        # The threshold is bound as a parameter so it is the same double Python compares with.
        out = con.sql(_scoring_sql(cfg), params={"threshold": cfg.retain_threshold}).to_arrow_table()
    finally:
        con.close()
    return out.cast(SCORED_SCHEMA)


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
