"""``sparsehw pack eie|24``: pack a weight matrix for the hardware and write its memory images."""

from pathlib import Path

import numpy as np

from sw.cli_io import CLIError, bad_input, check_output_dir, either, in_range, load_array
from sw.formats import ACT_WIDTH
from sw.pack import cli24
from sw.pack.eie import check_codebook, pack_eie
from sw.pack.images import is_eie_image, is_eie_layer_dir, write_eie_images, write_eie_network


def load_codebook(spec: str) -> np.ndarray:
    """A codebook from a ``.npy`` file or an inline comma-separated list (``0,-3,5``), checked."""
    if Path(spec).exists() or spec.endswith(".npy"):
        cb = load_array(spec, "--codebook")
    else:
        try:
            cb = np.asarray([float(v) for v in spec.split(",")])
        except ValueError:
            raise CLIError(f"--codebook {spec!r} is neither a .npy file nor a comma-separated list") from None
    with bad_input(f"--codebook {spec}"):
        check_codebook(cb)
    return cb


def add_parser(sub) -> None:
    pack = sub.add_parser("pack", help="pack weights into hardware memory images")
    kinds = pack.add_subparsers(dest="format", required=True)
    eie = kinds.add_parser(
        "eie", help="EIE interleaved relative-index CSC (docs/spec.md §2)",
        description="Pack W (an integer index matrix 0..15, or a float matrix plus --codebook) for "
                    "N PEs and write eie.npz, spmat_pe{k}.hex, colptr_pe{k}.hex and codebook.hex into --out; "
                    "or pack every layer of a `sparsehw prune share` export.npz (--export) into one such "
                    "directory per layer under --out, which `sparsehw sim eie --net` runs.")
    eie.add_argument("--weights", help="W.npy: (rows, cols) matrix, y = W @ x")
    eie.add_argument("--export", help="export.npz of `sparsehw prune share` (instead of --weights)")
    eie.add_argument("--n-pe", type=int, required=True, help="number of processing elements")
    eie.add_argument("--out", required=True, help="output directory (replaced as a whole with --force)")
    eie.add_argument("--codebook", help="codebook .npy or comma list (entry 0 must be 0); "
                                        "without it W holds indices and index i decodes to i")
    eie.add_argument("--shift", type=int, help="output stage arithmetic right shift, 0..15 (default 0)")
    eie.add_argument("--no-relu", action="store_true", help="record relu=False for this layer")
    eie.add_argument("--balance", action="store_true",
                     help="store the rows in a load-balanced order (docs/spec.md §2.7a), recorded as "
                          "row_order in eie.npz; the hardware's outputs then come back in that order")
    eie.add_argument("--force", action="store_true", help="replace existing images")
    eie.set_defaults(func=run_eie)
    cli24.add_parser(kinds).set_defaults(func=cli24.run)


def run_eie(args) -> int:
    only_weights = {"--codebook": args.codebook is not None, "--shift": args.shift is not None,
                    "--no-relu": args.no_relu}
    weights = either("--weights W.npy", args.weights, "--export export.npz", args.export, only_first=only_weights,
                     why="an --export layer's codebook, shift and ReLU come from the export")
    in_range("--n-pe", args.n_pe, 1)
    if not weights:
        return _run_export(args)
    shift = in_range("--shift", 0 if args.shift is None else args.shift, 0, ACT_WIDTH - 1)
    check_output_dir(args.out, force=args.force, owned=is_eie_image, kind="EIE images")
    w = load_array(args.weights, "--weights")
    cb = load_codebook(args.codebook) if args.codebook else None
    with bad_input(f"--weights {args.weights}"):
        packed = pack_eie(w, args.n_pe, codebook=cb, balance=args.balance)
    paths = write_eie_images(packed, args.out, shift=shift, relu=not args.no_relu, force=args.force)
    nnz = int(np.count_nonzero(w))
    print(f"packed {packed.rows}x{packed.cols} ({nnz} nonzeros, density {nnz / w.size:.3f}) for "
          f"{packed.n_pe} PEs: {packed.n_entries} entries ({packed.n_padding} padding)")
    per_pe = [p.n_entries for p in packed.pe]
    print(f"entries per PE: min {min(per_pe)}, max {max(per_pe)}, mean {np.mean(per_pe):.1f}")
    if args.balance:
        print(_balance_note(packed))
    if not any(p.name == "codebook.hex" for p in paths):
        print("note: the codebook is not integral int16, so no codebook.hex was written; "
              "quantise it before running in hardware")
    print(f"wrote {len(paths)} files to {args.out}")
    return 0


def _balance_note(packed) -> str:
    if not packed.reordered:
        return "--balance: the original row order is already the balanced one (no row_order stored)"
    return ("--balance: rows stored in a balanced order (row_order in eie.npz); map the hardware's "
            "outputs back with EIEPacked.to_original")


def _run_export(args) -> int:
    """Every layer of an integer export (docs/spec.md §1.4) as a network directory."""
    from sw.prune.export import IntegerNetwork

    check_output_dir(args.out, force=args.force, owned=is_eie_layer_dir, kind="EIE layer directories")
    with bad_input("--export", sep=" "):
        net = IntegerNetwork.load(args.export)
    layers = []
    for layer in net.layers:
        where = f"--export {args.export}: layer {layer.name}"
        if not 0 <= layer.shift < ACT_WIDTH:
            raise CLIError(f"{where}: shift {layer.shift} is outside the hardware's 0..{ACT_WIDTH - 1} "
                           "(docs/spec.md §1.4: the export does not bound it)")
        with bad_input(where):
            layers.append((layer.name, pack_eie(layer.weights(), args.n_pe, codebook=layer.codebook,
                                                balance=args.balance), layer.shift, layer.relu))
    dirs = write_eie_network(layers, args.out, force=args.force)
    for d, (_, packed, shift, relu) in zip(dirs, layers, strict=True):
        print(f"{d}: {packed.rows}x{packed.cols}, {packed.n_entries} entries for {packed.n_pe} PEs, "
              f"shift {shift}{', ReLU' if relu else ''}" + (f"; {_balance_note(packed)}" if args.balance else ""))
    print(f"inputs: int16 round(x * 2**{net.input_exp}) (IntegerNetwork.quantize_input); "
          f"run with `sparsehw sim eie --net {args.out} --act x.npy --out y.npy`")
    return 0
