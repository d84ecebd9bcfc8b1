# amaranth: UnusedElaboratable=no
"""Mapping unit (``pyhdl/pointacc/mapping_unit.py``) against ``kernel_map`` and its cycle model, in
Verilator.

Scenarios only; case construction and the cocotb scoreboard live in
``verif/tb/pointacc_mapping_unit.py``.
"""

import numpy as np
import pytest

from pyhdl.pointacc.mapping_unit import Config, MappingUnit, Region
from runtime import sim
from runtime.pointacc.host import load_writes, unit_for
from sw.cyclemodel.pointacc import unit_cycles
from sw.pointcloud import scenes
from verif.tb.pointacc_mapping_unit import make_case, run, timing

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
    """Directed clouds at both strides (stride 2: the unit generates the output points too), one
    with back-pressure at each; a stride-2 run follows a stride-1 run on the same unit."""
    cases = [make_case(n, c, PARAMS, seed=s) for s, (n, c) in enumerate(small_clouds().items())]
    cases.append(make_case("room 300 pr=0.3", small_clouds()["room 300"], PARAMS, p_ready=0.3, seed=9))
    cases += [make_case(f"{n} stride 2", c, PARAMS, stride=2, seed=20 + s)
              for s, (n, c) in enumerate(small_clouds().items())]
    cases.append(make_case("room 300 stride 2 pr=0.4", small_clouds()["room 300"], PARAMS, stride=2, p_ready=0.4,
                           seed=29))
    m = run(model, cases, tmp_path)
    assert m["room 300 pr=0.3"]["stalls"] > 0 and m["cube 3x3x3"]["pairs"] == 7 ** 3
    # Stride 2 on the cube: outputs at 0 and 2 per axis; inputs 0, 1, 2 reach 1, 2, 1 of them: 4**3 pairs.
    assert m["room 300 stride 2 pr=0.4"]["stalls"] > 0 and m["cube 3x3x3 stride 2"]["pairs"] == 64


def test_room_10k_points(model, tmp_path):
    """A voxelised room of 10 425 points (12 cm voxels): every map and the cycle count, with
    random back-pressure on the pairs in a second run."""
    room = scenes.scene("room", 0.12, seed=0)
    assert len(room) >= 10_000
    m = run(model, [make_case("room 10k", room, PARAMS)], tmp_path)["room 10k"]
    assert m["points"] == len(room) and m["pairs"] > 9 * len(room) and m["stalls"] == 0


def test_lidar_and_a_batch_of_two(model, tmp_path):
    """A LiDAR sweep of 13 990 points with random back-pressure on the pairs, and a batch of two
    scenes (a room and a sweep, 13 229 points, batch indices 0 and 1)."""
    lidar = scenes.scene("lidar", 0.3, seed=0)
    pair = scenes.batch(scenes.scene("room", 0.15, seed=1), scenes.scene("lidar", 0.6, seed=2))
    assert min(len(lidar), len(pair)) >= 10_000 and set(pair[:, 0].tolist()) == {0, 1}
    m = run(model, [make_case("lidar pr=0.7", lidar, PARAMS, p_ready=0.7, seed=3),
                    make_case("batch of two", pair, PARAMS, seed=4)], tmp_path)
    assert m["lidar pr=0.7"]["stalls"] > 0 and m["batch of two"]["points"] == len(pair)


def test_stride_2_room_lidar_and_batch(model, tmp_path):
    """Downsampling in hardware on the 10 425-point room (cycle for cycle), the 13 990-point LiDAR
    sweep with back-pressure and the batch of two: output points and maps equal
    ``kernel_map(stride=2)``'s."""
    room = scenes.scene("room", 0.12, seed=0)
    lidar = scenes.scene("lidar", 0.3, seed=0)
    pair = scenes.batch(scenes.scene("room", 0.15, seed=1), scenes.scene("lidar", 0.6, seed=2))
    m = run(model, [make_case("room stride 2", room, PARAMS, stride=2),
                    make_case("lidar stride 2 pr=0.6", lidar, PARAMS, stride=2, p_ready=0.6, seed=5),
                    make_case("batch of two stride 2", pair, PARAMS, stride=2, seed=6)], tmp_path)
    assert m["lidar stride 2 pr=0.6"]["stalls"] > 0 and m["room stride 2"]["pairs"] > 2 * len(room)


def test_duplicates_set_the_sticky_error(model, tmp_path):
    """Repeated rows (in one beat, across beats, across batch indices not) stop the unit after the
    sort with the error flag set and no pairs; the cycle model says when. A clean cloud after them
    runs normally (``start`` clears the flag)."""
    cloud = small_clouds()["room 300"]
    same_beat = np.concatenate([cloud[:5], cloud[3:4], cloud[5:40]])
    across = np.concatenate([cloud, cloud[100:101]])
    twice = np.concatenate([cloud[:64], cloud[:64]])
    cases = [make_case(n, c, PARAMS, duplicate=True, seed=s)
             for s, (n, c) in enumerate([("same beat", same_beat), ("across beats", across), ("every row", twice)])]
    cases.append(make_case("across beats stride 2", across, PARAMS, stride=2, duplicate=True, seed=5))
    batch = np.concatenate([np.zeros((len(cloud), 1), np.int64), cloud], 1)
    batch = np.concatenate([batch, batch[:50] + [1, 0, 0, 0]])        # same xyz, other batch: no duplicate
    cases.append(make_case("same xyz in two batches", batch, PARAMS, seed=7))
    m = run(model, cases, tmp_path)
    assert all(m[n]["pairs"] == 0 for n in ("same beat", "across beats", "every row", "across beats stride 2"))
    assert m["same xyz in two batches"]["pairs"] > 0


def test_driver_refuses_what_the_unit_cannot_take():
    unit = unit_for(PARAMS)
    with pytest.raises(ValueError, match="17000 points do not fit the mapping unit .max_points = 16384."):
        load_writes(unit, np.zeros((17000, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="empty"):
        load_writes(unit, np.zeros((0, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="row 1: y = 40000 is outside the key range -32768 .. 32767"):
        load_writes(unit, np.array([[0, 0, 0], [1, 40000, 2]]))
    with pytest.raises(ValueError, match="row 2: batch index 256 is outside 0 .. 255"):
        load_writes(unit, np.array([[0, 0, 0, 0], [1, 0, 0, 0], [256, 0, 0, 0]]))
    with pytest.raises(ValueError, match="integer array"):
        load_writes(unit, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"shape \(P, 3\) or \(P, 4"):
        load_writes(unit, np.zeros((4, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="stride must be 1 or 2, got 3"):
        load_writes(unit, np.zeros((4, 3), dtype=np.int64), stride=3)
    writes = load_writes(unit, np.arange(30).reshape(10, 3), stride=2)
    assert len(writes) == 2 + 2 and writes[-2:] == [(unit.address(Region.CONFIG, Config.N_POINTS), 10),
                                                    (unit.address(Region.CONFIG, Config.STRIDE), 2)]


def test_parameters_validated():
    with pytest.raises(ValueError, match="power of two"):
        MappingUnit(width=6)
    with pytest.raises(ValueError, match="multiple of width"):
        MappingUnit(max_points=1001)
    with pytest.raises(ValueError, match="odd"):
        MappingUnit(kernel_size=4)
    with pytest.raises(TypeError, match="max_points must be an integer"):
        MappingUnit(max_points=4096.0)
    u = MappingUnit()
    assert u.name == "mapping_unit_max_points4096_width8_coord_bits16_batch_bits8_kernel_size3"
    assert (u.depth, u.index_bits, u.n_offsets) == (512, 12, 27)


def test_cycle_model_edges():
    unit = unit_for(PARAMS)
    t = timing(unit)
    assert unit_cycles([], unit.offsets, t).total == 0
    one = unit_cycles([5], unit.offsets, t)
    assert (one.merge_passes, one.sort, one.check) == ([], unit.PHASE_LATENCY + t.sort_latency, unit.CHECK_LATENCY)
    dup = unit_cycles([5, 7, 5], unit.offsets, t)
    assert dup.duplicate and dup.intersect == 0 and dup.total == dup.sort_total


def test_sim_pointacc_command(tmp_path, monkeypatch, capsys):
    """``sparsehw sim pointacc`` on a 10 425-point room, with back-pressure at stride 1 and at
    stride 2: the files it writes equal ``sparsehw pointcloud kmap``'s (the unit is sized to
    PARAMS, so it shares the model above)."""
    from runtime.pointacc.mapping import fit_params
    from sw.cli import main

    monkeypatch.chdir(tmp_path)
    room = scenes.scene("room", 0.12, seed=0)
    assert fit_params(len(room)) == PARAMS
    np.save("room.npy", room)
    assert main(["sim", "pointacc", "--coords", "room.npy", "--p-ready", "0.8", "--out", "rtl.npz"]) == 0
    out = capsys.readouterr().out
    assert f"stride 1: {len(room)} points -> {len(room)} outputs, 27 offsets" in out
    assert "equal to kernel_map" in out and "output stalls 0;" not in out
    assert main(["pointcloud", "kmap", "--coords", "room.npy", "--out", "sw.npz"]) == 0
    assert main(["sim", "pointacc", "--coords", "room.npy", "--stride", "2", "--out", "rtl2.npz"]) == 0
    assert "stride 2: 10425 points -> " in capsys.readouterr().out
    assert main(["pointcloud", "kmap", "--coords", "room.npy", "--stride", "2", "--out", "sw2.npz"]) == 0
    for mine, theirs in (("rtl.npz", "sw.npz"), ("rtl2.npz", "sw2.npz")):
        rtl, ref = np.load(mine), np.load(theirs)
        assert sorted(rtl.files) == sorted(ref.files) == ["offset_index", "offsets", "out_coords", "pairs"]
        for k in ref.files:
            assert np.array_equal(rtl[k], ref[k]), (mine, k)
