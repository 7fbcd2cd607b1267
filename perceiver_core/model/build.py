"""Composing the registry layer with the model layer: a pipeline or preset name -> an untrained model.

This is the one place where registry files meet `nn.Module`s, so `registry/` never imports `model/` (the old
pipeline -> registry_file -> presets -> pipeline circle).
"""

from __future__ import annotations

from ..registry.file import load_registry
from .pipeline import Pipeline, build_from_spec


def build_pipeline(name: str, *, registry_files=(), overrides=(), plugin_manager=None) -> Pipeline:
    """Resolve a pipeline by name from the registry files and build its model (untrained)."""
    spec = load_registry(registry_files).resolve(name, overrides, plugin_manager=plugin_manager)
    return build_from_spec(spec, plugin_manager=plugin_manager)


def build_preset(name: str, *, device: str = "meta", overrides=(), plugin_manager=None) -> Pipeline:
    """The model of a preset, built on `device` (default meta: shapes only, nothing allocated)."""
    import torch

    registry = load_registry(include_default=False, plugin_manager=plugin_manager)  # presets of core and plugins
    spec = registry.resolve(name, overrides, plugin_manager=plugin_manager)
    with torch.device(device):
        return build_from_spec(spec, plugin_manager=plugin_manager)
