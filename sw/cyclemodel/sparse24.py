"""Cycle counts of the 2:4 sparse MAC and its dense baseline (``pyhdl/sparse24``, docs/spec.md §4.3).

Both units take one beat per cycle and emit a row's result ``MAC_LATENCY`` cycles after its last
beat; the feeder replays the input vector for every row, so ``n`` vectors through a
``rows × K`` layer stream back to back as ``n · rows`` rows of ``ceil(K / per_beat)`` beats
(``K`` padded with zero columns to whole beats). ``runtime/sparse24.py`` checks the RTL against
these counts cycle for cycle, and ``verif/tests/test_sparse24_mac.py`` pins ``MAC_LATENCY`` to the
classes' ``LATENCY``.
"""

import math

from sw.formats import GROUP_24, KEPT_24, MAC24_GROUPS

# Last beat accepted -> the row's result leaves: two multiplier stages, two adder-tree stages, the
# row accumulator (docs/pipelines.md); the same for SparseMAC and DenseMAC.
MAC_LATENCY = 5


def layer_cycles(n: int, rows: int, k: int, per_beat: int, latency: int = MAC_LATENCY) -> int:
    """docs/spec.md §4.3 without back-pressure: ``n · rows`` rows of ``ceil(K / per_beat)`` beats at
    one beat a cycle, plus the unit's latency."""
    return n * rows * math.ceil(k / per_beat) + latency


def sparse_cycles(rows: int, k: int, n: int = 1, groups: int = MAC24_GROUPS) -> int:
    """``SparseMAC(groups)``: ``4·groups`` weights of a row (``groups`` groups of 4) per beat."""
    return layer_cycles(n, rows, k, GROUP_24 * groups)


def dense_cycles(rows: int, k: int, n: int = 1, multipliers: int = KEPT_24 * MAC24_GROUPS) -> int:
    """``DenseMAC(multipliers)``: ``multipliers`` weights of a row per beat."""
    return layer_cycles(n, rows, k, multipliers)
