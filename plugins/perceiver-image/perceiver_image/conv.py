"""`image.conv` and `image.conv1x1`: learned convolutional featurisation of an image (HF's prep_type "conv",
"conv1x1"). Both take `batch["image"]` [B, C, H, W] (normalised) and give a ByteArray [B, H'W', out_channels].
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from perceiver_core import BuildContext, ByteArray, Preprocessor
from perceiver_core.errors import InputSizeError

from .common import ImageAugment, as_image, dataset_image_shape, fit_image, image_normaliser, read_image
from .configs import Conv1x1Config, ConvConfig


class _ConvImage(ImageAugment, Preprocessor):
    """prepare: [H, W, C] -> normalised [C, H, W]; forward: convnet, then channels last and flattened.

    Any image size with the built number of channels: the byte array's index shape is the convnet's output grid.
    """

    def _setup(self, config, context: BuildContext, who: str) -> tuple[int, int, int]:
        h, w, c = dataset_image_shape(context, who)
        self.who = who
        self.image_shape = (h, w, c)
        self.crop_fraction = float(context.dataset.get("crop_fraction", 0.875))
        self.other_sizes = config.other_sizes
        self.mean, self.std = image_normaliser(config, context, c)
        self.augment_shift = config.augment_shift
        self.output_channels = config.out_channels
        self.min_side = 1
        return h, w, c

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        image = as_image(example["image"])  # [H, W, C]
        if self.other_sizes == "fit":  # the evaluation transform: shorter side resized, centre crop
            image = fit_image(image, self.image_shape, self.crop_fraction, self.who)  # [H, W, C] = image_shape
        else:
            if image.shape[2] != self.image_shape[2]:
                raise InputSizeError(f"{self.who} was built for images with {self.image_shape[2]} channel(s), got "
                                     f"{image.shape[2]} (shape {tuple(image.shape)})")
            if min(image.shape[:2]) < self.min_side:
                raise InputSizeError(f"{self.who} needs images of at least {self.min_side}x{self.min_side} pixels, "
                                     f"got {image.shape[0]}x{image.shape[1]}")
        return {"image": ((image - self.mean) / self.std).permute(2, 0, 1).contiguous()}  # [C, H, W]

    def forward(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        image = batch["image"]  # [B, C, H, W]
        if image.dim() != 4:
            raise ValueError(f"batch['image'] must be [B, C, H, W], got {list(image.shape)}")
        features = self.convnet(image)  # [B, C', H', W']
        shape = tuple(features.shape[2:])
        data = features.permute(0, 2, 3, 1).reshape(features.shape[0], -1, features.shape[1])  # [B, H'W', C']
        return ByteArray(data, shape, modality="image")

    def read_input(self, path: str) -> dict[str, Any]:
        return read_image(path)


def same_padding(n: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) of one dimension: the output has ceil(n / stride) elements."""
    total = max((-(-n // stride) - 1) * stride + kernel - n, 0)
    return total // 2, total - total // 2


class ConvDownsample(nn.Module):
    """[B, C, H, W] -> [B, C', H', W']: conv 7x7/2, batch norm, ReLU, max pool 3x3/2.

    padding "hf": conv padded by 3 on every side, pool unpadded (H' = floor((ceil(H/2) - 3)/2) + 1, 224 -> 55);
    "same": TensorFlow SAME padding of both (H' = ceil(H/4), 224 -> 56), as DeepMind's model.
    """

    def __init__(self, in_channels: int, out_channels: int, use_batchnorm: bool = True, padding: str = "hf"):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=7, stride=2, padding=3 if padding == "hf" else 0,
                              bias=False)
        self.batchnorm = nn.BatchNorm2d(out_channels) if use_batchnorm else nn.Identity()
        self.relu = nn.ReLU()
        self.max_pool = nn.MaxPool2d(kernel_size=3, stride=2)

    @staticmethod
    def _pad(x: torch.Tensor, kernel: int, stride: int, value: float) -> torch.Tensor:
        (top, bottom), (left, right) = (same_padding(n, kernel, stride) for n in x.shape[-2:])
        return F.pad(x, (left, right, top, bottom), value=value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "same":
            x = self._pad(x, 7, 2, 0.0)
        x = self.relu(self.batchnorm(self.conv(x)))  # [B, C', ceil(H/2), ceil(W/2)]
        if self.padding == "same":
            x = self._pad(x, 3, 2, float("-inf"))
        return self.max_pool(x)

    @staticmethod
    def output_size(n: int, padding: str = "hf") -> int:
        if padding == "same":
            return -(-(-(-n // 2)) // 2)  # ceil(ceil(n / 2) / 2)
        n = (n + 2 * 3 - 7) // 2 + 1  # conv
        return (n - 3) // 2 + 1  # max pool


class ConvPreprocessor(_ConvImage):
    def __init__(self, config: ConvConfig, context: BuildContext):
        super().__init__()
        h, w, c = self._setup(config, context, "image.conv")
        self.convnet = ConvDownsample(c, config.out_channels, config.use_batchnorm, config.padding)
        self.index_shape = (ConvDownsample.output_size(h, config.padding),
                            ConvDownsample.output_size(w, config.padding))
        self.min_side = 5 if config.padding == "hf" else 1
        if min(self.index_shape) < 1:
            raise ValueError(f"image.conv needs images of at least 5x5 pixels, got {h}x{w}")


class Conv1x1Preprocessor(_ConvImage):
    def __init__(self, config: Conv1x1Config, context: BuildContext):
        super().__init__()
        h, w, c = self._setup(config, context, "image.conv1x1")
        s = config.spatial_downsample
        self.convnet = nn.Conv2d(c, config.out_channels, kernel_size=1, stride=s)
        self.index_shape = ((h - 1) // s + 1, (w - 1) // s + 1)
