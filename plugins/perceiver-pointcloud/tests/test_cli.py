"""The point-cloud plugin as a user meets it: train, predict and explain on mesh files through the CLI, one-line
errors for bad files; and the robustness table's transforms."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import trimesh

from perceiver_pointcloud.geometry import rotation_about
from perceiver_pointcloud.robustness import Transformed

REGISTRY = """
[pipelines.clouds]
description = "a small point-cloud classifier for the CLI tests"
task = { use = "classification", num_classes = 16 }
data = { use = "pointcloud.shapes", batch_size = 8, num_points = 64, train_per_class = 1, test_per_class = 1 }
preprocessor = { use = "pointcloud.points", num_points = 64, augment_rotate = true }
position = { use = "pointcloud.fourier", num_bands = 4 }
encoder = { use = "perceiver", num_latents = 8, latent_channels = 32, num_blocks = 1, self_attends_per_block = 1, self_attend_heads = 2, cross_attend_heads = 2, cross_attend_qk_channels = 16, cross_attend_v_channels = 16 }
decoder = { use = "classification" }
train = { max_steps = 2 }
backend = "cpu"
"""


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "perceiver_core", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_train_predict_explain_on_mesh_files(tmp_path):
    (tmp_path / "registry.toml").write_text(REGISTRY)
    trained = _cli("train", "clouds", "--registry", "registry.toml", "--out", "run", "--no-progress", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    trimesh.creation.torus(0.7, 0.2).export(tmp_path / "ring.off")
    trimesh.creation.box(extents=(1, 2, 3)).export(tmp_path / "brick.stl")
    np.save(tmp_path / "cloud.npy", np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32))
    ckpt = "run/model.safetensors"
    predicted = _cli("predict", "clouds", "--checkpoint", ckpt, "ring.off", "brick.stl",
                     "cloud.npy", "--json", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    rows = json.loads(predicted.stdout)
    assert [r["input"] for r in rows] == ["ring.off", "brick.stl", "cloud.npy"]
    assert all(0 <= r["label"] < 16 for r in rows)
    explained = _cli("explain", "clouds", "--checkpoint", ckpt, "ring.off",
                     "--out", "maps", "--top", "2", "--json", cwd=tmp_path)
    assert explained.returncode == 0, explained.stderr
    maps = json.loads((tmp_path / "maps" / "ring.json").read_text())
    assert maps["index_shape"] == [64] and len(maps["positions"]) == 64
    attention = np.array(maps["cross_attention"][0]["mean_over_heads"])  # [2 latents, 64 points]
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-4)
    assert (tmp_path / "maps" / "ring_attention.png").stat().st_size > 10_000
    (tmp_path / "broken.off").write_text("OFF\n8 12 0\n0 0 0\n")
    bad = _cli("predict", "clouds", "--checkpoint", ckpt, "broken.off", cwd=tmp_path)
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.startswith("perceiver: error: ") and "broken.off" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_robustness_transforms():
    rng = np.random.default_rng(0)
    examples = [{"points": rng.normal(size=(20, 3)).astype(np.float32),
                 "normals": rng.normal(size=(20, 3)).astype(np.float32), "label": 1}]
    permuted = Transformed(examples, "permute", seed=0)[0]
    assert not np.array_equal(permuted["points"], examples[0]["points"])
    np.testing.assert_array_equal(np.sort(permuted["points"], axis=0), np.sort(examples[0]["points"], axis=0))
    rotated = Transformed(examples, "rotate", seed=0, up_axis="z")[0]
    np.testing.assert_allclose(rotated["points"][:, 2], examples[0]["points"][:, 2], atol=1e-6)
    angle = np.arctan2(rotated["points"][0, 1], rotated["points"][0, 0]) - np.arctan2(examples[0]["points"][0, 1],
                                                                                     examples[0]["points"][0, 0])
    np.testing.assert_allclose(rotated["points"], examples[0]["points"] @ rotation_about("z", angle).T, atol=1e-5)
    assert rotated["label"] == 1
