"""`audio.log_mel`: a log-mel spectrogram as the byte array (spectrogram.py computes it, in the data workers).

elements = "frames": one element per STFT frame with its n_mels log energies (index shape (frames,), 1-D positions
over time); elements = "bins": one element per (frame, mel band) with one channel (index shape (frames, n_mels), 2-D
positions over time and frequency). Standardised per spectrogram by default; optionally a linear map per element.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from perceiver_core import BuildContext, ByteArray

from .common import AudioPreprocessor
from .configs import LogMelConfig
from .spectrogram import log_mel


class LogMelPreprocessor(AudioPreprocessor):
    def __init__(self, config: LogMelConfig, context: BuildContext):
        super().__init__(config, context, "audio.log_mel")
        if config.f_max is not None and config.f_max > self.sample_rate / 2:
            raise ValueError(f"audio.log_mel: f_max {config.f_max:g} Hz is above half the sample rate "
                             f"({self.sample_rate / 2:g} Hz)")
        frames = 1 + self.num_samples // config.hop_length
        self.frames = frames
        channels = config.n_mels if config.elements == "frames" else 1
        self.index_shape = (frames,) if config.elements == "frames" else (frames, config.n_mels)
        self.project = nn.Linear(channels, config.project_to) if config.project_to else nn.Identity()
        self.output_channels = config.project_to or channels

    def spectrogram(self, wave: torch.Tensor) -> torch.Tensor:
        """[..., T] -> [..., frames, n_mels] (standardised per spectrogram unless standardize = "none")."""
        c = self.config
        spec = log_mel(wave, self.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length, n_mels=c.n_mels,
                       f_min=c.f_min, f_max=c.f_max, log_floor=c.log_floor)
        if c.standardize == "example":
            mean = spec.mean(dim=(-2, -1), keepdim=True)
            std = spec.std(dim=(-2, -1), keepdim=True).clamp_min(1e-5)
            spec = (spec - mean) / std
        return spec

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        spec = self.spectrogram(self.clip(example))  # [frames, n_mels]
        if self.config.elements == "bins":
            spec = spec.reshape(-1, 1)  # [frames * n_mels, 1]
        return {"log_mel": spec.contiguous()}

    def forward(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        data = self.project(batch["log_mel"])  # [B, M, C]
        return ByteArray(data, self.index_shape, modality="audio")
