"""`tabular.features`: one input element per feature column of a table row.

prepare() (data workers, no parameters) standardises the row with the training split's statistics that the dataset
reports in info() (feature_mean, feature_std) and marks missing values. forward() (the learned part) turns value x_f
of column f into the element  x_f * w_f + e_f  (C channels): w_f scales the value (per column, or one w shared by
all columns) and e_f is a learned embedding of the column, so the model knows which column an element is (the
elements carry no other position; use position "none"). Missing values are masked out of attention.

A raw example is {"features": [F numbers]} in the dataset's column order, or {"features": {name: value}} by the
column names of info()["feature_names"]; NaN and None are missing values.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from perceiver_core import BuildContext, ByteArray, Preprocessor, read_bounded

from .configs import FeaturesConfig
from .files import encode_row


class FeaturePreprocessor(Preprocessor):
    def no_weight_decay(self) -> set[str]:
        """The per-column embeddings are not decayed."""
        return {"feature_embedding"}

    def __init__(self, config: FeaturesConfig, context: BuildContext):
        super().__init__()
        info = context.dataset
        num_features = info.get("num_features")
        if not isinstance(num_features, int) or num_features < 1:
            raise ValueError("tabular.features needs a dataset whose info() reports num_features (e.g. tabular.wine), "
                             f"got {num_features!r}")
        self.num_features = num_features
        self.feature_names = list(info.get("feature_names") or [])
        self.table_columns = list(info.get("table_columns") or [])  # raw columns of a tabular.file table
        self.categorical = dict(info.get("categorical_columns") or {})
        if self.feature_names and len(self.feature_names) != num_features:
            raise ValueError(f"info() reports {len(self.feature_names)} feature_names for {num_features} features")
        if config.standardize:
            mean, std = info.get("feature_mean"), info.get("feature_std")
            if mean is None or std is None:
                raise ValueError("tabular.features with standardize = true needs the dataset's training-split "
                                 "feature_mean and feature_std in info(); set standardize = false for raw values")
            if len(mean) != num_features or len(std) != num_features:
                raise ValueError(f"feature_mean/feature_std must have {num_features} values each, "
                                 f"got {len(mean)} and {len(std)}")
            if any(not s > 0 for s in std):
                raise ValueError("feature_std must be positive (use 1 for constant columns)")
        else:
            mean, std = [0.0] * num_features, [1.0] * num_features
        # Plain arrays, not buffers: prepare() runs on the CPU in data workers whatever device the model is on.
        self._mean = np.asarray(mean, dtype=np.float64)
        self._std = np.asarray(std, dtype=np.float64)
        self.clip, self.mask_missing = config.clip, config.mask_missing
        self.index_shape = (num_features,)
        self.output_channels = config.channels

        scale = 1.0 / math.sqrt(config.channels)
        weight_shape = (num_features, config.channels) if config.value_embedding == "per_feature" else (config.channels,)
        self.value_weight = nn.Parameter(torch.empty(weight_shape))  # w_f: [F, C] or [C]
        self.feature_embedding = nn.Parameter(torch.empty(num_features, config.channels))  # e_f: [F, C]
        nn.init.normal_(self.value_weight, std=scale)
        nn.init.normal_(self.feature_embedding, std=scale)

    # -- data workers --------------------------------------------------------------------------------------
    def _row(self, features: Any) -> np.ndarray:
        if isinstance(features, Mapping) and self.table_columns and not set(features) - set(self.table_columns):
            # a row of the user's table by its own column names (tabular.file): categories -> indicators
            features = encode_row(features, self.table_columns, self.categorical)
        if isinstance(features, Mapping):
            if not self.feature_names:
                raise ValueError("features given by name, but the dataset's info() reports no feature_names")
            unknown = sorted(set(features) - set(self.feature_names))
            if unknown:
                raise ValueError(f"unknown feature columns {unknown}; known: {self.feature_names}")
            features = [features.get(name) for name in self.feature_names]
        if isinstance(features, (list, tuple)):
            features = [math.nan if v is None else v for v in features]
        row = np.asarray(features, dtype=np.float64).reshape(-1)
        if row.shape != (self.num_features,):
            raise ValueError(f"tabular.features was built for rows of {self.num_features} features, "
                             f"got {row.size}")
        return row

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        row = self._row(example["features"])
        present = ~np.isnan(row)
        values = (np.where(present, row, self._mean) - self._mean) / self._std  # missing -> 0
        if self.clip is not None:
            values = np.clip(values, -self.clip, self.clip)
        out = {"values": torch.from_numpy(values.astype(np.float32))}  # [F]
        if self.mask_missing:
            out["present"] = torch.from_numpy(present)  # [F] bool
        return out

    def read_input(self, path: str) -> dict[str, Any]:
        """A .json file ({"features": [...]} / {"features": {name: value}} / {name: value}) or a .csv file (one row,
        optionally under a header of column names) -> a raw example for `perceiver predict`."""
        file = Path(path)
        text = read_bounded(file).decode("utf-8")  # size checked before reading
        if file.suffix.lower() == ".json":
            try:
                data = json.loads(text)
            except RecursionError:
                raise ValueError(f"{path}: JSON nested too deeply") from None
            if isinstance(data, Mapping) and "features" in data:
                return {"features": data["features"]}
            return {"features": data}
        rows = [r for r in csv.reader(text.splitlines()) if r]
        if len(rows) == 2:  # header + values
            return {"features": {k.strip(): _value(v) for k, v in zip(*rows)}}
        if len(rows) != 1:
            raise ValueError(f"{path}: expected one row of {self.num_features} values (optionally under a header)")
        return {"features": [float(v) if v.strip() else None for v in rows[0]]}

    # -- the learned part ----------------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        values = batch["values"]  # [B, F]
        data = values[..., None] * self.value_weight + self.feature_embedding  # [B, F, C]
        mask = None
        if self.mask_missing and "present" in batch:
            present = batch["present"].to(torch.bool)  # [B, F]
            # A row with no value at all keeps every element, so attention never sees an empty set.
            mask = present | ~present.any(dim=-1, keepdim=True)
        return ByteArray(data, self.index_shape, mask=mask, modality="tabular")


def _value(text: str) -> float | str | None:
    """A CSV cell: a number, None when empty, else the text (a category of a tabular.file table)."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text
