"""``sparsehw``: the command line over the library (each subcommand is a thin layer)."""

import argparse
import sys


def _verilog(args) -> int:
    from pyhdl.gen import write_all

    for path in write_all(args.out):
        print(path)
    return 0


def _demo(args) -> int:
    from verif.demo import run_demo

    return run_demo(seed=args.seed, n_pe=args.n_pe, rows=args.rows, cols=args.cols, density=args.density)


def _bench(args) -> int:
    from verif.bench import main as bench_main

    return bench_main(args.sections)


def build_parser() -> argparse.ArgumentParser:
    from sw.pack import cli as pack_cli

    parser = argparse.ArgumentParser(
        prog="sparsehw",
        description="Sparse neural-network inference hardware: pruning, packing, RTL simulation.")
    sub = parser.add_subparsers(dest="command", required=True)
    pack_cli.add_parser(sub)

    verilog = sub.add_parser("verilog", help="generate Verilog for every block into a directory")
    verilog.add_argument("--out", default="rtl", help="output directory (default rtl)")
    verilog.set_defaults(func=_verilog)

    demo = sub.add_parser("demo", help="prune a random layer, pack it for the PEs and decode it in RTL")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--n-pe", type=int, default=4)
    demo.add_argument("--rows", type=int, default=256)
    demo.add_argument("--cols", type=int, default=256)
    demo.add_argument("--density", type=float, default=0.1, help="fraction of weights kept")
    demo.set_defaults(func=_demo)

    bench = sub.add_parser("bench", help="measure and rewrite the sections of BENCHMARKS.md")
    bench.add_argument("sections", nargs="*", help="sections to rerun (default: all)")
    bench.set_defaults(func=_bench)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
