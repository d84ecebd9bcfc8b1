# amaranth: UnusedElaboratable=no
"""Merger (``pyhdl/pointacc/merger.py``) against the golden merge, in Verilator.

Scenarios only; case construction and the cocotb scoreboards live in ``verif/tb/pointacc_merger.py``.
"""

import numpy as np
import pytest

from pyhdl.pointacc.merger import Merger
from runtime import sim
from sw.pointcloud import KeyFormat, scenes
from verif.golden.pointacc import merge_cycles, sort_elements
from verif.tb.pointacc_merger import PARAMS, make_case, run


@pytest.fixture(scope="session")
def model():
    return sim.build(Merger(**PARAMS))


def directed_jobs():
    kmax, imax = (1 << PARAMS["key_bits"]) - 1, (1 << PARAMS["index_bits"]) - 1
    evens = [(2 * i, i) for i in range(20)]
    odds = [(2 * i + 1, 100 + i) for i in range(20)]
    low = [(i, i) for i in range(16)]
    high = [(1000 + i, i) for i in range(16)]
    return [
        ([], []),                                                    # both empty
        ([], [(5 * i, i) for i in range(5)]),                        # one side empty
        ([(i, i) for i in range(8)], []),
        ([(7, 1)], [(3, 2)]),                                        # one element each
        (evens, odds),                                               # interleaved
        (low, high),                                                 # a entirely below b
        (high, low),                                                 # b entirely below a
        ([(9, 2 * i) for i in range(12)], [(9, 2 * i + 1) for i in range(12)]),   # equal keys: by idx
        ([(4, 4)] * 9, [(4, 4)] * 3),                                # identical elements in both
        ([(1, 0), (5, 0), (6, 0)], sort_elements([(3 * i, 1) for i in range(29)])),   # unequal lengths
        ([(0, 0), (kmax, imax)], [(0, imax), (kmax, 0), (kmax, 1)]),  # keys and indices at the limits
        ([(i, 0) for i in range(8)], [(i, 1) for i in range(8)]),     # full beats: two full output beats
        ([(i, 0) for i in range(5)], [(i, 1) for i in range(2)]),     # fits one output beat
        ([(i, 0) for i in range(8)], [(i + 8, 1) for i in range(7)]),  # 15: one full and a short beat
    ]


def test_directed(model, tmp_path):
    jobs = directed_jobs()
    cases = [make_case(f"directed pv={pv} pr={pr}", jobs, p_valid=pv, p_ready=pr, seed=s)
             for s, (pv, pr) in enumerate([(1.0, 1.0), (0.5, 1.0), (1.0, 0.3), (0.6, 0.6)])]
    cases += [make_case(f"directed job {j} alone", [job], seed=10 + j) for j, job in enumerate(jobs)]
    m = run(model, cases, tmp_path)
    # Back to back, pairs of lists overlap (the next pair queues behind the current one).
    assert m["cycles"] == merge_cycles(jobs, 8) + sum(merge_cycles([job], 8) for job in jobs)


def random_jobs(rng, n):
    jobs = []
    for _ in range(n):
        span = int(rng.choice([8, 300, 1 << PARAMS["key_bits"]]))
        la, lb = (int(rng.choice([0, 1, 7, 8, 9, 16, int(rng.integers(0, 70))])) for _ in range(2))
        a = sort_elements((int(rng.integers(0, span)), int(rng.integers(0, 1 << 20))) for _ in range(la))
        b = sort_elements((int(rng.integers(0, span)), int(rng.integers(0, 1 << 20))) for _ in range(lb))
        jobs.append((a, b))
    return jobs


def test_random_under_backpressure(model, tmp_path):
    rng = np.random.default_rng(2)
    cases = [make_case(f"random pv={pv} pr={pr}", random_jobs(rng, 40), p_valid=pv, p_ready=pr, seed=20 + s)
             for s, (pv, pr) in enumerate([(1.0, 1.0), (0.4, 1.0), (1.0, 0.4), (0.7, 0.7)])]
    m = run(model, cases, tmp_path)
    assert m["keys"] == int(np.sum(cases[0]["exp_len"])) and m["cycles"] == cases[0]["exp_cycles"]
    assert sum(int(np.sum(c["exp_len"])) for c in cases) > 3000


def test_lists_queued_ahead(model, tmp_path):
    """Inputs run up to one list ahead of the pair being merged, one side far ahead of the other
    (short or empty lists on one side, long on the other), and a pair's elements may still be on
    their way to the queue heads when its lists have ended."""
    rng = np.random.default_rng(5)
    long = [sort_elements((int(rng.integers(0, 40)), int(rng.integers(0, 1 << 20))) for _ in range(n))
            for n in (40, 33, 64, 17)]
    jobs = [([], x) for x in long] + [(x, []) for x in long] + [([(3, 1)], x) for x in long]
    jobs += [(x, [(20, 5)]) for x in long] + [([(7, 1)], [(3, 2)])] * 6 + [([], [])] * 3
    jobs += [(long[0][:9], long[1][:8]), (long[2][:1], long[3][:16])] * 3
    cases = [make_case("ahead", jobs, seed=80),
             make_case("ahead pv=0.5 pr=0.5", jobs, p_valid=0.5, p_ready=0.5, seed=81)]
    m = run(model, cases, tmp_path)
    assert m["cycles"] == merge_cycles(jobs, 8)


SMALL = dict(width=4, key_bits=6, index_bits=3)


def test_small_width4(tmp_path):
    """A second configuration: 4 lanes, 6-bit keys (many equal keys, in both lists) and 3-bit
    indices, so equal elements meet across the inputs at every queue rotation."""
    model = sim.build(Merger(**SMALL))
    rng = np.random.default_rng(9)
    jobs = []
    for _ in range(60):
        la, lb = (int(rng.choice([0, 1, 3, 4, 5, int(rng.integers(0, 30))])) for _ in range(2))
        jobs.append(tuple(sort_elements((int(rng.integers(0, 64)), int(rng.integers(0, 8))) for _ in range(n))
                          for n in (la, lb)))
    cases = [make_case("small", jobs, seed=90, params=SMALL),
             make_case("small pv=0.6 pr=0.5", jobs, p_valid=0.6, p_ready=0.5, seed=91, params=SMALL)]
    m = run(model, cases, tmp_path)
    assert m["cycles"] == merge_cycles(jobs, 4) and Merger(**SMALL).latency == 5


def test_sort_a_cloud_by_merge_passes(model, tmp_path):
    fmt = KeyFormat()
    c = scenes.scene("lidar", 0.2, seed=4, n_azimuth=512)
    c = c[:1000]
    keys = fmt.pack(c)
    case = dict(name="lidar 1000", **PARAMS, keys=keys, idx=np.arange(len(keys)))
    m = run(model, [case], tmp_path, testcase="sort_by_passes")["lidar 1000"]
    # 125 runs of 8 → 7 passes (each equal to merge_cycles, checked in the testbench). From runs of
    # four beats on, a pass emits its 125 beats one a cycle, pairs of lists back to back, after the
    # three cycles from a beat's arrival to the queue heads (it enters at slot 2) and the latency.
    # Runs of one beat lose about a cycle a pair (60 for 62 pairs): the next pair's elements, at
    # most one list ahead, are not yet at the heads when a pair's second step leaves.
    lat = Merger().latency
    assert m["pass_cycles"][2:] == [125 + 2 + lat] * 5
    assert m["pass_cycles"][0] == 125 + 2 + lat + 60


def test_parameters_validated():
    with pytest.raises(ValueError, match="power of two"):
        Merger(width=12)
    with pytest.raises(ValueError, match="index_bits must be >= 1"):
        Merger(index_bits=0)
    mg = Merger()
    assert mg.name == "merger_width8_key_bits56_index_bits20"
    assert (mg.latency, mg.depth, mg.entry) == (7, 5, 2)    # the defaults of verif.golden.pointacc.merge_cycles
