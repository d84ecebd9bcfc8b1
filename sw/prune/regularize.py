"""Regularised training for pruning: L1 (``λ‖W‖₁``, drives weights to zero), L2 (``λ‖W‖²₂``,
keeps weights small, aligned with magnitude pruning) and network slimming's L1 on BatchNorm
scales. Each penalty is a callable ``p(model) -> scalar`` passed to ``sw.models.train.train``.
"""

import copy

from torch import nn

from sw.models.train import evaluate
from sw.prune.graph import prunable_layers
from sw.prune.pruner import Pruner


class _Penalty:
    def __init__(self, strength: float):
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not strength >= 0:
            raise ValueError(f"penalty strength must be a number >= 0, got {strength!r}")
        self.strength = float(strength)

    def __repr__(self):
        return f"{type(self).__name__}({self.strength:g})"


class L1Penalty(_Penalty):
    """``strength * Σ|w|`` over the weights of every Linear/Conv2d."""

    def __call__(self, model):
        return self.strength * sum(m.weight.abs().sum() for m in prunable_layers(model).values())


class L2Penalty(_Penalty):
    """``strength * Σ w²`` over the weights of every Linear/Conv2d."""

    def __call__(self, model):
        return self.strength * sum(m.weight.pow(2).sum() for m in prunable_layers(model).values())


class BNScalePenalty(_Penalty):
    """Network slimming: ``strength * Σ|γ|`` over every BatchNorm scale."""

    def __call__(self, model):
        bns = [m for m in model.modules()
               if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.weight is not None]
        if not bns:
            raise ValueError(f"{type(model).__name__} has no BatchNorm scale to regularise")
        return self.strength * sum(m.weight.abs().sum() for m in bns)


def accuracy_vs_sparsity(model, data, ratios, granularity=None, criterion=None, scope: str = "global",
                         split: str = "val") -> list:
    """Accuracy (percent) of copies of ``model`` pruned one-shot (no fine-tuning) at each ratio."""
    x, y = data.split(split)
    out = []
    for r in ratios:
        m = copy.deepcopy(model)
        Pruner(m, copy.deepcopy(granularity), criterion).prune(r, scope=scope)
        out.append(evaluate(m, x, y))
    return out


def achievable_sparsity(ratios, accuracies, reference: float, max_drop: float) -> float:
    """The largest ratio at which accuracy stays within ``max_drop`` points of ``reference``, scanning
    up from the smallest ratio and stopping at the first failure (0.0 if the smallest fails)."""
    best = 0.0
    for r, a in zip(ratios, accuracies, strict=True):
        if reference - a > max_drop:
            break
        best = r
    return float(best)

