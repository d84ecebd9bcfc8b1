"""Importance criteria: how much a weight or an output channel matters (higher = keep).

A criterion scores single weights (:meth:`Criterion.weight_scores`, same shape as the weight)
and the units of a :class:`~sw.prune.graph.ChannelGroup` (:meth:`Criterion.channel_scores`, one
score per unit). A unit of a coupled group holds several channels (the residual stream's channel
``c`` in every block, a producer's channel and the depthwise channel after it); the criterion
scores each of them and :func:`unit_scores` combines them by ``reduce``: ``"mean"`` (the default:
a unit coupled across four layers ranks like a single layer's channel, so global ranking across
groups stays fair) or ``"sum"`` (a channel used by more layers counts more). Scores are computed
from the current (masked) weights.
"""

import torch
from torch import nn

REDUCTIONS = ("mean", "sum")


def unit_scores(group, scored, reduce: str = "mean", what: str = "a scored channel") -> torch.Tensor:
    """Per unit of ``group``, the ``reduce`` (``"mean"`` or ``"sum"``) of the channel scores in
    ``scored``: pairs ``(member, per-channel scores along the member's axis)``."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduce!r}; expected one of {', '.join(REDUCTIONS)}")
    total = torch.zeros(group.units, dtype=torch.float64)
    count = torch.zeros(group.units, dtype=torch.float64)
    for member, s in scored:
        sel = member.index >= 0
        total.index_add_(0, member.index[sel], s.detach().double()[sel])
        count.index_add_(0, member.index[sel], torch.ones(int(sel.sum()), dtype=torch.float64))
    if (count == 0).any():
        raise ValueError(f"layer {group.layer} has channels without {what}")
    return (total if reduce == "sum" else total / count).float()


class Criterion:
    """Base class; ``name`` appears in reports and on the command line."""

    name = "criterion"

    def weight_scores(self, layer: str, module) -> torch.Tensor:
        raise NotImplementedError

    def channel_scores(self, group, reduce: str = "mean") -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class L1(Criterion):
    """Magnitude: ``|w|`` per weight; ``sum |w|`` over a channel's filter (a producer's weight row)."""

    name = "l1"

    def weight_scores(self, layer, module):
        return module.weight.detach().abs()

    def channel_scores(self, group, reduce="mean"):
        return unit_scores(group, [(p, p.module.weight.detach().abs().flatten(1).sum(1)) for p in group.producers],
                           reduce)


class L2(Criterion):
    """``|w|`` per weight (the same order as ``w²``); ``sqrt(sum w²)`` over a channel's filter."""

    name = "l2"

    def weight_scores(self, layer, module):
        return module.weight.detach().abs()

    def channel_scores(self, group, reduce="mean"):
        return unit_scores(group, [(p, p.module.weight.detach().flatten(1).norm(dim=1)) for p in group.producers],
                           reduce)


class BNScale(Criterion):
    """Network slimming's importance: ``|gamma|`` of the BatchNorms following the layer's channels."""

    name = "bn"

    def weight_scores(self, layer, module):
        raise ValueError(f"BN-scale importance ranks channels, not single weights (layer {layer}); "
                         "use the channel granularity")

    def channel_scores(self, group, reduce="mean"):
        bns = [(f, f.module.weight.detach().abs()) for f in group.followers
               if isinstance(f.module, (nn.BatchNorm1d, nn.BatchNorm2d))]
        if not bns:
            raise ValueError(f"layer {group.layer} has no BatchNorm after it; BN-scale importance needs one")
        return unit_scores(group, bns, reduce, "a BatchNorm after them; BN-scale importance needs one")


CRITERIA = {"l1": L1, "l2": L2, "bn": BNScale}


def criterion(name: str) -> Criterion:
    """A criterion by its command-line name (``l1``, ``l2``, ``bn``)."""
    if name not in CRITERIA:
        raise ValueError(f"unknown criterion {name!r}; expected one of {', '.join(CRITERIA)}")
    return CRITERIA[name]()
