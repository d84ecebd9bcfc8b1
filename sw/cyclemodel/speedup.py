"""Where EIE's speedup comes from: cycles of one layer with and without each kind of sparsity
(docs/spec.md §3.6, "Speedup breakdown"), all from the exact cycle model
:func:`sw.cyclemodel.eie.array_timing`.

The four schedules run the same layer ``W`` (``rows × cols``) on the same ``n_pe`` PEs of the
same array (rows interleaved over the PEs, docs/spec.md §2.1; one stored entry per cycle per PE;
activations broadcast by the LNZD scanner, ``queue_depth``, ``lnzd_width``); they differ only in
what each PE stores and which activations are broadcast:

- ``dense`` (a): every weight and every activation. PE ``k`` stores all of its
  ``rows_k = len(range(k, rows, n_pe))`` rows densely, one entry per weight, pruned ones
  included, and every column ``0 .. cols - 1`` is broadcast, zero or not: each PE does
  ``rows_k × cols`` MACs.
- ``weight_sparse`` (b): weight sparsity only. The packed sparse matrix (its stored entries,
  padding included, docs/spec.md §2), but every column is broadcast as if its activation were
  nonzero.
- ``act_sparse`` (c): activation sparsity only. The dense storage of (a), but only the columns of
  nonzero activations are broadcast.
- ``both`` (d): the real EIE, what the array RTL does: the packed matrix and only the nonzero
  activations (``layer_work(packed, x)``).

Each is ``array_timing(entries, cols, n_cols, ...).cycles`` with ``entries[k, i]`` the entries PE
``k`` stores for the ``i``-th broadcast column: ``rows_k`` in (a) and (c), the packed column's in
(b) and (d). So every schedule pays the same pipeline latencies (scanner start, queue, pointer
read, MAC and write-back), the same one-cycle cost of a column a PE holds nothing of, and the same
broadcast stalls when one PE falls ``queue_depth`` activations behind. Speedup of a schedule =
``dense`` cycles / its cycles.

A packed column never holds more entries than the PE has rows (each entry, padding included,
stands on a row of its own), and the cycle model is monotone in the entries and in the set of
broadcast columns, so ``both <= weight_sparse <= dense`` and ``both <= act_sparse <= dense``.
"""

from dataclasses import dataclass

import numpy as np

from sw.cyclemodel.eie import array_timing, layer_work
from sw.formats import QUEUE_DEPTH

LNZD_WIDTH = 8          # the array's default (docs/spec.md §3.1)
SCHEDULES = ("dense", "weight_sparse", "act_sparse", "both")


@dataclass(frozen=True)
class Breakdown:
    """Cycles of one layer (or of a network: summed) under the four :data:`SCHEDULES`."""

    name: str
    rows: int
    cols: int
    n_pe: int
    weights: int            # rows · cols
    nonzero_weights: int    # nonzero weights (padding excluded)
    entries: int            # stored entries over all PEs, padding included
    acts: int               # input activations (cols; a network's: summed over its layers)
    nonzero_acts: int       # of which nonzero
    cycles: dict            # schedule -> cycles

    @property
    def weight_density(self) -> float:
        return self.nonzero_weights / self.weights if self.weights else 0.0

    @property
    def act_density(self) -> float:
        return self.nonzero_acts / self.acts if self.acts else 0.0

    @property
    def speedup(self) -> dict:
        """Schedule -> ``dense`` cycles / its cycles."""
        return {s: self.cycles["dense"] / c for s, c in self.cycles.items()}

    def to_dict(self) -> dict:
        return {"name": self.name, "rows": self.rows, "cols": self.cols, "n_pe": self.n_pe,
                "weights": self.weights, "nonzero_weights": self.nonzero_weights, "entries": self.entries,
                "acts": self.acts, "nonzero_acts": self.nonzero_acts, "weight_density": self.weight_density,
                "act_density": self.act_density, "cycles": dict(self.cycles), "speedup": self.speedup}


def rows_per_pe(rows: int, n_pe: int) -> np.ndarray:
    """Real rows of each PE under docs/spec.md §2.1's interleaving: ``len(range(k, rows, n_pe))``."""
    k = np.arange(n_pe, dtype=np.int64)
    return np.maximum(0, (rows - k + n_pe - 1) // n_pe)


def schedule_work(packed, x, schedule: str):
    """``(entries (n_pe, n), act_cols (n,))`` that :func:`array_timing` runs for ``schedule``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")
    x = np.asarray(x)
    if x.ndim != 1 or x.shape[0] != packed.cols:
        raise ValueError(f"x must be a vector of the layer's {packed.cols} inputs, got shape {x.shape}")
    every = np.ones(packed.cols, dtype=np.int64)
    active = x if schedule in ("act_sparse", "both") else every
    if schedule in ("weight_sparse", "both"):
        return layer_work(packed, active)
    cols = np.flatnonzero(active)
    dense = rows_per_pe(packed.rows, packed.n_pe)
    return np.repeat(dense[:, None], cols.size, axis=1), cols


def layer_breakdown(packed, x, *, queue_depth: int = QUEUE_DEPTH, lnzd_width: int = LNZD_WIDTH,
                    name: str = "") -> Breakdown:
    """Cycles of the packed layer ``packed`` (``sw.pack.pack_eie``) on input ``x`` (``cols``
    activations; only which are nonzero matters) under the four :data:`SCHEDULES`."""
    cycles = {}
    for s in SCHEDULES:
        entries, cols = schedule_work(packed, x, s)
        cycles[s] = int(array_timing(entries, cols, packed.cols, queue_depth=queue_depth,
                                     lnzd_width=lnzd_width).cycles)
    nonzero = sum(int(np.count_nonzero(pe.weight_idx)) for pe in packed.pe)
    return Breakdown(name, int(packed.rows), int(packed.cols), int(packed.n_pe), int(packed.rows * packed.cols),
                     nonzero, int(packed.n_entries), int(packed.cols), int(np.count_nonzero(np.asarray(x))), cycles)


def total(breakdowns, name: str = "total") -> Breakdown:
    """A network's breakdown: the layers run one after another, so cycles and counts add up
    (``rows``: the last layer's outputs, ``cols``: the first layer's inputs, ``acts``: all the
    layers' inputs)."""
    b = list(breakdowns)
    if not b:
        raise ValueError("no layers to add up")
    return Breakdown(name, b[-1].rows, b[0].cols, b[0].n_pe, sum(x.weights for x in b),
                     sum(x.nonzero_weights for x in b), sum(x.entries for x in b), sum(x.acts for x in b),
                     sum(x.nonzero_acts for x in b), {s: sum(x.cycles[s] for x in b) for s in SCHEDULES})


def network_breakdown(net, a, n_pe: int, *, queue_depth: int = QUEUE_DEPTH, lnzd_width: int = LNZD_WIDTH):
    """Per layer of an integer network (``sw.prune.export.IntegerNetwork``) on one quantised input
    ``a`` (``net.quantize_input(x)[0]``): each layer packed for ``n_pe`` PEs and fed the previous
    layer's integer outputs. Returns ``(layers, total)``."""
    from sw.pack.eie import pack_eie

    inputs = net.activations(np.asarray(a, dtype=np.int64))[:-1]
    out = [layer_breakdown(pack_eie(ly.index, n_pe), x, queue_depth=queue_depth, lnzd_width=lnzd_width, name=ly.name)
           for ly, x in zip(net.layers, inputs, strict=True)]
    return out, total(out)
