"""`audio.waveform`: raw waveform patches, as DeepMind's multimodal Perceiver IO reads audio.

A clip of T samples (the model's length) becomes T / p input elements of p consecutive samples (p = 16):
[T] -> [T / p, p], optionally followed by a linear map of each patch. The ByteArray has index shape (T / p,) and
modality "audio", so 1-D Fourier positions over time come from the core's `fourier` position (DeepMind: 192
bands at max_resolution T / p), and the same module is one input of a multimodal pipeline (`waveform_patches`
and `AudioPatches` are the two halves for a caller that has the samples already).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from perceiver_core import BuildContext, ByteArray

from .common import AudioPreprocessor
from .configs import WaveformConfig


def waveform_patches(wave: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[..., T] -> [..., T / p, p] (T must be a multiple of p)."""
    t = wave.shape[-1]
    if t % patch_size:
        raise ValueError(f"{t} samples are not a whole number of {patch_size}-sample patches")
    return wave.reshape(*wave.shape[:-1], t // patch_size, patch_size)


class AudioPatches(nn.Module):
    """The learned half: patches [B, T / p, p] -> ByteArray [B, T / p, C] (C = p, or project_to)."""

    def __init__(self, patch_size: int, project_to: int | None = None):
        super().__init__()
        self.patch_size = patch_size
        self.project = nn.Linear(patch_size, project_to) if project_to else nn.Identity()
        self.output_channels = project_to or patch_size

    def forward(self, patches: torch.Tensor) -> ByteArray:
        data = self.project(patches)  # [B, T/p, p] -> [B, T/p, C]
        return ByteArray(data, (patches.shape[1],), modality="audio")


class WaveformPreprocessor(AudioPreprocessor):
    def __init__(self, config: WaveformConfig, context: BuildContext):
        super().__init__(config, context, "audio.waveform")
        p = config.patch_size
        if self.num_samples % p:
            raise ValueError(f"audio.waveform: the clip of {self.num_samples} samples is not a whole number of "
                             f"patch_size {p} patches; change data.clip_seconds or patch_size")
        self.index_shape = (self.num_samples // p,)
        self.patches = AudioPatches(p, config.project_to)
        self.output_channels = self.patches.output_channels

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        wave = self.clip(example) * self.config.scale  # [T]
        return {"audio_patches": waveform_patches(wave, self.config.patch_size).contiguous()}  # [T/p, p]

    def forward(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        return self.patches(batch["audio_patches"])  # [B, T/p, C]

    def save_values(self, values: torch.Tensor, path_stem: Path) -> list[Path]:
        """Patches [T/p, p] (a multimodal reconstruction, or its target) as PATH_STEM.wav at the model's rate
        (16-bit PCM, clipped to [-1, 1]; `scale` divided out; with normalize = "rms" the unit-RMS clip is written
        at RMS 0.1)."""
        import soundfile as sf

        wave = values.detach().float().reshape(-1).cpu() / self.config.scale  # [T]
        if self.config.normalize == "rms":
            wave = wave * 0.1
        wave = wave.clamp(-1, 1).numpy()
        path = Path(f"{path_stem}.wav")
        sf.write(str(path), wave, self.sample_rate, subtype="PCM_16")
        return [path]
