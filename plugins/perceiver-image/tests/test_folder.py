"""image.folder: decoding the formats and modes people have, the seeded transforms, class names through the
checkpoint to `predict`, and exact resume with every augmentation on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from safetensors.torch import load_file

from perceiver_core import from_checkpoint, load_registry, train
from perceiver_core.data.loader import ChainAugment, make_loader
from perceiver_core.errors import DataError
from perceiver_image import transforms as T
from perceiver_image.configs import ImageFolderConfig
from perceiver_image.decode import ImageDecodeError, decode_image
from perceiver_image.folder import ImageFolderDataset


def make_images(root: Path, classes=("circle", "square"), per_class=12, size=(20, 24), fmt="png", seed=0):
    """Class 0: a bright disc on dark; class 1: a bright square; random position, size and noise."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = size
            img = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
            cy, cx, r = rng.integers(7, h - 7), rng.integers(7, w - 7), rng.integers(4, 7)
            yy, xx = np.mgrid[:h, :w]
            shape = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) if c == 0 else \
                ((abs(yy - cy) <= r) & (abs(xx - cx) <= r))
            img[shape] = 230
            Image.fromarray(img).save(root / name / f"{i:02d}.{fmt}")
    return root


# -- decoding ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "tiff", "bmp"])
def test_formats_decode_to_uint8_rgb(tmp_path, fmt):
    Image.fromarray(np.full((5, 7, 3), 200, np.uint8)).save(tmp_path / f"a.{fmt}")
    a = decode_image(str(tmp_path / f"a.{fmt}"), "RGB")
    assert a.shape == (5, 7, 3) and a.dtype == np.uint8 and abs(int(a[2, 3, 0]) - 200) <= 3


def test_modes_are_converted_or_refused_clearly(tmp_path):
    Image.fromarray(np.full((4, 4), 90, np.uint8), mode="L").save(tmp_path / "grey.png")
    assert decode_image(str(tmp_path / "grey.png"), "RGB").shape == (4, 4, 3)
    assert decode_image(str(tmp_path / "grey.png"), None).shape == (4, 4, 1)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent black -> white
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "clear.png")
    assert (decode_image(str(tmp_path / "clear.png"), "RGB") == 255).all()
    with pytest.raises(ImageDecodeError, match="a transparent image .*data.transparent"):
        decode_image(str(tmp_path / "clear.png"), "RGB", transparent="refuse")
    Image.fromarray(np.full((3, 3), 65535 // 4, np.uint16)).save(tmp_path / "deep.png")  # 16-bit greyscale
    deep = decode_image(str(tmp_path / "deep.png"), "L")
    assert deep.dtype == np.float32 and deep[0, 0, 0] == pytest.approx(0.25, abs=1e-4)
    with pytest.raises(ImageDecodeError, match="a 16-bit image"):
        decode_image(str(tmp_path / "deep.png"), "L", sixteen_bit="refuse")
    Image.fromarray(np.zeros((3, 3), np.float32), mode="F").save(tmp_path / "float.tiff")
    with pytest.raises(ImageDecodeError, match="32-bit floating-point images are not supported"):
        decode_image(str(tmp_path / "float.tiff"), "RGB")


def test_decompression_bombs_and_truncated_files_are_refused(tmp_path):
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(ImageDecodeError, match="100x100 = 10,000 pixels, more than max_pixels = 5,000"):
        decode_image(str(tmp_path / "big.png"), "RGB", max_pixels=5000)
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3)).astype(np.uint8)
    Image.fromarray(noise).save(tmp_path / "whole.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:2000])  # a download cut short
    with pytest.raises(ImageDecodeError, match="corrupt or truncated image"):
        decode_image(str(tmp_path / "cut.png"), "RGB")
    (tmp_path / "text.jpg").write_bytes(b"hello")
    with pytest.raises(ImageDecodeError, match="not an image file Pillow can read"):
        decode_image(str(tmp_path / "text.jpg"), "RGB")


def test_folder_reports_shape_statistics_and_names_bad_files(tmp_path):
    root = make_images(tmp_path / "imgs", per_class=5)
    (root / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match=r"square/broken.png: .*data.on_error = \"skip\""):
        ImageFolderDataset(ImageFolderConfig(root=str(root), image_size=16)).splits
    ds = ImageFolderDataset(ImageFolderConfig(root=str(root), image_size=16, on_error="skip", test_fraction=0.4))
    info = ds.info()
    assert info["image_shape"] == (16, 16, 3) and info["label_names"] == ["circle", "square"]
    pixels = np.concatenate([np.asarray(e["image"], np.float64).reshape(-1, 3) / 255 for e in ds.examples("train")])
    np.testing.assert_allclose(info["channel_mean"], pixels.mean(0), atol=1e-5)
    np.testing.assert_allclose(info["channel_std"], pixels.std(0), atol=1e-5)
    assert len(ds.skipped) == 1


def test_parquet_table_of_encoded_images(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import io

    import pyarrow.parquet as pq

    root = make_images(tmp_path / "imgs", per_class=4)
    rows = {"image": [], "label": []}
    for path in sorted(root.rglob("*.png")):
        buf = io.BytesIO()
        Image.open(path).save(buf, format="PNG")
        rows["image"].append({"bytes": buf.getvalue(), "path": path.name})  # as Hugging Face datasets write it
        rows["label"].append(path.parent.name)
    pq.write_table(pa.table(rows), tmp_path / "images.parquet", row_group_size=3)
    ds = ImageFolderDataset(ImageFolderConfig(table=str(tmp_path / "images.parquet"), image_size=16,
                                              test_fraction=0.25))
    assert ds.label_names == ["circle", "square"] and len(ds.examples("train")) == 6
    assert ds.examples("test")[0]["image"].shape == (20, 24, 3)


# -- transforms ----------------------------------------------------------------------------------------------------
def _image(seed=0, shape=(18, 22, 3)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_transforms_are_seeded_by_the_generator_alone():
    img = _image()
    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return T.rand_augment(T.hflip(T.random_resized_crop(img, (8, 8), g), g), g, num_ops=3, magnitude=15)
    a, b, c = run(1), run(1), run(2)
    assert a.shape == (8, 8, 3) and torch.equal(a, b) and not torch.equal(a, c)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    centre = T.resize_center_crop(img, (8, 8), crop_fraction=1.0)
    assert centre.shape == (8, 8, 3)


def test_random_resized_crop_respects_scale_and_ratio():
    img = torch.arange(100 * 100, dtype=torch.float32).reshape(100, 100, 1) / 1e4
    g = torch.Generator().manual_seed(0)
    # a full-scale crop with ratio 1 is the whole image: resizing it to the same size changes nothing
    assert torch.equal(T.random_resized_crop(img, (100, 100), g, scale=(1.0, 1.0), ratio=(1.0, 1.0)), img)


def test_equalize_and_autocontrast_match_pillow():
    rng = np.random.default_rng(0)
    array = rng.integers(40, 200, (16, 16, 3)).astype(np.uint8)
    chw = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    ours = (T._equalize(chw) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(ours, np.asarray(ImageOps.equalize(Image.fromarray(array))))
    ours = (T._autocontrast(chw) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    theirs = np.asarray(ImageOps.autocontrast(Image.fromarray(array)))
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1


def test_mixup_and_cutmix_mix_labels_in_proportion():
    a, b = torch.zeros(10, 10, 1), torch.ones(10, 10, 1)
    image, lam = T.mixup(a, b, 0.3)
    assert lam == 0.3 and torch.allclose(image, torch.full_like(a, 0.7))
    image, lam = T.cutmix(a, b, 0.75, torch.Generator().manual_seed(0))
    assert float(image.mean()) == pytest.approx(1 - lam) and 0 < lam < 1  # a's label weight = a's share of pixels


# -- end to end: names in the checkpoint, predict, exact resume -----------------------------------------------
REGISTRY = """
[pipelines.shapes]
task = {{ use = "classification", num_classes = 2 }}
data = {{ use = "image.folder", root = "{root}", image_size = 12, batch_size = 8, num_workers = {workers}, test_fraction = 0.25, rand_augment_ops = 2, mixup_alpha = 0.2, cutmix_alpha = 1.0, crop_scale = [0.5, 1.0] }}
preprocessor = {{ use = "image.pixels", dataset_stats = true }}
position = {{ use = "fourier", num_bands = 4 }}
encoder = {{ use = "perceiver", num_latents = 8, latent_channels = 32, num_blocks = 1, self_attends_per_block = 1, cross_attend_heads = 1, self_attend_heads = 2, dropout = 0.1 }}
decoder = {{ use = "classification" }}
train = {{ epochs = 2, lr = 1e-3, log_every = 1 }}
backend = "cpu"
"""


def _spec(tmp_path, root, workers=2, *overrides):
    path = tmp_path / "registry.toml"
    path.write_text(textwrap.dedent(REGISTRY.format(root=root, workers=workers)))
    return load_registry([path], include_default=False).resolve("shapes", list(overrides)), path


def test_augmented_batches_resume_exactly_mid_epoch(tmp_path):
    """Same batches, same augmented pixels and mixed labels after a loader state round trip, with 2 workers."""
    root = make_images(tmp_path / "imgs")
    ds = ImageFolderDataset(ImageFolderConfig(root=str(root), image_size=12, rand_augment_ops=2, mixup_alpha=0.2,
                                              cutmix_alpha=1.0, test_fraction=0.25))
    train_split = ds.examples("train")

    def loader():
        return make_loader(train_split, lambda e: {"image": torch.as_tensor(e["image"])}, batch_size=4,
                           shuffle=True, seed=3, num_workers=2, target_keys=("label", "label_probs"),
                           augment=ChainAugment(ds.augment))
    first = loader()
    it = iter(first)
    next(it), next(it)
    state = first.state_dict()
    rest = list(it)
    again = loader()
    again.load_state_dict(state)
    resumed = list(again)
    assert len(rest) == len(resumed) == 3
    for x, y in zip(rest, resumed):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["label_probs"], y["label_probs"])
    mixed = torch.cat([b["label_probs"] for b in rest])
    assert torch.allclose(mixed.sum(-1), torch.ones(len(mixed))) and bool(((mixed > 0) & (mixed < 1)).any())


@pytest.mark.slow
def test_training_resumes_exactly_with_augmentations_and_names_reach_predict(tmp_path):
    root = make_images(tmp_path / "imgs")
    spec, registry = _spec(tmp_path, root)
    full = train(spec, tmp_path / "full", progress=False)  # 18 training images / 8 -> 3 steps an epoch, 6 steps
    part = train(spec, tmp_path / "part", stop_after=4, progress=False)  # interrupted mid-epoch 2
    assert part["step"] == 4
    resumed = train(spec, tmp_path / "part", resume=tmp_path / "part", progress=False)
    assert resumed["step"] == full["step"] == 6
    losses = [[r["loss"] for r in map(json.loads, (tmp_path / d / "metrics.jsonl").read_text().splitlines())
               if r["split"] == "train"] for d in ("full", "part")]
    assert losses[0] == losses[1] and len(losses[0]) == 6
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "part" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)

    model = from_checkpoint(tmp_path / "full" / "model.safetensors")
    assert model.context.dataset["label_names"] == ["circle", "square"]
    assert len(model.context.dataset["channel_mean"]) == 3
    big = tmp_path / "photo.jpg"  # another size and format: resized and centre-cropped as in evaluation
    Image.open(root / "square" / "00.png").resize((60, 50)).save(big)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = subprocess.run([sys.executable, "-m", "perceiver_core", "predict", "shapes", "--checkpoint", str(tmp_path / "full" / "model.safetensors"), str(big),
                          str(root / "circle" / "01.png"), "--top-k", "2", "--json"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["input"] for r in rows] == [str(big), str(root / "circle" / "01.png")]
    for r in rows:
        assert {t["name"] for t in r["top"]} == {"circle", "square"} and r["name"] == r["top"][0]["name"]
        assert sum(t["probability"] for t in r["top"]) == pytest.approx(1.0, abs=1e-3)
    text = subprocess.run([sys.executable, "-m", "perceiver_core", "predict", "shapes", "--checkpoint", str(tmp_path / "full" / "model.safetensors"), str(big)],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert text.returncode == 0 and text.stdout.startswith(f"{big}: ") and \
        text.stdout.split(": ")[1].split()[0] in ("circle", "square")


def test_data_command_shows_counts_and_an_empty_folder_is_one_line(tmp_path):
    root = make_images(tmp_path / "imgs", per_class=4)
    _, registry = _spec(tmp_path, root)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = subprocess.run([sys.executable, "-m", "perceiver_core", "data", "shapes", "--registry", str(registry),
                          "--json"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["splits"]["train"] == {"examples": 6, "classes": {"circle": 3, "square": 3}}
    assert d["splits"]["test"]["examples"] == 2 and len(d["statistics"]["channel_mean"]) == 3
    assert d["examples"][0]["what"] == "24x20 RGB 8-bit"
    (tmp_path / "empty").mkdir()
    out = subprocess.run([sys.executable, "-m", "perceiver_core", "data", "shapes", "--registry", str(registry),
                          "--set", f"data.root={tmp_path / 'empty'}"], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "has no class subfolders" in out.stderr
    (root / "circle" / "zz.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    out = subprocess.run([sys.executable, "-m", "perceiver_core", "train", "shapes", "--registry", str(registry),
                          "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env, cwd=tmp_path)
    lines = [line for line in out.stderr.splitlines() if line.startswith("perceiver: error:")]
    assert out.returncode == 2 and "Traceback" not in out.stderr and len(lines) == 1
    assert f"{root / 'circle' / 'zz.png'}: " in lines[0] and 'data.on_error = "skip"' in lines[0]
