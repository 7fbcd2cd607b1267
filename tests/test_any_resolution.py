"""Any input resolution: imported HF image classifiers take images of sizes other than the configured one, as
HF does (Fourier positions of the actual grid at the configured max_resolution; learned positions resized
bicubically, HF's interpolate_pos_encoding), and agree with HF there to 1e-5 in fp32, non-square sizes included.
A model that is tied to one size says so in one line.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="parity tests compare against HF transformers, "
                                                          "which is not installed (pip install transformers)")

from perceiver_core import BuildContext, ByteArray, from_checkpoint  # noqa: E402
from perceiver_core.commands.cli import main as cli_main  # noqa: E402
from perceiver_core.errors import InputSizeError  # noqa: E402
from hf_reference import random_hf_model as _random_hf  # noqa: E402
from hf_reference import relative_error  # noqa: E402

TOLERANCE = 1e-5
LABELS = {str(i): f"class {i}" for i in range(5)}
IMAGE = dict(num_latents=8, d_latents=32, num_blocks=2, num_self_attends_per_block=2, num_self_attention_heads=4,
             num_cross_attention_heads=1, image_size=32, id2label=LABELS, label2id={v: int(k) for k, v in LABELS.items()})
CLASSES = ["PerceiverForImageClassificationFourier", "PerceiverForImageClassificationLearned",
           "PerceiverForImageClassificationConvProcessing"]
SIZES = [(32, 32), (24, 40), (48, 48), (37, 21)]  # the configured size, then others (non-square included)


def random_hf_model(name: str, folder, seed: int = 0):
    """An HF model with every weight random (LayerNorms, biases and batch-norm statistics too), saved to folder."""
    return _random_hf(getattr(transformers, name), transformers.PerceiverConfig(**IMAGE), folder, seed)


def imported(name: str, tmp_path):
    hf = random_hf_model(name, tmp_path / "hf")
    assert cli_main(["import-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "ours.safetensors")]) == 0
    return hf, from_checkpoint(tmp_path / "ours.safetensors")


@pytest.mark.parametrize("name", CLASSES)
def test_classifier_matches_hf_at_other_sizes(name, tmp_path):
    hf, ours = imported(name, tmp_path)
    learned = "Learned" in name
    for h, w in SIZES:
        pixels = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(h * w))
        with torch.no_grad():
            expected = hf(inputs=pixels, interpolate_pos_encoding=learned).logits  # [B, K]
            got = ours({"image": pixels})[:, 0]  # [B, 1, K] -> [B, K]
        assert relative_error(got, expected) < TOLERANCE, (name, h, w)


def test_fourier_positions_use_the_configured_resolution_on_another_grid(tmp_path):
    """The features of a 24x40 input are those of its own grid at max_resolution 224 (the imported config), not
    of the built 32x32 grid nor of a resolution of 24x40."""
    from perceiver_core.model.positions.fourier import fourier_features, linear_positions

    _, ours = imported("PerceiverForImageClassificationFourier", tmp_path)
    features = ours.position(ByteArray(torch.zeros(1, 24 * 40, 3), (24, 40)))
    expected = fourier_features(linear_positions((24, 40)), 64, (224, 224))[None]
    assert torch.equal(features, expected)


def test_fourier_without_max_resolution_keeps_the_built_frequencies():
    from perceiver_core.config.positions import FourierPositionConfig
    from perceiver_core.model.positions.fourier import FourierPositionEncoding, fourier_features, linear_positions

    enc = FourierPositionEncoding(FourierPositionConfig(num_bands=4), BuildContext(index_shape=(8, 8)))
    got = enc(ByteArray(torch.zeros(1, 12 * 6, 1), (12, 6)))
    assert torch.equal(got, fourier_features(linear_positions((12, 6)), 4, (8, 8))[None])


def test_imported_classifier_predicts_a_file_of_another_size(tmp_path, capsys):
    import json

    _, ours = imported("PerceiverForImageClassificationFourier", tmp_path)
    image = np.random.default_rng(0).random((20, 44, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", image)
    capsys.readouterr()
    assert cli_main(["predict", ours.spec.name, "--checkpoint", str(tmp_path / "ours.safetensors"),
                     str(tmp_path / "x.npy"), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    pixels = ((torch.from_numpy(image) - mean) / std).permute(2, 0, 1)[None]  # [1, 3, 20, 44]
    with torch.no_grad():
        assert row["label"] == int(ours({"image": pixels})[0, 0].argmax())


def _fixed_size_checkpoint(tmp_path, preprocessor: dict, position: dict) -> str:
    from perceiver_core import build_from_spec, save_checkpoint
    from perceiver_core.registry.file import load_registry

    path = tmp_path / "r.toml"
    path.write_text(f"""
[pipelines.fixed]
task = {{ use = "classification", num_classes = 3 }}
data = {{ use = "none", image_shape = [8, 8, 1], num_classes = 3 }}
preprocessor = {preprocessor}
position = {position}
encoder = {{ use = "perceiver", num_latents = 4, latent_channels = 16, num_blocks = 1, self_attends_per_block = 1, self_attend_heads = 2 }}
decoder = {{ use = "classification" }}
""".replace("'", '"'))
    spec = load_registry([path], include_default=False).resolve("fixed")
    model = build_from_spec(spec)
    save_checkpoint(tmp_path / "m.safetensors", model)
    return str(tmp_path / "m.safetensors")


@pytest.mark.parametrize("preprocessor, position, message", [
    ({"use": "image.pixels", "permute_seed": 0, "other_sizes": "native"}, {"use": "fourier", "num_bands": 4},
     "permute_seed was built for 8x8"),
    ({"use": "image.pixels", "other_sizes": "native"}, {"use": "learned", "num_channels": 4},
     "set position.interpolate = true"),
])
def test_fixed_size_model_says_so_in_one_line(tmp_path, capsys, preprocessor, position, message):
    checkpoint = _fixed_size_checkpoint(tmp_path, _toml(preprocessor), _toml(position))
    np.save(tmp_path / "x.npy", np.zeros((10, 12, 1), dtype=np.float32))
    assert cli_main(["predict", "fixed", "--checkpoint", checkpoint, str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("perceiver: error:") and message in err[0]


def _toml(table: dict) -> str:
    return "{ " + ", ".join(f"{k} = {v!r}" for k, v in table.items()) + " }"


def test_learned_positions_refuse_another_size_with_an_input_size_error():
    from perceiver_core.config.positions import LearnedPositionConfig
    from perceiver_core.model.positions.learned import LearnedPositionEncoding

    strict = LearnedPositionEncoding(LearnedPositionConfig(num_channels=5), BuildContext(index_shape=(6, 6)))
    with pytest.raises(InputSizeError, match="built for 36 elements"):
        strict(ByteArray(torch.zeros(1, 99, 1), (9, 11)))


def test_image_preprocessors_take_other_sizes():
    from perceiver_core import collate
    from perceiver_image.configs import ConvConfig, PatchesConfig, PixelsConfig
    from perceiver_image.conv import ConvDownsample, ConvPreprocessor
    from perceiver_image.patches import PatchPreprocessor
    from perceiver_image.pixels import PixelPreprocessor

    ctx = {"image_shape": (8, 8, 3)}
    image = np.random.default_rng(1).random((12, 20, 3)).astype(np.float32)
    pixels = PixelPreprocessor(PixelsConfig(other_sizes="native"), BuildContext(dataset=ctx))
    assert pixels(collate([pixels.prepare({"image": image})])).index_shape == (12, 20)
    patches = PatchPreprocessor(PatchesConfig(patch_size=4, other_sizes="native"), BuildContext(dataset=ctx))
    out = patches(collate([patches.prepare({"image": image})]))
    assert out.index_shape == (3, 5) and out.data.shape == (1, 15, 48)
    with pytest.raises(InputSizeError, match="multiples of patch_size 4"):
        patches.prepare({"image": image[:10]})
    conv = ConvPreprocessor(ConvConfig(out_channels=4, other_sizes="native"), BuildContext(dataset=ctx))
    out = conv(collate([conv.prepare({"image": image})]))
    assert out.index_shape == (ConvDownsample.output_size(12), ConvDownsample.output_size(20))
    with pytest.raises(InputSizeError, match="1 channel"):
        PixelPreprocessor(PixelsConfig(other_sizes="native"),
                          BuildContext(dataset={"image_shape": (8, 8, 1)})).prepare({"image": image})


def test_image_preprocessors_fit_other_sizes_by_default():
    """The default (`other_sizes = "fit"`) is the evaluation transform: another size is resized (shorter side) and
    centre-cropped to the built size, so a classifier sees what it was trained on; `native` keeps the grid."""
    from perceiver_image.configs import PixelsConfig
    from perceiver_image.pixels import PixelPreprocessor

    ctx = {"image_shape": (8, 8, 3)}
    image = np.random.default_rng(1).random((12, 20, 3)).astype(np.float32)
    pixels = PixelPreprocessor(PixelsConfig(), BuildContext(dataset=ctx))
    assert pixels.prepare({"image": image})["pixels"].shape == (64, 3)
    assert "image" in PixelPreprocessor(PixelsConfig(other_sizes="native"),
                                        BuildContext(dataset=ctx)).prepare({"image": image})
