# amaranth: UnusedElaboratable=no
"""Host driver of the EIE array: turns packed layers (``sw.pack`` / ``sparsehw pack eie``
images on disk) into the writes of the array's load port, after checking they fit.

The plan is plain data (lists of ``(addr, data)``), built here on the Python side and replayed
in the simulator by ``runtime.eie.network``, so files on disk run unchanged in simulation and a
bad image is rejected before anything reaches the hardware: a ``col_ptr`` that is not
non-decreasing, a sentinel that disagrees with the entry count, rows beyond the PE's row space
or an image larger than the configured memories raise ``ValueError``.
"""


import numpy as np

from pyhdl.eie.array import Config, EIEArray, Region
from sw.formats import ACT_WIDTH, CODEBOOK_SIZE, WEIGHT_WIDTH, entry_word
from sw.pack import validate_pe
from sw.pack.images import codebook_is_integral

ARRAY_PARAMS = ("n_pe", "max_cols", "max_entries", "max_local_rows", "queue_depth", "lnzd_width")


def decoder_words(pe, cols: int, local_rows: int, *, max_cols: int, max_entries: int,
                  max_local_rows: int, where: str = "PE"):
    """``(col_ptr words, entry words)`` for one PE image, after validating it for the hardware."""
    validate_pe(pe, cols, local_rows, where=where)
    if cols > max_cols:
        raise ValueError(f"{where}: the layer has {cols} columns; the hardware holds max_cols = {max_cols}")
    if local_rows > max_local_rows:
        raise ValueError(f"{where}: the layer needs {local_rows} local rows; the hardware holds "
                         f"max_local_rows = {max_local_rows}")
    if pe.n_entries > max_entries:
        raise ValueError(f"{where}: {pe.n_entries} entries do not fit max_entries = {max_entries}")
    words = entry_word(np.asarray(pe.weight_idx, dtype=np.int64), np.asarray(pe.rel_index, dtype=np.int64))
    return np.asarray(pe.col_ptr, dtype=np.int64), words


def array_for(params: dict) -> EIEArray:
    return EIEArray(**{k: int(params[k]) for k in ARRAY_PARAMS})


def codebook_writes(array: EIEArray, packed, *, where: str = "layer"):
    """Load-port writes of every PE's codebook (entries 1..15), after checking the layer's shape."""
    if packed.n_pe != array.n_pe:
        raise ValueError(f"{where}: images packed for n_pe = {packed.n_pe}, the array has {array.n_pe} PEs")
    if not codebook_is_integral(packed.codebook):
        raise ValueError(f"{where}: the codebook is not integral int{WEIGHT_WIDTH}; quantise it first")
    if packed.rows > array.max_rows:
        raise ValueError(f"{where}: {packed.rows} rows exceed n_pe x max_local_rows = {array.max_rows}")
    cb = np.asarray(packed.codebook, dtype=np.int64) & ((1 << WEIGHT_WIDTH) - 1)
    return [(array.address(Region.CODEBOOK, k, i), int(cb[i]))
            for k in range(array.n_pe) for i in range(1, CODEBOOK_SIZE)]


def weight_writes(array: EIEArray, packed, *, where: str = "layer"):
    """Load-port writes for the codebooks, pointers and sparse-matrix entries of every PE."""
    writes = codebook_writes(array, packed, where=where)
    for k, pe in enumerate(packed.pe):
        col_ptr, words = decoder_words(pe, packed.cols, packed.local_rows, max_cols=array.max_cols,
                                       max_entries=array.max_entries, max_local_rows=array.max_local_rows,
                                       where=f"{where} PE {k}")
        writes += [(array.address(Region.COL_PTR, k, i), int(p)) for i, p in enumerate(col_ptr)]
        writes += [(array.address(Region.SPMAT, k, i), int(w)) for i, w in enumerate(words)]
    return writes


def config_writes(array: EIEArray, packed, shift: int, relu: bool):
    return [(array.address(Region.CONFIG, 0, Config.N_COLS), packed.cols),
            (array.address(Region.CONFIG, 0, Config.N_ROWS), packed.rows),
            (array.address(Region.CONFIG, 0, Config.SHIFT), int(shift)),
            (array.address(Region.CONFIG, 0, Config.RELU), int(bool(relu)))]


def check_activations(x, cols: int, *, where: str = "input", batch: bool = False) -> np.ndarray:
    """``x`` as int64 after checking it: a vector of ``cols`` int16 values, or with ``batch`` also a
    ``(n, cols)`` batch of them (returned as ``(n, cols)``; a vector becomes a batch of one)."""
    a = np.asarray(x)
    ok = a.ndim == 1 or (batch and a.ndim == 2 and a.shape[0] > 0)
    if not ok or a.shape[-1] != cols:
        want = f"a vector of {cols} values" + (f" or an (n, {cols}) batch" if batch else "")
        raise ValueError(f"{where}: activations must be {want}, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{where}: activations must be integers, got dtype {a.dtype}")
    lo, hi = -(1 << (ACT_WIDTH - 1)), (1 << (ACT_WIDTH - 1)) - 1
    if a.size and (a.min() < lo or a.max() > hi):
        raise ValueError(f"{where}: activations must fit int{ACT_WIDTH} ({lo}..{hi})")
    a = a.astype(np.int64)
    return a.reshape(-1, cols) if batch else a


def activation_writes(array: EIEArray, x):
    return [(array.address(Region.ACTIVATION, 0, j), int(v) & ((1 << ACT_WIDTH) - 1)) for j, v in enumerate(x)]


def fit_params(packed_layers, n_pe: int, queue_depth: int = 8, lnzd_width: int = 8) -> dict:
    """Array parameters large enough for every layer: powers of two, and at least the sizes of the
    regression's models (256 columns, 4096 entries, 64 local rows), so small layers reuse a build."""
    def pow2(n, at_least):
        return max(at_least, 1 << max(0, int(n - 1).bit_length()))
    return dict(n_pe=n_pe, queue_depth=queue_depth, lnzd_width=lnzd_width,
                max_cols=pow2(max(p.cols for p in packed_layers), 256),
                max_entries=pow2(max(pe.n_entries for p in packed_layers for pe in p.pe), 4096),
                max_local_rows=pow2(max(p.local_rows for p in packed_layers), 64))
