"""Throughput of the 2:4 sparse MAC against the dense MAC, measured in simulation.

    python -m verif.bench.sparse24             # cycle counts from Verilator

Both units run the same random 2:4 int8 layers without back-pressure through the cocotb testbench
of ``verif/tb/sparse24_mac.py`` (on the driver ``runtime.sparse24``); dense-equivalent MACs are
``rows · K`` (the multiply-adds a dense unit would do), divided by the measured cycles (first beat
in to last result out) and by the unit's multiplier count. FPGA size and fmax: ``runtime.bench.synth``.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from sw.markdown import table

SHAPES = ((64, 256), (256, 1024))


def throughput(shapes=SHAPES, seed: int = 0) -> list:
    from pyhdl.sparse24.dense_mac import DenseMAC
    from pyhdl.sparse24.sparse_mac import SparseMAC
    from runtime import sim
    from verif.tb import sparse24_mac as tb

    units = [("SparseMAC", SparseMAC(), tb.sparse_case), ("DenseMAC", DenseMAC(), tb.dense_case)]
    rng = np.random.default_rng(seed)
    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows, k in shapes:
            W, X = tb.random_24(rng, rows, k), tb.acts(rng, rows, k)
            for name, unit, make in units:
                model = sim.build(unit)
                m = tb.run(model, [make(name, [(W, X)])], Path(tmp) / f"{name}-{rows}x{k}")
                per_cycle = m["dense_macs"] / m["cycles"]
                rows_out.append(dict(unit=unit.name, rows=rows, k=k, multipliers=unit.multipliers,
                                     cycles=m["cycles"], dense_macs=m["dense_macs"], per_cycle=per_cycle,
                                     per_multiplier=per_cycle / unit.multipliers))
    return rows_out


def throughput_table(rows) -> str:
    cells = [[f"`{r['unit']}`", r["multipliers"], f"{r['rows']} × {r['k']}", r["cycles"], f"{r['per_cycle']:.3f}",
              f"{r['per_multiplier']:.3f}"] for r in rows]
    return "\n".join(table(["unit", "multipliers", "layer (rows × K)", "cycles", "dense-equivalent MACs / cycle",
                            "per multiplier"], cells)) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.parse_args(argv)
    print(throughput_table(throughput()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
