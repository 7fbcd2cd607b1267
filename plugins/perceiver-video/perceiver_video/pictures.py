"""Pictures of clips: animated GIFs and a PNG strip of frames (Pillow), for `perceiver predict` and the docs."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _enlarge(frames: np.ndarray, scale: int) -> np.ndarray:
    """uint8 [T, H, W, C] -> [T, H*scale, W*scale, 3] (nearest neighbour; grey expanded to RGB)."""
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    return frames.repeat(scale, axis=1).repeat(scale, axis=2) if scale > 1 else frames


def save_gif(path: Path, frames: np.ndarray, fps: float = 8.0, scale: int = 1) -> Path:
    """An animated GIF of uint8 frames [T, H, W, C], looping."""
    from PIL import Image

    images = [Image.fromarray(f) for f in _enlarge(np.asarray(frames, dtype=np.uint8), scale)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=max(20, int(round(1000 / fps))), loop=0)
    return path


def save_strip(path: Path, rows: Sequence[np.ndarray], scale: int = 1, gap: int = 2) -> Path:
    """One PNG: each clip [T, H, W, C] a row of its frames, rows stacked (e.g. input above, reconstruction below)."""
    from PIL import Image

    rows = [_enlarge(np.asarray(r, dtype=np.uint8), scale) for r in rows]
    t, h, w, _ = rows[0].shape
    sheet = np.full((len(rows) * (h + gap) - gap, t * (w + gap) - gap, 3), 255, dtype=np.uint8)
    for i, clip in enumerate(rows):
        for j, frame in enumerate(clip):
            sheet[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = frame
    Image.fromarray(sheet).save(path)
    return path
