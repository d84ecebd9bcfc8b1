"""Point-cloud software figures: scene densities, kernel-map build speed, map + convolution against
spconv's CPU ``SubMConv3d``, implicit-GEMM padding.

    python -m sw.pointcloud.bench [--out out/pointcloud] [--quick]

Prints Markdown tables (for BENCHMARKS.md) and saves them with plots under ``--out``. Timings
are the best of ``--repeat`` runs on this machine's CPU (NumPy single process).
"""

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sw.markdown import table
from sw.pointcloud import kernel_map, scenes
from sw.pointcloud.implicit_gemm import mac_counts, neighbor_table, plan

SCENE_GRID = {"room": (0.02, 0.05, 0.1, 0.2), "lidar": (0.05, 0.1, 0.2, 0.4), "mesh": (0.05, 0.1, 0.2, 0.4)}
MAP_SCENES = [("room", 0.03), ("lidar", 0.05), ("mesh", 0.1)]     # ~100k points each
GEMM_SCENES = [("room", 0.05), ("lidar", 0.1), ("mesh", 0.2)]
CONV_SCENES = [("room", 0.05), ("lidar", 0.1), ("mesh", 0.2)]
CONV_CHANNELS = 16
SPCONV = "spconv==2.3.8"
PLANS = [("no reorder, 1 group", 1, False), ("reorder, 1 group", 1, True), ("reorder, 2 groups", 2, True),
         ("reorder, 3 groups", 3, True), ("reorder, 27 groups", 27, True)]


def densities(quick=False):
    rows = []
    grid = {k: v[1:3] for k, v in SCENE_GRID.items()} if quick else SCENE_GRID
    for kind, sizes in tqdm(grid.items(), desc="scenes"):
        pts = scenes.SCENES[kind](seed=0)
        for vs in sizes:
            c = scenes.voxelize(pts, vs)
            ext = c.max(0) - c.min(0) + 1
            rows.append([kind, f"{vs:g}", len(pts), len(c), "x".join(map(str, ext)),
                         f"{scenes.density(c):.2e}"])
    return rows


def synthetic_cloud(n, seed=0, occupancy=0.3):
    """``n`` unique voxels uniformly in a cube at ``occupancy`` (~1 + 26 * occupancy neighbours each)."""
    rng = np.random.default_rng(seed)
    side = int(round((n / occupancy) ** (1 / 3)))
    c = np.unique(rng.integers(0, side, (int(n * 1.4), 3)), axis=0)
    return c[rng.permutation(len(c))[:n]]


def map_speed(repeat=3, quick=False):
    rows = []
    clouds = [("uniform 100k", synthetic_cloud(20_000 if quick else 100_000))]
    for kind, vs in MAP_SCENES[:1] if quick else MAP_SCENES:
        clouds.append((f"{kind} {vs:g} m", scenes.scene(kind, vs, seed=0)))
    for name, c in tqdm(clouds, desc="kernel maps"):
        for stride in (1, 2):
            times = {}
            for method in ("sort", "hash"):
                best = np.inf
                for _ in range(repeat):
                    t = time.perf_counter()
                    out, maps = kernel_map(c, 3, stride, method=method)
                    best = min(best, time.perf_counter() - t)
                times[method] = best
            pairs = sum(len(m) for m in maps)
            rows.append([name, stride, len(c), len(out), pairs,
                         f"{times['sort']:.3f}", f"{len(c) / times['sort'] / 1e6:.2f}",
                         f"{times['hash']:.3f}", f"{len(c) / times['hash'] / 1e6:.2f}"])
    return rows


def conv_speed(repeat=5, quick=False):
    """Kernel map + 16 -> 16 submanifold convolution (``kernel_map`` + ``sparse_conv3d``) against
    spconv's CPU ``SubMConv3d`` building its own map, one torch thread each, runs interleaved;
    medians. Without spconv installed its columns stay empty."""
    import torch

    try:
        import spconv.pytorch as spconv
    except ImportError:
        spconv = None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [_conv_scene(kind, vs, repeat, spconv)
                for kind, vs in tqdm(CONV_SCENES[:1] if quick else CONV_SCENES, desc="map + conv")]
    finally:
        torch.set_num_threads(threads)


def _conv_scene(kind, vs, repeat, spconv):
    import torch

    from sw.pointcloud.sparse_conv import sparse_conv3d

    c = scenes.scene(kind, vs, seed=0)
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(len(c), CONV_CHANNELS, generator=gen)
    weight = torch.randn(27, CONV_CHANNELS, CONV_CHANNELS, generator=gen)
    state = {}

    def ours():
        state["maps"] = kernel_map(c)[1]

    def conv():
        state["out"] = sparse_conv3d(feats, state["maps"], weight, len(c))

    def conv_torch():
        state["out_torch"] = sparse_conv3d(feats, state["maps"], weight, len(c), native=False)

    runs = {"map": ours, "conv": conv, "conv_torch": conv_torch}
    if spconv is not None:
        net = spconv.SubMConv3d(CONV_CHANNELS, CONV_CHANNELS, 3, bias=False)
        with torch.no_grad():       # spconv's CPU weight layout: (C_out, z, y, x, C_in)
            net.weight.copy_(weight.reshape(3, 3, 3, CONV_CHANNELS, CONV_CHANNELS).permute(4, 0, 1, 2, 3))
        idx = torch.as_tensor(np.concatenate([np.zeros((len(c), 1), dtype=np.int64), c - c.min(0)], 1),
                              dtype=torch.int32)[:, [0, 3, 2, 1]]       # (batch, z, y, x)
        shape = (idx[:, 1:].max(0).values + 1).tolist()

        def theirs():
            with torch.no_grad():
                state["spconv"] = net(spconv.SparseConvTensor(feats, idx, shape, 1)).features

        runs["spconv"] = theirs
    times = {k: [] for k in runs}
    for _ in range(repeat):
        for k, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    med = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    ours_ms = med["map"] + med["conv"]
    sp = med.get("spconv")
    if not torch.allclose(state["out"], state["out_torch"], rtol=1e-5, atol=1e-5):
        raise RuntimeError(f"{kind}: sparse_conv3d's C and torch paths differ")
    if sp is not None:
        err = float((state["spconv"] - state["out"]).abs().max())
        if err > 1e-4 * float(state["out"].abs().max()):
            raise RuntimeError(f"{kind}: spconv and sparse_conv3d differ by {err}")
    return [f"{kind} {vs:g} m", len(c), sum(len(m) for m in state["maps"]), f"{med['map']:.0f}",
            f"{med['conv']:.0f}", f"{med['conv_torch']:.0f}", f"{ours_ms:.0f}", "" if sp is None else f"{sp:.0f}",
            "" if sp is None else f"{sp / ours_ms:.2f}x"]


def gemm_padding(tiles=(64, 128), quick=False):
    rows, plot = [], {}
    for kind, vs in tqdm(GEMM_SCENES[:1] if quick else GEMM_SCENES, desc="implicit GEMM"):
        c = scenes.scene(kind, vs, seed=0)
        for stride in (1, 2):
            out, maps = kernel_map(c, 3, stride)
            nbr = neighbor_table(maps, len(out))
            for tile in tiles:
                counts = [mac_counts(nbr, plan(nbr, splits=s, reorder=r), tile=tile, c_in=64, c_out=64)
                          for _, s, r in PLANS]
                useful = counts[0]["useful"]
                rows.append([f"{kind} {vs:g} m", stride, len(out), tile, f"{useful / 1e9:.3f}",
                             *[f"{x['computed'] / 1e9:.3f} ({x['overhead']:.2f}x)" for x in counts]])
                if tile == tiles[0]:
                    plot[f"{kind}\ns={stride}"] = [x["overhead"] for x in counts]
    return rows, plot


def save_conv_plot(out: Path, conv):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r[0] for r in conv]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(x - 0.2, [float(r[3]) for r in conv], 0.4, label="kernel_map (sort)")
    ax.bar(x - 0.2, [float(r[4]) for r in conv], 0.4, bottom=[float(r[3]) for r in conv],
           label="sparse_conv3d")
    if all(r[7] for r in conv):
        ax.bar(x + 0.2, [float(r[7]) for r in conv], 0.4, label="spconv 2.3.8 SubMConv3d (map + conv)")
    ax.set_xticks(x, [f"{n}\n{r[1]} pts" for n, r in zip(names, conv, strict=True)])
    ax.set_ylabel("ms (median, one thread)")
    ax.set_title(f"Submanifold 3x3x3 convolution, {CONV_CHANNELS} -> {CONV_CHANNELS} channels")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "pointcloud_vs_spconv.png", dpi=120)
    plt.close(fig)


def save_plots(out: Path, dens, plot):
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    for kind in SCENE_GRID:
        r = [(float(x[1]), float(x[5])) for x in dens if x[0] == kind]
        if r:
            ax[0].loglog(*zip(*r, strict=True), "o-", label=kind)
    sizes = sorted({float(x[1]) for x in dens})
    ax[0].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax[0].set_xticks(sizes, [f"{s:g}" for s in sizes])
    ax[0].set_xlabel("voxel size (m)")
    ax[0].set_ylabel("occupied fraction of bounding box")
    ax[0].set_title("Scene density")
    ax[0].legend()
    names = list(plot)
    x = np.arange(len(names))
    for i, (label, *_) in enumerate(PLANS):
        ax[1].bar(x + (i - 2) * 0.16, [plot[n][i] for n in names], 0.16, label=label)
    ax[1].axhline(1, color="k", lw=0.8)
    ax[1].set_xticks(x, names)
    ax[1].set_ylabel("computed / useful MACs (tile 64)")
    ax[1].set_title("Implicit-GEMM padding: row reordering, column splitting")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "pointcloud_bench.png", dpi=120)
    plt.close(fig)


def markdown(repeat=3, quick=False, out: Path | None = None) -> str:
    """The figures as Markdown (a BENCHMARKS.md section); with ``out``, also the plot there."""
    dens = densities(quick)
    speed = map_speed(repeat, quick)
    conv = conv_speed(quick=quick)
    gemm, plot = gemm_padding(quick=quick)
    if out is not None:
        save_plots(out, dens, plot)
        save_conv_plot(out, conv)
    md = [f"Machine: {platform.processor() or platform.machine()}, NumPy {np.__version__}, one process.", "",
          "**Scenes** (generated, `sw.pointcloud.scenes`; density = occupied / bounding-box voxels)", "",
          *table(["scene", "voxel (m)", "points sampled", "voxels", "bounding box", "density"], dens), "",
          f"**Kernel-map build** (3x3x3, 27 offsets; best of {repeat}; Mpts/s = input points per second)",
          "",
          *table(["cloud", "stride", "inputs", "outputs", "pairs", "sort-merge (s)", "Mpts/s",
                 "hash join (s)", "Mpts/s"], speed), "",
          f"**Kernel map + submanifold convolution against spconv** (3x3x3, {CONV_CHANNELS} -> "
          f"{CONV_CHANNELS} channels, float32; `kernel_map` + `sparse_conv3d` against {SPCONV}'s CPU "
          "`SubMConv3d` building its own map; one torch thread each, runs interleaved, median of 5; "
          "spconv's outputs checked equal to ours"
          + "; `sparse_conv3d` runs its C loop, the torch path (`native=False`) is shown beside it"
          + ("" if all(r[7] for r in conv) else f"; spconv not installed: `pip install {SPCONV}`") + ")", "",
          *table(["scene", "points", "pairs", "kernel_map (ms)", "sparse_conv3d (ms)", "torch path (ms)", "ours (ms)",
                  "spconv (ms)", "spconv / ours"], conv), "",
          "**Implicit GEMM padding** (GMACs at C_in = C_out = 64; computed incl. padding (x useful))", "",
          *table(["scene", "stride", "outputs", "tile rows", "useful"] + [p[0] for p in PLANS], gemm)]
    return "\n".join(md)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("out/pointcloud"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small scenes only (a smoke run)")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    text = markdown(a.repeat, a.quick, a.out)
    (a.out / "pointcloud_bench.md").write_text(text + "\n")
    print(text)
    print(f"\n(saved {a.out / 'pointcloud_bench.md'} and {a.out / 'pointcloud_bench.png'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
