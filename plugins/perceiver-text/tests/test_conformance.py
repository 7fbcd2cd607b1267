"""perceiver-text against the core's conformance suites (perceiver_core.testing)."""

from __future__ import annotations

import torch

from perceiver_core import BuildContext
from perceiver_core.testing import DatasetConformance, DecoderConformance, PreprocessorConformance, TaskConformance
from perceiver_text.masking import IGNORE


class _Text:
    plugin = "perceiver_text.plugin"
    distribution = "perceiver-text"


class TestBytes(_Text, PreprocessorConformance):
    component = "text.bytes"
    config = {"max_length": 16, "channels": 8, "mask_probability": 0.3, "span_length": 2}
    examples = [{"text": "hello world"}, {"text": "Grüße, [MASK]!"}, {"text": "x" * 40}]


class TestBytesWithContext(TestBytes):
    config = {**TestBytes.config, "context_kernel": 3, "learned_positions": False}


class TestMaskedLMDecoder(_Text, DecoderConformance):
    component = "text.mlm_decoder"
    config = {"num_heads": 2, "qk_channels": 8}
    index_shape = (12,)
    input_channels = 8
    num_outputs = 262
    expected_queries = 12

    def build(self, context: BuildContext | None = None):
        """The decoder ties its logits to a text.bytes embedding: build one from a fixed seed and tie to it."""
        from perceiver_text.configs import BytesConfig
        from perceiver_text.preprocessor import BytePreprocessor

        decoder = super().build(context)
        state = torch.random.get_rng_state()
        torch.manual_seed(1234)
        pre = BytePreprocessor(BytesConfig(max_length=12, channels=8), BuildContext())
        torch.random.set_rng_state(state)
        decoder.tie_to(pre)
        return decoder


class TestMaskedLMDecoderInputQueries(TestMaskedLMDecoder):
    config = {"num_heads": 2, "qk_channels": 8, "query": "fourier", "num_bands": 3, "concat_input": True,
              "use_query_residual": True}


class TestMaskedLMTask(_Text, TaskConformance):
    component = "text.mlm"
    num_queries = 6

    def make_batch(self, task):
        g = self.generator()
        labels = torch.randint(6, 262, (self.batch_size, self.num_queries), generator=g)
        labels[torch.rand(labels.shape, generator=g) < 0.5] = IGNORE
        labels[:, 0] = 10  # at least one masked byte per example
        return {"labels": labels}


class TestDocstrings(_Text, DatasetConformance):
    component = "text.docstrings"
    config = {"modules": ["textwrap", "string", "json"], "batch_size": 4}
