"""``make demo`` / ``sparsehw demo``: a pruned layer from weights to outputs on the EIE array RTL.

Prune a random layer by magnitude, share its weights through a 16-entry codebook, pack it for
the PEs (docs/spec.md §2), and run it on the whole EIE array RTL in Verilator: every PE decodes
its image and accumulates; the outputs are checked against the integer model and numpy, and the
cycle count against the exact cycle model.
"""

import numpy as np

from runtime.eie.network import report, run_layers
from sw.formats import CODEBOOK_SIZE
from sw.pack import pack_eie, unpack_eie


def prune_and_share(w: np.ndarray, density: float):
    """Keep the ``density`` largest |w|; map survivors to 15 linearly spaced shared values (fewer
    when the survivors span less: a single survivor gets one).

    Returns ``(idx, codebook)``: the index matrix (0 = pruned) and the codebook (entry 0 = 0)."""
    k = max(1, int(round(density * w.size)))
    thresh = np.partition(np.abs(w).ravel(), w.size - k)[w.size - k]
    keep = np.abs(w) >= thresh
    survivors = w[keep]
    centroids = np.unique(np.linspace(survivors.min(), survivors.max(), CODEBOOK_SIZE - 1))
    codebook = np.concatenate([[0.0], centroids])
    idx = np.zeros(w.shape, dtype=np.int64)
    idx[keep] = 1 + np.abs(survivors[:, None] - centroids[None, :]).argmin(axis=1)
    return idx, codebook


def run_demo(seed: int = 0, n_pe: int = 4, rows: int = 256, cols: int = 256, density: float = 0.1) -> int:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols))
    idx, codebook = prune_and_share(w, density)
    wq = codebook[idx]
    packed = pack_eie(wq, n_pe, codebook=codebook)
    if not np.array_equal(packed.weights(), wq):
        print("FAIL: unpack(pack(W)) != W")
        return 1
    print(f"layer {rows}x{cols}: kept {np.count_nonzero(wq)} weights ({density:.0%}), "
          f"codebook of {np.unique(unpack_eie(packed)).size - 1} shared values + 0")
    print(f"packed for {n_pe} PEs: {packed.n_entries} entries, {packed.n_padding} padding")
    return run_layer_on_array(idx, codebook, rng, n_pe)


def run_layer_on_array(idx, codebook, rng, n_pe: int) -> int:
    """The same layer, its codebook scaled to int16, on the whole EIE array RTL: y = relu(W @ x >> shift)."""
    shift = int(np.floor(np.log2(((1 << 15) - 1) / np.abs(codebook).max())))   # largest power-of-two scale
    cb_int = np.round(codebook * 2.0 ** shift).astype(np.int64)
    w_int = cb_int[idx]
    # values that rounding merged (or sent to 0) share one entry
    packed = pack_eie(w_int, n_pe, codebook=np.concatenate([[0], np.unique(w_int[w_int != 0])]))
    x = rng.integers(-128, 128, idx.shape[1])
    x[rng.random(idx.shape[1]) < 0.5] = 0
    want = np.clip((w_int @ x) >> shift, -(1 << 15), (1 << 15) - 1)
    want = np.maximum(want, 0)
    print(f"\nthe same layer on the {n_pe}-PE EIE array RTL (codebook x 2^{shift} in int16, "
          f"{np.count_nonzero(x)} nonzero of {x.size} input activations, shift {shift}, ReLU):")
    try:
        y, layers_out, _ = run_layers([(packed, shift, True)], x, n_pe)
    except (AssertionError, SystemExit) as e:
        print(f"FAIL: the array RTL disagrees with the integer model or the cycle model ({e})")
        return 1
    report(layers_out, n_pe)
    if not np.array_equal(y, want):
        print("FAIL: the array's outputs differ from numpy's relu(W @ x >> shift)")
        return 1
    print(f"PASS: {y.size} outputs equal numpy's relu(W @ x >> shift); cycles equal the cycle model's")
    return 0
