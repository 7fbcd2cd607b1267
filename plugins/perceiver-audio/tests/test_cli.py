"""As a user meets it: `perceiver plugins --json` lists the plugin without importing torch; a pipeline trains on a
folder of the user's own sound files and `perceiver predict PIPELINE --checkpoint RUN a.wav` classifies a file; a
corrupt or unsupported file is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def perceiver(*args, cwd=None, python=None):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([*(python or [sys.executable]), "-m", "perceiver_core", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_listing_imports_no_torch():
    probe = perceiver("plugins", "--json", python=[sys.executable, "-X", "importtime"])
    assert probe.returncode == 0, probe.stderr
    dists = {p["distribution"]: p for p in json.loads(probe.stdout)["plugins"]}
    assert dists["perceiver-audio"]["version"] == "0.1.0"
    assert {"preprocessor:audio.waveform", "preprocessor:audio.log_mel", "dataset:audio.folder",
            "dataset:audio.words"} <= set(dists["perceiver-audio"]["components"])
    imported = {line.split("|")[-1].strip().split(".")[0] for line in probe.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "numpy" not in imported and "soundfile" not in imported
    listing = perceiver("pipelines", "--json")
    rows = {r["name"]: r["source"] for r in json.loads(listing.stdout)}
    assert rows["audio-words"] == rows["audio-words-waveform"] == rows["audio-folder"] == "perceiver-audio"


def make_sounds(root: Path, per_class: int = 6) -> Path:
    """Class "low": a 300 Hz tone; class "high": a 2.5 kHz tone; random onset, length and rate, some stereo."""
    rng = np.random.default_rng(0)
    for c, (name, freq) in enumerate((("low", 300.0), ("high", 2500.0))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            rate = (8000, 16000, 22050)[i % 3]
            t = np.arange(int(rate * rng.uniform(0.3, 0.7))) / rate
            wave = 0.4 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(len(t))
            if i % 2:
                wave = np.stack([wave, 0.5 * wave], axis=1)
            sf.write(root / name / f"{i}.{'flac' if i % 2 else 'wav'}", wave.astype(np.float32), rate)
    return root


@pytest.mark.slow
def test_train_on_own_files_then_predict_a_wav(tmp_path):
    sounds = make_sounds(tmp_path / "sounds")
    run = tmp_path / "run"
    trained = perceiver("train", "audio-folder", "--out", run, "--max-steps", "30", "--no-progress", "--json",
                        "--set", f"data.root={sounds}", "--set", "data.sample_rate=8000", "--set",
                        "data.clip_seconds=0.5", "--set", "data.batch_size=4", "--set", "data.test_fraction=0.34",
                        "--set", "train.eval_every=100", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["step"] == 30
    t = np.arange(12000) / 24000
    sf.write(tmp_path / "a.wav", (0.4 * np.sin(2 * np.pi * 2500 * t)).astype(np.float32), 24000)
    sf.write(tmp_path / "b.flac", (0.4 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 24000)
    predicted = perceiver("predict", "audio-folder", "--checkpoint", run, tmp_path / "a.wav", tmp_path / "b.flac",
                          "--json", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    rows = json.loads(predicted.stdout)
    assert [r["name"] for r in rows] == ["high", "low"], rows  # two tones at a rate the model never saw
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    (tmp_path / "x.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 64)
    for name, reason in (("bad.wav", "corrupt sound file"), ("x.m4a", "unsupported format: an MP4/M4A container")):
        bad = perceiver("predict", "--checkpoint", run, tmp_path / name, cwd=tmp_path)
        assert bad.returncode == 2 and reason in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
