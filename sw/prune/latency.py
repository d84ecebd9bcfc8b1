"""EIE latency as a pruning resource: cycles of the array's exact cycle model on sample inputs.

:class:`EIECycles` packs every layer of a bias-free Linear/ReLU chain for ``n_pe`` PEs (docs/spec.md §2,
padding entries included), runs ``x`` through the float model and feeds each layer's nonzero
input activations to :func:`sw.cyclemodel.eie.array_timing` — the model checked cycle for cycle
against the array RTL. The resource is the mean over the samples of the summed layer cycles, so
it sees what MAC counts do not: activation sparsity, load imbalance across PEs, padding, and the
broadcast stalls of a full queue. Usable as NetAdapt's ``resource``.
"""

import numpy as np
import torch

from sw.cyclemodel.eie import array_timing, layer_work
from sw.formats import QUEUE_DEPTH
from sw.pack.eie import pack_eie
from sw.prune.export import linear_chain


class EIECycles:
    """``EIECycles(x)(model)``: mean EIE array cycles of ``model`` over the rows of ``x``."""

    def __init__(self, x, n_pe: int = 64, queue_depth: int = QUEUE_DEPTH, lnzd_width: int = 8):
        x = np.asarray(x, dtype=np.float32)
        if x.ndim < 2 or x.shape[0] < 1:
            raise ValueError(f"x must be a batch of samples (n, ...) with n >= 1, got shape {x.shape}")
        for name, v in (("n_pe", n_pe), ("queue_depth", queue_depth), ("lnzd_width", lnzd_width)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.x = x.reshape(x.shape[0], -1)
        self.n_pe, self.queue_depth, self.lnzd_width = int(n_pe), int(queue_depth), int(lnzd_width)

    def layer_cycles(self, model) -> np.ndarray:
        """``(samples, layers)`` cycles of every layer for every sample."""
        chain = linear_chain(model)
        weights = []
        with torch.no_grad():
            for _, layer, relu in chain:
                w = layer.weight.detach().cpu().numpy().astype(np.float64)
                weights.append((w, pack_eie((w != 0).astype(np.int64), self.n_pe), relu))
        out = np.zeros((self.x.shape[0], len(weights)), dtype=np.int64)
        for s, a in enumerate(self.x.astype(np.float64)):
            if a.shape[0] != weights[0][0].shape[1]:
                raise ValueError(f"samples have {a.shape[0]} features, the first layer takes "
                                 f"{weights[0][0].shape[1]}")
            for k, (w, packed, relu) in enumerate(weights):
                entries, cols = layer_work(packed, a)
                out[s, k] = array_timing(entries, cols, packed.cols, queue_depth=self.queue_depth,
                                         lnzd_width=self.lnzd_width).cycles
                a = w @ a
                if relu:
                    a = np.maximum(a, 0.0)
        return out

    def __call__(self, model) -> float:
        return float(self.layer_cycles(model).sum(axis=1).mean())
