"""Config of the Perceiver encoder (Perceiver and Perceiver IO are two settings of it)."""

from typing import Literal

from pydantic import Field, model_validator

from .base import ComponentConfig
from .numbers import MAX_SIZE, Size


class PerceiverEncoderConfig(ComponentConfig):
    """Learned latents; cross-attends to the input interleaved with blocks of latent self-attends.

    Block i (0-based) is preceded by cross-attend i while i < num_cross_attends. Perceiver IO: one cross-attend
    and num_blocks blocks with shared weights. Original Perceiver (ImageNet): 8 cross-attends and 8 blocks of 6,
    cross-attends 2..8 and blocks 2..8 shared, the first of each unshared.
    """

    num_latents: Size = Field(256, description="N: number of latent vectors")
    latent_channels: Size = Field(512, description="D: channels of each latent")
    latent_init_scale: float = Field(0.02, gt=0, le=10, description="std of the latent array's truncated-normal "
                                                                    "initialisation (DeepMind: 0.02; larger keeps the "
                                                                    "latents distinct from the first step)")
    num_blocks: Size = Field(1, description="latent blocks (each: self_attends_per_block self-attends)")
    self_attends_per_block: int = Field(6, ge=0, le=MAX_SIZE, description="self-attends in one latent block")
    num_cross_attends: Size = Field(1, description="cross-attends to the input, the i-th before block i")
    share_blocks: bool = Field(True, description="latent blocks share weights")
    first_block_unshared: bool = Field(False, description="with share_blocks, block 1 has weights of its own")
    share_cross_attends: bool = Field(True, description="cross-attends share weights")
    first_cross_attend_unshared: bool = Field(True, description="with share_cross_attends, cross-attend 1 is its own")
    cross_attend_heads: Size = Field(1, description="heads of the cross-attends")
    self_attend_heads: Size = Field(8, description="heads of the self-attends")
    cross_attend_qk_channels: Size | None = Field(None, description="query/key channels of the cross-attends")
    cross_attend_v_channels: Size | None = Field(None, description="value channels of the cross-attends")
    cross_attention_shape_for_attn: Literal["q", "kv"] = Field(
        "kv", description="default qk channels of the cross-attend: the latents' (q) or the input's (kv)")
    self_attend_qk_channels: Size | None = Field(None, description="query/key channels of the self-attends")
    self_attend_v_channels: Size | None = Field(None, description="value channels of the self-attends")
    cross_attend_widening: Size = Field(1, description="MLP widening factor after cross-attends")
    self_attend_widening: Size = Field(1, description="MLP widening factor after self-attends")
    use_query_residual: bool = Field(True, description="add the latents back after each cross-attend")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on attention outputs and MLPs")
    activation: Literal["gelu", "squared_relu"] = Field("gelu", description="MLP non-linearity")
    residual_dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="dtype of the latent (residual) stream between and within blocks under bf16 "
                               "autocast: bfloat16 halves the bytes of the memory-bound LayerNorm / residual / "
                               "cast passes (LayerNorm still computes in fp32); without bf16 autocast the stream "
                               "stays fp32, and training refuses bfloat16 there (docs/benchmarks.md)")
    activation_checkpointing: bool = Field(
        False, description="in training, recompute each cross-attend and latent block in the backward pass "
                           "instead of storing its activations (less memory, about a third more compute)")
    checkpoint_slice: int = Field(
        32, ge=1, description="with activation_checkpointing, cross-attends are recomputed this many examples at a "
                              "time, so the backward holds one slice's [n, M] attention, not the batch's")
    cross_attend_chunk_keys: int | None = Field(
        None, ge=0, description="in inference, cross-attend over chunks of this many input elements with an "
                                "online softmax (exact; bounds memory for very large inputs); None: the "
                                "backend's policy (chunks for inputs of 65,536 elements and more); 0: never")
    cross_attend_train_chunk_keys: int | None = Field(
        None, ge=0, description="in training, cross-attend over chunks of this many input elements with a "
                                "split-key backward that recomputes each chunk (exact; the cross-attend's memory "
                                "then grows with the chunk, not the input; about 1.5x its FLOPs); None: the "
                                "backend's policy (inputs of 262,144 elements and more, when dropout is 0); 0: never")

    @model_validator(mode="after")
    def _check(self):
        if self.cross_attend_train_chunk_keys and self.dropout > 0:
            raise ValueError(f"cross_attend_train_chunk_keys ({self.cross_attend_train_chunk_keys}) cannot be "
                             f"combined with dropout ({self.dropout}): the split-key cross-attend has no attention "
                             "dropout; set dropout = 0 or leave cross_attend_train_chunk_keys unset")
        if self.num_cross_attends > self.num_blocks:
            raise ValueError(f"num_cross_attends ({self.num_cross_attends}) cannot exceed num_blocks "
                             f"({self.num_blocks}): each cross-attend is followed by a latent block")
        for field, heads in (("self_attend_qk_channels", "self_attend_heads"),
                             ("self_attend_v_channels", "self_attend_heads"),
                             ("cross_attend_qk_channels", "cross_attend_heads"),
                             ("cross_attend_v_channels", "cross_attend_heads")):
            value = getattr(self, field)
            if value is not None and value % getattr(self, heads):
                raise ValueError(f"{field} ({value}) must be divisible by the number of heads, {heads} "
                                 f"({getattr(self, heads)})")
        if self.self_attend_qk_channels is None and self.latent_channels % self.self_attend_heads:
            raise ValueError(f"latent_channels ({self.latent_channels}) must be divisible by self_attend_heads "
                             f"({self.self_attend_heads}), or set self_attend_qk_channels")
        return self
