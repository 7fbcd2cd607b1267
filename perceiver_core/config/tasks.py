"""Configs of the built-in tasks."""

from pydantic import Field

from .base import ComponentConfig
from .numbers import MAX_CLASSES


class ClassificationTaskConfig(ComponentConfig):
    num_classes: int = Field(ge=2, le=MAX_CLASSES, description="number of classes")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="label smoothing of the cross-entropy")
    top_k: int = Field(1, ge=1, le=MAX_CLASSES, description="also report top-k accuracy when k > 1")
