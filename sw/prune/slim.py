"""Network slimming (Liu et al. 2017): train with L1 on the BatchNorm scales, prune the channels
with the smallest ``|γ|`` across all layers at once (one global threshold), physically remove them
and fine-tune.
"""

from dataclasses import dataclass

import torch
from torch import nn

from sw.models.train import evaluate, finetune, train
from sw.prune.criteria import BNScale
from sw.prune.granularity import Channel
from sw.prune.graph import channel_groups, unique_groups
from sw.prune.pruner import Pruner
from sw.prune.regularize import BNScalePenalty


def slimming_layers(model, example=None) -> list:
    """Channel groups (by name) whose every unit passes through a BatchNorm and can be removed."""
    bn = (nn.BatchNorm1d, nn.BatchNorm2d)
    names = []
    for g in unique_groups(channel_groups(model, example)):
        covered = torch.zeros(g.units, dtype=torch.bool)
        for f in g.followers:
            if isinstance(f.module, bn):
                covered[f.index[f.index >= 0]] = True
        if not g.blocked and g.units and covered.all():
            names.append(g.layer)
    if not names:
        raise ValueError(f"{type(model).__name__} has no removable layer followed by a BatchNorm; "
                         "network slimming needs one")
    return names


def train_slimming(model, data, cfg, strength: float, progress: bool = True) -> list:
    """Train ``model`` with the slimming penalty ``strength * Σ|γ|``; returns the history."""
    return train(model, data, cfg, penalties=[BNScalePenalty(strength)], progress=progress,
                 desc=f"train (BN L1 {strength:g})")


@dataclass
class SlimResult:
    prune: object       # PruneReport of the channel masks
    removal: object     # PruneReport of the physical removal
    val_after_prune: float
    test_after_finetune: float
    history: list       # fine-tuning history (per-epoch loss and validation accuracy)

    def to_dict(self) -> dict:
        return {"prune": self.prune.to_dict(), "removal": self.removal.to_dict(),
                "val_after_prune": self.val_after_prune, "test_after_finetune": self.test_after_finetune,
                "history": self.history}


def slim(model, data, cfg, ratio: float, finetune_epochs: int, lr_scale: float = 0.1, criterion=None,
         progress: bool = True) -> SlimResult:
    """Prune ``ratio`` of the BatchNorm-followed channels of ``model`` (ranked globally by
    ``criterion``, default BN scale), remove them physically, fine-tune; in place."""
    layers = slimming_layers(model)
    pruner = Pruner(model, Channel(), criterion or BNScale(), layers)
    report = pruner.prune(ratio, scope="global")
    removal = pruner.remove()
    val = evaluate(model, data.x_val, data.y_val)
    history = finetune(model, data, cfg, finetune_epochs, lr_scale=lr_scale, progress=progress,
                       desc="slim fine-tune")
    return SlimResult(report, removal, val, evaluate(model, data.x_test, data.y_test), history)
