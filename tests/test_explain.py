"""Attention maps: the weights hook (model/layers/attention.py) and `perceiver explain` (commands/explain.py).

Maps sum to one over the input for every latent, have the input's shape, and reading them does not change the
model's outputs (the plain path that computes them against the fused kernel that runs otherwise)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from perceiver_core import build_from_spec, collate, load_registry, record_attention_weights
from perceiver_core.commands.explain import _to_grid, explain_example
from perceiver_core.model.layers import attention as attention_module
from perceiver_core.model.layers import kernels

TINY = Path(__file__).parent / "tiny.toml"


def _model(name="tiny", *overrides):
    torch.manual_seed(0)
    spec = load_registry([TINY], include_default=False).resolve(name, list(overrides))
    return build_from_spec(spec).eval()


def _digits(n=3):
    from perceiver_image.configs import DigitsConfig
    from perceiver_image.digits import DigitsDataset

    examples = DigitsDataset(DigitsConfig()).examples("test")
    return [examples[i] for i in range(n)]


def _cloud_model(tmp_path, *overrides):
    pytest.importorskip("perceiver_pointcloud")
    registry = tmp_path / "clouds.toml"
    registry.write_text("""
[pipelines.clouds]
description = "a small point-cloud model for the tests"
task = { use = "classification", num_classes = 16 }
data = { use = "pointcloud.shapes", batch_size = 8, num_points = 96, train_per_class = 1, test_per_class = 1 }
preprocessor = { use = "pointcloud.points", num_points = 96 }
position = { use = "pointcloud.fourier", num_bands = 4 }
encoder = { use = "perceiver", num_latents = 8, latent_channels = 32, num_blocks = 3, num_cross_attends = 3, self_attends_per_block = 1, self_attend_heads = 2, cross_attend_heads = 2, cross_attend_qk_channels = 16, cross_attend_v_channels = 16 }
decoder = { use = "classification", num_heads = 2 }
""")
    torch.manual_seed(0)
    spec = load_registry([registry], include_default=False).resolve("clouds", list(overrides))
    return build_from_spec(spec).eval()


@pytest.mark.parametrize("name", ["tiny", "tiny-perceiver"])
def test_maps_sum_to_one_and_have_the_inputs_shape(name):
    model = _model(name)
    for example in _digits():
        ex = explain_example(model, example)
        expected_calls = model.encoder.config.num_cross_attends
        assert len(ex.input_maps) == expected_calls
        for _, _, maps in ex.input_maps:
            heads = model.encoder.config.cross_attend_heads
            assert maps.shape == (heads, model.encoder.num_latents, 8, 8)  # [H, N, *index_shape]
            torch.testing.assert_close(maps.sum(dim=(-2, -1)), torch.ones(heads, model.encoder.num_latents),
                                       rtol=0, atol=1e-5)
            assert (maps >= 0).all()


def test_point_cloud_maps_sum_to_one_with_padding_masked(tmp_path):
    model = _cloud_model(tmp_path)
    cloud = {"points": np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)}  # 36 of 96 padded
    ex = explain_example(model, cloud, top=3)
    assert len(ex.input_maps) == 3 and len(ex.latents) == 3
    for _, _, maps in ex.input_maps:
        assert maps.shape == (2, 8, 96)
        torch.testing.assert_close(maps.sum(dim=-1), torch.ones(2, 8), rtol=0, atol=1e-5)
        assert maps[..., 60:].abs().max() == 0  # padding gets no attention
    assert ex.mask is not None and int(ex.mask.sum()) == 60
    decoder = ex.decoder_maps[-1][2]  # [H, O, N] over the latents
    torch.testing.assert_close(decoder.sum(dim=-1), torch.ones(2, 1), rtol=0, atol=1e-5)


def _outputs(model, batch):
    with torch.no_grad():
        return model(batch)


@pytest.mark.parametrize("name", ["tiny", "tiny-perceiver"])
def test_outputs_are_the_same_with_the_plain_path(name):
    model = _model(name)
    batch = collate([model.prepare(e) for e in _digits(4)])
    fused = _outputs(model, batch)
    with record_attention_weights(model) as records:
        plain = _outputs(model, batch)
    assert records  # the plain path ran and reported
    torch.testing.assert_close(plain, fused, rtol=1e-5, atol=1e-5)


def test_outputs_are_the_same_with_the_plain_path_and_a_mask(tmp_path):
    model = _cloud_model(tmp_path)
    rng = np.random.default_rng(1)
    batch = collate([model.prepare({"points": rng.normal(size=(n, 3)).astype(np.float32)}) for n in (96, 50)])
    fused = _outputs(model, batch)
    with record_attention_weights(model):
        plain = _outputs(model, batch)
    torch.testing.assert_close(plain, fused, rtol=1e-5, atol=1e-5)


def test_the_hook_costs_nothing_when_unused(monkeypatch):
    model = _model("tiny")
    batch = collate([model.prepare(e) for e in _digits(2)])
    with record_attention_weights(model):
        _outputs(model, batch)
    assert attention_module._WEIGHTS_HOOKS == [] and kernels._FORCE_PLAIN == 0  # removed on exit

    def refuse(*args, **kwargs):
        raise AssertionError("the plain path ran without a hook")

    monkeypatch.setattr(attention_module, "plain_attention", refuse)
    _outputs(model, batch)  # the fused path only


def test_chunked_cross_attend_is_off_while_recording():
    """A model that streams its input in chunks (inference) still gives its weights, and the same outputs."""
    model = _model("tiny", "encoder.cross_attend_chunk_keys=16")  # 64 pixels in chunks of 16
    batch = collate([model.prepare(e) for e in _digits(2)])
    chunked = _outputs(model, batch)
    with record_attention_weights(model, keep=lambda n: "cross_attends" in n) as records:
        plain = _outputs(model, batch)
    assert [r.weights.shape[-1] for r in records] == [64]
    torch.testing.assert_close(plain, chunked, rtol=1e-5, atol=1e-5)


def test_records_name_shared_modules_and_count_calls():
    model = _model("tiny-perceiver")  # 3 cross-attends: the first unshared, 2 and 3 one module
    batch = collate([model.prepare(e) for e in _digits(1)])
    with record_attention_weights(model, keep=lambda n: "cross_attends" in n) as records:
        _outputs(model, batch)
    assert [(r.name, r.call) for r in records] == [("encoder.cross_attends.0.attention", 0),
                                                    ("encoder.cross_attends.1.attention", 0),
                                                    ("encoder.cross_attends.1.attention", 1)]


def test_permuted_pixels_are_put_back_on_the_grid():
    from perceiver_core import linear_positions

    perm = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    grid = torch.arange(12.0)  # value = row-major index
    positions = linear_positions((3, 4))[perm]  # [M, 2] true positions of the shuffled elements
    back = _to_grid(grid[perm][None], (3, 4), positions)  # [1, 3, 4]
    assert torch.equal(back[0], grid.reshape(3, 4))


def test_permuted_digits_maps_are_the_unpermuted_models_maps():
    """digits-permuted feeds the same (value, position) pairs in another order: once put back on the grid, its
    maps equal the unpermuted model's (same weights)."""
    plain = _model("tiny")
    permuted = _model("tiny", "preprocessor.permute_seed=3")
    permuted.load_state_dict(plain.state_dict())
    example = _digits(1)[0]
    a, b = explain_example(plain, example), explain_example(permuted, example)
    torch.testing.assert_close(a.input_maps[0][2], b.input_maps[0][2], rtol=1e-5, atol=1e-6)


def test_cli_explain_writes_pictures_and_maps(cli, tmp_path):
    out = tmp_path / "run"
    trained = cli("train", "tiny-perceiver", "--registry", str(TINY), "--out", str(out), "--max-steps", "3")
    assert trained.returncode == 0, trained.stderr
    ckpt = str(out / "model.safetensors")
    result = cli("explain", "--checkpoint", ckpt, "tiny-perceiver", "test:0", "test:1",
                 "--out", str(tmp_path / "maps"), "--latents", "0,3", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["latents"] for r in rows] == [[0, 3], [0, 3]]
    for name in ("test_0_attention.png", "test_1_attention.png", "test_0.json"):
        assert (tmp_path / "maps" / name).stat().st_size > 1000
    assert (tmp_path / "maps" / "test_0_attention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    maps = json.loads((tmp_path / "maps" / "test_0.json").read_text())
    assert maps["index_shape"] == [8, 8] and len(maps["cross_attention"]) == 3
    mean = np.array(maps["cross_attention"][0]["mean_over_heads"])  # [latents, 8, 8]
    assert mean.shape == (2, 8, 8)
    np.testing.assert_allclose(mean.sum(axis=(1, 2)), 1.0, atol=1e-4)  # rounded to 6 digits in the file
    bad = cli("explain", "tiny-perceiver", "--checkpoint", ckpt, "test:0",
              "--out", str(tmp_path / "maps"), "--latents", "99")
    assert bad.returncode == 2 and "out of range" in bad.stderr and "Traceback" not in bad.stderr


def _explanation(index_shape, heads=2, latents=4, calls=1, positions=None, labels=None, decoder_queries=1):
    from perceiver_core.commands.explain import Explanation

    g = torch.Generator().manual_seed(0)
    m = int(np.prod(index_shape))
    maps = [(f"encoder.cross_attends.{min(c, 1)}.attention", c,
             torch.rand(heads, latents, m, generator=g).softmax(-1).reshape(heads, latents, *index_shape))
            for c in range(calls)]
    decoder = [("decoder.cross_attend.attention", 0,
                torch.rand(heads, decoder_queries, latents, generator=g).softmax(-1))]
    return Explanation(tuple(index_shape), "test", maps, decoder, [0, 2], {"label": 1, "confidence": 0.5},
                       positions=positions, labels=labels)


def _is_png(path):
    return path.stat().st_size > 2000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("case", ["image", "image-repeated", "points", "text", "curve"])
def test_every_kind_of_picture_is_drawn(tmp_path, case):
    """Each modality's drawing path writes a PNG (images with and without the input, several cross-attend calls,
    points in three views, labelled bytes, a plain curve) and the decoder picture (bars, heat map)."""
    from perceiver_core.commands.explain import draw_decoder, draw_input

    raw = {}
    if case == "image":
        ex, raw = _explanation((6, 5)), {"image": np.random.default_rng(0).random((6, 5, 1))}
    elif case == "image-repeated":
        ex = _explanation((6, 5), heads=1, calls=6)
    elif case == "points":
        ex = _explanation((40,), positions=torch.rand(40, 3) * 2 - 1, calls=3)
    elif case == "text":
        ex = _explanation((12,), labels=list("hello world") + [""], decoder_queries=12)
    else:
        ex = _explanation((30,))
    draw_input(ex, raw, tmp_path / "attention.png", "a title")
    assert _is_png(tmp_path / "attention.png")
    assert draw_decoder(ex, tmp_path / "decoder.png", "a title")
    assert _is_png(tmp_path / "decoder.png")


def test_text_bytes_label_their_elements():
    pytest.importorskip("perceiver_text")
    from perceiver_core import BuildContext
    from perceiver_text.configs import BytesConfig
    from perceiver_text.preprocessor import BytePreprocessor

    pre = BytePreprocessor(BytesConfig(max_length=10, channels=8, mask_probability=0.0), BuildContext())
    labels = pre.element_labels(pre.prepare({"text": "a b[MASK]\u00e9"}))
    # [CLS] a space b [MASK] e-acute (2 bytes) [SEP], then padding
    assert labels == ["CLS", "a", "\u2423", "b", "\u25a0", "c3", "a9", "SEP", "", ""]
