"""Behaviour the conformance suites do not cover: the split, the statistics, standardising, missing values, input
files, and that every parameter of tabular.features gets a gradient."""

import json
import math

import numpy as np
import pytest
import torch

from perceiver_core import BuildContext
from perceiver_core.errors import UserError
from perceiver_tabular.configs import BreastCancerConfig, FeaturesConfig, IrisConfig, WineConfig
from perceiver_tabular.dataset import BreastCancerDataset, IrisDataset, WineDataset, stratified_split
from perceiver_tabular.preprocessor import FeaturePreprocessor

TABLES = [(WineDataset, WineConfig, 178, 13, 3), (BreastCancerDataset, BreastCancerConfig, 569, 30, 2),
          (IrisDataset, IrisConfig, 150, 4, 3)]


def _arrays(dataset, split):
    examples = dataset.examples(split)
    return (np.stack([e["features"] for e in examples]), np.array([e["label"] for e in examples]))


@pytest.mark.parametrize("cls, config, rows, features, classes", TABLES)
def test_table_sizes_and_info(cls, config, rows, features, classes):
    dataset = cls(config())
    info = dataset.info()
    json.dumps(info)  # JSON-able
    assert info["num_features"] == features and info["num_classes"] == classes
    assert len(info["feature_names"]) == features and len(info["label_names"]) == classes
    train, test = dataset.examples("train"), dataset.examples("test")
    assert len(train) + len(test) == rows
    assert train[0]["features"].dtype == np.float32 and train[0]["features"].shape == (features,)
    assert isinstance(train[-1]["label"], int)
    with pytest.raises(IndexError):
        train[len(train)]


def test_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    test = stratified_split(labels, 0.2, seed=0)
    assert [int(test[labels == c].sum()) for c in range(3)] == [10, 6, 4]
    assert (stratified_split(labels, 0.2, seed=0) == test).all()
    assert (stratified_split(labels, 0.2, seed=1) != test).any()

    a, b = WineDataset(WineConfig()), WineDataset(WineConfig())
    xa, ya = _arrays(a, "test")
    xb, _ = _arrays(b, "test")
    assert np.array_equal(xa, xb)
    assert np.bincount(ya).tolist() == [12, 14, 10]  # 20% of 59 / 71 / 48
    train_rows = {tuple(r) for r in _arrays(a, "train")[0]}
    assert not train_rows & {tuple(r) for r in xa}
    xc, _ = _arrays(WineDataset(WineConfig(split_seed=1)), "test")
    assert not np.array_equal(xa, xc)


def test_statistics_come_from_the_training_split_only():
    dataset = BreastCancerDataset(BreastCancerConfig())
    info = dataset.info()
    train_x, _ = _arrays(dataset, "train")
    np.testing.assert_allclose(info["feature_mean"], train_x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(info["feature_std"], train_x.std(axis=0), rtol=1e-5)
    # and the preprocessor turns the training split into zero mean, unit variance (without clipping)
    pre = FeaturePreprocessor(FeaturesConfig(clip=None), BuildContext(dataset=info))
    values = torch.stack([pre.prepare(e)["values"] for e in dataset.examples("train")])
    assert values.mean(0).abs().max() < 1e-4 and (values.std(0, unbiased=False) - 1).abs().max() < 1e-3


def test_unknown_split_names_the_dataset():
    with pytest.raises(UserError, match="tabular.iris has no split 'validation'"):
        IrisDataset(IrisConfig()).examples("validation")


INFO = {"num_features": 3, "feature_names": ["a", "b", "c"], "feature_mean": [1.0, 10.0, 0.0],
        "feature_std": [2.0, 5.0, 1.0]}


def _pre(**config):
    torch.manual_seed(0)
    return FeaturePreprocessor(FeaturesConfig(channels=4, **config), BuildContext(dataset=INFO))


def test_prepare_standardises_clips_and_marks_missing():
    pre = _pre(clip=3.0)
    out = pre.prepare({"features": [3.0, math.nan, 100.0]})
    assert out["values"].tolist() == [1.0, 0.0, 3.0]  # (3-1)/2, missing -> mean, clipped from 100
    assert out["present"].tolist() == [True, False, True]
    by_name = pre.prepare({"features": {"c": -1.0, "a": 1.0}})
    assert by_name["values"].tolist() == [0.0, 0.0, -1.0] and by_name["present"].tolist() == [True, False, True]
    with pytest.raises(ValueError, match="unknown feature columns"):
        pre.prepare({"features": {"z": 1.0}})
    with pytest.raises(ValueError, match="rows of 3 features"):
        pre.prepare({"features": [1.0, 2.0]})
    assert "present" not in _pre(mask_missing=False).prepare({"features": [1.0, None, 2.0]})


def test_forward_shapes_mask_and_column_identity():
    pre = _pre()
    rows = [pre.prepare({"features": r}) for r in ([1.0, 10.0, 0.0], [1.0, None, 0.0], [None, None, None])]
    batch = {k: torch.stack([r[k] for r in rows]) for k in rows[0]}
    out = pre(batch)
    assert list(out.data.shape) == [3, 3, 4] and out.index_shape == (3,)
    assert out.mask.tolist() == [[True] * 3, [True, False, True], [True] * 3]  # an all-missing row keeps all
    # equal standardised values in different columns give different elements: the column embedding
    assert not torch.allclose(out.data[0, 0], out.data[0, 2])


@pytest.mark.parametrize("value_embedding", ["per_feature", "shared"])
def test_every_parameter_gets_a_gradient(value_embedding):
    # The preprocessor conformance suite does not check this (it does for encoders and decoders).
    pre = _pre(value_embedding=value_embedding)
    batch = {k: torch.stack([pre.prepare({"features": [2.0, 3.0, 4.0]})[k]] * 2) for k in ("values", "present")}
    pre(batch).data.square().sum().backward()
    for name, parameter in pre.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_missing_statistics_are_a_clear_error():
    with pytest.raises(ValueError, match="feature_mean and feature_std"):
        FeaturePreprocessor(FeaturesConfig(), BuildContext(dataset={"num_features": 3}))
    with pytest.raises(ValueError, match="num_features"):
        FeaturePreprocessor(FeaturesConfig(), BuildContext(dataset={"image_shape": (8, 8, 1)}))


def test_read_input_files(tmp_path):
    pre = _pre()
    (tmp_path / "row.json").write_text(json.dumps({"features": {"a": 3.0, "c": 1.0}}))
    (tmp_path / "bare.json").write_text(json.dumps([3.0, 10.0, 1.0]))
    (tmp_path / "row.csv").write_text("3,,1\n")
    (tmp_path / "named.csv").write_text("c,a\n1,3\n")
    for name in ("row.json", "bare.json", "row.csv", "named.csv"):
        values = pre.prepare(pre.read_input(str(tmp_path / name)))["values"].tolist()
        assert values == [1.0, 0.0, 1.0], name
