"""Testbench of the key packer: case construction and the cocotb scoreboard.

``pack_coords`` streams coordinate beats (don't-care lanes random) and checks every kept lane's
key against ``verif.golden.pointacc.encode`` (``encode_down`` for parity-last keys) and its
index, ``keep`` and ``last``; without back-pressure each beat must leave one cycle after it
entered.
"""

import cocotb
import numpy as np

from pyhdl.pointacc.streams import coord_beat_layout
from runtime import sim
from runtime.payload import pack
from runtime.scaffold import Testbench
from sw.pointcloud import KeyFormat
from verif.golden.pointacc import encode, encode_down
from verif.harness.pointacc_beats import read_key_beat

PARAMS = dict(width=8, coord_bits=16, batch_bits=8, index_bits=20)
LATENCY = 1
MODULE = __name__


def run(model, cases, test_dir=None) -> dict:
    """Totals over the timed cases: ``beats``, ``keys``, ``cycles`` (first in to last out)."""
    return sim.run(model, MODULE, cases, testcase="pack_coords", test_dir=test_dir)


def make_case(name, coords, keep=None, last=None, *, p_valid=1.0, p_ready=1.0, seed=0, params=PARAMS,
              downsample=False):
    """``coords``: (n_beats, width, 4) int array of (batch, x, y, z); idx = a random index per lane;
    ``downsample``: parity-last keys."""
    rng = np.random.default_rng(seed)
    c = np.asarray(coords, dtype=np.int64)
    n, w = c.shape[:2]
    keep = np.full(n, (1 << w) - 1, dtype=np.int64) if keep is None else np.asarray(keep, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64) if last is None else np.asarray(last, dtype=np.int64)
    idx = rng.integers(0, 1 << params["index_bits"], (n, w))
    fmt = KeyFormat(params["coord_bits"], params["batch_bits"])
    exp = np.zeros((n, w), dtype=np.int64)
    for b in range(n):
        for i in range(w):
            if keep[b] >> i & 1:
                exp[b, i] = (encode_down if downsample else encode)(*map(int, c[b, i]), params["coord_bits"],
                                                                    params["batch_bits"])
        kept = [i for i in range(w) if keep[b] >> i & 1]
        sw_keys = fmt.down(fmt.pack(c[b, kept])) if downsample else fmt.pack(c[b, kept])
        assert np.array_equal(sw_keys, exp[b, kept]), "golden and sw key formats disagree"
    # Don't-care lanes: random coordinates within their field widths.
    lim = 1 << (params["coord_bits"] - 1)
    garbage = np.concatenate([rng.integers(0, 1 << params["batch_bits"], (n, w, 1)),
                              rng.integers(-lim, lim, (n, w, 3))], axis=2)
    dropped = ~((keep[:, None] >> np.arange(w)) & 1).astype(bool)
    c = np.where(dropped[:, :, None], garbage, c)
    return dict(name=name, **params, coords=c, idx=idx, keep=keep, last=last, exp_key=exp,
                p_valid=p_valid, p_ready=p_ready, seed=seed, downsample=int(downsample))


@cocotb.test()
async def pack_coords(dut):
    cases = sim.load_case()
    tb = Testbench(dut)
    total = dict(beats=0, keys=0, cycles=0)
    for c, case in enumerate(cases):
        await tb.reset("coords__valid", "keys__ready")
        dut.downsample.value = int(case["downsample"])
        w, cb, bb, ib = (int(case[k]) for k in ("width", "coord_bits", "batch_bits", "index_bits"))
        coords, idx, keep, last = case["coords"], case["idx"], case["keep"], case["last"]
        n = len(keep)
        lanes = {f: coords[:, :, k] for k, f in enumerate(("batch", "x", "y", "z"))} | {"idx": idx}
        words = pack(coord_beat_layout(w, cb, bb, ib), {"lanes": lanes, "keep": keep, "last": last})
        pv, pr = float(case["p_valid"]), float(case["p_ready"])
        src = tb.source("coords", p_valid=pv, seed=int(case["seed"]))
        sink = tb.sink("keys", p_ready=pr, seed=int(case["seed"]) + 1)
        src.send(words)
        name = f"case {c} ({case['name']})"
        await tb.drain(sink, n, budget=50 + 10 * n / min(pv, pr), settle=4, tag=name)
        assert len(sink.received) == n, f"{name}: {len(sink.received)} of {n} beats"
        kb = bb + 3 * cb
        for b, (_, value) in enumerate(sink.received):
            got, got_keep, got_last = read_key_beat(value, w, kb, ib)
            kept = [i for i in range(w) if keep[b] >> i & 1]
            # read_key_beat lists kept lanes in lane order, which the packer keeps.
            want = [(int(case["exp_key"][b, i]), int(idx[b, i])) for i in kept]
            assert got == want, f"{name} beat {b}: RTL {got}, golden {want}"
            assert (got_keep, got_last) == (int(keep[b]), int(last[b])), f"{name} beat {b}: keep/last"
        if pv == 1.0 and pr == 1.0:
            first = src.sent[0][0]
            for b, ((t_in, _), (t_out, _)) in enumerate(zip(src.sent, sink.received, strict=True)):
                assert (t_in, t_out) == (first + b, first + b + LATENCY), f"{name} beat {b}: timing"
            total["beats"] += n
            total["keys"] += sum(bin(int(k)).count("1") for k in keep)
            total["cycles"] += sink.received[-1][0] - first + 1
    tb.report(total)
