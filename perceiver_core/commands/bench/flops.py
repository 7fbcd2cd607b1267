"""FLOPs of one step, counted with `torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per multiply-add).

FlopCounterMode counts nothing for SDPA on the CPU (`_scaled_dot_product_flash_attention_for_cpu` has no
formula), so attention is also counted analytically from the shapes every `MultiHeadAttention` sees:
forward 2*B*H*N*M*(Dqk + Dv), backward 2x the forward (model FLOPs: the counter's convention for matmuls and
for SDPA on the GPU; a flash backward that recomputes the scores does about 2.5x, which MFU does not credit).
The analytic figure replaces the counter's SDPA entries (whatever they were) and its batched matmuls (`bmm`: in
the bench presets only attention issues them - the materialised path on CUDA, SDPA's math kernel, the chunked
cross-attend - while every projection is an `mm`/`addmm`; a model with other batched matmuls would be
undercounted by them), so the total is the same on every device and path, and equal to what the counter gives
for HF's hand-written attention.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

SDPA_OPS = ("scaled_dot_product", "_flash_attention", "_efficient_attention", "_cudnn_attention")


def attention_shapes(model: nn.Module, run: Callable[[], object]) -> list[tuple[int, int, int, int, int, int]]:
    """(B, H, N, M, Dqk, Dv) of every attention `run()` computes: each call of our MultiHeadAttention modules and
    each chunked cross-attend (which uses the projections of its module directly)."""
    from ...model.layers import kernels
    from ...model.layers.attention import MultiHeadAttention

    shapes: list[tuple[int, int, int, int, int, int]] = []

    def hook(module, args):
        q, kv = args[0], args[1]  # [B, N, Cq], [B, M, Ckv]
        h = module.num_heads
        shapes.append((q.shape[0], h, q.shape[1], kv.shape[1], module.qk_channels // h, module.v_channels // h))

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, MultiHeadAttention)]
    try:
        with kernels.observe_chunked_attention(shapes):
            run()
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def analytic_attention_flops(shapes, backward: bool) -> int:
    forward = sum(2 * b * h * n * m * (dqk + dv) for b, h, n, m, dqk, dv in shapes)
    return int(forward * (3 if backward else 1))


class _OpCounter(TorchDispatchMode):
    """FLOPs per aten op, from the formulas of `torch.utils.flop_counter` (FlopCounterMode's own table), without
    FlopCounterMode's module tracker, which fails under no_grad (and inference is what streams large inputs)."""

    def __init__(self):
        super().__init__()
        self.per_op: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        from torch.utils.flop_counter import flop_registry

        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        if packet in flop_registry:
            name = str(packet)
            self.per_op[name] = self.per_op.get(name, 0) + int(flop_registry[packet](*args, **kwargs, out_val=out))
        return out


def count_flops(run: Callable[[], object], model: nn.Module | None = None, *, backward: bool = False) -> dict:
    """Total FLOPs of `run()` (one step). With `model`, attention is counted analytically from its shapes.

    Returns {"total": int, "counted": int (the op counter, attention excluded), "attention": int (analytic, or
    the counter's SDPA entries when no model is given)}.
    """
    shapes: list = []
    counter = _OpCounter()
    with counter:
        if model is not None:
            shapes = attention_shapes(model, run)
        else:
            run()
    per_op = counter.per_op
    sdpa = sum(v for k, v in per_op.items() if any(s in k for s in SDPA_OPS))
    if model is not None:  # attention written as matmuls is replaced by the analytic count too
        sdpa += per_op.get("aten.bmm", 0)
    counted = sum(per_op.values()) - sdpa
    attention = analytic_attention_flops(shapes, backward) if model is not None else sdpa
    return {"total": int(counted + attention), "counted": int(counted), "attention": int(attention)}


def matmul_peak(device: torch.device, dtype: torch.dtype, *, size: int | None = None, repeats: int = 10) -> float:
    """Measured FLOP/s of a square matrix product on `device` in `dtype` (the best of `repeats`).

    On a shared machine this underestimates the peak; the bench measures it before and after its runs and
    keeps the larger figure.
    """
    import time

    size = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.matmul(a, b)
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best
