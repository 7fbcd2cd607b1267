"""Where the time of one training step goes: the Perceiver IO ImageNet config on CUDA, profiled kernel by kernel.

    python benchmarks/profile_step.py --batch 64 --compile --out profile.json

Builds our model (bf16 autocast, fused AdamW), warms up (compilation), then profiles `--steps` steps with
torch.profiler and groups the CUDA kernel time into classes: matrix products (cuBLAS / CUTLASS), attention
(SDPA kernels), Triton (compiled fusions), other elementwise / reduction kernels, copies, and the optimizer
(the grouping of `perceiver_core.commands.bench.profile`, which `perceiver bench --profile FILE` uses too).
Prints the classes and the top kernels last, and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from perceiver_core.commands.bench.profile import format_profile, profile_steps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--activation-checkpointing", action="store_true")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--out")
    args = p.parse_args(argv)

    from perceiver_core.commands.bench.models import build_ours, ours_batch
    from perceiver_core.commands.bench.presets import PRESETS
    from perceiver_core.model.layers.compile import compile_model
    from perceiver_core.runtime.backends import select_backend
    from perceiver_core.runtime.optim import make_optimizer

    backend = select_backend("cuda")
    device = backend.device()
    torch.manual_seed(0)
    overrides = {"encoder": {"activation_checkpointing": True}} if args.activation_checkpointing else None
    model = build_ours(PRESETS["imagenet"], args.size, overrides=overrides).to(device).train()
    if args.compile:
        compile_model(model, backend.compile_options())
    optimizer = make_optimizer(model, "adamw", 1e-4, 0.01, (0.9, 0.999), device)
    g = torch.Generator().manual_seed(1)
    batch = {**ours_batch(torch.rand(args.batch, args.size, args.size, 3, generator=g)),
             "label": torch.randint(0, 1000, (args.batch,), generator=g)}
    batch = {k: v.to(device) for k, v in batch.items()}

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model.task.loss(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    warmup_s = time.perf_counter() - start
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    step_s = (time.perf_counter() - start) / args.steps

    prof = profile_steps(step, args.steps, device, top=args.top)
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "batch": args.batch,
              "compile": args.compile, "activation_checkpointing": args.activation_checkpointing,
              "step_s": step_s, "warmup_s": warmup_s, "gpu_busy_ms_per_step": prof["busy_ms_per_step"],
              "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
              "classes_ms": prof["classes_ms"], "top": prof["top"]}
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    print(f"\n{report['device']}, batch {args.batch}, {'compiled' if args.compile else 'eager'}: step "
          f"{step_s * 1e3:.1f} ms ({args.batch / step_s:.1f} images/s), peak {report['peak_memory_gib']:.1f} GiB")
    print(format_profile(prof, "kernel classes"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
