"""The CPU backend the core ships, so that core alone trains and evaluates on the host CPU.

The perceiver-cpu plugin may register a backend of the same name; it then replaces this one (it refines thread
placement and reports memory). fp32 by default: CPU bf16 autocast is slower than fp32 on most cores without AMX.
"""

from __future__ import annotations

import torch

from ..interfaces import Backend


class CoreCpuBackend(Backend):
    name = "cpu"
    distributed_backend = "gloo"

    def available(self) -> tuple[bool, str]:
        return True, "always available (the core's CPU backend; perceiver-cpu refines it)"

    def device(self) -> torch.device:
        return torch.device("cpu")

    def autocast_dtype(self, precision: str) -> torch.dtype | None:
        if precision == "fp16":
            raise ValueError("fp16 autocast is not supported on the CPU; use precision = \"bf16\" or \"fp32\"")
        return torch.bfloat16 if precision == "bf16" else None
