"""Shared by the image preprocessors: normalisation and reading image files for `perceiver predict`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from perceiver_core.errors import UserError


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


MAX_PIXELS = 64_000_000  # an image file larger than this is refused before it is decoded


def read_image(path: str) -> dict[str, Any]:
    """Read .npy (no pickles) or an image file Pillow decodes (.png, .jpg, .pgm/.ppm, ...) into
    {"image": [H, W, C] in [0, 1]}."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"input file {path!r} does not exist")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(p, allow_pickle=False)
        except ValueError as exc:
            raise UserError(f"{path}: not a plain numeric .npy array ({exc})") from None
        return {"image": as_image(array)}
    return {"image": as_image(_read_with_pillow(p))}


def _read_with_pillow(path: Path) -> np.ndarray:
    """[H, W] or [H, W, C]; 8-bit images stay uint8 (as_image scales them), deeper ones are scaled to [0, 1] here."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > MAX_PIXELS:
                raise UserError(f"{path}: {width}x{height} pixels is more than this reader accepts ({MAX_PIXELS:,})")
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                maxval = 65535.0 if image.mode.startswith("I;16") else float(2**31 - 1)
                return np.asarray(image, dtype=np.float32) / maxval
            if image.mode not in ("L", "RGB", "RGBA"):
                image = image.convert("RGB")
            return np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UserError(f"{path}: not an image file this reader can decode ({exc})") from None
