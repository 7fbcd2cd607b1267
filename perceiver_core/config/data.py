"""Loader settings shared by every dataset config (a dataset's own config subclasses `DataConfig`), and the
config of the built-in `none` dataset."""

from pydantic import Field

from .base import ComponentConfig


class DataConfig(ComponentConfig):
    batch_size: int = Field(64, ge=1, description="examples per training batch")
    eval_batch_size: int | None = Field(None, ge=1, description="examples per evaluation batch (default: batch_size)")
    num_workers: int = Field(0, ge=0, description="data worker threads running Preprocessor.prepare (0: inline)")
    shuffle: bool = Field(True, description="reshuffle the training split every epoch (seeded by train.seed)")
    drop_last: bool = Field(False, description="drop the last, smaller training batch of an epoch")


class NoDataConfig(DataConfig):
    """No examples: for presets and imported checkpoints that are built, counted or used by `predict` only.

    It states the facts about the examples that the preprocessors and tasks need to build the model.
    """

    image_shape: tuple[int, ...] | None = Field(None, description="(H, W, C) of the images the model takes")
    num_classes: int | None = Field(None, ge=2, description="number of classes of a classifier")
