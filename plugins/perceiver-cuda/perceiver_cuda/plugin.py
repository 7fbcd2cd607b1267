"""Hook implementation: registers the CUDA backend (by reference; torch is imported only when it is used)."""

from perceiver_core import hookimpl


@hookimpl
def perceiver_register_backends(registry) -> None:
    registry.add_backend("cuda", factory="perceiver_cuda.backend:CudaBackend", priority=100,
                         description="an NVIDIA GPU: bf16 autocast, fused attention kernels per shape, nccl")
