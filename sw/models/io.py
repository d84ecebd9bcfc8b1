"""Save and load models as a ``state_dict`` plus a recorded architecture — no pickled objects.

The file is safetensors: the tensors, and in its metadata a JSON ``architecture`` (the model
class, its constructor ``config``, the shape of every Linear/Conv2d/BatchNorm — which differs from
the config after channels were physically removed — the masked parameters and the weight-shared
layers) and a JSON ``info`` (anything the caller records: accuracies, recipe, report).
"""

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save
from torch import nn

from sw.cli_io import atomic_write, check_output_file
from sw.models import registry

FORMAT = "sparsehw-model-1"


def _spec(m: nn.Module):
    if isinstance(m, nn.Linear):
        return {"type": "Linear", "in_features": m.in_features, "out_features": m.out_features,
                "bias": m.bias is not None}
    if isinstance(m, nn.Conv2d):
        return {"type": "Conv2d", "in_channels": m.in_channels, "out_channels": m.out_channels,
                "kernel_size": list(m.kernel_size), "stride": list(m.stride), "padding": list(m.padding),
                "dilation": list(m.dilation), "groups": m.groups, "bias": m.bias is not None}
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return {"type": type(m).__name__, "num_features": m.num_features, "eps": m.eps,
                "momentum": m.momentum,
                "affine": m.affine, "track_running_stats": m.track_running_stats}
    return None


def _from_spec(spec: dict) -> nn.Module:
    kw = {k: v for k, v in spec.items() if k != "type"}
    for k in ("kernel_size", "stride", "padding", "dilation"):
        if k in kw:
            kw[k] = tuple(kw[k])
    cls = {"Linear": nn.Linear, "Conv2d": nn.Conv2d, "BatchNorm1d": nn.BatchNorm1d,
           "BatchNorm2d": nn.BatchNorm2d}.get(spec["type"])
    if cls is None:
        raise ValueError(f"unknown module type {spec['type']!r} in a saved architecture")
    return cls(**kw)


def architecture(model: nn.Module) -> dict:
    """The JSON-able record from which :func:`build_architecture` rebuilds ``model``'s structure."""
    from sw.prune.masks import masked_names
    from sw.prune.share import shared_size

    cls = type(model).__name__
    if cls not in registry.ARCHITECTURES or not hasattr(model, "config"):
        raise ValueError(f"cannot record the architecture of a {cls}: only "
                         f"{', '.join(registry.ARCHITECTURES)} "
                         "models (with a .config) can be saved without pickling")
    arch = {"format": FORMAT, "class": cls, "config": model.config, "modules": {}, "masks": {}, "shared": {}}
    for name, m in model.named_modules():
        spec = _spec(m)
        if spec is not None:
            arch["modules"][name] = spec
        if masked_names(m):
            arch["masks"][name] = masked_names(m)
        n = shared_size(m)
        if n is not None:
            arch["shared"][name] = n
    return arch


def build_architecture(arch: dict) -> nn.Module:
    """An untrained model with exactly the recorded structure (shapes, masks, shared layers)."""
    from sw.prune.masks import apply_mask
    from sw.prune.share import install_shared

    if arch.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} architecture record (format {arch.get('format')!r})")
    model = registry.from_config(arch["class"], arch["config"])
    modules = dict(model.named_modules())
    for name, spec in arch["modules"].items():
        if name not in modules:
            raise ValueError(f"saved architecture names a module {name!r} the model does not have")
        if _spec(modules[name]) != spec:
            parent, _, leaf = name.rpartition(".")
            setattr(modules[parent] if parent else model, leaf, _from_spec(spec))
    modules = dict(model.named_modules())
    for name, n in arch["shared"].items():
        shape = modules[name].weight.shape
        install_shared(modules[name], torch.zeros(n), torch.zeros(shape, dtype=torch.long))
    for name, params in arch["masks"].items():
        for p in params:
            apply_mask(modules[name], p, torch.ones_like(getattr(modules[name], p)))
    return model


def save_model(model: nn.Module, path, info: dict | None = None, force: bool = False) -> Path:
    """Write ``model`` to ``path`` (safetensors, complete or not at all). Refuses to overwrite an
    existing file unless ``force`` (``OutputExists``, a ``FileExistsError``)."""
    path = check_output_file(path, force=force, option=None)
    arch = architecture(model)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"architecture": json.dumps(arch), "info": json.dumps(info or {})}
    data = save(state, metadata=meta)
    return atomic_write(path, lambda f: f.write(data))


def load_model(path):
    """Load a model written by :func:`save_model`: returns ``(model, {"architecture": ..., "info": ...})``,
    the model in eval mode. ``FileNotFoundError`` when there is no file, ``ValueError`` naming it
    when it is not a sparsehw model."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved model at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - safetensors reports damaged files with its own error types
        raise ValueError(f"{path}: not a safetensors file ({e})") from None
    if "architecture" not in meta:
        raise ValueError(f"{path} is not a sparsehw model (no recorded architecture)")
    try:
        arch = json.loads(meta["architecture"])
        model = build_architecture(arch)
        model.load_state_dict(state, strict=True)
        info = json.loads(meta.get("info", "{}"))
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise ValueError(f"{path}: its recorded architecture does not build ({e})") from None
    from sw.prune.masks import enforce_masks
    from sw.prune.share import refresh_shared

    refresh_shared(model)
    enforce_masks(model)
    model.eval()
    return model, {"architecture": arch, "info": info}
