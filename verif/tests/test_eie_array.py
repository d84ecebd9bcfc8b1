# amaranth: UnusedElaboratable=no
"""The EIE array (``pyhdl/eie/array.py``) in Verilator: LNZD broadcast, host loading through
the driver, whole networks, read-back in global row order, and the exact cycle model.

Every layer is checked bit-exactly against the golden model, and its cycle count, per-PE
busy/starved/stalled counters and broadcast stalls against ``sw.cyclemodel.eie.array_timing``.
"""

import numpy as np
import pytest
from amaranth.hdl import Shape

from pyhdl.eie.array import EIEArray
from runtime.eie import network
from runtime.eie.host import fit_params
from sw.cyclemodel.eie import layer_work
from sw.pack import pack_eie
from verif.tb.eie_array import make_case
from verif.tb.eie_array import run as run_cases

BASE = dict(max_cols=256, max_entries=4096, max_local_rows=64, queue_depth=8, lnzd_width=8)
N_PES = (1, 2, 4, 8)


def params(n_pe, **kw):
    return {**BASE, "n_pe": n_pe, **kw}


@pytest.fixture(scope="session")
def models():
    return {}


def model_for(models, p):
    key = tuple(sorted(p.items()))
    if key not in models:
        models[key] = network.model(p)
    return models[key]


def int_layer(rng, rows, cols, density, values=None):
    """A pruned, weight-shared integer layer packed with its codebook."""
    values = values if values is not None else rng.choice(np.arange(-60, 61), 15, replace=False)
    values = np.asarray([v for v in values if v != 0][:15])
    w = np.where(rng.random((rows, cols)) < density, rng.choice(values, (rows, cols)), 0)
    return w, np.concatenate([[0], values])


def packed_layer(rng, rows, cols, density, n_pe, shift=0, relu=True):
    w, cb = int_layer(rng, rows, cols, density)
    return pack_eie(w, n_pe, codebook=cb), shift, relu


def acts(rng, cols, density, lo=-400, hi=400):
    x = rng.integers(lo, hi + 1, cols)
    x[rng.random(cols) >= density] = 0
    return x


MACS_PER_PE_COUNT = 10_000


def random_cases(n_pe):
    """Seeded random layers for ``n_pe`` PEs until the regression covers >= 10^4 MACs."""
    rng = np.random.default_rng(n_pe)
    p = params(n_pe)
    cases, macs = [], 0
    while macs < MACS_PER_PE_COUNT:
        c = len(cases)
        rows = int(rng.integers(1, min(64 * n_pe, 200) + 1))
        cols = int(rng.integers(1, 257))
        local_rows = -(-rows // n_pe)
        fits = [d for d in (0.05, 0.2, 0.5) if local_rows * cols * d <= 3000] or [0.02]  # < max_entries
        layer = packed_layer(rng, rows, cols, float(rng.choice(fits)), n_pe,
                             shift=int(rng.integers(0, 4)), relu=bool(rng.integers(2)))
        x = acts(rng, cols, float(rng.choice([0.1, 0.4, 1.0])))
        cases.append(make_case(f"{rows}x{cols}", p, [layer], x, p_ready=[1.0, 0.5][c % 2], seed=c))
        macs += int(layer_work(layer[0], x)[0].sum())
    return cases, macs


@pytest.mark.parametrize("n_pe", N_PES)
def test_random_layers(models, tmp_path, n_pe):
    cases, macs = random_cases(n_pe)
    assert macs >= MACS_PER_PE_COUNT
    run_cases(model_for(models, params(n_pe)), cases, tmp_path)


@pytest.mark.parametrize("n_pe", (1, 4))
def test_corner_inputs(models, tmp_path, n_pe):
    rng = np.random.default_rng(10 + n_pe)
    p = params(n_pe)
    layer = packed_layer(rng, 37, 100, 0.3, n_pe, relu=False)      # rows not divisible by n_pe
    one = np.zeros(100, dtype=np.int64)
    one[57] = -3
    last = np.zeros(100, dtype=np.int64)
    last[99] = 5
    cases = [make_case("all-zero input", p, [layer], np.zeros(100, dtype=np.int64)),
             make_case("single nonzero", p, [layer], one),
             make_case("last column only", p, [layer], last),
             make_case("dense input", p, [layer], acts(rng, 100, 1.0)),
             make_case("activations loaded before the weights", p, [layer], acts(rng, 100, 0.5), acts_first=True)]
    # Every PE but one empty: all weights in rows of PE 0.
    w = np.zeros((32, 50), dtype=np.int64)
    w[::n_pe] = rng.integers(1, 8, (len(range(0, 32, n_pe)), 50))
    cases.append(make_case("one busy PE", p, [(pack_eie(w, n_pe, codebook=np.arange(8)), 0, True)],
                           acts(rng, 50, 0.8)))
    run_cases(model_for(models, p), cases, tmp_path)


def test_sizes_that_are_not_powers_of_two(models, tmp_path):
    """3 PEs, 5 local rows, 100 columns, 300 entries: every memory, counter and read-back index is
    used up to its last value, where a width one bit short would lose it."""
    rng = np.random.default_rng(40)
    p = dict(n_pe=3, max_cols=100, max_entries=300, max_local_rows=5, queue_depth=3, lnzd_width=8)
    w, cb = int_layer(rng, 15, 100, 0.5)
    w[:, 99] = cb[1]                                   # the last column and every row are used
    packed = pack_eie(w, 3, codebook=cb)
    assert packed.local_rows == 5 and max(pe.n_entries for pe in packed.pe) <= 300
    cases = [make_case("full", p, [(packed, 2, False)], acts(rng, 100, 0.7), p_ready=0.5),
             make_case("last column only", p, [(packed, 0, True)], np.eye(100, dtype=np.int64)[99] * 7)]
    run_cases(model_for(models, p), cases, tmp_path)


def test_queue_full_stalls_the_broadcast(models, tmp_path):
    """One PE with long columns and a short queue: the broadcast must wait (stalls counted)."""
    rng = np.random.default_rng(20)
    p = params(4, queue_depth=2)
    w = np.zeros((64, 80), dtype=np.int64)
    w[0::4] = rng.integers(1, 8, (16, 80))                          # PE 0: 16 entries a column
    w[1::4, ::7] = 3
    case = make_case("short queue", p, [(pack_eie(w, 4, codebook=np.arange(8)), 0, True)], acts(rng, 80, 1.0))
    m = run_cases(model_for(models, p), [case], tmp_path)
    assert m["cases"][0][0]["bcast_stalls"][0] > 0


def test_network_back_to_back(models, tmp_path):
    """An MLP 64 -> 300 -> 100 -> 10 of pruned, weight-shared layers, outputs feeding inputs."""
    rng = np.random.default_rng(30)
    n_pe = 4
    sizes = [64, 300, 100, 10]
    layers = []
    for i, (cols, rows) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w, cb = int_layer(rng, rows, cols, 0.15, values=np.arange(-7, 8))
        layers.append((pack_eie(w, n_pe, codebook=cb), 4, i < 2))
    p = fit_params([lay[0] for lay in layers], n_pe)
    case = make_case("mlp 64-300-100-10", p, layers, acts(rng, 64, 0.6, 0, 300), p_ready=0.6)
    m = run_cases(model_for(models, p), [case], tmp_path)
    assert len(m["cases"][0]) == 3


@pytest.mark.parametrize("n_pe, max_cols, max_entries, max_local_rows, want", [
    # (row, load.addr, load.data, status_addr) widths of docs/spec.md §3.5's table
    (4, 1024, 4096, 64, (8, 17, 16, 4)),
    (64, 1024, 4096, 64, (12, 21, 16, 8)),
    (3, 100, 300, 5, (4, 14, 16, 4)),
    (1, 16, 16, 1, (1, 9, 16, 4)),
    (3, 16, 16, 3, (4, 10, 16, 4)),       # 9 rows: the row index needs bits_for(8), one more than for 8 rows
])
def test_port_widths_follow_the_spec(n_pe, max_cols, max_entries, max_local_rows, want):
    a = EIEArray(n_pe=n_pe, max_cols=max_cols, max_entries=max_entries, max_local_rows=max_local_rows)
    out = dict((name, (f.offset, f.width)) for name, f in a.outputs.payload.shape())
    assert out["row"] == (0, want[0]) and out["value"] == (want[0], 16)
    got = (want[0], a.load.addr.shape().width, a.load.data.shape().width, Shape.cast(a.status_addr.shape()).width)
    assert got == want


def test_driver_rejects_mismatched_images():
    rng = np.random.default_rng(40)
    p = params(4)
    w, cb = int_layer(rng, 10, 10, 0.5)
    with pytest.raises(ValueError, match="packed for n_pe = 2"):
        make_case("wrong n_pe", p, [(pack_eie(w, 2, codebook=cb), 0, True)], np.ones(10, dtype=np.int64))
    big, big_cb = int_layer(rng, 10, 300, 0.5)
    with pytest.raises(ValueError, match="max_cols"):
        make_case("too many columns", p, [(pack_eie(big, 4, codebook=big_cb), 0, True)], np.ones(300, dtype=np.int64))
    with pytest.raises(ValueError, match="int16"):
        make_case("bad input", p, [(pack_eie(w, 4, codebook=cb), 0, True)], np.full(10, 40000))
    with pytest.raises(ValueError, match="vector of 10"):
        make_case("bad input", p, [(pack_eie(w, 4, codebook=cb), 0, True)], np.ones(11, dtype=np.int64))


def test_array_emits_the_pe_once_and_instantiates_it():
    """64 PEs are 64 instances of one PE module: the Verilog does not grow by a PE's copy per PE."""
    import re

    from pyhdl.gen import generate

    a = EIEArray(n_pe=64, max_cols=64, max_entries=64, max_local_rows=4)
    pe = a.verilog_dependencies()[0].name
    text = generate(a)
    assert f"module {a.name}(" in text
    assert len(re.findall(rf"^module {pe}\(", text, re.M)) == 1
    assert sorted(re.findall(rf"^  {pe} (pe\d+) \(", text, re.M)) == sorted(f"pe{k}" for k in range(64))
    four = generate(EIEArray(n_pe=4, max_cols=64, max_entries=64, max_local_rows=4))
    per_pe = (len(text) - len(four)) / 60            # an instance's wiring, not a copy of the PE
    assert per_pe < len(generate(a.verilog_dependencies()[0])) / 4


def test_cli_sim_eie_matches_numpy(tmp_path, capsys):
    """`sparsehw sim eie` on a random 64x128 layer equals relu(W @ x) exactly."""
    from sw.cli import main

    rng = np.random.default_rng(50)
    w = np.where(rng.random((64, 128)) < 0.2, rng.choice(np.arange(-7, 8), (64, 128)), 0)
    x = rng.integers(-50, 51, 128)
    x[rng.random(128) < 0.5] = 0
    np.save(tmp_path / "W.npy", w)
    np.save(tmp_path / "x.npy", x)
    assert main(["sim", "eie", "--weights", str(tmp_path / "W.npy"), "--act", str(tmp_path / "x.npy"),
                 "--n-pe", "4", "--out", str(tmp_path / "y.npy")]) == 0
    y = np.load(tmp_path / "y.npy")
    assert np.array_equal(y, np.maximum(w @ x, 0))
    out = capsys.readouterr().out
    assert "busy cycles per PE" in out and "load-balance efficiency" in out


def test_cli_sim_eie_network_from_packed_dirs(tmp_path):
    from sw.cli import main

    rng = np.random.default_rng(51)
    sizes = [40, 30, 20]
    ws = []
    for i, (cols, rows) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = np.where(rng.random((rows, cols)) < 0.3, rng.integers(1, 8, (rows, cols)), 0)
        ws.append(w)
        np.save(tmp_path / f"W{i}.npy", w)
        assert main(["pack", "eie", "--weights", str(tmp_path / f"W{i}.npy"), "--n-pe", "2",
                     "--out", str(tmp_path / "net" / f"layer{i}")]) == 0
    x = rng.integers(0, 20, 40)
    np.save(tmp_path / "x.npy", x)
    assert main(["sim", "eie", "--net", str(tmp_path / "net"), "--act", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "y.npy")]) == 0
    want = x
    for w in ws:
        want = np.maximum(w @ want, 0)
    assert np.array_equal(np.load(tmp_path / "y.npy"), want)
    # A batch (n, cols): every layer loaded once, (n, rows) written.
    xs = rng.integers(0, 20, (4, 40))
    xs[rng.random(xs.shape) < 0.5] = 0
    np.save(tmp_path / "xs.npy", xs)
    assert main(["sim", "eie", "--net", str(tmp_path / "net"), "--act", str(tmp_path / "xs.npy"),
                 "--out", str(tmp_path / "ys.npy")]) == 0
    want = xs.T
    for w in ws:
        want = np.maximum(w @ want, 0)
    assert np.array_equal(np.load(tmp_path / "ys.npy"), want.T)
    # Load-balanced packing (--balance): the same outputs, in the original row order.
    for i in range(2):
        assert main(["pack", "eie", "--weights", str(tmp_path / f"W{i}.npy"), "--n-pe", "2", "--balance",
                     "--out", str(tmp_path / "bal" / f"layer{i}")]) == 0
    assert main(["sim", "eie", "--net", str(tmp_path / "bal"), "--act", str(tmp_path / "xs.npy"),
                 "--out", str(tmp_path / "ysb.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "ysb.npy"), want.T)


def test_cli_from_a_shared_model_to_the_rtl(tmp_path, monkeypatch):
    """`prune share`'s export.npz → `pack eie --export` → `sim eie --net`: the RTL computes the integer
    model (a tiny pruned, weight-shared MLP; the same array build as the test above)."""
    import torch

    from sw.cli import main
    from sw.models.mlp import MLP
    from sw.prune.export import export_integer
    from sw.prune.pruner import Pruner
    from sw.prune.share import share_weights

    torch.manual_seed(0)
    model = MLP((1, 4, 5), (12,), 6)
    Pruner(model).prune(0.6)
    share_weights(model, bits=3)
    calib = np.random.default_rng(52).random((32, 20))
    net = export_integer(model, calib)
    monkeypatch.chdir(tmp_path)
    net.save("export.npz")
    assert main(["pack", "eie", "--export", "export.npz", "--n-pe", "2", "--out", "layers"]) == 0
    x = net.quantize_input(calib[:1])[0]
    np.save("x.npy", x)
    assert main(["sim", "eie", "--net", "layers", "--act", "x.npy", "--out", "y.npy"]) == 0
    assert np.array_equal(np.load("y.npy"), net.forward(x[None])[0])


@pytest.mark.parametrize("make, message", [
    (lambda r: (np.arange(20 * 10).reshape(20, 10), np.ones(10, int)), "distinct nonzero weights"),
    (lambda r: (np.ones((4, 4)), np.ones(4, int)), "integer matrix"),
    (lambda r: (np.ones((4, 4), int), np.ones(5, int)), "vector of 4"),
    (lambda r: (np.ones((4, 4), int), np.full(4, 1 << 16)), "int16"),
    (lambda r: (np.ones((4, 4), int), np.ones(4)), "integers"),
])
def test_cli_sim_eie_bad_input(tmp_path, capsys, make, message):
    from sw.cli import main

    w, x = make(None)
    np.save(tmp_path / "W.npy", w)
    np.save(tmp_path / "x.npy", x)
    assert main(["sim", "eie", "--weights", str(tmp_path / "W.npy"), "--act", str(tmp_path / "x.npy"),
                 "--n-pe", "2", "--out", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sparsehw sim eie: error: --") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "y.npy").exists()


def test_bulk_loading_equals_the_host_port(models, tmp_path):
    """The same network and batch, loaded in bulk ($readmemh) and through the host port, in one
    simulation: outputs equal the golden model and cycles the cycle model either way; a bulk-loaded
    layer replaces the previous one (every memory word it uses is written)."""
    rng = np.random.default_rng(40)
    n_pe = 4
    layers = [packed_layer(rng, 60, 90, 0.3, n_pe, shift=2), packed_layer(rng, 25, 60, 0.5, n_pe, relu=False)]
    p = fit_params([lay[0] for lay in layers], n_pe)
    xs = np.stack([acts(rng, 90, d) for d in (0.2, 0.6, 1.0)])
    cases = [make_case("bulk", p, layers, xs, bulk_load=True, p_ready=0.6, seed=1),
             make_case("host", p, layers, xs, seed=2),
             make_case("bulk again, reversed batch", p, layers, xs[::-1], bulk_load=True)]
    m = run_cases(model_for(models, p), cases, tmp_path)
    bulk, host, again = m["cases"]
    for b, h in zip(bulk, host, strict=True):
        assert b["y"] == h["y"] and b["cycles"] == h["cycles"] and len(b["y"]) == 3
    assert again[-1]["y"] == bulk[-1]["y"][::-1]


def test_bulk_loading_refuses_a_layer_larger_than_the_memories():
    rng = np.random.default_rng(41)
    p = params(2, max_entries=64)
    with pytest.raises(ValueError, match=r"entries do not fit max_entries = 64"):
        make_case("too many entries", p, [packed_layer(rng, 8, 100, 0.9, 2)], acts(rng, 100, 0.5), bulk_load=True)
    with pytest.raises(ValueError, match=r"needs 200 local rows; the hardware holds max_local_rows = 64"):
        make_case("too many rows", params(2), [packed_layer(rng, 400, 10, 0.1, 2)], acts(rng, 10, 0.5),
                  bulk_load=True)


def test_64_pes_cycle_for_cycle(models, tmp_path):
    """The paper's 64 PEs: a 300 x 256 layer and a 64 x 300 layer (some PEs with no rows), a batch
    of three inputs, bulk-loaded; outputs equal the golden model and every input's cycles, per-PE
    counters and broadcast stalls equal the cycle model's."""
    rng = np.random.default_rng(64)
    n_pe = 64
    layers = [packed_layer(rng, 300, 256, 0.1, n_pe, shift=3), packed_layer(rng, 40, 300, 0.2, n_pe, relu=False)]
    p = fit_params([lay[0] for lay in layers], n_pe)
    xs = np.stack([acts(rng, 256, d) for d in (0.35, 0.1, 1.0)])
    m = run_cases(model_for(models, p), [make_case("64 PEs", p, layers, xs, bulk_load=True, p_ready=0.7)], tmp_path)
    assert [len(lay["cycles"]) for lay in m["cases"][0]] == [3, 3]
    assert all(len(c) == 64 for lay in m["cases"][0] for c in lay["counters"])


def test_balanced_rows_come_back_in_original_order(models, tmp_path):
    """Load-balanced packing (docs/spec.md §2.7a) on the RTL: skewed rows spread over the PEs, the
    read-back mapped to the original order, chained into the next layer; bulk and host loading."""
    rng = np.random.default_rng(42)
    n_pe = 4
    w = np.where(rng.random((64, 80)) < np.linspace(0.02, 0.9, 64)[:, None], rng.integers(1, 16, (64, 80)), 0)
    w2 = np.where(rng.random((12, 64)) < 0.4, rng.integers(1, 16, (12, 64)), 0)
    layers = [(pack_eie(w, n_pe, balance=True), 2, True),
              (pack_eie(w2, n_pe, balance=True), 0, False)]
    assert layers[0][0].row_order is not None
    p = fit_params([lay[0] for lay in layers], n_pe)
    xs = np.stack([acts(rng, 80, d) for d in (0.3, 1.0)])
    plain = [(pack_eie(w, n_pe), 2, True), (pack_eie(w2, n_pe), 0, False)]
    m = run_cases(model_for(models, p), [make_case("balanced", p, layers, xs, bulk_load=True),
                                         make_case("balanced, host port", p, layers, xs, p_ready=0.5),
                                         make_case("plain", p, plain, xs)], tmp_path)
    balanced, host, ref = m["cases"]
    assert balanced[-1]["y"] == ref[-1]["y"] == host[-1]["y"]
