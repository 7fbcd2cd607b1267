"""perceiver-pointcloud against the core's conformance suites (perceiver_core.testing)."""

import numpy as np

from perceiver_core.testing import DatasetConformance, PositionConformance, PreprocessorConformance

_rng = np.random.default_rng(0)
CLOUD = {"points": _rng.normal(size=(40, 3)).astype(np.float32),
         "normals": _rng.normal(size=(40, 3)).astype(np.float32),
         "colors": _rng.uniform(size=(40, 3)).astype(np.float32), "label": 3}
SMALL = {"points": _rng.normal(size=(10, 3)).astype(np.float32), "label": 1}  # fewer than num_points: padded


class _Points:
    plugin = "perceiver_pointcloud.plugin"
    distribution = "perceiver-pointcloud"
    dataset_info = {"num_classes": 16}
    examples = [CLOUD, CLOUD]


class TestPoints(_Points, PreprocessorConformance):
    component = "pointcloud.points"
    config = {"num_points": 32, "augment_rotate": True, "augment_scale": [0.8, 1.2], "augment_jitter": 0.01}


class TestPointsWithNormalsAndPadding(_Points, PreprocessorConformance):
    component = "pointcloud.points"
    config = {"num_points": 32, "normals": True, "colors": True, "augment_rotate": True}
    examples = [CLOUD, SMALL]


class TestPointFourier(PositionConformance):
    plugin = "perceiver_pointcloud.plugin"
    distribution = "perceiver-pointcloud"
    component = "pointcloud.fourier"
    config = {"num_bands": 4, "max_resolution": 16}
    index_shape = (16,)
    explicit_positions_dims = 3

    def run(self, module, positions_dims=None):
        return module(self.byte_array(3))  # point clouds always carry their coordinates


class TestPointLearned(TestPointFourier):
    component = "pointcloud.learned"
    config = {"num_channels": 8, "hidden_channels": 16}


class TestShapes(DatasetConformance):
    plugin = "perceiver_pointcloud.plugin"
    distribution = "perceiver-pointcloud"
    component = "pointcloud.shapes"
    config = {"batch_size": 8, "num_points": 64, "train_per_class": 2, "test_per_class": 1}
