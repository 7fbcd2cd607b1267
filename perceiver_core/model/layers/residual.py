"""The dtype of the residual stream: the latent array that flows through an encoder's blocks.

Under bf16 autocast the GEMMs run in bf16, but a stream that starts as fp32 parameters stays fp32: every residual
add promotes (fp32 + bf16 -> fp32), so each block reads and writes the [B, N, D] stream in fp32 around its
LayerNorms, adds and casts, forward and backward. On the GPU those memory-bound passes are a third of an ImageNet
Perceiver IO training step (docs/benchmarks.md, "Where the time goes"). With `residual_dtype = "bfloat16"` the
stream is cast to bf16 once, where it enters the encoder (and each HiP block): the residual adds then stay in bf16
(bf16 + bf16 -> bf16), the stream between blocks and its gradient are bf16, half the bytes. LayerNorm still
computes its statistics in fp32: CUDA autocast runs layer_norm in fp32, and the CPU's bf16 layer_norm accumulates
in fp32 (its output is rounded to bf16, which is what the next GEMM reads anyway).

Only under bf16 autocast: without autocast (an fp32 run, evaluation on a backend without bf16) or under fp16
autocast the stream keeps its dtype, so a model trained with a bf16 stream evaluates in fp32 unchanged, and with
the default ("float32") nothing changes anywhere. Training that asks for a bf16 stream without bf16 autocast is
refused by `check_residual_dtype` (the option would silently do nothing).
"""

from __future__ import annotations

from typing import Literal

import torch

from ...errors import UserError

ResidualDtype = Literal["float32", "bfloat16"]


def bf16_stream_active(device_type: str) -> bool:
    """Whether bf16 autocast is on for `device_type` (the only case in which a bf16 stream is taken)."""
    return torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype(device_type) == torch.bfloat16


def residual_stream(x: torch.Tensor, residual_dtype: ResidualDtype) -> torch.Tensor:
    """x [..., D] as the residual stream: cast to bf16 when asked for and bf16 autocast is on, else unchanged."""
    if residual_dtype == "bfloat16" and x.dtype != torch.bfloat16 and bf16_stream_active(x.device.type):
        return x.to(torch.bfloat16)
    return x


def check_residual_dtype(encoder_config, autocast_dtype: torch.dtype | None) -> None:
    """Refuse, in one line, a run whose encoder asks for a bf16 residual stream without bf16 autocast."""
    residual = getattr(encoder_config, "residual_dtype", "float32")
    if residual == "float32" or autocast_dtype == torch.bfloat16:
        return
    running = "no autocast (fp32)" if autocast_dtype is None else f"{str(autocast_dtype).removeprefix('torch.')} autocast"
    raise UserError(f"encoder.residual_dtype = {residual!r} needs bf16 autocast, but this run uses {running}: set "
                    "train.precision = \"bf16\" (bench: --precision bf16), or encoder.residual_dtype = \"float32\"")
