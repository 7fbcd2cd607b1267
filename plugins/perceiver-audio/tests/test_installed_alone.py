"""perceiver-audio installs alone: wheels of perceiver-core and perceiver-audio only, in a fresh virtual environment,
used from an empty folder. Its pipelines are listed, audio.words is synthesised by the installed package (the
synthesis subprocess included), a model trains and `predict` classifies a WAV file.

Third-party packages (torch, numpy, soundfile, espeakng-loader, ...) come from this environment through a folder of
links, so the test is offline; the perceiver distributions come only from the wheels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from perceiver_core.testing.install import build_wheels, isolated_venv, run_clean

PLUGIN = Path(__file__).resolve().parents[1]
ROOT = PLUGIN.parents[1]


_run = run_clean


@pytest.mark.slow
def test_installs_alone_from_wheels(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "build", "*.egg-info",
                                                             "__pycache__", "tests", "benchmarks", "docs"))
    wheels = build_wheels(tmp_path / "wheels", src, src / "plugins" / "perceiver-audio")
    venv = isolated_venv(tmp_path)
    python, perceiver = venv / "bin" / "python", venv / "bin" / "perceiver"
    installed = _run([python, "-m", "pip", "install", "-q", "--no-index", "--find-links", wheels, "perceiver-core",
                      "perceiver-audio"], cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"PERCEIVER_DATA_DIR": str(tmp_path / "data")}
    where = _run([python, "-c", "import perceiver_audio; print(perceiver_audio.__file__)"], cwd=empty)
    assert str(venv) in where.stdout, where.stdout  # the wheel, not the checkout
    rows = {r["name"]: r["source"] for r in json.loads(_run([perceiver, "pipelines", "--json"], cwd=empty).stdout)}
    assert rows["audio-words"] == "perceiver-audio" and "digits" not in rows  # perceiver-image is not installed
    trained = _run([perceiver, "train", "audio-words", "--out", "r", "--max-steps", "3", "--no-progress", "--json",
                    "--set", "data.limit=1", "--set", "data.takes=1", "--set", "data.batch_size=8"], cwd=empty, env=env)
    assert trained.returncode == 0, trained.stderr
    assert "audio.words: synthesising 20 clips (10 words x 2 voices x 1 takes)" in trained.stderr
    assert json.loads(trained.stdout)["step"] == 3
    import soundfile as sf

    sf.write(empty / "a.wav", (0.3 * np.sin(np.arange(8000) / 3.0)).astype(np.float32), 8000)
    predicted = _run([perceiver, "predict", "--checkpoint", "r", "a.wav", "--json"], cwd=empty, env=env)
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)[0]["name"] in [str(w) for w in
                                                       ("zero one two three four five six seven eight nine").split()]
