"""Configs of the Hierarchical Perceiver (HiP, arXiv 2202.10890): encoder `hip`, decoder `hip`, task `mae`.

The block tuples follow google-deepmind/hierarchical_perceiver's `VARIANTS` (one entry per block: encoder
blocks, the one-group processor in the middle, the mirrored decoder blocks). `variant` fills every tuple left
unset from that table.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import ComponentConfig
from .numbers import Size

#: google-deepmind/hierarchical_perceiver perceiver.py VARIANTS (HiP ones):
#: groups, self-attends, latents per group, channels, self-attend heads, embedding channels
HIP_VARIANTS: dict[str, dict] = {
    "Mini": {"num_groups": (16, 1, 16), "self_attends": (2, 1, 1), "latents": (128, 64, 128),
             "channels": (128, 1024, 128), "self_attend_heads": (4, 32, 4), "embedding_channels": 32},
    "16": {"num_groups": (16, 4, 1, 1, 1, 4, 16), "self_attends": (2, 2, 18, 2, 1, 1, 1),
           "latents": (128, 256, 256, 64, 256, 256, 128), "channels": (128, 256, 512, 1024, 512, 256, 128),
           "self_attend_heads": (4, 8, 16, 32, 16, 8, 4), "embedding_channels": 32},
    "256": {"num_groups": (256, 64, 16, 4, 1, 1, 1, 4, 16, 64, 256),
            "self_attends": (1, 1, 2, 2, 18, 2, 1, 1, 1, 1, 1),
            "latents": (32, 64, 128, 256, 256, 64, 256, 256, 128, 64, 32),
            "channels": (64, 96, 128, 256, 512, 1024, 256, 128, 64, 32, 16),
            "self_attend_heads": (1, 2, 4, 8, 16, 32, 16, 8, 4, 2, 1), "embedding_channels": 16},
    "16x3": {"num_groups": (16, 1, 16), "self_attends": (2, 18, 2), "latents": (128, 256, 128),
             "channels": (128, 1024, 128), "self_attend_heads": (4, 32, 4), "embedding_channels": 32},
}
_TUPLES = ("num_groups", "self_attends", "latents", "channels", "self_attend_heads")


class HiPModality(ComponentConfig):
    """One input modality of a multimodal HiP: its index shape and its own channel count."""

    index_shape: tuple[Size, ...] = Field(description="index shape of the modality (e.g. (32, 32) or (1024,))")
    channels: Size = Field(description="raw channels of one element of the modality")


class HiPEncoderConfig(ComponentConfig):
    """HiP: per-modality embedding + learned positions, grouping, then blocks of (regroup, cross-attend to the
    previous level, self-attends) with fewer groups each, down to the one-group processor.

    The encoder runs the blocks up to and including the processor; decoder `hip` runs the mirrored rest.
    """

    variant: Literal["Mini", "16", "256", "16x3"] | None = Field(
        None, description="the official VARIANTS entry that fills every block tuple left unset")
    num_groups: tuple[Size, ...] | None = Field(None, description="groups per block (the middle block must be 1)")
    self_attends: tuple[int, ...] | None = Field(None, description="self-attends per block")
    latents: tuple[Size, ...] | None = Field(None, description="latents per group, per block")
    channels: tuple[Size, ...] | None = Field(None, description="latent channels per block")
    self_attend_heads: tuple[Size, ...] | None = Field(None, description="self-attend heads per block")
    cross_attend_heads: tuple[Size, ...] | None = Field(None, description="cross-attend heads per block (default 1)")
    cross_attend_widening: tuple[Size, ...] | None = Field(
        None, description="MLP widening after each cross-attend (default 1)")
    self_attend_widening: tuple[Size, ...] | None = Field(
        None, description="MLP widening after each self-attend (default 4)")
    embedding_channels: Size | None = Field(None, description="E: every modality is embedded to E channels")
    position_encoding_channels: Size | None = Field(
        None, description="the official `num_position_encoding_channels`: when set and != E, each modality's "
                                "learned [M, E] position table goes through a bias-free E x E "
                                "`position_encoding_linear` (one per modality slot of an input, as the official "
                                "code; its tests use 512)")
    positions: Literal["learned", "none"] = Field(
        "learned", description="learned: a position table per modality added to its embedding (HiP; needed to "
                               "reconstruct); none: the input carries its positions itself (e.g. the pipeline's "
                               "Fourier features, concatenated before the embedding; classification only)")
    train_positions: bool = Field(
        True, description="false: the learned position tables (and their position_encoding_linear) are frozen, "
                          "e.g. positions taken from a masked auto-encoder while a classifier trains")
    regroup: Literal["reshape", "transpose_reshape"] = Field(
        "reshape", description="regrouping between blocks: merge neighbouring groups, or mix all groups")
    order: Literal["raster", "morton"] = Field(
        "raster", description="element order before grouping: raster (the official reshape; an image's groups are "
                              "row stripes) or morton (Z-order over the index grid; groups are compact tiles)")
    modalities: dict[str, HiPModality] | None = Field(
        None, description="the modalities the model embeds (name -> index shape, channels); default: one, the "
                          "preprocessor's output. An input's `segments` name the ones it holds")
    max_modalities_per_input: int | None = Field(
        None, ge=1, description="modality slots of `position_encoding_linear` (default: the number of modalities)")
    class_modalities: tuple[str, ...] = Field(
        (), description="HiPClassBottleneck: these modalities skip encoder and decoder; embedded to the processor's "
                        "input width with their own positions, joined to its input and read out after it")
    processor_latents_train: int | None = Field(
        None, ge=1, description="in training, the processor uses this many random latents of its own (per example "
                                "and group); all of them in evaluation")
    mask_ratio: float = Field(
        0.0, ge=0.0, lt=1.0, description="masked auto-encoding: the fraction of each group's inputs hidden from "
                                         "the encoder and reconstructed by decoder `hip` from their positions (0: "
                                         "none). Our choice for images: 0.75, MAE's (He et al. 2021); HiP's code "
                                         "has no masking")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout in attention and MLPs")
    residual_dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="dtype of every block's latent (residual) stream under bf16 autocast, encoder and "
                               "decoder `hip` alike: bfloat16 halves the bytes of the memory-bound LayerNorm / "
                               "residual / cast passes; without bf16 autocast the stream stays fp32, and training "
                               "refuses bfloat16 there")

    @model_validator(mode="after")
    def _resolve(self):
        if self.variant is not None:
            table = HIP_VARIANTS[self.variant]
            for name, value in table.items():
                if getattr(self, name) is None:
                    object.__setattr__(self, name, value)
        missing = [n for n in _TUPLES + ("embedding_channels",) if getattr(self, n) is None]
        if missing:
            raise ValueError(f"hip needs {', '.join(missing)} (or a variant: Mini, 16, 256, 16x3)")
        n = len(self.num_groups)
        for name, default in (("cross_attend_heads", 1), ("cross_attend_widening", 1), ("self_attend_widening", 4)):
            if getattr(self, name) is None:
                object.__setattr__(self, name, (default,) * n)
        for name in _TUPLES + ("cross_attend_heads", "cross_attend_widening", "self_attend_widening"):
            value = getattr(self, name)
            if len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries but num_groups has {n}: one per block")
            if any(v < (0 if name == "self_attends" else 1) for v in value):
                raise ValueError(f"{name} must be positive, got {value}")
        if n < 3 or n % 2 == 0:
            raise ValueError(f"HiP needs an odd number of blocks, at least 3 (encoder blocks, the processor, the "
                             f"mirrored decoder blocks), got {n}")
        p = n // 2
        if self.num_groups[p] != 1:
            raise ValueError(f"the processor (middle block {p}) must have 1 group, got {self.num_groups[p]}")
        for i in range(1, n):
            total = self.num_groups[i - 1] * self.latents[i - 1]
            if total % self.num_groups[i]:
                raise ValueError(f"block {i - 1} gives {self.num_groups[i - 1]} x {self.latents[i - 1]} latents, "
                                 f"which cannot be regrouped into {self.num_groups[i]} groups")
        for i, (c, h) in enumerate(zip(self.channels, self.self_attend_heads)):
            if c % h:
                raise ValueError(f"block {i}: channels ({c}) must be divisible by self_attend_heads ({h})")
        if self.processor_latents_train is not None and self.processor_latents_train > self.latents[p]:
            raise ValueError(f"processor_latents_train ({self.processor_latents_train}) exceeds the processor's "
                             f"{self.latents[p]} latents")
        if self.processor_latents_train is not None and self.processor_latents_train % self.num_groups[p + 1]:
            raise ValueError(f"processor_latents_train ({self.processor_latents_train}) must be divisible by the "
                             f"next block's {self.num_groups[p + 1]} groups")
        if self.positions == "none" and self.mask_ratio > 0:
            raise ValueError("masked auto-encoding queries the decoder with learned positions: positions = "
                             "'learned' with mask_ratio > 0")
        if self.class_modalities and self.mask_ratio > 0:
            raise ValueError("mask_ratio and class_modalities cannot be combined (labels are not masked)")
        return self

    @property
    def processor_index(self) -> int:
        return len(self.num_groups) // 2


class HiPDecoderConfig(ComponentConfig):
    """The mirrored half of a HiP: decoder blocks with U-Net skips from the encoder, then the reconstruction head
    and per-modality unembedding. Its structure is the encoder's (nothing to set here)."""


class MAETaskConfig(ComponentConfig):
    """Masked auto-encoding: MSE between the reconstruction and the (normalised) input at the masked elements."""

    data_range: float = Field(
        2.0, gt=0, description="peak-to-peak range of the input values for PSNR = 10 log10(range^2 / MSE); "
                               "image.pixels with mean 0.5 and std 0.5 maps [0, 1] to [-1, 1]: 2")
