"""Streaming very large inputs to the encoder: position features per chunk, never the whole [B, M, C + P].

Checked against the materialised path on fresh random inputs (fp32 < 1e-5): Fourier features of a range
equal the full features' rows bit for bit; a pipeline in inference streams when its encoder chunks and its decoder
reads no inputs, gives the materialised path's logits, and never calls the position encoding on the whole input.
"""

from __future__ import annotations

import pytest
import torch

from perceiver_core.byte_array import ByteArray
from perceiver_core.commands.bench.models import build_ours
from perceiver_core.commands.bench.presets import PRESETS
from perceiver_core.config.positions import FourierPositionConfig
from perceiver_core.model.input_stream import InputStream
from perceiver_core.model.positions.fourier import FourierPositionEncoding, grid_positions_range, linear_positions


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize("shape", [(7,), (5, 9), (3, 4, 5), (1, 6)])
def test_grid_positions_of_a_range_are_the_grids_rows(shape):
    full = linear_positions(shape)
    m = full.shape[0]
    for start, stop in ((0, m), (1, m - 1), (m // 2, m), (m - 1, m)):
        assert torch.equal(grid_positions_range(shape, start, stop), full[start:stop])


@pytest.mark.parametrize("project", [None, 16])
def test_fourier_features_of_a_range_equal_the_full_features(project):
    torch.manual_seed(0)
    enc = FourierPositionEncoding(FourierPositionConfig(num_bands=6, project_to=project, max_resolution=(12, 10)))
    grid = ByteArray(torch.randn(2, 120, 3), (12, 10))
    explicit = ByteArray(torch.randn(2, 120, 3), (120,), positions=torch.rand(2, 120, 2) * 2 - 1)
    for ba in (grid, explicit):
        full = enc(ba)
        for start, stop in ((0, 120), (17, 64), (100, 120)):
            assert torch.equal(enc.forward_range(ba, start, stop), full[:, start:stop])


def _pipeline(chunk: int):
    torch.manual_seed(0)
    return build_ours(PRESETS["tiny"], 24, overrides={"encoder": {"cross_attend_chunk_keys": chunk}}).eval()


def _batch(b=2, size=24):
    return {"pixels": torch.rand(b, size * size, 3, generator=torch.Generator().manual_seed(1))}


def test_streamed_inference_equals_the_materialised_path(monkeypatch):
    streamed, whole = _pipeline(chunk=50), _pipeline(chunk=0)
    whole.load_state_dict(streamed.state_dict())
    batch = _batch()
    with torch.no_grad():
        materialised = whole.embed(batch)  # [B, M, C + P] in one array: the plain path
        want = whole.decoder(whole.encoder(materialised), materialised)
        fused = whole(batch)  # whole input, features concatenated inside the cross-attend

        def whole_features(*args, **kwargs):
            raise AssertionError("the chunked path computed the whole input's position features")

        monkeypatch.setattr(FourierPositionEncoding, "forward", whole_features)
        got = streamed(batch)  # chunks of 50 elements, features per chunk
    assert got.shape == want.shape == fused.shape == (2, 1, 10)
    assert rel(got, want) < 1e-5 and rel(fused, want) < 1e-6


def test_training_streams_whole_inputs_and_input_reading_decoders_are_not_streamed(monkeypatch):
    from perceiver_core.model.layers import kernels

    model = _pipeline(chunk=50)
    with monkeypatch.context() as patch:
        patch.setattr(kernels, "chunked_cross_attend", lambda *a, **k: pytest.fail("chunked in training"))
        loss = model(_batch()).square().mean()  # gradients on: whole input (chunking is an inference path)
        loss.backward()
    assert model.encoder.cross_attends[0].kv_norm.weight.grad is not None
    calls = []
    monkeypatch.setattr(type(model.encoder), "forward_stream",
                        lambda self, stream: calls.append(stream) or pytest.fail("streamed"))
    monkeypatch.setattr(type(model.decoder), "reads_inputs", True)
    with torch.no_grad():
        model(_batch())
    assert calls == []


def test_fused_concatenation_trains_like_the_materialised_input():
    """Loss and every gradient of a training step through forward_stream (features concatenated inside the
    cross-attend) equal those of the plain path over the materialised array."""
    model = _pipeline(chunk=0).train()
    batch = {**_batch(), "label": torch.tensor([3, 7])}
    results = []
    for fused in (True, False):
        model.zero_grad()
        if fused:
            outputs = model(batch)
        else:
            byte_array = model.embed(batch)
            outputs = model.decoder(model.encoder(byte_array), byte_array)
        loss = model.task.loss(outputs, batch)
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                                         if p.grad is not None}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert rel(loss_a, loss_b) < 1e-6 and grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], rtol=1e-4, atol=1e-7), name


def test_stream_over_a_materialised_array_slices_it():
    ba = ByteArray(torch.randn(2, 30, 5), (30,), mask=torch.rand(2, 30) > 0.5)
    stream = InputStream.of(ba)
    x, mask = stream.chunk(10, 20)
    assert torch.equal(x, ba.data[:, 10:20]) and torch.equal(mask, ba.mask[:, 10:20])
    assert stream.materialise() is ba


def test_streamed_inference_counts_the_same_flops():
    """The bench counts FLOPs of a streamed forward (inference of large inputs) as of the materialised one."""
    from perceiver_core.commands.bench.flops import count_flops

    counts = []
    for chunk in (0, 50):
        model = _pipeline(chunk)
        batch = _batch()

        def run():
            with torch.no_grad():
                model(batch)
        counts.append(count_flops(run, model))
    assert counts[0] == counts[1] and counts[0]["attention"] > 0


@pytest.mark.parametrize("explicit", [False, True])
def test_encoder_streams_masked_and_explicitly_placed_inputs_like_the_whole_input(explicit):
    """forward_stream over an InputStream (positions per chunk, mask sliced) equals forward over the
    materialised array, for grid and explicit positions, with a padding mask."""
    from perceiver_core.config.encoders import PerceiverEncoderConfig
    from perceiver_core.interfaces import BuildContext
    from perceiver_core.model.encoders.perceiver import PerceiverEncoder

    g = torch.Generator().manual_seed(3)
    positions = torch.rand(2, 96, 2, generator=g) * 2 - 1 if explicit else None
    mask = torch.rand(2, 96, generator=g) > 0.3
    base = ByteArray(torch.randn(2, 96, 3, generator=g), (96,) if explicit else (8, 12), positions=positions,
                     mask=mask)
    fourier = FourierPositionEncoding(FourierPositionConfig(num_bands=4, max_resolution=(8, 12)))
    cfg = dict(num_latents=8, latent_channels=32, num_blocks=2, self_attends_per_block=1, self_attend_heads=4,
               num_cross_attends=2, cross_attend_heads=1)
    encoders = []
    for chunk in (0, 20):
        torch.manual_seed(0)
        encoders.append(PerceiverEncoder(PerceiverEncoderConfig(**cfg, cross_attend_chunk_keys=chunk),
                                         BuildContext(input_channels=3 + 18)).eval())
    whole, streamed = encoders
    stream = InputStream(base, fourier)
    with torch.no_grad():
        want = whole(stream.materialise()).latents
        got = streamed.forward_stream(stream).latents
    assert rel(got, want) < 1e-5
