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


def encode_down(b, x, y, z, coord_bits, batch_bits):
    """The parity-last key of a point (stride-2 runs): ``batch | fx >> 1 | fy >> 1 | fz >> 1 |
    fx & 1 | fy & 1 | fz & 1`` from high to low, ``f`` the biased coordinates."""
    bias = 1 << (coord_bits - 1)
    f = [v + bias for v in (x, y, z)]
    encode(b, x, y, z, coord_bits, batch_bits)          # range checks
    key = b
    for v in f:
        key = key << (coord_bits - 1) | v >> 1
    for v in f:
        key = key << 1 | v & 1
    return key


def decode_down(key, coord_bits):
    """``(batch, x >> 1, y >> 1, z >> 1, x & 1, y & 1, z & 1)`` of a parity-last key (floors, from
    the biased fields, so the tuple orders like the key)."""
    c = coord_bits - 1
    mask = (1 << c) - 1
    halves = [(key >> (3 + s)) & mask for s in (2 * c, c, 0)]
    bits = [(key >> s) & 1 for s in (2, 1, 0)]
    return (key >> (3 * c + 3), *halves, *bits)


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


def merge_cycles(jobs, width, depth=5, latency=None, entry=2):
    """Cycles the FLiMS merger (``pyhdl/pointacc/merger.py``) takes for ``jobs``, pairs of sorted
    lists ``(a, b)`` streamed back to back on its two inputs with no back-pressure: from the
    first beat accepted to the last merged beat. A cycle model of its queues, written from its
    docstring: lane ``p`` of a beat joins queue ``p`` of its side in the lowest free slot from
    ``entry`` up (a queue shifts, slot ``k`` taking slot ``k + 1``, when its head is empty or
    pops); an input is ready while every queue of
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
        first = [[next((x for x in sl[1:entry + 1] if x is not None), None) for sl in slots[s]] for s in (0, 1)]
        step = all(vis[s][p] or ahead[s] > 0 and (sl[0] is not None or first[s][p] is None or first[s][p][1] != cur)
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
                    sl[sl.index(None, entry)] = (bt[0][p], tag)
            if bt is not None:
                nxt[s] += 1
                ahead[s] += bt[2]
            ahead[s] -= final
        cur ^= final
        cycle += 1
    return last_out


# ---------------------------------------------------------------- intersection

def _point(key, coord_bits, downsample, offset=(0, 0, 0)):
    """The tuple a key orders by, shifted by ``offset``: ``(b, x, y, z) + d``; for parity-last keys
    of stride-2 runs ``(b, x >> 1, y >> 1, z >> 1, x & 1, y & 1, z & 1)`` of the point ``d`` away
    from an even output point (halves move by ``d >> 1``, parities become ``d & 1``)."""
    if not downsample:
        b, x, y, z = decode(key, coord_bits)
        return b, x + offset[0], y + offset[1], z + offset[2]
    b, hx, hy, hz, px, py, pz = decode_down(key, coord_bits)
    return (b, hx + (offset[0] >> 1), hy + (offset[1] >> 1), hz + (offset[2] >> 1),
            px ^ (offset[0] & 1), py ^ (offset[1] & 1), pz ^ (offset[2] & 1))


def intersect(inputs, outputs, offset, coord_bits, downsample=False):
    """Pairs ``(in_idx, out_idx)`` with ``coords(in) == coords(out) + offset``, by a merge join
    over the two sorted lists (``inputs`` and ``outputs`` sorted by key, keys unique in each);
    ``downsample``: parity-last keys, the outputs' quantised (even points)."""
    a = [(_point(k, coord_bits, downsample), i) for k, i in inputs]
    b = [(_point(k, coord_bits, downsample, offset), o) for k, o in outputs]
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


def intersect_steps(inputs, outputs, offset, coord_bits, width, downsample=False):
    """Steps of the block intersection: each step retires the beat whose highest lane ranks lower
    (both on a tie; an empty lane ranks above any point); a finished side lets the other drain."""

    def tops(elems, shift):
        out = []
        for lanes, _, _ in beats(elems, width):
            out.append((INF,) if len(lanes) < width else _point(lanes[-1][0], coord_bits, downsample, shift))
        return out

    ta, tb = tops(inputs, (0, 0, 0)), tops(outputs, tuple(offset))
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


# ---------------------------------------------------------------- stride-2 output points

def downsample(keys):
    """The stride-2 output points of a sorted list of parity-last keys: each key with its three
    parity bits cleared, each distinct one once, in order, numbered by rank: ``[(key, rank)]``."""
    out = []
    for k in keys:
        q = k & ~7
        if not out or out[-1][0] != q:
            out.append((q, len(out)))
    return out


def downsample_beat_times(keys, width, latency=2):
    """When each output beat of the downsampler leaves, relative to the cycle its first input beat
    is taken, input beats back to back and no back-pressure: the outputs queue behind each other
    and a beat leaves ``latency`` cycles after the input beat that completes it, the list's rest
    with its last beat (one cycle later when it takes a second beat: that beat holds up the first
    beat of a list that follows, so all of that list leaves a cycle later)."""
    times, left, prev = [], 0, None
    n_beats = max(1, -(-len(keys) // width))
    for j in range(n_beats):
        lanes = keys[j * width:(j + 1) * width]
        alive = 0
        for k in lanes:
            alive += prev is None or (k & ~7) != prev
            prev = k & ~7
        total = left + alive
        last = j == n_beats - 1
        if total >= width:
            times.append(j + latency)
            left = total - width
            if last and left:
                times.append(j + latency + 1)
        elif last:
            times.append(j + latency)
        else:
            left = total
    return times
