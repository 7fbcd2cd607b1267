"""Public helpers for dataset plugins (the implementation lives in `perceiver_core.data.arrays`)."""

from .data.arrays import ArraySplit, stratified_split

__all__ = ["ArraySplit", "stratified_split"]
