"""Tables read row by row, never whole: CSV and JSON lines by byte offsets, Parquet by row groups (pyarrow).

A `Table` has `columns`, `len()`, `row(i) -> {column: value}` and `column(name) -> list` (one column read in full,
e.g. the labels). Every read is bounded: a row longer than `max_row_bytes`, or a Parquet row group larger than it
(uncompressed), is refused before it is read. Handles are opened per read (CSV, JSONL) or per thread (Parquet), so
data worker threads can share one table.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...errors import DataError

# csv's own per-field limit (default 128 KiB) is raised to ours; rows are bounded by max_row_bytes anyway
csv.field_size_limit(2**31 - 1)


class Table:
    path: Path
    columns: list[str]

    def __len__(self) -> int:
        raise NotImplementedError

    def row(self, i: int) -> dict[str, Any]:
        raise NotImplementedError

    def column(self, name: str) -> list[Any]:
        return [self.row(i).get(name) for i in range(len(self))]

    def where(self, i: int) -> str:
        return f"{self.path}: row {i + 1}"


class _LineTable(Table):
    """Rows at recorded byte offsets ([N + 1] int64: 8 bytes per row, whatever the rows hold)."""

    def __init__(self, path: Path, max_row_bytes: int):
        self.path, self.max_row_bytes = path, max_row_bytes
        self.offsets = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _raw(self, i: int) -> bytes:
        if not 0 <= i < len(self):
            raise IndexError(f"row {i} out of range for a table of {len(self)} rows")
        start, stop = int(self.offsets[i]), int(self.offsets[i + 1])
        with open(self.path, "rb") as f:
            f.seek(start)
            return f.read(stop - start)

    def _scan(self, records, first_record_is_header: bool) -> None:
        """records: an iterator of (offset, bytes) of whole records; keeps the offsets (and the header)."""
        starts: list[int] = []
        end = 0
        for offset, record in records:
            if len(record) > self.max_row_bytes:
                raise DataError(f"{self.path}: row at byte {offset} is {len(record):,} bytes, more than the limit of "
                                f"{self.max_row_bytes:,} (data.max_file_mb)")
            starts.append(offset)
            end = offset + len(record)
        if first_record_is_header:
            starts = starts[1:]
        self.offsets = np.array(starts + [end], dtype=np.int64)


def _lines(path: Path, quoted: bool):
    """(offset, record) for each non-blank record; with `quoted`, a record continues while a double quote is open
    (CSV fields may hold newlines; an escaped quote is doubled, so the parity of the count is what matters)."""
    offset, pending, pending_at, open_quote = 0, b"", 0, False
    with open(path, "rb") as f:
        for line in f:
            if not pending:
                pending_at = offset
            pending += line
            offset += len(line)
            if quoted and line.count(b'"') % 2:
                open_quote = not open_quote
            if open_quote:
                continue
            if pending.strip():
                yield pending_at, pending
            pending = b""
    if pending.strip():
        yield pending_at, pending


class CsvTable(_LineTable):
    def __init__(self, path: Path, max_row_bytes: int):
        super().__init__(path, max_row_bytes)
        records = _lines(path, quoted=True)
        first = next(records, None)
        if first is None:
            raise DataError(f"{path}: the CSV file is empty; it needs a header row naming the columns")
        self.columns = [c.strip() for c in next(csv.reader(io.StringIO(first[1].decode("utf-8-sig"))))]
        self._scan(_chain(first, records), first_record_is_header=True)

    def row(self, i: int) -> dict[str, Any]:
        text = self._raw(i).decode("utf-8")
        values = next(csv.reader(io.StringIO(text)), [])
        if len(values) != len(self.columns):
            raise DataError(f"{self.where(i)} has {len(values)} fields, the header names {len(self.columns)}")
        return {c: (v if v != "" else None) for c, v in zip(self.columns, values)}


class JsonlTable(_LineTable):
    def __init__(self, path: Path, max_row_bytes: int):
        super().__init__(path, max_row_bytes)
        self._scan(_lines(path, quoted=False), first_record_is_header=False)
        self.columns = list(self.row(0)) if len(self) else []

    def row(self, i: int) -> dict[str, Any]:
        try:
            value = json.loads(self._raw(i))
        except ValueError as exc:
            raise DataError(f"{self.where(i)} is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise DataError(f"{self.where(i)} is a JSON {type(value).__name__}, expected an object of named fields")
        return value


class ParquetTable(Table):
    """Rows of a Parquet file, one row group decoded at a time per thread (the last one is kept)."""

    def __init__(self, path: Path, max_row_bytes: int):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(f"{path}: reading Parquet needs pyarrow: pip install 'perceiver-core[parquet]'") from None
        self.path, self.max_row_bytes = path, max_row_bytes
        try:
            meta = pq.ParquetFile(path).metadata
        except Exception as exc:  # pyarrow raises its own ArrowInvalid / OSError kinds
            raise DataError(f"{path}: not a readable Parquet file: {exc}") from None
        self.columns = list(meta.schema.names)
        sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        for g in range(meta.num_row_groups):
            if meta.row_group(g).total_byte_size > max_row_bytes:
                raise DataError(f"{path}: row group {g} holds {meta.row_group(g).total_byte_size:,} bytes "
                                f"uncompressed, more than the limit of {max_row_bytes:,} (data.max_file_mb); "
                                "write the file with smaller row groups (pyarrow: row_group_size=...)")
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # [G + 1]
        self._local = threading.local()

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_local"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()

    def _group(self, g: int):
        local = self._local
        if getattr(local, "group", None) != g:
            import pyarrow.parquet as pq

            if getattr(local, "file", None) is None:
                local.file = pq.ParquetFile(self.path)
            local.rows, local.group = local.file.read_row_group(g).to_pylist(), g
        return local.rows

    def row(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self):
            raise IndexError(f"row {i} out of range for a table of {len(self)} rows")
        g = int(np.searchsorted(self.starts, i, side="right")) - 1
        return self._group(g)[i - int(self.starts[g])]

    def column(self, name: str) -> list[Any]:
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.path).read(columns=[name]).column(0).to_pylist()


class PathTable(Table):
    """The rows of a folder layout: {"path": file} (the label is kept apart, as an index)."""

    def __init__(self, root: Path, paths: Sequence[str]):
        self.path, self.paths, self.columns = root, list(paths), ["path"]

    def __len__(self) -> int:
        return len(self.paths)

    def row(self, i: int) -> dict[str, Any]:
        return {"path": self.paths[i]}

    def where(self, i: int) -> str:
        return self.paths[i]


def _chain(first, rest):
    yield first
    yield from rest


def open_table(path: str | os.PathLike, max_row_bytes: int) -> Table:
    """A CSV (.csv, .tsv), JSON lines (.jsonl, .ndjson) or Parquet (.parquet, .pq) table, by its suffix."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix in (".csv",):
        return CsvTable(p, max_row_bytes)
    if suffix in (".jsonl", ".ndjson"):
        return JsonlTable(p, max_row_bytes)
    if suffix in (".parquet", ".pq"):
        return ParquetTable(p, max_row_bytes)
    raise DataError(f"{p}: unknown table format {suffix!r}; use .csv, .jsonl or .parquet")
