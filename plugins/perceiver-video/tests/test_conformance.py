"""perceiver-video against the core's conformance suites (perceiver_core.testing)."""

import tempfile
from pathlib import Path

import numpy as np
import torch

from perceiver_core.testing import DatasetConformance, DecoderConformance, PreprocessorConformance, TaskConformance

_RNG = np.random.default_rng(0)
CLIP = {"video": _RNG.integers(0, 256, (4, 8, 12, 3), dtype=np.uint8), "label": 1}
OTHER = {"video": _RNG.random((4, 8, 12, 3)).astype(np.float32), "label": 0}
CACHE = str(Path(tempfile.gettempdir()) / "perceiver-video-tests")  # the decoded clip, shared by test runs


class _Video:
    plugin = "perceiver_video.plugin"
    distribution = "perceiver-video"
    dataset_info = {"video_shape": (4, 8, 12, 3), "num_classes": 2}
    examples = [CLIP, OTHER]


class TestPatches1x4x4(_Video, PreprocessorConformance):
    component = "video.patches"
    config = {"patch_size": 4, "time_patch": 1, "hflip": 0.5}


class TestPatches2x4x4Projected(_Video, PreprocessorConformance):
    component = "video.patches"
    config = {"patch_size": 4, "time_patch": 2, "project_to": 16}


class TestPixelDecoder(DecoderConformance):
    plugin = "perceiver_video.plugin"
    distribution = "perceiver-video"
    component = "video.pixels"
    config = {"output_index_shape": [2, 3, 4], "num_bands": 4}
    num_outputs = 3
    expected_queries = 24


class TestReconstruction(TaskConformance):
    plugin = "perceiver_video.plugin"
    distribution = "perceiver-video"
    component = "video.reconstruction"
    dataset_info = {"video_shape": (2, 3, 4, 3)}
    num_queries = 24  # one output per pixel

    def make_batch(self, task):
        return {"video": torch.randint(0, 256, (self.batch_size, 2, 3, 4, 3), dtype=torch.uint8,
                                       generator=self.generator())}


class TestBigBuckBunny(DatasetConformance):
    plugin = "perceiver_video.plugin"
    distribution = "perceiver-video"
    component = "video.bigbuckbunny"
    config = {"frames": 4, "frame_size": [16, 28], "parts": 2, "audio_rate": 8000, "cache_dir": CACHE}
