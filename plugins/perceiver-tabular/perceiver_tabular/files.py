"""`tabular.file`: the user's own CSV or Parquet table through the core's file-backed dataset.

Rows are read lazily (CSV by byte offsets, Parquet by row groups). One cached pass over the training rows finds
each column's kind and statistics: numeric columns get their mean and std (missing values left out);
categorical columns (named in the config, or any column holding a value that is not a number) get their most
frequent categories. An example is then {"features": [F numbers]} for `tabular.features`: numeric values as they
are, one 0/1 indicator per category, NaN where a value is missing (masked out of attention).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Mapping

from perceiver_core import BuildContext
from perceiver_core.datasets import FileDataset
from perceiver_core.errors import DataError

from .configs import TableFileConfig

MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}
OTHER = "<other>"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or \
        (isinstance(value, str) and value.strip().lower() in MISSING)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def encode_row(values: Mapping[str, Any], columns: list[str], categorical: Mapping[str, list[str]]) -> list[float]:
    """Raw column values -> features: numbers as they are, one 0/1 indicator per category of a categorical column
    (an unseen category counts as "<other>" when the column has one), NaN for a missing value."""
    features: list[float] = []
    for name in columns:
        value = values.get(name)
        if name in categorical:
            cats = categorical[name]
            if _missing(value):
                features += [math.nan] * len(cats)
                continue
            key = str(value).strip()
            key = key if key in cats else OTHER
            features += [1.0 if key == v else 0.0 for v in cats]
        else:
            x = None if _missing(value) else _number(value)
            if x is None and not _missing(value):
                raise ValueError(f"column {name!r} is numeric, got {value!r}")
            features.append(math.nan if x is None else x)
    return features


class TableFileDataset(FileDataset):
    component = "tabular.file"

    def __init__(self, config: TableFileConfig, context: BuildContext | None = None):
        if not config.table:
            raise DataError("tabular.file reads one table: set data.table to a .csv or .parquet file")
        super().__init__(config, context)
        self.config: TableFileConfig = config

    def _columns(self) -> list[str]:
        c = self.config
        table = self.__dict__.get("index") or self._building
        names = [str(n) for n in table.table.columns]
        if c.feature_columns is not None:
            unknown = [n for n in c.feature_columns if n not in names]
            if unknown:
                raise DataError(f"{c.table}: no columns {unknown}; columns: {', '.join(names[:20])}")
            return list(c.feature_columns)
        return [n for n in names if n not in (c.label_column, c.split_column)]

    def decode(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {"values": {name: row.get(name) for name in self._columns()}}

    def cache_settings(self) -> dict[str, Any]:
        c = self.config
        return {"features": c.feature_columns, "categorical": c.categorical_columns, "max": c.max_categories}

    # -- statistics: kinds, mean/std, categories ---------------------------------------------------------------
    def stats_start(self) -> dict[str, Any]:
        return {"n": {}, "sum": {}, "sq": {}, "text": {}, "counts": {}}

    def stats_add(self, state: dict[str, Any], example: Mapping[str, Any]) -> dict[str, Any]:
        for name, value in example["values"].items():
            if _missing(value):
                continue
            counts = state["counts"].setdefault(name, Counter())
            if len(counts) <= 10_000:  # bounded: a column of unique strings is not a category
                counts[str(value).strip()] += 1
            x = _number(value)
            if x is None or not math.isfinite(x):
                state["text"][name] = True
                continue
            state["n"][name] = state["n"].get(name, 0) + 1
            state["sum"][name] = state["sum"].get(name, 0.0) + x
            state["sq"][name] = state["sq"].get(name, 0.0) + x * x
        return state

    def stats_finish(self, state: dict[str, Any]) -> dict[str, Any]:
        c = self.config
        numeric, categorical = {}, {}
        for name in self._columns():
            counts = state["counts"].get(name, Counter())
            if name in c.categorical_columns or state["text"].get(name):
                ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                values = [v for v, _ in ranked[:c.max_categories]]
                categorical[name] = values + ([OTHER] if len(ranked) > c.max_categories else [])
            else:
                n = state["n"].get(name, 0)
                mean = state["sum"].get(name, 0.0) / max(n, 1)
                var = max(state["sq"].get(name, 0.0) / max(n, 1) - mean * mean, 0.0)
                numeric[name] = [round(mean, 9), round(math.sqrt(var), 9) if var > 1e-18 else 1.0]
        return {"numeric_columns": numeric, "categorical_columns": categorical}

    # -- examples ----------------------------------------------------------------------------------------------
    def _layout(self) -> list[tuple[str, str | None]]:
        """(column, category) per feature: category None for a numeric column."""
        self.index  # noqa: B018 (builds the index and its statistics)
        stats = self.statistics
        out: list[tuple[str, str | None]] = []
        for name in self._columns():
            if name in stats["categorical_columns"]:
                out += [(name, v) for v in stats["categorical_columns"][name]]
            else:
                out.append((name, None))
        return out

    def read(self, row_id: int) -> dict[str, Any]:
        values = super().read(row_id)["values"]
        return {"features": encode_row(values, self._columns(), self.statistics["categorical_columns"])}

    def summarise(self, example: Mapping[str, Any]) -> str:
        present = sum(not math.isnan(v) for v in example["features"])
        return f"{len(example['features'])} features, {present} present"

    def extra_info(self) -> dict[str, Any]:
        stats = self.statistics
        layout = self._layout()
        mean, std = [], []
        for name, category in layout:
            m, s = stats["numeric_columns"][name] if category is None else (0.0, 1.0)
            mean.append(m)
            std.append(s)
        return {"num_features": len(layout), "table_columns": self._columns(),
                "feature_names": [name if c is None else f"{name}={c}" for name, c in layout],
                "feature_mean": mean, "feature_std": std}
