"""Training configurations compared on an evaluation case: memory quality and forgetting, side by side.

    python bench/experiments.py [--configs NAME,...] [--case DIR] [--out docs/RESULTS.md]

The case's sessions go through the real stages 1-4 once (ingest, score, extract, firewall, mix as a
light sleep); then each configuration trains its own adapter on the default model from the same
pairs and is measured the way the gate and `slowwave eval` measure: the case's probes (recall,
generalization, precision, guards, control), the shipped benchmark (ratio after / before) and
perplexity on the shipped general text (drift). The adapter is evaluated whether or not the gate
would approve it, and the gate's decision under the default thresholds is reported beside it.

Configurations: the source paper's four (baseline lr 1e-4 x 3 epochs x rank 16; one epoch; lr 5e-5;
rank 32 / alpha 64) and slowwave's defaults ("ours"), plus any in EXTRA. Each row is one seeded run
on this machine; the table says how long it took.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.model.blas import ensure_fast_blas  # noqa: E402

ensure_fast_blas()

import pyarrow.compute as pc  # noqa: E402

from storage.atomic import write_text_atomic  # noqa: E402
from storage.home import Home  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CASE = ROOT / "tasks" / "data" / "eval_case"

# name -> (train overrides, mixing overrides); "ours" is the shipped defaults, the rest the paper's grid.
PAPER = {
    "paper-baseline": ({"light_learning_rate": 1e-4, "light_epochs": 3, "rank": 16, "scale": 2.0},
                       {"paraphrases": 1, "anchor_ratio": 0.0, "rehearsal_ratio": 0.0}),
    "paper-1-epoch": ({"light_learning_rate": 1e-4, "light_epochs": 1, "rank": 16, "scale": 2.0},
                      {"paraphrases": 1, "anchor_ratio": 0.0, "rehearsal_ratio": 0.0}),
    "paper-lr-5e-5": ({"light_learning_rate": 5e-5, "light_epochs": 3, "rank": 16, "scale": 2.0},
                      {"paraphrases": 1, "anchor_ratio": 0.0, "rehearsal_ratio": 0.0}),
    "paper-rank-32": ({"light_learning_rate": 1e-4, "light_epochs": 3, "rank": 32, "scale": 2.0},
                      {"paraphrases": 1, "anchor_ratio": 0.0, "rehearsal_ratio": 0.0}),
    "ours": ({}, {}),
}
EXTRA: dict[str, tuple[dict, dict]] = {}


def parse_overrides(text: str) -> tuple[dict, dict]:
    """'train.scale=8,mixing.anchor_ratio=2' -> ({'scale': 8.0}, {'anchor_ratio': 2.0})."""
    train, mixing = {}, {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, _, value = item.partition("=")
        section, _, field = key.partition(".")
        target = {"train": train, "mixing": mixing}.get(section)
        if target is None or not field or not value:
            raise SystemExit(f"experiments: bad override {item!r}; use train.FIELD=VALUE or mixing.FIELD=VALUE")
        try:
            target[field] = json.loads(value)  # numbers, true/false, lists
        except json.JSONDecodeError:
            target[field] = value  # a bare word, e.g. train.loss=threshold
    return train, mixing


def prepare(home: Home, case: Path, settings) -> dict:
    """Stages 1-3 on the case's sessions with the shipped defaults: the pairs every configuration learns."""
    from extraction import curate  # bench/extraction.py
    from flows.training_examples import all_anchor_answers, anchor_expected, anchor_prompts, latest_buffer
    from tasks.model.pull import ensure_model

    version = ensure_model(home, settings.model, "bench", say=lambda m: print(m, file=sys.stderr))
    curated = curate(home, case, settings)
    prompts = anchor_prompts()
    return {"home": home, "version": version, "pairs": curated["pairs"], "rejections": curated["rejections"],
            "buffer": latest_buffer(home),
            "anchors": all_anchor_answers(home, "bench", settings.mixing, prompts),
            "anchor_expected": anchor_expected(prompts),
            "exchanges": curated["exchanges"].num_rows}


def rehearsal(home: Home, settings, mixing_cfg) -> list[str]:
    """The root model's prose samples for this configuration's mixing settings (cached per model)."""
    from flows.training_examples import rehearsal_for

    return rehearsal_for(home, mixing_cfg)


def measure_model(model, tok, probes: list[dict], settings) -> dict:
    """Probe summary + per-probe outcomes, benchmark score and perplexity, as the gate and eval measure them."""
    from tasks.model.answering import answer_questions
    from tasks.gating import load_gate_inputs, measure
    from tasks.probes import score_probe, summarize

    benchmark, text = load_gate_inputs(settings.gate)
    gate = measure(model, tok, benchmark=benchmark, general_text=text, max_tokens=settings.gate.max_tokens,
                   batch_size=settings.gate.batch_size, window=settings.gate.ppl_window)
    answers = answer_questions(model, tok, [p.question for p in probes], max_tokens=settings.gate.max_tokens,
                               batch_size=settings.gate.batch_size)
    results = [score_probe(p, a) for p, a in zip(probes, answers)]
    return {"summary": summarize(results), "results": results, "benchmark": gate.benchmark_score,
            "ppl": gate.ppl, "gate": gate}


def run_config(name: str, overrides: tuple[dict, dict], prepared: dict, settings, probes: list[dict],
               base: dict) -> dict:
    from flows.adapters import training_rows
    from tasks.gating import decide
    from tasks.model.loading import chat_formatter, load_model
    from tasks.mixing import build_training_set, mix_summary, select_anchors
    from tasks.probes import leaked
    from tasks.training import train_adapter

    train_cfg = settings.train.model_copy(update=overrides[0]).for_depth("light")
    mixing_cfg = settings.mixing.model_copy(update=overrides[1])
    started = time.perf_counter()
    model, tok = load_model(prepared["version"].path, fresh=True)
    current = prepared["pairs"].filter(pc.is_null(prepared["pairs"]["superseded_by"]))
    anchors = select_anchors(prepared["anchors"], prepared["anchor_expected"], mixing_cfg.anchor_answers)
    examples = build_training_set(current, prepared["buffer"], anchors, None, "light",
                                  chat_formatter(tok), mixing_cfg, rehearsal=rehearsal(prepared["home"], settings,
                                                                                       mixing_cfg))
    mix = mix_summary(examples)
    print(f"[{name}] {mix['total']} examples ({mix['new']} new, {mix['anchor']} anchor, {mix['rehearsal']} "
          "rehearsal), "
          f"{train_cfg.epochs} epochs, lr {train_cfg.learning_rate:g}, rank {train_cfg.rank}, "
          f"scale {train_cfg.scale:g}, loss {train_cfg.loss}", file=sys.stderr, flush=True)

    def progress(rec: dict) -> None:
        if rec["step"] % 100 == 0:
            print(f"[{name}]   step {rec['step']} loss {rec['loss']:.3f}", file=sys.stderr, flush=True)

    trained = train_adapter(model, tok, training_rows(examples), train_cfg, on_step=progress)
    after = measure_model(model, tok, probes, settings)
    seconds = time.perf_counter() - started
    decision = decide(base["gate"], after["gate"], settings.gate)
    lost = set(decision.benchmark_lost)
    base_right = {r["id"] for r in base["results"] if r["kind"] == "control" and r["outcome"] == "correct"}
    broken = sorted(r["id"] for r in after["results"] if r["id"] in base_right and r["outcome"] != "correct")
    s = after["summary"]
    row = {"config": name, "train": overrides[0], "mixing": overrides[1], "examples": mix["total"],
           "steps": trained.iterations, "final_loss": round(trained.final_loss, 4),
           "recall": s["recall"], "generalization": s["generalization"], "precision": s["precision"],
           "guards": s["guard_pass_rate"], "control": s["control_accuracy"], "control_broken": broken,
           "ppl_drift": after["ppl"] / base["ppl"] - 1, "benchmark_ratio": after["benchmark"] / base["benchmark"],
           "gate": "approved" if decision.approved else "rejected", "seconds": round(seconds, 1),
           "regressions": len(decision.benchmark_lost),
           "regressions_by_category": {c: n for c, n in decision.regressions_by_category.items() if n},
           "lost": [(o["id"], o["answer"][:80]) for o in after["gate"].benchmark_outcomes
                    if o["id"] in lost],
           "wrong": [(r["id"], r["answer"][:80]) for r in after["results"]
                     if r["kind"] in ("recall", "generalization") and r["outcome"] != "correct"],
           "failed_guards": [(r["id"], r["answer"][:80]) for r in after["results"]
                             if r["kind"] == "guard" and leaked(r)]}
    shown = {k: v for k, v in row.items() if k not in ("wrong", "failed_guards", "lost")}
    print(f"[{name}] {json.dumps(shown, default=str)}", file=sys.stderr, flush=True)
    return row


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.2f}"


def results_markdown(rows: list[dict], base: dict, prepared: dict, command: str, case: Path) -> str:
    s = base["summary"]
    lines = [
        "# Results: memory quality by training configuration",
        "",
        f"Case: `{case.relative_to(ROOT) if case.is_relative_to(ROOT) else case}` — {prepared['exchanges']} "
        f"exchanges, {prepared['pairs'].num_rows} accepted pairs. Model: the default "
        f"(`{prepared['version'].manifest.base}`). Each configuration trains one seeded light-sleep "
        "adapter from the same pairs; the adapter is measured whether or not the gate approves it.",
        "",
        f"Base model: recall {_fmt(s['recall'])}, generalization {_fmt(s['generalization'])}, control "
        f"{_fmt(s['control_accuracy'])}, benchmark {base['benchmark']:.3f}, perplexity {base['ppl']:.2f}.",
        "",
        "| configuration | examples | steps | recall | generalization | precision | guards | control | "
        "control broken | benchmark answers broken | ppl drift | benchmark ratio | gate | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['config']} | {r['examples']} | {r['steps']} | {_fmt(r['recall'])} | "
                     f"{_fmt(r['generalization'])} | {_fmt(r['precision'])} | {_fmt(r['guards'])} | "
                     f"{_fmt(r['control'])} | {len(r['control_broken'])} | {r['regressions']} | {r['ppl_drift']:+.1%} | "
                     f"{r['benchmark_ratio']:.2f} | {r['gate']} | {r['seconds']:.0f} |")
    lines += ["", "Settings per configuration (overrides of the shipped defaults):", ""]
    for r in rows:
        lines.append(f"- **{r['config']}**: train {json.dumps(r['train'])}, mixing {json.dumps(r['mixing'])}")
    lines += ["", "Reproduce:", "", "```", command, "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from flows.config import Settings
    from tasks.model.loading import load_model
    from tasks.probes import load_probes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=",".join(PAPER), help="comma-separated names (of: %(default)s)")
    ap.add_argument("--try", dest="extra", action="append", default=[], metavar="NAME:OVERRIDES",
                    help="an extra configuration, e.g. 'lowscale:train.scale=8,mixing.anchor_ratio=2'")
    ap.add_argument("--case", type=Path, default=CASE, help="folder with sessions/ and probes.jsonl")
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here (e.g. docs/RESULTS.md)")
    ap.add_argument("--json", type=Path, default=None, help="write every row, wrong answers included, here")
    args = ap.parse_args(argv)
    configs = {**PAPER, **EXTRA}
    for spec in args.extra:
        name, _, text = spec.partition(":")
        configs[name] = parse_overrides(text)
    names = [n.strip() for n in args.configs.split(",") if n.strip()] + [s.partition(":")[0] for s in args.extra]
    unknown = [n for n in names if n not in configs]
    if unknown:
        raise SystemExit(f"experiments: unknown configuration(s) {unknown}; known: {sorted(configs)}")

    settings = Settings()
    probes = load_probes(args.case / "probes.jsonl")
    with tempfile.TemporaryDirectory(prefix="slowwave-exp-") as tmp:
        home = Home(Path(tmp)).ensure()
        prepared = prepare(home, args.case, settings)
        print(f"case: {prepared['exchanges']} exchanges, {prepared['pairs'].num_rows} pairs, "
              f"{prepared['anchors'].num_rows} anchors", file=sys.stderr, flush=True)
        model, tok = load_model(prepared["version"].path, fresh=True)
        base = measure_model(model, tok, probes, settings)
        del model
        print(f"base: {json.dumps(base['summary'])} benchmark {base['benchmark']:.3f} ppl {base['ppl']:.2f}",
              file=sys.stderr, flush=True)
        rows = [run_config(n, configs[n], prepared, settings, probes, base) for n in names]
        command = "python bench/experiments.py " + " ".join(argv if argv is not None else sys.argv[1:])
        text = results_markdown(rows, base, prepared, command.strip(), args.case)
    print(text)
    if args.out:
        write_text_atomic(args.out, text)
    if args.json:
        write_text_atomic(args.json, json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
