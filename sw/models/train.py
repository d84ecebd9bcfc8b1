"""Seeded, reproducible CPU training and evaluation, and trained baselines cached on disk.

The cache directory is ``$SPARSEHW_CACHE`` or ``~/.cache/sparsehw``; a baseline is keyed by a
hash of (model, dataset, training recipe, code version), so a changed recipe trains afresh and
nothing stale is reused. Nothing in the cache is committed.
"""

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from sw.models import data as datasets
from sw.models import registry
from sw.prune.masks import enforce_masks, mask_gradients

CACHE_VERSION = 1   # bump when training code changes what a cached baseline means
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """One training recipe: SGD with momentum, ``schedule`` (cosine decay or constant) from ``lr``."""

    epochs: int = 20
    lr: float = 0.05
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    seed: int = 0
    threads: int = 1   # CPU threads; part of the recipe because float sums depend on it

    def __post_init__(self):
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"need epochs >= 0, batch_size >= 1 and lr > 0, got {self}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; expected one of {', '.join(SCHEDULES)}")


# Baseline recipes (chosen on the validation split of mnist; used for digits too).
BASELINES = {
    "lenet300": TrainConfig(epochs=30, lr=0.1, weight_decay=1e-4),
    "cnn": TrainConfig(epochs=20, lr=0.05, weight_decay=1e-4),
    "resnet": TrainConfig(epochs=10, lr=0.05, weight_decay=1e-4),      # not tuned: the cnn recipe, shorter
    "mobilenet": TrainConfig(epochs=10, lr=0.05, weight_decay=1e-4),   # not tuned: the cnn recipe, shorter
}


def cache_dir() -> Path:
    """``$SPARSEHW_CACHE`` if set, else ``~/.cache/sparsehw``."""
    env = os.environ.get("SPARSEHW_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "sparsehw"


def _tensor(a):
    return torch.as_tensor(np.asarray(a))


@torch.no_grad()
def predict(model: nn.Module, x, batch_size: int = 1000) -> torch.Tensor:
    """Class predictions (int64) of ``model`` in eval mode on ``x``."""
    was_training = model.training
    model.eval()
    x = _tensor(x)
    out = torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, x.shape[0], batch_size)])
    model.train(was_training)
    return out


def evaluate(model: nn.Module, x, y) -> float:
    """Accuracy of ``model`` on ``(x, y)`` in percent."""
    y = _tensor(y)
    return 100.0 * (predict(model, x) == y).double().mean().item()


def bn_subset(data, n: int):
    """The ``n`` training samples of ``data`` that BatchNorm statistics are re-estimated on: one
    fixed seeded subset (the same for every caller), in training-set order."""
    if int(n) < 0:
        raise ValueError(f"bn_samples must be >= 0, got {n!r}")
    return data.x_train[np.sort(np.random.default_rng(1).permutation(len(data.x_train))[:int(n)])]


def recalibrate_bn(model, x, batch: int = 500) -> None:
    """Re-estimate every BatchNorm's running statistics of ``model`` from ``x`` (no gradients, every
    other module in eval mode): removed channels shift what later layers see, which stale
    statistics ignore (the adaptive BN of EagleEye, Li et al. 2020)."""
    bns = [b for b in model.modules() if isinstance(b, nn.modules.batchnorm._BatchNorm) and b.track_running_stats]
    if not bns:
        return
    was_training, momenta = model.training, [b.momentum for b in bns]
    model.eval()
    for b in bns:
        b.reset_running_stats()
        b.momentum = None                   # a cumulative average over the batches
        b.train()
    x = torch.as_tensor(np.asarray(x))
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            model(x[i:i + batch])
    for b, mo in zip(bns, momenta, strict=True):
        b.momentum = mo
    model.train(was_training)


def train(model: nn.Module, data: "datasets.Dataset", cfg: TrainConfig, penalties=(), progress: bool = True,
          desc: str = "train") -> list:
    """Train ``model`` in place on ``data``'s training split; returns per-epoch history dicts
    (``epoch``, ``loss``, ``val_acc``).

    ``penalties``: callables ``p(model) -> scalar tensor`` added to the loss (L1/L2, slimming).
    Masked parameters stay pruned (their gradients are zeroed and masks re-applied every step).
    Deterministic for a given ``cfg.seed`` and ``cfg.threads`` on one machine.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(model, data, cfg, penalties, progress, desc)
    finally:
        torch.set_num_threads(threads)


def _train(model, data, cfg, penalties, progress, desc):
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    x, y = _tensor(data.x_train), _tensor(data.y_train)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-x.shape[0] // cfg.batch_size)
    total = max(1, cfg.epochs * steps_per_epoch)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, total) if cfg.schedule == "cosine"
             else torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0))
    history = []
    bar = tqdm(range(cfg.epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        perm = torch.randperm(x.shape[0], generator=gen)
        running, seen = 0.0, 0
        for i in range(0, x.shape[0], cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            ce = loss.item()
            for p in penalties:
                loss = loss + p(model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            mask_gradients(model)
            opt.step()
            enforce_masks(model)
            sched.step()
            running += ce * idx.shape[0]
            seen += idx.shape[0]
        val = evaluate(model, data.x_val, data.y_val)
        history.append({"epoch": epoch + 1, "loss": running / seen, "val_acc": val})
        bar.set_postfix(loss=f"{running / seen:.4f}", val=f"{val:.2f}")
    model.eval()
    return history


def finetune(model: nn.Module, data, cfg: TrainConfig, epochs: int, lr_scale: float = 0.1, penalties=(),
             schedule: str = "cosine", progress: bool = True, desc: str = "fine-tune") -> list:
    """Fine-tune a pruned model for ``epochs`` epochs starting at ``lr_scale`` (1/10 or 1/100, say)
    of the training rate ``cfg.lr`` (then ``schedule``: cosine decay or constant); masks persist."""
    if not 0 < lr_scale <= 1:
        raise ValueError(f"lr_scale must be in (0, 1], got {lr_scale}")
    ft = replace(cfg, epochs=epochs, lr=cfg.lr * lr_scale, schedule=schedule)
    return train(model, data, ft, penalties=penalties, progress=progress, desc=desc)


def baseline_key(model_name: str, data_name: str, cfg: TrainConfig) -> str:
    blob = json.dumps({"model": model_name, "data": data_name, "cfg": asdict(cfg), "v": CACHE_VERSION},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def pretrained(model_name: str, data_name: str, cfg: TrainConfig | None = None, progress: bool = True):
    """The trained baseline ``model_name`` on ``data_name`` (recipe ``cfg``, default
    ``BASELINES[model_name]``): loaded from the cache, or trained (seeded) and cached.

    Returns ``(model, info)`` with ``info`` holding the recipe, cache path and accuracies.
    """
    from sw.models.io import load_model, save_model

    cfg = cfg or BASELINES.get(model_name) or TrainConfig()
    data = datasets.load(data_name)
    key = baseline_key(model_name, data_name, cfg)
    path = cache_dir() / "baselines" / f"{model_name}-{data_name}-{key}.safetensors"
    if path.exists():
        model, meta = load_model(path)
        return model, meta["info"]
    model = registry.build(model_name, data.input_shape, data.classes, seed=cfg.seed)
    history = train(model, data, cfg, progress=progress, desc=f"train {model_name}/{data_name}")
    info = {"model": model_name, "data": data_name, "train": asdict(cfg), "path": str(path),
            "val_acc": evaluate(model, data.x_val, data.y_val),
            "test_acc": evaluate(model, data.x_test, data.y_test), "history": history}
    save_model(model, path, info=info, force=True)     # atomic: parallel runs never see half a file
    return model, info
