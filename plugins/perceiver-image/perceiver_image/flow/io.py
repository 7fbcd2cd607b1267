"""Reading and writing flow, disparity and frames, each reader bounding what it allocates before it reads.

    .flo  Middlebury flow: b"PIEH" (float 202021.25), int32 width, int32 height, then H*W*2 float32 (u, v)
    .pfm  portable float map: "PF" (3 channels) or "Pf" (1), "W H", scale (< 0: little-endian), rows bottom-up
    .png  disparity as 16-bit grey, value / 256 (KITTI; 0 = unknown); frames as 8/16-bit images (Pillow)
    .npy  plain arrays only (allow_pickle=False), shape checked from the header (memory-mapped) before loading

A header that claims more than MAX_PIXELS pixels, or a size that disagrees with the file's length, is refused
with one line before anything is allocated.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from perceiver_core.errors import UserError

MAX_PIXELS = 1 << 26  # 67M pixels (8192 x 8192): larger claims are refused before allocating
FLO_MAGIC = 202021.25


def _check_pixels(path: Path, h: int, w: int, what: str) -> None:
    if h < 1 or w < 1 or h * w > MAX_PIXELS:
        raise UserError(f"{path}: {what} header claims {w}x{h} pixels; refused (at most {MAX_PIXELS:,} pixels, "
                        f"both sides positive): the file is corrupt or not a {what} file")


def _file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"file {str(path)!r} does not exist")
    return p


# -- .flo ------------------------------------------------------------------------------------------------------
def read_flo(path: str | os.PathLike) -> np.ndarray:
    """[H, W, 2] float32 flow (u, v) in pixels; values >= 1e9 mean unknown (Middlebury's convention)."""
    p = _file(path)
    size = p.stat().st_size
    with open(p, "rb") as f:
        header = f.read(12)
        if len(header) < 12 or np.frombuffer(header[:4], "<f4")[0] != FLO_MAGIC:
            raise UserError(f"{p}: not a .flo file (expected the magic number 202021.25 'PIEH')")
        w, h = (int(v) for v in np.frombuffer(header[4:12], "<i4"))
        _check_pixels(p, h, w, ".flo")
        if size != 12 + h * w * 8:
            raise UserError(f"{p}: .flo header says {w}x{h} ({12 + h * w * 8:,} bytes) but the file has {size:,} bytes")
        data = np.fromfile(f, dtype="<f4", count=h * w * 2)
    return data.reshape(h, w, 2).astype(np.float32)


def write_flo(path: str | os.PathLike, flow: np.ndarray) -> None:
    flow = np.asarray(flow, dtype="<f4")
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"a flow field is [H, W, 2], got {list(flow.shape)}")
    h, w = flow.shape[:2]
    with open(path, "wb") as f:
        f.write(np.array([FLO_MAGIC], "<f4").tobytes() + np.array([w, h], "<i4").tobytes())
        f.write(np.ascontiguousarray(flow).tobytes())


# -- .pfm ------------------------------------------------------------------------------------------------------
def read_pfm(path: str | os.PathLike) -> np.ndarray:
    """[H, W] (Pf) or [H, W, 3] (PF) float32, top row first; inf marks unknown values in Middlebury's maps."""
    p = _file(path)
    size = p.stat().st_size
    with open(p, "rb") as f:
        lines = []
        while len(lines) < 4:  # "PF|Pf", "W H", "scale": four whitespace-separated header fields
            line = f.readline(256)
            if not line:
                raise UserError(f"{p}: truncated .pfm header")
            tokens = line.split()
            lines.extend(tokens)
        magic, rest = lines[0], lines[1:]
        if magic not in (b"PF", b"Pf"):
            raise UserError(f"{p}: not a .pfm file (magic {magic!r}, expected PF or Pf)")
        try:
            w, h, scale = int(rest[0]), int(rest[1]), float(rest[2])
        except (ValueError, IndexError):
            raise UserError(f"{p}: malformed .pfm header {b' '.join(lines)!r}") from None
        _check_pixels(p, h, w, ".pfm")
        channels = 3 if magic == b"PF" else 1
        count = h * w * channels
        if size - f.tell() < count * 4:
            raise UserError(f"{p}: .pfm header says {w}x{h}x{channels} but the file holds fewer values")
        data = np.fromfile(f, dtype="<f4" if scale < 0 else ">f4", count=count)
    data = data.reshape(h, w, channels)[::-1]  # stored bottom row first
    return np.ascontiguousarray(data[..., 0] if channels == 1 else data, dtype=np.float32)


def write_pfm(path: str | os.PathLike, array: np.ndarray) -> None:
    a = np.asarray(array, dtype="<f4")
    magic = b"PF" if a.ndim == 3 else b"Pf"
    with open(path, "wb") as f:
        f.write(magic + b"\n" + f"{a.shape[1]} {a.shape[0]}\n-1.0\n".encode())
        f.write(np.ascontiguousarray(a[::-1]).tobytes())


# -- .npy and images --------------------------------------------------------------------------------------------
def read_npy(path: str | os.PathLike) -> np.ndarray:
    """A plain numeric array; its size is read from the header before the data."""
    p = _file(path)
    try:
        array = np.load(p, allow_pickle=False, mmap_mode="r")
    except ValueError as exc:
        raise UserError(f"{p}: not a plain numeric .npy array ({exc})") from None
    if array.size > MAX_PIXELS * 4:
        raise UserError(f"{p}: .npy holds {array.size:,} values {list(array.shape)}; refused (more than "
                        f"{MAX_PIXELS * 4:,})")
    return np.array(array)


def read_image_file(path: str | os.PathLike) -> np.ndarray:
    """An image (PNG, JPEG, PPM ...) as stored: [H, W] or [H, W, C], uint8 or uint16 (needs Pillow)."""
    p = _file(path)
    try:
        from PIL import Image
    except ImportError:
        raise UserError(f"{p}: reading images needs Pillow: pip install 'perceiver-image[png]'") from None
    try:
        with Image.open(p) as image:  # reads the header only
            w, h = image.size
            _check_pixels(p, h, w, "image")
            if image.mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(image, dtype=np.uint16)
            if image.mode not in ("L", "RGB"):
                image = image.convert("RGB")
            return np.asarray(image)
    except UserError:
        raise
    except Exception as exc:  # Pillow raises many types for corrupt files
        raise UserError(f"{p}: cannot read the image ({type(exc).__name__}: {exc})") from None


def read_frame(path: str | os.PathLike) -> np.ndarray:
    """A frame [H, W, C] (uint8 or uint16 as stored, or float in [0, 1] from .npy)."""
    if Path(path).suffix.lower() == ".npy":
        a = read_npy(path)
    else:
        a = read_image_file(path)
    return a[..., None] if a.ndim == 2 else a


# -- ground truth ---------------------------------------------------------------------------------------------
def read_flow(path: str | os.PathLike) -> np.ndarray:
    """Ground-truth flow [H, W, 2] from .flo, .pfm (3 channels, the third ignored) or .npy."""
    suffix = Path(path).suffix.lower()
    if suffix == ".flo":
        return read_flo(path)
    if suffix == ".pfm":
        a = read_pfm(path)
        if a.ndim != 3:
            raise UserError(f"{path}: a flow .pfm must have 3 channels (PF), this one has 1 (a disparity map?)")
        return a[..., :2].copy()
    if suffix == ".npy":
        a = read_npy(path).astype(np.float32)
        if a.ndim != 3 or a.shape[2] != 2:
            raise UserError(f"{path}: a flow .npy must be [H, W, 2], got {list(a.shape)}")
        return a
    raise UserError(f"{path}: unsupported flow file {suffix!r}; use .flo, .pfm or .npy")


def read_disparity(path: str | os.PathLike) -> np.ndarray:
    """Ground-truth disparity [H, W] float32 from .pfm, .npy or 16-bit .png (value / 256, 0 = unknown -> NaN)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".pfm":
        a = read_pfm(path)
        return a if a.ndim == 2 else a[..., 0].copy()
    if suffix == ".npy":
        a = read_npy(path).astype(np.float32)
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[..., 0]
        if a.ndim != 2:
            raise UserError(f"{path}: a disparity .npy must be [H, W], got {list(a.shape)}")
        return a
    if suffix == ".png":
        a = read_image_file(path)
        if a.ndim != 2 or a.dtype != np.uint16:
            raise UserError(f"{path}: a disparity .png must be 16-bit grey (KITTI: value / 256), got "
                            f"{a.dtype} {list(a.shape)}")
        d = a.astype(np.float32) / 256.0
        d[a == 0] = np.nan
        return d
    raise UserError(f"{path}: unsupported disparity file {suffix!r}; use .pfm, .npy or .png")


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    try:
        from PIL import Image
    except ImportError:
        raise UserError("writing the flow picture needs Pillow: pip install 'perceiver-image[png]'") from None
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(path)


def read_any(path: str | os.PathLike, kind: str) -> Any:
    return read_flow(path) if kind == "flow" else read_disparity(path)
