"""`image.patches`: space-to-depth patches (DeepMind's "patches" preprocessing), optionally projected.

An image [H, W, C] becomes (H/p) x (W/p) elements of p*p*C channels, ordered row-major within each patch.
Any image size whose sides are multiples of p (and with the built number of channels) is accepted.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from perceiver_core import BuildContext, ByteArray, Preprocessor
from perceiver_core.errors import InputSizeError

from .common import ImageAugment, as_image, dataset_image_shape, fit_image, image_normaliser, read_image
from .configs import PatchesConfig


def space_to_depth(image: torch.Tensor, p: int) -> torch.Tensor:
    """[..., H, W, C] -> [..., H/p, W/p, p*p*C]."""
    *lead, h, w, c = image.shape
    x = image.reshape(*lead, h // p, p, w // p, p, c)  # [..., H/p, p, W/p, p, C]
    x = x.movedim(-4, -3)  # [..., H/p, W/p, p, p, C]
    return x.reshape(*lead, h // p, w // p, p * p * c)


class PatchPreprocessor(ImageAugment, Preprocessor):
    def __init__(self, config: PatchesConfig, context: BuildContext):
        super().__init__()
        h, w, c = dataset_image_shape(context, "image.patches")
        p = config.patch_size
        if h % p or w % p:
            raise ValueError(f"patch_size {p} does not divide the image size {h}x{w}")
        self.patch = p
        self.image_shape = (h, w, c)
        self.crop_fraction = float(context.dataset.get("crop_fraction", 0.875))
        self.other_sizes = config.other_sizes
        self.index_shape = (h // p, w // p)
        patch_channels = p * p * c
        self.project = nn.Linear(patch_channels, config.project_to) if config.project_to else nn.Identity()
        self.output_channels = config.project_to or patch_channels
        mean, std = image_normaliser(config, context, c)
        self.augment_shift = config.augment_shift
        self.mean, self.std = mean, std  # plain CPU tensors: prepare() runs in data workers, not on the device

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        image = as_image(example["image"])  # [H, W, C]
        if self.other_sizes == "fit":  # the evaluation transform: shorter side resized, centre crop
            image = fit_image(image, self.image_shape, self.crop_fraction, "image.patches")  # [H, W, C] = image_shape
        else:
            h, w, c = image.shape
            if c != self.image_shape[2] or h % self.patch or w % self.patch:
                raise InputSizeError(f"image.patches takes images of {self.image_shape[2]} channel(s) whose sides are "
                                     f"multiples of patch_size {self.patch}, got {h}x{w}x{c}: crop or pad the image")
        h, w, c = image.shape
        patches = space_to_depth((image - self.mean) / self.std, self.patch)  # [H/p, W/p, p*p*C]
        if (h, w) != self.image_shape[:2]:  # another size keeps its grid: [H/p, W/p, p*p*C]
            return {"patch_grid": patches}
        return {"patches": patches.reshape(-1, patches.shape[-1])}  # [M, p*p*C]

    def forward(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        if "patches" not in batch and "patch_grid" in batch:
            grid = batch["patch_grid"]  # [B, H/p, W/p, p*p*C]
            patches = self.project(grid.flatten(1, 2))  # [B, M', C']
            return ByteArray(patches, tuple(grid.shape[1:3]), modality="image")
        patches = self.project(batch["patches"])  # [B, M, p*p*C] -> [B, M, C']
        return ByteArray(patches, self.index_shape, modality="image")

    def read_input(self, path: str) -> dict[str, Any]:
        return read_image(path)
