"""Hook implementation: registers the MPS backend (by reference; torch is imported only when it is used)."""

from perceiver_core import hookimpl


@hookimpl
def perceiver_register_backends(registry) -> None:
    registry.add_backend("mps", factory="perceiver_mps.backend:MpsBackend", priority=50,
                         description="an Apple silicon GPU (Metal): fp16 autocast, eager mode, gloo")
