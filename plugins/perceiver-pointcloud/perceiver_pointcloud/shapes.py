"""`pointcloud.shapes`: 16 classes of procedurally generated solids, sampled to point clouds (offline, no files).

Each example is a trimesh solid of its class with random proportions, rotated about the up (z) axis by a random
angle and tilted by up to `max_tilt_degrees`, normalised into the unit sphere, sampled on its surface
(area-weighted) and perturbed by Gaussian noise. Example i of split s is generated from the seed (seed, s, i)
alone and its class is i mod 16, so the split is fixed and balanced, the two splits never share a seed, and any
example can be generated on its own (lazily, then cached) in any data worker.

Some classes are close by design (a cube-like box and a hexagonal prism, a cone and a pyramid, a capsule and a
cylinder), so the task is not trivial for a small model.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from perceiver_core import BuildContext, Dataset
from perceiver_core.errors import UserError

from .configs import ShapesConfig
from .geometry import normalize_unit_sphere, rotation_about


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


Mesh = tuple[np.ndarray, np.ndarray]  # vertices [V, 3] float64, faces [F, 3] int64


def _arrays(mesh) -> Mesh:
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


@functools.lru_cache(maxsize=None)
def _template(name: str, sections: int = 48) -> Mesh:
    """Unit primitives built once per process by trimesh.creation; examples scale and move copies of them."""
    import trimesh

    if name == "box":
        return _arrays(trimesh.creation.box(extents=(1.0, 1.0, 1.0)))
    if name == "sphere":
        return _arrays(trimesh.creation.icosphere(subdivisions=3))
    if name == "cylinder":
        return _arrays(trimesh.creation.cylinder(radius=1.0, height=1.0, sections=sections))
    if name == "cone":
        return _arrays(trimesh.creation.cone(radius=1.0, height=1.0, sections=sections))
    raise KeyError(name)


def _scaled(name: str, scale, offset=(0.0, 0.0, 0.0), sections: int = 48) -> Mesh:
    vertices, faces = _template(name, sections)
    return vertices * np.asarray(scale, dtype=np.float64) + np.asarray(offset, dtype=np.float64), faces


def _union(parts: list[Mesh]) -> Mesh:
    """The parts' surfaces side by side (overlapping solids keep their inner faces: fine for sampling)."""
    vertices, faces, base = [], [], 0
    for v, f in parts:
        vertices.append(v)
        faces.append(f + base)
        base += len(v)
    return np.concatenate(vertices), np.concatenate(faces)


def _box(rng):
    return _scaled("box", [_u(rng, 0.4, 1.0), _u(rng, 0.4, 1.0), _u(rng, 0.4, 1.0)])


def _ellipsoid(rng):
    return _scaled("sphere", [_u(rng, 0.8, 1.0), _u(rng, 0.8, 1.0), _u(rng, 0.8, 1.0)])


def _cylinder(rng, sections=48):
    r = _u(rng, 0.2, 0.6)
    return _scaled("cylinder", [r, r, _u(rng, 0.5, 1.5)], sections=sections)


def _cone(rng, sections=48):
    r = _u(rng, 0.3, 0.7)
    return _scaled("cone", [r, r, _u(rng, 0.6, 1.5)], sections=sections)


def _capsule(rng):
    import trimesh

    return _arrays(trimesh.creation.capsule(height=_u(rng, 0.4, 1.2), radius=_u(rng, 0.2, 0.4), count=[24, 24]))


def _torus(rng):
    import trimesh

    major = _u(rng, 0.5, 0.8)
    return _arrays(trimesh.creation.torus(major_radius=major, minor_radius=major * _u(rng, 0.15, 0.45),
                                          major_sections=48, minor_sections=24))


def _tube(rng):
    import trimesh

    outer = _u(rng, 0.4, 0.7)
    return _arrays(trimesh.creation.annulus(r_min=outer * _u(rng, 0.5, 0.8), r_max=outer,
                                            height=_u(rng, 0.3, 1.2), sections=48))


def _pyramid(rng):
    return _cone(rng, sections=4)


def _triangular_prism(rng):
    return _cylinder(rng, sections=3)


def _hexagonal_prism(rng):
    return _cylinder(rng, sections=6)


def _hull(rng, vertices: np.ndarray) -> Mesh:
    from scipy.spatial import ConvexHull

    vertices = vertices * np.array([_u(rng, 0.7, 1.0), _u(rng, 0.7, 1.0), _u(rng, 0.7, 1.0)])
    vertices = vertices + rng.normal(0.0, 0.04, vertices.shape)
    hull = ConvexHull(vertices)
    return vertices, np.asarray(hull.simplices, dtype=np.int64)  # normals: signs do not matter for sampling


def _tetrahedron(rng):
    return _hull(rng, np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float))


def _octahedron(rng):
    return _hull(rng, np.concatenate([np.eye(3), -np.eye(3)]))


def _boxes(parts) -> Mesh:
    """Union of boxes given as (extents, centre)."""
    return _union([_scaled("box", extents, centre) for extents, centre in parts])


def _l_shape(rng):
    t, a, b, w = _u(rng, 0.15, 0.3), _u(rng, 0.7, 1.2), _u(rng, 0.5, 1.0), _u(rng, 0.2, 0.6)
    return _boxes([((a, w, t), (a / 2, 0, t / 2)), ((t, w, b), (t / 2, 0, b / 2))])


def _table(rng):
    length, width, height = _u(rng, 0.8, 1.4), _u(rng, 0.5, 1.0), _u(rng, 0.4, 0.9)
    top, leg = _u(rng, 0.04, 0.1), _u(rng, 0.05, 0.12)
    parts = [((length, width, top), (0, 0, height))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(((leg, leg, height), (sx * (length - leg) / 2, sy * (width - leg) / 2, height / 2)))
    return _boxes(parts)


def _cross(rng):
    arm, t, h = _u(rng, 0.8, 1.4), _u(rng, 0.15, 0.35), _u(rng, 0.15, 0.5)
    return _boxes([((arm, t, h), (0, 0, 0)), ((t, arm * _u(rng, 0.7, 1.0), h), (0, 0, 0))])


def _dumbbell(rng):
    length, r, bar = _u(rng, 0.8, 1.4), _u(rng, 0.2, 0.35), _u(rng, 0.05, 0.12)
    # lying along x
    parts = [_scaled("cylinder", (bar, bar, length), sections=24)]
    parts[0] = (parts[0][0] @ rotation_about("y", math.pi / 2).T, parts[0][1])
    parts += [_scaled("sphere", (r, r, r), (s * length / 2, 0, 0)) for s in (-1, 1)]
    return _union(parts)


def sample_surface(mesh: Mesh, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted uniform samples on the triangles, with their faces' unit normals: [count, 3] each."""
    vertices, faces = mesh
    a, b, c = (vertices[faces[:, i]] for i in range(3))  # [F, 3] each
    cross = np.cross(b - a, c - a)  # [F, 3], length = 2 * area
    area = np.linalg.norm(cross, axis=1)
    chosen = rng.choice(len(faces), size=count, p=area / area.sum())  # [count]
    u, v = rng.uniform(size=(2, count, 1))
    flip = (u + v) > 1  # reflect into the triangle
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    points = a[chosen] + u * (b - a)[chosen] + v * (c - a)[chosen]
    normals = cross[chosen] / np.maximum(area[chosen, None], 1e-12)
    return points, normals


SHAPES: dict[str, Callable] = {
    "box": _box, "ellipsoid": _ellipsoid, "cylinder": _cylinder, "cone": _cone, "capsule": _capsule,
    "torus": _torus, "tube": _tube, "pyramid": _pyramid, "triangular_prism": _triangular_prism,
    "hexagonal_prism": _hexagonal_prism, "tetrahedron": _tetrahedron, "octahedron": _octahedron,
    "l_shape": _l_shape, "table": _table, "cross": _cross, "dumbbell": _dumbbell,
}
CLASSES = tuple(SHAPES)
SPLITS = ("train", "test")


def generate(label: int, seed: Sequence[int], num_points: int, noise: float,
             max_tilt_degrees: float) -> dict[str, np.ndarray]:
    """One example of class `label`: {"points": [P, 3], "normals": [P, 3]} from the seed sequence alone."""
    rng = np.random.default_rng(list(seed))
    vertices, faces = SHAPES[CLASSES[label]](rng)
    tilt_axis = "x" if rng.uniform() < 0.5 else "y"
    rotation = rotation_about("z", _u(rng, 0, 2 * math.pi)) @ rotation_about(
        tilt_axis, math.radians(_u(rng, -max_tilt_degrees, max_tilt_degrees)))
    points, normals = sample_surface((vertices @ rotation.T, faces), num_points, rng)  # [P, 3] each
    points = normalize_unit_sphere(points.astype(np.float32))
    if noise > 0:
        points = points + rng.normal(0.0, noise, points.shape).astype(np.float32)
    return {"points": points.astype(np.float32), "normals": normals.astype(np.float32)}


class ShapesSplit(Sequence[Mapping[str, Any]]):
    """One split, generated lazily example by example and cached (picklable: it runs in data workers)."""

    def __init__(self, config: ShapesConfig, split: str):
        self.config, self.split = config, split
        per_class = config.train_per_class if split == "train" else config.test_per_class
        self.size = per_class * len(CLASSES)
        self._cache: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> Mapping[str, Any]:
        if not -self.size <= i < self.size:
            raise IndexError(f"index {i} out of range for a split of {self.size} examples")
        i %= self.size
        cached = self._cache.get(i)
        if cached is None:
            c = self.config
            label = i % len(CLASSES)
            example = generate(label, (c.seed, SPLITS.index(self.split), i), c.num_points, c.noise,
                               c.max_tilt_degrees)
            cached = self._cache[i] = {**example, "label": label}
        return dict(cached)

    def labels(self) -> np.ndarray:
        return np.arange(self.size) % len(CLASSES)


class ShapesDataset(Dataset):
    splits = SPLITS

    def __init__(self, config: ShapesConfig, context: BuildContext | None = None):
        self.config = config
        self._splits = {s: ShapesSplit(config, s) for s in SPLITS}

    def info(self) -> dict[str, Any]:
        return {"num_classes": len(CLASSES), "label_names": list(CLASSES), "num_points": self.config.num_points,
                "up_axis": "z"}

    def examples(self, split: str) -> Sequence[Mapping[str, Any]]:
        if split not in self._splits:
            raise UserError(f"pointcloud.shapes has no split {split!r}; splits: {', '.join(SPLITS)}")
        return self._splits[split]
