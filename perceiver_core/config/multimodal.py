"""Configs of the modality-free components for several inputs: the `patches` and `label` preprocessors, the
`multimodal` decoder and the `multimodal` task (Perceiver IO's multimodal autoencoder, DESIGN.md section 2c)."""

from typing import Literal

from pydantic import Field

from .base import ComponentConfig
from .numbers import Size


class PatchesConfig(ComponentConfig):
    """A raw array on a grid [*grid_shape, channels] cut into non-overlapping patches, each one input element of
    prod(patch_size) * channels values (space-to-depth in any number of dimensions, DeepMind's order: patch
    offsets first, channels last): a waveform [30720, 1] in 16-sample patches, a clip [16, 224, 224, 3] in
    1 x 4 x 4 patches."""

    key: str = Field("array", description="the example key holding the raw array [*grid_shape, channels] (or "
                                          "[*grid_shape] with one channel)")
    grid_shape: tuple[Size, ...] = Field(min_length=1, max_length=4, description="the raw array's grid, e.g. "
                                                                                 "[30720] or [16, 224, 224]")
    channels: int = Field(1, ge=1, le=65536, description="values per grid point (last axis)")
    patch_size: tuple[Size, ...] = Field(min_length=1, max_length=4, description="patch size per grid axis; "
                                                                                "divides grid_shape")
    scale: float = Field(1.0, description="values are multiplied by scale, then offset is added (in prepare)")
    offset: float = Field(0.0, description="see scale")


class LabelConfig(ComponentConfig):
    """A class label as one input element: its one-hot vector (HF's PerceiverOneHotPreprocessor). Mask it with
    probability 1 and the model has to predict it (a classifier), partly and it learns both ways."""

    key: str = Field("label", description="the example key holding the class index (or a vector of class scores)")
    num_classes: int | None = Field(None, ge=2, le=1 << 20, description="number of classes (default: the "
                                                                         "dataset's num_classes)")


class MultimodalOutputConfig(ComponentConfig):
    """The queries and head of one output of the multimodal decoder (named after an input)."""

    query: Literal["fourier", "learned", "input"] = Field(
        "fourier", description="fourier: features of the output points' positions; learned: a trainable vector per "
                               "output point; input: the packed input elements of this input (one query each)")
    output_index_shape: tuple[Size, ...] | None = Field(
        None, description="index shape of the output points (default: the input's index shape)")
    num_bands: Size = Field(64, description="fourier: frequency bands per dimension")
    max_resolution: tuple[Size, ...] | None = Field(
        None, description="fourier: highest resolution per dimension (default: output_index_shape)")
    concat_pos: bool = Field(True, description="fourier: also emit the raw positions")
    sine_only: bool = Field(False, description="fourier: drop the cosines")
    query_channels: Size = Field(128, description="learned: channels of each query")
    output_channels: Size | None = Field(None, description="channels of this output's head (default: the "
                                                                "input's channels: its one-hot size for a label)")
    train_points: Size | None = Field(None, description="output points decoded per training step, drawn at "
                                                             "random (DeepMind's subsampled training; default all)")


class MultimodalDecoderConfig(ComponentConfig):
    """Perceiver IO's multimodal decoder (DeepMind's MultimodalDecoder, HF's PerceiverMultimodalDecoder): each
    output's queries padded to a common width (max + min_padding) with a trainable vector of its own, one shared
    cross-attend to the latents, an optional shared projection, then a linear head per output."""

    outputs: dict[str, MultimodalOutputConfig] | None = Field(
        None, description="output name (an input's name) -> its queries and head (default: every input, Fourier "
                          "queries over its index shape)")
    min_padding: int = Field(2, ge=0, le=4096, description="channels added to the widest query (DeepMind: 2)")
    num_heads: Size = Field(1, description="heads of the shared cross-attend")
    qk_channels: Size | None = Field(None, description="query/key channels (default: see shape_for_attn)")
    v_channels: Size | None = Field(None, description="value channels (default: qk channels)")
    shape_for_attn: Literal["q", "kv"] = Field("kv", description="default qk channels: the queries' or the latents'")
    widening: Size = Field(1, description="MLP widening factor")
    use_query_residual: bool = Field(False, description="add the queries back after the cross-attend")
    project_to: Size | None = Field(None, description="a shared linear layer common width -> project_to before "
                                                           "the heads (DeepMind's 512; default: none)")
    chunk_size: int | None = Field(16384, ge=1, description="in inference, outputs are decoded this many points at a "
                                                            "time from latents encoded once (None: all at once)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout")


class MultimodalLossConfig(ComponentConfig):
    """The loss of one output of the multimodal task."""

    loss: Literal["mse", "cross_entropy"] = Field(description="mse: reconstruction; cross_entropy: a class label")
    target: str = Field(description="the batch key of the target: [B, points, channels] (any shape that flattens "
                                    "to it) for mse, class indices [B] for cross_entropy; a multi-input pipeline's "
                                    "prepared keys are named <input>.<key>")
    weight: float = Field(1.0, ge=0, description="weight of this loss in the total")


class MultimodalTaskConfig(ComponentConfig):
    """Several outputs, one loss: the weighted sum of each output's loss (reconstruction MSE, cross-entropy for a
    label); each output's loss (and accuracy for a label) is a metric of its own."""

    outputs: dict[str, MultimodalLossConfig] = Field(min_length=1, description="output name -> its loss")
