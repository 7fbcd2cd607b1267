"""Perceiver IO's general decoder (HF's PerceiverBasicDecoder): queries cross-attend to the latents.

    queries [B, O, E] (learned or Fourier of output positions; optionally [input without positions, queries])
      --cross-attend to latents [B, N, D]--> [B, O, E] --final projection (optional)--> [B, O, K]

`forward(..., output_indices=idx)` decodes only the output points with those flat indices (subsampling, as for
optical flow training); the default decodes every output point.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...byte_array import ByteArray
from ...config.decoders import BasicDecoderConfig
from ...interfaces import BuildContext, Decoder, Encoded
from ..layers.attention import CrossAttention
from ..queries.fourier import FourierQueries
from ..queries.learned import LearnedQueries


class BasicDecoder(Decoder):
    def __init__(self, config: BasicDecoderConfig, context: BuildContext):
        super().__init__()
        c = config
        latent_channels = context.require("latent_channels", "the basic decoder")
        shape = tuple(c.output_index_shape or context.require("index_shape", "the basic decoder"))
        self.output_index_shape = shape
        if c.query == "learned":
            self.queries = LearnedQueries(math.prod(shape), c.query_channels)
        else:
            self.queries = FourierQueries(shape, c.num_bands, c.max_resolution, concat_pos=c.concat_pos,
                                          sine_only=c.sine_only, project_to=c.project_queries_to)
        query_channels = self.queries.num_channels
        self.input_channels = 0
        if c.concat_input:
            # the preprocessed input without its position features: the first C of C + P channels
            self.input_channels = (context.require("input_channels", "the basic decoder")
                                   - (context.position_channels or 0))
            query_channels += self.input_channels
        self.query_channels = query_channels
        qk = c.qk_channels or (latent_channels if c.shape_for_attn == "kv" else query_channels)
        self.cross_attend = CrossAttention(query_channels, latent_channels, num_heads=c.num_heads, qk_channels=qk,
                                           v_channels=c.v_channels, widening=c.widening, dropout=c.dropout,
                                           use_query_residual=c.use_query_residual)
        self.output_channels = query_channels
        self.head: nn.Module = nn.Identity()
        if c.final_project:
            self.output_channels = c.output_channels or context.require("num_outputs", "the basic decoder")
            self.head = nn.Linear(query_channels, self.output_channels)

    def build_queries(self, encoded: Encoded, byte_array: ByteArray,
                      output_indices: torch.Tensor | None = None) -> torch.Tensor:
        queries, _ = self.queries(byte_array, encoded, output_indices)  # [B, O, E]
        if self.input_channels:
            inputs = byte_array.data[..., :self.input_channels]  # [B, M, C]
            if output_indices is not None:
                inputs = inputs[:, output_indices]
            if inputs.shape[1] != queries.shape[1]:
                raise ValueError(f"concat_input needs one output point per input element: {queries.shape[1]} "
                                 f"queries, {inputs.shape[1]} input elements")
            queries = torch.cat([inputs, queries.to(inputs.dtype)], dim=-1)  # [B, O, C + E]
        return queries

    def decode(self, encoded: Encoded, byte_array: ByteArray,
               output_indices: torch.Tensor | None = None) -> torch.Tensor:
        """Latents -> decoded queries [B, O, E], before the final projection."""
        queries = self.build_queries(encoded, byte_array, output_indices)
        return self.cross_attend(queries, encoded.latents)  # [B, O, E]

    def forward(self, encoded: Encoded, byte_array: ByteArray,
                output_indices: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.decode(encoded, byte_array, output_indices))  # [B, O, K]
