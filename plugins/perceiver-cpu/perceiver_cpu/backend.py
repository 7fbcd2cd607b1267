"""The CPU backend."""

from __future__ import annotations

import os
import resource

import torch

from perceiver_core import Backend


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class CpuBackend(Backend):
    name = "cpu"
    distributed_backend = "gloo"

    def available(self) -> tuple[bool, str]:
        return True, "always available"

    def device(self) -> torch.device:
        return torch.device("cpu")

    def setup(self) -> None:
        if "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(usable_cores())

    def autocast_dtype(self, precision: str) -> torch.dtype | None:
        # fp32 by default: CPU bf16 autocast is slower than fp32 on most cores without AMX.
        if precision == "fp16":
            raise ValueError("fp16 autocast is not supported on the CPU; use precision = \"bf16\" or \"fp32\"")
        return torch.bfloat16 if precision == "bf16" else None

    def memory_stats(self) -> dict[str, int]:
        return {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
