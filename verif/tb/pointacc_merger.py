"""Testbench of the merger: case construction and the cocotb scoreboards.

``merge_lists`` streams pairs of sorted lists through ports ``a`` and ``b`` and checks every
merged list (elements against ``verif.golden.pointacc.merge``, prefix ``keep``, full beats but
the last) and, without back-pressure, the cycle count of ``merge_cycles``. ``sort_by_passes``
sorts a whole point cloud's keys the way the mapping unit would: beats already sorted by the
bitonic sorter (runs of ``width``), then merge passes, each pairing up the runs of the previous
one (the testbench plays the run memory).
"""

import cocotb
import numpy as np

from runtime import sim
from runtime.scaffold import Testbench
from sw.pointcloud import KeyFormat
from verif.golden.pointacc import merge, merge_cycles, sort_elements
from verif.harness.pointacc_beats import beat_arrays, concat, key_beat_ints, read_key_beat, split_lists

PARAMS = dict(width=8, key_bits=KeyFormat().key_bits, index_bits=20)
MODULE = __name__


def run(model, cases, test_dir=None, testcase="merge_lists") -> dict:
    """``merge_lists`` returns ``keys`` and ``cycles`` over the timed cases (no back-pressure;
    first input beat to last output beat); ``sort_by_passes`` returns, per case name, the
    ``keys`` and the cycles of each merge pass; both add the simulator's speed."""
    return sim.run(model, MODULE, cases, testcase=testcase, test_dir=test_dir)


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
                exp_cycles=merge_cycles(jobs, w))
    return case


async def _merge(tb, case, a_words, b_words, n_lists, pv, pr, seed):
    """From reset, stream the lists, collect ``n_lists`` merged lists; return (lists, sources, sink)."""
    w, kb, ib = (int(case[k]) for k in ("width", "key_bits", "index_bits"))
    await tb.reset("a__valid", "b__valid", "merged__ready")
    src_a = tb.source("a", p_valid=pv, seed=seed)
    src_b = tb.source("b", p_valid=pv, seed=seed + 1)
    sink = tb.sink("merged", p_ready=pr, seed=seed + 2)
    src_a.send(a_words)
    src_b.send(b_words)
    budget = 100 + 10 * (len(a_words) + len(b_words) + n_lists) / min(pv, pr)
    await tb.drain(sink, n_lists, count=lambda v: read_key_beat(v, w, kb, ib)[2], budget=budget, settle=6,
                   tag=str(case["name"]))
    lists = split_lists(sink.received, w, lambda v: read_key_beat(v, w, kb, ib))
    assert len(lists) == n_lists, f"{case['name']}: {len(lists)} merged lists, expected {n_lists}"
    for elems, info in lists:
        assert all(keep == (1 << w) - 1 for _, keep in info[:-1]), f"{case['name']}: a non-last beat not full"
        assert len(info) == max(1, -(-len(elems) // w)), f"{case['name']}: {len(info)} beats for {len(elems)}"
    return lists, (src_a, src_b), sink


@cocotb.test()
async def merge_lists(dut):
    cases = sim.load_case()
    tb = Testbench(dut)
    total = dict(keys=0, cycles=0)
    for c, case in enumerate(cases):
        w, kb, ib = (int(case[k]) for k in ("width", "key_bits", "index_bits"))
        a_words = key_beat_ints(case, w, kb, ib, prefix="a_")
        b_words = key_beat_ints(case, w, kb, ib, prefix="b_")
        lens = case["exp_len"]
        pv, pr = float(case["p_valid"]), float(case["p_ready"])
        lists, (src_a, src_b), sink = await _merge(tb, case, a_words, b_words, len(lens), pv, pr, int(case["seed"]))
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
    tb.report(total)


@cocotb.test()
async def sort_by_passes(dut):
    """Merge passes over sorted runs until one run is left; report cycles per pass."""
    cases = sim.load_case()
    tb = Testbench(dut)
    report = {}
    for case in cases:
        w, kb, ib = (int(case[k]) for k in ("width", "key_bits", "index_bits"))
        keys, idx = case["keys"].tolist(), case["idx"].tolist()
        runs = [list(zip(keys[i:i + w], idx[i:i + w], strict=True)) for i in range(0, len(keys), w)]
        runs = [sort_elements(r) for r in runs]        # what the bitonic sorter emits (its own test)
        pass_cycles = []
        while len(runs) > 1:
            pairs = [(runs[i], runs[i + 1] if i + 1 < len(runs) else []) for i in range(0, len(runs), 2)]
            enc = {}
            for side, k in (("a", 0), ("b", 1)):
                parts = [beat_arrays(p[k], w, key_bits=kb, index_bits=ib, prefix=f"{side}_") for p in pairs]
                enc.update(concat(parts, prefix=f"{side}_"))
            a_words = key_beat_ints(enc, w, kb, ib, prefix="a_")
            b_words = key_beat_ints(enc, w, kb, ib, prefix="b_")
            lists, (src_a, src_b), sink = await _merge(tb, case, a_words, b_words, len(pairs), 1.0, 1.0,
                                                       len(pass_cycles))
            took = sink.received[-1][0] - min(src_a.sent[0][0], src_b.sent[0][0])
            want = merge_cycles(pairs, w)
            assert took == want, f"pass {len(pass_cycles)}: {took} cycles, expected {want}"
            pass_cycles.append(took)
            runs = [elems for elems, _ in lists]
        want = sort_elements(zip(keys, idx, strict=True))
        assert runs[0] == want, "the merge passes did not sort the cloud"
        report[str(case["name"])] = {"keys": len(keys), "pass_cycles": pass_cycles}
    tb.report(report)
