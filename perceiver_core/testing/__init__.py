"""The plugin author's kit: conformance suites per component kind, and pytest fixtures.

The fixtures (`plugin_manager`, `register_plugin`, `build_context`, `perceiver_cli`) load automatically through
the `pytest11` entry point once perceiver-core is installed. The suites are base classes to subclass in a class
named `Test...`:

    from perceiver_core.testing import PreprocessorConformance, PositionConformance, EncoderConformance,
        DecoderConformance, TaskConformance, DatasetConformance, BackendConformance

They are imported lazily: importing this package (as pytest does for the fixtures) does not import torch.
"""

from __future__ import annotations

import importlib

_SUITES = ("PreprocessorConformance", "PositionConformance", "EncoderConformance", "DecoderConformance",
           "TaskConformance", "DatasetConformance", "BackendConformance")
__all__ = list(_SUITES)


def __getattr__(name: str):
    if name in _SUITES:
        value = getattr(importlib.import_module(".conformance", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'perceiver_core.testing' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
