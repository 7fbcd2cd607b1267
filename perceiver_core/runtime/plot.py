"""A PNG of a run's metrics.jsonl: the epoch-mean training loss against the validation (or evaluation) loss, both
without label smoothing so that the curves compare, and every evaluation metric, against the epoch.

Written at the end of `perceiver train` when matplotlib is installed (`pip install perceiver-core[plot]`);
without it the run simply has no plot.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

from .files import atomic_write
from .metrics import numeric, read_metrics


def plot_metrics(metrics_file: str | os.PathLike, png: str | os.PathLike, loss_name: str = "loss") -> bool:
    """Draw `metrics_file` into `png` (atomically; a failed write is one UserError line naming `png`); False when
    matplotlib is not installed. `loss_name` labels the loss axis (the task's `loss_name`: cross-entropy, MSE...)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    records, problems = read_metrics(metrics_file)
    for problem in problems:  # a torn or edited line must not crash the end of a run: skip it, say which
        print(f"perceiver: note: {problem}", file=sys.stderr)
    # epoch means, without label smoothing
    epochs = [r for r in records if r.get("split") == "train_epoch" and numeric(r, "loss")]
    evals = [r for r in records if isinstance(r.get("split"), str) and r["split"] not in ("train", "train_epoch")]
    # the per-epoch curve is the validation split's when there is one (the test split then appears once, at the end)
    per_epoch = [r for r in evals if r["split"] == (evals[0]["split"] if evals else None) and numeric(r, "epoch")]
    names = sorted({k for r in per_epoch for k in r if k not in ("step", "epoch", "split", "seconds", "loss")
                    and numeric(r, k)})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    if epochs:
        axes[0].plot([r["epoch"] for r in epochs], [r["loss"] for r in epochs], "o-", label="train loss (epoch mean)")
    if any(numeric(r, "loss") for r in per_epoch):
        axes[0].plot([r["epoch"] for r in per_epoch if numeric(r, "loss")],
                     [r["loss"] for r in per_epoch if numeric(r, "loss")], "o-",
                     label=f"{per_epoch[0]['split']} loss")
    for name in names:
        points = [(r["epoch"], r[name]) for r in per_epoch if numeric(r, name)]
        axes[1].plot(*zip(*points), "o-", label=f"{per_epoch[0]['split']} {name}")
    axes[0].set(xlabel="epoch", ylabel=loss_name, title="loss")
    axes[1].set(xlabel="epoch", title="evaluation metrics")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    image = io.BytesIO()  # drawn in memory, then written whole: a full disk leaves the previous plot
    fig.savefig(image, format="png", dpi=100)
    plt.close(fig)
    png = Path(png)
    atomic_write(png, image.getvalue(), f"{Path(metrics_file).name} and the checkpoint are complete: free space "
                 f"and run `perceiver train --resume {png.parent}` to draw the plot again", fsync=False)
    return True
