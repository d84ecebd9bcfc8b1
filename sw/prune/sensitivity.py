"""Sensitivity scan: prune one layer alone at ratios 0.1 … 0.9 and measure the accuracy drop.

A flat curve marks a layer that tolerates pruning, a steep one a sensitive layer.
:meth:`SensitivityResult.ratios_for` turns the curves into per-layer ratios for a target overall
sparsity: every layer gets the largest ratio whose (interpolated) drop stays under one common
threshold, and the threshold is chosen so the parameter-weighted sparsity meets the target —
flat curves get pruned more. (It ignores interactions between layers, as the lecture warns.)

With BatchNorm in the model, pass ``bn_x``: each pruned copy then has its BatchNorm statistics
re-estimated on those samples before it is scored, as AMC's episodes are. Without it a pruned
channel group shifts every later layer's input away from the stale statistics, and in a deep
network (a ResNet, say) the drops saturate at chance after a few ratios, so they no longer rank
the layers.
"""

import copy
from dataclasses import asdict, dataclass

import numpy as np
from tqdm.auto import tqdm

from sw.markdown import table
from sw.models.train import evaluate, recalibrate_bn
from sw.prune.pruner import Pruner, check_ratio

DEFAULT_RATIOS = tuple(round(0.1 * i, 1) for i in range(1, 10))


@dataclass
class SensitivityResult:
    """Accuracies (percent) of the model with one layer pruned at each ratio."""

    base_acc: float
    ratios: list
    accuracy: dict      # {layer: [accuracy at each ratio]}
    weights: dict       # {layer: weight count}, for the overall sparsity
    granularity: str
    criterion: str
    split: str
    bn_samples: int = 0  # training samples BatchNorm was re-estimated on after each pruning (0: none)

    def drops(self, layer: str) -> np.ndarray:
        """Accuracy drop in points at each ratio (positive = worse than unpruned)."""
        return self.base_acc - np.asarray(self.accuracy[layer])

    def table(self) -> str:
        """Markdown table: one row per layer, the accuracy drop at each ratio."""
        rows = [[n, f"{self.weights[n]:,}", *(f"{d:+.2f}" for d in self.drops(n))] for n in self.accuracy]
        return "\n".join([f"Accuracy drop (points, {self.split} split; unpruned {self.base_acc:.2f}%) by "
                          f"{self.granularity} pruning ratio ({self.criterion}"
                          + (f"; BatchNorm re-estimated on {self.bn_samples} training samples" if self.bn_samples
                             else "") + "):", "",
                          *table(["layer", "weights", *(f"{r:g}" for r in self.ratios)], rows,
                                 "lr" + "r" * len(self.ratios))])

    def plot(self, path) -> None:
        """One curve per layer: accuracy drop against ratio (PNG)."""
        from sw.prune.plots import line_plot

        curves = {f"{n} ({self.weights[n]:,} weights)": (self.ratios, self.drops(n)) for n in self.accuracy}
        line_plot(path, curves,
                  f"pruning ratio ({self.granularity}, {self.criterion})",
                  f"accuracy drop (points, {self.split} split)", "Sensitivity: each layer pruned alone")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["drops"] = {n: self.drops(n).tolist() for n in self.accuracy}
        return d

    def _curve(self, layer):
        r = np.concatenate([[0.0], self.ratios])
        d = np.maximum.accumulate(np.concatenate([[0.0], self.drops(layer)]))
        return r, d

    def _ratio_at(self, layer, tau):
        """Largest ratio whose monotone (running-max) interpolated drop is <= tau."""
        r, d = self._curve(layer)
        above = np.flatnonzero(d > tau)
        if above.size == 0:
            return float(r[-1])
        j = int(above[0])
        if j == 0:
            return 0.0
        return float(r[j - 1] + (tau - d[j - 1]) / (d[j] - d[j - 1]) * (r[j] - r[j - 1]))

    def ratios_at(self, drop: float) -> dict:
        """Each layer's largest ratio whose (monotone, interpolated) accuracy drop stays at most
        ``drop`` points: one common threshold, so flat curves get the larger ratios. Raising
        ``drop`` never lowers a ratio; a caller bisects it to meet a budget of its own (MACs, say)."""
        return {n: self._ratio_at(n, float(drop)) for n in self.accuracy}

    def max_drop(self) -> float:
        """The threshold at which every layer is at its largest scanned ratio."""
        return max(float(self._curve(n)[1].max()) for n in self.accuracy)

    def ratios_for(self, target: float) -> dict:
        """Per-layer ratios whose weight-weighted overall sparsity equals ``target``, pruning the
        layers with flat curves more. Raises ``ValueError`` when even the largest scanned ratio of
        every layer cannot reach ``target``."""
        target = check_ratio(target, "the target sparsity")
        layers = list(self.accuracy)
        w = np.array([self.weights[n] for n in layers], dtype=np.float64)

        def at(tau):
            return np.array([self._ratio_at(n, tau) for n in layers])

        def overall(r):
            return float((r * w).sum() / w.sum())

        hi = max(float(self._curve(n)[1].max()) for n in layers)
        lo = min(float(self._curve(n)[1].min()) for n in layers) - 1.0
        best = overall(at(hi))
        if best < target - 1e-12:
            raise ValueError(f"target sparsity {target} is out of reach: pruning every layer at its largest "
                             "scanned "
                             f"ratio ({self.ratios[-1]}) gives {best:.4f}; scan larger ratios")
        for _ in range(100):
            mid = (lo + hi) / 2
            if overall(at(mid)) >= target:
                hi = mid
            else:
                lo = mid
        r_lo, r_hi = at(lo), at(hi)
        s_lo, s_hi = overall(r_lo), overall(r_hi)
        alpha = 1.0 if s_hi == s_lo else (target - s_lo) / (s_hi - s_lo)
        r = r_lo + alpha * (r_hi - r_lo)
        return {n: float(x) for n, x in zip(layers, r, strict=True)}


def sensitivity_scan(model, data, layers=None, ratios=DEFAULT_RATIOS, granularity=None, criterion=None,
                     split: str = "val", progress: bool = True, bn_x=None) -> SensitivityResult:
    """Prune each of ``layers`` (default: every prunable layer) of a copy of ``model`` alone at every
    ratio and evaluate on ``split``; with ``bn_x`` (training samples) each copy's BatchNorm
    statistics are first re-estimated on them (:func:`recalibrate_bn`). ``model`` itself is not
    modified."""
    ratios = [check_ratio(r) for r in ratios]
    if not ratios or sorted(set(ratios)) != ratios:
        raise ValueError(f"ratios must be increasing and distinct, got {ratios}")
    x, y = data.split(split)
    probe = Pruner(model, granularity, criterion, layers)
    names = list(probe.layers)
    base = evaluate(model, x, y)
    acc = {n: [] for n in names}
    bar = tqdm(total=len(names) * len(ratios), desc="sensitivity", disable=not progress, leave=False)
    for n in names:
        for r in ratios:
            m = copy.deepcopy(model)
            Pruner(m, copy.deepcopy(probe.granularity), probe.criterion, [n], probe.example).prune(r)
            if bn_x is not None and len(bn_x):
                recalibrate_bn(m, bn_x)
            acc[n].append(evaluate(m, x, y))
            bar.update()
            bar.set_postfix(layer=n, ratio=r, acc=f"{acc[n][-1]:.2f}")
    bar.close()
    return SensitivityResult(base, ratios, acc, {n: int(probe.layers[n].weight.numel()) for n in names},
                             probe.granularity.name, probe.criterion.name, split,
                             len(bn_x) if bn_x is not None else 0)
