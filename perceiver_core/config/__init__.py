"""Typed configuration models (pydantic only, no torch): what a registry file may say about each component."""

from .base import ComponentConfig
from .data import DataConfig
from .train import TrainConfig

__all__ = ["ComponentConfig", "DataConfig", "TrainConfig"]
