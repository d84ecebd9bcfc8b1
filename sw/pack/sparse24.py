"""N:M masks and docs/spec.md §4's 2:4 packing: ``mask_nm``, ``mask_24``, ``pack_24`` and ``unpack_24``.

``W`` has shape ``(rows, K)``; a group is 4 consecutive weights of one row along ``K``.
``pack_24`` stores each group as its 2 kept weights (``values``, ``(rows, K // 2)``, in increasing
position order) and a 4-bit field ``meta = i0 | i1 << 2`` (``(rows, K // 4)``, uint8) with
``i0 < i1`` the kept positions. A group with fewer than two nonzeros names the positions PyTorch's
and CUTLASS's conversion names (``sw.formats.META_FILL_24``), so the logical metadata is theirs.
"""

from typing import NamedTuple

import numpy as np

from sw.formats import (
    GROUP_24,
    INT8_MAX,
    INT8_MIN,
    KEPT_24,
    META_FILL_24,
    META_WIDTH,
    meta_field,
    split_meta_field,
)

_META_VALUES = 1 << META_WIDTH


class Packed24(NamedTuple):
    """``values``: ``(rows, K // 2)``, the weights' dtype; ``meta``: ``(rows, K // 4)`` uint8."""

    values: np.ndarray
    meta: np.ndarray


def _check_numeric(a: np.ndarray, name: str) -> None:
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{name} must be an integer or float array, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ValueError(f"{name} holds a non-finite value at {where}")


def _magnitude(w: np.ndarray) -> np.ndarray:
    """``|w|`` without overflow (``abs(int8(-128))`` wraps), in a dtype that sorts it exactly."""
    if np.issubdtype(w.dtype, np.floating):
        return np.abs(w)
    if np.issubdtype(w.dtype, np.unsignedinteger):
        return w.astype(np.uint64)
    return np.abs(w.astype(np.int64)).view(np.uint64)   # |-2**63| == 2**63 as uint64


def mask_nm(weights, n: int, m: int) -> np.ndarray:
    """Boolean N:M mask: in every group of ``m`` consecutive weights along the last axis, keep the
    ``n`` largest ``|w|``; ties go to the lower index.

    ``weights``: any array (numeric, finite) whose last axis is a multiple of ``m``. Returns a bool
    array of the same shape with exactly ``n`` True per group (a kept position may hold a zero).
    Vectorised: one stable sort over the groups.
    """
    for name, v in (("n", n), ("m", m)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, got {v!r}")
    if m < 1 or not 1 <= n <= m:
        raise ValueError(f"need 1 <= n <= m, got n={n}, m={m}")
    w = np.asarray(weights)
    _check_numeric(w, "weights")
    if w.ndim == 0:
        raise ValueError("weights must have at least one axis")
    if w.shape[-1] % m:
        raise ValueError(f"the last axis ({w.shape[-1]}) must be a multiple of m={m} to form {n}:{m} groups")
    mag = _magnitude(w).reshape(*w.shape[:-1], w.shape[-1] // m, m)
    # Descending by magnitude, stable so equal magnitudes keep the lower index first.
    key = ~mag if mag.dtype == np.uint64 else -mag
    keep = np.argsort(key, axis=-1, kind="stable")[..., :n]
    mask = np.zeros(mag.shape, dtype=bool)
    np.put_along_axis(mask, keep, True, axis=-1)
    return mask.reshape(w.shape)


def mask_24(weights) -> np.ndarray:
    """docs/spec.md §4's 2:4 mask: ``mask_nm(weights, 2, 4)``."""
    return mask_nm(weights, KEPT_24, GROUP_24)


def _kept_position_tables():
    """``(i0, i1)`` for each 4-bit nonzero pattern (bit ``p`` = position ``p`` is nonzero);
    -1 where the pattern has more than two nonzeros."""
    i0 = np.full(16, -1, dtype=np.int64)
    i1 = np.full(16, -1, dtype=np.int64)
    for pattern in range(16):
        nz = tuple(p for p in range(GROUP_24) if pattern >> p & 1)
        if len(nz) > KEPT_24:
            continue
        i0[pattern], i1[pattern] = nz if len(nz) == KEPT_24 else META_FILL_24[nz]
    return i0, i1


_I0, _I1 = _kept_position_tables()


def _check_matrix(w: np.ndarray, name: str) -> None:
    if w.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (rows, K) matrix, got shape {w.shape}")
    if w.shape[0] == 0 or w.shape[1] == 0:
        raise ValueError(f"{name} has an empty shape {w.shape}")
    _check_numeric(w, name)


def check_24(weights) -> None:
    """Raise ``ValueError`` unless ``weights`` is a 2-D ``(rows, K)`` matrix, ``K % 4 == 0``, with at
    most 2 nonzeros in every group; the message names the first offending row and group."""
    w = np.asarray(weights)
    _check_matrix(w, "weights")
    rows, k = w.shape
    if k % GROUP_24:
        raise ValueError(f"K = {k} is not a multiple of {GROUP_24}: 2:4 groups cannot be formed")
    count = np.count_nonzero(w.reshape(rows, k // GROUP_24, GROUP_24), axis=-1)
    if (count > KEPT_24).any():
        r, g = (int(i) for i in np.argwhere(count > KEPT_24)[0])
        group = w[r, GROUP_24 * g: GROUP_24 * (g + 1)].tolist()
        raise ValueError(f"row {r}, group {g} (columns {GROUP_24 * g}..{GROUP_24 * g + GROUP_24 - 1}) holds "
                         f"{count[r, g]} nonzeros {group}; 2:4 allows at most {KEPT_24} "
                         f"(apply mask_24 first)")


def pack_24(weights) -> Packed24:
    """Pack a 2:4-sparse ``(rows, K)`` matrix as ``(values, meta)`` (docs/spec.md §4).

    ``values``: ``(rows, K // 2)`` in ``weights``' dtype, each group's two kept weights in increasing
    position order; ``meta``: ``(rows, K // 4)`` uint8, ``i0 | i1 << 2``. Raises ``ValueError`` on a
    group with more than 2 nonzeros (naming row and group), ``K % 4 != 0``, a non-numeric or
    non-finite matrix. Vectorised over all groups.
    """
    w = np.asarray(weights)
    check_24(w)
    rows, k = w.shape
    groups = w.reshape(rows, k // GROUP_24, GROUP_24)
    pattern = (groups != 0).astype(np.int64) @ (1 << np.arange(GROUP_24))
    i0, i1 = _I0[pattern], _I1[pattern]
    kept = np.stack([i0, i1], axis=-1)
    values = np.take_along_axis(groups, kept, axis=-1).reshape(rows, k // 2)
    return Packed24(values, meta_field(i0, i1).astype(np.uint8))


def check_meta(meta) -> np.ndarray:
    """``meta`` as an int64 ``(rows, K // 4)`` array after checking every field is 4-bit with
    ``i0 < i1``; ``ValueError`` naming row and group otherwise."""
    mt = np.asarray(meta)
    if mt.ndim != 2:
        raise ValueError(f"meta must be a 2-D (rows, K // 4) array, got shape {mt.shape}")
    if np.issubdtype(mt.dtype, np.floating) and mt.size:
        _check_numeric(mt, "meta")
        if (mt != np.round(mt)).any():
            r, g = np.argwhere(mt != np.round(mt))[0]
            raise ValueError(f"meta[{r}, {g}] = {mt[r, g]} is not an integer")
    elif mt.dtype == np.bool_ or not np.issubdtype(mt.dtype, np.integer):
        raise ValueError(f"meta must be an integer array, got dtype {mt.dtype}")
    mt = mt.astype(np.int64)
    bad = (mt < 0) | (mt >= _META_VALUES)
    if bad.any():
        r, g = np.argwhere(bad)[0]
        raise ValueError(f"meta[{r}, {g}] = {mt[r, g]} (row {r}, group {g}) is not a 4-bit field")
    i0, i1 = split_meta_field(mt)
    if (i0 >= i1).any():
        r, g = np.argwhere(i0 >= i1)[0]
        raise ValueError(f"meta[{r}, {g}] = {mt[r, g]} (row {r}, group {g}) names positions i0={i0[r, g]}, "
                         f"i1={i1[r, g]}; docs/spec.md §4 needs i0 < i1")
    return mt


def unpack_24(values, meta) -> np.ndarray:
    """The dense ``(rows, K)`` matrix (``values``' dtype) of a packed pair; the exact inverse of
    :func:`pack_24`. Rejects mismatched shapes and metadata fields that are not 4-bit or have
    ``i0 >= i1``, naming row and group."""
    v = np.asarray(values)
    mt = check_meta(meta)
    if v.ndim != 2:
        raise ValueError(f"values must be a 2-D (rows, K // 2) array, got shape {v.shape}")
    _check_numeric(v, "values")
    rows, n_groups = mt.shape
    if v.shape != (rows, KEPT_24 * n_groups):
        raise ValueError(f"values has shape {v.shape}; meta {mt.shape} needs ({rows}, {KEPT_24 * n_groups})")
    i0, i1 = split_meta_field(mt)
    dense = np.zeros((rows, n_groups, GROUP_24), dtype=v.dtype)
    np.put_along_axis(dense, np.stack([i0, i1], axis=-1), v.reshape(rows, n_groups, KEPT_24), axis=-1)
    return dense.reshape(rows, n_groups * GROUP_24)


def check_int8(a, name: str = "weights") -> np.ndarray:
    """``a`` as int8 for the hardware path, or ``ValueError`` naming the first entry that is not an
    integer in -128..127 (float arrays are accepted when every entry is integral)."""
    x = np.asarray(a)
    _check_numeric(x, name)
    if np.issubdtype(x.dtype, np.floating):
        frac = x != np.round(x)
        if frac.any():
            where = tuple(int(i) for i in np.argwhere(frac)[0])
            raise ValueError(f"{name}{list(where)} = {x[where]} is not an integer; the 2:4 hardware "
                             f"takes int8 (quantize first)")
    out = (x < INT8_MIN) | (x > INT8_MAX)
    if out.any():
        where = tuple(int(i) for i in np.argwhere(out)[0])
        raise ValueError(f"{name}{list(where)} = {x[where]} is outside int8 {INT8_MIN}..{INT8_MAX}")
    return x.astype(np.int8)
