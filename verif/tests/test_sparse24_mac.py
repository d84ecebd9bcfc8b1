"""The 2:4 sparse MAC and its dense baseline (``pyhdl/sparse24``) against docs/spec.md §4's golden model.

Scenarios only; case construction lives in ``verif/tb/sparse24_mac.py``, the cocotb scoreboard in
``runtime/sparse24.py``.
"""

import gc

import numpy as np
import pytest

from pyhdl.gen import generate, tops
from pyhdl.sparse24.dense_mac import DenseMAC
from pyhdl.sparse24.row_accumulator import RowAccumulator
from pyhdl.sparse24.sparse_mac import SparseMAC
from runtime import sim
from sw.cyclemodel.sparse24 import MAC_LATENCY
from sw.formats import INT8_MAX, INT8_MIN
from sw.pack import mask_24, pack_24
from verif.golden import sparse24 as golden
from verif.tb.sparse24_mac import GROUPS, MULTIPLIERS, acts, dense_case, random_24, run, sparse_case

# Units built only to read their parameters (or to see their constructor fail) are never
# elaborated, by design; they are collected while the filter holds.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@pytest.fixture(autouse=True)
def collect_unelaborated_units():
    yield
    gc.collect()


@pytest.fixture(scope="session")
def sparse_model():
    return sim.build(SparseMAC())


@pytest.fixture(scope="session")
def dense_model():
    return sim.build(DenseMAC())


BACK_PRESSURE = [(1.0, 1.0), (0.5, 1.0), (1.0, 0.4), (0.6, 0.6)]


def with_back_pressure(make, name, blocks, **kw):
    return [make(f"{name} p_valid={pv} p_ready={pr}", blocks, p_valid=pv, p_ready=pr, seed=s, **kw)
            for s, (pv, pr) in enumerate(BACK_PRESSURE)]


def pattern_matrix(rng, k):
    """Rows whose groups take every docs/spec.md §4 pattern: the 6 two-nonzero ones at every group slot of a
    beat, the 4 one-nonzero ones and the empty group."""
    n_groups = k // 4
    patterns = [list(p) for p in golden.META_PATTERNS] + [[p] for p in range(4)] + [[]]
    rows = []
    for shift in range(len(patterns)):
        row = np.zeros(k, dtype=np.int64)
        for g in range(n_groups):
            for p in patterns[(g + shift) % len(patterns)]:
                row[4 * g + p] = rng.choice([v for v in range(INT8_MIN, INT8_MAX + 1) if v != 0])
        rows.append(row)
    return np.array(rows)


# ---------------------------------------------------------------- sparse MAC

def test_every_metadata_pattern(sparse_model, tmp_path):
    """All 6 kept-position pairs in every group slot, groups with one nonzero at each position and
    empty groups, against activations that differ in every lane (a wrong mux changes the sum)."""
    rng = np.random.default_rng(10)
    W = pattern_matrix(rng, 4 * GROUPS * 11)
    X = np.tile(rng.permutation(np.arange(INT8_MIN, INT8_MAX + 1))[: W.shape[1]], (W.shape[0], 1))
    values, meta = pack_24(W)
    assert set(np.unique(meta).tolist()) == {i0 | i1 << 2 for i0, i1 in golden.META_PATTERNS}
    single = sparse_case("one beat a row", [(W[:, :4 * GROUPS], X[:, :4 * GROUPS])])
    run(sparse_model, with_back_pressure(sparse_case, "every pattern", [(W, X)]) + [single], tmp_path)


def test_one_lane_at_a_time(sparse_model, tmp_path):
    """Every product lane alone: one nonzero kept weight a row, every pattern in every group slot,
    activations distinct in all lanes, so the row result names the activation the mux picked."""
    rng = np.random.default_rng(15)
    k = 4 * GROUPS
    x = rng.permutation(np.arange(1, 100))[:k] * rng.choice([-1, 1], k)
    values, meta = [], []
    for i0, i1 in golden.META_PATTERNS:
        for g in range(GROUPS):
            for slot in range(2):
                v = np.zeros(k // 2, dtype=np.int64)
                v[2 * g + slot] = int(rng.integers(1, INT8_MAX + 1)) * (-1) ** slot
                mt = np.full(k // 4, 2 | 3 << 2)
                mt[g] = i0 | i1 << 2
                values.append(v)
                meta.append(mt)
    case = sparse_case("one lane", [(np.array(values), np.array(meta), np.tile(x, (len(values), 1)))])
    assert len(set(np.abs(x).tolist())) == k        # a wrong activation always changes the row result
    run(sparse_model, [case], tmp_path)


def test_extremes(sparse_model, tmp_path):
    """-128 × -128 everywhere (the largest product), mixed signs, one beat and long rows."""
    rng = np.random.default_rng(11)
    blocks = []
    for k in (4 * GROUPS, 64 * GROUPS):
        keep = mask_24(rng.random((4, k)))
        W = np.where(keep, np.array([[INT8_MIN], [INT8_MIN], [INT8_MAX], [INT8_MIN]]), 0)
        X = np.array([[INT8_MIN], [INT8_MAX], [INT8_MIN], [0]]) * np.ones((4, k), dtype=np.int64)
        blocks.append((W, X))
    W0, X0 = blocks[1]
    assert golden.sparse_dot(*[a[0] for a in pack_24(W0)], X0[0]) == 16384 * W0.shape[1] // 2
    run(sparse_model, with_back_pressure(sparse_case, "extremes", blocks), tmp_path)


def test_empty_and_single_beat_rows(sparse_model, tmp_path):
    """All-zero rows, K = 4·groups (a result every cycle), rows of different K back to back."""
    rng = np.random.default_rng(12)
    k1 = 4 * GROUPS
    blocks = [(np.zeros((3, k1), dtype=np.int64), acts(rng, 3, k1)),
              (random_24(rng, 200, k1, 0.3), acts(rng, 200, k1)),
              (np.zeros((2, 8 * k1), dtype=np.int64), acts(rng, 2, 8 * k1)),
              (random_24(rng, 5, 3 * k1), acts(rng, 5, 3 * k1)),
              (random_24(rng, 7, k1), acts(rng, 7, k1))]
    run(sparse_model, with_back_pressure(sparse_case, "short rows", blocks), tmp_path)


def test_accumulator_wraps_like_int32(sparse_model, tmp_path):
    """A row long enough (16,400 beats of -128 × -128) to pass 2**31: int32 two's complement."""
    k = 4 * GROUPS * 16_400
    W = np.where(np.tile([1, 1, 0, 0], k // 4) == 1, INT8_MIN, 0)[None, :]
    X = np.full((1, k), INT8_MIN)
    exact = 16384 * (k // 2)
    assert exact > 2**31 - 1
    case = sparse_case("wrap", [(W, X), (W[:, :4 * GROUPS], X[:, :4 * GROUPS])])
    assert case["expected"][0] == exact - 2**32
    m = run(sparse_model, [case], tmp_path)
    assert m["cycles"] == 16_401 + SparseMAC.LATENCY


def test_bad_metadata_sets_error(sparse_model, tmp_path):
    """i0 == i1 and i0 > i1 set the sticky error (the beat is computed as the muxes select); valid
    rows after it keep the flag set; error_clear clears it."""
    rng = np.random.default_rng(13)
    k = 4 * GROUPS * 2
    values = rng.integers(INT8_MIN, INT8_MAX + 1, (3, k // 2))
    X = acts(rng, 3, k)
    good_meta = np.full((3, k // 4), 0 | 1 << 2)
    cases = []
    for bad in (1 | 1 << 2, 3 | 0 << 2, 2 | 1 << 2):
        meta = good_meta.copy()
        meta[1, 5] = bad
        cases.append(sparse_case(f"meta {bad}", [(values, meta, X)]))
    cases.append(sparse_case("valid meta", [(values, good_meta, X)]))
    assert [c["exp_error"] for c in cases] == [1, 1, 1, 0]
    run(sparse_model, cases, tmp_path)


def random_blocks(seed, n_rows):
    rng = np.random.default_rng(seed)
    blocks, rows = [], 0
    while rows < n_rows:
        r = int(rng.integers(1, 200))
        k = 4 * GROUPS * int(rng.choice([1, 1, 2, 3, 4, 8, 16]))
        blocks.append((random_24(rng, r, k, float(rng.choice([0.0, 0.2, 0.6]))), acts(rng, r, k)))
        rows += r
    return blocks


RANDOM_SEEDS, ROWS_PER_SEED = range(4), 2600


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_random_matrices(sparse_model, tmp_path, seed):
    pv, pr = BACK_PRESSURE[seed % len(BACK_PRESSURE)]
    case = sparse_case(f"random seed {seed}", random_blocks(seed, ROWS_PER_SEED), p_valid=pv, p_ready=pr,
                       seed=seed)
    run(sparse_model, [case], tmp_path)


def test_random_total_rows():
    """The random regression covers at least 10^4 rows of dot products."""
    assert sum(W.shape[0] for s in RANDOM_SEEDS for W, _ in random_blocks(s, ROWS_PER_SEED)) >= 10_000


def test_throughput_one_beat_per_cycle(sparse_model, tmp_path):
    """Without back-pressure: rows · K / (4·groups) + LATENCY cycles, i.e. 4·groups dense MACs a cycle."""
    rng = np.random.default_rng(14)
    rows, k = 64, 256
    case = sparse_case("throughput", [(random_24(rng, rows, k), acts(rng, rows, k))])
    m = run(sparse_model, [case], tmp_path)
    assert m["cycles"] == rows * k // (4 * GROUPS) + SparseMAC.LATENCY
    assert m["dense_macs"] == rows * k


def test_odd_group_count(tmp_path):
    """groups = 3: six multipliers, an adder tree with an odd level, beats of 12 weights."""
    model = sim.build(SparseMAC(groups=3))
    rng = np.random.default_rng(16)
    extreme = np.full((2, 12 * 20), INT8_MIN)
    blocks = [(pattern_matrix(rng, 12 * 4), acts(rng, 11, 12 * 4)),
              (extreme * mask_24(rng.random(extreme.shape)), extreme)]
    blocks += [(random_24(rng, r, 12 * n, 0.3), acts(rng, r, 12 * n))
               for r, n in [(300, 1), (40, 3), (20, 9)]]
    cases = with_back_pressure(lambda *a, **kw: sparse_case(*a, groups=3, **kw), "groups=3", blocks)
    m = run(model, cases, tmp_path)
    assert m["cycles"] == sum(W.shape[0] * W.shape[1] // 12 for W, _ in blocks) + SparseMAC.LATENCY


def test_odd_multiplier_count(tmp_path):
    """DenseMAC(multipliers=5): the adder tree's first (pairing) stage has a term left over."""
    model = sim.build(DenseMAC(multipliers=5))
    rng = np.random.default_rng(17)
    extreme = np.full((3, 5 * 7), INT8_MIN)
    blocks = [(extreme, extreme), (np.full((2, 5 * 3), INT8_MAX), np.full((2, 5 * 3), INT8_MIN))]
    blocks += [(acts(rng, r, 5 * n), acts(rng, r, 5 * n)) for r, n in [(200, 1), (30, 4)]]
    # One product per position: a wrong pairing drops or repeats a column.
    onehot = np.zeros((5, 5), dtype=np.int64)
    onehot[np.arange(5), np.arange(5)] = rng.integers(1, INT8_MAX, 5)
    blocks.append((onehot, acts(rng, 5, 5)))
    cases = with_back_pressure(lambda *a, **kw: dense_case(*a, multipliers=5, **kw), "multipliers=5", blocks)
    m = run(model, cases, tmp_path)
    assert m["cycles"] == sum(W.shape[0] * W.shape[1] // 5 for W, _ in blocks) + DenseMAC.LATENCY


def test_latency_is_the_specified_one():
    """docs/spec.md §4.3: a row's result leaves 5 cycles after its last beat (two multiplier
    stages, two adder-tree stages, the accumulator); the cycle checks above take LATENCY from
    the classes, so this pins it to the spec and to the software cycle formula's."""
    assert SparseMAC.LATENCY == DenseMAC.LATENCY == MAC_LATENCY == 5


def test_pruned_linear_layer_end_to_end(sparse_model, tmp_path):
    """An nn.Linear pruned with the toolkit's 2:4 granularity, quantized to int8, packed, written as
    memory images and read back, run on the RTL: every output equals PyTorch's integer matmul of the
    same layer."""
    import torch

    from sw.pack import read_24_images, write_24_images
    from sw.prune.granularity import NM
    from sw.prune.pruner import Pruner

    torch.manual_seed(0)
    layer = torch.nn.Linear(128, 48, bias=False)
    report = Pruner(layer, NM(2, 4), example_input=torch.zeros(1, 128)).prune()
    assert report.after.layer("").sparsity == 0.5
    w = layer.weight.detach()
    scale = float(w.abs().max()) / INT8_MAX
    w_int = torch.round(w / scale).to(torch.int8)
    x_int = torch.randint(INT8_MIN, INT8_MAX + 1, (128,), dtype=torch.int8)
    want = (w_int.to(torch.int64) @ x_int.to(torch.int64)).tolist()

    write_24_images(*pack_24(w_int.numpy()), tmp_path / "images")
    img = read_24_images(tmp_path / "images")
    X = np.tile(x_int.numpy().astype(np.int64), (w_int.shape[0], 1))     # y = W @ x: x replayed each row
    case = sparse_case("pruned nn.Linear", [(img.values, img.meta, X)], groups=img.groups)
    assert case["expected"].tolist() == want
    run(sparse_model, [case], tmp_path / "sim")


# ---------------------------------------------------------------- a layer on both units (runtime)

def test_run_layer_24_small_layer(tmp_path):
    """``runtime.sparse24.run_layer_24``: a random 2:4 layer whose K (36) is no whole number of beats
    of either unit, extremes in it, a batch of vectors: both units give the exact product (numpy and
    the golden model) in docs/spec.md §4.3's cycles, K padded to 48 (sparse) and 40 (dense)."""
    from runtime.sparse24 import run_layer_24

    rng = np.random.default_rng(30)
    rows, k, n = 12, 36, 5
    W = random_24(rng, rows, k, 0.2)
    W[0] = np.where(mask_24(rng.random(k)[None])[0], INT8_MIN, 0)
    X = acts(rng, n, k)
    X[0] = INT8_MIN
    r = run_layer_24(W, X, test_dir=tmp_path)
    assert r.y.shape == (n, rows)
    assert np.array_equal(r.y, X.astype(np.int64) @ W.astype(np.int64).T)
    values, meta = golden.pack_matrix(W.tolist())
    assert r.y.tolist() == [[golden.sparse_dot(v, mt, x) for v, mt in zip(values, meta, strict=True)]
                            for x in X.tolist()]
    assert r.y[0, 0] == 16384 * k // 2
    assert (r.k_sparse, r.k_dense) == (48, 40)
    assert r.sparse_cycles == r.sparse_expected == n * rows * 3 + SparseMAC.LATENCY
    assert r.dense_cycles == r.dense_expected == n * rows * 5 + DenseMAC.LATENCY
    assert r.dense_macs == n * rows * k


def test_finetuned_lenet_layer_on_both_units(tmp_path, monkeypatch):
    """A real layer end to end: fc3 of a 2:4 fine-tuned LeNet-300-100 (8×8 digits, short training),
    int8, on its inputs from test digits, through both units; rescaled by the layer's powers of two
    the RTL's integers match the float layer."""
    from runtime.sparse24 import run_layer_24
    from sw.prune.nm_accuracy import finetuned_24_lenet_layer

    monkeypatch.setenv("SPARSEHW_CACHE", str(tmp_path / "cache"))
    layer = finetuned_24_lenet_layer("fc3", n_inputs=6, data="digits", train_epochs=3, finetune_epochs=1)
    r = run_layer_24(layer.weight, layer.x, test_dir=tmp_path / "sim")
    y = r.y * 2.0 ** -(layer.weight_exp + layer.in_exp)
    assert np.abs(y - layer.float_out).max() < 0.05 * np.abs(layer.float_out).max()
    assert (r.k_sparse, r.k_dense) == (112, 104)                       # K = 100
    assert r.sparse_cycles == 6 * 10 * 7 + SparseMAC.LATENCY
    assert r.dense_cycles == 6 * 10 * 13 + DenseMAC.LATENCY


def test_run_layer_24_rejects_before_simulating():
    from runtime.sparse24 import run_layer_24

    W = np.zeros((2, 8), dtype=np.int64)
    with pytest.raises(ValueError, match="row 1, group 1"):
        run_layer_24(W + np.array([[0] * 8, [0, 0, 0, 0, 1, 1, 1, 0]]), np.zeros((1, 8)))
    with pytest.raises(ValueError, match="outside int8"):
        run_layer_24(W, np.full((1, 8), 128))
    with pytest.raises(ValueError, match="not an integer"):
        run_layer_24(W + 0.5, np.zeros((1, 8)))
    with pytest.raises(ValueError, match=r"x_batch has shape \(1, 12\); W \(2, 8\) needs"):
        run_layer_24(W, np.zeros((1, 12)))
    with pytest.raises(ValueError, match="not a multiple of 4"):
        run_layer_24(np.zeros((2, 6)), np.zeros((1, 6)))


# ---------------------------------------------------------------- dense MAC

def test_dense_directed(dense_model, tmp_path):
    rng = np.random.default_rng(20)
    k1 = MULTIPLIERS
    ext = np.full((2, 64 * k1), INT8_MIN)
    lanes = np.diag(np.arange(1, k1 + 1)) * 7                  # one lane a row
    blocks = [(ext, ext), (np.full((1, k1), INT8_MAX), np.full((1, k1), INT8_MIN)),
              (lanes, np.tile(np.arange(-k1, 0), (k1, 1))),
              (np.zeros((3, 2 * k1), dtype=np.int64), acts(rng, 3, 2 * k1)),
              (acts(rng, 150, k1), acts(rng, 150, k1)), (acts(rng, 9, 5 * k1), acts(rng, 9, 5 * k1))]
    assert golden.dense_dot(ext[0], ext[0]) == 16384 * ext.shape[1]
    run(dense_model, with_back_pressure(dense_case, "dense directed", blocks), tmp_path)


def test_dense_random(dense_model, tmp_path):
    rng = np.random.default_rng(21)
    blocks = []
    for _ in range(16):
        r, k = int(rng.integers(1, 120)), MULTIPLIERS * int(rng.choice([1, 2, 4, 8, 32]))
        blocks.append((acts(rng, r, k), acts(rng, r, k)))
    run(dense_model, with_back_pressure(dense_case, "dense random", blocks), tmp_path)


def test_sparse_vs_dense_throughput(sparse_model, dense_model, tmp_path):
    """The same 2:4 layer on both units: the sparse MAC needs half the dense MAC's cycles."""
    rng = np.random.default_rng(22)
    rows, k = 32, 512
    W, X = random_24(rng, rows, k), acts(rng, rows, k)
    ms = run(sparse_model, [sparse_case("sparse", [(W, X)])], tmp_path / "sparse")
    md = run(dense_model, [dense_case("dense", [(W, X)])], tmp_path / "dense")
    assert ms["cycles"] == rows * k // (4 * GROUPS) + SparseMAC.LATENCY
    assert md["cycles"] == rows * k // MULTIPLIERS + DenseMAC.LATENCY
    assert (md["cycles"] - DenseMAC.LATENCY) == 2 * (ms["cycles"] - SparseMAC.LATENCY)


def test_defaults_are_the_generated_pair():
    """The simulated units are the ones in rtl/: SparseMAC(groups=4) and a DenseMAC with as many
    multipliers, both generated by pyhdl.gen and committed unchanged."""
    assert (SparseMAC().groups, SparseMAC().multipliers, DenseMAC().multipliers) == (GROUPS, 8, 8)
    pair = [t for t in tops() if isinstance(t, (SparseMAC, DenseMAC))]
    assert [t.name for t in pair] == ["sparse_mac_groups4", "dense_mac_multipliers8"]
    for top in pair:
        assert (sim.REPO / "rtl" / f"{top.name}.v").read_text() == generate(top), f"rtl/{top.name}.v is stale"


def test_sum_register_is_as_narrow_as_the_extremes_allow():
    """The beat-sum register holds n products of -128 × -128 and has no bit to spare."""
    for n in range(1, 17):
        w = RowAccumulator(n=n).sum_width
        assert n * 16384 <= (1 << (w - 1)) - 1, (n, w)        # holds the largest sum
        assert n * 16384 > (1 << (w - 2)) - 1, (n, w)         # one bit fewer would not


def test_parameters_rejected():
    with pytest.raises(ValueError, match="groups"):
        SparseMAC(groups=0)
    with pytest.raises(TypeError, match="groups"):
        SparseMAC(groups=2.0)
    with pytest.raises(ValueError, match="multipliers"):
        DenseMAC(multipliers=0)
