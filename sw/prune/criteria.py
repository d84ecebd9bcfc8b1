"""Importance criteria: how much a weight or an output channel matters (higher = keep).

A criterion scores single weights (:meth:`Criterion.weight_scores`, same shape as the weight)
and whole output channels of a :class:`~sw.prune.graph.ChannelGroup`
(:meth:`Criterion.channel_scores`, one score per channel). Scores are computed from the current
(masked) weights.
"""

import torch


class Criterion:
    """Base class; ``name`` appears in reports and on the command line."""

    name = "criterion"

    def weight_scores(self, layer: str, module) -> torch.Tensor:
        raise NotImplementedError

    def channel_scores(self, group) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class L1(Criterion):
    """Magnitude: ``|w|`` per weight; ``sum |w|`` over a channel's filter (its weight row)."""

    name = "l1"

    def weight_scores(self, layer, module):
        return module.weight.detach().abs()

    def channel_scores(self, group):
        return group.producer.weight.detach().abs().flatten(1).sum(1)


class L2(Criterion):
    """``|w|`` per weight (the same order as ``w²``); ``sqrt(sum w²)`` over a channel's filter."""

    name = "l2"

    def weight_scores(self, layer, module):
        return module.weight.detach().abs()

    def channel_scores(self, group):
        return group.producer.weight.detach().flatten(1).norm(dim=1)


class BNScale(Criterion):
    """Network slimming's importance: ``|gamma|`` of the BatchNorm following the layer."""

    name = "bn"

    def weight_scores(self, layer, module):
        raise ValueError(f"BN-scale importance ranks channels, not single weights (layer {layer}); "
                         "use the channel granularity")

    def channel_scores(self, group):
        if not group.followers:
            raise ValueError(f"layer {group.layer} has no BatchNorm after it; BN-scale importance needs one")
        bn = group.followers[0][1]
        if bn.weight is None:
            raise ValueError(f"BatchNorm {group.followers[0][0]} after {group.layer} has no affine scale")
        return bn.weight.detach().abs()


CRITERIA = {"l1": L1, "l2": L2, "bn": BNScale}


def criterion(name: str) -> Criterion:
    """A criterion by its command-line name (``l1``, ``l2``, ``bn``)."""
    if name not in CRITERIA:
        raise ValueError(f"unknown criterion {name!r}; expected one of {', '.join(CRITERIA)}")
    return CRITERIA[name]()
