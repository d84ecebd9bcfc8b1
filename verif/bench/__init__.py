"""``make bench``: every section of BENCHMARKS.md, the runtime's (``runtime.bench``) and the ones
that run single blocks through their testbenches (CSC decoder, PE, 2:4 MACs, PointAcc blocks).

    python -m verif.bench [section ...]      # default: every section but synth
"""

import argparse

from runtime import bench
from sw.benchmarks import update


def _sparse24_throughput() -> str:
    from verif.bench import sparse24

    return sparse24.throughput_table(sparse24.throughput())


SECTIONS = {
    **bench.SECTIONS,
    "csc-decoder": bench.lazy("verif.bench.eie", "csc_decoder"),
    "eie-pe": bench.lazy("verif.bench.eie", "eie_pe"),
    "eie-alex7": bench.lazy("verif.bench.eie", "alex7"),
    "sparse24-throughput": _sparse24_throughput,
    "pointacc-rtl": bench.lazy("verif.bench.pointacc", "markdown"),
    "pointacc-unit": bench.lazy("verif.bench.pointacc_unit", "markdown"),
}
# BENCHMARKS.md's order.
DEFAULT = ("eie-pack", "csc-decoder", "eie-pe", "eie-array", "eie-load-balance", "sparse24-throughput",
           "pointcloud-software", "pointacc-rtl", "pointacc-unit", "verilator-build", "eie-scaling",
           "verilator-options", "eie-alex7", "eie-demo")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m verif.bench", description=__doc__.splitlines()[0])
    ap.add_argument("sections", nargs="*", metavar="section",
                    help=f"sections to rerun (default: {', '.join(DEFAULT)}); also: "
                         + ", ".join(sorted(set(SECTIONS) - set(DEFAULT))))
    args = ap.parse_args(argv)
    unknown = [n for n in args.sections if n not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(sorted(SECTIONS))}")
    update(SECTIONS, args.sections or list(DEFAULT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
