"""Per-modality held-out loss curves of a multimodal run, from its metrics.jsonl (one panel per output).

    perceiver train multimodal-ae-tiny --out runs/mmae
    python benchmarks/multimodal_loss_curves.py runs/mmae docs/img/multimodal-ae-tiny-losses.png

Reads the evaluation rows (`split` = the eval split) and plots every `<output>_loss` (and `<output>_accuracy`)
against the training step; prints the first and last value of each so the fall can be read without the picture.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("split") not in ("train", "train_epoch") and any(k.endswith("_loss") for k in r)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder with metrics.jsonl")
    parser.add_argument("png", type=Path, help="where to write the figure")
    args = parser.parse_args(argv)
    rows = read_rows(args.run)
    if not rows:
        raise SystemExit(f"{args.run / 'metrics.jsonl'}: no evaluation rows with per-output losses")
    keys = sorted({k for r in rows for k in r if k.endswith("_loss") or k.endswith("_accuracy")})

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(3.0 * len(keys), 2.6), squeeze=False)
    print(f"{'metric':<16} {'first':>10} {'last':>10}  (held-out, steps {rows[0]['step']} -> {rows[-1]['step']})")
    for ax, key in zip(axes[0], keys):
        points = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", linewidth=1)
        if key.endswith("_loss"):
            ax.set_yscale("log")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        print(f"{key:<16} {points[0][1]:>10.6f} {points[-1][1]:>10.6f}")
    fig.tight_layout()
    args.png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.png, dpi=80)
    plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
