"""`audio.words`: spoken words synthesised offline with eSpeak NG, a spoken-digits task that installs with pip.

The recipe (every setting is in `WordsConfig`): each word is spoken by every voice, an eSpeak NG English accent
(en, en-us, en-gb-x-rp, en-gb-scotland, ...) combined with a voice variant (m1..m8, f1..f5, klatt..klatt4, ...),
`takes` times, each take with its own speed (words per minute), base pitch and pitch range. Each utterance is
trimmed of silence, resampled from eSpeak's 22,050 Hz to `sample_rate`, placed at a random onset in a clip of
`clip_seconds` (centre-cut in the rare case it is longer), its peak set to -6 dB +- gain_db, and white noise
added at an SNR drawn from noise_snr_db. Every random draw of a clip comes from a generator seeded by (seed,
voice, word, take), so a clip does not depend on which other clips are made.

Splits are by variant: the test (and val) split holds every accent of `test_variants` (`val_variants`), voices
never heard in training, so test accuracy measures generalisation to new speakers, not to new takes.

Prepared once, on first use (or by `perceiver data audio-words`), into `<data dir>/audio-words-<fingerprint>/`:
clips.npy (int16 [N, T]) and meta.json. The fingerprint hashes the recipe, the voices made and the eSpeak NG
version, so a changed recipe prepares anew. The data dir is `data.cache_dir`, else $PERCEIVER_DATA_DIR, else
$PERCEIVER_CACHE_DIR, else ~/.cache/perceiver/data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import subprocess
import time
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from perceiver_core import BuildContext, Dataset
from perceiver_core.datasets import ArraySplit
from perceiver_core.errors import DataError, UserError

from .configs import WordsConfig

RECIPE_VERSION = 1
SPLITS = ("train", "val", "test")


def data_dir(cache_dir: str | None) -> Path:
    for value in (cache_dir, os.environ.get("PERCEIVER_DATA_DIR"), os.environ.get("PERCEIVER_CACHE_DIR")):
        if value:
            return Path(value).expanduser()
    return Path.home() / ".cache" / "perceiver" / "data"


def split_of(config: WordsConfig, voice: str) -> str:
    """The split of a voice ("accent+variant"): decided by the config, not recorded with the clips, so one
    prepared recipe serves any choice of held-out variants."""
    variant = voice.split("+", 1)[1]
    return "test" if variant in config.test_variants else "val" if variant in config.val_variants else "train"


def voices(config: WordsConfig) -> list[tuple[str, str, str]]:
    """(accent, variant, split) of every voice made, in a fixed order; `limit` keeps the first voices of each
    split in a seeded order."""
    out = []
    for variant in config.variants:
        out += [(accent, variant, split_of(config, f"{accent}+{variant}")) for accent in config.accents]
    if config.limit is None:
        return out
    rng = np.random.default_rng(config.seed)
    kept = []
    for split in SPLITS:
        mine = [v for v in out if v[2] == split]
        kept += [mine[i] for i in sorted(rng.permutation(len(mine))[:config.limit])]
    return kept


def _recipe(config: WordsConfig, espeak: str) -> dict[str, Any]:
    try:
        loader = metadata.version("espeakng-loader")
    except metadata.PackageNotFoundError:
        loader = "?"
    return {"recipe": RECIPE_VERSION, "espeak_ng": espeak, "espeakng_loader": loader,
            "words": list(config.words), "voices": [f"{a}+{v}" for a, v, _ in voices(config)],
            "takes": config.takes, "rate_wpm": list(config.rate_wpm), "pitch": list(config.pitch),
            "pitch_range": list(config.pitch_range), "gain_db": config.gain_db,
            "noise_snr_db": list(config.noise_snr_db), "seed": config.seed, "sample_rate": config.sample_rate,
            "clip_seconds": config.clip_seconds}


def fingerprint(recipe: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def prepare(config: WordsConfig, *, quiet: bool = False) -> Path:
    """The folder of the prepared clips for this recipe, synthesising them first if they are not on disk."""
    from .espeak import espeak_version

    recipe = _recipe(config, espeak_version())
    fp = fingerprint(recipe)
    base = data_dir(config.cache_dir)
    folder = base / f"audio-words-{fp[:16]}"
    meta_file = folder / "meta.json"
    if meta_file.is_file():
        try:
            if json.loads(meta_file.read_text(encoding="utf-8")).get("fingerprint") == fp:
                return folder
        except (OSError, ValueError):
            pass
        shutil.rmtree(folder, ignore_errors=True)  # a damaged or foreign folder under our name: make it anew
    made = voices(config)
    n_clips = len(made) * len(config.words) * config.takes
    if not quiet:
        print(f"audio.words: synthesising {n_clips:,} clips ({len(config.words)} words x {len(made)} voices x "
              f"{config.takes} takes) with eSpeak NG {recipe['espeak_ng']} into {folder} (once; about "
              f"{max(1, n_clips // 400)} s)", file=sys.stderr)
    started = time.perf_counter()
    try:
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".audio-words-", dir=base))
    except OSError as exc:
        raise DataError(f"audio.words: cannot write prepared data under {base} ({exc.strerror or exc}); set "
                        "data.cache_dir or PERCEIVER_DATA_DIR to a writable folder") from None
    try:
        job = {"config": config.model_dump(mode="json"), "voices": [list(v) for v in made]}
        # a fresh process: eSpeak NG's state carries from one utterance to the next (see synth.py)
        done = subprocess.run([sys.executable, "-m", "perceiver_audio.synth", str(tmp)], input=json.dumps(job),
                              capture_output=True, text=True)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            raise DataError(f"audio.words: synthesis failed: {lines[-1] if lines else f'exit {done.returncode}'}")
        rows = json.loads((tmp / "rows.json").read_text(encoding="utf-8"))
        (tmp / "rows.json").unlink()
        meta = {"fingerprint": fp, "recipe": recipe, "clips": rows,
                "seconds": round(time.perf_counter() - started, 2)}
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")  # written last: marks the folder whole
        try:
            os.rename(tmp, folder)
        except OSError:  # another process prepared the same recipe meanwhile: keep theirs
            if not (folder / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        print(f"audio.words: prepared {n_clips:,} clips in {meta['seconds']:.1f} s", file=sys.stderr)
    return folder


class WordsDataset(Dataset):
    def __init__(self, config: WordsConfig, context: BuildContext | None = None):
        self.config = config

    @property
    def splits(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("train", "val", "test") if self.config.val_variants else ("train", "test")

    def info(self) -> dict[str, Any]:
        c = self.config
        return {"sample_rate": c.sample_rate, "num_samples": int(round(c.clip_seconds * c.sample_rate)),
                "num_classes": len(c.words), "label_names": list(c.words)}

    @cached_property
    def folder(self) -> Path:
        return prepare(self.config)

    @cached_property
    def _splits(self) -> dict[str, ArraySplit]:
        from perceiver_core import read_npy

        meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
        clips = read_npy(self.folder / "clips.npy")  # int16 [N, T], header and size checked before reading
        rows = meta["clips"]
        if clips.shape[0] != len(rows):
            raise DataError(f"audio.words: {self.folder} is damaged ({clips.shape[0]} clips, {len(rows)} records); "
                            "delete the folder to prepare it again")
        labels = np.array([r["label"] for r in rows], dtype=np.int64)
        split = np.array([split_of(self.config, r["voice"]) for r in rows])
        rate = np.full(len(rows), self.config.sample_rate, dtype=np.int64)
        return {s: ArraySplit(labels[split == s], audio=clips[split == s], sample_rate=rate[split == s])
                for s in self.splits}

    def examples(self, split: str) -> Sequence[Mapping[str, Any]]:
        if split not in self.splits:
            raise UserError(f"audio.words has no split {split!r}; splits: {', '.join(self.splits)}")
        return self._splits[split]

    def describe(self, examples: int = 3) -> dict[str, Any]:
        """What `perceiver data audio-words` prints (preparing the clips first if needed)."""
        c, names = self.config, list(self.config.words)
        meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
        splits, shown = {}, []
        for s in self.splits:
            rows = [r for r in meta["clips"] if split_of(c, r["voice"]) == s]
            counts = np.bincount([r["label"] for r in rows], minlength=len(names))
            variants = sorted({r["voice"].split("+")[1] for r in rows})
            splits[s] = {"examples": len(rows), "classes": {n: int(k) for n, k in zip(names, counts)},
                         "voices": len({r["voice"] for r in rows}), "variants": variants}
        for r in meta["clips"][:examples]:
            shown.append({"file": f"{r['voice']} take {r['take']}", "label": names[r["label"]],
                          "what": f"{r['rate_wpm']} wpm, pitch {r['pitch']}, range {r['pitch_range']}, onset "
                                  f"{r['onset'] / c.sample_rate:.2f} s, SNR {r['snr_db']:.0f} dB"})
        info = self.info()
        info.pop("label_names")
        return {"dataset": "audio.words", "source": f"eSpeak NG {meta['recipe']['espeak_ng']} (espeakng-loader "
                f"{meta['recipe']['espeakng_loader']}), prepared in {meta['seconds']} s",
                "splits": {s: {k: v for k, v in e.items() if k in ("examples", "classes")} for s, e in splits.items()},
                "label_names": names, "statistics": {}, "info": {**info, **{f"{s}_variants": e["variants"]
                                                                           for s, e in splits.items()}},
                "skipped": [], "cache": str(self.folder), "examples": shown}
