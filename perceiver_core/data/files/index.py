"""Indexing a dataset's files without reading them: which rows exist, their labels, their splits.

Three layouts (see `FileDataConfig`): a folder of class subfolders (optionally under train/ val/ test/), a manifest
naming one file per row, or a table whose rows are the examples. The result is a `FileIndex`: one `Table` of rows,
and per split the row ids [n] and class indices [n] (int64 arrays: 16 bytes per example whatever the files hold).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...config.data import FileDataConfig
from ...errors import DataError
from .tables import PathTable, Table, open_table

SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
SPLIT_ORDER = ("train", "val", "test")


@dataclass
class FileIndex:
    table: Table
    base: Path  # folder that relative paths are resolved against; the cache lives beside it
    splits: dict[str, np.ndarray]  # split -> row ids [n]
    labels: dict[str, np.ndarray | None]  # split -> class index per example [n] (None: unlabelled)
    label_names: list[str] | None
    files: list[str] = field(default_factory=list)  # what the fingerprint covers


def _is_hidden(name: str) -> bool:
    return name.startswith((".", "_"))


def _walk_files(folder: Path, extensions: Sequence[str]) -> list[str]:
    """Files under `folder` (recursively, hidden ones skipped) whose suffix is one of `extensions`, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        out += [os.path.join(dirpath, f) for f in sorted(filenames)
                if not _is_hidden(f) and (not extensions or os.path.splitext(f)[1].lower() in extensions)]
    return out


def _class_folders(folder: Path, extensions: Sequence[str], what: str) -> dict[str, list[str]]:
    exts = ", ".join(extensions) or "any"
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not _is_hidden(d.name))
    if not classes:
        loose = [f for f in _walk_files(folder, extensions)]
        hint = f" ({len(loose)} files lie directly in it)" if loose else ""
        raise DataError(f"{folder}: {what} has no class subfolders{hint}; expected {folder}/CLASS/FILE "
                        f"with files of type {exts}")
    out = {}
    for name in classes:
        files = _walk_files(folder / name, extensions)
        if not files:
            raise DataError(f"{folder / name}: class {name!r} has no files of type {exts}; add files or remove "
                            "the folder")
        out[name] = files
    return out


def stratified_fractions(labels: np.ndarray | None, n: int, val: float, test: float, seed: int) -> np.ndarray:
    """Split code per example [n]: 0 train, 1 val, 2 test; round(fraction * n_c) of each class c, seeded."""
    rng = np.random.default_rng(seed)
    code = np.zeros(n, dtype=np.int8)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    for idx in groups:
        idx = idx[rng.permutation(len(idx))]
        n_test, n_val = round(len(idx) * test), round(len(idx) * val)
        if len(idx) > 1 and n_test + n_val >= len(idx):  # keep at least one training example per class
            n_test, n_val = min(n_test, len(idx) - 1), max(0, min(n_val, len(idx) - 1 - min(n_test, len(idx) - 1)))
        code[idx[:n_test]] = 2
        code[idx[n_test:n_test + n_val]] = 1
    return code


def _fraction_splits(config: FileDataConfig, labels: np.ndarray | None, n: int):
    code = stratified_fractions(labels, n, config.val_fraction, config.test_fraction, config.split_seed)
    names = ["train"] + (["val"] if config.val_fraction > 0 else []) + (["test"] if config.test_fraction > 0 else [])
    splits = {name: np.flatnonzero(code == SPLIT_ORDER.index(name)) for name in names}
    return splits, {name: (None if labels is None else labels[ids]) for name, ids in splits.items()}


def index_folder(config: FileDataConfig, extensions: Sequence[str]) -> FileIndex:
    root = Path(config.root).expanduser()
    if not root.is_dir():
        raise DataError(f"data.root {str(root)!r} is not a folder")
    subfolders = {d.name for d in root.iterdir() if d.is_dir() and not _is_hidden(d.name)}
    split_dirs = {d: SPLIT_FOLDERS[d.lower()] for d in subfolders if d.lower() in SPLIT_FOLDERS}
    if split_dirs and split_dirs.keys() != subfolders:
        others = sorted(subfolders - split_dirs.keys())
        raise DataError(f"{root}: mixes split folders ({', '.join(sorted(split_dirs))}) with other folders "
                        f"({', '.join(others[:5])}); put every class folder under train/ val/ test/, or none")
    paths: list[str] = []
    per_split: dict[str, tuple[list[int], list[str]]] = {}
    if split_dirs:
        if "train" not in split_dirs.values():
            raise DataError(f"{root}: has {', '.join(sorted(split_dirs))} folders but no train/ folder")
        for folder, split in sorted(split_dirs.items(), key=lambda kv: SPLIT_ORDER.index(kv[1])):
            if split in per_split:
                raise DataError(f"{root}: two folders for split {split!r}")
            ids, names = per_split.setdefault(split, ([], []))
            for name, files in _class_folders(root / folder, extensions, f"split folder {folder!r}").items():
                ids += range(len(paths), len(paths) + len(files))
                names += [name] * len(files)
                paths += files
        label_names = sorted(set(per_split["train"][1]))
        lookup = {name: i for i, name in enumerate(label_names)}
        for split, (_, names) in per_split.items():
            unknown = sorted(set(names) - lookup.keys())
            if unknown:
                raise DataError(f"{root}/{split}: classes {unknown[:5]} have no training examples under "
                                f"{root}/train; every class needs a train/ folder")
        splits = {s: np.array(ids, dtype=np.int64) for s, (ids, _) in per_split.items()}
        labels = {s: np.array([lookup[n] for n in names], dtype=np.int64) for s, (_, names) in per_split.items()}
        return FileIndex(PathTable(root, paths), root, splits, labels, label_names, paths)
    if not config.label_column and not subfolders:  # unlabelled files (e.g. text for masked modelling)
        paths = _walk_files(root, extensions)
        if not paths:
            raise DataError(f"{root}: no files of type {', '.join(extensions) or 'any'}")
        splits, labels = _fraction_splits(config, None, len(paths))
        return FileIndex(PathTable(root, paths), root, splits, labels, None, paths)
    classes = _class_folders(root, extensions, "data.root")
    label_names = list(classes)
    all_labels = []
    for i, files in enumerate(classes.values()):
        paths += files
        all_labels += [i] * len(files)
    label_array = np.array(all_labels, dtype=np.int64)
    splits, labels = _fraction_splits(config, label_array, len(paths))
    return FileIndex(PathTable(root, paths), root, splits, labels, label_names, paths)


def _label_codes(values: list[Any], where: str) -> tuple[np.ndarray, list[str]]:
    """Class names (integers sorted numerically, else strings sorted) and each row's class index."""
    missing = [i for i, v in enumerate(values) if v is None or v == ""]
    if missing:
        raise DataError(f"{where}: row {missing[0] + 1} has no label ({len(missing)} rows in all)")
    as_text = [str(v).strip() for v in values]
    try:
        numbers = sorted({int(v) for v in as_text}) if all(t.lstrip("-").isdigit() for t in as_text) else None
    except ValueError:
        numbers = None
    names = [str(v) for v in numbers] if numbers is not None else sorted(set(as_text))
    lookup = {name: i for i, name in enumerate(names)}
    keyed = [str(int(t)) for t in as_text] if numbers is not None else as_text
    return np.array([lookup[t] for t in keyed], dtype=np.int64), names


def index_table(config: FileDataConfig, *, manifest: bool) -> FileIndex:
    source = Path(config.manifest if manifest else config.table).expanduser()
    table = open_table(source, int(config.max_file_mb * 2**20))
    if len(table) == 0:
        raise DataError(f"{source}: the table has no rows")
    needed = ([config.path_column] if manifest else []) + [c for c in (config.label_column, config.split_column) if c]
    for column in needed:
        if column not in table.columns:
            raise DataError(f"{source}: no column {column!r}; columns: {', '.join(map(str, table.columns[:20]))}")
    files: list[str] = []
    if manifest:
        base = source.parent
        files = [str(base / str(p)) if p is not None else "" for p in table.column(config.path_column)]
        empty = [i for i, f in enumerate(files) if not f]
        if empty:
            raise DataError(f"{table.where(empty[0])}: empty {config.path_column!r}")
        table = _ManifestTable(table, files, config.path_column)
    labels, label_names = (None, None)
    if config.label_column:
        labels, label_names = _label_codes(table.column(config.label_column), f"{source}: column "
                                                                              f"{config.label_column!r}")
    n = len(table)
    if config.split_column:
        values = [str(v).strip().lower() if v is not None else "" for v in table.column(config.split_column)]
        bad = sorted({v for v in values if v not in SPLIT_FOLDERS})
        if bad:
            raise DataError(f"{source}: column {config.split_column!r} holds {bad[:5]}; expected train, val or test")
        code = np.array([SPLIT_ORDER.index(SPLIT_FOLDERS[v]) for v in values], dtype=np.int8)
        if not (code == 0).any():
            raise DataError(f"{source}: no row has split 'train' in column {config.split_column!r}")
        splits = {name: np.flatnonzero(code == i) for i, name in enumerate(SPLIT_ORDER) if (code == i).any()}
        split_labels = {name: (None if labels is None else labels[ids]) for name, ids in splits.items()}
    else:
        splits, split_labels = _fraction_splits(config, labels, n)
    return FileIndex(table, source.parent, splits, split_labels, label_names, [str(source)] + files)


class _ManifestTable(Table):
    """A manifest's rows with the path column resolved against the manifest's folder."""

    def __init__(self, table: Table, files: list[str], column: str):
        self.inner, self.files, self.column_name = table, files, column
        self.path, self.columns = table.path, table.columns

    def __len__(self) -> int:
        return len(self.inner)

    def row(self, i: int) -> dict[str, Any]:
        return {**self.inner.row(i), "path": self.files[i]}

    def column(self, name: str) -> list[Any]:
        return list(self.files) if name == self.column_name else self.inner.column(name)

    def where(self, i: int) -> str:
        return self.files[i]


def build_index(config: FileDataConfig, extensions: Sequence[str]) -> FileIndex:
    if config.root:
        return index_folder(config, extensions)
    return index_table(config, manifest=bool(config.manifest))
