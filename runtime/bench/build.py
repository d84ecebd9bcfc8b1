"""Verilator build cost of the blocks: generated Verilog size, and the CPU and wall time of a
build with Verilator's runtime library compiled for the model (an empty object cache) and taken
from the object cache (``runtime.objcache``), each into a fresh build directory."""

import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from runtime import sim, toolchain
from sw.markdown import table


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_build(component, root) -> tuple:
    """``(child CPU s, wall s)`` of building ``component`` under ``root``."""
    cpu0, wall0 = _children_cpu(), time.perf_counter()
    sim.build(component, root=root)
    return _children_cpu() - cpu0, time.perf_counter() - wall0


def tops() -> list:
    from pyhdl.eie.array import EIEArray
    from pyhdl.eie.csc_decoder import CSCDecoder
    from pyhdl.eie.processing_element import ProcessingElement
    from pyhdl.pointacc.key_pack import KeyPack
    from pyhdl.sparse24.sparse_mac import SparseMAC

    return [KeyPack(), SparseMAC(), CSCDecoder(), ProcessingElement(), EIEArray(n_pe=4), EIEArray(n_pe=8)]


def verilator_build() -> str:
    from pyhdl.eie.csc_decoder import CSCDecoder
    from pyhdl.gen import generate

    rows = []
    with tempfile.TemporaryDirectory(prefix="sparsehw-build-") as tmp:
        warm = f"{tmp}/warm"
        sim.build(CSCDecoder(max_cols=8, max_entries=32, max_local_rows=32), root=warm)   # fills its object cache
        for i, top in enumerate(tops()):
            cold_cpu, cold_wall = timed_build(top, f"{tmp}/cold{i}")      # an empty object cache of its own
            warm_cpu, warm_wall = timed_build(top, warm)
            rows.append([f"`{top.name}`", f"{len(generate(top).encode()) / 1024:,.0f}", f"{cold_cpu:.1f}",
                         f"{warm_cpu:.1f}", f"{cold_cpu - warm_cpu:.1f}", f"{cold_wall:.1f}", f"{warm_wall:.1f}"])
    return "\n".join([
        "Each block built from scratch into a fresh directory by `runtime.sim.build` (Verilator, then "
        "`make -j2` of the generated C++): once with an empty object cache, so Verilator's runtime library "
        "(`verilated*.cpp`) is compiled for the model as it was for every model before, and once with that "
        "library taken from the object cache. CPU is user + system time of the child processes; one run each.",
        "",
        *table(["block", "Verilog KiB", "CPU s, library compiled", "CPU s, library cached", "CPU s saved",
                "wall s, compiled", "wall s, cached"], rows, align="lrrrrrr"),
    ])


# The EIE array at scale: every PE sized for the paper's Alex-7 (4096 columns, 64 local rows;
# 4096 x 4096 at 9 % weights is about 23.6k entries per PE with 64 PEs, padding included under 32k).
ALEX7_MEMORIES = dict(max_cols=4096, max_entries=32768, max_local_rows=64, queue_depth=8, lnzd_width=8)
SCALING_PES = (1, 4, 16, 64)
CODEBOOK = np.concatenate([[0], np.arange(-7, 0), np.arange(1, 9)])     # 15 shared values


def alex7_like(n_pe: int, seed: int = 0):
    """``(packed, x)``: a ``64 n_pe x 4096`` layer at Alex-7's densities (9 % weights, 35 %
    activations, 15 shared values), packed for ``n_pe`` PEs: every PE gets Alex-7's share of work."""
    from sw.cyclemodel.load_balance import BenchLayer, synthetic_layer
    from sw.pack import pack_eie

    idx, x = synthetic_layer(BenchLayer("Alex-7", 64 * n_pe, 4096, 0.09, 0.35), seed=seed)
    return pack_eie(CODEBOOK[idx], n_pe, codebook=CODEBOOK), x


def _simulate(model, n_pe: int, tmp) -> tuple:
    """``(layer cycles, simulated cycles/s)`` of one Alex-7-like layer, bulk-loaded, on ``model``."""
    from runtime.eie import network

    packed, x = alex7_like(n_pe)
    case = network.make_case(f"alex7-like n_pe={n_pe}", {"n_pe": n_pe, **ALEX7_MEMORIES}, [(packed, 0, True)],
                             x, bulk_load=True)
    m = network.run(model, [case], tmp)
    return m["cases"][0][0]["cycles"][0], m["sim_cycles"] / m["sim_wall_s"]


def eie_scaling(plot_dir=None) -> str:
    """Verilog size, Verilator build time and simulated cycles/s of the array at n_pe = 1 ... 64."""
    from pyhdl.eie.csc_decoder import CSCDecoder
    from pyhdl.gen import generate
    from runtime.eie import bulk
    from runtime.eie.host import array_for
    from sw.benchmarks import BENCHMARKS

    rows, points = [], []
    with tempfile.TemporaryDirectory(prefix="sparsehw-scaling-") as tmp:
        sim.build(CSCDecoder(max_cols=8, max_entries=32, max_local_rows=32), root=tmp)   # warm object cache
        for n in SCALING_PES:
            array = array_for({"n_pe": n, **ALEX7_MEMORIES})
            kib = (len(generate(array).encode()) + len(bulk.harness(array)[1].encode())) / 1024
            cpu0, wall0 = _children_cpu(), time.perf_counter()
            model = sim.build(array, root=tmp, harness=bulk.harness)
            cpu, wall = _children_cpu() - cpu0, time.perf_counter() - wall0
            cycles, speed = _simulate(model, n, f"{tmp}/run{n}")
            rows.append([n, f"{kib:,.0f}", f"{wall:.0f}", f"{cpu:.0f}", f"{64 * n} x 4096", f"{cycles:,}",
                         f"{speed:,.0f}", f"{speed * n:,.0f}"])
            points.append((n, kib, wall, speed))
    out = Path(plot_dir or BENCHMARKS.parent / "docs") / "eie_scaling.png"
    _plot_scaling(points, out)
    return "\n".join([
        "The array with every PE's memories sized for Alex-7 (`max_cols` 4096, `max_entries` 32768, "
        "`max_local_rows` 64), built from scratch by `runtime.sim.build` (generation, Verilator, `make -j2`; "
        "Verilator's runtime library from the object cache) and run on a `64 n_pe x 4096` layer at Alex-7's "
        "densities (9 % weights, 35 % activations), so every PE has Alex-7's work. The PE is one Verilog module "
        "instantiated `n_pe` times and kept whole by Verilator (`no_inline`); only the top's ports are public. "
        "Simulated cycles/s covers the whole cocotb run (bulk load of the PE memories and the activations, the "
        "codebook and register writes, the layer, 3 n_pe + 3 counter reads, the read-out). "
        "Before this layout (every PE a copy of its module, cocotb's `--public-flat-rw`): 2.2 MB of Verilog "
        "at 4 PEs and 9.0 MB at 16 (16,384 entries a PE), and a 64-PE build (1024 columns, 4096 entries) did "
        "not finish in 20 minutes.",
        "",
        *table(["n_pe", "Verilog KiB", "build wall s", "build CPU s", "layer", "layer cycles",
                "simulated cycles/s", "PE-cycles/s"], rows, align="rrrrrrrr"),
        "",
        f"![scaling](docs/{out.name})",
    ])


def _plot_scaling(points, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [p[0] for p in points]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, i, label in zip(axes, (1, 2, 3), ("Verilog (KiB)", "Verilator build, wall (s)", "simulated cycles/s"),
                            strict=True):
        ax.plot(n, [p[i] for p in points], "o-")
        ax.set_xscale("log", base=2)
        ax.set_xticks(n, [str(v) for v in n])
        ax.set_xlabel("PEs")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.suptitle("EIE array at Alex-7 memory sizes: build and simulation cost vs PEs")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


_TOP_ONLY = ("--public-depth", "1")
_FAST_X = ("--x-assign", "fast", "--x-initial", "fast", "--noassert")
OPTION_VARIANTS = (
    ("cocotb's flow: --public-flat-rw, PE inlined", ("--public-flat-rw",), False),
    ("only the top's ports public (--public-depth 1)", _TOP_ONLY, False),
    ("--public-depth 1, PE kept whole (no_inline)", _TOP_ONLY, True),
    ("--public-depth 1, no_inline, -O3", (*_TOP_ONLY, "-O3"), True),
    ("--public-depth 1, no_inline, fast X, --noassert", (*_TOP_ONLY, *_FAST_X), True),
    ("--public-depth 1, no_inline, -O3, fast X, --noassert", (*_TOP_ONLY, "-O3", *_FAST_X), True),
    ("the same + --threads 2", (*_TOP_ONLY, "-O3", *_FAST_X, "--threads", "2"), True),
)


def _option_rows(n_pe: int, variants, tmp) -> list:
    """One table row per ``(label, flags, keep PE whole)``: the array for ``n_pe`` built under it."""
    from runtime.eie import bulk
    from runtime.eie.host import array_for

    array = array_for({"n_pe": n_pe, **ALEX7_MEMORIES})
    base = sim.build(array, root=tmp, harness=bulk.harness)        # also warms the object cache
    env = {**toolchain.environment(), **sim.objcache_environment(Path(tmp) / "objcache")}
    rows = []
    for i, (label, flags, whole) in enumerate(variants):
        d = Path(tmp) / f"n{n_pe}-variant{i}"
        d.mkdir()
        config = d / "config.vlt"
        config.write_text(sim.verilator_config(array) if whole else "`verilator_config\n")
        verilate, make = sim.verilator_commands(base.toplevel, [config, base.verilog], d, flags=flags)
        times = []
        for cmd in (verilate, make):
            cpu0, wall0 = _children_cpu(), time.perf_counter()
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append((_children_cpu() - cpu0, time.perf_counter() - wall0))
        cpp = sum(f.stat().st_size for f in d.glob("*.cpp")) / 2**20
        _, speed = _simulate(sim.Model(base.toplevel, d, base.verilog), n_pe, d / "run")
        rows.append([n_pe, label, f"{times[0][1]:.0f}", f"{times[1][0]:.0f}", f"{times[1][1]:.0f}", f"{cpp:.1f}",
                     f"{speed:,.0f}"])
    return rows


def verilator_options() -> str:
    """Build time and simulation speed of the Alex-7-sized array under Verilator option sets: every
    set at 16 PEs, and inlined against kept-whole PEs at 64 (cocotb's own flow does not finish there)."""
    with tempfile.TemporaryDirectory(prefix="sparsehw-options-") as tmp:
        rows = _option_rows(16, OPTION_VARIANTS, tmp)
        rows += _option_rows(64, [(f"{label} ({'no_inline' if whole else 'PE inlined'})", sim.SPEED_FLAGS, whole)
                                  for label, whole in (("the default flags", False), ("the default flags", True))],
                             tmp)
    return "\n".join([
        "The array at Alex-7 memory sizes, verilated and compiled (`make -j2`) under each option set in turn "
        "from the same Verilog (Verilator's runtime library from the object cache), then run on the Alex-7-like "
        "layer of the scaling table. One run each. Simulated cycles/s of these short runs (about 15k cycles) "
        "moved by up to a third between runs of the same model on this shared machine: read only the 64-PE "
        "pair and the build columns as differences.",
        "",
        *table(["n_pe", "Verilator options", "verilate s", "C++ CPU s", "C++ wall s", "C++ MiB",
                "simulated cycles/s"], rows, align="rlrrrrr"),
    ])
