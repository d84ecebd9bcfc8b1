"""docs/spec.md §4 in software: N:M masks, ``pack_24``/``unpack_24``, the int8 check and bad input."""

import numpy as np
import pytest

from sw.formats import META_FILL_24
from sw.pack import check_24, check_int8, check_meta, mask_24, mask_nm, pack_24, unpack_24
from verif.golden import sparse24 as golden


def reference_mask(w, n, m):
    """Plain Python: per group, positions sorted by (-|w|, position), the first n kept."""
    out = np.zeros(w.shape, dtype=bool)
    flat, mask = w.reshape(-1, m), out.reshape(-1, m)
    for g in range(flat.shape[0]):
        order = sorted(range(m), key=lambda p: (-abs(int(flat[g, p])), p))
        mask[g, order[:n]] = True
    return out


def random_24(rng, rows, k, p_drop=0.3, dtype=np.int64):
    w = rng.integers(-128, 128, (rows, k))
    w = np.where(mask_24(rng.random((rows, k))), w, 0)
    return np.where(rng.random((rows, k)) < p_drop, 0, w).astype(dtype)


# ---------------------------------------------------------------- masks

@pytest.mark.parametrize("n,m", [(1, 4), (2, 4), (2, 8), (4, 8), (1, 2), (3, 3)])
def test_mask_nm_matches_reference(n, m):
    rng = np.random.default_rng(n * 10 + m)
    w = rng.integers(-4, 5, (13, 8 * m))          # few distinct values: many ties
    mask = mask_nm(w, n, m)
    assert mask.dtype == bool and mask.shape == w.shape
    assert (mask.reshape(-1, m).sum(axis=1) == n).all()
    assert np.array_equal(mask, reference_mask(w, n, m))


def test_mask_nm_keeps_the_largest_magnitudes():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(50, 64)).astype(np.float32)
    for n, m in [(1, 4), (2, 4), (2, 8), (4, 8)]:
        mask = mask_nm(w, n, m).reshape(-1, m)
        mag = np.abs(w).reshape(-1, m)
        kept_min = np.where(mask, mag, np.inf).min(axis=1)
        dropped_max = np.where(mask, -np.inf, mag).max(axis=1)
        assert (kept_min >= dropped_max).all()


def test_mask_ties_go_to_the_lower_index():
    assert mask_24(np.array([[1, 1, 1, 1]])).tolist() == [[True, True, False, False]]
    assert mask_24(np.array([[0, 0, 0, 0]])).tolist() == [[True, True, False, False]]
    assert mask_24(np.array([[2, -3, 3, -2]])).tolist() == [[False, True, True, False]]
    assert mask_24(np.array([[0, 5, 0, -5]])).tolist() == [[False, True, False, True]]
    assert mask_nm(np.array([[7, 7, 7, 7, 7, 7, 7, 7]]), 4, 8).tolist() == [[True] * 4 + [False] * 4]


def test_mask_magnitude_of_extreme_integers():
    """``|int8(-128)|`` is 128 (no wrap to -128), likewise for int64's minimum."""
    w8 = np.array([[-128, 127, 1, -1]], dtype=np.int8)
    assert mask_nm(w8, 1, 4).tolist() == [[True, False, False, False]]
    w64 = np.array([[1, np.iinfo(np.int64).min, np.iinfo(np.int64).max, 0]], dtype=np.int64)
    assert mask_nm(w64, 1, 4).tolist() == [[False, True, False, False]]
    wu = np.array([[3, 250, 255, 0]], dtype=np.uint8)
    assert mask_24(wu).tolist() == [[False, True, True, False]]


def test_mask_along_the_last_axis_of_any_rank():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(3, 5, 16))
    assert np.array_equal(mask_24(w), mask_24(w.reshape(15, 16)).reshape(3, 5, 16))
    assert mask_24(np.arange(8.0)).tolist() == [False, False, True, True] * 2


def test_mask_bad_input():
    with pytest.raises(ValueError, match="multiple of m=4"):
        mask_24(np.ones((2, 6)))
    with pytest.raises(ValueError, match="1 <= n <= m"):
        mask_nm(np.ones((2, 8)), 5, 4)
    with pytest.raises(ValueError, match="1 <= n <= m"):
        mask_nm(np.ones((2, 8)), 0, 4)
    with pytest.raises(ValueError, match="n must be an integer"):
        mask_nm(np.ones((2, 8)), 2.0, 4)
    with pytest.raises(ValueError, match="non-finite"):
        mask_24(np.array([[1.0, np.nan, 0, 0]]))
    with pytest.raises(ValueError, match="dtype bool"):
        mask_24(np.ones((1, 4), dtype=bool))
    with pytest.raises(ValueError, match="at least one axis"):
        mask_24(np.float64(3))


# ---------------------------------------------------------------- packing

def test_spec_worked_example():
    """docs/spec.md §4: ``[0,0,0,5]`` packs as values ``[0,5]``, meta ``2 | 3 << 2``."""
    values, meta = pack_24(np.array([[0, 0, 0, 5]]))
    assert values.tolist() == [[0, 5]] and meta.tolist() == [[2 | 3 << 2]]


def test_groups_with_fewer_than_two_nonzeros():
    """docs/spec.md §4's table: 0000→(2,3), 1000→(0,2), 0100→(1,2), 0010→(2,3), 0001→(2,3)."""
    table = {"0000": (2, 3), "1000": (0, 2), "0100": (1, 2), "0010": (2, 3), "0001": (2, 3)}
    assert {tuple(i for i, c in enumerate(p) if c == "1"): v for p, v in table.items()} == META_FILL_24
    for pattern, (i0, i1) in table.items():
        group = np.array([[9 if c == "1" else 0 for c in pattern]])
        values, meta = pack_24(group)
        assert meta.tolist() == [[i0 | i1 << 2]], pattern
        assert values.tolist() == [[group[0, i0], group[0, i1]]], pattern
        assert np.array_equal(unpack_24(values, meta), group)


def test_every_two_nonzero_pattern():
    for i0, i1 in golden.META_PATTERNS:
        group = np.zeros((1, 4), dtype=np.int64)
        group[0, [i0, i1]] = [-3, 7]
        values, meta = pack_24(group)
        assert values.tolist() == [[-3, 7]] and meta.tolist() == [[i0 | i1 << 2]]


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int64, np.float16, np.float32, np.float64])
def test_round_trip(dtype):
    rng = np.random.default_rng(3)
    for rows, k in [(1, 4), (7, 16), (64, 256), (3, 1024)]:
        w = random_24(rng, rows, k, p_drop=float(rng.choice([0.0, 0.3, 0.8])), dtype=dtype)
        values, meta = pack_24(w)
        assert values.shape == (rows, k // 2) and meta.shape == (rows, k // 4)
        assert values.dtype == w.dtype and meta.dtype == np.uint8
        back = unpack_24(values, meta)
        assert back.dtype == w.dtype and np.array_equal(back, w)
        again = pack_24(back)
        assert np.array_equal(again.values, values) and np.array_equal(again.meta, meta)


def test_pack_matches_the_golden_model():
    rng = np.random.default_rng(4)
    w = random_24(rng, 40, 64, p_drop=0.5)
    values, meta = pack_24(w)
    g_values, g_meta = golden.pack_matrix(w.tolist())
    assert values.tolist() == g_values and meta.tolist() == g_meta
    assert [golden.unpack_row(v, m) for v, m in zip(g_values, g_meta, strict=True)] == w.tolist()


def test_masked_weights_pack():
    rng = np.random.default_rng(5)
    w = rng.normal(size=(16, 32))
    pruned = np.where(mask_24(w), w, 0)
    assert np.array_equal(unpack_24(*pack_24(pruned)), pruned)


def test_pack_rejects_a_third_nonzero_naming_row_and_group():
    w = np.zeros((5, 24), dtype=np.int64)
    w[3, 20:23] = [1, 2, 3]
    msg = r"row 3, group 5 \(columns 20..23\) holds 3 nonzeros \[1, 2, 3, 0\]"
    with pytest.raises(ValueError, match=msg):
        pack_24(w)
    w[1, 0:4] = [1, 1, 1, 1]                       # the first offending group is reported
    with pytest.raises(ValueError, match="row 1, group 0"):
        check_24(w)


def test_pack_bad_input():
    with pytest.raises(ValueError, match="K = 6 is not a multiple of 4"):
        pack_24(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="2-D"):
        pack_24(np.zeros(8))
    with pytest.raises(ValueError, match="empty"):
        pack_24(np.zeros((0, 8)))
    with pytest.raises(ValueError, match="non-finite value at \\(1, 2\\)"):
        pack_24(np.array([[0, 0, 0, 0], [0, 0, np.inf, 0]]))
    with pytest.raises(ValueError, match="dtype"):
        pack_24(np.array([["a", "b", "c", "d"]]))


def test_unpack_bad_metadata():
    values = np.zeros((2, 4), dtype=np.int8)
    for bad, what in [(1 | 1 << 2, "i0=1, i1=1"), (3 | 0 << 2, "i0=3, i1=0"), (2 | 1 << 2, "i0=2, i1=1")]:
        meta = np.array([[4, 4], [4, bad]])
        with pytest.raises(ValueError, match=f"row 1, group 1\\) names positions {what}"):
            unpack_24(values, meta)
    with pytest.raises(ValueError, match="not a 4-bit field"):
        unpack_24(values, np.array([[4, 16], [4, 4]]))
    with pytest.raises(ValueError, match="not a 4-bit field"):
        check_meta(np.array([[-1]]))
    with pytest.raises(ValueError, match="not an integer"):
        check_meta(np.array([[4.5]]))
    with pytest.raises(ValueError, match=r"values has shape \(2, 3\)"):
        unpack_24(np.zeros((2, 3)), np.array([[4, 4], [4, 4]]))
    with pytest.raises(ValueError, match="meta must be a 2-D"):
        unpack_24(values, np.array([4, 4]))


def test_check_int8():
    assert check_int8(np.array([[-128, 127], [0, 5]])).dtype == np.int8
    assert check_int8(np.array([[-128.0, 3.0]])).tolist() == [[-128, 3]]
    with pytest.raises(ValueError, match=r"weights\[1, 0\] = 128 is outside int8 -128..127"):
        check_int8(np.array([[0, 1], [128, 0]]))
    with pytest.raises(ValueError, match=r"weights\[0, 1\] = -129"):
        check_int8(np.array([[0, -129]]))
    with pytest.raises(ValueError, match=r"acts\[2\] = 0.5 is not an integer"):
        check_int8(np.array([1.0, 2.0, 0.5]), "acts")
    with pytest.raises(ValueError, match="non-finite"):
        check_int8(np.array([np.nan]))
