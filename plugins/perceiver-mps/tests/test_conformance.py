"""perceiver-mps against the core's backend conformance suite (device checks skip where it is unavailable)."""

from perceiver_core.testing import BackendConformance


class TestMpsBackend(BackendConformance):
    plugin = "perceiver_mps.plugin"
    distribution = "perceiver-mps"
    component = "mps"
