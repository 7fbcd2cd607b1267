"""CPU regression check of issue 5: the digits pipeline's training time and a Perceiver IO ImageNet-config
forward at batch 1, timed so that figures taken before and after a change can be compared.

    OMP_NUM_THREADS=2 python benchmarks/bench_cpu_regression.py --label before --out before.json
    python benchmarks/bench_cpu_regression.py --label after --out after.json --compare before.json
    python benchmarks/bench_cpu_regression.py --ab 40 --out ab.json   # both code paths, interleaved
    python benchmarks/bench_cpu_regression.py --ab-digits 3 --out ab-digits.json   # whole runs, alternating

Prints a short table last and writes JSON. The machine is shared: quote medians and ratios, never one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def time_digits(repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "perceiver_core", "train", "digits", "--out", out,
                            "--no-progress"], check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
    return times


_PLAIN_RUN = (
    "import sys, torch.nn.functional as F; import perceiver_core.model.layers.kernels as k\n"
    "k.attention = lambda q, kk, v, *, attn_mask=None, dropout_p=0.0, training=False, policy=None: "
    "F.scaled_dot_product_attention(q, kk, v, attn_mask=attn_mask, dropout_p=dropout_p)\n"
    "from perceiver_core.commands.cli import main; sys.exit(main(sys.argv[1:]))")


def ab_digits_runs(pairs: int) -> dict[str, list[float]]:
    """Whole `perceiver train digits` runs, alternating the plain SDPA call ("before") and the policy ("after")."""
    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(pairs):
        for label in ("before", "after"):
            with tempfile.TemporaryDirectory() as out:
                argv = ["train", "digits", "--out", out, "--no-progress"]
                cmd = ([sys.executable, "-c", _PLAIN_RUN, *argv] if label == "before"
                       else [sys.executable, "-m", "perceiver_core", *argv])
                start = time.perf_counter()
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                times[label].append(time.perf_counter() - start)
    return times


def time_imagenet_forward(repeats: int) -> list[float]:
    import torch

    from perceiver_core.commands.bench.models import build_ours, ours_batch
    from perceiver_core.commands.bench.presets import PRESETS

    torch.manual_seed(0)
    model = build_ours(PRESETS["imagenet"]).eval()
    images = torch.rand(1, 224, 224, 3)
    times = []
    with torch.no_grad():
        model(ours_batch(images))  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model(ours_batch(images))
            times.append(time.perf_counter() - start)
    return times


def _plain_sdpa(q, k, v, *, attn_mask=None, dropout_p=0.0, training=False, policy=None):
    """The attention call exactly as MultiHeadAttention made it before the kernel policy."""
    import torch.nn.functional as F

    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)


def ab_interleaved(step, repeats: int) -> dict[str, list[float]]:
    """Time `step()` alternately through the plain SDPA call ("before") and the kernel policy ("after")."""
    from perceiver_core.model.layers import kernels

    policy_attention = kernels.attention
    times: dict[str, list[float]] = {"before": [], "after": []}
    try:
        for _ in range(repeats):
            for label, fn in (("before", _plain_sdpa), ("after", policy_attention)):
                kernels.attention = fn
                start = time.perf_counter()
                step()
                times[label].append(time.perf_counter() - start)
    finally:
        kernels.attention = policy_attention
    return times


def policy_overhead_us(calls: int = 20000, blocks: int = 9) -> dict[str, float]:
    """Per-call cost in microseconds of plain SDPA vs the policy on a tiny CPU input (the policy's own overhead,
    which load noise cannot hide): medians over interleaved blocks of `calls` calls."""
    import torch

    from perceiver_core.model.layers import kernels

    q = torch.randn(1, 1, 4, 8)
    per = {"before": [], "after": []}
    for _ in range(blocks):
        for label, fn in (("before", _plain_sdpa), ("after", kernels.attention)):
            start = time.perf_counter()
            for _ in range(calls):
                fn(q, q, q, attn_mask=None, dropout_p=0.0, training=False)
            per[label].append((time.perf_counter() - start) / calls * 1e6)
    return {k: statistics.median(v) for k, v in per.items()}


def ab_imagenet_forward(repeats: int) -> dict[str, list[float]]:
    import torch

    from perceiver_core.commands.bench.models import build_ours, ours_batch
    from perceiver_core.commands.bench.presets import PRESETS

    torch.manual_seed(0)
    model = build_ours(PRESETS["imagenet"]).eval()
    batch = ours_batch(torch.rand(1, 224, 224, 3))

    def step():
        with torch.no_grad():
            model(batch)
    step()
    return ab_interleaved(step, repeats)


def ab_digits_train_step(repeats: int) -> dict[str, list[float]]:
    import torch

    from perceiver_core.data.loader import collate
    from perceiver_core.model.pipeline import build_dataset, build_from_spec
    from perceiver_core.registry.file import load_registry
    from perceiver_core.runtime.optim import make_optimizer

    spec = load_registry().resolve("digits")
    dataset = build_dataset(spec)
    torch.manual_seed(0)
    model = build_from_spec(spec, dataset=dataset).train()
    examples = dataset.examples("train")
    n = spec["data"].config.batch_size
    batch = collate([model.prepare(examples[i]) for i in range(n)])
    batch["label"] = torch.tensor([int(examples[i]["label"]) for i in range(n)])
    optimizer = make_optimizer(model, "adamw", 1e-3, 0.0, (0.9, 0.999), torch.device("cpu"))

    def step():
        loss = model.task.loss(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    step()
    return ab_interleaved(step, repeats)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--label", default="run")
    p.add_argument("--out", required=True)
    p.add_argument("--digits-repeats", type=int, default=1)
    p.add_argument("--forward-repeats", type=int, default=3)
    p.add_argument("--compare", help="an earlier JSON of this script: print the ratios")
    p.add_argument("--ab", type=int, metavar="N", help="instead: N interleaved before/after pairs in one process "
                                                        "(plain SDPA call vs the kernel policy)")
    p.add_argument("--ab-digits", type=int, metavar="N", help="instead: N pairs of whole digits training runs, "
                                                                "plain SDPA call vs the kernel policy, alternating")
    args = p.parse_args()
    import torch

    if args.ab_digits:
        runs = ab_digits_runs(args.ab_digits)
        Path(args.out).write_text(json.dumps({"label": args.label, "digits_train_s": runs}, indent=2) + "\n")
        b, a = statistics.median(runs["before"]), statistics.median(runs["after"])
        print(f"digits train, whole runs: before {b:.2f} s, after {a:.2f} s, after/before {a / b:.3f}")
        print(f"  before {', '.join(f'{t:.1f}' for t in runs['before'])}; after {', '.join(f'{t:.1f}' for t in runs['after'])}")
        return 0

    if args.ab:
        result = {"label": args.label, "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "attention_call_us": policy_overhead_us(),
                  "digits_train_step": ab_digits_train_step(args.ab),
                  "imagenet_forward_b1": ab_imagenet_forward(max(3, args.ab // 4))}
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"{'interleaved A/B':<22}{'before s':>10}{'after s':>10}{'after/before':>14}")
        us = result["attention_call_us"]
        print(f"{'attention call (us)':<22}{us['before']:>10.2f}{us['after']:>10.2f}{us['after'] / us['before']:>14.3f}")
        for key in ("imagenet_forward_b1", "digits_train_step"):
            b, a = statistics.median(result[key]["before"]), statistics.median(result[key]["after"])
            print(f"{key:<22}{b:>10.4f}{a:>10.4f}{a / b:>14.3f}")
        return 0

    result = {"label": args.label, "torch": torch.__version__, "python": platform.python_version(),
              "threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
              "cpu": platform.processor() or platform.machine(),
              "imagenet_forward_b1_s": time_imagenet_forward(args.forward_repeats),
              "digits_train_s": time_digits(args.digits_repeats)}
    for key in ("imagenet_forward_b1_s", "digits_train_s"):
        result[key + "_median"] = statistics.median(result[key])
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'measure':<28}{'median s':>10}  runs")
    for key in ("imagenet_forward_b1_s", "digits_train_s"):
        print(f"{key:<28}{result[key + '_median']:>10.2f}  {', '.join(f'{t:.2f}' for t in result[key])}")
    if args.compare:
        before = json.loads(Path(args.compare).read_text())
        for key in ("imagenet_forward_b1_s", "digits_train_s"):
            ratio = result[key + "_median"] / before[key + "_median"]
            print(f"{key:<28} after/before = {ratio:.3f} ({before['label']} {before[key + '_median']:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
