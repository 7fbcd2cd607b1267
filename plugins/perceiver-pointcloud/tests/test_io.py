"""Reading every supported format (files made here), and one-line errors for empty, corrupt and oversized files."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from perceiver_pointcloud.configs import MeshFolderConfig
from perceiver_pointcloud.folder import MeshFolderDataset
from perceiver_pointcloud.io import PointCloudFileError, read_points


def _box(extents=(2.0, 1.0, 0.5)) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=extents)


@pytest.mark.parametrize("suffix", [".off", ".ply", ".obj", ".stl"])
def test_meshes_are_sampled_on_their_surface(tmp_path, suffix):
    path = tmp_path / f"box{suffix}"
    _box().export(path)
    out = read_points(path, num_points=300, seed=1)
    points, normals = out["points"], out["normals"]
    assert points.shape == (300, 3) and points.dtype == np.float32
    assert normals.shape == (300, 3)
    # every sample lies on the box's surface: one coordinate at its half-extent
    half = np.array([1.0, 0.5, 0.25])
    on_face = np.isclose(np.abs(points), half, atol=1e-5).any(axis=1)
    assert on_face.all()
    assert (np.abs(points) <= half + 1e-5).all()
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    # seeded: the same seed gives the same points, another seed others
    np.testing.assert_array_equal(read_points(path, num_points=300, seed=1)["points"], points)
    assert not np.array_equal(read_points(path, num_points=300, seed=2)["points"], points)


def test_point_cloud_ply_keeps_its_vertices(tmp_path):
    vertices = np.random.default_rng(0).normal(size=(50, 3))
    path = tmp_path / "cloud.ply"
    trimesh.PointCloud(vertices).export(path)
    out = read_points(path, num_points=10)
    np.testing.assert_allclose(out["points"], vertices.astype(np.float32), rtol=1e-6)


def test_npy_xyz_and_xyz_normals(tmp_path):
    xyz = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", xyz)
    np.testing.assert_array_equal(read_points(tmp_path / "a.npy")["points"], xyz)
    normals = np.tile([[0.0, 0.0, 1.0]], (20, 1)).astype(np.float32)
    np.save(tmp_path / "b.npy", np.concatenate([xyz, normals], axis=1))
    out = read_points(tmp_path / "b.npy")
    np.testing.assert_array_equal(out["points"], xyz)
    np.testing.assert_array_equal(out["normals"], normals)


def test_npz_points_and_normals(tmp_path):
    xyz = np.random.default_rng(0).normal(size=(20, 3))
    np.savez_compressed(tmp_path / "a.npz", xyz=xyz, normals=np.ones((20, 3)))
    out = read_points(tmp_path / "a.npz")
    np.testing.assert_allclose(out["points"], xyz.astype(np.float32))
    assert out["normals"].shape == (20, 3)


@pytest.mark.parametrize("suffix", [".off", ".ply", ".obj", ".stl", ".npy", ".npz"])
def test_empty_file_is_one_line(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(PointCloudFileError, match="empty") as info:
        read_points(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("suffix,content", [
    (".off", b"OFF\n3 1 0\n0 0 0\n1 0 0\n"),  # truncated: vertices and face missing
    (".off", b"this is not a mesh\n"),
    (".ply", b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1\n"),
    (".stl", b"\x00" * 80 + b"\xff\xff\xff\x00" + b"\x01\x02"),  # binary STL claiming 16M triangles
    (".obj", b"v 0 0 0\nv 1 0 0\nf 1 2 9\n"),  # a face on a vertex that does not exist
    (".npy", b"\x93NUMPY garbage"),
    (".npz", b"PK not really a zip"),
])
def test_corrupt_file_is_one_line(tmp_path, suffix, content):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(PointCloudFileError) as info:
        read_points(path, num_points=16)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))


def test_mesh_without_geometry_is_an_empty_mesh_error(tmp_path):
    path = tmp_path / "nothing.obj"
    path.write_text("# an OBJ file with only a comment\n")
    with pytest.raises(PointCloudFileError, match="empty mesh|no geometry|no vertices"):
        read_points(path)


def test_degenerate_mesh_has_no_surface(tmp_path):
    path = tmp_path / "flat.off"
    path.write_text("OFF\n3 1 0\n0 0 0\n1 1 1\n2 2 2\n3 0 1 2\n")  # a zero-area triangle
    with pytest.raises(PointCloudFileError, match="no area"):
        read_points(path)


def test_size_limit_is_checked_before_reading(tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.zeros((2000, 3), dtype=np.float32))
    with pytest.raises(PointCloudFileError, match="over the limit"):
        read_points(path, max_bytes=1000)


def test_npz_members_are_bounded_by_their_uncompressed_size(tmp_path):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, points=np.zeros((200_000, 3), dtype=np.float32))  # 2.4 MB of zeros, tiny on disk
    assert path.stat().st_size < 100_000
    with pytest.raises(PointCloudFileError, match="expand to"):
        read_points(path, max_bytes=1_000_000)


def test_pickled_npy_is_refused(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(PointCloudFileError, match="not a plain numeric"):
        read_points(path)


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "cloud.xyz"
    path.write_text("0 0 0\n")
    with pytest.raises(PointCloudFileError, match="unsupported file type"):
        read_points(path)


def test_folder_dataset_reads_modelnet_layout_and_loose_files(tmp_path):
    for name, extents in (("flat", (2.0, 2.0, 0.1)), ("tall", (0.3, 0.3, 2.0))):
        for split, count in (("train", 3), ("test", 2)):
            (tmp_path / name / split).mkdir(parents=True)
            for i in range(count):
                _box(extents).export(tmp_path / name / split / f"{name}_{i:04d}.off")
    dataset = MeshFolderDataset(MeshFolderConfig(root=str(tmp_path), num_points=64))
    assert dataset.info()["label_names"] == ["flat", "tall"]
    train, test = dataset.examples("train"), dataset.examples("test")
    assert (len(train), len(test)) == (6, 4)
    first = train[0]
    assert first["points"].shape == (64, 3) and first["label"] == 0
    np.testing.assert_array_equal(MeshFolderDataset(MeshFolderConfig(root=str(tmp_path), num_points=64))
                                  .examples("train")[0]["points"], first["points"])  # seeded by path


def test_folder_dataset_errors_name_the_problem(tmp_path):
    from perceiver_core.errors import UserError

    with pytest.raises(UserError, match="not a folder"):
        MeshFolderDataset(MeshFolderConfig(root=str(tmp_path / "missing")))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(UserError, match="no train files"):
        MeshFolderDataset(MeshFolderConfig(root=str(tmp_path)))
    (tmp_path / "a" / "broken.off").write_text("OFF\nnonsense\n")
    (tmp_path / "b" / "ok.npy").write_bytes(b"")
    for folder in ("a", "b"):
        for i in range(3):
            np.save(tmp_path / folder / f"cloud{i}.npy", np.ones((5, 3)))
    dataset = MeshFolderDataset(MeshFolderConfig(root=str(tmp_path), test_fraction=0.3))
    names = [f for f, _ in dataset.examples("train").files + dataset.examples("test").files]
    assert "a/broken.off" in names
    bad = next(i for s in ("train", "test") for i, (f, _) in enumerate(dataset.examples(s).files)
               if f == "a/broken.off")
    split = next(s for s in ("train", "test") if any(f == "a/broken.off" for f, _ in dataset.examples(s).files))
    with pytest.raises(UserError, match="broken.off"):
        dataset.examples(split)[bad]


def test_modelnet_off_header_defect_is_read(tmp_path):
    """Some of ModelNet40's .off files have the counts on the magic's line ("OFF4 4 0")."""
    path = tmp_path / "defect.off"
    path.write_text("OFF4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n")
    points = read_points(path, num_points=50)["points"]
    assert points.shape == (50, 3)
    assert (points >= -1e-6).all() and (points.sum(axis=1) <= 1 + 1e-5).all()  # on the unit tetrahedron


def test_colours_of_point_clouds_meshes_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    cloud = trimesh.PointCloud(rng.normal(size=(30, 3)), colors=np.tile([0, 255, 0, 255], (30, 1)))
    cloud.export(tmp_path / "green.ply")
    out = read_points(tmp_path / "green.ply")
    np.testing.assert_allclose(out["colors"], np.tile([0.0, 1.0, 0.0], (30, 1)))
    mesh = _box()
    mesh.visual.face_colors = np.tile([255, 0, 0, 255], (len(mesh.faces), 1))
    mesh.export(tmp_path / "red.ply")
    out = read_points(tmp_path / "red.ply", num_points=40)
    assert out["colors"].shape == (40, 3)
    np.testing.assert_allclose(out["colors"], np.tile([1.0, 0.0, 0.0], (40, 1)))
    np.savez(tmp_path / "c.npz", points=rng.normal(size=(8, 3)), colors=np.full((8, 3), 0.25))
    np.testing.assert_allclose(read_points(tmp_path / "c.npz")["colors"], 0.25)
    np.savez(tmp_path / "bad.npz", points=rng.normal(size=(8, 3)), colors=np.full((7, 3), 0.25))
    with pytest.raises(PointCloudFileError, match="7 colors for 8 points"):
        read_points(tmp_path / "bad.npz")
