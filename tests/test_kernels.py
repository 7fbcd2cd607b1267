"""Every fast attention path against the plain fp32 path on fresh random inputs (relative error fp32 < 1e-5,
bf16 < 1e-2): head-dim padding, the per-shape SDPA policy, the chunked online-softmax cross-attend, the encoder's
chunked inference and activation checkpointing. GPU variants are marked `gpu`."""

from __future__ import annotations

import math

import pytest
import torch

from perceiver_core.interfaces import BuildContext
from perceiver_core.model.layers import kernels
from perceiver_core.model.layers.attention import CrossAttention, MultiHeadAttention

HAS_GPU = torch.cuda.is_available()
gpu = [pytest.mark.gpu, pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU; none is visible here")]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def plain(q, k, v, mask=None):
    """The reference: matmul + softmax in float64."""
    s = q.double() @ k.double().transpose(-1, -2) / math.sqrt(q.shape[-1])  # [B, H, N, M]
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ v.double()


@pytest.fixture(autouse=True)
def _restore_policy():
    previous = kernels.get_policy()
    yield
    kernels.set_policy(previous)


@pytest.mark.parametrize("dqk,dv", [(261, 261), (13, 7), (64, 64), (5, 12)])
def test_head_dim_padding_is_exact(dqk, dv):
    g = torch.Generator().manual_seed(dqk)
    q = torch.randn(2, 3, 17, dqk, generator=g)
    k = torch.randn(2, 3, 29, dqk, generator=g)
    v = torch.randn(2, 3, 29, dv, generator=g)
    mask = torch.rand(2, 1, 1, 29, generator=g) > 0.3
    mask[..., 0] = True
    padded = kernels.AttentionPolicy(pad_head_dim="always")
    for m in (None, mask):
        out = kernels.attention(q, k, v, attn_mask=m, policy=padded)
        assert out.shape == (2, 3, 17, dv)
        assert rel(out, plain(q, k, v, m)) < 1e-5


def test_padded_dim():
    assert [kernels.padded_dim(d, 8) for d in (1, 8, 9, 261, 264)] == [8, 8, 16, 264, 264]
    assert kernels.padded_dim(261, 1) == 261


def test_default_policy_on_cpu_is_plain_sdpa():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 8, 12, generator=g) for _ in range(3))
    out = kernels.attention(q, k, v)
    assert torch.equal(out, torch.nn.functional.scaled_dot_product_attention(q, k, v))


def test_bf16_padded_attention():
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 1, 64, 261, generator=g) for _ in range(3))
    out = kernels.attention(q.bfloat16(), k.bfloat16(), v.bfloat16(),
                            policy=kernels.AttentionPolicy(pad_head_dim="always"))
    assert out.dtype == torch.bfloat16 and rel(out, plain(q, k, v)) < 1e-2


def test_sdpa_backend_choice_per_shape():
    from torch.nn.attention import SDPBackend as S

    p = kernels.AttentionPolicy()
    bf16 = torch.bfloat16
    # 512 latents over 50,176 pixels (the ImageNet cross-attend padded to 264): no flash (> 256), and in
    # training never the memory-efficient kernel (pathological backward with one head).
    train = kernels.sdpa_backends(p, queries=512, keys=50176, batch_heads=32, head_dim=264, dtype=bf16,
                                  has_mask=False, training=True)
    assert S.EFFICIENT_ATTENTION not in train and S.FLASH_ATTENTION not in train and train[-1] == S.MATH
    infer = kernels.sdpa_backends(p, queries=512, keys=50176, batch_heads=32, head_dim=264, dtype=bf16,
                                  has_mask=False, training=False)
    assert S.EFFICIENT_ATTENTION in infer
    # many queries: cuDNN first; few queries (HiP groups of 128): flash first.
    many = kernels.sdpa_backends(p, queries=512, keys=50176, batch_heads=8, head_dim=128, dtype=bf16,
                                 has_mask=False, training=True)
    few = kernels.sdpa_backends(p, queries=128, keys=50176, batch_heads=8, head_dim=128, dtype=bf16,
                                has_mask=False, training=True)
    assert many[0] == S.CUDNN_ATTENTION and few[0] == S.FLASH_ATTENTION
    # fp32 and masks rule flash out; cuDNN and flash need half precision.
    fp32 = kernels.sdpa_backends(p, queries=512, keys=512, batch_heads=64, head_dim=128, dtype=torch.float32,
                                 has_mask=False, training=True)
    assert fp32 == [S.EFFICIENT_ATTENTION, S.MATH]
    masked = kernels.sdpa_backends(p, queries=64, keys=512, batch_heads=64, head_dim=64, dtype=bf16,
                                   has_mask=True, training=False)
    assert S.FLASH_ATTENTION not in masked


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_chunked_core_matches_plain(chunk):
    g = torch.Generator().manual_seed(chunk)
    b, h, n, m, dqk, dv = 2, 3, 5, 100, 16, 8
    q = torch.randn(b, h, n, dqk, generator=g)
    kv = torch.randn(b, m, h * (dqk + dv), generator=g)
    mask = torch.rand(b, m, generator=g) > 0.5
    mask[:, -1] = True  # every row attends somewhere (a chunk may still be fully masked)

    def split(x):
        c = x.shape[1]
        return (x[..., : h * dqk].reshape(b, c, h, dqk).transpose(1, 2),
                x[..., h * dqk:].reshape(b, c, h, dv).transpose(1, 2))

    def kv_fn(start, stop):
        return (*split(kv[:, start:stop]), mask[:, start:stop])

    k, v = split(kv)
    out = kernels.chunked_attention_core(q, m, kv_fn, chunk)
    assert rel(out, plain(q, k, v, mask[:, None, None, :])) < 1e-5


def _cross_attend(kv_channels=261, heads=1, qk=None, v=None):
    torch.manual_seed(0)
    block = CrossAttention(32, kv_channels, num_heads=heads, qk_channels=qk, v_channels=v, widening=2)
    return block.eval()


@pytest.mark.parametrize("heads,qk,v,residual", [(1, None, None, True), (4, 64, 32, False)])
def test_chunked_cross_attend_matches_module(heads, qk, v, residual):
    block = _cross_attend(heads=heads, qk=qk, v=v)
    block.use_query_residual = residual
    g = torch.Generator().manual_seed(3)
    q = torch.randn(2, 16, 32, generator=g)
    kv = torch.randn(2, 300, 261, generator=g)
    mask = torch.rand(2, 300, generator=g) > 0.2
    with torch.no_grad():
        for m in (None, mask):
            ref = block(q, kv, m)
            out = kernels.chunked_cross_attend(block, q, kv, m, chunk=64)
            assert rel(out, ref) < 1e-5


def test_chunked_cross_attend_bf16():
    block = _cross_attend()
    g = torch.Generator().manual_seed(4)
    q, kv = torch.randn(1, 16, 32, generator=g), torch.randn(1, 500, 261, generator=g)
    with torch.no_grad():
        ref = block(q, kv)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = kernels.chunked_cross_attend(block, q, kv, chunk=128)
    assert rel(out.float(), ref) < 1e-2


def test_multihead_attention_routes_through_policy():
    torch.manual_seed(0)
    mha = MultiHeadAttention(20, 261, num_heads=1).eval()
    g = torch.Generator().manual_seed(5)
    q, kv = torch.randn(2, 6, 20, generator=g), torch.randn(2, 40, 261, generator=g)
    with torch.no_grad():
        ref = mha(q, kv)
        with kernels.use_policy(kernels.AttentionPolicy(pad_head_dim="always")):
            padded = mha(q, kv)
    assert rel(padded, ref) < 1e-5


def _encoder(**overrides):
    from perceiver_core.config.encoders import PerceiverEncoderConfig
    from perceiver_core.model.encoders.perceiver import PerceiverEncoder

    cfg = dict(num_latents=8, latent_channels=32, num_blocks=2, self_attends_per_block=1, self_attend_heads=4,
               num_cross_attends=2)
    torch.manual_seed(0)
    return PerceiverEncoder(PerceiverEncoderConfig(**{**cfg, **overrides}), BuildContext(input_channels=261))


def test_encoder_chunked_inference_matches_plain():
    from perceiver_core.byte_array import ByteArray

    plain_enc = _encoder().eval()
    chunked = _encoder(cross_attend_chunk_keys=50).eval()
    chunked.load_state_dict(plain_enc.state_dict())  # same parameter names: weights load unchanged
    g = torch.Generator().manual_seed(6)
    x = ByteArray(torch.randn(2, 12 * 20, 261, generator=g), (12, 20))
    with torch.no_grad():
        assert rel(chunked(x).latents, plain_enc(x).latents) < 1e-5
    # with gradients the plain path is taken (chunking is an inference path)
    assert torch.equal(chunked(x).latents, plain_enc(x).latents)


def test_activation_checkpointing_same_loss_and_gradients():
    from perceiver_core.byte_array import ByteArray

    ref, ckpt = _encoder().train(), _encoder(activation_checkpointing=True, checkpoint_slice=2).train()
    ckpt.load_state_dict(ref.state_dict())
    x = ByteArray(torch.randn(5, 30, 261, generator=torch.Generator().manual_seed(7)), (30,))  # slices 2, 2, 1
    losses = []
    for enc in (ref, ckpt):
        loss = enc(x).latents.square().mean()
        loss.backward()
        losses.append(loss.detach())
    assert rel(losses[1], losses[0]) < 1e-6
    for (name, a), (_, b) in zip(ref.named_parameters(), ckpt.named_parameters()):
        assert torch.allclose(b.grad, a.grad, rtol=1e-4, atol=1e-7), name  # the k bias: ~0 exactly


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU; none is visible here")
@pytest.mark.parametrize("queries,keys,dim", [(512, 4096, 261), (128, 4096, 64), (512, 1024, 128)])
def test_gpu_kernels_match_plain_fp32(queries, keys, dim):
    torch.manual_seed(0)
    q = torch.randn(2, 1, queries, dim, device="cuda", requires_grad=True)
    k = torch.randn(2, 1, keys, dim, device="cuda", requires_grad=True)
    v = torch.randn(2, 1, keys, dim, device="cuda", requires_grad=True)
    ref = plain(q, k, v)
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 1e-2)):
        out = kernels.attention(q.to(dtype), k.to(dtype), v.to(dtype), training=True)
        assert rel(out.float(), ref) < tol
        out.float().sum().backward()  # the chosen backward runs


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 1e-2)])
def test_materialised_attention_matches_plain_forward_and_backward(dtype, tol):
    g = torch.Generator().manual_seed(11)
    q, k, v = (torch.randn(2, 1, n, 261, generator=g) for n in (16, 300, 300))
    mask = torch.rand(2, 1, 1, 300, generator=g) > 0.3
    mask[..., 0] = True
    for m in (None, mask):
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        ref = plain(*leaves, m)
        grad_out = torch.randn(ref.shape, generator=g, dtype=ref.dtype)
        ref_grads = torch.autograd.grad(ref, leaves, grad_out)
        fast_leaves = [t.to(dtype).requires_grad_() for t in (q, k, v)]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            out = kernels.materialised_attention(*fast_leaves, attn_mask=m)
        assert out.dtype == dtype and out.shape == (2, 1, 16, 261)
        assert rel(out, ref) < tol
        for got, want in zip(torch.autograd.grad(out, fast_leaves, grad_out.to(dtype)), ref_grads):
            assert got.dtype == dtype and rel(got, want) < 2 * tol


def test_materialised_attention_fully_masked_rows_are_zeros_like_sdpa():
    g = torch.Generator().manual_seed(12)
    q, k, v = (torch.randn(2, 1, n, 16, generator=g) for n in (4, 9, 9))
    mask = torch.rand(2, 1, 1, 9, generator=g) > 0.5
    mask[0] = False  # example 0 has no key to attend to
    mask[1, ..., 0] = True
    out = kernels.materialised_attention(q, k, v, attn_mask=mask)
    assert torch.equal(out[0], torch.zeros_like(out[0])) and not out.isnan().any()
    assert rel(out[1], plain(q[1:], k[1:], v[1:], mask[1:])[0]) < 1e-5


def test_wide_half_heads_on_cuda_take_the_materialised_path():
    p = kernels.AttentionPolicy()
    bf16 = torch.bfloat16
    assert kernels.materialises(p, device_type="cuda", dtype=bf16, head_dim=261)  # pads to 264 > 256
    assert not kernels.materialises(p, device_type="cuda", dtype=bf16, head_dim=256)  # flash takes it
    assert not kernels.materialises(p, device_type="cuda", dtype=torch.float32, head_dim=261)  # fp32: SDPA
    assert not kernels.materialises(p, device_type="cpu", dtype=bf16, head_dim=261)
    assert not kernels.materialises(p, device_type="cuda", dtype=bf16, head_dim=261, dropout_p=0.1)
    assert not kernels.materialises(p.with_(materialise_wide_heads=False), device_type="cuda", dtype=bf16,
                                    head_dim=261)
    # without autograd only within the inference budget (scores and probabilities are held at once)
    budget = p.materialise_inference_elements
    assert kernels.materialises(p, device_type="cuda", dtype=bf16, head_dim=261, grad=False, score_elements=budget)
    assert not kernels.materialises(p, device_type="cuda", dtype=bf16, head_dim=261, grad=False,
                                    score_elements=budget + 1)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU; none is visible here")
def test_gpu_materialised_cross_attend_matches_plain_fp32():
    torch.manual_seed(0)
    q, k, v = (torch.randn(4, 1, n, 261, device="cuda") for n in (512, 8192, 8192))
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    ref = plain(*leaves)
    grad_out = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, leaves, grad_out)
    fast = [t.bfloat16().requires_grad_() for t in (q, k, v)]
    calls = []
    real = kernels.materialised_attention

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    kernels.materialised_attention = spy
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = kernels.attention(*fast, training=True)
    finally:
        kernels.materialised_attention = real
    assert len(calls) == 1  # the policy routed the 261-channel head to the materialised path
    assert rel(out.float(), ref) < 1e-2
    for got, want in zip(torch.autograd.grad(out, fast, grad_out.bfloat16()), ref_grads):
        assert rel(got.float(), want) < 2e-2


@pytest.mark.parametrize("heads,qk,v,q_in,kv_in", [(1, 261, 261, 1024, 261), (4, 52, 28, 20, 13), (2, 16, 16, 24, 40)])
def test_padded_projections_are_exact_with_gradients(heads, qk, v, q_in, kv_in):
    """Weights padded per head and per input channel (the CUDA default) give the plain module's outputs and
    gradients for every parameter."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(q_in, kv_in, num_heads=heads, qk_channels=qk, v_channels=v)
    g = torch.Generator().manual_seed(9)
    q, kv = torch.randn(2, 6, q_in, generator=g), torch.randn(2, 40, kv_in, generator=g)
    mask = torch.rand(2, 40, generator=g) > 0.3
    mask[:, 0] = True
    results = []
    for policy in (kernels.AttentionPolicy(pad_head_dim="never"), kernels.AttentionPolicy(pad_head_dim="always")):
        mha.zero_grad()
        with kernels.use_policy(policy):
            out = mha(q, kv, mask)
        out.square().sum().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in mha.named_parameters()}))
    (ref, ref_grads), (out, grads) = results
    assert out.shape == ref.shape and rel(out, ref) < 1e-5
    for name, grad in grads.items():  # the k bias's gradient is ~0 in exact arithmetic: absolute tolerance too
        assert torch.allclose(grad, ref_grads[name], rtol=1e-4, atol=1e-6), name
    plan = kernels.projection_padding(kernels.AttentionPolicy(pad_head_dim="always"), "cpu", dqk=qk // heads,
                                      dv=v // heads, q_in=q_in, kv_in=kv_in)
    aligned = (qk // heads) % 8 == 0 and (v // heads) % 8 == 0 and q_in % 8 == 0 and kv_in % 8 == 0 and qk == v
    assert (plan is None) == aligned
