"""Kernel maps (docs/spec.md §5): offset order, key format, worked examples, the two builders against each
other and against the definition, and every bad input the issue lists."""

import numpy as np
import pytest

from sw.pointcloud import KeyFormat, kernel_map, kernel_offsets, output_coords, scenes
from sw.pointcloud.hashmap import CoordHashTable
from sw.pointcloud.kernel_map import METHODS


def brute_force_map(coords, out_coords, kernel_size=3, tensor_stride=1):
    """The definition, all pairs at once: coords[i] == out_coords[o] + d (same batch)."""
    c = np.asarray(coords)
    oc = np.asarray(out_coords)
    if c.shape[1] == 3:
        c, oc = (np.concatenate([np.zeros((len(a), 1), dtype=np.int64), a], 1) for a in (c, oc))
    maps = []
    for d in kernel_offsets(kernel_size, tensor_stride):
        q = oc.copy()
        q[:, 1:] += d
        eq = np.all(c[:, None, :] == q[None, :, :], axis=2)     # (P, Q)
        i, o = np.nonzero(eq)
        order = np.argsort(o, kind="stable")
        maps.append(np.stack([i[order], o[order]], 1))
    return maps


def assert_maps_equal(a, b, what=""):
    assert len(a) == len(b)
    for k, (x, y) in enumerate(zip(a, b, strict=True)):
        x, y = np.asarray(x).reshape(-1, 2), np.asarray(y).reshape(-1, 2)
        assert np.array_equal(x, y), f"{what} offset {k}"


def random_cloud(rng, n, span, *, batches=1, dims=3, multiple=1):
    pts = rng.integers(-span, span, (n, 3)) * multiple
    if batches > 1 or dims == 4:
        pts = np.concatenate([rng.integers(0, batches, (n, 1)), pts], 1)
    pts = np.unique(pts, axis=0)
    return pts[rng.permutation(len(pts))]


# ---------------------------------------------------------------- offsets and keys

def test_offset_order_is_spec():
    off = kernel_offsets(3)
    assert off.shape == (27, 3)
    assert off[13].tolist() == [0, 0, 0]
    assert off[0].tolist() == [-1, -1, -1] and off[26].tolist() == [1, 1, 1]
    assert off[1].tolist() == [0, -1, -1]          # dx fastest
    assert off[3].tolist() == [-1, 0, -1]
    assert off[9].tolist() == [-1, -1, 0]          # dz slowest
    idx = (off[:, 0] + 1) + 3 * (off[:, 1] + 1) + 9 * (off[:, 2] + 1)
    assert idx.tolist() == list(range(27))
    assert kernel_offsets(1).tolist() == [[0, 0, 0]]
    assert kernel_offsets(5).shape == (125, 3) and kernel_offsets(5)[62].tolist() == [0, 0, 0]
    assert np.array_equal(kernel_offsets(3, tensor_stride=4), 4 * off)


def test_key_pack_order_and_limits():
    fmt = KeyFormat(coord_bits=4, batch_bits=2)
    assert (fmt.coord_min, fmt.coord_max, fmt.batch_max, fmt.key_bits) == (-8, 7, 3, 14)
    r = np.arange(-8, 8)
    b, x, y, z = np.meshgrid(np.arange(4), r, r, r, indexing="ij")
    c = np.stack([b.ravel(), x.ravel(), y.ravel(), z.ravel()], 1)
    keys = fmt.pack(c)
    # Meshgrid 'ij' enumerates (b, x, y, z) lexicographically: keys are then 0 .. 2^14 - 1 in order.
    assert np.array_equal(keys, np.arange(1 << 14))
    assert np.array_equal(fmt.unpack(keys), c)
    assert fmt.pack([[-8, -8, -8]])[0] == 0 and fmt.pack([[3, 7, 7, 7]])[0] == (1 << 14) - 1
    # Biased field = two's complement with the sign bit inverted.
    assert fmt.fields(fmt.pack([[0, -1, 0, 5]]))[0].tolist() == [0, 0b0111, 0b1000, 0b1101]


def test_key_shift_and_widen_never_wrap():
    fmt = KeyFormat(coord_bits=4, batch_bits=1)
    rng = np.random.default_rng(0)
    c = np.unique(np.concatenate([rng.integers(0, 2, (300, 1)), rng.integers(-8, 8, (300, 3))], 1), axis=0)
    keys = np.sort(fmt.pack(c))
    c = fmt.unpack(keys)
    for d in kernel_offsets(3).tolist() + [[7, -7, 3], [-7, 0, 0]]:
        moved = c.copy()
        moved[:, 1:] += d
        inside = np.all((moved[:, 1:] >= -8) & (moved[:, 1:] <= 7), axis=1)
        shifted, ok = fmt.shift(keys, d)
        assert np.array_equal(ok, inside), d
        assert np.array_equal(shifted[ok], fmt.pack(moved[inside])), d
        assert np.all(np.diff(shifted[ok]) > 0), "shifting keeps sorted keys sorted"
        wide = fmt.widen(keys, d)
        assert np.all(np.diff(wide) > 0), "widened shifted keys stay sorted, wrap or not"
        # Widened keys of the shifted points equal widened keys of the inputs exactly when the
        # points coincide: the limit voxel x = 7 moved by +1 never meets x = -8.
        base = fmt.widen(keys)
        hits = np.isin(wide, base)
        truth = np.array([any((m == c).all(1)) for m in moved])
        assert np.array_equal(hits, truth), d
    assert fmt.wide_field_bits == 6 and fmt.wide_key_bits == 19


def test_parity_last_keys_group_output_voxels_and_match_by_widen_down():
    """Parity-last keys (spec §5.2): a bit permutation ordered like (b, x >> 1, y >> 1, z >> 1,
    parities); quantised, their distinct values are kernel_map(stride=2)'s output points in order;
    widen_down of an input equals widen_down of an output shifted by d exactly when the input is
    the output moved by d — at the coordinate limits too, where nothing may wrap."""
    fmt = KeyFormat(coord_bits=4, batch_bits=1)
    rng = np.random.default_rng(1)
    c = np.unique(np.concatenate([rng.integers(0, 2, (400, 1)), rng.integers(-8, 8, (400, 3))], 1), axis=0)
    keys = fmt.pack(c)
    down = fmt.down(keys)
    assert np.array_equal(fmt.up(down), keys) and len(np.unique(down)) == len(c)
    order = np.lexsort(tuple(c[:, a] & 1 for a in (3, 2, 1)) + tuple(c[:, a] >> 1 for a in (3, 2, 1)) + (c[:, 0],))
    assert np.array_equal(np.argsort(down), order)
    outs = np.unique(fmt.quantise(down))
    assert np.all(np.diff(outs) > 0)
    out_coords, _ = kernel_map(c, 3, 2, coord_bits=4, batch_bits=1)
    assert np.array_equal(fmt.unpack(fmt.up(outs)), out_coords)
    base = fmt.widen_down(down)
    for d in kernel_offsets(3).tolist() + [[3, -3, 2]]:
        wide = fmt.widen_down(outs, d)
        assert np.all(np.diff(wide) > 0), d
        moved = fmt.unpack(fmt.up(outs))
        moved[:, 1:] += d
        truth = np.array([any((m == c).all(1)) for m in moved])
        assert np.array_equal(np.isin(wide, base), truth), d
    assert fmt.down(fmt.pack(np.array([[0, 0, 0, 0]]))).item() == 0b100_100_100_000     # halves 0b100, parities 0
    with pytest.raises(ValueError, match="exceeds the coordinate range"):
        fmt.widen_down(outs, (16, 0, 0))


def test_key_format_rejects_bad_parameters():
    with pytest.raises(ValueError, match="coord_bits"):
        KeyFormat(coord_bits=1)
    with pytest.raises(ValueError, match="must fit an int64"):
        KeyFormat(coord_bits=19, batch_bits=8)
    with pytest.raises(ValueError, match="batch_bits"):
        KeyFormat(batch_bits=-1)


# ---------------------------------------------------------------- worked examples

@pytest.mark.parametrize("method", METHODS)
def test_submanifold_worked_example(method):
    coords = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    out, maps = kernel_map(coords, method=method)
    assert np.array_equal(out, coords)
    want = {13: [[0, 0], [1, 1], [2, 2]], 14: [[1, 0]], 12: [[0, 1]], 16: [[2, 0]], 10: [[0, 2]],
            11: [[1, 2]], 15: [[2, 1]]}
    for k in range(27):
        assert maps[k].tolist() == want.get(k, []), k
        assert maps[k].dtype == np.int64 and maps[k].shape[1] == 2


@pytest.mark.parametrize("method", METHODS)
def test_downsample_worked_example(method):
    coords = np.array([[0, 0, 0], [1, 1, 1], [2, 0, 0], [-1, 0, 0]])
    out, maps = kernel_map(coords, stride=2, method=method)
    assert out.tolist() == [[-2, 0, 0], [0, 0, 0], [2, 0, 0]]     # floor(c / 2) * 2, sorted
    want = {13: [[0, 1], [2, 2]], 14: [[3, 0]], 12: [[3, 1]], 26: [[1, 1]], 24: [[1, 2]]}
    for k in range(27):
        assert maps[k].tolist() == want.get(k, []), k


def test_batches_never_mix():
    a = np.array([[0, 0, 0, 0], [1, 1, 0, 0]])      # same place in two batch elements ...
    out, maps = kernel_map(a)
    assert maps[14].size == 0 and maps[12].size == 0  # ... are not neighbours
    b = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 5, 5, 5]])
    out, maps = kernel_map(b, stride=2)
    assert out.tolist() == [[0, 4, 4, 4], [1, 0, 0, 0]]
    assert maps[13].tolist() == [[0, 1]] and maps[14].tolist() == [[1, 1]] and maps[26].tolist() == [[2, 0]]


@pytest.mark.parametrize("method", METHODS)
def test_coordinate_limits_do_not_wrap(method):
    fmt = KeyFormat(coord_bits=6, batch_bits=1)
    lo, hi = fmt.coord_min, fmt.coord_max
    coords = np.array([[lo, 0, 0], [hi, 0, 0], [hi, hi, hi], [lo, lo, lo], [lo + 1, 0, 0], [0, hi, lo]])
    out, maps = kernel_map(coords, method=method, coord_bits=6, batch_bits=1)
    assert_maps_equal(maps, brute_force_map(coords, out), method)
    assert maps[14].tolist() == [[4, 0]]           # only lo -> lo + 1, never hi -> lo
    out2, maps2 = kernel_map(coords[:, :], stride=2, method=method, coord_bits=6, batch_bits=1)
    assert_maps_equal(maps2, brute_force_map(coords, out2), method + " stride 2")


# ---------------------------------------------------------------- against the definition

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("stride", [1, 2])
def test_matches_definition_on_random_clouds(method, stride):
    rng = np.random.default_rng(10 + stride)
    for trial in range(6):
        kw = {}
        cloud = random_cloud(rng, int(rng.integers(1, 400)), int(rng.integers(2, 9)),
                             batches=1 + trial % 3, dims=3 + trial % 2)
        ks = 5 if trial == 5 else 3
        if trial == 4:
            cloud = random_cloud(rng, 200, 5, multiple=2)
            kw = dict(tensor_stride=2)
        out, maps = kernel_map(cloud, ks, stride, method=method, **kw)
        assert out.shape[1] == cloud.shape[1]
        assert_maps_equal(maps, brute_force_map(cloud, out, ks, kw.get("tensor_stride", 1)), f"trial {trial}")


@pytest.mark.parametrize("method", METHODS)
def test_tensor_strides_and_offsets_beyond_the_coordinate_range(method):
    # The sort builder searches only dz = 0 and steps by the tensor stride from there: kernel 5 at
    # tensor strides 3 and 4 steps twice each way. With coord_bits = 4 (coordinates -8 .. 7),
    # tensor stride 8 and kernel 5, offsets of +-8 still reach the other end of the range and
    # offsets of +-16 reach nothing.
    rng = np.random.default_rng(7)
    for ts, kw in ((3, {}), (4, {}), (8, dict(coord_bits=4, batch_bits=2))):
        span = 2 if ts == 8 else 6
        lo = -1 if ts == 8 else -span
        for trial in range(3):
            pts = rng.integers(lo, span if ts != 8 else 1, (300, 3)) * ts
            cloud = np.unique(np.concatenate([rng.integers(0, 2, (300, 1)), pts], 1), axis=0)
            for stride in (1, 2):
                if ts == 8 and stride == 2:
                    continue        # 16-voxel cells do not fit 4-bit coordinates
                out, maps = kernel_map(cloud, 5, stride, tensor_stride=ts, method=method, **kw)
                assert_maps_equal(maps, brute_force_map(cloud, out, 5, ts), f"ts {ts} stride {stride} trial {trial}")
                if ts == 8:
                    far = np.any(np.abs(kernel_offsets(5, 8)) > 15, axis=1)
                    assert all(len(m) == 0 for m, f in zip(maps, far, strict=True) if f) and far.any()
                    assert sum(len(m) for m in maps) > len(cloud)


def test_builders_agree_on_scenes():
    for kind, vs, kw in (("room", 0.1, dict(n_points=100_000)), ("lidar", 0.2, dict(n_azimuth=1024)),
                         ("mesh", 0.25, dict(n_points=100_000))):
        c = scenes.scene(kind, vs, seed=1, **kw)
        for stride in (1, 2):
            o1, m1 = kernel_map(c, stride=stride, method="sort")
            o2, m2 = kernel_map(c, stride=stride, method="hash")
            assert np.array_equal(o1, o2)
            assert_maps_equal(m1, m2, f"{kind} stride {stride}")
            assert sum(len(m) for m in m1) > 2 * len(o1)
    both = scenes.batch(scenes.scene("room", 0.2, seed=2), scenes.scene("room", 0.2, seed=3))
    assert_maps_equal(kernel_map(both, stride=2)[1], kernel_map(both, stride=2, method="hash")[1], "batched")


def test_map_properties():
    c = scenes.scene("room", 0.2, seed=4)
    out, maps = kernel_map(c)
    for k, m in enumerate(maps):
        assert np.all(np.diff(m[:, 1]) > 0), f"offset {k}: sorted by out_idx, one input per output"
        # Submanifold maps are symmetric: offset d from o to i is offset -d from i to o.
        mirror = maps[26 - k]
        assert np.array_equal(m[:, ::-1][np.lexsort(m.T)], mirror[np.lexsort(mirror[:, ::-1].T)])
    assert maps[13].tolist() == [[i, i] for i in range(len(c))]
    out2, maps2 = kernel_map(c, stride=2)
    assert np.array_equal(out2, output_coords(c, 2))
    # Every input reaches the output of its own 2x2x2 cell (offset c - floor(c / 2) * 2 in {0, 1}^3).
    assert len(np.unique(np.concatenate([m[:, 0] for m in maps2]))) == len(c)
    for k in (13, 14, 16, 17, 22, 23, 25, 26):
        i, o = maps2[k].T
        assert np.array_equal(out2[o] + kernel_offsets(3)[k], c[i])


def test_empty_cloud():
    out, maps = kernel_map(np.zeros((0, 3), dtype=np.int64))
    assert out.shape == (0, 3) and len(maps) == 27 and all(m.shape == (0, 2) for m in maps)
    out, maps = kernel_map(np.zeros((0, 4), dtype=np.int32), stride=2, method="hash")
    assert out.shape == (0, 4) and all(m.shape == (0, 2) for m in maps)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("method", METHODS)
def test_bad_input(method):
    ok = np.array([[0, 0, 0], [1, 2, 3]])
    with pytest.raises(ValueError, match=r"duplicate coordinates: rows 1 and 3 are both \[1, 2, 3\]"):
        kernel_map(np.array([[0, 0, 0], [1, 2, 3], [4, 4, 4], [1, 2, 3]]), method=method)
    with pytest.raises(ValueError, match=r"row 1: y = 40000 is outside the key range -32768 \.\. 32767"):
        kernel_map(np.array([[0, 0, 0], [1, 40000, 3]]), method=method)
    with pytest.raises(ValueError, match=r"row 0: z = -9 is outside the key range -8 \.\. 7"):
        kernel_map(np.array([[0, 0, -9]]), method=method, coord_bits=4)
    with pytest.raises(ValueError, match="batch index 256 is outside 0 .. 255"):
        kernel_map(np.array([[256, 0, 0, 0]]), method=method)
    with pytest.raises(ValueError, match="batch index -1"):
        kernel_map(np.array([[-1, 0, 0, 0]]), method=method)
    with pytest.raises(ValueError, match="integer array, got dtype float64"):
        kernel_map(ok.astype(float), method=method)
    with pytest.raises(ValueError, match="integer array"):
        kernel_map([["a", "b", "c"]], method=method)
    with pytest.raises(ValueError, match="integer array"):
        kernel_map(ok.astype(bool), method=method)
    for shape in [(5, 2), (5, 5), (3,), (2, 3, 3)]:
        with pytest.raises(ValueError, match=r"shape \(P, 3\) or \(P, 4"):
            kernel_map(np.zeros(shape, dtype=np.int64), method=method)
    for stride in (0, 3, -1, 1.5, True):
        with pytest.raises(ValueError, match="stride must be 1 or 2"):
            kernel_map(ok, stride=stride, method=method)
    for ks in (2, 4):
        with pytest.raises(ValueError, match="kernel_size must be odd"):
            kernel_map(ok, ks, method=method)
    for ks in (0, -3, 3.0):
        with pytest.raises(ValueError, match="kernel_size must be a positive integer"):
            kernel_map(ok, ks, method=method)
    with pytest.raises(ValueError, match=r"row 1: \[1, 2, 3\] is not a multiple of tensor_stride=2"):
        kernel_map(ok, tensor_stride=2, method=method)
    with pytest.raises(ValueError, match="method must be one of"):
        kernel_map(ok, method="bruteforce")


def test_hash_table():
    rng = np.random.default_rng(5)
    rows = np.unique(rng.integers(-50, 50, (5000, 4)), axis=0)
    t = CoordHashTable(rows, load=0.9)
    assert np.array_equal(t.lookup(rows), np.arange(len(rows)))
    miss = rows + 1000
    assert np.all(t.lookup(miss) == -1)
    assert t.max_probe > 0                          # a full table: collisions were resolved
    with pytest.raises(ValueError, match=r"duplicate rows 1 and 3: \[4, 5\]"):
        CoordHashTable(np.array([[1, 2], [4, 5], [7, 7], [4, 5]]))
    assert CoordHashTable(np.zeros((0, 4), dtype=np.int64)).lookup(rows).tolist() == [-1] * len(rows)
