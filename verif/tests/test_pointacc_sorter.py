# amaranth: UnusedElaboratable=no
"""Bitonic sorter (``pyhdl/pointacc/bitonic_sorter.py``) against the golden sort, in Verilator.

Scenarios only; case construction and the cocotb scoreboard live in ``verif/tb/pointacc_sorter.py``.
"""

import numpy as np
import pytest

from pyhdl.pointacc.bitonic_sorter import BitonicSorter
from pyhdl.pointacc.network import merge_layers, sort_layers
from runtime import sim
from verif.tb.pointacc_sorter import LATENCY, PARAMS, make_case, run, scene_beats


@pytest.fixture(scope="session")
def model():
    return sim.build(BitonicSorter(**PARAMS))


def full(lanes, last=False):
    return (lanes, (1 << len(lanes)) - 1, last)


def directed_beats(w=8, key_bits=PARAMS["key_bits"], index_bits=PARAMS["index_bits"]):
    kmax, imax = (1 << key_bits) - 1, (1 << index_bits) - 1
    rng = np.random.default_rng(0)
    perm = rng.permutation(w)
    return [
        full([(10 * i, i) for i in range(w)]),                             # already sorted
        full([(10 * (w - i), i) for i in range(w)]),                       # reverse sorted
        full([(42, int(p)) for p in perm]),                                # all keys equal: by idx
        full([(7, 3)] * w),                                                # identical elements
        ([(None, 0)] * 5 + [(99, 1)] + [(None, 0)] * (w - 6), 1 << 5, False),   # one element, lane 5
        ([(None, 0)] * w, 0, True),                                        # empty beat, last
        full([(kmax, imax), (0, 0), (kmax, 0), (0, imax)] + [(kmax - i, i) for i in range(w - 4)]),
        ([(int(rng.integers(0, 50)), i) for i in range(w)], 0b10110010, False),  # scattered keep
        ([(3, 0), (1, 1)] + [(None, 0)] * (w - 2), 0b11, True),            # short last beat
        full([(5, 2), (5, 1), (4, 9), (5, 0)] + [(6, i) for i in range(w - 4)]),  # ties by idx
    ]


def test_network_sorts_every_zero_one_input():
    """0-1 principle: a comparator network sorts everything iff it sorts every 0/1 input."""
    for n in (2, 4, 8, 16):
        layers = sort_layers(n)
        assert len(layers) == n.bit_length() * (n.bit_length() - 1) // 2
        for layer in layers + merge_layers(n):                # each layer: n/2 disjoint comparators
            lanes = [x for pair in layer for x in pair]
            assert sorted(lanes) == list(range(n)) and all(lo < hi for lo, hi in layer), layer
        x = (np.arange(1 << n)[:, None] >> np.arange(n)) & 1
        for layer in layers:
            lo, hi = np.array(layer).T
            a, b = x[:, lo].copy(), x[:, hi].copy()
            x[:, lo], x[:, hi] = np.minimum(a, b), np.maximum(a, b)
        assert np.all(np.diff(x, axis=1) >= 0), n
        # Sorted rows, their mirrors and ascending-then-descending halves are bitonic sequences.
        y = np.concatenate([x, x[:, ::-1], np.concatenate([x[:, : n // 2], x[:, n // 2:][:, ::-1]], 1)])
        for layer in merge_layers(n):
            lo, hi = np.array(layer).T
            a, b = y[:, lo].copy(), y[:, hi].copy()
            y[:, lo], y[:, hi] = np.minimum(a, b), np.maximum(a, b)
        assert np.all(np.diff(y, axis=1) >= 0), n
    assert sort_layers(1) == [] and merge_layers(1) == []       # one lane: nothing to compare
    for bad in (0, 3, 6, 1.0):
        with pytest.raises(ValueError, match="power-of-two"):
            sort_layers(bad)


def test_parameters_validated():
    with pytest.raises(ValueError, match="power of two"):
        BitonicSorter(width=6)
    with pytest.raises(ValueError, match="width must be >= 2"):
        BitonicSorter(width=1)
    with pytest.raises(TypeError, match="key_bits must be an integer"):
        BitonicSorter(key_bits=3.5)
    s = BitonicSorter()
    assert s.latency == 12 and s.name == "bitonic_sorter_width8_key_bits56_index_bits20"


def test_flag_copies_need_replicated_loads():
    from amaranth.hdl import Module, Signal

    from pyhdl.pointacc.bitonic_sorter import cas_layers

    layers = merge_layers(4)
    values, last = [Signal(8) for _ in range(4)], Signal()
    loads = [Signal() for _ in range(2 * len(layers))]
    with pytest.raises(ValueError, match="swap_copies > 1 needs the stages' loads as lists of replicas"):
        cas_layers(Module(), layers, values, last, loads, "m", swap_copies=2)
    # With a copy of the load per lane, the same call builds the network.
    regs, _ = cas_layers(Module(), layers, values, last, [[Signal() for _ in range(4)] for _ in loads], "m",
                         swap_copies=2)
    assert len(regs) == 4


def test_directed(model, tmp_path):
    beats = directed_beats()
    cases = [make_case(f"directed pv={pv} pr={pr}", beats, p_valid=pv, p_ready=pr, seed=s)
             for s, (pv, pr) in enumerate([(1.0, 1.0), (0.5, 1.0), (1.0, 0.3), (0.6, 0.6)])]
    cases.append(make_case("one beat", [beats[2]]))
    m = run(model, cases, tmp_path)
    lat = LATENCY
    assert m["beats"] == len(beats) + 1
    assert m["cycles"] == (len(beats) + lat) + (1 + lat)      # one beat a cycle after `latency`


def random_beats(rng, n, w=8, key_bits=PARAMS["key_bits"], index_bits=PARAMS["index_bits"]):
    out = []
    for _ in range(n):
        span = int(rng.choice([4, 1 << 10, 1 << key_bits]))     # many ties, some ties, none
        lanes = [(int(rng.integers(0, span)), int(rng.integers(0, 1 << index_bits))) for _ in range(w)]
        keep = (1 << w) - 1 if rng.random() < 0.6 else int(rng.integers(0, 1 << w))
        out.append((lanes, keep, bool(rng.random() < 0.1)))
    return out


def test_random_and_scene_under_backpressure(model, tmp_path):
    rng = np.random.default_rng(1)
    cases = [make_case("scene keys", scene_beats(), seed=3),
             make_case("random", random_beats(rng, 150), seed=4),
             make_case("random pv=0.5", random_beats(rng, 150), p_valid=0.5, seed=5),
             make_case("random pr=0.4", random_beats(rng, 150), p_ready=0.4, seed=6),
             make_case("scene keys pv=0.7 pr=0.7", scene_beats(), p_valid=0.7, p_ready=0.7, seed=7)]
    m = run(model, cases, tmp_path)
    # One full beat (8 keys) per cycle once the pipeline is full.
    assert m["beats"] == 250 and m["cycles"] == (100 + 150) + 2 * LATENCY
