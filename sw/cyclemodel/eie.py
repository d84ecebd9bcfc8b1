"""Exact cycle model of the EIE processing element (``pyhdl/eie/processing_element.py``).

Cycle ``c`` is the clock period that ends with edge ``c``; a handshake "in cycle ``c``" takes
effect at the end of it. For activation ``i`` of the stream a PE receives (its column holding
``e_i`` stored entries, padding included):

- ``push_i``: accepted by the activation queue (depth ``D``). The queue is a first-word-fall-
  through FIFO that refuses a write while full, even in a cycle it is read:
  ``push_i = max(offer_i, push_{i-1} + 1, pop_{i-D} + 1)``.
- ``pop_i``: taken by the pointer read, a pipeline of ``POINTER_STAGES`` stages (input register,
  the banks' read and output registers, the ordered pointers, their difference, the span register) in which each
  stage holds one column and advances when the stage after it is free or advancing. Column ``i``
  enters stage ``k + 1`` in cycle ``s^{k+1}_i = max(s^k_i + 1, s^{k+2}_{i'})``, ``i'`` the
  previous column to pass that way, with ``s^1 = pop``,
  ``pop_i = max(push_i + 1, pop_{i-1} + 1, s^2_{i-1})`` and the last move being ``take``.
  A column out of range leaves stage 1 in cycle ``s^2_i`` and goes no further.
- ``take_i``: its span enters the sparse-matrix read, which issues one entry per cycle and is
  free again after ``max(e_i, 1)`` cycles: ``take_i = max(s^S_i + 1, take_{i'} + max(e_{i'}, 1))``,
  ``S = POINTER_STAGES``.
- entry ``p`` of column ``i`` is multiplied (a MAC issued) in cycle ``take_i + p + ISSUE_TO_MAC``
  and written back ``MAC_TO_WRITEBACK`` cycles later.

The PE is idle (queue empty, nothing in flight) outside the union of the intervals
``[push_i + 1, end_i]``, with ``end_i`` the write-back cycle of its last entry, ``take_i`` for an
empty column and ``s^2_i`` for a dropped one. The performance counters classify every cycle at
the sparse-matrix read: an entry issued (busy), an empty column taken (stalled), or neither
(starved).
"""

from dataclasses import dataclass

import numpy as np

# Pipeline distances of the RTL, in cycles (docs/pipelines.md).
QUEUE_LATENCY = 1      # push -> readable at the queue head
POINTER_STAGES = 6     # pointer read: input register, bank read and output registers, ordered
                       # pointers, their difference, span
POINTER_LATENCY = POINTER_STAGES   # pop -> span at the sparse-matrix read, when nothing waits
ISSUE_TO_MAC = 5       # sparse-matrix read issue -> read and output registers -> address
                       # accumulator (entry, row) -> weight decoder -> MAC (arithmetic unit accepts)
MAC_TO_WRITEBACK = 4   # multiplier input, pipeline and output registers, the sum register; the sum
                       # register writes the row


@dataclass(frozen=True)
class PETiming:
    push: np.ndarray
    pop: np.ndarray
    take: np.ndarray        # -1 for dropped columns
    entries: np.ndarray     # stored entries per activation (0 for dropped columns)
    end: np.ndarray         # last cycle the activation occupies the PE

    @property
    def macs(self) -> int:
        return int(self.entries.sum())

    def counters(self, run_start: int, run_end: int):
        """``(busy, starved, stalled)`` cycles over ``run_start .. run_end`` inclusive, as the
        PE counts them at its sparse-matrix read: busy, an entry issued (its MAC follows
        ``ISSUE_TO_MAC`` cycles later); stalled, an empty column consumed; starved, nothing to
        work on (queue and pointer stage empty)."""
        n = run_end - run_start + 1
        taken = self.take >= 0
        first = self.take[taken]
        last = first + self.entries[taken]                # issue cycles first .. last - 1
        busy = int(np.clip(np.minimum(last, run_end + 1) - np.maximum(first, run_start), 0, None).sum())
        empty = first[self.entries[taken] == 0]
        stalled = int(np.count_nonzero((empty >= run_start) & (empty <= run_end)))
        return busy, n - busy - stalled, stalled


def _through_pointer_stages(moved, free):
    """A column that entered pointer stage 2 in cycle ``moved[0]`` moves on through the later
    stages (each when the column ahead has left it) and is taken by the sparse-matrix read once it
    is free; updates ``moved`` and returns ``take``. Scalars (one PE) or arrays (one per PE)."""
    for k in range(1, POINTER_STAGES - 1):
        moved[k] = np.maximum(moved[k - 1] + 1, moved[k + 1])
    moved[-1] = np.maximum(moved[-2] + 1, free)
    return moved[-1]


def pe_timing(entries, queue_depth: int, offer=None, dropped=None, start: int = 0) -> PETiming:
    """Timing of one PE for a stream of activations.

    ``entries[i]``: stored entries of activation ``i``'s column; ``dropped[i]``: the column was
    out of range; ``offer[i]``: earliest cycle the activation is offered (default: every
    activation waits at the input from cycle ``start``, so each is offered the cycle after the
    previous one is accepted).
    """
    entries = np.asarray(entries, dtype=np.int64)
    n = entries.shape[0]
    dropped = np.zeros(n, dtype=bool) if dropped is None else np.asarray(dropped, dtype=bool)
    offer = np.full(n, start, dtype=np.int64) if offer is None else np.asarray(offer, dtype=np.int64)
    push, pop, take, end = (np.zeros(n, dtype=np.int64) for _ in range(4))
    take[:] = -1
    prev_push = start - 1
    # ``moved[k]``: the cycle in which the last column to pass that way entered pointer stage
    # ``k + 2`` (``moved[0]``: left stage 1, dropped columns included; the last is ``take``).
    moved = [start - 1] * POINTER_STAGES
    free = start                  # first cycle the sparse-matrix read can take a span
    for i in range(n):
        p = max(offer[i], prev_push + 1)
        if i >= queue_depth:
            p = max(p, pop[i - queue_depth] + 1)
        push[i] = prev_push = p
        pop[i] = max(p + QUEUE_LATENCY, moved[0], pop[i - 1] + 1 if i else start)
        moved[0] = max(pop[i] + 1, moved[1])
        if dropped[i]:
            end[i] = moved[0]
            continue
        take[i] = _through_pointer_stages(moved, free)
        e = entries[i]
        free = take[i] + max(e, 1)
        end[i] = take[i] + e - 1 + ISSUE_TO_MAC + MAC_TO_WRITEBACK if e else take[i]
    return PETiming(push, pop, take, np.where(dropped, 0, entries), end)


# Activation scanner (``pyhdl/eie/activation_scanner.py``).
FIRST_WINDOW = 5       # `start` -> word 0 in the LNZD window (buffer read and output registers, the fetched FIFO)

# The array's broadcast and reduction networks (``pyhdl/eie/array.py``).
BROADCAST_LATENCY = 2  # fire -> pushed into the queues: broadcast register, group register
STOP_LATENCY = 2       # queue level -> the broadcast's stop: per-PE register, group register
DONE_LATENCY = 2       # scanner done, broadcast empty, PEs idle -> layer done: same two registers
QUEUE_SLACK = BROADCAST_LATENCY + STOP_LATENCY   # queue entries beyond the stop threshold


@dataclass(frozen=True)
class ArrayTiming:
    """Timing of one layer on the array; cycle numbers relative to the ``start`` cycle (0)."""

    emit: np.ndarray          # LNZD emission cycle of every nonzero activation
    fire: np.ndarray          # broadcast cycle (leaves the scanner for every queue)
    pe: tuple                 # PETiming per PE (``push`` = fire + BROADCAST_LATENCY)
    done: int                 # last running cycle; the layer takes ``cycles`` = done cycles
    bcast_stalls: int

    @property
    def cycles(self) -> int:
        return self.done

    def counters(self):
        """Per PE ``(busy, starved, stalled)`` over the running cycles ``1 .. done``."""
        return [t.counters(1, self.done) for t in self.pe]


def array_timing(entries, act_cols, n_cols: int, *, queue_depth: int, lnzd_width: int) -> ArrayTiming:
    """Exact timing of the EIE array for one layer.

    ``entries``: ``(n_pe, n_acts)`` stored entries of each nonzero activation's column in each
    PE; ``act_cols``: the nonzero activations' columns, increasing. The recurrences of
    :func:`pe_timing` run in every PE, fed by the broadcast. The window scans one word of
    ``lnzd_width`` activations per cycle and one nonzero per cycle: activation ``i`` leaves the
    LNZD window in cycle ``emit_i = max(window_i, fire_{i-1})``, the window reaching the word of
    activation ``i`` one cycle after the previous nonzero plus one cycle per zero word in between.
    It leaves the scanner (fires) in the first cycle ``f > emit_i`` in which the broadcast is not
    stopped, and reaches every queue in cycle ``push_i = f + BROADCAST_LATENCY``. The stop seen in
    cycle ``f`` is "some queue held ``queue_depth`` or more activations in cycle
    ``f - STOP_LATENCY``": with ``P(f)`` the activations pushed before that cycle, it is lifted once
    activation ``P(f) - queue_depth`` has left every queue, so
    ``f > max_k pop^k_{P(f) - D} + STOP_LATENCY``. Each queue holds ``queue_depth + QUEUE_SLACK``
    entries, so a fired activation always finds room (checked here).
    """
    entries = np.asarray(entries, dtype=np.int64)
    cols = np.asarray(act_cols, dtype=np.int64)
    n_pe, n = entries.shape
    D = queue_depth
    n_words = -(-n_cols // lnzd_width)
    words = cols // lnzd_width
    emit = np.zeros(n, dtype=np.int64)
    fire = np.zeros(n, dtype=np.int64)
    last_pop = np.zeros(n, dtype=np.int64)       # max over PEs of each activation's pop
    pop = np.zeros((n_pe, n), dtype=np.int64)
    take = np.zeros((n_pe, n), dtype=np.int64)
    end = np.zeros((n_pe, n), dtype=np.int64)
    free = np.full(n_pe, -1, dtype=np.int64)
    moved = [np.full(n_pe, -1, dtype=np.int64) for _ in range(POINTER_STAGES)]
    for i in range(n):
        if i == 0:
            window = FIRST_WINDOW + words[0]
            e = window
        else:
            window = emit[i - 1] + 1 + max(0, words[i] - words[i - 1] - 1)
            e = max(window, fire[i - 1])
        emit[i] = e
        f = e + 1
        while True:
            # Activations pushed before cycle f - STOP_LATENCY, i.e. fired before this cycle.
            pushed = int(np.searchsorted(fire[:i], f - STOP_LATENCY - BROADCAST_LATENCY))
            blocker = pushed - D
            if blocker < 0 or last_pop[blocker] + STOP_LATENCY < f:
                break
            f = int(last_pop[blocker]) + STOP_LATENCY + 1
        fire[i] = f
        push = f + BROADCAST_LATENCY
        if i >= D + QUEUE_SLACK and int(pop[:, i - D - QUEUE_SLACK].max()) >= push:
            raise AssertionError(f"activation {i} reaches a full queue in cycle {push}")
        p = np.maximum(push + QUEUE_LATENCY, moved[0])
        pop[:, i] = p
        last_pop[i] = int(p.max())
        moved[0] = np.maximum(p + 1, moved[1])
        t = _through_pointer_stages(moved, free)
        take[:, i] = t
        ei = entries[:, i]
        free = t + np.maximum(ei, 1)
        end[:, i] = np.where(ei > 0, t + ei - 1 + ISSUE_TO_MAC + MAC_TO_WRITEBACK, t)
    if n:
        last_window = emit[-1] + (n_words - 1 - words[-1])
        scan_idle = max(last_window + 1, fire[-1] + 1)
    else:
        scan_idle = FIRST_WINDOW + n_words        # the cycle after the last (zero) word
    scan_done = scan_idle + 1
    pe_idle = int(end.max()) + 1 if n else 0
    done = max(scan_done, pe_idle) + DONE_LATENCY
    push = fire + BROADCAST_LATENCY
    pes = tuple(PETiming(push.copy(), pop[k], take[k], entries[k], end[k]) for k in range(n_pe))
    return ArrayTiming(emit, fire, pes, done, int((fire - emit - 1).sum()))


def layer_work(packed, x):
    """``(entries, act_cols)`` for :func:`array_timing`: the nonzero activations of ``x`` and the
    stored entries (padding included) of their columns in every PE of ``packed``."""
    x = np.asarray(x)
    cols = np.flatnonzero(x[: packed.cols])
    per_col = np.stack([np.diff(np.asarray(pe.col_ptr, dtype=np.int64)) for pe in packed.pe])
    return per_col[:, cols], cols


def useful_macs(packed, x) -> np.ndarray:
    """Per PE: MACs on real (non-padding) weights for input ``x``; padding entries are the rest."""
    active = np.asarray(x)[: packed.cols] != 0
    out = []
    for pe in packed.pe:
        col_of_entry = np.repeat(np.arange(packed.cols), np.diff(np.asarray(pe.col_ptr, dtype=np.int64)))
        out.append(int(np.count_nonzero(active[col_of_entry] & (np.asarray(pe.weight_idx) != 0))))
    return np.asarray(out, dtype=np.int64)
