"""Arguments of `perceiver bench` (importing this module imports no torch: the parser is built for every command).

    perceiver bench --backend cpu --preset tiny                 # CI-sized, seconds
    perceiver bench --preset imagenet --modes infer --out imagenet.json
    perceiver bench --backend cuda --preset imagenet-batch --compile --out batch.json
    perceiver bench --backend cuda --preset imagenet-sizes --chunk-keys 16384 --no-hf --out sizes.json
    perceiver bench --backend cuda --preset imagenet --modes train --batch 32,64,128 --hf-batch 16,32,64 --compile
    perceiver bench --backend cuda --preset imagenet-large-train --no-hf --profile large.txt
    perceiver bench --backend cuda --preset imagenet --modes train --batch 64 --residual-dtype float32,bfloat16
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ...errors import UserError
from .presets import PRESETS, RESIDUAL_DTYPES


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _modes(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in ("train", "infer")]
    if bad or not modes:
        raise argparse.ArgumentTypeError(f"modes are train and infer (comma-separated), got {text!r}")
    return modes


def _residuals(text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in values if v not in RESIDUAL_DTYPES]
    if bad or not values or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"residual dtypes are {' and '.join(RESIDUAL_DTYPES)} (comma-separated, each "
                                         f"once), got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    names = ", ".join(f"{name} ({preset.description})" for name, preset in PRESETS.items())
    p.add_argument("--preset", default="tiny", choices=list(PRESETS), metavar="NAME", help=f"one of: {names}")
    p.add_argument("--backend", default="auto", help="hardware backend (default: auto)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="autocast dtype (default: the backend's choice)")
    p.add_argument("--batch", type=_ints, metavar="B[,B...]", help="batch sizes (default: the preset's)")
    p.add_argument("--size", type=_ints, metavar="S[,S...]", help="image sides (default: the preset's)")
    p.add_argument("--modes", type=_modes, metavar="train,infer", help="what to time (default: the preset's)")
    p.add_argument("--steps", type=int, metavar="N", help="timed steps per model (median reported)")
    p.add_argument("--warmup", type=int, metavar="N", help="untimed steps per model before timing")
    p.add_argument("--no-hf", action="store_true", help="do not run HF transformers' model")
    p.add_argument("--compile", action="store_true", help="torch.compile our model (where the backend allows)")
    p.add_argument("--compile-mode", choices=["regional", "whole"], default="regional",
                   help="with --compile: each attention block (seconds to compile) or the whole model")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="inference: replay our forward as one CUDA graph per shape (no launch overhead)")
    p.add_argument("--chunk-keys", type=int, metavar="C",
                   help="cross-attend over chunks of C keys for inputs over C keys: online softmax in inference, "
                        "split-key attention (backward recomputing each chunk) in training")
    p.add_argument("--hf-batch", type=_ints, metavar="B[,B...]",
                   help="also run HF's model alone at these batches (stopping at the first out of memory) and "
                        "report the best-vs-best ratio (default: the preset's, e.g. imagenet-batch's 16,32,64,128)")
    p.add_argument("--profile", metavar="FILE",
                   help="after timing, profile a few of our steps per run and write the grouped kernel table "
                        "(CUDA kernels; CPU operators) to FILE (as benchmarks/profile_step.py prints it)")
    p.add_argument("--activation-checkpointing", action="store_true",
                   help="recompute our encoder's blocks in the backward pass (less memory for large batches)")
    p.add_argument("--residual-dtype", type=_residuals, metavar="float32[,bfloat16]",
                   help="our encoder's residual stream (encoder.residual_dtype; bfloat16 needs bf16 autocast); two "
                        "values time both variants interleaved in one run and print their ratio")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="FILE", help="write the results as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run_from_args(args) -> int:
    from .runner import BenchOptions, format_table, run_bench

    if args.steps is not None and args.steps < 1:
        raise UserError("--steps must be at least 1")
    for flag, path in (("--out", args.out), ("--profile", args.profile)):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UserError(f"{flag} {path}: the folder {os.path.dirname(os.path.abspath(path))} does not exist")
    if args.hf_batch and args.no_hf:
        raise UserError("--hf-batch runs HF's model: drop --no-hf, or drop --hf-batch")
    if args.warmup is not None and args.warmup < 0:
        raise UserError("--warmup cannot be negative")
    if args.chunk_keys is not None and args.chunk_keys < 1:
        raise UserError("--chunk-keys must be at least 1")
    log = (lambda s: None) if args.quiet or args.json else (lambda s: print(s, file=sys.stderr, flush=True))
    opts = BenchOptions(preset=args.preset, backend=args.backend, precision=args.precision, batches=args.batch,
                        sizes=args.size, modes=args.modes, steps=args.steps, warmup=args.warmup,
                        hf=not args.no_hf, compile=args.compile, compile_mode=args.compile_mode,
                        cuda_graphs=args.cuda_graphs, chunk_keys=args.chunk_keys,
                        activation_checkpointing=args.activation_checkpointing, hf_batches=args.hf_batch,
                        residual_dtypes=args.residual_dtype,
                        profile=args.profile, seed=args.seed,
                        out=args.out, log=log)
    try:
        report = run_bench(opts)
    except ValueError as exc:  # e.g. a precision the backend does not support
        raise UserError(str(exc)) from None
    print(json.dumps(report, indent=2) if args.json else format_table(report), file=getattr(args, "stdout", None))
    return 0
