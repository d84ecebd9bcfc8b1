"""Bulk loading of the EIE array's memories in simulation, beside the host port.

Loading a layer through the host port costs one write, and one simulated cycle driven from
Python, per pointer and per entry: about 600k for Alex-7 on 64 PEs. The simulation model of the
array is therefore built inside a thin top module (:func:`harness`) with the array's own ports
plus ``bulk_load``, ``bulk_acts`` and ``bulk_index``: on a clock edge with ``bulk_load`` high it
fills every PE's pointer banks and sparse-matrix memory with ``$readmemh`` from
``<dir>/<bulk_index>/pe<k>_<memory>.hex``; with ``bulk_acts`` high, the activation memory from
``<dir>/acts/<bulk_index>.hex`` (:func:`write_activations`). ``<dir>`` comes from the plusarg
``+eie_bulk=<dir>``. :func:`write_images` writes the PE files of packed layers
(:func:`memory_images`). The codebooks
and the layer registers still go through the host port (15 per PE + 4 writes).

The harness is simulation only; the array's Verilog in ``rtl/`` and its host port are unchanged,
and one model serves both paths.
"""

from pathlib import Path

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib.wiring import In

from pyhdl.eie.activation_scanner import ActivationScanner
from pyhdl.eie.processing_element import ProcessingElement
from pyhdl.instance import port_name
from runtime.eie.host import decoder_words
from sw.formats import ACT_WIDTH
from sw.pack.images import write_memh

PLUSARG = "eie_bulk"
INDEX_WIDTH = 16        # bits of bulk_index: the layer directory's number


def toplevel(array) -> str:
    return f"{array.name}_bulk"


def harness(array) -> tuple:
    """``(toplevel, Verilog)`` of the array inside its bulk-loading top module."""
    ports = [("input", 1, "clk"), ("input", 1, "rst")]
    for path, member, _ in array.signature.flatten(array):
        ports.append(("input" if member.flow == In else "output", Shape.cast(member.shape).width,
                      port_name(path)))
    decls = [f"  {d} wire {f'[{w - 1}:0] ' if w > 1 else ''}{n};" for d, w, n in ports]
    conns = ",\n".join(f"    .{n}({n})" for _, _, n in ports)
    loads = []
    scanner = f"dut.scanner.{ActivationScanner.BUFFER_PATH}"
    for k in range(array.n_pe):
        for mem, path in ProcessingElement.MEMORY_PATHS.items():
            loads.append(f'      $readmemh($sformatf("%0s/%0d/pe{k}_{mem}.hex", dir, bulk_index), '
                         f"dut.pe{k}.{path});")
    top = toplevel(array)
    return top, "\n".join([
        "",
        "// Simulation only: the array with $readmemh bulk loading of its PE memories (runtime/eie/bulk.py).",
        f"module {top}({', '.join(n for _, _, n in ports)}, bulk_load, bulk_acts, bulk_index);",
        *decls,
        "  input wire bulk_load;",
        "  input wire bulk_acts;",
        f"  input wire [{INDEX_WIDTH - 1}:0] bulk_index;",
        "  string dir;",
        f'  initial if (!$value$plusargs("{PLUSARG}=%s", dir)) dir = "";',
        f"  {array.name} dut (\n{conns}\n  );",
        "  always @(posedge clk)",
        "    if (bulk_load) begin",
        '      if (dir == "") $fatal(1, "bulk_load without +' + PLUSARG + '=<dir>");',
        *loads,
        "    end",
        "  always @(posedge clk)",
        "    if (bulk_acts) begin",
        '      if (dir == "") $fatal(1, "bulk_acts without +' + PLUSARG + '=<dir>");',
        f'      $readmemh($sformatf("%0s/acts/%0d.hex", dir, bulk_index), {scanner});',
        "    end",
        "endmodule",
        "",
    ])


def memory_images(array, packed, *, where: str = "layer") -> dict:
    """``{(pe, memory): words}`` of a packed layer, after checking it fits ``array``'s memories."""
    out = {}
    for k, pe in enumerate(packed.pe):
        col_ptr, words = decoder_words(pe, packed.cols, packed.local_rows, max_cols=array.max_cols,
                                       max_entries=array.max_entries, max_local_rows=array.max_local_rows,
                                       where=f"{where} PE {k}")
        out[k, "col_ptr_even"] = col_ptr[0::2]
        out[k, "col_ptr_odd"] = col_ptr[1::2]
        out[k, "spmat"] = words
    return out


def write_images(directory, array, layer_images, *, first: int = 0) -> Path:
    """Write the bulk-load files of each layer's :func:`memory_images` (``<directory>/<first + l>/``);
    returns ``directory``."""
    from pyhdl.params import bits_for
    from sw.formats import ENTRY_WIDTH

    widths = {"col_ptr_even": bits_for(array.max_entries), "col_ptr_odd": bits_for(array.max_entries),
              "spmat": ENTRY_WIDTH}
    for l, images in enumerate(layer_images):
        d = Path(directory) / str(first + l)
        d.mkdir(parents=True, exist_ok=True)
        for (k, mem), words in images.items():
            # An empty file would leave $readmemh nothing to read; a word past the end is never used.
            write_memh(d / f"pe{k}_{mem}.hex", words if len(words) else np.zeros(1, np.int64), widths[mem])
    return Path(directory)


def write_activations(directory, array, index: int, x) -> Path:
    """Write input vector ``x`` as ``<directory>/acts/<index>.hex`` for ``bulk_acts``."""
    words = ActivationScanner.buffer_words(x, array.lnzd_width, ACT_WIDTH) or [0]
    path = Path(directory) / "acts" / f"{index}.hex"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_memh(path, words, array.lnzd_width * ActivationScanner.lane_bits(ACT_WIDTH))
    return path
