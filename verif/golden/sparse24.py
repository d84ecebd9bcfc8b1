"""Golden model of docs/spec.md §4 (2:4 packing and the int8 MACs), written from SPEC.md alone.

Deliberately plain Python, one group at a time, sharing no code with ``sw.pack`` or ``pyhdl``.
"""

# docs/spec.md §4: the positions a group with fewer than two nonzeros names (pattern written position 0 first).
FILL = {"0000": (2, 3), "1000": (0, 2), "0100": (1, 2), "0010": (2, 3), "0001": (2, 3)}
# The six valid metadata fields: i0 | i1 << 2 with i0 < i1.
META_PATTERNS = [(i0, i1) for i0 in range(4) for i1 in range(4) if i0 < i1]


def pack_group(group):
    """One group of 4 weights → ``(v0, v1, meta)``; ``ValueError`` for more than 2 nonzeros."""
    nz = [p for p in range(4) if group[p] != 0]
    if len(nz) > 2:
        raise ValueError(f"{len(nz)} nonzeros in {list(group)}")
    if len(nz) == 2:
        i0, i1 = nz
    else:
        i0, i1 = FILL["".join("1" if p in nz else "0" for p in range(4))]
    return group[i0], group[i1], i0 | (i1 << 2)


def pack_matrix(W):
    """Row by row, group by group: ``(values, meta)`` as lists of lists."""
    values, meta = [], []
    for row in W:
        v_row, m_row = [], []
        for g in range(0, len(row), 4):
            v0, v1, m = pack_group(list(row[g:g + 4]))
            v_row += [v0, v1]
            m_row.append(m)
        values.append(v_row)
        meta.append(m_row)
    return values, meta


def unpack_row(values, meta):
    """One packed row → its dense weights."""
    dense = []
    for g, m in enumerate(meta):
        i0, i1 = int(m) & 3, int(m) >> 2
        if not i0 < i1:
            raise ValueError(f"group {g}: meta {m} names i0={i0}, i1={i1}")
        group = [0, 0, 0, 0]
        group[i0], group[i1] = values[2 * g], values[2 * g + 1]
        dense += group
    return dense


def wrap_int32(x: int) -> int:
    """docs/spec.md §4's int32 accumulator, two's complement modulo 2**32."""
    return (x + (1 << 31)) % (1 << 32) - (1 << 31)


def sparse_dot(values, meta, x):
    """The int32 result of one packed row against activations ``x`` (length 4·len(meta)): each group
    multiplies its two values by the activations at positions i0 and i1 of its four."""
    acc = 0
    for g, m in enumerate(meta):
        i0, i1 = int(m) & 3, (int(m) >> 2) & 3
        acc = wrap_int32(acc + int(values[2 * g]) * int(x[4 * g + i0])
                         + int(values[2 * g + 1]) * int(x[4 * g + i1]))
    return acc


def dense_dot(w, x):
    """The int32 result of a dense row of int8 weights against int8 activations."""
    acc = 0
    for a, b in zip(w, x, strict=True):
        acc = wrap_int32(acc + int(a) * int(b))
    return acc
