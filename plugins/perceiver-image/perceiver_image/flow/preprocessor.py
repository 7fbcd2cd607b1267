"""`image.flow`: a pair of frames -> one input element per pixel of frame 0 (DeepMind's optical-flow preprocessor).

    prepare: frames [2, H, W, C] in [0, 1] -> normalised [2, C, H, W] (+ flow [H, W, 2], valid [H, W] if given)
    forward: frames [B, 2, C, H, W] --k x k patches, zero-padded--> [B, H, W, 2*k*k*C] --Linear--> [B, H*W, channels]
             or HF's pre-extracted patches [B, 2, k*k*C, H, W] (key "patches") --> the same features

Frames of any size are accepted (the Fourier positions are computed for their grid); the pipeline's
`index_shape` is the training size (the dataset's image_shape), which tiled prediction uses as the tile size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from perceiver_core import BuildContext, ByteArray, Preprocessor
from perceiver_core.errors import InputSizeError, UserError

from ..common import dataset_image_shape, normaliser, read_image
from ..configs import FlowConfig
from .augment import augment_pair
from .pair import as_flow, as_frames, valid_mask
from .patches import frame_patches, stack_patches


class FlowPreprocessor(Preprocessor):
    def __init__(self, config: FlowConfig, context: BuildContext):
        super().__init__()
        h, w, c = dataset_image_shape(context, "image.flow", ": the training size")
        k = (config.patch_size,) * 2 if isinstance(config.patch_size, int) else tuple(config.patch_size)
        if len(k) != 2 or any(side < 1 or side % 2 == 0 for side in k):
            raise ValueError(f"image.flow patch_size must be odd (a pixel in the middle), got {config.patch_size}")
        self.config = config
        self.k, self.image_channels = k, c
        self.index_shape = (h, w)
        self.patch_channels = k[0] * k[1] * c  # per frame: 27 for 3x3, RGB
        self.project = nn.Linear(2 * self.patch_channels, config.channels)  # [.., 54] -> [.., 64] (conv_after_patches)
        self.output_channels = config.channels
        self.mean, self.std = normaliser(config.mean, config.std, c)  # CPU tensors: prepare runs in data workers

    # -- data workers ------------------------------------------------------------------------------------------
    def augment(self, example: Mapping[str, Any], generator: torch.Generator) -> Mapping[str, Any]:
        c = self.config
        return augment_pair(example, generator, size=self.index_shape, random_crop=c.random_crop, hflip=c.hflip,
                            vflip=c.vflip, reverse=c.reverse, brightness=c.brightness)

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        if "patches" in example:  # HF's form, already normalised: [2, k*k*C, H, W]
            patches = torch.as_tensor(np.asarray(example["patches"], dtype=np.float32))
            self._check_patches(patches[None])
            out: dict[str, Any] = {"patches": patches}
            h, w = patches.shape[-2:]
        else:
            frames = as_frames(example["frames"])  # [2, H, W, C]
            if frames.shape[-1] != self.image_channels:
                raise InputSizeError(f"image.flow was built for frames with {self.image_channels} channel(s), got "
                                     f"{frames.shape[-1]} (frames {list(frames.shape)})")
            h, w = frames.shape[1:3]
            out = {"frames": ((frames - self.mean) / self.std).permute(0, 3, 1, 2).contiguous()}  # [2, C, H, W]
        if example.get("flow") is not None:
            flow = as_flow(example["flow"], (h, w))
            valid = valid_mask(flow, example.get("valid"))
            out["flow"] = torch.where(valid[..., None], flow, torch.zeros(())).contiguous()  # [H, W, 2], 0 if unknown
            out["valid"] = valid.float()  # [H, W]
        return out

    def _check_patches(self, patches: torch.Tensor) -> None:
        if patches.dim() != 5 or patches.shape[1] != 2 or patches.shape[2] != self.patch_channels:
            raise ValueError(f"patches must be [B, 2, {self.patch_channels}, H, W] (HF's optical-flow input), "
                             f"got {list(patches.shape)}")

    # -- the learned part ----------------------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, torch.Tensor]) -> ByteArray:
        if "patches" in batch:
            patches = batch["patches"]  # [B, 2, k*k*C, H, W]
            self._check_patches(patches)
        else:
            frames = batch["frames"]  # [B, 2, C, H, W]
            if frames.dim() != 5 or frames.shape[1] != 2 or frames.shape[2] != self.image_channels:
                raise ValueError(f"batch['frames'] must be [B, 2, {self.image_channels}, H, W], got "
                                 f"{list(frames.shape)}")
            patches = frame_patches(frames, self.k)  # [B, 2, k*k*C, H, W]
        features = self.project(stack_patches(patches))  # [B, H, W, 2*k*k*C] -> [B, H, W, channels]
        b, h, w, c = features.shape
        return ByteArray(features.reshape(b, h * w, c), (h, w), modality="image")  # [B, H*W, channels]

    # -- perceiver predict ----------------------------------------------------------------------------------------
    def read_input(self, path: str) -> dict[str, Any]:
        """FRAME0,FRAME1 (two image files), or one .npy holding frames [2, H, W(, C)] or HF patches [2, P, H, W]."""
        parts = path.split(",")
        if len(parts) == 2:
            frames = [read_image(p)["image"] for p in parts]  # [H, W, C] each, in [0, 1]
            if frames[0].shape != frames[1].shape:
                raise UserError(f"{path}: the two frames differ in size ({list(frames[0].shape)} vs "
                                f"{list(frames[1].shape)})")
            return {"frames": torch.stack(frames)}
        if len(parts) == 1 and Path(path).suffix.lower() == ".npy":
            if not Path(path).is_file():
                raise UserError(f"input file {path!r} does not exist")
            try:
                array = np.load(path, allow_pickle=False, mmap_mode="r")
            except ValueError as exc:
                raise UserError(f"{path}: not a plain numeric .npy array ({exc})") from None
            if array.ndim == 4 and array.shape[0] == 2 and array.shape[1] == self.patch_channels:
                return {"patches": np.asarray(array, dtype=np.float32)}
            return {"frames": np.asarray(array)}
        raise UserError(f"{path!r}: give a frame pair as FRAME0,FRAME1 (two image files) or one .npy of "
                        "frames [2, H, W, C]")
