"""The original Perceiver's ImageNet preset: its parameter count, explained term by term, and the paper's sharing
(8 cross-attends each followed by a 6-self-attend latent Transformer; the first of each unshared, repeats 2..8
sharing one cross-attend and one latent Transformer: 2 + 2 unique modules)."""

from __future__ import annotations

import pytest
import torch

from perceiver_core import build_preset


def _linear(i: int, o: int) -> int:
    return i * o + o


def _norm(c: int) -> int:
    return 2 * c


def expected_counts(c_in: int = 3 + 2 * (2 * 64 + 1), d: int = 1024, n: int = 512, classes: int = 1000) -> dict:
    """The count from the dims: Fourier K=64 on 224 x 224 gives 2 * (2 * 64 + 1) = 258 position channels + 3
    colour channels = 261 input channels; one head of qk = v = 261 channels in the cross-attend (shape_for_attn
    kv); widening 1 everywhere; a pooled decoder (LayerNorm, Linear D -> classes)."""
    mlp = _linear(d, d) + _linear(d, d)
    cross = (_norm(d) + _norm(c_in) + _linear(d, c_in) + 2 * _linear(c_in, c_in) + _linear(c_in, d)
             + _norm(d) + mlp)
    self_attend = _norm(d) + 4 * _linear(d, d) + _norm(d) + mlp
    latent_transformer = 6 * self_attend
    return {"latents": n * d, "cross_attend": cross, "latent_transformer": latent_transformer,
            "decoder": _norm(d) + _linear(d, classes)}


def test_parameter_count_from_the_dims():
    e = expected_counts()
    assert e == {"latents": 524_288, "cross_attend": 2_776_395, "latent_transformer": 37_810_176,
                 "decoder": 1_027_048}
    model = build_preset("perceiver-imagenet")
    assert next(model.parameters()).device.type == "meta"
    total = sum(p.numel() for p in model.parameters())
    assert total == e["latents"] + 2 * e["cross_attend"] + 2 * e["latent_transformer"] + e["decoder"] == 82_724_478
    enc = model.encoder
    assert sum(p.numel() for p in enc.cross_attends[1].parameters()) == e["cross_attend"]
    assert sum(p.numel() for p in enc.blocks[1].parameters()) == e["latent_transformer"]


def test_the_44_9m_of_paperswithcode_is_one_shared_latent_transformer():
    """44.9M = the same model with one latent Transformer for all 8 repeats (cross-attends still 1 + 1)."""
    e = expected_counts()
    model = build_preset("perceiver-imagenet-44m")
    total = sum(p.numel() for p in model.parameters())
    assert total == e["latents"] + 2 * e["cross_attend"] + e["latent_transformer"] + e["decoder"] == 44_914_302
    assert round(total / 1e6, 1) == 44.9
    assert (len(model.encoder.cross_attends), len(model.encoder.blocks)) == (2, 1)


def test_sharing_pattern_is_the_papers():
    """Run the model (meta device: shapes only) and count which unique module serves each of the 8 repeats."""
    model = build_preset("perceiver-imagenet")
    enc = model.encoder
    assert (len(enc.cross_attends), len(enc.blocks)) == (2, 2)  # unique modules: 2 cross-attends, 2 transformers
    assert all(len(block.layers) == 6 for block in enc.blocks)
    calls = {}
    for name, module in [("cross0", enc.cross_attends[0]), ("cross1", enc.cross_attends[1]),
                         ("block0", enc.blocks[0]), ("block1", enc.blocks[1])]:
        module.register_forward_hook(lambda m, a, o, name=name: calls.__setitem__(name, calls.get(name, 0) + 1))
    with torch.no_grad():
        model({"pixels": torch.empty(1, 224 * 224, 3, device="meta")})
    assert calls == {"cross0": 1, "cross1": 7, "block0": 1, "block1": 7}
    # no parameter is shared between the unique modules (sharing is by reuse, not by tying)
    ids = [{id(p) for p in m.parameters()} for m in (*enc.cross_attends, *enc.blocks)]
    assert all(not (a & b) for i, a in enumerate(ids) for b in ids[i + 1:])


@pytest.mark.slow
def test_forward_flops_match_the_reported_707_gflops():
    """2 FLOPs per multiply-add, attention counted from its shapes: 706.3 GFLOPs per 224 x 224 image."""
    from perceiver_core.commands.bench.flops import count_flops

    model = build_preset("perceiver-imagenet").eval()
    batch = {"pixels": torch.empty(1, 224 * 224, 3, device="meta")}
    with torch.no_grad():
        flops = count_flops(lambda: model(batch), model)["total"]
    assert flops / 1e9 == pytest.approx(706.3, abs=0.1)
    assert abs(flops / 707e9 - 1) < 0.002


def test_without_sharing_every_repeat_has_its_own_weights():
    e = expected_counts()
    model = build_preset("perceiver-imagenet", overrides=["encoder.share_blocks=false",
                                                          "encoder.share_cross_attends=false"])
    total = sum(p.numel() for p in model.parameters())
    assert total == e["latents"] + 8 * e["cross_attend"] + 8 * e["latent_transformer"] + e["decoder"] == 326_243_904
