"""The scene generator: deterministic, points on their surfaces, voxelisation and density."""

import numpy as np
import pytest

from sw.pointcloud import scenes


@pytest.mark.parametrize("kind,kw", [("room", dict(n_points=20_000)), ("lidar", dict(n_azimuth=256)),
                                     ("mesh", dict(n_points=20_000))])
def test_scene_is_seeded_and_sparse(kind, kw):
    a = scenes.scene(kind, 0.2, seed=1, **kw)
    assert np.array_equal(a, scenes.scene(kind, 0.2, seed=1, **kw))
    assert not np.array_equal(a, scenes.scene(kind, 0.2, seed=2, **kw))
    assert a.dtype == np.int64 and a.shape[1] == 3
    assert len(np.unique(a, axis=0)) == len(a)
    assert not np.all(np.diff(a[:, 0]) >= 0), "scan order, not sorted"
    d = scenes.density(a)
    assert 0 < d < 0.5, "a surface scene occupies a small part of its bounding box"
    fine = scenes.scene(kind, 0.1, seed=1, **kw)
    assert len(fine) > len(a) and scenes.density(fine) < d


def test_room_points_lie_on_surfaces():
    p = scenes.room_points(seed=0, n_points=5000)
    assert p.shape == (5000, 3)
    assert np.all(p >= -1e-9) and np.all(p <= np.array([8, 6, 3]) + 1e-9)
    on_shell = (np.isclose(p[:, 0], 0) | np.isclose(p[:, 0], 8) | np.isclose(p[:, 1], 0)
                | np.isclose(p[:, 1], 6) | np.isclose(p[:, 2], 0))
    assert 0.6 < on_shell.mean() < 1.0, "most of the area is floor and walls, not all of it"


def test_lidar_density_falls_with_range():
    p = scenes.lidar_points(seed=0, n_azimuth=512)
    r = np.linalg.norm(p[:, :2], axis=1)
    assert r.max() < 61 and p[:, 2].min() > -0.2
    near, far = np.sum(r < 10) / (np.pi * 10**2), np.sum((r > 20) & (r < 30)) / (np.pi * (30**2 - 20**2))
    assert near > 10 * far


def test_mesh_sampling_is_on_triangles_and_uniform():
    rng = np.random.default_rng(0)
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 2], [3, 0, 2], [0, 3, 2]], dtype=float)
    faces = np.array([[0, 1, 2], [3, 4, 5]])                  # areas 0.5 and 4.5
    p = scenes.sample_mesh(verts, faces, 20_000, rng)
    lower = p[:, 2] == 0
    assert np.all(lower | (p[:, 2] == 2))
    assert np.all(p[lower, 0] + p[lower, 1] <= 1 + 1e-12) and np.all(p[~lower, 0] + p[~lower, 1] <= 3 + 1e-12)
    assert np.all(p[:, :2] >= 0)
    assert abs(lower.mean() - 0.1) < 0.01


def test_voxelize_batch_density():
    pts = np.array([[0.01, 0.02, 0.0], [0.04, 0.01, 0.03], [-0.01, 0.0, 0.0], [0.31, 0.0, 0.0]])
    assert scenes.voxelize(pts, 0.05).tolist() == [[0, 0, 0], [-1, 0, 0], [6, 0, 0]]
    with pytest.raises(ValueError, match="voxel_size must be positive"):
        scenes.voxelize(pts, 0)
    b = scenes.batch(np.array([[0, 0, 0], [1, 1, 1]]), np.array([[5, 5, 5]]))
    assert b.tolist() == [[0, 0, 0, 0], [0, 1, 1, 1], [1, 5, 5, 5]]
    assert scenes.density(b) == pytest.approx(3 / 9)
    with pytest.raises(ValueError, match="scene kind"):
        scenes.scene("forest")


def test_cli_scene_and_kmap(tmp_path, capsys):
    from sw.cli import main
    from sw.pointcloud import kernel_map

    coords = tmp_path / "c.npy"
    assert main(["pointcloud", "scene", "--kind", "room", "--voxel", "0.3", "--out", str(coords)]) == 0
    assert main(["pointcloud", "scene", "--out", str(coords)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    maps = tmp_path / "m.npz"
    assert main(["pointcloud", "kmap", "--coords", str(coords), "--stride", "2", "--out", str(maps)]) == 0
    c = np.load(coords)
    out, ref = kernel_map(c, 3, 2)
    z = np.load(maps)
    assert np.array_equal(z["out_coords"], out)
    for k in range(27):
        assert np.array_equal(z["pairs"][z["offset_index"] == k], ref[k])
    assert "outputs, 27 offsets" in capsys.readouterr().out
    np.save(tmp_path / "bad.npy", np.array([[0, 0, 0], [0, 0, 0]]))
    assert main(["pointcloud", "kmap", "--coords", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "x.npz")]) == 2
    assert "duplicate coordinates" in capsys.readouterr().err
    assert main(["pointcloud", "kmap", "--coords", str(tmp_path / "none.npy"), "--out", str(tmp_path / "x.npz")]) == 2
    assert "none.npy: no such file" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()
