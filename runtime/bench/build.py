"""Verilator build cost of the blocks: generated Verilog size, and the CPU and wall time of a
build with Verilator's runtime library compiled for the model (an empty object cache) and taken
from the object cache (``runtime.objcache``), each into a fresh build directory."""

import resource
import tempfile
import time

from runtime import sim
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
