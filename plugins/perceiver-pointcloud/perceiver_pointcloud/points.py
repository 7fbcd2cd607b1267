"""`pointcloud.points`: every point is one input element, and its coordinates are its position.

A raw example is {"points": [P, 3], "normals": [P, 3] (optional), "colors": [P, 3] in [0, 1] (optional),
"label": int}. `prepare` puts the points in
canonical order (so a permuted cloud gives identical tensors), normalises the cloud into the unit sphere, keeps
`num_points` of them (seeded subsampling; fewer are padded and masked) and returns
data [M, C] (xyz, + normals, + colours), positions [M, 3] and mask [M]. No grid and no index-dependent parameter anywhere:
the cross-attend sums over the points, so the model is invariant to their order by construction.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch

from perceiver_core import BuildContext, ByteArray, Preprocessor

from .configs import PointsConfig
from .geometry import augment_points, canonical_order, normalize_unit_sphere, subsample
from .io import read_points


def _array(example: Mapping[str, Any], key: str) -> np.ndarray | None:
    value = example.get(key)
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != 3 or array.shape[0] == 0:
        raise ValueError(f"example[{key!r}] must have shape [points, 3] with at least one point, "
                         f"got {list(array.shape)}")
    return array


class PointsPreprocessor(Preprocessor):
    def __init__(self, config: PointsConfig, context: BuildContext | None = None):
        super().__init__()
        self.config = config
        self.index_shape = (config.num_points,)
        self.output_channels = 3 + 3 * config.normals + 3 * config.colors

    # -- data workers ----------------------------------------------------------------------------------------
    def _arrays(self, example: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        points, normals, colors = (_array(example, k) for k in ("points", "normals", "colors"))
        if points is None:
            raise ValueError("a point-cloud example needs 'points' [P, 3]")
        for name, extra in (("normals", normals), ("colors", colors)):
            if extra is not None and len(extra) != len(points):
                raise ValueError(f"{len(extra)} {name} for {len(points)} points")
        if not np.isfinite(points).all():
            raise ValueError("the points contain NaN or infinite values")
        return points, normals, colors

    @staticmethod
    def _canonical(points, normals, colors):
        order = canonical_order(points, *(a for a in (normals, colors) if a is not None))
        return points[order], *(None if a is None else a[order] for a in (normals, colors))

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        c = self.config
        points, normals, colors = self._arrays(example)  # [P, 3], [P, 3] | None, [P, 3] | None
        if c.canonical_order:
            points, normals, colors = self._canonical(points, normals, colors)
        if c.normalize and not example.get("normalized"):
            points = normalize_unit_sphere(points)
        keep = subsample(len(points), c.num_points, c.subsample_seed)  # sorted: the order stays canonical
        points = points[keep]  # [P', 3], P' <= M
        features = [points]
        if c.normals:
            features.append(normals[keep] if normals is not None else np.zeros_like(points))
        if c.colors:
            features.append(colors[keep] if colors is not None else np.full_like(points, 0.5))
        data = np.concatenate(features, axis=1)  # [P', C]
        m, p = c.num_points, len(points)
        out_data = np.zeros((m, data.shape[1]), dtype=np.float32)
        out_pos = np.zeros((m, 3), dtype=np.float32)
        out_data[:p], out_pos[:p] = data, points
        mask = np.zeros(m, dtype=bool)
        mask[:p] = True  # fewer points than M: the rest is padding the encoder ignores
        return {"points": torch.from_numpy(out_data), "positions": torch.from_numpy(out_pos),
                "mask": torch.from_numpy(mask)}

    def augment(self, example: Mapping[str, Any], generator: torch.Generator) -> Mapping[str, Any]:
        """Training only: normalise, then rotate about the up axis, scale per axis and jitter (as configured)."""
        c = self.config
        if not (c.augment_rotate or c.augment_scale is not None or c.augment_jitter > 0):
            return example
        points, normals, colors = self._arrays(example)
        if c.canonical_order:  # the draws below then do not depend on the order the points came in
            points, normals, colors = self._canonical(points, normals, colors)
        if c.normalize and not example.get("normalized"):
            points = normalize_unit_sphere(points)
        points, normals = augment_points(points, normals, generator, up_axis=c.up_axis, rotate=c.augment_rotate,
                                         scale=c.augment_scale, jitter=c.augment_jitter)
        out = {**example, "points": points, "normalized": True}
        for key, value in (("normals", normals), ("colors", colors)):
            if value is not None:
                out[key] = value  # colours ride along, in the same (canonical) order
        return out

    # -- the model -------------------------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        data, positions = batch["points"], batch["positions"]  # [B, M, C], [B, M, 3]
        m = math.prod(self.index_shape)
        if data.dim() != 3 or data.shape[1] != m or data.shape[2] != self.output_channels:
            raise ValueError(f"batch['points'] must be [B, {m}, {self.output_channels}], got {list(data.shape)}")
        mask = batch.get("mask")  # [B, M] bool, True = a real point
        if mask is not None and bool(mask.all()):
            mask = None  # no padding: keeps the fused attention kernels that take no mask
        return ByteArray(data, self.index_shape, positions=positions, mask=mask, modality="pointcloud")

    def read_input(self, path: str) -> dict[str, Any]:
        c = self.config
        return read_points(path, num_points=c.num_points, seed=c.subsample_seed,
                           max_bytes=int(c.max_file_mb * 2**20))
