"""A vectorised open-addressing hash table from integer coordinate rows to row indices.

The hash-join kernel-map builder uses it the way GPU libraries (TorchSparse, MinkowskiEngine)
use theirs: insert the input coordinates once, then look up every output coordinate shifted by
every offset. It works on whole coordinate rows and shares nothing with the sortable keys of
``sw.pointcloud.keys``, so the two map builders check each other.

Linear probing; inserts and lookups run as NumPy rounds over all pending rows at once (round
``r`` looks at slot ``hash + r``), so the Python loop runs once per probe distance, not per row.
"""

import numpy as np

_MULTS = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93],
                  dtype=np.uint64)
_EMPTY = -1


def _hash(rows: np.ndarray) -> np.ndarray:
    """64-bit mix of each int64 row (splitmix-style multiply / xor-shift per column)."""
    h = np.zeros(rows.shape[0], dtype=np.uint64)
    u = rows.astype(np.uint64)
    for j in range(rows.shape[1]):
        h ^= u[:, j] * _MULTS[j % len(_MULTS)]
        h ^= h >> np.uint64(29)
        h *= _MULTS[(j + 1) % len(_MULTS)]
    h ^= h >> np.uint64(32)
    return h


class CoordHashTable:
    """Maps unique int64 rows of shape ``(N, D)`` to their row numbers ``0 .. N-1``.

    ``load`` is the largest fill fraction (the table has the next power of two >= ``N / load``
    slots). Raises ``ValueError`` if two rows are equal.
    """

    def __init__(self, rows, *, load: float = 0.5):
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if rows.ndim != 2:
            raise ValueError(f"rows must be 2-D, got shape {rows.shape}")
        n = rows.shape[0]
        self.n_slots = 1 << max(4, int(np.ceil(np.log2(max(n, 1) / load))))
        self.mask = np.uint64(self.n_slots - 1)
        self.keys = np.zeros((self.n_slots, rows.shape[1]), dtype=np.int64)
        self.values = np.full(self.n_slots, _EMPTY, dtype=np.int64)
        self.max_probe = 0
        home = _hash(rows) & self.mask
        pending = np.arange(n, dtype=np.int64)
        r = 0
        while pending.size:
            slot = ((home[pending] + np.uint64(r)) & self.mask).astype(np.int64)
            occupant = self.values[slot]
            free = occupant == _EMPTY
            # Several pending rows may reach the same free slot: the lowest row number takes it.
            slots, first = np.unique(slot[free], return_index=True)
            winners = pending[free][first]
            self.values[slots] = winners
            self.keys[slots] = rows[winners]
            placed = np.zeros(pending.size, dtype=bool)
            placed[np.flatnonzero(free)[first]] = True
            # Equal rows hash alike and probe together: one finds the other in its slot.
            rest = ~placed
            same = np.all(self.keys[slot[rest]] == rows[pending[rest]], axis=1)
            if np.any(same):
                a, b = int(self.values[slot[rest][same][0]]), int(pending[rest][same][0])
                raise ValueError(f"duplicate rows {min(a, b)} and {max(a, b)}: {rows[a].tolist()}")
            pending = pending[rest]
            self.max_probe = r
            r += 1

    def lookup(self, queries) -> np.ndarray:
        """Row number of each query row in the table, or -1 where it is absent."""
        q = np.ascontiguousarray(queries, dtype=np.int64)
        out = np.full(q.shape[0], _EMPTY, dtype=np.int64)
        home = _hash(q) & self.mask
        pending = np.arange(q.shape[0], dtype=np.int64)
        # No row sits further than max_probe from its home slot.
        for r in range(self.max_probe + 1):
            if not pending.size:
                break
            slot = ((home[pending] + np.uint64(r)) & self.mask).astype(np.int64)
            v = self.values[slot]
            occupied = v != _EMPTY
            hit = occupied & np.all(self.keys[slot] == q[pending], axis=1)
            out[pending[hit]] = v[hit]
            pending = pending[occupied & ~hit]
        return out
