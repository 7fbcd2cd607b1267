"""`MultiInput`: the data-worker half of a pipeline with several inputs.

Each input's preprocessor prepares the same raw example (a dict carrying every input's keys, e.g. {"image": ...,
"label": 3}); its tensors are stored under `<input>.<key>` ("image.pixels", "label.label") so two inputs never
collide, and each preprocessor's learned half reads its own keys back (`select`). The learned halves produce one
ByteArray per input; `Packing` makes them one.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from ..byte_array import ByteArray
from ..interfaces import Preprocessor


class MultiInput(Preprocessor):
    """Preprocessors by input name (sorted: the packing order); registered under their names."""

    tensor_input = None

    def __init__(self, preprocessors: Mapping[str, Preprocessor]):
        super().__init__()
        self.names = sorted(preprocessors)
        for name in self.names:
            if hasattr(self, name):
                raise ValueError(f"an input cannot be named {name!r} (a name the model uses itself); rename it")
            self.add_module(name, preprocessors[name])
        self.index_shape = (sum(math.prod(preprocessors[n].index_shape) for n in self.names),)
        self.output_channels = max(preprocessors[n].output_channels for n in self.names)

    def __getitem__(self, name: str) -> Preprocessor:
        return getattr(self, name)

    def items(self):
        return [(name, self[name]) for name in self.names]

    def prepare(self, example: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, pre in self.items():
            out.update({f"{name}.{key}": value for key, value in pre.prepare(example).items()})
        return out

    def augment(self, example: Mapping[str, Any], generator: torch.Generator) -> Mapping[str, Any]:
        for _, pre in self.items():  # each augments its own keys of the shared example, in input order
            example = pre.augment(example, generator)
        return example

    @staticmethod
    def select(batch: Mapping[str, Any], name: str) -> dict[str, Any]:
        """The keys of one input, without the `<input>.` prefix."""
        prefix = f"{name}."
        return {key[len(prefix):]: value for key, value in batch.items() if key.startswith(prefix)}

    def forward_parts(self, batch: Mapping[str, Any]) -> list[tuple[str, ByteArray]]:
        return [(name, pre(self.select(batch, name))) for name, pre in self.items()]

    def forward(self, batch: Mapping[str, Any]) -> ByteArray:
        raise TypeError("a pipeline of several inputs packs them with their position encodings: use "
                        "model.embed(batch) for the packed byte array")

    def read_input(self, path: str) -> dict[str, Any]:
        raise NotImplementedError(f"a model of several inputs ({', '.join(self.names)}) reads examples with each "
                                  "input's keys (model.predict([{...}])), not one file")
