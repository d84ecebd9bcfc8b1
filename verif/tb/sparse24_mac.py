"""Testbench of the 2:4 sparse MAC and its dense baseline (``pyhdl/sparse24``): case construction
with the golden model's results, on the runtime's driver (``runtime.sparse24``).

Cases carry weight matrices packed by ``sw.pack.pack_24`` as beats, activation matrices,
back-pressure settings and the golden model's int32 row results (docs/spec.md §4). The runtime's
cocotb test ``mac_rows`` streams them through the RTL and checks every row result bit-exactly,
the sticky metadata error and, without back-pressure, the cycle every beat enters and every
result leaves (``rows · K / (4·groups) + LATENCY`` cycles in all).
"""

import numpy as np

from runtime.sparse24 import GROUPS, MULTIPLIERS, dense_beats, make_case, run, sparse_beats, wrap32
from sw.formats import INT8_MAX, INT8_MIN
from sw.pack import mask_24, pack_24
from verif.golden import sparse24 as golden

# The scenarios (verif/tests/test_sparse24_mac.py) and the benchmark use the driver through this module.
__all__ = ["GROUPS", "MULTIPLIERS", "run", "wrap32", "sparse_case", "dense_case", "acts", "random_24"]


def _concat(parts):
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def sparse_case(name, blocks, *, groups=GROUPS, p_valid=1.0, p_ready=1.0, seed=0):
    """One case of ``blocks``: ``(W, X)`` pairs (2:4 ``W`` packed here) or ``(values, meta, X)``
    triples (raw packed form, metadata possibly invalid), streamed back to back."""
    parts, expected, bad, macs = [], [], False, 0
    for block in blocks:
        if len(block) == 2:
            W, X = block
            values, meta = pack_24(W)
            # The golden model's rows equal the dense product: the spec's packing loses nothing.
            rows = [golden.sparse_dot(v, mt, x) for v, mt, x in zip(values, meta, X, strict=True)]
            assert np.array_equal(wrap32((W.astype(np.int64) * X).sum(axis=1)), rows)
        else:
            values, meta, X = block
        expected += [golden.sparse_dot(v, mt, x) for v, mt, x in zip(values, meta, X, strict=True)]
        bad |= any((m & 3, m >> 2) not in golden.META_PATTERNS for m in np.ravel(meta).tolist())
        parts.append(sparse_beats(values, meta, X, groups))
        macs += X.size
    return make_case(name, "sparse", groups, _concat(parts), expected, p_valid=p_valid, p_ready=p_ready,
                     seed=seed, dense_macs=macs, exp_error=int(bad))


def dense_case(name, blocks, *, multipliers=MULTIPLIERS, p_valid=1.0, p_ready=1.0, seed=0):
    parts, expected, macs = [], [], 0
    for W, X in blocks:
        expected += [golden.dense_dot(w, x) for w, x in zip(W, X, strict=True)]
        parts.append(dense_beats(W, X, multipliers))
        macs += X.size
    return make_case(name, "dense", multipliers, _concat(parts), expected, p_valid=p_valid, p_ready=p_ready,
                     seed=seed, dense_macs=macs)


def acts(rng, rows, k):
    return rng.integers(INT8_MIN, INT8_MAX + 1, (rows, k))


def random_24(rng, rows, k, p_drop=0.0):
    """A random int8 2:4 matrix; ``p_drop`` zeroes kept weights too (groups with 0 or 1 nonzeros)."""
    W = rng.integers(INT8_MIN, INT8_MAX + 1, (rows, k))
    W = np.where(mask_24(rng.random((rows, k))), W, 0)
    return np.where(rng.random((rows, k)) < p_drop, 0, W)
