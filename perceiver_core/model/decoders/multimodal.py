"""Perceiver IO's multimodal decoder (DeepMind's MultimodalDecoder, HF's PerceiverMultimodalDecoder).

    output a: queries [B, O_a, E_a] (Fourier of its output points, learned, or its input elements) --pad--> [B, O_a, E]
    output b: ...                                                                                --pad--> [B, O_b, E]
    E = max_i(E_i) + min_padding, each output padded by a trainable vector of its own; concatenated in sorted order
      --one shared cross-attend to the latents [B, N, D]--> [B, O, E] --shared projection (optional)--> [B, O, F]
      --each output's rows through its own head--> {a: [B, O_a, K_a], b: [B, O_b, K_b]}

Subsampled decoding: any subset of each output's points (`output_indices = {name: flat indices}`); in training,
outputs with `train_points` decode that many random points per step (DeepMind trains so), and say which
(`outputs["<name>.indices"]`) for the task to pick its targets. Queries attend to the latents independently of
one another, so in inference all points are decoded in chunks of `chunk_size` from latents encoded once:
DeepMind's colab and HF's example re-run the encoder for every chunk instead (tests/test_multimodal.py checks
chunked == all at once; `python benchmarks/bench_multimodal_chunks.py` times both).

A query's position is -1 + 2 * index / n per dimension for every point, whether it is decoded alone or with all
the others (DeepMind's formula for subsampled points), so training on random subsets and decoding everything in
chunks see the same queries.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from ...byte_array import ByteArray
from ...config.multimodal import MultimodalDecoderConfig, MultimodalOutputConfig
from ...interfaces import BuildContext, Decoder, Encoded
from ..layers.attention import CrossAttention, trunc_normal_
from ..queries.fourier import FourierQueries
from ..queries.learned import LearnedQueries


class InputQueries(nn.Module):
    """The packed input elements of one input as its queries (flow-style): [B, O, W]."""

    def __init__(self, name: str, num_points: int, channels: int):
        super().__init__()
        self.name, self.num_points, self.num_channels = name, num_points, channels

    def forward(self, byte_array: ByteArray, encoded: Encoded,
                output_indices: torch.Tensor) -> tuple[torch.Tensor, None]:
        own = byte_array.segment(self.name) if byte_array.segments else byte_array  # [B, M_i, W]
        return own.data[:, output_indices.to(own.data.device)], None  # [B, O', W]


class MultimodalDecoder(Decoder):
    def __init__(self, config: MultimodalDecoderConfig, context: BuildContext):
        super().__init__()
        c = config
        latent_channels = context.require("latent_channels", "the multimodal decoder")
        facts = context.inputs or {}
        outputs = c.outputs if c.outputs is not None else {name: MultimodalOutputConfig() for name in facts}
        if not outputs:
            raise ValueError("the multimodal decoder needs outputs = { <name> = { ... } } (or several inputs, whose "
                             "names it decodes by default)")
        self.config = c
        self.names = sorted(outputs)
        self.queries = nn.ModuleDict()
        self.output_index_shapes: dict[str, tuple[int, ...]] = {}
        self.train_points: dict[str, int | None] = {}
        head_channels: dict[str, int] = {}
        for name in self.names:
            q, known = outputs[name], facts.get(name, {})
            shape = tuple(q.output_index_shape or known.get("index_shape") or ())
            if not shape:
                raise ValueError(f"output {name!r}: set output_index_shape (no input is named {name!r}; inputs: "
                                 f"{', '.join(facts) or 'none'})")
            self.output_index_shapes[name] = shape
            self.train_points[name] = q.train_points
            if q.query == "fourier":
                self.queries[name] = FourierQueries(shape, q.num_bands, q.max_resolution, concat_pos=q.concat_pos,
                                                    sine_only=q.sine_only)
            elif q.query == "learned":
                self.queries[name] = LearnedQueries(math.prod(shape), q.query_channels)
            else:
                if name not in facts or math.prod(shape) != math.prod(known["index_shape"]):
                    raise ValueError(f"output {name!r}: query = \"input\" needs an input named {name!r} with one "
                                     "element per output point")
                self.queries[name] = InputQueries(name, math.prod(shape), context.require("input_channels",
                                                                                            "input queries"))
            channels = q.output_channels or known.get("channels")
            if channels is None:
                raise ValueError(f"output {name!r}: set output_channels (the channels of its head)")
            head_channels[name] = channels
        self.reads_inputs = any(isinstance(self.queries[n], InputQueries) for n in self.names)
        self.query_channels = max(self.queries[n].num_channels for n in self.names) + c.min_padding
        self.padding = nn.ParameterDict()
        for name in self.names:
            width = self.query_channels - self.queries[name].num_channels
            if width > 0:
                self.padding[name] = nn.Parameter(torch.empty(1, width))  # [1, E - E_i]
                trunc_normal_(self.padding[name], std=0.02)
        qk = c.qk_channels or (latent_channels if c.shape_for_attn == "kv" else self.query_channels)
        self.cross_attend = CrossAttention(self.query_channels, latent_channels, num_heads=c.num_heads, qk_channels=qk,
                                           v_channels=c.v_channels, widening=c.widening, dropout=c.dropout,
                                           use_query_residual=c.use_query_residual)
        self.project: nn.Module = nn.Linear(self.query_channels, c.project_to) if c.project_to else nn.Identity()
        head_in = c.project_to or self.query_channels
        self.heads = nn.ModuleDict({name: nn.Linear(head_in, head_channels[name]) for name in self.names})
        self.num_points = {name: math.prod(self.output_index_shapes[name]) for name in self.names}

    def no_weight_decay(self) -> set[str]:
        return {f"padding.{n}" for n in self.padding}

    # -- queries -----------------------------------------------------------------------------------------------
    def build_queries(self, name: str, encoded: Encoded, byte_array: ByteArray,
                      indices: torch.Tensor) -> torch.Tensor:
        """The padded queries of output `name` at flat point indices: [B, O', E]."""
        queries, _ = self.queries[name](byte_array, encoded, indices)  # [B, O', E_i]
        queries = queries.to(encoded.latents.dtype)
        if name in self.padding:
            pad = self.padding[name].to(queries.dtype).expand(queries.shape[0], queries.shape[1], -1)
            queries = torch.cat([queries, pad], dim=-1)  # [B, O', E]
        return queries

    def _decode(self, encoded: Encoded, byte_array: ByteArray,
                pieces: list[tuple[str, torch.Tensor]]) -> list[torch.Tensor]:
        """One shared cross-attend for several outputs' points: pieces (name, indices) -> [B, O'_i, K_i] each."""
        queries = torch.cat([self.build_queries(name, encoded, byte_array, idx) for name, idx in pieces], dim=1)
        decoded = self.project(self.cross_attend(queries, encoded.latents))  # [B, sum O'_i, F]
        outs, start = [], 0
        for name, idx in pieces:
            outs.append(self.heads[name](decoded[:, start:start + idx.shape[0]]))  # [B, O'_i, K_i]
            start += idx.shape[0]
        return outs

    def sample_indices(self, device) -> dict[str, torch.Tensor | None]:
        """Random output points for one training step (outputs with train_points; the others: all)."""
        return {name: (torch.randperm(self.num_points[name], device=device)[:n].sort().values
                       if (n := self.train_points[name]) is not None and n < self.num_points[name] else None)
                for name in self.names}

    def forward(self, encoded: Encoded, byte_array: ByteArray,
                output_indices: Mapping[str, torch.Tensor | None] | None = None) -> dict[str, torch.Tensor]:
        device = encoded.latents.device
        if output_indices is None and self.training:
            output_indices = self.sample_indices(device)
        given = dict(output_indices or {})
        unknown = set(given) - set(self.names)
        if unknown:
            raise ValueError(f"output_indices names {sorted(unknown)}; outputs: {', '.join(self.names)}")
        pieces = [(name, given[name].to(device).long() if given.get(name) is not None
                   else torch.arange(self.num_points[name], device=device)) for name in self.names]
        out: dict[str, torch.Tensor] = {}
        chunk = self.config.chunk_size
        total = sum(idx.shape[0] for _, idx in pieces)
        if self.training or chunk is None or total <= chunk:
            for (name, _), value in zip(pieces, self._decode(encoded, byte_array, pieces)):
                out[name] = value
        else:  # encode once, decode in chunks of `chunk` points (queries are independent of one another)
            parts: dict[str, list[torch.Tensor]] = {name: [] for name in self.names}
            batch: list[tuple[str, torch.Tensor]] = []
            size = 0

            def flush():
                for (n, _), value in zip(batch, self._decode(encoded, byte_array, batch)):
                    parts[n].append(value)  # [B, c_i, K_i]
                batch.clear()

            for name, idx in pieces:
                pos = 0
                while pos < idx.shape[0]:
                    take = min(chunk - size, idx.shape[0] - pos)
                    batch.append((name, idx[pos:pos + take]))
                    size, pos = size + take, pos + take
                    if size == chunk:
                        flush()
                        size = 0
            if batch:
                flush()
            out = {name: torch.cat(values, dim=1) for name, values in parts.items()}
        for name, idx in pieces:
            if given.get(name) is not None:
                out[f"{name}.indices"] = idx  # [O'] which points were decoded
        return out
