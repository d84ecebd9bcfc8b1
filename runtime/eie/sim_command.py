"""``sparsehw sim eie``: run a layer or a network on the EIE array RTL in Verilator.

The array is sized for the layers (powers of two, so similar runs share one Verilator build);
outputs are checked against the golden model and timing against the cycle model while they run.
"""

from pathlib import Path

import numpy as np

from runtime.eie.host import check_activations, load_layer_dir, network_dirs
from runtime.eie.network import report, run_layers
from sw.formats import CODEBOOK_SIZE
from sw.pack import pack_eie


def codebook_for(w: np.ndarray, where: str) -> np.ndarray:
    """docs/spec.md §6: the codebook of an integer weight matrix is its distinct nonzero values (<= 15)."""
    if w.ndim != 2:
        raise ValueError(f"{where}: weights must be a 2-D (rows, cols) matrix, got shape {w.shape}")
    if not np.issubdtype(w.dtype, np.integer):
        raise ValueError(f"{where}: weights must be an integer matrix, got dtype {w.dtype}")
    values = np.unique(w[w != 0])
    if values.size > CODEBOOK_SIZE - 1:
        raise ValueError(f"{where}: {values.size} distinct nonzero weights; the codebook holds "
                         f"{CODEBOOK_SIZE - 1} (quantise or pass packed images)")
    if values.size and (values.min() < -(1 << 15) or values.max() >= 1 << 15):
        raise ValueError(f"{where}: weights must fit int16")
    return np.concatenate([[0], values]).astype(np.int64)


def main_layer(weights_path, act_path, n_pe, out_path, relu=True, shift=0, force=False) -> int:
    from sw.pack.cli import load_array

    w = load_array(weights_path, "weights")
    x = load_array(act_path, "activations")
    try:
        cb = codebook_for(w, str(weights_path))
        packed = pack_eie(w, n_pe, codebook=cb)
        check_activations(x, packed.cols, where=str(act_path))
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    return _finish([(packed, shift, relu)], x, n_pe, out_path, force)


def main_network(net_dir, act_path, out_path, force=False) -> int:
    from sw.pack.cli import load_array

    try:
        layers = [load_layer_dir(d) for d in network_dirs(net_dir)]
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    n_pe = layers[0][0].n_pe
    x = load_array(act_path, "activations")
    try:
        check_activations(x, layers[0][0].cols, where=str(act_path))
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    return _finish(layers, x, n_pe, out_path, force)


def _finish(layers, x, n_pe, out_path, force) -> int:
    out = Path(out_path)
    if out.exists() and not force:
        raise SystemExit(f"error: {out} exists; pass --force to overwrite")
    try:
        y, layers_out, params = run_layers(layers, x, n_pe)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    except (AssertionError, SystemExit) as e:
        raise SystemExit(f"error: the RTL disagreed with the golden or cycle model: {e}") from None
    report(layers_out, n_pe)
    np.save(out, y)
    print(f"wrote {out} ({y.shape[0]} outputs); RTL matched the golden model and the cycle model")
    return 0
