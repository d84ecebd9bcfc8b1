"""Testbench of the downsampler: case construction and the cocotb scoreboard.

``downsample_lists`` streams sorted lists of parity-last keys (don't-care lanes random) and
checks each list's output points against ``verif.golden.pointacc.downsample`` (quantised keys,
each once, ``idx`` = rank, full beats but the last) and, without back-pressure, every output
beat's cycle against ``downsample_beat_times`` from when the list's first beat was taken (a list
whose end takes two beats holds the next list's first beat back a cycle).
"""

import cocotb
import numpy as np

from runtime import sim
from runtime.scaffold import Testbench
from sw.pointcloud import KeyFormat
from verif.golden.pointacc import downsample, downsample_beat_times, encode_down, sort_elements
from verif.harness.pointacc_beats import beat_arrays, concat, key_beat_ints, read_key_beat, split_lists

PARAMS = dict(width=8, coord_bits=16, batch_bits=8, index_bits=20)
LATENCY = 4
MODULE = __name__


def run(model, cases, test_dir=None) -> dict:
    """Totals over the timed cases: ``keys`` in, ``points`` out, ``cycles`` (first beat in to last out)."""
    return sim.run(model, MODULE, cases, testcase="downsample_lists", test_dir=test_dir)


def make_case(name, clouds, *, p_valid=1.0, p_ready=1.0, seed=0, params=PARAMS):
    """``clouds``: coordinate arrays ``(n, 4)`` (batch first), one list each, sent back to back."""
    w, cb, bb, ib = (params[k] for k in ("width", "coord_bits", "batch_bits", "index_bits"))
    fmt = KeyFormat(cb, bb)
    rng = np.random.default_rng(seed)
    lists, exp, times = [], [], []
    for c in clouds:
        elems = sort_elements((encode_down(*map(int, row), cb, bb), i) for i, row in enumerate(c))
        keys = [k for k, _ in elems]
        assert np.array_equal(np.sort(fmt.down(fmt.pack(c))) if len(c) else [], keys), "golden/sw keys differ"
        lists.append(beat_arrays(elems, w, key_bits=fmt.key_bits, index_bits=ib, rng=rng))
        exp.append(downsample(keys))
        times.append(downsample_beat_times(keys, w, LATENCY))
    flat = [e for x in exp for e in x]
    return dict(name=name, **params, key_bits=fmt.key_bits, p_valid=p_valid, p_ready=p_ready, seed=seed,
                exp_len=np.array([len(x) for x in exp], dtype=np.int64),
                exp_key=np.array([k for k, _ in flat], dtype=np.int64),
                exp_idx=np.array([r for _, r in flat], dtype=np.int64),
                n_in=np.array([len(c) for c in clouds], dtype=np.int64),
                exp_times=np.array([t for ts in times for t in ts], dtype=np.int64),
                n_in_beats=np.array([max(1, -(-len(c) // w)) for c in clouds], dtype=np.int64),
                n_out_beats=np.array([len(t) for t in times], dtype=np.int64),
                **concat(lists))


@cocotb.test()
async def downsample_lists(dut):
    cases = sim.load_case()
    tb = Testbench(dut)
    total = dict(keys=0, points=0, cycles=0)
    for c, case in enumerate(cases):
        await tb.reset("keys__valid", "points__ready")
        w, ib, kb = (int(case[k]) for k in ("width", "index_bits", "key_bits"))
        words = key_beat_ints(case, w, kb, ib)
        lens = case["exp_len"]
        pv, pr = float(case["p_valid"]), float(case["p_ready"])
        src = tb.source("keys", p_valid=pv, seed=int(case["seed"]))
        sink = tb.sink("points", p_ready=pr, seed=int(case["seed"]) + 1)
        src.send(words)
        name = f"case {c} ({case['name']})"
        reader = lambda v, w=w, kb=kb, ib=ib: read_key_beat(v, w, kb, ib)     # noqa: E731
        await tb.drain(sink, len(lens), count=lambda v, r=reader: r(v)[2], budget=50 + 4 * len(words) / min(pv, pr),
                       settle=6, tag=name)
        lists = split_lists(sink.received, w, reader)
        assert len(lists) == len(lens), f"{name}: {len(lists)} lists, expected {len(lens)}"
        starts = np.concatenate([[0], np.cumsum(lens)])
        for j, (elems, info) in enumerate(lists):
            want = list(zip(case["exp_key"][starts[j]:starts[j + 1]].tolist(),
                            case["exp_idx"][starts[j]:starts[j + 1]].tolist(), strict=True))
            assert elems == want, f"{name} list {j}: RTL {elems[:4]}, golden {want[:4]}"
            assert all(keep == (1 << w) - 1 for _, keep in info[:-1]), f"{name} list {j}: a short beat before the last"
        if pv == 1.0 and pr == 1.0:        # each list's beats timed from when its first beat was taken
            first = src.sent[0][0]
            got = [t - first for t, _ in sink.received]
            starts_in = np.concatenate([[0], np.cumsum(case["n_in_beats"])])
            out_starts = np.concatenate([[0], np.cumsum(case["n_out_beats"])])
            want, held = [], 0
            for j in range(len(lens)):
                t0 = src.sent[int(starts_in[j])][0] - first + held
                own = [int(t) for t in case["exp_times"][out_starts[j]:out_starts[j + 1]]]
                want += [t0 + t for t in own]
                held = int(own[-1] == int(case["n_in_beats"][j]) + LATENCY)     # the list ended with a second beat
            bad = next((i for i, (g, x) in enumerate(zip(got, want, strict=False)) if g != x),
                       min(len(got), len(want)))
            assert got == want, (f"{name}: output beat {bad} of {len(got)} (model {len(want)}) on cycle "
                                 f"{got[bad:bad + 4]}, the model {want[bad:bad + 4]}")
            total["cycles"] += got[-1] + 1
            total["keys"] += int(np.sum(case["n_in"]))
            total["points"] += int(np.sum(lens))
    tb.report(total)
