"""Sortable keys of voxel coordinates (docs/spec.md §5), defined once for the software, the golden models,
the RTL and its tests.

A key packs a batch index and three signed coordinates into one unsigned integer whose order is
the lexicographic order of ``(batch, x, y, z)``::

    key = batch << 3c | (x + B) << 2c | (y + B) << c | (z + B),   c = coord_bits, B = 2**(c - 1)

so each coordinate is *biased* (``-B .. B - 1`` becomes ``0 .. 2B - 1``: two's complement with
the sign bit inverted) and the batch index sits on top. Sorting keys therefore sorts points the
way ``np.unique(coords, axis=0)`` sorts ``(batch, x, y, z)`` rows.

Shifting a key by a kernel offset adds the offset to each field separately. A field that leaves
``0 .. 2B - 1`` does not wrap into its neighbour: the hardware compares *widened* keys (every
coordinate field two bits wider, see :meth:`KeyFormat.widen`) and the software drops such keys,
so a point at a coordinate limit never matches one at the opposite limit.
"""

from dataclasses import dataclass

import numpy as np

COORD_BITS = 16     # per axis: coordinates -32768 .. 32767
BATCH_BITS = 8      # batch indices 0 .. 255
INDEX_BITS = 20     # point indices the hardware carries with each key: up to 2**20 points a list
AXES = ("x", "y", "z")


def _check_bits(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


@dataclass(frozen=True)
class KeyFormat:
    """Key layout: ``coord_bits`` per axis, ``batch_bits`` of batch index (widened keys fit an int64)."""

    coord_bits: int = COORD_BITS
    batch_bits: int = BATCH_BITS

    def __post_init__(self):
        _check_bits("coord_bits", self.coord_bits, 2)
        _check_bits("batch_bits", self.batch_bits, 0)
        if self.wide_key_bits > 63:
            raise ValueError(f"batch_bits + 3 * coord_bits = {self.key_bits} is too wide: keys and their "
                             f"widened form (batch_bits + 3 * (coord_bits + 2) = {self.wide_key_bits}) "
                             "must fit an int64")

    # ---------------------------------------------------------------- ranges
    @property
    def key_bits(self) -> int:
        return self.batch_bits + 3 * self.coord_bits

    @property
    def bias(self) -> int:
        return 1 << (self.coord_bits - 1)

    @property
    def coord_min(self) -> int:
        return -self.bias

    @property
    def coord_max(self) -> int:
        return self.bias - 1

    @property
    def batch_max(self) -> int:
        return (1 << self.batch_bits) - 1

    @property
    def field_mask(self) -> int:
        return (1 << self.coord_bits) - 1

    @property
    def wide_field_bits(self) -> int:
        """Bits of one coordinate field of a widened key (see :meth:`widen`)."""
        return self.coord_bits + 2

    @property
    def wide_key_bits(self) -> int:
        return self.batch_bits + 3 * self.wide_field_bits

    # ---------------------------------------------------------------- checks
    def check(self, coords) -> np.ndarray:
        """``coords`` as an int64 ``(P, 4)`` array ``(batch, x, y, z)``; raises ``ValueError`` naming
        the first row outside the key range. ``(P, 3)`` input gets batch 0."""
        c = as_coords(coords)
        for col, axis in enumerate(AXES, start=1):
            bad = np.flatnonzero((c[:, col] < self.coord_min) | (c[:, col] > self.coord_max))
            if bad.size:
                r = int(bad[0])
                raise ValueError(f"coords row {r}: {axis} = {c[r, col]} is outside the key range "
                                 f"{self.coord_min} .. {self.coord_max} (coord_bits={self.coord_bits})")
        bad = np.flatnonzero((c[:, 0] < 0) | (c[:, 0] > self.batch_max))
        if bad.size:
            r = int(bad[0])
            raise ValueError(f"coords row {r}: batch index {c[r, 0]} is outside 0 .. {self.batch_max} "
                             f"(batch_bits={self.batch_bits})")
        return c

    # ---------------------------------------------------------------- packing
    def pack(self, coords) -> np.ndarray:
        """int64 keys of ``coords`` (``(P, 3)`` or ``(P, 4)`` with the batch index first)."""
        c = self.check(coords)
        cb = self.coord_bits
        key = c[:, 0] << (3 * cb)
        for col in (1, 2, 3):
            key = key | ((c[:, col] + self.bias) << ((3 - col) * cb))
        return key

    def fields(self, keys) -> np.ndarray:
        """Biased fields ``(batch, x + B, y + B, z + B)`` of int64 ``keys``, shape ``(P, 4)``."""
        k = np.asarray(keys, dtype=np.int64)
        cb = self.coord_bits
        return np.stack([k >> (3 * cb)] + [(k >> ((2 - a) * cb)) & self.field_mask for a in range(3)],
                        axis=-1)

    def unpack(self, keys) -> np.ndarray:
        """Inverse of :meth:`pack`: ``(P, 4)`` int64 coordinates ``(batch, x, y, z)``."""
        f = self.fields(keys)
        f[:, 1:] -= self.bias
        return f

    # ---------------------------------------------------------------- stride 2 (docs/spec.md §5.2)
    def down(self, keys) -> np.ndarray:
        """The *parity-last* keys of ``keys``: each coordinate field's lowest bit moved to the bottom,
        ``batch | fx >> 1 | fy >> 1 | fz >> 1 | fx & 1 | fy & 1 | fz & 1`` (high to low; ``f`` the
        biased fields). A bit permutation, so equal keys stay equal; its order is that of
        ``(b, floor(x/2), floor(y/2), floor(z/2), x & 1, y & 1, z & 1)``, so the points of one
        stride-2 output voxel are neighbours, and clearing the three low bits (:meth:`quantise`)
        gives the parity-last key of that voxel's output point."""
        f = self.fields(keys)
        c = self.coord_bits - 1
        return ((f[:, 0] << (3 * c + 3)) | ((f[:, 1] >> 1) << (2 * c + 3)) | ((f[:, 2] >> 1) << (c + 3))
                | ((f[:, 3] >> 1) << 3) | ((f[:, 1] & 1) << 2) | ((f[:, 2] & 1) << 1) | (f[:, 3] & 1))

    def up(self, keys) -> np.ndarray:
        """Inverse of :meth:`down`."""
        k = np.asarray(keys, dtype=np.int64)
        c = self.coord_bits - 1
        m = (1 << c) - 1
        fx = (((k >> (2 * c + 3)) & m) << 1) | ((k >> 2) & 1)
        fy = (((k >> (c + 3)) & m) << 1) | ((k >> 1) & 1)
        fz = (((k >> 3) & m) << 1) | (k & 1)
        cb = self.coord_bits
        return ((k >> (3 * c + 3)) << (3 * cb)) | (fx << (2 * cb)) | (fy << cb) | fz

    @staticmethod
    def quantise(down_keys) -> np.ndarray:
        """Parity-last keys with the parity bits cleared: the stride-2 output point
        ``(b, floor(x/2)·2, floor(y/2)·2, floor(z/2)·2)`` of each point."""
        return np.asarray(down_keys, dtype=np.int64) & ~7

    def widen_down(self, down_keys, offset=(0, 0, 0)) -> np.ndarray:
        """What the hardware compares in a stride-2 run: each halved field ``h = f >> 1`` becomes
        the ``coord_bits + 1``-bit value ``h + (d >> 1) + 2**(coord_bits - 1)`` and the parity bits
        are XORed with ``d & 1`` (batch on top, ``wide_key_bits`` in all). For a quantised output
        key ``q`` (parities 0) and an input key ``p``, ``widen_down(p) == widen_down(q, d)``
        exactly when ``point(p) == point(q) + d``; shifting quantised keys keeps their order."""
        k = np.asarray(down_keys, dtype=np.int64)
        d = np.asarray(offset, dtype=np.int64).reshape(3)
        if np.any(np.abs(d) > self.field_mask):
            raise ValueError(f"offset {tuple(d.tolist())} exceeds the coordinate range of coord_bits={self.coord_bits}")
        c = self.coord_bits - 1
        m = (1 << c) - 1
        out = (k >> (3 * c + 3)) << (3 * (c + 2) + 3)
        for a, lo in enumerate((2 * c + 3, c + 3, 3)):
            h = ((k >> lo) & m) + (d[a] >> 1) + (1 << c)
            out |= h << ((2 - a) * (c + 2) + 3)
        return out | ((k & 7) ^ ((d[0] & 1) << 2 | (d[1] & 1) << 1 | (d[2] & 1)))

    def shift(self, keys, offset):
        """Keys of the points ``offset = (dx, dy, dz)`` away from ``keys``, field by field.

        Returns ``(shifted, in_range)``: where a field would leave the key range, ``in_range`` is
        False (and ``shifted`` meaningless). Shifting keeps the order of the in-range keys.
        """
        f = self.fields(keys)
        d = np.asarray(offset, dtype=np.int64).reshape(3)
        f[:, 1:] += d
        ok = np.all((f[:, 1:] >= 0) & (f[:, 1:] <= self.field_mask), axis=1)
        cb = self.coord_bits
        shifted = (f[:, 0] << (3 * cb)) | (f[:, 1] << (2 * cb)) | (f[:, 2] << cb) | f[:, 3]
        return shifted, ok

    def widen(self, keys, offset=(0, 0, 0)) -> np.ndarray:
        """The widened key the hardware compares: each coordinate field ``f`` becomes the
        ``coord_bits + 2``-bit value ``f + d + 2**coord_bits`` (``d`` the offset of that axis,
        ``|d| < 2**coord_bits``), the batch index stays on top. Widened keys never wrap, order
        like the points, and are equal exactly when the (shifted) points are equal."""
        f = self.fields(keys)
        f[:, 1:] += 1 << self.coord_bits
        wb = self.wide_field_bits
        return ((f[:, 0] << (3 * wb)) | (f[:, 1] << (2 * wb)) | (f[:, 2] << wb) | f[:, 3]) + self.wide_delta(offset)

    def wide_delta(self, offset) -> np.ndarray:
        """What a widened key gains when its point moves by ``offset`` (``(3,)`` or ``(n, 3)``):
        ``widen(k, d) == widen(k) + wide_delta(d)``. No field carries into the next, since a
        shifted field ``f + d + 2**coord_bits`` stays inside its ``coord_bits + 2`` bits."""
        d = np.asarray(offset, dtype=np.int64)
        rows = d.reshape(-1, 3)
        bad = rows[np.any(np.abs(rows) > self.field_mask, axis=1)]
        if len(bad):
            raise ValueError(f"offset {tuple(bad[0].tolist())} exceeds the coordinate range of coord_bits="
                             f"{self.coord_bits}")
        wb = self.wide_field_bits
        return (d[..., 0] << (2 * wb)) + (d[..., 1] << wb) + d[..., 2]


def as_coords(coords) -> np.ndarray:
    """Validate the shape and dtype of a coordinate array; return it as int64 ``(P, 4)``.

    Raises ``ValueError`` for anything but an integer array of shape ``(P, 3)`` or ``(P, 4)``
    (floats are refused even when integral: a voxel grid is an integer grid).
    """
    a = np.asarray(coords)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.integer) or (a.size == 0 and a.ndim == 2)):
        raise ValueError(f"coords must be an integer array, got dtype {a.dtype}")
    if a.dtype == np.bool_:
        raise ValueError("coords must be an integer array, got dtype bool")
    if a.ndim != 2 or a.shape[1] not in (3, 4):
        raise ValueError(f"coords must have shape (P, 3) or (P, 4 with the batch index first), got {a.shape}")
    if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError("coords hold values beyond the int64 range")
    a = a.astype(np.int64)
    if a.shape[1] == 3:
        a = np.concatenate([np.zeros((a.shape[0], 1), dtype=np.int64), a], axis=1)
    return a
