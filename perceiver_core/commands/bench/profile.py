"""Where the time of one step goes: torch.profiler over a few steps, kernels (CUDA) or operators (CPU) grouped
into classes: matrix products, attention, compiled fusions, optimizer, copies, and the rest.

Used by `perceiver bench --profile FILE` and by `benchmarks/profile_step.py` (one grouping, one table format).
On CUDA each kernel's device time is counted; on the CPU each operator's self time (so nested operators are not
counted twice).
"""

from __future__ import annotations

import re
from typing import Any, Callable

import torch

#: (class, pattern) in order: the first match wins. Names are CUDA kernels or aten operators.
CLASSES = [
    ("attention", re.compile(r"flash|fmha|cudnn.*(attn|sdpa)|sm90_.*attention|attention|_efficient_attention", re.I)),
    ("matmul", re.compile(r"gemm|cutlass|sm90_xmma|cublas|matmul|nvjet|aten::(mm|addmm|bmm|baddbmm|linear)$", re.I)),
    ("optimizer", re.compile(r"adam|multi_tensor|foreach", re.I)),
    ("triton (compiled fusions)", re.compile(r"^triton_|triton|compiled", re.I)),
    ("copies", re.compile(r"copy|memcpy|memset|cat|fill|aten::(to|_to_copy|contiguous|clone|pad|constant_pad_nd)$",
                          re.I)),
]
OTHER = "other (eager elementwise, reductions, layer norm, softmax)"


def classify(name: str) -> str:
    for label, pattern in CLASSES:
        if pattern.search(name):
            return label
    return OTHER


def profile_steps(step: Callable[[], object], steps: int, device: torch.device, top: int = 25) -> dict[str, Any]:
    """Profile `steps` calls of step() (already warmed up) and group the time per class.

    Returns {"device_type", "busy_ms_per_step", "classes_ms" {class: ms per step}, "top" [{kernel, ms,
    calls_per_step}]}: CUDA kernel time on a GPU, operators' self CPU time on the CPU.
    """
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        sync()
    kernels: dict[str, list[float]] = {}
    if cuda:
        for evt in prof.events():
            if evt.device_type == torch.autograd.DeviceType.CUDA:
                entry = kernels.setdefault(evt.name, [0.0, 0])
                entry[0] += evt.device_time / 1e3 / steps  # ms per step
                entry[1] += 1
    else:
        for evt in prof.key_averages():
            if evt.self_cpu_time_total > 0 and not evt.key.startswith(("ProfilerStep", "[memory]")):
                kernels[evt.key] = [evt.self_cpu_time_total / 1e3 / steps, evt.count]
    total = sum(v[0] for v in kernels.values())
    classes: dict[str, float] = {}
    for name, (ms, _) in kernels.items():
        classes[classify(name)] = classes.get(classify(name), 0.0) + ms
    ranked = sorted(kernels.items(), key=lambda kv: -kv[1][0])[:top]
    return {"device_type": device.type, "busy_ms_per_step": total,
            "classes_ms": dict(sorted(classes.items(), key=lambda kv: -kv[1])),
            "top": [{"kernel": n, "ms": v[0], "calls_per_step": v[1] / steps} for n, v in ranked]}


def format_profile(profile: dict[str, Any], title: str) -> str:
    """The grouped table: one line per class (ms per step, share), then the top kernels / operators."""
    total = profile["busy_ms_per_step"] or float("nan")
    what = "GPU busy" if profile["device_type"] == "cuda" else "CPU self time"
    lines = [f"{title}: {what} {total:.1f} ms per step"]
    for label, ms in profile["classes_ms"].items():
        lines.append(f"  {label:<58}{ms:>9.1f} ms {ms / total:>6.1%}")
    lines.append("top kernels (ms per step, calls per step):" if profile["device_type"] == "cuda"
                 else "top operators (self ms per step, calls per step):")
    for entry in profile["top"]:
        lines.append(f"  {entry['ms']:>8.2f} {entry['calls_per_step']:>6.0f}  {entry['kernel'][:110]}")
    return "\n".join(lines)
