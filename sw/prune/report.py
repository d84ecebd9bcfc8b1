"""What pruning did: masked sparsity next to the real savings (parameters, MACs, bytes).

Masked sparsity is the fraction of prunable weights whose mask is 0. The *real* savings are
those of the physical model: parameters and dense MACs only fall when channels are removed;
masked weights still occupy dense storage. ``nonzero_macs`` is what an engine that skips zero
weights (EIE) executes. Bytes are the float32 storage of the physical parameters.
"""

from dataclasses import asdict, dataclass, field
from math import prod

import torch
from torch import nn

from sw.prune.graph import example_input, prunable_layers
from sw.prune.masks import get_mask

FLOAT_BYTES = 4


@dataclass
class LayerStats:
    name: str
    kind: str
    shape: list
    weights: int        # weight entries (physical)
    masked: int         # of which masked out
    nonzero: int        # of which nonzero
    params: int         # weights + bias
    macs: int           # dense multiply-accumulates per sample
    nonzero_macs: int   # MACs with a nonzero weight

    @property
    def sparsity(self) -> float:
        return self.masked / self.weights if self.weights else 0.0


@dataclass
class ModelStats:
    layers: list
    params: int
    nonzero_params: int
    macs: int
    nonzero_macs: int

    @property
    def bytes(self) -> int:
        return self.params * FLOAT_BYTES

    @property
    def prunable_weights(self) -> int:
        return sum(s.weights for s in self.layers)

    @property
    def masked_sparsity(self) -> float:
        w = self.prunable_weights
        return sum(s.masked for s in self.layers) / w if w else 0.0

    def layer(self, name: str) -> LayerStats:
        for s in self.layers:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"params": self.params, "nonzero_params": self.nonzero_params, "macs": self.macs,
                "nonzero_macs": self.nonzero_macs, "bytes": self.bytes,
                "masked_sparsity": self.masked_sparsity, "layers": [asdict(s) for s in self.layers]}


@torch.no_grad()
def output_positions(model: nn.Module, example=None) -> dict:
    """``{name: positions}`` of every Linear and Conv2d layer of ``model`` from one forward pass of
    ``example`` in eval mode: the output positions a layer's weights are applied at (a Conv2d's
    ``H × W``, a Linear's leading dimensions between batch and features; 1 for a plain Linear)."""
    layers = prunable_layers(model)
    positions = {}
    hooks = [m.register_forward_hook(
        lambda mod, i, o, n=n: positions.__setitem__(
            n, prod(o.shape[2:]) if isinstance(mod, nn.Conv2d) else prod(o.shape[1:-1])))
        for n, m in layers.items()]
    was_training = model.training
    model.eval()
    try:
        model(example_input(model, example))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return positions


def model_stats(model: nn.Module, example=None) -> ModelStats:
    """Count parameters, nonzeros and MACs of ``model`` (one forward pass of ``example``)."""
    layers = prunable_layers(model)
    spatial = output_positions(model, example)
    stats = []
    for name, m in layers.items():
        w = m.weight.detach()
        mask = get_mask(m, "weight")
        if hasattr(m, "weight_index"):          # weight-shared: index 0 is the pruned entry
            mask = (m.weight_index != 0).float()
        nnz = int(torch.count_nonzero(w))
        bias = 0 if m.bias is None else m.bias.numel()
        pos = spatial.get(name, 1)
        stats.append(LayerStats(name, type(m).__name__, list(w.shape), w.numel(),
                                0 if mask is None else int((mask == 0).sum()), nnz, w.numel() + bias,
                                w.numel() * pos, nnz * pos))
    params = sum(s.params for s in stats)
    nonzero = sum(s.nonzero + (s.params - s.weights) for s in stats)
    ids = {id(m) for m in layers.values()}
    for m in model.modules():
        if id(m) not in ids:
            for p in m.parameters(recurse=False):
                params += p.numel()
                nonzero += int(torch.count_nonzero(p))
    return ModelStats(stats, params, nonzero, sum(s.macs for s in stats), sum(s.nonzero_macs for s in stats))


def _pct(before, after):
    return f"{before:,} → {after:,} ({(after - before) / before * 100 if before else 0.0:+.1f}%)"


@dataclass
class PruneReport:
    """Before/after statistics of one pruning action, whether it changed anything, and notes."""

    action: str
    before: ModelStats
    after: ModelStats
    changed: bool
    notes: list = field(default_factory=list)

    def summary(self) -> str:
        b, a = self.before, self.after
        lines = []
        if not self.changed:
            lines.append(f"{self.action}: changed nothing — the model is exactly as before.")
        else:
            lines.append(f"{self.action}:")
        lines.append(f"  masked sparsity {b.masked_sparsity:.1%} → {a.masked_sparsity:.1%} of the "
                     f"{a.prunable_weights:,} prunable weights")
        lines.append(f"  real savings: params {_pct(b.params, a.params)}, MACs {_pct(b.macs, a.macs)}, "
                     f"bytes {_pct(b.bytes, a.bytes)}")
        lines.append(f"  nonzero params {_pct(b.nonzero_params, a.nonzero_params)}, "
                     f"nonzero MACs (zero weights skipped) {_pct(b.nonzero_macs, a.nonzero_macs)}")
        if self.changed and a.params == b.params and a.masked_sparsity != b.masked_sparsity:
            lines.append("  (masked weights still take dense storage: the real savings come from sparse "
                         "packing or channel removal)")
        lines += [f"  note: {n}" for n in self.notes]
        lines.append("  layer            shape              sparsity   params    MACs")
        for s in a.layers:
            lines.append(f"  {s.name:<16} {'x'.join(map(str, s.shape)):<18} {s.sparsity:7.1%} "
                         f"{s.params:>9,} {s.macs:>10,}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"action": self.action, "changed": self.changed, "notes": list(self.notes),
                "before": self.before.to_dict(), "after": self.after.to_dict()}

    def __str__(self):
        return self.summary()
