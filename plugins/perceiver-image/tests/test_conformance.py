"""perceiver-image against the core's conformance suites (perceiver_core.testing)."""

import numpy as np
import pytest

from perceiver_core.testing import DatasetConformance, PreprocessorConformance

DIGIT = {"image": (np.arange(64, dtype=np.float32).reshape(8, 8, 1) / 64.0), "label": 3}
OTHER = {"image": np.full((8, 8, 1), 0.25, dtype=np.float32), "label": 7}


# The image preprocessors validate mean/std by reading tensor values in __init__ (common.normaliser), which cannot
# happen under torch.device("meta"). Strict xfail: this starts failing (and should be removed) once fixed.
META_XFAIL = pytest.mark.xfail(strict=True, reason="image preprocessors read mean/std values while building, "
                                                   "so they do not build on the meta device")


class _Image:
    plugin = "perceiver_image.plugin"
    distribution = "perceiver-image"
    dataset_info = {"image_shape": (8, 8, 1), "num_classes": 10}
    examples = [DIGIT, OTHER]

    @META_XFAIL
    def test_builds_on_meta_device(self):
        super().test_builds_on_meta_device()


class TestPixels(_Image, PreprocessorConformance):
    component = "image.pixels"
    config = {"augment_shift": 1}


class TestPermutedPixels(_Image, PreprocessorConformance):
    component = "image.pixels"
    config = {"permute_seed": 0}


class TestPatches(_Image, PreprocessorConformance):
    component = "image.patches"
    config = {"patch_size": 4, "project_to": 16}


class TestDigits(DatasetConformance):
    plugin = "perceiver_image.plugin"
    distribution = "perceiver-image"
    component = "image.digits"
    config = {"batch_size": 8}
