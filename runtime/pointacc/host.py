# amaranth: UnusedElaboratable=no
"""Host driver of the PointAcc mapping unit (``pyhdl/pointacc/mapping_unit.py``): checks a point
cloud against the unit before anything reaches it, turns it into writes of the load port, and
turns what the unit returns (pairs by output rank, the sorted list) into ``kernel_map``'s result.

The plan is plain data (lists of ``(addr, data)``), replayed by a testbench or a simulation run,
so the checks run on the Python side: an empty cloud, more points than ``max_points``, a wrong
shape or dtype, a coordinate outside the key range and a batch index outside ``batch_bits`` raise
``ValueError`` naming the problem (and the row). Duplicate rows are the hardware's to find (its
sticky error flag; :func:`check_result`).
"""

import numpy as np

from pyhdl.pointacc.mapping_unit import Config, MappingUnit, Region, Status, UnitStatus
from runtime.payload import pack
from sw.pointcloud.keys import KeyFormat, as_coords

UNIT_PARAMS = ("max_points", "width", "coord_bits", "batch_bits", "kernel_size")


def unit_for(params: dict) -> MappingUnit:
    return MappingUnit(**{k: int(params[k]) for k in UNIT_PARAMS if k in params})


def check_coords(unit: MappingUnit, coords, *, where: str = "coords") -> np.ndarray:
    """``coords`` (``(P, 3)`` or ``(P, 4)`` with the batch index first) as int64 ``(P, 4)``, after
    checking that the unit can take them."""
    try:
        c = as_coords(coords)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    if len(c) == 0:
        raise ValueError(f"{where}: the point cloud is empty; the mapping unit needs at least one point")
    if len(c) > unit.max_points:
        raise ValueError(f"{where}: {len(c)} points do not fit the mapping unit (max_points = {unit.max_points})")
    try:
        KeyFormat(unit.coord_bits, unit.batch_bits).check(c)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    return c


def load_writes(unit: MappingUnit, coords, *, stride: int = 1, where: str = "coords"):
    """Load-port writes of a point cloud: its coordinate words (``width`` points a word, the last
    one padded with zeros), ``N_POINTS`` and ``STRIDE`` (1: submanifold, 2: downsampling)."""
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    c = check_coords(unit, coords, where=where)
    w = unit.width
    n_words = -(-len(c) // w)
    padded = np.zeros((n_words * w, 4), dtype=np.int64)
    padded[:len(c)] = c
    lanes = padded.reshape(n_words, w, 4)
    words = pack(unit.coord_layout, {f: lanes[:, :, k] for k, f in enumerate(("batch", "x", "y", "z"))})
    writes = [(unit.address(Region.COORDS, j), word) for j, word in enumerate(words)]
    return writes + [(unit.address(Region.CONFIG, Config.N_POINTS), len(c)),
                      (unit.address(Region.CONFIG, Config.STRIDE), stride)]


def counter_addresses(unit: MappingUnit) -> dict:
    """Status addresses of every counter: ``{name: address}`` (``pairs{k}`` per offset)."""
    out = {s.name.lower(): unit.status_address(Status.UNIT, s) for s in UnitStatus}
    out.update({f"pairs{k}": unit.status_address(Status.PAIRS, k) for k in range(unit.n_offsets)})
    return out


def check_result(error: int, where: str = "coords") -> None:
    if error:
        raise ValueError(f"{where}: the mapping unit found duplicate coordinates (its error flag is set)")


def kernel_maps(pair_lists, sorted_idx=None) -> list:
    """``kernel_map(coords, stride)``'s maps from the unit's output: ``pair_lists[k]`` the
    ``(in_idx, out_rank)`` pairs of offset ``k`` as they came. Stride 1: ``sorted_idx[r]`` is the
    row of the point of rank ``r`` (the ``idx`` lanes of the sorted list); each ``out_rank``
    becomes the row ``sorted_idx[out_rank]`` and each map is sorted by it. Stride 2
    (``sorted_idx=None``): the output points are listed in key order, so ranks are rows and the
    maps are the lists as they came (docs/spec.md §5.7)."""
    maps = []
    for pairs in pair_lists:
        p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2).copy()
        if sorted_idx is not None:
            p[:, 1] = np.asarray(sorted_idx, dtype=np.int64)[p[:, 1]]
            p = p[np.argsort(p[:, 1], kind="stable")]
        maps.append(p)
    return maps


def output_coords(unit: MappingUnit, keys, columns: int = 4) -> np.ndarray:
    """The stride-2 output coordinates from the keys of the output list (parity-last keys of even
    points, ``KeyFormat.down``), ``(n_out, columns)`` with the batch index first when 4."""
    fmt = KeyFormat(unit.coord_bits, unit.batch_bits)
    c = fmt.unpack(fmt.up(np.asarray(keys, dtype=np.int64)))
    return c if columns == 4 else c[:, 1:]
