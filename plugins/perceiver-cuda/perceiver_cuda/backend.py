"""The CUDA backend: one NVIDIA GPU per process (the local rank's under torchrun).

Policies, each a method the core calls:
- availability: a CUDA build of torch and a visible GPU, else (False, why) - never raises;
- dtype: `precision = "auto"` autocasts to bf16 where the GPU supports it (Ampere and later), else runs fp32
  (fp16 only on request: it needs loss scaling);
- attention: per-head dims padded to multiples of 8 and SDPA kernels chosen per shape
  (`perceiver_core.AttentionPolicy`), TF32 matmuls for the fp32 parts;
- compile: `train.compile = true` compiles where Triton is installed;
- memory: allocator statistics (peak and current, allocated and reserved), pinned host memory for the loader;
- distributed: nccl.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from perceiver_core import Backend


def _has_triton() -> bool:
    try:
        from torch.utils._triton import has_triton
    except ImportError:  # pragma: no cover - very old torch
        return False
    try:
        return bool(has_triton())
    except Exception:  # noqa: BLE001 - a probe must not raise
        return False


def _prefer_cudnn_attention() -> None:
    """SDPA's global kernel order: cuDNN first, then flash, memory-efficient, math.

    Eager calls get a per-shape order from the kernel policy; compiled graphs fix their SDPA kernel when they are
    traced, from this global order, where torch's default puts cuDNN last. On the Perceiver IO shapes (512 latents,
    8 heads of 128) cuDNN's forward + backward is 1.25x flash's on an H100 (docs/benchmarks.md); shapes cuDNN
    refuses fall through to flash.
    """
    from torch.nn.attention import SDPBackend

    version = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2] if x.isdigit())
    if version < (2, 6):  # torch 2.5 moved cuDNN attention down the order itself after correctness reports
        return
    order = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    try:
        current = list(torch._C._get_sdp_priority_order())
        wanted = [int(b) for b in order]
        torch._C._set_sdp_priority_order(wanted + [b for b in current if b not in wanted])
    except (AttributeError, RuntimeError):  # a torch without the private setter: keep its order
        pass


class CudaBackend(Backend):
    name = "cuda"
    distributed_backend = "nccl"

    def available(self) -> tuple[bool, str]:
        try:
            if not torch.backends.cuda.is_built():
                return False, (f"this torch ({torch.__version__}) was built without CUDA; install a CUDA build "
                               f"of torch (https://pytorch.org/get-started/locally/)")
            if not torch.cuda.is_available():
                hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
                why = f" (CUDA_VISIBLE_DEVICES={hidden!r})" if hidden is not None else ""
                return False, f"no CUDA GPU is visible to this process{why}"
            index = self._index()
            if index >= torch.cuda.device_count():
                return False, (f"LOCAL_RANK asks for GPU {index} but only {torch.cuda.device_count()} "
                               f"is visible")
            props = torch.cuda.get_device_properties(index)
            return True, (f"{props.name}, compute capability {props.major}.{props.minor}, "
                          f"{props.total_memory / 2**30:.0f} GiB")
        except Exception as exc:  # noqa: BLE001 - an availability check never raises
            return False, f"CUDA probe failed: {type(exc).__name__}: {exc}"

    @staticmethod
    def _index() -> int:
        return int(os.environ.get("LOCAL_RANK", "0"))

    def device(self) -> torch.device:
        return torch.device("cuda", self._index())

    def setup(self) -> None:
        from perceiver_core import set_attention_policy

        torch.cuda.set_device(self.device())
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls outside autocast (LayerNorm stays fp32)
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        set_attention_policy(self.attention_policy())
        _prefer_cudnn_attention()

    def autocast_dtype(self, precision: str) -> torch.dtype | None:
        if precision == "fp32":
            return None
        if precision == "fp16":
            return torch.float16
        bf16_ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        if precision == "bf16" and not bf16_ok:
            raise ValueError("this GPU does not support bf16; use precision = \"fp16\" or \"fp32\"")
        if precision in ("bf16", "auto"):
            return torch.bfloat16 if bf16_ok else None
        raise ValueError(f"unknown precision {precision!r}; use auto, fp32, bf16 or fp16")

    def attention_policy(self):
        from perceiver_core import AttentionPolicy

        # Large chunks on the GPU: each chunk is ~25 kernel launches, and 131,072 keys x 512 latents of fp32
        # scores (256 MiB per example and head) keep the card busy; the chunked cross-attend shrinks the chunk
        # for larger batches (chunk_budget_elements); inputs from 512^2 up are streamed.
        return AttentionPolicy(pad_head_dim="auto", select_sdpa_backend=True, chunk_keys=131072,
                               chunk_min_keys=262144)

    def synchronize(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize(self.device())

    def memory_stats(self) -> dict[str, int]:
        if not torch.cuda.is_available():
            return {}
        d = self.device()
        return {"peak_allocated_bytes": torch.cuda.max_memory_allocated(d),
                "allocated_bytes": torch.cuda.memory_allocated(d),
                "peak_reserved_bytes": torch.cuda.max_memory_reserved(d),
                "reserved_bytes": torch.cuda.memory_reserved(d)}

    def reset_peak_memory(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats(self.device())

    def should_compile(self, requested: bool) -> bool:
        return requested and _has_triton()

    def compile_options(self) -> dict[str, Any]:
        # Static shapes (a training run has one batch shape); no CUDA graphs: the loop mutates the LR per step.
        return {"dynamic": False}

    def pin_memory(self) -> bool:
        return True
