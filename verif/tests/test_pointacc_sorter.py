"""Bitonic sorter (``pyhdl/pointacc/bitonic_sorter.py``) against the golden sort, in Verilator.

Each case is a stream of beats with any ``keep`` masks (don't-care lanes random); every output
beat must hold the kept elements sorted by ``(key, idx)`` in a prefix of lanes, ``last`` passed
through. Without back-pressure each beat must leave exactly ``latency`` cycles after it entered,
one beat per cycle.
"""

import cocotb
import numpy as np
import pytest
from cocotb.triggers import RisingEdge

from pyhdl.pointacc.bitonic_sorter import BitonicSorter
from pyhdl.pointacc.network import merge_layers, sort_layers
from pyhdl.pointacc.streams import key_beat_layout
from sw.pointcloud import KeyFormat, scenes
from verif.golden.pointacc import sort_elements
from verif.harness import bench, sim
from verif.harness.layouts import pack
from verif.harness.pointacc_beats import read_key_beat
from verif.harness.stream import StreamSink, StreamSource

PARAMS = dict(width=8, key_bits=KeyFormat().key_bits, index_bits=20)
LATENCY = len(sort_layers(PARAMS["width"]))
MODULE = __name__


# ---------------------------------------------------------------- simulator side (cocotb)

@cocotb.test()
async def sort_beats(dut):
    cases = sim.load_case()
    period = bench.start_clock(dut)
    total = dict(beats=0, keys=0, cycles=0)
    for c, case in enumerate(cases):
        await RisingEdge(dut.clk)
        dut.unsorted__valid.value = 0
        dut.sorted__ready.value = 0
        await bench.reset(dut)
        w, kb, ib = (int(case[k]) for k in ("width", "key_bits", "index_bits"))
        latency = len(sort_layers(w))
        layout = key_beat_layout(w, kb, ib)
        keys, idx, keep, last = case["keys"], case["idx"], case["keep"], case["last"]
        n = len(keep)
        words = [pack(layout, {"lanes": [{"key": int(keys[b, i]), "idx": int(idx[b, i])} for i in range(w)],
                               "keep": int(keep[b]), "last": int(last[b])}) for b in range(n)]
        pv, pr = float(case["p_valid"]), float(case["p_ready"])
        src = StreamSource(dut, "unsorted", dut.clk, period, p_valid=pv, seed=int(case["seed"]))
        sink = StreamSink(dut, "sorted", dut.clk, period, p_ready=pr, seed=int(case["seed"]) + 1)
        src.send(words)
        budget = 50 + 10 * n / min(pv, pr)
        cycles = 0
        while len(sink.received) < n and cycles < budget:
            await RisingEdge(dut.clk)
            cycles += 1
        await bench.settle(dut, latency + 4)
        src.stop()
        sink.stop()
        assert len(sink.received) == n, f"case {c} ({case['name']}): {len(sink.received)} of {n} beats"
        for b, (_, value) in enumerate(sink.received):
            got, got_keep, got_last = read_key_beat(value, w, kb, ib)
            want = sort_elements([(keys[b, i], idx[b, i]) for i in range(w) if keep[b] >> i & 1])
            assert got == want, f"case {c} ({case['name']}) beat {b}: RTL {got}, golden {want}"
            assert got_keep == (1 << len(want)) - 1, f"case {c} beat {b}: keep {got_keep:#x}"
            assert got_last == int(last[b]), f"case {c} beat {b}: last {got_last}"
        if pv == 1.0 and pr == 1.0:
            first = src.sent[0][0]
            for b, ((t_in, _), (t_out, _)) in enumerate(zip(src.sent, sink.received, strict=True)):
                assert t_in == first + b, f"case {c}: input beat {b} accepted on cycle {t_in - first}"
                assert t_out == t_in + latency, \
                    f"case {c}: beat {b} out {t_out - t_in} cycles after it went in, not {latency}"
            total["beats"] += n
            total["keys"] += int(sum(bin(int(k)).count("1") for k in keep))
            total["cycles"] += sink.received[-1][0] - first + 1
    sim.report(total)


# ---------------------------------------------------------------- pytest side

@pytest.fixture(scope="session")
def model():
    return sim.build(BitonicSorter(**PARAMS))


def make_case(name, beats, *, p_valid=1.0, p_ready=1.0, seed=0, rng=None, params=PARAMS):
    """``beats``: list of (list of (key, idx) in lanes 0.., keep mask, last)."""
    w = params["width"]
    rng = rng or np.random.default_rng(seed)
    n = len(beats)
    keys = rng.integers(0, 1 << params["key_bits"], (n, w), dtype=np.int64)     # don't-care lanes
    idx = rng.integers(0, 1 << params["index_bits"], (n, w), dtype=np.int64)
    keep = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64)
    for b, (lanes, k, lst) in enumerate(beats):
        for i, (key, ix) in enumerate(lanes):
            if key is not None:
                keys[b, i], idx[b, i] = key, ix
        keep[b], last[b] = k, lst
    return dict(name=name, **params, keys=keys, idx=idx, keep=keep, last=last,
                p_valid=p_valid, p_ready=p_ready, seed=seed)


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
    for bad in (0, 3, 6, 1.0):
        with pytest.raises(ValueError, match="power-of-two"):
            sort_layers(bad)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_parameters_validated():
    with pytest.raises(ValueError, match="power of two"):
        BitonicSorter(width=6)
    with pytest.raises(ValueError, match="width must be >= 2"):
        BitonicSorter(width=1)
    with pytest.raises(TypeError, match="key_bits must be an integer"):
        BitonicSorter(key_bits=3.5)
    s = BitonicSorter()
    assert s.latency == 6 and s.name == "bitonic_sorter_width8_key_bits56_index_bits20"


def test_directed(model, tmp_path):
    beats = directed_beats()
    cases = [make_case(f"directed pv={pv} pr={pr}", beats, p_valid=pv, p_ready=pr, seed=s)
             for s, (pv, pr) in enumerate([(1.0, 1.0), (0.5, 1.0), (1.0, 0.3), (0.6, 0.6)])]
    cases.append(make_case("one beat", [beats[2]]))
    m = sim.run(model, MODULE, cases, testcase="sort_beats", test_dir=tmp_path)
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


def scene_beats(w=8):
    """Keys of a generated scene (with negative coordinates), 8 points a beat, idx = point number."""
    fmt = KeyFormat()
    c = scenes.scene("room", 0.25, seed=3, n_points=20_000)
    keys = fmt.pack(c - c.mean(0).astype(np.int64))[:800]
    return [full([(int(k), int(b * w + i)) for i, k in enumerate(keys[b * w:(b + 1) * w])])
            for b in range(len(keys) // w)]


def test_random_and_scene_under_backpressure(model, tmp_path):
    rng = np.random.default_rng(1)
    cases = [make_case("scene keys", scene_beats(), seed=3),
             make_case("random", random_beats(rng, 150), seed=4),
             make_case("random pv=0.5", random_beats(rng, 150), p_valid=0.5, seed=5),
             make_case("random pr=0.4", random_beats(rng, 150), p_ready=0.4, seed=6),
             make_case("scene keys pv=0.7 pr=0.7", scene_beats(), p_valid=0.7, p_ready=0.7, seed=7)]
    m = sim.run(model, MODULE, cases, testcase="sort_beats", test_dir=tmp_path)
    # One full beat (8 keys) per cycle once the pipeline is full.
    assert m["beats"] == 250 and m["cycles"] == (100 + 150) + 2 * LATENCY
