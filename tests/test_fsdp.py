"""FSDP2 (`train.parallel = "fsdp"`) with 2 gloo processes on the CPU: the model is really sharded, its checkpoint is
the gathered full model in the single-process format (`from_checkpoint` reads it in one process), a run killed and
resumed ends bit for bit where an uninterrupted one does, and FSDP2, DDP and one process follow the same loss curve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from perceiver_core import from_checkpoint, load_registry
from perceiver_core.errors import UserError

TINY = Path(__file__).parent / "tiny.toml"


def _worker(rank: int, world: int, folder: str, overrides: list[str]) -> None:
    """One of `world` processes: train tiny under fsdp, then record what the test checks (rank 0 writes it)."""
    from torch.distributed.tensor import DTensor

    from perceiver_core.runtime import distributed as rt_dist
    from perceiver_core.runtime.distributed import DistInfo
    from perceiver_core.runtime.fsdp import full_model_state
    from perceiver_core.runtime.training import Trainer

    torch.set_num_threads(1)
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", store=dist.FileStore(os.path.join(folder, "store"), world), rank=rank,
                           world_size=world)
    rt_dist._HOST_GROUP = None
    try:
        spec = load_registry([TINY], include_default=False).resolve("tiny", ["train.parallel=fsdp", *overrides])
        trainer = Trainer(spec, Path(folder) / "run", progress=False)
        params = dict(trainer.model.named_parameters())
        local = sum(p.to_local().numel() for p in params.values() if isinstance(p, DTensor))
        sharded = all(isinstance(p, DTensor) for p in params.values())
        trainer.run()
        gathered = full_model_state(trainer.model)  # collective: after the run, every process
        moments = {k: v.to_local().clone() for k, v in trainer.optimizer.state[params["encoder.latents"]].items()
                   if isinstance(v, DTensor)}
        save_file(moments, os.path.join(folder, f"moments.{rank}.safetensors"))
        # the same run stopped after its first step, then resumed by new trainers in these processes
        Trainer(spec, Path(folder) / "part", progress=False).run(stop_after=1)
        Trainer(spec, Path(folder) / "part", progress=False, resuming=True).run(resume=Path(folder) / "part")
        if rank == 0:
            save_file({k: v.clone() for k, v in gathered.items()}, os.path.join(folder, "gathered.safetensors"))
            total = sum(p.numel() for p in params.values())
            Path(folder, "shards.json").write_text(json.dumps({"sharded": sharded, "local": local, "total": total}))
    finally:
        rt_dist.shutdown(DistInfo(rank, world))


def test_fsdp_shards_and_checkpoints_the_gathered_full_model(tmp_path):
    """2 processes, 2 steps: every parameter is a DTensor holding about half the model on each process; the run's
    model.safetensors equals the full state gathered from the shards, loads with `from_checkpoint` in this one
    process, its optimizer moments are the two processes' shards put back together, best/ (validation) is written
    the same way, the run stopped after step 1 and resumed ends bit for bit at the same weights (dropout on: each
    process's RNG comes back), and one process refuses to resume the run."""
    mp.spawn(_worker, args=(2, str(tmp_path), ["train.max_steps=2", "train.val_fraction=0.05"]), nprocs=2,
             join=True)
    shards = json.loads((tmp_path / "shards.json").read_text())
    assert shards["sharded"], "fully_shard left plain parameters"
    assert shards["local"] <= shards["total"] // 2 + 1000, shards  # 1/2 each (dim 0 rounded up per tensor)
    gathered = load_file(tmp_path / "gathered.safetensors")
    model = from_checkpoint(tmp_path / "run")
    own = model.state_dict()
    assert own.keys() == gathered.keys()
    for key, value in gathered.items():
        assert torch.equal(own[key], value), key
    state = load_file(tmp_path / "run" / "trainer_state.safetensors")
    # the trainer state is the unsharded format: moments of full shape, by parameter index
    latents = torch.cat([load_file(tmp_path / f"moments.{r}.safetensors")["exp_avg"] for r in (0, 1)])
    found = [k for k, v in state.items() if k.endswith(".exp_avg") and v.shape == latents.shape
             and torch.equal(v, latents)]
    assert found, "the saved moments are not the shards put together"
    from perceiver_core.runtime.optim import param_groups

    by_id = {id(p): name for name, p in model.named_parameters()}
    names = [by_id[id(p)] for group in param_groups(model, 0.01) for p in group["params"]]  # the optimizer's order
    for key, value in state.items():  # optim.INDEX.exp_avg: the full shape of parameter INDEX
        if key.endswith(".exp_avg"):
            assert value.shape == own[names[int(key.split(".")[1])]].shape, key
    checkpoint = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert set(checkpoint["parts"]) == {"model.safetensors", "trainer_state.safetensors"} and checkpoint["step"] == 2
    resumed = load_file(tmp_path / "part" / "model.safetensors")  # stopped at step 1, resumed: bit for bit
    assert resumed.keys() == gathered.keys() and all(torch.equal(resumed[k], gathered[k]) for k in gathered)
    best = from_checkpoint(tmp_path / "run" / "best")  # kept from the validation split, gathered the same way
    assert best.state_dict().keys() == own.keys()
    # the run resumes only with the number of processes that trained it (their data positions are saved)
    from perceiver_core.runtime.training import Trainer

    spec = load_registry([TINY], include_default=False).resolve("tiny", ["train.parallel=fsdp", "train.max_steps=4",
                                                                         "train.val_fraction=0.05"])
    with pytest.raises(UserError, match=r"trained by 2 process\(es\), this one has 1; resume it with torchrun "
                                        r"--nproc-per-node 2"):
        Trainer(spec, tmp_path / "run", progress=False, resuming=True).run(resume=tmp_path / "run")


def test_fsdp_refuses_what_it_does_not_support_in_one_line():
    from perceiver_core.runtime.fsdp import check_supported

    spec = load_registry([TINY], include_default=False).resolve(
        "tiny", ["train.parallel=fsdp", "train.ema_decay=0.99", "train.compile=true",
                 "encoder.cross_attend_train_chunk_keys=64", "encoder.dropout=0"])

    with pytest.raises(UserError) as info:
        check_supported(spec.train, torch.float16, spec)  # fp16 autocast
    message = str(info.value)
    assert "\n" not in message
    for what in ("train.ema_decay", "train.compile", "fp16", "encoder.cross_attend_train_chunk_keys",
                 "train.parallel = 'ddp'"):
        assert what in message


def test_fsdp_with_one_process_trains_whole_and_says_so(tmp_path, capsys):
    from torch.distributed.tensor import DTensor

    from perceiver_core.runtime.training import Trainer

    spec = load_registry([TINY], include_default=False).resolve("tiny", ["train.parallel=fsdp", "train.max_steps=1"])
    trainer = Trainer(spec, tmp_path / "run", progress=False)
    assert not trainer.fsdp and not any(isinstance(p, DTensor) for p in trainer.model.parameters())
    assert "train.parallel = 'fsdp' with one process: nothing to shard" in capsys.readouterr().err


# -- 2 processes under torchrun, through the CLI ------------------------------------------------------------------
def _train(tmp_path, out: str, *extra: str, processes: int = 2, fault: str | None = None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PERCEIVER_FAULT", None)
    if fault:
        env["PERCEIVER_FAULT"] = fault
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes)] \
        if processes > 1 else [sys.executable]
    if "--resume" in extra:
        args = ["-m", "perceiver_core", "train", "--no-progress", *extra]
    else:
        args = ["-m", "perceiver_core", "train", "tiny", "--registry", str(TINY), "--no-progress", "--max-steps", "6",
                "--set", "train.log_every=1", "--out", str(tmp_path / out), *extra]
    return subprocess.run(launch + args, capture_output=True, text=True, timeout=600, env=env)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def _noise_only(key: str) -> bool:
    """A key projection's bias: softmax is invariant to adding q.b to every logit of a row, so its true gradient is
    zero and what it gets is rounding noise, which Adam and LAMB normalise into updates of about lr whose sign the
    order of the gradient reduction decides. It is left out of weight comparisons between DDP and FSDP2."""
    return key.endswith("attention.k_proj.bias")


def _train_losses(folder: Path) -> list[tuple[int, float]]:
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in lines if r["split"] == "train"]


@pytest.mark.slow
def test_fsdp_killed_and_resumed_ends_bit_identical(tmp_path):
    """FSDP2, dropout on: stopped at step 3 (a checkpoint), resumed and killed (exit 137, as kill -9) at step 5 by
    the fault hook, resumed and killed inside the step-6 save (between its two parts), resumed again: the weights and
    the optimizer state equal an uninterrupted FSDP2 run's bit for bit, and metrics.jsonl reads as one run."""
    fsdp = ("--set", "train.parallel=fsdp")
    full = _train(tmp_path, "full", *fsdp)
    assert full.returncode == 0, full.stderr[-3000:]
    part = _train(tmp_path, "part", *fsdp, "--stop-after", "3")
    assert part.returncode == 0, part.stderr[-3000:]
    killed = _train(tmp_path, "part", "--resume", str(tmp_path / "part"), fault="after-step@2")
    assert killed.returncode != 0
    assert json.loads((tmp_path / "part" / "checkpoint.json").read_text())["step"] == 3
    # killed again inside the last save, between the renames of its two parts (rank 0 writes; rank 1 waits)
    killed = _train(tmp_path, "part", "--resume", str(tmp_path / "part"), fault="after-model-rename")
    assert killed.returncode != 0
    resumed = _train(tmp_path, "part", "--resume", str(tmp_path / "part"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for name in ("model.safetensors", "trainer_state.safetensors"):
        a, b = load_file(tmp_path / "full" / name), load_file(tmp_path / "part" / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    assert _train_losses(tmp_path / "part") == _train_losses(tmp_path / "full")
    assert [s for s, _ in _train_losses(tmp_path / "part")] == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_fsdp_ddp_and_one_process_follow_the_same_loss_curve(tmp_path):
    """Dropout off, the same global batches: the logged training loss (the global batch's under torchrun) of
    FSDP2, DDP and one process agree to float rounding (only the order of the gradient reduction differs), and
    FSDP2's final weights equal DDP's to 1e-5 (but the key biases: `_noise_only`); the test metrics of all three agree
    to 1e-5."""
    no_dropout = ("--set", "encoder.dropout=0")
    runs = {"one": _train(tmp_path, "one", *no_dropout, processes=1),
            "ddp": _train(tmp_path, "ddp", *no_dropout),
            "fsdp": _train(tmp_path, "fsdp", *no_dropout, "--set", "train.parallel=fsdp")}
    for name, run in runs.items():
        assert run.returncode == 0, (name, run.stderr[-3000:])
    curves = {name: _train_losses(tmp_path / name) for name in runs}
    assert [s for s, _ in curves["one"]] == [1, 2, 3, 4, 5, 6]
    for name in ("ddp", "fsdp"):
        assert [s for s, _ in curves[name]] == [1, 2, 3, 4, 5, 6]
        for (_, a), (_, b) in zip(curves["one"], curves[name]):
            assert a == pytest.approx(b, abs=1e-5), (name, curves)
    ddp, fsdp = _weights(tmp_path / "ddp"), _weights(tmp_path / "fsdp")
    for key in ddp:
        if not _noise_only(key):
            torch.testing.assert_close(fsdp[key], ddp[key], rtol=0, atol=1e-5)
    tests = {name: [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()][-1]
             for name in runs}
    for name in ("ddp", "fsdp"):
        assert tests[name]["split"] == "test" and tests[name]["loss"] == pytest.approx(tests["one"]["loss"], abs=1e-5)


# -- host tensors never through the device group --------------------------------------------------------------------
_COLLECTIVES = ("all_gather", "all_gather_object", "all_reduce", "broadcast", "broadcast_object_list", "gather",
                "gather_object", "scatter", "scatter_object_list", "reduce", "all_to_all", "reduce_scatter",
                "all_gather_into_tensor", "reduce_scatter_tensor")


def test_the_fsdp_checkpoint_path_sends_no_cpu_tensor_through_the_device_group(tmp_path, monkeypatch):
    """A one-process group stands in for several ranks whose device group is nccl: every collective that the fsdp
    save calls through torch.distributed (ours, and torch.distributed.checkpoint's) is recorded; none may carry a
    CPU tensor through the default group. (DTensor's own all-gathers run on the mesh's device: the device group
    moves device tensors, which is what it is for.)"""
    import types

    from perceiver_core.runtime import distributed as rt_dist
    from perceiver_core.runtime.distributed import DistInfo
    from perceiver_core.runtime.fsdp import shard_model
    from perceiver_core.runtime.optim import make_optimizer
    from perceiver_core.runtime.training import Trainer

    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    rt_dist._HOST_GROUP = None
    calls: list[tuple[str, object, set[str]]] = []
    real_backend = dist.get_backend
    try:
        spec = load_registry([TINY], include_default=False).resolve("tiny", ["train.max_steps=1"])
        trainer = Trainer(spec, tmp_path / "run", progress=False)
        shard_model(trainer.model, torch.device("cpu"), 1)
        trainer.optimizer = make_optimizer(trainer.model, "adamw", 1e-3, 0.01, (0.9, 0.999), torch.device("cpu"))
        batch = next(iter(trainer.loader))
        trainer._begin_step()
        trainer._backward(batch, 1)
        trainer._optimizer_step()  # moments to gather
        trainer.dist = types.SimpleNamespace(rank=0, world_size=1, local_rank=0, is_main=True, enabled=True)
        trainer.fsdp = True

        def claims_nccl(group=None):
            return "nccl" if group is None or group is dist.group.WORLD else real_backend(group)

        def recorded(name, real):
            def wrapped(*args, **kwargs):
                devices = {t.device.type for value in [*args, *kwargs.values()]
                           for t in (value if isinstance(value, (list, tuple)) else [value])
                           if isinstance(t, torch.Tensor)}
                group = kwargs.get("group")
                calls.append((name, dist.group.WORLD if group is None else group, devices))
                return real(*args, **kwargs)
            return wrapped

        monkeypatch.setattr(dist, "get_backend", claims_nccl)
        for name in _COLLECTIVES:
            if hasattr(dist, name):
                monkeypatch.setattr(dist, name, recorded(name, getattr(dist, name)))
        trainer.save({})
        monkeypatch.undo()
        assert any(name == "all_gather" for name, _, _ in calls), calls  # the RNG states, at least
        for name, group, devices in calls:
            if "cpu" in devices:
                assert group is not dist.group.WORLD, f"{name} sent a CPU tensor through the (nccl) device group"
                assert real_backend(group) == "gloo"
        state = load_file(tmp_path / "run" / "trainer_state.safetensors")
        assert any(key.endswith(".exp_avg") for key in state)
    finally:
        monkeypatch.undo()
        rt_dist.shutdown(DistInfo(0, 2))


def test_torchrun_without_torch_distributed_is_one_line(monkeypatch):
    from perceiver_core.runtime import distributed as rt_dist

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(rt_dist.dist, "is_available", lambda: False)
    with pytest.raises(UserError, match=r"^WORLD_SIZE=2 \(torchrun\) but this torch .* has no torch.distributed; "
                                        r"train in one process"):
        rt_dist.init_distributed("gloo")


def test_fsdp_without_fully_shard_is_one_line(monkeypatch):
    import builtins

    from perceiver_core.runtime import fsdp

    real_import = builtins.__import__

    def no_fsdp(name, *args, **kwargs):
        if name == "torch.distributed.fsdp":
            raise ImportError("cannot import name 'fully_shard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fsdp)
    with pytest.raises(UserError, match=r"train.parallel = 'fsdp' needs torch with torch.distributed and FSDP2 "
                                        r"\(fully_shard\).*use train.parallel = 'ddp'$"):
        fsdp.shard_model(torch.nn.Linear(2, 2), torch.device("cpu"), 2)


@pytest.mark.slow
@pytest.mark.parametrize("pipeline,extra", [
    ("tiny-perceiver", ()),  # repeated cross-attends and a latent block shared by 2 layers (gathered at each use), LAMB
    ("hip-tiny", ()),  # HiP's blocks and masked auto-encoding
    ("tiny", ("--set", "train.grad_accumulation=2")),  # gradients reduce-scattered after every micro-batch
    ("tiny", ("--set", "encoder.activation_checkpointing=true")),  # sharded blocks recomputed in the backward
], ids=["shared-blocks-lamb", "hip", "grad-accumulation", "activation-checkpointing"])
def test_fsdp_matches_ddp(tmp_path, pipeline, extra):
    """FSDP2 and DDP, dropout off where the pipeline has it, 3 steps: the same loss curve to float rounding and
    final weights equal to 1e-4 (Adam divides by the root of tiny second moments, which magnifies rounding), but
    the key biases, whose gradient is rounding noise only (`_noise_only`)."""
    registry = ("--registry", str(TINY)) if pipeline.startswith("tiny") else ()
    common = ["-m", "perceiver_core", "train", pipeline, *registry, "--no-progress", "--max-steps", "3",
              "--set", "train.log_every=1", *extra]
    if pipeline.startswith("tiny"):
        common += ["--set", "encoder.dropout=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PERCEIVER_FAULT", None)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    for parallel in ("ddp", "fsdp"):
        out = ["--set", f"train.parallel={parallel}", "--out", str(tmp_path / parallel)]
        run = subprocess.run([*launch, *common, *out], capture_output=True, text=True, timeout=600, env=env)
        assert run.returncode == 0, (parallel, run.stderr[-3000:])
    ddp, fsdp = _train_losses(tmp_path / "ddp"), _train_losses(tmp_path / "fsdp")
    assert [s for s, _ in ddp] == [s for s, _ in fsdp] == [1, 2, 3]
    for (_, a), (_, b) in zip(ddp, fsdp):
        assert a == pytest.approx(b, abs=1e-5), (ddp, fsdp)
    a, b = _weights(tmp_path / "ddp"), _weights(tmp_path / "fsdp")
    assert a.keys() == b.keys()
    compared = [key for key in a if not _noise_only(key)]
    assert len(compared) > len(a) // 2
    for key in compared:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-4)


@pytest.mark.parametrize("fails", [False, True], ids=["finished", "raised"])
def test_train_frees_the_model_before_leaving_the_process_group(monkeypatch, fails):
    """The model and optimizer (and the collective handles FSDP2 keeps in them) are freed before the process group
    is destroyed, not by the garbage collector at interpreter exit, where a gloo thread freeing a tensor aborted a
    worker (SIGABRT). A finished run waits for every process before leaving; a failed one does not (the others may
    never arrive)."""
    import weakref

    from perceiver_core.runtime import training
    from perceiver_core.runtime.distributed import DistInfo

    class Holder:  # a reference cycle, as FSDP2's modules and hooks form: only the collector frees it
        def __init__(self):
            self.me = self

    class FakeTrainer:
        init_report = None

        def __init__(self, *args, **kwargs):
            self.dist = DistInfo(0, 2)
            self.model = Holder()
            seen["model"] = weakref.ref(self.model)

        def run(self, **kwargs):
            if fails:
                raise RuntimeError("a step failed")
            return {}

    seen: dict = {}

    def shutdown(info, wait=False):
        seen["alive"] = seen["model"]() is not None
        seen["wait"] = wait

    monkeypatch.setattr(training, "Trainer", FakeTrainer)
    monkeypatch.setattr(training, "shutdown", shutdown)
    if fails:
        with pytest.raises(RuntimeError):
            training.train(None, "unused")
    else:
        training.train(None, "unused")
    assert seen["wait"] is not fails
    if not fails:  # (after an error the traceback's frames hold the trainer until the error is handled)
        assert seen["alive"] is False
