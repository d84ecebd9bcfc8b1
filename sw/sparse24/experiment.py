"""Accuracy of N:M pruning on scikit-learn's 8×8 digits: dense, one-shot N:M, N:M + fine-tuning.

    python -m sw.sparse24.experiment --out out/sparse24        # the 2:4 accuracy table in BENCHMARKS.md

A small MLP and a small CNN are trained dense; for every pattern (2:4 first, then 1:4, 2:8, 4:8)
a copy is pruned with :func:`sw.sparse24.prune.apply_nm`, evaluated (one-shot), fine-tuned with the
mask held and evaluated again. Writes ``results.json``, ``results.md`` and ``accuracy.png``.
"""

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from sw.sparse24.prune import PRUNABLE, apply_nm, nm_violations

PATTERNS = ((2, 4), (1, 4), (2, 8), (4, 8))
RESULT_FILES = ("results.json", "results.md", "accuracy.png")


def load_digits_split(seed: int = 0, test_fraction: float = 0.3):
    """``(x_train, y_train, x_test, y_test)``: the 1,797 bundled 8×8 digits as ``(N, 1, 8, 8)`` floats
    in 0..1, split stratified by class."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.float32)[:, None] / 16.0
    xtr, xte, ytr, yte = train_test_split(x, digits.target, test_size=test_fraction, random_state=seed,
                                          stratify=digits.target)
    return (torch.from_numpy(xtr), torch.from_numpy(ytr).long(), torch.from_numpy(xte),
            torch.from_numpy(yte).long())


class DigitsMLP(nn.Sequential):
    """64 → 128 → 64 → 10, ReLU."""

    def __init__(self):
        super().__init__(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                         nn.Linear(64, 10))


class DigitsCNN(nn.Sequential):
    """conv 1→16 → conv 16→32 → pool → conv 32→32 → pool → linear 128→10 (3×3 convs, ReLU). The
    first conv has one input channel and stays dense under N:M."""

    def __init__(self):
        super().__init__(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(128, 10))


MODELS = {"mlp": DigitsMLP, "cnn": DigitsCNN}


def train(model, x, y, *, epochs: int, lr: float, seed: int, desc: str = "train", batch: int = 64):
    """Adam on cross-entropy; a pruned model keeps its masks (they live in forward pre-hooks)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in tqdm(range(epochs), desc=desc, leave=False, disable=None):
        order = torch.randperm(x.shape[0], generator=gen)
        for i in range(0, x.shape[0], batch):
            idx = order[i: i + batch]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
    return model


@torch.no_grad()
def accuracy(model, x, y) -> float:
    model.eval()
    return float((model(x).argmax(dim=1) == y).float().mean())


def weight_sparsity(model) -> float:
    """Fraction of zeros over the Linear/Conv2d weights (pruned or not)."""
    total = zeros = 0
    for module in model.modules():
        if isinstance(module, PRUNABLE):
            total += module.weight.numel()
            zeros += int((module.weight == 0).sum())
    return zeros / total


def run_experiment(*, models=("mlp", "cnn"), patterns=PATTERNS, epochs: int = 40, finetune_epochs: int = 15,
                   lr: float = 1e-3, finetune_lr: float = 3e-4, seed: int = 0, threads: int = 1) -> list:
    """One row per (model, pattern): accuracies dense / one-shot / fine-tuned, the weight sparsity and
    the layers left dense. Runs on ``threads`` torch threads (models this small lose time to more)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(models, patterns, epochs, finetune_epochs, lr, finetune_lr, seed)
    finally:
        torch.set_num_threads(previous)


def _run(models, patterns, epochs, finetune_epochs, lr, finetune_lr, seed):
    xtr, ytr, xte, yte = load_digits_split(seed)
    rows = []
    for name in models:
        torch.manual_seed(seed)
        dense = train(MODELS[name](), xtr, ytr, epochs=epochs, lr=lr, seed=seed, desc=f"{name} dense")
        dense_acc = accuracy(dense, xte, yte)
        for n, m in patterns:
            model = copy.deepcopy(dense)
            report = apply_nm(model, n, m)
            one_shot = accuracy(model, xte, yte)
            train(model, xtr, ytr, epochs=finetune_epochs, lr=finetune_lr, seed=seed + 1,
                  desc=f"{name} {n}:{m} fine-tune")
            violations = nm_violations(model, n, m)
            if violations:
                raise RuntimeError(f"{name} {n}:{m}: the mask did not hold through fine-tuning: {violations}")
            rows.append(dict(model=name, pattern=f"{n}:{m}", dense=dense_acc, one_shot=one_shot,
                             finetuned=accuracy(model, xte, yte), sparsity=weight_sparsity(model),
                             dense_layers=[f"{k} ({type(model.get_submodule(k)).__name__})"
                                           for k, v in report.items() if v.startswith("dense")]))
    return rows


def markdown(rows) -> str:
    lines = ["| model | pattern | dense | one-shot | + fine-tune | weight sparsity | left dense |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['pattern']} | {r['dense']:.2%} | {r['one_shot']:.2%} | "
                     f"{r['finetuned']:.2%} | {r['sparsity']:.1%} | {', '.join(r['dense_layers']) or '-'} |")
    return "\n".join(lines) + "\n"


def plot(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['model']}\n{r['pattern']}" for r in rows]
    pos = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rows)), 4))
    for k, (key, label) in enumerate([("dense", "dense"), ("one_shot", "one-shot N:M"),
                                      ("finetuned", "N:M + fine-tune")]):
        ax.bar(pos + (k - 1) * 0.27, [r[key] for r in rows], 0.27, label=label)
    ax.set_xticks(pos, labels)
    ax.set_ylabel("test accuracy (8×8 digits)")
    ax.set_ylim(min(r["one_shot"] for r in rows) * 0.95, 1.0)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(rows, out_dir, *, force: bool = False) -> list:
    """``results.json``, ``results.md`` and ``accuracy.png`` under ``out_dir``; existing files are
    kept unless ``force``."""
    out = Path(out_dir)
    paths = [out / f for f in RESULT_FILES]
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise FileExistsError(f"refusing to overwrite {', '.join(existing)} (use --force)")
    out.mkdir(parents=True, exist_ok=True)
    paths[0].write_text(json.dumps(rows, indent=1))
    paths[1].write_text(markdown(rows))
    plot(rows, paths[2])
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="directory for results.json/.md and accuracy.png")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--finetune-epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="overwrite existing result files")
    args = ap.parse_args(argv)
    existing = [str(args.out / f) for f in RESULT_FILES if (args.out / f).exists()]
    if existing and not args.force:
        raise SystemExit(f"refusing to overwrite {', '.join(existing)} (use --force)")
    rows = run_experiment(epochs=args.epochs, finetune_epochs=args.finetune_epochs, seed=args.seed)
    write_results(rows, args.out, force=True)
    print(markdown(rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
