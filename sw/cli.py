"""``sparsehw``: the command line over the library (each subcommand is a thin layer)."""

import sys

from sw.cli_io import CLIError, Parser, either, in_range, run


def _verilog(args) -> int:
    from pyhdl.gen import write_all

    for path in write_all(args.out, force=args.force):
        print(path)
    return 0


def _demo(args) -> int:
    from runtime.demo import check_out, run_demo

    in_range("--digits", args.digits, 1, 1000)
    in_range("--n-pe", args.n_pe, 1, 256)
    check_out(args.out, args.force)
    return run_demo(args.out, digits=args.digits, n_pe=args.n_pe, force=args.force)


def _sim_eie(args) -> int:
    from runtime.eie.sim_command import main_layer, main_network

    only_weights = {"--n-pe": args.n_pe is not None, "--shift": args.shift is not None, "--no-relu": args.no_relu}
    if not either("--weights W.npy (with --n-pe)", args.weights, "--net DIR", args.net, only_first=only_weights,
                  why="a --net layer's PEs, shift and ReLU are in its eie.npz"):
        return main_network(args.net, args.act, args.out, force=args.force)
    if args.n_pe is None:
        raise CLIError("--n-pe is required with --weights")
    return main_layer(args.weights, args.act, args.n_pe, args.out, relu=not args.no_relu,
                      shift=0 if args.shift is None else args.shift, force=args.force)


def _sim_pointacc(args) -> int:
    from runtime.pointacc.sim_command import main

    return main(args.coords, args.out, stride=args.stride, kernel_size=args.kernel_size, width=args.width,
                p_ready=args.p_ready, seed=args.seed, force=args.force)


def _bench(args) -> int:
    from runtime import bench

    unknown = [s for s in args.sections if s not in bench.SECTIONS]
    if unknown:
        raise CLIError(f"unknown section {unknown[0]!r}; sparsehw bench runs {', '.join(bench.SECTIONS)} "
                       "(`make bench` adds the single-block testbench sections)")
    return bench.main(args.sections)


def build_parser() -> Parser:
    from sw.pack import cli as pack_cli
    from sw.pointcloud import cli as pointcloud_cli
    from sw.prune import cli as prune_cli

    parser = Parser(
        prog="sparsehw",
        description="Sparse neural-network inference hardware: pruning, packing, RTL simulation.")
    sub = parser.add_subparsers(dest="command", required=True)
    pack_cli.add_parser(sub)
    prune_cli.add_parser(sub).set_defaults(func=prune_cli.run)
    pointcloud_cli.add_parser(sub)

    simulate = sub.add_parser("sim", help="run layers on the RTL in Verilator")
    kinds = simulate.add_subparsers(dest="kind", required=True)
    eie = kinds.add_parser(
        "eie", help="a layer or a network on the EIE array",
        description="Run y = relu(W @ x) (or a network of packed layers) on the EIE array RTL; checks the "
                    "outputs against the integer model and the timing against the cycle model; prints cycles, "
                    "per-PE busy cycles and load-balance efficiency.")
    eie.add_argument("--weights", help="W.npy: integer (rows, cols) weights, at most 15 distinct nonzero values")
    eie.add_argument("--net", help="directory of packed layers (subdirectories written by `sparsehw pack eie`, "
                                   "run in name order)")
    eie.add_argument("--act", required=True,
                     help="x.npy: integer input activations (int16): a vector, or an (n, cols) batch")
    eie.add_argument("--n-pe", type=int, help="processing elements (with --weights)")
    eie.add_argument("--out", required=True, help="y.npy to write (the name must end in .npy)")
    eie.add_argument("--shift", type=int, help="output shift 0..15 (with --weights; default 0)")
    eie.add_argument("--no-relu", action="store_true", help="no ReLU (with --weights)")
    eie.add_argument("--force", action="store_true", help="overwrite --out")
    eie.set_defaults(func=_sim_eie)
    pointacc = kinds.add_parser(
        "pointacc", help="a point cloud's kernel map on the PointAcc mapping unit",
        description="Build the kernel map of integer voxel coordinates on the mapping unit RTL (sort, merge "
                    "passes, at stride 2 the output points, one intersection per offset); checks it against "
                    "`sparsehw pointcloud kmap`'s and writes it in the same format; prints cycles and the unit's "
                    "counters.")
    pointacc.add_argument("--coords", required=True, help="coords.npy: integer (P, 3) or (P, 4) array (batch first)")
    pointacc.add_argument("--stride", type=int, default=1, choices=(1, 2),
                          help="1 (submanifold) or 2 (downsampling: the unit generates the output points)")
    pointacc.add_argument("--kernel-size", type=int, default=3, help="odd kernel size (default 3)")
    pointacc.add_argument("--width", type=int, default=8, help="keys a cycle, a power of two >= 2 (default 8)")
    pointacc.add_argument("--p-ready", type=float, default=1.0,
                          help="probability the pair sink is ready each cycle, in (0, 1] (default 1)")
    pointacc.add_argument("--seed", type=int, default=0, help="seed of the sink's back-pressure (default 0)")
    pointacc.add_argument("--out", required=True, help="kmap.npz to write")
    pointacc.add_argument("--force", action="store_true", help="overwrite --out")
    pointacc.set_defaults(func=_sim_pointacc)

    verilog = sub.add_parser("verilog", help="generate Verilog for every block into a directory")
    verilog.add_argument("--out", default="rtl", help="output directory (default rtl)")
    verilog.add_argument("--force", action="store_true", help="replace existing <module>.v files")
    verilog.set_defaults(func=_verilog)

    demo = sub.add_parser("demo", help="LeNet-300-100 trained, pruned, shared, exported and run on the 64-PE "
                                       "array RTL; speedup, energy and a 2:4 layer on the MAC RTL")
    demo.add_argument("--out", required=True, help="directory for the figures and summary.json (written as a whole)")
    demo.add_argument("--digits", type=int, default=200, help="test digits through the RTL (1..1000; default 200)")
    demo.add_argument("--n-pe", type=int, default=64, help="processing elements (1..256; default 64)")
    demo.add_argument("--force", action="store_true", help="replace an earlier demo output directory")
    demo.set_defaults(func=_demo)

    bench = sub.add_parser("bench", help="measure and rewrite the sections of BENCHMARKS.md")
    bench.add_argument("sections", nargs="*", help="sections to rerun (default: all but synth)")
    bench.set_defaults(func=_bench)
    return parser


def main(argv=None) -> int:
    """Run ``sparsehw`` on ``argv``; returns the exit status (2 and one line on stderr on bad input)."""
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
