"""perceiver-image against the core's conformance suites (perceiver_core.testing)."""

import numpy as np

import torch

from perceiver_core.testing import DatasetConformance, PreprocessorConformance, TaskConformance

DIGIT = {"image": (np.arange(64, dtype=np.float32).reshape(8, 8, 1) / 64.0), "label": 3}
OTHER = {"image": np.full((8, 8, 1), 0.25, dtype=np.float32), "label": 7}


class _Image:
    plugin = "perceiver_image.plugin"
    distribution = "perceiver-image"
    dataset_info = {"image_shape": (8, 8, 1), "num_classes": 10}
    examples = [DIGIT, OTHER]


class TestPixels(_Image, PreprocessorConformance):
    component = "image.pixels"
    config = {"augment_shift": 1}


class TestPermutedPixels(_Image, PreprocessorConformance):
    component = "image.pixels"
    config = {"permute_seed": 0}


class TestPatches(_Image, PreprocessorConformance):
    component = "image.patches"
    config = {"patch_size": 4, "project_to": 16}


class TestConvStem(_Image, PreprocessorConformance):
    component = "image.conv"
    config = {"out_channels": 8}


class TestConv1x1(_Image, PreprocessorConformance):
    component = "image.conv1x1"
    config = {"out_channels": 8, "spatial_downsample": 2}


class TestDigits(DatasetConformance):
    plugin = "perceiver_image.plugin"
    distribution = "perceiver-image"
    component = "image.digits"
    config = {"batch_size": 8}


_PAIR = np.random.default_rng(0).random((2, 6, 7, 3)).astype(np.float32)


class TestFlowPairs(PreprocessorConformance):
    plugin = "perceiver_image.plugin"
    distribution = "perceiver-image"
    component = "image.flow"
    config = {"channels": 8, "hflip": 0.5, "vflip": 0.5, "brightness": 0.1}
    dataset_info = {"image_shape": (6, 7, 3)}
    examples = [{"frames": _PAIR, "flow": np.ones((6, 7, 2), dtype=np.float32)},
                {"frames": (_PAIR * 255).astype(np.uint8), "flow": np.zeros((6, 7, 2), dtype=np.float32)}]


class TestFlowTask(TaskConformance):
    plugin = "perceiver_image.plugin"
    distribution = "perceiver-image"
    component = "image.flow"
    config = {"kind": "disparity"}
    num_queries = 12  # a 3 x 4 flow field per example

    def make_batch(self, task):
        g = self.generator()
        return {"frames": torch.zeros(self.batch_size, 2, 3, 3, 4), "flow": torch.randn(self.batch_size, 3, 4, 2,
                                                                                        generator=g),
                "valid": (torch.rand(self.batch_size, 3, 4, generator=g) > 0.2).float()}
