"""Waveforms as the audio preprocessors take them: mono float32 at the model's rate, cut or padded to its length.

`fit_length` and `aligned_window` are public helpers for multimodal pipelines too: a video decoder hands its audio
track as a [T] float array and takes the window that lines up with its frames.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from perceiver_core.errors import UserError

from .resample import resample


def as_waveform(audio: Any, rate: int | None, target_rate: int) -> torch.Tensor:
    """A raw example's audio -> float32 [T] at target_rate. int16 samples are divided by 32768, other integers by
    their range; [T, C] or [C, T] with C <= 8 is mixed down to mono; another rate is resampled."""
    a = audio.numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
    if a.ndim == 2 and min(a.shape) <= 8:
        a = a.mean(axis=int(np.argmin(a.shape)))
    if a.ndim != 1 or a.size == 0:
        raise UserError(f"audio must be [T] samples (or [T, channels]), got shape {list(a.shape)}")
    if a.dtype.kind == "i":
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max + 1)
    elif a.dtype.kind == "u":
        info = np.iinfo(a.dtype)
        a = (a.astype(np.float32) - (info.max + 1) / 2) / ((info.max + 1) / 2)
    elif a.dtype.kind != "f":
        raise UserError(f"audio samples must be numbers, got dtype {a.dtype}")
    if rate is not None and int(rate) != int(target_rate):
        a = resample(a, int(rate), int(target_rate))
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def fit_length(wave: torch.Tensor, num_samples: int, crop: str = "center", offset: int | None = None
               ) -> torch.Tensor:
    """[T] -> [num_samples]: a longer clip is cut (at `offset`, else its centre or start), a shorter one zero-padded
    (on both sides for "center", at the end for "start")."""
    t = wave.shape[-1]
    if t > num_samples:
        start = offset if offset is not None else ((t - num_samples) // 2 if crop == "center" else 0)
        return wave[..., start:start + num_samples]
    if t < num_samples:
        before = (num_samples - t) // 2 if crop == "center" else 0
        return torch.nn.functional.pad(wave, (before, num_samples - t - before))
    return wave


def aligned_window(samples: Any, sample_rate: int, target_rate: int, start_seconds: float, num_samples: int
                   ) -> torch.Tensor:
    """The [num_samples] window of a [T] audio track (at sample_rate) that starts at `start_seconds`, resampled to
    target_rate; zero-padded past the track's end. For pairing audio with video frames: a window that starts with
    frame i of a clip at `fps` starts at i / fps seconds."""
    wave = as_waveform(samples, sample_rate, target_rate)  # [T'] at target_rate
    start = int(round(start_seconds * target_rate))
    if start < 0:
        raise UserError(f"start_seconds must be >= 0, got {start_seconds}")
    piece = wave[start:start + num_samples]
    return torch.nn.functional.pad(piece, (0, num_samples - piece.shape[0]))


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def augment_clip(wave: torch.Tensor, num_samples: int, config, g: torch.Generator) -> torch.Tensor:
    """Training-time augmentation of one clip [T] -> [num_samples]: random crop, time shift, gain, sign flip, white
    noise, every draw from `g` (so a resumed run augments alike)."""
    t = wave.shape[-1]
    offset = int(torch.randint(0, t - num_samples + 1, (), generator=g)) if config.random_crop and t > num_samples \
        else None
    wave = fit_length(wave, num_samples, config.crop, offset)
    if config.time_shift > 0:
        limit = int(config.time_shift * num_samples)
        shift = int(torch.randint(-limit, limit + 1, (), generator=g))
        if shift:
            wave = torch.roll(wave, shift)
            if shift > 0:
                wave[:shift] = 0
            else:
                wave[shift:] = 0
    if config.gain_db > 0:
        wave = wave * 10.0 ** (_uniform(g, -config.gain_db, config.gain_db) / 20.0)
    if config.invert > 0 and float(torch.rand((), generator=g)) < config.invert:
        wave = -wave
    if config.noise_snr_db is not None:
        snr = _uniform(g, config.noise_snr_db, config.noise_snr_db + 20.0)
        rms = float(wave.square().mean().sqrt())
        if rms > 0:
            wave = wave + torch.randn(wave.shape, generator=g) * (rms / 10.0 ** (snr / 20.0))
    return wave


def example_waveform(example: Mapping[str, Any], target_rate: int) -> torch.Tensor:
    """The float32 [T] waveform of a raw example {"audio": samples, "sample_rate": Hz (optional: the model's)}."""
    if "audio" not in example:
        raise UserError(f"an audio example needs an 'audio' entry of samples, got keys {sorted(example)}")
    rate = example.get("sample_rate")
    return as_waveform(example["audio"], None if rate is None else int(rate), target_rate)
