"""Ingest N messages (default 1,000,000) from generated session files; print messages/s and peak memory.

    python bench/ingest.py [--messages 1000000] [--files 500]

Target on a 2-core laptop: >= 100,000 messages/s through parse, pairing, validation and Parquet writes.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows.ingest import ingest_paths  # noqa: E402
from storage.home import Home  # noqa: E402
from tasks.ingest import IngestConfig  # noqa: E402

USER = ["My name is Ana and I live in Porto.", "What's the weather like tomorrow?", "hey",
        "I have a dog named Rex, he is a border collie.", "How do I install a package with pip?",
        "Actually my daughter turned 9, not 8.", "I love hiking in the mountains on weekends."]
ASSISTANT = ["Nice to meet you!", "I can't check live weather, but here is how to find out.",
             "Hello! How can I help?", "Rex sounds lovely.", "Run `pip install NAME` in a terminal.",
             "Thanks for the correction.", "Hiking is a great way to relax."]


def generate(folder: Path, messages: int, files: int, seed: int = 7) -> int:
    """Write `files` session files holding `messages` lines in total; return bytes written."""
    rng = random.Random(seed)
    per_file = messages // files
    total = 0
    for f in range(files):
        lines = []
        for i in range(per_file // 2):
            ts = f"2026-11-{1 + f % 28:02d}T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}+00:00"
            k = rng.randrange(len(USER))
            for role, text in (("user", USER[k]), ("assistant", ASSISTANT[k])):
                lines.append(json.dumps({"timestamp": ts, "session_id": f"s{f:05d}", "turn": i,
                                         "role": role, "content": f"{text} ({f}.{i})"}))
        data = ("\n".join(lines) + "\n").encode()
        (folder / f"session_{f:05d}.jsonl").write_bytes(data)
        total += len(data)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Path(tmp) / "inbox"
        inbox.mkdir()
        size = generate(inbox, args.messages, args.files)
        home = Home(Path(tmp) / "home").ensure()
        t_imp = time.perf_counter()
        from expectations.runner import _batch_definition

        _batch_definition()  # `import great_expectations` once per process (~3-4 s), reported apart
        imp = time.perf_counter() - t_imp
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        report = ingest_paths(home, [inbox], IngestConfig())
        secs = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t1 = time.perf_counter()
        again = ingest_paths(home, [inbox], IngestConfig())
        secs_again = time.perf_counter() - t1
    print(report.line())
    print(f"input: {report.messages:,} messages in {args.files} files, {size / 1e6:.0f} MB")
    print(f"ingest: {secs:.2f} s, {report.messages / secs:,.0f} messages/s (target >= 100,000), "
          f"{report.exchanges_added:,} exchanges")
    print(f"one-time Great Expectations import: {imp:.2f} s; with it: "
          f"{report.messages / (secs + imp):,.0f} messages/s")
    print(f"peak memory: {peak:,.0f} MB (before ingest {rss_before:,.0f} MB)")
    print(f"re-ingest of the same files: {secs_again:.2f} s, {again.exchanges_added} added")


if __name__ == "__main__":
    main()
