"""Config of the `none` dataset (pydantic only, no torch)."""

from pydantic import Field

from ..config.data import DataConfig


class NoDataConfig(DataConfig):
    """No examples: for presets and imported checkpoints that are built, counted or used by `predict` only.

    It states the facts about the examples that the preprocessors and tasks need to build the model.
    """

    image_shape: tuple[int, ...] | None = Field(None, description="(H, W, C) of the images the model takes")
    num_classes: int | None = Field(None, ge=2, description="number of classes of a classifier")
