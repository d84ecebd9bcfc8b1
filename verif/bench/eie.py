"""Benchmark sections of the EIE blocks run through their testbenches: CSC decoder and PE."""

import tempfile
import time

import numpy as np

from pyhdl.eie.csc_decoder import CSCDecoder
from runtime import sim
from sw.cyclemodel.eie import ISSUE_TO_MAC, MAC_TO_WRITEBACK, POINTER_LATENCY, QUEUE_LATENCY
from sw.markdown import table
from sw.pack import pack_eie
from verif.tb import csc_decoder as tb

PE_FILL = QUEUE_LATENCY + POINTER_LATENCY + ISSUE_TO_MAC + MAC_TO_WRITEBACK


def csc_decoder() -> str:
    model = sim.build(CSCDecoder(**tb.PARAMS))
    rows = []
    for density in (0.01, 0.1, 0.5, 1.0):
        rng = np.random.default_rng(1)
        w = np.where(rng.random((256, 64)) < density, rng.integers(1, 16, (256, 64)), 0)
        packed = pack_eie(w, 4)
        pe = packed.pe[0]
        case = tb.make_case(f"density {density}", pe, 64, packed.local_rows, list(range(64)))
        with tempfile.TemporaryDirectory() as tmp:
            m = tb.run(model, [case], tmp)
        rows.append(["256x64", f"{density:.0%}", m["entries"], m["cycles"], f"{m['entries'] / m['cycles']:.3f}",
                     f"{m['sim_cycles'] / m['sim_wall_s']:,.0f}"])
    return "\n".join([
        f"CSC decoder RTL ({model.toplevel}) in Verilator under cocotb, all 64 columns of PE 0 "
        "streamed back to back without back-pressure; cycles from the first column accepted to "
        f"the last entry out (pipeline latency {CSCDecoder.LATENCY} included; an empty column costs "
        "one cycle). Simulated cycles/s counts the whole run (memory loading included) against its "
        "wall time, Python testbench overhead included.",
        "",
        *table(["layer (one PE of 4)", "density", "entries", "cycles", "entries/cycle", "simulated cycles/s"], rows),
    ])


def eie_pe() -> str:
    from pyhdl.eie.processing_element import ProcessingElement
    from verif.tb import processing_element as pe_tb

    model = sim.build(ProcessingElement(**pe_tb.PARAMS))
    rows = []
    for density in (0.05, 0.25, 1.0):
        rng = np.random.default_rng(3)
        w = np.where(rng.random((64, 256)) < density, rng.integers(1, 16, (64, 256)), 0)
        packed = pack_eie(w, 1)
        acts = [(j, int(rng.integers(-100, 101)) or 1) for j in range(256)]
        case = pe_tb.make_case(f"density {density}", packed.pe[0], list(range(16)), 256, 64, acts)
        with tempfile.TemporaryDirectory() as tmp:
            m = pe_tb.run(model, [case], tmp)
        c = m["cases"][0]
        n = int(case["col_entries"].sum())
        empty = int((case["col_entries"] == 0).sum())
        cycles = c["idle_at"] - c["first_push"]
        rows.append([f"{density:.0%} dense", n, empty, cycles, f"{n / cycles:.3f}",
                     f"{m['sim_cycles'] / m['sim_wall_s']:,.0f}"])
    return "\n".join([
        f"One PE ({model.toplevel}) in Verilator under cocotb, all 256 columns' activations offered back to "
        "back so the queue stays full; cycles from the first activation accepted to the PE going idle (the "
        f"last accumulation written), so pipeline fill and drain ({PE_FILL} cycles: queue, pointer read, "
        "sparse-matrix read to MAC, MAC to write-back) and one cycle per empty column "
        "are included. Simulated cycles/s: the whole run (loading, compute, read-out) against its wall time, "
        "Python testbench included.",
        "",
        *table(["PE image (64 local rows x 256 cols)", "entries", "empty columns", "cycles, first push to idle",
                "entries/cycle", "simulated cycles/s"], rows),
    ])


PAPER_ALEX7_CYCLES = 9_760      # EIE (ISCA 2016) Table IV: 12.2 us at 800 MHz


def alex7() -> str:
    """Alex-7 (4096 x 4096, 9 % weights, 35 % activations, 15 shared values) on the 64-PE array
    RTL: outputs against the golden model, cycles against the cycle model and the paper; the
    layer loaded once through the host port and once in bulk."""
    from runtime.bench.build import ALEX7_MEMORIES, alex7_like
    from runtime.eie import network
    from sw.cyclemodel.eie import useful_macs
    from verif.tb.eie_array import make_case

    n_pe = 64
    params = {"n_pe": n_pe, **ALEX7_MEMORIES}
    packed, x = alex7_like(n_pe)
    t0 = time.perf_counter()
    model = network.model(params)
    build_s = time.perf_counter() - t0
    runs = {}
    for path, bulk in (("bulk ($readmemh)", True), ("host port", False)):
        t0 = time.perf_counter()
        case = make_case("Alex-7", params, [(packed, 0, True)], x, bulk_load=bulk)
        n_writes = len(case["0/addr"])
        with tempfile.TemporaryDirectory() as tmp:
            m = network.run(model, [case], tmp)
        runs[path] = (m, n_writes, time.perf_counter() - t0)
    m = runs["bulk ($readmemh)"][0]
    lay = m["cases"][0][0]
    cycles = lay["cycles"][0]
    busy = [c[0] for c in lay["counters"][0]]
    starved = [c[1] for c in lay["counters"][0]]
    stalled = [c[2] for c in lay["counters"][0]]
    useful = int(useful_macs(packed, x).sum())
    per_pe = [p.n_entries for p in packed.pe]
    rows = [
        ["layer", f"{packed.rows} x {packed.cols}, {np.count_nonzero(packed.weights()):,} weights "
                  f"({np.count_nonzero(packed.weights()) / packed.weights().size:.1%}), "
                  f"{np.count_nonzero(x):,} nonzero activations ({np.count_nonzero(x) / x.size:.1%})"],
        ["stored entries (padding)", f"{packed.n_entries:,} ({packed.n_padding:,}); per PE {min(per_pe):,} .. "
                                     f"{max(per_pe):,}"],
        ["RTL cycles = cycle model", f"{cycles:,}"],
        ["paper (12.2 us at 800 MHz)", f"{PAPER_ALEX7_CYCLES:,} ({cycles / PAPER_ALEX7_CYCLES:.3f} x)"],
        ["outputs", f"{packed.rows:,} rows equal the golden model"],
        ["MAC cycles per PE (busy)", f"min {min(busy):,}, mean {np.mean(busy):,.0f}, max {max(busy):,}"],
        ["starved / stalled per PE", f"mean {np.mean(starved):,.0f} / {np.mean(stalled):,.0f}"],
        ["broadcast stalls", f"{lay['bcast_stalls'][0]:,}"],
        ["load-balance efficiency", f"{sum(busy) / (n_pe * cycles):.3f} (MAC cycles / (64 x cycles)); "
                                    f"useful MACs {useful:,} ({useful / (n_pe * cycles):.3f})"],
        ["Verilator build", f"{build_s:.0f} s wall (0 when the model was cached)"],
    ]
    for path, (mm, n_writes, wall) in runs.items():
        rows.append([f"run, {path}", f"{n_writes:,} host writes for the layer; {mm['sim_cycles']:,} simulated "
                                     f"cycles in {mm['sim_wall_s']:.1f} s; {wall:.1f} s wall with case and files"])
    return "\n".join([
        "A synthetic Alex-7 (`runtime.bench.build.alex7_like`, seed 0) on the 64-PE array RTL "
        "(memories: 4096 columns, 32768 entries, 64 local rows per PE), run under cocotb; the driver asserts "
        "the outputs equal the golden model's and the cycles, per-PE counters and broadcast stalls equal the "
        "cycle model's. The layer is loaded twice: pointers, entries and activations by `$readmemh` "
        "(`runtime.eie.bulk`; codebooks and registers by the host port), and everything through the host port.",
        "",
        *table(["", "Alex-7 on 64 PEs"], rows, align="ll"),
    ])
