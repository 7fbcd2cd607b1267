"""Config models of the image components (pydantic only: importing them does not import torch)."""

from typing import Literal

from pydantic import Field

from perceiver_core.config import ComponentConfig, DataConfig


class _ImageConfig(ComponentConfig):
    mean: tuple[float, ...] = Field((0.5,), description="per-channel mean subtracted from pixels in [0, 1] "
                                                        "(one value applies to every channel)")
    std: tuple[float, ...] = Field((0.5,), description="per-channel standard deviation pixels are divided by")
    augment_shift: int = Field(0, ge=0, description="training only: shift each image by up to this many pixels "
                                                    "in each direction (zero fill), seeded per epoch and example")


class PixelsConfig(_ImageConfig):
    permute_seed: int | None = Field(
        None, description="shuffle the pixels with a fixed permutation from this seed; each pixel keeps its true "
                          "(x, y) position, so a Perceiver is unaffected while a CNN is not")


class PatchesConfig(_ImageConfig):
    patch_size: int = Field(4, ge=1, description="side of the square patches (space-to-depth block size)")
    project_to: int | None = Field(None, ge=1, description="project each patch to this many channels (linear)")


class DigitsConfig(DataConfig):
    test_fraction: float = Field(0.2, gt=0, lt=1, description="fraction of the 1,797 images held out as 'test'")
    split_seed: int = Field(0, description="seed of the fixed, stratified train/test split")


class ConvConfig(_ImageConfig):
    """DeepMind's conv stem as HF implements it: 7x7 stride-2 conv (padding 3, no bias), batch norm, ReLU,
    3x3 stride-2 max pool without padding: 224x224 -> 55x55 (DeepMind's SAME-padded pool gives 56x56)."""

    out_channels: int = Field(64, ge=1, description="channels of the convolution")
    use_batchnorm: bool = Field(True, description="batch norm after the convolution")
    padding: Literal["hf", "same"] = Field(
        "hf", description="hf: conv padded by 3 on every side, pool unpadded (HF; 224 -> 55); same: TensorFlow "
                          "SAME padding of conv and pool, as DeepMind's Haiku model (224 -> 56)")


class Conv1x1Config(_ImageConfig):
    """A 1x1 convolution (a per-pixel linear map), optionally strided."""

    out_channels: int = Field(256, ge=1, description="channels of the convolution")
    spatial_downsample: int = Field(1, ge=1, description="stride of the convolution")


class PhotosConfig(DataConfig):
    crop: int = Field(256, ge=8, le=427, description="side of the square crops (256: 65,536 pixels)")
    train_crops: int = Field(256, ge=1, description="training crops (from the left part of each photo)")
    test_crops: int = Field(16, ge=1, description="test crops (from the right `crop` columns of each photo)")
    seed: int = Field(0, description="seed of the crop positions")
