"""Kernel maps of sparse 3-D convolution (docs/spec.md §5), built two independent ways.

``kernel_map(coords, kernel_size=3, stride=1)`` returns ``(out_coords, maps)``: for kernel offset
``k`` (``dx`` fastest, ``dz`` slowest; index 13 is ``(0, 0, 0)`` for ``kernel_size=3``),
``maps[k]`` is an ``(n_k, 2)`` int64 array of all pairs ``(in_idx, out_idx)`` with
``coords[in_idx] == out_coords[out_idx] + offset_k * tensor_stride`` (same batch index), sorted
by ``out_idx``.

- ``method="sort"`` mirrors the PointAcc mapping unit: pack coordinates into sortable keys
  (``sw.pointcloud.keys``), sort input and output keys once, shift the sorted output keys by
  each offset (field by field, which keeps them sorted) and merge-intersect the two sorted lists.
- ``method="hash"`` is a hash join: the input coordinate rows go into a hash table
  (``sw.pointcloud.hashmap``), every shifted output row is looked up.

Both are vectorised over points and offsets.
"""

import numpy as np

from sw.pointcloud.hashmap import CoordHashTable
from sw.pointcloud.keys import BATCH_BITS, COORD_BITS, KeyFormat, as_coords

METHODS = ("sort", "hash")


def kernel_offsets(kernel_size: int = 3, tensor_stride: int = 1) -> np.ndarray:
    """``(kernel_size**3, 3)`` int64 offsets ``(dx, dy, dz)``, ``dx`` fastest, scaled by ``tensor_stride``."""
    k = _check_kernel_size(kernel_size)
    r = np.arange(k, dtype=np.int64) - k // 2
    dz, dy, dx = np.meshgrid(r, r, r, indexing="ij")
    return np.stack([dx.ravel(), dy.ravel(), dz.ravel()], axis=1) * _check_positive("tensor_stride",
                                                                                  tensor_stride)


def output_coords(coords, stride: int = 1, *, tensor_stride: int = 1, coord_bits: int = COORD_BITS,
                  batch_bits: int = BATCH_BITS) -> np.ndarray:
    """Output coordinates of a convolution over ``coords`` (validated like :func:`kernel_map`)."""
    return _prepare(coords, 3, stride, tensor_stride, coord_bits, batch_bits)[1]


def kernel_map(coords, kernel_size: int = 3, stride: int = 1, *, tensor_stride: int = 1,
               method: str = "sort", coord_bits: int = COORD_BITS, batch_bits: int = BATCH_BITS):
    """Kernel map of ``coords`` (``(P, 3)``, or ``(P, 4)`` with the batch index first).

    ``stride=1`` (submanifold): output coordinates are the input coordinates. ``stride=2``: the
    sorted unique ``floor(c / (2 t)) * 2 t`` of the spatial coordinates (``t = tensor_stride``,
    the input's stride; the batch index is kept), and offsets are scaled by ``t``. Output
    coordinates have the input's column count.

    Raises ``ValueError`` for non-integer or wrongly shaped arrays, duplicate rows, coordinates
    outside the key range of ``coord_bits``/``batch_bits``, coordinates that are not multiples of
    ``tensor_stride``, a ``stride`` other than 1 or 2, an even or non-positive ``kernel_size``
    and an unknown ``method``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    fmt, out, c_in, c_out, offsets = _prepare(coords, kernel_size, stride, tensor_stride, coord_bits,
                                              batch_bits)
    build = _maps_sorted if method == "sort" else _maps_hash
    maps = build(fmt, c_in, c_out, offsets, same=stride == 1)
    return out, maps


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_kernel_size(kernel_size):
    k = _check_positive("kernel_size", kernel_size)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd (offsets centred on the output), got {k}")
    return k


def _prepare(coords, kernel_size, stride, tensor_stride, coord_bits, batch_bits):
    k = _check_kernel_size(kernel_size)
    if isinstance(stride, bool) or stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    ts = _check_positive("tensor_stride", tensor_stride)
    fmt = KeyFormat(coord_bits, batch_bits)
    ncol = np.asarray(coords).shape[-1] if np.ndim(coords) == 2 else None
    c_in = fmt.check(as_coords(coords))
    if ts > 1:
        bad = np.flatnonzero(np.any(c_in[:, 1:] % ts != 0, axis=1))
        if bad.size:
            raise ValueError(f"coords row {int(bad[0])}: {c_in[bad[0], 1:].tolist()} is not a multiple of "
                             f"tensor_stride={ts}")
    keys = fmt.pack(c_in)
    order = np.argsort(keys, kind="stable")
    dup = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    if dup.size:
        a, b = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
        raise ValueError(f"duplicate coordinates: rows {a} and {b} are both {np.asarray(coords)[a].tolist()}")
    if stride == 1:
        c_out = c_in
    else:
        s = 2 * ts
        down = c_in.copy()
        down[:, 1:] = np.floor_divide(down[:, 1:], s) * s
        c_out = np.unique(down, axis=0)
        fmt.check(c_out)
    out = c_out if ncol == 4 else c_out[:, 1:]
    return fmt, out.copy(), c_in, c_out, kernel_offsets(k, ts)


def _sort_pairs(in_idx, out_idx, n_offsets, which):
    """Split flat matches into per-offset ``(n_k, 2)`` arrays sorted by ``out_idx``."""
    order = np.lexsort((out_idx, which))
    which, in_idx, out_idx = which[order], in_idx[order], out_idx[order]
    bounds = np.searchsorted(which, np.arange(n_offsets + 1))
    pairs = np.stack([in_idx, out_idx], axis=1)
    return [pairs[bounds[k]:bounds[k + 1]].copy() for k in range(n_offsets)]


def _maps_sorted(fmt: KeyFormat, c_in, c_out, offsets, same):
    """Sort and merge-intersect, as the mapping unit does it."""
    k_in = fmt.pack(c_in)
    in_order = np.argsort(k_in, kind="stable")
    in_sorted = k_in[in_order]
    if same:
        out_order, out_sorted = in_order, in_sorted
    else:
        k_out = fmt.pack(c_out)
        out_order = np.argsort(k_out, kind="stable")
        out_sorted = k_out[out_order]
    n_off, n_out = len(offsets), len(out_sorted)
    shifted = np.empty((n_off, n_out), dtype=np.int64)
    in_range = np.empty((n_off, n_out), dtype=bool)
    for k, d in enumerate(offsets):
        shifted[k], in_range[k] = fmt.shift(out_sorted, d)
    # Merge: where each shifted output key falls in the sorted input keys; a match sits right there.
    pos = np.searchsorted(in_sorted, shifted.ravel()).reshape(n_off, n_out)
    found = in_range & (pos < len(in_sorted))
    found[found] = in_sorted[pos[found]] == shifted[found]
    which, j = np.nonzero(found)
    return _sort_pairs(in_order[pos[which, j]], out_order[j], n_off, which)


def _maps_hash(fmt: KeyFormat, c_in, c_out, offsets, same):
    """Hash join on coordinate rows."""
    table = CoordHashTable(c_in)
    n_off, n_out = len(offsets), len(c_out)
    q = np.repeat(c_out[None], n_off, axis=0)
    q[:, :, 1:] += offsets[:, None, :]
    hit = table.lookup(q.reshape(-1, 4)).reshape(n_off, n_out)
    which, out_idx = np.nonzero(hit >= 0)
    return _sort_pairs(hit[which, out_idx], out_idx, n_off, which)
