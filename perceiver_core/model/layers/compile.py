"""Compiling a pipeline: region by region (each attention block) or whole.

A Perceiver IO ImageNet encoder applies one block of 6 self-attends 8 times (48 layers). Compiling the whole model
unrolls all 48 into one graph: minutes of compilation per batch shape. Compiling each attention block instead
("regional" compilation) gives one graph per distinct block shape, reused by every layer with that shape and every
repeat of a shared block: seconds per batch shape, and the same fusions (LayerNorm, GELU, residuals, the cast
to bf16 and the softmax of materialised attention live inside the blocks). Weights are untouched: a compiled model
saves, loads and checkpoints as the plain one does.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

CompileMode = Literal["regional", "whole"]

#: Graphs kept per compiled code object. Regional compilation compiles `nn.Module._call_impl` once per block
#: shape x train/eval x batch shape; torch's default (8) would silently fall back to eager in a batch sweep.
RECOMPILE_LIMIT = 256


def regions(model: nn.Module) -> list[nn.Module]:
    """The modules compiled by regional compilation: every attention block (cross- and self-attends)."""
    from .attention import CrossAttention, SelfAttention

    return [m for m in model.modules() if isinstance(m, (CrossAttention, SelfAttention))]


def compile_model(model: nn.Module, options: dict[str, Any] | None = None, mode: CompileMode = "regional"):
    """Compile `model` for speed; returns what to call (the model itself when compiled region by region).

    options: `torch.compile` keyword arguments (the backend's `compile_options()`).
    """
    options = dict(options or {})
    config = torch._dynamo.config
    if getattr(config, "recompile_limit", RECOMPILE_LIMIT) < RECOMPILE_LIMIT:
        config.recompile_limit = RECOMPILE_LIMIT
    if getattr(config, "cache_size_limit", RECOMPILE_LIMIT) < RECOMPILE_LIMIT:  # its name before torch 2.6
        config.cache_size_limit = RECOMPILE_LIMIT
    if mode == "whole":
        return torch.compile(model, **options)
    if mode != "regional":
        raise ValueError(f"unknown compile mode {mode!r}; use 'regional' or 'whole'")
    for module in regions(model):
        module.compile(**options)
    return model
