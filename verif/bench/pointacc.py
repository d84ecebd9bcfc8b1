"""Mapping-unit throughput: keys per cycle measured on the RTL (Verilator), and the cycle model
(checked cycle for cycle against the RTL by the tests) extended to 100k-point scenes.

    python -m verif.bench.pointacc [--out out/pointcloud] [--points 2000] [--quick]

RTL runs reuse the cocotb testbenches of ``verif/tests/test_pointacc_*.py`` without
back-pressure. "keys/cycle" counts the keys both inputs consume (the unit's target is
``width`` keys per cycle per side, i.e. up to ``2 width`` together).
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pyhdl.pointacc.bitonic_sorter import BitonicSorter, sorter_latency
from pyhdl.pointacc.intersect import Intersect
from pyhdl.pointacc.merger import Merger
from runtime import sim
from sw.markdown import table
from sw.pointcloud import KeyFormat, kernel_map, kernel_offsets, scenes
from verif.golden.pointacc import intersect_steps, merge, merge_cycles, sort_elements
from verif.tb import pointacc_intersect as t_int
from verif.tb import pointacc_merger as t_mrg
from verif.tb import pointacc_sorter as t_srt

WIDTH = 8


def rtl_intersect(points, tmp):
    model = sim.build(Intersect(**t_int.PARAMS))
    rows = []
    for stride in tqdm((1, 2), desc="RTL intersect"):
        c = t_int.random_scene(7, points)
        case = t_int.make_case(f"perf stride {stride}", t_int.scene_jobs(c, stride), seed=stride)
        m = t_int.run(model, [case], tmp / f"int{stride}")
        n_out = len(kernel_map(c, 3, stride)[0])
        rows.append([f"room, {len(c)} in / {n_out} out, stride {stride}", m["keys"], m["pairs"], m["steps"],
                     m["cycles"], f"{m['keys'] / m['cycles']:.2f}", f"{m['pairs'] / m['cycles']:.2f}"])
    return rows


def rtl_sort(points, tmp):
    rows = []
    srt = sim.build(BitonicSorter(**t_srt.PARAMS))
    beats = t_srt.scene_beats()
    m = t_srt.run(srt, [t_srt.make_case("perf", beats)], tmp / "srt")
    rows.append(["bitonic sorter", m["keys"], m["cycles"], f"{m['keys'] / m['cycles']:.2f}",
                 f"latency {t_srt.LATENCY} cycles"])
    mrg = sim.build(Merger(**t_mrg.PARAMS))
    c = scenes.scene("lidar", 0.2, seed=4, n_azimuth=1024)[:points]
    case = dict(name="perf", **t_mrg.PARAMS, keys=KeyFormat().pack(c), idx=np.arange(len(c)))
    m = t_mrg.run(mrg, [case], tmp / "mrg", testcase="sort_by_passes")["perf"]
    cyc = m["pass_cycles"]
    keys = len(c) * len(cyc)
    rows.append([f"merger, {len(cyc)} passes", keys, sum(cyc), f"{keys / sum(cyc):.2f}",
                 "per pass: " + ", ".join(map(str, cyc))])
    return rows


def model_sort_cycles(keys, w=WIDTH):
    """Sorter (one beat a cycle) then merge passes (``merge_cycles`` of each pass's pairs of runs,
    back to back) over ``keys`` in point order."""
    elems = list(zip(keys, range(len(keys)), strict=True))
    runs = [sort_elements(elems[i:i + w]) for i in range(0, len(elems), w)]
    cycles = len(runs) + sorter_latency(w)
    passes = 0
    while len(runs) > 1:
        pairs = [(runs[i], runs[i + 1] if i + 1 < len(runs) else []) for i in range(0, len(runs), 2)]
        cycles += merge_cycles(pairs, w)
        runs = [merge(a, b) for a, b in pairs]
        passes += 1
    return cycles, passes


def model_scene(kind, vs, stride):
    fmt = KeyFormat()
    c = scenes.scene(kind, vs, seed=0)
    out, maps = kernel_map(c, 3, stride)
    a = sort_elements(zip(fmt.pack(c).tolist(), range(len(c)), strict=True))
    b = a if stride == 1 else sort_elements(zip(fmt.pack(out).tolist(), range(len(out)), strict=True))
    steps = [intersect_steps(a, b, tuple(d), fmt.coord_bits, WIDTH) for d in kernel_offsets(3)]
    isect = t_int.job_cycles(steps, Intersect(width=WIDTH).latency)     # the 27 offsets back to back
    sort_in, passes = model_sort_cycles(fmt.pack(c).tolist())
    sort_out = 0 if stride == 1 else model_sort_cycles(fmt.pack(out).tolist())[0]
    keys = 27 * (len(a) + len(b))
    total = sort_in + sort_out + isect
    return [f"{kind} {vs:g} m", stride, len(c), len(out), sum(len(m) for m in maps), sort_in + sort_out,
            passes, isect, f"{keys / isect:.2f}", total, f"{len(c) / total * 1e3:.0f}"]


def markdown(points=2000, quick=False) -> str:
    """The figures as Markdown (a BENCHMARKS.md section)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        isect = rtl_intersect(300 if quick else points, tmp)
        sort = rtl_sort(300 if quick else points, tmp)
    grid = [("room", 0.05), ("lidar", 0.05), ("mesh", 0.1)]
    model = [model_scene(k, v, s) for k, v in tqdm(grid[:1] if quick else grid, desc="cycle model")
             for s in (1, 2)]
    md = ["**Mapping unit, RTL** (Verilator, width 8, no back-pressure; keys = keys consumed by both "
          "inputs over all 27 offsets)", "",
          *table(["scene", "keys", "pairs", "steps", "cycles", "keys/cycle", "pairs/cycle"], isect), "",
          *table(["block", "keys", "cycles", "keys/cycle", "note"], sort), "",
          "**Mapping unit, cycle model on full scenes** (sort inputs (+ outputs at stride 2) with the "
          "sorter and merge passes, then 27 intersections; the model matches the RTL cycle for cycle)", "",
          *table(["scene", "stride", "inputs", "outputs", "pairs", "sort cycles", "merge passes",
                 "intersect cycles", "intersect keys/cycle", "total cycles", "Mpts/s at 1 GHz"], model)]
    return "\n".join(md)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("out/pointcloud"))
    ap.add_argument("--points", type=int, default=2000, help="scene size for the RTL runs")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    text = markdown(a.points, a.quick)
    (a.out / "pointacc_hw.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
