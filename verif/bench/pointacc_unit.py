"""The mapping unit on full scenes: cycles measured on the RTL (Verilator) at 4, 8 and 16 keys a
cycle, both strides, against the CPU's kernel map on the same scenes; Verilator build time and
simulation speed. ``python -m verif.bench pointacc-unit``.

Every RTL run is judged as the regression judges it (``verif/tb/pointacc_mapping_unit.py``):
maps and output points equal ``kernel_map``'s and the cycles equal the cycle model's, so the
figures are the RTL's and the model's at once.
"""

import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from runtime import sim
from runtime.pointacc import mapping
from runtime.pointacc.host import unit_for
from sw.markdown import table
from sw.pointcloud import kernel_map, scenes
from verif.tb import pointacc_mapping_unit as tb

WIDTHS = (4, 8, 16)
CLOCK_MHZ = 150        # the clock assumed for time figures: issue 14's floor at ECP5 speed grade 8
OFFSETS = 27


def unit_scenes() -> dict:
    """The regression's three scenes of more than 10^4 points."""
    return {"room (12 cm voxels)": scenes.scene("room", 0.12, seed=0),
            "LiDAR sweep (30 cm)": scenes.scene("lidar", 0.3, seed=0),
            "batch of two (room 15 cm + LiDAR 60 cm)": scenes.batch(scenes.scene("room", 0.15, seed=1),
                                                                   scenes.scene("lidar", 0.6, seed=2))}


def _cpu_ms(coords, stride, method, repeat=3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        kernel_map(coords, 3, stride, method=method)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def measure(quick=False) -> dict:
    clouds = unit_scenes()
    if quick:
        clouds = {k: v[:600] for k, v in list(clouds.items())[:1]}
    widths = WIDTHS[:2] if quick else WIDTHS
    out = {"runs": {}, "builds": {}, "cpu": {}}
    with tempfile.TemporaryDirectory(prefix="sparsehw-pointacc-unit-") as tmp:
        for w in tqdm(widths, desc="mapping unit widths"):
            params = dict(max_points=16384, width=w, coord_bits=16, batch_bits=8, kernel_size=3)
            t0 = time.perf_counter()
            model = sim.build(unit_for(params), root=Path(tmp) / "fresh")      # a cold build, timed
            out["builds"][w] = time.perf_counter() - t0
            for name, c in clouds.items():
                for stride in (1, 2):
                    case = tb.make_case(f"{name} s{stride}", c, params, stride=stride)
                    raw = mapping.run(model, [case], Path(tmp) / f"w{w}-{len(out['runs'])}")
                    r = tb.check(case, raw[case["name"]])
                    r.update(sim_cycles=raw["sim_cycles"], sim_wall_s=raw["sim_wall_s"],
                             outputs=len(case["exp_out"]))
                    out["runs"][(name, stride, w)] = r
        for name, c in clouds.items():
            for stride in (1, 2):
                out["cpu"][(name, stride)] = {m: _cpu_ms(c, stride, m) for m in ("sort", "hash")}
    out["clouds"] = {k: len(v) for k, v in clouds.items()}
    out["widths"] = widths
    return out


def save_plot(m, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name in m["clouds"]:
        for stride, style in ((1, "o-"), (2, "s--")):
            ys = [m["runs"][(name, stride, w)]["cycles"] / (m["clouds"][name] * OFFSETS) for w in m["widths"]]
            ax.plot(m["widths"], ys, style, label=f"{name.split(' (')[0]}, stride {stride}")
    ax.set(xscale="log", xticks=list(m["widths"]), xticklabels=[str(w) for w in m["widths"]],
           xlabel="keys a cycle (width)", ylabel="cycles per input point per offset",
           title="Mapping unit RTL: kernel map of a 10k+-point scene")
    ax.set_xticks([], minor=True)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(quick=False) -> str:
    from sw.benchmarks import BENCHMARKS

    m = measure(quick)
    save_plot(m, BENCHMARKS.parent / "docs" / "pointacc_unit.png")
    rows = []
    for (name, stride), cpu in m["cpu"].items():
        n = m["clouds"][name]
        r8 = m["runs"].get((name, stride, 8))
        cells = [name, stride, f"{n:,}", f"{m['runs'][(name, stride, m['widths'][0])]['outputs']:,}",
                 f"{m['runs'][(name, stride, m['widths'][0])]['pairs']:,}"]
        for w in m["widths"]:
            r = m["runs"][(name, stride, w)]
            cells.append(f"{r['cycles']:,} ({r['cycles'] / (n * OFFSETS):.3f})")
        unit_ms = r8["cycles"] / (CLOCK_MHZ * 1e3) if r8 else float("nan")
        cells += [f"{r8['sort_cycles'] / r8['cycles']:.0%}" if r8 else "-", f"{unit_ms:.2f}",
                  f"{cpu['sort']:.1f}", f"{cpu['hash']:.1f}"]
        rows.append(cells)
    speed = []
    for w in m["widths"]:
        runs = [r for k, r in m["runs"].items() if k[2] == w]
        rate = sum(r["sim_cycles"] for r in runs) / sum(r["sim_wall_s"] for r in runs)
        speed.append([w, f"{m['builds'][w]:.0f}", f"{rate:,.0f}"])
    return "\n".join([
        "The whole `MappingUnit` (`max_points` 16,384) on the regression's scenes, stride 1 (submanifold) and "
        "stride 2 (output points generated by the unit), no back-pressure. Each run is checked as the "
        "regression checks it: the maps and output points equal `kernel_map`'s and the cycle count equals the "
        "cycle model's. Cycles in all (cycles per input point per offset in brackets) at each width; the share "
        "of sort, merge and downsample passes at width 8; the unit's time at an assumed "
        f"{CLOCK_MHZ} MHz (the ECP5 floor of issue 14, which the synthesised unit does not reach yet: see the "
        "synthesis section) against this "
        "machine's CPU `kernel_map` (one process, median of 3, both methods, this repository's numpy code). "
        "Reproduce: `python -m verif.bench pointacc-unit`.", "",
        *table(["scene", "stride", "inputs", "outputs", "pairs",
                *(f"cycles, width {w}" for w in m["widths"]), "sort share (w 8)",
                f"unit ms at {CLOCK_MHZ} MHz (w 8)", "CPU sort-merge ms", "CPU hash ms"], rows), "",
        "Verilator (cold build of the 16,384-point unit in a fresh build root, and simulated cycles per second "
        "over that width's runs, the cocotb host driver included):", "",
        *table(["width", "build s", "simulated cycles/s"], speed), "",
        "![mapping unit cycles per point per offset](docs/pointacc_unit.png)"])
