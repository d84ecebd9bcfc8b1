"""Golden model of the relative-index CSC decoder, written from docs/spec.md §2 alone.

Deliberately plain Python, one entry at a time, sharing no code with ``sw.pack`` or ``pyhdl``.
"""

PAD_REL = 15


def decode_column(col_ptr, weight_idx, rel_index, j):
    """Entries of column ``j``: ``[(local_row, weight_idx, last), ...]`` in storage order.

    Case A (first entry): row = rel_index. Case B: row = previous row + 1 + rel_index.
    """
    start, end = int(col_ptr[j]), int(col_ptr[j + 1])
    out = []
    row = None
    for e in range(start, end):
        rel = int(rel_index[e])
        row = rel if row is None else row + 1 + rel
        out.append((row, int(weight_idx[e]), e == end - 1))
    return out


def decode_stream(col_ptr, weight_idx, rel_index, columns, n_cols, max_local_rows=None):
    """What the decoder emits for a stream of column indices.

    Returns ``(entries, slots, error)``: the decoded entries in order; for every column the
    number of issue slots it occupies (its entry count, at least one: an empty or rejected
    column still takes a cycle); and whether some column was out of range (``>= n_cols``) and
    therefore dropped, or (with ``max_local_rows``) some row reached ``max_local_rows``, which
    only a corrupt image does.
    """
    entries, slots, error = [], [], False
    for j in columns:
        j = int(j)
        if j >= n_cols:
            error = True
            slots.append(1)
            continue
        col = decode_column(col_ptr, weight_idx, rel_index, j)
        if max_local_rows is not None and any(row >= max_local_rows for row, _, _ in col):
            error = True
        entries += col
        slots.append(max(1, len(col)))
    return entries, slots, error


def dense_column(col_ptr, weight_idx, rel_index, j, rows):
    """Column ``j`` as a dense list of weight indices (padding entries decode to 0)."""
    col = [0] * rows
    for row, w, _ in decode_column(col_ptr, weight_idx, rel_index, j):
        if w:
            col[row] = w
    return col
