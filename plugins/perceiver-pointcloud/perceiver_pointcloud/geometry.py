"""Point-cloud geometry: canonical order, unit-sphere normalisation, subsampling, rotations and augmentation.

numpy for what runs once per file (data preparation), torch generators for the training augmentation (the
framework passes `augment` a generator seeded per (seed, epoch, example)).
"""

from __future__ import annotations

import math

import numpy as np
import torch

AXES = {"x": 0, "y": 1, "z": 2}


def canonical_order(*arrays: np.ndarray) -> np.ndarray:
    """The indices that sort the rows of the arrays [P, c_i] (side by side) lexicographically.

    The result depends only on the multiset of rows, so every permutation of a cloud is put back into one order
    and gives the same tensors bit for bit. Equal rows are interchangeable, so their tie order does not matter.
    """
    rows = np.concatenate(arrays, axis=1)  # [P, sum c_i]
    return np.lexsort(rows.T[::-1])  # the first column is the primary key


def normalize_unit_sphere(points: np.ndarray) -> np.ndarray:
    """[P, 3] centred on the centroid and scaled so the farthest point lies on the unit sphere."""
    centred = points - points.mean(axis=0, keepdims=True, dtype=np.float64)
    radius = float(np.sqrt((centred ** 2).sum(axis=1)).max())
    if radius > 0:
        centred = centred / radius
    return centred.astype(np.float32)


def subsample(num_available: int, num_points: int, seed: int) -> np.ndarray:
    """Sorted indices of `num_points` of `num_available` points (all of them when there are fewer), seeded."""
    if num_available <= num_points:
        return np.arange(num_available)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_available, size=num_points, replace=False))


def rotation_about(axis: str, angle: float) -> np.ndarray:
    """[3, 3] rotation by `angle` radians about the x, y or z axis (right-handed)."""
    c, s = math.cos(angle), math.sin(angle)
    i = AXES[axis]
    j, k = (i + 1) % 3, (i + 2) % 3
    r = np.eye(3)
    r[j, j], r[j, k], r[k, j], r[k, k] = c, -s, s, c
    return r


def augment_points(points: np.ndarray, normals: np.ndarray | None, generator: torch.Generator, *, up_axis: str,
                   rotate: bool, scale: tuple[float, float] | None, jitter: float):
    """Random rotation about `up_axis`, per-axis scaling and clipped Gaussian jitter, drawn from `generator`.

    points [P, 3] (already normalised), normals [P, 3] or None -> the same shapes. Normals are rotated, and
    under anisotropic scaling transformed by the inverse transpose (then renormalised).
    """
    transform = np.eye(3)
    if rotate:
        angle = float(torch.rand((), generator=generator)) * 2 * math.pi
        transform = rotation_about(up_axis, angle) @ transform
    if scale is not None:
        lo, hi = scale
        factors = lo + (hi - lo) * torch.rand(3, generator=generator, dtype=torch.float64).numpy()
        transform = np.diag(factors) @ transform
    points = points @ transform.T.astype(np.float32)  # [P, 3]
    if normals is not None and (rotate or scale is not None):
        n = normals @ np.linalg.inv(transform).astype(np.float32)  # inverse transpose, applied to row vectors
        norms = np.linalg.norm(n, axis=1, keepdims=True)
        normals = np.where(norms > 0, n / np.maximum(norms, 1e-12), n).astype(np.float32)
    if jitter > 0:
        noise = torch.randn(points.shape, generator=generator).numpy() * jitter
        points = points + np.clip(noise, -5 * jitter, 5 * jitter).astype(np.float32)
    return points.astype(np.float32), normals
