"""Config models of the image components (pydantic only: importing them does not import torch)."""

from typing import Annotated, Literal

from pydantic import Field

from perceiver_core.config import MAX_SIZE, ComponentConfig, DataConfig, FileDataConfig, Seed, Size

PositiveStd = Annotated[float, Field(gt=0)]


class _ImageConfig(ComponentConfig):
    mean: tuple[float, ...] = Field((0.5,), description="per-channel mean subtracted from pixels in [0, 1] "
                                                        "(one value applies to every channel)")
    std: tuple[PositiveStd, ...] = Field((0.5,), description="per-channel standard deviation pixels are divided by "
                                                             "(each > 0)")
    augment_shift: int = Field(0, ge=0, description="training only: shift each image by up to this many pixels "
                                                    "in each direction (zero fill), seeded per epoch and example")
    dataset_stats: bool = Field(False, description="normalise with the dataset's per-channel mean and std "
                                                   "(image.folder computes them once and caches them) instead of "
                                                   "mean/std")
    other_sizes: Literal["fit", "native"] = Field(
        "fit", description="images of another size than the model was built for: fit = shorter side resized and "
                           "centre-cropped to it (the evaluation transform, as timm's; grey/RGB converted); native = "
                           "kept at their own size, the model reading their own grid (Fourier positions of the "
                           "actual grid, learned positions interpolated, as HF's interpolate_pos_encoding)")


class PixelsConfig(_ImageConfig):
    permute_seed: Seed | None = Field(
        None, description="shuffle the pixels with a fixed permutation from this seed; each pixel keeps its true "
                          "(x, y) position, so a Perceiver is unaffected while a CNN is not")


class PatchesConfig(_ImageConfig):
    patch_size: Size = Field(4, description="side of the square patches (space-to-depth block size)")
    project_to: Size | None = Field(None, description="project each patch to this many channels (linear)")


class DigitsConfig(DataConfig):
    test_fraction: float = Field(0.2, gt=0, lt=1, description="fraction of the 1,797 images held out as 'test'")
    split_seed: Seed = Field(0, description="seed of the fixed, stratified train/test split")


class ConvConfig(_ImageConfig):
    """DeepMind's conv stem as HF implements it: 7x7 stride-2 conv (padding 3, no bias), batch norm, ReLU,
    3x3 stride-2 max pool without padding: 224x224 -> 55x55 (DeepMind's SAME-padded pool gives 56x56)."""

    out_channels: Size = Field(64, description="channels of the convolution")
    use_batchnorm: bool = Field(True, description="batch norm after the convolution")
    padding: Literal["hf", "same"] = Field(
        "hf", description="hf: conv padded by 3 on every side, pool unpadded (HF; 224 -> 55); same: TensorFlow "
                          "SAME padding of conv and pool, as DeepMind's Haiku model (224 -> 56)")


class Conv1x1Config(_ImageConfig):
    """A 1x1 convolution (a per-pixel linear map), optionally strided."""

    out_channels: Size = Field(256, description="channels of the convolution")
    spatial_downsample: Size = Field(1, description="stride of the convolution")


class ImageFolderConfig(FileDataConfig):
    """Your own images: a folder of class subfolders (optionally under train/ val/ test/), a manifest of paths and
    labels, or a Parquet table with an image-bytes column. Training examples get the standard augmentations
    (random resized crop + flip, optionally RandAugment, MixUp, CutMix), all seeded by (seed, epoch, index);
    evaluation and `predict` resize the shorter side and take the centre crop."""

    image_size: int = Field(224, ge=4, le=MAX_SIZE, description="side of the square images the model takes")
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
    train_crops: Size = Field(256, description="training crops (from the left part of each photo)")
    test_crops: Size = Field(16, description="test crops (from the right `crop` columns of each photo)")
    seed: Seed = Field(0, description="seed of the crop positions")


# -- dense outputs: optical flow and stereo -------------------------------------------------------------------


class FlowConfig(ComponentConfig):
    """Two frames -> per-pixel features (DeepMind's flow preprocessor): every frame zero-padded, k x k patches
    around each pixel (k*k*C values, ordered (row, column, channel)), the two frames' patches stacked (frame-major:
    2*k*k*C = 54 for k = 3, RGB), then a linear layer to `channels`."""

    mean: tuple[float, ...] = Field((0.5,), description="per-channel mean subtracted from frames in [0, 1] (0.5 and "
                                                        "std 0.5 map them to [-1, 1], as DeepMind's model expects)")
    std: tuple[PositiveStd, ...] = Field((0.5,), description="per-channel standard deviation frames are divided by")
    patch_size: int | tuple[int, int] = Field(
        3, description="k, or (k_h, k_w): the patch around each pixel (odd sides; zero-padded by k // 2); DeepMind: 3. "
                       "A wide patch (e.g. (3, 17)) lets each pixel see its stereo match directly")
    channels: Size = Field(64, description="output channels of the linear layer after patching")
    hflip: float = Field(0.0, ge=0, le=1, description="training only: probability of mirroring both frames left-right "
                                                      "(the flow's u is negated and mirrored)")
    vflip: float = Field(0.0, ge=0, le=1, description="training only: probability of mirroring both frames "
                                                      "top-bottom (v is negated and mirrored)")
    reverse: float = Field(0.0, ge=0, le=1, description="training only: probability of swapping the frames; used "
                                                        "only with examples that carry the backward flow "
                                                        "('flow_backward'), which becomes the target")
    brightness: float = Field(0.0, ge=0, lt=1, description="training only: each frame's brightness is scaled by a "
                                                           "factor drawn from [1 - b, 1 + b]")
    random_crop: bool = Field(True, description="training only: frames larger than the training size are cut to "
                                                "it at a random position (with their flow)")


class FlowDecoderConfig(ComponentConfig):
    """DeepMind's FlowDecoder: the queries are the preprocessed inputs themselves (data and positions), one per
    pixel; they cross-attend to the latents; a zero-initialised linear layer maps each to (u, v); the outputs are
    divided by `rescale_factor`."""

    num_heads: Size = Field(1, description="heads of the decoder cross-attend")
    qk_channels: Size | None = Field(None, description="query/key channels (default: the latents' channels)")
    v_channels: Size | None = Field(None, description="value channels (default: qk channels)")
    widening: Size = Field(1, description="MLP widening factor")
    use_query_residual: bool = Field(False, description="add the queries back after the cross-attend")
    rescale_factor: float = Field(100.0, gt=0, description="the head's output is divided by this (DeepMind: 100)")
    output_channels: Size = Field(2, description="channels per pixel: 2 for optical flow (u, v)")


class FlowTaskConfig(ComponentConfig):
    """Dense regression of a flow field: end-point error (EPE) training loss over valid pixels; EPE and outlier
    rate as metrics; predictions are [H, W, 2] flow fields in pixels."""

    flow_scale: float = Field(20.0, gt=0, description="the model's outputs times this are pixels (DeepMind's "
                                                      "FLOW_SCALE_FACTOR: targets are divided by it in training)")
    loss: Literal["epe", "l1"] = Field("epe", description="epe: mean Euclidean error per pixel; l1: mean absolute "
                                                          "error of u and v")
    outlier_pixels: float = Field(3.0, gt=0, description="an outlier's error exceeds this many pixels ...")
    outlier_fraction: float = Field(0.05, ge=0, description="... and this fraction of the true flow's length "
                                                            "(KITTI's Fl / D1 definition)")
    tile_overlap: Size = Field(20, description="prediction on frames larger than the training size: tiles of "
                                                    "the training size overlapping by at least this many pixels "
                                                    "(DeepMind: 20), blended by distance to the tile's edge")
    tile_batch: Size = Field(8, description="tiles run through the model at once")
    tile_weights: Literal["interior", "deepmind"] = Field(
        "interior", description="deepmind: weight = distance to the tile's nearest edge; interior: the same, "
                                "counting only edges that face another tile (continuous along the frame's border)")
    kind: Literal["flow", "disparity"] = Field("flow", description="disparity: the flow of a rectified stereo pair "
                                                                   "(left to right, u = -disparity); predictions "
                                                                   "also report the disparity map")


class PairsConfig(DataConfig):
    """Frame pairs and ground truth from the user's own files, in one of two layouts:

    pairs_file: a text file, one example per line: `FRAME0 FRAME1 TRUTH` (comma- or whitespace-separated, paths
      relative to the file's folder; lines starting with # are comments);
    frames + truth: a folder of frames (consecutive frames in sorted order within each sub-folder form pairs,
      Sintel's layout) and a folder mirroring it that holds each pair's truth under its first frame's name
      (frame_0001.png -> frame_0001.flo / .pfm / .npy / .png).

    Training pairs are cut at random positions to `crop` by the preprocessor's augmentation (a new crop every
    epoch, `repeats` per pair); held-out pairs give `test_crops` fixed crops each."""

    pairs_file: str | None = Field(None, description="list file of FRAME0 FRAME1 TRUTH lines")
    frames: str | None = Field(None, description="folder of frames (consecutive sorted frames pair up)")
    truth: str | None = Field(None, description="folder of ground truth mirroring `frames`, named by the first frame")
    kind: Literal["flow", "disparity"] = Field("flow", description="flow: truth is .flo/.pfm/.npy [H, W, 2]; "
                                                                   "disparity: .pfm/.npy/.png [H, W] (left view, "
                                                                   "u = -disparity)")
    crop: tuple[int, int] = Field(description="(H, W) of the training crops: the model's training size")
    channels: Size = Field(3, description="channels of the frames")
    test_fraction: float = Field(0.2, ge=0, lt=1, description="fraction of the pairs held out as 'test'")
    split_seed: Seed = Field(0, description="seed of the train/test split of the pairs")
    repeats: Size = Field(1, description="training examples per pair per epoch (each a new random crop)")
    test_crops: Size = Field(4, description="fixed crops per held-out pair")


class StereoMotorcycleConfig(DataConfig):
    """scikit-image's bundled Middlebury 2014 'Motorcycle' stereo pair (left, right, left disparity; 500 x 741,
    disparities 7-60 px, unknown ones marked inf), downscaled and cut into crops: a stereo-disparity task that
    installs offline. The right `test_fraction` of the columns is held out: training crops come from the rest."""

    scale: Size = Field(4, description="downscale the pair by this factor (area average; disparity / scale)")
    crop: tuple[int, int] = Field((32, 48), description="(H, W) of the crops: the model's training size")
    test_fraction: float = Field(0.3, gt=0, lt=1, description="right fraction of the columns held out as 'test'")
    train_crops: Size = Field(2048, description="training examples per epoch (each a new random crop)")
    test_crops: Size = Field(64, description="fixed held-out crops (seeded)")
    split_seed: Seed = Field(0, description="seed of the held-out crops' positions")
