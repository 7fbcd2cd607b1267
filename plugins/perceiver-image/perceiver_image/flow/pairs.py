"""`image.pairs`: frame pairs with ground-truth flow or disparity from the user's own files (see PairsConfig).

Files are read when an example is used (lazily), through the bounded readers of io.py. A training example is
the whole pair; the preprocessor's augmentation cuts a random crop of the training size from it (a new one each
epoch). A held-out example is one of `test_crops` fixed crops of a pair, so evaluation batches stack.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from perceiver_core import BuildContext, Dataset
from perceiver_core.errors import UserError

from ..configs import PairsConfig
from .io import read_any, read_frame
from .pair import disparity_to_flow

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff", ".npy")
TRUTH_SUFFIXES = {"flow": (".flo", ".pfm", ".npy"), "disparity": (".pfm", ".png", ".npy")}


def _natural(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def list_pairs(config: PairsConfig) -> list[tuple[Path, Path, Path]]:
    """(frame0, frame1, truth) paths of every example, in a fixed order."""
    if config.pairs_file:
        listing = Path(config.pairs_file)
        if not listing.is_file():
            raise UserError(f"data.pairs_file {str(listing)!r} does not exist")
        if listing.stat().st_size > 64 << 20:
            raise UserError(f"{listing}: a pairs file of more than 64 MiB is refused")
        base, rows = listing.parent, []
        for number, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = [p for p in re.split(r"[,\s]+", line) if p]
            if len(parts) != 3:
                raise UserError(f"{listing}:{number}: expected FRAME0 FRAME1 TRUTH, got {len(parts)} field(s)")
            rows.append(tuple(base / p for p in parts))
        return rows
    if not (config.frames and config.truth):
        raise UserError("image.pairs needs data.pairs_file, or data.frames and data.truth (folders)")
    frames, truth = Path(config.frames), Path(config.truth)
    for name, folder in (("frames", frames), ("truth", truth)):
        if not folder.is_dir():
            raise UserError(f"data.{name} {str(folder)!r} is not a folder")
    rows = []
    folders = sorted({p.parent for p in frames.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES})
    for folder in folders:
        images = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural)
        for first, second in zip(images, images[1:]):
            stem = truth / first.parent.relative_to(frames) / first.stem
            found = [stem.with_suffix(s) for s in TRUTH_SUFFIXES[config.kind] if stem.with_suffix(s).is_file()]
            if found:  # the last frame of a sequence has no truth: it only closes the previous pair
                rows.append((first, second, found[0]))
    if not rows:
        raise UserError(f"no frame pairs with ground truth found: frames in {frames} (consecutive images per "
                        f"folder) need truth in {truth} named after the first frame "
                        f"({'/'.join(TRUTH_SUFFIXES[config.kind])})")
    return rows


def load_pair(frame0: Path, frame1: Path, truth: Path, kind: str) -> dict[str, Any]:
    """One example: {"frames": [2, H, W, C], "flow": [H, W, 2], "valid": [H, W]} (disparity -> u = -d)."""
    a, b = read_frame(frame0), read_frame(frame1)
    if a.shape != b.shape:
        raise UserError(f"{frame0} and {frame1} differ in size ({list(a.shape)} vs {list(b.shape)})")
    gt = read_any(truth, kind)
    if kind == "disparity":
        flow, valid = disparity_to_flow(gt)
    else:
        flow, valid = gt, None
    if flow.shape[:2] != a.shape[:2]:
        raise UserError(f"{truth}: ground truth of {flow.shape[1]}x{flow.shape[0]} for frames of "
                        f"{a.shape[1]}x{a.shape[0]}")
    out: dict[str, Any] = {"frames": np.stack([a, b]), "flow": flow}
    if valid is not None:
        out["valid"] = valid
    return out


def crop_example(example: Mapping[str, Any], y: int, x: int, size: tuple[int, int]) -> dict[str, Any]:
    h, w = size
    out = {"frames": np.ascontiguousarray(np.asarray(example["frames"])[:, y:y + h, x:x + w])}
    for key in ("flow", "valid"):
        if example.get(key) is not None:
            out[key] = np.ascontiguousarray(np.asarray(example[key])[y:y + h, x:x + w])
    return out


def fixed_crops(shape: tuple[int, int], size: tuple[int, int], count: int, seed: int) -> list[tuple[int, int]]:
    """`count` crop corners inside `shape`, seeded."""
    h, w = shape
    if h < size[0] or w < size[1]:
        raise UserError(f"frames of {w}x{h} are smaller than the crop {size[1]}x{size[0]}")
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(0, h - size[0] + 1)), int(rng.integers(0, w - size[1] + 1))) for _ in range(count)]


class _Split(Sequence):
    """A lazily read split: item i -> (pair, optional crop)."""

    def __init__(self, rows, kind: str, items: list[tuple[int, tuple[int, int] | None]], crop: tuple[int, int]):
        self.rows, self.kind, self.items, self.crop = rows, kind, items, crop

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        pair, corner = self.items[i]
        example = load_pair(*self.rows[pair], self.kind)
        return example if corner is None else crop_example(example, *corner, self.crop)


class PairsDataset(Dataset):
    splits = ("train", "test")

    def __init__(self, config: PairsConfig, context: BuildContext | None = None):
        self.config = config

    def info(self) -> dict[str, Any]:
        return {"image_shape": (*self.config.crop, self.config.channels)}

    def _rows_and_split(self):
        rows = list_pairs(self.config)
        order = np.random.default_rng(self.config.split_seed).permutation(len(rows))
        n_test = int(round(self.config.test_fraction * len(rows)))
        if self.config.test_fraction > 0 and len(rows) > 1:
            n_test = max(n_test, 1)
        return rows, sorted(order[n_test:].tolist()), sorted(order[:n_test].tolist())

    def examples(self, split: str) -> Sequence[Mapping[str, Any]]:
        if split not in self.splits:
            raise UserError(f"image.pairs has no split {split!r}; splits: train, test")
        c = self.config
        rows, train, test = self._rows_and_split()
        if split == "train":
            return _Split(rows, c.kind, [(p, None) for p in train for _ in range(c.repeats)], c.crop)
        items = []
        for p in test:
            shape = read_frame(rows[p][0]).shape[:2]
            items += [(p, corner) for corner in fixed_crops(shape, c.crop, c.test_crops, c.split_seed * 7919 + p)]
        return _Split(rows, c.kind, items, c.crop)
