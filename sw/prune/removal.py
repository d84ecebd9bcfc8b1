"""Physical removal of pruned channels: the model really gets smaller.

A channel pruned by :class:`~sw.prune.granularity.Channel` computes exactly zero, so removing it —
its producer's weight row and bias, its BatchNorm entries, and the consumers' matching input
columns (``features per channel`` of them after a flatten) — leaves the model's outputs
unchanged while parameters and MACs fall. Masks are sliced with their parameters.
"""

import torch
from torch import nn

from sw.prune.granularity import dead_channels
from sw.prune.graph import channel_groups
from sw.prune.masks import get_mask, set_masked_param
from sw.prune.report import PruneReport, model_stats


def _slice(module, name, dim, index):
    p = getattr(module, name)
    if p is None:
        return
    mask = get_mask(module, name)
    set_masked_param(module, name, p.detach().index_select(dim, index),
                     None if mask is None else mask.index_select(dim, index))


def _check_plain(name, module):
    if hasattr(module, "weight_index"):
        raise ValueError(f"layer {name} is weight-shared; remove channels before weight sharing")


def remove_channels(model: nn.Module, example=None) -> PruneReport:
    """Remove every dead (channel-pruned) output channel from ``model`` in place, shrinking the
    dependent BatchNorms and consumers consistently. Returns the before/after report."""
    before = model_stats(model, example)
    removed = []
    for name, group in channel_groups(model, example).items():
        if group.blocked:
            continue
        dead = dead_channels(group)
        if not dead.any():
            continue
        _check_plain(name, group.producer)
        for cname, consumer, _ in group.consumers:
            _check_plain(cname, consumer)
        keep = torch.nonzero(~dead).flatten()
        p = group.producer
        _slice(p, "weight", 0, keep)
        _slice(p, "bias", 0, keep)
        if isinstance(p, nn.Linear):
            p.out_features = keep.numel()
        else:
            p.out_channels = keep.numel()
        for _, bn in group.followers:
            _slice(bn, "weight", 0, keep)
            _slice(bn, "bias", 0, keep)
            for buf in ("running_mean", "running_var"):
                if getattr(bn, buf, None) is not None:
                    setattr(bn, buf, getattr(bn, buf).index_select(0, keep).clone())
            bn.num_features = keep.numel()
        for _, consumer, k in group.consumers:
            cols = (keep[:, None] * k + torch.arange(k)[None, :]).flatten()
            _slice(consumer, "weight", 1, cols)
            if isinstance(consumer, nn.Linear):
                consumer.in_features = cols.numel()
            else:
                consumer.in_channels = cols.numel()
        removed.append(f"{name}: removed {int(dead.sum())} of {dead.numel()} channels")
    after = model_stats(model, example)
    return PruneReport("channel removal", before, after, bool(removed), removed)
