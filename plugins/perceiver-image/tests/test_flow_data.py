"""Datasets of image pairs: the user's own files (image.pairs) and scikit-image's Middlebury stereo pair
(image.stereo_motorcycle), and a flow pipeline trained end to end from them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perceiver_core import collate
from perceiver_core.errors import UserError
from perceiver_core.registry.file import resolve_table
from perceiver_image.configs import PairsConfig
from perceiver_image.flow import io
from perceiver_image.flow.pairs import PairsDataset

Image = pytest.importorskip("PIL.Image", reason="reading image files needs Pillow")


def write_sequence(root, name="seq", n=3, h=20, w=26, dx=2):
    """n frames of a pattern moving right by dx per frame, and the flow of each pair as .flo."""
    rng = np.random.default_rng(0)
    big = (rng.random((h, w + dx * n, 3)) * 255).astype(np.uint8)
    (root / "frames" / name).mkdir(parents=True)
    (root / "flow" / name).mkdir(parents=True)
    for i in range(n):
        frame = big[:, (n - i) * dx:(n - i) * dx + w]  # content moves right: frame[i+1][x + dx] = frame[i][x]
        Image.fromarray(np.ascontiguousarray(frame)).save(root / "frames" / name / f"frame_{i + 1:04d}.png")
        if i < n - 1:
            flow = np.zeros((h, w, 2), np.float32)
            flow[..., 0] = dx
            io.write_flo(root / "flow" / name / f"frame_{i + 1:04d}.flo", flow)


def test_folder_layout_pairs_consecutive_frames_with_their_flow(tmp_path):
    write_sequence(tmp_path, "a", n=3)
    write_sequence(tmp_path, "b", n=4)
    ds = PairsDataset(PairsConfig(frames=str(tmp_path / "frames"), truth=str(tmp_path / "flow"), crop=(8, 12),
                                  test_fraction=0.2, test_crops=3))
    train, test = ds.examples("train"), ds.examples("test")
    assert len(train) + len(test) // 3 == 5  # 2 + 3 pairs; the held-out pair gives 3 crops
    example = train[0]
    assert example["frames"].shape == (2, 20, 26, 3) and example["flow"].shape == (20, 26, 2)
    assert test[0]["frames"].shape == (2, 8, 12, 3) and test[0]["flow"].shape == (8, 12, 2)
    f0, f1 = example["frames"]
    assert np.array_equal(f1[:, 2:], f0[:, :-2])  # the truth describes the frames: moved right by 2


def test_list_file_with_disparity_png_and_comments(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(2):
        for view in ("left", "right"):
            Image.fromarray((rng.random((10, 12, 3)) * 255).astype(np.uint8)).save(tmp_path / f"{view}{i}.png")
        disparity = np.full((10, 12), 3 * 256, np.uint16)
        disparity[0, 0] = 0  # unknown
        Image.fromarray(disparity).save(tmp_path / f"disp{i}.png")
    (tmp_path / "pairs.txt").write_text("# left right disparity\nleft0.png right0.png disp0.png\n"
                                        "left1.png, right1.png, disp1.png\n")
    ds = PairsDataset(PairsConfig(pairs_file=str(tmp_path / "pairs.txt"), kind="disparity", crop=(8, 8),
                                  test_fraction=0.0))
    example = ds.examples("train")[1]
    assert example["flow"][5, 5].tolist() == [-3.0, 0.0] and not example["valid"][0, 0] and example["valid"][1, 1]
    (tmp_path / "bad.txt").write_text("left0.png right0.png\n")
    with pytest.raises(UserError, match="bad.txt:1: expected FRAME0 FRAME1 TRUTH"):
        PairsDataset(PairsConfig(pairs_file=str(tmp_path / "bad.txt"), crop=(8, 8))).examples("train")


def test_missing_truth_is_one_clear_error(tmp_path):
    write_sequence(tmp_path)
    for f in (tmp_path / "flow").rglob("*.flo"):
        f.unlink()
    with pytest.raises(UserError, match="no frame pairs with ground truth"):
        PairsDataset(PairsConfig(frames=str(tmp_path / "frames"), truth=str(tmp_path / "flow"),
                                 crop=(8, 8))).examples("train")


def test_a_flow_pipeline_trains_on_user_files(tmp_path):
    """Two optimizer steps of a tiny flow model on image.pairs: random crops of whole pairs stack into batches,
    the loss is finite, the evaluation on held-out crops reports EPE and outliers, predict writes a .flo."""
    from perceiver_core import train

    write_sequence(tmp_path, "a", n=4)
    table = {"task": {"use": "image.flow"},
             "data": {"use": "image.pairs", "frames": str(tmp_path / "frames"), "truth": str(tmp_path / "flow"),
                      "crop": [12, 16], "batch_size": 2, "repeats": 2, "test_fraction": 0.3, "test_crops": 2},
             "preprocessor": {"use": "image.flow", "channels": 8, "hflip": 0.5},
             "position": {"use": "fourier", "num_bands": 4, "max_resolution": [12, 16]},
             "encoder": {"use": "perceiver", "num_latents": 4, "latent_channels": 16, "num_blocks": 1,
                         "self_attends_per_block": 1, "self_attend_heads": 2},
             "decoder": {"use": "image.flow_decoder", "rescale_factor": 1.0},
             "train": {"max_steps": 2, "lr": 1e-3}, "backend": "cpu"}
    spec = resolve_table("pairs-tiny", table, "test")
    result = train(spec, tmp_path / "run", progress=False)
    assert np.isfinite(result["loss"]) and result["epe"] > 0 and 0 <= result["outliers"] <= 1


# -- the Middlebury motorcycle pair ------------------------------------------------------------------------------
def test_stereo_motorcycle_regions_and_crops():
    pytest.importorskip("skimage", reason="image.stereo_motorcycle needs scikit-image")
    from perceiver_image.configs import StereoMotorcycleConfig
    from perceiver_image.flow.stereo import StereoMotorcycle

    ds = StereoMotorcycle(StereoMotorcycleConfig(scale=4, crop=(24, 32), train_crops=10, test_crops=5))
    train, test = ds.regions["train"], ds.regions["test"]
    assert train["frames"].shape[1] == test["frames"].shape[1] == 125
    assert train["frames"].shape[2] + test["frames"].shape[2] == 185  # the columns split, no overlap
    assert len(ds.examples("train")) == 10 and len(ds.examples("test")) == 5
    crop = ds.examples("test")[0]
    assert crop["frames"].shape == (2, 24, 32, 3) and (crop["flow"][..., 1] == 0).all()
    d = -train["flow"][..., 0][train["valid"]]
    assert 1.5 < d.min() and d.max() < 16  # 7-60 px at full size, / 4
    # the truth describes the views: the left view at x matches the right view at x - d (at full resolution)
    from perceiver_image.flow.stereo import load_motorcycle

    left, right, disparity = load_motorcycle()
    ys, xs = np.nonzero(np.isfinite(disparity))
    pick = np.random.default_rng(0).choice(len(ys), 2000, replace=False)
    y, x = ys[pick], xs[pick]
    x1 = np.round(x - disparity[y, x]).astype(int)
    ok = x1 >= 0
    matched = np.abs(left[y[ok], x[ok]].astype(int) - right[y[ok], x1[ok]].astype(int)).mean()
    unmatched = np.abs(left[y[ok], x[ok]].astype(int) - right[y[ok], x[ok]].astype(int)).mean()
    assert matched < unmatched / 2


def test_stereo_training_crops_are_random_and_augmented():
    pytest.importorskip("skimage", reason="image.stereo_motorcycle needs scikit-image")
    from perceiver_core import build_from_spec, load_registry
    from perceiver_core.model.pipeline import build_dataset

    spec = load_registry([]).resolve("stereo-tiny")
    dataset = build_dataset(spec)
    model = build_from_spec(spec, dataset=dataset)
    example = dataset.examples("train")[0]
    crops = [model.preprocessor.augment(example, torch.Generator().manual_seed(s)) for s in range(4)]
    assert all(c["frames"].shape == (2, 24, 32, 3) for c in crops)
    assert len({c["frames"].sum().item() for c in crops}) == 4
    batch = collate([model.prepare(c) for c in crops])
    assert batch["frames"].shape == (4, 2, 3, 24, 32) and batch["valid"].shape == (4, 24, 32)


@pytest.mark.slow
def test_stereo_tiny_learns_disparity(tmp_path):
    """96 steps of stereo-tiny: the held-out end-point error falls well below the zero-flow baseline's (the
    mean true disparity of the held-out crops, 8.5 px). The full run and its baselines: docs/flow.md."""
    pytest.importorskip("skimage", reason="image.stereo_motorcycle needs scikit-image")
    from perceiver_core import load_registry, train
    from perceiver_core.model.pipeline import build_dataset

    spec = load_registry([]).resolve("stereo-tiny", ["train.max_steps=96", "train.eval_every=100"])
    test = build_dataset(spec).examples("test")
    zero = np.mean([np.abs(t["flow"][..., 0][t["valid"]]).mean() for t in (test[i] for i in range(len(test)))])
    result = train(spec, tmp_path / "run", progress=False)
    assert zero > 8 and result["epe"] < 0.6 * zero
