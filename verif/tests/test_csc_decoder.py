# amaranth: UnusedElaboratable=no
"""CSC decoder (``pyhdl/eie/csc_decoder.py``) against the docs/spec.md §2 golden model, in Verilator.

Scenarios only; case construction and the cocotb scoreboard live in ``verif/tb/csc_decoder.py``.
"""

import numpy as np
import pytest

from pyhdl.eie.csc_decoder import CSCDecoder
from runtime import sim
from runtime.eie.host import decoder_words
from sw.pack import PEImage, pack_eie
from verif.tb.csc_decoder import MODULE, PARAMS, make_case
from verif.tb.csc_decoder import run as run_cases


@pytest.fixture(scope="session")
def model():
    return sim.build(CSCDecoder(**PARAMS))


def single_pe_cases(name, W, columns=None, **kw):
    """One case per back-pressure setting for a one-PE matrix ``W`` (all columns by default)."""
    p = pack_eie(W, 1)
    columns = list(range(W.shape[1])) if columns is None else columns
    return [make_case(f"{name} p_valid={pv} p_ready={pr}", p.pe[0], W.shape[1], p.local_rows, columns,
                      p_valid=pv, p_ready=pr, seed=s, **kw)
            for s, (pv, pr) in enumerate([(1.0, 1.0), (0.5, 1.0), (1.0, 0.4), (0.6, 0.6)])]


def run(model, cases, tmp_path):
    return run_cases(model, cases, tmp_path)


def spec_example():
    """docs/spec.md §2's worked example: [0,0,a,b, 18 zeros, c] stored as [a,b,0,c], rel [2,0,15,2]."""
    col = np.zeros(23, dtype=np.int64)
    col[[2, 3, 22]] = [7, 9, 15]
    return col


def test_spec_worked_example(model, tmp_path):
    W = spec_example()[:, None]
    p = pack_eie(W, 1)
    assert p.pe[0].rel_index.tolist() == [2, 0, 15, 2]
    assert p.pe[0].weight_idx.tolist() == [7, 9, 0, 15]
    run(model, single_pe_cases("spec example", W), tmp_path)


def test_empty_columns(model, tmp_path):
    rng = np.random.default_rng(1)
    W = np.zeros((40, 64), dtype=np.int64)
    for j in (3, 4, 20, 63):                      # a few non-empty columns among long empty stretches
        W[rng.choice(40, 5, replace=False), j] = rng.integers(1, 16, 5)
    cases = single_pe_cases("empty columns", W)
    cases += single_pe_cases("all columns empty", np.zeros((8, 16), dtype=np.int64))
    m = run(model, cases, tmp_path)
    assert m["entries"] == pack_eie(W, 1).n_entries      # only the first case is timed with entries


def test_pe_with_no_entries(model, tmp_path):
    W = np.zeros((16, 32), dtype=np.int64)
    W[0::4] = 3                                    # rows of PE 0 only; PEs 1..3 store nothing
    p = pack_eie(W, 4)
    assert p.pe[1].n_entries == 0
    cases = [make_case(f"PE {k} of 4", p.pe[k], 32, p.local_rows, list(range(32)), seed=k) for k in range(4)]
    run(model, cases, tmp_path)


@pytest.mark.parametrize("gap", [15, 16, 31, 32, 47, 62])
def test_zero_runs(model, tmp_path, gap):
    """Zero runs straddling the padding threshold; 62 zeros before row 63 (the maximum row)."""
    W = np.zeros((64, 3), dtype=np.int64)
    W[0, 0] = 5
    W[1 + gap, 0] = 6                           # zeros between two entries
    W[gap, 1] = 4                               # zeros above the first entry
    W[63, 2] = 15                               # the maximum local row
    p = pack_eie(W, 1)
    assert p.pe[0].n_padding == 2 * (gap // 16) + 63 // 16
    run(model, single_pe_cases(f"zero run {gap}", W), tmp_path)


def test_last_column_and_max_row(model, tmp_path):
    W = np.zeros((64, PARAMS["max_cols"]), dtype=np.int64)
    W[63, -1] = 15
    W[::7, -1] = 1
    W[0, 0] = 2
    cols = [PARAMS["max_cols"] - 1, 0, PARAMS["max_cols"] - 1]
    run(model, single_pe_cases("last column", W, columns=cols), tmp_path)


def test_repeated_and_unordered_columns(model, tmp_path):
    rng = np.random.default_rng(2)
    W = np.where(rng.random((30, 20)) < 0.3, rng.integers(1, 16, (30, 20)), 0)
    cols = [5, 5, 5, 19, 0, 3, 3, 12, 7, 7]
    run(model, single_pe_cases("repeated columns", W, columns=cols), tmp_path)


def test_out_of_range_column_sets_error(model, tmp_path):
    rng = np.random.default_rng(3)
    W = np.where(rng.random((20, 10)) < 0.5, rng.integers(1, 16, (20, 10)), 0)
    p = pack_eie(W, 1)
    cases = [make_case("column >= n_cols", p.pe[0], 10, p.local_rows, [0, 1, 10, 2, 200, 9], seed=4),
             make_case("n_cols limits columns", p.pe[0], 10, p.local_rows, [0, 5, 6], n_cols=6, seed=5),
             make_case("no error", p.pe[0], 10, p.local_rows, [0, 9], seed=6)]
    assert [c["exp_error"] for c in cases] == [1, 1, 0]
    run(model, cases, tmp_path)


def random_cases(seed, n):
    rng = np.random.default_rng(seed)
    cases = []
    for c in range(n):
        rows = int(rng.integers(1, PARAMS["max_local_rows"] + 1))
        cols = int(rng.integers(1, 65))         # <= 64 x 64 entries: fits max_entries
        density = float(rng.choice([0.01, 0.05, 0.1, 0.3, 0.7, 1.0]))
        W = np.where(rng.random((rows, cols)) < density, rng.integers(1, 16, (rows, cols)), 0)
        n_pe = int(rng.choice([1, 2, 4]))
        p = pack_eie(W, n_pe)
        k = int(rng.integers(n_pe))
        columns = rng.permutation(cols) if rng.random() < 0.3 else np.arange(cols)
        pv, pr = [(1.0, 1.0), (0.3, 1.0), (1.0, 0.3), (0.7, 0.5)][c % 4]
        cases.append(make_case(f"seed {seed} #{c}: {rows}x{cols} d={density} PE {k}/{n_pe}", p.pe[k], cols,
                               p.local_rows, columns, p_valid=pv, p_ready=pr, seed=seed * 100 + c))
    return cases


RANDOM_SEEDS, CASES_PER_SEED = range(8), 12


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_random_matrices(model, tmp_path, seed):
    cases = random_cases(seed, CASES_PER_SEED)
    assert sum(len(c["exp_row"]) for c in cases) > 0
    run(model, cases, tmp_path)


def test_random_total_entries():
    """The random regression covers at least 10^4 decoded entries (counted from the golden model)."""
    assert sum(len(c["exp_row"]) for s in RANDOM_SEEDS for c in random_cases(s, CASES_PER_SEED)) >= 10_000


def test_sustained_throughput(model, tmp_path):
    """Dense and sparse columns back to back: exactly one entry per cycle, no bubble between columns."""
    rng = np.random.default_rng(7)
    W = np.where(rng.random((64, 128)) < 0.5, rng.integers(1, 16, (64, 128)), 0)
    W[:, 10] = 0                                  # one empty column costs one cycle
    p = pack_eie(W, 1)
    case = make_case("throughput", p.pe[0], 128, p.local_rows, list(range(128)))
    m = run(model, [case], tmp_path)
    n = p.pe[0].n_entries
    assert m["entries"] == n
    assert m["cycles"] == n + 1 + CSCDecoder.LATENCY   # + the empty column + pipeline latency


def test_init_image(tmp_path):
    """Memories preloaded from an init image decode without any write through the load ports."""
    params = dict(max_cols=8, max_entries=32, max_local_rows=32)
    W = np.zeros((23, 8), dtype=np.int64)
    W[:, 1] = spec_example()
    W[[0, 5], 4] = [1, 2]
    p = pack_eie(W, 1)
    col_ptr, words = decoder_words(p.pe[0], 8, p.local_rows, **params)
    m = sim.build(CSCDecoder(**params, col_ptr=col_ptr.tolist(), entries=words.tolist()))
    case = make_case("init image", p.pe[0], 8, p.local_rows, list(range(8)), load=False, params=params)
    sim.run(m, MODULE, [case], testcase="decode_columns", test_dir=tmp_path)


def test_column_as_long_as_the_pointer_range(tmp_path):
    """A column of 64 entries when pointers are 7 bits (max_entries 80): its span count (end -
    start, signed) needs every bit; a count one or two bits short reads it as empty or short."""
    params = dict(max_cols=2, max_entries=80, max_local_rows=64)
    W = np.zeros((64, 2), dtype=np.int64)
    W[:, 0] = np.arange(64) % 15 + 1                         # 64 entries
    W[::7, 1] = 3                                             # 10 more
    p = pack_eie(W, 1)
    assert p.pe[0].n_entries == 74
    m = sim.build(CSCDecoder(**params))
    cases = [make_case("long column", p.pe[0], 2, 64, [0, 1, 0], params=params),
             make_case("long column, back-pressure", p.pe[0], 2, 64, [1, 0], params=params, p_ready=0.5, seed=4)]
    sim.run(m, MODULE, cases, testcase="decode_columns", test_dir=tmp_path)


def test_sizes_that_are_not_powers_of_two(tmp_path):
    """5 columns, 33 entries, 7 local rows, every one used and loaded through the ports: an address
    or row field one bit short loses the last of them, which power-of-two sizes hide."""
    params = dict(max_cols=5, max_entries=33, max_local_rows=7)
    W = np.zeros((7, 5), dtype=np.int64)
    W[:, :4] = np.arange(1, 29).reshape(7, 4) % 15 + 1       # 28 entries in columns 0..3
    W[[0, 2, 4, 5, 6], 4] = [3, 1, 4, 1, 5]                  # 5 more in the last column: 33
    p = pack_eie(W, 1)
    assert p.pe[0].n_entries == 33 and p.local_rows == 7
    m = sim.build(CSCDecoder(**params))
    cases = [make_case("all columns", p.pe[0], 5, 7, list(range(5)), params=params),
             make_case("last column", p.pe[0], 5, 7, [4], params=params, p_ready=0.5, seed=3)]
    sim.run(m, MODULE, cases, testcase="decode_columns", test_dir=tmp_path)


def test_bad_image_rejected_before_hardware():
    p = pack_eie(np.eye(4, dtype=np.int64), 1).pe[0]
    bad_ptr = PEImage(p.weight_idx, p.rel_index, np.array([0, 2, 1, 3, 4]))
    with pytest.raises(ValueError, match="not non-decreasing"):
        decoder_words(bad_ptr, 4, 4, **PARAMS)
    bad_sentinel = PEImage(p.weight_idx, p.rel_index, np.array([0, 1, 2, 3, 5]))
    with pytest.raises(ValueError, match="sentinel"):
        decoder_words(bad_sentinel, 4, 4, **PARAMS)
    with pytest.raises(ValueError, match="max_cols"):
        decoder_words(p, 4, 4, max_cols=2, max_entries=64, max_local_rows=64)
    with pytest.raises(ValueError, match="max_entries"):
        decoder_words(p, 4, 4, max_cols=8, max_entries=2, max_local_rows=64)


@pytest.mark.parametrize("kw, message", [
    (dict(col_ptr=list(range(10))), "col_ptr has 10 pointers; max_cols = 8 allows 9"),
    (dict(col_ptr=[0, 5, 40]), r"col_ptr\[2\] = 40 is outside 0..max_entries"),
    (dict(col_ptr=[0, 5, 3]), "not non-decreasing at index 2: 5 > 3"),
    (dict(col_ptr=[1, 5]), r"col_ptr\[0\] must be 0"),
    (dict(entries=[0] * 33), "33 entries; max_entries = 32"),
    (dict(entries=[0, 256]), "entry 1 = 256 is not an 8-bit word"),
    (dict(max_cols=0), "max_cols must be >= 1"),
    (dict(value_width=-1), "value_width must be >= 0"),
])
def test_constructor_rejects_bad_images(kw, message):
    with pytest.raises(ValueError, match=message):
        CSCDecoder(**{**dict(max_cols=8, max_entries=32, max_local_rows=8), **kw})


def test_full_size_images_are_accepted():
    d = CSCDecoder(max_cols=8, max_entries=32, max_local_rows=8, col_ptr=[0] * 8 + [32], entries=[255] * 32)
    assert len(d.col_ptr) == 9 and len(d.entries) == 32


def test_row_past_max_local_rows_sets_error(model, tmp_path):
    """A corrupt image (the host refuses it; loaded here without its checks) whose rows step past
    ``max_local_rows``: the entry still leaves, its row truncated, and ``error`` is set. The
    overflowing entry is its column's last, so the next column starts afresh (Case A)."""
    top = PARAMS["max_local_rows"]

    def case(name, rel_cols, error):
        rel = np.array([r for col in rel_cols for r in col], dtype=np.uint8)
        pe = PEImage(weight_idx=(1 + np.arange(len(rel)) % 15).astype(np.uint8), rel_index=rel,
                     col_ptr=np.cumsum([0] + [len(col) for col in rel_cols]).astype(np.int64))
        c = make_case(name, pe, len(rel_cols), top, list(range(len(rel_cols))), corrupt=True)
        assert c["exp_error"] == int(error) and (c["exp_row"] < top).all()
        return c

    run(model, [
        # 15, 31, 47, 63, then 63 + 1 + 15 = 79: the widest sum the row adder sees.
        case("row 79", [[3, 2], [15, 15, 15, 15, 15], [0, 4]], True),
        # 15, 31, 47, 63, 64: one past the last row.
        case("row 64", [[15, 15, 15, 15, 0], [1]], True),
        # 15, 31, 47, 63: the last row itself is in range.
        case("row 63", [[15, 15, 15, 15], [15, 15, 15, 15]], False),
    ], tmp_path)
