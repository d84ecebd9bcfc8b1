"""N:M structured sparsity (2:4 for the hardware) on a model's ``nn.Linear`` and ``nn.Conv2d`` layers.

Groups run along each layer's input axis: ``in_features`` of a Linear weight ``(out, in)``, input
channels of a Conv2d weight ``(out, in, kh, kw)`` at every ``(out, kh, kw)`` — the axis a 2:4 GEMM
contracts over. The mask (``sw.pack.mask_nm``: the ``n`` largest ``|w|`` of every ``m``, ties to the
lower index) is installed with ``torch.nn.utils.prune.custom_from_mask``: the module keeps
``weight_orig`` and a ``weight_mask`` buffer and recomputes ``weight = weight_orig * weight_mask``
in a forward pre-hook, so fine-tuning never revives a pruned weight (its gradient is zero).
"""

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from sw.pack.sparse24 import mask_nm

PRUNABLE = (nn.Linear, nn.Conv2d)


def _to_groups_last(w: torch.Tensor) -> torch.Tensor:
    """The weight with its input axis last: ``(out, in)`` or ``(out, kh, kw, in)``."""
    return w if w.dim() == 2 else w.permute(0, 2, 3, 1)


def nm_mask(weight: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Boolean N:M mask of a Linear or Conv2d weight, grouped along its input axis."""
    if weight.dim() not in (2, 4):
        raise ValueError(f"expected a Linear (2-D) or Conv2d (4-D) weight, got shape {tuple(weight.shape)}")
    w = _to_groups_last(weight.detach().to("cpu", torch.float64)).numpy()
    mask = torch.from_numpy(np.ascontiguousarray(mask_nm(w, n, m)))
    if weight.dim() == 4:
        mask = mask.permute(0, 3, 1, 2)
    return mask.to(weight.device).contiguous()


def apply_nm(model: nn.Module, n: int, m: int) -> dict:
    """Install an N:M mask on every Linear/Conv2d of ``model`` (in place), kept through training.

    Returns ``{layer name: "n:m"}`` for pruned layers and ``{layer name: reason}`` for the layers
    left dense because their input axis is not a multiple of ``m`` (e.g. a first conv on 1 channel).
    """
    report = {}
    for name, module in model.named_modules():
        if not isinstance(module, PRUNABLE):
            continue
        width = module.weight.shape[1]
        if width % m:
            report[name] = f"dense: {width} input {'channels' if module.weight.dim() == 4 else 'features'} " \
                           f"is not a multiple of {m}"
            continue
        prune.custom_from_mask(module, "weight", nm_mask(module.weight, n, m))
        report[name] = f"{n}:{m}"
    return report


def nm_violations(model: nn.Module, n: int, m: int) -> dict:
    """``{layer name: number of groups with more than n nonzeros}`` over the pruned layers (empty
    when every masked layer holds N:M)."""
    bad = {}
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE) and prune.is_pruned(module):
            w = _to_groups_last(module.weight.detach())
            count = (w.reshape(-1, m) != 0).sum(dim=1)
            if (count > n).any():
                bad[name] = int((count > n).sum())
    return bad


def remove_nm(model: nn.Module) -> None:
    """Make the masks permanent: every pruned layer's ``weight`` becomes an ordinary parameter."""
    for module in model.modules():
        if isinstance(module, PRUNABLE) and prune.is_pruned(module):
            prune.remove(module, "weight")
