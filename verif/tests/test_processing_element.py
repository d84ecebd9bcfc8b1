# amaranth: UnusedElaboratable=no
"""The EIE processing element (``pyhdl/eie/processing_element.py``) in Verilator.

Every case checks the read-out outputs bit-exactly against the golden model (docs/spec.md) and the timing
(queue push cycles, the cycle the PE goes idle, busy/starved/stalled counters) against the
exact cycle model ``sw.cyclemodel.eie``; see ``verif/tb/processing_element.py``.
"""

import numpy as np
import pytest

from pyhdl.eie.arithmetic_unit import ArithmeticUnit
from pyhdl.eie.processing_element import ProcessingElement, min_acc_width
from runtime import sim
from sw.cyclemodel.eie import ISSUE_TO_MAC, MAC_TO_WRITEBACK, POINTER_LATENCY, QUEUE_LATENCY, pe_timing
from sw.pack import pack_eie
from verif.tb.processing_element import PARAMS, make_case
from verif.tb.processing_element import run as run_cases

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


@pytest.fixture(scope="session")
def model():
    return sim.build(ProcessingElement(**PARAMS))


def one_pe(w_values, codebook, acts, name, **kw):
    """Pack ``w_values`` (entries drawn from ``codebook``) for one PE and build a case."""
    p = pack_eie(np.asarray(w_values), 1, codebook=np.asarray(codebook))
    return make_case(name, p.pe[0], p.codebook[: len(codebook)], p.cols, p.local_rows, acts, **kw)


def dense_acts(cols, rng, lo=INT16_MIN, hi=INT16_MAX, density=1.0):
    return [(j, int(rng.integers(lo, hi + 1))) for j in range(cols) if rng.random() < density]


CB = [0, 3, -5, 7, 100, -1000, 32767, -32768, 1, -1, 2, -2, 12345, -12345, 42, -7]
# Codebook values small enough that sums of small activations never saturate the int16 output, so
# a single lost or doubled product changes the result.
SMALL = [v for v in CB[1:] if abs(v) <= 7]


def test_one_entry_columns_and_empty_column(model, tmp_path):
    w = np.zeros((10, 6), dtype=np.int64)
    w[4, 0], w[9, 2], w[0, 5] = 3, -5, 7           # columns 1, 3, 4 empty
    acts = [(0, 11), (1, 99), (2, -4), (3, 1), (4, 5), (5, -2)]
    run_cases(model, [one_pe(w, CB, acts, "one-entry columns", relu=False)], tmp_path)


def test_bypass_same_row_back_to_back(model, tmp_path):
    """Every MAC hits row 3: each needs the sum the previous cycle wrote (the bypass)."""
    rng = np.random.default_rng(1)
    w = np.zeros((8, 40), dtype=np.int64)
    w[3] = rng.choice(SMALL, 40)
    acts = dense_acts(40, rng, -100, 100)
    cases = [one_pe(w, CB, acts, "same row", relu=False),
             one_pe(w, CB, acts, "same row, sparse input", relu=False, p_valid=0.5, seed=3)]
    # Alternating rows: same-row hits two apart must read the written-back value.
    w2 = np.zeros((8, 40), dtype=np.int64)
    w2[2, 0::2] = 7
    w2[5, 1::2] = -5
    w2[2, 1::2] = 3
    cases.append(one_pe(w2, CB, dense_acts(40, rng, -100, 100), "alternating rows", relu=False))
    run_cases(model, cases, tmp_path)


def test_same_row_at_every_distance(model, tmp_path):
    """A column of ``d`` entries in rows ``0 .. d - 1``, every column active and back to back: each
    row is hit again exactly ``d`` entries later, for every distance the accumulate pipeline has in
    flight (``1 .. MAC_TO_WRITEBACK + 1``) and two beyond."""
    rng = np.random.default_rng(7)
    cases = []
    for d in range(1, MAC_TO_WRITEBACK + 4):
        w = np.zeros((8, 24), dtype=np.int64)
        w[:d] = rng.choice(SMALL, (d, 24))
        cases.append(one_pe(w, CB, dense_acts(24, rng, -100, 100), f"same row every {d} entries", relu=False))
    run_cases(model, cases, tmp_path)


def test_padding_entries(model, tmp_path):
    w = np.zeros((64, 4), dtype=np.int64)
    w[[0, 17, 63], 0] = [3, 7, -5]                  # zero runs of 16 and 45
    w[63, 1] = 100                                  # 63 zeros above
    w[[15, 31, 47], 2] = 1
    rng = np.random.default_rng(2)
    run_cases(model, [one_pe(w, CB, dense_acts(4, rng, -100, 100), "padding", relu=False)], tmp_path)


def test_extremes_and_saturation(model, tmp_path):
    """-32768 x -32768 over all 256 columns: the largest sum the accumulator must hold."""
    cols = PARAMS["max_cols"]
    w = np.zeros((4, cols), dtype=np.int64)
    w[0] = -32768                                   # acc = 256 * 2**30 = 2**38
    w[1] = 32767                                    # acc = -256 * 32767 * 32768
    w[2] = -32768
    w[2, ::2] = 32767                               # mixed signs
    w[3, 0] = 1                                     # small: exercises rounding of the shift
    acts = [(j, INT16_MIN) for j in range(cols)]
    cases = []
    for shift in (0, 15):
        for relu in (False, True):
            cases.append(one_pe(w, CB, acts, f"extremes shift={shift} relu={relu}", shift=shift, relu=relu))
    for c in cases:
        assert c["max_abs_acc"] == 256 * 2**30
    assert min_acc_width(cols) == 40
    run_cases(model, cases, tmp_path)


def test_every_shift_and_relu(model, tmp_path):
    rng = np.random.default_rng(4)
    w = np.where(rng.random((64, 32)) < 0.5, rng.choice(CB[1:], (64, 32)), 0)
    acts = dense_acts(32, rng)
    cases = [one_pe(w, CB, acts, f"shift {s} relu {r}", shift=s, relu=r, seed=s)
             for s in range(16) for r in (False, True) if (s + r) % 2 == 0 or s in (0, 15)]
    outs = np.concatenate([c["exp_out"] for c in cases])
    assert (outs == INT16_MAX).any() and (outs == INT16_MIN).any() and (outs == 0).any()   # both clamps hit
    run_cases(model, cases, tmp_path)


def test_out_of_range_column_is_flagged(model, tmp_path):
    w = np.eye(8, dtype=np.int64) * 3
    acts = [(0, 5), (9, 7), (3, 2), (8, 1), (7, 4)]
    case = one_pe(w, CB, acts, "column >= n_cols")
    assert case["exp_error"] == 1
    run_cases(model, [case, one_pe(w, CB, acts, "n_cols 4", n_cols=4)], tmp_path)


def test_throughput_with_full_queue(model, tmp_path):
    """Source always valid: the queue fills and the PE issues one entry per cycle."""
    rng = np.random.default_rng(5)
    w = np.where(rng.random((64, 256)) < 0.25, rng.choice(CB[1:], (64, 256)), 0)
    w[:, 100] = 0                                   # one empty column
    acts = dense_acts(256, rng, -50, 50)
    case = one_pe(w, CB, acts, "full queue")
    m = run_cases(model, [case], tmp_path)["cases"][0]
    entries = int(case["col_entries"].sum())
    cycles = m["idle_at"] - m["first_push"]
    fill = QUEUE_LATENCY + POINTER_LATENCY + ISSUE_TO_MAC + MAC_TO_WRITEBACK
    assert m["busy"] == entries
    assert cycles == entries + 1 + fill            # + the empty column's cycle + pipeline fill/drain


def random_layer_cases(seed, n):
    rng = np.random.default_rng(seed)
    cases = []
    for c in range(n):
        rows = int(rng.integers(1, 65))
        cols = int(rng.integers(1, 257))
        density = float(rng.choice([0.01, 0.05, 0.1, 0.3, 0.6, 1.0]))
        cb = [0] + [int(v) for v in rng.choice(np.arange(-2000, 2000), 15, replace=False) if v != 0][:15]
        w = np.where(rng.random((rows, cols)) < density, rng.choice(cb[1:], (rows, cols)), 0)
        act_density = float(rng.choice([0.1, 0.4, 1.0]))
        acts = dense_acts(cols, rng, -3000, 3000, act_density)
        pv, pr, pread = [(1.0, 1.0, 1.0), (0.3, 0.5, 0.7), (0.8, 0.3, 1.0), (0.5, 1.0, 0.4)][c % 4]
        cases.append(one_pe(w, cb, acts, f"seed {seed} #{c}: {rows}x{cols} d={density} a={act_density}",
                            shift=int(rng.integers(0, 16)), relu=bool(rng.integers(2)),
                            p_valid=pv, p_ready=pr, p_read=pread, seed=seed * 100 + c))
    return cases


RANDOM_SEEDS, CASES_PER_SEED = range(4), 6


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_random_layers(model, tmp_path, seed):
    run_cases(model, random_layer_cases(seed, CASES_PER_SEED), tmp_path)


def test_random_layers_cover_enough_macs():
    macs = sum(int(c["col_entries"].sum()) for s in RANDOM_SEEDS for c in random_layer_cases(s, CASES_PER_SEED))
    assert macs >= 10_000, macs


def test_queue_depth_one(tmp_path):
    """A one-entry queue: the FIFO refuses a write while full, even in a cycle it is read."""
    params = dict(PARAMS, queue_depth=1, max_entries=1024)
    m = sim.build(ProcessingElement(**params))
    rng = np.random.default_rng(6)
    w = np.where(rng.random((16, 40)) < 0.3, rng.choice(CB[1:], (16, 40)), 0)
    p = pack_eie(w, 1, codebook=np.asarray(CB))
    acts = dense_acts(40, rng, -100, 100)
    cases = [make_case("depth 1", p.pe[0], CB, 40, p.local_rows, acts, params=params),
             make_case("depth 1 back-pressure", p.pe[0], CB, 40, p.local_rows, acts, p_valid=0.6, seed=1,
                       params=params)]
    run_cases(m, cases, tmp_path)


def test_cycle_model_queue_full_recurrence():
    """Model-only: with the source always valid, the queue accepts a new activation only after
    the one D places ahead has left it, plus one cycle (no write while full)."""
    t = pe_timing([5] * 20, queue_depth=2)
    for i in range(2, 20):
        assert t.push[i] == max(t.push[i - 1] + 1, t.pop[i - 2] + 1)
    assert np.all(np.diff(t.take) == 5)            # one entry per cycle, no bubble between columns


@pytest.mark.parametrize("kw, message", [
    (dict(acc_width=39), "can overflow"),
    (dict(queue_depth=0), "queue_depth"),
    (dict(act_width=8), r"must be 16 and 16 \(docs/spec.md §1\)"),
    (dict(weight_width=32), r"must be 16 and 16 \(docs/spec.md §1\)"),
    (dict(codebook=[1, 2]), "entry 0"),
    (dict(codebook=[0, 32768]), "signed 16-bit"),
    (dict(codebook=[0, -32769]), "signed 16-bit"),
    (dict(col_ptr=[0, 3, 2]), "non-decreasing"),
])
def test_constructor_rejects_bad_parameters(kw, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ProcessingElement(**{**PARAMS, **kw})


def test_arithmetic_unit_accumulator_holds_a_product():
    """The arithmetic unit alone: its accumulator must be at least as wide as one product."""
    args = dict(max_local_rows=64, act_width=16, weight_width=16)
    with pytest.raises(ValueError, match="acc_width"):
        ArithmeticUnit(acc_width=31, **args)
    assert ArithmeticUnit(acc_width=32, **args).acc_width == 32
