"""Load-balance-aware row order for EIE packing (docs/spec.md §2.7a): ``balanced_row_order``.

The interleave (stored row ``r`` -> PE ``r % n_pe``, local row ``r // n_pe``) is fixed by the
hardware; what packing may choose is which original row each stored row holds. Real pruned
matrices leave some rows, and some row-column regions, far denser than others, so the plain order
gives a few PEs more entries than the rest, in total and, worse for a shallow activation queue,
column by column. The greedy here assigns rows to PEs so that both even out.
"""

import numpy as np

from sw.formats import QUEUE_DEPTH

# Weight of the per-window term. Measured on the MiniLM FFN matrices at queue depth 8, 64 PEs: 0 -> 0.950
# mean efficiency, 1 -> 0.956, 4 -> 0.963, 8 and 16 no better; windows of 4..32 columns all within 0.005.
WINDOW_WEIGHT = 4


def balanced_row_order(index, n_pe: int, *, window: int = QUEUE_DEPTH) -> np.ndarray:
    """A permutation ``row_order`` of ``range(rows)``: stored row ``r`` holds original row
    ``row_order[r]``, so that packing ``index[row_order]`` spreads the nonzeros evenly over the PEs.

    Greedy, deterministic (integer costs, ties to the lowest PE): rows in decreasing order of
    nonzeros (ties by row number) each go to the PE, among those with a free row slot, that
    minimises the increase of

        F = cols * sum_{k,j} e[k,j]**2 + 4 * (cols / window) * sum_{k,b} v[k,b]**2 + sum_k T[k]**2

    with ``e[k,j]`` PE ``k``'s nonzeros in column ``j``, ``v[k,b]`` those in the window ``b`` of
    ``window`` consecutive columns (``j // window == b``) and ``T[k]`` its total. Adding a row with
    ``n`` nonzeros in columns ``C`` to PE ``k`` raises ``F`` by twice

        cost[k] = cols * sum_{j in C} e[k,j] + 4 * (cols / window) * sum_{j in C} v[k, j // window] + n * T[k]

    plus a term equal for every PE (computed times ``window``, in integers). The column term
    spreads each column's nonzeros over the PEs, the window term each run of ``window`` columns
    (what an activation queue of that depth can smooth over with dense activations), the last the
    totals; for randomly placed nonzeros the three sums are of the same size (``n * T[k] / cols``
    times the weights shown). PE ``k`` receives exactly the ``ceil((rows - k) / n_pe)`` rows the
    interleave gives it, as local rows in the order they were placed (the densest first, which
    also keeps zero runs, and with them padding entries, short); empty rows fill the slots left,
    in increasing stored row. With one PE there is nothing to balance and the order is the identity.
    """
    nz = np.asarray(index) != 0
    if nz.ndim != 2:
        raise ValueError(f"index must be a 2-D (rows, cols) matrix, got shape {nz.shape}")
    for name, v in (("n_pe", n_pe), ("window", window)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    rows, cols = nz.shape
    if n_pe == 1:
        return np.arange(rows, dtype=np.int64)
    per_row = np.count_nonzero(nz, axis=1)
    nz_col = np.nonzero(nz)[1].astype(np.intp)              # row-major: each row's columns together
    nz_win = nz_col // window
    start = np.concatenate([[0], np.cumsum(per_row)]).tolist()
    capacity = [-(-(rows - k) // n_pe) for k in range(n_pe)]
    filled = [0] * n_pe
    per_col = np.zeros((cols, n_pe), dtype=np.int32)       # e[k, j], column-major for the gathers
    per_win = np.zeros((-(-cols // window), n_pe), dtype=np.int32)
    total = np.zeros(n_pe, dtype=np.int64)
    closed = np.zeros(n_pe, dtype=np.int64)                # a cost beyond any other once the PE is full
    placed = [[] for _ in range(n_pe)]
    for r in np.argsort(-per_row, kind="stable").tolist():
        n = int(per_row[r])
        if n == 0:                                         # the rest are empty
            break
        c, w = nz_col[start[r]:start[r + 1]], nz_win[start[r]:start[r + 1]]
        cost = per_col[c].sum(axis=0, dtype=np.int64) * (window * cols)
        cost += per_win[w].sum(axis=0, dtype=np.int64) * (WINDOW_WEIGHT * cols)
        cost += total * (window * n) + closed
        k = int(cost.argmin())
        per_col[c, k] += 1
        per_win[w[0]:w[-1] + 1, k] += np.bincount(w - w[0]).astype(np.int32)   # w is sorted
        total[k] += n
        filled[k] += 1
        placed[k].append(r)
        if filled[k] == capacity[k]:
            closed[k] = 1 << 62
    order = np.empty(rows, dtype=np.int64)
    for k, rs in enumerate(placed):
        order[k + n_pe * np.arange(len(rs))] = rs
    free = np.sort(np.concatenate([k + n_pe * np.arange(filled[k], capacity[k]) for k in range(n_pe)]))
    order[free] = np.flatnonzero(per_row == 0)          # empty rows: the free slots, in order
    return order
