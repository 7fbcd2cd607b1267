"""`image.digits`: the UCI optical-recognition handwritten digits that scikit-learn ships (no download).

1,797 grey-scale images of 8x8 pixels with values 0..16, 10 classes. The file is read straight from
scikit-learn's package data (importing scikit-learn itself takes a second); images are scaled to [0, 1].
The split is fixed and stratified: `test_fraction` of each class, chosen by `split_seed`.
"""

from __future__ import annotations

import gzip
import importlib.util
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from perceiver_core import BuildContext, Dataset
from perceiver_core.errors import UserError

from .configs import DigitsConfig


def _digits_file() -> Path:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the image.digits dataset needs scikit-learn: pip install scikit-learn")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise UserError(f"scikit-learn is installed but its digits file is missing ({path}); reinstall scikit-learn")
    return path


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """images [1797, 8, 8] float32 in [0, 1], labels [1797] int64."""
    with gzip.open(_digits_file(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return (table[:, :-1] / 16.0).reshape(-1, 8, 8), table[:, -1].astype(np.int64)


class _Split(Sequence[Mapping[str, Any]]):
    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> Mapping[str, Any]:
        return {"image": self.images[i][:, :, None], "label": int(self.labels[i])}


class DigitsDataset(Dataset):
    splits = ("train", "test")

    def __init__(self, config: DigitsConfig, context: BuildContext | None = None):
        self.config = config

    def info(self) -> dict[str, Any]:
        return {"image_shape": (8, 8, 1), "num_classes": 10, "label_names": [str(i) for i in range(10)]}

    @cached_property
    def _splits(self) -> dict[str, _Split]:
        images, labels = load_digits_arrays()
        rng = np.random.default_rng(self.config.split_seed)
        test = np.zeros(len(labels), dtype=bool)
        for cls in range(10):
            idx = np.flatnonzero(labels == cls)
            chosen = rng.choice(idx, size=round(len(idx) * self.config.test_fraction), replace=False)
            test[chosen] = True
        return {"train": _Split(images[~test], labels[~test]), "test": _Split(images[test], labels[test])}

    def examples(self, split: str) -> Sequence[Mapping[str, Any]]:
        if split not in self.splits:
            raise UserError(f"image.digits has no split {split!r}; splits: train, test")
        return self._splits[split]
