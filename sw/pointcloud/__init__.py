"""Point clouds: kernel maps, sparse convolution, scene generation (docs/spec.md §5).

``kernel_map`` and the key format import only NumPy (the hardware side imports
``sw.pointcloud.keys``); the torch parts live in ``sw.pointcloud.sparse_conv`` and
``sw.pointcloud.implicit_gemm``.
"""

from sw.pointcloud.kernel_map import kernel_map, kernel_offsets, output_coords
from sw.pointcloud.keys import BATCH_BITS, COORD_BITS, KeyFormat

__all__ = ["kernel_map", "kernel_offsets", "output_coords", "KeyFormat", "COORD_BITS", "BATCH_BITS"]
