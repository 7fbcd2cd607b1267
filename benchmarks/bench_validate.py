"""`perceiver validate` time against the number of pipelines in one registry file: is it linear?

    python benchmarks/bench_validate.py                        # 250, 500, 1000, 2000 pipelines, this environment
    python benchmarks/bench_validate.py --python OTHER/bin/python  # the same files through another installation
    python benchmarks/bench_validate.py --no-build             # tables only (no meta-device build)

Each file holds one valid base pipeline (the small digits Perceiver IO) and N pipelines extending it, each with its
own encoder size; every second one has an error (num_classes = 1), so both the error path (locating each error's
file:line) and the build path (one meta-device build per valid pipeline) are timed. Each size runs in a fresh
`perceiver validate` process: wall time, and the CPU time (user + system) of that process, which a busy machine
inflates less. Both include the imports (torch, the plugins): the first row shows the fixed cost.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE = """\
[pipelines.base]
description = "small Perceiver IO on digits"
task = { use = "classification", num_classes = 10 }
data = { use = "image.digits", batch_size = 32 }
preprocessor = { use = "image.pixels" }
position = { use = "fourier", num_bands = 4 }
encoder = { use = "perceiver", num_latents = 16, latent_channels = 32, self_attends_per_block = 1, self_attend_heads = 2 }
decoder = { use = "classification" }
train = { max_steps = 2 }
"""


def registry_text(n: int) -> str:
    parts = [BASE]
    for i in range(n):
        parts.append(f'\n[pipelines.p{i}]\nextends = "base"\n'
                     f'encoder = {{ use = "perceiver", num_latents = {8 + i % 64} }}\n')
        if i % 2:
            parts.append('task = { use = "classification", num_classes = 1 }\n')
    return "".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="250,500,1000,2000", help="numbers of pipelines (comma-separated)")
    parser.add_argument("--python", default=sys.executable, help="interpreter whose perceiver_core is timed")
    parser.add_argument("--no-build", action="store_true", help="pass --no-build to validate")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds allowed per size")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            path = Path(tmp) / f"many{n}.toml"
            path.write_text(registry_text(n))
            cmd = [args.python, "-m", "perceiver_core", "validate", str(path)]
            cmd += ["--no-build"] if args.no_build else []
            start = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                seconds = time.perf_counter() - start
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                errors = len(proc.stderr.strip().splitlines())
                status = f"exit {proc.returncode}, {errors} error lines"
            except subprocess.TimeoutExpired:
                seconds, cpu, status = float("nan"), float("nan"), f"timed out after {args.timeout:.0f} s"
            rows.append((n, seconds, cpu, status))
            print(f"{n:>6} pipelines  wall {seconds:8.2f} s  cpu {cpu:8.2f} s  {1000 * cpu / n:7.2f} ms cpu/pipeline  "
                  f"({status})", flush=True)
    print()
    print("| pipelines | wall (s) | CPU (s) | CPU ms per pipeline |")
    print("|---:|---:|---:|---:|")
    for n, seconds, cpu, _ in rows:
        print(f"| {n:,} | {seconds:.2f} | {cpu:.2f} | {1000 * cpu / n:.2f} |")


if __name__ == "__main__":
    main()
