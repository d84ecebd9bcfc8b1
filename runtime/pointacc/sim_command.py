"""``sparsehw sim pointacc``: a point cloud's kernel map built by the mapping unit RTL in Verilator,
at stride 1 or 2 (the unit then generates the output points as well).

The unit is sized for the cloud (``max_points`` a power of two, so similar clouds share one
Verilator build); the output points and maps it returns are checked against
``sw.pointcloud.kernel_map`` and written in ``sparsehw pointcloud kmap``'s format.
"""

import numpy as np

from pyhdl.pointacc.bitonic_sorter import check_width
from runtime.pointacc.host import check_coords, unit_for
from runtime.pointacc.mapping import fit_params, map_cloud
from sw.cli_io import CLIError, bad_input, check_output_file, in_range, load_array
from sw.pointcloud import kernel_map
from sw.pointcloud.cli import write_kmap

MAX_POINTS = 1 << 20        # index lanes of 20 bits (docs/spec.md §5)


def main(coords_path, out_path, *, stride=1, kernel_size=3, width=8, p_ready=1.0, seed=0, force=False) -> int:
    """Map ``coords_path`` on the RTL and write ``out_path`` (``.npz``); every argument and file is
    checked before the RTL is built (:class:`CLIError`)."""
    if stride not in (1, 2):
        raise CLIError(f"--stride {stride} must be 1 (submanifold) or 2 (downsampling)")
    in_range("--kernel-size", kernel_size, 1)
    if kernel_size % 2 == 0:
        raise CLIError(f"--kernel-size {kernel_size} must be odd (offsets centred on the output)")
    with bad_input("--width"):
        check_width(width)
    in_range("--p-ready", p_ready, 0, 1, "(]")
    in_range("--seed", seed, 0)
    out = check_output_file(out_path, force=force, suffix=".npz")
    coords = load_array(coords_path, "--coords")
    where = f"--coords {coords_path}"
    n = len(coords) if coords.ndim else 0
    if n > MAX_POINTS:
        raise CLIError(f"{where}: {n} points; the mapping unit is built for at most {MAX_POINTS:,}")
    params = fit_params(n, width=width, kernel_size=kernel_size)
    with bad_input():
        check_coords(unit_for(params), coords, where=where)
    with bad_input(where):
        out_coords, want = kernel_map(coords, kernel_size, stride, coord_bits=params["coord_bits"],
                                      batch_bits=params["batch_bits"])
    try:
        r = map_cloud(coords, params, stride=stride, p_ready=p_ready, seed=seed, progress="offsets mapped on the RTL")
    except (AssertionError, SystemExit) as e:
        raise CLIError(f"the mapping unit RTL failed on {where}: {e}") from None
    c = r["counters"]
    if r["maps"] is None:
        raise CLIError(f"{where}: the mapping unit set its error flag: duplicate coordinates")
    if not np.array_equal(r["out_coords"], out_coords):
        raise CLIError(f"the mapping unit's {len(r['out_coords'])} output points differ from kernel_map's "
                       f"{len(out_coords)} on {where}")
    for k, (got, exp) in enumerate(zip(r["maps"], want, strict=True)):
        if not np.array_equal(got, exp):
            raise CLIError(f"the mapping unit's map of offset {k} differs from kernel_map's on {where} "
                           f"({len(got)} pairs, kernel_map {len(exp)})")
    write_kmap(out, out_coords, r["maps"], kernel_size)
    pairs = sum(len(m) for m in r["maps"])
    p = r["params"]
    print(f"mapping unit (max_points {p['max_points']}, width {p['width']}), stride {stride}: {n} points -> "
          f"{len(out_coords)} outputs, {len(want)} offsets, {pairs} pairs; equal to kernel_map")
    print(f"  cycles {c['cycles']:,} (sort {c['sort_cycles']:,}, map {c['cycles'] - c['sort_cycles']:,}); "
          f"{c['cycles'] / (n * len(want)):.3f} cycles per point per offset; output stalls {c['stalls']:,}")
    print(f"  simulated {r['sim_cycles']:,} cycles in {r['sim_wall_s']:.1f} s "
          f"({r['sim_cycles'] / max(r['sim_wall_s'], 1e-9):,.0f} cycles/s); wrote {out}")
    return 0
