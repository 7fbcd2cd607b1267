"""Shared by the image preprocessors: normalisation and reading image files for `perceiver predict`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from perceiver_core import max_image_pixels, read_npy
from perceiver_core.errors import UserError

from .decode import ImageDecodeError, decode_image


def normaliser(mean, std, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Broadcastable [C] mean and std, from one value or one per channel."""
    def expand(values, name):
        # on the CPU even while a model is built under `with torch.device(...)`: prepare() runs in data workers
        if len(values) == 1:
            return torch.full((channels,), float(values[0]), device="cpu")
        if len(values) != channels:
            raise ValueError(f"{name} has {len(values)} values but the images have {channels} channels")
        return torch.tensor(values, dtype=torch.float32, device="cpu")
    std_t = expand(std, "std")
    if bool((std_t <= 0).any()):
        raise ValueError("std must be positive")
    return expand(mean, "mean"), std_t


def dataset_image_shape(context, who: str, what: str = "") -> tuple[int, int, int]:
    """(H, W, C) of the images the model is built for, as the dataset reports them (the build context's facts)."""
    shape = context.dataset.get("image_shape")
    if shape is None:
        raise ValueError(f"{who} needs a dataset that reports image_shape (H, W, C){what}")
    h, w, c = shape
    return int(h), int(w), int(c)


def image_normaliser(config, context, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The config's mean/std, or with `dataset_stats` the dataset's per-channel statistics (from info(), which
    the checkpoint keeps, so prediction normalises as training did)."""
    if getattr(config, "dataset_stats", False):
        mean, std = context.dataset.get("channel_mean"), context.dataset.get("channel_std")
        if mean is None or std is None:
            raise ValueError("dataset_stats = true needs a dataset that reports channel_mean and channel_std "
                             "(e.g. image.folder)")
        return normaliser(mean, std, channels)
    return normaliser(config.mean, config.std, channels)


def fit_image(image: torch.Tensor, shape: tuple[int, int, int], crop_fraction: float, who: str) -> torch.Tensor:
    """An image of another size (evaluation images of a folder, files given to `predict`) -> `shape`: grey <-> RGB
    converted, the shorter side resized and the centre cropped (the evaluation transform). [H, W, C] -> shape."""
    if tuple(image.shape) == tuple(shape):
        return image
    channels = shape[2]
    if image.shape[2] != channels:
        if image.shape[2] == 1 and channels == 3:
            image = image.expand(-1, -1, 3)
        elif image.shape[2] in (3, 4) and channels == 1:
            image = (0.299 * image[..., 0] + 0.587 * image[..., 1] + 0.114 * image[..., 2])[..., None]
        elif image.shape[2] == 4 and channels == 3:
            image = image[..., :3]
        else:
            raise ValueError(f"{who} was built for {channels}-channel images, got {image.shape[2]} channels")
    from .transforms import resize_center_crop

    return resize_center_crop(image, shape[:2], crop_fraction)


def random_shift(image: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """[H, W, C] shifted by (dy, dx) uniform in [-max_shift, max_shift], vacated pixels set to 0."""
    dy, dx = (torch.randint(-max_shift, max_shift + 1, (2,), generator=generator)).tolist()
    h, w, _ = image.shape
    out = torch.zeros_like(image)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = image[ys, xs]
    return out


class ImageAugment:
    """Preprocessor mixin: the `augment` hook of the image preprocessors (random shifts)."""

    augment_shift: int = 0

    def augment(self, example, generator: torch.Generator):
        if not self.augment_shift:
            return example
        return {**example, "image": random_shift(as_image(example["image"]), self.augment_shift, generator)}


def as_image(array: Any) -> torch.Tensor:
    """An image as float32 [H, W, C] in [0, 1] (uint8 is divided by 255; floats are taken as they are)."""
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise UserError(f"an image must be [H, W] or [H, W, C], got shape {list(a.shape)}")
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))




def read_image(path: str) -> dict[str, Any]:
    """Read .npy (no pickles) or an image file Pillow decodes (JPEG, PNG, WebP, TIFF, BMP, PGM/PPM, ...) into
    {"image": [H, W, C] in [0, 1]}: one decoder (`decode.decode_image`, which refuses decompression bombs from the
    header) for `predict` and for image folders alike."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"input file {path!r} does not exist")
    if p.suffix.lower() == ".npy":
        return {"image": as_image(read_npy(p))}  # header, dtype and size checked before anything is allocated
    if p.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty, not an image")
    try:  # the pixel count is checked from the header (PERCEIVER_MAX_IMAGE_PIXELS), before anything is decoded
        array = decode_image(str(p), None, max_pixels=max_image_pixels())  # uint8 [H, W, C] (float [H, W, 1]: 16-bit)
    except ImageDecodeError as exc:
        raise UserError(f"{path}: {exc}") from None
    return {"image": as_image(array)}
