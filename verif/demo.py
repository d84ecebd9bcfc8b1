"""``make demo`` / ``sparsehw demo``: a pruned layer from weights to decoded entries in RTL.

Prune a random layer by magnitude, share its weights through a 16-entry codebook, pack it for
the PEs (SPEC §2), then stream every column of every PE's image through the CSC decoder RTL in
Verilator and compare each decoded entry with the golden model.
"""

import tempfile
import time

import numpy as np

from pyhdl.eie.csc_decoder import CSCDecoder
from sw.formats import CODEBOOK_SIZE
from sw.pack import pack_eie, unpack_eie
from verif.harness import sim
from verif.tb import csc_decoder as tb


def prune_and_share(w: np.ndarray, density: float):
    """Keep the ``density`` largest |w|; map survivors to 15 linearly spaced shared values.

    Returns ``(idx, codebook)``: the index matrix (0 = pruned) and the 16-entry codebook."""
    k = max(1, int(round(density * w.size)))
    thresh = np.partition(np.abs(w).ravel(), w.size - k)[w.size - k]
    keep = np.abs(w) >= thresh
    survivors = w[keep]
    centroids = np.linspace(survivors.min(), survivors.max(), CODEBOOK_SIZE - 1)
    codebook = np.concatenate([[0.0], centroids])
    idx = np.zeros(w.shape, dtype=np.int64)
    idx[keep] = 1 + np.abs(survivors[:, None] - centroids[None, :]).argmin(axis=1)
    return idx, codebook


def _fit(n: int, at_least: int) -> int:
    return max(at_least, 1 << max(0, int(n - 1).bit_length()))


def run_demo(seed: int = 0, n_pe: int = 4, rows: int = 256, cols: int = 256, density: float = 0.1) -> int:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols))
    idx, codebook = prune_and_share(w, density)
    wq = codebook[idx]
    packed = pack_eie(wq, n_pe, codebook=codebook)
    assert np.array_equal(packed.weights(), wq), "unpack(pack(W)) != W"
    print(f"layer {rows}x{cols}: kept {np.count_nonzero(wq)} weights ({density:.0%}), "
          f"codebook of {np.unique(unpack_eie(packed)).size - 1} shared values + 0")
    print(f"packed for {n_pe} PEs: {packed.n_entries} entries, {packed.n_padding} padding")

    params = dict(tb.PARAMS)
    params["max_cols"] = _fit(cols, params["max_cols"])
    params["max_local_rows"] = _fit(packed.local_rows, params["max_local_rows"])
    params["max_entries"] = _fit(max(p.n_entries for p in packed.pe), params["max_entries"])
    t0 = time.perf_counter()
    model = sim.build(CSCDecoder(**params))
    print(f"Verilator model {model.toplevel} ready in {time.perf_counter() - t0:.1f} s")
    cases = [tb.make_case(f"PE {k}", pe, cols, packed.local_rows, list(range(cols)), params=params)
             for k, pe in enumerate(packed.pe)]
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="sparsehw-demo-") as tmp:
            metrics = tb.run(model, cases, tmp)
    except (AssertionError, SystemExit) as e:
        print(f"FAIL: the RTL disagrees with the golden model ({e})")
        return 1
    print(f"simulated in {time.perf_counter() - t0:.1f} s")
    print(" PE  entries  cycles  entries/cycle")
    for t in metrics["timed"]:
        print(f"{t['case']:3d}  {t['entries']:7d}  {t['cycles']:6d}  {t['entries'] / t['cycles']:.3f}")
    n, c = metrics["entries"], metrics["cycles"]
    if n != packed.n_entries or len(metrics["timed"]) != n_pe:
        print(f"FAIL: {n} entries timed, expected {packed.n_entries}")
        return 1
    print(f"PASS: {n} entries over {n_pe} PEs decoded bit-exactly against the golden model; "
          f"{n / c:.3f} entries/cycle (pipeline latency {CSCDecoder.LATENCY} cycles per PE included)")
    return run_layer_on_array(idx, codebook, rng, n_pe)


def run_layer_on_array(idx, codebook, rng, n_pe: int) -> int:
    """The same layer, its codebook scaled to int16, on the whole EIE array RTL: y = relu(W @ x >> shift)."""
    from verif.sim_eie import report, run_layers

    shift = int(np.floor(np.log2(((1 << 15) - 1) / np.abs(codebook).max())))   # largest power-of-two scale
    cb_int = np.round(codebook * 2.0 ** shift).astype(np.int64)
    w_int = cb_int[idx]
    packed = pack_eie(w_int, n_pe, codebook=cb_int)
    x = rng.integers(-128, 128, idx.shape[1])
    x[rng.random(idx.shape[1]) < 0.5] = 0
    want = np.clip((w_int @ x) >> shift, -(1 << 15), (1 << 15) - 1)
    want = np.maximum(want, 0)
    print(f"\nthe same layer on the {n_pe}-PE EIE array RTL (codebook x 2^{shift} in int16, "
          f"{np.count_nonzero(x)} nonzero of {x.size} input activations, shift {shift}, ReLU):")
    try:
        y, layers_out, _ = run_layers([(packed, shift, True)], x, n_pe)
    except (AssertionError, SystemExit) as e:
        print(f"FAIL: the array RTL disagrees with the golden or cycle model ({e})")
        return 1
    report(layers_out, n_pe)
    if not np.array_equal(y, want):
        print("FAIL: the array's outputs differ from numpy's relu(W @ x >> shift)")
        return 1
    print(f"PASS: {y.size} outputs equal numpy's relu(W @ x >> shift); cycles equal the cycle model's")
    return 0
