"""The components against the core's conformance suites: contracts, configs, determinism, pickling, state."""

import math

import numpy as np

from perceiver_core.testing import DatasetConformance, PreprocessorConformance

PLUGIN = "perceiver_tabular.plugin"
DIST = "perceiver-tabular"

NAMES = ["a", "b", "c", "d", "e"]
INFO = {"num_features": 5, "num_classes": 3, "feature_names": NAMES, "label_names": ["x", "y", "z"],
        "feature_mean": [1.0, -2.0, 0.5, 100.0, 0.0], "feature_std": [2.0, 1.0, 0.25, 50.0, 1.0]}
ROWS = [
    {"features": np.array([3.0, -1.0, 0.75, 20.0, 1.5], dtype=np.float32), "label": 0},
    {"features": [0.0, -4.0, 0.25, 180.0, -0.5], "label": 2},
]


class _Features:
    plugin, distribution = PLUGIN, DIST
    component = "tabular.features"
    dataset_info = INFO
    examples = ROWS


class TestFeaturesPerColumn(_Features, PreprocessorConformance):
    config = {"channels": 8}


class TestFeaturesShared(_Features, PreprocessorConformance):
    config = {"channels": 8, "value_embedding": "shared", "clip": None}


class TestFeaturesMissingValues(_Features, PreprocessorConformance):
    config = {"channels": 8}
    examples = [{"features": [3.0, math.nan, 0.75, None, 1.5], "label": 1},
                {"features": {"a": 2.0, "c": 0.1, "d": 90.0, "e": -1.0}, "label": 0}]  # "b" absent


class TestFeaturesRaw(_Features, PreprocessorConformance):
    config = {"channels": 4, "standardize": False, "mask_missing": False}
    dataset_info = {"num_features": 5, "num_classes": 3}


class TestWine(DatasetConformance):
    plugin, distribution = PLUGIN, DIST
    component = "tabular.wine"
    config = {"batch_size": 8}


class TestBreastCancer(DatasetConformance):
    plugin, distribution = PLUGIN, DIST
    component = "tabular.breast_cancer"
    config = {"batch_size": 8, "test_fraction": 0.25, "split_seed": 3}


class TestIris(DatasetConformance):
    plugin, distribution = PLUGIN, DIST
    component = "tabular.iris"
    config = {"batch_size": 8}
