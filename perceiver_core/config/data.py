"""Loader settings shared by every dataset config (a dataset's own config subclasses `DataConfig`), and the
config of the built-in `none` dataset."""

from typing import Literal

from pydantic import Field, model_validator

from .base import ComponentConfig
from .numbers import MAX_BATCH, MAX_CLASSES, Seed, Size


class DataConfig(ComponentConfig):
    batch_size: int = Field(64, ge=1, le=MAX_BATCH, description="examples per training batch")
    eval_batch_size: int | None = Field(None, ge=1, le=MAX_BATCH,
                                        description="examples per evaluation batch (default: batch_size)")
    num_workers: int = Field(0, ge=0, le=1024,
                             description="data worker threads running Preprocessor.prepare (0: inline)")
    shuffle: bool = Field(True, description="reshuffle the training split every epoch (seeded by train.seed)")
    drop_last: bool = Field(False, description="drop the last, smaller training batch of an epoch")


class NoDataConfig(DataConfig):
    """No examples: for presets and imported checkpoints that are built, counted or used by `predict` only.

    It states the facts about the examples that the preprocessors and tasks need to build the model.
    """

    image_shape: tuple[Size, ...] | None = Field(None, description="(H, W, C) of the images the model takes")
    num_classes: int | None = Field(None, ge=2, le=MAX_CLASSES, description="number of classes of a classifier")


class FileDataConfig(DataConfig):
    """A dataset read from the user's files, one of three layouts (exactly one of root / manifest / table):

    - `root`: a folder with one subfolder per class (the ImageFolder layout); with `train/`, `val/`, `test/`
      subfolders (each with class subfolders) those are the splits, else a seeded `val_fraction`/`test_fraction`.
    - `manifest`: a CSV or JSON lines file with a `path_column` (relative to the manifest's folder) and a
      `label_column` (class names or integers) or a numeric target; an optional `split_column`.
    - `table`: a Parquet, CSV or JSON lines table whose rows are the examples themselves (text, features).

    Files are indexed when the dataset is built and decoded lazily, in the data workers. One pass over the files
    verifies that each decodes and computes the training split's statistics; its result is cached beside the data
    (or in `cache_dir`) under a fingerprint of the files' names, sizes and modification times.
    """

    root: str | None = Field(None, description="folder of class subfolders (or of train/ val/ test/ subfolders)")
    manifest: str | None = Field(None, description="CSV (.csv) or JSON lines (.jsonl) file naming one file per row")
    table: str | None = Field(None, description="Parquet (.parquet), CSV or JSON lines table, one example per row")
    path_column: str = Field("path", description="manifest column holding each file's path")
    label_column: str | None = Field("label", description="column of class names (or integers); \"\": no labels "
                                                          "(then a folder may hold its files without class folders)")
    split_column: str | None = Field(None, description="column naming each row's split (train, val, test)")
    val_fraction: float = Field(0.0, ge=0, lt=1, description="fraction of each class held out as 'val' when the "
                                                             "data has no split subfolders or column")
    test_fraction: float = Field(0.2, ge=0, lt=1, description="fraction of each class held out as 'test' when the "
                                                              "data has no split subfolders or column")
    split_seed: Seed = Field(0, description="seed of the fraction split (stratified by class)")
    on_error: Literal["raise", "skip"] = Field(
        "raise", description="an unreadable or corrupt file: raise (name it and stop) or skip (leave it out, "
                             "report how many)")
    verify: bool = Field(True, description="decode every file once (cached) to find unreadable ones before training")
    max_file_mb: float = Field(64.0, gt=0, description="refuse files larger than this many MiB")
    cache_dir: str | None = Field(None, description="where to cache statistics when the data folder is read-only "
                                                    "(default: $PERCEIVER_CACHE_DIR or ~/.cache/perceiver)")

    @model_validator(mode="after")
    def _one_source(self):
        given = [name for name in ("root", "manifest", "table") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("set exactly one of data.root (a folder), data.manifest (a CSV/JSONL list of files) or "
                             f"data.table (a Parquet/CSV/JSONL table); got {', '.join(given) or 'none'}")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave examples for training")
        return self
