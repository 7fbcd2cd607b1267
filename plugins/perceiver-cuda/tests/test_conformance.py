"""perceiver-cuda against the core's backend conformance suite (device checks skip where it is unavailable)."""

from perceiver_core.testing import BackendConformance


class TestCudaBackend(BackendConformance):
    plugin = "perceiver_cuda.plugin"
    distribution = "perceiver-cuda"
    component = "cuda"
