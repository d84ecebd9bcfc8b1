"""The pruning toolkit's benchmark: every target of issue 8 measured on the real MNIST digits.

    python -m sw.prune.bench --out DIR

Writes ``results.json``, ``results.md`` (the tables) and PNG plots into ``DIR``. Baselines come
from (or go into) the cache directory; everything is seeded, so a rerun on one machine repeats
the numbers. Sections: LeNet-300-100 sensitivity → per-layer ratios; iterative versus one-shot
pruning (one-shot fine-tuned for one round's epochs, and for iterative's total) over several
training seeds; 4-bit weight sharing, centroid fine-tuning, integer export and Deep Compression's
storage count; L1/L2-regularised training and achievable sparsity; CNN channel pruning and
network slimming with physical removal; 2:4; NetAdapt and AMC at the uniform channel-pruning MAC
budgets, and NetAdapt on EIE array cycles for the sparse LeNet-300-100.
"""

import argparse
import copy
import json
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from sw.models import data as datasets
from sw.models import registry
from sw.models.io import save_model
from sw.models.train import BASELINES, evaluate, finetune, pretrained, train
from sw.pack.eie import pack_eie, unpack_eie
from sw.prune.amc import amc
from sw.prune.criteria import L1
from sw.prune.export import export_integer, storage_bits
from sw.prune.finetune import prune_and_finetune
from sw.prune.granularity import NM, Channel
from sw.prune.latency import EIECycles
from sw.prune.netadapt import netadapt, nonzero_macs
from sw.prune.plots import line_plot
from sw.prune.pruner import Pruner
from sw.prune.regularize import L1Penalty, L2Penalty, accuracy_vs_sparsity, achievable_sparsity
from sw.prune.report import model_stats
from sw.prune.sensitivity import sensitivity_scan
from sw.prune.share import share_weights
from sw.prune.slim import slim, train_slimming

SCAN_RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99)
REG_RATIOS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
SLIM_STRENGTH = 1e-3
NETADAPT_STEP = 0.1
EIE_SAMPLES = 16      # validation digits the EIE-cycle resource averages over
EIE_TARGET = 0.7
AMC_EPISODES = 300
AMC_WARMUP = 100
OUTPUTS = ("results.json", "results.md", "sensitivity.png", "iterative_vs_oneshot.png", "regularisation.png",
           "netadapt.png", "amc.png",
           "lenet300_pruned_shared.safetensors", "lenet300_int.npz")


SCHEDULE_SPARSITIES = (0.92, 0.95, 0.97, 0.98)
# (key, column title) of the schedule comparison; "{e}" is the per-round epochs, "{k}" the rounds.
PROTOCOLS = (("no_ft", "one-shot, no fine-tune"), ("one_shot", "one-shot + {e} ep"),
             ("iterative", "iterative {k}×{e} ep"), ("one_shot_equal", "one-shot + {ke} ep"),
             ("iterative_equal", "iterative {k}×{e_k} ep"))


def _mean_std(xs):
    return float(np.mean(xs)), float(np.std(xs))


_scans = {}     # (data, seed) -> (baseline, sensitivity scan), per process


def _baseline_and_scan(data, seed: int, progress: bool = False):
    """The LeNet-300-100 baseline trained with ``seed`` (cached on disk) and its sensitivity scan."""
    key = (data.name, seed)
    if key not in _scans:
        cfg = replace(BASELINES["lenet300"], seed=seed)
        model, _ = pretrained("lenet300", data.name, cfg, progress=progress)
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
    cfg = replace(BASELINES["lenet300"], seed=job["seed"])
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
        if key == "iterative" and job["keep"]:
            out["model"] = m
    return out


def schedule_plot(path, rows, titles: dict, seeds: int) -> None:
    """Mean test-accuracy drop ± std over the training seeds of every fine-tuned schedule (one-shot
    without fine-tuning falls off the scale and stays in the tables)."""
    xs = [100 * r["sparsity"] for r in rows]
    keys = [key for key, _ in PROTOCOLS if key != "no_ft"]
    line_plot(path, {titles[k]: (xs, [r[f"{k}_test_drop"][0] for r in rows]) for k in keys},
              "weights pruned (%)", f"test accuracy drop (points), mean of {seeds} seeds",
              "LeNet-300-100: iterative vs one-shot pruning",
              errors={titles[k]: [r[f"{k}_test_drop"][1] for r in rows] for k in keys})


class Bench:
    def __init__(self, out: Path, data_name: str, seeds: int, target: float, steps: int, epochs_per_step: int,
                 lr_scale: float, finetune_epochs: int, jobs: int, progress: bool):
        self.out, self.progress = out, progress
        self.data = datasets.load(data_name)
        self.seeds, self.target, self.steps = seeds, target, steps
        self.eps, self.lr_scale, self.ft_epochs, self.jobs = epochs_per_step, lr_scale, finetune_epochs, jobs
        self.results = {"data": data_name, "seeds": seeds, "target": target, "steps": steps,
                        "epochs_per_step": epochs_per_step, "lr_scale": lr_scale,
                        "finetune_epochs": finetune_epochs, "sections": {}}
        self.md = []
        self.t0 = time.time()

    def section(self, name, fn):
        t = time.time()
        res, md = fn()
        res["wall_s"] = round(time.time() - t, 1)
        self.results["sections"][name] = res
        self.md += [f"### {name} ({res['wall_s']:.0f} s)", "", md, ""]
        if self.progress:
            tqdm.write(f"[{time.time() - self.t0:7.1f} s] {name} done")

    # ------------------------------------------------------------------ LeNet-300-100
    def lenet_baseline(self):
        self.lenet, info = pretrained("lenet300", self.data.name, progress=self.progress)
        self.lenet_cfg = BASELINES["lenet300"]
        self.lenet_test = evaluate(self.lenet, self.data.x_test, self.data.y_test)
        res = {"test_acc": self.lenet_test, "val_acc": info["val_acc"], "train": asdict(self.lenet_cfg)}
        md = (f"LeNet-300-100 (bias-free, 266,200 weights), trained {self.lenet_cfg.epochs} epochs SGD lr "
              f"{self.lenet_cfg.lr} cosine, weight decay {self.lenet_cfg.weight_decay}: test "
              f"{self.lenet_test:.2f}%, "
              f"val {info['val_acc']:.2f}%.")
        return res, md

    def sensitivity(self):
        scan = sensitivity_scan(self.lenet, self.data, ratios=SCAN_RATIOS, progress=self.progress)
        scan.plot(self.out / "sensitivity.png")
        self.scan = scan
        targets = {}
        for s in sorted({self.target, *SCHEDULE_SPARSITIES}):
            try:
                targets[s] = scan.ratios_for(s)
            except ValueError:
                pass
        self.ratio_sets = targets
        lines = [scan.table(), "", "Per-layer ratios from the curves (`SensitivityResult.ratios_for`):", "",
                 "| overall | " + " | ".join(scan.accuracy) + " |", "|---:|" + "---:|" * len(scan.accuracy)]
        for s, r in targets.items():
            lines.append(f"| {s:.0%} | " + " | ".join(f"{r[n]:.4f}" for n in scan.accuracy) + " |")
        return {"scan": scan.to_dict(), "ratios": {str(k): v for k, v in targets.items()}}, "\n".join(lines)

    def schedules(self):
        k, e = self.steps, self.eps
        titles = {key: t.format(k=k, e=e, ke=k * e, e_k=e // k) for key, t in PROTOCOLS}
        for seed in range(self.seeds):       # train (or load) every baseline before the workers need it
            _baseline_and_scan(self.data, seed, self.progress)
        sparsities = sorted({self.target, *SCHEDULE_SPARSITIES})
        jobs = [{"data": self.data.name, "seed": seed, "sparsity": sp, "steps": k, "epochs_per_step": e,
                 "lr_scale": self.lr_scale, "keep": seed == 0 and sp == self.target}
                for sp in sparsities for seed in range(self.seeds)]
        bar = tqdm(total=len(jobs), desc="iterative vs one-shot (seed × sparsity)", disable=not self.progress,
                   leave=False)
        runs = []
        if self.jobs > 1:
            ctx = multiprocessing.get_context("spawn")    # fork after torch has run can deadlock
            with ctx.Pool(min(self.jobs, len(jobs))) as pool:
                for r in pool.imap_unordered(_schedule_job, jobs):
                    runs.append(r)
                    bar.update()
                pool.close()
                pool.join()
        else:
            for j in jobs:
                runs.append(_schedule_job(j))
                bar.update()
        bar.close()
        runs.sort(key=lambda r: (r["target"], r["seed"]))
        self.pruned = next(r.pop("model") for r in runs if "model" in r)
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
        schedule_plot(self.out / "iterative_vs_oneshot.png", rows, titles, self.seeds)
        n = self.seeds
        head = "| sparsity | " + " | ".join(titles[key] for key in keys) + " |"
        rule = "|---:|" + "---:|" * len(keys)
        lines = [f"Per-layer ratios from each baseline's own sensitivity scan; magnitude (L1) pruning; fine-tuning at "
                 f"lr × {self.lr_scale:g} with cosine decay (restarted each round); iterative rounds follow the "
                 f"geometric schedule. **iterative {k}×{e}** is the lecture's loop (each round fine-tuned as long as "
                 f"one-shot is, {k * e} epochs in all); **one-shot + {k * e}** matches its total epochs; "
                 f"**iterative {k}×{e // k}** matches one-shot + {e}'s.", "",
                 f"Test accuracy (%) from the project baseline (training seed 0, test {s0[0]['base_test']:.2f}%, "
                 f"val {s0[0]['base_val']:.2f}%):", "", head, rule]
        for r in s0:
            lines.append(f"| {r['sparsity']:.2%} | " + " | ".join(f"{r[key]['test']:.2f}" for key in keys) + " |")
        lines += ["", f"Accuracy drop against each seed's own dense model, mean ± std over {n} training seeds "
                  "(baseline, sensitivity scan, pruning and fine-tuning all re-run per seed), test / val:", "",
                  head, rule]
        for r in rows:
            cells = [f"{r[key + '_test_drop'][0]:+.2f} ± {r[key + '_test_drop'][1]:.2f} / "
                     f"{r[key + '_val_drop'][0]:+.2f}" for key in keys]
            lines.append(f"| {r['sparsity']:.2%} | " + " | ".join(cells) + " |")
        lines += ["", f"Seeds (of {n}) where iterative {k}×{e} ends more accurate than the one-shot control, "
                  "test / val:", "", f"| sparsity | vs one-shot + {e} | vs one-shot + {k * e} |",
                  "|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['sparsity']:.2%} | {r['wins_vs_one_shot_test']} / {r['wins_vs_one_shot_val']} | "
                         f"{r['wins_vs_one_shot_equal_test']} / {r['wins_vs_one_shot_equal_val']} |")
        base_tests = sorted({r["base_test"] for r in runs if r["target"] == sparsities[0]})
        lines += ["", "Dense test accuracy of the training seeds: " + ", ".join(f"{b:.2f}%" for b in base_tests)
                  + "."]
        return {"titles": titles, "runs": runs, "rows": [{kk: v for kk, v in r.items() if kk != "seed0"}
                                                         for r in rows]}, "\n".join(lines)

    def sharing(self):
        m = copy.deepcopy(self.pruned)
        pruned_acc = evaluate(m, self.data.x_test, self.data.y_test)
        books = share_weights(m, bits=4)
        shared_acc = evaluate(m, self.data.x_test, self.data.y_test)
        finetune(m, self.data, self.lenet_cfg, self.ft_epochs, lr_scale=self.lr_scale, progress=self.progress,
                 desc="centroid fine-tune")
        tuned_acc = evaluate(m, self.data.x_test, self.data.y_test)
        save_model(m, self.out / "lenet300_pruned_shared.safetensors", info={"test_acc": tuned_acc},
                   force=True)
        notes = []
        net = export_integer(m, self.data.x_train, notes)
        net.save(self.out / "lenet300_int.npz", force=True)
        int_acc = net.accuracy(self.data.x_test, self.data.y_test)
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
        s1 = st[1]
        lines = [f"From the iterative model at {self.target:.0%}: test {pruned_acc:.2f}%. 4-bit k-means "
                 "sharing "
                 f"(15 values + reserved 0, linear init): {shared_acc:.2f}% → centroid fine-tuning "
                 f"({self.ft_epochs} epochs): {tuned_acc:.2f}% (cost vs pruned {pruned_acc - tuned_acc:+.2f} "
                 "points). "
                 f"Integer export (int16 activations, int16 codebooks, power-of-two scales, docs/spec.md §1 output "
                 "stage): "
                 f"{int_acc:.2f}% (float {tuned_acc:.2f}%, difference {tuned_acc - int_acc:+.2f}). Every "
                 "layer's index "
                 "matrix round-trips through `pack_eie`/`unpack_eie` (n_pe 1, 4, 64).", "",
                 "| layer | shape | nonzero | entries (n_pe=1) | padding | shift | ratio |",
                 "|---|---|---:|---:|---:|---:|---:|"]
        for r, ly in zip(s1["layers"], net.layers, strict=True):
            lines.append(f"| {r['layer']} | {r['shape'][0]}×{r['shape'][1]} | {r['nonzero']:,} | "
                         f"{r['entries']:,} | "
                         f"{r['padding']:,} | {ly.shift} | {r['ratio']:.1f}× |")
        for k, v in st.items():
            lines.append("")
            lines.append(f"Deep Compression storage, n_pe={k}: {v['dense_bits'] / 8:,.0f} B dense fp32 → "
                         f"{v['compressed_bits'] / 8:,.0f} B (4-bit weight + 4-bit relative index per entry "
                         "incl. "
                         f"padding, int16 codebooks) = **{v['ratio']:.1f}×**; with column pointers "
                         f"{v['ratio_with_col_ptr']:.1f}×.")
        return res, "\n".join(lines)

    def regularisation(self):
        base_cfg = replace(self.lenet_cfg, weight_decay=0.0)
        variants = {"none": [], "L2 (λ=3e-3)": [L2Penalty(3e-3)], "L1 (λ=3e-5)": [L1Penalty(3e-5)],
                    "L1 (λ=1e-4)": [L1Penalty(1e-4)]}
        res, series = {}, {}
        for name, pen in variants.items():
            m = registry.build("lenet300", self.data.input_shape, self.data.classes, seed=base_cfg.seed)
            train(m, self.data, base_cfg, penalties=pen, progress=self.progress, desc=f"train {name}")
            dense = evaluate(m, self.data.x_val, self.data.y_val)
            accs = accuracy_vs_sparsity(m, self.data, REG_RATIOS, scope="global")
            res[name] = {"val_acc": dense, "test_acc": evaluate(m, self.data.x_test, self.data.y_test),
                         "accuracy": accs,
                         "achievable_0.5": achievable_sparsity(REG_RATIOS, accs, dense, 0.5),
                         "achievable_1.0": achievable_sparsity(REG_RATIOS, accs, dense, 1.0)}
            series[name] = ([100 * r for r in REG_RATIOS], accs)
        line_plot(self.out / "regularisation.png", series,
                  "weights pruned (%, global magnitude, no fine-tune)",
                  "val accuracy (%)", "LeNet-300-100: regularised training vs one-shot pruning")
        lines = ["Trained from the same seed without weight decay; one-shot global magnitude pruning, no "
                 "fine-tuning, "
                 "validation accuracy. Achievable sparsity = largest ratio before the drop from the model's "
                 "own dense "
                 "accuracy exceeds the bound.", "",
                 "| training | dense val | dense test | " + " | ".join(f"{r:.0%}" for r in REG_RATIOS)
                 + " | achievable (≤0.5) | achievable (≤1.0) |",
                 "|---|---:|---:|" + "---:|" * len(REG_RATIOS) + "---:|---:|"]
        for name, r in res.items():
            accs = " | ".join(f"{a:.1f}" for a in r["accuracy"])
            lines.append(f"| {name} | {r['val_acc']:.2f} | {r['test_acc']:.2f} | {accs}"
                         + f" | {r['achievable_0.5']:.0%} | {r['achievable_1.0']:.0%} |")
        return {"ratios": list(REG_RATIOS), "variants": res}, "\n".join(lines)

    def nm(self):
        m = copy.deepcopy(self.lenet)
        rep = Pruner(m, NM(2, 4)).prune()
        before = evaluate(m, self.data.x_test, self.data.y_test)
        finetune(m, self.data, self.lenet_cfg, self.ft_epochs, lr_scale=self.lr_scale, progress=self.progress,
                 desc="2:4 FT")
        after = evaluate(m, self.data.x_test, self.data.y_test)
        res = {"sparsity": rep.after.masked_sparsity, "acc_no_finetune": before, "acc_finetuned": after}
        return res, (f"2:4 on every LeNet-300-100 layer ({rep.after.masked_sparsity:.0%}): test "
                     f"{before:.2f}% → "
                     f"{after:.2f}% after {self.ft_epochs} epochs fine-tuning (baseline "
                     f"{self.lenet_test:.2f}%).")

    # ------------------------------------------------------------------ CNN
    def cnn(self):
        base, info = pretrained("cnn", self.data.name, progress=self.progress)
        cfg = BASELINES["cnn"]
        x_val, y_val, x_test, y_test = self.data.x_val, self.data.y_val, self.data.x_test, self.data.y_test
        base_acc = evaluate(base, x_test, y_test)
        base_stats = model_stats(base)
        rows = [{"method": "baseline", "channels": [16, 32], "macs": base_stats.macs,
                 "params": base_stats.params, "val_after_prune": None, "test_acc": base_acc}]
        ft_epochs = self.ft_epochs
        lam = SLIM_STRENGTH

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
            finetune(m, self.data, cfg, ft_epochs, lr_scale=self.lr_scale, progress=self.progress,
                     desc="channel FT")
            record(f"L1 filters, {r:.0%} of conv1 and of conv2", m, pruned, evaluate(m, x_test, y_test))
        for r in (0.5, 0.7):
            m = copy.deepcopy(base)
            res = slim(m, self.data, cfg, r, ft_epochs, lr_scale=self.lr_scale, progress=self.progress)
            record(f"BN scale, {r:.0%} of all conv channels (global), baseline training", m,
                   res.val_after_prune, res.test_after_finetune)
        slim_model = registry.build("cnn", self.data.input_shape, self.data.classes, seed=cfg.seed)
        train_slimming(slim_model, self.data, cfg, lam, progress=self.progress)
        rows.append({"method": f"slimming training (L1 on BN scales, λ={lam:g}), dense", "channels": [16, 32],
                     "macs": base_stats.macs, "params": base_stats.params, "val_after_prune": None,
                     "test_acc": evaluate(slim_model, x_test, y_test)})
        for r in (0.5, 0.7):
            m = copy.deepcopy(slim_model)
            res = slim(m, self.data, cfg, r, ft_epochs, lr_scale=self.lr_scale, progress=self.progress)
            record(f"network slimming: BN scale, {r:.0%} global, after slimming training", m,
                   res.val_after_prune, res.test_after_finetune)
        lines = [f"SmallCNN (conv 16, 32 with BatchNorm; fc 120, 84), baseline test {base_acc:.2f}%. Pruned "
                 "channels are physically removed (the tensors shrink; MACs counted on the smaller model), "
                 f"then fine-tuned {ft_epochs} epochs at lr × {self.lr_scale:g}; drop against the baseline.",
                 "",
                 "| method | conv channels | MACs | MAC reduction | params | val right after pruning | "
                 "test acc | drop |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            vap = "" if r["val_after_prune"] is None else f"{r['val_after_prune']:.2f}"
            lines.append(f"| {r['method']} | {r['channels'][0]}, {r['channels'][1]} | {r['macs']:,} | "
                         f"{1 - r['macs'] / base_stats.macs:.1%} | {r['params']:,} | {vap} | "
                         f"{r['test_acc']:.2f} | {base_acc - r['test_acc']:+.2f} |")
        return {"rows": rows, "baseline_val": info["val_acc"], "slimming_strength": lam}, "\n".join(lines)

    def cnn_budgets(self):
        """The CNN baseline, its recipe, test accuracy and MACs, and ``(ratio, MAC fraction)`` of each
        uniform L1 filter-pruning row (50 % and 70 % of conv1 and conv2): the budgets the searches get."""
        base, _ = pretrained("cnn", self.data.name, progress=self.progress)
        base_macs = model_stats(base).macs
        budgets = []
        for r in (0.5, 0.7):
            uniform = copy.deepcopy(base)
            p = Pruner(uniform, Channel(), L1(), layers=["conv1", "conv2"])
            p.prune(r)
            p.remove()
            budgets.append((r, model_stats(uniform).macs / base_macs))
        return base, BASELINES["cnn"], evaluate(base, self.data.x_test, self.data.y_test), base_macs, budgets

    def netadapt_cnn(self):
        base, cfg, base_acc, base_macs, budgets = self.cnn_budgets()
        rows, traces = [], {}
        for r, budget in budgets:
            m, res = netadapt(base, self.data, cfg, budget, NETADAPT_STEP, short_epochs=1,
                              final_epochs=self.ft_epochs, lr_scale=self.lr_scale, progress=self.progress)
            st = model_stats(m)
            rows.append({"budget_of": f"L1 filters, {r:.0%} of conv1 and of conv2", "budget": budget,
                         "macs": st.macs, "params": st.params, "channels": res.channels,
                         "iterations": len(res.trace), "val_before_final": res.val_before_final,
                         "test_acc": res.test_acc, "stopped": res.stopped})
            traces[budget] = res
        base_val = evaluate(base, self.data.x_val, self.data.y_val)
        deepest = min(traces)
        traces[deepest].plot(self.out / "netadapt.png", base_val, "MACs (fraction of the baseline's)",
                             f"NetAdapt on the MNIST CNN, down to {deepest:.3f} of the MACs")
        lines = [f"NetAdapt (MACs as the resource, step {NETADAPT_STEP:g} of the baseline's MACs per iteration, "
                 "every candidate layer fine-tuned 1 epoch before the comparison, the winner fine-tuned "
                 f"{self.ft_epochs} epochs at the end) on the same SmallCNN, with the MAC budget of each uniform L1 "
                 f"filter pruning row of the channel-pruning table; baseline test {base_acc:.2f}%, "
                 f"{base_macs:,} MACs.", "",
                 "| MAC budget of | MACs | MAC reduction | params | "
                 f"channels ({', '.join(rows[0]['channels'])}) | "
                 "iterations | test acc | drop |", "|---|---:|---:|---:|---|---:|---:|---:|"]
        for row in rows:
            ch = ", ".join(str(v) for v in row["channels"].values())
            lines.append(f"| {row['budget_of']} | {row['macs']:,} | {1 - row['macs'] / base_macs:.1%} | "
                         f"{row['params']:,} | {ch} | {row['iterations']} | {row['test_acc']:.2f} | "
                         f"{base_acc - row['test_acc']:+.2f} |")
        lines += ["", f"Search trace down to {deepest:.3f} of the baseline's MACs (resource = MACs / baseline MACs; "
                  "val acc after the 1-epoch fine-tune; — : the layer alone cannot cut one step):", "",
                  traces[deepest].table()]
        return {"rows": rows, "base_val": base_val,
                "traces": {f"{k:.3f}": v.to_dict() for k, v in traces.items()}}, "\n".join(lines)

    def netadapt_eie(self):
        start = self.pruned
        d = self.data
        search = EIECycles(d.x_val[:EIE_SAMPLES], n_pe=64)
        check = EIECycles(d.x_test[:4 * EIE_SAMPLES], n_pe=64)
        cfg = self.lenet_cfg
        base_nz = nonzero_macs(start)
        models = {f"start: iterative {self.target:.0%} model": (start, None)}
        common = {"short_epochs": 1, "final_epochs": self.ft_epochs, "lr_scale": self.lr_scale,
                  "progress": self.progress}
        models["NetAdapt on EIE cycles"] = netadapt(start, d, cfg, EIE_TARGET, NETADAPT_STEP, resource=search,
                                                    **common)
        models["NetAdapt on nonzero MACs"] = netadapt(start, d, cfg, EIE_TARGET, NETADAPT_STEP,
                                                      resource=nonzero_macs, **common)
        rows = []
        for name, (m, res) in models.items():
            cyc = check.layer_cycles(m).mean(axis=0)
            rows.append({"model": name, "fc1": m.fc1.out_features, "fc2": m.fc2.out_features,
                         "nonzero_macs": nonzero_macs(m), "cycles": cyc.tolist(), "test_acc":
                         evaluate(m, d.x_test, d.y_test), "iterations": None if res is None else len(res.trace),
                         "trace": None if res is None else res.to_dict()})
        c0 = sum(rows[0]["cycles"])
        lines = [f"NetAdapt on LeNet-300-100 from the iterative {self.target:.0%} model (fine-grained masks kept), "
                 f"neurons of fc1/fc2 as channels, target {EIE_TARGET:g} of the start's resource in steps of "
                 f"{NETADAPT_STEP:g}, 1-epoch candidate fine-tune, {self.ft_epochs} epochs at the end. Resource: "
                 f"EIE cycles from the exact array cycle model ({search.n_pe} PEs, queue depth {search.queue_depth}, "
                 f"LNZD width {search.lnzd_width}; mean over "
                 f"{EIE_SAMPLES} validation digits), or nonzero MACs. Cycles below are re-measured on "
                 f"{4 * EIE_SAMPLES} test digits.", "",
                 "| model | fc1, fc2 neurons | nonzero MACs | EIE cycles fc1 + fc2 + fc3 = total | vs start | "
                 "iterations | test acc |", "|---|---|---:|---|---:|---:|---:|"]
        for r in rows:
            cyc = r["cycles"]
            it = "" if r["iterations"] is None else str(r["iterations"])
            lines.append(f"| {r['model']} | {r['fc1']}, {r['fc2']} | {r['nonzero_macs']:,} "
                         f"({r['nonzero_macs'] / base_nz:.0%}) | {cyc[0]:.0f} + {cyc[1]:.0f} + {cyc[2]:.0f} = "
                         f"{sum(cyc):.0f} | {sum(cyc) / c0:.0%} | {it} | {r['test_acc']:.2f} |")
        return {"rows": rows, "samples": EIE_SAMPLES, "target": EIE_TARGET}, "\n".join(lines)

    def amc_cnn(self):
        base, cfg, base_acc, _, budgets = self.cnn_budgets()
        rows, results = [], {}
        for r, budget in budgets:
            _, res = amc(base, self.data, cfg, budget, episodes=AMC_EPISODES, warmup=AMC_WARMUP,
                         final_epochs=self.ft_epochs, lr_scale=self.lr_scale, progress=self.progress)
            acc = [e["val_acc"] for e in res.episodes]
            rows.append({"budget_of": f"L1 filters, {r:.0%} of conv1 and of conv2", "budget": budget,
                         "best_episode": res.best["episode"], "best_val": res.best["val_acc"], "macs": res.macs,
                         "channels": res.channels, "warmup_mean": float(np.mean(acc[:AMC_WARMUP])),
                         "last_mean": float(np.mean(acc[-(AMC_EPISODES - AMC_WARMUP):])),
                         "test_acc": res.test_acc})
            results[budget] = res
        first = max(results)
        results[first].plot(self.out / "amc.png", AMC_WARMUP)
        lines = [f"AMC on the same SmallCNN at the MAC budget of each uniform L1 filter-pruning row: "
                 f"{AMC_EPISODES} episodes, the first {AMC_WARMUP} with random actions, ratios in [0, 0.8], "
                 "reward = validation accuracy right after pruning (no fine-tuning); the best episode's ratios "
                 f"are then fine-tuned {self.ft_epochs} epochs. Baseline test {base_acc:.2f}%.", "",
                 "| MAC budget of | MACs (of the baseline) | channels (" + ", ".join(rows[0]["channels"])
                 + ") | best episode | "
                 "its val acc, no FT | mean val acc: warm-up / learned episodes | test acc after FT | drop |",
                 "|---|---:|---|---:|---:|---|---:|---:|"]
        for row in rows:
            ch = ", ".join(str(v) for v in row["channels"].values())
            lines.append(f"| {row['budget_of']} | {row['macs']:.1%} | {ch} | {row['best_episode']} | "
                         f"{row['best_val']:.2f} | {row['warmup_mean']:.2f} / {row['last_mean']:.2f} | "
                         f"{row['test_acc']:.2f} | {base_acc - row['test_acc']:+.2f} |")
        return {"rows": rows, "episodes": {f"{k:.3f}": v.to_dict() for k, v in results.items()}}, \
            "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sw.prune.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path,
                    help="directory for results.json, results.md and plots")
    ap.add_argument("--data", default="mnist", choices=datasets.DATASETS)
    ap.add_argument("--seeds", type=int, default=3,
                    help="training seeds (baseline, scan, pruning, fine-tuning) in the schedule comparison")
    ap.add_argument("--target", type=float, default=0.95,
                    help="overall LeNet-300-100 sparsity of the pipeline (sharing, export)")
    ap.add_argument("--steps", type=int, default=5, help="iterative prune/fine-tune rounds")
    ap.add_argument("--epochs-per-step", type=int, default=30,
                    help="fine-tuning epochs per iterative round and of one-shot (a multiple of --steps)")
    ap.add_argument("--finetune-epochs", type=int, default=12,
                    help="fine-tuning epochs of the sharing, 2:4 and CNN sections")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="worker processes for the schedule comparison")
    ap.add_argument("--lr-scale", type=float, default=0.1, help="fine-tuning lr as a fraction of training lr")
    ap.add_argument("--force", action="store_true", help="overwrite earlier results in --out")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if args.steps < 2 or args.epochs_per_step < 1 or args.epochs_per_step % args.steps:
        ap.error(f"need --steps >= 2 and --epochs-per-step a positive multiple of it, got {args.steps} and "
                 f"{args.epochs_per_step}")
    if args.seeds < 1 or args.jobs < 1 or args.finetune_epochs < 1:
        ap.error("--seeds, --jobs and --finetune-epochs must be >= 1")
    existing = [p for p in OUTPUTS if (args.out / p).exists()]
    if existing and not args.force:
        ap.error(f"{args.out} already holds {', '.join(existing)}; use --force to overwrite")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    b = Bench(args.out, args.data, args.seeds, args.target, args.steps, args.epochs_per_step, args.lr_scale,
              args.finetune_epochs, args.jobs, not args.no_progress)
    for name, fn in [("LeNet-300-100 baseline", b.lenet_baseline), ("Sensitivity scan", b.sensitivity),
                     ("Iterative vs one-shot", b.schedules), ("Weight sharing and integer export", b.sharing),
                     ("2:4 structured sparsity", b.nm), ("L1/L2 regularisation", b.regularisation),
                     ("CNN channel pruning and network slimming", b.cnn), ("NetAdapt (CNN)", b.netadapt_cnn),
                     ("NetAdapt on EIE cycles (LeNet-300-100)", b.netadapt_eie), ("AMC (CNN)", b.amc_cnn)]:
        b.section(name, fn)
    b.results["wall_s"] = round(time.time() - b.t0, 1)
    cmd = "python -m sw.prune.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    b.results["command"] = cmd
    (args.out / "results.json").write_text(json.dumps(b.results, indent=2))
    md = [f"Measured by `{cmd}` in {b.results['wall_s']:.0f} s.", ""] + b.md
    (args.out / "results.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
