"""perceiver-cpu against the core's backend conformance suite (perceiver_core.testing)."""

from perceiver_core.testing import BackendConformance


class TestCpuBackend(BackendConformance):
    plugin = "perceiver_cpu.plugin"
    distribution = "perceiver-cpu"
    component = "cpu"
