"""``make demo`` / ``sparsehw demo``: a trained network through the whole chain onto the RTL.

LeNet-300-100 on the offline MNIST digits, trained on first use and cached; iteratively pruned
to above 90 %; 4-bit weight sharing; integer export (``sw.prune.pipeline``); packed for the
EIE array (64 PEs); test digits run through all three layers on the array RTL, bit-exact to
the integer model on every digit and cycle-for-cycle to the cycle model. Then the EIE paper's
speedup breakdown over a dense schedule on the same PEs (``sw.cyclemodel.speedup``), an energy
estimate against a dense baseline (``sw.cyclemodel.energy``, docs/energy.md), and a 2:4 layer
on the SparseMAC and DenseMAC RTL. Last, a point cloud: a room scene's kernel map built on the
PointAcc mapping unit RTL (equal to ``kernel_map``), then a sparse convolution over it, equal to
dense ``conv3d`` at the active sites. Figures and ``summary.json`` go to the output directory,
written as a whole at the end.
"""

import json
import time
from pathlib import Path

import numpy as np

from sw.cli_io import CLIError, check_output_dir, new_dir

DEMO_FILES = ("summary.json", "speedup.png", "load_balance.png", "energy.png")


def is_demo_file(path) -> bool:
    return Path(path).name in DEMO_FILES


def check_out(out_dir, force: bool) -> Path:
    return check_output_dir(out_dir, force=force, owned=is_demo_file, kind="demo outputs")


def run_demo(out_dir, *, digits: int = 200, n_pe: int = 64, force: bool = False) -> int:
    """Run the demo; figures and ``summary.json`` replace ``out_dir`` as a whole (with ``force``)."""
    out = check_out(out_dir, force)
    t0 = time.perf_counter()
    summary = {"n_pe": n_pe, "digits": digits}
    with new_dir(out) as stage:
        try:
            ok = _eie(summary, stage, digits, n_pe)
            ok &= _sparse24(summary)
            ok &= _pointcloud(summary)
        except (AssertionError, SystemExit) as e:
            raise CLIError(f"the RTL disagreed with its reference or the cycle model: {e}") from None
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        (stage / "summary.json").write_text(json.dumps(summary, indent=1, default=_json))
        _print_summary(summary)
    print(f"\nwrote {out}/ ({', '.join(DEMO_FILES)}) in {summary['seconds']:.0f} s")
    if not ok:
        raise CLIError("the RTL disagreed with its reference (see above)")
    return 0


def _json(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(type(v))


def _eie(summary: dict, stage: Path, digits: int, n_pe: int) -> bool:
    from runtime.eie.host import fit_params
    from runtime.eie.network import efficiency, model, run_layers
    from sw.models.data import load
    from sw.pack import pack_eie
    from sw.prune.pipeline import compressed_lenet

    print("== 1. LeNet-300-100: train, prune, share, export (on first use; cached after that)")
    net, info = compressed_lenet(progress=True)
    acc = info["accuracy"]
    for ly in info["layers"]:
        print(f"  {ly['name']}: {ly['shape'][0]}x{ly['shape'][1]}, {ly['density']:.1%} of weights kept, "
              f"{ly['codebook_size']}-entry codebook, shift {ly['shift']}{', ReLU' if ly['relu'] else ''}")
    print(f"  {1 - info['density']:.1%} of all weights pruned; test accuracy (1,000 digits): dense "
          f"{acc['dense']:.1f} %, pruned {acc['pruned']:.1f} %, shared {acc['shared']:.1f} %, "
          f"integer {acc['integer']:.1f} %" + (" (cached)" if info.get("cached") else ""))
    summary["compression"] = {k: info[k] for k in ("accuracy", "layers", "density")}

    print(f"\n== 2. packed for {n_pe} PEs; {digits} test digits through all three layers on the array RTL")
    x_test, y_test = load("mnist").split("test")
    x_test, y_test = x_test[:digits], y_test[:digits]
    a = net.quantize_input(x_test)
    layers = [(pack_eie(ly.weights(), n_pe, codebook=ly.codebook), ly.shift, ly.relu) for ly in net.layers]
    for (p, _, _), ly in zip(layers, net.layers, strict=True):
        print(f"  {ly.name}: {p.n_entries:,} entries ({p.n_padding} padding), "
              f"{max(pe.n_entries for pe in p.pe)} in the fullest PE, {p.local_rows} local rows")
    t = time.perf_counter()
    params = fit_params([p for p, _, _ in layers], n_pe)
    model(params)                                   # the Verilator build (cached after the first run)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    y, layers_out, _ = run_layers(layers, a, n_pe, bulk_load=True, params=params,
                                  progress=f"{digits} digits x 3 layers on the {n_pe}-PE RTL")
    rtl_s = time.perf_counter() - t
    acts = net.activations(a)           # each layer's integer input, then the integer model's output
    golden = acts[-1]
    exact = int(np.sum(np.all(y == golden, axis=1)))
    rtl_pred = y.argmax(axis=1)
    rtl_acc = 100.0 * float(np.mean(rtl_pred == y_test))
    float_acc = _float_accuracy(info, x_test, y_test)
    cycles = [int(np.sum(lay["cycles"])) for lay in layers_out]
    per_inf = sum(cycles) / digits
    eff = [efficiency(lay, n_pe) for lay in layers_out]
    print(f"  RTL outputs bit-exact to the integer model on {exact} of {digits} digits; cycles equal the cycle "
          f"model's on every (digit, layer) (Verilator build {build_s:.0f} s, simulation {rtl_s:.0f} s)")
    print(f"  accuracy on these {digits} digits: RTL {rtl_acc:.1f} %, float model {float_acc:.1f} %")
    print(f"  {per_inf:,.0f} cycles per inference ("
          + ", ".join(f"{ly.name} {c / digits:,.0f}" for ly, c in zip(net.layers, cycles, strict=True))
          + "); load-balance efficiency " + ", ".join(f"{e:.3f}" for e in eff))
    summary["rtl"] = {"exact_digits": exact, "accuracy_rtl": rtl_acc, "accuracy_float": float_acc,
                      "cycles_per_inference": per_inf, "layer_cycles_per_inference": [c / digits for c in cycles],
                      "efficiency": eff, "array": params, "build_s": build_s, "simulation_s": rtl_s}
    _load_balance_plot(layers_out, net, n_pe, stage / "load_balance.png")

    print(f"\n== 3. speedup over a dense schedule on the same {n_pe} PEs (cycle model, mean over the digits)")
    _speedup(summary, stage, layers, acts[:-1], n_pe)
    print("\n== 4. energy per inference (45 nm figures of docs/energy.md)")
    _energy(summary, stage, layers, acts[:-1])
    return exact == digits


def _float_accuracy(info, x, y) -> float:
    from sw.models.io import load_model
    from sw.models.train import evaluate

    model = load_model(Path(info["path"]) / "model.safetensors")
    model = model[0] if isinstance(model, tuple) else model
    return float(evaluate(model, x, y))


def _speedup(summary, stage, layers, inputs, n_pe) -> None:
    """``inputs``: each layer's input activations for every digit."""
    from sw.cyclemodel.speedup import SCHEDULES, layer_breakdown, total

    per_digit = [total([layer_breakdown(p, x[i]) for (p, _, _), x in zip(layers, inputs, strict=True)])
                 for i in range(len(inputs[0]))]
    cycles = {s: float(np.mean([b.cycles[s] for b in per_digit])) for s in SCHEDULES}
    speed = {s: cycles["dense"] / cycles[s] for s in SCHEDULES}
    names = {"dense": "dense", "weight_sparse": "weight sparsity only", "act_sparse": "activation sparsity only",
             "both": "both (EIE)"}
    for s in SCHEDULES:
        print(f"  {names[s]:<26} {cycles[s]:>10,.0f} cycles  {speed[s]:6.1f}x")
    summary["speedup"] = {"cycles": cycles, "speedup": speed}
    _bar_plot([names[s] for s in SCHEDULES], [speed[s] for s in SCHEDULES], "speedup over dense (x)",
              f"LeNet-300-100 on {n_pe} PEs: speedup by source", stage / "speedup.png")


def _energy(summary, stage, layers, inputs) -> None:
    from sw.cyclemodel.energy import energy_per_inference

    reports = [energy_per_inference([p for p, _, _ in layers], [x[i] for x in inputs])
               for i in range(len(inputs[0]))]
    sparse = float(np.mean([r.sparse_pj for r in reports]))
    dense = float(np.mean([r.dense_pj for r in reports]))
    dram = float(np.mean([r.dense_dram_pj for r in reports]))
    print(f"  EIE {sparse / 1e3:,.1f} nJ; dense, weights in SRAM {dense / 1e3:,.1f} nJ ({dense / sparse:.1f}x); "
          f"dense, weights in DRAM {dram / 1e3:,.1f} nJ ({dram / sparse:.0f}x)")
    summary["energy_nj"] = {"eie": sparse / 1e3, "dense_sram": dense / 1e3, "dense_dram": dram / 1e3}
    _bar_plot(["EIE", "dense (SRAM)", "dense (DRAM)"], [sparse / 1e3, dense / 1e3, dram / 1e3], "nJ per inference",
              "LeNet-300-100: energy per inference", stage / "energy.png", log=True)


def _sparse24(summary, digits: int = 20) -> bool:
    from runtime.sparse24 import run_layer_24, wrap32
    from sw.prune.nm_accuracy import finetuned_24_lenet_layer

    print("\n== 5. 2:4 structured sparsity: a fine-tuned LeNet layer on the SparseMAC and DenseMAC RTL")
    lay = finetuned_24_lenet_layer("fc2", n_inputs=digits)
    print(f"  LeNet-300-100, 2:4 on every layer and fine-tuned: test accuracy dense {lay.dense:.1f} %, one-shot "
          f"{lay.one_shot:.1f} %, fine-tuned {lay.finetuned:.1f} %, with {lay.name} in int8 {lay.quantized:.1f} %")
    run = run_layer_24(lay.weight, lay.x)
    # run_layer_24 asserts that both units' outputs equal each other and the exact product; recheck the latter.
    equal = bool(np.array_equal(run.y, wrap32(lay.x.astype(np.int64) @ lay.weight.astype(np.int64).T)))
    err = float(np.max(np.abs(run.y * 2.0 ** -(lay.weight_exp + lay.in_exp) - lay.float_out))
                / np.max(np.abs(lay.float_out)))
    print(f"  {lay.name} ({run.rows}x{run.k}, int8) on {run.n} digits: SparseMAC {run.sparse_cycles:,} cycles, "
          f"DenseMAC {run.dense_cycles:,} cycles with as many multipliers "
          f"({run.dense_cycles / run.sparse_cycles:.2f}x); "
          f"outputs equal each other and the exact product; rescaled, within {err:.1%} of the float layer")
    summary["sparse24"] = {"layer": lay.name, "rows": run.rows, "k": run.k, "digits": run.n,
                           "sparse_cycles": run.sparse_cycles, "dense_cycles": run.dense_cycles, "equal": equal,
                           "accuracy": {"dense": lay.dense, "one_shot": lay.one_shot, "finetuned": lay.finetuned,
                                        "int8": lay.quantized}, "max_rel_error_vs_float": err}
    return equal


def _pointcloud(summary, voxel: float = 0.12, channels: tuple = (8, 16)) -> bool:
    import torch

    from runtime.pointacc.mapping import map_cloud
    from sw.pointcloud import kernel_map, scenes
    from sw.pointcloud.sparse_conv import conv3d_dense_at, sparse_conv3d

    print("\n== 6. A point cloud: its kernel map on the PointAcc mapping unit RTL, then a sparse convolution")
    coords = scenes.scene("room", voxel, seed=0)
    r = map_cloud(coords, progress="offsets mapped on the RTL")
    _, want = kernel_map(coords, 3, 1)
    maps_equal = r["maps"] is not None and all(np.array_equal(a, b) for a, b in zip(r["maps"], want, strict=True))
    c = r["counters"]
    pairs = sum(len(m) for m in want)
    print(f"  room scene, {voxel * 100:.0f} cm voxels: {len(coords):,} points; mapping unit (width "
          f"{r['params']['width']}): {c['cycles']:,} cycles (sort {c['sort_cycles']:,}), "
          f"{c['cycles'] / (len(coords) * len(want)):.3f} cycles per point per offset, {pairs:,} pairs, "
          f"{'equal to' if maps_equal else 'DIFFERENT from'} kernel_map")
    # Integer-valued float64 features and weights: every sum is exact, so equality is bitwise.
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.integers(-8, 9, (len(coords), channels[0])), dtype=torch.float64)
    w = torch.as_tensor(rng.integers(-8, 9, (len(want), *channels)), dtype=torch.float64)
    y = sparse_conv3d(x, r["maps"] if maps_equal else want, w, len(coords))
    conv_equal = bool(torch.equal(y, conv3d_dense_at(coords, x, w, 1, coords)))
    print(f"  {channels[0]}->{channels[1]} submanifold convolution over the RTL's map (gather, matmul, "
          f"scatter-add): {'equal to' if conv_equal else 'DIFFERENT from'} dense conv3d at the {len(coords):,} "
          "active sites")
    summary["pointcloud"] = {"scene": "room", "voxel_m": voxel, "points": len(coords), "pairs": pairs,
                             "cycles": c["cycles"], "sort_cycles": c["sort_cycles"], "width": r["params"]["width"],
                             "maps_equal": maps_equal, "conv_equal": conv_equal,
                             "sim_cycles_per_s": r["sim_cycles"] / max(r["sim_wall_s"], 1e-9)}
    return maps_equal and conv_equal


def _bar_plot(labels, values, ylabel, title, path, log=False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    bars = ax.bar(labels, values, color=["#999999", "#4c72b0", "#55a868", "#c44e52"][: len(values)])
    ax.bar_label(bars, fmt="%.1f")
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _load_balance_plot(layers_out, net, n_pe, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(layers_out), figsize=(4 * len(layers_out), 3.2), sharey=False)
    for ax, lay, ly in zip(np.atleast_1d(axes), layers_out, net.layers, strict=True):
        busy = np.sum([[c[0] for c in counters] for counters in lay["counters"]], axis=0)
        starved = np.sum([[c[1] for c in counters] for counters in lay["counters"]], axis=0)
        stalled = np.sum([[c[2] for c in counters] for counters in lay["counters"]], axis=0)
        k = np.arange(n_pe)
        ax.bar(k, busy, label="MAC", color="#4c72b0")
        ax.bar(k, stalled, bottom=busy, label="empty column", color="#dd8452")
        ax.bar(k, starved, bottom=busy + stalled, label="starved", color="#cccccc")
        ax.set_title(f"{ly.name}: per-PE cycles (RTL counters)")
        ax.set_xlabel("PE")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _print_summary(s: dict) -> None:
    from sw.markdown import table

    r, sp, e = s["rtl"], s["speedup"]["speedup"], s["energy_nj"]
    rows = [
        ["weights pruned", f"{1 - s['compression']['density']:.1%} (4-bit shared, int16 export)"],
        [f"digits through the {s['n_pe']}-PE RTL", f"{s['digits']}; bit-exact on {r['exact_digits']}"],
        ["accuracy: RTL / float", f"{r['accuracy_rtl']:.1f} % / {r['accuracy_float']:.1f} %"],
        ["cycles per inference", f"{r['cycles_per_inference']:,.0f}"],
        ["load-balance efficiency", ", ".join(f"{v:.3f}" for v in r["efficiency"])],
        ["speedup: weights / activations / both", f"{sp['weight_sparse']:.1f}x / {sp['act_sparse']:.1f}x / "
                                                  f"{sp['both']:.1f}x"],
        ["energy: EIE / dense SRAM", f"{e['eie']:,.1f} nJ / {e['dense_sram']:,.1f} nJ"],
    ]
    if "sparse24" in s:
        t = s["sparse24"]
        rows.append(["2:4 layer: sparse / dense MAC cycles", f"{t['sparse_cycles']:,} / {t['dense_cycles']:,} "
                                                             f"(outputs equal: {t['equal']})"])
    if "pointcloud" in s:
        p = s["pointcloud"]
        rows.append(["point cloud: mapping unit cycles", f"{p['cycles']:,} for {p['points']:,} points (map equal: "
                                                          f"{p['maps_equal']}; conv equal: {p['conv_equal']})"])
    print("\n" + "\n".join(table(["demo", "result"], rows, align="ll")))
