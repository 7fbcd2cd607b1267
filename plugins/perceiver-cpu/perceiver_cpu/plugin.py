"""Hook implementation: registers the CPU backend (by reference; torch is imported only when it is used)."""

from perceiver_core import hookimpl


@hookimpl
def perceiver_register_backends(registry) -> None:
    registry.add_backend("cpu", factory="perceiver_cpu.backend:CpuBackend", priority=0,
                         description="the host CPU: fp32 (bf16 on request), all allowed cores, gloo")
