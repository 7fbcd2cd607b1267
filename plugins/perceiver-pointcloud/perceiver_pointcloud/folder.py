"""`pointcloud.folder`: the user's own meshes and point files, one subfolder per class.

    root/chair/train/chair_0001.off    ModelNet40's layout: the train/ and test/ subfolders are the splits
    root/chair/chair_0001.off          or files directly in the class folder: a seeded, stratified split

Files are listed at construction (names only) and read lazily, one per example: meshes sampled on their surface
with a seed derived from `sample_seed` and the file's path inside root (so an example is the same in every run
and every data worker), point files as they are. A bad file is a one-line error naming it.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from perceiver_core import BuildContext, Dataset
from perceiver_core.datasets import stratified_split
from perceiver_core.errors import UserError

from .configs import MeshFolderConfig
from .io import read_points

SPLITS = ("train", "test")


class FolderSplit(Sequence[Mapping[str, Any]]):
    def __init__(self, config: MeshFolderConfig, root: Path, files: list[tuple[str, int]]):
        self.config, self.root, self.files = config, root, files  # (path relative to root, label)
        self._cache: dict[int, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Mapping[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a split of {len(self)} files")
        i %= len(self)
        example = self._cache.get(i)
        if example is None:
            c = self.config
            relative, label = self.files[i]
            seed = zlib.crc32(f"{c.sample_seed}:{relative}".encode())
            example = {**read_points(self.root / relative, c.num_points, seed, int(c.max_file_mb * 2**20)),
                       "label": label}
            if c.cache:
                self._cache[i] = example
        return dict(example)


class MeshFolderDataset(Dataset):
    splits = SPLITS

    def __init__(self, config: MeshFolderConfig, context: BuildContext | None = None):
        self.config = config
        root = Path(config.root).expanduser()
        if not root.is_dir():
            raise UserError(f"pointcloud.folder: root {config.root!r} is not a folder")
        self.classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(self.classes) < 2:
            raise UserError(f"pointcloud.folder: {root} needs one subfolder per class (at least two), found "
                            f"{len(self.classes)}")
        extensions = {e.lower() for e in config.extensions}

        def files_in(folder: Path) -> list[str]:
            return sorted(str(p.relative_to(root)) for p in folder.iterdir()
                          if p.is_file() and p.suffix.lower() in extensions)

        by_split: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLITS}
        loose: list[tuple[str, int]] = []
        for label, name in enumerate(self.classes):
            folder = root / name
            if (folder / "train").is_dir() or (folder / "test").is_dir():
                for split in SPLITS:
                    if (folder / split).is_dir():
                        by_split[split] += [(f, label) for f in files_in(folder / split)]
            loose += [(f, label) for f in files_in(folder)]
        if loose:
            labels = np.array([label for _, label in loose])
            test = stratified_split(labels, config.test_fraction, config.split_seed)
            by_split["train"] += [item for item, t in zip(loose, test) if not t]
            by_split["test"] += [item for item, t in zip(loose, test) if t]
        for split in SPLITS:
            if not by_split[split]:
                raise UserError(f"pointcloud.folder: no {split} files ({', '.join(sorted(extensions))}) under "
                                f"{root}; put them in class subfolders (optionally in train/ and test/)")
        self.root = root
        self._splits = {s: FolderSplit(config, root, files) for s, files in by_split.items()}

    def info(self) -> dict[str, Any]:
        return {"num_classes": len(self.classes), "label_names": list(self.classes),
                "num_points": self.config.num_points}

    def examples(self, split: str) -> Sequence[Mapping[str, Any]]:
        if split not in self._splits:
            raise UserError(f"pointcloud.folder has no split {split!r}; splits: {', '.join(SPLITS)}")
        return self._splits[split]
