"""`text.mlm_decoder`: HF's masked-LM decoder. One learned query per output position cross-attends to the latents
(the core's basic decoder, without final projection); logits = outputs @ embedding^T + bias, the embedding being
the preprocessor's input byte embedding (tied, as PerceiverEmbeddingDecoder).

    latents [B, N, D] --queries [B, O, C] cross-attend--> [B, O, C] --x E^T [C, 262] + b--> logits [B, O, 262]
"""

from __future__ import annotations

import torch
from torch import nn

from perceiver_core import BasicDecoder, BuildContext, ByteArray, Decoder, Encoded
from perceiver_core.config import BasicDecoderConfig
from perceiver_core.errors import UserError

from .configs import MaskedLMDecoderConfig
from .tokenizer import VOCAB_SIZE


class MaskedLMDecoder(Decoder):
    def __init__(self, config: MaskedLMDecoderConfig, context: BuildContext):
        super().__init__()
        c = config
        channels = context.require("input_channels", "text.mlm_decoder") - (context.position_channels or 0)
        num_queries = c.num_queries or context.require("index_shape", "text.mlm_decoder")[0]
        fourier = c.query == "fourier"
        basic = BasicDecoderConfig(query=c.query, output_index_shape=(num_queries,), query_channels=channels,
                                   num_bands=c.num_bands, project_queries_to=channels if fourier else None,
                                   concat_input=c.concat_input, final_project=c.concat_input,
                                   output_channels=channels if c.concat_input else None,
                                   num_heads=c.num_heads, qk_channels=c.qk_channels, v_channels=c.v_channels or channels,
                                   widening=c.widening, use_query_residual=c.use_query_residual,
                                   dropout=c.dropout)
        inner = BasicDecoder(basic, context)
        # Flatten the basic decoder into this module so weight names stay short: queries, cross_attend, bias.
        self.queries, self.cross_attend = inner.queries, inner.cross_attend
        if c.concat_input:  # [B, O, C + E] -> [B, O, C]
            self.head = inner.head
        self._inner = [inner]  # not a submodule: its parameters are the two above
        self.channels = channels
        self.bias = nn.Parameter(torch.zeros(VOCAB_SIZE))  # [262]
        self._embedding: list[nn.Embedding] = []

    def tie_to(self, preprocessor) -> None:
        """Use the preprocessor's byte embedding [262, C] as the output projection (called by the pipeline)."""
        embedding = getattr(preprocessor, "embeddings", None)
        if not isinstance(embedding, nn.Embedding) or tuple(embedding.weight.shape) != (VOCAB_SIZE, self.channels):
            raise UserError(f"text.mlm_decoder ties its logits to a byte embedding of shape [{VOCAB_SIZE}, "
                            f"{self.channels}]; use it with the text.bytes preprocessor")
        self._embedding = [embedding]

    def forward(self, encoded: Encoded, byte_array: ByteArray) -> torch.Tensor:
        if not self._embedding:
            raise RuntimeError("text.mlm_decoder was not tied to a byte embedding (build it through a pipeline)")
        inner = self._inner[0]
        hidden = inner.head(inner.decode(encoded, byte_array))  # [B, O, C]
        weight = self._embedding[0].weight  # [262, C]
        return hidden @ weight.t().to(hidden.dtype) + self.bias.to(hidden.dtype)  # [B, O, 262]
