"""Multi-process checkpointing: host (CPU) tensors never go through the device process group (nccl cannot carry
them: "No backend type associated with device type cpu"), and 2 gloo processes checkpoint and resume exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from perceiver_core import load_registry
from perceiver_core.runtime import distributed as rt_dist
from perceiver_core.runtime.distributed import DistInfo

TINY = Path(__file__).parent / "tiny.toml"
COLLECTIVES = ("all_gather", "all_gather_object", "all_reduce", "broadcast", "broadcast_object_list", "gather",
               "gather_object", "scatter", "reduce", "all_to_all", "reduce_scatter")


class _Recorder:
    """torch.distributed as the code sees it, with a default group that claims to be nccl and every collective
    recorded (group, device of each tensor) before it runs for real on the gloo group underneath."""

    def __init__(self):
        self.calls: list[tuple[str, object, set[str]]] = []

    def __getattr__(self, name):
        real = getattr(dist, name)
        if name not in COLLECTIVES:
            return real

        def wrapped(*args, **kwargs):
            devices = set()
            for value in [*args, *kwargs.values()]:
                for t in (value if isinstance(value, (list, tuple)) else [value]):
                    if isinstance(t, torch.Tensor):
                        devices.add(t.device.type)
            group = kwargs.get("group")
            self.calls.append((name, dist.group.WORLD if group is None else group, devices))
            return real(*args, **kwargs)
        return wrapped

    @staticmethod
    def get_backend(group=None):
        if group is None or group is dist.group.WORLD:
            return "nccl"  # the device group, as under torchrun on GPUs
        return dist.get_backend(group)


@pytest.fixture
def one_rank_group(tmp_path):
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    rt_dist._HOST_GROUP = None
    yield
    rt_dist.shutdown(DistInfo(0, 2))  # enabled: destroys the groups
    assert not dist.is_initialized()


def test_the_checkpoint_path_sends_no_cpu_tensor_through_the_device_group(tmp_path, monkeypatch, one_rank_group):
    from perceiver_core.runtime.training import Trainer

    recorder = _Recorder()
    monkeypatch.setattr(rt_dist, "dist", recorder)
    spec = load_registry([TINY], include_default=False).resolve("tiny", ["train.max_steps=1"])
    trainer = Trainer(spec, tmp_path / "run", progress=False)
    # a one-process group stands in for several ranks: DistInfo says distributed, so every collective runs
    trainer.dist = types.SimpleNamespace(rank=0, world_size=1, local_rank=0, is_main=True, enabled=True)
    trainer.save({})
    rt_dist.barrier(trainer.dist)
    assert any(name == "all_gather" for name, _, _ in recorder.calls), recorder.calls  # the RNG states
    for name, group, devices in recorder.calls:
        if "cpu" in devices:
            assert group is not dist.group.WORLD, f"{name} sent a CPU tensor through the (nccl) device group"
            assert dist.get_backend(group) == "gloo"
    assert (tmp_path / "run" / "trainer_state.safetensors").is_file()


def test_host_group_is_the_default_group_under_gloo(one_rank_group):
    assert rt_dist.host_group() is dist.group.WORLD  # no second group when the default one moves CPU tensors


def _torchrun(tmp_path, out: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "perceiver_core", "train", "tiny", "--registry", str(TINY), "--no-progress",
           "--set", "encoder.dropout=0.1", "--max-steps", "6", "--out", str(tmp_path / out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_two_gloo_processes_checkpoint_and_resume_exactly(tmp_path):
    """2 processes: interrupted after step 3 (a checkpoint with both ranks' RNG states), resumed to step 6, the
    weights equal an uninterrupted 2-process run's bit for bit (dropout on: the per-rank RNG must be restored)."""
    full = _torchrun(tmp_path, "full")
    assert full.returncode == 0, full.stderr[-3000:]
    part = _torchrun(tmp_path, "part", "--stop-after", "3")
    assert part.returncode == 0, part.stderr[-3000:]
    state = load_file(tmp_path / "part" / "trainer_state.safetensors")
    assert {"rng.torch.0", "rng.torch.1"} <= state.keys()
    assert not torch.equal(state["rng.torch.0"], state["rng.torch.1"])
    resumed = _torchrun(tmp_path, "part", "--resume", str(tmp_path / "part"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "part" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.slow  # two processes importing torch under torchrun: ~10 s
def test_a_user_error_under_torchrun_is_one_line_and_names_it_in_torchruns_report(tmp_path):
    """Both processes meet the same user error: the line is printed once (by rank 0), every process exits 2, and
    torchrun's own failure report (which it prints after any process fails, and exits 1) shows the line as each
    process's cause instead of "To enable traceback see ..."."""
    result = _torchrun(tmp_path, "run", "--set", "data.batch_size=33")
    line = ("perceiver: error: data.batch_size (33) must be divisible by the number of processes (2): it is the "
            "global batch, split evenly")
    assert result.returncode != 0, result.stderr  # torchrun fails (its own code: 1)
    ours = [text for text in result.stderr.splitlines() if text.startswith("perceiver: error:")]
    assert ours == [line], result.stderr
    assert result.stderr.index(line) < result.stderr.index("ChildFailedError")  # ours first, then torchrun's
    assert "exitcode  : 2" in result.stderr and f"traceback : {line}" in result.stderr
    assert result.stderr.count("Traceback (most recent call last)") == 1  # torchrun's own, none of ours
