"""`video.patches`: space-time patches of a clip, one input element per patch, with a 3-D index shape.

    clip [T, H, W, C] --normalise--> --patch (t x p x p)--> [T/t, H/p, W/p, t*p*p*C] --flatten--> [M, t*p*p*C]
    forward: [B, M, t*p*p*C] --(linear)--> ByteArray [B, M, C'], index_shape (T/t, H/p, W/p), modality "video"

The core's `fourier` position encoding gives the 3-D positions over (T', H', W'); DeepMind's multimodal
autoencoder uses 32 bands at max_resolution (16, 56, 56): 3 * (2 * 32 + 1) = 195 channels, 243 with the 48 values
of a 1 x 4 x 4 RGB patch. Clips of another frame size are resized (centre crop, antialiased) to the size the model
was built for; another number of frames is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from perceiver_core import BuildContext, ByteArray, Preprocessor, read_npy
from perceiver_core.errors import InputSizeError, UserError

from .configs import PatchesConfig


def dataset_video_shape(context: BuildContext, who: str) -> tuple[int, int, int, int]:
    """(T, H, W, C) of the clips the model is built for, as the dataset reports them."""
    shape = context.dataset.get("video_shape")
    if shape is None:
        raise ValueError(f"{who} needs a dataset that reports video_shape (T, H, W, C), e.g. video.folder or "
                         "video.bigbuckbunny")
    t, h, w, c = (int(v) for v in shape)
    return t, h, w, c


def as_video(array: Any) -> torch.Tensor:
    """A clip as float32 [T, H, W, C] in [0, 1] (uint8 is divided by 255; floats are taken as they are)."""
    if isinstance(array, torch.Tensor):
        a = array.detach().cpu()
        return a.float() / 255.0 if a.dtype == torch.uint8 else a.float()
    a = np.asarray(array)
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4:
        raise UserError(f"a video must be [T, H, W] or [T, H, W, C], got shape {list(a.shape)}")
    if a.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(a)).float() / 255.0
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def to_patches(video: torch.Tensor, t: int, p: int) -> torch.Tensor:
    """[..., T, H, W, C] -> [..., T/t, H/p, W/p, t*p*p*C] (values ordered time, row, column, channel)."""
    *lead, T, H, W, C = video.shape
    x = video.reshape(*lead, T // t, t, H // p, p, W // p, p, C)  # [..., T', t, H', p, W', p, C]
    n = len(lead)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3, n + 5, n + 6)  # [..., T', H', W', t, p, p, C]
    return x.reshape(*lead, T // t, H // p, W // p, t * p * p * C)


def from_patches(patches: torch.Tensor, grid: tuple[int, int, int], t: int, p: int) -> torch.Tensor:
    """The inverse of `to_patches`: [..., M, t*p*p*C] with M = T'*H'*W' -> [..., T, H, W, C]."""
    *lead, m, k = patches.shape
    tt, hh, ww = grid
    c = k // (t * p * p)
    x = patches.reshape(*lead, tt, hh, ww, t, p, p, c)  # [..., T', H', W', t, p, p, C]
    n = len(lead)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2, n + 5, n + 6)  # [..., T', t, H', p, W', p, C]
    return x.reshape(*lead, tt * t, hh * p, ww * p, c)


def fit_frames(video: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[T, H, W, C] -> [T, h, w, C]: centre crop to the aspect ratio of `size`, antialiased bilinear resize."""
    import torch.nn.functional as F

    T, H, W, C = video.shape
    th, tw = size
    if (H, W) == (th, tw):
        return video
    if H * tw > W * th:
        ch, cw = max(1, round(W * th / tw)), W
    else:
        ch, cw = H, max(1, round(H * tw / th))
    y, x = (H - ch) // 2, (W - cw) // 2
    frames = video[:, y:y + ch, x:x + cw].permute(0, 3, 1, 2)  # [T, C, ch, cw]
    frames = F.interpolate(frames, size=(th, tw), mode="bilinear", antialias=True, align_corners=False)
    return frames.permute(0, 2, 3, 1).clamp(0, 1)  # [T, th, tw, C]


class VideoPatchPreprocessor(Preprocessor):
    def __init__(self, config: PatchesConfig, context: BuildContext):
        super().__init__()
        T, H, W, C = dataset_video_shape(context, "video.patches")
        t, p = config.time_patch, config.patch_size
        if T % t or H % p or W % p:
            raise ValueError(f"patches of {t}x{p}x{p} do not tile clips of {T}x{H}x{W} (frames x height x width): "
                             "choose frames, frame_size and patch sizes that divide")
        self.video_shape = (T, H, W, C)
        self.time_patch, self.patch = t, p
        self.index_shape = (T // t, H // p, W // p)
        patch_channels = t * p * p * C
        self.patch_channels = patch_channels
        self.project = nn.Linear(patch_channels, config.project_to) if config.project_to else nn.Identity()
        self.output_channels = config.project_to or patch_channels
        self.hflip = config.hflip
        self.frame_step = int(context.dataset.get("frame_step", 1))
        self.crop = str(context.dataset.get("crop", "center"))
        # plain CPU tensors: prepare() runs in data workers, not on the device
        self.mean, self.std = _channel_values(config.mean, C, "mean"), _channel_values(config.std, C, "std")
        if bool((self.std <= 0).any()):
            raise ValueError("std must be positive")

    def _fit(self, video: torch.Tensor) -> torch.Tensor:
        T, H, W, C = self.video_shape
        if video.shape[0] != T:
            raise InputSizeError(f"video.patches was built for clips of {T} frames, got {video.shape[0]}")
        if video.shape[-1] != C:
            raise InputSizeError(f"video.patches was built for clips of {C} channel(s), got {video.shape[-1]}")
        return fit_frames(video, (H, W))  # [T, H, W, C]

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        video = self._fit(as_video(example["video"]))  # [T, H, W, C] in [0, 1]
        video = (video - self.mean) / self.std
        patches = to_patches(video, self.time_patch, self.patch)  # [T', H', W', t*p*p*C]
        return {"patches": patches.reshape(-1, self.patch_channels)}  # [M, t*p*p*C]

    def augment(self, example: Mapping[str, Any], generator: torch.Generator) -> Mapping[str, Any]:
        if not self.hflip or float(torch.rand((), generator=generator)) >= self.hflip:
            return example
        video = np.asarray(example["video"])[:, :, ::-1]  # [T, H, W, C] mirrored left-right
        return {**example, "video": np.ascontiguousarray(video)}

    def forward(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        patches = batch["patches"]  # [B, M, t*p*p*C]
        return ByteArray(self.project(patches), self.index_shape, modality="video")  # [B, M, C']

    def input_frames(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The clips a prepared batch holds, back as pixels: [B, T, H, W, C] in [0, 1] (for pictures)."""
        video = from_patches(batch["patches"].float().cpu(), self.index_shape, self.time_patch, self.patch)
        return (video * self.std + self.mean).clamp(0, 1)  # [B, T, H, W, C]

    def save_values(self, values: torch.Tensor, path_stem: Path) -> list[Path]:
        """Patches [M, t*p*p*C] in this preprocessor's units (a multimodal reconstruction, or its target) as
        PATH_STEM.gif (for `perceiver predict`)."""
        from .pictures import save_gif

        frames = self.input_frames({"patches": values.reshape(1, -1, self.patch_channels)})[0]  # [T, H, W, C]
        frames = (frames * 255).round().to(torch.uint8).numpy()
        fps = 25.0 / self.frame_step
        return [save_gif(Path(f"{path_stem}.gif"), frames, fps, scale=4)]

    def read_input(self, path: str) -> dict[str, Any]:
        """A video file (its first T frames, frame_step apart as in training, resized) or a .npy [T, H, W, C]."""
        p = Path(path)
        if not p.is_file():
            raise UserError(f"input file {path!r} does not exist")
        if p.suffix.lower() == ".npy":
            return {"video": as_video(read_npy(p))}
        from .decode import VideoDecodeError, read_video

        T, H, W, _ = self.video_shape
        try:
            clip = read_video(str(p), num_frames=T, frame_step=self.frame_step, size=(H, W),
                              crop="stretch" if self.crop == "stretch" else "center")
        except VideoDecodeError as exc:
            raise UserError(f"{path}: {exc}") from None
        return {"video": clip.frames}  # uint8 [T, H, W, 3]


def _channel_values(values, channels: int, name: str) -> torch.Tensor:
    if len(values) == 1:
        return torch.full((channels,), float(values[0]), device="cpu")
    if len(values) != channels:
        raise ValueError(f"{name} has {len(values)} values but the clips have {channels} channels")
    return torch.tensor(values, dtype=torch.float32, device="cpu")
