"""One run per output folder (a lock naming its holder, stale locks taken over), `--resume` before the first
checkpoint, metrics.jsonl as one run after a resume, and damaged metrics lines that do not crash a run's end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from perceiver_core import load_registry, train
from perceiver_core.runtime.lock import LOCK_NAME, RunLock, RunLockedError
from perceiver_core.runtime.metrics import read_metrics

TINY = Path(__file__).parent / "tiny.toml"


def _spec(*overrides):
    return load_registry([TINY], include_default=False).resolve("tiny", list(overrides))


HOLD = """
import sys, time
from perceiver_core.runtime.lock import RunLock
lock = RunLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _holder(folder: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_on_a_held_folder_is_refused_naming_the_holder(cli, tmp_path):
    holder = _holder(tmp_path, 60)
    try:
        with pytest.raises(RunLockedError) as info:
            RunLock(tmp_path).acquire()
        message = str(info.value)
        assert f"pid {holder.pid} on host {socket.gethostname()}, started 20" in message
        assert "\n" not in message
        result = cli("train", "tiny", "--registry", str(TINY), "--out", str(tmp_path), "--max-steps", "2",
                     "--no-progress")
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "is in use by another run" in lines[0] and f"pid {holder.pid}" in lines[0]
        assert not (tmp_path / "model.safetensors").exists() and not (tmp_path / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_killed_run_is_taken_over(tmp_path):
    holder = _holder(tmp_path, 60)
    holder.kill()  # kill -9: no clean-up ran, the record is still in the file
    holder.wait()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == holder.pid
    notes = []
    lock = RunLock(tmp_path, note=notes.append).acquire()
    assert len(notes) == 1 and f"pid {holder.pid}" in notes[0] and "no longer running" in notes[0]
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()
    assert (tmp_path / LOCK_NAME).read_text() == ""  # released cleanly: the next run has nothing to say
    notes.clear()
    RunLock(tmp_path, note=notes.append).acquire().release()
    assert notes == []


def test_the_lock_is_released_when_a_run_fails(tmp_path):
    from perceiver_core import UserError

    spec = _spec("train.max_steps=4", "train.log_every=1")
    spec.train = spec.train.model_copy(update={"lr": 1e30})  # past validation (a registry file may not say 1e30)
    with pytest.raises(UserError, match="diverged"):
        train(spec, tmp_path, progress=False)
    RunLock(tmp_path).acquire().release()  # not left held


def test_resume_before_the_first_checkpoint_starts_from_the_beginning(tmp_path, capsys):
    result = train(_spec("train.max_steps=3"), tmp_path, resume=tmp_path, progress=False)
    assert result["step"] == 3
    err = capsys.readouterr().err
    assert "no checkpoint there yet" in err and "starting from the beginning" in err
    steps = [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")[0] if r["split"] == "train"]
    assert steps == [2, 3]


def test_after_a_resume_metrics_read_as_one_run(tmp_path, capsys):
    """The interrupted run logged steps after its last checkpoint (as a kill between a log line and the next
    checkpoint leaves it) and tore its last line: the resumed run's file has each step once, in order."""
    spec = _spec("train.max_steps=8", "train.log_every=1")
    train(spec, tmp_path, stop_after=4, progress=False)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 5, "epoch": 0, "split": "train", "loss": 9.0}) + "\n")
        f.write('{"step": 6, "epoch": 0, "split": "tr')  # torn by the kill
    train(spec, tmp_path, resume=tmp_path, progress=False)
    records, problems = read_metrics(tmp_path / "metrics.jsonl")
    assert problems == []
    train_steps = [r["step"] for r in records if r["split"] == "train"]
    assert train_steps == list(range(1, 9))
    assert all(r["loss"] != 9.0 for r in records)
    err = capsys.readouterr().err
    assert "metrics.jsonl:6: damaged line skipped" in err and "logged after the checkpoint of step 4" in err


def test_a_damaged_metrics_line_does_not_crash_the_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from perceiver_core.runtime.plot import plot_metrics

    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join([
        json.dumps({"step": 1, "split": "train", "loss": 2.0}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"step": "2", "split": "train", "loss": 1.0}),
        json.dumps({"step": 2, "split": "train", "loss": "high"}),
        json.dumps({"step": 3, "split": "test", "loss": 1.5, "accuracy": None}),
        json.dumps({"step": 3, "split": "train", "loss": 1.0}),
    ]) + "\n")
    assert plot_metrics(path, tmp_path / "m.png")
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    err = capsys.readouterr().err
    for line in (2, 3, 4):
        assert f"metrics.jsonl:{line}: damaged line skipped" in err


@pytest.mark.slow
def test_concurrent_cli_runs_are_refused_and_a_killed_run_is_taken_over(cli, tmp_path):
    """Two real `perceiver train` on one folder: the second is refused naming the first; after kill -9 of the
    first (before its first checkpoint), `--resume` takes the stale lock over and starts from the beginning."""
    import time

    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "perceiver_core", "train", "tiny", "--registry", str(TINY),
                              "--out", str(out), "--max-steps", "100000", "--set", "data.batch_size=8",
                              "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not ((out / LOCK_NAME).is_file() and (out / LOCK_NAME).read_text().strip()):
            assert time.monotonic() < deadline and first.poll() is None, "the first run never took the lock"
            time.sleep(0.2)
        second = cli("train", "tiny", "--registry", str(TINY), "--out", str(out), "--max-steps", "2",
                     "--no-progress")
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"in use by another run (pid {first.pid} on host" in lines[0]
    finally:
        first.kill()  # SIGKILL: no clean-up runs
        first.wait()
    # killed inside its first epoch (no checkpoint yet: starts over) or later (continues from its checkpoint)
    from perceiver_core.runtime.checkpoint import checkpoint_metadata

    start = checkpoint_metadata(out / "model.safetensors")["step"] if (out / "model.safetensors").exists() else 0
    third = cli("train", "tiny", "--registry", str(TINY), "--out", str(out), "--max-steps", "100000", "--set",
                "data.batch_size=8", "--stop-after", str(start + 4), "--resume", str(out), "--no-progress")
    assert third.returncode == 0, third.stderr
    assert f"locked by a run that is no longer running (pid {first.pid}" in third.stderr
    assert ("no checkpoint there yet" in third.stderr) == (start == 0)
    steps = [r["step"] for r in read_metrics(out / "metrics.jsonl")[0] if r["split"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == start + 4  # one run: no step twice, none past the end


def test_the_plot_labels_the_loss_axis_with_the_tasks_loss(tmp_path, monkeypatch):
    """metrics.png's loss axis names the task's loss (a reconstruction's MSE, a flow's EPE), not cross-entropy for
    every task; the training loop passes the task's `loss_name`."""
    pytest.importorskip("matplotlib")
    import matplotlib.figure

    from perceiver_core import build_pipeline
    from perceiver_core.runtime.plot import plot_metrics

    labels = []
    real = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda fig, *a, **k: (labels.append(fig.axes[0].get_ylabel()), real(fig, *a, **k))[1])
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 3, "epoch": 1, "split": "train_epoch", "loss": 0.5}) + "\n")
    assert plot_metrics(path, tmp_path / "m.png", loss_name="MSE of the hidden elements")
    assert labels == ["MSE of the hidden elements"]
    train(_spec("train.max_steps=2"), tmp_path / "run", progress=False)
    assert labels[-1] == "cross-entropy (no label smoothing)"
    assert build_pipeline("stereo-tiny").task.loss_name == "end-point error (EPE)"
    from perceiver_core.model.tasks.mae import MAETask

    assert MAETask.loss_name == "MSE of the hidden elements"
