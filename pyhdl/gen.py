"""Elaborate every top-level block to Verilog: ``python -m pyhdl.gen rtl`` (``make verilog``).

The Verilog is generated without source locations (``emit_src=False``) so ``rtl/`` carries no
machine paths and is byte-for-byte reproducible; ``verif/tests/test_rtl_drift.py`` fails when
the committed ``rtl/`` differs from what the Amaranth source generates now.
"""

import gc
import sys
import warnings

from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable

from pyhdl.eie.array import EIEArray
from pyhdl.eie.csc_decoder import CSCDecoder
from pyhdl.eie.processing_element import ProcessingElement
from pyhdl.pointacc.bitonic_sorter import BitonicSorter
from pyhdl.pointacc.downsampler import Downsampler
from pyhdl.pointacc.intersect import Intersect
from pyhdl.pointacc.key_pack import KeyPack
from pyhdl.pointacc.mapping_unit import MappingUnit
from pyhdl.pointacc.merger import Merger
from pyhdl.sparse24.dense_mac import DenseMAC
from pyhdl.sparse24.sparse_mac import SparseMAC
from sw.cli_io import check_output_files, new_files

# The blocks written to ``rtl/``; each is built with its defaults (docs/spec.md's parameters).
TOP_CLASSES = [CSCDecoder, ProcessingElement, EIEArray, SparseMAC, DenseMAC, KeyPack, BitonicSorter, Merger,
               Intersect, Downsampler, MappingUnit]


def tops():
    return [cls() for cls in TOP_CLASSES]


def generate(component, platform=None) -> str:
    """Verilog text of ``component``, its module named ``component.name``, followed by the modules
    it instantiates by name (``component.verilog_dependencies()``, ``pyhdl.instance``), each once.

    ``platform`` is handed to every ``elaborate`` (the dependencies' too): ``None`` is the
    behavioural design (simulation, ``rtl/``), ``pyhdl.platform.ECP5()`` the ECP5 primitives."""
    texts = [verilog.convert(component, name=component.name, emit_src=False, platform=platform)]
    seen = {component.name}
    for dep in getattr(component, "verilog_dependencies", list)():
        if dep.name not in seen:
            seen.add(dep.name)
            texts.append(generate(dep, platform))
    return "".join(texts)


def write_all(out_dir, *, force: bool = False) -> list:
    """Write every top to ``out_dir/<module>.v``; returns the paths. Only those files are written
    (each complete, under a temporary name first); an existing one is replaced only with ``force``,
    checked before anything is generated, and every other file in ``out_dir`` is left alone
    (``test_rtl_drift`` reports stale ones in ``rtl/``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)     # only the module names are needed here
        names = [f"{top.name}.v" for top in tops()]
        gc.collect()
    paths = check_output_files(out_dir, names, force=force, option=None)
    with new_files(out_dir) as stage:
        for top, path in zip(tops(), paths, strict=True):
            (stage / path.name).write_text(generate(top))
    return paths


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for path in write_all(argv[0] if argv else "rtl", force=True):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
