"""Synthesis of the audio.words clips, run in a fresh process (`python -m perceiver_audio.synth FOLDER`, the recipe
as JSON on stdin): eSpeak NG carries state from one utterance to the next (its pitch flutter runs on across calls),
so a clip depends on what was spoken before it in the process. A fresh process that speaks the clips in a fixed order
makes the prepared data a function of the recipe alone, and keeps the C library's global state (and any crash of
it) out of the process that trains.

Writes FOLDER/clips.npy (int16 [N, T]) and FOLDER/rows.json (one record of draws per clip). Imports no torch.
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import numpy as np

from perceiver_core.errors import UserError

from .configs import WordsConfig


def _trim(wave: np.ndarray, rate: int, threshold: float = 0.02, margin_s: float = 0.01) -> np.ndarray:
    """Cut leading and trailing silence (below threshold x peak), keeping a margin."""
    loud = np.flatnonzero(np.abs(wave) > threshold * np.abs(wave).max())
    if len(loud) == 0:
        return wave
    m = int(margin_s * rate)
    return wave[max(0, loud[0] - m):loud[-1] + m + 1]


def make_clip(config: WordsConfig, accent: str, variant: str, word: str, take: int) -> tuple[np.ndarray, dict]:
    """One clip: int16 [num_samples] and its draws (speed, pitch, range, onset, gain, SNR)."""
    from .espeak import synthesise
    from .resample import resample

    key = zlib.crc32(f"{accent}+{variant}|{word}|{take}".encode())
    rng = np.random.default_rng([config.seed, key])
    rate = int(rng.integers(config.rate_wpm[0], config.rate_wpm[1] + 1))
    pitch = int(rng.integers(config.pitch[0], config.pitch[1] + 1))
    pitch_range = int(rng.integers(config.pitch_range[0], config.pitch_range[1] + 1))
    raw, raw_rate = synthesise(word, f"{accent}+{variant}", rate=rate, pitch=pitch, pitch_range=pitch_range)
    if raw.size == 0 or not np.any(raw):
        raise UserError(f"eSpeak NG produced no sound for {word!r} in voice {accent}+{variant}")
    wave = resample(_trim(raw.astype(np.float32) / 32768.0, raw_rate), raw_rate, config.sample_rate)
    n = int(round(config.clip_seconds * config.sample_rate))
    if len(wave) > n:  # too long for the clip: keep its centre
        start = (len(wave) - n) // 2
        wave = wave[start:start + n]
    onset = int(rng.integers(0, n - len(wave) + 1))
    gain_db = -6.0 + float(rng.uniform(-config.gain_db, config.gain_db))
    wave = wave / np.abs(wave).max() * 10.0 ** (gain_db / 20.0)
    clip = np.zeros(n, dtype=np.float64)
    clip[onset:onset + len(wave)] = wave
    snr = float(rng.uniform(*config.noise_snr_db))
    rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))
    clip += rng.standard_normal(n) * rms / 10.0 ** (snr / 20.0)
    clip = np.clip(np.round(clip * 32767.0), -32768, 32767).astype(np.int16)
    return clip, {"rate_wpm": rate, "pitch": pitch, "pitch_range": pitch_range, "onset": onset,
                  "gain_db": round(gain_db, 3), "snr_db": round(snr, 3)}


def synthesise_all(config: WordsConfig, made: list[list[str]]) -> tuple[np.ndarray, list[dict]]:
    """Every clip of the recipe for the voices `made` ([accent, variant, split] each), in a fixed order."""
    n = int(round(config.clip_seconds * config.sample_rate))
    clips = np.zeros((len(made) * len(config.words) * config.takes, n), dtype=np.int16)
    rows, i = [], 0
    for accent, variant, _split in made:
        for label, word in enumerate(config.words):
            for take in range(config.takes):
                clips[i], draws = make_clip(config, accent, variant, word, take)
                rows.append({"label": label, "voice": f"{accent}+{variant}", "take": take, **draws})
                i += 1
    return clips, rows


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    job = json.loads(sys.stdin.read())
    try:
        clips, rows = synthesise_all(WordsConfig.model_validate(job["config"]), job["voices"])
    except UserError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    np.save(folder / "clips.npy", clips, allow_pickle=False)
    (folder / "rows.json").write_text(json.dumps(rows), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
