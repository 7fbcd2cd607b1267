"""Config models of the image components (pydantic only: importing them does not import torch)."""

from typing import Literal

from pydantic import Field

from perceiver_core.config import ComponentConfig, DataConfig, FileDataConfig


class _ImageConfig(ComponentConfig):
    mean: tuple[float, ...] = Field((0.5,), description="per-channel mean subtracted from pixels in [0, 1] "
                                                        "(one value applies to every channel)")
    std: tuple[float, ...] = Field((0.5,), description="per-channel standard deviation pixels are divided by")
    augment_shift: int = Field(0, ge=0, description="training only: shift each image by up to this many pixels "
                                                    "in each direction (zero fill), seeded per epoch and example")
    dataset_stats: bool = Field(False, description="normalise with the dataset's per-channel mean and std "
                                                   "(image.folder computes them once and caches them) instead of "
                                                   "mean/std")


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


class ImageFolderConfig(FileDataConfig):
    """Your own images: a folder of class subfolders (optionally under train/ val/ test/), a manifest of paths and
    labels, or a Parquet table with an image-bytes column. Training examples get the standard augmentations
    (random resized crop + flip, optionally RandAugment, MixUp, CutMix), all seeded by (seed, epoch, index);
    evaluation and `predict` resize the shorter side and take the centre crop."""

    image_size: int = Field(224, ge=4, description="side of the square images the model takes")
    mode: Literal["RGB", "L"] = Field("RGB", description="RGB (3 channels) or L (greyscale, 1 channel)")
    image_column: str = Field("image", description="table layout: column of encoded image bytes (or of "
                                                   "{'bytes': ...} structs, as Hugging Face datasets write them)")
    crop_fraction: float = Field(0.875, gt=0, le=1, description="evaluation: the centre crop covers this fraction "
                                                                "of the resized shorter side")
    train_crop: Literal["random_resized", "center"] = Field(
        "random_resized", description="training crop: random_resized (Inception-style) or center (as evaluation)")
    crop_scale: tuple[float, float] = Field((0.08, 1.0), description="random_resized: range of the crop's area "
                                                                     "fraction")
    crop_ratio: tuple[float, float] = Field((0.75, 4 / 3), description="random_resized: range of its aspect ratio")
    hflip: float = Field(0.5, ge=0, le=1, description="probability of a left-right flip in training")
    rand_augment_ops: int = Field(0, ge=0, le=14, description="RandAugment: ops per image (0: off; the Perceiver "
                                                              "IO ImageNet recipe uses 2)")
    rand_augment_magnitude: int = Field(9, ge=0, le=30, description="RandAugment magnitude (of 30)")
    mixup_alpha: float = Field(0.0, ge=0, description="MixUp Beta(alpha, alpha) (0: off; the recipe uses 0.2)")
    cutmix_alpha: float = Field(0.0, ge=0, description="CutMix Beta(alpha, alpha) (0: off; the recipe uses 1.0)")
    mix_probability: float = Field(1.0, ge=0, le=1, description="probability that an example is mixed at all")
    cutmix_probability: float = Field(0.5, ge=0, le=1, description="with both on: probability of CutMix over MixUp")
    max_pixels: int = Field(89_478_485, ge=1, description="refuse images with more pixels (decompression bombs)")
    transparent: Literal["white", "refuse"] = Field("white", description="images with alpha: composite onto white, "
                                                                         "or refuse them")
    sixteen_bit: Literal["scale", "refuse"] = Field("scale", description="16-bit greyscale images: scale to [0, 1], "
                                                                         "or refuse them")
class PhotosConfig(DataConfig):
    crop: int = Field(256, ge=8, le=427, description="side of the square crops (256: 65,536 pixels)")
    train_crops: int = Field(256, ge=1, description="training crops (from the left part of each photo)")
    test_crops: int = Field(16, ge=1, description="test crops (from the right `crop` columns of each photo)")
    seed: int = Field(0, description="seed of the crop positions")
