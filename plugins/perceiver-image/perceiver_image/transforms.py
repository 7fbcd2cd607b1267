"""Image transforms on tensors, each drawing its randomness only from the `torch.Generator` it is given, so an
augmented example depends on (seed, epoch, index) alone and a resumed run sees the same pixels.

Images are float32 [H, W, C] in [0, 1] at the edges of this module (the layout the preprocessors take); inside,
[C, H, W] for torch's resampling. What torchvision.transforms.v2 offers, written small because torchvision's wheels
do not load beside every torch build:

    random_resized_crop   Inception-style crop (area in `scale`, aspect ratio in `ratio`, 10 tries, else centre)
    resize_center_crop    shorter side to size / crop_fraction, then the centre size x size (evaluation)
    hflip                 left-right mirror with probability p
    rand_augment          RandAugment (Cubuk et al. 2020): num_ops ops of a 14-op list at one magnitude
    mixup / cutmix        mix two examples' pixels and one-hot labels (Zhang et al. 2018; Yun et al. 2019)
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def _uniform(g: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def _randint(g: torch.Generator, high: int) -> int:
    return int(torch.randint(0, high, (), generator=g))


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[H, W, C] -> [h, w, C], bilinear with antialiasing (as Pillow's resize when shrinking)."""
    if tuple(image.shape[:2]) == tuple(size):
        return image
    chw = image.permute(2, 0, 1)[None]  # [1, C, H, W]
    out = F.interpolate(chw, size=size, mode="bilinear", align_corners=False, antialias=True)
    return out[0].permute(1, 2, 0).clamp_(0.0, 1.0).contiguous()  # [h, w, C]


def resize_center_crop(image: torch.Tensor, size: tuple[int, int], crop_fraction: float = 0.875) -> torch.Tensor:
    """Evaluation transform: scale so the crop of `size` covers `crop_fraction` of the shorter side, then crop the
    centre. [H, W, C] -> [size[0], size[1], C]."""
    h, w = image.shape[:2]
    target = max(size[0], size[1]) / crop_fraction
    scale = target / min(h, w)
    nh, nw = max(size[0], round(h * scale)), max(size[1], round(w * scale))
    image = resize(image, (nh, nw))
    top, left = (nh - size[0]) // 2, (nw - size[1]) // 2
    return image[top:top + size[0], left:left + size[1]].contiguous()


def random_resized_crop(image: torch.Tensor, size: tuple[int, int], g: torch.Generator,
                        scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """A random crop of area fraction in `scale` and aspect ratio in `ratio` (log-uniform), resized to `size`."""
    h, w = image.shape[:2]
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _uniform(g, *scale)
        aspect = math.exp(_uniform(g, *log_ratio))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = _randint(g, h - ch + 1), _randint(g, w - cw + 1)
            return resize(image[top:top + ch, left:left + cw], size)
    # fallback: the largest centred crop within the ratio range
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, round(w / ratio[0])
    elif in_ratio > ratio[1]:
        ch, cw = h, round(h * ratio[1])
    else:
        cw, ch = w, h
    top, left = (h - ch) // 2, (w - cw) // 2
    return resize(image[top:top + ch, left:left + cw], size)


def hflip(image: torch.Tensor, g: torch.Generator, p: float = 0.5) -> torch.Tensor:
    return image.flip(1) if _uniform(g) < p else image


# -- RandAugment -------------------------------------------------------------------------------------------------
def _grey(chw: torch.Tensor) -> torch.Tensor:
    """[C, H, W] -> [1, H, W] luma (ITU-R 601, as Pillow's convert("L")); grey images are returned as they are."""
    if chw.shape[0] == 1:
        return chw
    return (0.299 * chw[0] + 0.587 * chw[1] + 0.114 * chw[2])[None]


def _blend(a: torch.Tensor, b: torch.Tensor, factor: float) -> torch.Tensor:
    """Pillow's ImageEnhance: b + factor * (a - b), clipped."""
    return (b + factor * (a - b)).clamp(0.0, 1.0)


def _affine(chw: torch.Tensor, matrix: list[list[float]], fill: float = 0.0) -> torch.Tensor:
    """Apply a 2x3 affine map of normalised output coordinates to input coordinates; outside pixels = fill."""
    theta = torch.tensor(matrix, dtype=chw.dtype)[None]  # [1, 2, 3]
    grid = F.affine_grid(theta, [1, *chw.shape], align_corners=False)
    ones = torch.ones_like(chw[:1])
    sampled = F.grid_sample(torch.cat([chw, ones])[None], grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)[0]
    image, inside = sampled[:-1], sampled[-1:]
    return image + (1.0 - inside) * fill


def _equalize(chw: torch.Tensor) -> torch.Tensor:
    out = []
    for channel in (chw * 255).round().to(torch.int64).clamp(0, 255):
        hist = torch.bincount(channel.flatten(), minlength=256)
        nonzero = hist[hist > 0]
        step = (int(hist.sum()) - int(nonzero[-1])) // 255 if len(nonzero) else 0
        if step == 0:
            out.append(channel.float() / 255)
            continue
        lut = ((torch.cumsum(hist, 0) - hist + step // 2) // step).clamp(0, 255)  # Pillow's equalize table
        out.append(lut[channel].float() / 255)
    return torch.stack(out)


def _autocontrast(chw: torch.Tensor) -> torch.Tensor:
    low = chw.amin(dim=(1, 2), keepdim=True)
    high = chw.amax(dim=(1, 2), keepdim=True)
    span = torch.where(high > low, high - low, torch.ones_like(high))
    return torch.where(high > low, (chw - low) / span, chw)


def _sharpness(chw: torch.Tensor, factor: float) -> torch.Tensor:
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13
    c = chw.shape[0]
    smooth = F.conv2d(chw[:, None], kernel.expand(1, 1, 3, 3).to(chw.dtype), padding=1)[:, 0]
    smooth[:, 0], smooth[:, -1], smooth[:, :, 0], smooth[:, :, -1] = chw[:, 0], chw[:, -1], chw[:, :, 0], chw[:, :, -1]
    assert smooth.shape[0] == c
    return _blend(chw, smooth, factor)


RAND_AUGMENT_OPS = ("identity", "auto_contrast", "equalize", "rotate", "solarize", "color", "posterize", "contrast",
                    "brightness", "sharpness", "shear_x", "shear_y", "translate_x", "translate_y")


def _apply(op: str, chw: torch.Tensor, m: float, sign: float) -> torch.Tensor:
    """One RandAugment op at magnitude m in [0, 1] (torchvision's ranges at 31 bins; m = 9/30 by default)."""
    if op == "identity":
        return chw
    if op == "auto_contrast":
        return _autocontrast(chw)
    if op == "equalize":
        return _equalize(chw)
    if op == "rotate":
        a = math.radians(30.0 * m * sign)
        h, w = chw.shape[1:]
        return _affine(chw, [[math.cos(a), -math.sin(a) * h / w, 0.0], [math.sin(a) * w / h, math.cos(a), 0.0]])
    if op == "solarize":
        threshold = 1.0 - m
        return torch.where(chw >= threshold, 1.0 - chw, chw)
    if op == "posterize":
        bits = 8 - int(4 * m)
        levels = 2 ** bits
        return torch.floor(chw * 255 / (256 / levels)) * (256 / levels) / 255
    if op == "color":
        return _blend(chw, _grey(chw).expand_as(chw), 1.0 + 0.9 * m * sign)
    if op == "contrast":
        return _blend(chw, _grey(chw).mean().expand_as(chw), 1.0 + 0.9 * m * sign)
    if op == "brightness":
        return _blend(chw, torch.zeros_like(chw), 1.0 + 0.9 * m * sign)
    if op == "sharpness":
        return _sharpness(chw, 1.0 + 0.9 * m * sign)
    if op == "shear_x":
        return _affine(chw, [[1.0, 0.3 * m * sign, 0.0], [0.0, 1.0, 0.0]])
    if op == "shear_y":
        return _affine(chw, [[1.0, 0.0, 0.0], [0.3 * m * sign, 1.0, 0.0]])
    if op == "translate_x":  # torchvision: up to 150/331 of the width; normalised coordinates span 2
        return _affine(chw, [[1.0, 0.0, 2 * 0.45 * m * sign], [0.0, 1.0, 0.0]])
    if op == "translate_y":
        return _affine(chw, [[1.0, 0.0, 0.0], [0.0, 1.0, 2 * 0.45 * m * sign]])
    raise ValueError(f"unknown RandAugment op {op!r}")


def rand_augment(image: torch.Tensor, g: torch.Generator, num_ops: int = 2, magnitude: int = 9,
                 num_bins: int = 31) -> torch.Tensor:
    """RandAugment: `num_ops` ops drawn uniformly (with replacement), each at `magnitude` of `num_bins - 1`, with
    a random sign for the signed ops. [H, W, C] in [0, 1] -> the same shape."""
    chw = image.permute(2, 0, 1).contiguous()  # [C, H, W]
    m = magnitude / (num_bins - 1)
    for _ in range(num_ops):
        op = RAND_AUGMENT_OPS[_randint(g, len(RAND_AUGMENT_OPS))]
        sign = -1.0 if _uniform(g) < 0.5 else 1.0
        chw = _apply(op, chw, m, sign).clamp(0.0, 1.0)
    return chw.permute(1, 2, 0).contiguous()


# -- MixUp and CutMix ------------------------------------------------------------------------------------------
def beta(g: torch.Generator, alpha: float) -> float:
    """A Beta(alpha, alpha) draw seeded from `g` (torch's Beta takes no generator)."""
    seed = int(torch.randint(0, 2**62, (), generator=g))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def one_hot(label: int, num_classes: int) -> torch.Tensor:
    out = torch.zeros(num_classes)
    out[label] = 1.0
    return out


def mixup(a: torch.Tensor, b: torch.Tensor, lam: float) -> tuple[torch.Tensor, float]:
    """lam * a + (1 - lam) * b; returns the image and the weight of a's label."""
    return lam * a + (1.0 - lam) * b, lam


def cutmix(a: torch.Tensor, b: torch.Tensor, lam: float, g: torch.Generator) -> tuple[torch.Tensor, float]:
    """Paste a box of b covering about 1 - lam of the area (centre uniform, clipped at the edges) into a; returns
    the image and the weight of a's label, corrected for the clipped box."""
    h, w = a.shape[:2]
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = _randint(g, h), _randint(g, w)
    top, bottom = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    left, right = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    out = a.clone()
    out[top:bottom, left:right] = b[top:bottom, left:right]
    return out, 1.0 - (bottom - top) * (right - left) / (h * w)
