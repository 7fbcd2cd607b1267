"""Per-channel mean and standard deviation in one pass (sums in float64), for any [..., C] arrays."""

from __future__ import annotations

from typing import Any

import numpy as np


class ChannelStats:
    """Accumulates sum, sum of squares and count per channel of [..., C] arrays; JSON-friendly state."""

    def __init__(self, channels: int):
        self.count = 0
        self.total = np.zeros(channels, dtype=np.float64)
        self.squares = np.zeros(channels, dtype=np.float64)

    def add(self, values: Any) -> "ChannelStats":
        a = np.asarray(values, dtype=np.float64)
        a = a.reshape(-1, a.shape[-1])  # [n, C]
        if a.shape[1] != len(self.total):
            raise ValueError(f"{a.shape[1]} channels, expected {len(self.total)}")
        self.count += a.shape[0]
        self.total += a.sum(axis=0)
        self.squares += np.square(a).sum(axis=0)
        return self

    def result(self) -> tuple[list[float], list[float]]:
        n = max(self.count, 1)
        mean = self.total / n
        std = np.sqrt(np.maximum(self.squares / n - np.square(mean), 0.0))
        std = np.where(std > 1e-8, std, 1.0)  # a constant channel is left unscaled
        return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]
