"""Split-key attention: softmax(q k^T * scale) v over keys computed chunk by chunk, with gradients.

A cross-attend over M input elements normally keeps the normalised input, the keys and the values ([B, M, C]
each) and, on some kernels, the [B, H, N, M] probabilities for its backward: memory that grows with M. Here the
keys are split into chunks:

- forward: for each chunk, `kv_fn` computes its keys and values (position features, LayerNorm, projections);
  its scores are folded into a running maximum, sum and weighted value sum (an online softmax). The result is the
  exact attention output O [B, H, N, Dv] and the log-sum-exp L [B, H, N, 1] of every query's scores.
- backward (flash-attention style): for each chunk again, `kv_fn` recomputes K and V with autograd on, and the
  probabilities are rebuilt exactly from the saved log-sum-exp, P = exp(S - L). With D = rowsum(dO * O):
  dV = P^T dO, dS = P * (dO V^T - D), dQ += dS K * scale, dK = dS^T Q * scale; dK and dV are then pushed through
  that chunk's K/V computation (`torch.autograd.grad`), giving the chunk's share of the input's and the weights'
  gradients.

Saved for the backward: the queries, O and L ([B, H, N, .]: independent of M) and references to tensors that
exist anyway (the input, the weights). So the cross-attend's training memory grows with the chunk, not with M
(tests/test_split_key.py measures the saved tensors). Cost: K and V are computed twice and the scores three
times (forward, and twice in the backward's recomputation), about 1.5x the plain path's FLOPs for the cross-attend.

Arithmetic is in fp32 (scores, softmax statistics, gradients), whatever the inputs' dtype, as in the inference
chunked path (`kernels.chunked_attention_core`); attention dropout is not supported (the callers check).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

#: kv_fn(start, stop, sliced) -> (k [B, H, c, Dqk], v [B, H, c, Dv], key_mask [B, c] or None), where `sliced` are
#: the `sliced` tensors of `split_key_attention` cut to elements [start, stop) along dim 1 (None stays None).
KVFn = Callable[[int, int, Sequence[torch.Tensor | None]], tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]


def _forward_chunks(qh: torch.Tensor, num_keys: int, chunk: int, scale: float, kv_fn: KVFn,
                    sliced: Sequence[torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """(out [B, H, N, Dv] fp32, lse [B, H, N, 1] fp32) by an online softmax over chunks of keys. Rows whose keys
    are all masked give out = 0 and lse = -inf."""
    b, h, n, _ = qh.shape
    q32 = qh.float() * scale  # [B, H, N, Dqk]
    m_run = torch.full((b, h, n, 1), float("-inf"), device=qh.device)
    l_run = torch.zeros((b, h, n, 1), device=qh.device)
    acc = None
    for start in range(0, num_keys, chunk):
        stop = min(start + chunk, num_keys)
        k, v, key_mask = kv_fn(start, stop, _cut(sliced, start, stop))  # [B, H, c, Dqk], [B, H, c, Dv], [B, c]
        s = torch.matmul(q32, k.float().transpose(-1, -2))  # [B, H, N, c]
        if key_mask is not None:
            s = s.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        m_new = torch.maximum(m_run, s.amax(dim=-1, keepdim=True))  # [B, H, N, 1]
        m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)  # all -inf so far
        p = torch.exp(s - m_safe)  # [B, H, N, c]
        correction = torch.exp(m_run - m_safe)  # [B, H, N, 1]
        l_run = l_run * correction + p.sum(dim=-1, keepdim=True)
        pv = torch.matmul(p, v.float())  # [B, H, N, Dv]
        acc = pv if acc is None else acc * correction + pv
        m_run = m_new
        del s, p, k, v
    out = acc / l_run.clamp_min(torch.finfo(torch.float32).tiny)  # [B, H, N, Dv]
    lse = m_run + torch.log(l_run)  # [B, H, N, 1]; -inf for fully masked rows (l = 0)
    return out, lse


def _cut(tensors: Sequence[torch.Tensor | None], start: int, stop: int) -> list[torch.Tensor | None]:
    return [None if t is None else t[:, start:stop] for t in tensors]


def _autocast_state(device_type: str) -> tuple[bool, torch.dtype]:
    return torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)


class _SplitKeyAttention(torch.autograd.Function):
    """Inputs: (spec, qh, *sliced, *params). `sliced` are cut per chunk along dim 1 and handed to kv_fn; `params`
    are tensors kv_fn reads whole (weights): listed so that their gradients flow back through this function."""

    @staticmethod
    def forward(ctx, spec, qh, *tensors):
        kv_fn, num_keys, chunk, scale, n_sliced = spec
        sliced = tensors[:n_sliced]
        out, lse = _forward_chunks(qh, num_keys, chunk, scale, kv_fn, sliced)
        ctx.spec = spec
        ctx.autocast = _autocast_state(qh.device.type)
        ctx.none = [t is None for t in tensors]
        ctx.save_for_backward(qh, out, lse, *[t for t in tensors if t is not None])
        return out.to(qh.dtype)  # [B, H, N, Dv]

    @staticmethod
    def backward(ctx, grad_out):
        kv_fn, num_keys, chunk, scale, n_sliced = ctx.spec
        qh, out, lse, *present = ctx.saved_tensors
        it = iter(present)
        tensors = [None if none else next(it) for none in ctx.none]
        needs = ctx.needs_input_grad[2:]  # per tensor in `tensors`
        do = grad_out.float()  # [B, H, N, Dv]
        delta = (do * out).sum(dim=-1, keepdim=True)  # [B, H, N, 1]
        lse_safe = torch.where(torch.isinf(lse), torch.zeros_like(lse), lse)  # fully masked rows: P = 0 below
        q32 = qh.float() * scale  # [B, H, N, Dqk]
        dq = torch.zeros_like(q32)
        grads: list[torch.Tensor | None] = [None] * len(tensors)
        for i in range(n_sliced):  # gradients of the sliced inputs are written chunk by chunk
            if needs[i] and tensors[i] is not None:
                grads[i] = torch.zeros_like(tensors[i])
        enabled, dtype = ctx.autocast
        for start in range(0, num_keys, chunk):
            stop = min(start + chunk, num_keys)
            with torch.enable_grad():
                leaves = [None if t is None else t[:, start:stop].detach().requires_grad_(needs[i])
                          for i, t in enumerate(tensors[:n_sliced])]
                with torch.autocast(qh.device.type, dtype=dtype, enabled=enabled):
                    k, v, key_mask = kv_fn(start, stop, leaves)  # recomputed with autograd: [B, H, c, D]
            k32, v32 = k.detach().float(), v.detach().float()
            s = torch.matmul(q32, k32.transpose(-1, -2))  # [B, H, N, c]
            if key_mask is not None:
                s = s.masked_fill(~key_mask[:, None, None, :], float("-inf"))
            p = torch.exp(s - lse_safe)  # [B, H, N, c], exactly the forward's probabilities
            del s
            dv = torch.matmul(p.transpose(-1, -2), do)  # [B, H, c, Dv]
            ds = p * (torch.matmul(do, v32.transpose(-1, -2)) - delta)  # [B, H, N, c]
            del p
            dq += torch.matmul(ds, k32)  # [B, H, N, Dqk] (times scale below)
            dk = torch.matmul(ds.transpose(-1, -2), q32)  # [B, H, c, Dqk]; q32 carries the scale
            del ds
            wanted = [(i, leaf) for i, leaf in enumerate(leaves) if leaf is not None and needs[i]]
            wanted += [(n_sliced + j, t) for j, t in enumerate(tensors[n_sliced:]) if needs[n_sliced + j]]
            if wanted and (k.requires_grad or v.requires_grad):
                outputs = [(x, g.to(x.dtype)) for x, g in ((k, dk), (v, dv)) if x.requires_grad]
                got = torch.autograd.grad([x for x, _ in outputs], [t for _, t in wanted],
                                          [g for _, g in outputs], allow_unused=True)
                for (i, _), g in zip(wanted, got):
                    if g is None:
                        continue
                    if i < n_sliced:
                        grads[i][:, start:stop] += g
                    else:
                        grads[i] = g if grads[i] is None else grads[i] + g
            del k, v, dk, dv
        dq = (dq * scale).to(qh.dtype) if ctx.needs_input_grad[1] else None
        return (None, dq, *grads)


def split_key_attention(qh: torch.Tensor, num_keys: int, kv_fn: KVFn, chunk: int, *,
                        sliced: Sequence[torch.Tensor | None] = (), params: Sequence[torch.Tensor] = (),
                        scale: float | None = None) -> torch.Tensor:
    """softmax(qh k^T * scale) v over `num_keys` keys, `chunk` at a time; differentiable with memory that does
    not grow with `num_keys` (see the module's docstring).

    qh [B, H, N, Dqk]. kv_fn(start, stop, sliced_chunks) -> (k [B, H, c, Dqk], v [B, H, c, Dv], key_mask [B, c]
    or None). sliced: tensors [B|1, M, ...] (the input, its position features, its mask) cut to each chunk along
    dim 1 before kv_fn sees them; their gradients are assembled chunk by chunk. params: every other tensor that
    kv_fn reads and that may need a gradient (the LayerNorm's and projections' weights): they must be listed, or
    they get no gradient. scale: 1/sqrt(Dqk) unless given. Returns [B, H, N, Dv] in qh's dtype.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    scale = 1.0 / math.sqrt(qh.shape[-1]) if scale is None else scale
    spec = (kv_fn, num_keys, chunk, scale, len(sliced))
    tensors = [*sliced, *params]
    if not torch.is_grad_enabled() or not any(t is not None and t.requires_grad for t in (qh, *tensors)):
        out, _ = _forward_chunks(qh, num_keys, chunk, scale, kv_fn, sliced)
        return out.to(qh.dtype)
    return _SplitKeyAttention.apply(spec, qh, *tensors)
