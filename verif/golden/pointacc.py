"""Golden models of the PointAcc mapping unit, written from docs/spec.md §5 and the stream formats of
``pyhdl/pointacc/streams.py`` (documentation, not code: nothing here imports ``pyhdl`` or
``sw.pointcloud``).

Plain Python over lists of ``(key, idx)`` tuples:

- key format: ``coord_bits`` per axis, biased by ``2**(coord_bits - 1)``, fields ``x | y | z``
  from high to low, the batch index above them;
- the defined order of elements is ``(key, idx)``: equal keys ascend by index, which is a
  stable sort when ``idx`` numbers the elements in input order;
- the intersection of one offset ``d`` pairs every input point with the output point ``d`` away:
  ``coords_in[in_idx] == coords_out[out_idx] + d``, in ascending key order.
"""

INF = float("inf")


# ---------------------------------------------------------------- keys

def encode(b, x, y, z, coord_bits, batch_bits):
    bias = 1 << (coord_bits - 1)
    for v in (x, y, z):
        if not -bias <= v < bias:
            raise ValueError(f"coordinate {v} outside {coord_bits}-bit range")
    if not 0 <= b < (1 << batch_bits) or (batch_bits == 0 and b):
        raise ValueError(f"batch index {b} outside {batch_bits} bits")
    return (((b << coord_bits | (x + bias)) << coord_bits | (y + bias)) << coord_bits) | (z + bias)


def decode(key, coord_bits):
    """``(batch, x, y, z)`` of a key."""
    mask, bias = (1 << coord_bits) - 1, 1 << (coord_bits - 1)
    z = (key & mask) - bias
    y = ((key >> coord_bits) & mask) - bias
    x = ((key >> 2 * coord_bits) & mask) - bias
    return key >> 3 * coord_bits, x, y, z


# ---------------------------------------------------------------- sort and merge

def sort_elements(elems):
    """Sorted by key, equal keys by index."""
    return sorted((int(k), int(i)) for k, i in elems)


def merge(a, b):
    """The merge of two sorted lists (the sorted union, duplicates kept)."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    return out + list(a[i:]) + list(b[j:])


def beats(elems, width):
    """A list as stream beats ``(lanes, keep, last)``: full beats, a last beat of 0..width."""
    elems = list(elems)
    chunks = [elems[i:i + width] for i in range(0, len(elems), width)] or [[]]
    return [(c, (1 << len(c)) - 1, n == len(chunks) - 1) for n, c in enumerate(chunks)]


def merge_cycles(n_a, n_b, width):
    """Cycles the merger spends on one pair of lists of ``n_a`` and ``n_b`` elements: one step per
    input beat, and one flush cycle when the output has more beats than steps after the first."""
    steps = len(beats(range(n_a), width)) + len(beats(range(n_b), width))
    out_beats = len(beats(range(n_a + n_b), width))
    return max(steps, out_beats + 1)


# ---------------------------------------------------------------- intersection

def intersect(inputs, outputs, offset, coord_bits):
    """Pairs ``(in_idx, out_idx)`` with ``coords(in) == coords(out) + offset``, by a merge join
    over the two sorted lists (``inputs`` and ``outputs`` sorted by key, keys unique in each)."""
    dx, dy, dz = offset
    a = [(decode(k, coord_bits), i) for k, i in inputs]
    b = []
    for k, o in outputs:
        bt, x, y, z = decode(k, coord_bits)
        b.append(((bt, x + dx, y + dy, z + dz), o))
    pairs, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if a[i][0] == b[j][0]:
            pairs.append((a[i][1], b[j][1]))
            i += 1
            j += 1
        elif a[i][0] < b[j][0]:
            i += 1
        else:
            j += 1
    return pairs


def intersect_steps(inputs, outputs, offset, coord_bits, width):
    """Steps of the block intersection: each step retires the beat whose highest lane ranks lower
    (both on a tie; an empty lane ranks above any point); a finished side lets the other drain."""
    dx, dy, dz = offset

    def tops(elems, shift):
        out = []
        for lanes, _, _ in beats(elems, width):
            if len(lanes) < width:
                out.append((INF,))
            else:
                b, x, y, z = decode(lanes[-1][0], coord_bits)
                out.append((b, x + shift[0], y + shift[1], z + shift[2]))
        return out

    ta, tb = tops(inputs, (0, 0, 0)), tops(outputs, (dx, dy, dz))
    i = j = steps = 0
    while i < len(ta) or j < len(tb):
        steps += 1
        if j == len(tb):
            i += 1
        elif i == len(ta):
            j += 1
        else:
            ai, bj = ta[i], tb[j]
            i, j = i + (ai <= bj), j + (bj <= ai)
    return steps
