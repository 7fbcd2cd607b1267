"""A PNG of a run's metrics.jsonl: training loss, and every evaluation metric, against the step.

Written at the end of `perceiver train` when matplotlib is installed (`pip install perceiver-core[plot]`);
without it the run simply has no plot.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .metrics import numeric, read_metrics


def plot_metrics(metrics_file: str | os.PathLike, png: str | os.PathLike) -> bool:
    """Draw `metrics_file` into `png` (atomically); False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    records, problems = read_metrics(metrics_file)
    for problem in problems:  # a torn or edited line must not crash the end of a run: skip it, say which
        print(f"perceiver: note: {problem}", file=sys.stderr)
    train = [r for r in records if r.get("split") == "train" and numeric(r, "loss")]
    evals = [r for r in records if isinstance(r.get("split"), str) and r.get("split") != "train"]
    names = sorted({k for r in evals for k in r if k not in ("step", "epoch", "split", "seconds", "loss")
                    and numeric(r, k)})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", lw=1)
    eval_losses = [r for r in evals if numeric(r, "loss")]
    if eval_losses:
        axes[0].plot([r["step"] for r in eval_losses], [r["loss"] for r in eval_losses], "o-",
                     label=f"{evals[0]['split']} loss")
    for name in names:
        points = [(r["step"], r[name]) for r in evals if numeric(r, name)]
        axes[1].plot(*zip(*points), "o-", label=f"{evals[0]['split']} {name}")
    axes[0].set(xlabel="step", ylabel="loss", title="loss")
    axes[1].set(xlabel="step", title="evaluation metrics")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    png = Path(png)
    tmp = png.with_name(f".{png.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png)
    return True
