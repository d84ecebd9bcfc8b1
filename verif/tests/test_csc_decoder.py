"""CSC decoder (``pyhdl/eie/csc_decoder.py``) against the SPEC §2 golden model, in Verilator.

The pytest functions build cases (packed matrices, column streams, back-pressure settings and
the golden model's expected output), the cocotb test ``decode_columns`` drives them through the
RTL and checks every decoded entry, the sticky error flag and, without back-pressure, the cycle
on which each entry leaves.
"""

import cocotb
import numpy as np
import pytest
from cocotb.triggers import RisingEdge

from pyhdl.eie.csc_decoder import CSCDecoder
from sw.pack import PEImage, pack_eie
from verif.golden.csc import decode_stream
from verif.harness import bench, sim
from verif.harness.eie_images import decoder_words
from verif.harness.stream import StreamSink, StreamSource

PARAMS = dict(max_cols=256, max_entries=4096, max_local_rows=64)
MODULE = __name__


# ---------------------------------------------------------------- simulator side (cocotb)

@cocotb.test()
async def decode_columns(dut):
    cases = sim.load_case()
    period = bench.start_clock(dut)
    total_entries = total_cycles = 0
    for i, case in enumerate(cases):
        await RisingEdge(dut.clk)   # leave the previous case's read-only phase
        dut.error_clear.value = 0
        dut.ptr_load__en.value = 0
        dut.spmat_load__en.value = 0
        dut.cols__valid.value = 0
        dut.decoded__ready.value = 0
        await bench.reset(dut)
        if case["load"]:
            await bench.write_words(dut, "ptr_load", case["col_ptr"])
            await bench.write_words(dut, "spmat_load", case["entries"])
        dut.n_cols.value = int(case["n_cols"])
        await RisingEdge(dut.clk)
        assert dut.error.value == 0, f"case {i}: error set before any column"

        layout = CSCDecoder(**{k: int(case[k]) for k in PARAMS}).decoded.payload.shape()
        f = bench.fields(layout)
        seed = int(case["seed"])
        src = StreamSource(dut, "cols", dut.clk, period, p_valid=float(case["p_valid"]), seed=seed)
        sink = StreamSink(dut, "decoded", dut.clk, period, p_ready=float(case["p_ready"]), seed=seed + 1)
        src.send(case["columns"])
        expected = list(zip(case["exp_row"].tolist(), case["exp_widx"].tolist(),
                            case["exp_last"].tolist(), strict=True))
        budget = 200 + 8 * (int(np.sum(case["exp_slots"])) + len(case["columns"])) / min(
            float(case["p_valid"]), float(case["p_ready"]))
        cycles = 0
        while (not src.idle or len(sink.received) < len(expected)) and cycles < budget:
            await RisingEdge(dut.clk)
            cycles += 1
        await bench.settle(dut, CSCDecoder.LATENCY + 8)   # anything extra would show up now
        src.stop()
        sink.stop()

        got = [bench.unpack(v, f) for _, v in sink.received]
        got = [(g["local_row"], g["weight_idx"], bool(g["last"])) for g in got]
        for k, (g, e) in enumerate(zip(got, expected, strict=False)):  # lengths: below
            assert g == e, f"case {i} ({case['name']}): entry {k}: RTL {g}, golden {e}"
        assert len(got) == len(expected), (
            f"case {i} ({case['name']}): RTL emitted {len(got)} entries, golden {len(expected)}")
        assert int(dut.error.value) == int(case["exp_error"]), f"case {i}: error flag {dut.error.value}"

        if case["check_timing"] and expected:
            first_in = src.sent[0][0]
            slots = np.asarray(case["exp_slots"])
            col_start = np.concatenate([[0], np.cumsum(slots)[:-1]])
            want = []
            for c, j in enumerate(case["columns"]):
                if j < case["n_cols"]:
                    n = int(case["col_ptr"][j + 1] - case["col_ptr"][j])
                    want += [first_in + CSCDecoder.LATENCY + int(col_start[c]) + p for p in range(n)]
            edges = [t for t, _ in sink.received]
            for k, (t, w) in enumerate(zip(edges, want, strict=True)):
                assert t == w, f"case {i} ({case['name']}): entry {k} left on cycle {t - first_in}, " \
                               f"expected {w - first_in} after the first column"
            total_entries += len(expected)
            total_cycles += edges[-1] - first_in + 1

        if case["exp_error"]:
            await RisingEdge(dut.clk)
            dut.error_clear.value = 1
            await RisingEdge(dut.clk)
            dut.error_clear.value = 0
            await bench.settle(dut, 1)
            assert dut.error.value == 0, f"case {i}: error_clear did not clear the error"
    sim.report({"entries": total_entries, "cycles": total_cycles})


# ---------------------------------------------------------------- pytest side

@pytest.fixture(scope="session")
def model():
    return sim.build(CSCDecoder(**PARAMS))


def make_case(name, pe: PEImage, cols, local_rows, columns, *, n_cols=None, p_valid=1.0,
              p_ready=1.0, seed=0, load=True, params=PARAMS):
    col_ptr, words = decoder_words(pe, cols, local_rows, **params)
    n_cols = cols if n_cols is None else n_cols
    entries, slots, error = decode_stream(pe.col_ptr, pe.weight_idx, pe.rel_index, columns, n_cols)
    return dict(
        name=name, **params, col_ptr=col_ptr, entries=words, columns=np.asarray(columns, dtype=np.int64),
        n_cols=n_cols, p_valid=p_valid, p_ready=p_ready, seed=seed, load=load,
        # Dropped (out-of-range) columns cost a cycle only when the pipeline is not busy:
        # timing is checked on error-free streams without back-pressure.
        check_timing=(p_valid == 1.0 and p_ready == 1.0 and not error),
        exp_row=np.asarray([e[0] for e in entries], dtype=np.int64),
        exp_widx=np.asarray([e[1] for e in entries], dtype=np.int64),
        exp_last=np.asarray([e[2] for e in entries], dtype=np.int64),
        exp_slots=np.asarray(slots, dtype=np.int64), exp_error=int(error),
    )


def single_pe_cases(name, W, columns=None, **kw):
    """One case per back-pressure setting for a one-PE matrix ``W`` (all columns by default)."""
    p = pack_eie(W, 1)
    columns = list(range(W.shape[1])) if columns is None else columns
    return [make_case(f"{name} p_valid={pv} p_ready={pr}", p.pe[0], W.shape[1], p.local_rows, columns,
                      p_valid=pv, p_ready=pr, seed=s, **kw)
            for s, (pv, pr) in enumerate([(1.0, 1.0), (0.5, 1.0), (1.0, 0.4), (0.6, 0.6)])]


def run(model, cases, tmp_path):
    return sim.run(model, MODULE, cases, testcase="decode_columns", test_dir=tmp_path)


def spec_example():
    """SPEC §2's worked example: [0,0,a,b, 18 zeros, c] stored as [a,b,0,c], rel [2,0,15,2]."""
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
