"""``sparsehw pack 24``: a 2:4 int8 layer → ``.npz`` and ``$readmemh`` images for the sparse MAC.

The ``sparsehw`` command line adds this form with :func:`add_parser` and calls :func:`run`.
"""

import argparse
from pathlib import Path

import numpy as np

from sw.cli_io import CLIError, bad_input, check_output_dir, in_range, load_array
from sw.formats import MAC24_GROUPS
from sw.pack.images24 import NPZ_NAME, check_groups, is_24_image, write_24_images
from sw.pack.sparse24 import check_24, check_int8, mask_24, pack_24


def add_parser(pack_subparsers):
    """Add the ``24`` form to the ``sparsehw pack`` subparsers; return its parser."""
    p = pack_subparsers.add_parser(
        "24", help="pack a 2:4-sparse int8 matrix into values/metadata memory images",
        description="Pack a (rows, K) int8 weight matrix (at most 2 nonzeros in every group of 4 "
                    "along K) as docs/spec.md §4 values and metadata; write sparse24.npz and the $readmemh "
                    "images sparse24_values.hex / sparse24_meta.hex (one word per MAC beat of "
                    "`groups` groups).")
    p.add_argument("--weights", required=True, type=Path, help="(rows, K) integer matrix in -128..127 (.npy)")
    p.add_argument("--out", required=True, type=Path,
                   help="output directory (created if missing, replaced as a whole with --force)")
    p.add_argument("--groups", type=int, default=MAC24_GROUPS,
                   help=f"groups per MAC beat, i.e. per image word (default {MAC24_GROUPS})")
    p.add_argument("--prune", action="store_true",
                   help="apply the 2:4 magnitude mask first (otherwise a group with more than 2 "
                        "nonzeros is an error)")
    p.add_argument("--force", action="store_true", help="replace existing images")
    return p


def _prunable(w: np.ndarray) -> bool:
    """Whether ``--prune`` would turn ``w`` into a valid 2:4 matrix."""
    try:
        check_24(np.where(mask_24(w), w, 0))
    except ValueError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    """Pack ``args.weights`` into ``args.out``; a :class:`CLIError` on bad input, before anything is written."""
    in_range("--groups", args.groups, 1)
    check_output_dir(args.out, force=args.force, owned=is_24_image, kind="2:4 images")
    where = f"--weights {args.weights}"
    w = load_array(args.weights, "--weights")
    with bad_input(where):
        w = check_int8(w, "weights")
        if args.prune:
            w = np.where(mask_24(w), w, 0).astype(np.int8)
    if not args.prune:
        try:
            check_24(w)
        except ValueError as e:
            raise CLIError(f"{where}: {e}{'; --prune applies it' if _prunable(w) else ''}") from None
    with bad_input(f"--groups {args.groups}"):
        check_groups(args.groups, w.shape[1])
    with bad_input(where):
        values, meta = pack_24(w)
    paths = write_24_images(values, meta, args.out, groups=args.groups, force=args.force)
    rows, k = w.shape
    print(f"packed {rows}x{k} 2:4 ({np.count_nonzero(w)} nonzeros) into {len(paths)} files under {args.out}:")
    for path in paths:
        print(f"  {path.name}" + ("  (values, meta, rows, k, groups)" if path.name == NPZ_NAME else ""))
    return 0
