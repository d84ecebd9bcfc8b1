"""Testbench of the bitonic sorter: case construction and the cocotb scoreboard.

``sort_beats`` streams beats with any ``keep`` masks (don't-care lanes random) and checks that
every output beat holds the kept elements sorted by ``(key, idx)`` (``verif.golden.pointacc``)
in a prefix of lanes with ``last`` passed through; without back-pressure each beat must leave
exactly ``LATENCY`` cycles after it entered, one beat per cycle.
"""

import cocotb
import numpy as np

from pyhdl.pointacc.bitonic_sorter import sorter_latency
from runtime import sim
from runtime.scaffold import Testbench
from sw.pointcloud import KeyFormat, scenes
from verif.golden.pointacc import sort_elements
from verif.harness.pointacc_beats import key_beat_ints, read_key_beat

PARAMS = dict(width=8, key_bits=KeyFormat().key_bits, index_bits=20)
LATENCY = sorter_latency(PARAMS["width"])
MODULE = __name__


def run(model, cases, test_dir=None) -> dict:
    """Run ``cases``; returns totals over the timed cases (no back-pressure): ``beats``,
    ``keys``, ``cycles`` (first beat in to last beat out, inclusive), plus simulator speed."""
    return sim.run(model, MODULE, cases, testcase="sort_beats", test_dir=test_dir)


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


def scene_beats(w=8):
    """Keys of a generated scene (with negative coordinates), 8 points a beat, idx = point number."""
    fmt = KeyFormat()
    c = scenes.scene("room", 0.25, seed=3, n_points=20_000)
    keys = fmt.pack(c - c.mean(0).astype(np.int64))[:800]
    return [full([(int(k), int(b * w + i)) for i, k in enumerate(keys[b * w:(b + 1) * w])])
            for b in range(len(keys) // w)]


@cocotb.test()
async def sort_beats(dut):
    cases = sim.load_case()
    tb = Testbench(dut)
    total = dict(beats=0, keys=0, cycles=0)
    for c, case in enumerate(cases):
        await tb.reset("unsorted__valid", "sorted__ready")
        w, kb, ib = (int(case[k]) for k in ("width", "key_bits", "index_bits"))
        latency = sorter_latency(w)
        keys, idx, keep, last = case["keys"], case["idx"], case["keep"], case["last"]
        n = len(keep)
        pv, pr = float(case["p_valid"]), float(case["p_ready"])
        src = tb.source("unsorted", p_valid=pv, seed=int(case["seed"]))
        sink = tb.sink("sorted", p_ready=pr, seed=int(case["seed"]) + 1)
        src.send(key_beat_ints(case, w, kb, ib))
        await tb.drain(sink, n, budget=50 + 10 * n / min(pv, pr), settle=latency + 4,
                       tag=f"case {c} ({case['name']})")
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
    tb.report(total)
