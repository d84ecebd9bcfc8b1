"""The pruning toolkit's benchmarks on the real MNIST digits: the ``prune-*`` sections of BENCHMARKS.md.

    python -m sw.prune.bench [section ...]       # default: every section (``make bench-prune``)

Each section is a function of its inputs (data, models, recipes, seeds, budgets, epochs) that
returns its results and its Markdown; :data:`SECTIONS` registers them by name over the run's
:class:`Settings`, and :func:`sw.benchmarks.update` rewrites their blocks of BENCHMARKS.md, so any
section runs alone. The plots BENCHMARKS.md shows go to the ``docs/`` folder beside it; each
section's results (``NAME.json``), the other plots and the pipeline's models to ``--out``.
Baselines come from (or go into) the training cache (:func:`sw.models.train.pretrained`);
everything is seeded and single-threaded, so a rerun on one machine repeats the numbers.

Sections: the LeNet-300-100 baseline; its sensitivity scan → per-layer ratios; iterative versus
one-shot pruning (one-shot fine-tuned for one round's epochs, and for iterative's total) over
several training seeds; 4-bit weight sharing, centroid fine-tuning, integer export and Deep
Compression's storage count of the iterative model; 2:4; L1/L2-regularised training and
achievable sparsity; CNN channel pruning and network slimming with physical removal; NetAdapt and
AMC at the uniform channel-pruning MAC budgets, and NetAdapt on EIE array cycles for the sparse
LeNet-300-100; AMC against random search with the same episodes on the ResNet; uniform,
sensitivity-based, AMC, NetAdapt and random-search channel pruning of the ResNet and the MobileNet at
50, 30 and 20 % of the MACs, fine-tuned alike.
"""

import argparse
import copy
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from sw.benchmarks import BENCHMARKS, update
from sw.markdown import table
from sw.models import data as datasets
from sw.models import registry
from sw.models.io import save_model
from sw.models.train import BASELINES, bn_subset, evaluate, finetune, pretrained, recalibrate_bn, train
from sw.pack.eie import pack_eie, unpack_eie
from sw.prune.amc import amc, apply_ratios, random_search
from sw.prune.criteria import L1
from sw.prune.export import export_integer, storage_bits
from sw.prune.finetune import prune_and_finetune
from sw.prune.granularity import NM, Channel
from sw.prune.latency import EIECycles
from sw.prune.netadapt import netadapt, nonzero_macs
from sw.prune.parallel import RAY_HINT, check_address, executor, ray_available
from sw.prune.plots import line_plot, panel_plot
from sw.prune.pruner import Pruner
from sw.prune.regularize import L1Penalty, L2Penalty, accuracy_vs_sparsity, achievable_sparsity
from sw.prune.report import model_stats
from sw.prune.sensitivity import sensitivity_scan
from sw.prune.share import share_weights
from sw.prune.slim import slim, train_slimming

SCAN_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99)
SCHEDULE_SPARSITIES = (0.92, 0.95, 0.97, 0.98)
NETADAPT_STEP = 0.1     # of the start's resource per iteration
# (key, column title) of the schedule comparison; "{e}" is the per-round epochs, "{k}" the rounds.
PROTOCOLS = (("no_ft", "one-shot, no fine-tune"), ("one_shot", "one-shot + {e} ep"),
             ("iterative", "iterative {k}×{e} ep"), ("one_shot_equal", "one-shot + {ke} ep"),
             ("iterative_equal", "iterative {k}×{e_k} ep"))
LENET = BASELINES["lenet300"]
CNN = BASELINES["cnn"]
RESNET = BASELINES["resnet"]
MOBILENET = BASELINES["mobilenet"]
# (key, name) of the channel-pruning methods the comparison runs, in its table's order
COMPARE_METHODS = (("uniform", "uniform ratio"), ("sensitivity", "sensitivity-based"), ("amc", "AMC (DDPG)"),
                   ("netadapt", "NetAdapt"), ("random", "random search"))
COMPARE_SCAN_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
TIMING = "Search time"      # the comparison's Markdown from here on is wall-clock, the rest is seeded


@dataclass(frozen=True)
class Settings:
    """One run's knobs (the command line's options), from which :data:`SECTIONS` take their inputs."""

    data: str = "mnist"
    seeds: int = 3              # training seeds of the schedule comparison
    target: float = 0.95        # LeNet-300-100 sparsity of the pipeline (sharing, export, NetAdapt on EIE)
    steps: int = 5              # iterative prune/fine-tune rounds
    epochs_per_step: int = 30   # fine-tuning epochs per round, and of one-shot
    finetune_epochs: int = 12   # fine-tuning of the sharing, 2:4 and CNN sections
    lr_scale: float = 0.1       # fine-tuning lr as a fraction of the training lr
    jobs: int = 1               # worker processes of the schedule comparison
    ray: bool = False           # the schedule comparison's jobs as Ray tasks instead
    ray_address: str | None = None      # the Ray cluster to join (implies ray)
    out: Path = Path("out/bench-prune")
    plots: Path = BENCHMARKS.parent / "docs"
    progress: bool = True

    @property
    def dataset(self) -> datasets.Dataset:
        return datasets.load(self.data)

    @property
    def recovery(self) -> dict:
        """The fine-tuning keywords every section after pruning takes."""
        return {"finetune_epochs": self.finetune_epochs, "lr_scale": self.lr_scale, "progress": self.progress}


def _mean_std(xs):
    return float(np.mean(xs)), float(np.std(xs))


_scans = {}     # (data, seed) -> (baseline, sensitivity scan), per process


def _baseline_and_scan(data, seed: int, progress: bool = False):
    """The LeNet-300-100 baseline trained with ``seed`` (cached on disk) and its sensitivity scan."""
    key = (data.name, seed)
    if key not in _scans:
        model, _ = pretrained("lenet300", data.name, replace(LENET, seed=seed), progress=progress)
        _scans[key] = (model, sensitivity_scan(model, data, ratios=SCAN_RATIOS, progress=False))
    return _scans[key]


def _schedule_job(job: dict) -> dict:
    """One training seed at one sparsity: every protocol of ``PROTOCOLS`` from the same baseline and
    per-layer ratios (its own sensitivity scan). Runs in a worker process; seeded and single-threaded,
    so the result does not depend on which process runs it."""
    torch.set_num_threads(1)
    data = datasets.load(job["data"])
    base, scan = _baseline_and_scan(data, job["seed"])
    ratios = scan.ratios_for(job["sparsity"])
    cfg = replace(LENET, seed=job["seed"])
    k, e = job["steps"], job["epochs_per_step"]
    out = {"seed": job["seed"], "target": job["sparsity"], "ratios": ratios,
           "base_test": evaluate(base, data.x_test, data.y_test), "base_val": evaluate(base, data.x_val, data.y_val)}
    m = copy.deepcopy(base)
    rep = Pruner(m).prune(ratios)
    out["sparsity"] = rep.after.masked_sparsity
    out["no_ft"] = {"test": evaluate(m, data.x_test, data.y_test), "val": evaluate(m, data.x_val, data.y_val)}
    for key, steps, eps in (("one_shot", 1, e), ("iterative", k, e), ("one_shot_equal", 1, k * e),
                            ("iterative_equal", k, e // k)):
        m = copy.deepcopy(base)
        r = prune_and_finetune(m, data, cfg, ratios, steps, eps, lr_scale=job["lr_scale"], name=key,
                               progress=False)
        out[key] = {"test": r.test_acc, "val": r.rows[-1]["val_after_finetune"], "epochs": r.epochs}
    return out


@cache
def iterative_model(data_name: str, sparsity: float, steps: int, epochs_per_step: int, lr_scale: float,
                    seed: int = 0):
    """The schedule comparison's iterative model (``steps`` rounds of ``epochs_per_step`` epochs, the
    ``seed`` baseline's own per-layer ratios for ``sparsity``): the pipeline sections' start. Cached
    per process; callers copy before changing it."""
    data = datasets.load(data_name)
    base, scan = _baseline_and_scan(data, seed)
    m = copy.deepcopy(base)
    prune_and_finetune(m, data, replace(LENET, seed=seed), scan.ratios_for(sparsity), steps, epochs_per_step,
                       lr_scale=lr_scale, name="iterative", progress=False)
    return m


def uniform_l1_budgets(base, ratios=(0.5, 0.7)) -> list:
    """``(ratio, MAC fraction)`` of uniform L1 filter pruning of ``ratio`` of conv1 and of conv2 of the
    CNN ``base``: the rows of the channel-pruning table, and the budgets the searches get."""
    base_macs = model_stats(base).macs
    budgets = []
    for r in ratios:
        uniform = copy.deepcopy(base)
        p = Pruner(uniform, Channel(), L1(), layers=["conv1", "conv2"])
        p.prune(r)
        p.remove()
        budgets.append((r, model_stats(uniform).macs / base_macs))
    return budgets


def schedule_plot(path, rows, titles: dict, seeds: int) -> None:
    """Mean test-accuracy drop ± std over the training seeds of every fine-tuned schedule (one-shot
    without fine-tuning falls off the scale and stays in the tables)."""
    xs = [100 * r["sparsity"] for r in rows]
    keys = [key for key, _ in PROTOCOLS if key != "no_ft"]
    line_plot(path, {titles[k]: (xs, [r[f"{k}_test_drop"][0] for r in rows]) for k in keys},
              "weights pruned (%)", f"test accuracy drop (points), mean of {seeds} seeds",
              "LeNet-300-100: iterative vs one-shot pruning",
              errors={titles[k]: [r[f"{k}_test_drop"][1] for r in rows] for k in keys})


# ---------------------------------------------------------------------- LeNet-300-100
def lenet_baseline(data, model, info: dict, cfg):
    """The baseline ``model`` trained by ``cfg``: its recipe and accuracies."""
    test = evaluate(model, data.x_test, data.y_test)
    res = {"test_acc": test, "val_acc": info["val_acc"], "train": asdict(cfg)}
    md = (f"LeNet-300-100 (bias-free, 266,200 weights), trained {cfg.epochs} epochs SGD lr {cfg.lr} cosine, weight "
          f"decay {cfg.weight_decay}: test {test:.2f}%, val {info['val_acc']:.2f}%.")
    return res, md


def sensitivity(data, model, sparsities, plot: Path, *, progress: bool):
    """The scan of ``model`` and the per-layer ratios it gives for each overall sparsity it can reach."""
    scan = sensitivity_scan(model, data, ratios=SCAN_RATIOS, progress=progress)
    scan.plot(plot)
    targets = {}
    for s in sorted(set(sparsities)):
        try:
            targets[s] = scan.ratios_for(s)
        except ValueError:
            pass
    rows = [[f"{s:.0%}", *(f"{r[n]:.4f}" for n in scan.accuracy)] for s, r in targets.items()]
    lines = [scan.table(), "", "Per-layer ratios from the curves (`SensitivityResult.ratios_for`):", "",
             *table(["overall", *scan.accuracy], rows, "r" * (1 + len(scan.accuracy)))]
    return {"scan": scan.to_dict(), "ratios": {str(k): v for k, v in targets.items()}}, "\n".join(lines)


def schedules(data, seeds: int, sparsities, steps: int, epochs_per_step: int, lr_scale: float, jobs: int,
              plot: Path, *, progress: bool, ray: bool = False, ray_address: str | None = None):
    """Every protocol of :data:`PROTOCOLS` at each sparsity for training seeds ``0 .. seeds - 1``, in
    ``jobs`` local worker processes, or as Ray tasks (``ray``; ``ray_address``: join that cluster).
    Each job is seeded and single-threaded, so the results are the same wherever they run (a Ray
    node without this machine's training cache trains the job's baseline again, seeded alike)."""
    k, e = steps, epochs_per_step
    titles = {key: t.format(k=k, e=e, ke=k * e, e_k=e // k) for key, t in PROTOCOLS}
    for seed in range(seeds):       # train (or load) every baseline before the workers need it
        _baseline_and_scan(data, seed, progress)
    sparsities = sorted(set(sparsities))
    work = [{"data": data.name, "seed": seed, "sparsity": sp, "steps": k, "epochs_per_step": e, "lr_scale": lr_scale}
            for sp in sparsities for seed in range(seeds)]
    bar = tqdm(total=len(work), desc="iterative vs one-shot (seed × sparsity)", disable=not progress, leave=False)
    with executor(ray=ray, address=ray_address, workers=None if ray or ray_address else jobs) as ex:
        runs = ex.map(_schedule_job, work, done=lambda i, r: bar.update())
    bar.close()
    runs.sort(key=lambda r: (r["target"], r["seed"]))
    keys = [key for key, _ in PROTOCOLS]
    rows = []
    for sp in sparsities:
        rs = [r for r in runs if r["target"] == sp]
        row = {"target": sp, "sparsity": rs[0]["sparsity"], "seed0": next(r for r in rs if r["seed"] == 0)}
        for key in keys:
            for split in ("test", "val"):
                drops = [r[f"base_{split}"] - r[key][split] for r in rs]
                row[f"{key}_{split}_drop"] = _mean_std(drops)
        for other in ("one_shot", "one_shot_equal"):
            for split in ("test", "val"):
                row[f"wins_vs_{other}_{split}"] = sum(r["iterative"][split] > r[other][split] for r in rs)
        rows.append(row)
    s0 = [r["seed0"] for r in rows]
    schedule_plot(plot, rows, titles, seeds)
    head = ["sparsity", *(titles[key] for key in keys)]
    align = "r" * len(head)
    seed0 = [[f"{r['sparsity']:.2%}", *(f"{r[key]['test']:.2f}" for key in keys)] for r in s0]
    drops = [[f"{r['sparsity']:.2%}", *(f"{r[key + '_test_drop'][0]:+.2f} ± {r[key + '_test_drop'][1]:.2f} / "
                                        f"{r[key + '_val_drop'][0]:+.2f}" for key in keys)] for r in rows]
    wins = [[f"{r['sparsity']:.2%}", f"{r['wins_vs_one_shot_test']} / {r['wins_vs_one_shot_val']}",
             f"{r['wins_vs_one_shot_equal_test']} / {r['wins_vs_one_shot_equal_val']}"] for r in rows]
    base_tests = sorted({r["base_test"] for r in runs if r["target"] == sparsities[0]})
    lines = [f"Per-layer ratios from each baseline's own sensitivity scan; magnitude (L1) pruning; fine-tuning at "
             f"lr × {lr_scale:g} with cosine decay (restarted each round); iterative rounds follow the "
             f"geometric schedule. **iterative {k}×{e}** is the lecture's loop (each round fine-tuned as long as "
             f"one-shot is, {k * e} epochs in all); **one-shot + {k * e}** matches its total epochs; "
             f"**iterative {k}×{e // k}** matches one-shot + {e}'s.", "",
             f"Test accuracy (%) from the project baseline (training seed 0, test {s0[0]['base_test']:.2f}%, "
             f"val {s0[0]['base_val']:.2f}%):", "", *table(head, seed0, align),
             "", f"Accuracy drop against each seed's own dense model, mean ± std over {seeds} training seeds "
             "(baseline, sensitivity scan, pruning and fine-tuning all re-run per seed), test / val:", "",
             *table(head, drops, align),
             "", f"Seeds (of {seeds}) where iterative {k}×{e} ends more accurate than the one-shot control, "
             "test / val:", "",
             *table(["sparsity", f"vs one-shot + {e}", f"vs one-shot + {k * e}"], wins, "rrr"),
             "", "Dense test accuracy of the training seeds: " + ", ".join(f"{b:.2f}%" for b in base_tests) + "."]
    return {"titles": titles, "runs": runs, "rows": [{kk: v for kk, v in r.items() if kk != "seed0"}
                                                     for r in rows]}, "\n".join(lines)


def sharing(data, model, cfg, target: float, out: Path, *, finetune_epochs: int, lr_scale: float, progress: bool):
    """4-bit sharing, centroid fine-tuning and integer export of ``model`` (pruned to ``target``); the
    models go to ``out``."""
    m = copy.deepcopy(model)
    pruned_acc = evaluate(m, data.x_test, data.y_test)
    books = share_weights(m, bits=4)
    shared_acc = evaluate(m, data.x_test, data.y_test)
    finetune(m, data, cfg, finetune_epochs, lr_scale=lr_scale, progress=progress, desc="centroid fine-tune")
    tuned_acc = evaluate(m, data.x_test, data.y_test)
    save_model(m, out / "lenet300_pruned_shared.safetensors", info={"test_acc": tuned_acc}, force=True)
    notes = []
    net = export_integer(m, data.x_train, notes)
    net.save(out / "lenet300_int.npz", force=True)
    int_acc = net.accuracy(data.x_test, data.y_test)
    for ly in net.layers:
        for n_pe in (1, 4, 64):
            if not np.array_equal(unpack_eie(pack_eie(ly.index, n_pe)), ly.index):
                raise AssertionError(f"pack_eie round trip failed on {ly.name} for n_pe={n_pe}")
    st = {n_pe: storage_bits(net, n_pe) for n_pe in (1, 64)}
    res = {"pruned_acc": pruned_acc, "shared_acc": shared_acc, "centroid_tuned_acc": tuned_acc,
           "int_acc": int_acc,
           "clusters_used": {k: v.used for k, v in books.items()}, "notes": notes,
           "layers": [{"name": ly.name, "shape": list(ly.shape), "shift": ly.shift, "in_exp": ly.in_exp,
                       "weight_exp": ly.weight_exp, "out_exp": ly.out_exp,
                       "codebook": ly.codebook.tolist()}
                      for ly in net.layers],
           "storage": {str(k): v for k, v in st.items()}}
    layers = [[r["layer"], f"{r['shape'][0]}×{r['shape'][1]}", f"{r['nonzero']:,}", f"{r['entries']:,}",
               f"{r['padding']:,}", ly.shift, f"{r['ratio']:.1f}×"]
              for r, ly in zip(st[1]["layers"], net.layers, strict=True)]
    lines = [f"From the iterative model at {target:.0%}: test {pruned_acc:.2f}%. 4-bit k-means sharing "
             f"(15 values + reserved 0, linear init): {shared_acc:.2f}% → centroid fine-tuning "
             f"({finetune_epochs} epochs): {tuned_acc:.2f}% (cost vs pruned {pruned_acc - tuned_acc:+.2f} points). "
             "Integer export (int16 activations, int16 codebooks, power-of-two scales, docs/spec.md §1 output "
             f"stage): {int_acc:.2f}% (float {tuned_acc:.2f}%, difference {tuned_acc - int_acc:+.2f}). Every "
             "layer's index matrix round-trips through `pack_eie`/`unpack_eie` (n_pe 1, 4, 64).", "",
             *table(["layer", "shape", "nonzero", "entries (n_pe=1)", "padding", "shift", "ratio"], layers,
                    "llrrrrr")]
    for k, v in st.items():
        lines.append("")
        lines.append(f"Deep Compression storage, n_pe={k}: {v['dense_bits'] / 8:,.0f} B dense fp32 → "
                     f"{v['compressed_bits'] / 8:,.0f} B (4-bit weight + 4-bit relative index per entry incl. "
                     f"padding, int16 codebooks) = **{v['ratio']:.1f}×**; with column pointers "
                     f"{v['ratio_with_col_ptr']:.1f}×.")
    return res, "\n".join(lines)


def regularisation(data, cfg, plot: Path, *, ratios=(0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99),
                   progress: bool):
    """LeNet-300-100 trained by ``cfg`` without weight decay, plain and with L1/L2 penalties, then pruned
    one-shot (global magnitude) at ``ratios`` without fine-tuning."""
    base_cfg = replace(cfg, weight_decay=0.0)
    variants = {"none": [], "L2 (λ=3e-3)": [L2Penalty(3e-3)], "L1 (λ=3e-5)": [L1Penalty(3e-5)],
                "L1 (λ=1e-4)": [L1Penalty(1e-4)]}
    res, series = {}, {}
    for name, pen in variants.items():
        m = registry.build("lenet300", data.input_shape, data.classes, seed=base_cfg.seed)
        train(m, data, base_cfg, penalties=pen, progress=progress, desc=f"train {name}")
        dense = evaluate(m, data.x_val, data.y_val)
        accs = accuracy_vs_sparsity(m, data, ratios, scope="global")
        res[name] = {"val_acc": dense, "test_acc": evaluate(m, data.x_test, data.y_test),
                     "accuracy": accs,
                     "achievable_0.5": achievable_sparsity(ratios, accs, dense, 0.5),
                     "achievable_1.0": achievable_sparsity(ratios, accs, dense, 1.0)}
        series[name] = ([100 * r for r in ratios], accs)
    line_plot(plot, series, "weights pruned (%, global magnitude, no fine-tune)",
              "val accuracy (%)", "LeNet-300-100: regularised training vs one-shot pruning")
    rows = [[name, f"{r['val_acc']:.2f}", f"{r['test_acc']:.2f}", *(f"{a:.1f}" for a in r["accuracy"]),
             f"{r['achievable_0.5']:.0%}", f"{r['achievable_1.0']:.0%}"] for name, r in res.items()]
    lines = ["Trained from the same seed without weight decay; one-shot global magnitude pruning, no fine-tuning, "
             "validation accuracy. Achievable sparsity = largest ratio before the drop from the model's own dense "
             "accuracy exceeds the bound.", "",
             *table(["training", "dense val", "dense test", *(f"{r:.0%}" for r in ratios), "achievable (≤0.5)",
                     "achievable (≤1.0)"], rows, "l" + "r" * (len(ratios) + 4))]
    return {"ratios": list(ratios), "variants": res}, "\n".join(lines)


def nm(data, model, cfg, *, finetune_epochs: int, lr_scale: float, progress: bool):
    """2:4 on every layer of the dense ``model``, before and after fine-tuning."""
    base_acc = evaluate(model, data.x_test, data.y_test)
    m = copy.deepcopy(model)
    rep = Pruner(m, NM(2, 4)).prune()
    before = evaluate(m, data.x_test, data.y_test)
    finetune(m, data, cfg, finetune_epochs, lr_scale=lr_scale, progress=progress, desc="2:4 FT")
    after = evaluate(m, data.x_test, data.y_test)
    res = {"sparsity": rep.after.masked_sparsity, "acc_no_finetune": before, "acc_finetuned": after}
    return res, (f"2:4 on every LeNet-300-100 layer ({rep.after.masked_sparsity:.0%}): test {before:.2f}% → "
                 f"{after:.2f}% after {finetune_epochs} epochs fine-tuning (baseline {base_acc:.2f}%).")


# ---------------------------------------------------------------------- CNN
def channels(data, base, info: dict, cfg, *, slim_strength: float = 1e-3, finetune_epochs: int, lr_scale: float,
             progress: bool):
    """L1 filter pruning, BN-scale pruning and network slimming (``slim_strength`` on the BN scales) of
    the CNN ``base`` trained by ``cfg``, channels physically removed."""
    x_val, y_val, x_test, y_test = data.x_val, data.y_val, data.x_test, data.y_test
    base_acc = evaluate(base, x_test, y_test)
    base_stats = model_stats(base)
    rows = [{"method": "baseline", "channels": [16, 32], "macs": base_stats.macs,
             "params": base_stats.params, "val_after_prune": None, "test_acc": base_acc}]

    def record(method, m, val_after_prune, acc):
        st = model_stats(m)
        rows.append({"method": method, "channels": [m.conv1.out_channels, m.conv2.out_channels],
                     "macs": st.macs, "params": st.params, "val_after_prune": val_after_prune,
                     "test_acc": acc})

    for r in (0.5, 0.7):
        m = copy.deepcopy(base)
        p = Pruner(m, Channel(), L1(), layers=["conv1", "conv2"])
        p.prune(r)
        p.remove()
        pruned = evaluate(m, x_val, y_val)
        finetune(m, data, cfg, finetune_epochs, lr_scale=lr_scale, progress=progress, desc="channel FT")
        record(f"L1 filters, {r:.0%} of conv1 and of conv2", m, pruned, evaluate(m, x_test, y_test))
    for r in (0.5, 0.7):
        m = copy.deepcopy(base)
        res = slim(m, data, cfg, r, finetune_epochs, lr_scale=lr_scale, progress=progress)
        record(f"BN scale, {r:.0%} of all conv channels (global), baseline training", m,
               res.val_after_prune, res.test_after_finetune)
    slim_model = registry.build("cnn", data.input_shape, data.classes, seed=cfg.seed)
    train_slimming(slim_model, data, cfg, slim_strength, progress=progress)
    rows.append({"method": f"slimming training (L1 on BN scales, λ={slim_strength:g}), dense", "channels": [16, 32],
                 "macs": base_stats.macs, "params": base_stats.params, "val_after_prune": None,
                 "test_acc": evaluate(slim_model, x_test, y_test)})
    for r in (0.5, 0.7):
        m = copy.deepcopy(slim_model)
        res = slim(m, data, cfg, r, finetune_epochs, lr_scale=lr_scale, progress=progress)
        record(f"network slimming: BN scale, {r:.0%} global, after slimming training", m,
               res.val_after_prune, res.test_after_finetune)
    cells = [[r["method"], f"{r['channels'][0]}, {r['channels'][1]}", f"{r['macs']:,}",
              f"{1 - r['macs'] / base_stats.macs:.1%}", f"{r['params']:,}",
              "" if r["val_after_prune"] is None else f"{r['val_after_prune']:.2f}", f"{r['test_acc']:.2f}",
              f"{base_acc - r['test_acc']:+.2f}"] for r in rows]
    lines = [f"SmallCNN (conv 16, 32 with BatchNorm; fc 120, 84), baseline test {base_acc:.2f}%. Pruned "
             "channels are physically removed (the tensors shrink; MACs counted on the smaller model), "
             f"then fine-tuned {finetune_epochs} epochs at lr × {lr_scale:g}; drop against the baseline.", "",
             *table(["method", "conv channels", "MACs", "MAC reduction", "params", "val right after pruning",
                     "test acc", "drop"], cells, "llrrrrrr")]
    return {"rows": rows, "baseline_val": info["val_acc"], "slimming_strength": slim_strength}, "\n".join(lines)


def netadapt_cnn(data, base, cfg, budgets, plot: Path, *, step: float = NETADAPT_STEP, finetune_epochs: int,
                 lr_scale: float, progress: bool):
    """NetAdapt on MACs from the CNN ``base`` at each ``(ratio, MAC fraction)`` of ``budgets``."""
    base_acc, base_macs = evaluate(base, data.x_test, data.y_test), model_stats(base).macs
    rows, traces = [], {}
    for r, budget in budgets:
        m, res = netadapt(base, data, cfg, budget, step, short_epochs=1, final_epochs=finetune_epochs,
                          lr_scale=lr_scale, progress=progress)
        st = model_stats(m)
        rows.append({"budget_of": f"L1 filters, {r:.0%} of conv1 and of conv2", "budget": budget,
                     "macs": st.macs, "params": st.params, "channels": res.channels,
                     "iterations": len(res.trace), "val_before_final": res.val_before_final,
                     "test_acc": res.test_acc, "stopped": res.stopped})
        traces[budget] = res
    base_val = evaluate(base, data.x_val, data.y_val)
    deepest = min(traces)
    traces[deepest].plot(plot, base_val, "MACs (fraction of the baseline's)",
                         f"NetAdapt on the MNIST CNN, down to {deepest:.3f} of the MACs")
    cells = [[row["budget_of"], f"{row['macs']:,}", f"{1 - row['macs'] / base_macs:.1%}", f"{row['params']:,}",
              ", ".join(str(v) for v in row["channels"].values()), row["iterations"], f"{row['test_acc']:.2f}",
              f"{base_acc - row['test_acc']:+.2f}"] for row in rows]
    lines = [f"NetAdapt (MACs as the resource, step {step:g} of the baseline's MACs per iteration, "
             "every candidate layer fine-tuned 1 epoch before the comparison, the winner fine-tuned "
             f"{finetune_epochs} epochs at the end) on the same SmallCNN, with the MAC budget of each uniform L1 "
             f"filter pruning row of the channel-pruning table; baseline test {base_acc:.2f}%, "
             f"{base_macs:,} MACs.", "",
             *table(["MAC budget of", "MACs", "MAC reduction", "params",
                     f"channels ({', '.join(rows[0]['channels'])})", "iterations", "test acc", "drop"], cells,
                    "lrrrlrrr"),
             "", f"Search trace down to {deepest:.3f} of the baseline's MACs (resource = MACs / baseline MACs; "
             "val acc after the 1-epoch fine-tune; — : the layer alone cannot cut one step):", "",
             traces[deepest].table()]
    return {"rows": rows, "base_val": base_val,
            "traces": {f"{k:.3f}": v.to_dict() for k, v in traces.items()}}, "\n".join(lines)


def netadapt_eie(data, start, cfg, target: float, *, resource_target: float = 0.7, step: float = NETADAPT_STEP,
                 samples: int = 16, finetune_epochs: int, lr_scale: float, progress: bool):
    """NetAdapt from the LeNet-300-100 ``start`` (pruned to ``target``) down to ``resource_target`` of its
    EIE cycles (mean over ``samples`` validation digits), and of its nonzero MACs."""
    search = EIECycles(data.x_val[:samples], n_pe=64)
    check = EIECycles(data.x_test[:4 * samples], n_pe=64)
    base_nz = nonzero_macs(start)
    models = {f"start: iterative {target:.0%} model": (start, None)}
    common = {"short_epochs": 1, "final_epochs": finetune_epochs, "lr_scale": lr_scale, "progress": progress}
    models["NetAdapt on EIE cycles"] = netadapt(start, data, cfg, resource_target, step, resource=search, **common)
    models["NetAdapt on nonzero MACs"] = netadapt(start, data, cfg, resource_target, step, resource=nonzero_macs,
                                                  **common)
    rows = []
    for name, (m, res) in models.items():
        cyc = check.layer_cycles(m).mean(axis=0)
        rows.append({"model": name, "fc1": m.fc1.out_features, "fc2": m.fc2.out_features,
                     "nonzero_macs": nonzero_macs(m), "cycles": cyc.tolist(), "test_acc":
                     evaluate(m, data.x_test, data.y_test), "iterations": None if res is None else len(res.trace),
                     "trace": None if res is None else res.to_dict()})
    c0 = sum(rows[0]["cycles"])
    cells = [[r["model"], f"{r['fc1']}, {r['fc2']}", f"{r['nonzero_macs']:,} ({r['nonzero_macs'] / base_nz:.0%})",
              f"{r['cycles'][0]:.0f} + {r['cycles'][1]:.0f} + {r['cycles'][2]:.0f} = {sum(r['cycles']):.0f}",
              f"{sum(r['cycles']) / c0:.0%}", "" if r["iterations"] is None else r["iterations"],
              f"{r['test_acc']:.2f}"] for r in rows]
    lines = [f"NetAdapt on LeNet-300-100 from the iterative {target:.0%} model (fine-grained masks kept), "
             f"neurons of fc1/fc2 as channels, target {resource_target:g} of the start's resource in steps of "
             f"{step:g}, 1-epoch candidate fine-tune, {finetune_epochs} epochs at the end. Resource: "
             f"EIE cycles from the exact array cycle model ({search.n_pe} PEs, queue depth {search.queue_depth}, "
             f"LNZD width {search.lnzd_width}; mean over {samples} validation digits), or nonzero MACs. Cycles "
             f"below are re-measured on {4 * samples} test digits.", "",
             *table(["model", "fc1, fc2 neurons", "nonzero MACs", "EIE cycles fc1 + fc2 + fc3 = total", "vs start",
                     "iterations", "test acc"], cells, "llrlrrr")]
    return {"rows": rows, "samples": samples, "target": resource_target}, "\n".join(lines)


def amc_cnn(data, base, cfg, budgets, plot: Path, *, episodes: int = 300, warmup: int = 100, finetune_epochs: int,
            lr_scale: float, progress: bool):
    """AMC (``episodes``, the first ``warmup`` random) from the CNN ``base`` at each ``(ratio, MAC
    fraction)`` of ``budgets``."""
    base_acc = evaluate(base, data.x_test, data.y_test)
    rows, results = [], {}
    for r, budget in budgets:
        _, res = amc(base, data, cfg, budget, episodes=episodes, warmup=warmup, final_epochs=finetune_epochs,
                     lr_scale=lr_scale, progress=progress)
        acc = [e["val_acc"] for e in res.episodes]
        rows.append({"budget_of": f"L1 filters, {r:.0%} of conv1 and of conv2", "budget": budget,
                     "best_episode": res.best["episode"], "best_val": res.best["val_acc"], "macs": res.macs,
                     "channels": res.channels, "warmup_mean": float(np.mean(acc[:warmup])),
                     "last_mean": float(np.mean(acc[-(episodes - warmup):])),
                     "test_acc": res.test_acc})
        results[budget] = res
    results[max(results)].plot(plot, warmup)
    cells = [[row["budget_of"], f"{row['macs']:.1%}", ", ".join(str(v) for v in row["channels"].values()),
              row["best_episode"], f"{row['best_val']:.2f}", f"{row['warmup_mean']:.2f} / {row['last_mean']:.2f}",
              f"{row['test_acc']:.2f}", f"{base_acc - row['test_acc']:+.2f}"] for row in rows]
    lines = [f"AMC on the same SmallCNN at the MAC budget of each uniform L1 filter-pruning row: "
             f"{episodes} episodes, the first {warmup} with random actions, ratios in [0, 0.8], "
             "reward = validation accuracy right after pruning (no fine-tuning); the best episode's ratios "
             f"are then fine-tuned {finetune_epochs} epochs. Baseline test {base_acc:.2f}%.", "",
             *table(["MAC budget of", "MACs (of the baseline)", f"channels ({', '.join(rows[0]['channels'])})",
                     "best episode", "its val acc, no FT", "mean val acc: warm-up / learned episodes",
                     "test acc after FT", "drop"], cells, "lrlrrlrr")]
    return {"rows": rows, "episodes": {f"{k:.3f}": v.to_dict() for k, v in results.items()}}, "\n".join(lines)


def amc_vs_random(data, base, cfg, plot: Path, *, budgets=(0.5, 0.3), seeds=(0, 1, 2), episodes: int = 300,
                  warmup: int = 100, eval_samples: int | None = 250, bn_samples: int = 250, max_ratio: float = 0.8,
                  progress: bool):
    """AMC against random search from ``base`` at each MAC fraction of ``budgets``, each with
    ``episodes`` episodes scored on the same ``eval_samples`` validation samples, for each seed.
    With a seed AMC's first ``warmup`` (random) episodes are random search's, so the two differ only
    in the later episodes. No fine-tuning: the search is compared, not the recovery; but each
    pruned model's BatchNorm statistics are re-estimated on ``bn_samples`` training samples, since
    without it the MNIST SmallResNet scored near chance (10–23% on 250 validation digits) in 35 of
    36 random episodes at MAC budgets 0.8, 0.5 and 0.3, which leaves no reward to learn from.

    Sizing: on that ResNet, with 250 samples each, an episode took 0.19 s for random search and
    0.38 s for AMC (its updates) on a busy 2-core machine (load about 4), so the default 2 budgets ×
    3 seeds × 300 episodes of each come to about 20 minutes there, plus the baseline's training;
    allow 30."""
    rows, runs, curves, seconds = [], {}, {}, {"amc": 0.0, "random": 0.0}
    t0 = time.perf_counter()
    for budget in budgets:
        for method in ("amc", "random"):
            per_seed = []
            for seed in seeds:
                t = time.perf_counter()
                if method == "amc":
                    _, res = amc(base, data, cfg, budget, episodes=episodes, warmup=warmup, max_ratio=max_ratio,
                                 final_epochs=0, seed=seed, eval_samples=eval_samples, bn_samples=bn_samples,
                                 progress=progress)
                else:
                    _, res = random_search(base, data, cfg, budget, episodes=episodes, max_ratio=max_ratio, seed=seed,
                                           final_epochs=0, eval_samples=eval_samples, bn_samples=bn_samples,
                                           progress=progress)
                seconds[method] += time.perf_counter() - t
                acc = [e["val_acc"] for e in res.episodes]
                per_seed.append({"seed": seed, "best": res.best["val_acc"], "best_episode": res.best["episode"],
                                 "best_full_val": res.val_before_finetune, "best_macs": res.best["macs"],
                                 "after_warmup_mean": float(np.mean(acc[warmup:])),
                                 "best_so_far": np.maximum.accumulate(acc).tolist()})
                runs[f"{budget}/{method}/{seed}"] = res.to_dict()
            curves[(budget, method)] = np.mean([r["best_so_far"] for r in per_seed], axis=0).tolist()
            rows.append({"budget": budget, "method": method, "seeds": per_seed,
                         **{k: _mean_std([r[k] for r in per_seed])
                            for k in ("best", "best_full_val", "after_warmup_mean", "best_macs")}})
    minutes = (time.perf_counter() - t0) / 60
    xs = list(range(1, episodes + 1))
    line_plot(plot, {f"{'AMC' if m == 'amc' else 'random'}, MACs ≤ {b:.0%}": (xs, c) for (b, m), c in curves.items()},
              "episode", f"best val accuracy so far (%), mean of {len(seeds)} seeds",
              f"AMC vs random search (ResNet, {eval_samples or 'all'} val samples)", marker=None)
    best = {(row["budget"], row["method"]): [r["best"] for r in row["seeds"]] for row in rows}
    wins = {b: (sum(a > r for a, r in zip(best[b, "amc"], best[b, "random"], strict=True)),
                sum(a == r for a, r in zip(best[b, "amc"], best[b, "random"], strict=True))) for b in budgets}
    cells = []
    for row in rows:
        b = row["budget"]
        late = sum(r["best_episode"] > warmup for r in row["seeds"])
        cells.append([f"{b:.0%}", "AMC (DDPG)" if row["method"] == "amc" else "random search",
                      "{:.2f} ± {:.2f}".format(*row["best"]), "{:.2f} ± {:.2f}".format(*row["best_full_val"]),
                      "{:.2f} ± {:.2f}".format(*row["after_warmup_mean"]), "{:.1%}".format(row["best_macs"][0]),
                      f"{late} / {len(seeds)}"])
    n_eval = eval_samples or len(data.y_val)
    lines = [f"AMC (the DDPG agent with the paper's defaults) against random search on the {type(base).__name__} "
             f"({data.name}), channel pruning under a MAC budget, per layer at most {max_ratio:.0%} of the channels "
             f"removed. Every search: {episodes} episodes, each scored by the validation accuracy on one fixed subset "
             f"of {n_eval} validation samples right after pruning (no fine-tuning"
             + (f"; BatchNorm statistics re-estimated on {bn_samples} training samples first" if bn_samples else "")
             + "); seeds "
             f"{', '.join(map(str, seeds))}. With a seed AMC's first {warmup} episodes are random and equal random "
             f"search's, so they differ in the last {episodes - warmup}. Mean ± std over the seeds; the full-val "
             f"column re-scores the best episode's ratios on all {len(data.y_val)} validation samples (the subset "
             "best is optimistic). The defaults (300 episodes, 250 samples, 2 budgets, 3 seeds) are sized for "
             f"about 30 minutes on 2 cores; this run took {minutes:.1f} minutes, AMC's searches "
             f"{seconds['amc'] / 60:.1f} and random search's {seconds['random'] / 60:.1f} (the same episodes and "
             "evaluations; AMC also trains its networks).", "",
             *table(["MACs ≤", "search", "best episode val acc (subset)", "its full-val acc",
                     f"mean val acc of episodes {warmup + 1}–{episodes}", "MACs of the best",
                     f"best found after episode {warmup}"], cells, "llrrrrr"), "",
             "AMC's best episode against random search's, seed by seed (same budget and seed): "
             + "; ".join(f"MACs ≤ {b:.0%}: AMC higher in {w} of {len(seeds)}, random search higher in "
                         f"{len(seeds) - w - t}, equal in {t}" for b, (w, t) in wins.items())
             + "."]
    return {"rows": rows, "episodes": episodes, "warmup": warmup, "eval_samples": n_eval, "bn_samples": bn_samples,
            "seeds": list(seeds), "minutes": minutes, "search_seconds": seconds, "runs": runs}, "\n".join(lines)


def _meet_budget(base, ratios_of, lo: float, hi: float, budget: float, units: dict, steps: int = 20):
    """``(ratios, model)`` for the least ``x`` in ``[lo, hi]`` (to ``steps`` bisections) whose
    ``ratios_of(x)``, applied to ``base`` (:func:`apply_ratios`: lowest-L1 channels removed), leaves
    at most ``budget`` of its MACs; the MACs must fall as ``x`` rises."""
    base_macs = model_stats(base).macs

    def at(x):
        m = apply_ratios(base, ratios_of(x), units=units)
        return m, model_stats(m).macs / base_macs

    best, frac = at(hi)
    if frac > budget:
        raise ValueError(f"MAC budget {budget} is out of reach: the largest ratios leave {frac:.3f}")
    for _ in range(steps):
        mid = (lo + hi) / 2
        m, frac = at(mid)
        if frac <= budget:
            hi, best = mid, m
        else:
            lo = mid
    return ratios_of(hi), best


def compare_methods(data, models: dict, plot: Path, *, budgets=(0.5, 0.3, 0.2), seeds=(0, 1), episodes: int = 300,
                    warmup: int = 100, eval_samples: int | None = 250, bn_samples: int = 250, max_ratio: float = 0.8,
                    netadapt_step: float = NETADAPT_STEP, short_epochs: int = 1, finetune_epochs: int = 6,
                    lr_scale: float, progress: bool):
    """Channel pruning of each ``models[name] = (baseline, training recipe)`` to each MAC fraction of
    ``budgets`` by five methods, each model then recovered alike: uniform (one L1 channel ratio for
    every removable group, the least that meets the budget), sensitivity-based (each group's
    largest ratio whose accuracy drop in a channel sensitivity scan, BatchNorm re-estimated on
    ``bn_samples`` after each pruning, stays under one threshold,
    the threshold bisected to the budget), AMC and random search (``episodes`` each, AMC's first
    ``warmup`` random; scored on ``eval_samples`` validation samples after re-estimating BatchNorm
    on ``bn_samples`` training samples), NetAdapt (constant ``netadapt_step`` of the baseline's
    MACs per iteration, ``short_epochs`` per candidate). Every method's ratios are capped at
    ``max_ratio``. Each pruned model has its BatchNorm statistics re-estimated on the same
    ``bn_samples`` and is fine-tuned ``finetune_epochs`` at ``lr_scale``.

    ``seeds``: for each, the search seed of AMC and random search and the training seed of every
    fine-tune (NetAdapt's candidates' included); uniform and sensitivity-based search once.

    Sizing, from per-unit costs measured on MNIST on the busy 2-core machine (load 4–5, one torch
    thread), dense models, so upper bounds: an episode of random search 0.35 s on the ResNet and
    0.19 s on the MobileNet, a learned AMC episode 0.51 and 0.20 s; a NetAdapt iteration (4
    candidates, 1 epoch each) 21 and 10 s, about 20 iterations per seed over the three budgets; a
    fine-tuning epoch 5.7 and 1.7 s; the bisections about 2 s each, the scans 9 and 4 s. With the
    defaults (3 budgets, 2 seeds, 300 episodes of which 100 warm-up, 6 fine-tuning epochs) that is
    about 28 minutes per seed on the ResNet and 12 on the MobileNet: about 80 minutes, plus the two
    baselines' training (about 1.5 minutes) when they are not cached; measured: 83 minutes (load 5-10), 48 (load 3).
    Its own ``finetune_epochs`` default (not the bench's 12) keeps it there."""
    if not seeds or not budgets:
        raise ValueError("need at least one seed and one budget")
    x_bn = bn_subset(data, bn_samples)
    runs, seconds, scans = [], {}, {}
    t0 = time.perf_counter()
    bases = {}
    for name, (base, cfg) in models.items():
        base_macs = model_stats(base).macs
        bases[name] = {"macs": base_macs, "val": evaluate(base, data.x_val, data.y_val),
                       "test": evaluate(base, data.x_test, data.y_test)}
        probe = Pruner(copy.deepcopy(base), Channel(), L1())
        units = {n: probe.groups[n].units for n in probe.layers}
        t = time.perf_counter()
        scan = sensitivity_scan(base, data, ratios=[r for r in COMPARE_SCAN_RATIOS if r <= max_ratio],
                                granularity=Channel(), criterion=L1(), progress=False, bn_x=x_bn)
        scans[name] = {"seconds": time.perf_counter() - t, "drops": scan.to_dict()["drops"]}
        for budget in budgets:
            fixed = {}          # the seedless searches: once per budget
            t = time.perf_counter()
            fixed["uniform"] = _meet_budget(base, lambda r, u=units: dict.fromkeys(u, r), 0.0, max_ratio, budget, units)
            seconds[name, budget, "uniform"] = time.perf_counter() - t
            t = time.perf_counter()
            fixed["sensitivity"] = _meet_budget(base, scan.ratios_at, -1.0, scan.max_drop(), budget, units)
            seconds[name, budget, "sensitivity"] = time.perf_counter() - t
            for seed in seeds:
                cfg_s = replace(cfg, seed=seed)
                for method, _ in COMPARE_METHODS:
                    t = time.perf_counter()
                    search_epochs = 0
                    if method in fixed:
                        m = copy.deepcopy(fixed[method][1])
                    elif method == "amc":
                        m, _ = amc(base, data, cfg_s, budget, episodes=episodes, warmup=warmup, max_ratio=max_ratio,
                                   final_epochs=0, seed=seed, eval_samples=eval_samples, bn_samples=bn_samples,
                                   progress=progress)
                    elif method == "random":
                        m, _ = random_search(base, data, cfg_s, budget, episodes=episodes, max_ratio=max_ratio,
                                             seed=seed, final_epochs=0, eval_samples=eval_samples,
                                             bn_samples=bn_samples, progress=progress)
                    else:
                        m, res = netadapt(base, data, cfg_s, budget, netadapt_step, short_epochs=short_epochs,
                                          final_epochs=0, lr_scale=lr_scale, progress=progress)
                        search_epochs = len(res.trace) * short_epochs
                    if method not in fixed:
                        seconds.setdefault((name, budget, method), []).append(time.perf_counter() - t)
                    macs = model_stats(m).macs / base_macs
                    if macs > budget:
                        raise AssertionError(f"{method} on {name} left {macs:.4f} of the MACs, over {budget}")
                    if bn_samples:
                        recalibrate_bn(m, x_bn)
                    val_pruned = evaluate(m, data.x_val, data.y_val)
                    if finetune_epochs:
                        finetune(m, data, cfg_s, finetune_epochs, lr_scale=lr_scale, progress=progress,
                                 desc=f"{method} fine-tune")
                    mods = dict(m.named_modules())
                    runs.append({"model": name, "budget": budget, "method": method, "seed": seed, "macs": macs,
                                 "channels": {n: mods[n].weight.shape[0] for n in units},
                                 "search_epochs": search_epochs, "val_pruned": val_pruned,
                                 "val": evaluate(m, data.x_val, data.y_val),
                                 "test": evaluate(m, data.x_test, data.y_test)})
    minutes = (time.perf_counter() - t0) / 60
    seconds = {k: float(np.mean(v)) for k, v in seconds.items()}
    rows = []
    for name in models:
        for budget in budgets:
            for method, _ in COMPARE_METHODS:
                rs = [r for r in runs if (r["model"], r["budget"], r["method"]) == (name, budget, method)]
                rows.append({"model": name, "budget": budget, "method": method,
                             "macs": _mean_std([r["macs"] for r in rs]), "macs_max": max(r["macs"] for r in rs),
                             "search_epochs": _mean_std([r["search_epochs"] for r in rs]),
                             **{k: _mean_std([r[k] for r in rs]) for k in ("val_pruned", "val", "test")}})
    titles = dict(COMPARE_METHODS)
    err = len(seeds) > 1
    panels, errors = {}, {}
    for name in models:
        panel = f"{name} ({data.name})"
        panels[panel] = {"dense baseline": ([100.0], [bases[name]["test"]])}
        errors[panel] = {}
        for method, title in COMPARE_METHODS:
            rs = [r for r in rows if (r["model"], r["method"]) == (name, method)]
            panels[panel][title] = ([100 * r["macs"][0] for r in rs], [r["test"][0] for r in rs])
            errors[panel][title] = [r["test"][1] for r in rs]
    panel_plot(plot, panels, "MACs left (% of the baseline's)", "test accuracy (%)",
               f"Channel pruning to {', '.join(f'{b:.0%}' for b in budgets)} of the MACs, then {finetune_epochs} "
               f"epoch{'s' if finetune_epochs != 1 else ''} of fine-tuning"
               + (f" (mean ± std of {len(seeds)} seeds)" if err else f" (seed {seeds[0]})"),
               errors=errors if err else None)

    def pm(ms):
        return f"{ms[0]:.2f} ± {ms[1]:.2f}" if err else f"{ms[0]:.2f}"

    cells = [[r["model"], f"{r['budget']:.0%}", titles[r["method"]],
              f"{r['macs'][0]:.1%}" + (f" (max {r['macs_max']:.1%})" if err else ""),
              pm(r["val_pruned"]), pm(r["val"]), pm(r["test"]),
              f"{bases[r['model']]['test'] - r['test'][0]:+.2f}"] for r in rows]
    n_eval = eval_samples or len(data.y_val)
    seed_list = ", ".join(map(str, seeds))
    base_text = "; ".join(f"{n} {b['macs']:,} MACs, test {b['test']:.2f}%, val {b['val']:.2f}%"
                          for n, b in bases.items())
    na_epochs = {n: sorted({r["search_epochs"] for r in runs if (r["model"], r["method"]) == (n, "netadapt")})
                 for n in models}
    lines = [f"Channel pruning of the {' and the '.join(models)} ({data.name} baselines: {base_text}) to "
             f"{', '.join(f'{b:.0%}' for b in budgets)} of the dense MACs by five methods, each removing whole "
             f"lowest-L1 channels (groups coupled by residual adds or depthwise convolutions go together), at most "
             f"{max_ratio:.0%} of any group:", "",
             "- **uniform ratio**: one ratio for every removable group, the least that meets the budget "
             "(bisected on the pruned model's MACs);",
             f"- **sensitivity-based**: a channel sensitivity scan (each group alone at ratios "
             f"{', '.join(f'{r:g}' for r in COMPARE_SCAN_RATIOS if r <= max_ratio)}, validation accuracy"
             + (f" after re-estimating BatchNorm on the same {bn_samples} training samples as AMC's" if bn_samples
                else ", no re-estimation of BatchNorm")
             + "); each group gets the largest ratio whose interpolated drop stays under one common threshold, "
             "and the threshold is bisected to the least that meets the budget;",
             f"- **AMC**: the DDPG agent, {episodes} episodes, the first {warmup} random; **random search**: "
             f"{episodes} random episodes; both score each episode on one fixed subset of {n_eval} validation "
             f"samples right after pruning, BatchNorm re-estimated on {bn_samples} training samples, and keep the "
             f"best;",
             f"- **NetAdapt**: constant step {netadapt_step:g} of the baseline's MACs per iteration, every "
             + (f"candidate fine-tuned {short_epochs} epoch{'s' if short_epochs != 1 else ''} before the "
                "comparison, so each kept model was trained during the search ("
                + "; ".join(f"{n}: {', '.join(map(str, e))}" for n, e in na_epochs.items())
                + f" epochs, {short_epochs} per iteration) before the common fine-tune, which the other "
                "methods' were not."
                if short_epochs else "candidate scored right after pruning (no fine-tuning, no BatchNorm "
                "re-estimation)."), "",
             f"Then the same recovery for every method: BatchNorm statistics re-estimated on the same {bn_samples} "
             f"training samples, {finetune_epochs} epoch{'s' if finetune_epochs != 1 else ''} of fine-tuning at "
             f"lr × {lr_scale:g} (cosine). Seeds "
             f"{seed_list}: each is the search seed of AMC and random search and the training seed of every "
             "fine-tune (NetAdapt's candidates' too); uniform and sensitivity-based ratios do not depend on it. "
             + (f"Mean ± std over the {len(seeds)} seeds; MACs are the mean of what was reached (every run is at or "
                "under its budget, which the bench checks)" if err else
                "MACs are what was reached (at or under the budget, which the bench checks)")
             + ". Everything is seeded and single-threaded: on one machine the same seeds give this table "
             "identically (a test runs a small configuration twice and compares the Markdown); only the search "
             "times below change from run to run.", "",
             *table(["model", "MACs ≤", "method", "MACs reached", "val acc after pruning (BN re-estimated)",
                     f"val acc after {finetune_epochs} ep", f"test acc after {finetune_epochs} ep",
                     "test drop vs dense"], cells, "lrlrrrrr"), ""]
    time_cells = [[name, f"{b:.0%}", *(f"{seconds[name, b, k]:.1f}" for k, _ in COMPARE_METHODS)]
                  for name in models for b in budgets]
    lines += [f"{TIMING} per run (s, wall-clock on the machine that wrote this; the sensitivity-based column "
              "excludes its scan, "
              + ", ".join(f"{scans[n]['seconds']:.1f} s once for the {n}" for n in models)
              + f"; AMC and random search score the same number of episodes, AMC also trains its networks). "
              f"This run took {minutes:.1f} minutes.", "",
              *table(["model", "MACs ≤", *(t for _, t in COMPARE_METHODS)], time_cells,
                     "lr" + "r" * len(COMPARE_METHODS))]
    return {"budgets": list(budgets), "seeds": list(seeds), "episodes": episodes, "warmup": warmup,
            "eval_samples": n_eval, "bn_samples": bn_samples, "max_ratio": max_ratio, "netadapt_step": netadapt_step,
            "short_epochs": short_epochs, "finetune_epochs": finetune_epochs, "lr_scale": lr_scale,
            "baselines": bases, "scans": {n: v["drops"] for n, v in scans.items()}, "rows": rows, "runs": runs,
            "timing": {"minutes": minutes, "scan_seconds": {n: v["seconds"] for n, v in scans.items()},
                       "search_seconds": {f"{n}/{b}/{k}": v for (n, b, k), v in seconds.items()}}}, "\n".join(lines)


# ---------------------------------------------------------------------- registry
def _lenet(s: Settings):
    return pretrained("lenet300", s.data, progress=s.progress)


def _cnn(s: Settings):
    return pretrained("cnn", s.data, progress=s.progress)


def _resnet(s: Settings):
    return pretrained("resnet", s.data, progress=s.progress)


def _mobilenet(s: Settings):
    return pretrained("mobilenet", s.data, progress=s.progress)


def _iterative(s: Settings):
    return iterative_model(s.data, s.target, s.steps, s.epochs_per_step, s.lr_scale)


# name -> function of the run's Settings returning (results, Markdown); BENCHMARKS.md's order.
SECTIONS = {
    "prune-baseline": lambda s: lenet_baseline(s.dataset, *_lenet(s), LENET),
    "prune-sensitivity": lambda s: sensitivity(s.dataset, _lenet(s)[0], (s.target, *SCHEDULE_SPARSITIES),
                                               s.plots / "prune_sensitivity.png", progress=s.progress),
    "prune-schedules": lambda s: schedules(s.dataset, s.seeds, (s.target, *SCHEDULE_SPARSITIES), s.steps,
                                           s.epochs_per_step, s.lr_scale, s.jobs,
                                           s.plots / "prune_iterative_vs_oneshot.png", progress=s.progress,
                                           ray=s.ray, ray_address=s.ray_address),
    "prune-sharing": lambda s: sharing(s.dataset, _iterative(s), LENET, s.target, s.out, **s.recovery),
    "prune-nm": lambda s: nm(s.dataset, _lenet(s)[0], LENET, **s.recovery),
    "prune-regularisation": lambda s: regularisation(s.dataset, LENET, s.out / "regularisation.png",
                                                     progress=s.progress),
    "prune-channels": lambda s: channels(s.dataset, *_cnn(s), CNN, **s.recovery),
    "prune-netadapt": lambda s: netadapt_cnn(s.dataset, _cnn(s)[0], CNN, uniform_l1_budgets(_cnn(s)[0]),
                                             s.plots / "prune_netadapt.png", **s.recovery),
    "prune-netadapt-eie": lambda s: netadapt_eie(s.dataset, _iterative(s), LENET, s.target, **s.recovery),
    "prune-amc": lambda s: amc_cnn(s.dataset, _cnn(s)[0], CNN, uniform_l1_budgets(_cnn(s)[0]),
                                   s.plots / "prune_amc.png", **s.recovery),
    "prune-amc-vs-random": lambda s: amc_vs_random(s.dataset, _resnet(s)[0], RESNET,
                                                   s.plots / "prune_amc_vs_random.png", progress=s.progress),
    "prune-compare": lambda s: compare_methods(s.dataset, {"ResNet": (_resnet(s)[0], RESNET),
                                                           "MobileNet": (_mobilenet(s)[0], MOBILENET)},
                                               s.plots / "prune_compare.png", lr_scale=s.lr_scale,
                                               progress=s.progress),
}


def run(settings: Settings, names, path=BENCHMARKS) -> None:
    """Rewrite the blocks ``names`` of ``path``, each section's results into ``settings.out/NAME.json``."""
    def recorded(name):
        def section() -> str:
            res, md = SECTIONS[name](settings)
            (settings.out / f"{name}.json").write_text(json.dumps(res, indent=2))
            return md
        return section

    torch.set_num_threads(1)
    settings.out.mkdir(parents=True, exist_ok=True)
    settings.plots.mkdir(parents=True, exist_ok=True)
    update({n: recorded(n) for n in SECTIONS}, names, path)


def main(argv=None) -> int:
    d = Settings()
    ap = argparse.ArgumentParser(prog="python -m sw.prune.bench", description=__doc__.splitlines()[0])
    ap.add_argument("sections", nargs="*", metavar="section",
                    help=f"sections to rerun (default: all): {', '.join(SECTIONS)}")
    ap.add_argument("--benchmarks", type=Path, default=BENCHMARKS,
                    help="the Markdown file whose blocks are rewritten; plots go to docs/ beside it")
    ap.add_argument("--out", type=Path, default=d.out, help="directory for each section's JSON and the models")
    ap.add_argument("--data", default=d.data, choices=datasets.DATASETS)
    ap.add_argument("--seeds", type=int, default=d.seeds,
                    help="training seeds (baseline, scan, pruning, fine-tuning) in the schedule comparison")
    ap.add_argument("--target", type=float, default=d.target,
                    help="overall LeNet-300-100 sparsity of the pipeline (sharing, export, NetAdapt on EIE)")
    ap.add_argument("--steps", type=int, default=d.steps, help="iterative prune/fine-tune rounds")
    ap.add_argument("--epochs-per-step", type=int, default=d.epochs_per_step,
                    help="fine-tuning epochs per iterative round and of one-shot (a multiple of --steps)")
    ap.add_argument("--finetune-epochs", type=int, default=d.finetune_epochs,
                    help="fine-tuning epochs of the sharing, 2:4 and CNN sections")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="local worker processes for the schedule comparison (seed × sparsity jobs)")
    ap.add_argument("--ray", action="store_true",
                    help="run the schedule comparison's jobs as Ray tasks (RAY_ADDRESS, the cluster `ray start` "
                         "started on this machine, or a new local instance); needs Ray installed")
    ap.add_argument("--ray-address", metavar="ADDR", help="join the running Ray cluster at ADDR; implies --ray")
    ap.add_argument("--lr-scale", type=float, default=d.lr_scale, help="fine-tuning lr as a fraction of training lr")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    unknown = [n for n in args.sections if n not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    if args.steps < 2 or args.epochs_per_step < 1 or args.epochs_per_step % args.steps:
        ap.error(f"need --steps >= 2 and --epochs-per-step a positive multiple of it, got {args.steps} and "
                 f"{args.epochs_per_step}")
    if args.seeds < 1 or args.jobs < 1 or args.finetune_epochs < 1:
        ap.error("--seeds, --jobs and --finetune-epochs must be >= 1")
    if (args.ray or args.ray_address) and not ray_available():
        ap.error(f"{'--ray-address' if args.ray_address else '--ray'} needs Ray, which is not installed: {RAY_HINT}")
    if args.ray_address:
        try:
            check_address(args.ray_address)     # now, not when the schedule comparison's turn comes
        except ConnectionError as e:
            ap.error(f"--ray-address {args.ray_address}: {e}")
    settings = Settings(args.data, args.seeds, args.target, args.steps, args.epochs_per_step, args.finetune_epochs,
                        args.lr_scale, args.jobs, bool(args.ray or args.ray_address), args.ray_address or None,
                        args.out, args.benchmarks.parent / "docs", not args.no_progress)
    run(settings, args.sections or list(SECTIONS), args.benchmarks)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
