"""k-means weight sharing (Deep Compression): per layer, the surviving weights share 2**bits - 1
values; index 0 is reserved for pruned weights (docs/spec.md §1: codebook entry 0 is always 0).

A shared layer holds a trainable ``codebook`` (the shared values, without the reserved 0) and a
``weight_index`` buffer (0 = pruned, ``k`` = ``codebook[k - 1]``); its ``weight`` is rebuilt from
them before every forward. Training it is centroid fine-tuning: the gradient that reaches
``codebook[k]`` is the sum of the gradients of the weights in cluster ``k`` (Deep Compression's
centroid update), because indexing scatters the gradients back.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sw.formats import INDEX_WIDTH
from sw.prune.graph import prunable_layers
from sw.prune.masks import enforce_masks, keep_mask, register_refresher, remove_mask

_FLAG = "_sparsehw_shared"


def kmeans_1d(values: np.ndarray, k: int, iters: int = 100):
    """Lloyd's k-means on scalars with linear initialisation (``k`` centroids evenly spaced over
    ``[min, max]``, as Deep Compression initialises). Returns ``(centroids (k,) sorted, labels)``.

    Linear initialisation over pruned weights (two lobes, nothing near 0) leaves the middle
    centroids empty; each empty cluster is re-seeded at the value farthest from its centroid and
    Lloyd resumes, so no code is wasted while distinct values remain.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("k-means needs at least one value")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    c = np.linspace(v.min(), v.max(), k)
    reseeds = 0
    while True:
        for _ in range(iters):
            c = np.sort(c)
            labels = np.searchsorted((c[1:] + c[:-1]) / 2, v)
            counts = np.bincount(labels, minlength=k)
            new = np.where(counts > 0, np.bincount(labels, weights=v, minlength=k) / np.maximum(counts, 1), c)
            if np.array_equal(new, c):
                break
            c = new
        c = np.sort(c)
        labels = np.searchsorted((c[1:] + c[:-1]) / 2, v)
        counts = np.bincount(labels, minlength=k)
        empty = np.flatnonzero(counts == 0)
        err = np.abs(v - c[labels])
        if empty.size == 0 or reseeds >= k or err.max() == 0:
            return c, labels
        far = np.argsort(err, kind="stable")[::-1][:empty.size]
        c[empty[:far.size]] = v[far]
        reseeds += 1


def _hook(module, _inputs):
    module.weight = shared_weight(module)


def shared_weight(module: nn.Module) -> torch.Tensor:
    """``[0, codebook...][weight_index]``: the weight a shared layer computes with."""
    full = torch.cat([module.codebook.new_zeros(1), module.codebook])
    return full[module.weight_index]


def install_shared(module: nn.Module, codebook: torch.Tensor, index: torch.Tensor) -> None:
    """Make ``module``'s weight shared: ``codebook`` (n,) trainable values, ``index`` (weight shape,
    0 = pruned, k = ``codebook[k-1]``)."""
    if getattr(module, _FLAG, False):
        module.codebook = nn.Parameter(codebook.detach().float().clone())
        module.weight_index = index.detach().long().clone()
    else:
        remove_mask(module, "weight")
        del module._parameters["weight"]
        module.register_parameter("codebook", nn.Parameter(codebook.detach().float().clone()))
        module.register_buffer("weight_index", index.detach().long().clone())
        setattr(module, _FLAG, True)
        module.register_forward_pre_hook(_hook)
    _refresh(module)


def shared_size(module: nn.Module):
    """Codebook length (without the reserved 0) of a shared layer, else ``None``."""
    return int(module.codebook.numel()) if getattr(module, _FLAG, False) else None


def _refresh(module):
    if getattr(module, _FLAG, False):
        with torch.no_grad():
            module.weight = shared_weight(module)


register_refresher(_refresh)


def refresh_shared(model: nn.Module) -> None:
    """Recompute every shared layer's ``weight`` from its codebook (outside autograd)."""
    for m in model.modules():
        _refresh(m)


@dataclass
class LayerCodebook:
    """One layer's sharing: ``centroids`` (k,) float, ``index`` (weight shape, int, 0 = pruned)."""

    centroids: np.ndarray
    index: np.ndarray
    used: int


def share_weights(model: nn.Module, bits: int = INDEX_WIDTH, layers=None) -> dict:
    """Replace the weights of ``layers`` (default: every Linear/Conv2d) by ``2**bits - 1`` shared
    values each (k-means with linear init over the surviving weights; pruned weights keep index 0).
    Returns ``{layer: LayerCodebook}``."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer in 1..8, got {bits!r}")
    available = prunable_layers(model)
    names = list(available) if layers is None else ([layers] if isinstance(layers, str) else list(layers))
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown layer name(s) {', '.join(map(repr, unknown))}; layers are "
                         f"{', '.join(available)}")
    enforce_masks(model)
    out = {}
    for name in names:
        m = available[name]
        if getattr(m, _FLAG, False):
            raise ValueError(f"layer {name} is already weight-shared")
        w = m.weight.detach()
        alive = keep_mask(m) & (w != 0)
        if not alive.any():
            raise ValueError(f"layer {name} has no surviving weight to share")
        k = (1 << bits) - 1
        centroids, labels = kmeans_1d(w[alive].numpy(), k)
        index = torch.zeros(w.shape, dtype=torch.long)
        index[alive] = torch.from_numpy(labels + 1)
        install_shared(m, torch.from_numpy(centroids), index)
        out[name] = LayerCodebook(centroids, index.numpy(), int(np.unique(labels).size))
    return out
