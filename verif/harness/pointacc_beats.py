"""Key, query and pair beats of the mapping unit (``pyhdl/pointacc/streams.py``) as arrays for case
files and as payload integers for the cocotb drivers.

A list of beats travels in a case as arrays: ``keys`` and ``idx`` of shape ``(n_beats, width)``,
``keep`` and ``last`` of shape ``(n_beats,)``. Lanes outside ``keep`` hold random don't-care
values when an ``rng`` is given, so a block that looked at them would be caught.
"""

import numpy as np

from pyhdl.pointacc.streams import key_beat_layout, pair_beat_layout, query_beat_layout
from runtime.payload import pack, unpack
from verif.golden.pointacc import beats


def beat_arrays(elems, width, *, key_bits, index_bits, rng=None, prefix=""):
    """A list of ``(key, idx)`` elements as stream beats (full beats, last one 0..width)."""
    bs = beats(elems, width)
    keys = np.zeros((len(bs), width), dtype=np.int64)
    idx = np.zeros((len(bs), width), dtype=np.int64)
    if rng is not None:
        keys[:] = rng.integers(0, 1 << key_bits, keys.shape, dtype=np.int64)
        idx[:] = rng.integers(0, 1 << index_bits, idx.shape, dtype=np.int64)
    keep = np.zeros(len(bs), dtype=np.int64)
    last = np.zeros(len(bs), dtype=np.int64)
    for n, (lanes, k, lst) in enumerate(bs):
        for i, (key, ix) in enumerate(lanes):
            keys[n, i], idx[n, i] = key, ix
        keep[n], last[n] = k, lst
    return {f"{prefix}keys": keys, f"{prefix}idx": idx, f"{prefix}keep": keep, f"{prefix}last": last}


def concat(parts, prefix=""):
    """Concatenate the beat arrays of several lists (one stream carrying them one after another)."""
    names = [f"{prefix}{n}" for n in ("keys", "idx", "keep", "last")]
    return {n: np.concatenate([p[n] for p in parts]) for n in names}


def key_beat_ints(case, width, key_bits, index_bits, prefix="", offsets=None, coord_bits=None):
    """Payload integers of the beats stored in ``case`` (query beats when ``offsets`` is given:
    one ``(x, y, z)`` row per beat)."""
    value = {"lanes": {"key": case[f"{prefix}keys"], "idx": case[f"{prefix}idx"]},
             "keep": case[f"{prefix}keep"], "last": case[f"{prefix}last"]}
    if offsets is None:
        return pack(key_beat_layout(width, key_bits, index_bits), value)
    offsets = np.asarray(offsets)
    value["offset"] = {c: offsets[:, k] for k, c in enumerate("xyz")}
    return pack(query_beat_layout(width, key_bits, index_bits, coord_bits), value)


def read_key_beat(value, width, key_bits, index_bits):
    """``(elements of the kept lanes, keep, last)`` of a key-beat payload integer."""
    return _read_beat(unpack(key_beat_layout(width, key_bits, index_bits), value), width, "key", "idx")


def read_pair_beat(value, width, index_bits):
    """``(pairs of the kept lanes, keep, last)`` of a pair-beat payload integer."""
    return _read_beat(unpack(pair_beat_layout(width, index_bits), value), width, "in_idx", "out_idx")


def _read_beat(v, width, first, second):
    lanes = v["lanes"]
    elems = [(lanes[first][i], lanes[second][i]) for i in range(width) if v["keep"] >> i & 1]
    return elems, v["keep"], v["last"]


def split_lists(received, width, reader):
    """Group received beats into lists at each ``last``; check every ``keep`` is a prefix.
    Returns ``[(elements, n_beats, [(cycle, keep), ...]), ...]``."""
    lists, cur, info = [], [], []
    for cycle, value in received:
        elems, keep, last = reader(value)
        assert keep & (keep + 1) == 0, f"keep {keep:#x} is not a prefix of lanes"
        cur += elems
        info.append((cycle, keep))
        if last:
            lists.append((cur, info))
            cur, info = [], []
    assert not cur and not info, f"{len(info)} beats after the last 'last'"
    return lists
