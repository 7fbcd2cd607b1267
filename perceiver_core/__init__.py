"""perceiver_core: interfaces, models, plugins, registry files, training and checkpoints for the Perceiver family.

The public API is re-exported here and loaded lazily, so `import perceiver_core` (and listing plugins) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import (
    BackendError,
    ByteArrayError,
    CheckpointError,
    InputSizeError,
    MissingComponentError,
    PluginError,
    RegistryError,
    UserError,
)
from .hookspecs import hookimpl
from .version import CORE_API_VERSION, __version__

# public name -> "module" (same attribute name) or "module:attr", relative to this package
_LAZY = {
    "ByteArray": "byte_array", "Segment": "byte_array",
    "BuildContext": "interfaces", "Preprocessor": "interfaces", "PositionEncoding": "interfaces",
    "Encoder": "interfaces", "Encoded": "interfaces", "Decoder": "interfaces", "QueryBuilder": "interfaces",
    "Task": "interfaces", "Dataset": "interfaces", "Backend": "interfaces",
    "Pipeline": "model.pipeline", "build_from_spec": "model.pipeline", "build_dataset": "model.pipeline",
    "collate": "data.loader",
    "read_npy": "data.readers", "read_bounded": "data.readers", "checked_input_file": "data.readers",
    "max_image_pixels": "data.readers", "max_input_bytes": "data.readers",
    "InputFileError": "data.readers",
    "build_pipeline": "model.build", "build_preset": "model.build",
    "load_registry": "registry.file", "PipelineSpec": "registry.spec",
    "from_checkpoint": "runtime.checkpoint", "save_checkpoint": "runtime.checkpoint",
    "inspect_checkpoint": "runtime.checkpoint", "Callback": "runtime.callbacks",
    "train": "runtime.training", "evaluate_model": "runtime.evaluate",
    "PluginManager": "plugins.manager", "get_plugin_manager": "plugins.manager",
    "select_backend": "runtime.backends",
    "import_hf": "commands.import_hf",
    # building blocks plugins may reuse (so they never import internals)
    "BasicDecoder": "model.decoders.basic", "linear_positions": "model.positions.fourier",
    "fourier_features": "model.positions.fourier",
    "MultiHeadAttention": "model.layers.attention", "CrossAttention": "model.layers.attention",
    "SelfAttention": "model.layers.attention",
    "record_attention_weights": "model.layers.attention", "AttentionRecord": "model.layers.attention",
    "AttentionPolicy": "model.layers.kernels", "set_attention_policy": "model.layers.kernels:set_policy",
    "get_attention_policy": "model.layers.kernels:get_policy",
}

__all__ = ["CORE_API_VERSION", "__version__", "hookimpl", "UserError", "RegistryError", "PluginError",
           "MissingComponentError", "CheckpointError", "ByteArrayError", "BackendError",
           "InputSizeError", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'perceiver_core' has no attribute {name!r}")
    module, _, attr = module.partition(":")
    value = getattr(importlib.import_module(f".{module}", __name__), attr or name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover
    from .byte_array import ByteArray, Segment
    from .commands.import_hf import import_hf
    from .data.loader import collate
    from .interfaces import (
        Backend,
        BuildContext,
        Dataset,
        Decoder,
        Encoded,
        Encoder,
        PositionEncoding,
        Preprocessor,
        QueryBuilder,
        Task,
    )
    from .model.build import build_pipeline, build_preset
    from .model.decoders.basic import BasicDecoder
    from .model.layers.attention import (
        AttentionRecord,
        CrossAttention,
        MultiHeadAttention,
        SelfAttention,
        record_attention_weights,
    )
    from .model.layers.kernels import AttentionPolicy
    from .model.layers.kernels import get_policy as get_attention_policy
    from .model.layers.kernels import set_policy as set_attention_policy
    from .model.pipeline import Pipeline, build_dataset, build_from_spec
    from .model.positions.fourier import fourier_features, linear_positions
    from .plugins.manager import PluginManager, get_plugin_manager
    from .registry.file import load_registry
    from .registry.spec import PipelineSpec
    from .runtime.backends import select_backend
    from .runtime.callbacks import Callback
    from .runtime.checkpoint import from_checkpoint, inspect_checkpoint, save_checkpoint
    from .runtime.evaluate import evaluate_model
    from .runtime.training import train
