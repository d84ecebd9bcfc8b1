"""The pruner: a criterion and a granularity applied to chosen layers of an ordinary ``nn.Module``.

    pruner = Pruner(model, FineGrained(), L1())
    report = pruner.prune({"fc1": 0.92, "fc2": 0.91})   # per-layer ratios
    report = pruner.prune(0.9, scope="global")           # one ranking across layers
    Pruner(cnn, Channel(), BNScale()).prune(0.5, scope="global"); remove_channels(cnn)

A ratio is the fraction of a layer's units (weights or channels) pruned *in total*: exactly
``round(ratio × units)`` of them, those with the lowest scores (on ties the lower index is kept), counting
units pruned before — masks only grow, so iterating with rising ratios is a schedule. A ratio
below the current sparsity prunes nothing and the report says so.
"""

import math

import numpy as np
import torch

from sw.prune.criteria import L1
from sw.prune.granularity import Channel, FineGrained
from sw.prune.graph import channel_groups, prunable_layers
from sw.prune.masks import get_mask, masked_names
from sw.prune.report import PruneReport, model_stats

SCOPES = ("layer", "global")


def check_ratio(ratio, where: str = "") -> float:
    """``ratio`` as a float after checking it lies in [0, 1)."""
    if (isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.integer, np.floating))
            or not math.isfinite(ratio) or not 0 <= ratio < 1):
        raise ValueError(f"pruning ratio{' for ' + where if where else ''} must be a number in [0, 1), got "
                         f"{ratio!r}")
    return float(ratio)


def pruned_count(model) -> int:
    """Masked-out entries over every mask in ``model`` (grows with every effective pruning step)."""
    total = 0
    for m in model.modules():
        for name in masked_names(m):
            total += int((get_mask(m, name) == 0).sum())
    return total


def lowest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` lowest ``scores``; among equal scores the higher index goes first, so the
    lower index is kept (the tie rule of ``mask_nm``)."""
    n = scores.numel()
    return (n - 1 - torch.argsort(scores.flip(0), stable=True))[:k]


class Pruner:
    """Prunes ``layers`` (names; default every layer the granularity can prune) of ``model`` in place.

    ``granularity``: :class:`FineGrained` (default), :class:`Channel` or :class:`NM`;
    ``criterion``: :class:`L1` (default), ``L2`` or ``BNScale``; ``example_input``: a batch used
    to trace shapes (default zeros of ``model.input_shape``).
    """

    def __init__(self, model, granularity=None, criterion=None, layers=None, example_input=None):
        self.model = model
        self.granularity = granularity if granularity is not None else FineGrained()
        self.criterion = criterion if criterion is not None else L1()
        self.example = example_input
        self._groups = None
        available = prunable_layers(model)
        if not available:
            raise ValueError(f"{type(model).__name__} has no prunable layer (no nn.Linear or nn.Conv2d)")
        if layers is None:
            names = list(available)
            if isinstance(self.granularity, Channel):        # one name per group: its own
                names = [n for n in names if self.groups[n].layer == n and not self.groups[n].blocked]
                if not names:
                    raise ValueError(f"{type(model).__name__} has no layer whose channels can be removed")
        else:
            names = [layers] if isinstance(layers, str) else list(layers)
            unknown = [n for n in names if n not in available]
            if unknown:
                raise ValueError(f"unknown layer name(s) {', '.join(map(repr, unknown))}; the prunable "
                                 "layers "
                                 f"are {', '.join(available)}")
            if not names:
                raise ValueError("no layers given to prune")
            if isinstance(self.granularity, Channel):
                seen = {}
                for n in names:
                    other = seen.setdefault(id(self.groups[n]), n)
                    if other != n:
                        raise ValueError(f"layers {other} and {n} are coupled into one channel group (named "
                                         f"{self.groups[n].layer}); name it once")
        self.layers = {n: available[n] for n in names}
        for n in names:
            if hasattr(self.layers[n], "weight_index"):
                raise ValueError(f"layer {n} is weight-shared; prune before sharing weights")
            self.granularity.validate(self, n)

    @property
    def groups(self) -> dict:
        """Channel dependency groups (traced on first use, again after channels are removed)."""
        if self._groups is None:
            self._groups = channel_groups(self.model, self.example)
        return self._groups

    def _ratios(self, ratio) -> dict:
        if isinstance(ratio, dict):
            unknown = [n for n in ratio if n not in self.layers]
            if unknown:
                raise ValueError(f"ratio given for unknown layer(s) {', '.join(map(repr, unknown))}; this "
                                 "pruner's "
                                 f"layers are {', '.join(self.layers)}")
            return {n: check_ratio(r, n) for n, r in ratio.items()}
        r = check_ratio(ratio)
        return dict.fromkeys(self.layers, r)

    def prune(self, ratio=None, scope: str = "layer") -> PruneReport:
        """Prune to ``ratio`` (a float for every layer, or ``{layer: ratio}``), ranking units within
        each layer (``scope="layer"``) or across all layers together (``scope="global"``). N:M takes
        no ratio. Returns a :class:`PruneReport`."""
        g = self.granularity
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}")
        notes = []
        before = model_stats(self.model, self.example)
        count = pruned_count(self.model)
        if not g.ranked:
            if ratio is not None:
                raise ValueError(f"{g.name} pruning has a fixed pattern; it takes no ratio (got {ratio!r})")
            for layer in self.layers:
                g.prune_layer(self, layer, self.criterion)
            action = f"{g.name} pruning ({self.criterion.name})"
        else:
            if ratio is None:
                raise ValueError(f"{g.name} pruning needs a ratio in [0, 1)")
            if scope == "layer":
                for layer, r in self._ratios(ratio).items():
                    self._prune_layer(layer, r, notes)
            else:
                if isinstance(ratio, dict):
                    raise ValueError("global scope takes one ratio for all layers, not a per-layer dict")
                self._prune_global(check_ratio(ratio), notes)
            action = f"{g.name} pruning ({self.criterion.name}, {scope})"
        after = model_stats(self.model, self.example)
        return PruneReport(action, before, after, pruned_count(self.model) != count, notes)

    def _prune_layer(self, layer, r, notes):
        g = self.granularity
        s = g.scores(self, layer, self.criterion)
        n = s.numel()
        target = int(round(r * n))
        cap = n - g.min_kept(self, layer)
        if target > cap:
            raise ValueError(f"ratio {r} would prune {target} of the {n} units of layer {layer}; at most "
                             f"{cap} "
                             f"may go (ratio < {(cap + 0.5) / n:.4f})")
        already = int(torch.isinf(s).sum())
        if target < already:
            notes.append(f"layer {layer}: ratio {r} is below its current sparsity {already / n:.4f}; masks "
                         "only "
                         "grow, so nothing was pruned there")
            return
        prune = torch.zeros(n, dtype=torch.bool)
        prune[lowest(s, target)] = True
        notes += g.apply(self, layer, prune) or []

    def _prune_global(self, r, notes):
        g = self.granularity
        scores = {layer: g.scores(self, layer, self.criterion) for layer in self.layers}
        flat = torch.cat(list(scores.values()))
        target = int(round(r * flat.numel()))
        already = int(torch.isinf(flat).sum())
        if target < already:
            notes.append(f"ratio {r} is below the current sparsity {already / flat.numel():.4f}; masks only "
                         "grow, "
                         "so nothing was pruned")
            return
        pruned = torch.zeros(flat.numel(), dtype=torch.bool)
        pruned[lowest(flat, target)] = True
        start = 0
        for layer, s in scores.items():
            prune = pruned[start:start + s.numel()].clone()
            start += s.numel()
            keep_min = g.min_kept(self, layer)
            if s.numel() - int(prune.sum()) < keep_min:
                best = torch.argsort(s, descending=True, stable=True)[:keep_min]
                prune[best] = False
                notes.append(f"layer {layer}: the global ranking would remove all its units; kept the best "
                             f"{keep_min}")
            notes += g.apply(self, layer, prune) or []

    def remove(self) -> PruneReport:
        """Physically remove the pruned channels (see :func:`sw.prune.removal.remove_channels`)."""
        from sw.prune.removal import remove_channels

        report = remove_channels(self.model, self.example)
        self._groups = None
        return report
