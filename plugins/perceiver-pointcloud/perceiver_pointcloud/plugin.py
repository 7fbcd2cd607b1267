"""Hook implementations: names and references only, so listing stays free of torch."""

from perceiver_core import hookimpl


@hookimpl
def perceiver_register_components(registry) -> None:
    registry.add("preprocessor", "pointcloud.points", factory="perceiver_pointcloud.points:PointsPreprocessor",
                 config="perceiver_pointcloud.configs:PointsConfig",
                 description="one input element per point (xyz, + normals); its coordinates are its position")
    registry.add("position", "pointcloud.fourier", factory="perceiver_pointcloud.positions:PointFourierEncoding",
                 config="perceiver_pointcloud.configs:PointFourierConfig",
                 description="Fourier features of the points' own coordinates (no grid)")
    registry.add("position", "pointcloud.learned", factory="perceiver_pointcloud.positions:PointLearnedEncoding",
                 config="perceiver_pointcloud.configs:PointLearnedConfig",
                 description="learned positions: an MLP of each point's coordinates")
    registry.add("dataset", "pointcloud.shapes", factory="perceiver_pointcloud.shapes:ShapesDataset",
                 config="perceiver_pointcloud.configs:ShapesConfig",
                 description="16 classes of procedurally generated solids sampled to point clouds (offline)")
    registry.add("dataset", "pointcloud.folder", factory="perceiver_pointcloud.folder:MeshFolderDataset",
                 config="perceiver_pointcloud.configs:MeshFolderConfig",
                 description="your meshes/point files in class subfolders (ModelNet40's layout)")


@hookimpl
def perceiver_register_pipelines(registry) -> None:
    registry.add_registry_file("perceiver_pointcloud", "pipelines.toml")  # package data: found in wheels and checkouts
