"""`FileDataset`: the one file-backed dataset every modality plugin builds on.

A plugin subclasses it, names the file types it reads (`extensions`) and implements `decode(row)`: one row of
the index ({"path": file} for folders and manifests, the table's columns for tables) -> a raw example (e.g.
{"image": array}). Everything else is here: indexing the three layouts, splits, class names, verifying every file
once, the training split's statistics (cached with a fingerprint), skipping or refusing unreadable files, and
bounded reads. `examples(split)` is a lazy sequence: `split[i]` reads and decodes one file, in whichever data worker
asks for it, so nothing is held in memory but 16 bytes of index per example.

Statistics: `stats_start()` / `stats_add(state, example)` / `stats_finish(state)` accumulate over the training
split in the same pass that verifies the files (e.g. per-channel sums for images); `info()` reports the result,
which the checkpoint keeps (with the class names) through the build context.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import Any, Mapping, Sequence

import numpy as np

from ...config.data import FileDataConfig
from ...errors import DataError
from ...interfaces import BuildContext, Dataset
from . import cache
from .index import SPLIT_ORDER, FileIndex, build_index

SCAN_CHUNK = 256  # rows decoded per round of the verification pass (bounds its memory)


def _reason(exc: BaseException) -> str:
    """One line: a decoder's ValueError says the reason itself; other exceptions keep their type's name."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if text and isinstance(exc, (ValueError, DataError)):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class FileDataset(Dataset):
    """Base of file-backed datasets; see the module docstring. Subclasses set `component` and `extensions`."""

    component = "files"  # the registered name, for messages (e.g. "image.folder")
    extensions: tuple[str, ...] = ()  # lowercase suffixes kept from folders (empty: every file)

    def __init__(self, config: FileDataConfig, context: BuildContext | None = None):
        self.config = config
        self.skipped: list[tuple[int, str, str]] = []  # (row, where, reason) of files left out
        self.cache_file: str | None = None

    # -- what a subclass provides ----------------------------------------------------------------------------
    def decode(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """One index row -> a raw example (without its label). Raise any exception for an unreadable file."""
        raise NotImplementedError

    def cache_settings(self) -> dict[str, Any]:
        """Settings that change what `decode` returns (e.g. the colour mode): part of the cache key."""
        return {}

    def stats_start(self) -> Any:
        """Initial statistics state, or None when this dataset computes none."""
        return None

    def stats_add(self, state: Any, example: Mapping[str, Any]) -> Any:
        return state

    def stats_finish(self, state: Any) -> dict[str, Any]:
        return {}

    def summarise(self, example: Mapping[str, Any]) -> str:
        """A few words about one decoded example, for `perceiver data` (e.g. "640x480 RGB")."""
        return ", ".join(f"{k}: {type(v).__name__}" for k, v in example.items())

    def extra_info(self) -> dict[str, Any]:
        """Facts a subclass adds to `info()` (e.g. the image shape the model is built for)."""
        return {}

    # -- the index -----------------------------------------------------------------------------------------------
    @cached_property
    def index(self) -> FileIndex:
        index = build_index(self.config, self.extensions)
        self._building = index  # rows are read through it while the index is being verified
        record = self._scan(index)
        self.statistics = record.get("stats") or {}
        bad = [tuple(b) for b in record.get("bad", [])]
        if bad:
            row, where, reason = bad[0]
            if self.config.on_error == "raise":
                more = f" ({len(bad)} unreadable files in all)" if len(bad) > 1 else ""
                raise DataError(f"{where}: {reason}{more}; fix or remove it, or set data.on_error = \"skip\" "
                                "to leave unreadable files out")
            drop = np.array(sorted(b[0] for b in bad), dtype=np.int64)
            for split, ids in list(index.splits.items()):
                keep = ~np.isin(ids, drop)
                index.splits[split] = ids[keep]
                if index.labels.get(split) is not None:
                    index.labels[split] = index.labels[split][keep]
            self.skipped = bad
            print(f"{self.component}: skipped {len(bad)} unreadable file(s), e.g. {where}: {reason}"
                  + (f" (all listed in {self.cache_file})" if self.cache_file else ""), file=sys.stderr)
        for split, ids in index.splits.items():
            if split == "train" and len(ids) == 0:
                raise DataError(f"{self.component}: the training split is empty")
        return index

    def _scan_settings(self) -> dict[str, Any]:
        c = self.config
        return {"component": self.component, "extensions": list(self.extensions), "label": c.label_column,
                "split": c.split_column, "fractions": [c.val_fraction, c.test_fraction, c.split_seed],
                "path": c.path_column, "verify": c.verify, "max_file_mb": c.max_file_mb, **self.cache_settings()}

    def _scan(self, index: FileIndex) -> dict[str, Any]:
        """Verify every file (or only the training split when verify is off) and compute statistics, or reuse
        the cached result of an earlier pass over the same files."""
        settings = self._scan_settings()
        state = self.stats_start()
        if not self.config.verify and state is None:
            return {}
        key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
        places = cache.cache_paths(index.base, f"{self.component}-{key}", self.config.cache_dir)
        expected = cache.fingerprint(index.files, settings)
        record, found = cache.load(places, expected)
        if record is not None:
            self.cache_file = str(found)
            return record
        train = set(index.splits["train"].tolist())
        rows = sorted(set(np.concatenate(list(index.splits.values())).tolist())) if self.config.verify \
            else sorted(train)
        print(f"{self.component}: reading {len(rows):,} examples once to verify them and compute statistics "
              "(cached for the next runs)", file=sys.stderr)
        bad: list[list[Any]] = []
        workers = max(1, min(8, os.cpu_count() or 1, self.config.num_workers or os.cpu_count() or 1))
        with ThreadPoolExecutor(workers) as pool:
            for start in range(0, len(rows), SCAN_CHUNK):
                chunk = rows[start:start + SCAN_CHUNK]
                for row, (example, error) in zip(chunk, pool.map(self._try_read, chunk)):
                    if error is not None:
                        bad.append([row, index.table.where(row), error])
                    elif state is not None and row in train:
                        state = self.stats_add(state, example)
        record = {"fingerprint": expected, "bad": bad,
                  "stats": self.stats_finish(state) if state is not None else {}, "files": len(rows)}
        saved = cache.save(places, record)
        self.cache_file = str(saved) if saved else None
        return record

    def _try_read(self, row: int) -> tuple[dict[str, Any] | None, str | None]:
        try:
            return self._decode_row(row), None
        except Exception as exc:  # any failure of a decoder on a user's file is reported, never a traceback
            return None, exc.reason if isinstance(exc, _Unreadable) else _reason(exc)

    def _decode_row(self, row_id: int) -> dict[str, Any]:
        row = self.index.table.row(row_id) if "index" in self.__dict__ else self._pending_row(row_id)
        path = row.get("path")
        if isinstance(path, str):
            try:
                size = os.stat(path).st_size
            except OSError as exc:
                raise _Unreadable(exc.strerror or str(exc)) from None
            limit = self.config.max_file_mb * 2**20
            if size > limit:
                raise _Unreadable(f"{size:,} bytes, more than data.max_file_mb = {self.config.max_file_mb:g} "
                                  f"({int(limit):,} bytes)")
            if size == 0:
                raise _Unreadable("empty file")
        return self.decode(row)

    def _pending_row(self, row_id: int) -> dict[str, Any]:
        return self._building.table.row(row_id)

    def read(self, row_id: int) -> dict[str, Any]:
        """Decode one row (in a data worker); an unreadable file is a DataError naming it."""
        try:
            return self._decode_row(row_id)
        except _Unreadable as exc:
            raise DataError(f"{self.index.table.where(row_id)}: {exc.reason}") from None
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{self.index.table.where(row_id)}: {_reason(exc)}") from None

    # -- the Dataset interface -------------------------------------------------------------------------------
    @property
    def splits(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(s for s in SPLIT_ORDER if s in self.index.splits)

    @property
    def label_names(self) -> list[str] | None:
        return self.index.label_names

    def info(self) -> dict[str, Any]:
        index = self.index
        out: dict[str, Any] = {}
        if index.label_names is not None:
            out.update(num_classes=len(index.label_names), label_names=list(index.label_names))
        return {**out, **self.statistics, **self.extra_info()}

    def examples(self, split: str) -> "FileSplit":
        if split not in self.index.splits:
            raise DataError(f"{self.component} has no split {split!r}; splits: {', '.join(self.splits)}")
        return FileSplit(self, split, self.index.splits[split], self.index.labels.get(split))

    def describe(self, examples: int = 3) -> dict[str, Any]:
        """What `perceiver data` prints: counts per split and class, a few examples, the statistics."""
        index, names = self.index, self.index.label_names
        splits = {}
        for split in self.splits:
            entry: dict[str, Any] = {"examples": int(len(index.splits[split]))}
            labels = index.labels.get(split)
            if labels is not None and names is not None:
                counts = np.bincount(labels, minlength=len(names))
                entry["classes"] = {names[i]: int(c) for i, c in enumerate(counts)}
            splits[split] = entry
        shown = []
        train = self.examples("train")
        for i in range(min(examples, len(train))):
            example = train[i]
            row = {"file": index.table.where(int(index.splits["train"][i])), "what": self.summarise(example)}
            if "label" in example and names is not None:
                row["label"] = names[example["label"]]
            shown.append(row)
        source = self.config.root or self.config.manifest or self.config.table
        return {"dataset": self.component, "source": source, "splits": splits, "label_names": names,
                "statistics": self.statistics, "skipped": [{"file": w, "reason": r} for _, w, r in self.skipped],
                "cache": self.cache_file, "examples": shown}


class _Unreadable(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class FileSplit(Sequence[Mapping[str, Any]]):
    """One split: example i is the decoded file of row ids[i] plus its "label" (class index) and "split"."""

    def __init__(self, dataset: FileDataset, name: str, ids: np.ndarray, labels: np.ndarray | None):
        self.dataset, self.name, self.ids, self.labels = dataset, name, ids, labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Mapping[str, Any]:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a split of {len(self)} examples")
        example = self.dataset.read(int(self.ids[i]))
        if self.labels is not None:
            example["label"] = int(self.labels[i])
        example["split"] = self.name
        return example
