"""`image.photos`: square crops of the two colour photographs scikit-learn ships (china.jpg and flower.jpg, 427 x
640 RGB; no download). Made for masked auto-encoding of raw pixels at sizes where every pixel is an input (HiP's
`hip-mae-images`: 256 x 256 crops, 65,536 inputs).

Train and test never overlap: training crops lie in the left part of each photo, test crops in its right `crop`
columns. Crop positions are fixed per index (seeded), so a split is a plain indexable sequence; decoding needs
Pillow (`pip install pillow`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from perceiver_core import BuildContext, Dataset
from perceiver_core.errors import UserError

from .configs import PhotosConfig

PHOTOS = ("china.jpg", "flower.jpg")
MAX_PIXELS = 4096 * 4096  # bound what a decode may allocate


def _photo_dir() -> Path:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the image.photos dataset needs scikit-learn: pip install scikit-learn")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images"


def load_photos() -> list[np.ndarray]:
    """The photographs as uint8 [H, W, 3]."""
    try:
        from PIL import Image
    except ImportError:
        raise UserError("the image.photos dataset decodes JPEG with Pillow: pip install pillow") from None
    out = []
    for name in PHOTOS:
        path = _photo_dir() / name
        if not path.is_file():
            raise UserError(f"scikit-learn is installed but its sample photo is missing ({path}); reinstall it")
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise UserError(f"{path}: {image.width} x {image.height} pixels is more than this reader allows")
            out.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    return out


class _Crops(Sequence[Mapping[str, Any]]):
    """Example i: {"image": uint8 [crop, crop, 3], "label": photo index}; positions drawn once from a seed."""

    def __init__(self, photos: list[np.ndarray], crop: int, count: int, columns: tuple[int, int], seed: int):
        rng = np.random.default_rng(seed)
        self.photos, self.crop = photos, crop
        self.items = []
        for i in range(count):
            k = i % len(photos)
            h = photos[k].shape[0]
            y = int(rng.integers(0, h - crop + 1))
            x = int(rng.integers(columns[0], columns[1] - crop + 1))
            self.items.append((k, y, x))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Mapping[str, Any]:
        k, y, x = self.items[i]
        return {"image": self.photos[k][y:y + self.crop, x:x + self.crop], "label": k}


class PhotosDataset(Dataset):
    splits = ("train", "test")

    def __init__(self, config: PhotosConfig, context: BuildContext | None = None):
        self.config = config

    def info(self) -> dict[str, Any]:
        c = self.config.crop
        return {"image_shape": (c, c, 3), "num_classes": len(PHOTOS), "label_names": list(PHOTOS)}

    @cached_property
    def _splits(self) -> dict[str, _Crops]:
        photos, c = load_photos(), self.config.crop
        width = min(p.shape[1] for p in photos)
        height = min(p.shape[0] for p in photos)
        if 2 * c > width or c > height:
            raise UserError(f"image.photos: crops of {c} need photos of at least {c} x {2 * c} pixels (train and "
                            f"test columns apart); they are {height} x {width}")
        return {"train": _Crops(photos, c, self.config.train_crops, (0, width - c), self.config.seed),
                "test": _Crops(photos, c, self.config.test_crops, (width - c, width), self.config.seed + 1)}

    def examples(self, split: str) -> Sequence[Mapping[str, Any]]:
        if split not in self.splits:
            raise UserError(f"image.photos has no split {split!r}; splits: train, test")
        return self._splits[split]
