"""`image.flow_decoder`: DeepMind's FlowDecoder (HF's PerceiverOpticalFlowDecoder).

    queries = the encoder's input itself, data and positions [B, H*W, C + P] (322 channels in the reference)
      --cross-attend to latents [B, N, D] (qk = v = D by default, no query residual)--> [B, H*W, C + P]
      --Linear (weights and bias initialised to zero)--> [B, H*W, 2] --/ rescale_factor (100)--> outputs

One query per input pixel: the output grid is the input grid, whatever its size. The zero-initialised head makes
the untrained model predict zero flow (the natural starting point); DeepMind's FLOW_SCALE_FACTOR (20) that turns
outputs into pixels is the task's `flow_scale`.
"""

from __future__ import annotations

import torch
from torch import nn

from perceiver_core import BuildContext, ByteArray, CrossAttention, Decoder, Encoded

from ..configs import FlowDecoderConfig


class FlowDecoder(Decoder):
    reads_inputs = True  # the queries are the inputs

    def __init__(self, config: FlowDecoderConfig, context: BuildContext):
        super().__init__()
        c = config
        latent_channels = context.require("latent_channels", "image.flow_decoder")
        query_channels = context.require("input_channels", "image.flow_decoder")  # C + P: data with positions
        self.rescale_factor = c.rescale_factor
        self.cross_attend = CrossAttention(query_channels, latent_channels, num_heads=c.num_heads,
                                           qk_channels=c.qk_channels or latent_channels, v_channels=c.v_channels,
                                           widening=c.widening, use_query_residual=c.use_query_residual)
        self.head = nn.Linear(query_channels, c.output_channels)  # [.., C + P] -> [.., 2]
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, encoded: Encoded, byte_array: ByteArray) -> torch.Tensor:
        queries = byte_array.data  # [B, M, C + P]: every input pixel asks for its own flow
        decoded = self.cross_attend(queries, encoded.latents)  # [B, M, C + P]
        return self.head(decoded) / self.rescale_factor  # [B, M, 2]
