"""The embedded default (`perceiver train digits`) over several seeds: test accuracy (exact, independent of the
machine's load), wall time of training (an upper bound on a shared machine) and the CPU time the process used.

    OMP_NUM_THREADS=2 python benchmarks/digits_seeds.py --seeds 0,1,2 --out digits-seeds.json
    python benchmarks/digits_seeds.py --seeds 0,1,2 --set train.epochs=20 --set data.batch_size=128
    OMP_NUM_THREADS=2 PYTHONPATH=$OLD:$OLD/plugins/perceiver-image python benchmarks/digits_seeds.py --out before.json
        # OLD: an older tree (e.g. `git archive 2d8d1dc | tar -x -C $OLD`), measured in the same sitting

Each seed is one `perceiver train digits --set train.seed=S` in its own process, run one after another. Prints a
table (per seed and the mean) last and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def run_seed(seed: int, sets: list[str], pipeline: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        argv = [sys.executable, "-m", "perceiver_core", "train", pipeline, "--out", out, "--no-progress", "--json",
                "--set", f"train.seed={seed}"]
        for s in sets:
            argv += ["--set", s]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        # cwd: the run's own folder, so that `-m perceiver_core` imports what PYTHONPATH / the environment give (a
        # checkout's root as cwd would come first on sys.path and shadow an older tree put on PYTHONPATH)
        proc = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=out)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(proc.stdout)
    return {"seed": seed, "accuracy": result["accuracy"], "loss": result["loss"], "steps": result["step"],
            "train_seconds": result["train_seconds"], "process_seconds": round(wall, 2),
            "cpu_seconds": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2),
            "load_average": os.getloadavg()[0]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="pipeline override (repeatable)")
    p.add_argument("--pipeline", default="digits")
    p.add_argument("--out", help="write the results as JSON")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    runs = []
    for seed in seeds:
        runs.append(run_seed(seed, args.set, args.pipeline))
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    report = {"pipeline": args.pipeline, "sets": args.set, "threads": os.environ.get("OMP_NUM_THREADS"),
              "python": platform.python_version(), "runs": runs,
              "mean_accuracy": statistics.mean(r["accuracy"] for r in runs),
              "median_train_seconds": statistics.median(r["train_seconds"] for r in runs),
              "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs)}
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    print(f"{args.pipeline} {' '.join(args.set)} (OMP_NUM_THREADS={report['threads']})")
    print(f"{'seed':>4} {'accuracy':>9} {'steps':>6} {'train s':>8} {'CPU s':>7} {'load':>5}")
    for r in runs:
        print(f"{r['seed']:>4} {r['accuracy']:>9.4f} {r['steps']:>6} {r['train_seconds']:>8.1f} "
              f"{r['cpu_seconds']:>7.1f} {r['load_average']:>5.1f}")
    print(f"mean accuracy {report['mean_accuracy']:.4f}; median training {report['median_train_seconds']:.1f} s, "
          f"median CPU {report['median_cpu_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
