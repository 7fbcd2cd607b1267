"""The unigram baseline of masked byte modelling: predict every masked byte from the training split's byte
frequencies alone (add-one smoothed). A model that uses context must beat its cross-entropy."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Mapping, Sequence


def unigram_cross_entropy(train: Sequence[Mapping[str, Any]], test: Sequence[Mapping[str, Any]]) -> float:
    """Mean cross-entropy in nats of the test split's bytes under the train split's byte frequencies. Masked
    positions are drawn uniformly among bytes, so this is the expected masked-byte loss of the unigram model."""
    counts = Counter(b for ex in train for b in ex["text"].encode("utf-8"))
    total = sum(counts.values()) + 256
    test_bytes = [b for ex in test for b in ex["text"].encode("utf-8")]
    return -sum(math.log((counts[b] + 1) / total) for b in test_bytes) / len(test_bytes)
