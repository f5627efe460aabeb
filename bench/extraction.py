"""Extraction quality per evaluation case: which of the person's stated facts stages 1-3 turn into pairs.

    python bench/extraction.py [--case DIR ...] [--rules both|regex|parse] [-v]

For each case (default: the labelled case, the development case and the held-out unseen case): a fresh
home, the case's sessions ingested as `slowwave ingest` does, then scoring, pattern extraction, merging
and the firewall with the shipped defaults (no model; flows/preview.py); `--rules regex` runs the regex
families alone, `--rules parse` the dependency-parse rules alone. A pair matches a fact of the case's
facts.json on fact type + subject + normalized value; superseded pairs do not count, and statement
memories (fact type "statement", which no facts.json labels) are counted apart. Prints, per case, the
exchanges, the current fact pairs, recall (facts found / facts stated), precision (facts found / fact
pairs), the statement memories accepted, and with -v the facts missed, the pairs that match no fact and
the statements. Seconds per case.

Only the development case may be used to write or tune patterns; the unseen case measures them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = [ROOT / "tasks" / "data" / "eval_case", ROOT / "bench" / "cases" / "dev", ROOT / "bench" / "cases" / "dev2",
         ROOT / "bench" / "cases" / "dev3",
         ROOT / "bench" / "cases" / "unseen"]


def curate(home, case: Path, settings) -> dict:
    """The case's sessions ingested into home, then stages 1-3 with no model (flows/preview.curate_case)."""
    from flows.preview import curate_case

    return curate_case(home, case, settings)


def settings_for(rules: str):
    """The shipped settings with both rule extractors, the regex families alone, or the parse rules alone."""
    from flows.config import Settings

    settings = Settings()
    ext = settings.extraction
    if rules == "regex":
        ext = ext.model_copy(update={"parse": False, "statements": False})
    elif rules == "parse":
        ext = ext.model_copy(update={"families": ()})
    return settings.model_copy(update={"extraction": ext})


def measure(case: Path, rules: str = "both") -> dict:
    """Recall, precision and the unmatched facts and pairs of one case."""
    import time

    from storage.home import Home
    from tasks.text import normalize_value

    truth_file = case / "facts.json"
    if not truth_file.is_file():
        raise SystemExit(f"extraction: {truth_file}: no such file (a case needs sessions/ and facts.json)")
    truth = json.loads(truth_file.read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="slowwave-extraction-") as tmp:
        curated = curate(Home(Path(tmp)).ensure(), case, settings_for(rules))
    seconds = time.perf_counter() - t0
    exchanges = curated["exchanges"]
    current = [p for p in curated["pairs"].to_pylist() if p["superseded_by"] is None]
    statements = [p for p in current if p["fact_type"] == "statement"]

    def key(fact_type: str, subject: str, value: str) -> tuple[str, str, str]:
        return fact_type, subject, normalize_value(value)

    found = {key(p["fact_type"], p["subject"], p["value"]) for p in current if p["fact_type"] != "statement"}
    stated = {key(f["fact_type"], f["subject"], f["value"]) for f in truth["facts"]}
    hits = found & stated
    return {"case": case.name, "exchanges": exchanges.num_rows, "pairs": len(found), "facts": len(stated),
            "recall": len(hits) / len(stated) if stated else 0.0,
            "precision": len(hits) / len(found) if found else 0.0,
            "missed": sorted(stated - found), "unmatched": sorted(found - stated), "seconds": seconds,
            "statements": [(p["question"], p["answer"]) for p in statements]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", type=Path, action="append", default=None, help="a case folder (repeatable)")
    ap.add_argument("--rules", choices=("both", "regex", "parse"), default="both",
                    help="which rule extractors run (default: both, as a sleep does)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list the missed facts and unmatched pairs")
    args = ap.parse_args(argv)
    print(f"rules: {args.rules}")
    print(f"{'case':<12} {'exchanges':>9} {'pairs':>6} {'facts':>6} {'recall':>7} {'precision':>9} {'statements':>10} "
          f"{'seconds':>7}")
    for case in args.case or [c for c in CASES if c.is_dir()]:
        r = measure(case, args.rules)
        print(f"{r['case']:<12} {r['exchanges']:>9} {r['pairs']:>6} {r['facts']:>6} {r['recall']:>7.2f} "
              f"{r['precision']:>9.2f} {len(r['statements']):>10} {r['seconds']:>7.1f}")
        if args.verbose:
            for what in ("missed", "unmatched"):
                for fact in r[what]:
                    print(f"    {what}: {' | '.join(fact)}")
            for q, a in r["statements"]:
                print(f"    statement: {q} -> {a}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
