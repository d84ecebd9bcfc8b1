"""Masks that persist: a ``{param}_mask`` buffer per masked parameter, enforced on every forward.

A forward pre-hook multiplies each masked parameter by its mask, so the module computes with the
pruned weights whatever trained it; :func:`mask_gradients` and :func:`enforce_masks` (called by
``sw.models.train`` around each optimiser step) keep the pruned entries exactly zero in between.
The masks are buffers, so they live in ``state_dict`` and survive save/load and ``deepcopy``.
"""

import torch
from torch import nn

_ATTR = "_sparsehw_masked"   # names of a module's masked parameters


def _hook(module, _inputs):
    enforce_module(module)


def enforce_module(module: nn.Module) -> None:
    """Zero the pruned entries of every masked parameter of ``module`` (not its children)."""
    with torch.no_grad():
        for name in getattr(module, _ATTR, ()):
            getattr(module, name).mul_(getattr(module, f"{name}_mask"))


def apply_mask(module: nn.Module, name: str, mask: torch.Tensor) -> None:
    """Install (or replace) the mask of parameter ``name`` of ``module`` and zero its pruned entries.

    ``mask``: bool/0-1 tensor of the parameter's shape; 1 keeps, 0 prunes.
    """
    param = getattr(module, name, None)
    if not isinstance(param, nn.Parameter):
        raise ValueError(f"{type(module).__name__} has no parameter {name!r} to mask")
    if tuple(mask.shape) != tuple(param.shape):
        raise ValueError(f"mask shape {tuple(mask.shape)} differs from {name} shape {tuple(param.shape)}")
    buf = mask.detach().to(dtype=param.dtype, device=param.device).clone()
    if name in getattr(module, _ATTR, ()):
        setattr(module, f"{name}_mask", buf)
    else:
        module.register_buffer(f"{name}_mask", buf)
        if not hasattr(module, _ATTR):
            setattr(module, _ATTR, [])
            module.register_forward_pre_hook(_hook)
        getattr(module, _ATTR).append(name)
    enforce_module(module)


def get_mask(module: nn.Module, name: str = "weight"):
    """The mask (float 0/1 tensor) of ``module.name``, or ``None`` when it is not masked."""
    if name in getattr(module, _ATTR, ()):
        return getattr(module, f"{name}_mask")
    return None


def keep_mask(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """Bool tensor of the entries of ``module.name`` still alive (all True when unmasked)."""
    m = get_mask(module, name)
    p = getattr(module, name)
    return torch.ones(p.shape, dtype=torch.bool) if m is None else m.bool()


def masked_names(module: nn.Module) -> list:
    """Names of the masked parameters of ``module`` (not its children)."""
    return list(getattr(module, _ATTR, ()))


def remove_mask(module: nn.Module, name: str) -> None:
    """Drop the mask of ``module.name`` (the parameter keeps its current, pruned values)."""
    names = getattr(module, _ATTR, [])
    if name in names:
        names.remove(name)
        delattr(module, f"{name}_mask")


def set_masked_param(module: nn.Module, name: str, value: torch.Tensor, mask=None) -> None:
    """Replace parameter ``name`` by ``value`` (a new shape, e.g. after removing channels), and its
    mask by ``mask`` when the parameter is masked."""
    trainable = getattr(module, name).requires_grad
    setattr(module, name, nn.Parameter(value.detach().clone(), requires_grad=trainable))
    if name in getattr(module, _ATTR, ()):
        setattr(module, f"{name}_mask", mask.detach().clone())


def mask_gradients(model: nn.Module) -> None:
    """Zero the gradients of pruned entries (so momentum and weight decay cannot revive them)."""
    for module in model.modules():
        for name in getattr(module, _ATTR, ()):
            p = getattr(module, name)
            if p.grad is not None:
                p.grad.mul_(getattr(module, f"{name}_mask"))


def enforce_masks(model: nn.Module) -> None:
    """Zero the pruned entries of every masked parameter in ``model``."""
    for module in model.modules():
        enforce_module(module)
        for fn in _refreshers:
            fn(module)


_refreshers = []


def register_refresher(fn) -> None:
    """Register ``fn(module)``, called by :func:`enforce_masks` on every module (weight sharing
    uses it to rebuild shared weights after an optimiser step)."""
    _refreshers.append(fn)
