"""Kernel maps of sparse 3-D convolution (docs/spec.md §5), built two independent ways.

``kernel_map(coords, kernel_size=3, stride=1)`` returns ``(out_coords, maps)``: for kernel offset
``k`` (``dx`` fastest, ``dz`` slowest; index 13 is ``(0, 0, 0)`` for ``kernel_size=3``),
``maps[k]`` is an ``(n_k, 2)`` int64 array of all pairs ``(in_idx, out_idx)`` with
``coords[in_idx] == out_coords[out_idx] + offset_k * tensor_stride`` (same batch index), sorted
by ``out_idx``.

- ``method="sort"`` mirrors the PointAcc mapping unit: pack coordinates into sortable widened keys
  (``sw.pointcloud.keys``), sort input and output keys once, shift the output keys by each offset
  (one addition: widened fields never carry) and find them in the sorted inputs. Only the
  ``kernel_size**2`` offsets with ``dz = 0`` are binary searches; the others step from them: with
  every coordinate a multiple of the tensor stride ``t``, no key lies strictly between ``q`` and
  ``q ± t``, so the insertion point of ``q ± t`` is that of ``q`` moved by one where ``q``
  (resp. ``q - t``) is present. Submanifold maps are built for half the offsets and mirrored.
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
    prepared = _prepare(coords, kernel_size, stride, tensor_stride, coord_bits, batch_bits)
    fmt, out, c_in, c_out, offsets, in_keys, in_order, out_keys = prepared
    if method == "sort":
        maps = _maps_sorted(fmt, in_keys, in_order, out_keys, offsets, same=stride == 1,
                            step=_check_positive("tensor_stride", tensor_stride))
    else:
        maps = _maps_hash(c_in, c_out, offsets)
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
    order = np.argsort(keys)            # unique keys (checked next): any sort gives the one order
    dup = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    if dup.size:
        a, b = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
        raise ValueError(f"duplicate coordinates: rows {a} and {b} are both {np.asarray(coords)[a].tolist()}")
    if stride == 1:
        c_out, out_keys = c_in, keys
    else:
        s = 2 * ts
        down = c_in.copy()
        down[:, 1:] = np.floor_divide(down[:, 1:], s) * s
        out_keys = np.unique(fmt.pack(down))
        c_out = fmt.unpack(out_keys)        # sorted keys: sorted (batch, x, y, z) rows
    out = c_out if ncol == 4 else c_out[:, 1:]
    return fmt, out.copy(), c_in, c_out, kernel_offsets(k, ts), keys, order, out_keys


def _pairs(in_idx, out_idx) -> np.ndarray:
    pairs = np.empty((len(out_idx), 2), dtype=np.int64)
    pairs[:, 0], pairs[:, 1] = in_idx, out_idx
    return pairs


def _maps_sorted(fmt: KeyFormat, in_keys, in_order, out_keys, offsets, *, same, step):
    """Sort and intersect, as the mapping unit does it: ``in_keys`` (in row order) sorted by
    ``in_order``, ``out_keys`` (the same keys when ``same``, else sorted); ``step``: the tensor stride.

    Work per offset is in output index order, so each map comes out sorted by ``out_idx``; only the
    binary searches run on the sorted output keys. A submanifold map (``same``) is built for half
    of the offsets only (those whose first nonzero component is negative): offset ``-d`` (index
    ``n - 1 - k``) holds offset ``d``'s pairs swapped, and the centre offset pairs every point
    with itself.
    """
    wide_in = fmt.widen(in_keys)
    in_sorted = wide_in[in_order]
    if same:
        wide_out, out_sorted, out_order = wide_in, in_sorted, in_order
    else:
        wide_out = out_sorted = fmt.widen(out_keys)
        out_order = None
    n_off, n_out = len(offsets), len(wide_out)
    # An offset of 2**coord_bits or more on some axis moves every point out of the key range.
    usable = np.all(np.abs(offsets) <= fmt.field_mask, axis=1)
    delta = fmt.wide_delta(np.where(usable[:, None], offsets, 0))
    # Submanifold: only the offsets whose first nonzero component (dx, then dy, then dz) is
    # negative; their mirrors (index n - 1 - k) follow by swapping. That half spans few (dx, dy)
    # columns (5 of 9 at kernel 3, one of them (0, 0), which needs no search).
    half = {k for k, o in enumerate(offsets.tolist()) if next((c for c in o if c), 0) < 0}
    wanted = {k for k in np.flatnonzero(usable).tolist() if not same or k in half}
    # One past the last key (index n, or -1 from 0) reads a sentinel no query equals.
    padded = np.append(in_sorted, np.iinfo(np.int64).max)
    columns = {}
    for k in np.flatnonzero(usable).tolist():
        dx, dy, dz = offsets[k].tolist()
        columns.setdefault((dx, dy), {})[dz] = k
    maps = [None] * n_off
    for by_dz in columns.values():
        want = [dz for dz, k in by_dz.items() if k in wanted]
        if not want:
            continue
        q = wide_out + delta[by_dz[0]]      # the column's dz = 0 row: a binary search
        if out_order is None:
            p = np.searchsorted(in_sorted, q)
            hit = padded[p] == q
        elif not delta[by_dz[0]]:           # the (0, 0) column: every point finds itself
            p = np.empty(n_out, dtype=np.int64)
            p[out_order] = np.arange(n_out)
            hit = np.ones(n_out, dtype=bool)
        else:
            p = np.empty(n_out, dtype=np.int64)
            p[out_order] = np.searchsorted(in_sorted, out_sorted + delta[by_dz[0]])
            hit = padded[p] == q
        rows = {0: hit}                     # dz -> which outputs find their input, and where (pos)
        pos = {0: p}
        for sign in (1, -1):                # the other rows step from it, one tensor stride at a time
            reach = max((abs(dz) for dz in want if dz * sign > 0), default=0)
            pp, qq, hh, dz = p, q, hit, 0
            while abs(dz) < reach:
                qq = qq + sign * step
                if sign > 0:                # past q's slot where q is present; hit where q + t is there
                    pp = pp + hh
                    hh = padded[pp] == qq
                else:                       # q - t, when present, sits just below q's slot
                    hh = padded[pp - 1] == qq
                    pp = pp - hh
                dz += sign * step
                rows[dz], pos[dz] = hh, pp
        for dz in want:
            out_idx = np.flatnonzero(rows[dz])
            maps[by_dz[dz]] = _pairs(in_order[pos[dz][out_idx]], out_idx)
    if same:
        centre = n_off // 2
        maps[centre] = _pairs(np.arange(n_out), np.arange(n_out))
        for k in sorted(half):
            if maps[k] is not None:
                partner = np.full(n_out, -1, dtype=np.int64)
                partner[maps[k][:, 0]] = maps[k][:, 1]
                out_idx = np.flatnonzero(partner >= 0)
                maps[n_off - 1 - k] = _pairs(partner[out_idx], out_idx)
    return [np.empty((0, 2), dtype=np.int64) if m is None else m for m in maps]


def _maps_hash(c_in, c_out, offsets):
    """Hash join on coordinate rows."""
    table = CoordHashTable(c_in)
    n_off, n_out = len(offsets), len(c_out)
    q = np.repeat(c_out[None], n_off, axis=0)
    q[:, :, 1:] += offsets[:, None, :]
    hit = table.lookup(q.reshape(-1, 4)).reshape(n_off, n_out)
    return [_pairs(row[o], o) for row in hit for o in [np.flatnonzero(row >= 0)]]
