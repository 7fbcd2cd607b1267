"""`image.pixels`: every pixel is one input element, its C channel values the features.

With `permute_seed`, the pixels of every image are shuffled by one fixed permutation, and their true (y, x)
positions are passed along as explicit positions: a Perceiver sees the same set of (value, position) pairs in
another order and is unaffected; a convolutional network, which relies on the order, is not.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from perceiver_core import BuildContext, ByteArray, Preprocessor, linear_positions

from .common import ImageAugment, as_image, normaliser, read_image
from .configs import PixelsConfig


class PixelPreprocessor(ImageAugment, Preprocessor):
    def __init__(self, config: PixelsConfig, context: BuildContext):
        super().__init__()
        shape = context.dataset.get("image_shape")
        if shape is None:
            raise ValueError("image.pixels needs a dataset that reports image_shape (H, W, C)")
        h, w, c = shape
        self.image_shape = (h, w, c)
        self.index_shape = (h, w)
        self.output_channels = c
        mean, std = normaliser(config.mean, config.std, c)
        self.augment_shift = config.augment_shift
        self.mean, self.std = mean, std  # plain CPU tensors: prepare() runs in data workers, not on the device
        self.permutation: torch.Tensor | None = None
        if config.permute_seed is not None:
            g = torch.Generator().manual_seed(config.permute_seed)
            self.permutation = torch.randperm(h * w, generator=g)  # [M]
            # true positions of the shuffled pixels: [1, M, 2]
            self.register_buffer("positions", linear_positions((h, w))[self.permutation][None], persistent=False)
        else:
            self.positions = None

    tensor_input = "image"  # model(images [B, C, H, W], normalised) works, as with HF's models

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        image = as_image(example["image"])  # [H, W, C]
        if tuple(image.shape) != self.image_shape:
            raise ValueError(f"image.pixels was built for images of shape {self.image_shape}, got "
                             f"{tuple(image.shape)}")
        pixels = ((image - self.mean) / self.std).reshape(-1, image.shape[-1])  # [M, C]
        if self.permutation is not None:
            pixels = pixels[self.permutation]
        return {"pixels": pixels}

    def forward(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        if "pixels" not in batch and "image" in batch:  # a normalised image tensor [B, C, H, W], as HF models take
            pixels = batch["image"].flatten(2).transpose(1, 2)  # [B, H*W, C]
            if self.permutation is not None:  # the order prepare() would have produced
                pixels = pixels[:, self.permutation.to(pixels.device)]
            batch = {"pixels": pixels}
        pixels = batch["pixels"]  # [B, M, C]
        if pixels.dim() != 3 or pixels.shape[1] != math.prod(self.index_shape):
            raise ValueError(f"batch['pixels'] must be [B, {math.prod(self.index_shape)}, C], got {list(pixels.shape)}")
        return ByteArray(pixels, self.index_shape, positions=self.positions, modality="image")

    def read_input(self, path: str) -> dict[str, Any]:
        return read_image(path)
