"""`image.digits`: the UCI optical-recognition handwritten digits that scikit-learn ships (no download).

1,797 grey-scale images of 8x8 pixels with values 0..16, 10 classes, from scikit-learn's `load_digits` (its
bundled copy: nothing is downloaded); images are scaled to [0, 1].
The split is fixed and stratified: `test_fraction` of each class, chosen by `split_seed`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Mapping, Sequence

import numpy as np

from perceiver_core import BuildContext, Dataset
from perceiver_core.datasets import ArraySplit, stratified_split
from perceiver_core.errors import UserError

from .configs import DigitsConfig


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """images [1797, 8, 8] float32 in [0, 1], labels [1797] int64, through scikit-learn's public `load_digits`."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("the image.digits dataset needs scikit-learn: it is a dependency of perceiver-image; "
                        "reinstall perceiver-image") from None
    images, labels = load_digits(return_X_y=True)
    return (images.astype(np.float32) / 16.0).reshape(-1, 8, 8), labels.astype(np.int64)


class DigitsDataset(Dataset):
    splits = ("train", "test")

    def __init__(self, config: DigitsConfig, context: BuildContext | None = None):
        self.config = config

    def info(self) -> dict[str, Any]:
        return {"image_shape": (8, 8, 1), "num_classes": 10, "label_names": [str(i) for i in range(10)]}

    @cached_property
    def _splits(self) -> dict[str, ArraySplit]:
        images, labels = load_digits_arrays()
        images = images[:, :, :, None]  # [N, 8, 8, 1]: height, width, channels
        test = stratified_split(labels, self.config.test_fraction, self.config.split_seed)
        return {"train": ArraySplit(labels[~test], image=images[~test]),
                "test": ArraySplit(labels[test], image=images[test])}

    def examples(self, split: str) -> Sequence[Mapping[str, Any]]:
        if split not in self.splits:
            raise UserError(f"image.digits has no split {split!r}; splits: train, test")
        return self._splits[split]
