"""Accuracy of N:M pruning on the 8×8 digits: dense, one-shot N:M, N:M + fine-tuning.

    python -m sw.prune.nm_accuracy --out out/sparse24        # the 2:4 accuracy table in BENCHMARKS.md

The toolkit's baselines (``lenet300`` and ``cnn``, ``sw.models.train.pretrained``) are pruned for
every pattern (2:4 first, then 1:4, 2:8, 4:8) from a fresh copy with :class:`~sw.prune.granularity.NM`
on every layer whose input dimension splits into groups of ``m`` (the others stay dense),
evaluated (one-shot), fine-tuned with ``sw.models.train.finetune`` (masks held) and evaluated
again on the test split. Writes ``results.json``, ``results.md`` and ``accuracy.png``.
"""

import argparse
import copy
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from sw.cli_io import CLIError, check_output_files, new_files
from sw.markdown import table
from sw.models import data as datasets
from sw.models.train import BASELINES, evaluate, finetune, pretrained
from sw.prune.granularity import NM
from sw.prune.graph import prunable_layers
from sw.prune.pruner import Pruner

MODELS = ("lenet300", "cnn")
PATTERNS = ((2, 4), (1, 4), (2, 8), (4, 8))
RESULT_FILES = ("results.json", "results.md", "accuracy.png")


def run_experiment(*, models=MODELS, patterns=PATTERNS, data: str = "digits", train_epochs: int | None = None,
                   finetune_epochs: int = 15, lr_scale: float = 0.1, seed: int = 0, threads: int = 1,
                   progress: bool = False) -> list:
    """One row per (model, pattern): test accuracy (%) dense / one-shot / fine-tuned, the masked
    weight sparsity and the layers left dense. Baselines follow ``BASELINES`` (``train_epochs``
    shortens them); fine-tuning runs at ``lr_scale`` of the training rate. Evaluation runs on
    ``threads`` torch threads, as training does (float sums depend on it)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(models, patterns, datasets.load(data), train_epochs, finetune_epochs, lr_scale, seed,
                    threads, progress)
    finally:
        torch.set_num_threads(previous)


def _run(models, patterns, d, train_epochs, finetune_epochs, lr_scale, seed, threads, progress):
    rows = []
    for name in models:
        cfg = replace(BASELINES[name], seed=seed, threads=threads)
        if train_epochs is not None:
            cfg = replace(cfg, epochs=train_epochs)
        dense, _ = pretrained(name, d.name, cfg, progress=progress)
        dense_acc = evaluate(dense, d.x_test, d.y_test)
        for n, m in patterns:
            model = copy.deepcopy(dense)
            nm = NM(n, m)
            layers = prunable_layers(model)
            pruner = Pruner(model, nm, layers=[k for k, mod in layers.items() if nm.fits(mod)])
            report = pruner.prune()
            one_shot = evaluate(model, d.x_test, d.y_test)
            finetune(model, d, cfg, finetune_epochs, lr_scale=lr_scale, progress=progress,
                     desc=f"{name} {nm.name} fine-tune")
            violations = nm.violations(pruner)
            if violations:
                raise RuntimeError(f"{name} {nm.name}: the mask did not hold through fine-tuning: {violations}")
            rows.append(dict(model=name, pattern=nm.name, dense=dense_acc, one_shot=one_shot,
                             finetuned=evaluate(model, d.x_test, d.y_test),
                             sparsity=report.after.masked_sparsity,
                             dense_layers=[f"{k} ({type(mod).__name__})" for k, mod in layers.items()
                                           if k not in pruner.layers]))
    return rows


def markdown(rows) -> str:
    cells = [[r["model"], r["pattern"], f"{r['dense']:.2f}%", f"{r['one_shot']:.2f}%", f"{r['finetuned']:.2f}%",
              f"{r['sparsity']:.1%}", ", ".join(r["dense_layers"]) or "-"] for r in rows]
    return "\n".join(table(["model", "pattern", "dense", "one-shot", "+ fine-tune", "weight sparsity",
                            "left dense"], cells)) + "\n"


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
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(min(r["one_shot"] for r in rows) * 0.95, 100.0)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_results(rows, out_dir, *, force: bool = False) -> list:
    """``results.json``, ``results.md`` and ``accuracy.png`` under ``out_dir``, appearing together;
    existing files are kept unless ``force`` (``OutputExists``)."""
    paths = check_output_files(out_dir, RESULT_FILES, force=force, option=None)
    with new_files(out_dir) as stage:
        (stage / paths[0].name).write_text(json.dumps(rows, indent=1))
        (stage / paths[1].name).write_text(markdown(rows))
        plot(rows, stage / paths[2].name)
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sw.prune.nm_accuracy", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="directory for results.json/.md and accuracy.png")
    ap.add_argument("--data", default="digits", choices=datasets.DATASETS)
    ap.add_argument("--finetune-epochs", type=int, default=15)
    ap.add_argument("--lr-scale", type=float, default=0.1, help="fine-tuning lr as a fraction of training lr")
    ap.add_argument("--seed", type=int, default=0, help="baseline training and fine-tuning seed")
    ap.add_argument("--force", action="store_true", help="overwrite existing result files")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        check_output_files(args.out, RESULT_FILES, force=args.force)
    except CLIError as e:
        raise SystemExit(f"{ap.prog}: error: {e}") from None
    rows = run_experiment(data=args.data, finetune_epochs=args.finetune_epochs, lr_scale=args.lr_scale,
                          seed=args.seed, progress=not args.no_progress)
    write_results(rows, args.out, force=True)
    print(markdown(rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
