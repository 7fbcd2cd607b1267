"""Shared by the audio preprocessors: the clip the model was built for, training augmentation, reading files."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from perceiver_core import BuildContext, Preprocessor

from .clip import augment_clip, example_waveform, fit_length


def dataset_clip(context: BuildContext, who: str) -> tuple[int, int]:
    """(sample_rate, num_samples) of the clips the model is built for, as the dataset reports them."""
    rate, samples = context.dataset.get("sample_rate"), context.dataset.get("num_samples")
    if rate is None or samples is None:
        raise ValueError(f"{who} needs a dataset that reports sample_rate and num_samples (audio.folder, "
                         "audio.words; or data = {use = \"none\", ...} is not enough)")
    return int(rate), int(samples)


class AudioPreprocessor(Preprocessor):
    """Base of the audio preprocessors: `clip(example)` is the example's waveform at the model's rate and length;
    `augment` cuts a random window and applies the config's training augmentation."""

    tensor_input = None

    def __init__(self, config, context: BuildContext, who: str):
        super().__init__()
        self.config = config
        self.sample_rate, self.num_samples = dataset_clip(context, who)

    def clip(self, example: Mapping[str, Any]) -> torch.Tensor:
        wave = example_waveform(example, self.sample_rate)  # [T] at the model's rate
        wave = fit_length(wave, self.num_samples, self.config.crop)  # [num_samples]
        if self.config.normalize == "rms":
            wave = wave / wave.square().mean().sqrt().clamp_min(1e-5)
        return wave

    def augment(self, example: Mapping[str, Any], generator: torch.Generator) -> Mapping[str, Any]:
        c = self.config
        changes = c.time_shift or c.gain_db or c.invert or c.noise_snr_db is not None  # beyond cropping
        if not (c.random_crop or changes):
            return example
        wave = example_waveform(example, self.sample_rate)
        if not c.random_crop and wave.shape[-1] == self.num_samples and not changes:
            return example
        wave = augment_clip(wave, self.num_samples, c, generator)
        return {**example, "audio": wave, "sample_rate": self.sample_rate}

    def read_input(self, path: str) -> dict[str, Any]:
        from .decode import read_audio_file

        wave, rate = read_audio_file(path, max_seconds=3600.0)
        return {"audio": wave, "sample_rate": rate}
