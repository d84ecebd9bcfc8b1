"""Exact cycle model of the PointAcc mapping unit (``pyhdl/pointacc/mapping_unit.py``).

The unit runs its phases one after another; each begins on the edge that ends the one before (the
edge sampling ``start``, for the first) and ends with the edge on which its block's last output
beat is taken. A phase's first input beat is taken ``phase_latency`` cycles after it begins (a
launch register and the run reader), and from then on its reader offers a beat every cycle, so
the phase takes ``phase_latency`` plus the block's own time for its stream:

- sort: the ``B = ceil(P / width)`` coordinate words through key packing and the bitonic sorter,
  neither ever stalled: ``B - 1 + sort_latency``;
- merge pass ``p`` (while the runs of ``2**p`` beats are more than one): the runs in pairs
  ``(2j, 2j + 1)`` (an empty list when ``2j + 1`` is past the end) through the merger:
  ``merge_cycles(jobs)``, the merger's own cycle model;
- the duplicate check: ``check_latency`` cycles from the sorted list's last beat written to the
  next phase (or the end of the run, when the list holds a duplicate key);
- downsample (stride 2 only, unless the sorted list holds a duplicate key): the sorted list of
  parity-last keys through the downsampler: ``downsample_cycles(keys)``, its model, from the first
  beat taken to the last output beat written;
- intersect (unless the sorted list holds a duplicate key): one job per kernel offset, the sorted
  keys against the output keys (stride 1: the sorted keys) renumbered by rank, shifted by the
  offset: ``intersect_cycles(jobs, downsample)``, the intersection unit's model, and
  ``count_latency`` cycles more, in which the last pair beat is counted.

The blocks' times are not restated here: :class:`UnitTiming` takes them from the blocks'
own constants and cycle models (in this repository, ``verif/golden/pointacc.py`` and the
blocks' ``latency`` attributes), so the model follows a re-pipelined block unchanged.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sw.pointcloud.keys import KeyFormat


@dataclass(frozen=True)
class UnitTiming:
    """Timing of the unit's parts.

    ``merge_cycles(jobs)``: cycles of the merger from the first input beat taken to the last
    merged beat, for ``jobs`` (pairs of sorted ``(key, idx)`` lists) streamed back to back without
    back-pressure. ``intersect_cycles(jobs, downsample)``: likewise for the intersection unit,
    ``jobs`` of ``(inputs, outputs, offset)`` with sorted ``(key, idx)`` lists (keys unwidened;
    parity-last with ``downsample``) and the output keys' offset ``(dx, dy, dz)``, up to the last
    pair beat. ``downsample_cycles(keys)``: the downsampler's, for one sorted list of parity-last
    keys, up to its last output beat."""

    width: int
    phase_latency: int          # phase begins -> its first beat taken (MappingUnit.PHASE_LATENCY)
    sort_latency: int           # coordinate beat taken -> its sorted beat written (KeyPack + BitonicSorter)
    check_latency: int          # the sorted list's last beat written -> the next phase (MappingUnit.CHECK_LATENCY)
    count_latency: int          # the last pair beat taken -> the run's last cycle (MappingUnit.COUNT_LATENCY)
    merge_cycles: Callable
    intersect_cycles: Callable
    downsample_cycles: Callable | None = None


@dataclass(frozen=True)
class UnitCycles:
    """Cycles of one run: per phase, and in all (the unit's ``CYCLES`` and ``SORT_CYCLES``)."""

    sort: int
    merge_passes: list = field(default_factory=list)
    intersect: int = 0
    duplicate: bool = False
    check: int = 0              # the duplicate check after the last pass, counted in SORT_CYCLES
    downsample: int = 0         # the downsample pass (stride 2), counted in SORT_CYCLES
    n_out: int = 0              # output points

    @property
    def sort_total(self) -> int:
        return self.sort + sum(self.merge_passes) + self.check + self.downsample

    @property
    def total(self) -> int:
        return self.sort_total + self.intersect


def unit_cycles(keys, offsets, timing: UnitTiming, downsample: bool = False) -> UnitCycles:
    """The cycles of the mapping unit over the points with ``keys`` (int, one per row, rows in
    load order; parity-last keys, ``KeyFormat.down``, for a ``downsample`` run at stride 2) for
    the kernel ``offsets`` (``(K, 3)``)."""
    w = timing.width
    elems = [(int(k), i) for i, k in enumerate(np.asarray(keys, dtype=np.int64).tolist())]
    n = len(elems)
    if n == 0:
        return UnitCycles(sort=0)
    beats = -(-n // w)
    sort = timing.phase_latency + beats - 1 + timing.sort_latency
    runs = [sorted(elems[i:i + w]) for i in range(0, n, w)]
    passes = []
    while len(runs) > 1:
        jobs = [(runs[i], runs[i + 1] if i + 1 < len(runs) else []) for i in range(0, len(runs), 2)]
        passes.append(timing.phase_latency + timing.merge_cycles(jobs))
        runs = [sorted(a + b) for a, b in jobs]
    ordered = runs[0]
    if any(x[0] == y[0] for x, y in zip(ordered, ordered[1:], strict=False)):
        return UnitCycles(sort=sort, merge_passes=passes, check=timing.check_latency, duplicate=True)
    down = 0
    if downsample:
        outputs = np.unique(KeyFormat.quantise([k for k, _ in ordered])).tolist()
        down = timing.phase_latency + timing.downsample_cycles([k for k, _ in ordered])
    else:
        outputs = [k for k, _ in ordered]
    ranked = [(k, r) for r, k in enumerate(outputs)]
    jobs = [(ordered, ranked, tuple(int(x) for x in d)) for d in np.asarray(offsets).tolist()]
    return UnitCycles(sort=sort, merge_passes=passes, check=timing.check_latency, downsample=down, n_out=len(outputs),
                      intersect=timing.phase_latency + timing.intersect_cycles(jobs, downsample) + timing.count_latency)
