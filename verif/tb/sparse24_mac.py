"""Testbench of the 2:4 sparse MAC and its dense baseline (``pyhdl/sparse24``): case construction
and the cocotb scoreboard.

Cases carry weight matrices packed by ``sw.pack.pack_24`` as beats, activation matrices,
back-pressure settings and the golden model's int32 row results (docs/spec.md §4). ``mac_rows``
streams them through the RTL and checks every row result bit-exactly, the sticky metadata error
and, without back-pressure, the cycle every beat enters and every result leaves
(``rows · K / (4·groups) + LATENCY`` cycles in all).
"""

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from pyhdl.sparse24.dense_mac import DenseMAC
from pyhdl.sparse24.sparse_mac import SparseMAC
from runtime import sim
from runtime.payload import pack, unpack
from runtime.scaffold import Testbench
from sw.formats import INT8_MAX, INT8_MIN, KEPT_24, MAC24_GROUPS
from sw.pack import mask_24, pack_24
from verif.golden import sparse24 as golden
from verif.harness.mac24 import dense_beats, sparse_beats

GROUPS = MAC24_GROUPS                # the generated default, 4
MULTIPLIERS = KEPT_24 * MAC24_GROUPS  # the dense MAC with the sparse MAC's multiplier count, 8
MODULE = __name__


def run(model, cases, test_dir=None) -> dict:
    """Totals over the timed cases (no back-pressure): ``rows``, ``beats``, ``cycles`` (first beat
    in to last result out) and ``dense_macs``; plus simulator speed."""
    return sim.run(model, MODULE, cases, testcase="mac_rows", test_dir=test_dir)


def component(case):
    if case["kind"] == "sparse":
        return SparseMAC(groups=int(case["param"]))
    return DenseMAC(multipliers=int(case["param"]))


def wrap32(a):
    return ((np.asarray(a, dtype=np.int64) + (1 << 31)) % (1 << 32)) - (1 << 31)


def _case(name, kind, param, fields, expected, *, p_valid, p_ready, seed, dense_macs, exp_error=0):
    return dict(name=name, kind=kind, param=param, **{f"f_{k}": v for k, v in fields.items()},
                expected=np.asarray(expected, dtype=np.int64), p_valid=p_valid, p_ready=p_ready, seed=seed,
                check_timing=int(p_valid == 1.0 and p_ready == 1.0), exp_error=exp_error,
                dense_macs=dense_macs)


def _concat(parts):
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def sparse_case(name, blocks, *, groups=GROUPS, p_valid=1.0, p_ready=1.0, seed=0):
    """One case of ``blocks``: ``(W, X)`` pairs (2:4 ``W`` packed here) or ``(values, meta, X)``
    triples (raw packed form, metadata possibly invalid), streamed back to back."""
    parts, expected, bad, macs = [], [], False, 0
    for block in blocks:
        if len(block) == 2:
            W, X = block
            values, meta = pack_24(W)
            # The golden model's rows equal the dense product: the spec's packing loses nothing.
            rows = [golden.sparse_dot(v, mt, x) for v, mt, x in zip(values, meta, X, strict=True)]
            assert np.array_equal(wrap32((W.astype(np.int64) * X).sum(axis=1)), rows)
        else:
            values, meta, X = block
        expected += [golden.sparse_dot(v, mt, x) for v, mt, x in zip(values, meta, X, strict=True)]
        bad |= any((m & 3, m >> 2) not in golden.META_PATTERNS for m in np.ravel(meta).tolist())
        parts.append(sparse_beats(values, meta, X, groups))
        macs += X.size
    return _case(name, "sparse", groups, _concat(parts), expected, p_valid=p_valid, p_ready=p_ready,
                 seed=seed, dense_macs=macs, exp_error=int(bad))


def dense_case(name, blocks, *, multipliers=MULTIPLIERS, p_valid=1.0, p_ready=1.0, seed=0):
    parts, expected, macs = [], [], 0
    for W, X in blocks:
        expected += [golden.dense_dot(w, x) for w, x in zip(W, X, strict=True)]
        parts.append(dense_beats(W, X, multipliers))
        macs += X.size
    return _case(name, "dense", multipliers, _concat(parts), expected, p_valid=p_valid, p_ready=p_ready,
                 seed=seed, dense_macs=macs)


def acts(rng, rows, k):
    return rng.integers(INT8_MIN, INT8_MAX + 1, (rows, k))


def random_24(rng, rows, k, p_drop=0.0):
    """A random int8 2:4 matrix; ``p_drop`` zeroes kept weights too (groups with 0 or 1 nonzeros)."""
    W = rng.integers(INT8_MIN, INT8_MAX + 1, (rows, k))
    W = np.where(mask_24(rng.random((rows, k))), W, 0)
    return np.where(rng.random((rows, k)) < p_drop, 0, W)


@cocotb.test()
async def mac_rows(dut):
    cases = sim.load_case()
    tb = Testbench(dut)
    timed = {"rows": 0, "beats": 0, "cycles": 0, "dense_macs": 0}
    for i, case in enumerate(cases):
        mac = component(case)
        sparse = case["kind"] == "sparse"
        label = f"case {i} ({case['name']})"
        await tb.reset("beats__valid", "results__ready", *(["error_clear"] if sparse else []))
        if sparse:
            await RisingEdge(dut.clk)
            assert dut.error.value == 0, f"{label}: error set after reset"

        fields = {k[2:]: case[k] for k in case if k.startswith("f_")}
        last = np.asarray(fields["last"])
        n = len(last)
        expected = np.atleast_1d(case["expected"]).tolist()
        pv, pr = float(case["p_valid"]), float(case["p_ready"])
        src = tb.source("beats", p_valid=pv, seed=int(case["seed"]))
        sink = tb.sink("results", p_ready=pr, seed=int(case["seed"]) + 1)
        src.send(pack(mac.beats.payload.shape(), fields))
        await tb.drain(sink, len(expected), budget=100 + 6 * n / min(pv, pr), settle=mac.LATENCY + 8, tag=label)

        got = unpack(mac.results.payload.shape(), sink.values).tolist()
        for r, (g, e) in enumerate(zip(got, expected, strict=False)):   # lengths: below
            assert g == e, f"{label}: row {r}: RTL {g}, golden {e}"
        assert len(got) == len(expected), f"{label}: RTL gave {len(got)} rows, golden {len(expected)}"
        if sparse:
            assert int(dut.error.value) == int(case["exp_error"]), f"{label}: error flag {dut.error.value}"

        if case["check_timing"]:
            first_in = src.sent[0][0]
            beat_edges = [t for t, _ in src.sent]
            assert beat_edges == list(range(first_in, first_in + n)), f"{label}: a beat was not taken at once"
            want = (first_in + np.nonzero(last)[0] + mac.LATENCY).tolist()
            edges = [t for t, _ in sink.received]
            assert edges == want, (f"{label}: results left on cycles {[t - first_in for t in edges][:8]}..., "
                                   f"expected {[t - first_in for t in want][:8]}...")
            assert edges[-1] - first_in + 1 == n + mac.LATENCY
            timed["rows"] += len(expected)
            timed["beats"] += n
            timed["cycles"] += edges[-1] - first_in + 1
            timed["dense_macs"] += int(case["dense_macs"])

        if sparse and case["exp_error"]:
            await tb.pulse("error_clear")
            await tb.settle(1)
            assert dut.error.value == 0, f"{label}: error_clear did not clear the error"
    tb.report(timed)
