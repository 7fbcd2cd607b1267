"""Attention kernels on the Perceiver IO ImageNet shapes, forward + backward, bf16 (CUDA): the measurements behind
the kernel policy of `perceiver_core/model/layers/kernels.py`. Prints a table last and writes JSON.

    python benchmarks/bench_attention_kernels.py --out kernels.json
    python benchmarks/bench_attention_kernels.py --batch 64 --keys 50176 --out kernels.json

Cases: the cross-attend (512 latent queries over 50,176 pixels, 1 head of 261 channels) through SDPA's math kernel
(padded to 264), SDPA's memory-efficient kernel (padded to 264), and our materialised path (eager and compiled);
the self-attend (512 x 512, 8 heads of 128) through cuDNN and flash. Each case: median of CUDA-event timings
after warm-up, random inputs, peak memory, TFLOP/s (forward 4*B*H*N*M*D, backward 2x), and the relative error
of its output against an fp32 reference of the same inputs.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
import torch.nn.functional as F


def _time(fn, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def _case(name, attend, q, k, v, ref, warmup, steps):
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    grad = torch.randn(ref.shape, device=q.device, dtype=q.dtype)

    def fwd_bwd():
        out = attend(*leaves)
        out.backward(grad)

    def fwd():
        with torch.no_grad():
            attend(*leaves)

    row = {"case": name}
    try:
        with torch.no_grad():
            out = attend(*leaves).float()
        row["rel_err"] = ((out - ref).norm() / ref.norm()).item()
        torch.cuda.reset_peak_memory_stats()
        row["fwd_s"] = _time(fwd, warmup, steps)
        row["fwd_bwd_s"] = _time(fwd_bwd, warmup, steps)
        row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    except Exception as exc:  # noqa: BLE001 - a kernel that refuses a shape is a result
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    torch.cuda.empty_cache()
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--keys", type=int, default=224 * 224)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out")
    args = p.parse_args(argv)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from perceiver_core.model.layers import kernels

    torch.manual_seed(0)
    dev, bf16 = "cuda", torch.bfloat16
    b, n, m = args.batch, 512, args.keys
    rows = []

    def flops(h, nq, mk, d):
        return 4 * b * h * nq * mk * d

    def padded(backend):
        def run(q, k, v):
            qp, kp, vp = (F.pad(t, (0, 3)) for t in (q, k, v))  # 261 -> 264
            with sdpa_kernel([backend]):
                return F.scaled_dot_product_attention(qp, kp, vp, scale=261 ** -0.5)[..., :261]
        return run

    compiled = torch.compile(kernels.materialised_attention, dynamic=False)
    q, k, v = (torch.randn(b, 1, s, 261, device=dev, dtype=bf16) for s in (n, m, m))
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float())  # fp32 reference, same inputs
    cross = [("math (SDPA, padded 264)", padded(SDPBackend.MATH)),
             ("memory-efficient (SDPA, padded 264)", padded(SDPBackend.EFFICIENT_ATTENTION)),
             ("materialised (ours, eager)", kernels.materialised_attention),
             ("materialised (ours, compiled)", compiled)]
    for name, fn in cross:
        row = _case(f"cross 512x{m} d261: {name}", fn, q, k, v, ref, args.warmup, args.steps)
        row["flops"] = flops(1, n, m, 261)
        rows.append(row)
        print(row, flush=True)
    del q, k, v, ref
    torch.cuda.empty_cache()

    q, k, v = (torch.randn(b, 8, n, 128, device=dev, dtype=bf16) for _ in range(3))
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    for name, backend in (("cuDNN", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
        def run(q_, k_, v_, backend=backend):
            with sdpa_kernel([backend]):
                return F.scaled_dot_product_attention(q_, k_, v_)
        row = _case(f"self 512x512 8x128: {name}", run, q, k, v, ref, args.warmup, args.steps)
        row["flops"] = flops(8, n, n, 128)
        rows.append(row)
        print(row, flush=True)

    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "batch": b, "keys": m,
              "rows": rows}
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    print(f"\n{report['device']}, torch {report['torch']}, batch {b}, bf16; fwd+bwd TFLOP/s counts the backward as 2x")
    print(f"{'case':<62}{'fwd ms':>8}{'fwd TF/s':>9}{'f+b ms':>9}{'f+b TF/s':>9}{'peak GiB':>9}{'rel err':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['case']:<62}  {r['error']}")
            continue
        print(f"{r['case']:<62}{r['fwd_s'] * 1e3:>8.2f}{r['flops'] / r['fwd_s'] / 1e12:>9.0f}"
              f"{r['fwd_bwd_s'] * 1e3:>9.2f}{3 * r['flops'] / r['fwd_bwd_s'] / 1e12:>9.0f}{r['peak_gib']:>9.2f}"
              f"{r['rel_err']:>9.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
