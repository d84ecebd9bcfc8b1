"""Merger (``pyhdl/pointacc/merger.py``) against the golden merge, in Verilator.

``merge_lists`` streams pairs of sorted lists through ports ``a`` and ``b`` and checks every
merged list (elements, prefix ``keep``, full beats but the last) and, without back-pressure, the
cycle count of ``merge_cycles``. ``sort_by_passes`` sorts a whole point cloud's keys the way the
mapping unit would: beats already sorted by the bitonic sorter (runs of ``width``), then merge
passes, each pairing up the runs of the previous one (the testbench plays the run memory).
"""

import cocotb
import numpy as np
import pytest
from cocotb.triggers import RisingEdge

from pyhdl.pointacc.merger import Merger
from sw.pointcloud import KeyFormat, scenes
from verif.golden.pointacc import merge, merge_cycles, sort_elements
from verif.harness import bench, sim
from verif.harness.pointacc_beats import beat_arrays, concat, key_beat_ints, read_key_beat, split_lists
from verif.harness.stream import StreamSink, StreamSource

PARAMS = dict(width=8, key_bits=KeyFormat().key_bits, index_bits=20)
MODULE = __name__


# ---------------------------------------------------------------- simulator side (cocotb)

async def _start(dut):
    await RisingEdge(dut.clk)
    for port in ("a", "b"):
        getattr(dut, f"{port}__valid").value = 0
    dut.merged__ready.value = 0
    await bench.reset(dut)


async def _merge(dut, period, case, a_words, b_words, n_lists, pv, pr, seed):
    """Stream the lists, collect ``n_lists`` merged lists; return (lists, sources, sink)."""
    w, kb, ib = (int(case[k]) for k in ("width", "key_bits", "index_bits"))
    src_a = StreamSource(dut, "a", dut.clk, period, p_valid=pv, seed=seed)
    src_b = StreamSource(dut, "b", dut.clk, period, p_valid=pv, seed=seed + 1)
    sink = StreamSink(dut, "merged", dut.clk, period, p_ready=pr, seed=seed + 2)
    src_a.send(a_words)
    src_b.send(b_words)
    budget = 100 + 10 * (len(a_words) + len(b_words) + n_lists) / min(pv, pr)
    cycles = seen = n_last = 0
    while n_last < n_lists and cycles < budget:
        await RisingEdge(dut.clk)
        cycles += 1
        for _, v in sink.received[seen:]:
            n_last += read_key_beat(v, w, kb, ib)[2]
        seen = len(sink.received)
    await bench.settle(dut, 6)
    for d in (src_a, src_b, sink):
        d.stop()
    assert src_a.idle and src_b.idle, f"{case['name']}: inputs not all consumed"
    lists = split_lists(sink.received, w, lambda v: read_key_beat(v, w, kb, ib))
    assert len(lists) == n_lists, f"{case['name']}: {len(lists)} merged lists, expected {n_lists}"
    for elems, info in lists:
        assert all(keep == (1 << w) - 1 for _, keep in info[:-1]), f"{case['name']}: a non-last beat not full"
        assert len(info) == max(1, -(-len(elems) // w)), f"{case['name']}: {len(info)} beats for {len(elems)}"
    return lists, (src_a, src_b), sink


@cocotb.test()
async def merge_lists(dut):
    cases = sim.load_case()
    period = bench.start_clock(dut)
    total = dict(keys=0, cycles=0, expected_cycles=0)
    for c, case in enumerate(cases):
        await _start(dut)
        w, kb, ib = (int(case[k]) for k in ("width", "key_bits", "index_bits"))
        a_words = key_beat_ints(case, w, kb, ib, prefix="a_")
        b_words = key_beat_ints(case, w, kb, ib, prefix="b_")
        lens = case["exp_len"]
        pv, pr = float(case["p_valid"]), float(case["p_ready"])
        lists, (src_a, src_b), sink = await _merge(dut, period, case, a_words, b_words, len(lens), pv, pr,
                                                   int(case["seed"]))
        starts = np.concatenate([[0], np.cumsum(lens)])
        for j, (elems, _) in enumerate(lists):
            want = list(zip(case["exp_keys"][starts[j]:starts[j + 1]].tolist(),
                            case["exp_idx"][starts[j]:starts[j + 1]].tolist(), strict=True))
            assert elems == want, f"case {c} ({case['name']}) list {j}: RTL {elems[:9]}, golden {want[:9]}"
        if pv == 1.0 and pr == 1.0:
            first = min(src_a.sent[0][0], src_b.sent[0][0])
            took = sink.received[-1][0] - first
            assert took == int(case["exp_cycles"]), \
                f"case {c} ({case['name']}): {took} cycles, expected {int(case['exp_cycles'])}"
            total["keys"] += int(np.sum(lens))
            total["cycles"] += took
    sim.report(total)


@cocotb.test()
async def sort_by_passes(dut):
    """Merge passes over sorted runs until one run is left; report cycles per pass."""
    cases = sim.load_case()
    period = bench.start_clock(dut)
    report = {}
    for case in cases:
        w, kb, ib = (int(case[k]) for k in ("width", "key_bits", "index_bits"))
        keys, idx = case["keys"].tolist(), case["idx"].tolist()
        runs = [list(zip(keys[i:i + w], idx[i:i + w], strict=True)) for i in range(0, len(keys), w)]
        runs = [sort_elements(r) for r in runs]        # what the bitonic sorter emits (its own test)
        pass_cycles = []
        while len(runs) > 1:
            await _start(dut)
            pairs = [(runs[i], runs[i + 1] if i + 1 < len(runs) else []) for i in range(0, len(runs), 2)]
            enc = {}
            for side, k in (("a", 0), ("b", 1)):
                parts = [beat_arrays(p[k], w, key_bits=kb, index_bits=ib, prefix=f"{side}_") for p in pairs]
                enc.update(concat(parts, prefix=f"{side}_"))
            a_words = key_beat_ints(enc, w, kb, ib, prefix="a_")
            b_words = key_beat_ints(enc, w, kb, ib, prefix="b_")
            lists, (src_a, src_b), sink = await _merge(dut, period, case, a_words, b_words, len(pairs),
                                                       1.0, 1.0, len(pass_cycles))
            took = sink.received[-1][0] - min(src_a.sent[0][0], src_b.sent[0][0])
            assert took == sum(merge_cycles(len(a), len(b), w) for a, b in pairs), f"pass {len(pass_cycles)}"
            pass_cycles.append(took)
            runs = [elems for elems, _ in lists]
        want = sort_elements(zip(keys, idx, strict=True))
        assert runs[0] == want, "the merge passes did not sort the cloud"
        report[str(case["name"])] = {"keys": len(keys), "pass_cycles": pass_cycles}
    sim.report(report)


# ---------------------------------------------------------------- pytest side

@pytest.fixture(scope="session")
def model():
    return sim.build(Merger(**PARAMS))


def make_case(name, jobs, *, p_valid=1.0, p_ready=1.0, seed=0, params=PARAMS):
    """``jobs``: list of (list a, list b) of (key, idx), each sorted."""
    w = params["width"]
    rng = np.random.default_rng(seed)
    kw = dict(key_bits=params["key_bits"], index_bits=params["index_bits"], rng=rng)
    for a, b in jobs:
        assert a == sort_elements(a) and b == sort_elements(b), "inputs must be sorted"
    case = dict(name=name, **params, p_valid=p_valid, p_ready=p_ready, seed=seed)
    case.update(concat([beat_arrays(a, w, prefix="a_", **kw) for a, _ in jobs], prefix="a_"))
    case.update(concat([beat_arrays(b, w, prefix="b_", **kw) for _, b in jobs], prefix="b_"))
    merged = [merge(a, b) for a, b in jobs]
    flat = [e for m in merged for e in m]
    case.update(exp_len=np.array([len(m) for m in merged], dtype=np.int64),
                exp_keys=np.array([k for k, _ in flat], dtype=np.int64).reshape(-1),
                exp_idx=np.array([i for _, i in flat], dtype=np.int64).reshape(-1),
                exp_cycles=sum(merge_cycles(len(a), len(b), w) for a, b in jobs))
    return case


def run(model, cases, tmp_path, testcase="merge_lists"):
    return sim.run(model, MODULE, cases, testcase=testcase, test_dir=tmp_path)


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
        ([(i, 0) for i in range(8)], [(i, 1) for i in range(8)]),     # full beats: a flush
        ([(i, 0) for i in range(5)], [(i, 1) for i in range(2)]),     # fits one beat: no flush
        ([(i, 0) for i in range(8)], [(i + 8, 1) for i in range(7)]),  # 15: one full and a short beat
    ]


def test_directed(model, tmp_path):
    jobs = directed_jobs()
    cases = [make_case(f"directed pv={pv} pr={pr}", jobs, p_valid=pv, p_ready=pr, seed=s)
             for s, (pv, pr) in enumerate([(1.0, 1.0), (0.5, 1.0), (1.0, 0.3), (0.6, 0.6)])]
    cases += [make_case(f"directed job {j} alone", [job], seed=10 + j) for j, job in enumerate(jobs)]
    m = run(model, cases, tmp_path)
    # Back to back, the whole directed set costs exactly the sum of its jobs, as does each alone.
    assert m["cycles"] == 2 * sum(merge_cycles(len(a), len(b), 8) for a, b in jobs)


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


def test_sort_a_cloud_by_merge_passes(model, tmp_path):
    fmt = KeyFormat()
    c = scenes.scene("lidar", 0.2, seed=4, n_azimuth=512)
    c = c[:1000]
    keys = fmt.pack(c)
    case = dict(name="lidar 1000", **PARAMS, keys=keys, idx=np.arange(len(keys)))
    m = run(model, [case], tmp_path, testcase="sort_by_passes")["lidar 1000"]
    # 125 runs of 8 → 7 passes; each pass streams all 125 beats at one beat per cycle, plus a
    # flush cycle per merged pair of lists.
    assert len(m["pass_cycles"]) == 7
    assert all(125 <= cyc <= 125 + 63 for cyc in m["pass_cycles"])


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_parameters_validated():
    with pytest.raises(ValueError, match="power of two"):
        Merger(width=12)
    with pytest.raises(ValueError, match="index_bits must be >= 1"):
        Merger(index_bits=0)
    assert Merger().name == "merger_width8_key_bits56_index_bits20"
