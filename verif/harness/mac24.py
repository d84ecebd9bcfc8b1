"""Beats for the 2:4 sparse and the dense int8 MACs (``pyhdl/sparse24``) from whole matrices.

A row of ``K`` weights is ``K / (4·groups)`` sparse beats or ``K / multipliers`` dense beats; each
beat carries the activations its weights meet, so ``acts`` is a ``(rows, K)`` matrix (for
``y = W @ x`` every row of it is ``x``).
"""

import numpy as np

from sw.formats import GROUP_24, KEPT_24


def _last(rows: int, beats_per_row: int) -> np.ndarray:
    return np.tile(np.arange(beats_per_row) == beats_per_row - 1, rows).astype(np.int64)


def sparse_beats(values, meta, acts, groups: int) -> dict:
    """Per-beat fields ``values``/``meta``/``acts``/``last`` of docs/spec.md §4 ``(values, meta)`` against
    ``acts``; ``meta`` as the 4-bit fields ``i0 | i1 << 2``."""
    acts = np.asarray(acts, dtype=np.int64)
    rows, k = acts.shape
    if k % (GROUP_24 * groups) or np.shape(values) != (rows, k // 2) or np.shape(meta) != (rows, k // 4):
        raise ValueError(f"values {np.shape(values)} / meta {np.shape(meta)} / acts {acts.shape} do not "
                         f"form whole beats of {groups} groups")
    n = rows * k // (GROUP_24 * groups)
    return dict(values=np.asarray(values, dtype=np.int64).reshape(n, KEPT_24 * groups),
                meta=np.asarray(meta, dtype=np.int64).reshape(n, groups),
                acts=acts.reshape(n, GROUP_24 * groups),
                last=_last(rows, k // (GROUP_24 * groups)))


def dense_beats(weights, acts, multipliers: int) -> dict:
    """Per-beat fields ``weights``/``acts``/``last`` of a dense ``(rows, K)`` matrix."""
    w = np.asarray(weights, dtype=np.int64)
    acts = np.asarray(acts, dtype=np.int64)
    rows, k = w.shape
    if k % multipliers or acts.shape != w.shape:
        raise ValueError(f"weights {w.shape} / acts {acts.shape} do not form whole beats of {multipliers}")
    n = rows * k // multipliers
    return dict(weights=w.reshape(n, multipliers), acts=acts.reshape(n, multipliers),
                last=_last(rows, k // multipliers))
