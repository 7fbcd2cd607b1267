"""`tabular.wine`, `tabular.breast_cancer`, `tabular.iris`: the small tables scikit-learn ships (no download).

The CSV files are read straight from scikit-learn's package data (sklearn/datasets/data; importing scikit-learn
itself takes a second). Their first line is `n_rows,n_features,class names...`, then one row per example with the
features and the integer class last. The train/test split is fixed and stratified: `test_fraction` of each class,
chosen by `split_seed`.

Example i of a split: {"features": float32 [num_features], "label": int}. info() reports num_features,
num_classes, the feature and label names and the training split's per-feature mean and standard deviation, which
`tabular.features` uses to standardise the values (so test statistics never leak into the model).
"""

from __future__ import annotations

import importlib.util
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from perceiver_core import BuildContext, Dataset
from perceiver_core.datasets import ArraySplit, stratified_split  # noqa: F401 (re-exported for tests)
from perceiver_core.errors import UserError

from .configs import BreastCancerConfig, IrisConfig, WineConfig, _TableConfig

# The CSV files carry no column names; these are scikit-learn's (load_wine, load_breast_cancer, load_iris).
_WINE_FEATURES = ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
                  "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
                  "od280/od315_of_diluted_wines", "proline"]
_CANCER_BASE = ["radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
                "concave points", "symmetry", "fractal dimension"]
_CANCER_FEATURES = ([f"mean {n}" for n in _CANCER_BASE] + [f"{n} error" for n in _CANCER_BASE]
                    + [f"worst {n}" for n in _CANCER_BASE])
_IRIS_FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def sklearn_data_file(filename: str) -> Path:
    """Path of one of scikit-learn's bundled data files, without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the tabular datasets need scikit-learn's bundled data: pip install scikit-learn")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / filename
    if not path.is_file():
        raise UserError(f"scikit-learn is installed but its data file is missing ({path}); reinstall scikit-learn")
    return path


def load_table(filename: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """features [N, F] float64, labels [N] int64, label names, from one of scikit-learn's CSV files."""
    with open(sklearn_data_file(filename), encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    rows, columns, label_names = int(header[0]), int(header[1]), header[2:]
    if table.shape != (rows, columns + 1):
        raise UserError(f"{filename}: the header promises {rows} rows of {columns} features and a label, "
                        f"the file holds {list(table.shape)}")
    return table[:, :-1], table[:, -1].astype(np.int64), label_names


class SklearnTableDataset(Dataset):
    """One of scikit-learn's bundled classification tables with a fixed, seeded, stratified train/test split."""

    splits = ("train", "test")
    name: str
    filename: str
    feature_names: list[str]

    def __init__(self, config: _TableConfig, context: BuildContext | None = None):
        self.config = config

    @cached_property
    def _data(self) -> dict[str, Any]:
        features, labels, label_names = load_table(self.filename)
        if features.shape[1] != len(self.feature_names):
            raise UserError(f"{self.filename} has {features.shape[1]} features, expected {len(self.feature_names)}")
        test = stratified_split(labels, self.config.test_fraction, self.config.split_seed)
        train_x = features[~test]
        mean, std = train_x.mean(axis=0), train_x.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        return {
            "train": ArraySplit(labels[~test], features=features[~test].astype(np.float32)),
            "test": ArraySplit(labels[test], features=features[test].astype(np.float32)),
            "label_names": label_names,
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
        }

    def info(self) -> dict[str, Any]:
        data = self._data
        return {
            "num_features": len(self.feature_names),
            "num_classes": len(data["label_names"]),
            "feature_names": list(self.feature_names),
            "label_names": list(data["label_names"]),
            "feature_mean": data["mean"],  # of the training split only
            "feature_std": data["std"],
        }

    def examples(self, split: str) -> Sequence[Mapping[str, Any]]:
        if split not in self.splits:
            raise UserError(f"tabular.{self.name} has no split {split!r}; splits: {', '.join(self.splits)}")
        return self._data[split]


class WineDataset(SklearnTableDataset):
    name, filename, feature_names = "wine", "wine_data.csv", _WINE_FEATURES

    def __init__(self, config: WineConfig, context: BuildContext | None = None):
        super().__init__(config, context)


class BreastCancerDataset(SklearnTableDataset):
    name, filename, feature_names = "breast_cancer", "breast_cancer.csv", _CANCER_FEATURES

    def __init__(self, config: BreastCancerConfig, context: BuildContext | None = None):
        super().__init__(config, context)


class IrisDataset(SklearnTableDataset):
    name, filename, feature_names = "iris", "iris.csv", _IRIS_FEATURES

    def __init__(self, config: IrisConfig, context: BuildContext | None = None):
        super().__init__(config, context)
