"""perceiver_core: interfaces, models, plugins, registry files, training and checkpoints for the Perceiver family.

The public API is re-exported here and loaded lazily, so `import perceiver_core` (and listing plugins) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import (BackendError, ByteArrayError, CheckpointError, MissingComponentError, PluginError,
                     RegistryError, UserError)
from .hookspecs import hookimpl
from .version import CORE_API_VERSION, __version__

_LAZY = {
    "ByteArray": "byte_array", "Segment": "byte_array",
    "BuildContext": "interfaces", "Preprocessor": "interfaces", "PositionEncoding": "interfaces",
    "Encoder": "interfaces", "Encoded": "interfaces", "Decoder": "interfaces", "QueryBuilder": "interfaces",
    "Task": "interfaces", "Dataset": "interfaces", "Backend": "interfaces",
    "Pipeline": "pipeline", "build_pipeline": "pipeline", "build_from_spec": "pipeline",
    "load_registry": "registry_file", "PipelineSpec": "spec",
    "from_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "train": "training", "evaluate_model": "training",
    "PluginManager": "plugins", "get_plugin_manager": "plugins",
    "select_backend": "backends",
    "import_hf": "hf_import", "build_preset": "presets",
}

__all__ = ["CORE_API_VERSION", "__version__", "hookimpl", "UserError", "RegistryError", "PluginError",
           "MissingComponentError", "CheckpointError", "ByteArrayError", "BackendError", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'perceiver_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover
    from .backends import select_backend
    from .byte_array import ByteArray, Segment
    from .checkpoint import from_checkpoint, save_checkpoint
    from .hf_import import import_hf
    from .presets import build_preset
    from .interfaces import (Backend, BuildContext, Dataset, Decoder, Encoded, Encoder, PositionEncoding,
                             Preprocessor, QueryBuilder, Task)
    from .pipeline import Pipeline, build_from_spec, build_pipeline
    from .plugins import PluginManager, get_plugin_manager
    from .registry_file import load_registry
    from .spec import PipelineSpec
    from .training import evaluate_model, train
