"""`image.folder`: the user's own images, through the core's file-backed dataset (`perceiver_core.datasets`).

Indexing, splits, class names, verification, the statistics cache and unreadable files are the core's; this file
says how one image is decoded (Pillow, bounded: see decode.py), which statistics to keep (per-channel mean and std
of the training images in [0, 1]) and how a training example is augmented (transforms.py).
"""

from __future__ import annotations

import io
from typing import Any, Mapping

import numpy as np
import torch

from perceiver_core import BuildContext
from perceiver_core.datasets import ChannelStats, FileDataset

from . import transforms as T
from .configs import ImageFolderConfig
from .decode import EXTENSIONS, decode_image


class ImageFolderDataset(FileDataset):
    component = "image.folder"
    extensions = EXTENSIONS

    def __init__(self, config: ImageFolderConfig, context: BuildContext | None = None):
        super().__init__(config, context)
        self.config: ImageFolderConfig = config
        self.channels = 3 if config.mode == "RGB" else 1

    # -- decoding (data workers) -------------------------------------------------------------------------------
    def decode(self, row: Mapping[str, Any]) -> dict[str, Any]:
        c = self.config
        source = row.get("path")
        if c.table:  # encoded bytes inside the table
            value = row.get(c.image_column)
            if isinstance(value, Mapping):
                value = value.get("bytes")
            if not isinstance(value, (bytes, bytearray)):
                raise ValueError(f"column {c.image_column!r} holds {type(value).__name__}, expected image bytes")
            source = io.BytesIO(value)
        image = decode_image(source, c.mode, max_pixels=c.max_pixels, min_side=2 * c.image_size,
                             transparent=c.transparent, sixteen_bit=c.sixteen_bit)
        return {"image": image}  # [H, W, C] uint8 (float32 in [0, 1] for 16-bit files)

    def cache_settings(self) -> dict[str, Any]:
        c = self.config
        return {"mode": c.mode, "image_size": c.image_size, "max_pixels": c.max_pixels, "transparent": c.transparent,
                "sixteen_bit": c.sixteen_bit, "image_column": c.image_column}

    # -- statistics -------------------------------------------------------------------------------------------
    def stats_start(self) -> ChannelStats:
        return ChannelStats(self.channels)

    def stats_add(self, state: ChannelStats, example: Mapping[str, Any]) -> ChannelStats:
        image = example["image"]
        return state.add(image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image)

    def stats_finish(self, state: ChannelStats) -> dict[str, Any]:
        mean, std = state.result()
        return {"channel_mean": mean, "channel_std": std}

    def summarise(self, example: Mapping[str, Any]) -> str:
        h, w, c = example["image"].shape
        bits = "8-bit" if example["image"].dtype == np.uint8 else "16-bit"
        return f"{w}x{h} {'RGB' if c == 3 else 'grey'} {bits}"

    def extra_info(self) -> dict[str, Any]:
        s = self.config.image_size
        return {"image_shape": (s, s, self.channels), "crop_fraction": self.config.crop_fraction}

    # -- augmentation (data workers, training only) ---------------------------------------------------------
    def _transform(self, image: Any, g: torch.Generator) -> torch.Tensor:
        c, size = self.config, (self.config.image_size,) * 2
        img = _as_float(image)  # [H, W, C] in [0, 1]
        if c.train_crop == "random_resized":
            img = T.random_resized_crop(img, size, g, tuple(c.crop_scale), tuple(c.crop_ratio))
        else:
            img = T.resize_center_crop(img, size, c.crop_fraction)
        if c.hflip > 0:
            img = T.hflip(img, g, c.hflip)
        if c.rand_augment_ops:
            img = T.rand_augment(img, g, c.rand_augment_ops, c.rand_augment_magnitude)
        return img  # [S, S, C]

    def augment(self, example: Mapping[str, Any], generator: torch.Generator) -> Mapping[str, Any]:
        c = self.config
        out = {**example, "image": self._transform(example["image"], generator)}
        mixing = c.mixup_alpha > 0 or c.cutmix_alpha > 0
        if not mixing or "label" not in example:
            return out
        k = len(self.label_names or ())
        probs = T.one_hot(example["label"], k)  # [K]
        if T._uniform(generator) < c.mix_probability:
            split = self.examples(example.get("split", "train"))
            partner = split[T._randint(generator, len(split))]
            other = self._transform(partner["image"], generator)
            use_cutmix = c.cutmix_alpha > 0 and (c.mixup_alpha == 0 or T._uniform(generator) < c.cutmix_probability)
            if use_cutmix:
                image, lam = T.cutmix(out["image"], other, T.beta(generator, c.cutmix_alpha), generator)
            else:
                image, lam = T.mixup(out["image"], other, T.beta(generator, c.mixup_alpha))
            out["image"] = image
            probs = lam * probs + (1.0 - lam) * T.one_hot(partner["label"], k)
        out["label_probs"] = probs
        return out


def _as_float(image: Any) -> torch.Tensor:
    if isinstance(image, torch.Tensor):
        return image.float()
    a = np.asarray(image)
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(a if a.ndim == 3 else a[:, :, None]))
