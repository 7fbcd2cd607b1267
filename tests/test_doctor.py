"""`perceiver doctor` and the thread-oversubscription check it shares with `train`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from perceiver_core import load_registry, train
from perceiver_core.runtime import threads as rt_threads

TINY = Path(__file__).parent / "tiny.toml"


def _machine(monkeypatch, *, cores: int, load: float, runnable: int):
    monkeypatch.setattr(rt_threads, "usable_cores", lambda: cores)
    monkeypatch.setattr(rt_threads.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(rt_threads, "_runnable_others", lambda: runnable)


def test_oversubscription_is_detected_with_the_fix(monkeypatch):
    _machine(monkeypatch, cores=2, load=4.0, runnable=3)  # two cores, ~4 other busy processes
    check = rt_threads.check_threads(2)
    assert check.warning is not None
    assert "torch uses 2 threads on 2 core(s)" in check.warning and "OMP_NUM_THREADS=1" in check.warning
    assert rt_threads.check_threads(1).warning is None  # one thread cannot oversubscribe


def test_an_idle_machine_is_fine_and_a_half_busy_one_gets_the_free_cores(monkeypatch):
    _machine(monkeypatch, cores=16, load=0.1, runnable=0)
    assert rt_threads.check_threads(16).warning is None
    _machine(monkeypatch, cores=16, load=7.6, runnable=8)
    warning = rt_threads.check_threads(16).warning
    assert warning is not None and "OMP_NUM_THREADS=8" in warning
    assert rt_threads.check_threads(8).warning is None


def test_a_load_average_that_still_counts_a_finished_job_is_no_warning(monkeypatch):
    """`make demo` right after `pip install`: the 1-minute load average is still ~0.9, yet nothing else runs; the
    default 2 threads on 2 cores are then right (the warning used to fire, telling an idle machine to slow down)."""
    _machine(monkeypatch, cores=2, load=0.9, runnable=0)
    assert rt_threads.check_threads(2).warning is None
    _machine(monkeypatch, cores=2, load=0.1, runnable=3)  # a burst of runnable tasks alone is no load either
    assert rt_threads.check_threads(2).warning is None


def test_train_warns_at_its_start(monkeypatch, tmp_path, capsys):
    _machine(monkeypatch, cores=2, load=6.0, runnable=6)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the CPU backend keeps what the user set
        spec = load_registry([TINY], include_default=False).resolve("tiny", ["train.max_steps=1"])
        train(spec, tmp_path, progress=False)
    finally:
        torch.set_num_threads(before)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "threads will wait on each other" in line]
    assert len(lines) == 1 and "set OMP_NUM_THREADS=1" in lines[0]


def test_doctor_json_on_a_clean_installation(cli):
    result = cli("doctor", "--json", env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["problems"] == []
    by_dist = {p["distribution"]: p for p in report["plugins"]}
    assert by_dist["perceiver-image"]["status"] == "ok"
    assert all(p["import_seconds"] is None or 0 <= p["import_seconds"] < 60 for p in report["plugins"])
    cpu = next(b for b in report["backends"] if b["name"] == "cpu")
    assert cpu["available"]
    assert report["threads"]["threads"] == 1 and report["threads"]["omp_num_threads"] == "1"
    assert report["threads"]["warning"] is None  # one thread
    assert report["versions"]["perceiver-core"] and report["versions"]["torch"].startswith("2.")
    text = cli("doctor", env={"OMP_NUM_THREADS": "1"})
    assert text.returncode == 0 and "backends:" in text.stdout and "cpu: available" in text.stdout


@pytest.mark.parametrize("omp", ["abc"])
def test_doctor_survives_odd_thread_settings(cli, omp):
    result = cli("doctor", "--json", env={"OMP_NUM_THREADS": omp})
    assert "Traceback" not in result.stderr
    assert result.returncode == 0
    assert json.loads(result.stdout)["threads"]["omp_num_threads"] == omp
