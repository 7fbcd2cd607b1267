"""A grid of `perceiver train digits` configurations over several seeds: test accuracy (exact for a given thread
count), optimizer steps, and the CPU time per step (the fair measure on a shared machine: wall time is an upper
bound there). The search that chose the shipped digits config (issue 16; docs/benchmarks.md).

    OMP_NUM_THREADS=1 python benchmarks/digits_search.py --seeds 0,1,2 --jobs 2 --out search.jsonl \\
        --config shipped= \\
        --config "patches2=preprocessor.use=image.patches preprocessor.patch_size=2"

Each --config is NAME=SETS (space-separated KEY=VALUE pipeline overrides, empty for the pipeline as shipped); every
(config, seed) is one `perceiver train` process (benchmarks/digits_seeds.py's run_seed), `--jobs` of them at a time.
Each finished run is appended to --out as one JSON line (so a long search can be watched and resumed: runs already
in the file are skipped); a table of the means per config is printed last.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits_seeds import run_seed  # noqa: E402


def parse_config(text: str) -> tuple[str, list[str]]:
    name, _, sets = text.partition("=")
    return name.strip(), sets.split()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", action="append", default=[], metavar="NAME=SETS", help="a configuration (repeatable)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--pipeline", default="digits")
    p.add_argument("--jobs", type=int, default=1, help="training processes at a time")
    p.add_argument("--out", required=True, help="JSON lines, appended to (runs already there are skipped)")
    args = p.parse_args()
    configs = dict(parse_config(c) for c in args.config)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    done: dict[tuple[str, int], dict] = {}
    out = Path(args.out)
    if out.exists():
        for line in out.read_text().splitlines():
            row = json.loads(line)
            done[(row["config"], row["seed"])] = row
    todo = [(name, seed) for name in configs for seed in seeds if (name, seed) not in done]

    def run(item):
        name, seed = item
        row = {"config": name, "sets": configs[name], "threads": os.environ.get("OMP_NUM_THREADS"),
               **run_seed(seed, configs[name], args.pipeline)}
        row["cpu_ms_per_step"] = round(row["cpu_seconds"] / row["steps"] * 1e3, 2)
        with out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), file=sys.stderr, flush=True)
        return row

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for row in pool.map(run, todo):
            done[(row["config"], row["seed"])] = row
    print(f"{'config':<24}{'seeds':>6}{'mean acc':>9}{'min':>7}{'steps':>6}{'CPU ms/step':>12}{'CPU s':>7}")
    for name in configs:
        rows = [done[(name, s)] for s in seeds if (name, s) in done]
        if not rows:
            continue
        print(f"{name:<24}{len(rows):>6}{statistics.mean(r['accuracy'] for r in rows):>9.4f}"
              f"{min(r['accuracy'] for r in rows):>7.4f}{rows[0]['steps']:>6}"
              f"{statistics.median(r['cpu_ms_per_step'] for r in rows):>12.1f}"
              f"{statistics.median(r['cpu_seconds'] for r in rows):>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
