"""``sparsehw pointcloud``: generate a scene, build its kernel map (thin layers over the library).

    sparsehw pointcloud scene --kind lidar --voxel 0.1 --out coords.npy
    sparsehw pointcloud kmap --coords coords.npy --stride 2 --out maps.npz

``maps.npz`` holds ``out_coords``, ``offsets`` (``(K, 3)``), and the pairs of all offsets
concatenated as ``pairs`` (``(n, 2)``: ``in_idx, out_idx``) with ``offset_index`` (``(n,)``);
``maps[k] = pairs[offset_index == k]``, sorted by ``out_idx`` as ``kernel_map`` returns them.
"""

from pathlib import Path

import numpy as np

from sw.pointcloud import kernel_map, kernel_offsets, scenes


def add_parser(sub) -> None:
    pc = sub.add_parser("pointcloud", help="point clouds: generated scenes and kernel maps (docs/spec.md §5)")
    kinds = pc.add_subparsers(dest="pointcloud_command", required=True)

    sc = kinds.add_parser("scene", help="generate a voxelised scene and save its coordinates (.npy)",
                          description="Sample a generated scene, voxelise it and write int64 (P, 3) voxels.")
    sc.add_argument("--kind", choices=sorted(scenes.SCENES), default="room")
    sc.add_argument("--voxel", type=float, default=0.05, help="voxel size in metres (default 0.05)")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--out", required=True, help="output .npy file")
    sc.add_argument("--force", action="store_true", help="overwrite an existing output file")
    sc.set_defaults(func=run)

    km = kinds.add_parser("kmap", help="build the kernel map of a coordinate array (.npy)",
                          description="Kernel map of integer voxel coordinates (P, 3) or (P, 4) with the "
                                      "batch index first; see sw.pointcloud.kernel_map.")
    km.add_argument("--coords", required=True, help="coords.npy: integer (P, 3) or (P, 4) array")
    km.add_argument("--kernel-size", type=int, default=3)
    km.add_argument("--stride", type=int, default=1, help="1 (submanifold) or 2 (downsampling)")
    km.add_argument("--tensor-stride", type=int, default=1, help="stride of the input coordinates")
    km.add_argument("--method", choices=("sort", "hash"), default="sort")
    km.add_argument("--out", required=True, help="output .npz file")
    km.add_argument("--force", action="store_true", help="overwrite an existing output file")
    km.set_defaults(func=run)


def _check_out(path: Path, force: bool):
    if path.exists() and not force:
        raise SystemExit(f"error: {path} exists; pass --force to overwrite it")


def run(args) -> int:
    out = Path(args.out)
    if args.pointcloud_command == "scene":
        _check_out(out, args.force)
        try:
            c = scenes.scene(args.kind, args.voxel, seed=args.seed)
        except ValueError as e:
            raise SystemExit(f"error: {e}") from None
        np.save(out, c)
        print(f"{args.kind} scene, voxel {args.voxel:g} m: {len(c)} voxels, "
              f"density {scenes.density(c):.2e} of the bounding box; wrote {out}")
        return 0
    src = Path(args.coords)
    if not src.exists():
        raise SystemExit(f"error: coords file {src} does not exist")
    _check_out(out, args.force)
    try:
        coords = np.load(src, allow_pickle=False)
        out_coords, maps = kernel_map(coords, args.kernel_size, args.stride, tensor_stride=args.tensor_stride,
                                      method=args.method)
    except (ValueError, OSError) as e:
        raise SystemExit(f"error: {src}: {e}") from None
    counts = [len(m) for m in maps]
    pairs = np.concatenate(maps) if maps else np.zeros((0, 2), dtype=np.int64)
    np.savez(out, out_coords=out_coords, offsets=kernel_offsets(args.kernel_size, args.tensor_stride),
             pairs=pairs, offset_index=np.repeat(np.arange(len(maps)), counts))
    print(f"{len(coords)} inputs -> {len(out_coords)} outputs, {len(maps)} offsets, {len(pairs)} pairs "
          f"(per offset min {min(counts)}, max {max(counts)}); wrote {out}")
    return 0
