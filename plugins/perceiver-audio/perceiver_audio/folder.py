"""`audio.folder`: the user's own sound files, through the core's file-backed dataset (`perceiver_core.datasets`).

Indexing (class subfolders, train/ val/ test/, manifests, tables), splits, class names, verifying every file once
(cached), skipping or refusing unreadable files are the core's; this file says how one file is decoded: libsndfile
through `decode.py` (bounded from the header), mixed down to mono, resampled to `sample_rate`. Cutting to the
model's clip length is the preprocessor's (a random window in training, the centre in evaluation).
"""

from __future__ import annotations

from typing import Any, Mapping

from perceiver_core import BuildContext, max_input_bytes
from perceiver_core.datasets import FileDataset

from .configs import AudioFolderConfig
from .decode import EXTENSIONS, decode_audio, decode_bytes
from .resample import resample


class AudioFolderDataset(FileDataset):
    component = "audio.folder"
    extensions = EXTENSIONS

    def __init__(self, config: AudioFolderConfig, context: BuildContext | None = None):
        super().__init__(config, context)
        self.config: AudioFolderConfig = config

    def decode(self, row: Mapping[str, Any]) -> dict[str, Any]:
        c = self.config
        limit = min(max_input_bytes(), int(c.max_file_mb * 2**20 * 64))  # decoded floats: bounded, generously
        if c.table:
            value = row.get(c.audio_column)
            if isinstance(value, Mapping):
                value = value.get("bytes")
            if not isinstance(value, (bytes, bytearray)):
                raise ValueError(f"column {c.audio_column!r} holds {type(value).__name__}, expected audio bytes")
            wave, rate = decode_bytes(value, max_bytes=limit, max_seconds=c.max_seconds)
        else:
            wave, rate = decode_audio(row["path"], max_bytes=limit, max_seconds=c.max_seconds)
        if rate != c.sample_rate:
            wave = resample(wave, rate, c.sample_rate)
        return {"audio": wave, "sample_rate": c.sample_rate}  # float32 [T] mono at the dataset's rate

    def cache_settings(self) -> dict[str, Any]:
        c = self.config
        return {"sample_rate": c.sample_rate, "max_seconds": c.max_seconds, "audio_column": c.audio_column}

    def summarise(self, example: Mapping[str, Any]) -> str:
        return f"{len(example['audio']) / self.config.sample_rate:.2f} s at {self.config.sample_rate} Hz"

    def extra_info(self) -> dict[str, Any]:
        c = self.config
        return {"sample_rate": c.sample_rate, "num_samples": int(round(c.clip_seconds * c.sample_rate))}
