"""Small video files written by the tests themselves with PyAV (no fixture files in the repository)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_clip(path: Path, frames: int = 12, size: tuple[int, int] = (24, 32), fps: int = 10,
               audio_rate: int | None = None, codec: str = "mpeg4", container: str | None = None) -> Path:
    """An MP4 (by default) whose frame i is a flat grey of value 20 * i (mod 250) with a white square moving right,
    and with `audio_rate` a mono track whose value is the time in seconds (a ramp, so alignment can be read off)."""
    import av

    h, w = size
    with av.open(str(path), "w", format=container) as out:
        v = out.add_stream(codec, rate=fps)
        v.width, v.height = w, h
        v.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec == "mpeg4":
            v.codec_context.options = {"qscale": "1"}  # nearly lossless: frame values survive
        a = None
        if audio_rate:
            a = out.add_stream("pcm_s16le" if container in ("avi", "mkv", "matroska") else "aac", rate=audio_rate)
            a.codec_context.layout = "mono"
        for i in range(frames):
            image = np.full((h, w, 3), (20 * i) % 250, np.uint8)
            x = (2 * i) % max(1, w - 4)
            image[h // 2 - 2:h // 2 + 2, x:x + 4] = 255
            for packet in v.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in v.encode():
            out.mux(packet)
        if a is not None:
            total = int(round(frames / fps * audio_rate)) + audio_rate // 10
            ramp = (np.arange(total, dtype=np.float32) / audio_rate) * 0.5  # value = time / 2 (stays < 1)
            block = 1024
            for start in range(0, total, block):
                samples = ramp[None, start:start + block]
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="flt", layout="mono")
                frame.rate, frame.pts = audio_rate, start
                for packet in a.encode(frame):
                    out.mux(packet)
            for packet in a.encode():
                out.mux(packet)
    return path


@pytest.fixture
def clip(tmp_path) -> Path:
    return write_clip(tmp_path / "clip.mp4")


@pytest.fixture
def clip_with_audio(tmp_path) -> Path:
    return write_clip(tmp_path / "sound.mp4", frames=20, audio_rate=16000)


@pytest.fixture
def make_clip():
    """write_clip(path, frames=..., size=..., fps=..., audio_rate=..., codec=..., container=...)."""
    return write_clip
