"""Backend selection with the three first-party backend plugins: priorities, "auto", explicit requests."""

from __future__ import annotations

import pytest
import torch

from perceiver_core.errors import BackendError
from perceiver_core.interfaces import Backend
from perceiver_core.model.layers import kernels
from perceiver_core.runtime.backends import list_backends, select_backend

perceiver_cpu = pytest.importorskip("perceiver_cpu.plugin")
perceiver_cuda = pytest.importorskip("perceiver_cuda.plugin")
perceiver_mps = pytest.importorskip("perceiver_mps.plugin")


@pytest.fixture
def all_backends(plugin_manager, register_plugin):
    for module, name in ((perceiver_cpu, "cpu"), (perceiver_cuda, "cuda"), (perceiver_mps, "mps")):
        register_plugin(module, name=name, distribution=f"perceiver-{name}", version="0.1.0")
    return plugin_manager


def test_priorities_order_cuda_mps_cpu(all_backends):
    rows = list_backends(all_backends)
    assert [r["name"] for r in rows] == ["cuda", "mps", "cpu"]
    assert all(r["reason"] for r in rows)


def test_auto_picks_the_best_available(all_backends):
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else "cpu")
    previous = kernels.get_policy()
    try:
        assert select_backend("auto", all_backends).name == expected
    finally:
        kernels.set_policy(previous)


def test_auto_falls_back_when_better_ones_are_unavailable(all_backends, monkeypatch):
    from perceiver_cuda.backend import CudaBackend
    from perceiver_mps.backend import MpsBackend

    monkeypatch.setattr(CudaBackend, "available", lambda self: (False, "no GPU (test)"))
    monkeypatch.setattr(MpsBackend, "available", lambda self: (False, "not a Mac (test)"))
    assert select_backend("auto", all_backends).name == "cpu"


def test_auto_with_nothing_available_lists_every_reason(all_backends, monkeypatch):
    from perceiver_cpu.backend import CpuBackend
    from perceiver_cuda.backend import CudaBackend
    from perceiver_mps.backend import MpsBackend

    for cls, why in ((CudaBackend, "no GPU"), (MpsBackend, "not a Mac"), (CpuBackend, "cpu off")):
        monkeypatch.setattr(cls, "available", lambda self, why=why: (False, why))
    with pytest.raises(BackendError) as info:
        select_backend("auto", all_backends)
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in ("cuda: no GPU", "mps: not a Mac", "cpu: cpu off"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where no GPU is present")
def test_explicit_unavailable_backend_is_one_line(all_backends):
    for name in ("cuda", "mps"):
        with pytest.raises(BackendError) as info:
            select_backend(name, all_backends)
        assert "\n" not in str(info.value) and f"backend {name!r} is installed but not available" in str(info.value)


def test_backend_defaults_of_the_interface():
    class Minimal(Backend):
        name = "minimal"

        def available(self):
            return True, "yes"

        def device(self):
            return torch.device("cpu")

    b = Minimal()
    assert b.compile_options() == {} and b.memory_stats() == {} and b.pin_memory() is False
    assert isinstance(b.attention_policy(), kernels.AttentionPolicy)
    b.reset_peak_memory()
    b.synchronize()


def test_cli_backends_lists_all_three(capsys):
    from perceiver_core.commands.cli import main

    assert main(["backends", "--json"]) == 0
    import json

    names = [r["name"] for r in json.loads(capsys.readouterr().out)]
    assert names[:3] == ["cuda", "mps", "cpu"]
