"""The core's `basic` decoder and position options against the conformance suites (output contract, gradients,
meta-device build, determinism, safetensors round trip); HF parity is in test_hf_parity.py."""

from __future__ import annotations

import torch

from perceiver_core import ByteArray, Encoded
from perceiver_core.testing import DecoderConformance, PositionConformance

_BUILTIN = "perceiver_core.plugins.builtin"


class TestBasicLearned(DecoderConformance):
    plugin, component = _BUILTIN, "basic"
    config = {"query": "learned", "query_channels": 12, "num_heads": 2, "use_query_residual": True}
    expected_queries = 16  # one per output point of the input's index shape (4, 4)


class TestBasicFourierWithInput(DecoderConformance):
    plugin, component = _BUILTIN, "basic"
    config = {"query": "fourier", "output_index_shape": [4, 4], "num_bands": 3, "project_queries_to": 10,
              "concat_input": True, "qk_channels": 8, "v_channels": 8}
    expected_queries = 16

    def test_subsampled_outputs_are_rows_of_the_full_output(self):
        decoder = self.build().eval()
        ba = self.byte_array()
        latents = torch.randn(self.batch_size, self.num_latents, self.latent_channels)
        idx = torch.tensor([0, 5, 15])
        with torch.no_grad():
            full = decoder(Encoded(latents=latents), ba)
            # Fourier positions of a subset follow HF (-1 + 2 i / n), the full grid is linspace(-1, 1, n):
            # equal for index 0, different elsewhere; learned queries would be equal everywhere
            part = decoder(Encoded(latents=latents), ba, output_indices=idx)
        assert part.shape == (self.batch_size, 3, self.num_outputs)
        assert torch.allclose(part[:, 0], full[:, 0], atol=1e-6)


class TestLearnedPositionsProjected(PositionConformance):
    plugin, component = _BUILTIN, "learned"
    config = {"num_channels": 6, "project_to": 4, "interpolate": True}

    def test_interpolates_to_another_grid(self):
        pos = self.build()
        out = pos(ByteArray(torch.zeros(1, 30, 1), (5, 6)))
        assert out.shape == (1, 30, 4)


class TestFourierPositionsProjected(PositionConformance):
    plugin, component = _BUILTIN, "fourier"
    config = {"num_bands": 4, "max_resolution": [4, 4], "project_to": 5}
    explicit_positions_dims = 2
