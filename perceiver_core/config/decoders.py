"""Configs of the built-in decoders."""

from pydantic import Field

from .base import ComponentConfig


class ClassificationDecoderConfig(ComponentConfig):
    """Perceiver IO: one learned query cross-attends to the latents, then a linear layer gives the logits."""

    num_queries: int = Field(1, ge=1, description="learned output queries (their outputs are averaged)")
    query_channels: int | None = Field(None, ge=1, description="channels of the query (default: latent channels)")
    num_heads: int = Field(1, ge=1, description="heads of the decoder cross-attend")
    qk_channels: int | None = Field(None, ge=1, description="query/key channels (default: query channels)")
    v_channels: int | None = Field(None, ge=1, description="value channels (default: qk channels)")
    widening: int = Field(1, ge=1, description="MLP widening factor")
    use_query_residual: bool = Field(True, description="add the query back after the cross-attend")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout")


class PooledDecoderConfig(ComponentConfig):
    """The original Perceiver: average the latents, normalise, project to the logits."""

    layer_norm: bool = Field(True, description="LayerNorm the pooled latent before the projection")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout before the projection")
