"""``sparsehw sim eie``: run a layer or a network on the EIE array RTL in Verilator.

The array is sized for the layers (powers of two, so similar runs share one Verilator build);
outputs are checked against the integer model and timing against the cycle model while they run.
"""

from pathlib import Path

import numpy as np

from runtime.eie.host import check_activations
from runtime.eie.network import report, run_layers
from sw.cli_io import CLIError, atomic_write, bad_input, check_output_file, in_range, load_array
from sw.formats import ACT_WIDTH, CODEBOOK_SIZE
from sw.pack import pack_eie
from sw.pack.images import network_dirs, read_eie_images


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
    """Run ``W`` (``weights_path``) on ``act_path`` and save the outputs to ``out_path`` (``.npy``);
    every argument and file is checked before the RTL is built (:class:`CLIError`)."""
    in_range("--n-pe", n_pe, 1)
    in_range("--shift", shift, 0, ACT_WIDTH - 1)
    out = check_output_file(out_path, force=force, suffix=".npy")
    w = load_array(weights_path, "--weights")
    x = load_array(act_path, "--act")
    with bad_input():
        cb = codebook_for(w, f"--weights {weights_path}")
    with bad_input(f"--weights {weights_path}"):
        packed = pack_eie(w, n_pe, codebook=cb)
    with bad_input():
        check_activations(x, packed.cols, where=f"--act {act_path}", batch=True)
    return _finish([(packed, shift, relu)], x, n_pe, out)


def main_network(net_dir, act_path, out_path, force=False) -> int:
    """Run the packed layers of ``net_dir`` (subdirectories, in name order) on ``act_path`` (a vector
    or an ``(n, cols)`` batch: each layer's weights are loaded once for the whole batch) and save the
    outputs (``(rows,)`` or ``(n, rows)``) to ``out_path`` (``.npy``); everything is checked before
    the RTL is built."""
    out = check_output_file(out_path, force=force, suffix=".npy")
    if not Path(net_dir).is_dir():
        raise CLIError(f"--net {net_dir}: no such directory")
    with bad_input():
        dirs = network_dirs(net_dir)
        layers = [read_eie_images(d) for d in dirs]
    for d, (prev, _, _), (packed, _, _) in zip(dirs[1:], layers[:-1], layers[1:], strict=True):
        if packed.n_pe != prev.n_pe:
            raise CLIError(f"--net {net_dir}: {d.name} is packed for {packed.n_pe} PEs, the layers before it "
                           f"for {prev.n_pe}")
        if packed.cols != prev.rows:
            raise CLIError(f"--net {net_dir}: {d.name} takes {packed.cols} inputs, the layer before it gives "
                           f"{prev.rows}")
    x = load_array(act_path, "--act")
    with bad_input():
        check_activations(x, layers[0][0].cols, where=f"--act {act_path}", batch=True)
    return _finish(layers, x, layers[0][0].n_pe, out)


def _finish(layers, x, n_pe, out) -> int:
    try:
        y, layers_out, params = run_layers(layers, x, n_pe)
    except ValueError as e:
        raise CLIError(str(e)) from None
    except (AssertionError, SystemExit) as e:
        raise CLIError(f"the RTL disagreed with the integer model or the cycle model: {e}") from None
    report(layers_out, n_pe)
    atomic_write(out, lambda f: np.save(f, y))
    shape = f"{y.shape[0]} outputs" if y.ndim == 1 else f"{y.shape[0]} x {y.shape[1]} outputs"
    print(f"wrote {out} ({shape}); RTL matched the integer model and the cycle model")
    return 0
