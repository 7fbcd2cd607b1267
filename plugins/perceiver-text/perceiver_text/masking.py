"""Span masking for masked language modelling: which byte positions are hidden, drawn from a seeded generator."""

from __future__ import annotations

import math

import torch

from .tokenizer import MASK, OFFSET

IGNORE = -100  # label of positions that carry no loss


def mask_spans(ids: torch.Tensor, probability: float, span_length: int, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """ids [L] -> (masked ids [L], labels [L]): about `probability` of the byte positions (never special tokens)
    in runs of `span_length` are replaced by [MASK]; labels hold the original id there and IGNORE elsewhere."""
    real = torch.nonzero(ids >= OFFSET).flatten()  # positions of bytes
    labels = torch.full_like(ids, IGNORE)
    if probability <= 0 or real.numel() == 0:
        return ids, labels
    n = real.numel()
    target = max(1, round(probability * n))
    span = min(span_length, n)
    num_spans = math.ceil(target / span)
    starts = torch.randperm(n - span + 1, generator=generator)[:num_spans]  # [S], indices into `real`
    chosen = (starts[:, None] + torch.arange(span)[None, :]).flatten().unique()  # [<= S * span]
    positions = real[chosen]
    labels[positions] = ids[positions]
    masked = ids.clone()
    masked[positions] = MASK
    return masked, labels
