"""The PNG charts a run leaves beside its records: the training loss, the gate's before/after, the evaluation.

Pure stages return numbers; the flows hand them here. Matplotlib is imported inside each function (no
pyplot: no global backend or figure state), so importing this module costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from storage.atomic import atomic_path


def plot_loss(steps: pa.Table, out_png: Path) -> Path:
    """A loss-curve PNG (per step and its running mean per epoch length), written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    step, loss = steps.column("step").to_numpy(), steps.column("loss").to_numpy()
    epochs = max(steps.column("epoch").to_pylist() or [1])
    window = max(1, len(loss) // epochs)
    smooth = np.convolve(loss, np.ones(window) / window, mode="valid") if len(loss) else loss
    fig = Figure(figsize=(7, 3.5), layout="tight")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(step, loss, lw=0.8, alpha=0.45, label="loss per step")
    if window > 1 and len(smooth):
        ax.plot(step[window - 1:], smooth, lw=2, label=f"mean of last {window} steps")
    ax.set(xlabel="step", ylabel="cross-entropy on answer tokens", title="LoRA training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return out_png



def plot_gate(decision, out_png: Path, *, parent: str = "before", candidate: str = "after") -> Path:
    """The gate's three measurements before and after as a PNG (rates left, perplexity right), written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    decision = decision.model_dump() if hasattr(decision, "model_dump") else decision  # a model or its dict
    verdict = "approved" if decision["approved"] else "rejected"
    fig = Figure(figsize=(8, 3.6), layout="tight")
    FigureCanvasAgg(fig)
    rates, ppl = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    labels = ["benchmark score", "new-fact recall"]
    pairs = [(decision["benchmark_pre"], decision["benchmark_post"]), (decision["recall_pre"], decision["recall_post"])]
    for i, (name, color) in enumerate(((parent, "C0"), (candidate, "C1"))):
        values = [p[i] for p in pairs]
        xs = [x - 0.2 + 0.4 * i for x in range(len(labels))]
        bars = rates.bar(xs, [0.0 if v is None else v for v in values], 0.38, label=name, color=color)
        for bar, value in zip(bars, values):  # a measurement without facts is an empty slot marked n/a
            rates.annotate("n/a" if value is None else f"{value:.2f}", (bar.get_x() + bar.get_width() / 2,
                           bar.get_height()), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=8)
    rates.set_xticks(range(len(labels)), labels)
    rates.set(ylim=(0, 1.25), ylabel="rate",
              title=f"benchmark ratio {decision['benchmark_ratio']:.3f} "
                    f"(min {decision['thresholds']['min_benchmark_ratio']})")
    rates.legend(loc="upper right", fontsize=8, frameon=False)
    rates.grid(axis="y", alpha=0.3)
    pre, post = decision["ppl_pre"], decision["ppl_post"]
    ppl.bar([0, 1], [pre, post], 0.6, color=["C0", "C1"])
    for x, value in enumerate((pre, post)):
        ppl.annotate(f"{value:.2f}", (x, value), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=8)
    th = decision["thresholds"]
    ppl.axhline(pre * (1 + th["ppl_warn"]), color="goldenrod", lw=1, ls="--", label=f"warn +{th['ppl_warn']:.0%}")
    ppl.axhline(pre * (1 + th["ppl_reject"]), color="firebrick", lw=1, ls="--", label=f"reject +{th['ppl_reject']:.0%}")
    ppl.set_xticks([0, 1], [parent, candidate])
    ppl.set(ylim=(0, max(post, pre * (1 + th["ppl_reject"])) * 1.2), ylabel="perplexity on general text",
            title=f"drift {decision['ppl_drift']:+.1%}")
    ppl.legend(loc="lower right", fontsize=7, frameon=True)
    fig.suptitle(f"Gate: {verdict}", fontsize=11)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return out_png



def plot_eval(summaries_by_version: dict[str, dict], out_png: Path, *, metrics: Sequence[tuple[str, str]],
              title: str = "Evaluation") -> Path:
    """A grouped bar chart PNG: one group per model version, one bar per (label, key) metric; written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    if not summaries_by_version:
        raise ValueError("plot_eval needs at least one version's summary")
    versions = list(summaries_by_version)
    x = np.arange(len(versions))
    width = 0.8 / len(metrics)
    fig = Figure(figsize=(max(6.5, 1.9 * len(versions) + 3.5), 4.2), layout="tight")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (label, key) in enumerate(metrics):
        values = [summaries_by_version[v][key] for v in versions]
        offsets = x - 0.4 + width * (i + 0.5)
        heights = [0.0 if v is None else v for v in values]
        bars = ax.bar(offsets, heights, width * 0.92, label=label, color=f"C{i}")
        for bar, value in zip(bars, values):
            # A metric without probes is drawn as an empty slot marked n/a, never as a 0 bar.
            text = "n/a" if value is None else f"{value:.2f}"
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 2),
                        textcoords="offset points", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, versions)
    ax.set_ylim(0, 1.32)  # headroom for the legend above the 1.0 line
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set(ylabel="rate", title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper center", ncol=3, fontsize=8, frameon=False)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return out_png

