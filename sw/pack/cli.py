"""``sparsehw pack eie|24``: pack a weight matrix for the hardware and write its memory images."""

from pathlib import Path

import numpy as np

from sw.pack import cli24
from sw.pack.eie import pack_eie
from sw.pack.images import write_eie_images


def load_array(path, what: str) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"error: {what} file {p} does not exist")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise SystemExit(f"error: {p}: cannot read a .npy array ({e})") from None


def load_codebook(spec: str) -> np.ndarray:
    """A codebook from a ``.npy`` file or an inline comma-separated list (``0,-3,5``)."""
    if Path(spec).exists() or spec.endswith(".npy"):
        return load_array(spec, "codebook")
    try:
        return np.asarray([float(v) for v in spec.split(",")])
    except ValueError:
        raise SystemExit(f"error: --codebook {spec!r} is neither a .npy file nor a comma-separated list") from None


def add_parser(sub) -> None:
    pack = sub.add_parser("pack", help="pack weights into hardware memory images")
    kinds = pack.add_subparsers(dest="format", required=True)
    eie = kinds.add_parser(
        "eie", help="EIE interleaved relative-index CSC (docs/spec.md §2)",
        description="Pack W (an integer index matrix 0..15, or a float matrix plus --codebook) for "
                    "N PEs and write eie.npz, spmat_pe{k}.hex, colptr_pe{k}.hex and codebook.hex.")
    eie.add_argument("--weights", required=True, help="W.npy: (rows, cols) matrix, y = W @ x")
    eie.add_argument("--n-pe", type=int, required=True, help="number of processing elements")
    eie.add_argument("--out", required=True, help="output directory")
    eie.add_argument("--codebook", help="codebook .npy or comma list (entry 0 must be 0); "
                                        "without it W holds indices and index i decodes to i")
    eie.add_argument("--shift", type=int, default=0, help="output stage arithmetic right shift")
    eie.add_argument("--no-relu", action="store_true", help="record relu=False for this layer")
    eie.add_argument("--force", action="store_true", help="overwrite existing images")
    eie.set_defaults(func=run_eie)
    cli24.add_parser(kinds).set_defaults(func=cli24.run)


def run_eie(args) -> int:
    w = load_array(args.weights, "weights")
    cb = load_codebook(args.codebook) if args.codebook else None
    try:
        packed = pack_eie(w, args.n_pe, codebook=cb)
    except ValueError as e:
        raise SystemExit(f"error: {args.weights}: {e}") from None
    try:
        paths = write_eie_images(packed, args.out, shift=args.shift, relu=not args.no_relu, force=args.force)
    except (FileExistsError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    nnz = int(np.count_nonzero(w))
    print(f"packed {packed.rows}x{packed.cols} ({nnz} nonzeros, density {nnz / w.size:.3f}) for "
          f"{packed.n_pe} PEs: {packed.n_entries} entries ({packed.n_padding} padding)")
    per_pe = [p.n_entries for p in packed.pe]
    print(f"entries per PE: min {min(per_pe)}, max {max(per_pe)}, mean {np.mean(per_pe):.1f}")
    if not any(p.name == "codebook.hex" for p in paths):
        print("note: the codebook is not integral int16, so no codebook.hex was written; "
              "quantise it before running in hardware")
    print(f"wrote {len(paths)} files to {args.out}")
    return 0
