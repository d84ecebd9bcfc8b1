# amaranth: UnusedElaboratable=no
"""Mapping unit (``pyhdl/pointacc/mapping_unit.py``) against ``kernel_map`` and its cycle model, in
Verilator.

Scenarios only; case construction and the cocotb scoreboard live in
``verif/tb/pointacc_mapping_unit.py``.
"""

import numpy as np
import pytest

from runtime import sim
from runtime.pointacc.host import unit_for
from sw.pointcloud import scenes
from verif.tb.pointacc_mapping_unit import make_case, run

PARAMS = dict(max_points=16384, width=8, coord_bits=16, batch_bits=8, kernel_size=3)


@pytest.fixture(scope="session")
def model():
    return sim.build(unit_for(PARAMS))


def small_clouds():
    rng = np.random.default_rng(1)
    line = np.stack([np.arange(-5, 6), np.zeros(11, int), np.zeros(11, int)], 1)
    cube = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3)
    room = scenes.scene("room", 0.2, seed=3, n_points=20_000)
    room = room - room.mean(0).astype(np.int64)
    return {"one point": np.array([[4, -2, 7]]), "line of 11": line, "cube 3x3x3": cube[rng.permutation(27)],
            "room 300": room[rng.permutation(len(room))[:300]]}


def test_small_clouds(model, tmp_path):
    cases = [make_case(n, c, PARAMS, seed=s) for s, (n, c) in enumerate(small_clouds().items())]
    cases.append(make_case("room 300 pr=0.3", small_clouds()["room 300"], PARAMS, p_ready=0.3, seed=9))
    m = run(model, cases, tmp_path)
    print(m)


def test_room_10k_points(model, tmp_path):
    """A voxelised room of 10 425 points (12 cm voxels): every map and the cycle count, with
    random back-pressure on the pairs in a second run."""
    room = scenes.scene("room", 0.12, seed=0)
    assert len(room) >= 10_000
    m = run(model, [make_case("room 10k", room, PARAMS)], tmp_path)
    print(m)
