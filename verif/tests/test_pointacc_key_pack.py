# amaranth: UnusedElaboratable=no
"""Key packer (``pyhdl/pointacc/key_pack.py``) against the golden key encoding, in Verilator.

Scenarios only; case construction and the cocotb scoreboard live in ``verif/tb/pointacc_key_pack.py``.
"""

import numpy as np
import pytest

from pyhdl.pointacc.key_pack import KeyPack
from runtime import sim
from sw.pointcloud import KeyFormat, scenes
from verif.tb.pointacc_key_pack import LATENCY, PARAMS, make_case, run

W = PARAMS["width"]


@pytest.fixture(scope="session")
def model():
    return sim.build(KeyPack(**PARAMS))


def directed_coords():
    f = KeyFormat(PARAMS["coord_bits"], PARAMS["batch_bits"])
    lo, hi, bmax = f.coord_min, f.coord_max, f.batch_max
    rows = [[0, 0, 0, 0], [0, -1, -1, -1], [0, 1, 1, 1], [0, lo, lo, lo], [0, hi, hi, hi], [bmax, hi, hi, hi],
            [bmax, lo, lo, lo], [1, lo, 0, hi], [2, hi, lo, 0], [3, 0, hi, lo], [bmax, -1, 0, 1],
            [0, lo + 1, hi - 1, -2], [5, 12, -7, 300], [0, -300, 0, 7], [bmax, 0, 0, 0], [0, hi, 0, 0]]
    return np.array(rows, dtype=np.int64).reshape(-1, W, 4)


def test_directed_limits_and_negative(model, tmp_path):
    c = directed_coords()
    cases = [make_case(f"limits pv={pv} pr={pr}", c, last=[0, 1], p_valid=pv, p_ready=pr, seed=s)
             for s, (pv, pr) in enumerate([(1.0, 1.0), (0.5, 1.0), (1.0, 0.3), (0.6, 0.6)])]
    cases.append(make_case("partial and empty beats", c, keep=[0b00100101, 0], last=[0, 1], seed=9))
    cases.append(make_case("parity-last", c, last=[0, 1], seed=10, downsample=True))
    cases.append(make_case("parity-last pv=0.5 pr=0.5", c, last=[0, 1], p_valid=0.5, p_ready=0.5, seed=11,
                           downsample=True))
    m = run(model, cases, tmp_path)
    assert m["beats"] == 6 and m["cycles"] == 3 * (2 + LATENCY)
    assert cases[-2]["exp_key"][0, 3] == 0 and cases[-2]["exp_key"][0, 5] == (1 << 56) - 1
    # The two extremes of the key range are the two extreme points.
    assert cases[0]["exp_key"][0, 3] == 0 and cases[0]["exp_key"][0, 5] == (1 << 56) - 1


def test_scene_and_random_under_backpressure(model, tmp_path):
    rng = np.random.default_rng(3)
    c = scenes.batch(scenes.scene("room", 0.25, seed=1, n_points=10_000)[:400] - 30,
                     scenes.scene("lidar", 0.4, seed=1, n_azimuth=256)[:400])
    beats = c.reshape(-1, W, 4)
    lim = 1 << (PARAMS["coord_bits"] - 1)
    rnd = np.concatenate([rng.integers(0, 256, (60, W, 1)), rng.integers(-lim, lim, (60, W, 3))], axis=2)
    keep = rng.integers(0, 1 << W, 60)
    cases = [make_case("scene", beats, seed=4),
             make_case("random pv=0.6 pr=0.6", rnd, keep=keep, last=rng.integers(0, 2, 60), p_valid=0.6,
                       p_ready=0.6, seed=5)]
    m = run(model, cases, tmp_path)
    assert m["keys"] == len(c) and m["cycles"] == len(beats) + LATENCY      # 8 keys every cycle


def test_parameters_validated():
    with pytest.raises(ValueError, match="power of two"):
        KeyPack(width=5)
    with pytest.raises(ValueError, match="must fit an int64"):
        KeyPack(coord_bits=20)
    assert KeyPack().name == "key_pack_width8_coord_bits16_batch_bits8_index_bits20"
