"""perceiver-audio against the core's conformance suites (perceiver_core.testing)."""

from __future__ import annotations

import tempfile
from functools import cached_property
from pathlib import Path

import numpy as np

from perceiver_core.testing import DatasetConformance, PreprocessorConformance

RATE = 8000
_rng = np.random.default_rng(0)
TONE = {"audio": np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE).astype(np.float32) * 0.5, "label": 1}
LONG_NOISY = {"audio": (_rng.standard_normal(RATE + 900) * 0.1).astype(np.float32), "label": 0}
INT16_44K = {"audio": (_rng.standard_normal(4410) * 3000).astype(np.int16), "sample_rate": 44100, "label": 2}


class _Audio:
    plugin = "perceiver_audio.plugin"
    distribution = "perceiver-audio"
    dataset_info = {"sample_rate": RATE, "num_samples": RATE, "num_classes": 3}
    examples = [TONE, LONG_NOISY, INT16_44K]


class TestWaveform(_Audio, PreprocessorConformance):
    component = "audio.waveform"
    config = {"time_shift": 0.1, "gain_db": 6.0, "noise_snr_db": 20.0}


class TestWaveformProjected(_Audio, PreprocessorConformance):
    component = "audio.waveform"
    config = {"patch_size": 16, "project_to": 8, "normalize": "rms", "crop": "start"}


class TestLogMelFrames(_Audio, PreprocessorConformance):
    component = "audio.log_mel"
    config = {"n_fft": 256, "hop_length": 128, "n_mels": 20, "project_to": 8, "time_shift": 0.2}


class TestLogMelBins(_Audio, PreprocessorConformance):
    component = "audio.log_mel"
    config = {"n_fft": 256, "hop_length": 256, "n_mels": 8, "elements": "bins", "standardize": "none"}


class TestWords(DatasetConformance):
    plugin = "perceiver_audio.plugin"
    distribution = "perceiver-audio"
    component = "audio.words"
    config = {"words": ["yes", "no", "up"], "accents": ["en", "en-us"], "variants": ["m1", "f1", "m3"],
              "test_variants": ["m3"], "val_variants": ["f1"], "takes": 1, "sample_rate": 8000, "clip_seconds": 0.8,
              "batch_size": 4}


def _write_folder() -> Path:
    import soundfile as sf

    root = Path(tempfile.mkdtemp(prefix="audio-folder-"))
    rng = np.random.default_rng(1)
    for c, name in enumerate(("low", "high")):
        (root / name).mkdir()
        for i in range(5):
            t = np.arange(int(RATE * (0.5 + 0.1 * i))) / RATE
            wave = 0.3 * np.sin(2 * np.pi * (300 if c == 0 else 2000) * t) + 0.01 * rng.standard_normal(len(t))
            fmt = ("wav", "flac", "ogg")[i % 3]
            sf.write(root / name / f"{i}.{fmt}", wave.astype(np.float32), 16000 if i % 2 else RATE)
    return root


class TestFolder(DatasetConformance):
    plugin = "perceiver_audio.plugin"
    distribution = "perceiver-audio"
    component = "audio.folder"

    @cached_property
    def config(self):
        return {"root": str(_write_folder()), "sample_rate": RATE, "clip_seconds": 0.5, "test_fraction": 0.4,
                "batch_size": 2}
