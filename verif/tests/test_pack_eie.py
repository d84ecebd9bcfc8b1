"""``sw.pack``: docs/spec.md §2 packing, its inverse, bad input, memory images and ``sparsehw pack eie``."""

import re

import numpy as np
import pytest

from sw.cli import main
from sw.cyclemodel.eie import array_timing, layer_work
from sw.formats import MAX_REL_INDEX
from sw.pack import EIEPacked, PEImage, balanced_row_order, pack_eie, unpack_eie, validate_pe
from sw.pack.images import read_eie_images, read_memh, write_eie_images, write_eie_network
from verif.golden.csc import dense_column


def random_index_matrix(rng, rows, cols, density):
    return np.where(rng.random((rows, cols)) < density, rng.integers(1, 16, (rows, cols)), 0)


def skewed_index_matrix(rng, rows, cols, n_pe):
    """What real pruning leaves and the plain interleave handles worst: every ``n_pe``-th row
    dense (all in PE 0), some rows empty, and a dense corner (some columns dense in some rows)."""
    density = np.full(rows, 0.03)
    density[::n_pe] = 0.4
    density[1::n_pe * 4] = 0.0
    p = np.broadcast_to(density[:, None], (rows, cols)).copy()
    p[: rows // 4, : cols // 8] = 0.5
    return np.where(rng.random((rows, cols)) < p, rng.integers(1, 16, (rows, cols)), 0)


def test_spec_worked_example():
    col = np.zeros((23, 1), dtype=np.int64)
    col[[2, 3, 22], 0] = [4, 5, 6]
    pe = pack_eie(col, 1).pe[0]
    assert pe.weight_idx.tolist() == [4, 5, 0, 6]
    assert pe.rel_index.tolist() == [2, 0, 15, 2]
    assert pe.col_ptr.tolist() == [0, 4]


def test_interleaving_over_pes():
    w = np.arange(1, 13).reshape(6, 2) % 16       # rows 0..5, all nonzero
    p = pack_eie(w, 4)
    assert p.local_rows == 2
    # PE 1 holds rows 1 and 5: column 0 then column 1, both rows adjacent (rel 0).
    assert p.pe[1].weight_idx.tolist() == [w[1, 0], w[5, 0], w[1, 1], w[5, 1]]
    assert p.pe[1].rel_index.tolist() == [0, 0, 0, 0]
    assert p.pe[1].col_ptr.tolist() == [0, 2, 4]
    assert p.pe[3].col_ptr.tolist() == [0, 1, 2]    # PE 3 holds only row 3


@pytest.mark.parametrize("gap", [0, 1, 14, 15, 16, 17, 31, 32, 33, 47, 48, 200])
def test_zero_runs_and_padding(gap):
    rows = gap + 2
    w = np.zeros((rows, 1), dtype=np.int64)
    w[0, 0], w[gap + 1, 0] = 3, 7                  # `gap` zeros between two entries
    pe = pack_eie(w, 1).pe[0]
    n_pad = gap // (MAX_REL_INDEX + 1)
    assert pe.weight_idx.tolist() == [3] + [0] * n_pad + [7]
    assert pe.rel_index.tolist() == [0] + [MAX_REL_INDEX] * n_pad + [gap % (MAX_REL_INDEX + 1)]
    assert np.array_equal(unpack_eie(pack_eie(w, 1)), w)


def test_round_trip_random_and_against_golden_decoder():
    rng = np.random.default_rng(0)
    for t in range(300):
        rows, cols = rng.integers(1, 90, 2)
        n_pe = int(rng.integers(1, 10))
        w = random_index_matrix(rng, rows, cols, rng.choice([0.0, 0.01, 0.1, 0.5, 1.0]))
        p = pack_eie(w, n_pe)
        assert np.array_equal(unpack_eie(p), w), t
        assert sum(int(np.count_nonzero(pe.weight_idx)) for pe in p.pe) == np.count_nonzero(w)
        for k, pe in enumerate(p.pe):                 # the golden decoder sees the same matrix
            sub = w[k::n_pe]
            for j in range(cols):
                col = dense_column(pe.col_ptr, pe.weight_idx, pe.rel_index, j, p.local_rows)
                assert col[: sub.shape[0]] == sub[:, j].tolist()
                assert not any(col[sub.shape[0]:])


def test_float_matrix_with_codebook():
    cb = np.array([0.0, -1.5, 0.25, 3.0])
    idx = np.array([[0, 1, 2], [3, 0, 0]])
    w = cb[idx]
    p = pack_eie(w, 2, codebook=cb)
    assert np.array_equal(unpack_eie(p), idx)
    assert np.array_equal(p.weights(), w)
    assert p.codebook.shape == (16,)


def test_identity_codebook_for_index_matrices():
    w = np.array([[0, 5], [15, 1]])
    assert np.array_equal(pack_eie(w, 1).weights(), w)


@pytest.mark.parametrize("weights, kw, message", [
    (np.zeros(4, dtype=int), {}, "2-D"),
    (np.zeros((2, 2, 2), dtype=int), {}, "2-D"),
    (np.zeros((0, 3), dtype=int), {}, "empty shape"),
    (np.array([[1, 16]]), {}, r"16 at \(0, 1\) is outside 0..15"),
    (np.array([[1, -1]]), {}, "outside 0..15"),
    (np.array([[0.5, 0.0]]), {}, "needs a codebook"),
    (np.array([[0.5, 0.7]]), {"codebook": [0.0, 0.5]}, r"0.7 at \(0, 1\) is not a codebook value"),
    (np.array([[0.5]]), {"codebook": [1.0, 0.5]}, "entry 0 .* must be 0"),
    (np.array([[0.5]]), {"codebook": [0.0, 0.5, 0.5]}, "duplicate"),
    (np.array([[0.5]]), {"codebook": np.zeros(17)}, "1..16 entries"),
    (np.array([[True]]), {}, "dtype bool"),
    (np.array([[np.nan]]), {"codebook": [0.0, 1.0]}, "non-finite"),
])
def test_bad_input(weights, kw, message):
    with pytest.raises(ValueError, match=message):
        pack_eie(weights, 2, **kw)


@pytest.mark.parametrize("n_pe", [0, -1, 1.5, True])
def test_bad_n_pe(n_pe):
    with pytest.raises(ValueError, match="n_pe"):
        pack_eie(np.eye(2, dtype=int), n_pe)


def test_validate_pe_rejects_corrupt_images():
    pe = pack_eie(np.eye(4, dtype=int), 1).pe[0]
    with pytest.raises(ValueError, match="non-decreasing"):
        validate_pe(PEImage(pe.weight_idx, pe.rel_index, np.array([0, 2, 1, 3, 4])), 4, 4)
    with pytest.raises(ValueError, match="sentinel"):
        validate_pe(PEImage(pe.weight_idx, pe.rel_index, np.array([0, 1, 2, 3, 3])), 4, 4)
    with pytest.raises(ValueError, match="cols \\+ 1"):
        validate_pe(pe, 5, 4)
    with pytest.raises(ValueError, match="col_ptr\\[0\\]"):
        validate_pe(PEImage(pe.weight_idx, pe.rel_index, np.array([1, 1, 2, 3, 4])), 4, 4)
    with pytest.raises(ValueError, match="beyond the 2 local rows"):
        validate_pe(pe, 4, 2)
    with pytest.raises(ValueError, match="4-bit"):
        validate_pe(PEImage(pe.weight_idx, pe.rel_index + 15, pe.col_ptr), 4, 64)


def test_images_round_trip_and_hex_format(tmp_path):
    rng = np.random.default_rng(1)
    w = random_index_matrix(rng, 37, 21, 0.2)
    w[:, 3] = 0
    p = pack_eie(w, 4)
    write_eie_images(p, tmp_path, shift=3, relu=False)
    q, shift, relu = read_eie_images(tmp_path)
    assert (shift, relu) == (3, False)
    assert np.array_equal(unpack_eie(q), w)
    for k, pe in enumerate(p.pe):
        words = read_memh(tmp_path / f"spmat_pe{k}.hex")
        assert np.array_equal(words >> 4, pe.weight_idx) and np.array_equal(words & 15, pe.rel_index)
        assert np.array_equal(read_memh(tmp_path / f"colptr_pe{k}.hex"), pe.col_ptr)
        lines = (tmp_path / f"spmat_pe{k}.hex").read_text().splitlines()
        assert all(len(x) == 2 for x in lines) and len(lines) == pe.n_entries
    assert read_memh(tmp_path / "codebook.hex").tolist() == list(range(16))


def test_images_refuse_to_overwrite(tmp_path):
    p = pack_eie(np.eye(3, dtype=int), 1)
    write_eie_images(p, tmp_path)
    with pytest.raises(FileExistsError, match="force"):
        write_eie_images(p, tmp_path)
    write_eie_images(p, tmp_path, force=True)


def test_negative_codebook_hex_is_twos_complement(tmp_path):
    cb = np.array([0, -1, -32768, 32767])
    p = pack_eie(cb[None, 1:], 1, codebook=cb)            # with a codebook, W holds values
    write_eie_images(p, tmp_path)
    assert read_memh(tmp_path / "codebook.hex")[:4].tolist() == [0, 0xFFFF, 0x8000, 0x7FFF]


def test_corrupt_images_rejected(tmp_path):
    p = pack_eie(np.eye(4, dtype=int), 2)
    write_eie_images(p, tmp_path)
    (tmp_path / "colptr_pe1.hex").write_text("0\n2\n1\n2\n2\n")
    with pytest.raises(ValueError, match="colptr_pe1.hex disagrees"):
        read_eie_images(tmp_path)
    bad = EIEPacked(4, 4, 2, p.codebook, (p.pe[0], PEImage(p.pe[1].weight_idx, p.pe[1].rel_index,
                                                            np.array([0, 0, 2, 1, 2]))))
    write_eie_images(bad, tmp_path / "b")
    with pytest.raises(ValueError, match="PE 1: col_ptr is not non-decreasing"):
        read_eie_images(tmp_path / "b")


def test_cli_pack_eie(tmp_path, capsys):
    rng = np.random.default_rng(2)
    cb = np.array([0.0, -0.5, 0.5, 1.0])
    w = cb[rng.integers(0, 4, (20, 30))]
    np.save(tmp_path / "W.npy", w)
    np.save(tmp_path / "cb.npy", cb)
    out = tmp_path / "img"
    assert main(["pack", "eie", "--weights", str(tmp_path / "W.npy"), "--n-pe", "4",
                 "--codebook", str(tmp_path / "cb.npy"), "--out", str(out)]) == 0
    assert "for 4 PEs" in capsys.readouterr().out
    q, _, relu = read_eie_images(out)
    assert np.array_equal(q.weights(), w) and relu
    assert not (out / "codebook.hex").exists()        # real-valued codebook: no hardware image
    assert main(["pack", "eie", "--weights", str(tmp_path / "W.npy"), "--n-pe", "4",
                 "--codebook", "0,-0.5,0.5,1", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


def test_cli_pack_eie_errors_name_the_file(tmp_path, capsys):
    np.save(tmp_path / "W.npy", np.array([[1, 99]]))
    assert main(["pack", "eie", "--weights", str(tmp_path / "W.npy"), "--n-pe", "1",
                 "--out", str(tmp_path / "o")]) == 2
    assert re.match(r"sparsehw pack eie: error: --weights \S*W.npy: weight index 99", capsys.readouterr().err)
    assert main(["pack", "eie", "--weights", str(tmp_path / "nope.npy"), "--n-pe", "1",
                 "--out", str(tmp_path / "o")]) == 2
    assert re.match(r"sparsehw pack eie: error: --weights \S*nope.npy: no such file", capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- row order (docs/spec.md §2.7a)

def check_reordered(w, p):
    """``p`` packs ``w`` in its ``row_order``: the stored matrix is ``w[row_order]`` under the plain
    interleave, every view of it gives ``w`` back in the original order."""
    order = np.arange(w.shape[0]) if p.row_order is None else p.row_order
    assert sorted(order.tolist()) == list(range(w.shape[0]))
    assert np.array_equal(unpack_eie(p), w)
    assert np.array_equal(p.weights(), w)
    stored = unpack_eie(p, stored=True)
    assert np.array_equal(stored, w[order])
    plain = pack_eie(w[order], p.n_pe)                    # the hardware format does not change
    for a, b in zip(p.pe, plain.pe, strict=True):
        assert np.array_equal(a.weight_idx, b.weight_idx) and np.array_equal(a.rel_index, b.rel_index)
        assert np.array_equal(a.col_ptr, b.col_ptr)
    x = np.arange(1, w.shape[1] + 1)
    y_hw = stored.astype(np.int64) @ x                    # what the hardware computes, in stored order
    assert np.array_equal(p.to_original(y_hw), w.astype(np.int64) @ x)
    assert np.array_equal(p.to_stored(w.astype(np.int64) @ x), y_hw)
    batch = np.stack([y_hw, 2 * y_hw])                    # the last axis is the output axis
    assert np.array_equal(p.to_original(batch)[1], 2 * (w.astype(np.int64) @ x))


@pytest.mark.parametrize("rows, cols, n_pe", [(64, 40, 8), (61, 33, 8), (5, 9, 8), (30, 17, 1), (1, 1, 3)])
def test_balance_round_trips(rows, cols, n_pe):
    rng = np.random.default_rng(rows * 100 + n_pe)
    for w in (random_index_matrix(rng, rows, cols, 0.2), skewed_index_matrix(rng, rows, cols, n_pe),
              np.zeros((rows, cols), dtype=np.int64)):
        p = pack_eie(w, n_pe, balance=True)
        check_reordered(w, p)
        assert p.local_rows == -(-rows // n_pe)
        if n_pe == 1 or not w.any():
            assert p.row_order is None and not p.reordered       # nothing to balance
    w = random_index_matrix(rng, rows, cols, 0.3)
    check_reordered(w, pack_eie(w, n_pe, row_order=np.arange(rows)[::-1]))


def test_balance_with_a_codebook_and_golden_decoder():
    rng = np.random.default_rng(4)
    cb = np.array([0.0, -1.5, 0.25, 3.0])
    w = cb[skewed_index_matrix(rng, 45, 20, 4) % 4]
    p = pack_eie(w, 4, codebook=cb, balance=True)
    assert p.reordered and np.array_equal(p.weights(), w)
    stored = unpack_eie(p, stored=True)
    for k, pe in enumerate(p.pe):                        # the golden decoder sees the stored rows
        for j in range(w.shape[1]):
            col = dense_column(pe.col_ptr, pe.weight_idx, pe.rel_index, j, p.local_rows)
            assert col[: stored[k::4].shape[0]] == stored[k::4, j].tolist()


def test_balanced_order_is_deterministic_and_keeps_the_interleave_shares():
    rng = np.random.default_rng(5)
    w = skewed_index_matrix(rng, 203, 64, 16)
    a, b = balanced_row_order(w, 16), balanced_row_order(w.copy(), 16)
    assert np.array_equal(a, b)
    # Every row slot the interleave gives is used once; empty rows fill slots, no PE gets more.
    assert sorted(a.tolist()) == list(range(203))
    assert np.array_equal(balanced_row_order(w != 0, 16), a)    # only the positions matter


@pytest.mark.parametrize("rows, cols, n_pe", [(250, 96, 8), (203, 64, 16)])
def test_balance_evens_out_entries_per_pe_and_per_column(rows, cols, n_pe):
    rng = np.random.default_rng(3)
    w = skewed_index_matrix(rng, rows, cols, n_pe)
    plain, bal = pack_eie(w, n_pe), pack_eie(w, n_pe, balance=True)

    def per_pe(p):
        return np.array([np.count_nonzero(pe.weight_idx) for pe in p.pe])

    def per_pe_col(p):
        return np.stack([np.diff(pe.col_ptr) for pe in p.pe])

    mean = np.count_nonzero(w) / n_pe
    assert per_pe(plain).max() > 3 * mean                        # the skew is real
    assert per_pe(bal).max() <= per_pe(plain).max()
    assert np.abs(per_pe(bal) - mean).max() <= 0.1 * mean                  # near the mean, both ways
    assert (per_pe_col(bal) ** 2).sum() < 0.5 * (per_pe_col(plain) ** 2).sum()    # columns spread too


def test_balance_improves_the_cycle_model_efficiency():
    rng = np.random.default_rng(6)
    rows, cols, n_pe = 250, 96, 8
    w = skewed_index_matrix(rng, rows, cols, n_pe)
    x = rng.integers(1, 50, cols)
    x[rng.random(cols) < 0.3] = 0

    def timing(p):
        t = array_timing(*layer_work(p, x), cols, queue_depth=8, lnzd_width=8)
        starved = np.asarray(t.counters())[:, 1]
        return t.cycles, float(np.mean(1 - starved / t.cycles))

    (c0, e0), (c1, e1) = timing(pack_eie(w, n_pe)), timing(pack_eie(w, n_pe, balance=True))
    assert e1 > 0.85 and e1 > e0 + 0.3
    assert c1 < 0.5 * c0


@pytest.mark.parametrize("kw, message", [
    (dict(row_order=[0, 1, 2]), r"1-D with rows = 4 entries, got shape \(3,\)"),
    (dict(row_order=[[0, 1, 2, 3]]), "1-D"),
    (dict(row_order=[0, 1, 2, 4]), r"row_order\[3\] = 4 is outside 0..3"),
    (dict(row_order=[0, -1, 2, 3]), "outside 0..3"),
    (dict(row_order=[0, 2, 2, 3]), "not a permutation of range\\(4\\): row 2 appears at positions 1 and 2"),
    (dict(row_order=[0.0, 1.0, 2.0, 3.0]), "integers"),
    (dict(row_order=[0, 1, 2, 3], balance=True), "not both"),
    (dict(balance="yes"), "balance must be True or False"),
])
def test_bad_row_order(kw, message):
    with pytest.raises(ValueError, match=message):
        pack_eie(np.eye(4, dtype=int), 2, **kw)


def test_to_original_checks_the_output_length():
    p = pack_eie(skewed_index_matrix(np.random.default_rng(0), 16, 8, 4), 4, balance=True)
    with pytest.raises(ValueError, match="rows = 16 values"):
        p.to_original(np.zeros(20))
    with pytest.raises(ValueError, match="rows = 16 values"):
        p.to_stored(np.int64(3))


def test_images_store_the_row_order_only_when_it_is_not_the_identity(tmp_path):
    rng = np.random.default_rng(7)
    w = skewed_index_matrix(rng, 37, 21, 4)
    bal, plain = pack_eie(w, 4, balance=True), pack_eie(w, 4)
    write_eie_images(bal, tmp_path / "b", shift=2)
    write_eie_images(plain, tmp_path / "p")
    write_eie_images(pack_eie(w, 4, row_order=np.arange(37)), tmp_path / "i")
    assert "row_order" in np.load(tmp_path / "b" / "eie.npz").files
    assert "row_order" not in np.load(tmp_path / "p" / "eie.npz").files
    assert "row_order" not in np.load(tmp_path / "i" / "eie.npz").files
    q, shift, _ = read_eie_images(tmp_path / "b")
    assert shift == 2 and np.array_equal(q.row_order, bal.row_order) and np.array_equal(unpack_eie(q), w)
    assert read_eie_images(tmp_path / "p")[0].row_order is None
    for k, pe in enumerate(bal.pe):                       # the hex files hold the stored order
        words = read_memh(tmp_path / "b" / f"spmat_pe{k}.hex")
        assert np.array_equal(words >> 4, pe.weight_idx) and np.array_equal(words & 15, pe.rel_index)
    dirs = write_eie_network([("fc1", bal, 0, True), ("fc2", plain, 1, False)], tmp_path / "net")
    assert np.array_equal(read_eie_images(dirs[0])[0].row_order, bal.row_order)
    assert read_eie_images(dirs[1])[0].row_order is None


@pytest.mark.parametrize("bad, message", [
    (lambda o: o[:-1], "1-D with rows = 37 entries"),
    (lambda o: np.where(o == 5, 6, o), "not a permutation of range\\(37\\): row 6 appears"),
    (lambda o: o + 1, "is outside 0..36"),
    (lambda o: o.astype(float), "integers"),
])
def test_images_refuse_a_bad_row_order(tmp_path, bad, message):
    p = pack_eie(skewed_index_matrix(np.random.default_rng(7), 37, 21, 4), 4, balance=True)
    write_eie_images(p, tmp_path)
    npz = tmp_path / "eie.npz"
    arrays = dict(np.load(npz))
    arrays["row_order"] = bad(arrays["row_order"])
    np.savez(npz, **arrays)
    with pytest.raises(ValueError, match=re.escape(str(npz)) + ": row_order.*" + message):
        read_eie_images(tmp_path)


def test_cli_pack_eie_balance(tmp_path, capsys):
    rng = np.random.default_rng(8)
    w = skewed_index_matrix(rng, 96, 40, 8)
    np.save(tmp_path / "W.npy", w)
    args = ["pack", "eie", "--weights", str(tmp_path / "W.npy"), "--n-pe", "8"]
    assert main(args + ["--out", str(tmp_path / "plain")]) == 0
    plain_out = capsys.readouterr().out
    assert main(args + ["--balance", "--out", str(tmp_path / "bal")]) == 0
    out = capsys.readouterr().out
    assert "balanced order" in out and "to_original" in out
    q, _, _ = read_eie_images(tmp_path / "bal")
    assert q.reordered and np.array_equal(unpack_eie(q), w)

    def max_per_pe(text):
        return int(re.search(r"entries per PE: min \d+, max (\d+)", text).group(1))
    assert max_per_pe(out) < max_per_pe(plain_out)
