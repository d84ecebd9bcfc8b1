"""``sparsehw pointcloud``: generate a scene, build its kernel map (thin layers over the library).

    sparsehw pointcloud scene --kind lidar --voxel 0.1 --out coords.npy
    sparsehw pointcloud kmap --coords coords.npy --stride 2 --out maps.npz

``maps.npz`` holds ``out_coords``, ``offsets`` (``(K, 3)``), and the pairs of all offsets
concatenated as ``pairs`` (``(n, 2)``: ``in_idx, out_idx``) with ``offset_index`` (``(n,)``);
``maps[k] = pairs[offset_index == k]``, sorted by ``out_idx`` as ``kernel_map`` returns them.
"""

import numpy as np

from sw.cli_io import CLIError, atomic_write, bad_input, check_output_file, in_range, load_array
from sw.pointcloud import kernel_map, kernel_offsets, scenes


def add_parser(sub) -> None:
    pc = sub.add_parser("pointcloud", help="point clouds: generated scenes and kernel maps (docs/spec.md §5)")
    kinds = pc.add_subparsers(dest="pointcloud_command", required=True)

    sc = kinds.add_parser("scene", help="generate a voxelised scene and save its coordinates (.npy)",
                          description="Sample a generated scene, voxelise it and write int64 (P, 3) voxels.")
    sc.add_argument("--kind", choices=sorted(scenes.SCENES), default="room")
    sc.add_argument("--voxel", type=float, default=0.05, help="voxel size in metres (default 0.05)")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--out", required=True, help="output file, ending in .npy")
    sc.add_argument("--force", action="store_true", help="overwrite an existing output file")
    sc.set_defaults(func=run)

    km = kinds.add_parser("kmap", help="build the kernel map of a coordinate array (.npy)",
                          description="Kernel map of integer voxel coordinates (P, 3) or (P, 4) with the "
                                      "batch index first; see sw.pointcloud.kernel_map.")
    km.add_argument("--coords", required=True, help="coords.npy: integer (P, 3) or (P, 4) array")
    km.add_argument("--kernel-size", type=int, default=3)
    km.add_argument("--stride", type=int, default=1, choices=(1, 2), help="1 (submanifold) or 2 (downsampling)")
    km.add_argument("--tensor-stride", type=int, default=1, help="stride of the input coordinates")
    km.add_argument("--method", choices=("sort", "hash"), default="sort")
    km.add_argument("--out", required=True, help="output file, ending in .npz")
    km.add_argument("--force", action="store_true", help="overwrite an existing output file")
    km.set_defaults(func=run)


def run(args) -> int:
    if args.pointcloud_command == "scene":
        in_range("--voxel", args.voxel, 0, None, "()")
        in_range("--seed", args.seed, 0)
        out = check_output_file(args.out, force=args.force, suffix=".npy")
        with bad_input(f"--voxel {args.voxel}"):
            c = scenes.scene(args.kind, args.voxel, seed=args.seed)
        atomic_write(out, lambda f: np.save(f, c))
        print(f"{args.kind} scene, voxel {args.voxel:g} m: {len(c)} voxels, "
              f"density {scenes.density(c):.2e} of the bounding box; wrote {out}")
        return 0
    for option, value in (("--kernel-size", args.kernel_size), ("--tensor-stride", args.tensor_stride)):
        in_range(option, value, 1)
    if args.kernel_size % 2 == 0:
        raise CLIError(f"--kernel-size {args.kernel_size} must be odd (offsets centred on the output)")
    out = check_output_file(args.out, force=args.force, suffix=".npz")
    coords = load_array(args.coords, "--coords")
    with bad_input(f"--coords {args.coords}"):
        out_coords, maps = kernel_map(coords, args.kernel_size, args.stride, tensor_stride=args.tensor_stride,
                                      method=args.method)
    write_kmap(out, out_coords, maps, args.kernel_size, args.tensor_stride)
    counts = [len(m) for m in maps]
    print(f"{len(coords)} inputs -> {len(out_coords)} outputs, {len(maps)} offsets, {sum(counts)} pairs "
          f"(per offset min {min(counts)}, max {max(counts)}); wrote {out}")
    return 0


def write_kmap(path, out_coords, maps, kernel_size: int, tensor_stride: int = 1) -> None:
    """Write a kernel map as ``maps.npz`` (the module docstring's layout), atomically."""
    counts = [len(m) for m in maps]
    pairs = np.concatenate(maps) if maps else np.zeros((0, 2), dtype=np.int64)
    arrays = dict(out_coords=out_coords, offsets=kernel_offsets(kernel_size, tensor_stride),
                  pairs=pairs, offset_index=np.repeat(np.arange(len(maps)), counts))
    atomic_write(path, lambda f: np.savez(f, **arrays))
