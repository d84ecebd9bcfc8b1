"""Benchmark sections of the EIE blocks run through their testbenches: CSC decoder and PE."""

import tempfile

import numpy as np

from pyhdl.eie.csc_decoder import CSCDecoder
from runtime import sim
from sw.markdown import table
from sw.pack import pack_eie
from verif.tb import csc_decoder as tb


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
        "last accumulation written), so pipeline fill and drain (6 cycles) and one cycle per empty column "
        "are included. Simulated cycles/s: the whole run (loading, compute, read-out) against its wall time, "
        "Python testbench included.",
        "",
        *table(["PE image (64 local rows x 256 cols)", "entries", "empty columns", "cycles, first push to idle",
                "entries/cycle", "simulated cycles/s"], rows),
    ])
