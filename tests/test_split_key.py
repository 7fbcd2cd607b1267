"""Split-key cross-attend with gradients (model/layers/split_key.py): outputs and gradients equal to the plain
path's (fp32 < 1e-5; bf16 autocast < 1e-2) with and without a padding mask, with M not a multiple of the chunk,
through the encoder and a whole pipeline; and the tensors it saves for the backward do not grow with M."""

from __future__ import annotations

import math

import pytest
import torch

from perceiver_core.model.layers import kernels
from perceiver_core.model.layers.attention import CrossAttention
from perceiver_core.model.layers.split_key import split_key_attention


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def close(a: torch.Tensor, b: torch.Tensor, tol: float) -> bool:
    """Relative error under `tol`, or both rounding noise around an exact zero (the key projection's bias has a
    zero gradient: a shift of every key by one vector moves a query's scores by one constant)."""
    return rel(a, b) < tol or (a.double() - b.double()).abs().max().item() < 1e-6 * tol / 1e-5


@pytest.fixture(autouse=True)
def _restore_policy():
    previous = kernels.get_policy()
    yield
    kernels.set_policy(previous)


@pytest.mark.parametrize("chunk", [1, 7, 32, 1000])
@pytest.mark.parametrize("masked", [False, True])
def test_split_key_attention_matches_plain_with_gradients(chunk, masked):
    g = torch.Generator().manual_seed(chunk + 10 * masked)
    b, h, n, m, c, dqk, dv = 2, 3, 5, 100, 6, 4, 3
    q = torch.randn(b, h, n, dqk, generator=g, requires_grad=True)
    x = torch.randn(b, m, c, generator=g, requires_grad=True)
    wk = torch.randn(c, h * dqk, generator=g, requires_grad=True)
    wv = torch.randn(c, h * dv, generator=g, requires_grad=True)
    mask = None
    if masked:
        mask = torch.rand(b, m, generator=g) > 0.5
        mask[:, -1] = True  # every row attends somewhere (a chunk may still be fully masked)

    def kv(x_part):  # [B, c, C] -> k [B, H, c, Dqk], v [B, H, c, Dv]
        cc = x_part.shape[1]
        return ((x_part @ wk).view(b, cc, h, dqk).transpose(1, 2), (x_part @ wv).view(b, cc, h, dv).transpose(1, 2))

    def kv_fn(start, stop, sliced):
        x_part, mask_part = sliced
        return (*kv(x_part), mask_part)

    out = split_key_attention(q, m, kv_fn, chunk, sliced=(x, mask), params=(wk, wv))
    k, v = kv(x)
    ref = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=None if mask is None else mask[:, None, None, :])
    assert rel(out, ref) < 1e-5
    grad = torch.randn(out.shape, generator=g)
    got = torch.autograd.grad(out, (q, x, wk, wv), grad)
    want = torch.autograd.grad(ref, (q, x, wk, wv), grad)
    for name, a, w in zip(("q", "input", "wk", "wv"), got, want):
        assert rel(a, w) < 1e-5, name


def _block(heads=1, qk=None, v=None, residual=True):
    torch.manual_seed(0)
    block = CrossAttention(32, 29, num_heads=heads, qk_channels=qk, v_channels=v, widening=2)
    block.use_query_residual = residual
    return block.train()


def _grads(block, out, inputs, grad):
    params = [p for _, p in block.named_parameters()]
    return torch.autograd.grad(out, [*inputs, *params], grad)


@pytest.mark.parametrize("heads,qk,v,residual", [(1, None, None, True), (4, 64, 32, False)])
@pytest.mark.parametrize("masked", [False, True])
def test_chunked_cross_attend_gradients_equal_the_module(heads, qk, v, residual, masked):
    """Every gradient (latents, input, each weight of the block) of the split-key path equals the module's, with
    M = 300 over chunks of 64 (the last chunk partial)."""
    block = _block(heads, qk, v, residual)
    g = torch.Generator().manual_seed(3)
    q = torch.randn(2, 16, 32, generator=g, requires_grad=True)
    kv = torch.randn(2, 300, 29, generator=g, requires_grad=True)
    mask = (torch.rand(2, 300, generator=g) > 0.3) if masked else None
    ref = block(q, kv, mask)
    out = kernels.chunked_cross_attend(block, q, kv, mask, chunk=64)
    assert rel(out, ref) < 1e-5
    grad = torch.randn(ref.shape, generator=g)
    names = ["latents", "input", *(n for n, _ in block.named_parameters())]
    for name, a, w in zip(names, _grads(block, out, (q, kv), grad), _grads(block, ref, (q, kv), grad)):
        assert close(a, w, 1e-5), name


def test_chunked_cross_attend_gradients_bf16_autocast():
    """Under bf16 autocast (the backward recomputes K and V under the forward's autocast state) every gradient is
    within 1e-2 of the plain module's under the same autocast, and no further from fp32 than 2x the plain path's
    own bf16 error."""
    block = _block()
    g = torch.Generator().manual_seed(4)
    q = torch.randn(1, 16, 32, generator=g, requires_grad=True)
    kv = torch.randn(1, 500, 29, generator=g, requires_grad=True)
    ref = block(q, kv)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = kernels.chunked_cross_attend(block, q, kv, chunk=128)
        plain = block(q, kv)
    assert rel(out.float(), plain.float()) < 1e-2
    grad = torch.randn(ref.shape, generator=g)
    got, want = _grads(block, out.float(), (q, kv), grad), _grads(block, plain.float(), (q, kv), grad)
    exact = _grads(block, ref, (q, kv), grad)
    names = ["latents", "input", *(n for n, _ in block.named_parameters())]
    for name, a, w, e in zip(names, got, want, exact):
        if name == "attention.k_proj.bias":  # zero up to bf16 rounding in every path
            scale = dict(zip(names, exact))["attention.k_proj.weight"].abs().max()
            assert a.abs().max() < 1e-2 * scale and w.abs().max() < 1e-2 * scale
            continue
        assert a.dtype == w.dtype == torch.float32 and rel(a, w) < 1e-2, name
        assert rel(a, e) < max(2 * rel(w, e), 1e-3), name


def _saved_bytes(run, exclude: list[torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for the backward during run(), not counting storage shared with the
    `exclude` tensors (the input and the weights, which exist whether or not they are saved)."""
    shared = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in shared:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = run()
    out.sum().backward()
    return sum(seen.values())


def test_saved_activations_do_not_grow_with_the_input():
    """What the split-key cross-attend keeps for its backward is the same for 1,024 and 8,192 keys (chunks of
    256), while the plain module's grows with M: the measure can tell the two apart."""
    block = _block()
    exclude = list(block.parameters())
    saved = {}
    for m in (1024, 8192):
        g = torch.Generator().manual_seed(m)
        q = torch.randn(2, 16, 32, generator=g, requires_grad=True)
        kv = torch.randn(2, m, 29, generator=g, requires_grad=True)
        mask = torch.rand(2, m, generator=g) > 0.1
        saved["split", m] = _saved_bytes(lambda: kernels.chunked_cross_attend(block, q, kv, mask, chunk=256),
                                         [q, kv, mask, *exclude])
        saved["plain", m] = _saved_bytes(lambda: block(q, kv, mask), [q, kv, mask, *exclude])
    assert saved["split", 1024] == saved["split", 8192] > 0, saved
    assert saved["split", 8192] < 2 * 16 * 32 * 4 * 20  # [B, N, .]-sized tensors only
    assert saved["plain", 8192] > 4 * saved["plain", 1024], saved
    assert saved["plain", 8192] > 50 * saved["split", 8192], saved


# -- through the encoder and a pipeline ------------------------------------------------------------------------

def _pipeline(train_chunk: int | None, position: dict | None = None, **overrides):
    import dataclasses

    from perceiver_core.commands.bench.models import build_ours
    from perceiver_core.commands.bench.presets import PRESETS

    pytest.importorskip("perceiver_image")
    torch.manual_seed(0)
    preset = PRESETS["tiny"]
    if position is not None:
        preset = dataclasses.replace(preset, sections={**preset.sections, "position": position})
    over = {"encoder": {"cross_attend_train_chunk_keys": train_chunk}, **overrides}
    return build_ours(preset, 24, overrides=over).train()


@pytest.mark.parametrize("position", [None, {"use": "fourier", "num_bands": 4, "project_to": 8},
                                      {"use": "learned", "num_channels": 6}],
                         ids=["fourier", "fourier-projected", "learned"])
def test_pipeline_training_step_equals_the_plain_path(position, monkeypatch):
    """Loss and every parameter's gradient of a training step of the tiny preset at 24^2 (576 inputs, chunks of
    50: the last one partial; the input streamed, position features per chunk or sliced) equal the plain path's;
    the split-key path really ran."""
    split, plain = _pipeline(50, position), _pipeline(0, position)
    plain.load_state_dict(split.state_dict())
    batch = {"pixels": torch.rand(2, 576, 3, generator=torch.Generator().manual_seed(1)),
             "label": torch.tensor([3, 7])}
    calls = []
    original = kernels.chunked_cross_attend
    monkeypatch.setattr(kernels, "chunked_cross_attend", lambda *a, **k: calls.append(1) or original(*a, **k))
    losses, grads = [], []
    for model in (split, plain):
        loss = model.task.loss(model(batch), batch)
        loss.backward()
        losses.append(loss.detach())
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    assert calls == [1]
    assert rel(losses[0], losses[1]) < 1e-6
    assert grads[0].keys() == grads[1].keys()
    for name in grads[1]:
        assert grads[0][name] is not None, name
        assert close(grads[0][name], grads[1][name], 1e-5), name


def test_training_chunks_automatically_from_the_policy_threshold(monkeypatch):
    """Unset, the split-key path is the policy's choice with gradients (train_chunk_min_keys), not with dropout."""
    calls = []
    original = kernels.chunked_cross_attend
    monkeypatch.setattr(kernels, "chunked_cross_attend", lambda *a, **k: calls.append(k) or original(*a, **k))
    batch = {"pixels": torch.rand(1, 576, 3), "label": torch.tensor([1])}
    model = _pipeline(None)
    model.task.loss(model(batch), batch).backward()
    assert calls == []  # 576 inputs: far under the default threshold
    kernels.set_policy(kernels.get_policy().with_(train_chunk_min_keys=500, chunk_keys=128))
    model.task.loss(model(batch), batch).backward()
    assert len(calls) == 1
    dropout = _pipeline(None, encoder={"cross_attend_train_chunk_keys": None, "dropout": 0.1})
    dropout.task.loss(dropout(batch), batch).backward()
    assert len(calls) == 1  # no attention dropout in the split-key path: the plain one


def test_train_chunk_with_dropout_is_a_config_error():
    from perceiver_core.config.encoders import PerceiverEncoderConfig

    with pytest.raises(ValueError, match="split-key cross-attend has no attention dropout"):
        PerceiverEncoderConfig(cross_attend_train_chunk_keys=1024, dropout=0.1)
    PerceiverEncoderConfig(cross_attend_chunk_keys=1024, dropout=0.1)  # inference chunks: fine


def test_split_key_chunk_must_be_positive():
    q = torch.randn(1, 1, 2, 4)
    with pytest.raises(ValueError, match="chunk must be at least 1"):
        split_key_attention(q, 3, lambda s, e, _: None, 0)
    assert math.isfinite(float(q.sum()))


HAS_GPU = torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU; none is visible here")
def test_split_key_on_cuda_bf16_gradients_and_memory():
    """On the GPU, the ImageNet cross-attend (1 head of 261 channels, 512 x 1024 latents) in bf16 autocast: every
    gradient within 1e-2 of the plain path's under the same autocast, and the peak memory of a forward + backward
    grows by little more than the input (and its gradient) from 2^16 to 2^18 keys, while the plain path's
    grows with its [M, 261]-sized activations."""
    torch.manual_seed(0)
    block = CrossAttention(1024, 261, num_heads=1, qk_channels=261).cuda().train()
    g = torch.Generator(device="cuda").manual_seed(1)
    q = torch.randn(1, 512, 1024, device="cuda", generator=g, requires_grad=True)
    kv = torch.randn(1, 8192, 261, device="cuda", generator=g, requires_grad=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = kernels.chunked_cross_attend(block, q, kv, chunk=2048)
        ref = block(q, kv)
    grad = torch.randn(ref.shape, device="cuda", generator=g)
    names = ["latents", "input", *(n for n, _ in block.named_parameters())]
    for name, a, w in zip(names, _grads(block, out.float(), (q, kv), grad), _grads(block, ref.float(), (q, kv), grad)):
        if name != "attention.k_proj.bias":  # zero up to rounding
            assert rel(a, w) < 1e-2, name
    peaks = {}
    for m in (2**16, 2**18):
        for path in ("split", "plain"):
            x = torch.randn(1, m, 261, device="cuda", requires_grad=True)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                y = (kernels.chunked_cross_attend(block, q, x, chunk=16384) if path == "split" else block(q, x))
            y.float().sum().backward()
            torch.cuda.synchronize()
            peaks[path, m] = torch.cuda.max_memory_allocated() - base
            del x, y
            block.zero_grad(set_to_none=True)
            q.grad = None
    input_growth = (2**18 - 2**16) * 261 * 4 * 2  # the input and its gradient, fp32
    assert peaks["split", 2**18] - peaks["split", 2**16] < input_growth, peaks
    split_growth = peaks["split", 2**18] - peaks["split", 2**16]
    assert peaks["plain", 2**18] - peaks["plain", 2**16] > 2 * split_growth, peaks


def _digits_label(chunk_keys: str):
    from perceiver_core.model.pipeline import build_from_spec
    from perceiver_core.registry.file import load_registry

    pytest.importorskip("perceiver_image")
    spec = load_registry(include_default=False).resolve("digits-label", [
        f"encoder.cross_attend_train_chunk_keys={chunk_keys}", f"encoder.cross_attend_chunk_keys={chunk_keys}"])
    torch.manual_seed(0)
    return build_from_spec(spec)


def test_packed_inputs_through_the_split_key_path(monkeypatch):
    """Several inputs packed (image + label, `PackedStream`): the split-key cross-attend reads the packed rows, not
    the stream's zero-stride layout; loss, every gradient (padding vectors and mask tokens included) and the
    chunked inference outputs equal the plain path's."""
    from perceiver_core.data.loader import collate

    split, plain = _digits_label("10"), _digits_label("0")
    plain.load_state_dict(split.state_dict())
    examples = [{"image": torch.rand(8, 8).numpy() * 16, "label": i} for i in range(3)]
    batch = {**collate([split.prepare(x) for x in examples]), "label": torch.arange(3)}  # the label target
    calls = []
    original = kernels.chunked_cross_attend
    monkeypatch.setattr(kernels, "chunked_cross_attend", lambda *a, **k: calls.append(1) or original(*a, **k))
    losses, grads, outputs = [], [], []
    for model in (split, plain):
        model.eval()  # masking by eval_mask_probability (1.0 for the label): deterministic, no dropout
        with torch.enable_grad():
            loss = model.task.loss(model(batch), batch)
        loss.backward()
        losses.append(loss.detach())
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
        with torch.no_grad():
            outputs.append(model(batch))
    assert len(calls) == 2  # split: once with gradients, once in inference
    assert rel(losses[0], losses[1]) < 1e-6
    for name in grads[1]:
        if grads[1][name] is None:
            assert grads[0][name] is None, name
            continue
        assert close(grads[0][name], grads[1][name], 1e-5), name
    flat = [torch.cat([t.flatten() for t in (o.values() if isinstance(o, dict) else [o])]) for o in outputs]
    assert rel(flat[0], flat[1]) < 1e-5
