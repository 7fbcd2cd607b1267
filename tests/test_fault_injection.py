"""Fault injection on the save path: a run killed (exit 137, no cleanup, as kill -9) at any point of a checkpoint,
then `train --resume`, ends with the very weights and trainer state of an uninterrupted run; a folder whose parts
come from two saves is refused in one line; a full disk during a save is one line and keeps the previous checkpoint.

The kill points are `PERCEIVER_FAULT` (perceiver_core/runtime/faults.py). The tiny pipeline with 500-example
batches has 3 steps an epoch, so a 6-step run saves at steps 3 and 6; `POINT@2` is the second save (a previous
unit exists), `POINT@1` the first (none does). Three points always run (between the two parts; before the commit;
after the commit with no part renamed yet), the rest are slow.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
TINY = Path(__file__).parent / "tiny.toml"
COMMON = ["--no-progress", "--set", "data.batch_size=500", "--set", "train.max_steps=6"]
ENV = {"OMP_NUM_THREADS": "1"}  # the same thread count in every run: bit-identical sums
PARTS = ("model.safetensors", "trainer_state.safetensors")


def run_cli(*args: str, env: dict, preexec_fn=None) -> subprocess.CompletedProcess:
    """`perceiver ARGS` in a fresh interpreter (a kill must not take the test process with it)."""
    return subprocess.run([sys.executable, "-m", "perceiver_core", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, timeout=600, preexec_fn=preexec_fn)


def _train(out: Path, *extra: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**ENV, **({"PERCEIVER_FAULT": fault} if fault else {})}
    return run_cli("train", "tiny", "--registry", str(TINY), "--out", str(out), *COMMON, *extra, env=env)


def _resume(out: Path) -> subprocess.CompletedProcess:
    return run_cli("train", "--resume", str(out), "--no-progress", env=ENV)


def _assert_same_run(a: Path, b: Path) -> None:
    for name in PARTS:
        x, y = load_file(a / name), load_file(b / name)
        assert x.keys() == y.keys(), name
        for key in x:
            assert torch.equal(x[key], y[key]), f"{name}: {key}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "full"
    result = _train(out)
    assert result.returncode == 0, result.stderr
    return out


ALWAYS = ["after-model-rename@2", "after-trainer_state-write@2", "after-manifest@1"]
SLOW = ["before-save@1", "after-model-write@2", "after-trainer_state-rename@1", "after-save@1", "after-step@2",
        "after-step@4", "after-model-rename@1", "after-manifest@2"]


@pytest.mark.parametrize("point", ALWAYS + [pytest.param(p, marks=pytest.mark.slow) for p in SLOW])
def test_a_run_killed_in_the_save_path_resumes_exactly(reference, tmp_path, point):
    out = tmp_path / "run"
    killed = _train(out, fault=point)
    assert killed.returncode == 137, (point, killed.returncode, killed.stderr[-2000:])
    if (out / "checkpoint.json").exists():  # the run folder reads as its last committed unit, before any resume
        from perceiver_core.runtime.checkpoint import inspect_checkpoint

        assert inspect_checkpoint(out)["step"] == json.loads((out / "checkpoint.json").read_text())["step"]
    resumed = _resume(out)
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    _assert_same_run(reference, out)
    manifest = json.loads((out / "checkpoint.json").read_text())
    assert manifest["step"] == 6
    from perceiver_core.runtime.checkpoint import header_metadata

    for name in PARTS:  # both parts of the last unit are in place, no staged file is left behind
        meta = header_metadata(out / name)
        assert meta["unit"] == manifest["unit"] and meta["step"] == "6", name
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "train"]
    assert steps == sorted(set(steps)), steps  # metrics read as one run


def test_parts_of_two_saves_are_refused_naming_both_steps(reference, tmp_path):
    part = tmp_path / "part"
    assert _train(part, "--stop-after", "3").returncode == 0
    mixed = tmp_path / "mixed"
    shutil.copytree(part, mixed)
    shutil.copy(reference / "model.safetensors", mixed / "model.safetensors")  # step 6 beside a step-3 state
    result = _resume(mixed)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "not one unit: checkpoint.json names step 3 but model.safetensors is from step 6" in result.stderr
    # a folder without checkpoint.json (an older version's run): the steps in the two files must agree
    from perceiver_core.errors import CheckpointError
    from perceiver_core.runtime.checkpoint import resolve_unit

    (mixed / "checkpoint.json").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is from step 6 but trainer_state.safetensors is "
                                              "from step 3"):
        resolve_unit(mixed, PARTS)
    (part / "checkpoint.json").unlink()
    assert set(resolve_unit(part, PARTS)) == set(PARTS)  # a consistent pair of an older version still resumes


def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_previous_checkpoint(tmp_path):
    """The disk fills while the trainer state is written (files are capped between the model's size and the
    trainer state's): one line, exit 2, the step-3 unit intact and nothing staged left behind."""
    out = tmp_path / "run"
    assert _train(out, "--stop-after", "3").returncode == 0
    before = {name: (out / name).read_bytes() for name in (*PARTS, "checkpoint.json")}
    model, state = (out / PARTS[0]).stat().st_size, (out / PARTS[1]).stat().st_size
    assert model < state
    result = run_cli("train", "--resume", str(out), "--no-progress", env=ENV,
                     preexec_fn=_limit_file_size((model + state) // 2))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "could not write" in result.stderr and "the previous checkpoint there is unchanged" in result.stderr
    assert {name: (out / name).read_bytes() for name in before} == before
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_full_disk_while_logging_metrics_is_one_line():
    from perceiver_core.errors import UserError
    from perceiver_core.runtime.training import _write

    log = open("/dev/full", "w", encoding="utf-8")  # every write: ENOSPC
    try:
        with pytest.raises(UserError, match=r"could not write /dev/full: No space left on device \(is the disk "
                                            r"full\?\); the last checkpoint is intact"):
            _write(log, {"step": 1, "loss": 0.5})
    finally:
        with contextlib.suppress(OSError):  # closing flushes the failed buffer again
            log.close()
