"""The MPS backend's policies; what needs a Mac is skipped elsewhere, with the reason."""

from __future__ import annotations

import sys

import pytest
import torch
from perceiver_mps import plugin
from perceiver_mps.backend import MpsBackend

from perceiver_core import select_backend
from perceiver_core.errors import BackendError

HAS_MPS = sys.platform == "darwin" and torch.backends.mps.is_available()


def test_registers_between_cuda_and_cpu(plugin_manager, register_plugin):
    report = register_plugin(plugin, name="mps", distribution="perceiver-mps")
    assert report.status == "ok" and report.backends == ["mps"]
    spec = plugin_manager.registry.backends["mps"]
    assert spec.priority == 50 and isinstance(spec.factory, str)
    assert spec.create().distributed_backend == "gloo"


def test_availability_says_why():
    ok, reason = MpsBackend().available()
    assert ok == HAS_MPS and reason
    if sys.platform != "darwin":
        assert "macOS" in reason and sys.platform in reason


@pytest.mark.skipif(HAS_MPS, reason="checks the error where MPS is absent")
def test_asking_for_mps_where_absent_is_one_line_error(plugin_manager, register_plugin):
    register_plugin(plugin, name="mps", distribution="perceiver-mps")
    with pytest.raises(BackendError) as info:
        select_backend("mps", plugin_manager)
    assert "\n" not in str(info.value) and "not available here" in str(info.value)


def test_dtype_and_other_policies():
    backend = MpsBackend()
    assert backend.autocast_dtype("auto") is torch.float16 and backend.autocast_dtype("fp16") is torch.float16
    assert backend.autocast_dtype("bf16") is torch.bfloat16 and backend.autocast_dtype("fp32") is None
    assert backend.should_compile(True) is False and backend.pin_memory() is False
    assert backend.attention_policy().pad_head_dim == "never"
    assert backend.device().type == "mps"
    if not HAS_MPS:
        assert backend.memory_stats() == {}
        backend.synchronize()  # a no-op, not an error


@pytest.mark.skipif(not HAS_MPS, reason="needs an Apple silicon Mac with MPS")
def test_forward_on_mps():
    backend = MpsBackend()
    backend.setup()
    x = torch.randn(2, 4, 8, 16, device=backend.device())
    out = torch.nn.functional.scaled_dot_product_attention(x, x, x)
    backend.synchronize()
    assert out.shape == x.shape and backend.memory_stats()["allocated_bytes"] > 0
