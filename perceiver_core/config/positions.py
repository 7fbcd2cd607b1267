"""Configs of the built-in position encodings."""

from pydantic import Field

from .base import ComponentConfig
from .numbers import Size


class FourierPositionConfig(ComponentConfig):
    num_bands: Size = Field(64, description="K: frequency bands per input dimension")
    max_resolution: tuple[Size, ...] | None = Field(
        None, description="highest resolution per dimension; frequencies run linearly from 1 to max_resolution/2 "
                          "(default: the input's index shape)")
    concat_pos: bool = Field(True, description="also emit the raw positions in [-1, 1]")
    sine_only: bool = Field(False, description="drop the cosine features")
    project_to: Size | None = Field(None, description="project the features to this many channels with a "
                                                   "linear layer (HF's project_pos_dim; default: no projection)")


class LearnedPositionConfig(ComponentConfig):
    num_channels: Size = Field(64, description="channels of the learned position embedding")
    init_scale: float = Field(0.02, gt=0, description="std of the truncated-normal initialisation")
    project_to: Size | None = Field(None, description="project the embedding to this many channels with a "
                                                   "linear layer (HF's project_pos_dim; default: no projection)")
    interpolate: bool = Field(False, description="inputs of another 2-d index shape get the embedding resized "
                                                 "bicubically (as HF's interpolate_pos_encoding); otherwise an error")


class NoPositionConfig(ComponentConfig):
    """No position features (for inputs whose order carries no meaning, or when the preprocessor adds them)."""

