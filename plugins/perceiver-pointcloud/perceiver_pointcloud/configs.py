"""Config models of the point-cloud components (pydantic only: importing them does not import torch)."""

from typing import Literal

from pydantic import Field, model_validator

from perceiver_core.config import ComponentConfig, DataConfig, Seed, Size


class PointsConfig(ComponentConfig):
    """`pointcloud.points`: every point is one input element; its coordinates are also its position."""

    num_points: Size = Field(1024, description="M: points per example; more are subsampled (seeded), fewer "
                                                    "are padded and masked out")
    normals: bool = Field(False, description="append the points' normals (3 channels) to their coordinates; "
                                             "examples without normals get zeros")
    colors: bool = Field(False, description="append the points' RGB colours in [0, 1] (3 channels; after the normals "
                                            "when both are on); examples without colours get 0.5 grey")
    normalize: bool = Field(True, description="centre each cloud on its centroid and scale it into the unit sphere")
    canonical_order: bool = Field(
        True, description="sort the points lexicographically before anything else, so any permutation of a cloud "
                          "gives the same tensors bit for bit (the model is permutation-invariant in exact "
                          "arithmetic either way)")
    subsample_seed: Seed = Field(0, description="seed of the subsampling of clouds with more than num_points points")
    up_axis: Literal["x", "y", "z"] = Field("z", description="the vertical axis (ModelNet's .off files: z)")
    augment_rotate: bool = Field(False, description="training only: rotate each cloud by a random angle about "
                                                    "up_axis")
    augment_scale: tuple[float, float] | None = Field(
        None, description="training only: scale each axis by a factor drawn uniformly from (low, high), "
                          "e.g. [0.8, 1.25]")
    augment_jitter: float = Field(0.0, ge=0, description="training only: add Gaussian noise of this standard "
                                                         "deviation to every coordinate (clipped at 5 sigma)")
    max_file_mb: float = Field(256.0, gt=0, description="refuse input files larger than this (perceiver predict)")

    @model_validator(mode="after")
    def _check(self):
        if self.augment_scale is not None and not 0 < self.augment_scale[0] <= self.augment_scale[1]:
            raise ValueError(f"augment_scale must be (low, high) with 0 < low <= high, got {self.augment_scale}")
        return self


class PointFourierConfig(ComponentConfig):
    """Fourier features of the points' own coordinates (in the unit sphere), no grid."""

    num_bands: Size = Field(32, description="K: frequency bands per coordinate")
    max_resolution: float = Field(64.0, gt=1, description="frequencies run linearly from 1 to max_resolution / 2 "
                                                          "per coordinate (DeepMind's ModelNet40 model: 64 bands)")
    dims: Size = Field(3, description="d: coordinates per point")
    concat_pos: bool = Field(True, description="also emit the raw coordinates")
    sine_only: bool = Field(False, description="drop the cosine features")


class PointLearnedConfig(ComponentConfig):
    """Learned positions: a small MLP of the coordinates (per point, so the model stays permutation-invariant)."""

    num_channels: Size = Field(64, description="P: channels of the learned position features")
    hidden_channels: Size = Field(64, description="width of the MLP's hidden layer")
    dims: Size = Field(3, description="d: coordinates per point")


class ShapesConfig(DataConfig):
    """`pointcloud.shapes`: procedurally generated solids, sampled to point clouds; fixed seeds per split."""

    num_points: int = Field(1024, ge=16, description="points sampled from each mesh's surface")
    train_per_class: Size = Field(80, description="training examples per class")
    test_per_class: Size = Field(25, description="test examples per class")
    seed: Seed = Field(0, description="seed of the generation: split s, example i use the seed (seed, s, i)")
    noise: float = Field(0.01, ge=0, description="Gaussian noise added to the sampled points (unit-sphere scale)")
    max_tilt_degrees: float = Field(10.0, ge=0, le=180, description="random tilt away from the up axis; every "
                                                                    "shape is also rotated about it at random")


class MeshFolderConfig(DataConfig):
    """`pointcloud.folder`: the user's own files, one subfolder per class (ModelNet40's layout works unchanged)."""

    root: str = Field(..., description="folder with one subfolder per class; each holds the files, or train/ and "
                                       "test/ subfolders (ModelNet40: root/chair/train/chair_0001.off)")
    num_points: Size = Field(1024, description="points sampled from each mesh's surface (point files: all "
                                                    "points are kept; the preprocessor subsamples)")
    sample_seed: Seed = Field(0, description="seed of the surface sampling (each file gets its own, from its path)")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="without train/ and test/ subfolders: the fraction "
                                                              "of each class held out as 'test'")
    split_seed: Seed = Field(0, description="seed of that stratified split")
    extensions: tuple[str, ...] = Field((".off", ".ply", ".obj", ".stl", ".npy", ".npz"),
                                        description="file types read (lower case, with the dot)")
    max_file_mb: float = Field(256.0, gt=0, description="refuse files larger than this")
    cache: bool = Field(True, description="keep each file's sampled points in memory after the first read "
                                          "(12 KB per 1,024-point cloud)")
