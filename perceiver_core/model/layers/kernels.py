"""Attention kernels chosen per shape: the policy `MultiHeadAttention` routes its attention through.

Three exact rewrites of softmax(q k^T / sqrt(d)) v, each checked against the plain fp32 path in
tests/test_kernels.py:

- Head-dim padding: fused kernels want per-head dims that are multiples of 8. Zero channels appended to q and k
  add nothing to q k^T, and zero channels appended to v give zero outputs that are sliced off, so padding is
  exact when the scale stays 1/sqrt(original head dim). (The ImageNet Fourier cross-attend has one head of 261.)
- SDPA backend per shape (CUDA): flash needs fp16/bf16, no mask and a head dim <= 256; cuDNN wins for many
  queries (512 latents: 241-642 TFLOP/s forward) but falls to 61 TFLOP/s with 128 queries, where flash holds 234;
  the memory-efficient kernel accepts masks and fp32 but its backward is pathological (11-61 TFLOP/s) for long
  keys and few batch x heads, so training never picks it there. Figures: /work/shared/BENCHMARKS.md.
- Materialised attention (`materialised_attention`): for half-precision heads wider than any fused kernel takes
  (the ImageNet cross-attend's 261 channels pad to 264 > flash's 256), scores and probabilities are held in the
  inputs' dtype: two large GEMMs and one fused softmax. SDPA's math kernel would upcast every operand to fp32
  and the memory-efficient kernel's backward crawls with one head over long keys.
- Chunked cross-attend (`chunked_cross_attend`): for very large inputs, keys are processed in chunks with an
  online softmax (flash-decoding style): per chunk the position features, LayerNorm, K and V are computed and
  folded into a running (max, sum, accumulator), so the input is never materialised whole. With gradients it is
  split-key attention (`split_key.py`): the backward recomputes each chunk from the saved log-sum-exp.

Nothing here changes parameters: weights of the plain path load unchanged.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, replace
from typing import Iterator, Literal

import torch
import torch.nn.functional as F

from .split_key import _forward_chunks, split_key_attention

PadMode = Literal["auto", "always", "never"]


@dataclass(frozen=True)
class AttentionPolicy:
    """How attention is computed; set once per process by the backend (`Backend.attention_policy()`).

    pad_head_dim: "auto" pads on CUDA only (the CPU math kernel gains nothing), "always" / "never" force it.
    pad_multiple: per-head dims are padded up to a multiple of this.
    select_sdpa_backend: on CUDA, restrict SDPA to the kernels that suit the shape (see `sdpa_backends`).
    cudnn_min_queries: at or above this many queries cuDNN is preferred to flash (BENCHMARKS.md: 512 vs 128).
    long_keys: key count from which the memory-efficient kernel's backward is avoided in training.
    max_fused_head_dim: the largest (padded) head dim flash attention takes.
    materialise_wide_heads: on CUDA in fp16/bf16, heads wider than max_fused_head_dim take
        `materialised_attention` instead of SDPA's math or memory-efficient kernels.
    materialise_inference_elements: without autograd, the materialised path is taken only while its score
        matrix B*H*N*M has at most this many elements (it holds scores and probabilities at once); larger
        inference calls take SDPA's memory-efficient kernel, whose slow part is the backward.
    chunk_budget_elements: the chunked cross-attend shrinks its chunk so that one [B, H, N, chunk] fp32
        temporary has at most this many elements (about three are alive at once).
    chunk_keys: key chunk of the chunked cross-attend; chunk_min_keys: inputs with fewer keys are not chunked.
    train_chunk_min_keys: the same threshold with gradients (the split-key path, whose backward recomputes each
        chunk: about 1.5x the cross-attend's FLOPs, for memory that does not grow with the input; 512^2 images
        and up, where the plain path keeps [B, M, C]-sized activations of a few hundred MB per example).
    """

    pad_head_dim: PadMode = "auto"
    pad_multiple: int = 8
    select_sdpa_backend: bool = True
    cudnn_min_queries: int = 256
    long_keys: int = 4096
    max_fused_head_dim: int = 256
    materialise_wide_heads: bool = True
    materialise_inference_elements: int = 2**31
    chunk_keys: int = 16384
    chunk_min_keys: int = 65536
    train_chunk_min_keys: int = 262144
    chunk_budget_elements: int = 2**26

    def with_(self, **changes) -> "AttentionPolicy":
        return replace(self, **changes)


_POLICY = AttentionPolicy()


def get_policy() -> AttentionPolicy:
    return _POLICY


def set_policy(policy: AttentionPolicy) -> AttentionPolicy:
    """Install `policy` for this process; returns the previous one."""
    global _POLICY
    previous, _POLICY = _POLICY, policy
    return previous


@contextlib.contextmanager
def use_policy(policy: AttentionPolicy) -> Iterator[AttentionPolicy]:
    previous = set_policy(policy)
    try:
        yield policy
    finally:
        set_policy(previous)


def padded_dim(dim: int, multiple: int) -> int:
    return dim if multiple <= 1 else -(-dim // multiple) * multiple


def _pad_last(x: torch.Tensor, to: int) -> torch.Tensor:
    return x if x.shape[-1] == to else F.pad(x, (0, to - x.shape[-1]))


@dataclass(frozen=True)
class ProjectionPadding:
    """Padded widths for one attention call: per-head qk / v dims and the two inputs' channels.

    Zero rows appended to each head of the q and k projections add nothing to q k^T; zero rows of the v projection
    give zero output channels, which zero columns of the output projection ignore; zero input channels meet zero
    weight columns. So the padded computation is exact (with the scale of the original head dim), and it is done
    on the weights ([out, in], small), not on the activations ([B, M, C], large).
    """

    dqk: int
    dv: int
    q_in: int
    kv_in: int

    @staticmethod
    def project(linear: torch.nn.Linear, x: torch.Tensor, heads: int, dim: int, to: int) -> torch.Tensor:
        """linear(x) with each head's dim rows padded to `to` and the input columns to x's width: [.., H*to]."""
        w, b = linear.weight, linear.bias  # [H*dim, Cin], [H*dim]
        if to != dim:
            w = F.pad(w.view(heads, dim, -1), (0, 0, 0, to - dim)).reshape(heads * to, -1)
            b = None if b is None else F.pad(b.view(heads, dim), (0, to - dim)).reshape(-1)
        w = _pad_last(w, x.shape[-1])
        return F.linear(x, w, b)

    @staticmethod
    def output(linear: torch.nn.Linear, x: torch.Tensor, heads: int, dim: int, to: int) -> torch.Tensor:
        """The output projection of x [.., H*to] with zero weight columns for each head's padding."""
        w = linear.weight  # [out, H*dim]
        if to != dim:
            w = F.pad(w.view(w.shape[0], heads, dim), (0, to - dim)).reshape(w.shape[0], heads * to)
        return F.linear(x, w, linear.bias)


def projection_padding(policy: AttentionPolicy, device_type: str, *, dqk: int, dv: int, q_in: int,
                       kv_in: int) -> ProjectionPadding | None:
    """How to pad one attention call's projections, or None when every width is already kernel-friendly (or the
    policy does not pad on this device). qk and v head dims are padded to one common width: several fused
    kernels want Dqk == Dv."""
    pad = policy.pad_head_dim == "always" or (policy.pad_head_dim == "auto" and device_type == "cuda")
    if not pad:
        return None
    mult = policy.pad_multiple
    head = max(padded_dim(dqk, mult), padded_dim(dv, mult))
    plan = ProjectionPadding(head, head, padded_dim(q_in, mult), padded_dim(kv_in, mult))
    if (plan.dqk, plan.dv, plan.q_in, plan.kv_in) == (dqk, dv, q_in, kv_in):
        return None
    return plan


def pad_channels(x: torch.Tensor, to: int) -> torch.Tensor:
    """x [.., C] with zero channels appended up to `to` (cast first to the autocast dtype, so one copy)."""
    if x.shape[-1] == to:
        return x
    if torch.is_autocast_enabled(x.device.type):
        x = x.to(torch.get_autocast_dtype(x.device.type))
    return F.pad(x, (0, to - x.shape[-1]))


def sdpa_backends(policy: AttentionPolicy, *, queries: int, keys: int, batch_heads: int, head_dim: int,
                  dtype: torch.dtype, has_mask: bool, training: bool) -> list:
    """The SDPA kernels allowed for one CUDA call, best first (an empty list: let torch choose)."""
    from torch.nn.attention import SDPBackend

    half = dtype in (torch.float16, torch.bfloat16)
    allowed = []
    cudnn_ok = half and head_dim <= 128
    flash_ok = half and not has_mask and head_dim <= policy.max_fused_head_dim
    if cudnn_ok and queries >= policy.cudnn_min_queries:
        allowed.append(SDPBackend.CUDNN_ATTENTION)
    if flash_ok:
        allowed.append(SDPBackend.FLASH_ATTENTION)
    if cudnn_ok and queries < policy.cudnn_min_queries:
        allowed.append(SDPBackend.CUDNN_ATTENTION)
    # The memory-efficient backward is very slow (11-61 TFLOP/s) for long keys and few batch x heads: not in
    # training there. With head dims over 256 (no fused kernel fits) that leaves the math path: unmeasured on a
    # GPU in this project so far (docs/benchmarks.md has the command that decides it).
    slow_backward = training and keys >= policy.long_keys and batch_heads < 64
    if not slow_backward:
        allowed.append(SDPBackend.EFFICIENT_ATTENTION)
    allowed.append(SDPBackend.MATH)
    return allowed


def materialises(policy: AttentionPolicy, *, device_type: str, dtype: torch.dtype, head_dim: int,
                 dropout_p: float = 0.0, score_elements: int = 0, grad: bool = True) -> bool:
    """Whether `attention` takes `materialised_attention`: half precision on CUDA with heads no fused kernel
    takes (padded head dim over max_fused_head_dim), no dropout, and, without autograd, a score matrix of
    `score_elements` within the policy's inference budget."""
    return (policy.materialise_wide_heads and device_type == "cuda" and dropout_p == 0.0
            and dtype in (torch.float16, torch.bfloat16)
            and padded_dim(head_dim, policy.pad_multiple) > policy.max_fused_head_dim
            and (grad or score_elements <= policy.materialise_inference_elements))


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, attn_mask: torch.Tensor | None = None,
              dropout_p: float = 0.0, training: bool = False, policy: AttentionPolicy | None = None,
              scale: float | None = None) -> torch.Tensor:
    """softmax(q k^T * scale) v for q [B, H, N, Dqk], k [B, H, M, Dqk], v [B, H, M, Dv] -> [B, H, N, Dv].

    attn_mask: boolean, broadcastable to [B, H, N, M], True = attend. scale: 1/sqrt(Dqk) unless given (inputs
    whose heads were padded with zero channels pass the scale of their unpadded dim). Exactly SDPA's result,
    computed with the kernels the policy picks for this shape and device.
    """
    policy = policy or _POLICY
    dqk, dv = q.shape[-1], v.shape[-1]
    scale = 1.0 / math.sqrt(dqk) if scale is None else scale
    if materialises(policy, device_type=q.device.type, dtype=q.dtype, head_dim=dqk, dropout_p=dropout_p,
                    score_elements=q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2],
                    grad=torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))):
        return materialised_attention(q, k, v, attn_mask=attn_mask, scale=scale)  # [B, H, N, Dv]
    pad = policy.pad_head_dim == "always" or (policy.pad_head_dim == "auto" and q.device.type == "cuda")
    if pad:
        pqk, pv = padded_dim(dqk, policy.pad_multiple), padded_dim(dv, policy.pad_multiple)
        # One common padded dim: several kernels need Dqk == Dv.
        if pqk != dqk or pv != dv or (q.device.type == "cuda" and dqk != dv):
            width = max(pqk, pv)
            q, k, v = _pad_last(q, width), _pad_last(k, width), _pad_last(v, width)  # [.., width]
    ctx = contextlib.nullcontext()
    if policy.select_sdpa_backend and q.device.type == "cuda" and not torch.compiler.is_compiling():
        from torch.nn.attention import sdpa_kernel

        allowed = sdpa_backends(policy, queries=q.shape[-2], keys=k.shape[-2],
                                batch_heads=q.shape[0] * q.shape[1], head_dim=q.shape[-1], dtype=q.dtype,
                                has_mask=attn_mask is not None, training=training and torch.is_grad_enabled())
        ctx = sdpa_kernel(allowed, set_priority=True)
    with ctx:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, scale=scale)
    return out[..., :dv] if out.shape[-1] != dv else out  # [B, H, N, Dv]


def materialised_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                           attn_mask: torch.Tensor | None = None, scale: float | None = None) -> torch.Tensor:
    """softmax(q k^T * scale) v with the scores and probabilities [B, H, N, M] held in q's dtype.

    Autocast is off inside: under autocast `softmax` would return fp32 probabilities and the following matmul
    would keep a second, bf16 copy for its backward (3x the memory of this path). `torch.softmax` of a half tensor
    accumulates in fp32 and returns half. Precision: the scores are rounded to bf16 before the softmax (as HF's
    hand-written attention does under autocast; flash keeps them in fp32): on random inputs the output's relative
    error against fp32 is 4.8e-3, SDPA's kernels 1.7-2.3e-3 (docs/benchmarks.md). Backward is autograd's: two
    GEMMs per operand and one fused softmax backward. The scale is folded into q ([N, D] elements, not [N, M]).
    Rows whose keys are all masked give zeros, as SDPA does.
    """
    dtype = torch.promote_types(torch.promote_types(q.dtype, k.dtype), v.dtype)
    with torch.autocast(q.device.type, enabled=False):
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        s = torch.matmul(q * scale, k.transpose(-1, -2))  # [B, H, N, M]
        if attn_mask is not None:
            s = s.masked_fill(~attn_mask, float("-inf"))
        p = torch.softmax(s, dim=-1)  # [B, H, N, M], same dtype
        del s
        if attn_mask is not None:  # fully masked rows: softmax of all -inf is NaN; SDPA returns zeros
            p = p.masked_fill(~attn_mask.any(dim=-1, keepdim=True), 0.0)
        return torch.matmul(p, v)  # [B, H, N, Dv]


_FORCE_PLAIN = 0


def force_plain(delta: int) -> None:
    """Count of installed attention-weights hooks (attention.add_weights_hook): while positive, no chunked
    cross-attend is taken, so every attention runs through its module and its weights can be read."""
    global _FORCE_PLAIN
    _FORCE_PLAIN = max(0, _FORCE_PLAIN + delta)


def should_chunk(keys: int, policy: AttentionPolicy | None = None, chunk: int | None = None, *,
                 grad: bool = False) -> bool:
    """Whether a cross-attend over `keys` inputs takes the chunked path: `chunk` when the config sets one (0:
    never), else the policy's threshold, `chunk_min_keys` in inference and `train_chunk_min_keys` with gradients
    (the split-key path, `split_key.split_key_attention`)."""
    if _FORCE_PLAIN:
        return False
    policy = policy or _POLICY
    if chunk is not None:
        return chunk > 0 and keys > chunk
    return keys >= (policy.train_chunk_min_keys if grad else policy.chunk_min_keys)


def chunked_attention_core(qh: torch.Tensor, num_keys: int, kv_fn, chunk: int) -> torch.Tensor:
    """Online-softmax attention of qh [B, H, N, Dqk] over `num_keys` keys, `chunk` keys at a time (no gradients;
    `split_key.split_key_attention` is the differentiable form).

    kv_fn(start, stop) -> (k [B, H, c, Dqk], v [B, H, c, Dv], key_mask [B, c] or None) computes the keys and
    values of one chunk (position features, LayerNorm and projections). Accumulates in fp32: running max
    m [B, H, N, 1], running sum l and the weighted value sum acc [B, H, N, Dv]. Fully masked rows give zeros,
    as SDPA does.
    """
    out, _ = _forward_chunks(qh, num_keys, chunk, 1.0 / math.sqrt(qh.shape[-1]),
                             lambda start, stop, _: kv_fn(start, stop), ())
    return out.to(qh.dtype)  # [B, H, N, Dv]


_CHUNKED_OBSERVERS: list[list] = []


@contextlib.contextmanager
def observe_chunked_attention(shapes: list) -> Iterator[list]:
    """Append (B, H, N, M, Dqk, Dv) of every chunked cross-attend run inside the block to `shapes` (FLOP counting:
    these attend without calling their MultiHeadAttention module)."""
    _CHUNKED_OBSERVERS.append(shapes)
    try:
        yield shapes
    finally:
        # by identity: two observers' lists may compare equal
        del _CHUNKED_OBSERVERS[next(i for i, o in enumerate(_CHUNKED_OBSERVERS) if o is shapes)]


def chunked_cross_attend(block, q: torch.Tensor, kv, key_mask: torch.Tensor | None = None,
                         chunk: int | None = None) -> torch.Tensor:
    """`CrossAttention.forward(q, kv, key_mask)` computed over chunks of keys; same parameters, same result, same
    gradients.

    q [B, N, Cq] (latents); kv: the input [B, M, Ckv] as a tensor (then key_mask [B, M]) or an `InputStream`
    (which carries its own mask and computes position features per chunk) -> [B, N, Cq]. Per chunk: LayerNorm,
    K and V projections, then the online softmax; only [B, c, Ckv]-sized intermediates exist at once. With
    gradients, the attention is `split_key.split_key_attention`: its backward recomputes each chunk, so nothing
    [B, M, .]-sized is kept for it either (attention dropout is not supported there: the encoder checks).
    """
    from ..input_stream import InputStream, concat_features

    stream = kv if isinstance(kv, InputStream) else None
    attn = block.attention
    b, n, _ = q.shape
    h = attn.num_heads
    # [B, H, N, chunk] fp32 temporaries: shrink the chunk for large batches so they stay within the budget
    chunk = min(chunk or _POLICY.chunk_keys, max(1024, _POLICY.chunk_budget_elements // (b * h * n)))
    qh = attn.q_proj(block.q_norm(q)).view(b, n, h, -1).transpose(1, 2)  # [B, H, N, Dqk]
    params = [p for module in (block.kv_norm, attn.k_proj, attn.v_proj) for p in module.parameters()]
    rows = False  # the stream computes its own rows [start, stop) (several inputs packed: `PackedStream`)
    if stream is not None and stream.packed:
        if torch.is_grad_enabled():  # packed once; the split-key backward slices it like any input
            data, mask, features, ranged = stream.materialise().data, stream.mask, None, False  # [B, M, W]
        else:  # inference: each chunk's rows from the inputs themselves, the packed array never exists
            data, mask, features, ranged, rows = None, None, None, False, True
    elif stream is not None:
        data, mask = stream.base.data, stream.mask  # [B, M, C], [B, M]
        position = stream.position
        ranged = position is not None and position.computes_ranges
        # features [B|1, M, P]: computed per chunk when the encoding can (its weights then listed as params)
        features = None if ranged else stream.features()
        if ranged:
            params += list(position.parameters())
    else:
        data, mask, features, ranged = kv, key_mask, None, False

    def kv_fn(start: int, stop: int, sliced):
        x, feats, chunk_mask = sliced  # [B, c, C], [B|1, c, P] or None, [B, c] or None
        if rows:
            x, chunk_mask = stream.chunk(start, stop)  # [B, c, W] (features inside), [B, c]
        if ranged:
            feats = stream.position.forward_range(stream.base, start, stop)  # [B|1, c, P]
        x = block.kv_norm(concat_features(x, feats))  # [B, c, C + P]
        c = x.shape[1]
        k = attn.k_proj(x).view(b, c, h, -1).transpose(1, 2)  # [B, H, c, Dqk]
        v = attn.v_proj(x).view(b, c, h, -1).transpose(1, 2)  # [B, H, c, Dv]
        return k, v, chunk_mask

    num_keys = stream.num_elements if rows else data.shape[1]
    for shapes in _CHUNKED_OBSERVERS:
        shapes.append((b, h, n, num_keys, attn.qk_channels // h, attn.v_channels // h))
    out = split_key_attention(qh, num_keys, kv_fn, chunk, sliced=(data, features, mask),
                              params=[p for p in params if p.requires_grad])  # [B, H, N, Dv]
    out = out.transpose(1, 2).reshape(b, n, attn.v_channels)  # [B, N, Cv]
    attended = block.dropout(attn.o_proj(out))  # [B, N, Cq]
    x = q + attended if block.use_query_residual else attended
    return x + block.mlp(block.mlp_norm(x))
