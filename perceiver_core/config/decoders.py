"""Configs of the built-in decoders."""

from typing import Literal

from pydantic import Field

from .base import ComponentConfig
from .numbers import Size


class ClassificationDecoderConfig(ComponentConfig):
    """Perceiver IO: one learned query cross-attends to the latents, then a linear layer gives the logits."""

    num_queries: Size = Field(1, description="learned output queries (their outputs are averaged)")
    query_channels: Size | None = Field(None, description="channels of the query (default: latent channels)")
    num_heads: Size = Field(1, description="heads of the decoder cross-attend")
    qk_channels: Size | None = Field(None, description="query/key channels (default: query channels)")
    v_channels: Size | None = Field(None, description="value channels (default: qk channels)")
    widening: Size = Field(1, description="MLP widening factor")
    use_query_residual: bool = Field(True, description="add the query back after the cross-attend")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout")


class PooledDecoderConfig(ComponentConfig):
    """The original Perceiver: average the latents, normalise, project to the logits."""

    layer_norm: bool = Field(True, description="LayerNorm the pooled latent before the projection")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout before the projection")


class BasicDecoderConfig(ComponentConfig):
    """Perceiver IO's general decoder: output queries cross-attend to the latents, then an optional projection.

    Queries are learned (one vector per output point) or Fourier features of the output points' positions,
    optionally projected, optionally preceded by the preprocessed input (flow-style queries). This is HF's
    PerceiverBasicDecoder; its defaults are HF's.
    """

    query: Literal["learned", "fourier"] = Field("learned", description="how output queries are built")
    output_index_shape: tuple[Size, ...] | None = Field(
        None, description="index shape of the output points (default: the input's index shape)")
    query_channels: Size = Field(128, description="channels of learned queries")
    num_bands: Size = Field(64, description="fourier queries: frequency bands per dimension")
    max_resolution: tuple[Size, ...] | None = Field(
        None, description="fourier queries: highest resolution per dimension (default: output_index_shape)")
    concat_pos: bool = Field(True, description="fourier queries: also emit the raw positions")
    sine_only: bool = Field(False, description="fourier queries: drop the cosines")
    project_queries_to: Size | None = Field(None, description="project the query features with a linear layer")
    concat_input: bool = Field(False, description="prepend the preprocessed input (without positions) to the "
                                                  "queries; needs one output point per input element")
    num_heads: Size = Field(1, description="heads of the decoder cross-attend")
    qk_channels: Size | None = Field(None, description="query/key channels (default: see shape_for_attn)")
    v_channels: Size | None = Field(None, description="value channels (default: qk channels)")
    shape_for_attn: Literal["q", "kv"] = Field(
        "kv", description="default qk channels: the queries' (q) or the latents' (kv), as HF's "
                          "cross_attention_shape_for_attention")
    widening: Size = Field(1, description="MLP widening factor")
    use_query_residual: bool = Field(False, description="add the queries back after the cross-attend")
    final_project: bool = Field(True, description="project each output to output_channels (else: query channels)")
    output_channels: Size | None = Field(None, description="channels of the projection (default: the "
                                                                "task's number of outputs)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout")
