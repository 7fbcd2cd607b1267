"""`video.folder`: the user's own video files, through the core's file-backed dataset (`perceiver_core.datasets`).

Indexing (class subfolders, train/ val/ test/, manifests), splits, class names, verification of every file once
(cached), unreadable files (raise naming the file, or skip) are the core's; this file says how one file is decoded:
PyAV, bounded (decode.py), `frames` frames sampled and resized to `frame_size`, and with `audio_rate` the sound of
the same span of time. Each example: {"video": uint8 [T, H, W, 3], "audio": float32 [S] (with audio_rate),
"label": class index}.
"""

from __future__ import annotations

from typing import Any, Mapping

from perceiver_core import BuildContext
from perceiver_core.datasets import FileDataset

from .configs import VideoFolderConfig
from .decode import EXTENSIONS, read_audio, read_video, samples_for


class VideoFolderDataset(FileDataset):
    component = "video.folder"
    extensions = EXTENSIONS

    def __init__(self, config: VideoFolderConfig, context: BuildContext | None = None):
        super().__init__(config, context)
        self.config: VideoFolderConfig = config

    def decode(self, row: Mapping[str, Any]) -> dict[str, Any]:
        c = self.config
        path = row.get("path")
        if not isinstance(path, str):
            raise ValueError("video.folder reads video files: use data.root (a folder) or data.manifest (a list of "
                             "files), not data.table")
        clip = read_video(path, num_frames=c.frames, frame_step=c.frame_step, start=c.start_frame,
                          even=c.sampling == "even", size=tuple(c.frame_size), crop=c.crop)
        out: dict[str, Any] = {"video": clip.frames}  # uint8 [T, H, W, 3]
        if c.audio_rate:
            # the sound from the first kept frame for as long as the window plays (stride: T * frame_step frames)
            span = c.frames * (c.frame_step if c.sampling == "stride" else 1)
            fps = clip.fps or 25.0
            samples = samples_for(span, fps, c.audio_rate) if c.sampling == "stride" else \
                int(round((float(clip.times[-1] - clip.times[0]) + 1 / fps) * c.audio_rate))
            out["audio"] = read_audio(path, rate=c.audio_rate, start=float(clip.times[0]), num_samples=samples)
        return out

    def cache_settings(self) -> dict[str, Any]:
        c = self.config
        return {"frames": c.frames, "frame_step": c.frame_step, "sampling": c.sampling, "start": c.start_frame,
                "size": list(c.frame_size), "crop": c.crop, "audio_rate": c.audio_rate}

    def summarise(self, example: Mapping[str, Any]) -> str:
        t, h, w, _ = example["video"].shape
        sound = f", {len(example['audio']):,} audio samples" if "audio" in example else ""
        return f"{t} frames of {w}x{h}{sound}"

    def extra_info(self) -> dict[str, Any]:
        c = self.config
        h, w = c.frame_size
        out: dict[str, Any] = {"video_shape": (c.frames, h, w, 3), "frame_step": c.frame_step, "crop": c.crop}
        if c.audio_rate:
            out["audio_rate"] = c.audio_rate
        return out
