"""`image.pixels`: every pixel is one input element, its C channel values the features.

With `permute_seed`, the pixels of every image are shuffled by one fixed permutation, and their true (y, x)
positions are passed along as explicit positions: a Perceiver sees the same set of (value, position) pairs in
another order and is unaffected; a convolutional network, which relies on the order, is not.

Any image size (`other_sizes`): by default ("fit") an image of another size is resized and centre-cropped to the
size the model was built for, as an evaluation transform does; with "native" (what `import-hf` sets, as HF takes
any size) it is one input element per pixel of its own grid, and Fourier positions are computed for that grid (at
the configured max_resolution, as HF does). Only a fixed permutation ties "native" to the built size.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from perceiver_core import BuildContext, ByteArray, Preprocessor, linear_positions
from perceiver_core.errors import InputSizeError

from .common import ImageAugment, as_image, dataset_image_shape, fit_image, image_normaliser, read_image
from .configs import PixelsConfig


class PixelPreprocessor(ImageAugment, Preprocessor):
    def __init__(self, config: PixelsConfig, context: BuildContext):
        super().__init__()
        h, w, c = dataset_image_shape(context, "image.pixels")
        self.image_shape = (h, w, c)
        self.crop_fraction = float(context.dataset.get("crop_fraction", 0.875))
        self.other_sizes = config.other_sizes
        self.index_shape = (h, w)
        self.output_channels = c
        mean, std = image_normaliser(config, context, c)
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

    def _check_size(self, h: int, w: int, c: int) -> None:
        if c != self.image_shape[2]:
            raise InputSizeError(f"image.pixels was built for images with {self.image_shape[2]} channel(s), got "
                                 f"{c} (shape {h}x{w}x{c})")
        if self.permutation is not None and (h, w) != self.image_shape[:2]:
            raise InputSizeError(f"image.pixels with permute_seed was built for {self.image_shape[0]}x"
                                 f"{self.image_shape[1]} images (its fixed pixel permutation), got {h}x{w}: "
                                 "resize the image, or drop permute_seed to take any size")
    tensor_input = "image"  # model(images [B, C, H, W], normalised) works, as with HF's models

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        image = as_image(example["image"])  # [H, W, C]
        if self.other_sizes == "fit":  # the evaluation transform: shorter side resized, centre crop
            image = fit_image(image, self.image_shape, self.crop_fraction, "image.pixels")  # [H, W, C] = image_shape
        else:
            self._check_size(*image.shape)
        image = (image - self.mean) / self.std
        if tuple(image.shape) != self.image_shape:  # another size: the image itself, its grid read in forward
            return {"image": image.permute(2, 0, 1).contiguous()}  # [C, H, W]
        pixels = image.reshape(-1, image.shape[-1])  # [M, C]
        if self.permutation is not None:
            pixels = pixels[self.permutation]
        return {"pixels": pixels}

    def forward(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        if "pixels" not in batch and "image" in batch:  # a normalised image tensor [B, C, H, W], as HF models take
            image = batch["image"]
            if image.dim() != 4:
                raise ValueError(f"batch['image'] must be [B, C, H, W], got {list(image.shape)}")
            _, c, h, w = image.shape
            self._check_size(h, w, c)
            pixels = image.flatten(2).transpose(1, 2)  # [B, H*W, C]
            if self.permutation is not None:  # the order prepare() would have produced
                pixels = pixels[:, self.permutation.to(pixels.device)]
            return ByteArray(pixels, (h, w), positions=self.positions, modality="image")
        pixels = batch["pixels"]  # [B, M, C]: images of the size the preprocessor was built for
        if pixels.dim() != 3 or pixels.shape[1] != math.prod(self.index_shape):
            raise ValueError(f"batch['pixels'] must be [B, {math.prod(self.index_shape)}, C], got {list(pixels.shape)}")
        return ByteArray(pixels, self.index_shape, positions=self.positions, modality="image")

    def read_input(self, path: str) -> dict[str, Any]:
        return read_image(path)
