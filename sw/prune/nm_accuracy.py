"""Accuracy of N:M pruning on the 8×8 digits: dense, one-shot N:M, N:M + fine-tuning.

    python -m sw.prune.nm_accuracy --out out/sparse24        # the 2:4 accuracy table in BENCHMARKS.md

The toolkit's baselines (``lenet300`` and ``cnn``, ``sw.models.train.pretrained``) are pruned for
every pattern (2:4 first, then 1:4, 2:8, 4:8) from a fresh copy with :class:`~sw.prune.granularity.NM`
on every layer whose input dimension splits into groups of ``m`` (the others stay dense),
evaluated (one-shot), fine-tuned with ``sw.models.train.finetune`` (masks held) and evaluated
again on the test split. Writes ``results.json``, ``results.md`` and ``accuracy.png``.

:func:`finetuned_24_lenet_layer` gives one 2:4 fine-tuned layer of LeNet-300-100 in integers for the
2:4 MAC hardware (docs/spec.md §4.3): int8 weights and the int8 inputs that layer sees on test digits.
"""

import argparse
import copy
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from sw.cli_io import CLIError, check_output_files, new_files
from sw.formats import INT8_MAX, INT8_MIN
from sw.markdown import table
from sw.models import data as datasets
from sw.models import registry
from sw.models.train import BASELINES, evaluate, finetune, pretrained
from sw.prune.export import _exp_for
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


@dataclass(frozen=True)
class Layer24:
    """One 2:4 fine-tuned LeNet-300-100 layer in integers (what :func:`finetuned_24_lenet_layer` gives).

    ``weight``: ``(rows, K)`` int8, at most 2 nonzeros in every group of 4 along ``K``, the layer's
    float weights ``≈ weight · 2**-weight_exp``; ``x``: ``(n, K)`` int8, the layer's inputs on the
    first ``n`` test digits ``≈ x · 2**-in_exp`` (clamped to int8); ``labels``: those digits' classes;
    ``float_out``: the fine-tuned float layer's outputs on them (before any ReLU), so
    ``weight @ x[b] · 2**-(weight_exp + in_exp) ≈ float_out[b]``. Test accuracies (%) of the whole
    network: ``dense`` (the baseline), ``one_shot`` (2:4 masks, no fine-tuning), ``finetuned``
    and ``quantized`` (fine-tuned, this layer computing on the int8 weights and inputs);
    ``pruned``: the layers under 2:4 masks.
    """

    name: str
    weight: np.ndarray
    weight_exp: int
    x: np.ndarray
    in_exp: int
    labels: np.ndarray
    float_out: np.ndarray
    dense: float
    one_shot: float
    finetuned: float
    quantized: float
    pruned: tuple


def _int8(a: np.ndarray, exp: int) -> np.ndarray:
    """docs/spec.md §1.4's power-of-two quantisation, to int8: ``clamp(round(a · 2**exp))``."""
    return np.clip(np.rint(a * 2.0 ** exp), INT8_MIN, INT8_MAX).astype(np.int8)


@torch.no_grad()
def _layer_io(model, layer, x):
    """The inputs and outputs of module ``layer`` of ``model`` (eval mode) on ``x``, as float64."""
    seen = {}
    hook = layer.register_forward_hook(lambda m, i, o: seen.update(i=i[0], o=o))
    try:
        model.eval()
        model(torch.as_tensor(np.asarray(x)))
    finally:
        hook.remove()
    return seen["i"].double().numpy(), seen["o"].double().numpy()


def finetuned_24_lenet_layer(layer: str = "fc2", *, n_inputs: int = 20, data: str = "mnist",
                             prune_all: bool = True, finetune_epochs: int = 10, lr_scale: float = 0.1,
                             seed: int = 0, threads: int = 1, train_epochs: int | None = None,
                             progress: bool = False) -> Layer24:
    """A 2:4 fine-tuned LeNet-300-100 and the integer form of its layer ``layer`` (``fc1``, ``fc2``
    or ``fc3``) for the 2:4 MAC.

    The cached ``lenet300`` baseline on ``data`` (``sw.models.train.pretrained``, the recipe of
    ``BASELINES`` with ``seed``/``threads``; ``train_epochs`` shortens it) gets 2:4 masks
    (:class:`~sw.prune.granularity.NM`, along the input axis) on every layer (``prune_all``, all
    three fit) or on ``layer`` alone, and ``finetune_epochs`` of fine-tuning at ``lr_scale`` of the
    training rate, masks held, as :func:`run_experiment` does (on ``mnist``, 10 epochs take about
    a second on one thread). Then, as docs/spec.md §1.4 scales to int16 but for the
    int8 MAC: the weights as ``round(w · 2**f)``, ``f`` the largest with ``max|w| · 2**f <= 127``;
    the inputs as ``round(x · 2**e)`` clamped to int8, ``e`` the largest with the layer's largest input
    over the training split ``· 2**e <= 127``; ``x`` holds the first ``n_inputs`` test digits'.
    Rounding only adds zeros, so the int8 matrix stays 2:4. See :class:`Layer24`.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _finetuned_24(layer, n_inputs, datasets.load(data), prune_all, finetune_epochs, lr_scale, seed,
                             threads, train_epochs, progress)
    finally:
        torch.set_num_threads(previous)


def _finetuned_24(layer, n_inputs, d, prune_all, finetune_epochs, lr_scale, seed, threads, train_epochs,
                  progress):
    cfg = replace(BASELINES["lenet300"], seed=seed, threads=threads)
    if train_epochs is not None:
        cfg = replace(cfg, epochs=train_epochs)
    names = list(prunable_layers(registry.build("lenet300", d.input_shape, d.classes)))
    if layer not in names:                  # checked before any training
        raise ValueError(f"lenet300 has no layer {layer!r}; its layers are {', '.join(names)}")
    if not 1 <= n_inputs <= len(d.x_test):
        raise ValueError(f"n_inputs must be 1..{len(d.x_test)} (the test digits), got {n_inputs}")
    dense, _ = pretrained("lenet300", d.name, cfg, progress=progress)
    layers = prunable_layers(dense)
    nm = NM(2, 4)
    pruned = [k for k, mod in layers.items() if nm.fits(mod)] if prune_all else [layer]
    model = copy.deepcopy(dense)
    pruner = Pruner(model, nm, layers=pruned)
    pruner.prune()
    one_shot = evaluate(model, d.x_test, d.y_test)
    finetune(model, d, cfg, finetune_epochs, lr_scale=lr_scale, progress=progress,
             desc=f"lenet300 2:4 fine-tune ({', '.join(pruned)})")
    if nm.violations(pruner):
        raise RuntimeError(f"lenet300 2:4: the mask did not hold through fine-tuning: {nm.violations(pruner)}")

    module = dict(model.named_modules())[layer]
    w = module.weight.detach().double().numpy()
    weight_exp = _exp_for(float(np.abs(w).max()), INT8_MAX)
    w_int = _int8(w, weight_exp)
    calib, _ = _layer_io(model, module, d.x_train)
    in_exp = _exp_for(float(np.abs(calib).max()), INT8_MAX)
    x_in, out = _layer_io(model, module, d.x_test[:n_inputs])

    quantized = copy.deepcopy(model)
    q_module = dict(quantized.named_modules())[layer]
    with torch.no_grad():
        q_module.weight.copy_(torch.from_numpy(w_int.astype(np.float64) * 2.0 ** -weight_exp))
    hook = q_module.register_forward_pre_hook(
        lambda m, i: (torch.clamp(torch.round(i[0] * 2.0 ** in_exp), INT8_MIN, INT8_MAX) * 2.0 ** -in_exp,))
    try:
        quantized_acc = evaluate(quantized, d.x_test, d.y_test)
    finally:
        hook.remove()
    return Layer24(layer, w_int, int(weight_exp), _int8(x_in, in_exp), int(in_exp), np.asarray(d.y_test[:n_inputs]),
                   out, evaluate(dense, d.x_test, d.y_test), one_shot, evaluate(model, d.x_test, d.y_test),
                   quantized_acc, tuple(pruned))


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
