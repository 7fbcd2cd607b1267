"""Helpers for dataset plugins that hold their examples in memory as numpy arrays."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """A bool mask [N], True for test examples: round(test_fraction * n_c) of each class c (at least one, and
    never the whole class when it has two or more), drawn with `seed`, classes in sorted order."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        count = min(max(round(len(idx) * test_fraction), 1), len(idx) - 1) if len(idx) > 1 else 0
        test[rng.choice(idx, size=count, replace=False)] = True
    return test


class ArraySplit(Sequence[Mapping[str, Any]]):
    """One split as named arrays of equal length: example i is {name: array[i] for each array, "label": int}."""

    def __init__(self, labels: np.ndarray, **arrays: np.ndarray):
        for name, array in arrays.items():
            if len(array) != len(labels):
                raise ValueError(f"array {name!r} has {len(array)} rows but there are {len(labels)} labels")
        self.labels, self.arrays = labels, arrays

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> Mapping[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a split of {len(self)} examples")
        return {**{name: array[i] for name, array in self.arrays.items()}, "label": int(self.labels[i])}

    def __getattr__(self, name: str) -> np.ndarray:
        arrays = self.__dict__.get("arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(name)
