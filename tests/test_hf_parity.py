"""Output parity with Hugging Face transformers' Perceiver: small random HF models are saved with
save_pretrained, converted with `perceiver import-hf`, loaded with `from_checkpoint` and run on the same random
inputs; logits must agree to 1e-5 relative error in fp32 (padded text batches included).

`python tests/test_hf_parity.py` prints the parity table of docs/parity.md.
"""

from __future__ import annotations

import math

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="parity tests compare against HF transformers, "
                                                          "which is not installed (pip install transformers)")

from safetensors.torch import load_file, save_file  # noqa: E402

from perceiver_core import from_checkpoint  # noqa: E402
from perceiver_core.commands.cli import main as cli_main  # noqa: E402
from perceiver_core.model.positions.fourier import fourier_features, linear_positions  # noqa: E402
from hf_reference import random_hf_model as _random_hf  # noqa: E402
from hf_reference import relative_error  # noqa: E402

TOLERANCE = 1e-5
LABELS = {str(i): f"class {i}" for i in range(5)}
IMAGE = dict(num_latents=8, d_latents=32, num_blocks=2, num_self_attends_per_block=2, num_self_attention_heads=4,
             num_cross_attention_heads=1, image_size=32, id2label=LABELS, label2id={v: int(k) for k, v in LABELS.items()})
CASES = {
    "PerceiverForImageClassificationFourier": IMAGE,
    "PerceiverForImageClassificationLearned": {**IMAGE, "num_cross_attention_heads": 2, "self_attention_widening_factor": 2},
    "PerceiverForImageClassificationConvProcessing": {**IMAGE, "cross_attention_widening_factor": 2},
    "PerceiverForMaskedLM": dict(num_latents=8, d_latents=48, d_model=32, num_blocks=1, num_self_attends_per_block=3,
                                 num_self_attention_heads=4, num_cross_attention_heads=8, qk_channels=16,
                                 v_channels=48, max_position_embeddings=16),
}


def random_hf_model(name: str, folder, seed: int = 0):
    """An HF model with every weight random (not HF's init: LayerNorms and biases too), saved to `folder`."""
    return _random_hf(getattr(transformers, name), transformers.PerceiverConfig(**CASES[name]), folder, seed)


def import_model(folder, out, capsys=None):
    assert cli_main(["import-hf", str(folder), "--out", str(out)]) == 0
    return from_checkpoint(out)


def image_parity(name: str, tmp_path) -> float:
    hf = random_hf_model(name, tmp_path / "hf")
    ours = import_model(tmp_path / "hf", tmp_path / "ours.safetensors")
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        expected = hf(inputs=pixels).logits  # [B, K]
        got = ours({"image": pixels})[:, 0]  # [B, 1, K] -> [B, K]
    assert got.shape == expected.shape
    return relative_error(got, expected)


def mlm_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    full = torch.randint(6, 262, (2, 16), generator=g)
    padded = torch.randint(6, 262, (3, 16), generator=g)
    mask = torch.arange(16)[None, :] < torch.tensor([16, 9, 4])[:, None]  # [B, L], True = real byte
    padded[~mask] = 0
    short = torch.randint(6, 262, (2, 11), generator=g)  # shorter than max_position_embeddings
    return [(full, torch.ones_like(full, dtype=torch.bool)), (padded, mask),
            (short, torch.ones_like(short, dtype=torch.bool))]


def mlm_parity(tmp_path) -> float:
    hf = random_hf_model("PerceiverForMaskedLM", tmp_path / "hf")
    ours = import_model(tmp_path / "hf", tmp_path / "ours.safetensors")
    worst = 0.0
    for ids, mask in mlm_batches():
        with torch.no_grad():
            expected = hf(inputs=ids, attention_mask=mask.long()).logits  # [B, 16, 262]
            got = ours({"input_ids": ids, "attention_mask": mask})
        assert got.shape == expected.shape
        worst = max(worst, relative_error(got, expected))
    return worst


@pytest.mark.parametrize("name", [n for n in CASES if "Image" in n])
def test_image_classifier_parity(name, tmp_path):
    assert image_parity(name, tmp_path) < TOLERANCE


def test_masked_lm_parity_with_padding(tmp_path):
    assert mlm_parity(tmp_path) < TOLERANCE


def test_padding_changes_nothing_for_real_bytes(tmp_path):
    """The mask is honoured: the logits of a padded example equal those of the same bytes without padding."""
    random_hf_model("PerceiverForMaskedLM", tmp_path / "hf")
    ours = import_model(tmp_path / "hf", tmp_path / "ours.safetensors")
    ids = torch.randint(6, 262, (1, 7))
    padded = torch.cat([ids, torch.zeros(1, 9, dtype=torch.long)], dim=1)
    mask = torch.arange(16)[None] < 7
    with torch.no_grad():
        a = ours({"input_ids": ids, "attention_mask": torch.ones_like(ids, dtype=torch.bool)})
        b = ours({"input_ids": padded, "attention_mask": mask})
        c = ours({"input_ids": padded, "attention_mask": torch.ones_like(mask)})
    assert relative_error(b, a) < TOLERANCE
    assert relative_error(c, a) > 1e-3  # without the mask the pads are attended: the test can fail


def test_fourier_features_equal_hf():
    from transformers.models.perceiver.modeling_perceiver import PerceiverFourierPositionEncoding

    for shape, bands, res, concat, sine in [((7, 9), 16, (224, 224), True, False), ((55, 55), 64, (56, 56), True, False),
                                            ((5, 4, 3), 8, (10, 12, 6), False, True)]:
        theirs = PerceiverFourierPositionEncoding(bands, res, concat_pos=concat, sine_only=sine)(
            list(shape), 1, device="cpu", dtype=torch.float32)  # [1, M, P] ([M, P] without concat_pos)
        ours = fourier_features(linear_positions(shape), bands, res, concat_pos=concat, sine_only=sine)[None]
        assert ours.shape[1:] == theirs.shape[-2:]
        theirs = theirs.reshape(ours.shape)
        assert float((ours - theirs).abs().max()) < 1e-6


def test_pytorch_bin_weights_only(tmp_path):
    hf = random_hf_model("PerceiverForImageClassificationFourier", tmp_path / "hf")
    (tmp_path / "hf" / "model.safetensors").unlink()
    torch.save(hf.state_dict(), tmp_path / "hf" / "pytorch_model.bin")
    ours = import_model(tmp_path / "hf", tmp_path / "ours.safetensors")
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert relative_error(ours({"image": pixels})[:, 0], hf(inputs=pixels).logits) < TOLERANCE


@pytest.mark.parametrize("edit, message", [("drop", "missing HF weights"), ("extra", "unknown HF weights"),
                                           ("shape", "wrong shapes")])
def test_mismatched_checkpoint_is_one_clear_error(tmp_path, capsys, edit, message):
    random_hf_model("PerceiverForImageClassificationFourier", tmp_path / "hf")
    path = tmp_path / "hf" / "model.safetensors"
    state = load_file(str(path))
    key = "perceiver.encoder.cross_attention.attention.self.query.weight"
    if edit == "drop":
        del state[key]
    elif edit == "extra":
        state["perceiver.encoder.something_new.weight"] = torch.zeros(2)
    else:
        state[key] = state[key][:, :-1].contiguous()
    save_file(state, str(path), metadata={"format": "pt"})
    assert cli_main(["import-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # (HF's save_pretrained writes progress bars first)
    assert err.startswith("perceiver: error:") and message in err
    assert not (tmp_path / "x.safetensors").exists()


def test_unsupported_architecture_is_refused(tmp_path, capsys):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "perceiver", "architectures": ["PerceiverForSequenceClassification"]}')
    assert cli_main(["import-hf", str(folder), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "PerceiverForSequenceClassification" in capsys.readouterr().err


def parity_table(tmp_root) -> list[tuple[str, str, float]]:
    rows = []
    for i, name in enumerate(CASES):
        folder = tmp_root / str(i)
        folder.mkdir()
        err = mlm_parity(folder) if name == "PerceiverForMaskedLM" else image_parity(name, folder)
        cfg = ", ".join(f"{k}={v}" for k, v in CASES[name].items() if k not in ("id2label", "label2id"))
        rows.append((name, cfg, err))
    return rows


if __name__ == "__main__":  # the parity table of docs/parity.md
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        print("| class | config | max relative error (fp32) |\n|---|---|---|")
        for name, cfg, err in parity_table(Path(tmp)):
            print(f"| {name} | {cfg} | {err:.2e} |")
        assert not math.isnan(err)


@pytest.mark.parametrize("subsample", [False, True])
def test_basic_decoder_with_fourier_queries_and_input_equals_hf(subsample):
    """Our `basic` decoder (Fourier output queries, preprocessed input concatenated, no query residual, final
    projection; optionally a subset of output points) against HF's PerceiverBasicDecoder with the same weights."""
    from transformers.models.perceiver.modeling_perceiver import PerceiverBasicDecoder

    from perceiver_core import BuildContext, ByteArray, Encoded
    from perceiver_core.commands.import_hf import _CROSS, _layer
    from perceiver_core.config.decoders import BasicDecoderConfig
    from perceiver_core.model.decoders.basic import BasicDecoder

    torch.manual_seed(0)
    b, (h, w), c, d, k, bands = 2, (5, 6), 7, 24, 3, 4
    fourier = {"num_bands": bands, "max_resolution": (h, w), "concat_pos": True, "sine_only": False}
    hf_config = transformers.PerceiverConfig(d_latents=d)
    theirs = PerceiverBasicDecoder(hf_config, output_num_channels=k, position_encoding_type="fourier",
                                   output_index_dims=(h, w), num_channels=c + 2 * (2 * bands + 1),
                                   concat_preprocessed_input=True, use_query_residual=False,
                                   fourier_position_encoding_kwargs=fourier).eval()
    with torch.no_grad():
        for t in theirs.parameters():
            t.copy_(0.3 * torch.randn_like(t))
    context = BuildContext(index_shape=(h, w), input_channels=c + 9, position_channels=9, latent_channels=d,
                           num_outputs=k)
    ours = BasicDecoder(BasicDecoderConfig(query="fourier", output_index_shape=(h, w), num_bands=bands,
                                           concat_input=True, use_query_residual=False), context).eval()
    rename = _layer(_CROSS)
    state = {f"cross_attend.{key}": theirs.state_dict()[f"decoding_cross_attention.{rename(key)}"]
             for key in ours.cross_attend.state_dict()}
    state.update({"head.weight": theirs.final_layer.weight, "head.bias": theirs.final_layer.bias})
    ours.load_state_dict(state, strict=True)

    x = torch.randn(b, h * w, c)  # the preprocessed input without positions
    latents = torch.randn(b, 4, d)
    idx = torch.tensor([0, 7, 13, 29]) if subsample else None
    byte_array = ByteArray(torch.cat([x, torch.randn(b, h * w, 9)], dim=-1), (h, w))
    with torch.no_grad():
        query = theirs.decoder_query(torch.empty(b, 1, h, w), inputs_without_pos=x if idx is None else x[:, idx],
                                     subsampled_points=idx)
        expected = theirs(query, z=latents).logits  # [B, O, K]
        got = ours(Encoded(latents=latents), byte_array, output_indices=idx)
    assert got.shape == expected.shape == (b, h * w if idx is None else 4, k)
    assert relative_error(got, expected) < TOLERANCE


def test_learned_position_interpolation_equals_hf():
    from transformers.models.perceiver.modeling_perceiver import PerceiverTrainablePositionEncoding

    from perceiver_core import BuildContext, ByteArray
    from perceiver_core.config.positions import LearnedPositionConfig
    from perceiver_core.model.positions.learned import LearnedPositionEncoding

    theirs = PerceiverTrainablePositionEncoding(index_dims=36, num_channels=5)
    ours = LearnedPositionEncoding(LearnedPositionConfig(num_channels=5, interpolate=True),
                                   BuildContext(index_shape=(6, 6)))
    with torch.no_grad():
        ours.embedding.copy_(theirs.position_embeddings)
    expected = theirs(1, interpolate_pos_encoding=True, input_size=(9, 11))  # [1, 99, 5]
    got = ours(ByteArray(torch.zeros(1, 99, 1), (9, 11)))
    assert relative_error(got, expected) < TOLERANCE
    strict = LearnedPositionEncoding(LearnedPositionConfig(num_channels=5), BuildContext(index_shape=(6, 6)))
    with pytest.raises(ValueError, match="interpolate"):
        strict(ByteArray(torch.zeros(1, 99, 1), (9, 11)))


def test_imported_classifier_predicts_image_files(tmp_path, capsys):
    import json

    import numpy as np

    random_hf_model("PerceiverForImageClassificationConvProcessing", tmp_path / "hf")
    ours = import_model(tmp_path / "hf", tmp_path / "ours.safetensors")
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", image)
    capsys.readouterr()
    assert cli_main(["predict", ours.spec.name, "--checkpoint", str(tmp_path / "ours.safetensors"),
                     str(tmp_path / "x.npy"), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    pixels = ((torch.from_numpy(image) - mean) / std).permute(2, 0, 1)[None]  # HF's normalisation, [1, 3, H, W]
    with torch.no_grad():
        assert row["label"] == int(ours({"image": pixels})[0, 0].argmax())


@pytest.mark.parametrize("padding, side", [("hf", 55), ("same", 56)])
def test_conv_stem_padding_modes(padding, side):
    """HF pads the 7x7/2 conv by 3 and pools unpadded (224 -> 55); DeepMind's SAME padding gives 56."""
    from perceiver_image.conv import ConvDownsample

    stem = ConvDownsample(3, 4, padding=padding).eval()
    assert stem(torch.randn(1, 3, 224, 224)).shape == (1, 4, side, side)
    for n in (5, 7, 32, 33):
        assert stem(torch.randn(1, 3, n, n)).shape[-1] == ConvDownsample.output_size(n, padding)
    if padding == "same":  # the pool pads with -inf, never with zeros: all-negative maps stay negative
        stem.relu = torch.nn.Identity()
        with torch.no_grad():
            stem.conv.weight.fill_(0.0)
            stem.batchnorm.bias.fill_(-1.0)
        assert bool((stem(torch.randn(1, 3, 9, 9)) < 0).all())
