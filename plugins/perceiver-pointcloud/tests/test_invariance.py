"""Point clouds as sets: a permuted cloud gives identical logits, prepare normalises into the unit sphere, the
augmentation is what it says, and a model trained on `pointcloud.shapes` learns."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from perceiver_core import collate, load_registry
from perceiver_pointcloud.configs import PointsConfig
from perceiver_pointcloud.geometry import rotation_about
from perceiver_pointcloud.points import PointsPreprocessor

REGISTRY = """
[pipelines.cloud]
description = "a small point-cloud classifier for the tests"
task = {{ use = "classification", num_classes = 16 }}
data = {{ use = "pointcloud.shapes", batch_size = 16, num_points = 128, train_per_class = {train}, test_per_class = 4 }}
preprocessor = {{ use = "pointcloud.points", num_points = 128, normals = true }}
position = {{ use = "{position}" }}
encoder = {{ use = "perceiver", num_latents = 16, latent_channels = 32, num_blocks = 2, num_cross_attends = 2, self_attends_per_block = 1, self_attend_heads = 2, cross_attend_heads = 2, cross_attend_qk_channels = 32, cross_attend_v_channels = 32 }}
decoder = {{ use = "classification" }}
train = {{ max_steps = {steps}, lr = 3e-3, log_every = 10, eval_every = 100 }}
backend = "cpu"
"""


def _spec(tmp_path, position="pointcloud.fourier", steps=10, train=2, overrides=()):
    path = tmp_path / "registry.toml"
    path.write_text(REGISTRY.format(position=position, steps=steps, train=train))
    return load_registry([path], include_default=False).resolve("cloud", list(overrides))


def _model(tmp_path, position="pointcloud.fourier", overrides=()):
    from perceiver_core import build_from_spec

    torch.manual_seed(0)
    return build_from_spec(_spec(tmp_path, position, overrides=overrides)).eval()


def _clouds(n=4, points=200, seed=0):
    rng = np.random.default_rng(seed)
    return [{"points": rng.normal(size=(points, 3)).astype(np.float32) * [1.0, 0.5, 2.0],
             "normals": rng.normal(size=(points, 3)).astype(np.float32), "label": i} for i in range(n)]


def _permuted(clouds, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for c in clouds:
        order = rng.permutation(len(c["points"]))
        out.append({**c, "points": c["points"][order], "normals": c["normals"][order]})
    return out


def _logits(model, clouds):
    with torch.no_grad():
        return model(collate([model.prepare(c) for c in clouds]))


@pytest.mark.parametrize("position", ["pointcloud.fourier", "pointcloud.learned"])
def test_permuted_points_give_identical_logits(tmp_path, position):
    model = _model(tmp_path, position)
    clouds = _clouds()  # 200 points: subsampled to 128, so the subsample must not depend on the order either
    a, b = _logits(model, clouds), _logits(model, _permuted(clouds))
    assert torch.equal(a, b)  # bit for bit: prepare puts every permutation into one canonical order


@pytest.mark.parametrize("position", ["pointcloud.fourier", "pointcloud.learned"])
def test_the_model_itself_is_permutation_invariant(tmp_path, position):
    """Without the canonical order, the input reaches the model permuted: the cross-attend sums over the points
    (no index-dependent parameter), so logits agree up to the order of float additions (exactly so in float64)."""
    model = _model(tmp_path, position, overrides=["preprocessor.canonical_order=false"]).double()
    clouds = _clouds(points=128)  # no subsampling: the same points in another order
    pa = collate([model.prepare(c) for c in clouds])
    pb = collate([model.prepare(c) for c in _permuted(clouds)])
    assert not torch.equal(pa["points"], pb["points"])  # the model really sees another order
    with torch.no_grad():
        a = model({k: v.double() if v.is_floating_point() else v for k, v in pa.items()})
        b = model({k: v.double() if v.is_floating_point() else v for k, v in pb.items()})
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_padding_is_masked_and_ignored(tmp_path):
    model = _model(tmp_path)
    small = {"points": np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32), "label": 0}
    prepared = model.prepare(small)
    assert prepared["mask"].sum() == 50 and not prepared["mask"][50:].any()
    batch = collate([prepared])
    changed = collate([prepared])
    changed["points"][:, 50:] = 7.0  # the padding's values must not matter
    changed["positions"][:, 50:] = -3.0
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model(changed), rtol=0, atol=1e-6)


def test_prepare_normalises_into_the_unit_sphere():
    pre = PointsPreprocessor(PointsConfig(num_points=64))
    cloud = {"points": np.random.default_rng(0).normal(5.0, 3.0, size=(64, 3)).astype(np.float32)}
    positions = pre.prepare(cloud)["positions"].numpy()
    np.testing.assert_allclose(positions.mean(axis=0), 0.0, atol=1e-6)
    assert np.linalg.norm(positions, axis=1).max() == pytest.approx(1.0, abs=1e-6)


def test_augmentation_rotates_about_the_up_axis_and_is_seeded():
    cfg = PointsConfig(num_points=64, augment_rotate=True, up_axis="z", normalize=False, canonical_order=False)
    pre = PointsPreprocessor(cfg)
    cloud = {"points": np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)}
    out = pre.augment(cloud, torch.Generator().manual_seed(3))["points"]
    # heights unchanged, horizontal radii unchanged, and the transform is a rotation about z
    np.testing.assert_allclose(out[:, 2], cloud["points"][:, 2], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out[:, :2], axis=1), np.linalg.norm(cloud["points"][:, :2], axis=1),
                               rtol=1e-5)
    again = pre.augment(cloud, torch.Generator().manual_seed(3))["points"]
    np.testing.assert_array_equal(out, again)
    other = pre.augment(cloud, torch.Generator().manual_seed(4))["points"]
    assert not np.allclose(out, other)
    angle = math.atan2(out[0, 1], out[0, 0]) - math.atan2(cloud["points"][0, 1], cloud["points"][0, 0])
    np.testing.assert_allclose(out, cloud["points"] @ rotation_about("z", angle).T.astype(np.float32), atol=1e-5)


def test_augmentation_scales_and_jitters_within_bounds():
    cfg = PointsConfig(num_points=64, augment_scale=(0.5, 0.5), augment_jitter=0.01, canonical_order=False)
    pre = PointsPreprocessor(cfg)
    cloud = {"points": np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)}
    out = pre.augment(cloud, torch.Generator().manual_seed(0))
    assert out["normalized"]  # prepare must not undo the scaling
    from perceiver_pointcloud.geometry import normalize_unit_sphere

    diff = out["points"] - 0.5 * normalize_unit_sphere(cloud["points"])
    assert 0 < np.abs(diff).max() <= 0.05 + 1e-6
    assert pre.prepare(out)["positions"].norm(dim=1).max() < 0.6


def test_colours_follow_their_points():
    pre = PointsPreprocessor(PointsConfig(num_points=16, normals=True, colors=True))
    assert pre.output_channels == 9
    rng = np.random.default_rng(0)
    points = rng.normal(size=(16, 3)).astype(np.float32)
    colors = (points[:, :1] > 0).repeat(3, axis=1).astype(np.float32)  # white where x > 0, else black
    out = pre.prepare({"points": points, "colors": colors})
    data = out["points"].numpy()  # [M, 9]: xyz, normals (zeros: none given), rgb
    np.testing.assert_array_equal(data[:, 3:6], 0.0)
    # canonical order sorts by x first, and centring and scaling keep that order: the colours must be the
    # original ones in x order
    np.testing.assert_array_equal(data[:, 6:], colors[np.argsort(points[:, 0])])
    grey = pre.prepare({"points": points})["points"].numpy()[:, 6:]
    np.testing.assert_array_equal(grey, 0.5)


def test_errors_are_clear():
    pre = PointsPreprocessor(PointsConfig(num_points=8))
    with pytest.raises(ValueError, match=r"\[points, 3\]"):
        pre.prepare({"points": np.zeros((5, 2))})
    with pytest.raises(ValueError, match="NaN"):
        pre.prepare({"points": np.full((5, 3), np.nan)})


@pytest.mark.slow
def test_a_short_run_on_shapes_learns(tmp_path):
    from perceiver_core import train

    result = train(_spec(tmp_path, steps=150, train=12), tmp_path / "run", progress=False)
    assert result["accuracy"] > 0.4, result  # 16 classes: chance is 0.0625
