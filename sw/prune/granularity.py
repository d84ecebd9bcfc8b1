"""Granularities: what one pruning decision removes.

* :class:`FineGrained` — single weights (unstructured; what EIE exploits).
* :class:`Channel` — whole output channels (conv filters, linear neurons) together with
  everything they feed: their bias, the BatchNorm channel after them (masked) and, at
  :func:`sw.prune.removal.remove_channels`, the consumers' input channels (physically removed).
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

    def apply(self, pruner, layer: str, prune: torch.Tensor) -> None:
        """Prune the units where ``prune`` (1-D bool, one per unit) is True."""
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


def dead_channels(group) -> torch.Tensor:
    """Bool per output channel of ``group``: pruned by :class:`Channel`, i.e. its weight row, bias
    and the scale and shift of every BatchNorm after it are all masked out, so the channel's
    activation is exactly zero and removing it changes nothing."""
    dead = _masked_out(group.producer, "weight")
    if group.producer.bias is not None:
        dead &= _masked_out(group.producer, "bias")
    for _, bn in group.followers:
        if bn.weight is not None:
            dead &= _masked_out(bn, "weight") & _masked_out(bn, "bias")
    return dead


class Channel(Granularity):
    """One unit per output channel (conv filter / linear neuron) of layers whose channels can be
    removed (see :func:`sw.prune.graph.channel_groups`)."""

    name = "channel"

    def validate(self, pruner, layer):
        group = pruner.groups[layer]
        if group.blocked:
            raise ValueError(f"cannot prune channels of layer {layer}: {group.blocked}")

    def min_kept(self, pruner, layer):
        return 1

    def scores(self, pruner, layer, criterion):
        group = pruner.groups[layer]
        s = criterion.channel_scores(group).clone().float()
        s[dead_channels(group)] = -torch.inf
        return s

    def apply(self, pruner, layer, prune):
        group = pruner.groups[layer]
        w = group.producer.weight
        row = prune.reshape(-1, *([1] * (w.dim() - 1)))
        apply_mask(group.producer, "weight", keep_mask(group.producer) & ~row)
        if group.producer.bias is not None:
            apply_mask(group.producer, "bias", keep_mask(group.producer, "bias") & ~prune)
        for _, bn in group.followers:
            if bn.weight is not None:
                apply_mask(bn, "weight", keep_mask(bn, "weight") & ~prune)
                apply_mask(bn, "bias", keep_mask(bn, "bias") & ~prune)


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
