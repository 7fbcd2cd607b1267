"""`image.stereo_motorcycle`: a real stereo-disparity task that installs offline.

scikit-image ships the Middlebury 2014 'Motorcycle' pair (Scharstein et al., GCPR 2014): left and right views of
500 x 741 pixels and the left view's ground-truth disparity (7-60 px; unknown pixels are inf). The pair is
downscaled by `scale` (frames by area averaging; disparity averaged over each block's known pixels, divided by
`scale`; a block is known when at least half its pixels are) and split by columns: the right `test_fraction` is
held out. Training examples are the left part (the preprocessor's augmentation cuts a new random crop of the
training size from it every time); held-out examples are `test_crops` fixed crops of the right part.

Disparity is horizontal flow from the left view to the right one: u = -disparity, v = 0.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Mapping, Sequence

import numpy as np

from perceiver_core import BuildContext, Dataset
from perceiver_core.errors import UserError

from ..configs import StereoMotorcycleConfig
from .pair import disparity_to_flow
from .pairs import crop_example, fixed_crops


def load_motorcycle() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left [H, W, 3] uint8, right [H, W, 3] uint8, disparity [H, W] float32 with NaN where unknown)."""
    try:
        from skimage import data
    except ImportError:
        raise UserError("image.stereo_motorcycle needs scikit-image (it ships the pair): "
                        "pip install 'perceiver-image[stereo]'") from None
    left, right, disparity = data.stereo_motorcycle()
    disparity = np.where(np.isfinite(disparity), disparity, np.nan).astype(np.float32)
    return left, right, disparity


def downscale(left: np.ndarray, right: np.ndarray, disparity: np.ndarray, s: int):
    """Area-average both views by s; disparity: mean of each block's known values / s (NaN if under half known)."""
    if s == 1:
        return left.astype(np.float32) / 255, right.astype(np.float32) / 255, disparity
    h, w = (left.shape[0] // s) * s, (left.shape[1] // s) * s

    def blocks(a):
        return a[:h, :w].reshape(h // s, s, w // s, s, *a.shape[2:])

    views = [blocks(v.astype(np.float32) / 255).mean(axis=(1, 3)) for v in (left, right)]
    d = blocks(disparity)
    known = np.isfinite(d)
    total = np.where(known, d, 0).sum(axis=(1, 3))
    count = known.sum(axis=(1, 3))
    small = np.where(count >= s * s / 2, total / np.maximum(count, 1) / s, np.nan).astype(np.float32)
    return views[0], views[1], small


class _Crops(Sequence):
    def __init__(self, example: Mapping[str, Any], corners: list[tuple[int, int]], size: tuple[int, int]):
        self.example, self.corners, self.size = example, corners, size

    def __len__(self) -> int:
        return len(self.corners)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return crop_example(self.example, *self.corners[i], self.size)


class _Repeated(Sequence):
    """The same (training) example n times: every use gets its own random crop from the augmentation."""

    def __init__(self, example: Mapping[str, Any], n: int):
        self.example, self.n = example, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Mapping[str, Any]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.example


class StereoMotorcycle(Dataset):
    splits = ("train", "test")

    def __init__(self, config: StereoMotorcycleConfig, context: BuildContext | None = None):
        self.config = config

    def info(self) -> dict[str, Any]:
        return {"image_shape": (*self.config.crop, 3)}

    @cached_property
    def regions(self) -> dict[str, dict[str, Any]]:
        """The downscaled pair split by columns: {"train": example, "test": example} (whole regions)."""
        c = self.config
        left, right, disparity = downscale(*load_motorcycle(), c.scale)
        width = left.shape[1]
        cut = int(round(width * (1 - c.test_fraction)))
        out = {}
        for name, cols in (("train", slice(0, cut)), ("test", slice(cut, width))):
            flow, valid = disparity_to_flow(disparity[:, cols])
            out[name] = {"frames": np.ascontiguousarray(np.stack([left[:, cols], right[:, cols]])), "flow": flow,
                         "valid": valid}
            if out[name]["frames"].shape[1] < c.crop[0] or out[name]["frames"].shape[2] < c.crop[1]:
                raise UserError(f"image.stereo_motorcycle: the {name} region ({out[name]['frames'].shape[2]}x"
                                f"{out[name]['frames'].shape[1]} at scale {c.scale}) is smaller than the crop "
                                f"{c.crop[1]}x{c.crop[0]}; lower scale or the crop, or change test_fraction")
        return out

    def examples(self, split: str) -> Sequence[Mapping[str, Any]]:
        if split not in self.splits:
            raise UserError(f"image.stereo_motorcycle has no split {split!r}; splits: train, test")
        c = self.config
        region = self.regions[split]
        if split == "train":
            return _Repeated(region, c.train_crops)
        corners = fixed_crops(region["frames"].shape[1:3], c.crop, c.test_crops, c.split_seed)
        return _Crops(region, corners, c.crop)
