"""Optimizers and the learning-rate schedule of the training loop."""

from __future__ import annotations

import math

import torch
from torch import nn


def no_weight_decay_names(model: nn.Module) -> set[str]:
    """Full names of the parameters that modules exclude from weight decay through the `no_weight_decay()`
    convention (as timm): a module returns the names, relative to itself, of its parameters not to decay
    (latents, learned queries, embeddings). Plugins' modules follow the same convention."""
    names: set[str] = set()
    for prefix, module in model.named_modules():
        fn = getattr(module, "no_weight_decay", None)
        if callable(fn):
            names.update(f"{prefix}.{n}" if prefix else n for n in fn())
    return names


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices only: vectors (biases, norms) and what modules name in `no_weight_decay()` are not decayed;
    frozen parameters are left out."""
    excluded = no_weight_decay_names(model)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 and name not in excluded else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class Lamb(torch.optim.Optimizer):
    """LAMB (You et al. 2019): Adam's update rescaled per tensor by ||w|| / ||update|| (trust ratio)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                step = state["step"].item()
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                update = (m / (1 - beta1 ** step)) / ((v / (1 - beta2 ** step)).sqrt() + group["eps"])
                if group["weight_decay"]:
                    update = update.add(p, alpha=group["weight_decay"])
                w_norm, u_norm = p.norm(), update.norm()
                trust = torch.where((w_norm > 0) & (u_norm > 0), w_norm / u_norm, torch.ones_like(w_norm))
                p.add_(update * trust, alpha=-group["lr"])
        return loss


def make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float, betas, device) -> torch.optim.Optimizer:
    groups = param_groups(model, weight_decay)
    if name == "lamb":
        return Lamb(groups, lr=lr, betas=betas)
    # Fused kernels on CUDA and on the CPU: the CPU's per-tensor loop (10 small ops per parameter tensor) cost the
    # digits pipeline 1.5 ms of CPU per step against 0.3 ms fused (benchmarks/digits_phases.py, docs/benchmarks.md)
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused or None)


def lr_at(step: int, *, total: int, warmup: int, peak: float, min_ratio: float = 0.0) -> float:
    """Linear warm-up to `peak` over `warmup` steps, then cosine decay to `peak * min_ratio` at `total`."""
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
