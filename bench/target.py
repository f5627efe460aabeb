"""The memory-quality target, end to end with the shipped defaults, as a person would run it.

    python bench/target.py [--case DIR ...] [--json OUT]

For each case (default: the labelled case and the held-out unseen case): a fresh home,
`slowwave ingest <case>/sessions`, `slowwave sleep --depth auto` until it has nothing new to do (at
most one light and one deep cycle), then `slowwave eval --probes <case>/probes.jsonl` on the current
version and on v0000. Prints each metric against its target:

    recall >= 0.90, generalization >= 0.70, precision >= 0.95, guards 100%,
    no control probe the base answered right now wrong, perplexity drift <= 5%, benchmark ratio >= 0.95

Perplexity drift and benchmark ratio are the gate's, from the sleeps' gate_results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = [ROOT / "tasks" / "data" / "eval_case", ROOT / "bench" / "cases" / "unseen"]
TARGETS = {"recall": 0.90, "generalization": 0.70, "precision": 0.95, "guard_pass_rate": 1.0}


def slowwave(home: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "flows.cli", "--home", str(home), *args]
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=os.environ.copy())
    if out.returncode != 0:
        raise SystemExit(f"target: `slowwave {' '.join(args)}` failed ({out.returncode}):\n{out.stderr[-3000:]}")
    print(f"  slowwave {' '.join(args)}  [{time.perf_counter() - started:.0f} s]", file=sys.stderr, flush=True)
    return out.stdout


def run_case(case: Path, home: Path) -> dict:
    from storage.catalog import connect
    from storage.home import Home

    slowwave(home, "ingest", str(case / "sessions"))
    sleeps = []
    for _ in range(2):
        text = slowwave(home, "sleep", "--depth", "auto")
        sleeps.append(text.splitlines()[0] if text else "")
        if "nothing-to-do" in text:
            break
    results = {}
    for version in ("v0000", "current"):
        out = home / f"eval-{version}.json"
        slowwave(home, "eval", "--probes", str(case / "probes.jsonl"), "--model", version, "--json", str(out))
        results[version] = json.loads(out.read_text())
    con = connect(Home(home))
    gates = con.sql("select approved, benchmark_ratio, ppl_drift, recall_pre, recall_post from gate_results "
                    "order by all").fetchall()
    return {"case": str(case.relative_to(ROOT)), "sleeps": sleeps, "eval": results,
            "gates": [{"approved": a, "benchmark_ratio": r, "ppl_drift": d, "recall_pre": rp, "recall_post": rq}
                      for a, r, d, rp, rq in gates]}


def _metrics(report: dict) -> dict:
    """The metrics of the one version a `slowwave eval --json` report evaluated."""
    return report["evaluations"][0]["metrics"]


def verdict_lines(row: dict) -> list[str]:
    base, after = _metrics(row["eval"]["v0000"]), _metrics(row["eval"]["current"])
    lines = [f"{row['case']}: " + " / ".join(row["sleeps"])]
    for key, target in TARGETS.items():
        value = after.get(key)
        ok = value is not None and value >= target
        lines.append(f"  {key:16} {value if value is None else f'{value:.3f}':>7}  target >= {target:.2f}  "
                     f"{'ok' if ok else 'MISSED'}  (base {base.get(key)})")
    for g in row["gates"]:
        lines.append(f"  gate: approved={g['approved']} benchmark ratio {g['benchmark_ratio']:.3f} (target >= 0.95) "
                     f"ppl drift {g['ppl_drift']:+.1%} (target <= +5%), held-out recall "
                     f"{g['recall_pre']} -> {g['recall_post']}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", type=Path, action="append", help="case folder(s); default: both shipped cases")
    ap.add_argument("--json", type=Path, help="write the full reports here")
    args = ap.parse_args()
    rows = []
    for case in args.case or CASES:
        with tempfile.TemporaryDirectory(prefix="slowwave-target-") as tmp:
            print(f"case {case}", file=sys.stderr, flush=True)
            rows.append(run_case(case.resolve(), Path(tmp) / "home"))
        print("\n".join(verdict_lines(rows[-1])), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
