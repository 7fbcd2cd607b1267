"""Shared by the image preprocessors: normalisation and reading image files for `perceiver predict`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from perceiver_core import read_bounded, read_image_array, read_npy
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


def read_image(path: str) -> dict[str, Any]:
    """Read .npy (no pickles), .pgm (P2/P5) or .png (needs Pillow) into {"image": [H, W, C] in [0, 1]}."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"input file {path!r} does not exist")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        array = read_npy(p)  # header, dtype and size checked before anything is allocated
    elif suffix == ".pgm":
        array = _read_pgm(p)
    elif suffix in (".png", ".jpg", ".jpeg"):
        try:
            import PIL  # noqa: F401
        except ImportError:
            raise UserError(f"{path}: reading {suffix} files needs Pillow: pip install 'perceiver-image[png]'") from None
        array = read_image_array(p)  # declared size checked before decoding (decompression bombs)
    else:
        raise UserError(f"{path}: unsupported image file {suffix!r}; use .npy, .pgm or .png")
    return {"image": as_image(array)}


def _read_pgm(path: Path) -> np.ndarray:
    data = read_bounded(path)
    tokens, i = [], 0
    while len(tokens) < 4:
        while i < len(data) and chr(data[i]).isspace():
            i += 1
        if i < len(data) and data[i:i + 1] == b"#":
            while i < len(data) and data[i:i + 1] != b"\n":
                i += 1
            continue
        start = i
        while i < len(data) and not chr(data[i]).isspace():
            i += 1
        if start == i:
            raise UserError(f"{path}: truncated PGM header")
        tokens.append(data[start:i].decode("ascii", "replace"))
    try:
        magic, width, height, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    except ValueError:
        raise UserError(f"{path}: PGM header {' '.join(tokens)[:80]!r} is not 'MAGIC WIDTH HEIGHT MAXVAL'") from None
    if width <= 0 or height <= 0 or not 0 < maxval < 65536:
        raise UserError(f"{path}: PGM header claims {width}x{height} with maxval {maxval}: sizes must be positive "
                        "and maxval in 1..65535")
    if magic == "P5":
        dtype = np.uint8 if maxval < 256 else ">u2"
        pixels = np.frombuffer(data[i + 1:], dtype=dtype, count=width * height)
    elif magic == "P2":
        pixels = np.array(data[i:].split()[: width * height], dtype=np.int64)
    else:
        raise UserError(f"{path}: not a PGM file (magic {magic!r}, expected P2 or P5)")
    if pixels.size != width * height:
        raise UserError(f"{path}: PGM holds {pixels.size} pixels, header says {width}x{height}")
    return (pixels.reshape(height, width).astype(np.float32) / maxval)
