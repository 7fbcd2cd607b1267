"""A validation split held out of the training split (`train.val_fraction`): a seeded random subset, the same for
every process and every resume of a run (the seed is the run's)."""

from __future__ import annotations

from typing import Sequence

import torch

from ..errors import UserError


def hold_out(examples: Sequence, fraction: float, seed: int) -> tuple["Subset", "Subset"]:
    """(train, validation): a seeded random `fraction` of `examples` held out (at least one example)."""
    n = len(examples)
    g = torch.Generator().manual_seed(seed * 7_919 + 1)
    order = torch.randperm(n, generator=g).tolist()
    k = max(1, int(round(n * fraction)))
    if k >= n:
        raise UserError(f"train.val_fraction = {fraction} leaves no training examples out of {n}")
    return Subset(examples, sorted(order[k:])), Subset(examples, sorted(order[:k]))


class Subset(Sequence):
    """The examples at `indices` (in that order), read through from `examples` when asked for."""

    def __init__(self, examples: Sequence, indices: list[int]):
        self.examples, self.indices = examples, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.examples[self.indices[i]]
