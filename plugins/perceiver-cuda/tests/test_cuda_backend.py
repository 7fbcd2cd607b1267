"""The CUDA backend's policies; what needs a GPU is marked `gpu` and skipped, with the reason, without one."""

from __future__ import annotations

import pytest
import torch
from perceiver_cuda import plugin
from perceiver_cuda.backend import CudaBackend

from perceiver_core import select_backend
from perceiver_core.errors import BackendError
from perceiver_core.model.layers import kernels

HAS_GPU = torch.cuda.is_available()


def test_registers_with_priority_above_mps_and_cpu(plugin_manager, register_plugin):
    report = register_plugin(plugin, name="cuda", distribution="perceiver-cuda")
    assert report.status == "ok" and report.backends == ["cuda"]
    spec = plugin_manager.registry.backends["cuda"]
    assert spec.priority == 100 and isinstance(spec.factory, str)  # by reference: listing imports no torch
    assert spec.create().distributed_backend == "nccl"


def test_availability_never_raises_and_says_why():
    ok, reason = CudaBackend().available()
    assert ok == HAS_GPU and reason
    if not HAS_GPU:
        assert "CUDA" in reason


@pytest.mark.skipif(HAS_GPU, reason="checks the error where no GPU is present")
def test_asking_for_cuda_without_gpu_is_one_line_error(plugin_manager, register_plugin):
    register_plugin(plugin, name="cuda", distribution="perceiver-cuda")
    with pytest.raises(BackendError) as info:
        select_backend("cuda", plugin_manager)
    message = str(info.value)
    assert "\n" not in message and "not available here" in message and "CUDA" in message


def test_probe_failure_is_reported_not_raised(monkeypatch):
    def boom():
        raise RuntimeError("driver exploded")
    monkeypatch.setattr(torch.backends.cuda, "is_built", boom)
    ok, reason = CudaBackend().available()
    assert not ok and "driver exploded" in reason


def test_dtype_policy(monkeypatch):
    backend = CudaBackend()
    assert backend.autocast_dtype("fp32") is None and backend.autocast_dtype("fp16") is torch.float16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert backend.autocast_dtype("auto") is torch.bfloat16 and backend.autocast_dtype("bf16") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert backend.autocast_dtype("auto") is None  # fp32 rather than unscaled fp16
    with pytest.raises(ValueError, match="bf16"):
        backend.autocast_dtype("bf16")


def test_policies_without_a_gpu():
    backend = CudaBackend()
    policy = backend.attention_policy()
    assert policy.pad_head_dim == "auto" and policy.select_sdpa_backend
    assert backend.pin_memory() is True and backend.compile_options() == {"dynamic": False}
    assert backend.device().type == "cuda"
    if not HAS_GPU:
        assert backend.memory_stats() == {}
        backend.synchronize()
        backend.reset_peak_memory()


def test_local_rank_picks_the_device(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert CudaBackend().device() == torch.device("cuda", 3)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU; none is visible here")
def test_setup_memory_and_padded_attention_on_gpu():
    backend = CudaBackend()
    previous = kernels.get_policy()
    try:
        backend.setup()
        backend.reset_peak_memory()
        torch.manual_seed(0)
        q, k, v = (torch.randn(2, 1, 512, 261, device="cuda") for _ in range(3))
        ref = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = kernels.attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
        backend.synchronize()
        assert ((out.float() - ref).norm() / ref.norm()).item() < 1e-2
        assert backend.memory_stats()["peak_allocated_bytes"] > 0
    finally:
        kernels.set_policy(previous)
