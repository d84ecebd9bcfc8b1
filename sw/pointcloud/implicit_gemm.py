"""TorchSparse++-style implicit GEMM: output-stationary tiles, row reordering and column splitting.

Output-stationary sparse convolution is one GEMM per tile of ``tile`` output rows: row ``o`` of
the ``(tile, K·C_in)`` left operand holds the input features of ``o``'s neighbour at each
offset, zeros where there is none. A tile skips an offset only when *none* of its rows has a
neighbour there, so every missing neighbour of a tile that uses its offset costs ``C_in·C_out``
padded MACs. Two TorchSparse++ tricks cut that padding:

- **row reordering**: outputs are sorted by their offset-presence pattern (bitmask), so rows
  with the same neighbours share tiles;
- **column splitting**: the offsets are split into ``splits`` contiguous groups, each its own
  GEMM with its own reordering, so each dense block is tighter (at the cost of ``splits``
  passes over the outputs).

:func:`mac_counts` measures useful and computed MACs; :func:`implicit_gemm_conv` computes the
convolution tile by tile the same way (it equals ``sparse_conv3d``; in floating point up to the
summation order, which is fixed, so it too is deterministic).
"""

from dataclasses import dataclass

import numpy as np
import torch


def neighbor_table(maps, n_out: int) -> np.ndarray:
    """``(n_out, n_offsets)`` int64: the input index of each output's neighbour per offset, or -1."""
    nbr = np.full((n_out, len(maps)), -1, dtype=np.int64)
    for k, pairs in enumerate(maps):
        p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        nbr[p[:, 1], k] = p[:, 0]
    return nbr


@dataclass(frozen=True)
class GemmGroup:
    """One dense GEMM of the plan: its kernel offsets and the order of the output rows."""

    offsets: np.ndarray
    order: np.ndarray


def plan(nbr: np.ndarray, *, splits: int = 1, reorder: bool = True) -> list:
    """Split the offsets into ``splits`` contiguous groups; per group, order the rows by their
    presence pattern over the group's offsets (present before absent, offset by offset) when
    ``reorder``, else keep the natural order."""
    n_out, n_off = nbr.shape
    if isinstance(splits, bool) or not isinstance(splits, int) or not 1 <= splits <= max(n_off, 1):
        raise ValueError(f"splits must be an integer in 1 .. {n_off}, got {splits!r}")
    groups = []
    for offs in np.array_split(np.arange(n_off), splits):
        if reorder and len(offs):
            present = nbr[:, offs] >= 0
            # lexsort's last key is the primary one: the group's first offset decides first.
            order = np.lexsort([~present[:, j] for j in range(len(offs) - 1, -1, -1)])
        else:
            order = np.arange(n_out)
        groups.append(GemmGroup(offs, order))
    return groups


def _active(nbr, group: GemmGroup, tile: int):
    """Per tile: the group's offsets any row of the tile uses ``(n_tiles, |offsets|)``, rows per tile."""
    present = nbr[group.order][:, group.offsets] >= 0
    n = len(present)
    n_tiles = -(-n // tile)
    pad = np.zeros((n_tiles * tile - n, present.shape[1]), dtype=bool)
    active = np.concatenate([present, pad]).reshape(n_tiles, tile, -1).any(axis=1)
    rows = np.minimum(tile, n - tile * np.arange(n_tiles))
    return active, rows


def mac_counts(nbr: np.ndarray, groups, *, tile: int = 64, c_in: int = 1, c_out: int = 1) -> dict:
    """Useful MACs (one per neighbour pair) and MACs the tiled GEMMs compute (padding included)."""
    useful = int((nbr >= 0).sum()) * c_in * c_out
    computed = 0
    for g in groups:
        active, rows = _active(nbr, g, tile)
        computed += int((active.sum(axis=1) * rows).sum()) * c_in * c_out
    return {"useful": useful, "computed": computed,
            "overhead": computed / useful if useful else float("nan")}


def implicit_gemm_conv(features: torch.Tensor, nbr: np.ndarray, weight: torch.Tensor, groups, *,
                       tile: int = 64) -> torch.Tensor:
    """The convolution computed as the plan's tiled GEMMs (``(n_out, C_out)``)."""
    n_out = nbr.shape[0]
    c_in, c_out = weight.shape[1], weight.shape[2]
    padded = torch.cat([features, features.new_zeros((1, c_in))])      # row N_in: the zero row
    nbr_t = torch.as_tensor(np.where(nbr < 0, features.shape[0], nbr))
    out = features.new_zeros((n_out, c_out))
    for g in groups:
        active, _ = _active(nbr, g, tile)
        order = torch.as_tensor(g.order)
        for t in range(active.shape[0]):
            offs = torch.as_tensor(g.offsets[active[t]])
            if not len(offs):
                continue
            rows = order[t * tile:(t + 1) * tile]
            a = padded[nbr_t[rows][:, offs]].reshape(len(rows), -1)        # (rows, |offs|·C_in)
            out[rows] += a @ weight[offs].reshape(-1, c_out)
    return out
