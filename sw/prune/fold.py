"""The constant a pruned channel still computes, and folding it into the layers that read it.

A unit pruned by :class:`~sw.prune.granularity.Channel` has its producers' filters, its grouped
convolution filters and its BatchNorm scales masked, so each of its channels computes a constant,
the same in training and evaluation: the last bias or BatchNorm shift ``β`` on its way, through
whatever follows (``relu(β)`` after a ReLU). Removing the unit exactly means adding that
constant's contribution to every consumer:

* a Linear: ``W[:, cols] @ value`` — always exact, even for position-dependent values after a
  flatten;
* a Conv2d: ``conv(value map, W)``, exact only where it is the same at every output position. With
  zero padding the border positions see fewer terms, so a *nonzero* constant before a padded
  convolution cannot become a bias (it would need a per-position bias, which this does not do).

:func:`fold_into` adds the contribution to the consumer's bias; a bias-free consumer whose only
user is a BatchNorm shifts that BatchNorm's running mean instead (exact in evaluation; in training
the batch statistics absorb a constant anyway); any other bias-free consumer gets a bias.

Values are measured rather than derived: the traced model runs on a seeded random probe of two
samples. A unit's channels must be equal for both samples (a pruned unit cannot depend on the
input) and its contribution equal at every position, to ``TOLERANCE`` of the sum of the absolute
terms. A unit that fails is not foldable: ``Channel`` zeroes its shifts when it prunes it (it then
computes zero, which needs no folding), and ``remove_channels`` keeps it and says why.
"""

import torch
from torch import nn

from sw.prune.graph import example_input

TOLERANCE = 1e-6
PROBE_SEED = 0


@torch.no_grad()
def node_values(model: nn.Module, gm, example=None) -> dict:
    """``{node: output}`` of every node of ``gm`` (``model`` traced) on a seeded random batch of two
    inputs shaped like ``example`` (default: zeros of ``model.input_shape``), in eval mode."""
    shape = example_input(model, example).shape[1:]
    probe = torch.rand((2, *shape), generator=torch.Generator().manual_seed(PROBE_SEED))
    interp = torch.fx.Interpreter(gm, garbage_collect_values=False)
    was_training = model.training
    model.eval()
    try:
        interp.run(probe)
    finally:
        model.train(was_training)
    return interp.env


def _contribution(module, cols, z, shape):
    """``(delta per output, exact)``: what input channels ``cols`` holding ``z`` (one sample) add to
    ``module``'s output, and whether that is the same at every output position."""
    w = module.weight.detach()
    if isinstance(module, nn.Linear):
        return w[:, cols] @ z[0], True
    x = torch.zeros((1, *shape[1:]), dtype=z.dtype)
    x[:, cols] = z
    out = module._conv_forward(x, w, None)[0]
    scale = module._conv_forward(x.abs(), w.abs(), None).max()
    mid = out[:, out.shape[1] // 2, out.shape[2] // 2]
    return mid, bool((out - mid[:, None, None]).abs().max() <= TOLERANCE * scale)


@torch.no_grad()
def fold_plan(group, dead: torch.Tensor, values: dict):
    """Which ``dead`` units (bool per unit) of ``group`` can be folded, and what folding them adds to
    each consumer: ``(foldable per unit, {consumer name: (member, delta per output)}, {unit: why not})``."""
    ok, why, parts = dead.clone(), {}, []
    for c in group.consumers:
        hit = c.index >= 0
        hit[hit.clone()] = dead[c.index[hit]]
        if not hit.any():
            continue
        x = values[c.node]
        for u in c.index[hit].unique().tolist():
            cols = c.index == u
            z = x[:, cols]
            if (z[0] - z[1]).abs().max() > TOLERANCE * z.abs().max():
                ok[u], why[u] = False, f"its value reaching {c.name} depends on the input"
            elif z[0].any():
                delta, exact = _contribution(c.module, cols, z[:1], x.shape)
                if exact:
                    parts.append((c, u, delta))
                else:
                    ok[u] = False
                    why[u] = (f"its constant output reaches {c.name}, a convolution with padding "
                              f"{tuple(c.module.padding)}, where it adds less at the border than inside "
                              "(no single bias folds it)")
    deltas = {}
    for c, u, delta in parts:
        if ok[u]:
            deltas[c.name] = (c, deltas[c.name][1] + delta if c.name in deltas else delta)
    return ok, deltas, why


@torch.no_grad()
def fold_into(member, delta: torch.Tensor) -> str:
    """Add ``delta`` (per output) to consumer ``member``'s output for good; returns where it went."""
    m = member.module
    if m.bias is not None:
        m.bias.add_(delta)
        return f"{member.name}.bias"
    if member.bn_after is not None and member.bn_after[1].running_mean is not None:
        member.bn_after[1].running_mean.sub_(delta)
        return f"{member.bn_after[0]}.running_mean"
    m.bias = nn.Parameter(delta.clone(), requires_grad=m.weight.requires_grad)
    return f"{member.name}.bias (new)"
