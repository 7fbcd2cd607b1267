"""Reading video files with PyAV (FFmpeg), bounded: frames sampled, resized as they are decoded, and the audio track.

    probe(path)       -> VideoInfo: size, frame count, frame rate, codec, audio track (the container header only)
    read_video(path)  -> Clip: frames uint8 [T, H, W, 3], their presentation times [T] (s), the frame rate
    read_audio(path)  -> float32 [S] mono, resampled to `rate`, the samples of [start, start + duration)

Hostile files are refused in one line (a `VideoDecodeError`, without the path: callers name the file): a file that
is not a video FFmpeg can open or is truncated ("corrupt"), a stream whose codec this FFmpeg cannot decode
("unsupported codec ..."), and a header that claims more than the limits, checked before a single frame is
decoded: pixels per frame (`max_pixels`, default the core's PERCEIVER_MAX_IMAGE_PIXELS) and the bytes the sampled
frames will take (`max_bytes`, default PERCEIVER_MAX_INPUT_BYTES). Frames are resized as they are decoded, so at
most one full-size frame is held at a time.

Frame sampling: `num_frames` frames `frame_step` apart from frame `start` (frames counted from the beginning in
presentation order), or `num_frames` evenly spaced over the whole video (`even=True`). Resizing: torch
`interpolate` (bilinear, antialiased), after a centre crop to the target's aspect ratio (`crop="center"`) or with
the aspect ratio changed (`crop="stretch"`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ogv", ".y4m", ".gif", ".ts",
              ".flv", ".wmv", ".3gp")


class VideoDecodeError(ValueError):
    """A video file that cannot be used (the message is the reason, without the path)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container header says about the first video stream (and the first audio stream, if any)."""

    width: int
    height: int
    frames: int  # from the header, or estimated from the duration and the frame rate (0: unknown)
    fps: float
    duration: float  # seconds (0.0: unknown)
    codec: str
    audio_rate: int | None = None
    audio_channels: int | None = None


@dataclass
class Clip:
    frames: np.ndarray  # uint8 [T, H, W, 3]
    times: np.ndarray  # float64 [T]: presentation time of each frame, seconds
    fps: float  # the video's frame rate (frames per second of the source)


def _av():
    try:
        import av
    except ImportError:  # pragma: no cover - av is a dependency of perceiver-video
        raise VideoDecodeError("reading video files needs PyAV: pip install av") from None
    return av


def _limits(max_pixels: int | None, max_bytes: int | None) -> tuple[int, int]:
    from perceiver_core import max_image_pixels, max_input_bytes

    return max_pixels or max_image_pixels(), max_bytes or max_input_bytes()


def _open(source: Any):
    """av.open with every failure as one line."""
    av = _av()
    if isinstance(source, (str, os.PathLike)):
        try:
            size = os.stat(source).st_size
        except OSError as exc:
            raise VideoDecodeError(exc.strerror or str(exc)) from None
        if size == 0:
            raise VideoDecodeError("the file is empty, not a video")
    try:
        return av.open(source if not isinstance(source, os.PathLike) else str(source), "r")
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(f"corrupt or not a video file FFmpeg can read ({_reason(exc)})") from None
    except (OSError, ValueError) as exc:
        raise VideoDecodeError(f"cannot open it as a video ({exc})") from None


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())[:200]


def _decodable(stream) -> str:
    """The codec's name, or VideoDecodeError when this FFmpeg has no decoder for it."""
    av = _av()
    ctx = stream.codec_context
    name = getattr(ctx, "name", None) if ctx is not None else None
    if not name or name == "none":
        raise VideoDecodeError(f"unsupported codec: the FFmpeg of PyAV {av.__version__} does not know the {stream.type} "
                               "stream's codec; convert the file, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4")
    try:
        av.codec.Codec(name, "r")
    except Exception:  # noqa: BLE001 - PyAV raises several types for a missing decoder
        raise VideoDecodeError(f"unsupported codec {name!r}: the FFmpeg of PyAV {av.__version__} has no decoder for it; "
                               "convert the file, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4") from None
    return name


def _video_stream(container):
    streams = [s for s in container.streams if s.type == "video"]
    if not streams:
        raise VideoDecodeError("no video stream in the file")
    return streams[0]


def _info(container) -> VideoInfo:
    stream = _video_stream(container)
    codec = _decodable(stream)
    width, height = int(stream.width or 0), int(stream.height or 0)
    if width <= 0 or height <= 0:
        raise VideoDecodeError(f"the header gives a frame size of {width}x{height}")
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    duration = 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000
    frames = int(stream.frames or 0) or (int(round(duration * fps)) if duration and fps else 0)
    audio = [s for s in container.streams if s.type == "audio"]
    a_rate = a_channels = None
    if audio:
        a_rate = int(audio[0].rate or 0) or None
        layout = getattr(audio[0].codec_context, "layout", None)
        a_channels = int(layout.nb_channels) if layout is not None else None
    return VideoInfo(width, height, frames, fps, duration, codec, a_rate, a_channels)


def probe(source: Any) -> VideoInfo:
    """The header's facts (nothing is decoded)."""
    with _open(source) as container:
        return _info(container)


def frame_indices(total: int, num_frames: int | None, frame_step: int = 1, start: int = 0,
                  even: bool = False) -> list[int]:
    """Which frames to keep. total: frames in the video (0 when unknown; then `even` is refused)."""
    if even:
        if total <= 0:
            raise VideoDecodeError("the header gives no frame count, so frames cannot be spaced evenly; sample "
                                   "them with frame_step instead")
        n = num_frames or total
        if n > total:
            raise VideoDecodeError(f"{n} evenly spaced frames asked of a video of {total} frames")
        return [int(round(i * (total - 1) / max(1, n - 1))) for i in range(n)] if n > 1 else [0]
    if num_frames is None:
        if total <= 0:
            raise VideoDecodeError("the header gives no frame count; ask for a number of frames")
        num_frames = max(0, (total - 1 - start) // frame_step + 1)
    return [start + i * frame_step for i in range(num_frames)]


def _crop_box(h: int, w: int, size: tuple[int, int], crop: str) -> tuple[int, int, int, int]:
    """(y, x, height, width) of the part of an h x w frame that is resized to `size`."""
    th, tw = size
    if crop != "center":
        return 0, 0, h, w
    if h * tw > w * th:  # too tall: crop rows
        ch, cw = max(1, round(w * th / tw)), w
    else:
        ch, cw = h, max(1, round(h * tw / th))
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def _fit(frame, size: tuple[int, int] | None, crop: str) -> np.ndarray:
    """A decoded av.VideoFrame -> uint8 [h, w, 3]: centre crop to the target's aspect ratio (or not), then an
    antialiased bilinear resize (torch). A large reduction is first done by FFmpeg (area averaging to a whole
    fraction of the size, still at least twice the target), so a 4K frame never becomes a float tensor."""
    if size is None or (frame.height, frame.width) == tuple(size):
        return frame.to_ndarray(format="rgb24")
    import torch
    import torch.nn.functional as F

    th, tw = size
    y, x, ch, cw = _crop_box(frame.height, frame.width, size, crop)
    k = min(ch // (2 * th), cw // (2 * tw))
    if k >= 2:
        image = frame.to_ndarray(format="rgb24", width=frame.width // k, height=frame.height // k,
                                 interpolation="AREA")  # [H/k, W/k, 3]
        y, x, ch, cw = y // k, x // k, max(1, ch // k), max(1, cw // k)
    else:
        image = frame.to_ndarray(format="rgb24")  # [H, W, 3]
    image = image[y:y + ch, x:x + cw]
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()  # [1, 3, ch, cw]
    t = F.interpolate(t, size=(th, tw), mode="bilinear", antialias=True, align_corners=False)  # [1, 3, th, tw]
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()  # [th, tw, 3]


def read_video(source: Any, *, num_frames: int | None = None, frame_step: int = 1, start: int = 0,
               even: bool = False, size: tuple[int, int] | None = None,
               crop: Literal["center", "stretch"] = "center", max_pixels: int | None = None,
               max_bytes: int | None = None) -> Clip:
    """Decode the sampled frames of the first video stream as RGB, resized to `size` (H, W) as they come.

    A video shorter than asked is refused (how many frames it has and how many were asked)."""
    if frame_step < 1 or start < 0:
        raise VideoDecodeError(f"frame_step must be >= 1 and start >= 0, got {frame_step} and {start}")
    av = _av()
    max_pixels, max_bytes = _limits(max_pixels, max_bytes)
    with _open(source) as container:
        info = _info(container)
        pixels = info.width * info.height
        if pixels > max_pixels:  # the header alone: nothing decoded yet
            raise VideoDecodeError(f"frames of {info.width}x{info.height} = {pixels:,} pixels, more than the limit of "
                                   f"{max_pixels:,} (raise PERCEIVER_MAX_IMAGE_PIXELS if it is really meant)")
        wanted = frame_indices(info.frames, num_frames, frame_step, start, even)
        out_h, out_w = size or (info.height, info.width)
        need = len(wanted) * out_h * out_w * 3
        if need > max_bytes:
            raise VideoDecodeError(f"{len(wanted)} frames of {out_w}x{out_h} would take {need:,} bytes, more than the "
                                   f"limit of {max_bytes:,} (fewer frames, a smaller size, or raise "
                                   "PERCEIVER_MAX_INPUT_BYTES)")
        if info.frames and wanted and wanted[-1] >= info.frames and not even:
            # headers can be off by a frame or two: decode and see, but refuse a clearly short video up front
            if wanted[-1] >= info.frames + 2:
                raise VideoDecodeError(f"the video has {info.frames} frames; frames {wanted[0]}..{wanted[-1]} were "
                                       "asked (fewer frames, a smaller frame_step or an earlier start)")
        stream = _video_stream(container)
        stream.thread_type = "AUTO"
        keep = {index: k for k, index in enumerate(wanted)}
        frames: list[np.ndarray | None] = [None] * len(wanted)
        times = np.zeros(len(wanted), dtype=np.float64)
        last = max(wanted) if wanted else -1
        count = 0
        try:
            for frame in container.decode(stream):
                if count in keep:
                    k = keep[count]
                    frames[k] = _fit(frame, size, crop)  # [h, w, 3]
                    times[k] = float(frame.time) if frame.time is not None else count / (info.fps or 1.0)
                count += 1
                if count > last:
                    break
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(f"corrupt or truncated video ({_reason(exc)})") from None
        missing = [i for i, f in zip(wanted, frames) if f is None]
        if missing:
            if count == 0:
                raise VideoDecodeError("corrupt or truncated video (no frame decodes)")
            raise VideoDecodeError(f"the video has {count} frames; frames {wanted[0]}..{wanted[-1]} were asked "
                                   "(fewer frames, a smaller frame_step or an earlier start)")
    return Clip(np.stack(frames) if frames else np.zeros((0, out_h, out_w, 3), np.uint8), times,  # [T, H, W, 3]
                info.fps)


def read_audio(source: Any, *, rate: int, start: float = 0.0, duration: float | None = None,
               num_samples: int | None = None, max_bytes: int | None = None) -> np.ndarray:
    """The first audio stream, mixed down to mono, resampled to `rate` Hz: float32 [S] of the span
    [start, start + duration) seconds on the container's clock (the clock of the video frames' `times`), so a
    window of frames gets the sound that plays with it. `num_samples` fixes S (else round(duration * rate));
    time outside the track is silence (zeros). A file without audio is refused."""
    av = _av()
    _, max_bytes = _limits(None, max_bytes)
    if rate <= 0:
        raise VideoDecodeError(f"the audio rate must be positive, got {rate}")
    if num_samples is None:
        if duration is None:
            raise VideoDecodeError("give the duration (seconds) or the number of audio samples")
        num_samples = int(round(duration * rate))
    if num_samples * 4 > max_bytes:
        raise VideoDecodeError(f"{num_samples:,} audio samples would take more than the limit of {max_bytes:,} bytes")
    out = np.zeros(num_samples, dtype=np.float32)
    end = start + num_samples / rate
    with _open(source) as container:
        audio = [s for s in container.streams if s.type == "audio"]
        if not audio:
            raise VideoDecodeError("no audio stream in the file")
        stream = audio[0]
        _decodable(stream)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        first_time: float | None = None
        position = 0  # samples of the resampled track seen so far (its sample 0 plays at first_time)

        def take(block: np.ndarray) -> bool:
            """Copy the part of `block` (samples position.. of the track) that falls in the window; True when the
            window is complete."""
            nonlocal position
            lo = position + int(round((first_time - start) * rate))  # index of block[0] in `out`
            a, b = max(lo, 0), min(lo + len(block), num_samples)
            if b > a:
                out[a:b] = block[a - lo:b - lo]
            position += len(block)
            return lo + len(block) >= num_samples

        try:
            done = False
            for frame in container.decode(stream):
                for resampled in resampler.resample(frame):
                    if first_time is None:
                        first_time = float(resampled.time if resampled.time is not None else frame.time or 0.0)
                    if take(resampled.to_ndarray().reshape(-1).astype(np.float32, copy=False)):
                        done = True
                        break
                if done or (frame.time is not None and frame.time > end + 1.0):
                    break
            if not done and first_time is not None:
                for resampled in resampler.resample(None):
                    take(resampled.to_ndarray().reshape(-1).astype(np.float32, copy=False))
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(f"corrupt or truncated audio track ({_reason(exc)})") from None
        if first_time is None:
            raise VideoDecodeError("the audio stream holds no decodable samples")
    return out


def samples_for(num_frames: int, fps: float, rate: int) -> int:
    """Audio samples that play with `num_frames` frames at `fps`."""
    return int(math.floor(num_frames * rate / fps + 0.5))
