"""The MPS backend: the GPU of an Apple silicon Mac through Metal Performance Shaders.

Policies, each a method the core calls:
- availability: macOS, a torch built with MPS and a usable Metal device, else (False, why) - never raises;
- dtype: `precision = "auto"` autocasts to fp16 (MPS' fast path); bf16 on request (macOS 14 and later);
- attention: plain SDPA, no head-dim padding (MPS has no fused kernels that want it), no chunking by default;
- compile: off (torch.compile on MPS is experimental; `train.compile = true` is ignored here);
- memory: Metal allocator statistics (current and driver-allocated); no pinned memory (unified memory);
- distributed: gloo (there is no nccl on a Mac).
"""

from __future__ import annotations

import platform
import sys

import torch

from perceiver_core import Backend


class MpsBackend(Backend):
    name = "mps"
    distributed_backend = "gloo"

    def available(self) -> tuple[bool, str]:
        try:
            if sys.platform != "darwin":
                return False, f"MPS exists only on macOS with Apple silicon (this is {sys.platform})"
            mps = getattr(torch.backends, "mps", None)
            if mps is None or not mps.is_built():
                return False, f"this torch ({torch.__version__}) was built without MPS support"
            if not mps.is_available():
                return False, "no usable Metal device (MPS needs macOS 12.3 or later on Apple silicon)"
            return True, f"Apple silicon GPU (macOS {platform.mac_ver()[0]})"
        except Exception as exc:  # noqa: BLE001 - an availability check never raises
            return False, f"MPS probe failed: {type(exc).__name__}: {exc}"

    def device(self) -> torch.device:
        return torch.device("mps")

    def setup(self) -> None:
        from perceiver_core import set_attention_policy

        set_attention_policy(self.attention_policy())

    def autocast_dtype(self, precision: str) -> torch.dtype | None:
        if precision == "fp32":
            return None
        if precision in ("auto", "fp16"):
            return torch.float16
        if precision == "bf16":
            return torch.bfloat16
        raise ValueError(f"unknown precision {precision!r}; use auto, fp32, bf16 or fp16")

    def attention_policy(self):
        from perceiver_core import AttentionPolicy

        return AttentionPolicy(pad_head_dim="never", select_sdpa_backend=False)

    def synchronize(self) -> None:
        if self.available()[0]:
            torch.mps.synchronize()

    def memory_stats(self) -> dict[str, int]:
        if not self.available()[0]:
            return {}
        return {"allocated_bytes": torch.mps.current_allocated_memory(),
                "driver_allocated_bytes": torch.mps.driver_allocated_memory()}

    def should_compile(self, requested: bool) -> bool:
        return False

    def pin_memory(self) -> bool:
        return False
