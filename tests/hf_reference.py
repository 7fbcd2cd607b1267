"""Helpers of the HF parity tests (test_hf_parity, test_any_resolution, test_flow_parity): HF models with every
weight random, and the error measure the parity bars are stated in. On sys.path through pytest's `pythonpath`."""

from __future__ import annotations

import torch


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """max |ours - theirs| / max |theirs|: the relative error the parity tests bound (1e-5 in fp32)."""
    ours, theirs = ours.detach(), theirs.detach()
    return float((ours - theirs).abs().max() / theirs.abs().max().clamp_min(1e-30))


def randomise_(model: torch.nn.Module) -> torch.nn.Module:
    """Every floating-point weight random, not HF's init: LayerNorm gains near 1, biases, zero-initialised heads and
    batch-norm statistics too (a parity test must not pass because a tensor is zero or one everywhere)."""
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if "running_var" in key:
                t.copy_(torch.rand_like(t) + 0.5)
            elif key.endswith("weight") and "norm" in key:
                t.copy_(1 + 0.2 * torch.randn_like(t))
            else:
                t.copy_(0.2 * torch.randn_like(t))
    return model


def random_hf_model(cls, config, folder, seed: int = 0):
    """`cls(config)` with every weight random (seeded), in eval mode, saved to `folder` (save_pretrained)."""
    torch.manual_seed(seed)
    model = randomise_(cls(config).eval())
    model.save_pretrained(folder)
    return model
