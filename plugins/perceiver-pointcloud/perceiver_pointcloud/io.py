"""Reading point clouds and meshes from the files people have: .off (as ModelNet ships), .ply, .obj, .stl
through trimesh, and .npy / .npz arrays (never pickles).

Every reader bounds what it allocates before it reads: a file over `max_bytes` is refused from its size on disk,
and the members of an .npz are checked against the limit from their uncompressed sizes before one is read.
Meshes are sampled on their surface (area-weighted, seeded); point files keep all their points. Whatever goes
wrong with a file is one `PointCloudFileError` line naming the file and what to do.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from perceiver_core.errors import UserError

MESH_SUFFIXES = (".off", ".ply", ".obj", ".stl")
ARRAY_SUFFIXES = (".npy", ".npz")
SUFFIXES = MESH_SUFFIXES + ARRAY_SUFFIXES
#: keys looked up, in this order, for the coordinates in an .npz
NPZ_POINT_KEYS = ("points", "xyz", "pos", "positions", "vertices")


class PointCloudFileError(UserError):
    """A point-cloud or mesh file that cannot be read (missing, too large, empty, corrupt, unsupported)."""


def _check_file(path: Path, max_bytes: int) -> int:
    if not path.is_file():
        raise PointCloudFileError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise PointCloudFileError(f"{path}: the file is empty")
    if size > max_bytes:
        raise PointCloudFileError(f"{path}: the file has {size / 2**20:.1f} MB, over the limit of "
                                  f"{max_bytes / 2**20:.1f} MB (raise max_file_mb to read it)")
    return size


def _as_points(array: np.ndarray, path: Path, what: str) -> np.ndarray:
    """[P, 3] float32, finite, at least one point."""
    if array.dtype.kind not in "fiu":
        raise PointCloudFileError(f"{path}: {what} must be numbers, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != 3:
        raise PointCloudFileError(f"{path}: {what} must have shape [points, 3], got {list(array.shape)}")
    if array.shape[0] == 0:
        raise PointCloudFileError(f"{path}: {what} hold no points")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise PointCloudFileError(f"{path}: {what} contain NaN or infinite values")
    return array


def _read_npy(path: Path, max_bytes: int) -> dict[str, np.ndarray]:
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise PointCloudFileError(f"{path}: not a plain numeric .npy array ({exc})") from None
    if array.ndim == 2 and array.shape[1] == 6:  # xyz + normals, as ModelNet40's resampled .txt files
        return {"points": _as_points(array[:, :3], path, "the coordinates"),
                "normals": _as_points(array[:, 3:], path, "the normals")}
    return {"points": _as_points(array, path, "the array")}


def _read_npz(path: Path, max_bytes: int) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(path) as zf:
            sizes = {info.filename.removesuffix(".npy"): info.file_size for info in zf.infolist()}
    except zipfile.BadZipFile:
        raise PointCloudFileError(f"{path}: not an .npz archive (corrupt or another format)") from None
    key = next((k for k in NPZ_POINT_KEYS if k in sizes), None)
    if key is None:
        raise PointCloudFileError(f"{path}: no point array in the .npz; name it one of {', '.join(NPZ_POINT_KEYS)} "
                                  f"(found: {', '.join(sorted(sizes)) or 'nothing'})")
    wanted = [key] + [k for k in ("normals", "colors") if k in sizes]
    total = sum(sizes[k] for k in wanted)
    if total > max_bytes:  # compressed members can expand far beyond the file's size
        raise PointCloudFileError(f"{path}: its arrays expand to {total / 2**20:.1f} MB, over the limit of "
                                  f"{max_bytes / 2**20:.1f} MB (raise max_file_mb to read it)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            out = {"points": _as_points(npz[key], path, f"array {key!r}")}
            if "normals" in wanted:
                out["normals"] = _as_points(npz["normals"], path, "array 'normals'")
            if "colors" in wanted:
                colors = npz["colors"]
                if colors.ndim != 2 or colors.shape[1] not in (3, 4) or colors.dtype.kind not in "fiu":
                    raise PointCloudFileError(f"{path}: array 'colors' must be [points, 3 or 4] numbers, got "
                                              f"{list(colors.shape)} {colors.dtype}")
                out["colors"] = _rgb(colors)
    except (ValueError, zipfile.BadZipFile, OSError) as exc:
        raise PointCloudFileError(f"{path}: cannot read the .npz ({exc})") from None
    for extra in ("normals", "colors"):
        if extra in out and len(out[extra]) != len(out["points"]):
            raise PointCloudFileError(f"{path}: {len(out[extra])} {extra} for {len(out['points'])} points")
    return out


def load_mesh(path: str | Path, max_bytes: int = 256 * 2**20):
    """A trimesh.Trimesh (faces may be empty: a point cloud) from .off/.ply/.obj/.stl, or a one-line error."""
    import trimesh

    path = Path(path)
    _check_file(path, max_bytes)
    try:
        loaded = trimesh.load(str(path), file_type=path.suffix.lower()[1:], process=False)
    except Exception as exc:  # noqa: BLE001 - trimesh raises many kinds for a corrupt file; all mean "corrupt"
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise PointCloudFileError(f"{path}: not a readable {path.suffix.lower()} file ({detail})") from None
    if isinstance(loaded, trimesh.Scene):
        geometries = [g for g in loaded.geometry.values() if len(getattr(g, "vertices", ()))]
        meshes = [g for g in geometries if isinstance(g, trimesh.Trimesh)]
        if meshes:
            loaded = trimesh.util.concatenate(meshes) if len(meshes) > 1 else meshes[0]
        elif geometries:
            loaded = trimesh.PointCloud(np.concatenate([np.asarray(g.vertices) for g in geometries]))
        else:
            raise PointCloudFileError(f"{path}: the file holds no geometry (an empty mesh)")
    if not isinstance(loaded, (trimesh.Trimesh, trimesh.PointCloud)):
        raise PointCloudFileError(f"{path}: holds a {type(loaded).__name__}, not a mesh or point cloud")
    if len(loaded.vertices) == 0:
        raise PointCloudFileError(f"{path}: the mesh has no vertices (an empty mesh)")
    return loaded


def sample_mesh(mesh, num_points: int, seed: int, path: str | Path = "mesh") -> dict[str, np.ndarray]:
    """`num_points` points drawn uniformly (area-weighted) on the surface, with the faces' normals.
    A mesh without faces (a point cloud) gives its vertices unchanged."""
    import trimesh

    faces = getattr(mesh, "faces", None)
    if faces is None or len(faces) == 0:
        out = {"points": _as_points(np.asarray(mesh.vertices), Path(path), "the vertices")}
        colors = getattr(mesh, "colors", None)
        if colors is not None and len(colors) == len(out["points"]):
            out["colors"] = _rgb(np.asarray(colors))
        return out
    if len(faces) and int(np.max(faces)) >= len(mesh.vertices):
        raise PointCloudFileError(f"{path}: faces refer to vertices that do not exist (corrupt mesh)")
    if not np.isfinite(mesh.vertices).all():
        raise PointCloudFileError(f"{path}: the mesh's vertices contain NaN or infinite values")
    if not mesh.area > 0:
        raise PointCloudFileError(f"{path}: the mesh's faces have no area (a degenerate mesh)")
    coloured = getattr(mesh.visual, "kind", None) in ("vertex", "face")
    sampled = trimesh.sample.sample_surface(mesh, num_points, seed=seed, sample_color=coloured)
    points, face_index = sampled[0], sampled[1]
    normals = np.asarray(mesh.face_normals)[face_index]
    out = {"points": _as_points(np.asarray(points), Path(path), "the sampled points"),
           "normals": np.ascontiguousarray(normals, dtype=np.float32)}
    if coloured and len(sampled) > 2 and sampled[2] is not None:
        out["colors"] = _rgb(np.asarray(sampled[2]))
    return out


def _rgb(colors: np.ndarray) -> np.ndarray:
    """[P, 3 or 4] colours (uint8 0..255 or floats 0..1) -> [P, 3] float32 RGB in [0, 1]."""
    rgb = colors[:, :3]
    rgb = rgb.astype(np.float32) / 255.0 if rgb.dtype.kind in "ui" else rgb.astype(np.float32)
    return np.ascontiguousarray(np.clip(rgb, 0.0, 1.0))


def read_points(path: str | Path, num_points: int = 1024, seed: int = 0,
                max_bytes: int = 256 * 2**20) -> dict[str, Any]:
    """One file -> {"points": [P, 3] float32, "normals": [P, 3] and "colors": [P, 3] RGB in [0, 1] (when known)}.

    .off/.ply/.obj/.stl: meshes sampled on their surface (num_points points, seeded); files without faces
    (point-cloud .ply/.obj) give their vertices (and vertex colours). Coloured meshes give each sample the colour of
    its surface. .npy: [P, 3] or [P, 6] (xyz + normals). .npz: an array named points (or xyz, pos, positions,
    vertices) and optionally normals and colors.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise PointCloudFileError(f"{path}: unsupported file type {suffix or '(none)'!r}; use one of "
                                  f"{', '.join(SUFFIXES)}")
    if suffix in ARRAY_SUFFIXES:
        _check_file(path, max_bytes)
        return (_read_npy if suffix == ".npy" else _read_npz)(path, max_bytes)
    return sample_mesh(load_mesh(path, max_bytes), num_points, seed, path)
