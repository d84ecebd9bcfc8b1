# amaranth: UnusedElaboratable=no
"""Downsampler (``pyhdl/pointacc/downsampler.py``) against its golden model, in Verilator.

Scenarios only; case construction and the scoreboard live in ``verif/tb/pointacc_downsampler.py``.
"""

import numpy as np
import pytest

from pyhdl.pointacc.downsampler import Downsampler
from runtime import sim
from sw.pointcloud import kernel_map, scenes
from verif.tb.pointacc_downsampler import PARAMS, make_case, run

W = PARAMS["width"]


@pytest.fixture(scope="session")
def model():
    return sim.build(Downsampler(**PARAMS))


def b0(xyz):
    xyz = np.asarray(xyz, dtype=np.int64).reshape(-1, 3)
    return np.concatenate([np.zeros((len(xyz), 1), dtype=np.int64), xyz], 1)


def directed():
    """Lists whose survivors land on every leftover count: one point, a 2x2x2 cube (8 -> 1), a row
    of 16 (-> 8), a cube and a row across the negative boundary, the key-range corners, and a list
    whose last beat completes one output beat exactly and one that needs a second."""
    cube = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    row = np.stack([np.arange(-8, 8), np.zeros(16, int), np.zeros(16, int)], 1)
    lo, hi = -(1 << 15), (1 << 15) - 1
    corners = np.array([[0, lo, lo, lo], [0, lo + 1, lo, lo], [255, hi, hi, hi], [255, hi - 1, hi, hi],
                        [1, -1, -1, -1], [1, 0, 0, 0]])
    spread = b0(np.stack([np.arange(0, 2 * 24, 2), np.zeros(24, int), np.zeros(24, int)], 1))    # 24 -> 24
    spread_plus = b0(np.stack([np.arange(0, 2 * 25, 2), np.zeros(25, int), np.zeros(25, int)], 1))  # 25
    odd = b0(np.stack([np.arange(0, 2 * 13, 2), np.zeros(13, int), np.zeros(13, int)], 1))        # 13 -> 13
    return [b0([[3, -5, 7]]), b0(cube), b0(row), b0(cube - 1), corners, spread, spread_plus, odd,
            np.zeros((0, 4), dtype=np.int64)]


def test_directed_lists(model, tmp_path):
    lists = directed()
    cases = [make_case("directed", lists, seed=1),
             make_case("directed pv=0.5 pr=0.5", lists, p_valid=0.5, p_ready=0.5, seed=2),
             make_case("directed pr=0.3", lists, p_ready=0.3, seed=3)]
    m = run(model, cases, tmp_path)
    assert m["points"] == 1 + 1 + 8 + 8 + 4 + 24 + 25 + 13 + 0


def test_scenes_equal_kernel_map_outputs(model, tmp_path):
    """Room and LiDAR clouds and a batch: the output points are ``kernel_map(stride=2)``'s."""
    room = scenes.scene("room", 0.1, seed=2, n_points=20_000)
    lidar = scenes.scene("lidar", 0.4, seed=1, n_azimuth=256)
    both = scenes.batch(room[:900], lidar[:700])
    clouds = [b0(room), b0(lidar), both]
    cases = [make_case("scenes", clouds, seed=4), make_case("scenes pv=0.7 pr=0.6", clouds, p_valid=0.7,
                                                                p_ready=0.6, seed=5)]
    for c, n in zip(clouds, cases[0]["exp_len"], strict=True):
        assert n == len(kernel_map(c, 3, 2)[0])
    m = run(model, cases, tmp_path)
    assert m["keys"] == sum(len(c) for c in clouds) and m["points"] == sum(cases[0]["exp_len"])


def test_parameters_validated():
    with pytest.raises(ValueError, match="power of two"):
        Downsampler(width=6)
    assert Downsampler().name == "downsampler_width8_coord_bits16_batch_bits8_index_bits20"
