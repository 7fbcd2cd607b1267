"""Typed configuration models (pydantic only, no torch): what a registry file may say about each component.

Public: a plugin's configs subclass `ComponentConfig` (or `DataConfig` for a dataset), and may extend the
built-in components' configs re-exported here.
"""

from .base import ComponentConfig
from .data import DataConfig, FileDataConfig, NoDataConfig
from .decoders import BasicDecoderConfig, ClassificationDecoderConfig, PooledDecoderConfig
from .encoders import PerceiverEncoderConfig
from .hip import HiPDecoderConfig, HiPEncoderConfig, MAETaskConfig
from .positions import FourierPositionConfig, LearnedPositionConfig, NoPositionConfig
from .tasks import ClassificationTaskConfig
from .numbers import MAX_BATCH, MAX_CLASSES, MAX_INT, MAX_SEED, MAX_SIZE, Seed, Size
from .train import TrainConfig

__all__ = ["ComponentConfig", "DataConfig", "FileDataConfig", "NoDataConfig", "TrainConfig", "BasicDecoderConfig",
           "ClassificationDecoderConfig", "PooledDecoderConfig", "PerceiverEncoderConfig", "FourierPositionConfig",
           "LearnedPositionConfig", "NoPositionConfig", "ClassificationTaskConfig",
           "HiPEncoderConfig", "HiPDecoderConfig", "MAETaskConfig", "Size", "Seed", "MAX_INT", "MAX_SIZE",
           "MAX_CLASSES", "MAX_BATCH", "MAX_SEED"]
