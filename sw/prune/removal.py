"""Physical removal of pruned channels: the model really gets smaller.

A unit pruned by :class:`~sw.prune.granularity.Channel` computes a constant (:mod:`sw.prune.fold`),
so removing it — its producers' weight rows and biases, its BatchNorm entries and grouped
convolution filters (``groups`` shrinks with them), and the consumers' matching input columns —
and folding that constant into the consumers leaves the model's outputs unchanged (in eval mode)
while parameters and MACs fall. A pruned unit whose constant cannot be folded exactly (a nonzero
constant before a padded convolution) is kept, and the report says so. Masks are sliced with
their parameters.
"""

import torch
from torch import nn

from sw.prune.fold import fold_into, fold_plan, node_values
from sw.prune.granularity import dead_units
from sw.prune.graph import channel_groups, unique_groups
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


def _drop(keeps, member, units):
    """Mark the channels of ``member`` that belong to the removed ``units``."""
    keep = keeps.setdefault(member.name, (member.module, torch.ones(member.index.numel(), dtype=torch.bool)))[1]
    sel = member.index >= 0
    keep[sel] &= ~units[member.index[sel]]


def _shrink_outputs(m, keep):
    k = torch.nonzero(keep).flatten()
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        _slice(m, "weight", 0, k)
        _slice(m, "bias", 0, k)
        for buf in ("running_mean", "running_var"):
            if getattr(m, buf, None) is not None:
                setattr(m, buf, getattr(m, buf).index_select(0, k).clone())
        m.num_features = k.numel()
        return
    _slice(m, "weight", 0, k)
    _slice(m, "bias", 0, k)
    if isinstance(m, nn.Linear):
        m.out_features = k.numel()
    else:
        if m.groups > 1:                    # whole groups go (graph.py ties each group's channels)
            per_in, per_out = m.in_channels // m.groups, m.out_channels // m.groups
            m.groups = k.numel() // per_out
            m.in_channels = m.groups * per_in
        m.out_channels = k.numel()


def _shrink_inputs(m, keep):
    k = torch.nonzero(keep).flatten()
    _slice(m, "weight", 1, k)
    if isinstance(m, nn.Linear):
        m.in_features = k.numel()
    else:
        m.in_channels = k.numel()


def remove_channels(model: nn.Module, example=None) -> PruneReport:
    """Remove every dead (channel-pruned) unit from ``model`` in place, shrinking every module its
    channels size and folding their constant output into the consumers. Returns the before/after
    report; its notes name what was kept and why."""
    before = model_stats(model, example)
    groups = [g for g in unique_groups(channel_groups(model, example)) if not g.blocked]
    plans, notes, values = [], [], None
    for group in groups:
        dead = dead_units(group)
        if not dead.any():
            continue
        for m in group.members:
            _check_plain(m.name, m.module)
        if values is None:
            values = node_values(model, group.graph, example)
        ok, deltas, why = fold_plan(group, dead, values)
        kept = dead & ~ok
        if kept.any():
            first = int(torch.nonzero(kept)[0])
            notes.append(f"{group.layer}: kept {int(kept.sum())} pruned unit(s) whose constant output cannot be "
                         f"folded exactly: unit {first}: {why[first]}")
        plans.append((group, dead & ok, deltas))
    removed, rows, cols = [], {}, {}
    for group, _, deltas in plans:       # fold first: the deltas are sized by the unsliced consumers
        for member, delta in deltas.values():
            if delta.any():
                notes.append(f"{group.layer}: folded the removed channels' constant output into "
                             f"{fold_into(member, delta)}")
    for group, units, _ in plans:
        if not units.any():
            continue
        for m in group.producers + group.followers:
            _drop(rows, m, units)
        for m in group.consumers:
            _drop(cols, m, units)
        removed.append(f"{group.layer}: removed {int(units.sum())} of {group.units} channels")
    for m, keep in rows.values():
        _shrink_outputs(m, keep)
    for m, keep in cols.values():
        _shrink_inputs(m, keep)
    after = model_stats(model, example)
    return PruneReport("channel removal", before, after, bool(removed), removed + notes)
