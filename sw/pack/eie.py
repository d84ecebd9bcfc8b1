"""EIE interleaved relative-index CSC (docs/spec.md §2): ``pack_eie`` and its exact inverse ``unpack_eie``.

Row ``i`` of ``W`` (shape ``(rows, cols)``, ``y = W @ x``) belongs to PE ``i % n_pe`` as local row
``i // n_pe``. Each PE stores its sub-matrix column by column as 8-bit entries
(``weight_idx``, ``rel_index``); a zero run longer than 15 is broken by a padding entry
``(0, 15)``; ``col_ptr`` has ``cols + 1`` entries ending in the sentinel (the entry count).

Optionally (``balance=True`` or an explicit ``row_order``) the rows are stored in another order:
stored row ``r`` holds original row ``row_order[r]`` and the interleave applies to the stored rows,
so the hardware format is unchanged; the hardware's outputs come back in stored order and
``EIEPacked.to_original`` puts them back (docs/spec.md §2.7a).
"""

from dataclasses import dataclass

import numpy as np

from sw.formats import CODEBOOK_SIZE, MAX_REL_INDEX, PADDING_WEIGHT_IDX
from sw.pack.balance import balanced_row_order

_RUN = MAX_REL_INDEX + 1  # a padding entry stands for 15 zeros plus its own zero row


@dataclass(frozen=True)
class PEImage:
    """What one PE stores: ``weight_idx``/``rel_index`` (uint8, one per entry, padding included)
    and ``col_ptr`` (int64, ``cols + 1`` entries, ``col_ptr[-1]`` == number of entries)."""

    weight_idx: np.ndarray
    rel_index: np.ndarray
    col_ptr: np.ndarray

    @property
    def n_entries(self) -> int:
        return int(self.weight_idx.shape[0])

    @property
    def n_padding(self) -> int:
        return int(np.count_nonzero(self.weight_idx == PADDING_WEIGHT_IDX))


@dataclass(frozen=True)
class EIEPacked:
    """A layer packed for ``n_pe`` PEs. ``codebook`` holds the 16 values the indices decode to
    (entry 0 is 0); ``local_rows`` = ``ceil(rows / n_pe)`` rows per PE. ``row_order``: ``None``
    (the identity) or a permutation of ``range(rows)``, stored row ``r`` (PE ``r % n_pe``, local
    row ``r // n_pe``) holding original row ``row_order[r]``."""

    rows: int
    cols: int
    n_pe: int
    codebook: np.ndarray
    pe: tuple
    row_order: np.ndarray | None = None

    @property
    def reordered(self) -> bool:
        """Whether the stored row order differs from the original one."""
        return self.row_order is not None and not _is_identity(self.row_order)

    @property
    def local_rows(self) -> int:
        return -(-self.rows // self.n_pe)

    @property
    def n_entries(self) -> int:
        return sum(p.n_entries for p in self.pe)

    @property
    def n_padding(self) -> int:
        return sum(p.n_padding for p in self.pe)

    def weights(self) -> np.ndarray:
        """The dense weight matrix the packed indices stand for (codebook applied), original row order."""
        return self.codebook[unpack_eie(self)]

    def to_original(self, y_hw) -> np.ndarray:
        """Hardware outputs (stored row order; the last axis has ``rows`` values) in the original
        row order, as a new array: ``y[..., row_order] = y_hw``."""
        y, order = self._outputs(y_hw)
        if order is None:
            return y.copy()
        out = np.empty_like(y)
        out[..., order] = y
        return out

    def to_stored(self, y) -> np.ndarray:
        """The inverse of :meth:`to_original`: original-order outputs in the hardware's stored
        order, as a new array: ``y[..., row_order]``."""
        y, order = self._outputs(y)
        return y.copy() if order is None else y[..., order]

    def _outputs(self, y):
        y = np.asarray(y)
        if y.ndim == 0 or y.shape[-1] != self.rows:
            raise ValueError(f"outputs must have rows = {self.rows} values on their last axis, got shape {y.shape}")
        return y, (check_row_order(self.row_order, self.rows) if self.reordered else None)


def identity_codebook() -> np.ndarray:
    """Index ``i`` decodes to the integer ``i``: what an index matrix packed without a codebook means."""
    return np.arange(CODEBOOK_SIZE, dtype=np.int64)


def check_codebook(codebook) -> np.ndarray:
    """Return ``codebook`` padded with unused zero entries to 16, after checking docs/spec.md §1's rules:
    entry 0 is 0 and no nonzero value appears twice."""
    cb = np.asarray(codebook)
    if cb.ndim != 1:
        raise ValueError(f"codebook must be 1-D, got shape {cb.shape}")
    if not 1 <= cb.shape[0] <= CODEBOOK_SIZE:
        raise ValueError(f"codebook must have 1..{CODEBOOK_SIZE} entries, got {cb.shape[0]}")
    if not (np.issubdtype(cb.dtype, np.integer) or np.issubdtype(cb.dtype, np.floating)):
        raise ValueError(f"codebook must be numeric, got dtype {cb.dtype}")
    if not np.all(np.isfinite(cb)):
        raise ValueError("codebook holds a non-finite value")
    if cb[0] != 0:
        raise ValueError(f"codebook entry 0 is reserved for pruned weights and must be 0, got {cb[0]}")
    nz = cb[1:][cb[1:] != 0]            # further zero entries are unused slots
    if np.unique(nz).shape[0] != nz.shape[0]:
        raise ValueError("codebook has duplicate nonzero values; each value must map to one index")
    pad = np.zeros(CODEBOOK_SIZE - cb.shape[0], dtype=cb.dtype)
    return np.concatenate([cb, pad])


def _to_index_matrix(weights, codebook):
    w = np.asarray(weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be a 2-D (rows, cols) matrix, got shape {w.shape}")
    if w.shape[0] == 0 or w.shape[1] == 0:
        raise ValueError(f"weights has an empty shape {w.shape}")
    if w.dtype == np.bool_ or not (np.issubdtype(w.dtype, np.integer) or np.issubdtype(w.dtype, np.floating)):
        raise ValueError(f"weights must be an integer index matrix or a float matrix, got dtype {w.dtype}")
    if codebook is None:
        if not np.issubdtype(w.dtype, np.integer):
            raise ValueError("a float weight matrix needs a codebook (pack_eie(W, n_pe, codebook=cb))")
        bad = (w < 0) | (w >= CODEBOOK_SIZE)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise ValueError(f"weight index {w[r, c]} at ({r}, {c}) is outside 0..{CODEBOOK_SIZE - 1}")
        return w.astype(np.uint8), identity_codebook()
    cb = check_codebook(codebook)
    n_used = np.asarray(codebook).shape[0]
    if not np.all(np.isfinite(w)):
        r, c = np.argwhere(~np.isfinite(w))[0]
        raise ValueError(f"weights hold a non-finite value at ({r}, {c})")
    order = np.argsort(cb[:n_used], kind="stable")
    sorted_cb = cb[:n_used][order]
    pos = np.clip(np.searchsorted(sorted_cb, w), 0, n_used - 1)
    idx = order[pos]
    miss = cb[idx] != w
    if miss.any():
        r, c = np.argwhere(miss)[0]
        raise ValueError(f"weight {w[r, c]} at ({r}, {c}) is not a codebook value")
    return idx.astype(np.uint8), cb


def _is_identity(order) -> bool:
    return bool(np.array_equal(order, np.arange(len(order))))


def check_row_order(row_order, rows: int) -> np.ndarray:
    """``row_order`` as int64 after checking it is a permutation of ``range(rows)`` (``ValueError``
    naming the first offending position otherwise)."""
    o = np.asarray(row_order)
    if o.ndim != 1 or o.shape[0] != rows:
        raise ValueError(f"row_order must be 1-D with rows = {rows} entries, got shape {o.shape}")
    if o.dtype == np.bool_ or not np.issubdtype(o.dtype, np.integer):
        raise ValueError(f"row_order must hold integers, got dtype {o.dtype}")
    o = o.astype(np.int64)
    bad = (o < 0) | (o >= rows)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"row_order[{i}] = {o[i]} is outside 0..{rows - 1}")
    count = np.bincount(o, minlength=rows)
    if (count != 1).any():
        v = int(np.argmax(count > 1))
        i, j = np.flatnonzero(o == v)[:2]
        raise ValueError(f"row_order is not a permutation of range({rows}): row {v} appears at "
                         f"positions {i} and {j}")
    return o


def _pack_pe(sub: np.ndarray) -> PEImage:
    """Pack one PE's ``(local_rows, cols)`` index sub-matrix; vectorised over its nonzeros."""
    cols = sub.shape[1]
    col, row = np.nonzero(sub.T)  # column-major order: by column, then by row
    w = sub[row, col]
    prev = np.empty_like(row)
    prev[1:] = row[:-1]
    first = np.ones(row.shape[0], dtype=bool)
    first[1:] = col[1:] != col[:-1]
    prev[first] = -1
    gap = row - prev - 1                  # zeros between this entry and the previous stored one
    pads = gap // _RUN                    # each padding entry consumes 16 row positions
    counts = pads + 1
    total = int(counts.sum())
    weight_idx = np.full(total, PADDING_WEIGHT_IDX, dtype=np.uint8)
    rel_index = np.full(total, MAX_REL_INDEX, dtype=np.uint8)
    last = np.cumsum(counts) - 1          # where each real entry lands, after its padding
    weight_idx[last] = w
    rel_index[last] = gap % _RUN
    per_col = np.bincount(col, weights=counts, minlength=cols).astype(np.int64)
    col_ptr = np.zeros(cols + 1, dtype=np.int64)
    np.cumsum(per_col, out=col_ptr[1:])
    return PEImage(weight_idx, rel_index, col_ptr)


def pack_eie(weights, n_pe: int, codebook=None, *, balance: bool = False, row_order=None) -> EIEPacked:
    """Pack ``weights`` for ``n_pe`` PEs as docs/spec.md §2's interleaved relative-index CSC.

    ``weights``: without ``codebook``, an integer index matrix ``(rows, cols)`` with values 0..15
    (0 = pruned), recorded with the identity codebook (index ``i`` decodes to ``i``). With
    ``codebook`` (up to 16 values, entry 0 == 0), a matrix of values whose nonzeros all equal
    codebook entries. Returns the per-PE images; cost is vectorised over the nonzeros
    (a 4096 x 9216 layer at 9 % density packs for 64 PEs in well under a second).

    ``balance=True`` stores the rows in :func:`~sw.pack.balance.balanced_row_order`'s order, which
    evens out the entries per PE and per column (about a second more at that size); ``row_order``
    gives a permutation explicitly. Either way ``packed.row_order`` records it (``None`` when it is
    the identity), ``unpack_eie``/``weights()`` return the original order, and
    ``packed.to_original(y_hw)`` maps the hardware's outputs back.
    """
    if isinstance(n_pe, bool) or not isinstance(n_pe, (int, np.integer)):
        raise ValueError(f"n_pe must be an integer, got {n_pe!r}")
    if n_pe < 1:
        raise ValueError(f"n_pe must be >= 1, got {n_pe}")
    if not isinstance(balance, (bool, np.bool_)):
        raise ValueError(f"balance must be True or False, got {balance!r}")
    if balance and row_order is not None:
        raise ValueError("give balance=True or a row_order, not both")
    idx, cb = _to_index_matrix(weights, codebook)
    rows, cols = idx.shape
    if balance:
        row_order = balanced_row_order(idx, int(n_pe))
    elif row_order is not None:
        row_order = check_row_order(row_order, rows)
    if row_order is not None and _is_identity(row_order):
        row_order = None
    stored = idx if row_order is None else idx[row_order]
    pes = tuple(_pack_pe(stored[k::n_pe]) for k in range(n_pe))
    return EIEPacked(rows=rows, cols=cols, n_pe=int(n_pe), codebook=cb, pe=pes, row_order=row_order)


def validate_pe(pe: PEImage, cols: int, local_rows: int, *, where: str = "PE") -> None:
    """Reject a PE image whose structure the hardware could not decode correctly.

    Checks: ``col_ptr`` has ``cols + 1`` entries, starts at 0, is non-decreasing, its sentinel
    equals the entry count; entries are 4-bit; decoded rows stay below ``local_rows``.
    """
    cp = np.asarray(pe.col_ptr)
    wi, ri = np.asarray(pe.weight_idx), np.asarray(pe.rel_index)
    if cp.ndim != 1 or cp.shape[0] != cols + 1:
        raise ValueError(f"{where}: col_ptr must have cols + 1 = {cols + 1} entries, got shape {cp.shape}")
    if cp[0] != 0:
        raise ValueError(f"{where}: col_ptr[0] must be 0, got {cp[0]}")
    step = np.diff(cp)
    if (step < 0).any():
        j = int(np.argmax(step < 0))
        raise ValueError(f"{where}: col_ptr is not non-decreasing: col_ptr[{j}] = {cp[j]} > "
                         f"col_ptr[{j + 1}] = {cp[j + 1]}")
    if wi.shape != ri.shape or wi.ndim != 1:
        raise ValueError(f"{where}: weight_idx and rel_index must be 1-D of equal length, "
                         f"got {wi.shape} and {ri.shape}")
    if cp[-1] != wi.shape[0]:
        raise ValueError(f"{where}: col_ptr sentinel {cp[-1]} disagrees with the entry count {wi.shape[0]}")
    for name, a in (("weight_idx", wi), ("rel_index", ri)):
        if a.size and (a.min() < 0 or a.max() > MAX_REL_INDEX):
            raise ValueError(f"{where}: {name} values must be 4-bit (0..15)")
    if wi.size:
        rows = _decode_rows(ri.astype(np.int64), cp)
        if rows.max() >= local_rows:
            e = int(np.argmax(rows >= local_rows))
            raise ValueError(f"{where}: entry {e} decodes to local row {rows[e]}, beyond the "
                             f"{local_rows} local rows")


def _decode_rows(rel: np.ndarray, col_ptr: np.ndarray) -> np.ndarray:
    """Local row of every entry (the address accumulator, vectorised)."""
    step = np.cumsum(rel + 1)
    starts = col_ptr[:-1][np.diff(col_ptr) > 0]
    base = np.zeros_like(step)
    base[starts] = np.concatenate([[0], step[starts[1:] - 1]]) if starts.size else []
    base = np.maximum.accumulate(base)
    return step - base - 1


def unpack_eie(packed: EIEPacked, *, stored: bool = False) -> np.ndarray:
    """The exact inverse of :func:`pack_eie`: the ``(rows, cols)`` uint8 index matrix in the
    original row order, or with ``stored=True`` in the stored (hardware) order."""
    out = np.zeros((packed.n_pe * packed.local_rows, packed.cols), dtype=np.uint8)
    for k, pe in enumerate(packed.pe):
        validate_pe(pe, packed.cols, packed.local_rows, where=f"PE {k}")
        if pe.n_entries == 0:
            continue
        cp = np.asarray(pe.col_ptr, dtype=np.int64)
        rows = _decode_rows(np.asarray(pe.rel_index, dtype=np.int64), cp)
        col = np.repeat(np.arange(packed.cols), np.diff(cp))
        keep = np.asarray(pe.weight_idx) != PADDING_WEIGHT_IDX
        out[rows[keep] * packed.n_pe + k, col[keep]] = pe.weight_idx[keep]
    out = out[: packed.rows]
    if stored or not packed.reordered:
        return out
    original = np.empty_like(out)
    original[check_row_order(packed.row_order, packed.rows)] = out
    return original
