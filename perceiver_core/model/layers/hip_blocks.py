"""HiP's building blocks on grouped arrays [B, G, N, C]: groups are a batch axis, so every group runs the same
attention and MLP weights; only the latent queries are learned per group.

- `HiPBlock`: learned latents [G, N, D] (+ the U-Net skip, projected when widths differ) cross-attend to the
  block's input (1 head by default, qk = v = the input width, output = D, post-attention residual), then
  n self-attends. Every MLP is Linear(wC) -> squared ReLU -> Linear(C).
- `ReconstructionHead`: per-position queries [B, G, Q, E] cross-attend (1 head, widening 1, no residual) to the
  final latents of the same group: reconstruction is group-local.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .attention import CrossAttention, SelfAttention, trunc_normal_
from .residual import ResidualDtype, residual_stream

ACT = "squared_relu"


def variance_scaling_(t: torch.Tensor) -> torch.Tensor:
    """Haiku's VarianceScaling(1.0) for a [rows, C] table (fan-in = rows): truncated normal, std 1/sqrt(rows)."""
    return trunc_normal_(t, std=1.0 / math.sqrt(t.shape[0]))


class HiPBlock(nn.Module):
    """[B, G, M, C_in] -> [B, G, N, D] (N = `latents_train` random latents per (example, group) in training when
    set, else all N)."""

    def __init__(self, in_channels: int, *, groups: int, latents: int, channels: int, self_attends: int,
                 self_attend_heads: int, cross_attend_heads: int = 1, cross_attend_widening: int = 1,
                 self_attend_widening: int = 4, skip_channels: int | None = None, latents_train: int | None = None,
                 dropout: float = 0.0, residual_dtype: ResidualDtype = "float32"):
        super().__init__()
        self.residual_dtype = residual_dtype  # the latent stream's dtype under bf16 autocast (layers/residual.py)
        if channels % self_attend_heads or in_channels % cross_attend_heads:
            raise ValueError(f"a HiP block of {channels} channels on {in_channels} input channels cannot have "
                             f"{self_attend_heads} self-attend / {cross_attend_heads} cross-attend heads")
        if latents_train is not None and not 1 <= latents_train <= latents:
            raise ValueError(f"latents_train ({latents_train}) must be between 1 and the block's {latents} latents")
        self.groups, self.num_latents, self.channels = groups, latents, channels
        self.latents_train = latents_train
        self.latents = nn.Parameter(torch.empty(groups * latents, channels))  # [G N, D]: learned per group
        variance_scaling_(self.latents)
        # U-Net skip from the mirrored encoder block, projected when its width differs (with bias, as conv_1d)
        self.skip_proj = (nn.Linear(skip_channels, channels)
                          if skip_channels is not None and skip_channels != channels else None)
        self.cross_attend = CrossAttention(channels, in_channels, num_heads=cross_attend_heads,
                                           qk_channels=in_channels, v_channels=in_channels,
                                           widening=cross_attend_widening, dropout=dropout,
                                           use_query_residual=True, act=ACT)
        self.self_attends = nn.ModuleList(
            SelfAttention(channels, num_heads=self_attend_heads, widening=self_attend_widening, dropout=dropout,
                          act=ACT) for _ in range(self_attends))

    def queries(self, batch: int, skip: torch.Tensor | None) -> torch.Tensor:
        """The latent queries [B, G, N', D]: learned (subsampled in training), plus the projected skip."""
        q = self.latents.view(1, self.groups, self.num_latents, self.channels).expand(batch, -1, -1, -1)
        if self.training and self.latents_train is not None and self.latents_train < self.num_latents:
            # a random subset of latents per (example, group), drawn without replacement
            keep = torch.rand(batch, self.groups, self.num_latents, device=q.device).argsort(-1)
            keep = keep[..., :self.latents_train, None].expand(-1, -1, -1, self.channels)  # [B, G, N', D]
            q = torch.gather(q, 2, keep)
        if skip is not None:
            if skip.shape[:3] != q.shape[:3]:
                raise ValueError(f"U-Net skip {list(skip.shape)} does not match the block's latents "
                                 f"{list(q.shape)}")
            q = q + (self.skip_proj(skip) if self.skip_proj is not None else skip)
        return q

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        b, g, m, c = x.shape
        if g != self.groups:
            raise ValueError(f"a HiP block of {self.groups} groups got {g} groups")
        q = residual_stream(self.queries(b, skip), self.residual_dtype)  # [B, G, N, D]; bf16 if asked (autocast)
        n = q.shape[2]
        z = self.cross_attend(q.reshape(b * g, n, self.channels), x.reshape(b * g, m, c))  # [B G, N, D]
        for layer in self.self_attends:
            z = layer(z)  # [B G, N, D]
        return z.view(b, g, n, self.channels)


class ReconstructionHead(nn.Module):
    """queries [B, G, Q, E] x latents [B, G, N, D] -> [B, G, Q, E]."""

    def __init__(self, query_channels: int, latent_channels: int):
        super().__init__()
        self.cross_attend = CrossAttention(query_channels, latent_channels, num_heads=1,
                                           qk_channels=latent_channels, v_channels=latent_channels, widening=1,
                                           use_query_residual=False, act=ACT)

    def forward(self, queries: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        b, g, q, e = queries.shape
        _, g2, n, d = latents.shape
        if g2 != g:
            raise ValueError(f"{g} groups of queries but {g2} groups of latents")
        out = self.cross_attend(queries.reshape(b * g, q, e), latents.reshape(b * g, n, d))  # [B G, Q, E]
        return out.view(b, g, q, e)
