"""The 2:4 sparse MAC and its dense baseline (``pyhdl/sparse24``, docs/spec.md §4.3) at run time.

Beats from whole matrices (:func:`sparse_beats`, :func:`dense_beats`), cases (:func:`make_case`),
the cocotb test ``mac_rows`` that streams a case's beats through either unit and checks every row
result and, without back-pressure, the cycle every beat enters and every result leaves, and
:func:`run_layer_24`: an integer 2:4 layer on a batch of input vectors on both units, checked
against the exact integer product and timed against §4.3's cycle counts. The regression's
testbench (``verif/tb/sparse24_mac.py``) drives the same test with its golden model's results.

A row of ``K`` weights is ``K / (4·groups)`` sparse beats or ``K / multipliers`` dense beats; each
beat carries the activations its weights meet (the MACs hold no vector), so ``acts`` is a
``(rows, K)`` matrix: for ``y = W @ x`` every row of it is ``x``.
"""

import math
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from pyhdl.sparse24.dense_mac import DenseMAC
from pyhdl.sparse24.sparse_mac import SparseMAC
from runtime import sim
from runtime.payload import pack, unpack
from runtime.scaffold import Testbench
from sw.cyclemodel.sparse24 import layer_cycles
from sw.formats import ACC24_WIDTH, GROUP_24, KEPT_24, MAC24_GROUPS
from sw.pack.sparse24 import check_24, check_int8, pack_24

GROUPS = MAC24_GROUPS                 # the generated default, 4
MULTIPLIERS = KEPT_24 * MAC24_GROUPS  # the dense MAC with the sparse MAC's multiplier count, 8
MODULE = __name__


# ---------------------------------------------------------------- beats and cases

def _last(rows: int, beats_per_row: int) -> np.ndarray:
    return np.tile(np.arange(beats_per_row) == beats_per_row - 1, rows).astype(np.int64)


def sparse_beats(values, meta, acts, groups: int) -> dict:
    """Per-beat fields ``values``/``meta``/``acts``/``last`` of docs/spec.md §4 ``(values, meta)`` against
    ``acts`` (``(rows, K)``); ``meta`` as the 4-bit fields ``i0 | i1 << 2``."""
    acts = np.asarray(acts, dtype=np.int64)
    rows, k = acts.shape
    if k % (GROUP_24 * groups) or np.shape(values) != (rows, k // 2) or np.shape(meta) != (rows, k // 4):
        raise ValueError(f"values {np.shape(values)} / meta {np.shape(meta)} / acts {acts.shape} do not "
                         f"form whole beats of {groups} groups")
    n = rows * k // (GROUP_24 * groups)
    return dict(values=np.asarray(values, dtype=np.int64).reshape(n, KEPT_24 * groups),
                meta=np.asarray(meta, dtype=np.int64).reshape(n, groups),
                acts=acts.reshape(n, GROUP_24 * groups),
                last=_last(rows, k // (GROUP_24 * groups)))


def dense_beats(weights, acts, multipliers: int) -> dict:
    """Per-beat fields ``weights``/``acts``/``last`` of a dense ``(rows, K)`` matrix."""
    w = np.asarray(weights, dtype=np.int64)
    acts = np.asarray(acts, dtype=np.int64)
    rows, k = w.shape
    if k % multipliers or acts.shape != w.shape:
        raise ValueError(f"weights {w.shape} / acts {acts.shape} do not form whole beats of {multipliers}")
    n = rows * k // multipliers
    return dict(weights=w.reshape(n, multipliers), acts=acts.reshape(n, multipliers),
                last=_last(rows, k // multipliers))


def wrap32(a) -> np.ndarray:
    """docs/spec.md §4.3's accumulator: int64 values wrapped to int32 two's complement."""
    half = 1 << (ACC24_WIDTH - 1)
    return ((np.asarray(a, dtype=np.int64) + half) % (2 * half)) - half


def make_case(name, kind: str, param: int, fields: dict, expected, *, p_valid=1.0, p_ready=1.0, seed=0,
              dense_macs: int, exp_error: int = 0) -> dict:
    """One case of ``mac_rows``: ``kind`` ``"sparse"`` (``param`` = groups) or ``"dense"`` (``param``
    = multipliers), the beats' ``fields``, the ``expected`` int32 row results in stream order and
    the random back-pressure; timing is checked when there is none."""
    if kind not in ("sparse", "dense"):
        raise ValueError(f"kind must be 'sparse' or 'dense', got {kind!r}")
    return dict(name=name, kind=kind, param=param, **{f"f_{k}": v for k, v in fields.items()},
                expected=np.asarray(expected, dtype=np.int64), p_valid=p_valid, p_ready=p_ready, seed=seed,
                check_timing=int(p_valid == 1.0 and p_ready == 1.0), exp_error=exp_error,
                dense_macs=dense_macs)


def component(case):
    if case["kind"] == "sparse":
        return SparseMAC(groups=int(case["param"]))
    return DenseMAC(multipliers=int(case["param"]))


def run(model, cases, test_dir=None) -> dict:
    """Run ``cases`` on ``model``. Metrics: totals over the timed cases (no back-pressure) ``rows``,
    ``beats``, ``cycles`` (first beat in to last result out) and ``dense_macs``; per case
    (``cases``) its row results ``y`` and ``cycles`` (``None`` when untimed); simulator speed."""
    return sim.run(model, MODULE, cases, testcase="mac_rows", test_dir=test_dir)


async def _lockstep(tb, words, n_results: int, *, settle: int, tag: str):
    """Without back-pressure, in one coroutine (a third of the stream drivers' simulator calls per
    cycle): offer beat ``i`` until it is taken with ``results.ready`` held high, until ``n_results``
    results arrived and every beat was taken (or a budget of ``len(words) + 100 + settle`` cycles
    passed), then ``settle`` cycles more. Returns the edges the beats were taken on and the
    ``(edge, payload)`` of every result, as the drivers record them."""
    dut = tb.dut
    clk, valid, payload, ready = dut.clk, dut.beats__valid, dut.beats__payload, dut.beats__ready
    r_valid, r_payload = dut.results__valid, dut.results__payload
    n = len(words)
    sent, received = [], []
    i = extra = 0
    edge = None
    for _ in range(n + 100 + settle):
        await RisingEdge(clk)
        if edge is None:
            dut.results__ready.value = 1
        if i < n and (edge is None or sent and sent[-1] == edge):
            payload.value = int(words[i])
            valid.value = 1
        elif i == n:
            valid.value = 0
        await ReadOnly()
        edge = tb.cycle + 1 if edge is None else edge + 1      # the edge that takes what is offered now
        if i < n and ready.value == 1:
            sent.append(edge)
            i += 1
        if r_valid.value == 1:
            received.append((edge, int(r_payload.value)))
        if i == n and len(received) >= n_results:
            extra += 1
            if extra > settle:
                break
    await RisingEdge(clk)
    valid.value = 0
    assert i == n, f"{tag}: 'beats' took {i} of {n} beats"
    assert len(received) >= n_results, f"{tag}: 'results' delivered {len(received)} of {n_results} items"
    return sent, received


@cocotb.test()
async def mac_rows(dut):
    cases = sim.load_case()
    tb = Testbench(dut)
    timed = {"rows": 0, "beats": 0, "cycles": 0, "dense_macs": 0}
    per_case = []
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
        words = pack(mac.beats.payload.shape(), fields)
        if case["check_timing"]:
            beat_edges, received = await _lockstep(tb, words, len(expected), settle=mac.LATENCY + 8, tag=label)
        else:
            src = tb.source("beats", p_valid=pv, seed=int(case["seed"]))
            sink = tb.sink("results", p_ready=pr, seed=int(case["seed"]) + 1)
            src.send(words)
            await tb.drain(sink, len(expected), budget=100 + 6 * n / min(pv, pr), settle=mac.LATENCY + 8,
                           tag=label)
            received = sink.received

        got = unpack(mac.results.payload.shape(), [v for _, v in received]).tolist()
        for r, (g, e) in enumerate(zip(got, expected, strict=False)):   # lengths: below
            assert g == e, f"{label}: row {r}: RTL {g}, expected {e}"
        assert len(got) == len(expected), f"{label}: RTL gave {len(got)} rows, expected {len(expected)}"
        if sparse:
            assert int(dut.error.value) == int(case["exp_error"]), f"{label}: error flag {dut.error.value}"

        cycles = None
        if case["check_timing"]:
            first_in = beat_edges[0]
            assert beat_edges == list(range(first_in, first_in + n)), f"{label}: a beat was not taken at once"
            want = (first_in + np.nonzero(last)[0] + mac.LATENCY).tolist()
            edges = [t for t, _ in received]
            assert edges == want, (f"{label}: results left on cycles {[t - first_in for t in edges][:8]}..., "
                                   f"expected {[t - first_in for t in want][:8]}...")
            cycles = edges[-1] - first_in + 1
            assert cycles == n + mac.LATENCY
            timed["rows"] += len(expected)
            timed["beats"] += n
            timed["cycles"] += cycles
            timed["dense_macs"] += int(case["dense_macs"])
        per_case.append({"y": got, "cycles": cycles})

        if sparse and case["exp_error"]:
            await tb.pulse("error_clear")
            await tb.settle(1)
            assert dut.error.value == 0, f"{label}: error_clear did not clear the error"
    tb.report({**timed, "cases": per_case})


# ---------------------------------------------------------------- a layer on both units

@dataclass(frozen=True)
class Layer24Run:
    """What :func:`run_layer_24` measured.

    ``y``: ``(n, rows)`` int64, ``y[b] = wrap32(W @ x[b])``, the same from both units; the layer
    is ``rows × k`` and ran on ``n`` vectors.
    ``k_sparse``/``k_dense``: ``K`` padded with zero columns to whole beats of each unit.
    ``sparse_cycles``/``dense_cycles``: first beat in to last result out, equal to
    ``sparse_expected``/``dense_expected`` = ``n · rows · k_sparse / (4·groups) + LATENCY`` and
    ``n · rows · k_dense / multipliers + LATENCY`` (5 each; docs/spec.md §4.3). ``sim_wall_s``:
    simulator wall time of each run (build excluded).
    """

    y: np.ndarray
    rows: int
    k: int
    n: int
    groups: int
    multipliers: int
    k_sparse: int
    k_dense: int
    sparse_cycles: int
    dense_cycles: int
    sparse_expected: int
    dense_expected: int
    sim_wall_s: dict

    @property
    def dense_macs(self) -> int:
        """The multiply-adds of the unpadded layer, ``n · rows · k``."""
        return self.n * self.rows * self.k


def _pad_columns(a: np.ndarray, k: int) -> np.ndarray:
    return np.pad(a, ((0, 0), (0, k - a.shape[1])))


def layer_cases(w_int, x_batch, *, groups: int = GROUPS, multipliers: int | None = None):
    """``(sparse case, dense case, y)`` for ``Y = X @ W.T`` (see :func:`run_layer_24`)."""
    multipliers = KEPT_24 * groups if multipliers is None else multipliers
    w = check_int8(w_int, "w_int")
    check_24(w)                               # 2-D, K % 4 == 0, at most 2 nonzeros a group
    x = check_int8(x_batch, "x_batch")
    x = x[None, :] if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[1] != w.shape[1] or x.shape[0] == 0:
        raise ValueError(f"x_batch has shape {np.shape(x_batch)}; W {w.shape} needs (n, {w.shape[1]}) or "
                         f"({w.shape[1]},)")
    rows, k = w.shape
    n = x.shape[0]
    y = wrap32(x.astype(np.int64) @ w.astype(np.int64).T)

    per_beat = GROUP_24 * groups
    k_s = math.ceil(k / per_beat) * per_beat
    values, meta = pack_24(_pad_columns(w, k_s))            # zero columns: empty groups, meta 14
    acts_s = np.repeat(_pad_columns(x, k_s), rows, axis=0)  # x replayed for every row of W
    sparse = make_case("layer sparse", "sparse", groups,
                       sparse_beats(np.tile(values, (n, 1)), np.tile(meta, (n, 1)), acts_s, groups),
                       y.ravel(), dense_macs=n * rows * k)
    k_d = math.ceil(k / multipliers) * multipliers
    dense = make_case("layer dense", "dense", multipliers,
                      dense_beats(np.tile(_pad_columns(w, k_d), (n, 1)),
                                  np.repeat(_pad_columns(x, k_d), rows, axis=0), multipliers),
                      y.ravel(), dense_macs=n * rows * k)
    return sparse, dense, y


def run_layer_24(w_int, x_batch, *, groups: int = GROUPS, multipliers: int | None = None,
                 test_dir=None) -> Layer24Run:
    """Run the integer 2:4 layer ``w_int`` (``(rows, K)``, int8 values, at most 2 nonzeros in every
    group of 4 along ``K``) on every input vector of ``x_batch`` (``(n, K)`` or ``(K,)``, int8) on
    ``SparseMAC(groups)`` (the weights packed by ``sw.pack.pack_24``) and on
    ``DenseMAC(multipliers)`` (the same weights dense; default ``2·groups`` multipliers, the sparse
    unit's count), each built with ``runtime.sim.build``.

    Vectors stream back to back, every row of ``W`` against ``x[b]`` in turn, without
    back-pressure; ``K`` is padded with zero columns to whole beats of each unit. Both units'
    outputs must equal the exact product wrapped to int32 (docs/spec.md §4.3) and their cycle
    counts §4.3's; ``AssertionError`` otherwise, ``ValueError`` for a matrix that is not int8 2:4.
    """
    multipliers = KEPT_24 * groups if multipliers is None else multipliers   # the sparse unit's count
    sparse, dense, y = layer_cases(w_int, x_batch, groups=groups, multipliers=multipliers)
    rows, k = np.shape(w_int)
    n = y.shape[0]
    units = {"sparse": (SparseMAC(groups=groups), sparse), "dense": (DenseMAC(multipliers=multipliers), dense)}
    models = {kind: sim.build(unit) for kind, (unit, _) in units.items()}
    with tempfile.TemporaryDirectory(prefix="sparsehw-24-") as tmp:
        root = Path(test_dir) if test_dir is not None else Path(tmp)
        # Two simulator processes side by side: each spends seconds starting its Python alone.
        with ThreadPoolExecutor(max_workers=len(units)) as pool:
            futures = {kind: pool.submit(run, models[kind], [case], root / kind) for kind, (_, case) in units.items()}
            metrics = {kind: f.result() for kind, f in futures.items()}
    out = {kind: (np.asarray(m["cases"][0]["y"], dtype=np.int64).reshape(n, rows), int(m["cycles"]),
                  float(m["sim_wall_s"])) for kind, m in metrics.items()}
    (y_s, c_s, t_s), (y_d, c_d, t_d) = out["sparse"], out["dense"]
    assert np.array_equal(y_s, y), "SparseMAC outputs differ from the integer product"
    assert np.array_equal(y_d, y), "DenseMAC outputs differ from the integer product"
    want_s = layer_cycles(n, rows, k, GROUP_24 * groups, SparseMAC.LATENCY)
    want_d = layer_cycles(n, rows, k, multipliers, DenseMAC.LATENCY)
    assert c_s == want_s, f"SparseMAC took {c_s} cycles, docs/spec.md §4.3 says {want_s}"
    assert c_d == want_d, f"DenseMAC took {c_d} cycles, docs/spec.md §4.3 says {want_d}"
    return Layer24Run(y=y, rows=rows, k=k, n=n, groups=groups, multipliers=multipliers,
                      k_sparse=math.ceil(k / (GROUP_24 * groups)) * GROUP_24 * groups,
                      k_dense=math.ceil(k / multipliers) * multipliers, sparse_cycles=c_s, dense_cycles=c_d,
                      sparse_expected=want_s, dense_expected=want_d,
                      sim_wall_s={"sparse": t_s, "dense": t_d})
