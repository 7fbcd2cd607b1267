"""Config models of the components: pydantic only, so importing them (listing, validating) never imports torch.

ComponentConfig forbids unknown keys: a typo in a registry file is an error that names the key.
"""

from typing import Literal

from pydantic import Field

from perceiver_core.config import ComponentConfig, DataConfig, FileDataConfig, Seed, Size


class FeaturesConfig(ComponentConfig):
    channels: Size = Field(32, description="C: channels of each input element (one element per feature column)")
    value_embedding: Literal["per_feature", "shared"] = Field(
        "per_feature", description="per_feature: each column scales its value by a vector of its own (FT-Transformer's "
        "numerical tokenizer); shared: one vector for all columns")
    standardize: bool = Field(True, description="standardise each value with the dataset's training-split statistics "
                              "(info() feature_mean and feature_std)")
    clip: float | None = Field(5.0, gt=0, description="clip standardised values to [-clip, clip] (None: no clipping)")
    mask_missing: bool = Field(True, description="missing values (NaN, None or an absent column) are masked out of "
                               "attention; otherwise they enter as the training mean (0 after standardising)")


class _TableConfig(DataConfig):
    test_fraction: float = Field(0.2, gt=0, lt=1, description="fraction of each class held out as 'test'")
    split_seed: Seed = Field(0, description="seed of the fixed, stratified train/test split")


class WineConfig(_TableConfig):
    """scikit-learn's wine recognition data: 178 wines, 13 chemical measurements, 3 cultivars."""


class BreastCancerConfig(_TableConfig):
    """scikit-learn's Wisconsin diagnostic breast cancer data: 569 tumours, 30 features, malignant/benign."""


class IrisConfig(_TableConfig):
    """scikit-learn's iris data: 150 flowers, 4 measurements, 3 species."""


class TableFileConfig(FileDataConfig):
    """Your own table: a CSV or Parquet file (data.table) with a named target column (label_column). Numeric
    columns are standardised with the training split's mean and std; categorical columns (named, or detected:
    any value that is not a number) become one indicator feature per category; missing values (empty, NA, NaN,
    null, ?) are masked out of attention. The statistics and categories come from one cached pass over the file."""

    feature_columns: tuple[str, ...] | None = Field(None, description="columns to use (default: all but the label "
                                                                      "and split columns)")
    categorical_columns: tuple[str, ...] = Field((), description="columns to treat as categories even when their "
                                                                "values are numbers (e.g. codes)")
    max_categories: Size = Field(32, description="per categorical column: the most frequent categories kept; "
                                                      "the rest share one 'other' indicator")
