"""Validation of the bf16 residual stream (`encoder.residual_dtype`, issue 16): one real training run per variant,
same pipeline, same seed, same data order, loss curves overlaid in one PNG.

    OMP_NUM_THREADS=2 python benchmarks/bf16_residual.py --png docs/img/bf16-residual-losses.png --out bf16res.json
    OMP_NUM_THREADS=1 python benchmarks/bf16_residual.py --set train.max_steps=250 --no-fp32 --jobs 2 --png out.png
    python benchmarks/bf16_residual.py --pipeline hip-digits --seed 1 --png hip.png
    python benchmarks/bf16_residual.py --backend cuda --set data.batch_size=256 --png gpu.png   # on a GPU

Variants (each `perceiver train PIPELINE` in its own process, one after another):
  fp32-residual  bf16 autocast, the residual stream in fp32 (the default of every encoder)
  bf16-residual  bf16 autocast, the residual stream in bf16 (`--set encoder.residual_dtype=bfloat16`)
  fp32           no autocast at all (a reference: how far bf16 autocast itself moves the curve; --no-fp32 skips it)

On the CPU, bf16 autocast is slow on cores without AMX: the point here is the numerics (the loss curve), not the
time. Prints, per variant: final training-epoch loss, final test loss and accuracy (exact), and the largest gap
between the two bf16-autocast variants' per-epoch training losses. Writes JSON with --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

VARIANTS = {
    "fp32-residual": ["train.precision=bf16", "encoder.residual_dtype=float32"],
    "bf16-residual": ["train.precision=bf16", "encoder.residual_dtype=bfloat16"],
    "fp32": ["train.precision=fp32"],
}


def train(pipeline: str, variant: str, seed: int, backend: str, sets: list[str]) -> dict:
    """One `perceiver train` run; its metrics.jsonl rows and the final evaluation."""
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "perceiver_core", "train", pipeline, "--out", out, "--no-progress", "--json",
                "--set", f"backend={backend}", "--set", f"train.seed={seed}", "--set", "train.log_every=1"]
        for s in [*VARIANTS[variant], *sets]:
            argv += ["--set", s]
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=out)
        if proc.returncode != 0:
            raise SystemExit(f"{variant}: perceiver train failed:\n{proc.stderr.strip()}")
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines() if line.strip()]
    final = json.loads(proc.stdout)
    return {"variant": variant, "sets": [*VARIANTS[variant], *sets], "final": final,
            "steps": [r for r in rows if r.get("split") == "train"],
            "epochs": [r for r in rows if r.get("split") == "train_epoch"],
            "evals": [r for r in rows if r.get("split") not in ("train", "train_epoch")]}


def plot(reports: list[dict], path: Path) -> None:
    """One row per report (a seed): training losses (left), test loss (right), the variants overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"fp32-residual": ("tab:blue", "-"), "bf16-residual": ("tab:orange", "--"), "fp32": ("0.5", ":")}
    fig, axes = plt.subplots(len(reports), 2, figsize=(9.5, 3.1 * len(reports)), squeeze=False)
    for (ax_loss, ax_eval), report in zip(axes, reports):
        for run in report["runs"]:
            color, dash = styles[run["variant"]]
            ax_loss.plot([r["step"] for r in run["steps"]], [r["loss"] for r in run["steps"]], color=color,
                         alpha=0.18, linewidth=0.6)
            ax_loss.plot([r["step"] for r in run["epochs"]], [r["loss"] for r in run["epochs"]], color=color,
                         linestyle=dash, linewidth=1.6, label=run["variant"])
            evals = [r for r in run["evals"] if "loss" in r]
            ax_eval.plot([r["step"] for r in evals], [r["loss"] for r in evals], color=color, linestyle=dash,
                         marker="o", markersize=2.5,
                         label=f"{run['variant']}: test acc {run['final']['accuracy']:.4f}")
        ax_loss.set_title(f"{report['pipeline']}, seed {report['seed']}: training loss", fontsize=8)
        ax_loss.set_xlabel("step")
        ax_loss.set_ylabel("bold: epoch mean (cross-entropy)\nfaint: per step (objective)", fontsize=7)
        ax_loss.set_yscale("log")
        ax_loss.legend(fontsize=7)
        ax_eval.set_title(f"{report['pipeline']}, seed {report['seed']}: test loss", fontsize=8)
        ax_eval.set_xlabel("step")
        ax_eval.set_yscale("log")
        ax_eval.legend(fontsize=7)
    fig.suptitle("bf16 autocast with the residual stream in fp32 (default) vs in bf16 "
                 "(encoder.residual_dtype); dotted: no autocast", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pipeline", default="digits")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="cpu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="pipeline override (repeatable)")
    p.add_argument("--no-fp32", action="store_true", help="skip the no-autocast reference run")
    p.add_argument("--jobs", type=int, default=1, help="variants trained at once, each in its own process")
    p.add_argument("--png", type=Path, help="write the overlaid loss curves here")
    p.add_argument("--out", help="write the runs as JSON")
    p.add_argument("--from-json", nargs="+", type=Path, metavar="JSON",
                   help="no training: plot (one row each) and print earlier --out files")
    args = p.parse_args(argv)
    if args.from_json:
        reports = [json.loads(f.read_text()) for f in args.from_json]
        if args.png:
            plot(reports, args.png)
        for report in reports:
            print_report(report)
        return 0
    variants = ["fp32-residual", "bf16-residual"] + ([] if args.no_fp32 else ["fp32"])
    from concurrent.futures import ThreadPoolExecutor

    def one(variant: str) -> dict:
        print(f"training {args.pipeline} ({variant}) ...", file=sys.stderr, flush=True)
        return train(args.pipeline, variant, args.seed, args.backend, args.set)

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:  # each run is its own process; results in variant order
        runs = list(pool.map(one, variants))
    a, b = (next(r for r in runs if r["variant"] == v) for v in ("fp32-residual", "bf16-residual"))
    gaps = [abs(x["loss"] - y["loss"]) / x["loss"] for x, y in zip(a["epochs"], b["epochs"])]
    report = {"pipeline": args.pipeline, "seed": args.seed, "backend": args.backend, "sets": args.set,
              "threads": os.environ.get("OMP_NUM_THREADS"), "python": platform.python_version(),
              "max_relative_epoch_loss_gap": max(gaps) if gaps else None, "runs": runs}
    if args.png:
        plot([report], args.png)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    print_report(report)
    return 0


def print_report(report: dict) -> None:
    sets = " ".join("--set " + s for s in report["sets"])
    print(f"perceiver train {report['pipeline']} {sets} (seed {report['seed']}, {report['backend']}): bf16 autocast "
          "with a fp32 vs a bf16 residual stream")
    print(f"{'variant':<15}{'steps':>6}{'last epoch loss':>17}{'test loss':>11}{'test acc':>10}{'train s':>9}")
    for run in report["runs"]:
        final = run["final"]
        last = run["epochs"][-1]["loss"] if run["epochs"] else float("nan")
        print(f"{run['variant']:<15}{final['step']:>6}{last:>17.4f}{final['loss']:>11.4f}{final['accuracy']:>10.4f}"
              f"{final.get('train_seconds', float('nan')):>9.1f}")
    gap = report.get("max_relative_epoch_loss_gap")
    if gap is not None:
        print(f"largest relative gap between the two residual dtypes' epoch-mean training losses: {gap:.2%}")


if __name__ == "__main__":
    raise SystemExit(main())
