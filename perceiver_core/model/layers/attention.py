"""Attention blocks with the semantics of DeepMind's perceiver.py.

- `MultiHeadAttention`: separate qk and v channels, an output projection, scaled dot-product attention through
  the kernel policy of `kernels.py` (SDPA with head dims padded exactly and kernels picked per shape).
- `CrossAttention`: pre-LayerNorm on queries and keys/values, optional query residual, then an MLP.
- `SelfAttention`: pre-LayerNorm, residual attention, residual MLP.

Attention weights (for `perceiver explain` and your own analyses) are read through a hook:

    with record_attention_weights(model) as records:   # AttentionRecord(name, call, weights [B, H, N, M])
        model(batch)

While a weights hook is installed, every `MultiHeadAttention` computes its attention on the plain path
(`plain_attention`: fp32 scores, softmax, weights times values), hands the weights [B, H, N, M] to the hooks and
returns the same output the fused kernels would (tests/test_explain.py checks it), and the chunked cross-attend
is not taken. Without a hook the check is one test of an empty list: nothing else changes and nothing is stored.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..input_stream import concat_features
from . import kernels


class SquaredReLU(nn.Module):
    """relu(x)^2, HiP's MLP non-linearity."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.square(F.relu(x))


def activation(name: str) -> nn.Module:
    if name == "gelu":
        return nn.GELU()
    if name == "squared_relu":
        return SquaredReLU()
    raise ValueError(f"unknown activation {name!r}; use 'gelu' or 'squared_relu'")


class MLP(nn.Module):
    """Linear(C -> wC), non-linearity, Linear(wC -> C), dropout."""

    def __init__(self, channels: int, widening: int = 1, dropout: float = 0.0, act: str = "gelu"):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels * widening)
        self.act = activation(act)
        self.fc2 = nn.Linear(channels * widening, channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.act(self.fc1(x))))


#: functions (module, weights [B, H, N, M]) called by every attention while installed (`add_weights_hook`)
_WEIGHTS_HOOKS: list[Callable[["MultiHeadAttention", torch.Tensor], None]] = []


class AttentionRecord(NamedTuple):
    """One attention computation: the module's qualified name in the model, its call number (a shared module
    runs several times per forward), and the weights [B, H, N (queries), M (keys)], detached, in fp32."""

    name: str
    call: int
    weights: torch.Tensor


class _HookHandle:
    def __init__(self, fn):
        self.fn = fn

    def remove(self) -> None:
        # by identity: two hooks may compare equal
        for i, hook in enumerate(_WEIGHTS_HOOKS):
            if hook is self.fn:
                del _WEIGHTS_HOOKS[i]
                kernels.force_plain(-1)
                return


def add_weights_hook(fn: Callable[["MultiHeadAttention", torch.Tensor], None]) -> _HookHandle:
    """Call fn(module, weights [B, H, N, M]) on every attention computed until `handle.remove()`. While any hook
    is installed, attention takes the plain path (`plain_attention`) and the chunked cross-attend is off."""
    _WEIGHTS_HOOKS.append(fn)
    kernels.force_plain(+1)
    return _HookHandle(fn)


@contextlib.contextmanager
def record_attention_weights(model: nn.Module | None = None,
                             keep: Callable[[str], bool] | None = None) -> Iterator[list[AttentionRecord]]:
    """Collect the weights of every attention of `model` (all models when None) run inside the block, in order.
    `keep(name)` selects modules by qualified name (e.g. lambda n: "cross_attend" in n) so large self-attention
    maps need not be stored."""
    names = {id(m): n for n, m in model.named_modules()} if model is not None else None
    records: list[AttentionRecord] = []
    calls: dict[str, int] = {}

    def hook(module: "MultiHeadAttention", weights: torch.Tensor) -> None:
        name = names.get(id(module)) if names is not None else type(module).__name__
        if name is None or (keep is not None and not keep(name)):
            return
        calls[name] = calls.get(name, 0) + 1
        records.append(AttentionRecord(name, calls[name] - 1, weights.detach().float()))

    handle = add_weights_hook(hook)
    try:
        yield records
    finally:
        handle.remove()


def plain_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, attn_mask: torch.Tensor | None = None,
                    scale: float | None = None, dropout_p: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T * scale) v with the weights materialised in fp32: q [B, H, N, Dqk], k [B, H, M, Dqk],
    v [B, H, M, Dv] -> (out [B, H, N, Dv] in v's dtype, weights [B, H, N, M] fp32). Rows whose keys are all
    masked give zero weights and outputs, as SDPA does."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    with torch.autocast(q.device.type, enabled=False):
        s = torch.matmul(q.float() * scale, k.float().transpose(-1, -2))  # [B, H, N, M]
        if attn_mask is not None:
            s = s.masked_fill(~attn_mask, float("-inf"))
        p = torch.softmax(s, dim=-1)  # [B, H, N, M]
        if attn_mask is not None:
            p = p.masked_fill(~attn_mask.any(dim=-1, keepdim=True), 0.0)
        weights = p
        if dropout_p > 0:
            p = F.dropout(p, dropout_p)
        out = torch.matmul(p, v.float()).to(v.dtype)  # [B, H, N, Dv]
    return out, weights


class MultiHeadAttention(nn.Module):
    """Queries [B, N, Cq] attend to keys/values [B, M, Ckv] -> [B, N, out_channels]."""

    def __init__(self, q_channels: int, kv_channels: int, *, num_heads: int = 1, qk_channels: int | None = None,
                 v_channels: int | None = None, out_channels: int | None = None, dropout: float = 0.0):
        super().__init__()
        qk_channels = qk_channels or q_channels
        v_channels = v_channels or qk_channels
        out_channels = out_channels or v_channels
        if qk_channels % num_heads or v_channels % num_heads:
            raise ValueError(f"qk_channels ({qk_channels}) and v_channels ({v_channels}) must be divisible by "
                             f"num_heads ({num_heads})")
        self.num_heads = num_heads
        self.qk_channels, self.v_channels = qk_channels, v_channels
        self.q_proj = nn.Linear(q_channels, qk_channels)
        self.k_proj = nn.Linear(kv_channels, qk_channels)
        self.v_proj = nn.Linear(kv_channels, v_channels)
        self.o_proj = nn.Linear(v_channels, out_channels)
        self.dropout = dropout

    def forward(self, q: torch.Tensor, kv: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, _ = q.shape
        m = kv.shape[1]
        h = self.num_heads
        dqk, dv = self.qk_channels // h, self.v_channels // h
        plan = kernels.projection_padding(kernels.get_policy(), q.device.type, dqk=dqk, dv=dv,
                                          q_in=q.shape[-1], kv_in=kv.shape[-1])
        if plan is None:
            qh = self.q_proj(q).view(b, n, h, -1).transpose(1, 2)  # [B, N, Cqk] -> [B, H, N, Cqk/H]
            kh = self.k_proj(kv).view(b, m, h, -1).transpose(1, 2)  # [B, H, M, Cqk/H]
            vh = self.v_proj(kv).view(b, m, h, -1).transpose(1, 2)  # [B, H, M, Cv/H]
        else:
            # Padded weights (exact, see kernels.projection_padding): every GEMM and the attention kernel see
            # dims that are multiples of 8. Inputs of odd width get one cast-and-pad copy (autocast would cast
            # them for each projection anyway); q, k and v are produced at their padded width, not copied.
            q, kv = kernels.pad_channels(q, plan.q_in), kernels.pad_channels(kv, plan.kv_in)
            qh = plan.project(self.q_proj, q, h, dqk, plan.dqk).view(b, n, h, -1).transpose(1, 2)
            kh = plan.project(self.k_proj, kv, h, dqk, plan.dqk).view(b, m, h, -1).transpose(1, 2)
            vh = plan.project(self.v_proj, kv, h, dv, plan.dv).view(b, m, h, -1).transpose(1, 2)
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]  # [B, 1, 1, M], True = attend
        dropout_p = self.dropout if self.training else 0.0
        if _WEIGHTS_HOOKS:  # someone reads the weights (perceiver explain): the plain path computes them
            out, weights = plain_attention(qh, kh, vh, attn_mask=attn_mask, scale=dqk ** -0.5, dropout_p=dropout_p)
            for hook in list(_WEIGHTS_HOOKS):
                hook(self, weights)  # [B, H, N, M]
        else:
            # The kernel policy picks SDPA kernels (or the materialised path) per shape (exact; see kernels.py).
            out = kernels.attention(qh, kh, vh, attn_mask=attn_mask, dropout_p=dropout_p, training=self.training,
                                    scale=dqk ** -0.5)  # [B, H, N, Dv(padded)]
        out = out.transpose(1, 2).reshape(b, n, -1)  # [B, N, H * Dv(padded)]
        if plan is None:
            return self.o_proj(out)  # [B, N, out]
        return plan.output(self.o_proj, out, h, dv, plan.dv)  # [B, N, out]


class CrossAttention(nn.Module):
    """LN(q), LN(kv) -> attention -> (+ q) -> + MLP(LN(.)). Output has the query's channels."""

    def __init__(self, q_channels: int, kv_channels: int, *, num_heads: int = 1, qk_channels: int | None = None,
                 v_channels: int | None = None, widening: int = 1, dropout: float = 0.0,
                 use_query_residual: bool = True, act: str = "gelu"):
        super().__init__()
        self.q_norm = nn.LayerNorm(q_channels)
        self.kv_norm = nn.LayerNorm(kv_channels)
        self.attention = MultiHeadAttention(q_channels, kv_channels, num_heads=num_heads, qk_channels=qk_channels,
                                            v_channels=v_channels, out_channels=q_channels, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.mlp_norm = nn.LayerNorm(q_channels)
        self.mlp = MLP(q_channels, widening, dropout, act)
        self.use_query_residual = use_query_residual

    def forward(self, q: torch.Tensor, kv: torch.Tensor, key_mask: torch.Tensor | None = None,
                kv_features: torch.Tensor | None = None) -> torch.Tensor:
        """q [B, N, Cq], kv [B, M, Ckv] -> [B, N, Cq]. kv_features [B|1, M, P]: position features concatenated
        to kv here (Ckv = C + P), inside the block, so that a compiled block fuses the concatenation into the
        LayerNorm and keeps the small parts, not the [B, M, C + P] input, for its backward."""
        kv = concat_features(kv, kv_features)  # [B, M, C + P]
        attended = self.dropout(self.attention(self.q_norm(q), self.kv_norm(kv), key_mask))  # [B, N, Cq]
        x = q + attended if self.use_query_residual else attended
        return x + self.mlp(self.mlp_norm(x))


class SelfAttention(nn.Module):
    """x + attention(LN(x)), then + MLP(LN(.)). [B, N, D] -> [B, N, D]."""

    def __init__(self, channels: int, *, num_heads: int = 8, qk_channels: int | None = None,
                 v_channels: int | None = None, widening: int = 1, dropout: float = 0.0, act: str = "gelu"):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.attention = MultiHeadAttention(channels, channels, num_heads=num_heads, qk_channels=qk_channels,
                                            v_channels=v_channels, out_channels=channels, dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.mlp_norm = nn.LayerNorm(channels)
        self.mlp = MLP(channels, widening, dropout, act)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        normed = self.norm(x)
        x = x + self.dropout(self.attention(normed, normed, key_mask))
        return x + self.mlp(self.mlp_norm(x))


class LatentBlock(nn.Module):
    """A stack of self-attends applied as one unit (so a block can be shared and reapplied)."""

    def __init__(self, depth: int, channels: int, **kwargs):
        super().__init__()
        self.layers = nn.ModuleList(SelfAttention(channels, **kwargs) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def trunc_normal_(t: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    """Truncated normal at two standard deviations, as DeepMind and HF initialise latents and queries."""
    return nn.init.trunc_normal_(t, std=std, a=-2 * std, b=2 * std)
