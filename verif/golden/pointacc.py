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


def merge_cycles(jobs, width, depth=4, latency=None):
    """Cycles the FLiMS merger (``pyhdl/pointacc/merger.py``) takes for ``jobs``, pairs of sorted
    lists ``(a, b)`` streamed back to back on its two inputs with no back-pressure: from the
    first beat accepted to the last merged beat. A cycle model of its queues, written from its
    docstring: lane ``p`` of a beat joins queue ``p`` of its side in the lowest free slot from 1
    up (slot 0 is filled from slot 1, one cycle later); an input is ready while every queue of
    its side has its last slot free and it is at most one list ahead; a step needs every head of
    the current pair present, or its list finished and no element of it on the way to the head
    of that queue; it pairs head ``p`` of ``a`` with head
    ``width - 1 - p`` of ``b`` and pops the smaller of each pair (ties to ``a``); the step that
    leaves nothing of the current pair in the queues is its last; a step's beat leaves ``latency`` cycles
    later (default ``1 + 2 log2(width)``)."""
    if latency is None:
        latency = 1 + 2 * (width.bit_length() - 1)
    streams = [[bt for job in jobs for bt in beats(job[s], width)] for s in (0, 1)]
    nxt = [0, 0]                                   # next beat of each input
    ahead = [0, 0]
    slots = [[[None] * depth for _ in range(width)] for _ in (0, 1)]   # (element, generation)
    cur, cycle, done, last_out = 0, 0, 0, None
    while done < len(jobs):
        vis = [[sl[0] is not None and sl[0][1] == cur for sl in slots[s]] for s in (0, 1)]
        ready = [ahead[s] < 2 and all(sl[depth - 1] is None for sl in slots[s]) and nxt[s] < len(streams[s])
                 for s in (0, 1)]
        # A lane of a finished list is available unless an element of it is still on its way to slot 0.
        step = all(vis[s][p] or ahead[s] > 0 and (sl[0] is not None or sl[1] is None or sl[1][1] != cur)
                   for s in (0, 1) for p, sl in enumerate(slots[s]))
        pops = [[False] * width for _ in (0, 1)]
        final = False
        if step:
            for p in range(width):
                qb = width - 1 - p
                va, vb = vis[0][p], vis[1][qb]
                a_wins = va and (not vb or slots[0][p][0][0] <= slots[1][qb][0][0]) or not (va or vb)
                pops[0][p], pops[1][qb] = a_wins and va, not a_wins and vb
            final = ahead[0] > 0 and ahead[1] > 0 and not any(
                x is not None and x[1] == cur for s in (0, 1) for p, sl in enumerate(slots[s])
                for x in sl[pops[s][p]:])
            if final:
                last_out, done = cycle + latency, done + 1
        for s in (0, 1):
            tag = cur ^ (ahead[s] > 0)
            bt = streams[s][nxt[s]] if ready[s] else None
            for p, sl in enumerate(slots[s]):
                if sl[0] is None or pops[s][p]:
                    sl[:] = sl[1:] + [None]
                if bt is not None and p < len(bt[0]):
                    sl[sl.index(None, 1)] = (bt[0][p], tag)
            if bt is not None:
                nxt[s] += 1
                ahead[s] += bt[2]
            ahead[s] -= final
        cur ^= final
        cycle += 1
    return last_out


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
