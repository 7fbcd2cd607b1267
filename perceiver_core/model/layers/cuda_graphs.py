"""CUDA graphs for inference: a model's no-grad forward captured once per input shape, then replayed.

A Perceiver IO forward at batch 1 launches about a thousand kernels (48 latent self-attends, each a handful of
kernels even when compiled); on an H100 the launches, not the arithmetic, set its time (~25-30 ms for a 64^2
image). Replaying a captured graph launches them all at once. Shapes are static per capture: each new set of
input shapes and dtypes is captured once (a few warm-up calls on a side stream first, which also compiles any
compiled regions), and its input and output buffers are kept for replays. Outputs are copied out of the graph's
buffer, so a result stays valid after the next call.

On devices other than CUDA the wrapper calls the model directly.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Mapping

import torch
from torch import nn


class GraphedInference:
    """Call `model(batch)` under no_grad (and `context()`, e.g. autocast) through one CUDA graph per shape.

    warmup: eager calls before a capture (kernel autotuning, compilation, allocator warm-up).
    """

    def __init__(self, model: nn.Module, context: Callable[[], contextlib.AbstractContextManager] | None = None,
                 warmup: int = 3):
        self.model = model
        self.context = context or contextlib.nullcontext
        self.warmup = warmup
        self._graphs: dict[tuple, tuple[dict[str, torch.Tensor], torch.Tensor, torch.cuda.CUDAGraph]] = {}

    def _forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad(), self.context():
            return self.model(batch)

    def __call__(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        tensors = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
        if not tensors or next(iter(tensors.values())).device.type != "cuda" or len(tensors) != len(batch):
            return self._forward(batch)
        key = tuple((k, tuple(v.shape), v.dtype) for k, v in sorted(tensors.items()))
        if key not in self._graphs:
            self._graphs[key] = self._capture(tensors)
        static_in, static_out, graph = self._graphs[key]
        for name, value in tensors.items():
            static_in[name].copy_(value, non_blocking=True)
        graph.replay()
        return static_out.clone()

    def _capture(self, batch: dict[str, torch.Tensor]):
        static_in = {k: v.clone() for k, v in batch.items()}
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up off the default stream, as capture requires
            for _ in range(self.warmup):
                self._forward(static_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self._forward(static_in)
        return static_in, static_out, graph

    def clear(self) -> None:
        """Drop every captured graph and its buffers (e.g. after the model's weights were replaced)."""
        self._graphs.clear()
