"""Granularities: what one pruning decision removes.

* :class:`FineGrained` — single weights (unstructured; what EIE exploits).
* :class:`Channel` — whole output channels (conv filters, linear neurons) together with every
  channel coupled to them (:mod:`sw.prune.graph`): filters and BatchNorm scales are masked, and
  :func:`sw.prune.removal.remove_channels` removes them with the consumers' input channels,
  folding what constant they still compute into the consumers (:mod:`sw.prune.fold`).
* :class:`NM` — N:M patterns (``n`` kept of every ``m`` consecutive weights along the input
  dimension; conv weights grouped along input channels): :func:`nm_mask` lays a weight's groups
  along its last axis for ``sw.pack.sparse24.mask_nm``, the one definition of the selection rule
  (the ``n`` largest of every ``m``, ties to the lower index) that the hardware packer uses too.

A ranking granularity exposes per-unit scores (``-inf`` for units already pruned) and applies a
set of units to prune; :class:`~sw.prune.pruner.Pruner` chooses the units (per layer or globally).
Masks only ever grow: a unit once pruned stays pruned.
"""

import numpy as np
import torch

from sw.pack.sparse24 import mask_nm
from sw.prune.criteria import REDUCTIONS
from sw.prune.fold import fold_plan, node_values
from sw.prune.masks import apply_mask, get_mask, keep_mask


class Granularity:
    """Base class. ``ranked``: the pruner picks how many units to prune from a ratio."""

    name = "granularity"
    ranked = True

    def validate(self, pruner, layer: str) -> None:
        """Raise ``ValueError`` naming ``layer`` when this granularity cannot prune it."""

    def scores(self, pruner, layer: str, criterion) -> torch.Tensor:
        """1-D importance per unit of ``layer``; ``-inf`` where the unit is already pruned."""
        raise NotImplementedError

    def apply(self, pruner, layer: str, prune: torch.Tensor):
        """Prune the units where ``prune`` (1-D bool, one per unit) is True; may return notes."""
        raise NotImplementedError

    def min_kept(self, pruner, layer: str) -> int:
        """Units that must survive in ``layer`` (a layer cannot lose every channel)."""
        return 0

    def __repr__(self):
        return f"{type(self).__name__}()"


class FineGrained(Granularity):
    """One unit per weight (flattened in row-major order)."""

    name = "fine"

    def scores(self, pruner, layer, criterion):
        module = pruner.layers[layer]
        s = criterion.weight_scores(layer, module).flatten().clone().float()
        s[~keep_mask(module).flatten()] = -torch.inf
        return s

    def apply(self, pruner, layer, prune):
        module = pruner.layers[layer]
        keep = keep_mask(module) & ~prune.reshape(module.weight.shape)
        apply_mask(module, "weight", keep)


def _masked_out(module, name):
    """Per output channel: whether its entries of ``module.name`` are all masked out (False when unmasked)."""
    m = get_mask(module, name)
    if m is None:
        return torch.zeros(getattr(module, name).shape[0], dtype=torch.bool)
    return ~m.bool().flatten(1).any(1) if m.dim() > 1 else ~m.bool()


def _per_channel(member, units: torch.Tensor) -> torch.Tensor:
    """``units`` (bool per unit of the member's group) spread over the member's channels."""
    out = torch.zeros(member.index.numel(), dtype=torch.bool)
    sel = member.index >= 0
    out[sel] = units[member.index[sel]]
    return out


def dead_units(group) -> torch.Tensor:
    """Bool per unit of ``group``: pruned by :class:`Channel`, i.e. every filter of it (producers and
    grouped convolutions) and every BatchNorm scale on it masked out, so each of its channels
    computes a constant (zero, or a bias or BatchNorm shift: see :mod:`sw.prune.fold`)."""
    dead = torch.ones(group.units, dtype=torch.bool)
    for m in group.producers + group.followers:
        sel = (m.index >= 0) & ~_masked_out(m.module, "weight")
        dead[m.index[sel]] = False
    return dead


class Channel(Granularity):
    """One unit per set of coupled output channels (a conv filter / linear neuron, with every channel
    tied to it) of groups that can be removed (see :func:`sw.prune.graph.channel_groups`).

    ``reduce``: how a criterion's channel scores combine over a unit's channels (``"mean"`` or
    ``"sum"``, :func:`sw.prune.criteria.unit_scores`). ``fold``: keep a pruned unit's biases and
    BatchNorm shifts, whose constant output ``remove_channels`` folds into the next layers
    (:mod:`sw.prune.fold`), wherever that is exact; elsewhere, and always with ``fold=False``,
    zero them too so the unit computes zero."""

    name = "channel"

    def __init__(self, reduce: str = "mean", fold: bool = True):
        if reduce not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduce!r}; expected one of {', '.join(REDUCTIONS)}")
        self.reduce, self.fold = reduce, bool(fold)

    def __repr__(self):
        return f"Channel(reduce={self.reduce!r}, fold={self.fold})"

    def validate(self, pruner, layer):
        group = pruner.groups[layer]
        if group.blocked:
            raise ValueError(f"cannot prune channels of layer {layer}: {group.blocked}")

    def min_kept(self, pruner, layer):
        return 1

    def scores(self, pruner, layer, criterion):
        group = pruner.groups[layer]
        s = criterion.channel_scores(group, self.reduce).clone().float()
        s[dead_units(group)] = -torch.inf
        return s

    def apply(self, pruner, layer, prune):
        """Mask the units where ``prune`` is True; returns notes on shifts that had to be zeroed."""
        group = pruner.groups[layer]
        notes = []
        prune = prune.clone()
        for m in group.producers + group.followers:     # a coupled group may hold a layer's every unit
            mine = m.index[m.index >= 0].unique()
            if (prune | dead_units(group))[mine].all() and prune[mine].any():
                mine = mine[prune[mine]]
                best = mine[torch.argmax(self.scores(pruner, layer, pruner.criterion)[mine])]
                prune[best] = False
                notes.append(f"layer {layer}: kept unit {int(best)} so that {m.name} keeps a channel")
        for m in group.producers + group.followers:
            rows = _per_channel(m, prune)
            w = m.module.weight
            apply_mask(m.module, "weight", keep_mask(m.module) & ~rows.reshape(-1, *([1] * (w.dim() - 1))))
        zero = prune
        if self.fold and prune.any():
            ok, _, why = fold_plan(group, dead_units(group), node_values(pruner.model, group.graph, pruner.example))
            zero = prune & ~ok
            if zero.any():
                first = int(torch.nonzero(zero)[0])
                notes.append(f"layer {layer}: {int(zero.sum())} pruned unit(s) also lose their bias/BatchNorm "
                             f"shift, since their constant output cannot be folded: unit {first}: {why[first]}")
        for m in group.producers + group.followers:
            if m.module.bias is not None:
                apply_mask(m.module, "bias", keep_mask(m.module, "bias") & ~_per_channel(m, zero))
        return notes


def _groups_last(w: torch.Tensor) -> torch.Tensor:
    """A Linear or Conv2d weight with its input axis last: ``(out, in)`` or ``(out, kh, kw, in)``."""
    return w if w.dim() == 2 else w.permute(0, 2, 3, 1)


def nm_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Boolean N:M mask of a Linear ``(out, in)`` or Conv2d ``(out, in, kh, kw)`` weight (or its
    scores), grouped along the input axis; the selection is ``sw.pack.sparse24.mask_nm``'s."""
    if scores.dim() not in (2, 4):
        raise ValueError(f"expected a Linear (2-D) or Conv2d (4-D) weight, got shape {tuple(scores.shape)}")
    s = _groups_last(scores.detach().to("cpu", torch.float64)).numpy()
    mask = torch.from_numpy(np.ascontiguousarray(mask_nm(s, n, m)))
    if scores.dim() == 4:
        mask = mask.permute(0, 3, 1, 2)
    return mask.to(scores.device).contiguous()


class NM(Granularity):
    """N:M sparsity: in every group of ``m`` consecutive weights along the input dimension (conv:
    along input channels, per output channel and kernel position) keep the ``n`` most important.
    Sparsity is fixed at ``1 - n/m``, so it takes no ratio."""

    ranked = False

    def __init__(self, n: int = 2, m: int = 4):
        for k, v in (("n", n), ("m", m)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"N:M {k} must be an integer, got {v!r}")
        if not 1 <= n <= m:
            raise ValueError(f"N:M needs 1 <= n <= m, got n={n}, m={m}")
        self.n, self.m = int(n), int(m)
        self.name = f"{self.n}:{self.m}"

    def __repr__(self):
        return f"NM(n={self.n}, m={self.m})"

    def fits(self, module) -> bool:
        """Whether ``module``'s input dimension splits into groups of ``m``."""
        return module.weight.shape[1] % self.m == 0

    def validate(self, pruner, layer):
        module = pruner.layers[layer]
        if not self.fits(module):
            raise ValueError(f"{self.n}:{self.m} pruning of layer {layer}: its input dimension "
                             f"({module.weight.shape[1]}) is not a multiple of m={self.m}")

    def prune_layer(self, pruner, layer, criterion) -> None:
        """Apply the N:M mask of ``criterion``'s scores to ``layer`` (on top of its current mask)."""
        module = pruner.layers[layer]
        keep = keep_mask(module)
        s = criterion.weight_scores(layer, module).float().clone()
        s[~keep] = 0
        apply_mask(module, "weight", keep & nm_mask(s, self.n, self.m).to(keep.device))

    def violations(self, pruner) -> dict:
        """``{layer: groups holding more than n nonzeros}`` over ``pruner``'s layers; empty when
        every one holds N:M."""
        bad = {}
        for layer, module in pruner.layers.items():
            count = (_groups_last(module.weight.detach()).reshape(-1, self.m) != 0).sum(dim=1)
            if (count > self.n).any():
                bad[layer] = int((count > self.n).sum())
        return bad


GRANULARITIES = {"fine": FineGrained, "channel": Channel}


def granularity(name: str) -> Granularity:
    """A granularity by its command-line name: ``fine``, ``channel`` or ``N:M`` (e.g. ``2:4``)."""
    if name in GRANULARITIES:
        return GRANULARITIES[name]()
    if ":" in name:
        n, _, m = name.partition(":")
        if n.isdigit() and m.isdigit():
            return NM(int(n), int(m))
    raise ValueError(f"unknown granularity {name!r}; expected fine, channel or N:M such as 2:4")
